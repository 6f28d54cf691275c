//! SmtpTransport against a real SMTP server (aiosmtpd, `tests/smtp_server.py`) on loopback.
//!
//! The first test creates a Python venv with aiosmtpd under cargo's target tmp dir and later
//! runs reuse it. Without Python (or without network for pip) the tests print
//! `SKIPPED: …` and pass, unless `SWIVEL_REQUIRE_SMTP_TESTS=1`.

mod support;

use std::error::Error as _;
use std::path::Path;

use mail_parser::{MessageParser, MimeHeaders};
use support::{Server, ServerOptions};
use swivel_provision::{
    Channel, Destination, ProvisionCode, ProvisionMessage, Transport, TransportError, Username,
};
use swivel_provision_smtp::{SmtpAuthMechanism, SmtpConfig, SmtpSecurity, SmtpTransport};
use time::{Duration, OffsetDateTime};

const CODE: &str = "4817265093";
const SITE: &str = "DEMO-SITE";
const USER: &str = "relay-user";
const PASSWORD: &str = "relay-password-7f3a";

fn complete_link() -> String {
    format!("https://auth.example.test/proxy/SCMobileProvision?site={SITE}&code={CODE}&user=alice")
}

fn provision_link() -> String {
    format!("https://auth.example.test/proxy/SCMobileProvision?code={CODE}&user=alice")
}

fn getsettings_link() -> String {
    format!("https://auth.example.test/ssdserver/getServerDetails?id={SITE}")
}

/// A provision message for alice at `to`, with code, all three links and a QR code.
fn message(to: &str) -> ProvisionMessage {
    let complete = complete_link();
    let links = ProvisionMessage::links_for_test(
        Some(&provision_link()),
        Some(&getsettings_link()),
        Some(&complete),
    );
    let qr = swivel_provision::qr::render(&complete).expect("QR of the complete link");
    ProvisionMessage::new(
        Username::parse("alice").unwrap(),
        // Built directly: the transport, not the core, must check the address.
        Destination {
            channel: Channel::Email,
            address: to.to_owned(),
            purpose: Default::default(),
        },
        Some(ProvisionCode::new(CODE)),
        links,
        OffsetDateTime::now_utc() + Duration::minutes(10),
        600,
    )
    .with_qr(qr)
}

fn config(port: u16) -> SmtpConfig {
    SmtpConfig {
        host: "127.0.0.1".into(),
        port,
        security: SmtpSecurity::None,
        from: "Mobile Provisioning <provision@example.test>".into(),
        timeout_secs: 10,
        pool_size: 2,
        ..SmtpConfig::default()
    }
}

fn tls_auth_config(server: &Server, security: SmtpSecurity, password: &str) -> SmtpConfig {
    SmtpConfig {
        host: "localhost".into(),
        security,
        username: Some(USER.into()),
        password: Some(password.to_owned().into()),
        extra_root_ca_pem: Some(server.pki.ca_cert.clone()),
        ..config(server.port)
    }
}

/// The error's message and every source in its chain, plus its Debug form.
fn everything_said(err: &TransportError) -> String {
    let mut out = format!("{err} | {err:?}");
    let mut cur = err.source();
    while let Some(e) = cur {
        out.push_str(&format!(" | {e}"));
        cur = e.source();
    }
    out
}

fn assert_no_secrets(text: &str) {
    for secret in [
        CODE.to_owned(),
        complete_link(),
        provision_link(),
        PASSWORD.to_owned(),
    ] {
        assert!(
            !text.contains(&secret),
            "error text leaks {secret:?}: {text}"
        );
    }
}

