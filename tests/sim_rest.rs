//! The registry simulator's REST side over real loopback sockets: the eHealth declarations
//! lookup, OpenAPI descriptions, the echo (every method, large streamed bodies), simulated
//! statuses and the registry operations as JSON.

mod common;

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use common::http::{get, request, Reply};
use common::start_sim;
use http_body_util::BodyExt;
use hyper::body::{Frame, SizeHint};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const PATIENT: &str = "7c3e1f0a-5b2d-4e8f-9a61-2d4b8c0e7f13";

fn body_json(r: &Reply) -> Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.text()))
}

async fn post_json(addr: std::net::SocketAddr, path: &str, body: &Value, id: &str) -> Reply {
    request(
        addr,
        "POST",
        path,
        &[("content-type", "application/json"), ("x-road-id", id)],
        Bytes::from(body.to_string()),
    )
    .await
}

#[tokio::test]
async fn declarations_by_patient_and_by_id() {
    let sim = start_sim(Duration::ZERO).await;
    let r = get(
        sim.addr,
        &format!("/ehealth/declarations?patient={PATIENT}"),
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.content_type(), "application/json; charset=utf-8");
    let list = body_json(&r);
    assert_eq!(list["patient"], PATIENT);
    let declarations = list["declarations"].as_array().unwrap();
    assert!((1..=3).contains(&declarations.len()), "{list}");
    assert!(matches!(
        declarations[0]["status"].as_str(),
        Some("active" | "pending_verification")
    ));
    for d in declarations {
        let id = d["id"].as_str().unwrap();
        let one = get(sim.addr, &format!("/ehealth/declarations/{id}"), &[]).await;
        assert_eq!(one.status, 200, "{}", one.text());
        assert_eq!(&body_json(&one), d);
        assert_eq!(d["legalEntity"]["edrpou"].as_str().unwrap().len(), 8);
        assert!(d["doctor"]["fullName"].as_str().unwrap().contains(' '));
    }
    // The same answer again: the data follows from the patient id.
    let again = get(
        sim.addr,
        &format!("/ehealth/declarations?patient={PATIENT}"),
        &[],
    )
    .await;
    assert_eq!(body_json(&again), list);

    let none = get(
        sim.addr,
        "/ehealth/declarations?patient=00000000-1111-4222-8333-444455556666",
        &[],
    )
    .await;
    assert_eq!(none.status, 200);
    assert_eq!(body_json(&none)["declarations"], json!([]));

    for (path, status, kind) in [
        ("/ehealth/declarations", 400, "validation_failed"),
        (
            "/ehealth/declarations?patient=12345",
            400,
            "validation_failed",
        ),
        ("/ehealth/declarations/not-a-uuid", 400, "validation_failed"),
        (
            "/ehealth/declarations/00000000-0000-4000-8000-000000000000",
            404,
            "not_found",
        ),
        ("/ehealth/declarations/a/b", 404, "not_found"),
    ] {
        let r = get(sim.addr, path, &[]).await;
        assert_eq!(r.status, status, "{path}: {}", r.text());
        assert_eq!(r.content_type(), "application/json; charset=utf-8");
        let e = body_json(&r);
        assert_eq!(e["error"]["type"], kind, "{path}: {e}");
        assert!(e["error"]["message"].as_str().unwrap().len() > 5);
    }
    let r = request(sim.addr, "POST", "/ehealth/declarations", &[], Bytes::new()).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.headers["allow"], "GET, HEAD");
    // The ehealth SOAP service at /ehealth is untouched.
    let r = get(sim.addr, "/ehealth?wsdl", &[]).await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn openapi_descriptions_are_served() {
    let sim = start_sim(Duration::ZERO).await;
    let r = get(sim.addr, "/openapi/ehealth-declarations.yaml", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type(), "application/yaml; charset=utf-8");
    let d = brama::openapi::parse(&r.body).unwrap();
    assert_eq!(d.endpoints.len(), 2);
    for path in [
        "/openapi/nothing.yaml",
        "/openapi/../wsdl/dracs.wsdl",
        "/openapi/%2e%2e%2fCargo.toml",
        "/openapi/",
    ] {
        let r = get(sim.addr, path, &[]).await;
        assert_eq!(r.status, 404, "{path}");
    }
}

