//! Hostile input against `brama serve` on its embedded default, as a separate process measured
//! from outside: how fast each XML flood of about 1 MiB is refused, how much two floods at once
//! delay a valid request, and the server's RSS and a valid request's latency while 16 uploads
//! stall and while 5,000 connections sit idle.
//!
//! `cargo bench --bench hostile` (run from the repository; it needs ports 5500, 5588, 8080, 8090
//! and 8443 free). `cargo test --all-targets` runs it as a smoke run (fewer rounds, 500 idle
//! connections).

#[path = "../tests/common/mod.rs"]
mod common;

use std::net::SocketAddr;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const DIIA: &str = "SEVDEIR-TEST/GOV/00000001/DIIA";
const BIRTH: &str = "SEVDEIR-TEST/GOV/00000002/DRACS/getBirthRecord/v1";
const BIRTH_BODY: &str = "<d:getBirthRecord xmlns:d=\"http://minjust.gov.ua/dracs/v1\"><recordNumber>1</recordNumber></d:getBirthRecord>";

fn client() -> SocketAddr {
    "127.0.0.1:8080".parse().unwrap()
}

/// `GET /health` on the embedded default's admin listener answers 200.
fn healthy() -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect("127.0.0.1:5588") else {
        return false;
    };
    let _ = s.write_all(b"GET /health HTTP/1.1\r\nHost: brama\r\nConnection: close\r\n\r\n");
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200")
}

struct Server {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("serve.log");
        let mut serve = Command::new(env!("CARGO_BIN_EXE_brama"));
        serve
            .arg("serve")
            .env("RUST_LOG", "warn")
            .current_dir(dir.path())
            .stderr(std::fs::File::create(&log).unwrap());
        // Owned at once, so it is killed however this ends.
        let server = Server {
            child: serve.spawn().unwrap(),
            _dir: dir,
        };
        // Serving, and healthy: its own OCSP responses fetched, so peers (itself) accept it.
        for _ in 0..500 {
            if std::net::TcpStream::connect(client()).is_ok() && healthy() {
                return server;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "brama serve did not start: {}",
            std::fs::read_to_string(&log).unwrap()
        );
    }

    /// Resident memory, MiB.
    fn rss(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kb: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
            .unwrap();
        kb / 1024.0
    }

