//! The users pages of the console in headless Chromium: Add user, Reprovision, Revoke, a
//! lock from wrong codes on the device endpoint, Unlock and Delete, each checked on what the
//! page shows; a screenshot of the users page is kept (see [`screenshot_path`]).
//!
//! Without Chromium the test is skipped (see `common::browser`).

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::browser::{Browser, button, link, page_text_with};
use common::{PASSWORD, ServerProcess, http_call, latest_code, outbox_file_user, outbox_files};
use fantoccini::error::CmdError;
use fantoccini::{Client, Locator};

/// Wrong codes in a row that lock an account (the server's policy, set at its start).
const LOCK_AFTER: u32 = 3;

/// Where the screenshot of the users page goes: `$SWIVEL_ARTIFACT_DIR/console-users.png`,
/// else `artifacts/console-users.png` in `$CARGO_TARGET_DIR` or the workspace's `target`.
fn screenshot_path() -> PathBuf {
    let dir = std::env::var_os("SWIVEL_ARTIFACT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"))
                .join("artifacts")
        });
    dir.join("console-users.png")
}

#[tokio::test(flavor = "multi_thread")]
async fn users_console_add_reprovision_revoke_unlock_delete_in_headless_chromium() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("provision.toml");
    std::fs::write(
        &config,
        format!("[policy]\nmax_account_failures = {LOCK_AFTER}\n"),
    )
    .unwrap();
    let server = ServerProcess::start_with(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let (base, addr, data) = (server.url.clone(), server.addr(), server.data_dir.clone());
    browser
        .run(|c| async move { drive(&c, &base, &addr, &data).await })
        .await;
}

/// Clicks the button whose text starts with `label`.
async fn press(c: &Client, label: &str) -> Result<(), CmdError> {
    c.find(Locator::XPath(&button(label))).await?.click().await
}

/// One wrong provision code for `user` on the public device endpoint (AgentXML), as a
/// device would send it; the answer must be the uniform failure.
fn wrong_code(addr: &str, user: &str) {
    let xml = format!(
        "<SASRequest><Version>3.6</Version><Action>provision</Action><Username>{user}</Username>\
         <ProvisionCode>0000000000</ProvisionCode></SASRequest>"
    );
    let (status, body) = http_call(
        addr,
        "POST",
        "/pinsafe/AgentXML",
        &["Content-Type: text/xml"],
        &xml,
        Duration::from_secs(10),
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("<Result>FAIL</Result>") && body.contains("<Error>Provision Failure</Error>"),
        "{body}"
    );
}