#[tokio::test]
async fn echo_answers_every_method() {
    let sim = start_sim(Duration::ZERO).await;
    for method in [
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE",
    ] {
        let body = if matches!(method, "GET" | "HEAD" | "TRACE") {
            Bytes::new()
        } else {
            Bytes::from(format!("{{\"method\": \"{method}\", \"text\": \"Київ\"}}"))
        };
        let id = format!("echo-{method}");
        let r = request(
            sim.addr,
            method,
            "/echo/a/b%20c?x=1&y=%D0%86",
            &[
                ("content-type", "application/json"),
                ("x-road-id", &id),
                ("x-road-client", "SEVDEIR-TEST/GOV/00000001/DIIA"),
                ("X-Custom", "one"),
                ("x-custom", "two"),
            ],
            body.clone(),
        )
        .await;
        assert_eq!(r.status, 200, "{method}: {}", r.text());
        assert_eq!(r.content_type(), "application/json; charset=utf-8");
        assert!(sim.stats.saw_id(&id), "{method}");
        if method == "HEAD" {
            assert!(r.body.is_empty());
            continue;
        }
        let e = body_json(&r);
        assert_eq!(e["method"], method);
        assert_eq!(e["path"], "/echo/a/b%20c");
        assert_eq!(e["query"], "x=1&y=%D0%86");
        assert_eq!(e["headers"]["x-custom"], "one, two");
        assert_eq!(
            e["headers"]["x-road-client"],
            "SEVDEIR-TEST/GOV/00000001/DIIA"
        );
        assert_eq!(e["headers"]["content-type"], "application/json");
        assert_eq!(e["bodyLength"], body.len());
        assert_eq!(e["bodySha256"], hex::encode(Sha256::digest(&body)));
    }
    let r = get(sim.addr, "/echo", &[]).await;
    assert_eq!(body_json(&r)["query"], Value::Null);
    let r = request(
        sim.addr,
        "PUT",
        "/echo?raw=1",
        &[("content-type", "text/plain; charset=utf-8")],
        Bytes::from_static("тіло запиту".as_bytes()),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type(), "text/plain; charset=utf-8");
    assert_eq!(r.text(), "тіло запиту");
}

#[tokio::test]
async fn soap_services_at_echo_stay_soap() {
    let sim = start_sim(Duration::ZERO).await;
    let soap = common::msg(
        "SEVDEIR-TEST/GOV/00000001/DIIA",
        "SEVDEIR-TEST/GOV/00000002/DRACS/testQuery",
        "<t:testQuery xmlns:t=\"http://test.x-road.global/producer\"><q>1</q></t:testQuery>",
    );
    let r = common::http::request(
        sim.addr,
        "POST",
        "/echo",
        &[("content-type", "text/xml; charset=UTF-8")],
        Bytes::from(soap.clone()),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("testQueryResponse"), "{}", r.text());
    // The same body as an X-Road REST call is echoed.
    let r = common::http::request(
        sim.addr,
        "POST",
        "/echo",
        &[
            ("content-type", "text/xml; charset=UTF-8"),
            ("x-road-service", "SEVDEIR-TEST/GOV/00000002/DRACS/echo"),
        ],
        Bytes::from(soap.clone()),
    )
    .await;
    assert_eq!(body_json(&r)["bodyLength"], soap.len());
}

/// A request body fed from a channel, so the test decides when each part is sent.
struct ChannelBody {
    rx: tokio::sync::mpsc::Receiver<Bytes>,
    len: u64,
}

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.rx.poll_recv(cx).map(|c| c.map(|b| Ok(Frame::data(b))))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.len)
    }
}

const CHUNK: usize = 64 * 1024;
const LARGE: u64 = 50 * 1024 * 1024;

