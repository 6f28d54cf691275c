//! Browser test in headless Chromium (Debian's `chromium` and `chromium-driver`), driven
//! over WebDriver with `fantoccini`: console login, Reprovision for alice, the log line,
//! the policy page (a validation error, then a saved change), and the self-service form.
//!
//! Without `/usr/bin/chromium` and `/usr/bin/chromedriver` (or `CHROMIUM` /
//! `CHROMEDRIVER`) the test prints `SKIPPED: ...` and passes, unless
//! `SWIVEL_REQUIRE_BROWSER_TESTS=1`, when it fails.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{PASSWORD, ServerProcess};
use fantoccini::{ClientBuilder, Locator};

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn program(env: &str, default: &str) -> Option<PathBuf> {
    let p = PathBuf::from(std::env::var(env).unwrap_or_else(|_| default.to_owned()));
    p.exists().then_some(p)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts chromedriver on a free port and waits (at most 30 s) until it listens; tries up
/// to three ports if it exits first (its port was taken in between).
async fn start_chromedriver(driver: &std::path::Path) -> (u16, Killed) {
    for _ in 0..3 {
        let port = free_port();
        let mut child = Killed(
            Command::new(driver)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start chromedriver"),
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return (port, child);
            }
            if let Some(status) = child.0.try_wait().unwrap() {
                eprintln!("chromedriver on port {port} exited ({status}); trying another port");
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    panic!("chromedriver exited three times without listening");
}

#[tokio::test(flavor = "multi_thread")]
async fn console_policy_and_self_service_in_headless_chromium() {
    let (Some(chromium), Some(driver)) = (
        program("CHROMIUM", "/usr/bin/chromium"),
        program("CHROMEDRIVER", "/usr/bin/chromedriver"),
    ) else {
        let why = "SKIPPED: browser test needs chromium and chromedriver (apt-get install -y chromium chromium-driver)";
        if std::env::var("SWIVEL_REQUIRE_BROWSER_TESTS").as_deref() == Ok("1") {
            panic!("{why}, and SWIVEL_REQUIRE_BROWSER_TESTS=1");
        }
        eprintln!("{why}");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("data"));

    // A port picked here may be taken by someone else before chromedriver binds it: try
    // again on a new port when chromedriver exits instead of listening.
    let (port, _driver) = start_chromedriver(&driver).await;
    let profile = dir.path().join("profile");
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": chromium,
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--disable-dev-shm-usage", format!("--user-data-dir={}", profile.display())],
        }),
    );
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("WebDriver session");
    let result = drive(&client, &server.url).await;
    let _ = client.close().await;
    result.unwrap();
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
