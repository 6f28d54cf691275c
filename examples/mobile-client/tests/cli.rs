//! The `mobile-client` binary's failures, without a server (the full flow against a real
//! server is in `examples/provision-server/tests/process.rs`).

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_mobile-client");

fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn closed_port() -> u16 {
    // Port 1 (tcpmux): nothing listens there, and no test server can be given it.
    1
}

#[test]
fn seed_words_for_local_failures() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("s.json");
    let state = state.to_str().unwrap();
    let server = format!("http://127.0.0.1:{}", closed_port());

    let (ok, _, e) = run(&[
        "--state",
        state,
        "provision",
        "--server",
        &server,
        "--user",
        "alice",
        "--code",
        "1234567890",
    ]);
    assert!(!ok);
    assert_eq!(e.trim(), "Error Server Connection");

    let (ok, _, e) = run(&[
        "--state",
        state,
        "provision",
        "--server",
        &server,
        "--user",
        " ",
        "--code",
        "1",
    ]);
    assert!(!ok);
    assert_eq!(e.trim(), "User not set");

    let (ok, _, e) = run(&[
        "--state",
        state,
        "provision",
        "--user",
        "alice",
        "--code",
        "1",
    ]);
    assert!(!ok);
    assert_eq!(e.trim(), "Error Server Connection", "no server details");

    let (ok, _, e) = run(&["--state", state, "strings"]);
    assert!(!ok);
    assert!(e.contains("Device not provisioned"), "{e}");
    let (ok, _, e) = run(&["--state", state, "otc", "--pin", "12"]);
    assert!(!ok);
    assert!(e.contains("PIN must be 4 to 10 digits"), "{e}");
    assert!(
        !std::path::Path::new(state).exists(),
        "nothing saved on failure"
    );
}
