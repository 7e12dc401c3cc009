//! X-Road's own SOAP request vectors (`tests/fixtures/xroad/soap-queries/`) through brama's
//! client proxy, over mutual TLS to its server proxy and on to the registry simulator. Expected
//! outcomes are those of X-Road's proxy test suite (the test case that posts each file).

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use common::http::request;
use common::*;

use brama::deploy::{MemberDef, ServerDef, Topology};
use brama::identifiers::ClientId;

const MR: &str = "multipart/related; charset=UTF-8; boundary=jetty771207119h3h10dty";
const MR_NOCS: &str = "multipart/related; boundary=jetty771207119h3h10dty";
const MTOM: &str = "Multipart/Related; start-info=\"application/soap+xml\"; type=\"application/xop+xml\"; boundary=\"jetty771207119h3h10dty\"";
const XML: &str = "text/xml; charset=UTF-8";

/// (file, request content type, expected fault code or None for a normal answer)
const CASES: &[(&str, &str, Option<&str>)] = &[
    ("simple.query", XML, None),
    ("getstate.query", XML, None),
    ("getstate-defaultnamespace.query", XML, None),
    ("getstate-subsystem.query", XML, None),
    ("attachm.query", MR, None),
    ("attachm2.query", MR_NOCS, None),
    ("attachm2-utf8bom-inside.query", MR_NOCS, None),
    ("attachm-mtom.query", MTOM, None),
    ("attachments.query", MR, None),
    ("mimesoap.query", MR, None),
    ("cdata.query", XML, None),
    ("xmlencoded.query", XML, None),
    ("nowhitespace.query", XML, None),
    ("split-header.query", XML, None),
    ("simple-representedparty.query", XML, None),
    ("missing-userId.query", XML, None),
    ("missing-body.query", XML, Some("Client.MissingBody")),
    ("no-header.query", XML, Some("Client.MissingHeader")),
    ("malformed-body1.query", XML, Some("Client.InvalidBody")),
    ("malformed-body2.query", XML, Some("Client.InvalidBody")),
    (
        "malformed-body3.query",
        XML,
        Some("Client.InconsistentHeaders"),
    ),
    (
        "missing-protocolVersion.query",
        XML,
        Some("Client.MissingHeaderField"),
    ),
    (
        "wrong-protocolVersion.query",
        XML,
        Some("Client.InvalidProtocolVersion"),
    ),
    (
        "malformed-protocolVersion.query",
        XML,
        Some("Client.InvalidProtocolVersion"),
    ),
    ("missingobjecttype.query", XML, Some("Client.InvalidXml")),
    (
        "faulty-header.query",
        XML,
        Some("Client.MissingHeaderField"),
    ),
    (
        "faulty-header2.query",
        XML,
        Some("Client.DuplicateHeaderField"),
    ),
    (
        "inconsistent-headers.query",
        XML,
        Some("Client.InconsistentHeaders"),
    ),
    ("faulty-multipart.query", MR, Some("Client.InvalidMessage")),
    (
        "attachm-no-soap.query",
        MR,
        Some("Client.InvalidContentType"),
    ),
    ("attachm-error.query", MR, Some("Client.InvalidContentType")),
    (
        "attachm-faulty-soap.query",
        MR,
        Some("Client.MissingHeaderField"),
    ),
    ("empty.query", XML, Some("Client.InvalidSoap")),
    ("empty.query", MR, Some("Client.MissingSoap")),
    ("no-soap.query", MR, Some("Client.MissingSoap")),
    ("simple-rpc.query", XML, Some("Client.InvalidSoap")),
    (
        "missing-org.query",
        XML,
        Some("Server.ClientProxy.UnknownMember"),
    ),
];

fn member(code: &str, subs: &[&str]) -> MemberDef {
    MemberDef {
        class: "BUSINESS".into(),
        code: code.into(),
        name: format!("{code} Ltd"),
        subsystems: subs.iter().map(|s| s.to_string()).collect(),
    }
}

fn ee(code: &str, sub: Option<&str>) -> ClientId {
    match sub {
        Some(s) => ClientId::subsystem("EE", "BUSINESS", code, s),
        None => ClientId::member("EE", "BUSINESS", code),
    }
}

