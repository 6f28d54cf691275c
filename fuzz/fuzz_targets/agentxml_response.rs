//! The AgentXML response parser (what a client reads from a server): never panics, and
//! whatever it accepts renders back to a response that parses.
#![no_main]

use libfuzzer_sys::fuzz_target;
use swivel_provision::agentxml::{parse_response, render_response};

fuzz_target!(|body: &[u8]| {
    swivel_provision_fuzz::within_budget(|| {
        let Ok(reply) = parse_response(body) else {
            return;
        };
        let again = parse_response(render_response(&reply).as_bytes())
            .expect("a parsed response renders to one that parses");
        assert_eq!(again.request_id, reply.request_id);
    })
});
