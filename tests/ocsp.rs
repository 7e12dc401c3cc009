//! OCSP between two brama servers on loopback, as on a real network (reference §3.1, §6.1): each
//! keeps its own certificates' responses fresh from the test CA's responder, carries them (TLS
//! chain in the transport's OCSP parts, signing chain in `RevocationValues`), serves them on its
//! OCSP port, and checks its peer's. Revocations, responder outages, restarts, and `openssl ocsp`
//! as an independent responder.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::http::{get, post_xml, request};
use common::*;

const DIIA: &str = "SEVDEIR-TEST/GOV/00000001/DIIA";
const BIRTH: &str = "SEVDEIR-TEST/GOV/00000002/DRACS/getBirthRecord/v1";
const BIRTH_BODY: &str = "<d:getBirthRecord xmlns:d=\"http://minjust.gov.ua/dracs/v1\"><recordNumber>№ 77</recordNumber></d:getBirthRecord>";

/// The status label of DIIA's member's signing certificate.
const SIGNING_DIIA: &str = "signing certificate of SEVDEIR-TEST/GOV/00000001";

/// Fetched every second, so a revocation shows within a second or two.
const FAST: &str = "\n[ocsp]\nfetch_interval_s = 1\nfetch_timeout_ms = 2000\n";

struct Net {
    pair: Pair,
}

/// ss1 (client side) and ss2 (provider) with `extra` appended to both configurations, and the
/// global configuration's `ocspFreshnessSeconds` set to `freshness`.
async fn start(extra: &str, freshness: u64) -> Net {
    let mut net = TwoServers::new();
    set_freshness(&net, freshness);
    let sim = start_sim(Duration::ZERO).await;
    let dead = bind().local_addr().unwrap();
    let dir = net.path();
    let ss2_listener = std::mem::replace(&mut net.ss2_server, bind());
    let ss1_listener = std::mem::replace(&mut net.ss1_server, bind());
    let ss2_toml = ss2_toml(sim.addr, dead) + extra;
    let ss2 = start_node(&dir, "ss2", &ss2_toml, Some(ss2_listener)).await;
    let ss1 = start_node(&dir, "ss1", &(ss1_toml() + extra), Some(ss1_listener)).await;
    Net {
        pair: Pair { net, ss1, ss2, sim },
    }
}

fn set_freshness(net: &TwoServers, seconds: u64) {
    let path = net.path().join("globalconf/SEVDEIR-TEST/shared-params.xml");
    let mut shared = brama::globalconf::SharedParams::load(&path).unwrap();
    shared.global_settings.ocsp_freshness_seconds = seconds;
    std::fs::write(&path, shared.to_xml()).unwrap();
}

impl Net {
    async fn ask(&self) -> (u16, Option<String>, String) {
        let r = post_xml(
            self.pair.ss1.client_http.unwrap(),
            msg(DIIA, BIRTH, BIRTH_BODY),
        )
        .await;
        (r.status.as_u16(), fault_code(&r.body), r.text())
    }

    /// Asks until the answer is a fault with `code`; panics after 30 s.
    async fn until_refused(&self, code: &str) -> String {
        self.until_refused_with(&[code]).await
    }

