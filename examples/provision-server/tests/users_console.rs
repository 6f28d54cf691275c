//! The console's users pages through `app()` (no socket): pages of 50 that follow the
//! keyset cursor, searches, the user page's status and actions, CSRF refusals; the API
//! twins in process and the command-line twins with the built binary.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use provision_server::AppState;
use secrecy::ExposeSecret;
use swivel_provision::{Destination, Origin, UserEntry, Username};

mod common;
use common::fixture::{
    Fixture, between, console_login, detail, enc, fixture, get, json, post_form,
};
use common::oneshot::send;
use common::run_cli;

fn name(s: &str) -> Username {
    Username::parse(s).unwrap()
}

/// The usernames a users page lists, in order.
fn listed(body: &str) -> Vec<String> {
    let table = between(body, "<table id=\"users\">", "</table>").expect("the users table");
    table
        .split("<td><a href=\"/admin/users/")
        .skip(1)
        .map(|row| between(row, "\">", "</a>").unwrap().to_owned())
        .collect()
}

/// The "Next" link of a users page, unescaped.
fn next_link(body: &str) -> Option<String> {
    between(body, "<a id=\"next\" href=\"", "\"").map(|h| h.replace("&amp;", "&"))
}

async fn add_users(state: &AppState, n: usize) -> Vec<String> {
    let mut names = Vec::new();
    for i in 0..n {
        let user = format!("p-{i:03}");
        let entry = UserEntry::new(name(&user))
            .with_destination(Destination::email(&format!("{user}@example.com")).unwrap());
        state.backend().user_admin.put_user(&entry).await.unwrap();
        names.push(user);
    }
    names
}

#[tokio::test(flavor = "multi_thread")]
async fn users_pages_follow_the_cursor_without_gaps_or_repeats() {
    let f = fixture().await;
    let mut expected = add_users(&f.state, 120).await;
    expected.extend(["alice", "carol", "dave"].map(String::from));
    expected.sort();
    let (cookie, _) = console_login(&f.app).await;
    let mut seen: Vec<String> = Vec::new();
    let mut uri = "/admin/users".to_owned();
    let mut pages = 0;
    loop {
        let page = get(&f.app, &uri, Some(&cookie)).await;
        assert_eq!(page.status, StatusCode::OK, "{uri}");
        assert_eq!(page.headers[header::CACHE_CONTROL], "no-store");
        assert!(page.headers.contains_key(header::CONTENT_SECURITY_POLICY));
        let names = listed(&page.body);
        assert!(names.len() <= 50, "{uri}: {} rows", names.len());
        seen.extend(names);
        pages += 1;
        match next_link(&page.body) {
            Some(next) => uri = next,
            None => break,
        }
        assert!(pages < 10, "the cursor never ends");
    }
    assert_eq!(pages, 3, "123 users are three pages of 50");
    assert_eq!(seen, expected, "every user once, in order");
}

