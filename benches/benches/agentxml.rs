//! AgentXML: parse and render of requests and responses, and `respond` (the server side:
//! parse, provisioner call on the memory store, render).

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
    server_side(&mut c);
    c.final_summary();
}
