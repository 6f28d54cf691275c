//! Headless Chromium for the browser tests (Debian's `chromium` and `chromium-driver`),
//! driven over WebDriver with `fantoccini`.
//!
//! Without `/usr/bin/chromium` and `/usr/bin/chromedriver` (or `CHROMIUM` / `CHROMEDRIVER`)
//! [`Browser::start`] prints `SKIPPED: ...` and gives `None`, so the test passes without
//! checking anything, unless `SWIVEL_REQUIRE_BROWSER_TESTS=1`, when it fails.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::error::CmdError;
use fantoccini::{Client, ClientBuilder, Locator};

/// A child process killed on drop.
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

/// Chromium and chromedriver, or `None` after printing why the test is skipped (a panic
/// when `SWIVEL_REQUIRE_BROWSER_TESTS=1`).
fn programs() -> Option<(PathBuf, PathBuf)> {
    let found = program("CHROMIUM", "/usr/bin/chromium")
        .zip(program("CHROMEDRIVER", "/usr/bin/chromedriver"));
    if found.is_none() {
        let why = "SKIPPED: browser test needs chromium and chromedriver (apt-get install -y chromium chromium-driver)";
        if std::env::var("SWIVEL_REQUIRE_BROWSER_TESTS").as_deref() == Ok("1") {
            panic!("{why}, and SWIVEL_REQUIRE_BROWSER_TESTS=1");
        }
        eprintln!("{why}");
    }
    found
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts chromedriver on a free port and waits (at most 30 s) until it listens. A port
/// picked here may be taken by someone else before chromedriver binds it: tries up to
/// three ports when chromedriver exits instead of listening.
async fn start_chromedriver(driver: &Path) -> (u16, Killed) {
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

/// A WebDriver session in headless Chromium with a private profile; chromedriver is
/// killed and the profile removed on drop.
pub struct Browser {
    client: Client,
    _driver: Killed,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and opens a session (a 1280×1024 window), or `None` when the
    /// test is skipped (see the module documentation).
    pub async fn start() -> Option<Self> {
        let (chromium, driver) = programs()?;
        let (port, driver) = start_chromedriver(&driver).await;
        let profile = tempfile::tempdir().unwrap();
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": chromium,
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                         "--disable-background-networking", "--disable-component-update", "--disable-sync",
                         "--disable-dev-shm-usage", "--window-size=1280,1024",
                         format!("--user-data-dir={}", profile.path().display())],
            }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("WebDriver session");
        Some(Self {
            client,
            _driver: driver,
            _profile: profile,
        })
    }

    /// Runs `test` with the session, closes the session (also when `test` panics, so no
    /// Chromium is left behind), then fails the test on an error or a panic of `test`.
    pub async fn run<F, Fut>(self, test: F)
    where
        F: FnOnce(Client) -> Fut,
        Fut: Future<Output = Result<(), CmdError>> + Send + 'static,
    {
        let outcome = tokio::spawn(test(self.client.clone())).await;
        let _ = self.client.close().await;
        match outcome {
            Ok(result) => result.expect("WebDriver command"),
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
}

/// The text of the page's body once it contains `needle` (at most 20 s: a click that
/// submits a form returns before the next page is there). Fails the test with the text
/// the page shows when it never does.
pub async fn page_text_with(c: &Client, needle: &str) -> Result<String, CmdError> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        // Between two pages the body may be gone or stale: read again.
        let text = match c.find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if text.contains(needle) {
            return Ok(text);
        }
        assert!(
            Instant::now() < deadline,
            "the page ({}) never showed {needle:?}; it shows:\n{text}",
            c.current_url().await?
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An XPath for the button whose text starts with `label`.
pub fn button(label: &str) -> String {
    format!("//button[starts-with(normalize-space(.), '{label}')]")
}

/// An XPath for the link whose text starts with `label`.
pub fn link(label: &str) -> String {
    format!("//a[starts-with(normalize-space(.), '{label}')]")
}
