//! The eMalyatko deployment for router tests: ss1 hosts DIIA and runs the router, ss2 hosts the
//! six registries' subsystems, whose services are the registry simulator in this process.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use brama::deploy::{MemberDef, ServerDef, Topology};
use brama::pki::Pki;

use super::{bind, node_toml, sub, INSTANCE};

/// (member code, subsystem, WSDL stem, operations)
pub const REGISTRIES: &[(&str, &str, &str, &[&str])] = &[
    (
        "00000006",
        "EHEALTH",
        "ehealth",
        &["getMedicalBirthCertificate", "registerNewbornPatient"],
    ),
    (
        "00000002",
        "DRACS",
        "dracs",
        &[
            "registerBirth",
            "getBirthRegistrationStatus",
            "getBirthRecord",
        ],
    ),
    (
        "00000003",
        "DMS",
        "dms",
        &["assignUnzr", "determineCitizenship"],
    ),
    ("00000004", "DPS", "dps", &["registerTaxpayer"]),
    (
        "00000005",
        "EISSS",
        "msp",
        &["assignBirthAssistance", "assignLargeFamilySupport"],
    ),
    ("00000007", "RTG", "rtg", &["registerResidence"]),
];

/// Test PKI, global configuration and listeners of the two servers.
pub struct Net {
    pub dir: tempfile::TempDir,
    pub pki: Pki,
    pub ss1_server: TcpListener,
    pub ss2_server: TcpListener,
}

