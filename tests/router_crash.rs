//! Crash safety: the router's brama is a separate process, killed with SIGKILL while hundreds
//! of applications are in flight, then restarted on the same store. Every (application,
//! service) pair must end delivered, and no delivery may reach a registry under two X-Road ids.

mod common;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::emalyatko::*;
use common::{start_node, until};

const APPLICATIONS: usize = 500;

fn free_port() -> SocketAddr {
    common::bind().local_addr().unwrap()
}

fn spawn(config: &std::path::Path, log: &std::path::Path) -> Child {
    spawn_with(config, log, None)
}

/// `crash_after`: the process aborts at that write, resize or sync of its store (the store's
/// fault hook).
fn spawn_with(config: &std::path::Path, log: &std::path::Path, crash_after: Option<u64>) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_brama"));
    cmd.args(["serve", "--config"])
        .arg(config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap());
    if let Some(n) = crash_after {
        cmd.env("BRAMA_STORE_FAULT_CRASH_AFTER", n.to_string());
    }
    cmd.spawn().unwrap()
}

/// The provider side in this process (the simulator answering after `latency`, ss2), and ss1's
/// configuration for a process of its own.
struct Setup {
    _net: Net,
    sim: common::Sim,
    dir: std::path::PathBuf,
    _ss2: brama::proxy::Running,
    config: std::path::PathBuf,
    client: SocketAddr,
}

async fn setup(latency: Duration) -> Setup {
    let mut net = Net::new();
    let sim = start_sim(|s| s.latency = latency).await;
    let dir = net.path();
    let ss2_l = std::mem::replace(&mut net.ss2_server, common::bind());
    let ss2 = start_node(&dir, "ss2", &ss2_toml(sim.addr), Some(ss2_l)).await;
    let (config, client) = ss1_process(&mut net, &dir);
    Setup {
        _net: net,
        sim,
        dir,
        _ss2: ss2,
        config,
        client,
    }
}

/// ss1's configuration as a process of its own: its client port, and the server port the
/// global configuration names.
fn ss1_process(net: &mut Net, dir: &std::path::Path) -> (std::path::PathBuf, SocketAddr) {
    let ss1_server = net.ss1_server.local_addr().unwrap();
    drop(std::mem::replace(&mut net.ss1_server, common::bind()));
    let client = free_port();
    let toml = ss1_toml(&dir.join("store"), "")
        .replace(
            "client_http = \"127.0.0.1:0\"",
            &format!("client_http = \"{client}\""),
        )
        .replace(
            "server = \"127.0.0.1:0\"",
            &format!("server = \"{ss1_server}\""),
        )
        .replace("client_https = \"127.0.0.1:0\"\n", "")
        .replace(
            "admin = \"127.0.0.1:0\"",
            &format!("admin = \"{}\"", free_port()),
        );
    let config = dir.join("ss1.toml");
    std::fs::write(&config, toml).unwrap();
    (config, client)
}

async fn wait_listening(addr: SocketAddr, child: &mut Child) {
    let start = Instant::now();
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(child.try_wait().unwrap().is_none(), "brama exited at start");
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "brama did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_500_applications_in_flight_loses_nothing() {
    // Slow enough that many deliveries are in flight at the kill.
    let s = setup(Duration::from_millis(20)).await;
    let (sim, dir, config, client) = (&s.sim, &s.dir, &s.config, s.client);
    let mut child = spawn(config, &dir.join("ss1-first.log"));
    wait_listening(client, &mut child).await;

    // Submit concurrently; an id counts as accepted only with its 202.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..APPLICATIONS {
        tasks.spawn(async move {
            let (code, v) = submit(client, &application(i)).await;
            assert_eq!(code, 202, "{v}");
            v["id"].as_str().unwrap().to_string()
        });
    }
    let mut ids = Vec::new();
    while let Some(id) = tasks.join_next().await {
        ids.push(id.unwrap());
    }
    // Once deliveries are under way, kill the process where it stands.
    until("deliveries under way", || sim.stats.requests() >= 5).await;
    let before_kill = sim.stats.requests();
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(before_kill > 0, "nothing was in flight at the kill");

    let mut child = spawn(config, &dir.join("ss1-second.log"));
    wait_listening(client, &mut child).await;
    wait_completed(client, ids.clone()).await;
    let _ = child.kill();
    let _ = child.wait();

    // Each (application, service) reached its registry, never under two ids.
    assert_eq!(sim.stats.max_ids_per_request(), 1);
    for op in [
        "getMedicalBirthCertificate",
        "registerBirth",
        "assignUnzr",
        "registerTaxpayer",
        "registerNewbornPatient",
    ] {
        assert_eq!(sim.stats.distinct_requests(op), APPLICATIONS, "{op}");
    }
    eprintln!(
        "{} registry requests before the kill, {} in all",
        before_kill,
        sim.stats.requests()
    );
}

