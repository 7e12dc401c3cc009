//! Router throughput: eMalyatko applications accepted per second and fully delivered per second
//! through the fan-out (ss1 with the router → signed, mutual TLS → ss2 → registry simulator),
//! everything in this process on loopback, the store on disk; and the store's write
//! amplification (bytes the process wrote to disk / bytes of records the router wrote).
//!
//! `cargo bench --bench applications [-- APPLICATIONS CONCURRENCY SERVICES]` where SERVICES is
//! `all` (10 registry calls per application) or `six` (certificate, birth, status, UNZR, tax,
//! patient: 6 calls). `BATCH_WAIT_US` sets both servers' `signer.batch_wait_us` (default 1000).
//! It also prints the signing batch sizes and the connections each server opened.
//! `STORE=postgres` keeps the router's store in a throwaway PostgreSQL (`scripts/pg-throwaway.sh`)
//! instead of the embedded one, and prints the database's WAL syncs and bytes; `bash
//! benches/cluster.sh` measures several nodes, each a process of its own.

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::emalyatko::*;
use common::start_node;

fn disk_writes() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| {
                    l.strip_prefix("write_bytes: ")
                        .map(|v| v.trim().parse().ok())
                })
                .flatten()
        })
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    // `cargo test --all-targets` runs this too (without `--bench`): a smoke run then.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let n: usize = args
        .first()
        .and_then(|a| a.parse().ok())
        .unwrap_or(if smoke { 20 } else { 5000 });
    let conc: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(256);
    let six = args.get(2).is_none_or(|s| s == "six");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(n, conc, six));
}

