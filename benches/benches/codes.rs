//! Code generation + hashing (through `Provisioner::request_provision` on the memory store,
//! since code generation is not public, and `ServerKey::code_hash`), and security-string
//! generation.

use std::cell::Cell;
use std::hint::black_box;

use criterion::{Criterion, Throughput};
use swivel_provision::{ChaChaStringGenerator, Origin, ProvisionCode, StringGenerator};
use swivel_provision_benches::{Fixture, bench_key};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn codes(c: &mut Criterion) {
    let rt = runtime();
    let f = Fixture::memory(1024).expect("fixture");
    let next = Cell::new(0usize);
    let mut g = c.benchmark_group("codes");
    g.throughput(Throughput::Elements(1));
    g.bench_function("request_provision/memory", |b| {
        b.to_async(&rt).iter(|| {
            let i = next.get();
            next.set((i + 1) % f.users.len());
            let user = &f.users[i];
            let (p, t) = (&f.provisioner, &f.transport);
            async move {
                p.request_provision(user, Origin::Admin)
                    .await
                    .expect("request");
                // Keep the transport's map small (what a real transport would not keep).
                black_box(t.take_code(user));
            }
        });
    });
    let key = bench_key();
    let code = ProvisionCode::new("1234567890");
    g.bench_function("code_hash", |b| {
        b.iter(|| black_box(key.code_hash(black_box("bench-42"), black_box(&code))));
    });
    g.bench_function("provision_code_new", |b| {
        b.iter(|| black_box(ProvisionCode::new(black_box("12345 67890"))));
    });
    g.finish();

    let mut g = c.benchmark_group("strings");
    g.throughput(Throughput::Elements(1));
    let generator = ChaChaStringGenerator;
    let mut generation = 0u32;
    g.bench_function("generate", |b| {
        b.iter(|| {
            generation = generation.wrapping_add(1);
            black_box(generator.generate(black_box([9; 32]), generation))
        });
    });
    let set = generator.generate([9; 32], 1);
    g.bench_function("to_wire", |b| {
        b.iter(|| black_box(black_box(&set).to_wire()))
    });
    g.finish();
}

fn main() {
    // What criterion_group!/criterion_main! expand to, without an undocumented `pub fn`.
    let mut c = Criterion::default().configure_from_args();
    codes(&mut c);
    c.final_summary();
}
