//! Shared test harness: real brama servers, real TLS, real sockets on 127.0.0.1 port 0.
#![allow(dead_code)]

pub mod emalyatko;
pub mod http;
pub mod large;
pub mod pg;
pub mod processes;
pub mod rest;
pub mod softhsm;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use brama::config::ServerConf;
use brama::deploy::{MemberDef, ServerDef, Topology};
use brama::globalconf::GlobalGroup;
use brama::identifiers::ClientId;
use brama::pki::Pki;
use brama::proxy::{Prebound, Running};

pub const INSTANCE: &str = "SEVDEIR-TEST";

/// An X-Road SOAP request from `client` to `service` (path forms) with a fresh id.
pub fn msg(client: &str, service: &str, body: &str) -> String {
    brama::message::build::request(
        &brama::message::build::RequestHeader {
            client: ClientId::parse_path(client).unwrap(),
            service: brama::identifiers::ServiceId::parse_path(service).unwrap(),
            id: uuid::Uuid::new_v4().to_string(),
            user_id: Some("UA3456789012".into()),
            issue: Some("eMalyatko-1".into()),
            security_server: None,
        },
        body,
    )
}

pub fn bind() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0")
}

pub fn sub(member: &str, code: &str) -> ClientId {
    ClientId::subsystem(INSTANCE, "GOV", member, code)
}

/// A registry simulator on its own port.
pub struct Sim {
    pub addr: SocketAddr,
    pub stats: Arc<brama::sim::SimStats>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Sim {
    pub fn new(
        addr: SocketAddr,
        stats: Arc<brama::sim::SimStats>,
        stop: tokio::sync::oneshot::Sender<()>,
    ) -> Sim {
        Sim {
            addr,
            stats,
            stop: Some(stop),
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

pub async fn start_sim(latency: Duration) -> Sim {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let stats = Arc::new(brama::sim::SimStats::default());
    let wsdl_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/wsdl");
    let cfg = brama::sim::SimConfig {
        latency,
        error_rate: 0.0,
        wsdls: brama::sim::load_wsdls(std::path::Path::new("/"), wsdl_dir).unwrap(),
        ..Default::default()
    };
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(brama::sim::serve(l, cfg, stats.clone(), async move {
        let _ = rx.await;
    }));
    Sim {
        addr,
        stats,
        stop: Some(tx),
    }
}

/// The test CA's OCSP responder and TSA, served by the simulator on its own thread and runtime
/// (so it outlives any one test runtime), stopped when dropped.
pub struct TestResponder {
    pub responder: Arc<brama::test_ocsp::Responder>,
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TestResponder {
    pub fn start(pki: &Pki) -> TestResponder {
        let tsa = brama::test_tsa::Tsa::from_pem(&pki.tsa.cert_pem, &pki.tsa.key_pem).unwrap();
        Self::start_with(pki, Arc::new(tsa))
    }

    /// The same with another TSA behind `POST /tsa` (`openssl ts -reply`).
    pub fn start_with(
        pki: &Pki,
        tsa: Arc<dyn brama::test_tsa::TimeStampAuthority>,
    ) -> TestResponder {
        let responder = Arc::new(
            brama::test_ocsp::Responder::new(
                &pki.ca.cert_der,
                &pki.ocsp.cert_der,
                &pki.ocsp.key_pem,
            )
            .unwrap(),
        );
        let l = bind();
        l.set_nonblocking(true).unwrap();
        let addr = l.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let cfg = brama::sim::SimConfig {
            ocsp: Some(responder.clone()),
            tsa: Some(tsa),
            ..Default::default()
        };
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let l = tokio::net::TcpListener::from_std(l).unwrap();
                let stats = Arc::new(brama::sim::SimStats::default());
                let _ = brama::sim::serve(l, cfg, stats, async move {
                    let _ = rx.await;
                })
                .await;
            });
        });
        TestResponder {
            responder,
            addr,
            stop: Some(tx),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/ocsp", self.addr)
    }

    pub fn tsa_url(&self) -> String {
        format!("http://{}/tsa", self.addr)
    }
}

impl Drop for TestResponder {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// A test network's central server publishing `net`'s global configuration (signed with a
/// key of its own) on its own thread and runtime; the anchor is written to `<net>/anchor.xml`.
pub struct Central {
    pub publisher: Arc<brama::test_publish::Publisher>,
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Central {
    pub fn start(net: &TwoServers) -> Central {
        let key = &net.pki.central;
        let publisher = Arc::new(
            brama::test_publish::Publisher::from_dir(
                &net.path().join("globalconf"),
                &key.cert_pem,
                &key.key_pem,
            )
            .unwrap(),
        );
        let l = bind();
        l.set_nonblocking(true).unwrap();
        let addr = l.local_addr().unwrap();
        std::fs::write(
            net.path().join("anchor.xml"),
            publisher.anchor_xml(&format!("http://{addr}/internalconf")),
        )
        .unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let p = publisher.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let l = tokio::net::TcpListener::from_std(l).unwrap();
                brama::sim::serve_globalconf(l, p, async move {
                    let _ = rx.await;
                })
                .await;
            });
        });
        Central {
            publisher,
            addr,
            stop: Some(tx),
        }
    }
}

