//! Several brama nodes sharing one PostgreSQL (a real one, started for the test): any node
//! accepts an application and answers its status; a node killed with SIGKILL mid-run has its
//! deliveries taken over when their leases run out; nothing acknowledged is lost, no registry
//! sees one delivery as two; an idempotency key holds across nodes; a database outage makes the
//! nodes refuse new applications and fail their health checks, and they recover by themselves.

mod common;

use std::net::SocketAddr;
use std::process::Child;
use std::time::{Duration, Instant};

use common::emalyatko::*;
use common::pg::Pg;
use common::processes::{self, wait_completed, wait_listening, Provider};
use common::{http, until};

const APPLICATIONS: usize = 60;

struct Node {
    config: std::path::PathBuf,
    client: SocketAddr,
    admin: SocketAddr,
    child: Child,
    log: std::path::PathBuf,
}

impl Node {
    async fn start(p: &Provider, pg: &Pg, i: usize) -> Node {
        // Node 0 reads the URL from a file, as from a mounted secret.
        let url = match i {
            0 => {
                let file = p.dir.join("store-url");
                std::fs::write(&file, format!("{}\n", pg.url)).unwrap();
                format!("url_file = \"{}\"", file.display())
            }
            _ => format!("url = \"{}\"", pg.url),
        };
        let store = format!(
            "\n[store]\n{url}\nnode = \"node-{i}\"\nlease_margin_s = 2\norphan_scan_ms = 200\n"
        );
        let c = p.ss1_config(&format!("node-{i}"), &p.dir.join("unused"), &store);
        let (config, client, admin) = (c.path, c.client, c.admin);
        let log = p.dir.join(format!("node-{i}.log"));
        let mut child = processes::spawn(&config, &log, &[]);
        wait_listening(client, &mut child, &log).await;
        Node {
            config,
            client,
            admin,
            child,
            log,
        }
    }

    fn kill(&mut self) {
        self.child.kill().unwrap(); // SIGKILL
        self.child.wait().unwrap();
    }

