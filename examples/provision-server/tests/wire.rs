//! Swivel wire compatibility, as a real client meets it: AgentXML and TokenIndex on every
//! served context, SSD flags as `YES`/`NO`, `sites add` refusing contexts that are not
//! served, and the mobile client provisioning through a `proxy` Site ID over the server's
//! own TLS.

mod common;

use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use provision_server::backend::Backend;
use provision_server::{AppState, StateBuilder, app};
use swivel_provision::testing::{ManualClock, RecordingTransport};
use swivel_provision::{
    CONTEXTS, Channel, Delivery, Destination, Origin, ServerKey, ServerSettings, SiteId, UserEntry,
    Username,
};
use tower::ServiceExt;

use common::{ServerProcess, latest_code, mobile, pki::TestPki};

struct Fixture {
    state: AppState,
    app: Router,
    outbox: Arc<RecordingTransport>,
}

async fn fixture() -> Fixture {
    let store = swivel_provision_sqlite::SqliteStore::open_in_memory()
        .await
        .unwrap();
    let outbox = Arc::new(RecordingTransport::new());
    let state = StateBuilder::new(
        Backend::from_store(store, "sqlite::memory:"),
        ServerKey::generate(),
    )
    .transport(Channel::Email, outbox.clone())
    .clock(Arc::new(ManualClock::fixed()))
    .delivery(Delivery::Direct)
    .public_url("https://provision.test")
    .build()
    .await
    .unwrap();
    let b = state.backend();
    for (name, email) in [("alice", Some("alice@example.com")), ("dave", None)] {
        let mut entry = UserEntry::new(user(name)).with_mobile_group(true);
        if let Some(e) = email {
            entry = entry.with_destination(Destination::email(e).unwrap());
        }
        b.user_admin.put_user(&entry).await.unwrap();
    }
    b.site_admin
        .put_site(
            &SiteId::parse("EDGE").unwrap(),
            &ServerSettings {
                hostname: "provision.test".into(),
                port: 8443,
                connection_type: "proxy".into(),
                using_ssl: true,
                push_support: true,
                local: false,
                pin: false,
                oath: true,
            },
        )
        .await
        .unwrap();
    Fixture {
        app: app(state.clone()),
        state,
        outbox,
    }
}

fn user(name: &str) -> Username {
    Username::parse(name).unwrap()
}

