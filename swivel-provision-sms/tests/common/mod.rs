//! Shared helpers of the integration tests.
#![allow(dead_code)]

use std::error::Error as _;

use swivel_provision::{Destination, ProvisionCode, ProvisionMessage, TransportError, Username};
use time::OffsetDateTime;

/// The code every test message carries.
pub(crate) const CODE: &str = "7Q4XK2M9PL";
/// The complete link every test message carries (with `_`, a GSM-7 character whose code
/// differs from ASCII).
pub(crate) const LINK: &str = "https://auth.example.com/smc/complete/?site=acme_1&code=7Q4XK2M9PL";
/// The default text for a message with [`CODE`] and [`LINK`] valid 10 minutes.
pub(crate) fn default_text() -> String {
    format!("Provision code: {CODE} {LINK} Valid 10 min.")
}

/// A provision message to `to` with the code and the complete link, valid 10 minutes.
pub(crate) fn message(to: &str) -> ProvisionMessage {
    ProvisionMessage::new(
        Username::parse("alice").unwrap(),
        Destination::sms(to).unwrap(),
        Some(ProvisionCode::new(CODE)),
        ProvisionMessage::links_for_test(None, None, Some(LINK)),
        OffsetDateTime::now_utc(),
        600,
    )
}

/// Asserts the error, its `Debug` and its whole source chain hold neither the code nor the
/// link.
pub(crate) fn assert_no_secrets(err: &TransportError) {
    let mut texts = vec![err.to_string(), format!("{err:?}")];
    let mut source = err.source();
    while let Some(s) = source {
        texts.push(s.to_string());
        source = s.source();
    }
    for t in texts {
        assert!(!t.contains(CODE), "error text holds the code: {t}");
        assert!(
            !t.contains("smc/complete"),
            "error text holds the link: {t}"
        );
    }
}

/// A loopback port nothing listens on: port 1 (tcpmux), which, unlike a port released by
/// another test, no test server can be given.
pub(crate) fn closed_port() -> u16 {
    1
}
