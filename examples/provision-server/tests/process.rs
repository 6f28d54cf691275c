//! Process-level test: the built `provision-server` and `mobile-client` binaries, as a user
//! runs them.
//!
//! The `mobile-client` binary is looked up next to `provision-server` (`target/debug/`).
//! `cargo test --workspace` builds it; with `cargo test -p provision-server` alone it may be
//! missing, and the test then drives `mobile_client::run` in-process (and says so).

mod common;

use common::{ServerProcess, latest_code, mobile};

fn login(server: &str, user: &str, otc: &str) -> String {
    let _ = rustls::crypto::ring::default_provider().install_default();
    common::login_with(reqwest::Client::new(), server, user, otc)
}

#[test]
fn provision_download_login_and_reprovision_with_the_real_binaries() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = ServerProcess::start(&data);

    // The administrator reprovisions alice from the command line; the code lands in the outbox.
    // The command-line twin of the console's Unlock.
    let out = server.command(&["users", "unlock", "alice"]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("User \"alice\" was not locked."));
    let out = server.command(&["users", "unlock", "nobody"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Invalid Username"),
        "{out:?}"
    );
    let out = server.command(&["reprovision", "alice"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("Provision code sent to user \"alice\" at alice@example.com")
    );
    let (code, _url) = latest_code(&data, "alice");
    assert_eq!(code.len(), 10);

    // The phone provisions with the code and downloads 100 strings.
    let phone = dir.path().join("phone.json");
    let (ok, stdout, stderr) = mobile(
        &phone,
        &[
            "provision",
            "--server",
            &server.url,
            "--user",
            "alice",
            "--code",
            &code,
        ],
    );
    assert!(ok, "{stdout}{stderr}");
    assert!(
        stdout.contains(
            "Provisioning. Please wait...\nDevice Provisioned\nDownloaded 100 security strings"
        ),
        "{stdout}"
    );
    server.wait_for_output("User \"alice\" provisioned successfully");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&phone).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    // The same code does not work twice.
    let (ok, _, stderr) = mobile(
        &dir.path().join("other.json"),
        &[
            "provision",
            "--server",
            &server.url,
            "--user",
            "alice",
            "--code",
            &code,
        ],
    );
    assert!(!ok);
    // Uniform device errors (the default policy): a used code says only that it failed.
    assert!(stderr.contains("Provision Failure"), "{stderr}");

    // alice logs in with a one-time code (her demo PIN is 1234); a replay is refused.
    let (ok, otc, stderr) = mobile(&phone, &["otc", "--pin", "1234"]);
    assert!(ok, "{stderr}");
    let otc = otc.trim().to_owned();
    assert_eq!(otc.len(), 6);
    assert!(login(&server.url, "alice", &otc).contains("Login successful. Welcome, alice."));
    assert!(login(&server.url, "alice", &otc).contains("Login failed"));

    // Reprovision again; the new phone uses the one-step Provision URL (SSD with site DEMO).
    let out = server.command(&["reprovision", "alice"]);
    assert!(out.status.success());
    let (_, url) = latest_code(&data, "alice");
    assert!(
        url.contains("/smc/complete/?site=DEMO&user=alice&code="),
        "{url}"
    );
    let new_phone = dir.path().join("new-phone.json");
    let (ok, stdout, stderr) = mobile(&new_phone, &["provision", "--url", &url]);
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("Device Provisioned"));

    // The old phone is refused.
    let (ok, _, stderr) = mobile(&phone, &["strings"]);
    assert!(!ok);
    assert!(
        stderr.contains("Mobile request from unknown user; the user needs to reprovision"),
        "{stderr}"
    );
    server.wait_for_output("Mobile request from unknown user; the user needs to reprovision");

    // Seed errors from the client.
    let (_, _, e) = mobile(
        &dir.path().join("x.json"),
        &[
            "provision",
            "--site",
            "NOPE",
            "--ssd",
            &server.url,
            "--user",
            "alice",
            "--code",
            "1",
        ],
    );
    assert!(e.contains("Error Server, Unknown Server ID"), "{e}");
    let (_, _, e) = mobile(
        &dir.path().join("x.json"),
        &[
            "provision",
            "--server",
            &server.url,
            "--user",
            "nobody",
            "--code",
            "1234567890",
        ],
    );
    assert!(e.contains("Provision Failure"), "{e}");
    let (_, _, e) = mobile(
        &dir.path().join("x.json"),
        &[
            "provision",
            "--server",
            &server.url,
            "--user",
            " ",
            "--code",
            "1",
        ],
    );
    assert!(e.contains("User not set"), "{e}");

    // No secret reached the server's output through the log: the code appears only in the
    // outbox print-out, never in a log line.
    let output = server.output();
    for line in output.lines().filter(|l| l.contains("swivel_provision")) {
        assert!(
            !line.contains(&code) && !line.contains(&otc),
            "secret in log line: {line}"
        );
    }
}
