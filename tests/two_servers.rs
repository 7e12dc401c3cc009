//! Two brama security servers (one global configuration, two server configurations) talking over
//! mutual TLS on loopback, with the registry simulator behind the provider.

mod common;

use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use common::http::{get, post_xml, request, request_tls};
use common::*;
use sha2::{Digest, Sha512};

const DIIA: &str = "SEVDEIR-TEST/GOV/00000001/DIIA";
const OTHER: &str = "SEVDEIR-TEST/GOV/00000009/OTHER";
const BIRTH: &str = "SEVDEIR-TEST/GOV/00000002/DRACS/getBirthRecord/v1";
const BIRTH_BODY: &str = "<d:getBirthRecord xmlns:d=\"http://minjust.gov.ua/dracs/v1\"><recordNumber>№ 77</recordNumber></d:getBirthRecord>";

async fn pair() -> Pair {
    start_pair(Duration::ZERO).await
}

#[tokio::test]
async fn request_crosses_two_servers_and_comes_back_checked() {
    let p = pair().await;
    let req = msg(DIIA, BIRTH, BIRTH_BODY);
    let r = post_xml(p.ss1.client_http.unwrap(), req.clone()).await;
    assert_eq!(r.status, 200);
    let text = r.text();
    assert!(fault_code(&r.body).is_none(), "{text}");
    assert!(
        text.contains("getBirthRecordResponse") && text.contains("№ 77"),
        "{text}"
    );
    // The provider's server set requestHash over the exact request bytes.
    let expected = base64::engine::general_purpose::STANDARD.encode(Sha512::digest(req.as_bytes()));
    assert!(text.contains(&expected), "requestHash missing: {text}");
    assert_eq!(p.sim.stats.distinct_ids(), 1);
    // Both servers counted it.
    let m1 = get(p.ss1.admin.unwrap(), "/metrics", &[]).await.text();
    assert!(
        m1.contains("brama_requests_total{proxy=\"client\"} 1"),
        "{m1}"
    );
    let m2 = get(p.ss2.admin.unwrap(), "/metrics", &[]).await.text();
    assert!(
        m2.contains("brama_requests_total{proxy=\"server\"} 1"),
        "{m2}"
    );
    assert_eq!(get(p.ss1.admin.unwrap(), "/health", &[]).await.status, 200);
}

/// X-Road's default signature digest (SHA-512, ECDSA with SHA-512 on P-256 keys) on one server,
/// Trembita's (SHA-256) on the other: each verifies the other's signatures.
#[tokio::test]
async fn signatures_over_sha512_and_sha256_cross_both_ways() {
    let p = start_pair_with(Duration::ZERO, |name, toml| match name {
        "ss1" => toml + "\n[signer]\nsignature_digest = \"SHA-512\"\n",
        _ => toml,
    })
    .await;
    let member = |code: &str| {
        brama::identifiers::ClientId::parse_path(&format!("SEVDEIR-TEST/GOV/{code}")).unwrap()
    };
    let alg = |s: &brama::proxy::Running, code: &str| {
        s.gateway.signer().key(&member(code)).unwrap().algorithm()
    };
    use brama::sign::token::SignatureAlgorithm;
    assert_eq!(alg(&p.ss1, "00000001"), SignatureAlgorithm::EcdsaSha512);
    assert_eq!(alg(&p.ss2, "00000002"), SignatureAlgorithm::EcdsaSha256);
    let r = post_xml(p.ss1.client_http.unwrap(), msg(DIIA, BIRTH, BIRTH_BODY)).await;
    assert!(fault_code(&r.body).is_none(), "{}", r.text());
    assert!(r.text().contains("getBirthRecordResponse"), "{}", r.text());
}