impl Drop for Central {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// An address of its own on the loopback network (127.0.0.0/8 is all loopback on Linux), so
/// servers of parallel tests can each serve their OCSP port on X-Road's fixed 5577.
pub fn loopback_ip() -> std::net::IpAddr {
    let b = uuid::Uuid::new_v4().into_bytes();
    std::net::Ipv4Addr::new(127, 1 + b[0] % 250, b[1], 1 + b[2] % 250).into()
}

/// Two security servers of one instance: ss1 hosts DIIA and OTHER (clients), ss2 hosts DRACS.
/// Each listens on an address of its own; the global configuration names the test CA's OCSP
/// responder, so every certificate's status is checked, as on a real network.
pub struct TwoServers {
    pub dir: tempfile::TempDir,
    pub pki: Pki,
    pub topology: Topology,
    pub ss1_server: TcpListener,
    pub ss2_server: TcpListener,
    pub ocsp: TestResponder,
}

impl TwoServers {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ss1_server = TcpListener::bind((loopback_ip(), 0)).unwrap();
        let ss2_server = TcpListener::bind((loopback_ip(), 0)).unwrap();
        let member = |code: &str, name: &str, subs: &[&str]| MemberDef {
            class: "GOV".into(),
            code: code.into(),
            name: name.into(),
            subsystems: subs.iter().map(|s| s.to_string()).collect(),
        };
        let topology = Topology {
            instance: INSTANCE.into(),
            members: vec![
                member("00000001", "Мінцифри", &["DIIA"]),
                member("00000002", "Мін'юст", &["DRACS"]),
                member("00000009", "Тестова установа", &["OTHER"]),
            ],
            servers: vec![
                ServerDef {
                    owner_code: "00000001".into(),
                    code: "ss1".into(),
                    address: ss1_server.local_addr().unwrap().to_string(),
                    clients: vec![sub("00000001", "DIIA"), sub("00000009", "OTHER")],
                },
                ServerDef {
                    owner_code: "00000002".into(),
                    code: "ss2".into(),
                    address: ss2_server.local_addr().unwrap().to_string(),
                    clients: vec![sub("00000002", "DRACS")],
                },
            ],
            global_groups: vec![GlobalGroup {
                code: "registries".into(),
                description: "".into(),
                members: vec![sub("00000009", "OTHER")],
            }],
            ocsp_urls: Vec::new(),
            tsa_urls: Vec::new(),
        };
        let mut topology = topology;
        let pki = brama::pki::generate(&topology.pki_spec("test CA", &["diia-is"])).unwrap();
        pki.write_dir(&dir.path().join("certs")).unwrap();
        let ocsp = TestResponder::start(&pki);
        topology.ocsp_urls = vec![ocsp.url()];
        topology.tsa_urls = vec![ocsp.tsa_url()];
        topology
            .write_globalconf(&dir.path().join("globalconf"), &pki)
            .unwrap();
        TwoServers {
            dir,
            pki,
            topology,
            ss1_server,
            ss2_server,
            ocsp,
        }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

/// The `[limits]` of test nodes: small, and quick to time out.
pub const NODE_LIMITS: &str = "max_body_bytes = 1048576
header_read_timeout_ms = 1000
body_read_timeout_ms = 2000
shutdown_grace_ms = 5000";

/// The common part of a node's TOML; `extra` adds `[[clients]]` and more.
pub fn node_toml(server_code: &str, owner: &str, globalconf: &str, extra: &str) -> String {
    node_toml_with(server_code, owner, globalconf, NODE_LIMITS, extra)
}

/// [`node_toml`] with `limits` as the body of `[limits]`.
pub fn node_toml_with(
    server_code: &str,
    owner: &str,
    globalconf: &str,
    limits: &str,
    extra: &str,
) -> String {
    format!(
        r#"
[server]
id = "{INSTANCE}/GOV/{owner}/{server_code}"
globalconf_dir = "{globalconf}"

[listeners]
client_http = "127.0.0.1:0"
client_https = "127.0.0.1:0"
server = "127.0.0.1:0"
admin = "127.0.0.1:0"
ocsp = "127.0.0.1:0"

[limits]
{limits}

# Below the peers' idle close (header_read_timeout_ms), so a pooled connection is never reused
# just as the peer closes it.
[proxy]
pool_idle_timeout_ms = 300

[tls]
auth_cert = "certs/{server_code}-auth.pem"
auth_key = "certs/{server_code}-auth.key"
internal_cert = "certs/{server_code}-internal.pem"
internal_key = "certs/{server_code}-internal.key"

[[signer.tokens]]
name = "soft"
kind = "software"
keys_dir = "certs"

{extra}
"#
    )
}

/// Loads and starts a node from TOML text in `dir`.
pub async fn start_node(
    dir: &Path,
    name: &str,
    toml: &str,
    server: Option<TcpListener>,
) -> Running {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, toml).unwrap();
    // With `[globalconf] anchor`, the first download happens before the configuration is read.
    brama::confclient::refresh::bootstrap(&path, Duration::from_secs(30))
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let conf = ServerConf::load(Some(&path)).unwrap_or_else(|e| panic!("config {name}: {e}"));
    // A server on an address of its own serves its OCSP port on X-Road's 5577 there, where
    // peers look for it.
    let ocsp = server
        .as_ref()
        .map(|l| l.local_addr().unwrap().ip())
        .filter(|ip| *ip != std::net::IpAddr::from([127, 0, 0, 1]))
        .map(|ip| TcpListener::bind((ip, 5577)).unwrap());
    let pre = Prebound {
        server,
        ocsp,
        ..Default::default()
    };
    let running = brama::serve::start(conf, pre).await.unwrap();
    // Peers refuse a server that cannot show its own certificates' OCSP status.
    let own = running.gateway.own_ocsp().clone();
    let start = std::time::Instant::now();
    while let Some(problem) = own.problem() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{name}'s own OCSP responses: {problem}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    running
}

/// ss1's configuration: DIIA (http) and OTHER (https-auth, pinned to `client-diia-is`) as clients.
pub fn ss1_toml() -> String {
    node_toml(
        "ss1",
        "00000001",
        "globalconf",
        r#"
[[clients]]
id = "SEVDEIR-TEST/GOV/00000001/DIIA"

[[clients]]
id = "SEVDEIR-TEST/GOV/00000009/OTHER"
connection = "https-auth"
is_certs = ["certs/client-diia-is.pem"]
"#,
    )
}

/// ss2's configuration: DRACS with getBirthRecord (DIIA allowed), a disabled service and a dead one.
pub fn ss2_toml(sim: SocketAddr, dead: SocketAddr) -> String {
    node_toml(
        "ss2",
        "00000002",
        "globalconf",
        &format!(
            r#"
[[clients]]
id = "SEVDEIR-TEST/GOV/00000002/DRACS"

[[clients.services]]
code = "getBirthRecord"
version = "v1"
url = "http://{sim}/dracs"
timeout_ms = 3000
wsdl = "http://{sim}/wsdl/dracs.wsdl"

[[clients.services]]
code = "testQuery"
url = "http://{sim}/echo"
disabled = true
disabled_notice = "Сервіс на обслуговуванні до 06:00"

[[clients.services]]
code = "getState"
url = "http://{dead}/nobody"
timeout_ms = 1000

[[clients.services]]
code = "test"
url = "http://{sim}/echo"

[[clients.local_groups]]
code = "ministries"
members = ["SEVDEIR-TEST/GOV/00000001/DIIA"]

[[clients.access]]
service = "getBirthRecord"
subjects = ["SUBSYSTEM:SEVDEIR-TEST/GOV/00000001/DIIA"]

[[clients.access]]
service = "testQuery"
subjects = ["LOCALGROUP:ministries"]

[[clients.access]]
service = "getState"
subjects = ["SUBSYSTEM:SEVDEIR-TEST/GOV/00000001/DIIA"]

[[clients.access]]
service = "test"
subjects = ["GLOBALGROUP:SEVDEIR-TEST/registries", "MEMBER:SEVDEIR-TEST/GOV/00000001"]
"#
        ),
    )
}

pub fn read_conformance(rel: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/xroad/{rel}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The `faultcode` of a SOAP fault body, if it is one.
pub fn fault_code(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let start = text.find("<faultcode>")? + "<faultcode>".len();
    let end = text[start..].find("</faultcode>")? + start;
    Some(text[start..end].to_string())
}

/// A running two-server deployment with the simulator behind ss2.
pub struct Pair {
    pub net: TwoServers,
    pub ss1: Running,
    pub ss2: Running,
    pub sim: Sim,
}

/// Starts ss2 (provider, `ss2_toml`) and ss1 (client side, `ss1_toml`); `latency` is the
/// simulator's.
pub async fn start_pair(latency: Duration) -> Pair {
    start_pair_with(latency, |_, toml| toml).await
}

/// [`start_pair`] with each server's configuration passed through `edit(name, toml)`.
pub async fn start_pair_with(latency: Duration, edit: impl Fn(&str, String) -> String) -> Pair {
    start_pair_on(TwoServers::new(), latency, edit).await
}

/// [`start_pair_with`] on a test network prepared by the caller.
pub async fn start_pair_on(
    mut net: TwoServers,
    latency: Duration,
    edit: impl Fn(&str, String) -> String,
) -> Pair {
    let sim = start_sim(latency).await;
    let dead = bind().local_addr().unwrap(); // bound then dropped: nothing listens there
    let dir = net.path();
    let ss2_listener = std::mem::replace(&mut net.ss2_server, bind());
    let ss1_listener = std::mem::replace(&mut net.ss1_server, bind());
    let ss2_conf = edit("ss2", ss2_toml(sim.addr, dead));
    let ss2 = start_node(&dir, "ss2", &ss2_conf, Some(ss2_listener)).await;
    let ss1 = start_node(&dir, "ss1", &edit("ss1", ss1_toml()), Some(ss1_listener)).await;
    Pair { net, ss1, ss2, sim }
}

/// Runs the independent verifier (`tests/independent/verify_xroad.py`) over ASiC containers
/// that `member` must have signed; every one must be VALID.
pub fn independent_verify(ca: &Path, member: &str, files: &[std::path::PathBuf]) {
    independent_verify_with(ca, member, files, &[]);
}

/// [`independent_verify`] with more of the verifier's options (`--ocsp 3600`).
pub fn independent_verify_with(
    ca: &Path,
    member: &str,
    files: &[std::path::PathBuf],
    options: &[&str],
) {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/independent/verify_xroad.py"
    );
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg("--ca")
        .arg(ca)
        .args(["--member", member])
        .args(options)
        .args(files)
        .output()
        .expect("python3 runs (scripts/test.sh installs lxml and cryptography)");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "independent verifier refused: {text}");
    assert_eq!(
        text.matches("VALID ").count() - text.matches("INVALID ").count(),
        files.len(),
        "{text}"
    );
}

