//! The HTTP backends against a real HTTP server on loopback (wiremock): the exact request
//! each one sends, and how gateway answers and network failures are classified.

mod common;

use std::time::Duration;

use common::{CODE, assert_no_secrets, closed_port, default_text, message};
use serde_json::json;
use swivel_provision::{Destination, ProvisionMessage, Transport, TransportError};
use swivel_provision_sms::{SmsConfig, SmsOptions, SmsTransport, WebhookBody, WebhookMethod};
use wiremock::matchers::{basic_auth, body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TO: &str = "+15551234567";
const TWILIO_PATH: &str = "/2010-04-01/Accounts/AC0123456789/Messages.json";

fn twilio(base_url: &str, options: SmsOptions) -> SmsTransport {
    SmsTransport::new(SmsConfig::Twilio {
        base_url: base_url.to_owned(),
        account_sid: "AC0123456789".into(),
        auth_token: "tw-token-secret".to_owned().into(),
        from: "+15005550006".into(),
        options,
    })
    .expect("valid twilio config")
}

fn webhook(url: &str, body: WebhookBody, options: SmsOptions) -> SmsTransport {
    let headers = [
        (
            "Authorization".to_owned(),
            "Bearer hook-secret".to_owned().into(),
        ),
        ("X-Api-Key".to_owned(), "key-secret".to_owned().into()),
    ]
    .into_iter()
    .collect();
    SmsTransport::new(SmsConfig::Webhook {
        url: url.to_owned(),
        method: WebhookMethod::Post,
        headers,
        body,
        options,
    })
    .expect("valid webhook config")
}

fn json_body() -> WebhookBody {
    WebhookBody::Json(json!({
        "to": "{to}",
        "msisdn": "{to_digits}",
        "content": { "text": "{text}", "sender": "Swivel" },
        "flash": false
    }))
}

fn form(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn twilio_posts_the_exact_form_with_basic_auth() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(TWILIO_PATH))
        .and(basic_auth("AC0123456789", "tw-token-secret"))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(json!({"sid": "SM1", "status": "queued"})),
        )
        .expect(1)
        .mount(&server)
        .await;

    let sms = twilio(&server.uri(), SmsOptions::default());
    sms.deliver(&message(TO)).await.expect("delivered");

    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        form(&requests[0].body),
        pairs(&[
            ("To", TO),
            ("From", "+15005550006"),
            ("Body", &default_text())
        ])
    );
}

#[tokio::test]
async fn twilio_base_url_with_trailing_slash_and_custom_text() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(TWILIO_PATH))
        .respond_with(ResponseTemplate::new(201))
        .expect(1)
        .mount(&server)
        .await;
    let options = SmsOptions {
        text: Some("{username}: {code} ({validity_minutes} min) {link}".into()),
        ..SmsOptions::default()
    };
    let sms = twilio(&format!("{}/", server.uri()), options);
    sms.deliver(&message(TO)).await.expect("delivered");
    let requests = server.received_requests().await.unwrap();
    let body = form(&requests[0].body);
    assert_eq!(
        body[2],
        (
            "Body".to_owned(),
            format!("alice: {CODE} (10 min) {}", common::LINK)
        )
    );
}

#[tokio::test]
async fn webhook_sends_json_template_with_secret_headers() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/send"))
        .and(header("authorization", "Bearer hook-secret"))
        .and(header("x-api-key", "key-secret"))
        .and(header("content-type", "application/json"))
        .and(body_json(json!({
            "to": TO,
            "msisdn": "15551234567",
            "content": { "text": default_text(), "sender": "Swivel" },
            "flash": false
        })))
        .respond_with(ResponseTemplate::new(202))
        .expect(1)
        .mount(&server)
        .await;

    let sms = webhook(
        &format!("{}/api/send", server.uri()),
        json_body(),
        SmsOptions::default(),
    );
    sms.deliver(&message(TO)).await.expect("delivered");
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn webhook_sends_form_template_in_order_with_put() {
    let server = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path("/sms"))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    let sms = SmsTransport::new(SmsConfig::Webhook {
        url: format!("{}/sms", server.uri()),
        method: WebhookMethod::Put,
        headers: Default::default(),
        body: WebhookBody::Form(vec![
            ("number".into(), "{to_digits}".into()),
            ("message".into(), "{text}".into()),
            ("route".into(), "otp {to}".into()),
        ]),
        options: SmsOptions::default(),
    })
    .unwrap();
    sms.deliver(&message(TO)).await.expect("delivered");
    let requests = server.received_requests().await.unwrap();
    assert_eq!(
        form(&requests[0].body),
        pairs(&[
            ("number", "15551234567"),
            ("message", &default_text()),
            ("route", &format!("otp {TO}")),
        ])
    );
}

/// Delivers one message through `sms` to a server answering `status`.
async fn answer(
    status: u16,
    body: serde_json::Value,
    make: impl Fn(&str) -> SmsTransport,
) -> TransportError {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(status).set_body_json(body))
        .expect(1)
        .mount(&server)
        .await;
    let sms = make(&server.uri());
    let err = sms
        .deliver(&message(TO))
        .await
        .expect_err("gateway refused");
    assert_no_secrets(&err);
    assert!(err.to_string().contains(TO), "names the number: {err}");
    assert!(
        err.to_string().contains(&status.to_string()),
        "names the status: {err}"
    );
    err
}

fn twilio_at(uri: &str) -> SmsTransport {
    twilio(uri, SmsOptions::default())
}

fn webhook_at(uri: &str) -> SmsTransport {
    webhook(&format!("{uri}/send"), json_body(), SmsOptions::default())
}

