//! The JSON API's request bodies (users, policy, sites, reprovision), sent with the API token
//! through the whole router (`provision_server::app`) in process with a memory backend: no
//! input panics or gets a `5xx`.
//!
//! The first byte picks the operation; the rest is the body, sent as `application/json`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use swivel_provision_fuzz::host::Host;

/// The operations that read a body, as (method, path).
const OPERATIONS: &[(&str, &str)] = &[
    ("PUT", "/api/v1/users/alice"),
    ("PUT", "/api/v1/users/fuzzed"),
    ("POST", "/api/v1/users/alice/reprovision"),
    ("POST", "/api/v1/users/alice/revoke"),
    ("POST", "/api/v1/users/alice/cancel"),
    ("POST", "/api/v1/users/alice/unlock"),
    ("PUT", "/api/v1/policy"),
    ("PUT", "/api/v1/sites/FUZZ"),
];

fuzz_target!(|data: &[u8]| {
    let host = Host::get();
    host.prepare();
    swivel_provision_fuzz::within_budget(|| {
        let Some((&pick, body)) = data.split_first() else {
            return;
        };
        let (method, path) = OPERATIONS[pick as usize % OPERATIONS.len()];
        let sent = host.send_json(method, path, body);
        assert!(
            !sent.status.is_server_error(),
            "{method} {path} answered {}: {}",
            sent.status,
            sent.body
        );
    })
});
