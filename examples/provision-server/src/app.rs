//! The router: every route of the server, and the 64 KiB request body limit.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::Redirect;
use axum::routing::{get, post};

use crate::routes::{admin, agentxml, api, landing, login, selfservice, ssd, tokenindex};
use crate::state::AppState;

/// Largest request body accepted (larger ones get `413 Payload Too Large`).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The whole application. Tests drive it without a socket
/// (`tower::ServiceExt::oneshot`).
pub fn app(state: AppState) -> Router {
    device_routes(Router::new())
        .route("/", get(landing::home))
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
        .route("/admin/users", get(admin::users))
        .route("/admin/reprovision", post(admin::reprovision))
        .route("/admin/policy", get(admin::policy).post(admin::save_policy))
        .route("/admin/log", get(admin::log))
        .route("/api/v1/users/{username}", get(api::user))
        .route(
            "/api/v1/users/{username}/reprovision",
            post(api::reprovision),
        )
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// `/{context}/AgentXML` and `/{context}/TokenIndex` for every context a site may advertise
/// ([`swivel_provision::CONTEXTS`]).
fn device_routes(mut router: Router<AppState>) -> Router<AppState> {
    for context in swivel_provision::CONTEXTS {
        router = router
            .route(&format!("/{context}/AgentXML"), post(agentxml::handle))
            .route(&format!("/{context}/TokenIndex"), get(tokenindex::handle));
    }
    router
}
