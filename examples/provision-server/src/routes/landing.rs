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
use maud::{Markup, PreEscaped, html};
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
    let site = state
        .provisioner()
        .policy()
        .get("site_id")
        .unwrap_or_default();
    (html::headers(), home_view(state.public_url(), &site)).into_response()
}

/// The home page: the links, the device endpoint under `public_url`, and the Site ID.
fn home_view(public_url: &str, site: &str) -> String {
    let body = html! {
        ul {
            li { a href="/reset/provision" { "Mobile Provision (self-service)" } }
            li { a href="/login" { "Log in with a one-time code" } }
            li { a href="/admin/" { "Administration console" } }
        }
        p {
            "Device endpoint: " code { (public_url) "/pinsafe/AgentXML" }
            br;
            "Site ID: " code { (site) }
        }
    };
    html::page("Swivel Mobile Provisioning", body)
}

/// The QR code of `url` as inline SVG (empty when the URL is too long for one).
fn qr_svg(url: &str) -> Markup {
    match swivel_provision::qr::render(url) {
        // The SVG comes from the QR encoder (paths and sizes only, none of the request's
        // text), so it is inlined as it is, without its XML prolog.
        Some(img) => PreEscaped(
            img.svg
                .find("<svg")
                .map(|i| img.svg[i..].to_owned())
                .unwrap_or_default(),
        ),
        None => PreEscaped(String::new()),
    }
}

/// The app link behind the *Get Server Settings* button: `kind` with this server's URL and
/// the page's `site`, `user` and `code`.
fn app_link(state: &AppState, kind: &str, params: &HashMap<String, String>) -> String {
    let mut link = format!(
        "{APP_SCHEME}://{kind}?server={}",
        encode_component(state.public_url())
    );
    for key in ["site", "user", "code"] {
        if let Some(v) = params.get(key) {
            link.push_str(&format!("&{key}={}", encode_component(v)));
        }
    }
    link
}

/// A landing page for the app link `kind`, with `intro` (text) above the button.
fn landing(
    state: &AppState,
    kind: &str,
    uri: &OriginalUri,
    params: &HashMap<String, String>,
    intro: &str,
) -> Response {
    let url = format!("{}{}", state.public_url(), uri.0);
    let page = landing_view(
        intro,
        params.get("user").map(String::as_str),
        &app_link(state, kind, params),
        qr_svg(&url),
    );
    (html::headers(), page).into_response()
}

/// A landing page: `intro`, the `user`, the button opening `link`, and the `qr` code of the
/// page's own URL.
fn landing_view(intro: &str, user: Option<&str>, link: &str, qr: Markup) -> String {
    let body = html! {
        p { (intro) }
        @if let Some(user) = user {
            p { "User: " strong id="user" { (user) } }
        }
        p {
            a id="get-settings" href=(link) {
                button type="button" { "Get Server Settings" }
            }
        }
        p { "Or scan this QR code with the mobile client:" }
        div id="qr" { (qr) }
        p { "Opening this page does not use the provision code; the mobile client uses it once." }
    };
    html::page("Mobile Provision", body)
}

/// A landing page that has nothing to show but `message`.
fn landing_error(message: &str) -> String {
    html::page("Mobile Provision", html! { p class="error" { (message) } })
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
                site.as_ref().map(SiteId::as_str).unwrap_or_default(),
                if s.using_ssl { "https" } else { "http" },
                s.hostname,
                s.port,
                s.connection_type
            );
            landing(&state, "getsettings", &uri, &params, &intro)
        }
        Err(e) => {
            let status = if matches!(e, swivel_provision::Error::UnknownServerId) {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            (status, html::headers(), landing_error(&e.public_message())).into_response()
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