    async fn restart(&mut self) {
        self.child = processes::spawn(&self.config, &self.log, &[]);
        wait_listening(self.client, &mut self.child, &self.log).await;
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_lose_nothing_and_double_nothing_when_one_is_killed() {
    let Some(pg) = Pg::start() else { return };
    // Slow registries: many deliveries are in flight at the kill.
    let p = Provider::start(Duration::from_millis(150)).await;
    let mut nodes = Vec::new();
    for i in 0..3 {
        nodes.push(Node::start(&p, &pg, i).await);
    }
    let clients: Vec<SocketAddr> = nodes.iter().map(|n| n.client).collect();

    // The same submission on two nodes at once: one application.
    let body = application(10_000);
    let (a, b) = tokio::join!(
        submit_with(clients[0], &body, Some("portal-req-1")),
        submit_with(clients[2], &body, Some("portal-req-1"))
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!((a.0, b.0), (202, 202), "{a:?} {b:?}");
    assert_eq!(
        a.1["id"], b.1["id"],
        "one application for one key, on any node"
    );
    let keyed = a.1["id"].as_str().unwrap().to_string();

    // Applications spread over the nodes; an id counts as accepted only with its 202.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..APPLICATIONS {
        let client = clients[i % 3];
        tasks.spawn(async move {
            let (code, v) = submit(client, &application(i)).await;
            assert_eq!(code, 202, "{v}");
            v["id"].as_str().unwrap().to_string()
        });
    }
    let mut ids = vec![keyed];
    while let Some(id) = tasks.join_next().await {
        ids.push(id.unwrap());
    }
    until("deliveries under way", || p.sim.stats.requests() >= 20).await;
    nodes[1].kill();
    let killed_at = Instant::now();

    // The others finish everything, the dead node's share included; any node answers for any
    // application.
    wait_completed(clients[0], ids.clone()).await;
    eprintln!(
        "all {} applications completed {:.1} s after the kill",
        ids.len(),
        killed_at.elapsed().as_secs_f64()
    );
    for id in &ids {
        assert_eq!(status(clients[2], id).await["status"], "completed");
    }
    nodes[1].restart().await;
    assert_eq!(
        status(nodes[1].client, &ids[0]).await["status"],
        "completed"
    );

    let stats = &p.sim.stats;
    assert_eq!(stats.duplicated(), 0, "a registry saw a delivery twice");
    for op in [
        "getMedicalBirthCertificate",
        "registerBirth",
        "assignUnzr",
        "registerTaxpayer",
        "registerNewbornPatient",
    ] {
        assert_eq!(stats.distinct_requests(op), ids.len(), "{op}");
    }
    eprintln!(
        "{} registry requests, {} sent again under their id after the kill",
        stats.requests(),
        stats.repeats()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_refuses_new_applications_and_heals_by_itself() {
    let Some(pg) = Pg::start() else { return };
    let p = Provider::start(Duration::ZERO).await;
    let node = Node::start(&p, &pg, 0).await;
    let (code, v) = submit(node.client, &application(1)).await;
    assert_eq!(code, 202, "{v}");
    let first = v["id"].as_str().unwrap().to_string();
    assert_eq!(http::get(node.admin, "/health", &[]).await.status, 200);

    pg.halt();
    // Refused, never acknowledged, and quickly; the health check says why.
    wait_health(node.admin, 503).await;
    let started = Instant::now();
    let (code, v) = submit(node.client, &application(2)).await;
    assert_eq!(code, 503, "{v}");
    assert_eq!(v["type"], "StoreUnavailable", "{v}");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    let health = http::get(node.admin, "/health", &[]).await;
    assert!(health.text().contains("router store"), "{}", health.text());

    pg.resume();
    wait_health(node.admin, 200).await;
    let (code, v) = submit(node.client, &application(3)).await;
    assert_eq!(code, 202, "{v}");
    wait_completed(
        node.client,
        vec![first, v["id"].as_str().unwrap().to_string()],
    )
    .await;
}

/// Waits until the health check answers `status`.
async fn wait_health(admin: SocketAddr, status: u16) {
    let start = Instant::now();
    while http::get(admin, "/health", &[]).await.status.as_u16() != status {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the health check never answered {status}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A node frozen (SIGSTOP: a VM paused, a process swapped out) past its leases while its
/// deliveries are in flight: another node takes them over; when the frozen one wakes up, it
/// sees they are no longer its own and sends nothing twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_node_that_wakes_up_sends_nothing_twice() {
    let Some(pg) = Pg::start() else { return };
    // Slow registries: the takeovers are in flight for a while when the frozen node wakes up.
    let p = Provider::start(Duration::from_millis(1_000)).await;
    let mut nodes = Vec::new();
    for i in 0..2 {
        nodes.push(Node::start(&p, &pg, i).await);
    }
    let mut ids = Vec::new();
    for i in 0..30 {
        let (code, v) = submit(nodes[0].client, &application(i)).await;
        assert_eq!(code, 202, "{v}");
        ids.push(v["id"].as_str().unwrap().to_string());
    }
    until("deliveries under way", || p.sim.stats.requests() >= 10).await;
    let pid = nodes[0].child.id().to_string();
    let signal = |s: &str| {
        let ok = std::process::Command::new("kill")
            .args([s, &pid])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {s}");
    };
    signal("-STOP");
    // Frozen past its leases (an attempt's timeout plus the margin): the other node takes
    // over, sending again under the same ids what was in flight.
    let frozen = Instant::now();
    let start = Instant::now();
    while p.sim.stats.repeats() == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "nothing was taken over"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    signal("-CONT");
    eprintln!("frozen for {:.1} s", frozen.elapsed().as_secs_f64());
    wait_completed(nodes[1].client, ids.clone()).await;
    // Whatever the woken node had scheduled or in flight has had its turn by now.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stats = &p.sim.stats;
    assert_eq!(
        stats.duplicated(),
        0,
        "a registry saw a delivery twice at once"
    );
    eprintln!(
        "{} registry requests, {} sent again under their id",
        stats.requests(),
        stats.repeats()
    );
}
