//! The Diia router end to end: applications through ss1 (router) and ss2 (registries) over the
//! real signed path to the registry simulator, with a real store on disk.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::emalyatko::*;
use common::{assert_metrics_described, http, start_node};
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

struct Deployment {
    _net: Net,
    ss1: brama::proxy::Running,
    _ss2: brama::proxy::Running,
    sim: common::Sim,
}

impl Deployment {
    fn client(&self) -> SocketAddr {
        self.ss1.client_http.unwrap()
    }
}

async fn deploy(
    sim_settings: impl FnOnce(&mut brama::sim::SimConfig),
    router_extra: &str,
) -> Deployment {
    deploy_with(sim_settings, router_extra, |t| t).await
}

/// As [`deploy`], with ss1's configuration changed by `edit` (per-registry settings).
async fn deploy_with(
    sim_settings: impl FnOnce(&mut brama::sim::SimConfig),
    router_extra: &str,
    edit: impl FnOnce(String) -> String,
) -> Deployment {
    let mut net = Net::new();
    let sim = start_sim(sim_settings).await;
    let dir = net.path();
    let ss2_l = std::mem::replace(&mut net.ss2_server, common::bind());
    let ss1_l = std::mem::replace(&mut net.ss1_server, common::bind());
    let ss2 = start_node(&dir, "ss2", &ss2_toml(sim.addr), Some(ss2_l)).await;
    let ss1 = start_node(
        &dir,
        "ss1",
        &edit(ss1_toml(&dir.join("store"), router_extra)),
        Some(ss1_l),
    )
    .await;
    Deployment {
        _net: net,
        ss1,
        _ss2: ss2,
        sim,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_application_fans_out_to_every_registry_and_is_delivered() {
    let d = deploy(|_| {}, "").await;
    let (code, v) = submit(d.client(), &example("all-services.json")).await;
    assert_eq!(code, 202, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let done = wait_done(d.client(), &id, Duration::from_secs(30)).await;
    assert_eq!(done["status"], "completed", "{done:#}");
    let states = states(&done);
    assert_eq!(states.len(), 10, "{states:?}");
    assert!(states.iter().all(|(_, s)| s == "delivered"), "{states:?}");
    // Answers are the registries' typed responses.
    let answer = |svc: &str| service(&done, svc)["answer"].clone();
    assert!(answer("registerTaxpayer")["rnokpp"].as_str().unwrap().len() == 10);
    assert_eq!(answer("getBirthRegistrationStatus")["status"], "REGISTERED");
    let unzr = answer("assignUnzr")["unzr"].as_str().unwrap().to_string();
    assert!(unzr.starts_with("20261120-"), "{unzr}");
    // Every delivery reached its registry once, under one X-Road id.
    assert_eq!(d.sim.stats.max_ids_per_request(), 1);
    for op in [
        "getMedicalBirthCertificate",
        "registerBirth",
        "assignUnzr",
        "determineCitizenship",
        "registerTaxpayer",
        "assignBirthAssistance",
        "assignLargeFamilySupport",
        "registerResidence",
        "registerNewbornPatient",
    ] {
        assert_eq!(d.sim.stats.distinct_requests(op), 1, "{op}");
    }
    // The answer to the status query is JSON with the history of every attempt.
    let history = &done["services"][0]["history"];
    assert_eq!(history[0]["outcome"], "delivered", "{history}");
    // Every family of the router's metrics, and the gateway's, is described.
    let m = http::get(d.ss1.admin.unwrap(), "/metrics", &[])
        .await
        .text();
    assert!(m.contains("brama_router_delivered_total 10"), "{m}");
    assert_metrics_described(&m);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_applications_are_refused_with_every_field_named() {
    let d = deploy(|_| {}, "").await;
    let (code, v) = submit(d.client(), &example("invalid-rnokpp.json")).await;
    assert_eq!(code, 400, "{v}");
    assert_eq!(v["type"], "InvalidApplication");
    let fields: Vec<&str> = v["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["applicant.rnokpp"]);
    let (code, v) = submit(d.client(), b"{\"child\": 5}").await;
    assert_eq!(code, 400);
    assert!(v["fields"].as_array().unwrap().len() >= 4, "{v}");
    let (code, _) = submit(d.client(), b"not json").await;
    assert_eq!(code, 400);
    let r = http::get(d.client(), "/api/v1/applications/nonexistent", &[]).await;
    assert_eq!(r.status, 404);
    // Nothing was stored for them.
    assert_eq!(d.sim.stats.requests(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_in_an_outage_is_retried_until_it_comes_back() {
    let d = deploy(|_| {}, "").await;
    // Longer than any fixed number of attempts would last (backoff capped at 400 ms here):
    // attempts are no limit by default, only the maximum age.
    outage(d.sim.addr, "dps", 4000).await;
    let (code, v) = submit(d.client(), &example("birth-and-tax.json")).await;
    assert_eq!(code, 202, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    // While the tax registry is down its delivery is retrying, with the error and next time.
    let mut seen_retrying = None;
    for _ in 0..300 {
        let v = status(d.client(), &id).await;
        let tax = service(&v, "registerTaxpayer");
        if tax["state"] == "retrying" {
            seen_retrying = Some(tax);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let tax = match seen_retrying {
        Some(t) => t,
        None => panic!(
            "registerTaxpayer was never seen retrying: {:#}",
            status(d.client(), &id).await
        ),
    };
    assert!(tax["attempts"].as_u64().unwrap() >= 1, "{tax}");
    assert!(tax["nextAttemptAt"].is_string(), "{tax}");
    assert!(
        tax["lastError"]["code"]
            .as_str()
            .unwrap()
            .contains("Maintenance"),
        "{tax}"
    );
    let done = wait_done(d.client(), &id, Duration::from_secs(30)).await;
    assert_eq!(done["status"], "completed", "{done:#}");
    let tax = service(&done, "registerTaxpayer");
    assert!(tax["attempts"].as_u64().unwrap() > 8, "{tax}");
    // Every attempt carried the same X-Road id.
    let ids: Vec<&str> = tax["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["xroadId"].as_str().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "{ids:?}");
    assert_eq!(d.sim.stats.max_ids_per_request(), 1);
}

/// A support endpoint that refuses the first notification and records the rest.
async fn webhook() -> (SocketAddr, Arc<Mutex<Vec<serde_json::Value>>>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let got = Arc::new(Mutex::new(Vec::new()));
    let calls = Arc::new(Mutex::new(0u32));
    let g = got.clone();
    tokio::spawn(async move {
        loop {
            let (s, _) = l.accept().await.unwrap();
            let g = g.clone();
            let calls = calls.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: ::http::Request<hyper::body::Incoming>| {
                    let g = g.clone();
                    let calls = calls.clone();
                    async move {
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let n = {
                            let mut c = calls.lock().unwrap();
                            *c += 1;
                            *c
                        };
                        let status = if n == 1 {
                            500
                        } else {
                            g.lock()
                                .unwrap()
                                .push(serde_json::from_slice(&body).unwrap());
                            200
                        };
                        Ok::<_, std::convert::Infallible>(
                            ::http::Response::builder()
                                .status(status)
                                .body(Full::new(Bytes::new()))
                                .unwrap(),
                        )
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    (addr, got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_final_error_fails_at_once_and_support_is_notified() {
    let (hook, got) = webhook().await;
    let d = deploy(|_| {}, &format!("webhook_url = \"http://{hook}/support\"")).await;
    let mut app: serde_json::Value =
        serde_json::from_slice(&example("birth-and-tax.json")).unwrap();
    app["medicalBirthCertificate"] = "0000-1118-0007-3301".into();
    let (code, v) = submit(d.client(), app.to_string().as_bytes()).await;
    assert_eq!(code, 202, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let done = wait_done(d.client(), &id, Duration::from_secs(20)).await;
    assert_eq!(done["status"], "failed", "{done:#}");
    let cert = &done["services"][0];
    assert_eq!(cert["service"], "getMedicalBirthCertificate");
    assert_eq!(cert["state"], "failed");
    assert_eq!(cert["attempts"], 1, "a final error is not retried: {cert}");
    assert!(
        cert["lastError"]["code"]
            .as_str()
            .unwrap()
            .ends_with("CertificateNotFound"),
        "{cert}"
    );
    for s in done["services"].as_array().unwrap().iter().skip(1) {
        assert_eq!(s["state"], "failed");
        assert_eq!(s["lastError"]["code"], "Router.DependencyFailed", "{s}");
    }
    // The notification is retried until the endpoint takes it (the first POST got a 500).
    let start = std::time::Instant::now();
    while got.lock().unwrap().is_empty() {
        assert!(start.elapsed() < Duration::from_secs(10), "no notification");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let n = got.lock().unwrap()[0].clone();
    assert_eq!(n["event"], "delivery.failed");
    assert_eq!(n["application"], id.as_str());
    assert_eq!(n["service"], "getMedicalBirthCertificate");
    assert!(n["error"]["code"]
        .as_str()
        .unwrap()
        .ends_with("CertificateNotFound"));
    assert_eq!(n["alsoFailed"].as_array().unwrap().len(), 4, "{n}");
}

async fn submit_keyed(ss1: SocketAddr, body: &[u8], key: &str) -> (u16, serde_json::Value, bool) {
    let r = http::request(
        ss1,
        "POST",
        "/api/v1/applications",
        &[
            ("content-type", "application/json"),
            ("idempotency-key", key),
        ],
        Bytes::copy_from_slice(body),
    )
    .await;
    let replayed = r
        .headers
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true");
    (
        r.status.as_u16(),
        serde_json::from_slice(&r.body).unwrap_or_default(),
        replayed,
    )
}

/// The same submission sent again with its `Idempotency-Key` (a portal retrying after a
/// timeout) gets the first application back, and the registries see one fan-out; at once,
/// concurrently, the same. The key with another body is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_submission_with_its_idempotency_key_is_one_application() {
    let d = deploy(|_| {}, "").await;
    let body = application(1);
    let (code, v, replayed) = submit_keyed(d.client(), &body, "portal-7f3a-0001").await;
    assert_eq!(code, 202, "{v}");
    assert!(!replayed);
    let id = v["id"].as_str().unwrap().to_string();
    let (code, again, replayed) = submit_keyed(d.client(), &body, "portal-7f3a-0001").await;
    assert_eq!(code, 202, "{again}");
    assert!(replayed, "the repeat is marked");
    assert_eq!(again["id"], id.as_str());

    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (client, body) = (d.client(), application(2));
        tasks.spawn(async move { submit_keyed(client, &body, "portal-7f3a-0002").await });
    }
    let mut ids = std::collections::HashSet::new();
    while let Some(r) = tasks.join_next().await {
        let (code, v, _) = r.unwrap();
        assert_eq!(code, 202, "{v}");
        ids.insert(v["id"].as_str().unwrap().to_string());
    }
    assert_eq!(ids.len(), 1, "concurrent repeats: {ids:?}");
    let concurrent = ids.into_iter().next().unwrap();
    assert_ne!(concurrent, id);

    let (code, v, _) = submit_keyed(d.client(), &application(3), "portal-7f3a-0001").await;
    assert_eq!(code, 422, "{v}");
    assert_eq!(v["type"], "IdempotencyKeyReused", "{v}");
    let (code, v, _) = submit_keyed(d.client(), &body, "bad key with spaces").await;
    assert_eq!(code, 400, "{v}");

    for id in [&id, &concurrent] {
        let done = wait_done(d.client(), id, Duration::from_secs(30)).await;
        assert_eq!(done["status"], "completed", "{done:#}");
    }
    // Two applications' worth of registry calls, none sent under two X-Road ids.
    assert_eq!(d.sim.stats.max_ids_per_request(), 1);
    assert_eq!(d.sim.stats.distinct_requests("registerTaxpayer"), 2);
}

/// A registry down for longer than its deliveries' maximum age: they fail then, whatever the
/// number of attempts, and support is told.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_older_than_its_maximum_age_fails_and_support_is_notified() {
    let (hook, got) = webhook().await;
    let d = deploy_with(
        |_| {},
        &format!("webhook_url = \"http://{hook}/support\""),
        |t| {
            t.replace(
                "[router.registries.dps]\n",
                "[router.registries.dps]\nmax_age_s = 1\n",
            )
        },
    )
    .await;
    outage(d.sim.addr, "dps", 60_000).await;
    let (code, v) = submit(d.client(), &example("birth-and-tax.json")).await;
    assert_eq!(code, 202, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let done = wait_done(d.client(), &id, Duration::from_secs(20)).await;
    let tax = service(&done, "registerTaxpayer");
    assert_eq!(tax["state"], "failed", "{done:#}");
    let message = tax["lastError"]["message"].as_str().unwrap();
    assert!(message.starts_with("gave up after"), "{tax}");
    assert!(tax["attempts"].as_u64().unwrap() >= 2, "{tax}");
    let start = std::time::Instant::now();
    while got.lock().unwrap().is_empty() {
        assert!(start.elapsed() < Duration::from_secs(10), "no notification");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(got.lock().unwrap()[0]["service"], "registerTaxpayer");
    outage(d.sim.addr, "dps", 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrap_mode_forwards_a_plain_soap_body_under_the_route_header() {
    let d = deploy(|_| {}, "").await;
    let plain = r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:dr="http://minjust.gov.ua/dracs/v1">
  <soapenv:Body>
    <dr:getBirthRecord><recordNumber>№ 1234</recordNumber></dr:getBirthRecord>
  </soapenv:Body>
</soapenv:Envelope>"#;
    let r = http::request(
        d.client(),
        "POST",
        "/route/birth-record",
        &[
            ("content-type", "text/xml; charset=UTF-8"),
            ("x-road-userid", "UA3456789012"),
        ],
        Bytes::from(plain),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("getBirthRecordResponse"), "{}", r.text());
    assert!(
        r.text()
            .contains("<xroad:userId>UA3456789012</xroad:userId>")
            || r.text().contains("UA3456789012")
    );
    let id = r.headers.get("x-road-id").unwrap().to_str().unwrap();
    assert!(d.sim.stats.saw_id(id));
    let r = http::request(
        d.client(),
        "POST",
        "/route/nope",
        &[("content-type", "text/xml")],
        Bytes::from(plain),
    )
    .await;
    assert_eq!(r.status, 404);
    let r = http::request(
        d.client(),
        "POST",
        "/route/birth-record",
        &[("content-type", "text/xml")],
        Bytes::from("<broken"),
    )
    .await;
    assert_eq!(
        common::fault_code(&r.body).as_deref(),
        Some("Client.InvalidSoap")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_cli_works_while_the_server_runs() {
    let d = deploy(|s| s.latency = Duration::from_millis(5), "").await;
    let (_, v) = submit(d.client(), &example("birth-and-tax.json")).await;
    let id = v["id"].as_str().unwrap().to_string();
    wait_done(d.client(), &id, Duration::from_secs(20)).await;
    let admin = format!("http://{}", d.ss1.admin.unwrap());
    let run_coded = |args: Vec<String>| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_brama"))
            .args(["queue", "--admin", &admin])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let run = |args: Vec<String>| {
        let (code, out) = run_coded(args);
        (code == Some(0), out)
    };
    // What cannot be done says so and fails: 2 for a usage error, 1 when nothing was done.
    let (code, out) = run_coded(vec!["list".into(), "--state".into(), "bogus".into()]);
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("bogus") && out.contains("in_progress"),
        "{out}"
    );
    let (code, out) = run_coded(vec!["purge".into()]);
    assert_eq!(code, Some(2), "purge without an id or --all: {out}");
    let retry = |service: &str| {
        vec![
            "retry".into(),
            id.clone(),
            "--service".into(),
            service.into(),
        ]
    };
    let (code, out) = run_coded(retry("nope"));
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("has no service 'nope'"), "{out}");
    let (code, out) = run_coded(retry("registerTaxpayer"));
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("nothing restarted"), "{out}");
    let (ok, out) = run(vec!["list".into()]);
    assert!(ok, "{out}");
    assert!(out.contains(&id) && out.contains("completed"), "{out}");
    let (ok, out) = run(vec!["show".into(), id.clone()]);
    assert!(
        ok && out.contains("registerTaxpayer") && out.contains("delivered"),
        "{out}"
    );
    let (ok, out) = run(vec!["--json".into(), "purge".into(), "--all".into()]);
    assert!(ok && out.contains(&id), "{out}");
    let r = http::get(d.client(), &format!("/api/v1/applications/{id}"), &[]).await;
    assert_eq!(r.status, 404);
    let (ok, _) = run(vec!["show".into(), id]);
    assert!(!ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_chosen_for_rest_are_delivered_over_rest() {
    let rest = "[router.services.registerTaxpayer]\nprotocol = \"rest\"\n\n[router.services.getBirthRegistrationStatus]\nprotocol = \"rest\"\n\n[router.services.registerNewbornPatient]\nprotocol = \"rest\"\n";
    let d = deploy(|c| c.dracs_processing = Duration::from_millis(200), rest).await;
    let (code, v) = submit(d.client(), &example("all-services.json")).await;
    assert_eq!(code, 202, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let done = wait_done(d.client(), &id, Duration::from_secs(30)).await;
    assert_eq!(done["status"], "completed", "{done:#}");
    for s in done["services"].as_array().unwrap() {
        let name = s["service"].as_str().unwrap();
        let expected = if [
            "registerTaxpayer",
            "getBirthRegistrationStatus",
            "registerNewbornPatient",
        ]
        .contains(&name)
        {
            "rest"
        } else {
            "soap"
        };
        assert_eq!(s["protocol"], expected, "{name}: {s}");
        assert_eq!(s["state"], "delivered", "{name}: {s}");
    }
    let answer = |svc: &str| service(&done, svc)["answer"].clone();
    // The same typed answers as over SOAP, and DRACS polled over REST until registered.
    assert_eq!(
        answer("registerTaxpayer")["rnokpp"].as_str().unwrap().len(),
        10
    );
    assert_eq!(answer("getBirthRegistrationStatus")["status"], "REGISTERED");
    assert_eq!(d.sim.stats.max_ids_per_request(), 1);
    assert_eq!(d.sim.stats.distinct_requests("registerTaxpayer"), 1);
}

/// The store's hot path writes a delivered service and the services it releases one after the
/// other, not atomically: a crash between them leaves a service waiting for one that is already
/// delivered. The restart must see that, build its request and deliver it. Likewise an
/// application's deliveries are written before its record, and deliveries without one are dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_a_delivery_and_what_it_releases_is_completed_on_restart() {
    let Deployment {
        _net: net,
        ss1,
        _ss2,
        sim,
    } = deploy(|_| {}, "").await;
    let client = ss1.client_http.unwrap();
    let (code, v) = submit(client, &example("all-services.json")).await;
    assert_eq!(code, 202, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let done = wait_done(client, &id, Duration::from_secs(30)).await;
    assert_eq!(done["status"], "completed", "{done:#}");
    let sent_before = sim.stats.requests();
    ss1.shutdown().await;

    // Rewind registerTaxpayer to the moment after assignUnzr was recorded delivered and before
    // the write that released it landed.
    let dir = net.path();
    let store_dir = dir.join("store");
    let store = open_store(&store_dir).await;
    let mut d = store.delivery(&id, "registerTaxpayer").unwrap().unwrap();
    d.state = brama::router::model::State::Pending;
    d.waiting_for = vec!["assignUnzr".into()];
    d.request = None;
    d.has_request = false;
    d.request_dirty = false;
    d.attempts.clear();
    d.attempt_count = 0;
    d.answer = None;
    d.finished_at = None;
    d.next_attempt_at = None;
    d.ready_at = None;
    let mut b = brama::router::store::Batch::default();
    b.put_delivery(&d);
    // And a delivery of an application whose `accept` was cut off before its record: never
    // acknowledged, so it must be dropped, not sent.
    let mut orphan = d.clone();
    orphan.application = "019ab000-0000-7000-8000-000000000000".into();
    b.put_delivery(&orphan);
    store.apply(b).unwrap();
    store.flush_sync().unwrap();
    drop(store);

    let ss1 = start_node(&dir, "ss1", &ss1_toml(&store_dir, ""), None).await;
    let client = ss1.client_http.unwrap();
    let done = wait_done(client, &id, Duration::from_secs(30)).await;
    assert_eq!(done["status"], "completed", "{done:#}");
    let taxpayer = service(&done, "registerTaxpayer");
    assert_eq!(taxpayer["state"], "delivered", "{taxpayer:#}");
    assert_eq!(taxpayer["history"].as_array().unwrap().len(), 1);
    assert_eq!(sim.stats.requests(), sent_before + 1);
    // Sent again under the X-Road id it was planned with.
    assert_eq!(sim.stats.max_ids_per_request(), 1);
    ss1.shutdown().await;
    let store = open_store(&store_dir).await;
    assert!(store.active().unwrap().is_empty());
    assert!(store
        .delivery(&orphan.application, "registerTaxpayer")
        .unwrap()
        .is_none());
}

/// The stopped server's store, once its last handle is gone.
async fn open_store(dir: &std::path::Path) -> Arc<brama::router::store::Embedded> {
    let start = std::time::Instant::now();
    loop {
        match brama::router::store::Embedded::open(dir, 16 << 20) {
            Ok(s) => return s,
            Err(e) if start.elapsed() > Duration::from_secs(10) => panic!("store: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// The router's configuration check against its flow, on the embedded default (its global
/// configuration downloaded from the simulator's central server first).
#[test]
fn check_refuses_what_the_flow_lacks() {
    brama::serve::prepare_blocking(None).unwrap();
    let conf = brama::config::ServerConf::load(None).unwrap();
    let mut rc = conf.router.expect("the embedded default has a router");
    assert_eq!(brama::router::check(&rc), Ok(()));
    rc.service_names.push("feedTheCat".into());
    assert!(brama::router::check(&rc)
        .unwrap_err()
        .contains("'feedTheCat' is not a service"));
    rc.service_names.pop();
    rc.registries.remove("dps");
    assert!(brama::router::check(&rc)
        .unwrap_err()
        .contains("router.registries.dps is missing"));
}
