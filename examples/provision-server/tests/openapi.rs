//! The OpenAPI document of the JSON API, fetched through `app()` without a socket: it is
//! OpenAPI 3.1, served without a token, lists every `/api/v1/` route of the router with
//! exactly the methods the router answers, and the problems the API answers with match the
//! document's `Problem` schema.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{Method, Request, StatusCode, header};
use provision_server::backend::Backend;
use provision_server::{AppState, StateBuilder, app};
use secrecy::ExposeSecret;
use serde_json::Value;
use swivel_provision::{Destination, ServerKey, UserEntry, Username};

mod common;
use common::oneshot::{Reply, send};

async fn state() -> AppState {
    let state = StateBuilder::new(Backend::memory(), ServerKey::generate())
        .build()
        .await
        .unwrap();
    let alice = UserEntry::new(Username::parse("alice").unwrap())
        .with_destination(Destination::email("alice@example.com").unwrap());
    state.backend().user_admin.put_user(&alice).await.unwrap();
    state
}

fn client(router: Router) -> Router {
    router.layer(MockConnectInfo(SocketAddr::from(([192, 0, 2, 1], 4000))))
}

fn request(method: Method, uri: &str, auth: Option<&str>, body: &str) -> Request<Body> {
    let mut b = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(a) = auth {
        b = b.header(header::AUTHORIZATION, a);
    }
    b.body(Body::from(body.to_owned())).unwrap()
}

async fn document(app: &Router) -> Value {
    let r = send(app, request(Method::GET, "/api/v1/openapi.json", None, "")).await;
    assert_eq!(r.status, StatusCode::OK, "no token needed: {}", r.body);
    assert_eq!(r.headers[header::CONTENT_TYPE], "application/json");
    serde_json::from_str(&r.body).unwrap()
}

/// The `/api/v1/` paths the router holds, read from its `Debug` output (axum lists the
/// paths of its routes there; nothing else gives them). The nest's own catch-all (the API's
/// `404`) is left out.
fn router_api_paths(router: &Router) -> BTreeSet<String> {
    let debug = format!("{router:?}");
    let paths: BTreeSet<String> = debug
        .split('"')
        .filter(|s| s.starts_with("/api/v1/") && !s.contains("__private__axum"))
        .map(str::to_owned)
        .collect();
    // If axum stops listing paths in its Debug output, say so rather than pass.
    assert!(
        paths.contains("/api/v1/users/{username}"),
        "the router's Debug output no longer lists its paths: {paths:?}"
    );
    paths
}

