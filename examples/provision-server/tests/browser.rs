//! Browser test in headless Chromium (Debian's `chromium` and `chromium-driver`), driven
//! over WebDriver with `fantoccini`: console login, Reprovision for alice, the log line,
//! the policy page (a validation error, then a saved change), and the self-service form.
//!
//! Without Chromium the test is skipped (see `common::browser`).

mod common;

use std::time::Duration;

use common::browser::Browser;
use common::{PASSWORD, ServerProcess};
use fantoccini::Locator;

#[tokio::test(flavor = "multi_thread")]
async fn console_policy_and_self_service_in_headless_chromium() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("data"));
    let base = server.url.clone();
    browser.run(|c| async move { drive(&c, &base).await }).await;
}

async fn text_of(c: &fantoccini::Client, css: &str) -> Result<String, fantoccini::error::CmdError> {
    // Waits for the element: a click that submits a form returns before the next page.
    c.wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(css))
        .await?
        .text()
        .await
}

async fn drive(c: &fantoccini::Client, base: &str) -> Result<(), fantoccini::error::CmdError> {
    // Console login.
    c.goto(&format!("{base}/admin/")).await?;
    c.find(Locator::Id("password"))
        .await?
        .send_keys(PASSWORD)
        .await?;
    c.find(Locator::Id("login")).await?.click().await?;
    text_of(c, "#users").await?;
    assert!(c.current_url().await?.as_str().ends_with("/admin/users"));

    // Reprovision alice.
    c.find(Locator::Css("button[name=reprovision][value=alice]"))
        .await?
        .click()
        .await?;
    let message = text_of(c, "#message").await?;
    assert!(
        message.contains("Provision code created for user \"alice\""),
        "{message}"
    );
    let users = text_of(c, "#users").await?;
    assert!(users.contains("pending until"), "{users}");

    // The Log page shows the seed's lines.
    c.find(Locator::LinkText("Log")).await?.click().await?;
    text_of(c, "#log").await?;
    let log = text_of(c, "#log").await?;
    assert!(
        log.contains("Provision code created for user \"alice\""),
        "{log}"
    );
    assert!(
        log.contains(
            "Message added to message queue for user: alice, destination: alice@example.com."
        ),
        "{log}"
    );

    // Policy: 5 seconds is refused with a message on the page; 300 is saved.
    c.find(Locator::LinkText("Policy / Self-Reset"))
        .await?
        .click()
        .await?;
    text_of(c, "#save").await?;
    let validity = c.find(Locator::Id("validity_secs")).await?;
    validity.clear().await?;
    validity.send_keys("5").await?;
    c.find(Locator::Id("save")).await?.click().await?;
    let errors = text_of(c, "#errors").await?;
    assert!(
        errors.contains("validity_secs: must be between 10 and 1000000, got 5"),
        "{errors}"
    );
    let validity = c.find(Locator::Id("validity_secs")).await?;
    validity.clear().await?;
    validity.send_keys("300").await?;
    c.find(Locator::Id("allow_self_provision"))
        .await?
        .select_by_value("Yes")
        .await?;
    c.find(Locator::Id("save")).await?.click().await?;
    assert_eq!(text_of(c, "#message").await?, "Policy saved.");
    assert_eq!(
        c.find(Locator::Id("validity_secs"))
            .await?
            .prop("value")
            .await?
            .as_deref(),
        Some("300")
    );

    // The self-service form.
    c.goto(&format!("{base}/reset/provision")).await?;
    c.find(Locator::Id("username"))
        .await?
        .send_keys("alice")
        .await?;
    c.find(Locator::Id("provision")).await?.click().await?;
    let answer = text_of(c, "#message").await?;
    assert!(
        answer.starts_with("If the username is registered, a provision code has been sent"),
        "{answer}"
    );
    Ok(())
}