fn chunk(i: u64) -> Bytes {
    Bytes::from(
        (0..CHUNK)
            .map(|j| (i.wrapping_mul(31) as usize + j * 7) as u8)
            .collect::<Vec<u8>>(),
    )
}

/// Sends [`LARGE`] bytes: the first chunk at once, the rest after `go` (if there is one).
/// Returns the SHA-256 of what was sent.
fn produce(
    tx: tokio::sync::mpsc::Sender<Bytes>,
    go: Option<tokio::sync::oneshot::Receiver<()>>,
) -> tokio::task::JoinHandle<[u8; 32]> {
    tokio::spawn(async move {
        let mut hash = Sha256::new();
        let chunks = LARGE / CHUNK as u64;
        for i in 0..chunks {
            let c = chunk(i);
            hash.update(&c);
            tx.send(c).await.unwrap();
            if i == 0 {
                if let Some(go) = go {
                    go.await.unwrap();
                }
                break;
            }
        }
        for i in 1..chunks {
            let c = chunk(i);
            hash.update(&c);
            tx.send(c).await.unwrap();
        }
        hash.finalize().into()
    })
}

/// Posts [`LARGE`] bytes to `path`; with `hold`, all but the first chunk wait for the sender
/// returned.
async fn large_request(
    addr: std::net::SocketAddr,
    path: &str,
    hold: bool,
) -> (
    hyper::Response<hyper::body::Incoming>,
    Option<tokio::sync::oneshot::Sender<()>>,
    tokio::task::JoinHandle<[u8; 32]>,
) {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let (go_tx, go_rx) = tokio::sync::oneshot::channel();
    let (go_tx, go_rx) = if hold {
        (Some(go_tx), Some(go_rx))
    } else {
        (None, None)
    };
    let sent = produce(tx, go_rx);
    let req = hyper::Request::post(path)
        .header("host", addr.to_string())
        .header("content-type", "application/octet-stream")
        .body(ChannelBody { rx, len: LARGE })
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    (resp, go_tx, sent)
}

#[tokio::test]
async fn large_bodies_are_streamed_back_and_hashed() {
    let sim = start_sim(Duration::ZERO).await;

    // ?raw: the answer starts before the request is complete (nothing is buffered whole).
    let (resp, go, sent) = large_request(sim.addr, "/echo/upload?raw=1", true).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/octet-stream");
    assert_eq!(resp.headers()["content-length"], LARGE.to_string().as_str());
    let mut body = resp.into_body();
    let mut hash = Sha256::new();
    let mut got = 0u64;
    let first = tokio::time::timeout(Duration::from_secs(10), body.frame())
        .await
        .expect("the first chunk comes back while the rest is still unsent")
        .unwrap()
        .unwrap()
        .into_data()
        .unwrap();
    got += first.len() as u64;
    hash.update(&first);
    go.unwrap().send(()).unwrap();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.unwrap().into_data() {
            got += data.len() as u64;
            hash.update(&data);
        }
    }
    let sent = sent.await.unwrap();
    assert_eq!(got, LARGE);
    assert_eq!(<[u8; 32]>::from(hash.finalize()), sent);

    // Without ?raw: length and SHA-256 of the whole body.
    let (resp, _, sent) = large_request(sim.addr, "/echo", false).await;
    assert_eq!(resp.status(), 200);
    let v: Value =
        serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(v["bodyLength"], LARGE);
    assert_eq!(v["bodySha256"], hex::encode(sent.await.unwrap()));
    // Neither the simulator nor this client ever held a 50 MiB body (the whole process peaks
    // near 10 MiB; other tests of this file run beside it but stay small).
    if let Some(kib) = peak_rss_kib() {
        assert!(kib < 40 * 1024, "peak resident memory {kib} KiB");
    }
}