/// The methods a path answers, from the `Allow` header of a `405` to a method no route
/// has (HEAD left out: it comes with GET).
async fn router_methods(app: &Router, path: &str) -> BTreeSet<String> {
    let uri = path
        .replace("{username}", "alice")
        .replace("{site}", "DEMO");
    let probe = Method::from_bytes(b"PROBE").unwrap();
    let r = send(app, request(probe, &uri, None, "")).await;
    assert_eq!(
        r.status,
        StatusCode::METHOD_NOT_ALLOWED,
        "{path}: {}",
        r.body
    );
    assert_problem(
        &r,
        StatusCode::METHOD_NOT_ALLOWED,
        &problem_schema(&document(app).await),
    );
    r.headers[header::ALLOW]
        .to_str()
        .unwrap()
        .split(',')
        .map(|m| m.trim().to_ascii_lowercase())
        .filter(|m| m != "head")
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_document_is_openapi_3_1_and_lists_every_api_route() {
    let router = app(state().await);
    let paths = router_api_paths(&router);
    let app = client(router);
    let doc = document(&app).await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        doc["openapi"]
    );
    let documented: BTreeSet<String> = doc["paths"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(paths, documented, "router paths vs documented paths");
    assert!(paths.contains("/api/v1/openapi.json"));
    assert!(paths.len() >= 6, "{paths:?}");
    for path in &paths {
        let methods = router_methods(&app, path).await;
        let item = doc["paths"][path].as_object().unwrap();
        let in_doc: BTreeSet<String> = item
            .keys()
            .filter(|k| {
                [
                    "get", "put", "post", "delete", "patch", "head", "options", "trace",
                ]
                .contains(&k.as_str())
            })
            .cloned()
            .collect();
        assert_eq!(methods, in_doc, "{path}: router methods vs documented ones");
        for (method, op) in item {
            let op = op.as_object().unwrap();
            let responses = op["responses"].as_object().unwrap();
            // The document is public; everything else needs the bearer token and says so.
            if path == "/api/v1/openapi.json" {
                assert_eq!(op["security"], serde_json::json!([{}]), "{method} {path}");
            } else {
                assert!(
                    op.get("security").is_none(),
                    "{method} {path}: the global one"
                );
                assert!(responses.contains_key("401"), "{method} {path}");
                assert!(responses.contains_key("400"), "{method} {path}");
            }
        }
    }
    assert_eq!(
        doc["security"],
        serde_json::json!([{ "bearer": [] }]),
        "bearer is needed by default"
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"],
        serde_json::json!({
            "type": "http",
            "scheme": "bearer",
            "description": "The API token (`provision-server api token` or `--api-token-file`)"
        })
    );
    // The reprovision can be refused for going too fast: 429 with Retry-After.
    let too_many = &doc["components"]["responses"]["TooManyRequests"];
    assert!(too_many["headers"]["Retry-After"].is_object(), "{too_many}");
    assert_eq!(
        doc["paths"]["/api/v1/users/{username}/reprovision"]["post"]["responses"]["429"]["$ref"],
        "#/components/responses/TooManyRequests"
    );
}

/// The document's `Problem` schema.
fn problem_schema(doc: &Value) -> Value {
    let schema = doc["components"]["schemas"]["Problem"].clone();
    assert!(schema.is_object(), "no Problem schema");
    schema
}

/// Checks a reply against the `Problem` schema: an object with exactly the listed
/// properties, each of its type, the required ones present, numbers in range; and what
/// RFC 9457 asks of `about:blank`.
fn assert_problem(r: &Reply, status: StatusCode, schema: &Value) {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(
        r.headers[header::CONTENT_TYPE],
        "application/problem+json",
        "{status}"
    );
    let body: Value = serde_json::from_str(&r.body).unwrap();
    let body = body.as_object().unwrap();
    let properties = schema["properties"].as_object().unwrap();
    assert_eq!(schema["type"], "object");
    assert_eq!(schema["additionalProperties"], false);
    for name in schema["required"].as_array().unwrap() {
        assert!(
            body.contains_key(name.as_str().unwrap()),
            "{name} in {body:?}"
        );
    }
    for (name, value) in body {
        let property = &properties
            .get(name)
            .unwrap_or_else(|| panic!("{name} is not in the schema"));
        match property["type"].as_str().unwrap() {
            "string" => assert!(value.is_string(), "{name}: {value}"),
            "integer" => {
                let n = value.as_i64().unwrap_or_else(|| panic!("{name}: {value}"));
                assert!(n >= property["minimum"].as_i64().unwrap_or(i64::MIN));
                assert!(n <= property["maximum"].as_i64().unwrap_or(i64::MAX));
            }
            other => panic!("{name}: unexpected type {other}"),
        }
    }
    assert_eq!(body["type"], "about:blank");
    assert_eq!(body["status"], status.as_u16());
    assert_eq!(body["title"], status.canonical_reason().unwrap());
    assert!(!body["detail"].as_str().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn every_api_error_is_a_problem_matching_its_schema() {
    let state = state().await;
    let token = state.credentials().new_api_token().await.unwrap();
    let auth = format!("Bearer {}", token.expose_secret());
    let app = client(app(state));
    let schema = problem_schema(&document(&app).await);
    let auth = Some(auth.as_str());
    let big = format!(r#"{{"email":"{}"}}"#, "a".repeat(70 * 1024));
    for (method, uri, auth, body, status) in [
        (
            Method::GET,
            "/api/v1/users/alice",
            None,
            "",
            StatusCode::UNAUTHORIZED,
        ),
        (
            Method::GET,
            "/api/v1/users/nobody",
            auth,
            "",
            StatusCode::NOT_FOUND,
        ),
        (
            Method::GET,
            "/api/v1/users/%20",
            auth,
            "",
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::GET,
            "/api/v1/users/%FF",
            auth,
            "",
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::GET,
            "/api/v1/sites/NONE",
            auth,
            "",
            StatusCode::NOT_FOUND,
        ),
        (
            Method::GET,
            "/api/v1/events?limit=0",
            auth,
            "",
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::PUT,
            "/api/v1/users/alice",
            auth,
            "{",
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::PUT,
            "/api/v1/users/alice",
            auth,
            &big,
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            Method::PUT,
            "/api/v1/sites/EDGE",
            auth,
            &big,
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            Method::PATCH,
            "/api/v1/sites/EDGE",
            auth,
            "",
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            Method::DELETE,
            "/api/v1/sites/NONE",
            auth,
            "",
            StatusCode::NOT_FOUND,
        ),
        (
            Method::GET,
            "/api/v1/nothing/here",
            auth,
            "",
            StatusCode::NOT_FOUND,
        ),
        (Method::GET, "/api/v1/", None, "", StatusCode::NOT_FOUND),
    ] {
        let r = send(&app, request(method.clone(), uri, auth, body)).await;
        assert_problem(&r, status, &schema);
        assert!(
            !r.body.contains("aaaa"),
            "{method} {uri}: the body is not echoed"
        );
    }
    let r = send(&app, request(Method::GET, "/api/v1/users/alice", None, "")).await;
    assert_eq!(r.headers[header::WWW_AUTHENTICATE], "Bearer");
    assert_eq!(
        r.headers[header::CACHE_CONTROL],
        "no-store",
        "security headers stay"
    );
}
