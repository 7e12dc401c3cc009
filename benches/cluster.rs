//! The router as a cluster: N `brama serve` processes (the release binary) sharing one
//! PostgreSQL, in front of one provider side (ss2 and the registry simulator, in this process).
//! Applications are submitted spread over the nodes, each with its own `Idempotency-Key`, as a
//! portal behind a load balancer sends them; one node is killed with SIGKILL in the middle (a
//! submission cut off is sent again to the next node under the same key) and restarted; the run
//! ends when every acknowledged application has completed.
//!
//! `bash benches/cluster.sh` runs it; `cargo bench --bench cluster -- [APPLICATIONS [NODES
//! [CONCURRENCY]]]` (3000, 3, 64). `KILL=0` kills nothing (the router's throughput on
//! PostgreSQL with N nodes); `LATENCY_MS` is the registries' latency (0). The last line printed
//! is JSON: accepted, delivered, lost, duplicated (deliveries a registry saw as two, counted by
//! the simulator), applications_per_s, and the CPU each node and PostgreSQL used per delivered
//! application.

#[path = "../tests/common/mod.rs"]
mod common;

use std::net::SocketAddr;
use std::process::Child;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::emalyatko::*;
use common::pg::Pg;
use common::processes::{self, wait_listening, Provider};

/// The eMalyatko services each application asks for (6 registry calls).
const SIX: [&str; 6] = [
    "getMedicalBirthCertificate",
    "registerBirth",
    "getBirthRegistrationStatus",
    "assignUnzr",
    "registerTaxpayer",
    "registerNewbornPatient",
];

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    // `cargo test --all-targets` runs this too (without `--bench`): a small run then.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let arg =
        |i: usize, default: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let n = arg(0, if smoke { 40 } else { 3000 });
    let nodes = arg(1, if smoke { 2 } else { 3 }).max(1);
    let conc = arg(2, 64);
    let kill = std::env::var("KILL").map_or(true, |v| v != "0") && nodes > 1;
    let latency = std::env::var("LATENCY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(n, nodes, conc, kill, Duration::from_millis(latency)));
}

struct Node {
    config: std::path::PathBuf,
    client: SocketAddr,
    log: std::path::PathBuf,
    child: Option<Child>,
    /// CPU seconds of the node's processes that ended (the killed one).
    cpu_before: f64,
}

impl Node {
    fn cpu(&self) -> f64 {
        self.cpu_before + self.child.as_ref().map_or(0.0, |c| cpu_seconds(c.id()))
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

async fn run(n: usize, count: usize, conc: usize, kill: bool, latency: Duration) {
    // Skipped only where PostgreSQL is not installed (`benches/cluster.sh` installs it).
    let Some(pg) = Pg::start() else { return };
    let p = Provider::start(latency).await;
    let mut nodes = Vec::new();
    for i in 0..count {
        let store = format!(
            "\n[store]\nurl = \"{}\"\nnode = \"node-{i}\"\nlease_margin_s = 5\norphan_scan_ms = 500\n",
            pg.url
        );
        let c = p.ss1_config(&format!("node-{i}"), &p.dir.join("unused"), &store);
        let (config, client) = (c.path, c.client);
        let log = p.dir.join(format!("node-{i}.log"));
        let mut child = processes::spawn(&config, &log, &[]);
        wait_listening(client, &mut child, &log).await;
        nodes.push(Node {
            config,
            client,
            log,
            child: Some(child),
            cpu_before: 0.0,
        });
    }
    let clients: Arc<Vec<SocketAddr>> = Arc::new(nodes.iter().map(|x| x.client).collect());
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..n)
            .map(|i| {
                let mut app: serde_json::Value = serde_json::from_slice(&application(i)).unwrap();
                app["services"] = serde_json::json!(["taxpayer", "patient"]);
                app.to_string().into_bytes()
            })
            .collect(),
    );
    let pg_cpu0 = postgres_cpu(&pg);