#[tokio::test]
async fn twilio_classifies_gateway_answers() {
    for status in [429, 500, 503] {
        let err = answer(status, json!({"code": 20429}), twilio_at).await;
        assert!(err.is_transient(), "{status} must be transient: {err}");
    }
    for status in [401, 404] {
        let err = answer(status, json!({"code": 20003}), twilio_at).await;
        assert!(!err.is_transient(), "{status} must be permanent: {err}");
    }
    // Twilio's "invalid To number": permanent, and its numeric code is kept; its message
    // (which a gateway could fill with anything) is not.
    let err = answer(
        400,
        json!({"code": 21211, "message": "The 'To' number 7Q4XK2M9PL is not valid", "status": 400}),
        twilio_at,
    )
    .await;
    assert!(!err.is_transient(), "{err}");
    assert!(err.to_string().contains("21211"), "{err}");
}

#[tokio::test]
async fn webhook_classifies_gateway_answers() {
    for status in [429, 500, 502] {
        let err = answer(status, json!({"echo": CODE}), webhook_at).await;
        assert!(err.is_transient(), "{status} must be transient: {err}");
    }
    for status in [400, 403, 422] {
        let err = answer(status, json!({"echo": CODE}), webhook_at).await;
        assert!(!err.is_transient(), "{status} must be permanent: {err}");
    }
}

#[tokio::test]
async fn refused_connection_is_transient() {
    let uri = format!("http://127.0.0.1:{}", closed_port());
    for sms in [twilio_at(&uri), webhook_at(&uri)] {
        let err = sms
            .deliver(&message(TO))
            .await
            .expect_err("nothing listens");
        assert!(err.is_transient(), "{} : {err}", sms.backend_name());
        assert!(err.to_string().contains("connect"), "{err}");
        assert_no_secrets(&err);
    }
}

#[tokio::test]
async fn timeout_is_transient() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_delay(Duration::from_secs(4)))
        .mount(&server)
        .await;
    let options = SmsOptions {
        timeout_secs: 1,
        ..SmsOptions::default()
    };
    let sms = twilio(&server.uri(), options);
    let err = sms.deliver(&message(TO)).await.expect_err("times out");
    assert!(err.is_transient(), "{err}");
    assert!(err.to_string().contains("timed out"), "{err}");
    assert_no_secrets(&err);
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(302).insert_header("location", "http://127.0.0.1:9/elsewhere"),
        )
        .expect(1)
        .mount(&server)
        .await;
    let err = twilio_at(&server.uri())
        .deliver(&message(TO))
        .await
        .expect_err("redirect refused");
    assert!(!err.is_transient(), "{err}");
}

#[tokio::test]
async fn bad_numbers_are_refused_before_any_request() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201))
        .expect(0)
        .mount(&server)
        .await;
    for sms in [twilio_at(&server.uri()), webhook_at(&server.uri())] {
        for bad in [
            "5551234567",
            "+0123456789",
            "+1 555 123 4567",
            "+1234567890123456",
        ] {
            let err = sms.deliver(&message(bad)).await.expect_err("not E.164");
            assert!(!err.is_transient(), "{bad}: {err}");
            assert!(err.to_string().contains(bad), "names {bad}: {err}");
            assert_no_secrets(&err);
        }
        // An email destination is not for this transport.
        let mut m = message(TO);
        m.destination = Destination::email("alice@example.com").unwrap();
        let err = sms.deliver(&m).await.expect_err("not SMS");
        assert!(!err.is_transient());
    }
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn link_only_message_sends_the_link() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201))
        .mount(&server)
        .await;
    let mut m = message(TO);
    m = ProvisionMessage::new(
        m.username.clone(),
        m.destination.clone(),
        None,
        ProvisionMessage::links_for_test(None, None, Some(common::LINK)),
        m.expires_at,
        m.validity_secs,
    );
    twilio_at(&server.uri()).deliver(&m).await.unwrap();
    let requests = server.received_requests().await.unwrap();
    assert_eq!(
        form(&requests[0].body)[2].1,
        format!("Provision: {} Valid 10 min.", common::LINK)
    );
}

#[test]
fn config_errors_name_the_setting() {
    let bad_url = SmsTransport::new(SmsConfig::Twilio {
        base_url: "ftp://gateway".into(),
        account_sid: "AC1".into(),
        auth_token: "t".to_owned().into(),
        from: "+15005550006".into(),
        options: SmsOptions::default(),
    })
    .unwrap_err();
    assert_eq!(bad_url.setting, "base_url");

    let no_text = SmsTransport::new(SmsConfig::Webhook {
        url: "https://gw.example/send".into(),
        method: WebhookMethod::Post,
        headers: Default::default(),
        body: WebhookBody::Json(json!({"to": "{to}"})),
        options: SmsOptions::default(),
    })
    .unwrap_err();
    assert_eq!(no_text.setting, "body");

    let bad_template = SmsTransport::new(SmsConfig::Twilio {
        base_url: "https://gw.example".into(),
        account_sid: "AC1".into(),
        auth_token: "t".to_owned().into(),
        from: "+15005550006".into(),
        options: SmsOptions {
            text: Some("Your code is {cod}".into()),
            ..SmsOptions::default()
        },
    })
    .unwrap_err();
    assert_eq!(bad_template.setting, "text");

    let bad_timeout = SmsTransport::new(SmsConfig::Twilio {
        base_url: "https://gw.example".into(),
        account_sid: "AC1".into(),
        auth_token: "t".to_owned().into(),
        from: "+15005550006".into(),
        options: SmsOptions {
            timeout_secs: 0,
            ..SmsOptions::default()
        },
    })
    .unwrap_err();
    assert_eq!(bad_timeout.setting, "timeout_secs");
}
