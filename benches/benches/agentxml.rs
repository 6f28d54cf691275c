//! AgentXML: parse and render of requests and responses, `respond` (the server side:
//! parse, provisioner call on the memory store, render), and the parser's worst case: a
//! 64 KiB body of ~9,400 attributes against a normal ping (`agentxml_worst_case`).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use swivel_provision::agentxml::{
    AgentAction, AgentReply, AgentRequest, AgentResponse, parse_request, parse_response,
    render_request, render_response, respond,
};
use swivel_provision::{
    ChaChaStringGenerator, DeviceInfo, MobilePolicy, Origin, ProvisionCode, ProvisionId,
    StringGenerator,
};
use swivel_provision_benches::{Fixture, full_cycle_id};

fn requests() -> (String, String) {
    let mut provision = AgentRequest::new(AgentAction::Provision {
        username: "bench-42".into(),
        code: ProvisionCode::new("1234567890"),
        device: DeviceInfo::new(Some("Pixel 8"), Some("Android 15"), Some("4.1.0")),
    });
    provision.request_id = Some("req-0001".into());
    let strings = AgentRequest::new(AgentAction::SecurityStrings {
        id: ProvisionId::new("00112233445566778899aabbccddeeff"),
    });
    (render_request(&provision), render_request(&strings))
}

fn strings_reply() -> AgentReply {
    AgentReply {
        request_id: Some("req-0001".into()),
        ..AgentReply::new(AgentResponse::Strings {
            strings: ChaChaStringGenerator.generate([3; 32], 1),
            policies: Vec::<MobilePolicy>::new(),
        })
    }
}

fn codec(c: &mut Criterion) {
    let (provision, strings) = requests();
    let reply = strings_reply();
    let reply_body = render_response(&reply);
    let provisioned = render_response(&AgentReply::new(AgentResponse::Provisioned {
        id: ProvisionId::new("00112233445566778899aabbccddeeff"),
    }));
    let mut g = c.benchmark_group("agentxml");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse_request/provision", |b| {
        b.iter(|| black_box(parse_request(black_box(provision.as_bytes())).expect("parses")));
    });
    g.bench_function("parse_request/security_strings", |b| {
        b.iter(|| black_box(parse_request(black_box(strings.as_bytes())).expect("parses")));
    });
    let req = parse_request(provision.as_bytes()).expect("parses");
    g.bench_function("render_request/provision", |b| {
        b.iter(|| black_box(render_request(black_box(&req))));
    });
    g.bench_function("render_response/strings", |b| {
        b.iter(|| black_box(render_response(black_box(&reply))));
    });
    g.bench_function("parse_response/strings", |b| {
        b.iter(|| black_box(parse_response(black_box(reply_body.as_bytes())).expect("parses")));
    });
    g.bench_function("parse_response/provisioned", |b| {
        b.iter(|| black_box(parse_response(black_box(provisioned.as_bytes())).expect("parses")));
    });
    g.finish();
}