    /// Asks until the answer is a fault with one of `codes`; panics after 30 s.
    async fn until_refused_with(&self, codes: &[&str]) -> String {
        let code = codes.join(" or ");
        let start = Instant::now();
        loop {
            let (_, got, text) = self.ask().await;
            if got.as_deref().is_some_and(|g| codes.contains(&g)) {
                return text;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "never refused with {code}; last answer: {text}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn state(&self, server: &brama::proxy::Running, label_prefix: &str) -> &'static str {
        server
            .gateway
            .own_ocsp()
            .status()
            .into_iter()
            .find(|s| s.label.starts_with(label_prefix))
            .map_or("absent", |s| s.state)
    }

    fn revoke(&self, pem_name: &str) {
        let der = std::fs::read(self.pair.net.path().join("certs").join(pem_name)).unwrap();
        let der = rustls_pemfile::certs(&mut der.as_slice())
            .next()
            .unwrap()
            .unwrap();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        self.pair.net.ocsp.responder.revoke(&der, now - 1).unwrap();
    }
}

async fn until_state(net: &Net, server: &brama::proxy::Running, label: &str, state: &str) {
    let start = Instant::now();
    while net.state(server, label) != state {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{label} never became {state}: {:?}",
            server.gateway.own_ocsp().status()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Both servers fetch their own responses, carry them and accept each other's; the OCSP port
/// serves them as X-Road's does; metrics and health show them.
#[tokio::test]
async fn servers_carry_serve_and_check_ocsp() {
    let net = start("", 3600).await;
    let (status, fault, text) = net.ask().await;
    assert_eq!((status, fault), (200, None), "{text}");
    for s in [&net.pair.ss1, &net.pair.ss2] {
        let states: Vec<_> = s.gateway.own_ocsp().status();
        assert!(
            states.len() >= 2,
            "auth and signing certificates: {states:?}"
        );
        assert!(states.iter().all(|c| c.state == "good"), "{states:?}");
    }
    // The OCSP port: by SHA-1 (X-Road 7) and by SHA-256 (X-Road 8), a heartbeat, refusals.
    let ocsp_port = net.pair.ss1.ocsp.unwrap();
    let auth = std::fs::read(net.pair.net.path().join("certs/ss1-auth.pem")).unwrap();
    let auth = rustls_pemfile::certs(&mut auth.as_slice())
        .next()
        .unwrap()
        .unwrap();
    let sha1 = hex::encode(ring::digest::digest(
        &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        &auth,
    ));
    let sha256 = hex::encode(sha2::Sha256::digest(&auth));
    use sha2::Digest;
    for query in [format!("cert={sha1}"), format!("cert_hash={sha256}")] {
        let r = get(ocsp_port, &format!("/?{query}"), &[]).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let parts = brama::ocsp::peers::read_answer(r.content_type(), r.body.clone()).unwrap();
        assert_eq!(parts.len(), 1);
        let parsed = brama::sign::ocsp::parse(&parts[0]).unwrap();
        assert_eq!(parsed.status, brama::sign::ocsp::CertStatus::Good);
    }
    let unknown = get(ocsp_port, &format!("/?cert={}", "00".repeat(20)), &[]).await;
    assert_eq!(unknown.status, 500);
    assert!(unknown.text().contains("Could not find OCSP response"));
    assert_eq!(get(ocsp_port, "/", &[]).await.status, 500);
    let head = request(ocsp_port, "HEAD", "/", &[], Bytes::new()).await;
    assert_eq!(head.status, 200);
    let post = request(ocsp_port, "POST", "/", &[], Bytes::from_static(b"x")).await;
    assert_eq!(post.status, 500);

    let metrics = get(net.pair.ss1.admin.unwrap(), "/metrics", &[])
        .await
        .text();
    assert!(
        metrics.contains("brama_ocsp_response_good{certificate=\"authentication certificate\""),
        "{metrics}"
    );
    assert!(
        metrics.contains("brama_ocsp_response_age_seconds"),
        "{metrics}"
    );
    assert_eq!(
        get(net.pair.ss1.admin.unwrap(), "/health", &[])
            .await
            .status,
        200
    );
    // `brama ocsp status`, as an operator runs it (without blocking this test's runtime,
    // which serves the admin listener it asks).
    let admin = format!("http://{}", net.pair.ss1.admin.unwrap());
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_brama"))
        .args(["ocsp", "status", "--admin", &admin])
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("good     authentication certificate"),
        "{text}"
    );
    assert!(text.contains("fresh for"), "{text}");
}

/// The client server's authentication certificate revoked: the provider refuses it as soon as
/// the client carries the CA's new answer.
#[tokio::test]
async fn a_revoked_client_authentication_certificate_is_refused() {
    let net = start(FAST, 3600).await;
    assert_eq!(net.ask().await.1, None);
    net.revoke("ss1-auth.pem");
    until_state(&net, &net.pair.ss1, "authentication", "revoked").await;
    let text = net
        .until_refused("Server.ServerProxy.SslAuthenticationFailed.CertValidation")
        .await;
    assert!(text.contains("revoked"), "{text}");
    let health = get(net.pair.ss1.admin.unwrap(), "/health", &[]).await;
    assert_eq!(health.status, 503);
    assert!(health.text().contains("OCSP"), "{}", health.text());
    let m2 = get(net.pair.ss2.admin.unwrap(), "/metrics", &[])
        .await
        .text();
    assert!(
        m2.contains("brama_security_events_total{kind=\"client_ocsp_refused\"}"),
        "{m2}"
    );
}

/// The signing certificate revoked: the provider refuses the signature (X-Road's
/// `InvalidCertPath.CertValidation`).
#[tokio::test]
async fn a_revoked_signing_certificate_is_refused() {
    let net = start(FAST, 3600).await;
    assert_eq!(net.ask().await.1, None);
    net.revoke("sign-GOV-00000001.pem");
    until_state(&net, &net.pair.ss1, SIGNING_DIIA, "revoked").await;
    // As X-Road's signer does, brama signs nothing with a certificate its CA says is revoked
    // (a provider would refuse it: `InvalidCertPath.CertValidation`, tests/signatures.rs).
    net.until_refused("Signer.CannotCreateSignature").await;
}

/// The provider's authentication certificate revoked: the client server notices at its next
/// fetch from the provider's OCSP port, within one fetch interval.
#[tokio::test]
async fn a_revoked_provider_authentication_certificate_is_refused() {
    let net = start(FAST, 3600).await;
    assert_eq!(net.ask().await.1, None);
    net.revoke("ss2-auth.pem");
    until_state(&net, &net.pair.ss2, "authentication", "revoked").await;
    let noticed = Instant::now();
    let text = net
        .until_refused("Server.ClientProxy.SslAuthenticationFailed")
        .await;
    assert!(text.contains("CertValidation"), "{text}");
    // One fetch interval (1 s), with room for a slow machine.
    assert!(noticed.elapsed() < Duration::from_secs(5));
}

/// A responder outage: traffic goes on while the responses are fresh, stops with X-Road's code
/// and a health-check reason once they are not, and resumes when the responder is back.
#[tokio::test]
async fn a_responder_outage_stops_traffic_only_when_responses_go_stale() {
    let net = start(FAST, 4).await;
    assert_eq!(net.ask().await.1, None);
    let responder = net.pair.net.ocsp.addr;
    let outage = request(
        responder,
        "POST",
        "/_sim/ocsp/outage?ms=10000",
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(outage.status, 200);
    let began = Instant::now();
    // Fresh responses carry traffic through the first seconds of the outage.
    let (_, fault, text) = net.ask().await;
    assert_eq!(fault, None, "{text}");
    // Then they go stale on both servers, and the health check says why.
    // Which server notices first depends on when each last fetched: the client server refuses
    // the provider's stale response, or does not send without a fresh one of its own.
    let text = net
        .until_refused_with(&[
            "Server.ClientProxy.SslAuthenticationFailed",
            "Server.ClientProxy.InternalError",
        ])
        .await;
    assert!(
        text.contains("IncorrectValidationInfo") || text.contains("no fresh OCSP response"),
        "{text}"
    );
    assert!(began.elapsed() < Duration::from_secs(10), "{text}");
    let start = Instant::now();
    loop {
        let health = get(net.pair.ss1.admin.unwrap(), "/health", &[]).await;
        if health.status == 503 {
            assert!(health.text().contains("stale"), "{}", health.text());
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "health stayed 200"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The responder is back: traffic resumes by itself.
    let start = Instant::now();
    loop {
        if net.ask().await.1.is_none() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "traffic never resumed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        get(net.pair.ss1.admin.unwrap(), "/health", &[])
            .await
            .status,
        200
    );
}

/// Responses kept on disk serve a restarted server while its responder is down.
#[tokio::test]
async fn a_restart_uses_the_responses_kept_on_disk() {
    let extra = format!("{FAST}cache_dir = \"ocsp-cache\"\n");
    let net = start(&extra, 3600).await;
    assert_eq!(net.ask().await.1, None);
    let Net { pair } = net;
    let Pair { net, ss1, ss2, sim } = pair;
    ss1.shutdown().await;
    let outage = request(
        net.ocsp.addr,
        "POST",
        "/_sim/ocsp/outage?ms=60000",
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(outage.status, 200);
    // ss1 again, on its registered address, with the responder down.
    let ss1_addr = net.topology.servers[0].address.clone();
    let l = std::net::TcpListener::bind(ss1_addr.as_str()).unwrap();
    let ss1 = start_node(&net.path(), "ss1", &(ss1_toml() + &extra), Some(l)).await;
    let states = ss1.gateway.own_ocsp().status();
    assert!(
        states.iter().all(|s| s.state == "good"
            && s.responder
                .as_deref()
                .is_some_and(|r| r.starts_with("cache"))),
        "{states:?}"
    );
    let pair = Pair { net, ss1, ss2, sim };
    let net = Net { pair };
    let (_, fault, text) = net.ask().await;
    assert_eq!(fault, None, "{text}");
}

/// `openssl ocsp`, a responder no one on the project wrote, as the CA's responder: brama asks it,
/// accepts its answers, and refuses a certificate it revokes while the servers run.
#[tokio::test]
async fn openssl_ocsp_as_the_cas_responder() {
    let mut net = TwoServers::new();
    let dir = net.path();
    let certs = dir.join("certs");
    // Its index: every certificate the servers present, valid.
    let index = dir.join("index.txt");
    let entry = |pem: &str, status: &str| {
        let bytes = std::fs::read(certs.join(pem)).unwrap();
        let der = rustls_pemfile::certs(&mut bytes.as_slice())
            .next()
            .unwrap()
            .unwrap();
        let (_, c) = x509_parser::parse_x509_certificate(&der).unwrap();
        let serial = hex::encode_upper(c.raw_serial());
        match status {
            "V" => format!("V\t440101000000Z\t\t{serial}\tunknown\t/CN={pem}\n"),
            _ => format!("R\t440101000000Z\t250101000000Z\t{serial}\tunknown\t/CN={pem}\n"),
        }
    };
    let all = [
        "ss1-auth.pem",
        "ss2-auth.pem",
        "sign-GOV-00000001.pem",
        "sign-GOV-00000002.pem",
        "sign-GOV-00000009.pem",
    ];
    let write_index = |revoked: Option<&str>| {
        let text: String = all
            .iter()
            .map(|p| entry(p, if Some(*p) == revoked { "R" } else { "V" }))
            .collect();
        std::fs::write(&index, text).unwrap();
    };
    write_index(None);
    let (openssl, port) = OpensslResponder::start(&index, &certs, 0);

    // The global configuration names openssl, not the simulator, as the CA's responder.
    let path = dir.join("globalconf/SEVDEIR-TEST/shared-params.xml");
    let mut shared = brama::globalconf::SharedParams::load(&path).unwrap();
    shared.approved_cas[0].top_ca.ocsp = vec![brama::globalconf::OcspInfo {
        url: format!("http://127.0.0.1:{port}/"),
        cert_der: None,
    }];
    std::fs::write(&path, shared.to_xml()).unwrap();

    let sim = start_sim(Duration::ZERO).await;
    let dead = bind().local_addr().unwrap();
    let ss2_listener = std::mem::replace(&mut net.ss2_server, bind());
    let ss1_listener = std::mem::replace(&mut net.ss1_server, bind());
    let ss2 = start_node(
        &dir,
        "ss2",
        &(ss2_toml(sim.addr, dead) + FAST),
        Some(ss2_listener),
    )
    .await;
    let ss1 = start_node(&dir, "ss1", &(ss1_toml() + FAST), Some(ss1_listener)).await;
    let net = Net {
        pair: Pair { net, ss1, ss2, sim },
    };
    for s in net.pair.ss1.gateway.own_ocsp().status() {
        assert_eq!(s.state, "good", "{s:?}");
        assert!(s.responder.unwrap().contains(&port.to_string()));
    }
    let (_, fault, text) = net.ask().await;
    assert_eq!(fault, None, "{text}");
    // ss1's authentication certificate revoked: openssl 3.0 reads its index once, so it starts again
    // on the same port with the new one (brama rides out the gap on its fresh responses).
    write_index(Some("ss1-auth.pem"));
    drop(openssl);
    let _openssl = OpensslResponder::start(&index, &certs, port);
    until_state(&net, &net.pair.ss1, "authentication", "revoked").await;
    net.until_refused("Server.ServerProxy.SslAuthenticationFailed.CertValidation")
        .await;
}

/// `openssl ocsp` answering on a port from an index file; killed when dropped.
struct OpensslResponder {
    child: std::process::Child,
    // Kept open while it runs: a closed pipe would end it at its next line of output.
    _output: std::io::BufReader<std::process::ChildStdout>,
}

impl OpensslResponder {
    /// Starts it on `port` (0: any); returns it and its port.
    fn start(index: &std::path::Path, certs: &std::path::Path, port: u16) -> (Self, u16) {
        use std::io::BufRead;
        let start = Instant::now();
        loop {
            let mut child = std::process::Command::new("openssl")
                .args(["ocsp", "-index"])
                .arg(index)
                .arg("-CA")
                .arg(certs.join("ca.pem"))
                .arg("-rsigner")
                .arg(certs.join("ocsp-responder.pem"))
                .arg("-rkey")
                .arg(certs.join("ocsp-responder.key"))
                .args(["-port", &port.to_string(), "-nmin", "5"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("openssl (scripts/test.sh installs it)");
            let mut output = std::io::BufReader::new(child.stdout.take().unwrap());
            let mut line = String::new();
            output.read_line(&mut line).unwrap();
            // "ACCEPT [::]:PORT PID=…"; nothing when the port is still taken.
            if let Some(addr) = line.split_whitespace().nth(1) {
                let bound = addr.rsplit(':').next().unwrap().parse::<u16>().unwrap();
                return (
                    OpensslResponder {
                        child,
                        _output: output,
                    },
                    bound,
                );
            }
            let _ = child.wait();
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "openssl ocsp did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for OpensslResponder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
