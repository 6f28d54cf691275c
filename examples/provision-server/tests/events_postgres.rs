//! The shared event log across two built `provision-server` instances on one PostgreSQL
//! schema (fresh, dropped at the end): an API reprovision on instance "alpha" is listed by
//! instance "beta"'s `GET /api/v1/events`, with alpha's instance name, and both consoles'
//! Log pages show it. Without
//! `SWIVEL_TEST_POSTGRES_URL` the test prints `SKIPPED: ...` and passes, unless
//! `SWIVEL_REQUIRE_POSTGRES_TESTS=1`.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::postgres::Schema;
use common::{ServerProcess, http_bearer};

const TOKEN: &str = "events-test-token-0123456789abcdef0123456789";

fn write_config(dir: &Path, instance: &str, url: &str, schema: &str) -> String {
    let path = dir.join(format!("{instance}.toml"));
    let text = format!(
        "database = {}\ninstance_name = \"{instance}\"\n[postgres]\nschema = \"{schema}\"\npool_size = 4\n[events]\nretention_days = 30\n",
        toml::Value::String(url.to_owned())
    );
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn events(server: &ServerProcess, query: &str) -> serde_json::Value {
    let (status, body) = http_bearer(
        &server.addr(),
        "GET",
        &format!("/api/v1/events{query}"),
        TOKEN,
        Duration::from_secs(10),
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// Sends `request` (a whole HTTP/1.1 request with `Connection: close`) and returns the whole
/// answer, head and body.
fn raw(addr: &str, request: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

/// The first `name=value` of a `Set-Cookie` header in `answer`.
fn set_cookie(answer: &str) -> String {
    answer
        .lines()
        .find_map(|l| {
            l.strip_prefix("set-cookie: ")
                .or(l.strip_prefix("Set-Cookie: "))
        })
        .and_then(|c| c.split(';').next())
        .unwrap_or_else(|| panic!("no cookie in {answer}"))
        .to_owned()
}

/// Percent-encodes every byte but ASCII letters and digits (a form value).
fn form_value(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Logs in to `server`'s console with `password` and returns its Log page.
fn log_page(server: &ServerProcess, password: &str) -> String {
    let addr = server.addr();
    let form = raw(
        &addr,
        &format!("GET /admin/login HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    );
    let nonce = set_cookie(&form);
    let csrf = form
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no CSRF token in {form}"));
    let body = format!(
        "csrf={}&password={}",
        form_value(csrf),
        form_value(password)
    );
    let login = raw(
        &addr,
        &format!(
            "POST /admin/login HTTP/1.1\r\nHost: {addr}\r\nCookie: {nonce}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    assert!(login.starts_with("HTTP/1.1 303"), "{login}");
    let session = set_cookie(&login);
    let page = raw(
        &addr,
        &format!(
            "GET /admin/log HTTP/1.1\r\nHost: {addr}\r\nCookie: {session}\r\nConnection: close\r\n\r\n"
        ),
    );
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    page
}

#[test]
fn an_event_on_one_instance_is_listed_by_the_other() {
    let test = "an_event_on_one_instance_is_listed_by_the_other";
    let Some(url) = common::postgres::url(test) else {
        return;
    };
    // Declared before the servers, so that they are killed before the schema is dropped.
    let schema = Schema::new(&url, "swivel_events");
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("api-token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let token_arg = token_file.to_str().unwrap();
    let alpha_config = write_config(dir.path(), "alpha", &url, &schema.name);
    let beta_config = write_config(dir.path(), "beta", &url, &schema.name);
    let alpha_data = dir.path().join("alpha-data");
    let alpha = ServerProcess::start_with(
        &alpha_data,
        &["--config", &alpha_config, "--api-token-file", token_arg],
    );
    assert!(
        alpha.output().contains("instance: alpha"),
        "{}",
        alpha.output()
    );
    let beta_data =
        common::data_dir_with_key(dir.path(), "beta-data", &alpha_data.join("server.key"));
    let beta = ServerProcess::start_with(
        &beta_data,
        &["--config", &beta_config, "--api-token-file", token_arg],
    );
    assert!(
        beta.output().contains("instance: beta"),
        "{}",
        beta.output()
    );

    let (status, body) = http_bearer(
        &alpha.addr(),
        "POST",
        "/api/v1/users/alice/reprovision",
        TOKEN,
        Duration::from_secs(10),
    )
    .unwrap();
    assert_eq!(status, 202, "{body}");

    // Alpha writes its events in the background: beta lists them once they are stored.
    let deadline = Instant::now() + Duration::from_secs(20);
    let created = loop {
        let page = events(&beta, "?user=alice&limit=10");
        let found = page["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["kind"] == "code_created")
            .cloned();
        if let Some(found) = found {
            break found;
        }
        assert!(
            Instant::now() < deadline,
            "beta never listed alpha's event: {page}; alpha:\n{}",
            alpha.output()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(created["instance"], "alpha");
    assert_eq!(created["username"], "alice");
    assert_eq!(created["line"], "Provision code created for user \"alice\"");
    assert_eq!(created["failure"], false);
    // Both instances list the same events.
    let from_alpha = events(&alpha, "?user=alice&limit=10");
    assert!(
        from_alpha["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["id"] == created["id"] && e["instance"] == "alpha"),
        "{from_alpha}"
    );
    // The consoles of both instances show it (the password alpha generated, shared).
    let output = alpha.output();
    let password = output
        .lines()
        .find_map(|l| l.trim().strip_prefix("console password: "))
        .unwrap_or_else(|| panic!("alpha generated no console password: {output}"));
    let row = "<td>alpha</td><td>Provision code created for user &quot;alice&quot;</td>";
    for server in [&alpha, &beta] {
        let page = log_page(server, password);
        assert!(page.contains(row), "{page}");
    }
    // Nothing of alice under another user.
    let carol = events(&beta, "?user=carol");
    assert_eq!(carol["events"], serde_json::json!([]));
    assert_eq!(carol["next_before"], serde_json::Value::Null);
    drop((alpha, beta));
    drop(schema);
}
