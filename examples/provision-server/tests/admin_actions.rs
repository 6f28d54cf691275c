//! The administrator actions added beside the users pages: Cancel pending code, delete a
//! site, change the console password; each one's console, API and command-line twin; the
//! event naming the administrator; and the Log's filters by kind and time.

use std::process::Command;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use secrecy::ExposeSecret;
use swivel_provision::{EventQuery, EventStore, Origin, ProvisionEvent, SiteId, Username};

mod common;
use common::SERVER;
use common::fixture::{Fixture, detail, fixture, json};
use common::oneshot::{Reply, send};

fn name(s: &str) -> Username {
    Username::parse(s).unwrap()
}

async fn api(f: &Fixture, method: &str, uri: &str) -> Reply {
    let token = f.state.credentials().new_api_token().await.unwrap();
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header(
            header::AUTHORIZATION,
            format!("Bearer {}", token.expose_secret()),
        )
        .body(Body::empty())
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
    let run = |args: &[&str]| {
        let out = Command::new(SERVER)
            .arg("--data-dir")
            .arg(&data)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
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