/// Waits until `cond` (an expression that may `.await`) holds, polling every 50 ms; panics after
/// 30 s naming `what`: [`until`] for conditions that need a request to find out.
#[macro_export]
macro_rules! eventually {
    ($what:expr, $cond:expr) => {{
        let start = std::time::Instant::now();
        while !$cond {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(30),
                "timed out waiting for {}",
                $what
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }};
}

/// Waits until `done()` holds, polling every few milliseconds; panics after 30 s naming `what`.
pub async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The containers a message log directory holds, each as a file: the loose `.asice` files, and
/// the records of each time-stamping round (put together from their segment) written out into
/// `out` under their own names (for verifiers that take files). Sorted by file name.
pub fn logged_containers(dir: &Path, out: &Path) -> Vec<PathBuf> {
    std::fs::create_dir_all(out).unwrap();
    let mut files = Vec::new();
    // This directory's, not those moved to `archived/`.
    brama::message_log::stamps::each_logged_in(dir, dir, &|_| true, &mut |name, bytes| {
        let to = out.join(name);
        std::fs::write(&to, bytes)?;
        files.push(to);
        Ok(())
    })
    .unwrap();
    files.sort_by_key(|p| p.file_name().map(|n| n.to_owned()));
    files
}

/// The X-Road `id` of a SOAP message (the information system's query id).
pub fn query_id(message: &str) -> String {
    let start = message.find("<xroad:id>").unwrap() + "<xroad:id>".len();
    let end = start + message[start..].find('<').unwrap();
    message[start..end].to_string()
}

/// `brama verify` on `files` with the test network's global configuration: every one VALID and
/// time-stamped.
pub async fn brama_verify(p: &Pair, files: &[std::path::PathBuf]) {
    brama_verify_with(&p.net.path().join("globalconf"), files).await
}

/// The same with the global configuration in `globalconf`.
pub async fn brama_verify_with(globalconf: &std::path::Path, files: &[std::path::PathBuf]) {
    brama_verify_counting(globalconf, files, files.len()).await
}

/// The same, `containers` of them in `files` (a log directory holds several).
pub async fn brama_verify_counting(
    globalconf: &std::path::Path,
    files: &[std::path::PathBuf],
    containers: usize,
) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_brama"))
        .arg("verify")
        .arg("--globalconf")
        .arg(globalconf)
        .args(files)
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert_eq!(
        text.matches("time-stamped by an approved TSA").count(),
        containers,
        "{text}"
    );
}

/// Checks a `/metrics` page as a Prometheus scraper reads it: every sample's family has its
/// `# HELP` and `# TYPE`, and every line starts at its first column.
pub fn assert_metrics_described(text: &str) {
    let described = |kind: &str| -> std::collections::HashSet<String> {
        text.lines()
            .filter_map(|l| l.strip_prefix(kind))
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_string)
            .collect()
    };
    let (helps, types) = (described("# HELP "), described("# TYPE "));
    for line in text.lines().filter(|l| !l.is_empty()) {
        assert!(!line.starts_with(char::is_whitespace), "indented: {line:?}");
        if line.starts_with('#') {
            continue;
        }
        let name = line.split(['{', ' ']).next().unwrap_or_default();
        let family = ["_bucket", "_sum", "_count", "_created"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .filter(|f| types.contains(*f))
            .unwrap_or(name);
        assert!(types.contains(family), "no # TYPE for {name}");
        assert!(helps.contains(family), "no # HELP for {name}");
    }
}
