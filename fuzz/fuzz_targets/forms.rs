//! The HTML form bodies of the self-service page, `/login` and the console (add and edit a
//! user, policy, sites, the console login, the user page's buttons), posted through the
//! whole router (`provision_server::app`) in process with a memory backend and a logged-in console
//! session: no input panics or gets a `5xx`.
//!
//! The first byte picks the form; the rest is the `application/x-www-form-urlencoded` body,
//! to which the session's CSRF token is appended (so the handler behind the check is reached).
//! The console's password change is left out: each of its posts hashes the current password
//! (Argon2, tens of milliseconds), which would slow the run a hundredfold; the server's own
//! tests cover its form.
#![no_main]

use libfuzzer_sys::fuzz_target;
use swivel_provision_fuzz::host::{Host, Sent};

/// The forms, as (path, whether the console session and CSRF token go with it).
const FORMS: &[(&str, bool)] = &[
    ("/reset/provision", false),
    ("/login", false),
    ("/admin/users", true),
    ("/admin/users/alice/edit", true),
    ("/admin/users/alice/reprovision", true),
    ("/admin/users/alice/delete", true),
    ("/admin/reprovision", true),
    ("/admin/unlock", true),
    ("/admin/policy", true),
    ("/admin/sites", true),
    ("/admin/sites/delete", true),
    ("/admin/login", false),
];

fuzz_target!(|data: &[u8]| {
    let host = Host::get();
    host.prepare();
    swivel_provision_fuzz::within_budget(|| {
        let Some((&pick, body)) = data.split_first() else {
            return;
        };
        let (path, console) = FORMS[pick as usize % FORMS.len()];
        let sent = host.post_form(path, body, console);
        assert_no_server_error(&sent, path);
    })
});

fn assert_no_server_error(sent: &Sent, path: &str) {
    assert!(
        !sent.status.is_server_error(),
        "{path} answered {}: {}",
        sent.status,
        sent.body
    );
}