/// One server of instance EE hosting every client and provider the vectors name. `test_url`
/// answers the `test` service; `grant_test` decides whether `consumer` may call it.
async fn ee_node(
    dir: &std::path::Path,
    sim: SocketAddr,
    test_url: &str,
    grant_test: bool,
) -> brama::proxy::Running {
    let server = bind();
    let topology = Topology {
        instance: "EE".into(),
        members: vec![
            member("consumer", &["subsys1"]),
            member("producer", &["subsys2"]),
            member("10239452", &[]),
            member("land-cadastre", &[]),
            member("attachment", &[]),
        ],
        servers: vec![ServerDef {
            owner_code: "consumer".into(),
            code: "ss".into(),
            address: server.local_addr().unwrap().to_string(),
            clients: vec![
                ee("consumer", Some("subsys1")),
                ee("producer", None),
                ee("producer", Some("subsys2")),
                ee("10239452", None),
                ee("land-cadastre", None),
                ee("attachment", None),
            ],
        }],
        global_groups: vec![],
        ocsp_urls: Vec::new(),
        tsa_urls: Vec::new(),
    };
    let pki = brama::pki::generate(&topology.pki_spec("EE test CA", &[])).unwrap();
    pki.write_dir(&dir.join("certs")).unwrap();
    topology
        .write_globalconf(&dir.join("globalconf"), &pki)
        .unwrap();
    let echo = format!("http://{sim}/echo");
    let provider = |id: &str, services: &[(&str, &str)], callers: &[&str]| {
        let mut s = format!("[[clients]]\nid = \"{id}\"\n");
        for (code, url) in services {
            s += &format!("[[clients.services]]\ncode = \"{code}\"\nurl = \"{url}\"\n");
        }
        for (code, _) in services {
            if *code == "test" && !grant_test {
                continue;
            }
            let subjects: Vec<String> = callers.iter().map(|c| format!("\"{c}\"")).collect();
            s += &format!(
                "[[clients.access]]\nservice = \"{code}\"\nsubjects = [{}]\n",
                subjects.join(", ")
            );
        }
        s
    };
    let consumer = "MEMBER:EE/BUSINESS/consumer";
    let clients = [
        "[[clients]]\nid = \"EE/BUSINESS/consumer\"\n[[clients]]\nid = \"EE/BUSINESS/consumer/subsys1\"\n".to_string(),
        provider("EE/BUSINESS/producer", &[("testQuery", &echo), ("getState", &echo), ("test", test_url)], &[consumer]),
        provider("EE/BUSINESS/producer/subsys2", &[("getState", &echo)], &["SUBSYSTEM:EE/BUSINESS/consumer/subsys1"]),
        provider("EE/BUSINESS/land-cadastre", &[("getState", &echo)], &["MEMBER:EE/BUSINESS/10239452"]),
        provider("EE/BUSINESS/attachment", &[("test", &echo)], &[consumer]),
        "[[clients]]\nid = \"EE/BUSINESS/10239452\"\n".to_string(),
    ]
    .concat();
    let toml = node_toml("ss", "consumer", "globalconf", &clients)
        .replace("EE/GOV/consumer", "EE/BUSINESS/consumer");
    let toml = toml.replace("SEVDEIR-TEST/GOV/consumer/ss", "EE/BUSINESS/consumer/ss");
    start_node(dir, "ee", &toml, Some(server)).await
}

async fn post(node: &brama::proxy::Running, file: &str, ct: &str) -> common::http::Reply {
    let body = read_conformance(&format!("soap-queries/{file}"));
    request(
        node.client_http.unwrap(),
        "POST",
        "/",
        &[("content-type", ct)],
        Bytes::from(body),
    )
    .await
}

#[tokio::test]
async fn soap_queries_get_xroad_outcomes() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start_sim(Duration::ZERO).await;
    let echo = format!("http://{}/echo", sim.addr);
    let node = ee_node(dir.path(), sim.addr, &echo, true).await;
    let mut failures = Vec::new();
    for (file, ct, expected) in CASES {
        let r = post(&node, file, ct).await;
        let got = fault_code(&r.body);
        if r.status != 200 || got.as_deref() != *expected {
            failures.push(format!(
                "{file} ({ct}): expected {expected:?}, got {got:?} HTTP {}: {}",
                r.status,
                r.text()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n\n")
    );
    node.shutdown().await;
}

#[tokio::test]
async fn access_denied_and_inconsistent_service_answers() {
    let sim = start_sim(Duration::ZERO).await;
    let echo = format!("http://{}/echo", sim.addr);

    // notAllowed: consumer has no right to `test`.
    let dir = tempfile::tempdir().unwrap();
    let node = ee_node(dir.path(), sim.addr, &echo, false).await;
    let r = post(&node, "notAllowed.query", XML).await;
    assert_eq!(
        fault_code(&r.body).as_deref(),
        Some("Server.ServerProxy.AccessDenied"),
        "{}",
        r.text()
    );
    node.shutdown().await;

    // xml: the service answers with another message's header (X-Road's ServerClientInconsistency).
    let fixed = read_conformance("soap-queries/getstate.answer");
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = l.accept().await.unwrap();
            let fixed = Bytes::from(fixed.clone());
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |_req| {
                    let fixed = fixed.clone();
                    async move {
                        Ok::<_, std::convert::Infallible>(
                            ::http::Response::builder()
                                .header("content-type", "text/xml; charset=UTF-8")
                                .body(http_body_util::Full::new(fixed))
                                .unwrap(),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let node = ee_node(dir.path(), sim.addr, &format!("http://{addr}/fixed"), true).await;
    let r = post(&node, "xml.query", XML).await;
    assert_eq!(
        fault_code(&r.body).as_deref(),
        Some("Server.ClientProxy.ServiceFailed.InconsistentResponse"),
        "{}",
        r.text()
    );
    node.shutdown().await;
}