    let start = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let acked = Arc::new(AtomicUsize::new(0));
    let ids = Arc::new(std::sync::Mutex::new(vec![String::new(); n]));
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..conc {
        let (next, acked, ids, bodies, clients) = (
            next.clone(),
            acked.clone(),
            ids.clone(),
            bodies.clone(),
            clients.clone(),
        );
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return;
                }
                // Round robin over the nodes; a node that does not answer, or fails, is skipped
                // and the same application sent to the next under the same key.
                let mut k = i + t;
                let id = loop {
                    let client = clients[k % clients.len()];
                    let key = format!("app-{i}");
                    let sent = submit_with(client, &bodies[i], Some(&key));
                    match tokio::time::timeout(Duration::from_secs(30), sent).await {
                        Ok(Ok((202, v))) => break v["id"].as_str().unwrap().to_string(),
                        _ => {
                            k += 1;
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                };
                ids.lock().unwrap()[i] = id;
                acked.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    let mut killed = None;
    if kill {
        while acked.load(Ordering::Relaxed) < n / 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let node = &mut nodes[1];
        let mut child = node.child.take().unwrap();
        node.cpu_before += cpu_seconds(child.id());
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        killed = Some(start.elapsed());
        eprintln!(
            "node-1 killed at {:.1} s, {} applications acknowledged",
            start.elapsed().as_secs_f64(),
            acked.load(Ordering::Relaxed)
        );
    }
    while tasks.join_next().await.is_some() {}
    let accepted_in = start.elapsed();
    if let Some(at) = killed {
        // Restarted, as a supervisor would, two seconds after the kill at the earliest.
        tokio::time::sleep((at + Duration::from_secs(2)).saturating_sub(start.elapsed())).await;
        let node = &mut nodes[1];
        let mut child = processes::spawn(&node.config, &node.log, &[]);
        wait_listening(node.client, &mut child, &node.log).await;
        node.child = Some(child);
        eprintln!("node-1 restarted at {:.1} s", start.elapsed().as_secs_f64());
    }
    let ids: Vec<String> = ids.lock().unwrap().clone();

    // Delivered: the simulator has seen every service of every application.
    let stats = &p.sim.stats;
    let limit = Duration::from_secs(600);
    loop {
        let done = SIX.iter().all(|op| stats.distinct_requests(op) >= n);
        if done || start.elapsed() > limit {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let delivered_in = start.elapsed();
    let cpu: Vec<f64> = nodes.iter().map(Node::cpu).collect();
    let pg_cpu = postgres_cpu(&pg) - pg_cpu0;

    // Every application asked once, on any node.
    let mut delivered = 0;
    for (i, id) in ids.iter().enumerate() {
        let v = status(clients[i % clients.len()], id).await;
        if v["status"] == "completed" {
            delivered += 1;
        }
    }
    let lost = n - delivered;
    let per_app = |s: f64| s * 1e6 / delivered.max(1) as f64;
    println!(
        "nodes: {count}, applications: {n}, concurrency {conc}, 6 registry calls each, registry latency {} ms{}",
        latency.as_millis(),
        killed.map_or(String::new(), |k| format!(", node-1 killed at {:.1} s and restarted", k.as_secs_f64()))
    );
    println!(
        "accepted in {:.2} s ({:.0}/s); every application delivered in {:.2} s ({:.0}/s)",
        accepted_in.as_secs_f64(),
        n as f64 / accepted_in.as_secs_f64(),
        delivered_in.as_secs_f64(),
        n as f64 / delivered_in.as_secs_f64()
    );
    for (i, c) in cpu.iter().enumerate() {
        println!(
            "node-{i}: {c:.1} CPU s, {:.0} µs per delivered application",
            per_app(*c)
        );
    }
    println!(
        "postgresql: {pg_cpu:.1} CPU s, {:.0} µs per delivered application",
        per_app(pg_cpu)
    );
    println!(
        "simulator: {} requests, {} sent again under their id, {} duplicated",
        stats.requests(),
        stats.repeats(),
        stats.duplicated()
    );
    let json = serde_json::json!({
        "nodes": count,
        "accepted": n,
        "delivered": delivered,
        "lost": lost,
        "duplicated": stats.duplicated(),
        "resent_same_id": stats.repeats(),
        "applications_per_s": (n as f64 / delivered_in.as_secs_f64()).round(),
        "cpu_us_per_application_per_node": cpu.iter().map(|c| per_app(*c).round()).collect::<Vec<_>>(),
        "postgres_cpu_us_per_application": per_app(pg_cpu).round(),
        "killed": killed.is_some(),
    });
    println!("{json}");
    assert_eq!(lost, 0, "applications acknowledged and not delivered");
    assert_eq!(stats.duplicated(), 0, "deliveries a registry saw twice");
}

/// User and system CPU seconds of a process (and its threads).
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // After the command's closing parenthesis: fields 3.. ; utime and stime are 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0 // USER_HZ
}

/// CPU seconds of the PostgreSQL cluster: its postmaster and every backend it started.
fn postgres_cpu(pg: &Pg) -> f64 {
    let Some(postmaster) = pg.postmaster_pid() else {
        return 0.0;
    };
    let mut total = cpu_seconds(postmaster);
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let parent = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')
                    .and_then(|(_, r)| r.split_whitespace().nth(1)?.parse::<u32>().ok())
            });
        if parent == Some(postmaster) {
            total += cpu_seconds(pid);
        }
    }
    total
}