/// The process's peak resident memory (`VmHWM`), where /proc has it.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::test]
async fn simulated_statuses() {
    let sim = start_sim(Duration::ZERO).await;
    for code in [
        200u16, 201, 400, 401, 403, 404, 409, 422, 429, 500, 502, 503, 504, 599,
    ] {
        let r = request(
            sim.addr,
            "POST",
            &format!("/status/{code}"),
            &[("content-type", "application/json")],
            Bytes::from_static(b"{\"some\": \"body\"}"),
        )
        .await;
        assert_eq!(r.status.as_u16(), code);
        assert_eq!(r.headers["x-sim-status"], code.to_string().as_str());
        assert_eq!(
            body_json(&r),
            json!({ "status": code, "message": "simulated" })
        );
    }
    let r = get(sim.addr, "/status/204", &[]).await;
    assert_eq!((r.status.as_u16(), r.body.len()), (204, 0));
    let r = get(
        sim.addr,
        "/status/302?location=https%3A%2F%2Fexample.test%2Fnext%3Fa%3D1",
        &[],
    )
    .await;
    assert_eq!(r.status, 302);
    assert_eq!(r.headers["location"], "https://example.test/next?a=1");
    let r = get(sim.addr, "/status/200?location=/x", &[]).await;
    assert!(r.headers.get("location").is_none());
    for bad in ["100", "199", "600", "abc", ""] {
        let r = get(sim.addr, &format!("/status/{bad}"), &[]).await;
        assert_eq!(r.status, 400, "{bad}");
        assert_eq!(body_json(&r)["error"]["type"], "invalid_request");
    }
}

fn taxpayer_request() -> Value {
    json!({
        "unzr": "20261120-00011",
        "actRecordNumber": "100042",
        "child": {
            "surname": "Шевченко",
            "givenName": "Марія",
            "sex": "F",
            "birthDate": "2026-11-20",
            "birthPlaceKatottg": "UA80000000000093317"
        }
    })
}

#[tokio::test]
async fn registry_operations_as_json() {
    let sim = start_sim(Duration::ZERO).await;
    let req = taxpayer_request();
    // The request is the generated type's JSON form.
    let _: brama::registries::dps::RegisterTaxpayer = serde_json::from_value(req.clone()).unwrap();
    let r = post_json(sim.addr, "/rest/registerTaxpayer", &req, "rest-1").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.content_type(), "application/json");
    let answer: brama::registries::dps::RegisterTaxpayerResponse =
        serde_json::from_slice(&r.body).unwrap();
    assert_eq!(answer.validate(), []);
    assert!(brama_xroad::rnokpp::valid(&answer.rnokpp), "{answer:?}");
    assert_eq!(answer.tax_office, "Головне управління ДПС у м. Києві");
    // Repeated under the same X-Road id, then under a new one: counted as SOAP requests are.
    post_json(sim.addr, "/rest/registerTaxpayer", &req, "rest-1").await;
    assert_eq!(sim.stats.max_ids_per_request(), 1);
    let again = post_json(sim.addr, "/rest/registerTaxpayer", &req, "rest-2").await;
    let again: brama::registries::dps::RegisterTaxpayerResponse =
        serde_json::from_slice(&again.body).unwrap();
    assert_eq!(again.rnokpp, answer.rnokpp);
    assert_eq!(sim.stats.operation_requests("registerTaxpayer"), 3);
    assert_eq!(sim.stats.distinct_requests("registerTaxpayer"), 1);
    assert_eq!(sim.stats.max_ids_per_request(), 2);
    assert!(sim.stats.saw_id("rest-2"));

    // A refusal of the registry logic: Client.* is 400.
    let r = post_json(
        sim.addr,
        "/rest/assignLargeFamilySupport",
        &json!({"actRecordNumber": "1", "applicantRnokpp": "3456789012", "childrenCount": 2}),
        "rest-3",
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let e = body_json(&r);
    assert_eq!(e["type"], "Client.NotEligible");
    assert!(e["message"].as_str().unwrap().contains("трьох"), "{e}");

    // Invalid JSON, a missing field, failed checks: 400 naming what is wrong.
    let r = request(
        sim.addr,
        "POST",
        "/rest/registerTaxpayer",
        &[("content-type", "application/json")],
        Bytes::from_static(b"{\"unzr\": "),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(body_json(&r)["type"], "Client.InvalidRequest");
    let mut missing = taxpayer_request();
    missing.as_object_mut().unwrap().remove("actRecordNumber");
    let r = post_json(sim.addr, "/rest/registerTaxpayer", &missing, "rest-4").await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("actRecordNumber"), "{}", r.text());
    let mut bad = taxpayer_request();
    bad["unzr"] = json!("2026");
    bad["child"]["sex"] = json!("X");
    let r = post_json(sim.addr, "/rest/registerTaxpayer", &bad, "rest-5").await;
    assert_eq!(r.status, 400);
    let e = body_json(&r);
    let fields: Vec<&str> = e["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["path"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["unzr", "child.sex"], "{e}");
    assert!(e["message"].as_str().unwrap().contains("child.sex"), "{e}");

    let r = post_json(sim.addr, "/rest/noSuchOperation", &json!({}), "rest-6").await;
    assert_eq!(r.status, 404);
    assert_eq!(body_json(&r)["type"], "Client.UnknownOperation");
    let r = get(sim.addr, "/rest/registerTaxpayer", &[]).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.headers["allow"], "POST");

    // A forced failure of the registry: Server.* is 500.
    let r = request(
        sim.addr,
        "POST",
        "/rest/registerTaxpayer",
        &[("content-type", "application/json"), ("x-sim-fault", "1")],
        Bytes::from(req.to_string()),
    )
    .await;
    assert_eq!(r.status, 500);
    assert_eq!(body_json(&r)["type"], "Server.InternalError");
}

