//! The AgentXML request parser (what the server reads from any client): never panics, and
//! whatever it accepts renders back to a request that parses to the same action and
//! request Id.
#![no_main]

use libfuzzer_sys::fuzz_target;
use swivel_provision::agentxml::{parse_request, render_request};

fuzz_target!(|body: &[u8]| {
    swivel_provision_fuzz::within_budget(|| {
        let Ok(req) = parse_request(body) else {
            return;
        };
        let again = parse_request(render_request(&req).as_bytes())
            .expect("a parsed request renders to one that parses");
        assert_eq!(again.request_id, req.request_id);
        // The spelling only matters for an Id that is echoed (an invalid one is dropped).
        if req.request_id.is_some() {
            assert_eq!(again.request_id_tag, req.request_id_tag);
        }
        assert_eq!(again.action.name(), req.action.name());
    })
});