async fn run(n: usize, conc: usize, six: bool) {
    let mut net = Net::new();
    let sim = start_sim(|_| {}).await;
    let dir = net.path();
    let ss2_l = std::mem::replace(&mut net.ss2_server, common::bind());
    let ss1_l = std::mem::replace(&mut net.ss1_server, common::bind());
    let wait = std::env::var("BATCH_WAIT_US").unwrap_or_else(|_| "1000".into());
    // The signer's batch wait; and the tests' short idle timeouts (which exercise reconnection)
    // replaced by the defaults, so connections live as they would in production.
    let bench_conf = |toml: String| {
        toml.replace(
            "[[signer.tokens]]",
            &format!("[signer]\nbatch_wait_us = {wait}\n\n[[signer.tokens]]"),
        )
        .replace(
            "header_read_timeout_ms = 1000",
            "header_read_timeout_ms = 10000",
        )
        .replace("pool_idle_timeout_ms = 300", "pool_idle_timeout_ms = 5000")
    };
    let ss2 = start_node(&dir, "ss2", &bench_conf(ss2_toml(sim.addr)), Some(ss2_l)).await;
    let pg = (std::env::var("STORE").as_deref() == Ok("postgres"))
        .then(|| common::pg::Pg::start().expect("PostgreSQL (apt-get install postgresql)"));
    let shared = pg.as_ref().map_or(String::new(), |pg| {
        format!("\n[store]\nurl = \"{}\"\nnode = \"bench\"\n", pg.url)
    });
    let ss1_toml = ss1_toml(&dir.join("store"), "")
        .replace("concurrency = 32", "concurrency = 128")
        .replace("poll_interval_ms = 50", "poll_interval_ms = 20")
        + &shared;
    let ss1 = start_node(&dir, "ss1", &bench_conf(ss1_toml), Some(ss1_l)).await;
    let client = ss1.client_http.unwrap();
    let router = brama::router::routes::of(&ss1.gateway).unwrap();

    // Distinct applications, so the simulator can tell deliveries apart.
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..n)
            .map(|i| {
                let mut app: serde_json::Value = serde_json::from_slice(&application(i)).unwrap();
                if six {
                    app["services"] = serde_json::json!(["taxpayer", "patient"]);
                }
                app.to_string().into_bytes()
            })
            .collect(),
    );
    let calls_per_app = if six { 6 } else { 10 };

    let wal0 = pg.as_ref().map(wal_stats);
    let disk0 = disk_writes();
    let logical0 = router.engine.store.logical_bytes();
    let start = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let ids = Arc::new(std::sync::Mutex::new(Vec::<String>::with_capacity(n)));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..conc {
        let (next, ids, bodies) = (next.clone(), ids.clone(), bodies.clone());
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let (code, v) = submit(client, &bodies[i]).await;
                assert_eq!(code, 202, "{v}");
                ids.lock()
                    .unwrap()
                    .push(v["id"].as_str().unwrap().to_string());
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let accepted_in = start.elapsed();
    // Fully delivered: every delivery of every application delivered.
    let stats = &router.engine.stats;
    let expected = (n * calls_per_app) as u64;
    loop {
        let delivered = stats.delivered.load(std::sync::atomic::Ordering::Relaxed);
        let failed = stats.failed.load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(failed, 0, "deliveries failed");
        if delivered >= expected {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(900),
            "stuck at {delivered}/{expected}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let delivered_in = start.elapsed();
    let disk = disk_writes() - disk0;
    let logical = router.engine.store.logical_bytes() - logical0;
    let last_id = ids.lock().unwrap().last().cloned().unwrap();
    let last = status(client, &last_id).await;
    assert_eq!(last["status"], "completed");
    println!(
        "applications: {n}, concurrency {conc}, {calls_per_app} registry calls each ({} services)",
        if six { "six" } else { "all" }
    );
    println!(
        "accepted:  {:>8.0} applications/s ({:.2} s)",
        n as f64 / accepted_in.as_secs_f64(),
        accepted_in.as_secs_f64()
    );
    println!(
        "delivered: {:>8.0} applications/s, {:.0} signed registry calls/s ({:.2} s)",
        n as f64 / delivered_in.as_secs_f64(),
        expected as f64 / delivered_in.as_secs_f64(),
        delivered_in.as_secs_f64()
    );
    println!(
        "store: {:.1} MiB of records written, {:.1} MiB written to disk: write amplification {:.2}; {} fsyncs ({:.1} writes per fsync); {:.1} MiB on disk",
        logical as f64 / 1048576.0,
        disk as f64 / 1048576.0,
        disk as f64 / logical.max(1) as f64,
        router.engine.store.flushes(),
        (stats.attempts.load(std::sync::atomic::Ordering::Relaxed) * 2 + n as u64) as f64
            / router.engine.store.flushes().max(1) as f64,
        router.engine.store.size_on_disk() as f64 / 1048576.0
    );
    if let (Some(pg), Some((syncs0, bytes0))) = (&pg, wal0) {
        let (syncs, bytes) = wal_stats(pg);
        println!(
            "postgresql: {} WAL syncs ({:.2} per application), {:.1} MiB of WAL: write amplification {:.2} (WAL bytes / bytes of records)",
            syncs - syncs0,
            (syncs - syncs0) as f64 / n as f64,
            (bytes - bytes0) as f64 / 1048576.0,
            (bytes - bytes0) as f64 / logical.max(1) as f64
        );
    }
    for (who, node) in [("ss1 (requests)", &ss1), ("ss2 (responses)", &ss2)] {
        let (calls, messages) = node.gateway.signer().keys().fold((0, 0), |(c, m), k| {
            (
                c + k
                    .stats
                    .sign_calls
                    .load(std::sync::atomic::Ordering::Relaxed),
                m + k.stats.messages.load(std::sync::atomic::Ordering::Relaxed),
            )
        });
        println!(
            "signing at {who}: {messages} messages in {calls} batch signatures ({:.1} per batch)",
            messages as f64 / calls.max(1) as f64
        );
    }
    println!(
        "connections opened: ss1 {}, ss2 {}",
        ss1.gateway
            .pool()
            .opened
            .load(std::sync::atomic::Ordering::Relaxed),
        ss2.gateway
            .pool()
            .opened
            .load(std::sync::atomic::Ordering::Relaxed)
    );
    println!(
        "simulator: {} requests, max ids per request {}",
        sim.stats.requests(),
        sim.stats.max_ids_per_request()
    );
}

/// The database's WAL syncs and bytes so far (`pg_stat_wal`), read with `psql`.
fn wal_stats(pg: &common::pg::Pg) -> (u64, u64) {
    let out = std::process::Command::new("psql")
        .args([
            &pg.url,
            "-Atc",
            "SELECT wal_sync, wal_bytes FROM pg_stat_wal",
        ])
        .output()
        .expect("psql");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut f = text
        .trim()
        .split('|')
        .map(|v| v.parse::<f64>().unwrap_or(0.0) as u64);
    (f.next().unwrap_or(0), f.next().unwrap_or(0))
}
