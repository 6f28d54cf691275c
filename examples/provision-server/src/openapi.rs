//! The OpenAPI 3.1 document of the JSON API, made from the handlers' descriptions
//! ([`crate::routes::api`]) and the types of their bodies ([`crate::api_json`],
//! [`crate::problem`]) by `utoipa`, and served at `GET /api/v1/openapi.json` (no token
//! needed: it holds nothing secret).
//!
//! Every operation but the document itself needs the `bearer` security scheme
//! (`Authorization: Bearer <token>`); every error is a [`Problem`]
//! (`application/problem+json`), described once here as a named response.

use std::sync::LazyLock;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, HeaderBuilder, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

use crate::problem::{PROBLEM_JSON, Problem};

/// Where the document is served.
pub const DOCUMENT_PATH: &str = "/api/v1/openapi.json";

/// Named error responses (`#/components/responses/...`): each a [`Problem`] with the
/// headers that come with it.
macro_rules! problem_responses {
    ($($(#[$doc:meta])* $name:ident: $description:literal $(, $header:literal: $header_doc:literal)?;)*) => {
        $(
            $(#[$doc])*
            #[derive(Debug)]
            pub struct $name;

            impl<'r> utoipa::ToResponse<'r> for $name {
                fn response() -> (&'r str, RefOr<utoipa::openapi::response::Response>) {
                    let content = ContentBuilder::new()
                        .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                            Problem::name(),
                        ))))
                        .build();
                    #[allow(unused_mut)]
                    let mut response = ResponseBuilder::new()
                        .description($description)
                        .content(PROBLEM_JSON, content);
                    $(
                        response = response.header(
                            $header,
                            HeaderBuilder::new()
                                .schema(Some(String::schema()))
                                .description(Some($header_doc))
                                .build(),
                        );
                    )?
                    (stringify!($name), RefOr::T(response.build()))
                }
            }
        )*
    };
}

problem_responses! {
    /// `400`: the request is not valid (the detail says what).
    BadRequest: "The request is not valid (the detail says what)";
    /// `401`: no token, or a wrong one.
    Unauthorized: "No bearer token, or a wrong one",
        "WWW-Authenticate": "`Bearer`";
    /// `404`: no such user or site.
    NotFound: "No such user or site";
    /// `413`: the body is larger than 64 KiB.
    TooLarge: "The request body is larger than 64 KiB";
    /// `423`: the account is locked after too many failures.
    Locked: "The account is locked after too many failed attempts (unlock it first)";
    /// `429`: too many requests; try again later. An address past its allowance of wrong
    /// tokens gets it on every route; `reprovision` also when the core's rate limit says so.
    TooManyRequests: "Too many requests; try again after Retry-After seconds",
        "Retry-After": "Seconds until a new request is accepted";
    /// `500`: a server error (no detail).
    ServerError: "A server error (no detail is given)";
    /// `503`: the store is busy or unreachable; try again.
    Unavailable: "The store is busy or unreachable; try again";
}

/// The document: every API operation, the schemas of their bodies, the bearer scheme.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "provision-server JSON API",
        description = "The administrator API of the swivel-provision example server. Every \
            operation but this document needs `Authorization: Bearer <token>` (a token from \
            `provision-server api token` or `--api-token-file`). Errors are \
            `application/problem+json` (RFC 9457) with `type` `about:blank`.",
    ),
    paths(
        document,
        crate::routes::api::user,
        crate::routes::api::save_user,
        crate::routes::api::reprovision,
        crate::routes::api::unlock,
        crate::routes::api::revoke,
        crate::routes::api::cancel,
        crate::routes::api::delete_user,
        crate::routes::api::users,
        crate::routes::api::sites,
        crate::routes::api::site,
        crate::routes::api::save_site,
        crate::routes::api::delete_site,
        crate::routes::api::policy,
        crate::routes::api::save_policy,
        crate::routes::api::events,
    ),
    components(
        schemas(Problem),
        responses(
            BadRequest, Unauthorized, NotFound, TooLarge, Locked, TooManyRequests, ServerError,
            Unavailable
        )
    ),
    modifiers(&BearerScheme),
    security(("bearer" = [])),
    tags(
        (name = "users", description = "Users and their provisioning"),
        (name = "sites", description = "What server settings discovery answers"),
        (name = "policy", description = "The provisioning policy"),
        (name = "events", description = "The shared event log"),
        (name = "meta", description = "This document"),
    )
)]
pub struct ApiDoc;

/// Adds the `bearer` security scheme.
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The API token (`provision-server api token` or `--api-token-file`)",
                    ))
                    .build(),
            ),
        );
    }
}

/// The document as JSON, made once.
static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    ApiDoc::openapi()
        .to_pretty_json()
        .expect("the OpenAPI document serializes")
});

/// `GET /api/v1/openapi.json`: this document (no token needed).
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "meta",
    summary = "This OpenAPI 3.1 document",
    security(()),
    responses(
        (status = 200, description = "The document", body = Object, content_type = "application/json"),
    )
)]
pub async fn document() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        DOCUMENT.as_str(),
    )
        .into_response()
}