    /// User plus system CPU time so far.
    fn cpu(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        Duration::from_millis(ticks * 10)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One valid signed request through the embedded default; its latency.
async fn valid() -> Duration {
    let t = Instant::now();
    let r = common::http::post_xml(client(), common::msg(DIIA, BIRTH, BIRTH_BODY)).await;
    assert!(r.text().contains("getBirthRecordResponse"), "{}", r.text());
    t.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn floods() -> Vec<(&'static str, String)> {
    let good = common::msg(DIIA, BIRTH, BIRTH_BODY);
    let on_root = |extra: &str| {
        good.replacen(
            "<SOAP-ENV:Envelope",
            &format!("<SOAP-ENV:Envelope{extra}"),
            1,
        )
    };
    let attrs: String = (0..100_000).map(|i| format!(" a{i}=\"\"")).collect();
    let decls: String = (0..40_000)
        .map(|i| format!(" xmlns:p{i}=\"urn:{i}\""))
        .collect();
    let elements = format!(
        "<d:getBirthRecord xmlns:d=\"http://minjust.gov.ua/dracs/v1\">{}</d:getBirthRecord>",
        "<a/>".repeat(260_000)
    );
    vec![
        ("100,000 attributes", on_root(&attrs)),
        ("40,000 namespace declarations", on_root(&decls)),
        ("260,000 elements", common::msg(DIIA, BIRTH, &elements)),
    ]
}

async fn refuse(flood: &str) -> Duration {
    let t = Instant::now();
    let r = common::http::post_xml(client(), flood.to_string()).await;
    assert_eq!(
        common::fault_code(&r.body).as_deref(),
        Some("Client.InvalidXml")
    );
    t.elapsed()
}

#[tokio::main]
async fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let rounds = if full { 20 } else { 2 };
    let idle_connections = if full { 5000 } else { 300 };
    let (uploads, sent, sampling) = if full {
        (16, 31 * 1024 * 1024, Duration::from_secs(3))
    } else {
        (4, 2 * 1024 * 1024, Duration::from_millis(500))
    };
    let server = Server::start();
    let rss0 = server.rss();
    let mut base = Vec::new();
    for _ in 0..rounds {
        base.push(valid().await);
    }
    let base = median(base);
    println!("hostile input against brama serve (embedded default), {rounds} rounds");
    println!("idle: RSS {rss0:.1} MiB, valid request p50 {}", ms(base));

    for (name, flood) in floods() {
        let cpu0 = server.cpu();
        let mut times = Vec::new();
        for _ in 0..rounds {
            times.push(refuse(&flood).await);
        }
        let cpu = (server.cpu() - cpu0) / rounds as u32;
        println!(
            "flood of {name} ({} KiB): refused in {} median, {} max; server CPU {} per flood",
            flood.len() / 1024,
            ms(median(times.clone())),
            ms(*times.iter().max().unwrap()),
            ms(cpu)
        );
    }

    // Two floods at once, over and over, while valid requests are timed.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let attackers: Vec<_> = floods()
        .into_iter()
        .take(2)
        .map(|(_, flood)| {
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    refuse(&flood).await;
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut during = Vec::new();
    for _ in 0..rounds {
        during.push(valid().await);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut floods_sent = 0;
    for a in attackers {
        floods_sent += a.await.unwrap();
    }
    println!(
        "two floods in parallel ({floods_sent} refused meanwhile): valid request p50 {} (+{}), max {} (+{})",
        ms(median(during.clone())),
        ms(median(during.clone()).saturating_sub(base)),
        ms(*during.iter().max().unwrap()),
        ms(during.iter().max().unwrap().saturating_sub(base))
    );

    // Idle connections: up to the cap, sending nothing.
    let mut idle = Vec::new();
    for _ in 0..idle_connections {
        match TcpStream::connect(client()).await {
            Ok(c) => idle.push(c),
            Err(e) => panic!("connect: {e}"),
        }
    }
    let rss_idle = server.rss();
    let mut during = Vec::new();
    for _ in 0..rounds {
        during.push(valid().await);
    }
    let metrics = common::http::get("127.0.0.1:5588".parse().unwrap(), "/metrics", &[])
        .await
        .text();
    let shed = metrics
        .lines()
        .find_map(|l| l.strip_prefix("brama_connections_shed_total{listener=\"client_http\"} "))
        .unwrap_or("?")
        .to_string();
    println!(
        "{idle_connections} idle connections: RSS {rss_idle:.1} MiB, valid request (new connection) p50 {}, max {}; {shed} idle connections shed",
        ms(median(during.clone())),
        ms(*during.iter().max().unwrap())
    );
    drop(idle);

    // Sixteen uploads declare 32 MiB, send 31 MiB and stall.
    let mut stalled = Vec::new();
    let written = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    for _ in 0..uploads {
        let mut tcp = TcpStream::connect(client()).await.unwrap();
        let head = format!(
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n",
            32 * 1024 * 1024
        );
        tcp.write_all(head.as_bytes()).await.unwrap();
        let written = written.clone();
        stalled.push(tokio::spawn(async move {
            // Writes as fast as the server reads; a refusal ends it early.
            let chunk = vec![b' '; 1024 * 1024];
            for _ in 0..sent / chunk.len() {
                if tcp.write_all(&chunk).await.is_err() {
                    break;
                }
            }
            written.add_permits(1);
            let mut answer = vec![0u8; 64];
            let n = tcp.read(&mut answer).await.unwrap_or(0);
            String::from_utf8_lossy(&answer[..n])
                .split(' ')
                .nth(1)
                .unwrap_or("closed")
                .to_string()
        }));
    }
    // Measured once every upload has sent what it will and stalls (or was refused).
    let _ = written.acquire_many(uploads as u32).await.unwrap();
    let mut peak = server.rss();
    let mut during = Vec::new();
    let t = Instant::now();
    while t.elapsed() < sampling {
        peak = peak.max(server.rss());
        during.push(valid().await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut statuses = std::collections::BTreeMap::new();
    for s in stalled {
        *statuses.entry(s.await.unwrap()).or_insert(0) += 1;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    println!(
        "{uploads} stalled uploads ({} MiB of 32 each, body budget 256 MiB): peak RSS {peak:.1} MiB (+{:.1}), valid request p50 {}, max {}; answers {statuses:?}; RSS once they are cut {:.1} MiB",
        sent >> 20,
        peak - rss0,
        ms(median(during.clone())),
        ms(*during.iter().max().unwrap()),
        server.rss()
    );
}