/// The parser-cost attack (issue 11): a 64 KiB `<SASRequest>` with ~9,400 attributes is
/// refused at about the cost of a normal ping; also the many-attribute response and SSD
/// bodies a hostile server could send a client.
fn worst_case(c: &mut Criterion) {
    let ping = render_request(&AgentRequest::new(AgentAction::Ping));
    let attack = swivel_provision::testing::many_attributes_request();
    let attrs = String::from_utf8(attack.clone()).expect("ASCII");
    let attrs = attrs
        .trim_start_matches("<SASRequest")
        .split('>')
        .next()
        .unwrap_or_default()
        .to_owned();
    // The same bytes as text, not attributes: what any 64 KiB body costs to read.
    let text_body = format!(
        "<SASRequest><Action>ping</Action><Pad>{}</Pad></SASRequest>",
        "x".repeat(attack.len() - 60)
    );
    let response_attack = format!("<SASResponse{attrs}><Result>PASS</Result></SASResponse>");
    // Cut so that the whole answer stays under the SSD size limit and is parsed.
    let ssd_attrs = &attrs[..attrs.len() - 200];
    let ssd_attrs = &ssd_attrs[..ssd_attrs.rfind(' ').unwrap_or(0)];
    let ssd_attack = format!(
        "<getServerDetailsResponse{ssd_attrs}><responseCode>0</responseCode></getServerDetailsResponse>"
    );
    assert!(ssd_attack.len() <= swivel_provision::ssd::MAX_RESPONSE_BYTES);
    assert!(text_body.len() <= swivel_provision::agentxml::MAX_REQUEST_BYTES);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let f = Fixture::memory(1).expect("fixture");
    let mut g = c.benchmark_group("agentxml_worst_case");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse_request/ping", |b| {
        b.iter(|| black_box(parse_request(black_box(ping.as_bytes())).expect("parses")));
    });
    g.bench_function("parse_request/64k_text", |b| {
        b.iter(|| black_box(parse_request(black_box(text_body.as_bytes())).expect("parses")));
    });
    g.bench_function("parse_request/64k_attributes", |b| {
        b.iter(|| black_box(parse_request(black_box(&attack)).is_err()));
    });
    g.bench_function("respond/ping", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(respond(&f.provisioner, ping.as_bytes()).await) });
    });
    // What is measured must be the refusal (checked once, outside the timed loop; set
    // SWIVEL_BENCH_OLD_PARSER=1 to measure a parser that accepts the body, for a "before").
    if std::env::var_os("SWIVEL_BENCH_OLD_PARSER").is_none() {
        assert!(
            rt.block_on(respond(&f.provisioner, &attack))
                .contains("Malformed request")
        );
    }
    g.bench_function("respond/64k_attributes", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(respond(&f.provisioner, &attack).await) });
    });
    g.bench_function("parse_response/64k_attributes", |b| {
        b.iter(|| black_box(parse_response(black_box(response_attack.as_bytes())).is_err()));
    });
    g.bench_function("parse_server_details/64k_attributes", |b| {
        b.iter(|| {
            black_box(
                swivel_provision::ssd::parse_server_details(black_box(ssd_attack.as_bytes()))
                    .is_err(),
            )
        });
    });
    g.finish();
}

fn server_side(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let f = Fixture::memory(1024).expect("fixture");
    let mut g = c.benchmark_group("agentxml_respond");
    g.throughput(Throughput::Elements(1));
    // provision: a fresh code per iteration (requested outside the timed part).
    g.bench_function("provision/memory", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let f = &f;
            async move {
                let mut total = Duration::ZERO;
                for i in 0..iters as usize {
                    let user = &f.users[i % f.users.len()];
                    f.provisioner
                        .request_provision(user, Origin::Admin)
                        .await
                        .expect("request");
                    let code = f.transport.take_code(user).expect("a code");
                    let body = render_request(&AgentRequest::new(AgentAction::Provision {
                        username: user.to_string(),
                        code,
                        device: DeviceInfo::default(),
                    }));
                    let started = Instant::now();
                    let out = respond(&f.provisioner, body.as_bytes()).await;
                    total += started.elapsed();
                    assert!(out.contains("PASS"), "provision refused");
                }
                total
            }
        });
    });
    // SecurityStrings: one device per user, a new generation per iteration.
    let bodies: Vec<String> = rt.block_on(async {
        let mut bodies = Vec::new();
        for user in f.users.iter().take(64) {
            let id = full_cycle_id(&f.provisioner, &f.transport, user)
                .await
                .expect("cycle");
            bodies.push(render_request(&AgentRequest::new(
                AgentAction::SecurityStrings { id },
            )));
        }
        bodies
    });
    let mut i = 0usize;
    g.bench_function("security_strings/memory", |b| {
        b.to_async(&rt).iter(|| {
            i = (i + 1) % bodies.len();
            let body = bodies[i].as_bytes();
            let p = &f.provisioner;
            async move {
                let out = respond(p, body).await;
                assert!(out.contains("PASS"));
                black_box(out)
            }
        });
    });
    g.finish();
}

fn main() {
    // What criterion_group!/criterion_main! expand to, without an undocumented `pub fn`.
    let mut c = Criterion::default().configure_from_args();
    codec(&mut c);
    worst_case(&mut c);
    server_side(&mut c);
    c.final_summary();
}
