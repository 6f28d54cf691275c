//! The SSD `getServerDetailsResponse` parser (what a client reads): never panics, and the
//! settings it accepts render back to the same settings.
#![no_main]

use libfuzzer_sys::fuzz_target;
use swivel_provision::ssd::{parse_server_details, render_server_details};

fuzz_target!(|body: &[u8]| {
    swivel_provision_fuzz::within_budget(|| {
        let Ok(settings) = parse_server_details(body) else {
            return;
        };
        // Characters XML cannot carry are dropped when rendering; a host name made only of
        // those does not come back.
        let renderable = |s: &str| {
            s.chars().all(|c| {
                matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
            })
        };
        if !renderable(&settings.hostname) {
            return;
        }
        let xml = render_server_details(Ok(&settings));
        let again = parse_server_details(xml.as_bytes()).expect("rendered settings parse");
        assert_eq!(again.port, settings.port);
        assert_eq!(
            [
                again.using_ssl,
                again.push_support,
                again.local,
                again.pin,
                again.oath
            ],
            [
                settings.using_ssl,
                settings.push_support,
                settings.local,
                settings.pin,
                settings.oath
            ]
        );
    })
});