#[tokio::test]
async fn access_rights_and_service_faults_have_xroad_codes() {
    let p = pair().await;
    let a = p.ss1.client_http.unwrap();
    let cases = [
        // OTHER has no right to getBirthRecord (and must come over HTTPS: see the SSLAUTH test).
        (
            DIIA,
            "SEVDEIR-TEST/GOV/00000002/DRACS/getDeathRecord/v1",
            "Server.ServerProxy.UnknownService",
        ),
        (
            DIIA,
            "SEVDEIR-TEST/GOV/00000002/DRACS/getBirthRecord/v2",
            "Server.ServerProxy.UnknownService",
        ),
        (
            DIIA,
            "SEVDEIR-TEST/GOV/00000002/DRACS/testQuery",
            "Server.ServerProxy.ServiceDisabled",
        ),
        (
            DIIA,
            "SEVDEIR-TEST/GOV/00000002/DRACS/getState",
            "Server.ServerProxy.ServiceFailed.NetworkError",
        ),
        // A member's right does not cover its subsystems: MEMBER:…/00000001 is granted `test`.
        (
            DIIA,
            "SEVDEIR-TEST/GOV/00000002/DRACS/test",
            "Server.ServerProxy.AccessDenied",
        ),
        (
            DIIA,
            "SEVDEIR-TEST/GOV/00000077/NOBODY/getX",
            "Server.ClientProxy.UnknownMember",
        ),
        (
            "SEVDEIR-TEST/GOV/00000002/DRACS",
            BIRTH,
            "Server.ClientProxy.UnknownMember",
        ),
    ];
    for (client, service, expected) in cases {
        let code = service
            .rsplit('/')
            .find(|s| !s.starts_with('v'))
            .unwrap_or("x");
        let body = format!("<x:{code} xmlns:x=\"urn:t\"/>");
        let r = post_xml(a, msg(client, service, &body)).await;
        assert_eq!(r.status, 200);
        assert_eq!(
            fault_code(&r.body).as_deref(),
            Some(expected),
            "{client} → {service}: {}",
            r.text()
        );
        assert!(
            r.text().contains("<faultDetail xmlns=\"\">"),
            "fault has an error id"
        );
    }
    let m = get(p.ss2.admin.unwrap(), "/metrics", &[]).await.text();
    assert!(
        m.contains("code=\"Server.ServerProxy.AccessDenied\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("brama_security_events_total{kind=\"access_denied\"} 1"),
        "{m}"
    );
}

#[tokio::test]
async fn sslauth_client_needs_its_pinned_certificate() {
    let p = pair().await;
    let https = p.ss1.client_https.unwrap();
    let ca = &p.net.pki.ca.cert_pem;
    let is = &p.net.pki.clients["diia-is"];
    let body = Bytes::from(msg(
        OTHER,
        "SEVDEIR-TEST/GOV/00000002/DRACS/test",
        "<x:test xmlns:x=\"urn:t\"><v>1</v></x:test>",
    ));
    let h = [("content-type", "text/xml; charset=UTF-8")];
    // With the pinned certificate: through, and OTHER is in the global group granted `test`.
    let r = request_tls(
        https,
        ca,
        Some((&is.cert_pem, &is.key_pem)),
        &h,
        body.clone(),
    )
    .await
    .unwrap();
    assert_eq!(fault_code(&r.body), None, "{}", r.text());
    assert!(r.text().contains("testResponse"));
    // Without a certificate, or over plain HTTP: refused.
    let r = request_tls(https, ca, None, &h, body.clone())
        .await
        .unwrap();
    assert_eq!(
        fault_code(&r.body).as_deref(),
        Some("Server.ClientProxy.SslAuthenticationFailed")
    );
    let r = request(p.ss1.client_http.unwrap(), "POST", "/", &h, body).await;
    assert_eq!(
        fault_code(&r.body).as_deref(),
        Some("Server.ClientProxy.SslAuthenticationFailed")
    );
}

#[tokio::test]
async fn unregistered_or_untrusted_tls_certificates_are_refused() {
    let net = TwoServers::new();
    let sim = start_sim(Duration::ZERO).await;
    let dead = bind().local_addr().unwrap();
    // ss1 believes ss2 has another certificate: ss1 must refuse ss2's real one.
    let mut topo = net.topology.clone();
    let other_pki = brama::pki::generate(&topo.pki_spec("other CA", &[])).unwrap();
    let mut sp = topo.shared_params(&net.pki);
    sp.security_servers[1].auth_cert_hashes = vec![brama::globalconf::auth_cert_hash(
        &other_pki.auth["ss2"].cert_der,
    )];
    let gc2 = net.path().join("globalconf-ss1");
    std::fs::create_dir_all(gc2.join(INSTANCE)).unwrap();
    std::fs::write(gc2.join("instance-identifier"), INSTANCE).unwrap();
    std::fs::write(gc2.join(INSTANCE).join("shared-params.xml"), sp.to_xml()).unwrap();
    topo.instance = INSTANCE.into();
    let dir = net.path();
    let ss2 = start_node(&dir, "ss2", &ss2_toml(sim.addr, dead), Some(net.ss2_server)).await;
    let ss1_toml = ss1_toml().replace(
        "globalconf_dir = \"globalconf\"",
        "globalconf_dir = \"globalconf-ss1\"",
    );
    let ss1 = start_node(&dir, "ss1", &ss1_toml, Some(net.ss1_server)).await;
    let r = post_xml(ss1.client_http.unwrap(), msg(DIIA, BIRTH, BIRTH_BODY)).await;
    assert_eq!(
        fault_code(&r.body).as_deref(),
        Some("Server.ClientProxy.SslAuthenticationFailed"),
        "{}",
        r.text()
    );
    assert_eq!(ss1.gateway.metrics().security_events("tls_peer_refused"), 1);
    assert_eq!(sim.stats.requests(), 0, "nothing reached the service");

    // A client presenting a certificate from an unapproved CA never gets past ss2's handshake,
    // nor does one from the approved CA whose hash is not registered.
    let rogue = brama::pki::generate_ca("rogue CA").unwrap();
    let spec = &topo.pki_spec("x", &[]).servers[0];
    for (ca_cert, ca_key) in [
        (&rogue.cert_pem, &rogue.key_pem),
        (
            &net.pki.ca.cert_pem,
            &std::fs::read_to_string(dir.join("certs/ca.key")).unwrap(),
        ),
    ] {
        let cert = brama::pki::issue_auth_cert(ca_cert, ca_key, INSTANCE, spec).unwrap();
        let r = request_tls(
            ss2.server,
            &net.pki.ca.cert_pem,
            Some((&cert.cert_pem, &cert.key_pem)),
            &[("content-type", "multipart/mixed; boundary=x")],
            Bytes::from_static(b"--x--"),
        )
        .await;
        assert!(r.is_err(), "handshake must fail");
    }
    assert_eq!(ss2.gateway.metrics().security_events("tls_peer_refused"), 2);
    ss1.shutdown().await;
    ss2.shutdown().await;
}

#[tokio::test]
async fn metaservices_list_and_describe() {
    let p = pair().await;
    let a = p.ss1.client_http.unwrap();
    let r = post_xml(
        a,
        msg(
            DIIA,
            "SEVDEIR-TEST/GOV/00000002/DRACS/listMethods",
            "<xroad:listMethods xmlns:xroad=\"http://x-road.eu/xsd/xroad.xsd\"/>",
        ),
    )
    .await;
    let t = r.text();
    for code in ["getBirthRecord", "testQuery", "getState", "test"] {
        assert!(
            t.contains(&format!("<id:serviceCode>{code}</id:serviceCode>")),
            "{t}"
        );
    }
    assert!(
        !t.contains(">listMethods<") || t.contains("<xroad:service"),
        "metaservices are never listed"
    );
    let r = post_xml(
        a,
        msg(
            DIIA,
            "SEVDEIR-TEST/GOV/00000002/DRACS/allowedMethods",
            "<xroad:allowedMethods xmlns:xroad=\"http://x-road.eu/xsd/xroad.xsd\"/>",
        ),
    )
    .await;
    let t = r.text();
    assert!(
        t.contains("allowedMethodsResponse")
            && t.contains(">getBirthRecord<")
            && t.contains(">testQuery<"),
        "{t}"
    );
    assert!(!t.contains(">test<"), "DIIA may not call `test`: {t}");

    let r = post_xml(
        a,
        msg(DIIA, "SEVDEIR-TEST/GOV/00000002/DRACS/getWsdl", "<xroad:getWsdl xmlns:xroad=\"http://x-road.eu/xsd/xroad.xsd\"><xroad:serviceCode>getBirthRecord</xroad:serviceCode><xroad:serviceVersion>v1</xroad:serviceVersion></xroad:getWsdl>"),
    )
    .await;
    assert!(
        r.content_type().starts_with("multipart/related"),
        "{}",
        r.content_type()
    );
    let t = r.text();
    assert!(
        t.contains("getWsdlResponse") && t.contains("wsdl:definitions")
            || t.contains("definitions"),
        "{t}"
    );
    assert!(
        t.contains("http://example.org/xroad-endpoint") && !t.contains(&p.sim.addr.to_string()),
        "address hidden: {t}"
    );

    let r = get(a, "/listClients", &[]).await;
    assert!(
        r.text()
            .contains("<id:subsystemCode>DRACS</id:subsystemCode>"),
        "{}",
        r.text()
    );
    let r = get(a, "/listClients", &[("accept", "application/json")]).await;
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert!(v["member"].as_array().unwrap().len() >= 6, "{v}");
}

#[tokio::test]
async fn swa_and_mtom_requests_reach_the_service() {
    let p = pair().await;
    let soap = msg(DIIA, BIRTH, BIRTH_BODY);
    let swa = format!(
        "--MIME_b\r\nContent-Type: text/xml; charset=UTF-8\r\n\r\n{soap}\r\n--MIME_b\r\nContent-Type: application/pdf\r\nContent-ID: <cert-1>\r\n\r\n%PDF-1.4 медична довідка\r\n--MIME_b--\r\n"
    );
    let mtom = format!(
        "--MIME_b\r\nContent-Type: application/xop+xml; type=\"text/xml\"; charset=UTF-8\r\nContent-ID: <root>\r\n\r\n{soap}\r\n--MIME_b\r\nContent-Type: application/octet-stream\r\nContent-ID: <bin-1>\r\n\r\n\u{1}\u{2}\u{3}\r\n--MIME_b--\r\n"
    );
    for (ct, body) in [
        ("multipart/related; type=\"text/xml\"; boundary=MIME_b", swa),
        ("multipart/related; type=\"application/xop+xml\"; start=\"<root>\"; start-info=\"text/xml\"; boundary=MIME_b", mtom),
    ] {
        let r = request(p.ss1.client_http.unwrap(), "POST", "/", &[("content-type", ct)], Bytes::from(body)).await;
        assert_eq!(fault_code(&r.body), None, "{ct}: {}", r.text());
        assert!(r.text().contains("getBirthRecordResponse"), "{}", r.text());
    }
    assert_eq!(p.sim.stats.requests(), 2, "both reached the service");
}

#[tokio::test]
async fn hostile_input_gets_quick_faults_and_the_server_keeps_serving() {
    let p = pair().await;
    let a = p.ss1.client_http.unwrap();
    let good = msg(DIIA, BIRTH, BIRTH_BODY);
    let doctype = format!(
        "<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>{}",
        good.replace("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", "")
    );
    let deep = good.replace(
        BIRTH_BODY,
        &format!(
            "<d:getBirthRecord xmlns:d=\"urn:x\">{}</d:getBirthRecord>",
            "<a>".repeat(300) + &"</a>".repeat(300)
        ),
    );
    let big = good.replace(
        BIRTH_BODY,
        &format!(
            "<d:getBirthRecord xmlns:d=\"urn:x\">{}</d:getBirthRecord>",
            "x".repeat(2 * 1024 * 1024)
        ),
    );
    for (name, body, code) in [
        ("doctype", doctype, "Client.InvalidXml"),
        ("deep", deep, "Client.InvalidXml"),
        ("too large", big, "Client.InvalidMessage"),
        (
            "garbage",
            "\u{0}\u{1}not xml".to_string(),
            "Client.InvalidXml",
        ),
    ] {
        let r = post_xml(a, body).await;
        assert_eq!(
            fault_code(&r.body).as_deref(),
            Some(code),
            "{name}: {}",
            r.text()
        );
    }
    let r = request(
        a,
        "POST",
        "/",
        &[("content-type", "application/json")],
        Bytes::from_static(b"{}"),
    )
    .await;
    assert_eq!(
        fault_code(&r.body).as_deref(),
        Some("Client.InvalidContentType")
    );
    // Any other method, on any path: X-Road's SOAP fault, not a plain-text status.
    for (method, path) in [("GET", "/"), ("PUT", "/anything"), ("DELETE", "/cgi-bin/x")] {
        let r = request(a, method, path, &[], Bytes::new()).await;
        assert_eq!(r.status, 200, "{method} {path}");
        assert_eq!(
            fault_code(&r.body).as_deref(),
            Some("Client.InvalidHttpMethod"),
            "{method} {path}: {}",
            r.text()
        );
        assert!(r.text().contains(&format!("instead of {method}")));
    }
    // A SOAP message is taken on any path, as X-Road takes it (UXP clients post to the address
    // of the WSDL they downloaded).
    let r = request(
        a,
        "POST",
        "/cgi-bin/consumer_proxy",
        &[("content-type", "text/xml; charset=UTF-8")],
        Bytes::from(msg(DIIA, BIRTH, BIRTH_BODY)),
    )
    .await;
    assert_eq!(fault_code(&r.body), None, "{}", r.text());
    assert!(r.text().contains("getBirthRecordResponse"), "{}", r.text());

    // A client that connects and sends nothing is cut off after header_read_timeout_ms.
    use tokio::io::AsyncReadExt;
    let mut idle = tokio::net::TcpStream::connect(a).await.unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), idle.read(&mut buf))
        .await
        .expect("closed by the server");
    assert!(
        matches!(n, Ok(0) | Err(_)),
        "the idle connection was closed, not answered: {n:?}"
    );

    let r = post_xml(a, good).await;
    assert_eq!(fault_code(&r.body), None, "still serving: {}", r.text());
    assert!(r.text().contains("getBirthRecordResponse"), "{}", r.text());
}

