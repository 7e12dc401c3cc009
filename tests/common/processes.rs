//! The router's brama as separate processes (to be killed with SIGKILL), in front of a provider
//! side in the test's process: the registry simulator and ss2.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::emalyatko::*;
use super::start_node;

/// A free port for a process that is killed and started again on it. Below Linux's ephemeral
/// range (32768 and up): there, between two runs, an outgoing connection of this test could take
/// the port as its own local one, so the restart cannot bind it, or a connection to the port
/// could connect to itself and pass for the server listening.
pub fn free_port() -> SocketAddr {
    use std::hash::BuildHasher;
    let seed = std::collections::hash_map::RandomState::new().hash_one(std::process::id());
    for i in 0..2000u64 {
        let port = 20_000 + (seed.wrapping_add(i * 7919) % 12_000) as u16;
        if let Ok(l) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            return l.local_addr().unwrap();
        }
    }
    panic!("no free port in 20000..32000")
}

/// `brama serve --config CONFIG`, its log in `log`, with `env` set.
pub fn spawn(config: &Path, log: &Path, env: &[(&str, String)]) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_brama"));
    cmd.args(["serve", "--config"])
        .arg(config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

/// The provider side in this process: the simulator answering after `latency`, and ss2.
pub struct Provider {
    pub net: Net,
    pub sim: super::Sim,
    pub dir: PathBuf,
    _ss2: brama::proxy::Running,
}

impl Provider {
    pub async fn start(latency: Duration) -> Provider {
        let mut net = Net::new();
        let sim = start_sim(|s| s.latency = latency).await;
        let dir = net.path();
        let ss2_l = std::mem::replace(&mut net.ss2_server, super::bind());
        let ss2 = start_node(&dir, "ss2", &ss2_toml(sim.addr), Some(ss2_l)).await;
        Provider {
            net,
            sim,
            dir,
            _ss2: ss2,
        }
    }

    /// A configuration of ss1 for a process of its own, written as `name.toml`: its store in
    /// `store`, `top_extra` appended at the top level (after every `[router]` table).
    pub fn ss1_config(&self, name: &str, store: &Path, top_extra: &str) -> Ss1Config {
        let (client, admin) = (free_port(), free_port());
        let toml = ss1_toml(store, "")
            .replace(
                "client_http = \"127.0.0.1:0\"",
                &format!("client_http = \"{client}\""),
            )
            .replace(
                "server = \"127.0.0.1:0\"",
                &format!("server = \"{}\"", free_port()),
            )
            .replace("client_https = \"127.0.0.1:0\"\n", "")
            .replace("admin = \"127.0.0.1:0\"", &format!("admin = \"{admin}\""))
            + top_extra;
        let path = self.dir.join(format!("{name}.toml"));
        std::fs::write(&path, toml).unwrap();
        Ss1Config {
            path,
            client,
            admin,
        }
    }
}

/// A configuration file of ss1 and its listeners.
pub struct Ss1Config {
    pub path: PathBuf,
    pub client: SocketAddr,
    pub admin: SocketAddr,
}

/// Waits until `child` listens on `addr`; if it exits or does not start, fails with the end of its
/// `log`.
pub async fn wait_listening(addr: SocketAddr, child: &mut Child, log: &Path) {
    let start = Instant::now();
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        let failed = match child.try_wait().unwrap() {
            Some(status) => Some(format!("brama exited at start ({status})")),
            None if start.elapsed() > Duration::from_secs(30) => {
                Some("brama did not start in 30 s".to_string())
            }
            None => None,
        };
        if let Some(why) = failed {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(30).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            panic!("{why}; the end of its log:\n{}", tail.join("\n"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until every application of `ids` is completed, asking `client`; any other end fails
/// the test.
pub async fn wait_completed(client: SocketAddr, ids: Vec<String>) {
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