fn auth_server(python: &Path, options: ServerOptions) -> Server {
    Server::start(
        python,
        &ServerOptions {
            auth: Some((USER.into(), PASSWORD.into())),
            ..options
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_delivery_carries_code_link_and_inline_png() {
    let Some(python) = support::python("plain_delivery_carries_code_link_and_inline_png") else {
        return;
    };
    let server = Server::start(&python, &ServerOptions::default());
    let transport = SmtpTransport::new(config(server.port)).unwrap();
    let sent = message("alice@example.test");
    transport.deliver(&sent).await.expect("delivered");

    let received = server.received();
    assert_eq!(received.len(), 1);
    let meta = &received[0].meta;
    assert_eq!(meta["rcpt_tos"], serde_json::json!(["alice@example.test"]));
    assert_eq!(meta["mail_from"], "provision@example.test");
    assert_eq!(meta["tls"], false);

    let mail = MessageParser::default()
        .parse(&received[0].raw)
        .expect("parsable email");
    assert_eq!(mail.subject(), Some(ProvisionMessage::SUBJECT));

    let text = mail.body_text(0).expect("text part");
    assert!(text.contains(CODE), "text part lacks the code: {text}");
    assert!(
        text.contains(&complete_link()),
        "text part lacks the link: {text}"
    );
    assert!(text.contains("10 minutes"), "{text}");

    let html = mail.body_html(0).expect("HTML part");
    let href = format!("href=\"{}\"", complete_link().replace('&', "&amp;"));
    assert!(html.contains(&href), "HTML part lacks {href}: {html}");
    assert!(html.contains(&format!("<strong>{CODE}</strong>")), "{html}");
    assert!(
        html.contains("src=\"cid:provision-qr@swivel-provision\""),
        "{html}"
    );

    let images: Vec<_> = mail
        .attachments()
        .filter(|a| a.content_type().is_some_and(|c| c.ctype() == "image"))
        .collect();
    assert_eq!(images.len(), 1, "one inline image");
    let image = images[0];
    assert_eq!(image.content_type().unwrap().subtype(), Some("png"));
    assert_eq!(image.content_id(), Some("provision-qr@swivel-provision"));
    assert_eq!(
        image.content_disposition().map(|d| d.ctype()),
        Some("inline")
    );
    let png_bytes = image.contents();
    assert_eq!(
        png_bytes,
        sent.qr().unwrap().png.as_slice(),
        "PNG arrives intact"
    );
    let reader = png::Decoder::new(std::io::Cursor::new(png_bytes))
        .read_info()
        .expect("a decodable PNG");
    assert!(reader.info().width >= 21 && reader.info().width == reader.info().height);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_with_private_ca_and_auth_login() {
    starttls_with_mechanism(
        "starttls_with_private_ca_and_auth_login",
        SmtpAuthMechanism::Login,
        "LOGIN",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_with_private_ca_and_auth_plain() {
    starttls_with_mechanism(
        "starttls_with_private_ca_and_auth_plain",
        SmtpAuthMechanism::Plain,
        "PLAIN",
    )
    .await;
}

async fn starttls_with_mechanism(test: &str, mechanism: SmtpAuthMechanism, wire_name: &str) {
    let Some(python) = support::python(test) else {
        return;
    };
    let server = auth_server(
        &python,
        ServerOptions {
            starttls: true,
            ..ServerOptions::default()
        },
    );
    let transport = SmtpTransport::new(SmtpConfig {
        auth_mechanisms: vec![mechanism],
        ..tls_auth_config(&server, SmtpSecurity::StartTls, PASSWORD)
    })
    .unwrap();
    // Two deliveries through one transport (the second may reuse the pooled connection).
    transport
        .deliver(&message("alice@example.test"))
        .await
        .expect("first");
    transport
        .deliver(&message("bob@example.test"))
        .await
        .expect("second");

    let received = server.received();
    assert_eq!(received.len(), 2);
    for r in &received {
        assert_eq!(r.meta["tls"], true, "{}", r.meta);
        assert_eq!(r.meta["auth_mechanism"], wire_name, "{}", r.meta);
        assert_eq!(r.meta["auth_login"], USER);
        let mail = MessageParser::default().parse(&r.raw).unwrap();
        assert!(mail.body_text(0).unwrap().contains(CODE));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implicit_tls_with_private_ca() {
    let Some(python) = support::python("implicit_tls_with_private_ca") else {
        return;
    };
    let server = auth_server(
        &python,
        ServerOptions {
            implicit_tls: true,
            ..ServerOptions::default()
        },
    );
    let transport = SmtpTransport::new(SmtpConfig {
        // The leaf certificate carries IP:127.0.0.1 as well.
        host: "127.0.0.1".into(),
        ..tls_auth_config(&server, SmtpSecurity::Tls, PASSWORD)
    })
    .unwrap();
    transport
        .test_connection()
        .await
        .expect("connects and logs in");
    transport
        .deliver(&message("alice@example.test"))
        .await
        .expect("delivered");
    let received = server.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].meta["tls"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_permanent() {
    let Some(python) = support::python("wrong_password_is_permanent") else {
        return;
    };
    let server = auth_server(
        &python,
        ServerOptions {
            starttls: true,
            ..ServerOptions::default()
        },
    );
    for mechanism in [SmtpAuthMechanism::Plain, SmtpAuthMechanism::Login] {
        let transport = SmtpTransport::new(SmtpConfig {
            auth_mechanisms: vec![mechanism],
            ..tls_auth_config(&server, SmtpSecurity::StartTls, "wrong-password")
        })
        .unwrap();
        let err = transport
            .deliver(&message("alice@example.test"))
            .await
            .expect_err("login must fail");
        assert!(!err.is_transient(), "{mechanism:?}: {err}");
        let said = everything_said(&err);
        assert!(said.contains("535"), "{mechanism:?}: {said}");
        assert!(!said.contains("wrong-password"), "{said}");
        assert_no_secrets(&said);
    }
    assert!(server.received().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_not_listening_is_transient() {
    // Needs no Python: nothing listens on the port.
    let port = support::CLOSED_PORT;
    let transport = SmtpTransport::new(config(port)).unwrap();
    let err = transport
        .deliver(&message("alice@example.test"))
        .await
        .expect_err("nothing listens");
    assert!(err.is_transient(), "{}", everything_said(&err));
    assert!(
        err.to_string().contains("cannot reach the SMTP server"),
        "{err}"
    );
    assert_no_secrets(&everything_said(&err));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_recipient_is_refused_before_connecting() {
    // Nothing listens on the port: a connection attempt would give a *transient* error.
    let port = support::CLOSED_PORT;
    let transport = SmtpTransport::new(config(port)).unwrap();
    for bad in [
        "alice@@example.test",
        "no-at-sign",
        "alice@exa mple.test",
        "<alice@example.test>",
    ] {
        let err = transport.deliver(&message(bad)).await.expect_err(bad);
        assert!(!err.is_transient(), "{bad}: {err}");
        assert!(
            err.to_string().contains(&format!("\"{bad}\"")),
            "error must name {bad}: {err}"
        );
        assert_no_secrets(&everything_said(&err));
    }

    let mut sms = message("alice@example.test");
    sms.destination = Destination {
        channel: Channel::Sms,
        address: "+441234567890".into(),
        purpose: Default::default(),
    };
    let err = transport.deliver(&sms).await.expect_err("not email");
    assert!(!err.is_transient(), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_4xx_are_transient_and_5xx_permanent() {
    let Some(python) = support::python("replies_4xx_are_transient_and_5xx_permanent") else {
        return;
    };
    let server = Server::start(
        &python,
        &ServerOptions {
            tempfail_domain: Some("busy.example.test".into()),
            permfail_domain: Some("gone.example.test".into()),
            ..ServerOptions::default()
        },
    );
    let transport = SmtpTransport::new(config(server.port)).unwrap();

    let err = transport
        .deliver(&message("alice@busy.example.test"))
        .await
        .expect_err("451");
    assert!(err.is_transient(), "{}", everything_said(&err));
    assert!(err.to_string().contains("451"), "{err}");

    let err = transport
        .deliver(&message("alice@gone.example.test"))
        .await
        .expect_err("550");
    assert!(!err.is_transient(), "{}", everything_said(&err));
    assert!(err.to_string().contains("550"), "{err}");
    assert!(
        everything_said(&err).contains("No such user"),
        "server text is kept"
    );

    // The pooled connection still works after the rejections.
    transport
        .deliver(&message("alice@example.test"))
        .await
        .expect("delivered");
    assert_eq!(server.received().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_reply_repeating_the_code_is_withheld() {
    let Some(python) = support::python("server_reply_repeating_the_code_is_withheld") else {
        return;
    };
    let server = Server::start(
        &python,
        &ServerOptions {
            echo_reject: true,
            ..ServerOptions::default()
        },
    );
    let transport = SmtpTransport::new(config(server.port)).unwrap();
    let err = transport
        .deliver(&message("alice@example.test"))
        .await
        .expect_err("554");
    assert!(!err.is_transient());
    let said = everything_said(&err);
    assert!(said.contains("554"), "{said}");
    assert!(said.contains("withheld"), "{said}");
    assert_no_secrets(&said);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_certificate_is_permanent() {
    let Some(python) = support::python("untrusted_certificate_is_permanent") else {
        return;
    };
    let server = Server::start(
        &python,
        &ServerOptions {
            starttls: true,
            ..ServerOptions::default()
        },
    );
    // The test CA is not configured: the certificate chains to nothing trusted.
    let transport = SmtpTransport::new(SmtpConfig {
        host: "localhost".into(),
        security: SmtpSecurity::StartTls,
        ..config(server.port)
    })
    .unwrap();
    let err = transport
        .deliver(&message("alice@example.test"))
        .await
        .expect_err("untrusted certificate");
    assert!(!err.is_transient(), "{}", everything_said(&err));
    assert!(err.to_string().contains("TLS"), "{err}");
    assert!(server.received().is_empty());
}