#[tokio::test]
async fn shutdown_drains_in_flight_requests() {
    let Pair { ss1, ss2, sim, .. } = start_pair(Duration::from_millis(700)).await;
    let a = ss1.client_http.unwrap();
    let in_flight = tokio::spawn(post_xml(a, msg(DIIA, BIRTH, BIRTH_BODY)));
    until("the request at the service", || sim.stats.requests() == 1).await;
    ss1.shutdown().await;
    let r = in_flight.await.unwrap();
    assert_eq!(
        fault_code(&r.body),
        None,
        "finished during shutdown: {}",
        r.text()
    );
    assert!(
        tokio::net::TcpStream::connect(a).await.is_err(),
        "no longer accepting"
    );
    ss2.shutdown().await;
}

/// A TLS front for the simulator, with the given certificate (the provider's HTTPS service).
async fn tls_front(sim: std::net::SocketAddr, cert: &brama::pki::Issued) -> std::net::SocketAddr {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![CertificateDer::from_pem_slice(cert.cert_pem.as_bytes()).unwrap()],
        PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes()).unwrap(),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    let mut upstream = tokio::net::TcpStream::connect(sim).await.unwrap();
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn https_services_are_verified_against_their_ca() {
    let mut net = TwoServers::new();
    let sim = start_sim(Duration::ZERO).await;
    let front = tls_front(sim.addr, &net.pki.internal_tls["ss2"]).await;
    let other_ca = brama::pki::generate_ca("other CA").unwrap();
    let dir = net.path();
    std::fs::write(dir.join("other-ca.pem"), &other_ca.cert_pem).unwrap();
    let services = format!(
        r#"
[[clients]]
id = "SEVDEIR-TEST/GOV/00000002/DRACS"

[[clients.services]]
code = "getBirthRecord"
version = "v1"
url = "https://localhost:{port}/dracs"
tls_ca = "certs/ca.pem"

[[clients.services]]
code = "getBirthRecord"
version = "v2"
url = "https://localhost:{port}/dracs"
tls_ca = "other-ca.pem"

[[clients.access]]
service = "getBirthRecord"
subjects = ["SUBSYSTEM:SEVDEIR-TEST/GOV/00000001/DIIA"]
"#,
        port = front.port()
    );
    let ss2 = start_node(
        &dir,
        "ss2",
        &node_toml("ss2", "00000002", "globalconf", &services),
        Some(std::mem::replace(&mut net.ss2_server, bind())),
    )
    .await;
    let ss1 = start_node(
        &dir,
        "ss1",
        &ss1_toml(),
        Some(std::mem::replace(&mut net.ss1_server, bind())),
    )
    .await;
    let a = ss1.client_http.unwrap();
    let r = post_xml(a, msg(DIIA, BIRTH, BIRTH_BODY)).await;
    assert_eq!(fault_code(&r.body), None, "{}", r.text());
    assert!(r.text().contains("getBirthRecordResponse"));
    let r = post_xml(
        a,
        msg(
            DIIA,
            "SEVDEIR-TEST/GOV/00000002/DRACS/getBirthRecord/v2",
            BIRTH_BODY,
        ),
    )
    .await;
    assert_eq!(
        fault_code(&r.body).as_deref(),
        Some("Server.ServerProxy.ServiceFailed.NetworkError"),
        "{}",
        r.text()
    );
    assert_eq!(
        sim.stats.requests(),
        1,
        "the untrusted service was never called"
    );
    ss1.shutdown().await;
    ss2.shutdown().await;
}
