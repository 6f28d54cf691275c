//! In-process tests of every route through `app()`: SQLite in memory, a recording
//! transport, direct delivery, a manual clock. No socket.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{Request, StatusCode, header};
use provision_server::backend::Backend;
use provision_server::{AppState, StateBuilder, app};
use secrecy::{ExposeSecret, SecretString};
use swivel_provision::testing::RecordingTransport;
use swivel_provision::{Channel, Delivery, Destination, Pin, ServerKey, UserEntry, Username};

mod common;
use common::fixture::{
    PASSWORD, bearer, between, console_login, detail, eventually, fixture, get, json, post_form,
};
use common::oneshot::{Reply, send};

async fn post_xml(app: &Router, uri: &str, xml: String) -> Reply {
    send(
        app,
        Request::post(uri)
            .header(header::CONTENT_TYPE, "text/xml")
            .body(Body::from(xml))
            .unwrap(),
    )
    .await
}

fn provision_xml(user: &str, code: &str) -> String {
    format!(
        "<SASRequest><Version>3.6</Version><Action>provision</Action><Username>{user}</Username><ProvisionCode>{code}</ProvisionCode></SASRequest>"
    )
}

/// Posts `xml` to the device endpoint and asserts the answer is `FAIL` with `error`.
async fn assert_agent_error(app: &Router, xml: String, error: &str) {
    let r = post_xml(app, "/pinsafe/AgentXML", xml).await;
    assert!(
        r.body.contains("<Result>FAIL</Result>")
            && r.body.contains(&format!("<Error>{error}</Error>")),
        "expected FAIL with {error:?}: {}",
        r.body
    );
}

fn strings_xml(id: &str) -> String {
    format!(
        "<SASRequest><Version>3.6</Version><Action>SecurityStrings</Action><Id>{id}</Id></SASRequest>"
    )
}

