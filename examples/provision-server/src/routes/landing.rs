//! The home page and the Provision URL landing pages `/smc/provision/`,
//! `/smc/getsettings/` and `/smc/complete/`: a *Get Server Settings* button (an app link
//! the mobile client opens) and the QR code of the page's own URL.
//!
//! # Security
//! A GET never spends the code (mail scanners open links): these pages only display. The
//! code is spent when the device sends its `provision` request. The pages are sent with
//! `Cache-Control: no-store` and `Referrer-Policy: no-referrer`.

use std::collections::HashMap;

use axum::extract::{OriginalUri, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use swivel_provision::SiteId;

use crate::html;
use crate::state::AppState;

/// The scheme of the app link behind the *Get Server Settings* button.
pub const APP_SCHEME: &str = "swivel-provision";

/// Percent-encodes a URL component (everything but unreserved characters).
pub fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The home page: where things are.
pub async fn home(State(state): State<AppState>) -> Response {
    let policy = state.provisioner().policy();
    let body = format!(
        "<ul><li><a href=\"/reset/provision\">Mobile Provision (self-service)</a></li>\
<li><a href=\"/login\">Log in with a one-time code</a></li>\
<li><a href=\"/admin/\">Administration console</a></li></ul>\
<p>Device endpoint: <code>{url}/pinsafe/AgentXML</code><br>Site ID: <code>{site}</code></p>",
        url = html::escape(state.public_url()),
        site = html::escape(&policy.get("site_id").unwrap_or_default()),
    );
    (
        html::headers(),
        html::page("Swivel Mobile Provisioning", &body),
    )
        .into_response()
}

fn qr_svg(url: &str) -> String {
    match swivel_provision::qr::render(url) {
        // The SVG comes from the QR encoder, not from the request; strip its XML prolog to
        // inline it.
        Some(img) => img
            .svg
            .find("<svg")
            .map(|i| img.svg[i..].to_owned())
            .unwrap_or_default(),
        None => String::new(),
    }
}

fn landing(
    state: &AppState,
    kind: &str,
    uri: &OriginalUri,
    params: &HashMap<String, String>,
    intro: &str,
) -> Response {
    let url = format!("{}{}", state.public_url(), uri.0);
    let mut app_link = format!(
        "{APP_SCHEME}://{kind}?server={}",
        encode_component(state.public_url())
    );
    for key in ["site", "user", "code"] {
        if let Some(v) = params.get(key) {
            app_link.push_str(&format!("&{key}={}", encode_component(v)));
        }
    }
    let user = params
        .get("user")
        .map(|u| {
            format!(
                "<p>User: <strong id=\"user\">{}</strong></p>",
                html::escape(u)
            )
        })
        .unwrap_or_default();
    let body = format!(
        "<p>{intro}</p>{user}\
<p><a id=\"get-settings\" href=\"{link}\"><button type=\"button\">Get Server Settings</button></a></p>\
<p>Or scan this QR code with the mobile client:</p><div id=\"qr\">{qr}</div>\
<p>Opening this page does not use the provision code; the mobile client uses it once.</p>",
        link = html::escape(&app_link),
        qr = qr_svg(&url),
    );
    (html::headers(), html::page("Mobile Provision", &body)).into_response()
}

/// `/smc/provision/?user=U&code=C`.
pub async fn provision(
    State(state): State<AppState>,
    uri: OriginalUri,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    landing(
        &state,
        "provision",
        &uri,
        &params,
        "Open this page on the phone with the Swivel mobile client installed to provision it.",
    )
}

/// `/smc/complete/?site=S&user=U&code=C`.
pub async fn complete(
    State(state): State<AppState>,
    uri: OriginalUri,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    landing(
        &state,
        "complete",
        &uri,
        &params,
        "Open this page on the phone with the Swivel mobile client installed: it gets the server settings and provisions itself in one step.",
    )
}

/// `/smc/getsettings/?site=S`: the site's server settings, and the button.
pub async fn getsettings(
    State(state): State<AppState>,
    uri: OriginalUri,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let site = params.get("site").and_then(|s| SiteId::parse(s).ok());
    let settings = match &site {
        Some(site) => state.provisioner().server_details(site).await,
        None => Err(swivel_provision::Error::UnknownServerId),
    };
    match settings {
        Ok(s) => {
            let intro = format!(
                "Server settings for site {}: {}://{}:{}/{}",
                html::escape(site.as_ref().map(SiteId::as_str).unwrap_or_default()),
                if s.using_ssl { "https" } else { "http" },
                html::escape(&s.hostname),
                s.port,
                html::escape(&s.connection_type)
            );
            landing(&state, "getsettings", &uri, &params, &intro)
        }
        Err(e) => {
            let status = if matches!(e, swivel_provision::Error::UnknownServerId) {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            let body = format!(
                "<p class=\"error\">{}</p>",
                html::escape(&e.public_message())
            );
            (
                status,
                html::headers(),
                html::page("Mobile Provision", &body),
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn encodes_components() {
        assert_eq!(
            super::encode_component("http://a b/&x"),
            "http%3A%2F%2Fa%20b%2F%26x"
        );
    }
}
