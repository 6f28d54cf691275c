//! The policy as an operator or a stored setting gives it: JSON (the saved policy), TOML
//! (the config file's `[policy]`) and `Policy::set` (console, API, CLI). Never panics, and
//! every policy that is accepted also validates and survives a JSON round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use swivel_provision::Policy;

fuzz_target!(|data: &[u8]| {
    swivel_provision_fuzz::within_budget(|| {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        let parsed = [
            serde_json::from_str::<Policy>(text).ok(),
            toml::from_str::<Policy>(text).ok(),
        ];
        for policy in parsed.into_iter().flatten() {
            policy.validate().expect("a deserialised policy is valid");
            let json = serde_json::to_string(&policy).expect("serialises");
            let back: Policy = serde_json::from_str(&json).expect("round trips");
            assert_eq!(back, policy);
        }
        // `key=value` lines through the setter, as the console and CLI apply them.
        let mut policy = Policy::default();
        for line in text.lines().take(64) {
            if let Some((key, value)) = line.split_once('=') {
                let _ = policy.set(key.trim(), value);
                policy
                    .validate()
                    .expect("the setter keeps the policy valid");
            }
        }
    })
});
