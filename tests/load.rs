//! `brama load` (the binary) against two brama security servers on loopback, with the registry
//! simulator and a small REST service behind the provider: closed and open models, faults
//! counted by X-Road code, REST in both dialects, HTTPS with a client certificate, applications
//! through the router.

mod common;

use std::collections::HashSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http_body_util::Full;
use serde_json::Value;

const DIIA: &str = "SEVDEIR-TEST/GOV/00000001/DIIA";
const OTHER: &str = "SEVDEIR-TEST/GOV/00000009/OTHER";
const DRACS: &str = "SEVDEIR-TEST/GOV/00000002/DRACS";

/// Runs `brama load ARGS --json --quiet`; returns the summary. Errors do not fail the run
/// (`--max-error-rate 1`): the tests count them themselves.
async fn load(args: &[&str]) -> Value {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_brama"))
        .arg("load")
        .args(args)
        .args(["--json", "--quiet", "--max-error-rate", "1"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "brama load {args:?}: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.lines().count(), 1, "one JSON line: {stdout}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn assert_ordered(v: &Value, field: &str) {
    let l = &v[field];
    let p: Vec<f64> = ["min", "p50", "p90", "p99", "p99_9", "max"]
        .iter()
        .map(|k| l[k].as_f64().unwrap_or_else(|| panic!("{field}.{k}: {v}")))
        .collect();
    assert!(p[0] > 0.0, "{v}");
    assert!(
        p.windows(2).all(|w| w[0] <= w[1]),
        "{field} not ordered: {l}"
    );
    let mean = l["mean"].as_f64().unwrap();
    assert!(p[0] <= mean && mean <= p[5], "{l}");
}

/// A REST service that answers 200 with a little JSON and keeps each `X-Road-Id` it sees.
async fn rest_service() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let ids = Arc::new(Mutex::new(Vec::new()));
    let seen = ids.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: ::http::Request<_>| {
                    if let Some(id) = req.headers().get("x-road-id") {
                        let id = String::from_utf8_lossy(id.as_bytes()).into_owned();
                        seen.lock().unwrap().push(id);
                    }
                    async move {
                        Ok::<_, Infallible>(
                            ::http::Response::builder()
                                .header("content-type", "application/json")
                                .body(Full::new(Bytes::from_static(b"{\"items\":[1,2,3]}")))
                                .unwrap(),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    (addr, ids)
}

/// ss2 of `start_pair` plus a REST service `items` for DIIA.
async fn deploy() -> (Pair, Arc<Mutex<Vec<String>>>) {
    let mut net = TwoServers::new();
    let sim = start_sim(Duration::ZERO).await;
    let (rest, ids) = rest_service().await;
    let dead = bind().local_addr().unwrap();
    let dir = net.path();
    let ss2_l = std::mem::replace(&mut net.ss2_server, bind());
    let ss1_l = std::mem::replace(&mut net.ss1_server, bind());
    let ss2 = ss2_toml(sim.addr, dead)
        + &format!(
            r#"
[[clients.services]]
code = "items"
type = "rest"
url = "http://{rest}/items"

[[clients.access]]
service = "items"
subjects = ["SUBSYSTEM:{DIIA}"]
"#
        );
    let ss2 = start_node(&dir, "ss2", &ss2, Some(ss2_l)).await;
    let ss1 = start_node(&dir, "ss1", &ss1_toml(), Some(ss1_l)).await;
    (Pair { net, ss1, ss2, sim }, ids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soap_rest_and_https_runs_are_measured_and_faults_counted_by_code() {
    let (p, rest_ids) = deploy().await;
    let url = format!("http://{}", p.ss1.client_http.unwrap());

    // Closed model, a request file: every request through, each under its own xrd:id.
    let v = load(&[
        "--url",
        &url,
        "--request",
        "examples/soap/getBirthRecord.xml",
        "--requests",
        "200",
        "--concurrency",
        "8",
    ])
    .await;
    assert_eq!(
        (
            &v["scenario"],
            &v["model"],
            &v["concurrency"],
            &v["connections"]
        ),
        (&"soap".into(), &"closed".into(), &8.into(), &8.into()),
        "{v}"
    );
    assert_eq!(
        (v["requests"].as_u64(), v["ok"].as_u64()),
        (Some(200), Some(200)),
        "{v}"
    );
    assert_eq!(v["errors"], 0, "{v}");
    assert_eq!(v["errors_by_code"], serde_json::json!({}), "{v}");
    assert!(v["throughput_rps"].as_f64().unwrap() > 0.0, "{v}");
    assert_ordered(&v, "latency_ms");
    assert_eq!(p.sim.stats.distinct_ids(), 200, "one xrd:id per request");

    // A service the provider does not have: every request counted under its X-Road fault code.
    let v9 = format!("{DRACS}/getBirthRecord/v9");
    let v = load(&[
        "--url",
        &url,
        "--operation",
        "dracs/getBirthRecord",
        "--client",
        DIIA,
        "--service",
        &v9,
        "--requests",
        "40",
        "--concurrency",
        "4",
    ])
    .await;
    assert_eq!(
        (v["ok"].as_u64(), v["errors"].as_u64()),
        (Some(0), Some(40)),
        "{v}"
    );
    assert_eq!(
        v["errors_by_code"],
        serde_json::json!({"Server.ServerProxy.UnknownService": 40}),
        "{v}"
    );
    assert_eq!(v["errors_by_kind"]["fault"], 40, "{v}");

    // The same operation at the provider's real service: generated data the registry accepts.
    let v = load(&[
        "--url",
        &url,
        "--operation",
        "dracs/getBirthRecord",
        "--client",
        DIIA,
        "--service",
        DRACS,
        "--requests",
        "40",
        "--concurrency",
        "4",
        "--threads",
        "2",
    ])
    .await;
    assert_eq!(
        (v["ok"].as_u64(), v["threads"].as_u64()),
        (Some(40), Some(2)),
        "{v}"
    );

    // Open model: 200 arrivals a second for 2 s, whatever the answers.
    let v = load(&[
        "--url",
        &url,
        "--request",
        "examples/soap/getBirthRecord.xml",
        "--rate",
        "200",
        "--duration",
        "2s",
    ])
    .await;
    assert_eq!(
        (&v["model"], &v["rate"]),
        (&"open".into(), &200.0.into()),
        "{v}"
    );
    let (n, dropped) = (
        v["requests"].as_u64().unwrap(),
        v["dropped"].as_u64().unwrap(),
    );
    assert_eq!(n + dropped, 400, "{v}");
    assert!(n >= 390 && v["ok"] == n, "{v}");
    let secs = v["duration_s"].as_f64().unwrap();
    assert!((1.9..3.0).contains(&secs), "{v}");
    assert_ordered(&v, "latency_ms");

    // REST, X-Road headers then UXP's; a fresh X-Road-Id each.
    for uxp in [false, true] {
        let items = format!("{DRACS}/items");
        let mut args = vec![
            "--url",
            &url,
            "--scenario",
            "rest",
            "--client",
            DIIA,
            "--service",
            &items,
            "--path",
            "/list?page=1",
            "--requests",
            "60",
            "--concurrency",
            "4",
            "--header",
            "Accept: application/json",
        ];
        if uxp {
            args.push("--uxp");
        }
        let v = load(&args).await;
        assert_eq!(
            (v["scenario"].as_str(), v["ok"].as_u64()),
            (Some("rest"), Some(60)),
            "uxp {uxp}: {v}"
        );
    }
    let ids = rest_ids.lock().unwrap().clone();
    assert_eq!(ids.len(), 120);
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        120,
        "one X-Road-Id per request"
    );
    let nothing = format!("{DRACS}/nothing");
    let v = load(&[
        "--url",
        &url,
        "--scenario",
        "rest",
        "--client",
        DIIA,
        "--service",
        &nothing,
        "--requests",
        "10",
    ])
    .await;
    assert_eq!(
        v["errors_by_code"],
        serde_json::json!({"Server.ServerProxy.UnknownService": 10}),
        "{v}"
    );

    // HTTPS with the information system's pinned certificate (OTHER is an SSLAUTH client).
    let dir = p.net.path();
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_string_lossy().into_owned()
    };
    let is = &p.net.pki.clients["diia-is"];
    let (ca, cert, key) = (
        write("load-ca.pem", &p.net.pki.ca.cert_pem),
        write("load-is.pem", &is.cert_pem),
        write("load-is.key", &is.key_pem),
    );
    let req = write(
        "load-test.xml",
        &msg(
            OTHER,
            &format!("{DRACS}/test"),
            "<x:test xmlns:x=\"urn:t\"><v>1</v></x:test>",
        ),
    );
    let https = format!("https://localhost:{}/", p.ss1.client_https.unwrap().port());
    let v = load(&[
        "--url",
        &https,
        "--ca",
        &ca,
        "--cert",
        &cert,
        "--key",
        &key,
        "--request",
        &req,
        "--requests",
        "30",
        "--concurrency",
        "2",
    ])
    .await;
    assert_eq!(v["ok"], 30, "{v}");
    // Without the client certificate the security server refuses the client.
    let v = load(&[
        "--url",
        &https,
        "--insecure",
        "--request",
        &req,
        "--requests",
        "5",
    ])
    .await;
    assert_eq!(
        v["errors_by_code"],
        serde_json::json!({"Server.ClientProxy.SslAuthenticationFailed": 5}),
        "{v}"
    );

    // Nobody listening: transport errors by kind, not faults.
    let dead = format!("http://{}", bind().local_addr().unwrap());
    let v = load(&[
        "--url",
        &dead,
        "--request",
        "examples/soap/getBirthRecord.xml",
        "--requests",
        "5",
        "--concurrency",
        "1",
    ])
    .await;
    assert_eq!(v["errors_by_kind"]["connect"], 5, "{v}");
}

/// Past `--max-error-rate` (1% unless given) the run fails with exit code 1, its summary
/// printed all the same.
#[tokio::test]
async fn an_error_rate_above_the_threshold_fails_the_run() {
    let dead = format!("http://{}", bind().local_addr().unwrap());
    for (extra, code) in [
        (vec![], 1),
        (vec!["--max-error-rate", "0.5"], 1),
        (vec!["--max-error-rate", "1"], 0),
    ] {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_brama"))
            .args([
                "load",
                "--url",
                &dead,
                "--request",
                "examples/soap/getBirthRecord.xml",
            ])
            .args(["--requests", "3", "--concurrency", "1", "--json", "--quiet"])
            .args(&extra)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .await
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{extra:?}: {err}");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["errors"], 3, "{v}");
        if code == 1 {
            assert!(
                err.contains("error rate 100.0% is above --max-error-rate"),
                "{err}"
            );
        }
    }
}

#[tokio::test]
async fn bad_flags_exit_2_with_a_reason() {
    for (args, reason) in [
        (vec!["--scenario", "soap"], "--request FILE or --operation"),
        (vec!["--request", "/nonexistent.xml"], "/nonexistent.xml"),
        (vec!["--request", "Cargo.toml"], "SOAP request"),
        (
            vec![
                "--url",
                "ftp://x",
                "--request",
                "examples/soap/getBirthRecord.xml",
            ],
            "http://",
        ),
        (vec!["--scenario", "rest"], "--client and --service"),
        (vec!["--rate", "0", "--request", "x"], "--rate"),
    ] {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_brama"))
            .arg("load")
            .args(&args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .await
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(reason), "{args:?}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applications_are_followed_to_completion() {
    use common::emalyatko::*;
    let mut net = Net::new();
    let sim = start_sim(|_| {}).await;
    let dir = net.path();
    let ss2_l = std::mem::replace(&mut net.ss2_server, common::bind());
    let ss1_l = std::mem::replace(&mut net.ss1_server, common::bind());
    let _ss2 = start_node(&dir, "ss2", &ss2_toml(sim.addr), Some(ss2_l)).await;
    let ss1 = start_node(&dir, "ss1", &ss1_toml(&dir.join("store"), ""), Some(ss1_l)).await;
    let url = format!("http://{}", ss1.client_http.unwrap());
    let v = load(&[
        "--url",
        &url,
        "--scenario",
        "application",
        "--requests",
        "4",
        "--concurrency",
        "2",
        "--poll-interval",
        "50ms",
    ])
    .await;
    assert_eq!(
        (v["scenario"].as_str(), v["ok"].as_u64()),
        (Some("application"), Some(4)),
        "{v}"
    );
    assert_ordered(&v, "latency_ms");
    assert_ordered(&v, "accept_latency_ms");
    assert!(
        v["latency_ms"]["min"].as_f64() >= v["accept_latency_ms"]["min"].as_f64(),
        "completion after acceptance: {v}"
    );
}
