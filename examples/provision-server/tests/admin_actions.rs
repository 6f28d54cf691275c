//! The administrator actions added beside the users pages: Cancel pending code, delete a
//! site, change the console password; each one's console, API and command-line twin; the
//! event naming the administrator; and the Log's filters by kind and time.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use secrecy::ExposeSecret;
use swivel_provision::{EventQuery, EventStore, Origin, ProvisionEvent, SiteId, Username};

mod common;
use common::fixture::{
    Fixture, PASSWORD, between, console_login, detail, fixture, get, json, post_form,
};
use common::oneshot::{Reply, send};
use common::run_cli;

fn name(s: &str) -> Username {
    Username::parse(s).unwrap()
}

async fn api(f: &Fixture, method: &str, uri: &str) -> Reply {
    api_json_body(f, method, uri, "").await
}

/// An API call with the bearer token and `body` as JSON.
async fn api_json_body(f: &Fixture, method: &str, uri: &str, body: &str) -> Reply {
    let token = f.state.credentials().new_api_token().await.unwrap();
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header(
            header::AUTHORIZATION,
            format!("Bearer {}", token.expose_secret()),
        )
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap();
    send(&f.app, req).await
}

/// The lines of the shared event log of `kind`, newest first.
async fn lines_of_kind(f: &Fixture, kind: &str) -> Vec<String> {
    f.state
        .flush_events(std::time::Duration::from_secs(5))
        .await;
    let query = EventQuery {
        kind: Some(kind.to_owned()),
        ..EventQuery::newest(100)
    };
    f.state
        .backend()
        .events
        .list(&query)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.line)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_cancels_a_pending_code_and_keeps_the_device() {
    let f = fixture().await;
    let p = f.state.provisioner();
    p.request_provision(&name("alice"), Origin::Admin)
        .await
        .unwrap();
    let code = f.outbox.last_code_for(&name("alice")).unwrap();
    let id = p
        .redeem(&name("alice"), &code, Default::default())
        .await
        .unwrap();
    p.request_provision(&name("alice"), Origin::Admin)
        .await
        .unwrap();
    let second = f.outbox.last_code_for(&name("alice")).unwrap();

    let r = api(&f, "POST", "/api/v1/users/alice/cancel").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        json(&r),
        serde_json::json!({"username": "alice", "cancelled": true})
    );
    assert!(
        p.redeem(&name("alice"), &second, Default::default())
            .await
            .is_err(),
        "the cancelled code does not redeem"
    );
    assert!(
        p.download_strings(&id).await.is_ok(),
        "the device keeps working"
    );
    let r = api(&f, "POST", "/api/v1/users/alice/cancel").await;
    assert_eq!(
        json(&r),
        serde_json::json!({"username": "alice", "cancelled": false})
    );
    let r = api(&f, "POST", "/api/v1/users/nobody/cancel").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(detail(&r), "Invalid Username");

    assert_eq!(
        lines_of_kind(&f, "code_cancelled").await,
        ["Provision code of user \"alice\" cancelled"]
    );
    assert_eq!(
        lines_of_kind(&f, "administrator_action").await,
        [
            "Administrator api: cancel_code, user \"alice\"",
            "Administrator api: cancel_code, user \"alice\""
        ],
        "each cancel names the administrator, whether or not there was a code"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_deletes_a_site_once() {
    let f = fixture().await;
    let r = api(&f, "DELETE", "/api/v1/sites/DEMO").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        json(&r),
        serde_json::json!({"site": "DEMO", "deleted": true})
    );
    assert!(
        f.state
            .backend()
            .sites
            .find_site(&SiteId::parse("DEMO").unwrap())
            .await
            .unwrap()
            .is_none()
    );
    let r = api(&f, "DELETE", "/api/v1/sites/DEMO").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = api(&f, "DELETE", "/api/v1/sites/bad%20id").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        lines_of_kind(&f, "administrator_action").await,
        ["Administrator api: delete_site, site \"DEMO\""]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_events_api_filters_by_kind_and_time() {
    let f = fixture().await;
    let p = f.state.provisioner();
    for user in ["alice", "carol"] {
        let _ = p.request_provision(&name(user), Origin::Admin).await;
    }
    let _ = api(&f, "POST", "/api/v1/users/alice/revoke").await;
    let r = api(&f, "GET", "/api/v1/events?kind=administrator_action").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v = json(&r);
    let events = v["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{v}");
    assert_eq!(events[0]["kind"], "administrator_action");
    assert_eq!(events[0]["username"], "alice");
    assert_eq!(
        events[0]["line"],
        "Administrator api: revoke, user \"alice\""
    );
    let r = api(&f, "GET", "/api/v1/events?kind=code_created&user=carol").await;
    let v = json(&r);
    assert_eq!(v["events"].as_array().unwrap().len(), 1, "{v}");
    // Every event so far happened before now plus a minute, none before 2001.
    let r = api(&f, "GET", "/api/v1/events?until=2001-01-01T00:00:00Z").await;
    assert_eq!(json(&r)["events"].as_array().unwrap().len(), 0);
    let r = api(&f, "GET", "/api/v1/events?until=2999-01-01T00:00:00Z").await;
    assert!(json(&r)["events"].as_array().unwrap().len() >= 4);
    let r = api(&f, "GET", "/api/v1/events?kind=code_stolen").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let d = detail(&r);
    assert!(d.contains("not an event kind") && d.contains("administrator_action"));
    for kind in ProvisionEvent::KINDS {
        let r = api(&f, "GET", &format!("/api/v1/events?kind={kind}")).await;
        assert_eq!(r.status, StatusCode::OK, "{kind}");
    }
}

#[test]
fn the_command_line_cancels_codes_and_deletes_sites_and_the_log_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let run = |args: &[&str]| run_cli(&data, args);
    let (ok, _, err) = run(&["users", "add", "bob", "--email", "bob@example.com"]);
    assert!(ok, "{err}");
    let (ok, _, err) = run(&["reprovision", "bob"]);
    assert!(ok, "{err}");
    let (ok, out, err) = run(&["users", "cancel", "bob"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("The pending provision code of user \"bob\" was cancelled."),
        "{out}"
    );
    let (ok, out, _) = run(&["users", "cancel", "bob"]);
    assert!(
        ok && out.contains("User \"bob\" had no pending code."),
        "{out}"
    );
    let (ok, _, err) = run(&["users", "cancel", "nobody"]);
    assert!(!ok && err.contains("Invalid Username"), "{err}");

    let (ok, _, err) = run(&["sites", "add", "EDGE", "--hostname", "edge.example.com"]);
    assert!(ok, "{err}");
    let (ok, out, err) = run(&["sites", "delete", "EDGE"]);
    assert!(ok && out.contains("Site EDGE deleted."), "{out}{err}");
    let (ok, _, err) = run(&["sites", "delete", "EDGE"]);
    assert!(!ok, "a second delete fails: {err}");
    let (_, out, _) = run(&["sites", "list"]);
    assert!(!out.contains("EDGE"), "{out}");

    // The shared event log (the SQLite file) names the command line as the administrator.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let lines: Vec<String> = rt.block_on(async {
        let store = swivel_provision_sqlite::SqliteStore::open(data.join("provision.sqlite"))
            .await
            .unwrap();
        let query = EventQuery {
            kind: Some("administrator_action".into()),
            ..EventQuery::newest(100)
        };
        store
            .list(&query)
            .await
            .unwrap()
            .into_iter()
            .rev()
            .map(|e| e.line)
            .collect()
    });
    assert_eq!(
        lines,
        [
            "Administrator cli: save_user, user \"bob\"",
            "Administrator cli: reprovision, user \"bob\"",
            "Administrator cli: cancel_code, user \"bob\"",
            "Administrator cli: cancel_code, user \"bob\"",
            "Administrator cli: save_site, site \"EDGE\"",
            "Administrator cli: delete_site, site \"EDGE\"",
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_cancels_a_pending_code_and_names_the_administrator() {
    let f = fixture().await;
    let (cookie, csrf) = console_login(&f.app).await;
    let page = get(&f.app, "/admin/users/alice", Some(&cookie)).await;
    assert!(!page.body.contains("id=\"cancel\""), "no code, no Cancel");
    f.state
        .provisioner()
        .request_provision(&name("alice"), Origin::Admin)
        .await
        .unwrap();
    let page = get(&f.app, "/admin/users/alice", Some(&cookie)).await;
    assert!(page.body.contains("Cancel pending code"), "{}", page.body);

    let r = post_form(&f.app, "/admin/users/alice/cancel", &[], Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "no CSRF token, no cancel");
    assert!(
        f.state
            .provisioner()
            .status(&name("alice"))
            .await
            .unwrap()
            .pending
            .is_some()
    );

    let r = post_form(
        &f.app,
        "/admin/users/alice/cancel",
        &[("csrf", &csrf)],
        Some(&cookie),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(
        r.body
            .contains("The pending provision code of user &quot;alice&quot; was cancelled."),
        "{}",
        r.body
    );
    assert_eq!(between(&r.body, "<td id=\"pending\">", "<"), Some("none"));
    assert_eq!(
        lines_of_kind(&f, "administrator_action").await,
        ["Administrator console (192.0.2.1): cancel_code, user \"alice\""]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_deletes_a_site() {
    let f = fixture().await;
    let (cookie, csrf) = console_login(&f.app).await;
    let page = get(&f.app, "/admin/sites", Some(&cookie)).await;
    assert!(page.body.contains("id=\"delete-DEMO\""), "{}", page.body);
    let r = post_form(
        &f.app,
        "/admin/sites/delete",
        &[("site", "DEMO")],
        Some(&cookie),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "no CSRF token, no delete");
    let r = post_form(
        &f.app,
        "/admin/sites/delete",
        &[("csrf", &csrf), ("site", "DEMO")],
        Some(&cookie),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("Site DEMO deleted."), "{}", r.body);
    assert!(!r.body.contains("id=\"delete-DEMO\""), "no longer listed");
    let r = post_form(
        &f.app,
        "/admin/sites/delete",
        &[("csrf", &csrf), ("site", "DEMO")],
        Some(&cookie),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    assert!(r.body.contains("class=\"error\""), "{}", r.body);
    assert_eq!(
        lines_of_kind(&f, "administrator_action").await,
        ["Administrator console (192.0.2.1): delete_site, site \"DEMO\""]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_changes_its_password_and_ends_every_other_session() {
    let f = fixture().await;
    let (cookie, csrf) = console_login(&f.app).await;
    let (other, _) = console_login(&f.app).await;
    let new = "a brand new console password";
    let change = |current: &'static str, new: &'static str, confirm: &'static str| {
        let (app, cookie, csrf) = (f.app.clone(), cookie.clone(), csrf.clone());
        async move {
            post_form(
                &app,
                "/admin/password",
                &[
                    ("csrf", &csrf),
                    ("current", current),
                    ("new", new),
                    ("confirm", confirm),
                ],
                Some(&cookie),
            )
            .await
        }
    };
    let r = change("not the password", new, new).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body
            .contains("Not changed: the current password is not right."),
        "{}",
        r.body
    );
    let r = change(PASSWORD, new, "something else entirely").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body.contains("The new passwords do not match"),
        "{}",
        r.body
    );
    let r = change(PASSWORD, "short", "short").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("at least 12 characters"), "{}", r.body);
    assert!(
        f.state
            .credentials()
            .check_password(PASSWORD)
            .await
            .unwrap(),
        "nothing changed"
    );
    assert!(
        !r.body.contains(PASSWORD) && !r.body.contains("short\""),
        "no password echoed"
    );

    let r = change(PASSWORD, new, new).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("Console password changed."), "{}", r.body);
    assert!(f.state.credentials().check_password(new).await.unwrap());
    assert!(
        !f.state
            .credentials()
            .check_password(PASSWORD)
            .await
            .unwrap()
    );
    let fresh = r.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert_ne!(fresh, cookie);
    for old in [&cookie, &other] {
        let r = get(&f.app, "/admin/users", Some(old)).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "an old session has ended");
    }
    let r = get(&f.app, "/admin/users", Some(&fresh)).await;
    assert_eq!(r.status, StatusCode::OK, "this administrator goes on");
    assert_eq!(
        lines_of_kind(&f, "administrator_action").await,
        ["Administrator console (192.0.2.1): console_password"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_log_page_filters_by_kind_and_time_and_pages_with_its_filters() {
    let f = fixture().await;
    for _ in 0..55 {
        let _ = api(&f, "POST", "/api/v1/users/alice/cancel").await;
    }
    f.state
        .provisioner()
        .request_provision(&name("carol"), Origin::Admin)
        .await
        .unwrap();
    let (cookie, _) = console_login(&f.app).await;
    let page = get(
        &f.app,
        "/admin/log?kind=administrator_action",
        Some(&cookie),
    )
    .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(
        page.body.matches("Administrator api: cancel_code").count(),
        50
    );
    assert!(
        !page.body.contains("Provision code created"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("<option value=\"administrator_action\" selected>"),
        "the filter is shown: {}",
        page.body
    );
    let older = between(&page.body, "id=\"older\" href=\"", "\"")
        .expect("an Older link")
        .replace("&amp;", "&");
    assert!(older.contains("kind=administrator_action"), "{older}");
    let page = get(&f.app, &older, Some(&cookie)).await;
    assert_eq!(
        page.body.matches("Administrator api: cancel_code").count(),
        5
    );
    assert!(!page.body.contains("Provision code created"));

    let page = get(&f.app, "/admin/log?kind=code_created", Some(&cookie)).await;
    assert!(
        page.body
            .contains("Provision code created for user &quot;carol&quot;")
    );
    let page = get(&f.app, "/admin/log?until=2001-01-01T00%3A00", Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("Administrator"), "nothing before 2001");
    let page = get(&f.app, "/admin/log?kind=nonsense", Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("not an event kind"), "{}", page.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_lists_sites_and_reads_and_changes_the_policy() {
    let f = fixture().await;
    let r = api(&f, "GET", "/api/v1/sites").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v = json(&r);
    assert_eq!(v["sites"][0]["site"], "DEMO", "{v}");
    assert_eq!(v["sites"].as_array().unwrap().len(), 1);

    let r = api(&f, "GET", "/api/v1/policy").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v = json(&r);
    assert_eq!(v["validity_secs"], "600", "{v}");
    assert_eq!(
        v.as_object().unwrap().len(),
        swivel_provision::Policy::KEYS.len()
    );

    let r = api_json_body(
        &f,
        "PUT",
        "/api/v1/policy",
        r#"{"validity_secs": "900", "max_attempts": "3"}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(json(&r)["validity_secs"], "900");
    let policy = f.state.provisioner().policy();
    assert_eq!((policy.validity_secs(), policy.max_attempts()), (900, 3));

    // One refused value: nothing changes, and every refusal is named.
    let r = api_json_body(
        &f,
        "PUT",
        "/api/v1/policy",
        r#"{"validity_secs": "5", "max_attempts": "4", "colour": "red"}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let d = detail(&r);
    assert!(d.contains("\"colour\" is not a setting"), "{d}");
    assert!(d.contains("10"), "the validity's range is named: {d}");
    let policy = f.state.provisioner().policy();
    assert_eq!((policy.validity_secs(), policy.max_attempts()), (900, 3));
    for body in ["{", r#"{"validity_secs": 600}"#, "[]"] {
        let r = api_json_body(&f, "PUT", "/api/v1/policy", body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(!detail(&r).is_empty());
    }
    assert_eq!(
        lines_of_kind(&f, "administrator_action").await,
        ["Administrator api: save_policy"],
        "only the change that was saved is logged"
    );
}
