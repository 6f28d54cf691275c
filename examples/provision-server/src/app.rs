//! The router: every route of the server, the 64 KiB request body limit, the request
//! timeout, and the security headers on every answer (the framework's own rejections
//! included). Every error answer under `/api/v1/` is a problem ([`crate::problem`]).

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::Redirect;
use axum::routing::{get, post};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;

use crate::routes::{
    admin, agentxml, api, health, landing, login, metrics, password, selfservice, sites, ssd,
    tokenindex, users,
};
use crate::state::AppState;
use crate::{openapi, problem};

/// Largest request body accepted (larger ones get `413 Payload Too Large`).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The whole application. Tests drive it without a socket
/// (`tower::ServiceExt::oneshot`).
pub fn app(state: AppState) -> Router {
    let timeout =
        TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, state.request_timeout());
    // The device endpoints: every rejection (413, 408, 405, ...) becomes a `SASResponse`.
    let devices = agentxml_routes()
        .layer(timeout)
        .layer(axum::middleware::map_response(agentxml::as_sas_response));
    // The JSON API: every error (unknown path, 405, 408, ...) becomes a problem.
    let api = Router::new()
        .nest("/api/v1", api_routes())
        .layer(timeout)
        .layer(axum::middleware::map_response(problem::as_problem));
    let router = token_index_routes(Router::new())
        .route("/", get(landing::home))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/ssdserver/getServerDetails", get(ssd::handle))
        .route(
            "/reset/provision",
            get(selfservice::show).post(selfservice::submit),
        )
        .route(
            "/reset/provision.jsp",
            get(selfservice::show).post(selfservice::submit),
        )
        .route("/smc/provision/", get(landing::provision))
        .route("/smc/getsettings/", get(landing::getsettings))
        .route("/smc/complete/", get(landing::complete))
        .route("/login", get(login::show).post(login::submit))
        .route("/admin", get(|| async { Redirect::to("/admin/") }))
        .route("/admin/", get(admin::index))
        .route("/admin/login", get(admin::login_form).post(admin::login))
        .route("/admin/logout", post(admin::logout))
        .route("/admin/users", get(users::users).post(users::add))
        .route("/admin/users/{username}", get(users::user))
        .route(
            "/admin/users/{username}/reprovision",
            post(users::user_button),
        )
        .route("/admin/users/{username}/revoke", post(users::user_button))
        .route("/admin/users/{username}/cancel", post(users::user_button))
        .route("/admin/users/{username}/unlock", post(users::user_button))
        .route("/admin/users/{username}/edit", post(users::edit))
        .route(
            "/admin/users/{username}/delete",
            get(users::confirm_delete).post(users::delete),
        )
        .route("/admin/reprovision", post(users::reprovision))
        .route("/admin/unlock", post(users::unlock))
        .route("/admin/policy", get(admin::policy).post(admin::save_policy))
        .route("/admin/sites", get(sites::sites).post(sites::save))
        .route("/admin/sites/delete", post(sites::delete))
        .route(
            "/admin/password",
            get(password::show).post(password::change),
        )
        .route("/admin/log", get(admin::log));
    let router = if state.metrics_endpoint().enabled {
        router.route("/metrics", get(metrics::handle))
    } else {
        router
    };
    // Every answer is counted and timed under its route template (`swivel_http_*`).
    let router = router
        .layer(timeout)
        .merge(devices)
        .merge(api)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::metrics::http::track,
        ));
    let hsts = state.secure_cookies();
    let mut router = with_security_headers(router.with_state(state));
    if hsts {
        router = router.layer(SetResponseHeaderLayer::if_not_present(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        ));
    }
    router
}

/// The headers every answer carries unless its handler set them: no caching (pages and
/// answers may hold codes), no referrer (URLs may hold codes), no framing, no sniffing, and
/// a strict content security policy.
pub fn security_headers() -> [(HeaderName, HeaderValue); 5] {
    [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(crate::html::CSP),
        ),
    ]
}

fn with_security_headers(mut router: Router) -> Router {
    for (name, value) in security_headers() {
        router = router.layer(SetResponseHeaderLayer::if_not_present(name, value));
    }
    router
}

/// The JSON API, to nest at `/api/v1`: each route documented in the OpenAPI document
/// ([`crate::openapi::ApiDoc`]; `tests/openapi.rs` checks that none is missing), and a
/// `404` problem for any other path.
fn api_routes() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(openapi::document))
        .route("/users", get(api::users))
        .route(
            "/users/{username}",
            get(api::user).put(api::save_user).delete(api::delete_user),
        )
        .route("/users/{username}/revoke", post(api::revoke))
        .route("/users/{username}/cancel", post(api::cancel))
        .route("/users/{username}/reprovision", post(api::reprovision))
        .route("/users/{username}/unlock", post(api::unlock))
        .route("/sites", get(api::sites))
        .route("/policy", get(api::policy).put(api::save_policy))
        .route(
            "/sites/{site}",
            get(api::site).put(api::save_site).delete(api::delete_site),
        )
        .route("/events", get(api::events))
        .fallback(problem::not_found)
}

/// `/{context}/AgentXML` for every context a site may advertise
/// ([`swivel_provision::CONTEXTS`]).
fn agentxml_routes() -> Router<AppState> {
    let mut router = Router::new();
    for context in swivel_provision::CONTEXTS {
        router = router.route(&format!("/{context}/AgentXML"), post(agentxml::handle));
    }
    router
}

/// `/{context}/TokenIndex` for every context of [`swivel_provision::CONTEXTS`].
fn token_index_routes(mut router: Router<AppState>) -> Router<AppState> {
    for context in swivel_provision::CONTEXTS {
        router = router.route(&format!("/{context}/TokenIndex"), get(tokenindex::handle));
    }
    router
}
