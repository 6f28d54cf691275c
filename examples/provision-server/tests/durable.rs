//! The durable delivery queue of the built server on its SQLite default: messages queued
//! behind a transport that fails transiently survive a SIGKILL and are delivered once after
//! a restart, their codes redeemable; a message whose code expired meanwhile is dropped
//! with an event and never sent.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{
    ServerProcess, api_json, http_bearer, http_call, outbox_file_user, outbox_files, wait_for,
};

const TOKEN: &str = "durable-queue-test-token-0123456789";
const USERS: usize = 10;

/// Config and token files; a fast retry and a short lease.
fn files(dir: &Path, validity_secs: u32) -> (String, String) {
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[policy]\nvalidity_secs = {validity_secs}\n\n[delivery]\nmax_attempts = 100\n\
             initial_backoff_ms = 50\nmax_backoff_secs = 1\nlease_secs = 5\npoll_interval_ms = 50\n"
        ),
    )
    .unwrap();
    let token = dir.join("token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    (config.display().to_string(), token.display().to_string())
}

fn start(data: &Path, config: &str, token: &str) -> ServerProcess {
    ServerProcess::start_with(data, &["--config", config, "--api-token-file", token])
}

fn api(server: &ServerProcess, method: &str, path: &str, body: &str) -> (u16, String) {
    api_json(&server.addr(), TOKEN, method, path, body)
}

/// Adds `USERS` users and asks a code for each through the API (queued: 200).
fn queue_codes(server: &ServerProcess) -> Vec<String> {
    let names: Vec<String> = (0..USERS).map(|i| format!("queued{i}")).collect();
    for name in &names {
        let (status, body) = api(
            server,
            "PUT",
            &format!("/api/v1/users/{name}"),
            &format!(r#"{{"email":"{name}@example.com","mobile_group":true}}"#),
        );
        assert!((200..300).contains(&status), "{status} {body}");
        let (status, body) = http_bearer(
            &server.addr(),
            "POST",
            &format!("/api/v1/users/{name}/reprovision"),
            TOKEN,
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(status, 202, "{body}");
    }
    names
}

/// Blocks the outbox: a file where its directory belongs makes every delivery fail
/// transiently.
fn block_outbox(data: &Path) {
    std::fs::create_dir_all(data).unwrap();
    std::fs::write(data.join("outbox"), "not a directory").unwrap();
}

fn field<'a>(text: &'a str, name: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

#[test]
fn queued_messages_survive_sigkill_and_are_delivered_once_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (config, token) = files(dir.path(), 600);
    block_outbox(&data);
    let server = start(&data, &config, &token);
    let names = queue_codes(&server);
    server.wait_for_output("will retry");
    // SIGKILL (drop kills the child) while every message waits for a retry.
    drop(server);
    std::fs::remove_file(data.join("outbox")).unwrap();
    let server = start(&data, &config, &token);
    wait_for("every queued message", Duration::from_secs(60), || {
        outbox_files(&data).len() >= USERS
    });
    // Some more time for a duplicate to show up, if there were one.
    std::thread::sleep(Duration::from_secs(1));
    let files = outbox_files(&data);
    assert_eq!(files.len(), USERS, "each message once: {files:?}");
    let mut delivered: Vec<String> = files
        .iter()
        .map(|f| {
            outbox_file_user(f)
                .expect("a queued message's name")
                .to_owned()
        })
        .collect();
    delivered.sort();
    let mut expected = names.clone();
    expected.sort();
    assert_eq!(delivered, expected, "one message per user");
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let user = field(&text, "User:");
        let code = field(&text, "Provision code:");
        assert!(field(&text, "Message-ID:").ends_with("@swivel-provision>"));
        let body = format!(
            "<SASRequest><Version>3.6</Version><Action>provision</Action>\
             <Username>{user}</Username><ProvisionCode>{code}</ProvisionCode></SASRequest>"
        );
        let (status, answer) = http_call(
            &server.addr(),
            "POST",
            "/pinsafe/AgentXML",
            &["Content-Type: text/xml"],
            &body,
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(status, 200);
        assert!(
            answer.contains("<Result>PASS</Result>"),
            "{user}'s code redeems: {answer}"
        );
    }
}

#[test]
fn a_message_whose_code_expired_while_the_server_was_down_is_dropped_unsent() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (config, token) = files(dir.path(), 10);
    block_outbox(&data);
    let server = start(&data, &config, &token);
    queue_codes(&server);
    server.wait_for_output("will retry");
    drop(server);
    // The codes (10 s) expire while the server is down.
    std::thread::sleep(Duration::from_secs(11));
    std::fs::remove_file(data.join("outbox")).unwrap();
    let server = start(&data, &config, &token);
    wait_for("every job dropped", Duration::from_secs(30), || {
        server
            .output()
            .matches("the provision code expired first")
            .count()
            >= USERS
    });
    assert!(outbox_files(&data).is_empty(), "nothing was sent");
}