/// Waits until every application of `ids` is completed; any other end fails the test.
async fn wait_completed(client: SocketAddr, ids: Vec<String>) {
    let start = Instant::now();
    let mut pending = ids;
    while !pending.is_empty() {
        let mut still = Vec::new();
        for id in pending {
            let v = status(client, &id).await;
            match v["status"].as_str().unwrap() {
                "completed" => {}
                "in_progress" => still.push(id),
                other => panic!("application {id} ended {other}: {v:#}"),
            }
        }
        pending = still;
        assert!(
            start.elapsed() < Duration::from_secs(240),
            "{} applications not completed",
            pending.len()
        );
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// The store's write path cut at random points: each round ss1 starts with its store set to
/// abort the process at a random write, resize or sync, and takes applications until it dies.
/// After the rounds, every application that was answered 202 completes, and no delivery reached
/// a registry under two X-Road ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashes_at_random_points_of_the_store_write_path_lose_nothing_acknowledged() {
    const ROUNDS: usize = 8;
    const PER_ROUND: usize = 400;
    // Slow registries: most of the store's writes in a round are acceptances.
    let s = setup(Duration::from_millis(300)).await;
    let (sim, dir, config, client) = (&s.sim, &s.dir, &s.config, s.client);

    let mut accepted = Vec::new();
    let mut crashed = 0;
    for round in 0..ROUNDS {
        use std::hash::BuildHasher;
        let crash_after =
            std::collections::hash_map::RandomState::new().hash_one(round) % 3000 + 20;
        eprintln!("round {round}: the store aborts at its write number {crash_after}");
        let log = dir.join(format!("ss1-round-{round}.log"));
        let mut child = spawn_with(config, &log, Some(crash_after));
        // It may die while it starts (recovery writes too): that is a round as well.
        let start = Instant::now();
        while tokio::net::TcpStream::connect(client).await.is_err() {
            if child.try_wait().unwrap().is_some() || start.elapsed() > Duration::from_secs(30) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Submitters that go on until the process dies (or the round's share is sent), so
        // that acknowledgements race the crash.
        let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(round * PER_ROUND));
        let end = (round + 1) * PER_ROUND;
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..16 {
            let next = next.clone();
            tasks.spawn(async move {
                let mut ids = Vec::new();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= end {
                        return ids;
                    }
                    // A submission cut off by the crash panics in its task: not acknowledged.
                    let body = application(i);
                    match tokio::spawn(async move { submit(client, &body).await }).await {
                        Ok((202, v)) => ids.push(v["id"].as_str().unwrap().to_string()),
                        Ok(_) => {}
                        Err(_) => return ids,
                    }
                }
            });
        }
        while let Some(ids) = tasks.join_next().await {
            accepted.extend(ids.unwrap());
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        match child.try_wait().unwrap() {
            Some(_) => crashed += 1,
            None => {
                child.kill().unwrap();
                child.wait().unwrap();
            }
        }
    }
    assert!(
        crashed >= ROUNDS / 2,
        "only {crashed} of {ROUNDS} rounds crashed"
    );
    assert!(!accepted.is_empty(), "nothing was accepted");

    let mut child = spawn(config, &dir.join("ss1-last.log"));
    wait_listening(client, &mut child).await;
    wait_completed(client, accepted.clone()).await;
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(sim.stats.max_ids_per_request(), 1);
    eprintln!(
        "{crashed} of {ROUNDS} rounds crashed in the store; {} applications acknowledged, all completed",
        accepted.len()
    );
}