fn alice() -> Username {
    Username::parse("alice").unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn agentxml_provision_strings_and_errors() {
    let f = fixture().await;
    for path in ["/pinsafe/AgentXML", "/sentry/AgentXML"] {
        let r = post_xml(&f.app, path, "<SASRequest><Version>3.6</Version><Action>ping</Action><RequestID>r1</RequestID></SASRequest>".into()).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(
            r.body.contains("<Result>PASS</Result>")
                && r.body.contains("<RequestID>r1</RequestID>"),
            "{}",
            r.body
        );
        assert!(
            r.headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/xml")
        );
    }
    // Malformed: a FAIL, never a 500.
    for bad in [
        "<nope",
        "",
        "<SASRequest><Action>dance</Action></SASRequest>",
        "<!DOCTYPE x [<!ENTITY a 'b'>]><SASRequest/>",
    ] {
        let r = post_xml(&f.app, "/pinsafe/AgentXML", bad.into()).await;
        assert_eq!(r.status, StatusCode::OK, "{bad}");
        assert!(
            r.body.contains("<Result>FAIL</Result>") && r.body.contains("<Error>"),
            "{bad}: {}",
            r.body
        );
    }
    // Too large: 413.
    let r = post_xml(&f.app, "/pinsafe/AgentXML", "a".repeat(64 * 1024 + 1)).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);

    f.state
        .provisioner()
        .request_provision(&alice(), swivel_provision::Origin::Admin)
        .await
        .unwrap();
    let code = f.outbox.last_code_for(&alice()).unwrap();
    // Uniform device errors (the default policy): an unknown user, no username, a wrong
    // code and a used code all answer `Provision Failure`.
    assert_agent_error(
        &f.app,
        provision_xml("nobody", code.expose()),
        "Provision Failure",
    )
    .await;
    assert_agent_error(
        &f.app,
        provision_xml("", code.expose()),
        "Provision Failure",
    )
    .await;
    assert_agent_error(
        &f.app,
        provision_xml("alice", "0000000000"),
        "Provision Failure",
    )
    .await;
    let r = post_xml(
        &f.app,
        "/pinsafe/AgentXML",
        provision_xml("alice", code.expose()),
    )
    .await;
    assert!(r.body.contains("<Result>PASS</Result>"), "{}", r.body);
    let id = between(&r.body, "<Id>", "</Id>").unwrap().to_owned();
    assert_agent_error(
        &f.app,
        provision_xml("alice", code.expose()),
        "Provision Failure",
    )
    .await;

    let r = post_xml(&f.app, "/pinsafe/AgentXML", strings_xml(&id)).await;
    let strings = between(&r.body, "<SecurityStrings>", "</SecurityStrings>").unwrap();
    assert_eq!(strings.split(';').count(), 100);

    // A new device replaces the old one.
    f.state
        .provisioner()
        .request_provision(&alice(), swivel_provision::Origin::Admin)
        .await
        .unwrap();
    let code2 = f.outbox.last_code_for(&alice()).unwrap();
    let r = post_xml(
        &f.app,
        "/pinsafe/AgentXML",
        provision_xml("alice", code2.expose()),
    )
    .await;
    assert!(r.body.contains("<Result>PASS</Result>"));
    assert_agent_error(
        &f.app,
        strings_xml(&id),
        "Mobile request from unknown user; the user needs to reprovision",
    )
    .await;
    let lines: Vec<String> = f
        .state
        .log()
        .newest_first()
        .into_iter()
        .map(|l| l.text)
        .collect();
    assert_eq!(
        lines[0],
        "Mobile request from unknown user; the user needs to reprovision"
    );
    assert!(lines.contains(&"User \"alice\" provisioned successfully".to_owned()));

    // carol is not in the mobile group.
    f.state
        .provisioner()
        .request_provision(
            &Username::parse("carol").unwrap(),
            swivel_provision::Origin::Admin,
        )
        .await
        .unwrap();
    let c = f
        .outbox
        .last_code_for(&Username::parse("carol").unwrap())
        .unwrap();
    let r = post_xml(
        &f.app,
        "/pinsafe/AgentXML",
        provision_xml("carol", c.expose()),
    )
    .await;
    let cid = between(&r.body, "<Id>", "</Id>").unwrap().to_owned();
    assert_agent_error(
        &f.app,
        strings_xml(&cid),
        "Error Downloading Security Strings",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ssd_answers_known_and_unknown_sites() {
    let f = fixture().await;
    let r = get(&f.app, "/ssdserver/getServerDetails?id=DEMO", None).await;
    assert_eq!(r.status, StatusCode::OK);
    let s = swivel_provision::ssd::parse_server_details(r.body.as_bytes()).unwrap();
    assert_eq!((s.hostname.as_str(), s.port), ("provision.test", 80));
    for uri in [
        "/ssdserver/getServerDetails?id=NOPE",
        "/ssdserver/getServerDetails",
        "/ssdserver/getServerDetails?id=%3Cx%3E",
    ] {
        let r = get(&f.app, uri, None).await;
        assert!(
            r.body.contains("Error Server, Unknown Server ID"),
            "{uri}: {}",
            r.body
        );
        assert!(!r.body.contains("<x>"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn self_service_gives_one_answer() {
    let f = fixture().await;
    // Refused while the policy says No.
    for path in ["/reset/provision", "/reset/provision.jsp"] {
        let r = get(&f.app, path, None).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert!(r.body.contains("Self provisioning is not allowed"));
        let r = post_form(&f.app, path, &[("username", "alice")], None).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
    }
    assert!(f.outbox.messages().is_empty());

    let mut p = f.state.provisioner().policy();
    p.set("allow_self_provision", "Yes").unwrap();
    f.state.save_policy(p).await.unwrap();
    let form = get(&f.app, "/reset/provision.jsp", None).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("name=\"username\"") && form.body.contains(">Provision</button>"));

    // Known, unknown, no transport, rate-limited, malformed: the same answer.
    let mut bodies = Vec::new();
    for user in ["alice", "nobody", "dave", "alice", &"x".repeat(300)] {
        let r = post_form(&f.app, "/reset/provision", &[("username", user)], None).await;
        assert_eq!(r.status, StatusCode::OK, "{user}");
        bodies.push(r.body);
    }
    assert!(bodies.iter().all(|b| *b == bodies[0]), "answers differ");
    let same = provision_server::routes::selfservice::SAME_ANSWER;
    assert!(bodies[0].contains(&maud::html! { (same) }.into_string()));
    // The requests run in the background: wait for their events.
    eventually("alice's second request refused by the rate limit", || {
        f.state.log().newest_first().iter().any(|l| {
            l.text == "Self-service provision request for user \"alice\" refused: rate limit"
        })
    })
    .await;
    eventually("alice's code sent", || !f.outbox.messages().is_empty()).await;
    assert_eq!(
        f.outbox.messages().len(),
        1,
        "one code: the second request of alice was rate-limited"
    );

    // After the interval, alice may ask again.
    f.clock.advance(time::Duration::seconds(61));
    post_form(&f.app, "/reset/provision", &[("username", "alice")], None).await;
    eventually("alice's second code sent", || {
        f.outbox.messages().len() == 2
    })
    .await;

    let r = post_form(&f.app, "/reset/provision", &[("username", "  ")], None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("User not set"));
}

#[tokio::test(flavor = "multi_thread")]
async fn landing_pages_show_button_and_qr_and_never_spend_the_code() {
    let f = fixture().await;
    f.state
        .provisioner()
        .request_provision(&alice(), swivel_provision::Origin::Admin)
        .await
        .unwrap();
    let msg = f.outbox.last_message_for(&alice()).unwrap();
    let link = msg.links().complete().unwrap().to_owned();
    assert!(
        link.starts_with("http://provision.test/smc/complete/?site=DEMO&user=alice&code="),
        "{link}"
    );
    let path = link.trim_start_matches("http://provision.test");
    for _ in 0..3 {
        let r = get(&f.app, path, None).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(
            r.body.contains("Get Server Settings") && r.body.contains("<svg"),
            "{}",
            r.body
        );
        assert!(r.body.contains("swivel-provision://complete?server=http%3A%2F%2Fprovision.test&amp;site=DEMO&amp;user=alice&amp;code="));
        assert_eq!(r.headers[header::CACHE_CONTROL], "no-store");
        assert_eq!(r.headers[header::REFERRER_POLICY], "no-referrer");
        assert!(
            r.headers[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap()
                .contains("default-src 'none'")
        );
    }
    let provision = msg
        .links()
        .provision()
        .unwrap()
        .trim_start_matches("http://provision.test")
        .to_owned();
    assert!(
        get(&f.app, &provision, None)
            .await
            .body
            .contains("Get Server Settings")
    );
    // The GETs spent nothing: the device can still redeem.
    let code = msg.code().unwrap();
    let r = post_xml(
        &f.app,
        "/pinsafe/AgentXML",
        provision_xml("alice", code.expose()),
    )
    .await;
    assert!(r.body.contains("<Result>PASS</Result>"), "{}", r.body);

    // Input is escaped.
    let r = get(
        &f.app,
        "/smc/provision/?user=%3Cscript%3Ealert(1)%3C/script%3E&code=1",
        None,
    )
    .await;
    assert!(!r.body.contains("<script>") && r.body.contains("&lt;script&gt;"));
    let r = get(&f.app, "/smc/getsettings/?site=DEMO", None).await;
    assert!(
        r.body.contains("http://provision.test:80/pinsafe")
            && r.body.contains("Get Server Settings")
    );
    let r = get(&f.app, "/smc/getsettings/?site=NOPE", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.body.contains("Error Server, Unknown Server ID"));
    let home = get(&f.app, "/", None).await;
    assert!(home.body.contains("/pinsafe/AgentXML") && home.body.contains("DEMO"));
}

#[tokio::test(flavor = "multi_thread")]
async fn login_with_a_one_time_code() {
    let f = fixture().await;
    f.state
        .provisioner()
        .request_provision(&alice(), swivel_provision::Origin::Admin)
        .await
        .unwrap();
    let code = f.outbox.last_code_for(&alice()).unwrap();
    let id = f
        .state
        .provisioner()
        .redeem(&alice(), &code, Default::default())
        .await
        .unwrap();
    let strings = f
        .state
        .provisioner()
        .download_strings(&id)
        .await
        .unwrap()
        .strings;
    let pin = Pin::parse("1234").unwrap();
    let otc = swivel_provision::one_time_code(strings.get(7).unwrap(), &pin, 7).unwrap();

    assert!(
        get(&f.app, "/login", None)
            .await
            .body
            .contains("name=\"otc\"")
    );
    let failed = provision_server::routes::login::FAILED;
    // A wrong code on index 08 (a wrong code spends no index).
    let other = swivel_provision::one_time_code(strings.get(8).unwrap(), &pin, 8).unwrap();
    let wrong = if other.starts_with('0') {
        other.replacen('0', "1", 1)
    } else {
        format!("0{}", &other[1..])
    };
    for (user, code) in [
        ("alice", wrong.as_str()),
        ("nobody", otc.as_str()),
        ("carol", otc.as_str()),
        ("", ""),
        ("alice", "12"),
    ] {
        let r = post_form(&f.app, "/login", &[("username", user), ("otc", code)], None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{user}");
        assert!(r.body.contains(failed));
    }
    let r = post_form(
        &f.app,
        "/login",
        &[("username", "alice"), ("otc", &otc)],
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("Login successful. Welcome, alice."));
    let r = post_form(
        &f.app,
        "/login",
        &[("username", "alice"), ("otc", &otc)],
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "each index once");
}

#[tokio::test(flavor = "multi_thread")]
async fn console_login_sessions_and_csrf() {
    let f = fixture().await;
    for path in ["/admin/users", "/admin/policy", "/admin/log"] {
        let r = get(&f.app, path, None).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(r.headers[header::LOCATION], "/admin/login");
    }
    let r = get(&f.app, "/admin/", None).await;
    assert_eq!(r.headers[header::LOCATION], "/admin/users");

    let page = get(&f.app, "/admin/login", None).await;
    let set = page.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/admin"] {
        assert!(set.contains(attr), "{set}");
    }
    let anon = set.split(';').next().unwrap().to_owned();
    let csrf = between(&page.body, "name=\"csrf\" value=\"", "\"")
        .unwrap()
        .to_owned();
    // Without the CSRF token: refused.
    let r = post_form(
        &f.app,
        "/admin/login",
        &[("password", PASSWORD)],
        Some(&anon),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Wrong password.
    let r = post_form(
        &f.app,
        "/admin/login",
        &[("csrf", &csrf), ("password", "wrong password!")],
        Some(&anon),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.body.contains("Invalid password"));
    // An anonymous session does not open the console.
    assert_eq!(
        get(&f.app, "/admin/users", Some(&anon)).await.status,
        StatusCode::SEE_OTHER
    );

    let (cookie, csrf) = console_login(&f.app).await;
    let users = get(&f.app, "/admin/users", Some(&cookie)).await;
    assert_eq!(users.status, StatusCode::OK);
    assert!(
        users.body.contains("alice")
            && users.body.contains("carol")
            && users.body.contains(">none<")
    );

    // Reprovision needs the CSRF token.
    let r = post_form(
        &f.app,
        "/admin/reprovision",
        &[("username", "alice")],
        Some(&cookie),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = post_form(
        &f.app,
        "/admin/reprovision",
        &[("username", "alice"), ("csrf", "forged")],
        Some(&cookie),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(f.outbox.messages().is_empty());

    // Logout ends the session.
    let r = post_form(&f.app, "/admin/logout", &[("csrf", &csrf)], Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(
        r.headers[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    assert_eq!(
        get(&f.app, "/admin/users", Some(&cookie)).await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn console_reprovision_status_and_log() {
    let f = fixture().await;
    let (cookie, csrf) = console_login(&f.app).await;
    let r = post_form(
        &f.app,
        "/admin/reprovision",
        &[("username", "alice"), ("csrf", &csrf)],
        Some(&cookie),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.body
            .contains("Provision code created for user &quot;alice&quot;"),
        "{}",
        r.body
    );
    assert!(
        r.body.contains("pending until 2024-01-01 00:10:00 UTC"),
        "{}",
        r.body
    );
    let code = f.outbox.last_code_for(&alice()).unwrap();
    assert!(
        !r.body.contains(code.expose()),
        "the console never shows the code"
    );

    // dave has no destination with a transport; nobody does not exist.
    let r = post_form(
        &f.app,
        "/admin/reprovision",
        &[("username", "dave"), ("csrf", &csrf)],
        Some(&cookie),
    )
    .await;
    assert!(
        r.body
            .contains("No suitable transport for the user &quot;dave&quot; was found"),
        "{}",
        r.body
    );
    let r = post_form(
        &f.app,
        "/admin/reprovision",
        &[("username", "nobody"), ("csrf", &csrf)],
        Some(&cookie),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.body.contains("Invalid Username"));

    // Provisioned at T, with device info when the policy logs it.
    let mut p = f.state.provisioner().policy();
    p.set("log_device_info", "Yes").unwrap();
    f.state.save_policy(p).await.unwrap();
    f.state
        .provisioner()
        .redeem(
            &alice(),
            &code,
            swivel_provision::DeviceInfo::new(Some("Pixel <8>"), None, None),
        )
        .await
        .unwrap();
    let users = get(&f.app, "/admin/users", Some(&cookie)).await;
    assert!(
        users
            .body
            .contains("provisioned at 2024-01-01 00:00:00 UTC (Pixel &lt;8&gt;)"),
        "{}",
        users.body
    );

    let log = get(&f.app, "/admin/log", Some(&cookie)).await;
    let created = log
        .body
        .find("Provision code created for user &quot;alice&quot;")
        .unwrap();
    let provisioned = log
        .body
        .find("User &quot;alice&quot; provisioned successfully")
        .unwrap();
    assert!(provisioned < created, "newest first");
    assert!(
        log.body
            .contains("Message sent to user: alice, destination: alice@example.com.")
    );
    assert!(
        log.body
            .contains("User &quot;alice&quot; can now reprovision their mobile device.")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn console_policy_validation_and_persistence() {
    let f = fixture().await;
    let (cookie, csrf) = console_login(&f.app).await;
    let page = get(&f.app, "/admin/policy", Some(&cookie)).await;
    assert!(
        page.body
            .contains("Allow user self-provision of mobile client")
    );
    assert!(
        page.body
            .contains("Log device information when provisioning")
    );
    assert!(
        page.body
            .contains("Provision Code Validity period (seconds")
    );
    assert!(page.body.contains("value=\"600\""));
    assert!(page.body.contains(
        "http://provision.test/smc/complete/?site={site}&amp;user={user}&amp;code={code}"
    ));

    let r = post_form(
        &f.app,
        "/admin/policy",
        &[
            ("csrf", &csrf),
            ("validity_secs", "5"),
            ("max_attempts", "0"),
        ],
        Some(&cookie),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.body
            .contains("validity_secs: must be between 10 and 1000000, got 5"),
        "{}",
        r.body
    );
    assert!(
        r.body
            .contains("max_attempts: must be between 1 and 100, got 0")
    );
    assert!(
        r.body.contains("value=\"5\""),
        "the typed value is shown again"
    );
    assert_eq!(
        f.state.provisioner().policy().validity_secs(),
        600,
        "nothing changed"
    );

    let r = post_form(
        &f.app,
        "/admin/policy",
        &[("validity_secs", "300")],
        Some(&cookie),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "CSRF");

    let r = post_form(
        &f.app,
        "/admin/policy",
        &[
            ("csrf", &csrf),
            ("validity_secs", "300"),
            ("allow_self_provision", "Yes"),
        ],
        Some(&cookie),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("Policy saved."));
    assert_eq!(f.state.provisioner().policy().validity_secs(), 300);
    // Saved for every instance sharing the database.
    let saved = f
        .state
        .backend()
        .settings
        .get_setting("policy")
        .await
        .unwrap()
        .unwrap();
    assert!(saved.contains("\"validity_secs\":300"), "{saved}");
}

#[tokio::test(flavor = "multi_thread")]
async fn instances_sharing_a_database_agree() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.sqlite");
    let key = ServerKey::generate();
    let one = StateBuilder::new(Backend::sqlite(&path).await.unwrap(), key.clone())
        .delivery(Delivery::Direct)
        .build()
        .await
        .unwrap();
    let mut p = one.provisioner().policy();
    p.set("validity_secs", "42").unwrap();
    one.save_policy(p).await.unwrap();
    one.pins()
        .set(&alice(), &Pin::parse("9132640587").unwrap())
        .await
        .unwrap();
    one.credentials()
        .set_password(&SecretString::from(PASSWORD))
        .await
        .unwrap();
    let two = StateBuilder::new(Backend::sqlite(&path).await.unwrap(), key)
        .delivery(Delivery::Direct)
        .build()
        .await
        .unwrap();
    assert_eq!(two.provisioner().policy().validity_secs(), 42);
    assert_eq!(
        two.pins().get(&alice()).await.unwrap().unwrap().expose(),
        "9132640587"
    );
    assert!(two.credentials().check_password(PASSWORD).await.unwrap());
    // No PIN or password in the database file in plain text.
    drop((one, two));
    let raw = std::fs::read(&path).unwrap();
    let text = String::from_utf8_lossy(&raw);
    // A ten-digit PIN: a four-digit one turns up by chance in random hex now and then.
    assert!(!text.contains("9132640587") && !text.contains(PASSWORD));
}

#[tokio::test(flavor = "multi_thread")]
async fn json_api_with_bearer_token() {
    let f = fixture().await;
    let token = f.state.credentials().new_api_token().await.unwrap();
    let auth = format!("Bearer {}", token.expose_secret());
    let call = |method: &str, uri: &str, auth: Option<&str>| {
        let mut b = Request::builder().method(method).uri(uri);
        if let Some(a) = auth {
            b = b.header(header::AUTHORIZATION, a);
        }
        b.body(Body::empty()).unwrap()
    };
    for a in [None, Some("Bearer wrong"), Some("Basic x"), Some("Bearer ")] {
        let r = send(&f.app, call("GET", "/api/v1/users/alice", a)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{a:?}");
        assert_eq!(r.headers[header::WWW_AUTHENTICATE], "Bearer");
        assert_eq!(detail(&r), "Unauthorized");
        let r = send(&f.app, call("POST", "/api/v1/users/alice/reprovision", a)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    assert!(f.outbox.messages().is_empty());

    let r = send(&f.app, call("GET", "/api/v1/users/alice", Some(&auth))).await;
    assert_eq!(r.status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["username"], "alice");
    assert!(v["pending"].is_null() && v["device"].is_null());

    let r = send(
        &f.app,
        call("POST", "/api/v1/users/alice/reprovision", Some(&auth)),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["destination"]["address"], "alice@example.com");
    assert_eq!(v["expires_at"], "2024-01-01T00:10:00Z");
    let code = f.outbox.last_code_for(&alice()).unwrap();
    assert!(!r.body.contains(code.expose()));
    let v: serde_json::Value = serde_json::from_str(
        &send(&f.app, call("GET", "/api/v1/users/alice", Some(&auth)))
            .await
            .body,
    )
    .unwrap();
    assert_eq!(v["pending"]["attempts_left"], 5);
    assert_eq!(v["pending"]["origin"], "admin");

    let r = send(&f.app, call("GET", "/api/v1/users/nobody", Some(&auth))).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(detail(&r), "Invalid Username");
    let r = send(
        &f.app,
        call("POST", "/api/v1/users/nobody/reprovision", Some(&auth)),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(detail(&r), "Invalid Username");
    let r = send(
        &f.app,
        call("POST", "/api/v1/users/dave/reprovision", Some(&auth)),
    )
    .await;
    assert_eq!(
        detail(&r),
        "No suitable transport for the user \"dave\" was found"
    );
    let r = send(&f.app, call("GET", "/api/v1/users/%20", Some(&auth))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(detail(&r), "User not set");
}

#[tokio::test(flavor = "multi_thread")]
async fn json_api_saves_users() {
    let f = fixture().await;
    let token = f.state.credentials().new_api_token().await.unwrap();
    let auth = format!("Bearer {}", token.expose_secret());
    let put = |uri: &str, auth: Option<&str>, body: &str| {
        let mut b = Request::put(uri).header(header::CONTENT_TYPE, "application/json");
        if let Some(a) = auth {
            b = b.header(header::AUTHORIZATION, a);
        }
        b.body(Body::from(body.to_owned())).unwrap()
    };
    let erin = r#"{"email":"erin@example.com","phone":"+15555550123","mobile_group":true,"pin":"8642097531"}"#;
    // Without a valid token nothing is saved.
    for a in [None, Some("Bearer wrong")] {
        let r = send(&f.app, put("/api/v1/users/erin", a, erin)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let erin_name = Username::parse("erin").unwrap();
    assert!(
        f.state
            .backend()
            .users
            .find_user(&erin_name)
            .await
            .unwrap()
            .is_none()
    );

    let r = send(&f.app, put("/api/v1/users/erin", Some(&auth), erin)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["username"], "erin");
    assert_eq!(v["mobile_group"], true);
    assert_eq!(v["destinations"].as_array().unwrap().len(), 2);
    assert!(!r.body.contains("8642097531"), "the PIN is not echoed");
    assert_eq!(
        f.state
            .pins()
            .get(&erin_name)
            .await
            .unwrap()
            .unwrap()
            .expose(),
        "8642097531"
    );
    // A saved user can be reprovisioned through the API at once.
    let r = send(
        &f.app,
        Request::post("/api/v1/users/erin/reprovision")
            .header(header::AUTHORIZATION, &auth)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);

    // Saving again replaces destinations and group (the PIN stays when none is given).
    let r = send(
        &f.app,
        put(
            "/api/v1/users/erin",
            Some(&auth),
            r#"{"email":"e2@example.com"}"#,
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["mobile_group"], false);
    assert_eq!(v["destinations"][0]["address"], "e2@example.com");
    assert_eq!(v["destinations"].as_array().unwrap().len(), 1);
    assert!(f.state.pins().get(&erin_name).await.unwrap().is_some());

    // Bad inputs: each refused with a clear error, nothing written, no value quoted back.
    for (uri, body, says) in [
        ("/api/v1/users/erin", "{", "not valid JSON"),
        (
            "/api/v1/users/erin",
            r#"{"pin":12345}"#,
            "only these fields",
        ),
        (
            "/api/v1/users/erin",
            r#"{"colour":"red"}"#,
            "only these fields",
        ),
        ("/api/v1/users/erin", r#"{"pin":"12"}"#, "PIN"),
        (
            "/api/v1/users/erin",
            r#"{"email":" "}"#,
            "destination address",
        ),
        (
            "/api/v1/users/erin",
            r#"{"phone":"+1555\u0007"}"#,
            "destination address",
        ),
        ("/api/v1/users/%20", "{}", "User not set"),
    ] {
        let r = send(&f.app, put(uri, Some(&auth), body)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.body);
        assert!(r.body.contains(says), "{body}: {}", r.body);
        assert!(!r.body.contains("12345"), "{}", r.body);
    }
    let r = send(
        &f.app,
        Request::put("/api/v1/users/erin")
            .header(header::AUTHORIZATION, &auth)
            .body(Body::from("{}"))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("Content-Type"), "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(
        &send(
            &f.app,
            Request::get("/api/v1/users/erin")
                .header(header::AUTHORIZATION, &auth)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .body,
    )
    .unwrap();
    assert_eq!(v["destinations"][0]["address"], "e2@example.com");
}

#[tokio::test(flavor = "multi_thread")]
async fn json_api_sets_sites_with_every_ssd_flag() {
    let f = fixture().await;
    let token = f.state.credentials().new_api_token().await.unwrap();
    let auth = format!("Bearer {}", token.expose_secret());
    let call = |method: &str, uri: &str, auth: Option<&str>, body: &str| {
        let mut b = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(a) = auth {
            b = b.header(header::AUTHORIZATION, a);
        }
        b.body(Body::from(body.to_owned())).unwrap()
    };
    let body = r#"{"hostname":"auth.example.com","port":8443,"context":"proxy","using_ssl":true,"push_support":true,"local":true,"pin":false,"oath":true}"#;
    let r = send(&f.app, call("PUT", "/api/v1/sites/EDGE", None, body)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = send(&f.app, call("GET", "/api/v1/sites/EDGE", Some(&auth), "")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);

    let r = send(&f.app, call("PUT", "/api/v1/sites/EDGE", Some(&auth), body)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["context"], "proxy");
    assert_eq!(v["pin"], false);
    let r = send(&f.app, call("GET", "/api/v1/sites/EDGE", Some(&auth), "")).await;
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&r.body).unwrap(),
        v
    );
    // What devices are told, flags as SSD spells them.
    let r = get(&f.app, "/ssdserver/getServerDetails?id=EDGE", None).await;
    assert_eq!(r.status, StatusCode::OK);
    for part in [
        "<hostname>auth.example.com</hostname>",
        "<port>8443</port>",
        "<connectionType>proxy</connectionType>",
        "<usingSSL>YES</usingSSL>",
        "<pushSupport>YES</pushSupport>",
        "<local>YES</local>",
        "<pin>NO</pin>",
        "<oath>YES</oath>",
    ] {
        assert!(r.body.contains(part), "{part} in {}", r.body);
    }
    // Defaults: pinsafe, PIN asked, every other flag NO.
    let r = send(
        &f.app,
        call(
            "PUT",
            "/api/v1/sites/EDGE",
            Some(&auth),
            r#"{"hostname":"h.example","port":80}"#,
        ),
    )
    .await;
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(
        (
            v["context"].as_str(),
            v["using_ssl"].as_bool(),
            v["pin"].as_bool()
        ),
        (Some("pinsafe"), Some(false), Some(true))
    );
    // Bad inputs: a clear error each, nothing changed.
    for (uri, body, says) in [
        (
            "/api/v1/sites/EDGE",
            r#"{"hostname":"h","port":80,"context":"admin"}"#,
            "context",
        ),
        (
            "/api/v1/sites/EDGE",
            r#"{"hostname":" ","port":80}"#,
            "hostname",
        ),
        ("/api/v1/sites/EDGE", r#"{"port":80}"#, "hostname"),
        (
            "/api/v1/sites/EDGE",
            r#"{"hostname":"h","port":70000}"#,
            "port",
        ),
        (
            "/api/v1/sites/EDGE",
            r#"{"hostname":"h","port":"s3cr3t"}"#,
            "port has a wrong type or value",
        ),
        ("/api/v1/sites/EDGE", r#"{"hostname":"h","port":0}"#, "port"),
        (
            "/api/v1/sites/EDGE",
            r#"{"hostname":"h","port":80,"ssl":true}"#,
            "ssl",
        ),
        (
            "/api/v1/sites/%3Cx%3E",
            r#"{"hostname":"h","port":80}"#,
            "Site",
        ),
    ] {
        let r = send(&f.app, call("PUT", uri, Some(&auth), body)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.body);
        assert!(detail(&r).contains(says), "{body}: {}", r.body);
        for value in ["s3cr3t", "70000", "admin"] {
            assert!(
                !detail(&r).contains(value),
                "{body} quoted back: {}",
                r.body
            );
        }
    }
    let r = send(&f.app, call("GET", "/api/v1/sites/EDGE", Some(&auth), "")).await;
    assert!(r.body.contains("h.example"), "{}", r.body);
}

/// The console's site form for site EDGE: proxy context, usingSSL, local and oath on.
fn site_form(csrf: &str) -> Vec<(&str, &str)> {
    vec![
        ("csrf", csrf),
        ("site", "EDGE"),
        ("hostname", "auth.example.com"),
        ("port", "8443"),
        ("context", "proxy"),
        ("using_ssl", "on"),
        ("local", "on"),
        ("oath", "on"),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn console_sites_page_sets_every_ssd_flag() {
    let f = fixture().await;
    assert_eq!(
        get(&f.app, "/admin/sites", None).await.status,
        StatusCode::SEE_OTHER,
        "the page needs a login"
    );
    let (cookie, csrf) = console_login(&f.app).await;
    let page = get(&f.app, "/admin/sites", Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("DEMO") && page.body.contains("id=\"save-site\""));
    // Without the session's CSRF token nothing is saved.
    let r = post_form(&f.app, "/admin/sites", &site_form("forged"), Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = get(&f.app, "/ssdserver/getServerDetails?id=EDGE", None).await;
    assert!(r.body.contains("Unknown Server ID"), "{}", r.body);

    let r = post_form(&f.app, "/admin/sites", &site_form(&csrf), Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(
        r.body
            .contains("Site EDGE saved: https://auth.example.com:8443/proxy"),
        "{}",
        r.body
    );
    let r = get(&f.app, "/ssdserver/getServerDetails?id=EDGE", None).await;
    for part in [
        "<connectionType>proxy</connectionType>",
        "<usingSSL>YES</usingSSL>",
        "<pushSupport>NO</pushSupport>",
        "<local>YES</local>",
        "<pin>NO</pin>",
        "<oath>YES</oath>",
    ] {
        assert!(r.body.contains(part), "{part} in {}", r.body);
    }
    // Bad inputs: a clear message each, nothing changed.
    for (field, value, says) in [
        ("port", "70000", "Invalid port"),
        ("port", "0", "Invalid port"),
        ("context", "admin", "context"),
        ("hostname", " ", "hostname"),
        ("site", "<x>", "Site ID"),
    ] {
        let mut bad = site_form(&csrf);
        for kv in bad.iter_mut() {
            if kv.0 == field {
                kv.1 = value;
            }
        }
        let r = post_form(&f.app, "/admin/sites", &bad, Some(&cookie)).await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "{field}={value}: {}",
            r.body
        );
        assert!(r.body.contains(says), "{field}={value}: {}", r.body);
        assert!(!r.body.contains("<x>"), "escaped");
    }
    let r = get(&f.app, "/ssdserver/getServerDetails?id=EDGE", None).await;
    assert!(r.body.contains("<port>8443</port>"), "{}", r.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn large_bodies_are_refused_everywhere() {
    let f = fixture().await;
    let big = format!("username={}", "a".repeat(70 * 1024));
    for path in [
        "/reset/provision",
        "/login",
        "/admin/login",
        "/admin/policy",
    ] {
        let r = send(
            &f.app,
            Request::post(path)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(big.clone()))
                .unwrap(),
        )
        .await;
        assert!(
            r.status == StatusCode::PAYLOAD_TOO_LARGE
                || r.status == StatusCode::FORBIDDEN
                || r.status == StatusCode::SEE_OTHER,
            "{path}: {}",
            r.status
        );
        assert_ne!(r.status, StatusCode::OK);
    }
    let r = send(
        &f.app,
        Request::post("/reset/provision")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(big))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_locked_account_is_shown_and_unlocked_from_the_console_and_the_api() {
    let f = fixture().await;
    let mut policy = f.state.provisioner().policy();
    policy.set_max_account_failures(3).unwrap();
    f.state.save_policy(policy).await.unwrap();
    // Three wrong codes from a device lock alice's account.
    f.state
        .provisioner()
        .request_provision(&alice(), swivel_provision::Origin::Admin)
        .await
        .unwrap();
    for _ in 0..3 {
        assert_agent_error(
            &f.app,
            provision_xml("alice", "0000000000"),
            "Provision Failure",
        )
        .await;
    }
    let e = f
        .state
        .provisioner()
        .request_provision(&alice(), swivel_provision::Origin::Admin)
        .await
        .unwrap_err();
    assert!(
        matches!(e, swivel_provision::Error::AccountLocked { .. }),
        "{e:?}"
    );

    // The console shows the lock and an Unlock button; the API shows it too.
    let (cookie, csrf) = console_login(&f.app).await;
    let page = get(&f.app, "/admin/users", Some(&cookie)).await;
    assert!(
        page.body.contains("after 3 failed attempts"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("action=\"/admin/unlock\""),
        "{}",
        page.body
    );
    let token = f.state.credentials().new_api_token().await.unwrap();
    let auth = format!("Bearer {}", token.expose_secret());
    let api = |method: &str, uri: &str| {
        Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, &auth)
            .body(Body::empty())
            .unwrap()
    };
    let v: serde_json::Value =
        serde_json::from_str(&send(&f.app, api("GET", "/api/v1/users/alice")).await.body).unwrap();
    assert_eq!(v["failures"], 3);
    assert!(v["locked_at"].is_string(), "{v}");
    // A reprovision of a locked account says so, with a status a client can act on.
    let r = send(&f.app, api("POST", "/api/v1/users/alice/reprovision")).await;
    assert_eq!(r.status, StatusCode::LOCKED);
    assert_eq!(detail(&r), "Account locked, contact your administrator");

    // Unlock without a CSRF token is refused; with it, the console unlocks.
    let r = post_form(
        &f.app,
        "/admin/unlock",
        &[("username", "alice")],
        Some(&cookie),
    )
    .await;
    assert_ne!(r.status, StatusCode::OK);
    let r = post_form(
        &f.app,
        "/admin/unlock",
        &[("username", "alice"), ("csrf", &csrf)],
        Some(&cookie),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.body.contains("User &quot;alice&quot; unlocked."),
        "{}",
        r.body
    );
    assert!(
        !r.body.contains("action=\"/admin/unlock\""),
        "the button is gone"
    );
    f.state
        .provisioner()
        .request_provision(&alice(), swivel_provision::Origin::Admin)
        .await
        .expect("codes again after the unlock");
    // The API twin: nothing left to unlock, and an unknown user is 404.
    let r = send(&f.app, api("POST", "/api/v1/users/alice/unlock")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        json(&r),
        serde_json::json!({"unlocked": false, "username": "alice"})
    );
    let r = send(&f.app, api("POST", "/api/v1/users/nobody/unlock")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(
        f.state
            .log()
            .newest_first()
            .iter()
            .any(|l| l.text.contains("Account of user \"alice\" unlocked"))
    );
}

/// `n` stored events of `user` (through the store, as another instance would write them).
async fn store_events(state: &AppState, user: &str, n: usize) {
    let events: Vec<swivel_provision::StoredEvent> = (0..n)
        .map(|i| {
            swivel_provision::StoredEvent::new(
                &swivel_provision::ProvisionEvent::OtcRejected {
                    username: Username::parse(user).unwrap(),
                },
                time::OffsetDateTime::now_utc(),
                format!("other-{i}"),
            )
        })
        .collect();
    state.backend().events.append(&events).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_action_shows_in_the_event_api_and_on_the_log_page() {
    let f = fixture().await;
    let token = f.state.credentials().new_api_token().await.unwrap();
    let auth = format!("Bearer {}", token.expose_secret());
    let r = send(
        &f.app,
        Request::post("/api/v1/users/alice/reprovision")
            .header(header::AUTHORIZATION, &auth)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);

    let r = send(&f.app, bearer("/api/v1/events?user=alice", Some(&auth))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v = json(&r);
    let events = v["events"].as_array().unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "administrator_action",
            "can_reprovision",
            "message_sent",
            "code_created"
        ],
        "newest first: {v}"
    );
    assert_eq!(
        events[0]["line"],
        "Administrator api: reprovision, user \"alice\""
    );
    let created = &events[3];
    assert_eq!(created["instance"], "test-instance");
    assert_eq!(created["username"], "alice");
    assert_eq!(created["failure"], false);
    assert_eq!(created["line"], "Provision code created for user \"alice\"");
    assert!(created["at"].as_str().unwrap().ends_with('Z'), "{created}");
    assert!(events[0]["id"].as_u64() > created["id"].as_u64());
    assert_eq!(v["next_before"], serde_json::Value::Null, "not a full page");
    let code = f.outbox.last_code_for(&alice()).unwrap();
    assert!(!r.body.contains(code.expose()), "no code in the log");

    // since: an RFC 3339 time after every event.
    let r = send(
        &f.app,
        bearer("/api/v1/events?since=2999-01-01T00:00:00Z", Some(&auth)),
    )
    .await;
    assert_eq!(json(&r)["events"], serde_json::json!([]));
    let r = send(&f.app, bearer("/api/v1/events?user=carol", Some(&auth))).await;
    assert_eq!(json(&r)["events"], serde_json::json!([]));

    let (cookie, _) = console_login(&f.app).await;
    let log = get(&f.app, "/admin/log", Some(&cookie)).await;
    assert_eq!(log.status, StatusCode::OK);
    assert!(
        log.body.contains(
            "<td>test-instance</td><td>Provision code created for user &quot;alice&quot;</td>"
        ),
        "{}",
        log.body
    );
    assert!(!log.body.contains("id=\"older\""), "one page only");
    let carol = get(&f.app, "/admin/log?user=carol", Some(&cookie)).await;
    assert!(!carol.body.contains("alice"), "{}", carol.body);
    assert!(carol.body.contains("value=\"carol\""), "the filter is kept");
    let bad = get(&f.app, "/admin/log?before=x", Some(&cookie)).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        bad.body.contains("before must be an event id"),
        "{}",
        bad.body
    );
    let anonymous = get(&f.app, "/admin/log", None).await;
    assert_eq!(
        anonymous.status,
        StatusCode::SEE_OTHER,
        "the Log page needs a login"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn event_pages_follow_the_cursor_without_gaps_or_repeats() {
    let f = fixture().await;
    let token = f.state.credentials().new_api_token().await.unwrap();
    let auth = format!("Bearer {}", token.expose_secret());
    store_events(&f.state, "bob", 7).await;
    store_events(&f.state, "erin", 2).await;
    let mut seen = Vec::new();
    let mut uri = "/api/v1/events?user=bob&limit=3".to_owned();
    loop {
        let v = json(&send(&f.app, bearer(&uri, Some(&auth))).await);
        seen.extend(
            v["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].as_u64().unwrap()),
        );
        match v["next_before"].as_u64() {
            Some(before) => uri = format!("/api/v1/events?user=bob&limit=3&before={before}"),
            None => break,
        }
        assert!(seen.len() <= 9, "the pages never end");
    }
    assert_eq!(seen.len(), 7, "every event once: {seen:?}");
    assert!(
        seen.windows(2).all(|w| w[0] > w[1]),
        "newest first: {seen:?}"
    );

    // The Log page: 50 a page, then "Older" with the cursor and the user filter.
    store_events(&f.state, "bob", 50).await;
    let (cookie, _) = console_login(&f.app).await;
    let first = get(&f.app, "/admin/log?user=bob", Some(&cookie)).await;
    assert_eq!(first.body.matches("<tr class=\"error\">").count(), 50);
    let older = between(&first.body, "<a id=\"older\" href=\"", "\"")
        .unwrap()
        .replace("&amp;", "&");
    assert!(
        older.starts_with("/admin/log?before=") && older.ends_with("&user=bob"),
        "{older}"
    );
    let second = get(&f.app, &older, Some(&cookie)).await;
    assert_eq!(second.body.matches("<tr class=\"error\">").count(), 7);
    assert!(!second.body.contains("id=\"older\""));
    assert!(!second.body.contains("erin"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_event_api_refuses_bad_queries_and_missing_tokens() {
    let f = fixture().await;
    let token = f.state.credentials().new_api_token().await.unwrap();
    let auth = format!("Bearer {}", token.expose_secret());
    for a in [None, Some("Bearer wrong"), Some("Basic x")] {
        let r = send(&f.app, bearer("/api/v1/events", a)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{a:?}");
        assert_eq!(detail(&r), "Unauthorized");
    }
    for (query, error) in [
        ("limit=0", "limit must be a whole number from 1 to 1000"),
        ("limit=1001", "limit must be a whole number from 1 to 1000"),
        ("limit=many", "limit must be a whole number from 1 to 1000"),
        (
            "since=yesterday",
            "since must be an RFC 3339 time, such as 2024-01-01T00:00:00Z",
        ),
        (
            "before=0",
            "before must be an event id (a whole number above 0)",
        ),
        (
            "before=-1",
            "before must be an event id (a whole number above 0)",
        ),
        ("since=", "since is empty; leave it out instead"),
        ("limit=%20", "limit is empty; leave it out instead"),
        (
            "order=asc",
            "unknown parameter \"order\"; the parameters are user, kind, since, until, limit, before",
        ),
    ] {
        let r = send(
            &f.app,
            bearer(&format!("/api/v1/events?{query}"), Some(&auth)),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}: {}", r.body);
        assert_eq!(detail(&r), error, "{query}");
    }
    let r = send(
        &f.app,
        bearer("/api/v1/events?user=%E2%80%AEx", Some(&auth)),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(detail(&r).starts_with("user is not a valid username"));
    let r = send(&f.app, bearer("/api/v1/events?limit=1000", Some(&auth))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_instances_on_one_database_show_the_same_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.sqlite");
    let key = ServerKey::generate();
    let outbox = Arc::new(RecordingTransport::new());
    let build = |name: &'static str| {
        let (key, path, outbox) = (key.clone(), path.clone(), outbox.clone());
        async move {
            StateBuilder::new(Backend::sqlite(&path).await.unwrap(), key)
                .delivery(Delivery::Direct)
                .transport(Channel::Email, outbox)
                .instance_name(name)
                .build()
                .await
                .unwrap()
        }
    };
    let one = build("one").await;
    let two = build("two").await;
    one.backend()
        .user_admin
        .put_user(
            &UserEntry::new(alice())
                .with_mobile_group(true)
                .with_destination(Destination::email("alice@example.com").unwrap()),
        )
        .await
        .unwrap();
    one.credentials()
        .set_password(&SecretString::from(PASSWORD))
        .await
        .unwrap();
    one.provisioner()
        .request_provision(&alice(), swivel_provision::Origin::Admin)
        .await
        .unwrap();
    assert!(one.flush_events(std::time::Duration::from_secs(5)).await);
    let mut pages = Vec::new();
    for state in [&one, &two] {
        let app =
            app(state.clone()).layer(MockConnectInfo(SocketAddr::from(([192, 0, 2, 1], 4000))));
        let (cookie, _) = console_login(&app).await;
        let log = get(&app, "/admin/log", Some(&cookie)).await;
        let rows = between(&log.body, "<table id=\"log\">", "</table>")
            .unwrap()
            .to_owned();
        assert!(
            rows.contains("<td>one</td><td>Provision code created for user &quot;alice&quot;</td>"),
            "{rows}"
        );
        pages.push(rows);
    }
    assert_eq!(pages[0], pages[1], "both instances show the same events");
}