#[tokio::test]
async fn outages_answer_503_with_retry_after() {
    let sim = start_sim(Duration::ZERO).await;
    for registry in ["dps", "ehealth"] {
        let r = request(
            sim.addr,
            "POST",
            &format!("/_sim/outage/{registry}?ms=60000"),
            &[],
            Bytes::new(),
        )
        .await;
        assert_eq!(r.status, 200);
    }
    let r = post_json(
        sim.addr,
        "/rest/registerTaxpayer",
        &taxpayer_request(),
        "o-1",
    )
    .await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(body_json(&r)["type"], "Server.Maintenance");
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=61).contains(&retry), "{retry}");
    let r = get(
        sim.addr,
        &format!("/ehealth/declarations?patient={PATIENT}"),
        &[],
    )
    .await;
    assert_eq!(r.status, 503);
    assert_eq!(body_json(&r)["error"]["type"], "service_unavailable");
    assert!(r.headers.contains_key("retry-after"));
    // Other registries answer; the echo has no registry.
    let r = post_json(
        sim.addr,
        "/rest/assignUnzr",
        &json!({"actRecordNumber": "1", "registrationDate": "2026-11-21", "child": {
            "surname": "Шевченко", "givenName": "Марія", "sex": "F",
            "birthDate": "2026-11-20", "birthPlaceKatottg": "UA80000000000093317"}}),
        "o-2",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(get(sim.addr, "/echo", &[]).await.status, 200);

    request(sim.addr, "POST", "/_sim/outage/dps?ms=0", &[], Bytes::new()).await;
    let r = post_json(
        sim.addr,
        "/rest/registerTaxpayer",
        &taxpayer_request(),
        "o-3",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn echo_refuses_a_declared_length_over_its_limit() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let sim = start_sim(Duration::ZERO).await;
    for path in ["/echo", "/echo?raw=1", "/status/200"] {
        let mut tcp = tokio::net::TcpStream::connect(sim.addr).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: sim\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
            brama::sim::ECHO_MAX_BODY + 1
        );
        tcp.write_all(head.as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut buf))
            .await
            .expect("answered without waiting for the body")
            .unwrap();
        let text = String::from_utf8_lossy(&buf[..n]);
        assert!(text.starts_with("HTTP/1.1 413"), "{path}: {text}");
    }
}
