//! The server's configuration file (`provision_server::config::FileConfig::parse`): never
//! panics; a policy it accepts is valid.
#![no_main]

use libfuzzer_sys::fuzz_target;
use provision_server::config::FileConfig;

fuzz_target!(|data: &[u8]| {
    swivel_provision_fuzz::within_budget(|| {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        if let Ok(config) = FileConfig::parse(text) {
            if let Some(policy) = config.policy {
                policy.validate().expect("a parsed policy is valid");
            }
        }
    })
});