async fn send(app: &Router, req: Request<Body>) -> (StatusCode, String, String) {
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let content_type = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 22)
        .await
        .unwrap();
    (
        status,
        content_type,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

async fn get(app: &Router, uri: &str) -> (StatusCode, String, String) {
    send(app, Request::get(uri).body(Body::empty()).unwrap()).await
}

async fn post_xml(app: &Router, uri: &str, xml: String) -> (StatusCode, String) {
    let (status, _, body) = send(
        app,
        Request::post(uri)
            .header(header::CONTENT_TYPE, "text/xml")
            .body(Body::from(xml))
            .unwrap(),
    )
    .await;
    (status, body)
}

#[tokio::test(flavor = "multi_thread")]
async fn agentxml_answers_on_every_served_context() {
    let f = fixture().await;
    for context in CONTEXTS {
        let (status, body) = post_xml(
            &f.app,
            &format!("/{context}/AgentXML"),
            "<ns:SASRequest xmlns:ns=\"urn:swivel\"><ns:Action>ping</ns:Action><ns:RequestId>q-1</ns:RequestId></ns:SASRequest>".into(),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{context}");
        assert!(
            body.contains("<Result>PASS</Result>") && body.contains("<RequestId>q-1</RequestId>"),
            "{context}: {body}"
        );
    }
    let (status, _) = post_xml(&f.app, "/custom/AgentXML", "<SASRequest/>".into()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A full provision on /proxy keeps the PushId with the device.
    f.state
        .provisioner()
        .request_provision(&user("alice"), Origin::Admin)
        .await
        .unwrap();
    let code = f.outbox.last_code_for(&user("alice")).unwrap();
    let (_, body) = post_xml(
        &f.app,
        "/proxy/AgentXML",
        format!(
            "<SASRequest><Version>3.6</Version><Action>provision</Action><Username>alice</Username>\
             <ProvisionCode>{}</ProvisionCode><DeviceOS>iOS 18</DeviceOS><PushId>apns-77</PushId>\
             <RequestID>q-2</RequestID></SASRequest>",
            code.expose()
        ),
    )
    .await;
    assert!(
        body.contains("<RequestID>q-2</RequestID><Result>PASS</Result><Id>"),
        "{body}"
    );
    let info = f
        .state
        .provisioner()
        .status(&user("alice"))
        .await
        .unwrap()
        .device
        .unwrap()
        .info
        .unwrap();
    assert_eq!(info.push_id.as_deref(), Some("apns-77"));
    assert_eq!(
        info.os, None,
        "device details only when the policy logs them"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_many_attribute_body_is_refused_as_malformed() {
    let f = fixture().await;
    let body = swivel_provision::testing::many_attributes_request();
    let (status, reply) =
        post_xml(&f.app, "/proxy/AgentXML", String::from_utf8(body).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        reply.contains("<Result>FAIL</Result><Error>Malformed request</Error>"),
        "{reply}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn token_index_answers_the_same_shape_for_everyone() {
    let f = fixture().await;
    let p = f.state.provisioner();
    p.request_provision(&user("alice"), Origin::Admin)
        .await
        .unwrap();
    let code = f.outbox.last_code_for(&user("alice")).unwrap();
    let id = p
        .redeem(&user("alice"), &code, Default::default())
        .await
        .unwrap();
    p.download_strings(&id).await.unwrap();

    for context in CONTEXTS {
        let (status, content_type, body) =
            get(&f.app, &format!("/{context}/TokenIndex?username=alice")).await;
        assert_eq!(status, StatusCode::OK, "{context}");
        assert!(content_type.starts_with("text/plain"), "{content_type}");
        assert_eq!(body, "1", "{context}");
    }
    // dave has no device, nobody does not exist, and a missing username is still answered:
    // each with a plain index 1-99, stable from one call to the next.
    for query in ["username=dave", "username=nobody", "username=", ""] {
        let uri = format!("/proxy/TokenIndex?{query}");
        let (status, content_type, body) = get(&f.app, &uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        assert!(content_type.starts_with("text/plain"), "{uri}");
        let index: u8 = body.parse().unwrap_or_else(|_| panic!("{uri}: {body:?}"));
        assert!((1..=99).contains(&index), "{uri}: {index}");
        assert_eq!(get(&f.app, &uri).await.2, body, "{uri}");
    }

    let mut off = p.policy();
    off.token_index = false;
    p.set_policy(off).unwrap();
    let (status, _, _) = get(&f.app, "/proxy/TokenIndex?username=alice").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread")]
async fn ssd_flags_are_yes_and_no() {
    let f = fixture().await;
    let (status, _, body) = get(&f.app, "/ssdserver/getServerDetails?id=EDGE").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.contains(
            "<connectionType>proxy</connectionType><usingSSL>YES</usingSSL>\
             <pushSupport>YES</pushSupport><local>NO</local><pin>NO</pin><oath>YES</oath>"
        ),
        "{body}"
    );
}

// ---------------------------------------------------------------------------------------
// With the real binaries
// ---------------------------------------------------------------------------------------

/// Posts a one-time code to `/login` over TLS, trusting only the test CA.
fn login(server: &str, ca: &Path, user: &str, otc: &str) -> String {
    let client = mobile_client::device::http_client(Some(ca)).unwrap();
    common::login_with(client, server, user, otc)
}

#[test]
fn mobile_client_provisions_through_a_proxy_site_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::generate(dir.path());
    let data = dir.path().join("data");
    let (cert, key) = (
        pki.leaf_cert.display().to_string(),
        pki.leaf_key.display().to_string(),
    );
    let server = ServerProcess::start_with(&data, &["--tls-cert", &cert, "--tls-key", &key]);
    assert!(
        server.url.starts_with("https://127.0.0.1:"),
        "{}",
        server.url
    );
    let port = server.url.rsplit(':').next().unwrap().to_owned();

    // A context the server does not serve is refused with a clear error.
    let out = server.command(&["sites", "add", "ODD", "--context", "custom"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("pinsafe, sentry or proxy"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = server.command(&[
        "sites",
        "add",
        "EDGE",
        "--hostname",
        "localhost",
        "--port",
        &port,
        "--context",
        "proxy",
        "--ssl",
        "--push-support",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        printed.contains(&format!(
            "https://localhost:{port}/proxy usingSSL=YES pushSupport=YES"
        )),
        "{printed}"
    );
    let out = server.command(&["reprovision", "alice"]);
    assert!(out.status.success());
    let (code, _) = latest_code(&data, "alice");

    let ca = pki.ca_cert.display().to_string();
    let phone = dir.path().join("phone.json");
    let (ok, stdout, stderr) = mobile(
        &phone,
        &[
            "--ca-cert",
            &ca,
            "provision",
            "--site",
            "EDGE",
            "--ssd",
            &server.url,
            "--user",
            "alice",
            "--code",
            &code,
            "--push-id",
            "push-e2e",
        ],
    );
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("Device Provisioned"), "{stdout}");
    let saved = std::fs::read_to_string(&phone).unwrap();
    assert!(
        saved.contains(&format!("https://localhost:{port}/proxy/AgentXML")),
        "the client follows the SSD answer: {saved}"
    );
    server.wait_for_output("User \"alice\" provisioned successfully");

    let (ok, stdout, stderr) = mobile(&phone, &["--ca-cert", &ca, "sync"]);
    assert!(ok, "{stderr}");
    assert_eq!(stdout.trim(), "Next index 01");

    let (ok, otc, stderr) = mobile(&phone, &["otc", "--pin", "1234"]);
    assert!(ok, "{stderr}");
    let otc = otc.trim().to_owned();
    let origin = format!("https://localhost:{port}");
    assert!(
        login(&origin, &pki.ca_cert, "alice", &otc).contains("Login successful. Welcome, alice.")
    );
    assert!(login(&origin, &pki.ca_cert, "alice", &otc).contains("Login failed"));
    let (ok, stdout, _) = mobile(&phone, &["--ca-cert", &ca, "sync"]);
    assert!(ok);
    assert_eq!(stdout.trim(), "Next index 02");

    // Without the test CA the client refuses the server's certificate.
    let (ok, _, stderr) = mobile(&phone, &["strings"]);
    assert!(!ok);
    assert!(stderr.contains("Error Server Connection"), "{stderr}");
}