async fn drive(c: &Client, base: &str, addr: &str, data: &Path) -> Result<(), CmdError> {
    // Console login.
    c.goto(&format!("{base}/admin/")).await?;
    c.find(Locator::Css("input[name='password']"))
        .await?
        .send_keys(PASSWORD)
        .await?;
    press(c, "Log in").await?;
    page_text_with(c, "Add user").await?;
    assert!(c.current_url().await?.as_str().ends_with("/admin/users"));

    // Add user: an email destination, in the mobile group. The users page has a hidden
    // `username` in every row's buttons, so the fields are looked up within the form.
    let form = c
        .find(Locator::XPath(&format!("//form[.{}]", button("Add user"))))
        .await?;
    form.find(Locator::Css("input[name='username']"))
        .await?
        .send_keys("erin")
        .await?;
    form.find(Locator::Css("input[name='email']"))
        .await?
        .send_keys("erin@example.com")
        .await?;
    let group = form
        .find(Locator::Css("input[name='mobile_group']"))
        .await?;
    group.click().await?;
    assert!(group.is_selected().await?, "the box is checked");
    form.find(Locator::XPath(&format!(".{}", button("Add user"))))
        .await?
        .click()
        .await?;
    let page = page_text_with(c, "User \"erin\" saved.").await?;
    assert_eq!(c.title().await?, "User erin");
    assert!(page.contains("erin@example.com"), "{page}");
    assert!(
        c.find(Locator::Css("input[name='mobile_group']"))
            .await?
            .is_selected()
            .await?,
        "erin is in the mobile group"
    );

    // Her page from the users list.
    c.goto(&format!("{base}/admin/users")).await?;
    page_text_with(c, "Add user").await?;
    c.find(Locator::LinkText("erin")).await?.click().await?;
    let page = page_text_with(c, "erin@example.com").await?;
    assert_eq!(c.title().await?, "User erin");
    assert!(!page.contains("pending until"), "{page}");
    assert!(!page.contains("locked since"), "{page}");

    // Reprovision: a pending code, which the page never shows.
    press(c, "Reprovision").await?;
    let page = page_text_with(c, "Provision code created for user \"erin\"").await?;
    assert!(
        page.contains("it goes to erin@example.com and is valid until"),
        "{page}"
    );
    assert!(
        page.contains("attempts left, asked by an administrator"),
        "{page}"
    );
    assert!(page.contains("pending until"), "{page}");
    common::wait_for(
        "erin's message in the outbox",
        Duration::from_secs(30),
        || {
            outbox_files(data)
                .iter()
                .any(|f| outbox_file_user(f) == Some("erin"))
        },
    );
    let (code, _) = latest_code(data, "erin");
    assert!(!page.contains(&code), "the console never shows the code");

    // Revoke: neither a pending code nor a device, and nothing left to revoke.
    press(c, "Revoke").await?;
    let page = page_text_with(
        c,
        "The device and pending code of user \"erin\" were revoked.",
    )
    .await?;
    assert!(!page.contains("pending until"), "{page}");
    assert!(!page.contains("provisioned at"), "{page}");
    assert!(
        c.find_all(Locator::XPath(&button("Revoke")))
            .await?
            .is_empty(),
        "no Revoke button without a device or a code"
    );

    // Wrong codes from a device lock the account; the page shows it after a reload.
    for _ in 0..LOCK_AFTER {
        wrong_code(addr, "erin");
    }
    c.refresh().await?;
    let page = page_text_with(c, "locked since").await?;
    assert!(
        page.contains(&format!("after {LOCK_AFTER} failed attempts")),
        "{page}"
    );

    // Unlock.
    press(c, "Unlock").await?;
    let page = page_text_with(c, "User \"erin\" unlocked.").await?;
    assert!(page.contains("not locked"), "{page}");
    assert!(!page.contains("locked since"), "{page}");
    assert!(!page.contains("failed attempts"), "{page}");
    assert!(
        c.find_all(Locator::XPath(&button("Unlock")))
            .await?
            .is_empty(),
        "no Unlock button on an unlocked account"
    );

    // The users page lists erin: its screenshot is kept.
    c.goto(&format!("{base}/admin/users")).await?;
    let page = page_text_with(c, "erin@example.com").await?;
    assert!(page.contains("User Management"), "{page}");
    c.find(Locator::LinkText("erin")).await?;
    save_screenshot(&c.screenshot().await?);

    // Delete, after the confirmation step.
    c.find(Locator::LinkText("erin")).await?.click().await?;
    page_text_with(c, "erin@example.com").await?;
    c.find(Locator::XPath(&link("Delete user")))
        .await?
        .click()
        .await?;
    let page = page_text_with(c, "Delete user \"erin\"?").await?;
    assert!(page.contains("This cannot be undone."), "{page}");
    press(c, "Delete user").await?;
    let page = page_text_with(c, "User \"erin\" deleted.").await?;
    assert!(!page.contains("erin@example.com"), "{page}");
    assert!(
        c.find_all(Locator::LinkText("erin")).await?.is_empty(),
        "the users page no longer lists erin"
    );
    assert!(
        page.contains("alice@example.com"),
        "the others stay: {page}"
    );
    Ok(())
}

/// Writes the screenshot to [`screenshot_path`] (creating the directory) and checks that
/// the file is a PNG of some size (a blank page compresses to a few hundred bytes).
fn save_screenshot(png: &[u8]) {
    let path = screenshot_path();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, png).unwrap();
    eprintln!("screenshot: {}", path.display());
    let saved = std::fs::read(&path).unwrap();
    assert!(
        saved.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG",
        path.display()
    );
    assert!(
        saved.len() > 10_000,
        "{} is near empty: {} bytes",
        path.display(),
        saved.len()
    );
}