impl Net {
    pub fn new() -> Net {
        let dir = tempfile::tempdir().unwrap();
        let ss1_server = bind();
        let ss2_server = bind();
        let member = |code: &str, name: &str, subs: &[&str]| MemberDef {
            class: "GOV".into(),
            code: code.into(),
            name: name.into(),
            subsystems: subs.iter().map(|s| s.to_string()).collect(),
        };
        // DIIA2: registered, hosted nowhere until a test's configuration hosts it.
        let mut members = vec![member("00000001", "Мінцифри", &["DIIA", "DIIA2"])];
        for (code, subsystem, _, _) in REGISTRIES {
            members.push(member(code, &format!("Реєстр {subsystem}"), &[subsystem]));
        }
        let topology = Topology {
            instance: INSTANCE.into(),
            members,
            servers: vec![
                ServerDef {
                    owner_code: "00000001".into(),
                    code: "ss1".into(),
                    address: ss1_server.local_addr().unwrap().to_string(),
                    clients: vec![sub("00000001", "DIIA"), sub("00000001", "DIIA2")],
                },
                ServerDef {
                    owner_code: "00000002".into(),
                    code: "ss2".into(),
                    address: ss2_server.local_addr().unwrap().to_string(),
                    clients: REGISTRIES.iter().map(|(c, s, _, _)| sub(c, s)).collect(),
                },
            ],
            global_groups: vec![],
            ocsp_urls: Vec::new(),
            tsa_urls: Vec::new(),
        };
        let pki = brama::pki::generate(&topology.pki_spec("test CA", &["diia-is"])).unwrap();
        pki.write_dir(&dir.path().join("certs")).unwrap();
        topology
            .write_globalconf(&dir.path().join("globalconf"), &pki)
            .unwrap();
        Net {
            dir,
            pki,
            ss1_server,
            ss2_server,
        }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

/// ss2: every registry operation served by the simulator at `sim`, DIIA allowed.
pub fn ss2_toml(sim: SocketAddr) -> String {
    let mut extra = String::new();
    for (code, subsystem, stem, ops) in REGISTRIES {
        extra += &format!("[[clients]]\nid = \"{INSTANCE}/GOV/{code}/{subsystem}\"\n\n");
        for op in *ops {
            // The SOAP operation (v1) and its REST form under the same code (no version).
            extra += &format!(
                "[[clients.services]]\ncode = \"{op}\"\nversion = \"v1\"\nurl = \"http://{sim}/{stem}\"\ntimeout_ms = 5000\nwsdl = \"http://{sim}/wsdl/{stem}.wsdl\"\n\n[[clients.services]]\ncode = \"{op}\"\ntype = \"rest\"\nurl = \"http://{sim}/rest/{op}\"\ntimeout_ms = 5000\n\n[[clients.access]]\nservice = \"{op}\"\nsubjects = [\"SUBSYSTEM:{INSTANCE}/GOV/00000001/DIIA\"]\n\n"
            );
        }
    }
    node_toml("ss2", "00000002", "globalconf", &extra)
}

/// ss1: DIIA and the router. `router_extra` is appended inside `[router]` (limits, webhook).
/// The listeners are on loopback, so the router authenticates no one unless `router_extra` says
/// `authentication = "certificate"` (DIIA's information system then presents `client-diia-is`).
pub fn ss1_toml(store: &Path, router_extra: &str) -> String {
    let auth = if router_extra.contains("authentication") {
        ""
    } else {
        "authentication = \"none\""
    };
    let mut extra = format!(
        r#"
[[clients]]
id = "{INSTANCE}/GOV/00000001/DIIA"
is_certs = ["certs/client-diia-is.pem"]

[router]
store_dir = "{store}"
client = "{INSTANCE}/GOV/00000001/DIIA"
poll_interval_ms = 50
{auth}
{router_extra}

[router.retry]
initial_backoff_ms = 50
max_backoff_ms = 400
timeout_ms = 10000
concurrency = 32

[[router.routes]]
name = "birth-record"
client = "{INSTANCE}/GOV/00000001/DIIA"
service = "{INSTANCE}/GOV/00000002/DRACS/getBirthRecord/v1"
"#,
        store = store.display()
    );
    for (code, subsystem, stem, _) in REGISTRIES {
        extra += &format!(
            "\n[router.registries.{stem}]\nsubsystem = \"{INSTANCE}/GOV/{code}/{subsystem}\"\n"
        );
    }
    node_toml("ss1", "00000001", "globalconf", &extra)
}

/// A simulator on its own port, with `settings` applied to its configuration.
pub async fn start_sim(settings: impl FnOnce(&mut brama::sim::SimConfig)) -> super::Sim {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let stats = Arc::new(brama::sim::SimStats::default());
    let wsdl_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/wsdl");
    let mut cfg = brama::sim::SimConfig {
        wsdls: brama::sim::load_wsdls(std::path::Path::new("/"), wsdl_dir).unwrap(),
        ..Default::default()
    };
    settings(&mut cfg);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(brama::sim::serve(l, cfg, stats.clone(), async move {
        let _ = rx.await;
    }));
    super::Sim::new(addr, stats, tx)
}

/// Starts or ends (`ms` = 0) an outage of one simulated registry.
pub async fn outage(sim: SocketAddr, registry: &str, ms: u64) {
    let r = super::http::request(
        sim,
        "POST",
        &format!("/_sim/outage/{registry}?ms={ms}"),
        &[],
        bytes::Bytes::new(),
    )
    .await;
    assert!(
        r.status.is_success(),
        "outage control: {} {}",
        r.status,
        r.text()
    );
}

/// Posts an application; returns (status, JSON answer).
pub async fn submit(ss1: SocketAddr, body: &[u8]) -> (u16, serde_json::Value) {
    submit_with(ss1, body, None)
        .await
        .unwrap_or_else(|e| panic!("submit to {ss1}: {e}"))
}

/// POSTs an application, with an `Idempotency-Key` if given; a node that cannot be reached or
/// breaks the exchange is an error.
pub async fn submit_with(
    ss1: SocketAddr,
    body: &[u8],
    key: Option<&str>,
) -> Result<(u16, serde_json::Value), String> {
    let mut headers = vec![("content-type", "application/json")];
    headers.extend(key.map(|k| ("idempotency-key", k)));
    let r = super::http::try_request(
        ss1,
        "POST",
        "/api/v1/applications",
        &headers,
        bytes::Bytes::copy_from_slice(body),
    )
    .await?;
    Ok((
        r.status.as_u16(),
        serde_json::from_slice(&r.body).unwrap_or_default(),
    ))
}

pub async fn status(ss1: SocketAddr, id: &str) -> serde_json::Value {
    let r = super::http::get(ss1, &format!("/api/v1/applications/{id}"), &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    serde_json::from_slice(&r.body).unwrap()
}

/// Polls until the application is no longer in progress, or panics after `limit`.
pub async fn wait_done(ss1: SocketAddr, id: &str, limit: Duration) -> serde_json::Value {
    let start = std::time::Instant::now();
    loop {
        let v = status(ss1, id).await;
        if v["status"] != "in_progress" {
            return v;
        }
        assert!(start.elapsed() < limit, "still in progress: {v:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One service's entry in an application's status.
pub fn service(v: &serde_json::Value, name: &str) -> serde_json::Value {
    v["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == name)
        .unwrap_or_else(|| panic!("no service {name} in {v:#}"))
        .clone()
}

/// The state of each service, by name.
pub fn states(v: &serde_json::Value) -> Vec<(String, String)> {
    v["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["service"].as_str().unwrap().to_string(),
                s["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

pub fn example(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/examples/applications/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// An application of its own (certificate, child and applicant differ), so each delivery's
/// request content is unique and the simulator can tell deliveries apart.
pub fn application(i: usize) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(&example("all-services.json")).unwrap();
    v["medicalBirthCertificate"] =
        format!("2026-1120-{:04}-{:04}", i / 10_000 + 1, i % 10_000).into();
    const NAMES: &[&str] = &[
        "Марія",
        "Олена",
        "Софія",
        "Дарина",
        "Анна",
        "Ірина",
        "Катерина",
    ];
    v["child"]["givenName"] = NAMES[i % NAMES.len()].into();
    let born = time::macros::date!(2026 - 11 - 20) - time::Duration::days((i / NAMES.len()) as i64);
    v["child"]["birthDate"] = born.to_string().into();
    v["applicant"]["rnokpp"] = brama::load::scenario::rnokpp(300_000_000 + i as u64 * 7919).into();
    v.to_string().into_bytes()
}