#[tokio::test(flavor = "multi_thread")]
async fn users_are_found_by_prefix_and_by_exact_destination() {
    let f = fixture().await;
    add_users(&f.state, 120).await;
    let (cookie, _) = console_login(&f.app).await;
    let page = get(&f.app, "/admin/users?prefix=p-01", Some(&cookie)).await;
    let expected: Vec<String> = (10..20).map(|i| format!("p-{i:03}")).collect();
    assert_eq!(listed(&page.body), expected);
    assert!(next_link(&page.body).is_none());
    // A prefix with 60 matches pages within the prefix.
    let page = get(&f.app, "/admin/users?prefix=p-0", Some(&cookie)).await;
    assert_eq!(listed(&page.body).len(), 50);
    let next = next_link(&page.body).expect("a second page");
    assert!(next.contains("prefix=p-0"), "{next}");
    let page = get(&f.app, &next, Some(&cookie)).await;
    let rest: Vec<String> = (50..100).map(|i| format!("p-{i:03}")).collect();
    assert_eq!(listed(&page.body), rest);

    let page = get(
        &f.app,
        "/admin/users?destination=alice%40example.com",
        Some(&cookie),
    )
    .await;
    assert_eq!(listed(&page.body), ["alice"]);
    for near in ["ALICE%40example.com", "alice%40example", "alice"] {
        let page = get(
            &f.app,
            &format!("/admin/users?destination={near}"),
            Some(&cookie),
        )
        .await;
        assert!(listed(&page.body).is_empty(), "{near}");
        assert!(page.body.contains("No users match."), "{near}");
    }
    // What was searched for is shown back escaped.
    let page = get(&f.app, "/admin/users?prefix=%3Cb%3E", Some(&cookie)).await;
    assert!(page.body.contains("value=\"&lt;b&gt;\""), "{}", page.body);
    assert!(!page.body.contains("<b>"));
    let page = get(&f.app, "/admin/users?after=%20", Some(&cookie)).await;
    assert_eq!(
        page.status,
        StatusCode::OK,
        "an empty cursor is the first page"
    );
    let page = get(&f.app, "/admin/users?sort=name", Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("unknown parameter"), "{}", page.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_user_page_shows_the_status_and_its_actions_change_it() {
    let f = fixture().await;
    let (cookie, csrf) = console_login(&f.app).await;
    let page = get(&f.app, "/admin/users/alice", Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("<td id=\"pending\">none</td>"),
        "{}",
        page.body
    );
    assert!(
        !page.body.contains("id=\"revoke\""),
        "nothing to revoke yet"
    );

    // Reprovision: pending until T with the attempts left and who asked.
    let r = post_form(
        &f.app,
        "/admin/users/alice/reprovision",
        &[("csrf", &csrf)],
        Some(&cookie),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(
        r.body
            .contains("Provision code created for user &quot;alice&quot;"),
        "{}",
        r.body
    );
    assert!(
        r.body.contains(
            "pending until 2024-01-01 00:10:00 UTC, 5 attempts left, asked by an administrator"
        ),
        "{}",
        r.body
    );
    let code = f.outbox.last_code_for(&name("alice")).unwrap();
    assert!(
        !r.body.contains(code.expose()),
        "the console never shows the code"
    );

    // The device, with its information and strings generation.
    let mut policy = f.state.provisioner().policy();
    policy.set("log_device_info", "Yes").unwrap();
    f.state.save_policy(policy).await.unwrap();
    f.state
        .provisioner()
        .redeem(
            &name("alice"),
            &code,
            swivel_provision::DeviceInfo::new(Some("Pixel <8>"), None, None),
        )
        .await
        .unwrap();
    let page = get(&f.app, "/admin/users/alice", Some(&cookie)).await;
    assert!(
        page.body.contains("provisioned at 2024-01-01 00:00:00 UTC (Pixel &lt;8&gt;), security strings generation 0"),
        "{}",
        page.body
    );

    // Revoke: the device is gone.
    let r = post_form(
        &f.app,
        "/admin/users/alice/revoke",
        &[("csrf", &csrf)],
        Some(&cookie),
    )
    .await;
    assert!(
        r.body
            .contains("The device and pending code of user &quot;alice&quot; were revoked."),
        "{}",
        r.body
    );
    assert!(r.body.contains("<td id=\"device\">none</td>"), "{}", r.body);
    assert!(
        f.state
            .provisioner()
            .status(&name("alice"))
            .await
            .unwrap()
            .device
            .is_none()
    );

    // Unlock clears a run of failures.
    f.state
        .provisioner()
        .request_provision(&name("alice"), Origin::Admin)
        .await
        .unwrap();
    let wrong = swivel_provision::ProvisionCode::new("0000000000");
    let _ = f
        .state
        .provisioner()
        .redeem(&name("alice"), &wrong, Default::default())
        .await;
    let page = get(&f.app, "/admin/users/alice", Some(&cookie)).await;
    assert!(
        page.body.contains("not locked; 1 failed attempts in a row"),
        "{}",
        page.body
    );
    let r = post_form(
        &f.app,
        "/admin/users/alice/unlock",
        &[("csrf", &csrf)],
        Some(&cookie),
    )
    .await;
    assert!(
        r.body.contains("User &quot;alice&quot; unlocked."),
        "{}",
        r.body
    );
    assert_eq!(
        f.state
            .provisioner()
            .status(&name("alice"))
            .await
            .unwrap()
            .failures,
        0
    );

    // Edit: destinations and group replaced; the PIN left empty is kept.
    let r = post_form(
        &f.app,
        "/admin/users/carol/edit",
        &[
            ("csrf", &csrf),
            ("email", "carol@example.org"),
            ("strings_phone", "+15555550100"),
            ("mobile_group", "on"),
            ("pin", ""),
        ],
        Some(&cookie),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(
        r.body.contains("User &quot;carol&quot; saved."),
        "{}",
        r.body
    );
    let carol = f
        .state
        .backend()
        .users
        .find_user(&name("carol"))
        .await
        .unwrap()
        .unwrap();
    assert!(carol.mobile_group);
    assert_eq!(
        carol.destinations,
        [
            Destination::email("carol@example.org").unwrap(),
            Destination::sms("+15555550100")
                .unwrap()
                .for_security_strings()
        ]
    );
    assert!(
        r.body.contains("value=\"carol@example.org\""),
        "the form shows the new values"
    );
    let pin = f
        .state
        .pins()
        .get(&name("carol"))
        .await
        .unwrap()
        .expect("PIN kept");
    assert_eq!(pin.expose(), "4321", "PIN kept");
    let r = post_form(
        &f.app,
        "/admin/users/carol/edit",
        &[("csrf", &csrf), ("email", "not\u{7}an address")],
        Some(&cookie),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);

    // Add user; a second add of the same name is refused.
    let r = post_form(
        &f.app,
        "/admin/users",
        &[
            ("csrf", &csrf),
            ("username", "erin"),
            ("email", "erin@example.com"),
        ],
        Some(&cookie),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("<title>User erin</title>"), "{}", r.body);
    let r = post_form(
        &f.app,
        "/admin/users",
        &[("csrf", &csrf), ("username", "erin")],
        Some(&cookie),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("already exists"), "{}", r.body);
    assert_eq!(
        f.state
            .backend()
            .users
            .find_user(&name("erin"))
            .await
            .unwrap()
            .unwrap()
            .destinations
            .len(),
        1,
        "the refused add changed nothing"
    );

    // Delete: the confirmation page changes nothing; its form deletes.
    f.state
        .provisioner()
        .request_provision(&name("erin"), Origin::Admin)
        .await
        .unwrap();
    let confirm = get(&f.app, "/admin/users/erin/delete", Some(&cookie)).await;
    assert!(
        confirm.body.contains("Delete user &quot;erin&quot;?"),
        "{}",
        confirm.body
    );
    assert!(confirm.body.contains("action=\"/admin/users/erin/delete\""));
    assert!(
        f.state
            .backend()
            .users
            .find_user(&name("erin"))
            .await
            .unwrap()
            .is_some()
    );
    let r = post_form(
        &f.app,
        "/admin/users/erin/delete",
        &[("csrf", &csrf)],
        Some(&cookie),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(
        r.body.contains("User &quot;erin&quot; deleted."),
        "{}",
        r.body
    );
    assert!(
        f.state
            .backend()
            .users
            .find_user(&name("erin"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        f.state
            .provisioner()
            .status(&name("erin"))
            .await
            .unwrap()
            .pending
            .is_none(),
        "code revoked"
    );
    let gone = get(&f.app, "/admin/users/erin", Some(&cookie)).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
}

/// Markup in a username and an address is shown as text on the users page, the user page
/// and the delete confirmation, never as markup.
#[tokio::test(flavor = "multi_thread")]
async fn usernames_and_addresses_with_markup_are_shown_escaped() {
    let f = fixture().await;
    let (cookie, csrf) = console_login(&f.app).await;
    let user = "x<script>\"'&y";
    let address = "a<script>\"'&b@example.com";
    let added = post_form(
        &f.app,
        "/admin/users",
        &[("csrf", &csrf), ("username", user), ("email", address)],
        Some(&cookie),
    )
    .await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.body);
    let shown_user = "x&lt;script&gt;&quot;'&amp;y";
    let shown_address = "a&lt;script&gt;&quot;'&amp;b@example.com";
    let path = format!("/admin/users/{}", enc(user));
    let users = get(&f.app, "/admin/users", Some(&cookie)).await;
    let user_page = get(&f.app, &path, Some(&cookie)).await;
    let confirm = get(&f.app, &format!("{path}/delete"), Some(&cookie)).await;
    for page in [&added, &users, &user_page, &confirm] {
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert!(!page.body.contains("<script>"), "{}", page.body);
        assert!(!page.body.contains("\"'&"), "{}", page.body);
    }
    // The users page: the link, the name, the destinations and the buttons' values.
    assert!(
        users.body.contains(&format!(
            "<td><a href=\"{path}\">{shown_user}</a></td><td>email: {shown_address}</td>"
        )),
        "{}",
        users.body
    );
    assert!(
        users
            .body
            .contains(&format!("name=\"username\" value=\"{shown_user}\"")),
        "{}",
        users.body
    );
    // The user page: the title, the destinations and the Edit form's value.
    for shown in [
        format!("<title>User {shown_user}</title>"),
        format!("<td id=\"destinations\">email: {shown_address}</td>"),
        format!("name=\"email\" id=\"email\" value=\"{shown_address}\""),
        format!("name=\"username\" value=\"{shown_user}\""),
    ] {
        assert!(
            user_page.body.contains(&shown),
            "{shown}: {}",
            user_page.body
        );
    }
    assert!(
        confirm
            .body
            .contains(&format!("Delete user &quot;{shown_user}&quot;?")),
        "{}",
        confirm.body
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_users_action_refuses_a_missing_or_wrong_csrf_token() {
    let f: Fixture = fixture().await;
    let (cookie, _) = console_login(&f.app).await;
    let posts: [(&str, &[(&str, &str)]); 8] = [
        (
            "/admin/users",
            &[("username", "mallory"), ("email", "m@example.com")],
        ),
        ("/admin/users/alice/reprovision", &[]),
        ("/admin/users/alice/revoke", &[]),
        ("/admin/users/alice/unlock", &[]),
        ("/admin/users/carol/edit", &[("email", "evil@example.com")]),
        ("/admin/users/carol/delete", &[]),
        ("/admin/reprovision", &[("username", "alice")]),
        ("/admin/unlock", &[("username", "alice")]),
    ];
    for (uri, fields) in posts {
        for token in [None, Some("wrong")] {
            let mut all = fields.to_vec();
            if let Some(t) = token {
                all.push(("csrf", t));
            }
            let r = post_form(&f.app, uri, &all, Some(&cookie)).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{uri} with {token:?}");
        }
        // Without a session: to the login page.
        let r = post_form(&f.app, uri, fields, None).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{uri} logged out");
    }
    assert!(f.outbox.messages().is_empty(), "no code was sent");
    let carol = f
        .state
        .backend()
        .users
        .find_user(&name("carol"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        carol.destinations,
        [Destination::email("carol@example.com").unwrap()]
    );
    assert!(
        f.state
            .backend()
            .users
            .find_user(&name("mallory"))
            .await
            .unwrap()
            .is_none()
    );
    for uri in [
        "/admin/users",
        "/admin/users/alice",
        "/admin/users/alice/delete",
    ] {
        assert_eq!(
            get(&f.app, uri, None).await.status,
            StatusCode::SEE_OTHER,
            "{uri}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_twins_list_revoke_and_delete_users() {
    let f = fixture().await;
    add_users(&f.state, 5).await;
    let token = f.state.credentials().new_api_token().await.unwrap();
    let auth = format!("Bearer {}", token.expose_secret());
    let call = |method: &str, uri: &str| {
        Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, &auth)
            .body(Body::empty())
            .unwrap()
    };
    let r = send(&f.app, call("GET", "/api/v1/users?prefix=p-&limit=3")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v = json(&r);
    assert_eq!(v["next_after"], "p-002");
    assert_eq!(v["users"][0]["username"], "p-000");
    assert_eq!(
        v["users"][0]["destinations"][0]["address"],
        "p-000@example.com"
    );
    let r = send(
        &f.app,
        call("GET", "/api/v1/users?prefix=p-&limit=3&after=p-002"),
    )
    .await;
    let v = json(&r);
    assert_eq!(v["users"].as_array().unwrap().len(), 2);
    assert!(v["next_after"].is_null(), "{v}");
    let r = send(
        &f.app,
        call("GET", "/api/v1/users?destination=carol%40example.com"),
    )
    .await;
    assert_eq!(json(&r)["users"][0]["username"], "carol");
    for bad in ["limit=0", "limit=1001", "prefix=", "colour=red"] {
        let r = send(&f.app, call("GET", &format!("/api/v1/users?{bad}"))).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(!detail(&r).is_empty());
    }
    let r = send(
        &f.app,
        Request::get("/api/v1/users").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    f.state
        .provisioner()
        .request_provision(&name("alice"), Origin::Admin)
        .await
        .unwrap();
    let r = send(&f.app, call("POST", "/api/v1/users/alice/revoke")).await;
    assert_eq!(
        json(&r),
        serde_json::json!({"username": "alice", "revoked": true})
    );
    let r = send(&f.app, call("POST", "/api/v1/users/alice/revoke")).await;
    assert_eq!(
        json(&r),
        serde_json::json!({"username": "alice", "revoked": false})
    );
    let r = send(&f.app, call("POST", "/api/v1/users/nobody/revoke")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    let r = send(&f.app, call("DELETE", "/api/v1/users/carol")).await;
    assert_eq!(
        json(&r),
        serde_json::json!({"username": "carol", "deleted": true})
    );
    assert!(
        f.state
            .backend()
            .users
            .find_user(&name("carol"))
            .await
            .unwrap()
            .is_none()
    );
    let r = send(&f.app, call("DELETE", "/api/v1/users/carol")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(detail(&r), "Invalid Username");
}

#[test]
fn the_command_line_twins_list_revoke_and_delete_users() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let run = |args: &[&str]| run_cli(&data, args);
    for user in ["bob", "bobby", "zoe"] {
        let (ok, _, err) = run(&[
            "users",
            "add",
            user,
            "--email",
            &format!("{user}@example.com"),
        ]);
        assert!(ok, "{err}");
    }
    let (ok, out, _) = run(&["users", "list", "--prefix", "bob"]);
    assert!(ok);
    let names: Vec<&str> = out.lines().map(|l| l.split('\t').next().unwrap()).collect();
    assert_eq!(names, ["bob", "bobby"]);
    let (_, out, _) = run(&["users", "list", "--destination", "zoe@example.com"]);
    assert!(
        out.starts_with("zoe\t") && out.lines().count() == 1,
        "{out}"
    );

    let (ok, _, err) = run(&["reprovision", "bob"]);
    assert!(ok, "{err}");
    let (ok, out, _) = run(&["users", "revoke", "bob"]);
    assert!(ok);
    assert!(
        out.contains("The device and pending code of user \"bob\" were revoked."),
        "{out}"
    );
    let (ok, out, _) = run(&["users", "delete", "bob"]);
    assert!(ok);
    assert!(out.contains("User \"bob\" deleted."), "{out}");
    let (ok, _, err) = run(&["users", "delete", "bob"]);
    assert!(!ok);
    assert!(err.contains("Invalid Username"), "{err}");
    let (ok, out, _) = run(&["users", "remove", "zoe"]);
    assert!(
        ok && out.contains("User \"zoe\" deleted."),
        "the old name still works: {out}"
    );
    let (_, out, _) = run(&["users", "list"]);
    let names: Vec<&str> = out.lines().map(|l| l.split('\t').next().unwrap()).collect();
    assert_eq!(names, ["bobby"]);
}
