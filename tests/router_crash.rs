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
    Command::new(env!("CARGO_BIN_EXE_brama"))
        .args(["serve", "--config"])
        .arg(config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
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
    let mut net = Net::new();
    // Slow enough that many deliveries are in flight at the kill.
    let sim = start_sim(|s| s.latency = Duration::from_millis(20)).await;
    let dir = net.path();
    let ss2_l = std::mem::replace(&mut net.ss2_server, common::bind());
    let _ss2 = start_node(&dir, "ss2", &ss2_toml(sim.addr), Some(ss2_l)).await;

    // ss1 runs as its own process, on the server port the global configuration names.
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
    let mut child = spawn(&config, &dir.join("ss1-first.log"));
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

    let mut child = spawn(&config, &dir.join("ss1-second.log"));
    wait_listening(client, &mut child).await;
    let start = Instant::now();
    let mut pending = ids.clone();
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
