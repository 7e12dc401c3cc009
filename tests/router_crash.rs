//! Crash safety: the router's brama is a separate process, killed with SIGKILL while hundreds
//! of applications are in flight, then restarted on the same store. Every (application,
//! service) pair must end delivered, and no delivery may reach a registry under two X-Road ids.

mod common;

use std::net::SocketAddr;
use std::process::Child;
use std::time::{Duration, Instant};

use common::emalyatko::*;
use common::processes::{self, wait_completed, wait_listening, Provider};
use common::until;

const APPLICATIONS: usize = 500;

/// `crash_after`: the process aborts at that write, resize or sync of its store (the store's
/// fault hook).
fn spawn_with(config: &std::path::Path, log: &std::path::Path, crash_after: Option<u64>) -> Child {
    let env: Vec<(&str, String)> = crash_after
        .map(|n| ("BRAMA_STORE_FAULT_CRASH_AFTER", n.to_string()))
        .into_iter()
        .collect();
    processes::spawn(config, log, &env)
}

fn spawn(config: &std::path::Path, log: &std::path::Path) -> Child {
    spawn_with(config, log, None)
}

struct Setup {
    p: Provider,
    config: std::path::PathBuf,
    client: SocketAddr,
}

async fn setup(latency: Duration) -> Setup {
    let p = Provider::start(latency).await;
    let c = p.ss1_config("ss1", &p.dir.join("store"), "");
    Setup {
        p,
        config: c.path,
        client: c.client,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_500_applications_in_flight_loses_nothing() {
    // Slow enough that many deliveries are in flight at the kill.
    let s = setup(Duration::from_millis(20)).await;
    let (sim, dir, config, client) = (&s.p.sim, &s.p.dir, &s.config, s.client);
    let log = dir.join("ss1-first.log");
    let mut child = spawn(config, &log);
    wait_listening(client, &mut child, &log).await;

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

    let log = dir.join("ss1-second.log");
    let mut child = spawn(config, &log);
    wait_listening(client, &mut child, &log).await;
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
    let (sim, dir, config, client) = (&s.p.sim, &s.p.dir, &s.config, s.client);

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

    let log = dir.join("ss1-last.log");
    let mut child = spawn(config, &log);
    wait_listening(client, &mut child, &log).await;
    wait_completed(client, accepted.clone()).await;
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(sim.stats.max_ids_per_request(), 1);
    eprintln!(
        "{crashed} of {ROUNDS} rounds crashed in the store; {} applications acknowledged, all completed",
        accepted.len()
    );
}
