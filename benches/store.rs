//! Delivery writes to the router's durable store (redb): one delivery's state change applied (in
//! memory), and applied then made durable by the group-committed flush with 1 to 64 writers at
//! once (what an attempt costs before its request may leave).

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

use brama::router::model::{Attempt, Delivery, Outcome, State};
use brama::router::store::{Batch, Embedded as Store};

fn delivery(app: usize, n: u32) -> Delivery {
    let mut d = Delivery {
        application: format!("01JD{app:022}"),
        service: "registerTaxpayer".into(),
        registry: "dps".into(),
        state: State::InFlight,
        waiting_for: Vec::new(),
        xroad_id: "5b3e8f0a-2c1d-4e6f-8a9b-0c1d2e3f4a5b".into(),
        request: None,
        has_request: true,
        rest_path: None,
        request_dirty: false,
        attempt_count: n,
        attempts: Vec::new(),
        attempts_dropped: 0,
        next_attempt_at: None,
        last_error: None,
        answer: None,
        created_at: 1_763_800_000_000,
        ready_at: Some(1_763_800_000_000),
        finished_at: None,
        lease: None,
    };
    d.push_attempt(Attempt {
        number: n,
        started_at: 1_763_800_000_000,
        xroad_id: d.xroad_id.clone(),
        outcome: Outcome::Started,
        fault_code: None,
        message: None,
        latency_ms: None,
    });
    d
}

fn writes(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = rt.block_on(async { Store::open(dir.path(), 16 << 20).unwrap() });
    let mut g = c.benchmark_group("store_delivery_write");
    g.throughput(Throughput::Elements(1));
    let mut i = 0usize;
    g.bench_function("apply", |b| {
        b.iter(|| {
            i += 1;
            let mut batch = Batch::default();
            batch.put_delivery(&delivery(i % 10_000, 1));
            store.apply(batch).unwrap();
        })
    });
    for writers in [1usize, 8, 64] {
        g.bench_with_input(
            BenchmarkId::new("apply_durable", writers),
            &writers,
            |b, &w| {
                b.iter_custom(|iters| {
                    let store = store.clone();
                    rt.block_on(async move {
                        let start = Instant::now();
                        let per = (iters as usize).div_ceil(w);
                        let tasks: Vec<_> = (0..w)
                            .map(|t| {
                                let s: Arc<Store> = store.clone();
                                tokio::spawn(async move {
                                    for k in 0..per {
                                        let mut batch = Batch::default();
                                        batch.put_delivery(&delivery(t * 100_000 + k, 2));
                                        s.apply(batch).unwrap();
                                        s.durable().await.unwrap();
                                    }
                                })
                            })
                            .collect();
                        for t in tasks {
                            t.await.unwrap();
                        }
                        // Per write: writers share each flush.
                        start.elapsed().mul_f64(iters as f64 / (per * w) as f64)
                    })
                })
            },
        );
    }
    g.finish();
    eprintln!(
        "store: {} flushes, {} MiB logical, {} MiB on disk",
        store.flushes(),
        store.logical_bytes() >> 20,
        store.size_on_disk() >> 20
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(Duration::from_secs(5));
    targets = writes
}
criterion_main!(benches);
