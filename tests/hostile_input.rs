//! What a stranger on the network can send, against running servers on real sockets: for each
//! attack the refusal (its X-Road fault code and HTTP status), the server's health and a valid
//! request answered while the attack runs, and memory within its budget. Nothing here times the
//! server; waits are for events (an answer, a counter), bounded so a regression fails instead of
//! hanging.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use brama::proxy::Running;
use bytes::Bytes;
use common::http::*;
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const DIIA: &str = "SEVDEIR-TEST/GOV/00000001/DIIA";
const BIRTH: &str = "SEVDEIR-TEST/GOV/00000002/DRACS/getBirthRecord/v1";
const BIRTH_BODY: &str = "<d:getBirthRecord xmlns:d=\"http://minjust.gov.ua/dracs/v1\"><recordNumber>№ 77</recordNumber></d:getBirthRecord>";

/// ss1's limits here: bodies up to 4 MiB, a 16 MiB body budget, a 0.5 s rate window and a small
/// connection cap, so each attack reaches its limit quickly.
const LIMITS: &str = "max_body_bytes = 4194304
header_read_timeout_ms = 2000
body_read_timeout_ms = 10000
shutdown_grace_ms = 2000
first_byte_timeout_ms = 500
min_body_rate_bytes = 4096
body_rate_window_ms = 500
body_memory_bytes = 16777216
body_memory_wait_ms = 200
max_connections = 200
listen_backlog = 1000";

struct Setup {
    pair: Pair,
}

impl Setup {
    async fn start(ss1_extra: &str, ss2_extra: &str) -> Setup {
        let mut net = TwoServers::new();
        let sim = start_sim(Duration::ZERO).await;
        let dead = bind().local_addr().unwrap();
        let dir = net.path();
        let ss2_l = std::mem::replace(&mut net.ss2_server, bind());
        let ss1_l = std::mem::replace(&mut net.ss1_server, bind());
        let ss2 = start_node(
            &dir,
            "ss2",
            &(ss2_toml(sim.addr, dead) + ss2_extra),
            Some(ss2_l),
        )
        .await;
        let ss1_clients = format!(
            "[[clients]]\nid = \"{DIIA}\"\nis_certs = [\"certs/client-diia-is.pem\"]\n\n[[clients]]\nid = \"SEVDEIR-TEST/GOV/00000009/OTHER\"\nis_certs = [\"certs/ss2-internal.pem\"]\n{ss1_extra}"
        );
        let ss1_toml = node_toml_with("ss1", "00000001", "globalconf", LIMITS, &ss1_clients);
        let ss1 = start_node(&dir, "ss1", &ss1_toml, Some(ss1_l)).await;
        Setup {
            pair: Pair { net, ss1, ss2, sim },
        }
    }

    fn ss1(&self) -> &Running {
        &self.pair.ss1
    }

    fn client(&self) -> SocketAddr {
        self.pair.ss1.client_http.unwrap()
    }

    /// A valid request is answered with the birth record, and `/health` says OK.
    async fn still_serving(&self) {
        let r = post_xml(self.client(), msg(DIIA, BIRTH, BIRTH_BODY)).await;
        assert_eq!(fault_code(&r.body), None, "{}", r.text());
        assert!(r.text().contains("getBirthRecordResponse"), "{}", r.text());
        let h = get(self.ss1().admin.unwrap(), "/health", &[]).await;
        assert_eq!(h.status, 200, "{}", h.text());
    }

    async fn metrics(&self) -> String {
        get(self.ss1().admin.unwrap(), "/metrics", &[]).await.text()
    }

    fn pem(&self, name: &str) -> String {
        std::fs::read_to_string(self.pair.net.path().join("certs").join(name)).unwrap()
    }
}

/// `xml` with `extra` inserted into its root element's start tag.
fn on_root(xml: &str, extra: &str) -> String {
    let at = xml.find("<SOAP-ENV:Envelope").unwrap() + "<SOAP-ENV:Envelope".len();
    format!("{}{extra}{}", &xml[..at], &xml[at..])
}

/// The three floods of about 1 MiB: attributes, namespace declarations, elements.
fn floods(client: &str) -> Vec<(&'static str, String)> {
    let attrs: String = (0..100_000).map(|i| format!(" a{i}=\"\"")).collect();
    let decls: String = (0..40_000)
        .map(|i| format!(" xmlns:p{i}=\"urn:{i}\""))
        .collect();
    let elements = format!(
        "<d:getBirthRecord xmlns:d=\"http://minjust.gov.ua/dracs/v1\">{}</d:getBirthRecord>",
        "<a/>".repeat(300_000)
    );
    let good = msg(client, BIRTH, BIRTH_BODY);
    vec![
        ("attributes", on_root(&good, &attrs)),
        ("namespaces", on_root(&good, &decls)),
        ("elements", msg(client, BIRTH, &elements)),
    ]
}

#[tokio::test]
async fn xml_floods_are_refused_as_invalid_xml_while_valid_requests_are_served() {
    let s = Setup::start("", "").await;
    for (name, flood) in floods(DIIA)
        .into_iter()
        .chain(floods("SEVDEIR-TEST/GOV/00000099/NOBODY"))
    {
        assert!(flood.len() > 900_000, "{name}: {}", flood.len());
        let r = post_xml(s.client(), flood).await;
        assert_eq!(
            fault_code(&r.body).as_deref(),
            Some("Client.InvalidXml"),
            "{name}: {}",
            r.text()
        );
    }
    // Two floods at once, over and over, while valid requests and the health check are answered.
    let attackers: Vec<_> = floods(DIIA)
        .into_iter()
        .take(2)
        .map(|(_, flood)| {
            let addr = s.client();
            tokio::spawn(async move {
                for _ in 0..5 {
                    let r = post_xml(addr, flood.clone()).await;
                    assert_eq!(fault_code(&r.body).as_deref(), Some("Client.InvalidXml"));
                }
            })
        })
        .collect();
    for _ in 0..5 {
        s.still_serving().await;
    }
    for a in attackers {
        a.await.unwrap();
    }
    assert_eq!(
        s.pair.sim.stats.requests(),
        5,
        "no flood reached the service"
    );

    // On the server proxy an authenticated peer's unsigned flood is refused as XML, not read
    // for seconds before its missing signature is noticed.
    let flood = &floods(DIIA)[0].1;
    let body = format!("--x\r\nContent-Type: text/xml; charset=UTF-8\r\n\r\n{flood}\r\n--x--\r\n");
    let ss1_auth = &s.pair.net.pki.auth["ss1"];
    let r = request_tls(
        s.pair.ss2.server,
        &s.pair.net.pki.ca.cert_pem,
        Some((&ss1_auth.cert_pem, &ss1_auth.key_pem)),
        &[("content-type", "multipart/mixed; boundary=x")],
        Bytes::from(body),
    )
    .await
    .unwrap();
    assert_eq!(
        fault_code(&r.body).as_deref(),
        Some("Server.ServerProxy.InvalidXml"),
        "{}",
        r.text()
    );
}

/// Sends a request head and `sent` bytes of a body declared `declared` bytes long, then stalls.
async fn stalled_upload(addr: SocketAddr, declared: usize, sent: usize) -> TcpStream {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml; charset=UTF-8\r\nContent-Length: {declared}\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.write_all(&vec![b' '; sent]).await.unwrap();
    tcp
}

/// The status line's code and the X-Road fault code of the answer on `tcp`, read until the
/// server closes the connection.
async fn answer(tcp: &mut TcpStream) -> (u16, Option<String>) {
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(15), tcp.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "no answer within 15 s");
    let text = String::from_utf8_lossy(&buf);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    (status, fault_code(body.as_bytes()))
}

#[tokio::test]
async fn stalled_uploads_stay_within_the_memory_budget_and_are_cut() {
    let s = Setup::start("", "").await;
    let budget = s.ss1().gateway.intake().budget.clone();
    // Sixteen uploads of 3 MiB each declare 4 MiB, send 3 MiB and stall: 48 MiB against a 16 MiB
    // budget.
    let mut uploads = Vec::new();
    for _ in 0..16 {
        uploads.push(stalled_upload(s.client(), 4_000_000, 3 * 1024 * 1024).await);
    }
    assert!(budget.in_use() <= budget.total());
    // The small requests' share is untouched by them.
    s.still_serving().await;
    let mut statuses = Vec::new();
    for u in &mut uploads {
        let (status, code) = answer(u).await;
        match status {
            // Too slow (they stopped sending) or over the budget.
            408 => assert_eq!(code.as_deref(), Some("Client.IOError")),
            503 => assert_eq!(code.as_deref(), Some("Server.ClientProxy.IOError")),
            other => panic!("status {other}, {code:?}"),
        }
        statuses.push(status);
    }
    assert!(
        statuses.contains(&503),
        "the budget refused some: {statuses:?}"
    );
    assert!(
        statuses.contains(&408),
        "the rest were cut as too slow: {statuses:?}"
    );
    // Every reservation is given back once the uploads are gone.
    let deadline = Instant::now() + Duration::from_secs(5);
    while budget.in_use() > 0 && Instant::now() < deadline {
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(budget.in_use(), 0);
    assert!(s.metrics().await.contains("brama_body_memory_bytes 0"));
    s.still_serving().await;
}

#[tokio::test]
async fn oversized_declared_bodies_are_refused_at_once_and_trickles_are_cut() {
    let s = Setup::start("", "").await;
    // Content-Length of 10^12 with 4 bytes sent: 413 before anything more is read.
    let mut tcp = stalled_upload(s.client(), 1_000_000_000_000, 4).await;
    let started = Instant::now();
    let (status, code) = answer(&mut tcp).await;
    assert_eq!(
        (status, code.as_deref()),
        (413, Some("Client.InvalidMessage"))
    );
    // Sooner than the rate window (500 ms) could have cut it.
    assert!(
        started.elapsed() < Duration::from_millis(450),
        "{:?}",
        started.elapsed()
    );

    // The same on the REST path.
    let mut tcp = TcpStream::connect(s.client()).await.unwrap();
    tcp.write_all(
        b"POST /r1/SEVDEIR-TEST/GOV/00000002/DRACS/test HTTP/1.1\r\nHost: x\r\nX-Road-Client: SEVDEIR-TEST/GOV/00000001/DIIA\r\nContent-Length: 1000000000000\r\n\r\nabcd",
    )
    .await
    .unwrap();
    let mut buf = Vec::new();
    tcp.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(
        text.to_ascii_lowercase()
            .contains("x-road-error: client.invalidmessage"),
        "{text}"
    );

    // A chunk declared 2^63-1 bytes long, 4 sent: hyper does not expose chunk sizes, so the
    // minimum rate cuts it at the end of its first window (0.5 s), not the 10 s body timeout.
    let mut tcp = TcpStream::connect(s.client()).await.unwrap();
    tcp.write_all(
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nTransfer-Encoding: chunked\r\n\r\n7fffffffffffffff\r\nabcd",
    )
    .await
    .unwrap();
    let (status, code) = answer(&mut tcp).await;
    assert_eq!((status, code.as_deref()), (408, Some("Client.IOError")));
    s.still_serving().await;
}

#[tokio::test]
async fn idle_connections_are_shed_so_clients_get_in() {
    let s = Setup::start("", "").await;
    // Twice the connection cap, sending nothing.
    let mut idle = Vec::new();
    for _ in 0..400 {
        idle.push(TcpStream::connect(s.client()).await.unwrap());
    }
    s.still_serving().await;
    let m = s.metrics().await;
    let counter = |m: &str, name: &str| -> u64 {
        let line = format!("{name}{{listener=\"client_http\"}} ");
        m.lines()
            .find_map(|l| l.strip_prefix(&line))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing"))
    };
    assert!(counter(&m, "brama_connections_shed_total") > 0, "{m}");
    assert!(counter(&m, "brama_connections_open") <= 200, "{m}");
    // The ones that stay silent are closed after the first-byte timeout (0.5 s).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let m = s.metrics().await;
        if counter(&m, "brama_connections_silent_total") > 0
            && counter(&m, "brama_connections_open") == 0
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "silent connections still open: {m}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The listen backlog is the configured one (ss prints it as Send-Q of a listening socket).
    let port = s.client().port().to_string();
    if let Ok(out) = std::process::Command::new("ss").args(["-ltnH"]).output() {
        let text = String::from_utf8_lossy(&out.stdout);
        let somaxconn: u32 = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(4096);
        let line = text
            .lines()
            .find(|l| l.contains(&format!("127.0.0.1:{port} ")))
            .unwrap_or_else(|| panic!("no listener on {port}: {text}"));
        let send_q: u32 = line.split_whitespace().nth(2).unwrap().parse().unwrap();
        assert_eq!(send_q, 1000.min(somaxconn), "{line}");
    }
    drop(idle);
    s.still_serving().await;
}

#[tokio::test]
async fn characters_xml_forbids_are_refused() {
    let s = Setup::start("", "").await;
    let good = msg(DIIA, BIRTH, BIRTH_BODY);
    let user = |v: &str| good.replace("UA3456789012", v);
    for (name, bad) in [
        ("NUL in userId", user("UA34\u{0}56789012")),
        ("NUL as a reference", user("UA34&#0;56789012")),
        ("U+0001", user("UA34\u{1}")),
        (
            "form feed between elements",
            good.replace("<SOAP-ENV:Body>", "\u{c}<SOAP-ENV:Body>"),
        ),
        ("ESC in the body", good.replace("№ 77", "\u{1b}[31m№ 77")),
        ("U+FFFE in the body", good.replace("№ 77", "№ \u{fffe}77")),
        ("reference to U+FFFF", good.replace("№ 77", "&#xFFFF;")),
    ] {
        let r = post_xml(s.client(), bad).await;
        assert_eq!(
            fault_code(&r.body).as_deref(),
            Some("Client.InvalidXml"),
            "{name}: {}",
            r.text()
        );
    }
    assert_eq!(s.pair.sim.stats.requests(), 0, "nothing was forwarded");
    // Identifiers are X-Road's: no separators, no whitespace, no controls.
    for bad in ["getBirth\nRecord", "getBirth/Record", "getBirth%0ARecord"] {
        let r = post_xml(
            s.client(),
            good.replace(
                "<id:serviceCode>getBirthRecord</id:serviceCode>",
                &format!("<id:serviceCode>{bad}</id:serviceCode>"),
            ),
        )
        .await;
        assert_eq!(
            fault_code(&r.body).as_deref(),
            Some("Client.InvalidClientIdentifier"),
            "{}",
            r.text()
        );
    }
    s.still_serving().await;
}

/// A service that answers every request with a SOAP fault whose code is `code`.
async fn faulting_service(code: &'static str) -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = l.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(|_req| async move {
                    let xml = format!(
                        "<SOAP-ENV:Envelope xmlns:SOAP-ENV=\"http://schemas.xmlsoap.org/soap/envelope/\"><SOAP-ENV:Body><SOAP-ENV:Fault><faultcode>{code}</faultcode><faultstring>no</faultstring></SOAP-ENV:Fault></SOAP-ENV:Body></SOAP-ENV:Envelope>"
                    );
                    Ok::<_, std::convert::Infallible>(
                        ::http::Response::builder()
                            .header("content-type", "text/xml; charset=UTF-8")
                            .body(http_body_util::Full::new(Bytes::from(xml)))
                            .unwrap(),
                    )
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    addr
}

/// Every sample line of a Prometheus text page: `name{label="value",...} number`, label values
/// with only the escapes the format allows.
fn assert_parses(page: &str) {
    for line in page
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line:?}"));
        assert!(value.parse::<f64>().is_ok(), "value of {line:?}");
        let name_end = series.find('{').unwrap_or(series.len());
        assert!(
            series[..name_end]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_'),
            "{line:?}"
        );
        if name_end == series.len() {
            continue;
        }
        let mut labels = series[name_end + 1..]
            .strip_suffix('}')
            .unwrap_or_else(|| panic!("{line:?}"))
            .chars();
        loop {
            let name: String = labels.by_ref().take_while(|&c| c != '=').collect();
            assert!(
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "{line:?}"
            );
            assert_eq!(labels.next(), Some('"'), "{line:?}");
            loop {
                match labels.next() {
                    Some('\\') => {
                        assert!(matches!(labels.next(), Some('\\' | '"' | 'n')), "{line:?}")
                    }
                    Some('"') => break,
                    Some(_) => {}
                    None => panic!("unterminated label in {line:?}"),
                }
            }
            match labels.next() {
                Some(',') => continue,
                None => break,
                Some(c) => panic!("{c:?} after a label in {line:?}"),
            }
        }
    }
}

#[tokio::test]
async fn a_peers_fault_code_cannot_break_metrics() {
    let evil = faulting_service("Server.Evil\"} 1\nforged_total 9\n#").await;
    let s = Setup::start(
        "",
        &format!(
            "\n[[clients.services]]\ncode = \"evil\"\nurl = \"http://{evil}/\"\n\n[[clients.access]]\nservice = \"evil\"\nsubjects = [\"SUBSYSTEM:{DIIA}\"]\n"
        ),
    )
    .await;
    for _ in 0..3 {
        let r = post_xml(
            s.client(),
            msg(
                DIIA,
                "SEVDEIR-TEST/GOV/00000002/DRACS/evil",
                "<e:evil xmlns:e=\"urn:e\"/>",
            ),
        )
        .await;
        assert!(
            fault_code(&r.body).is_some_and(|c| c.contains("Evil")),
            "{}",
            r.text()
        );
    }
    for page in [
        s.metrics().await,
        get(s.pair.ss2.admin.unwrap(), "/metrics", &[]).await.text(),
    ] {
        assert_parses(&page);
        assert!(!page.lines().any(|l| l.starts_with("forged")), "{page}");
    }
    let page = s.metrics().await;
    assert!(
        page.contains("brama_faults_total{proxy=\"client\",code=\"other\"} 3"),
        "{page}"
    );
    s.still_serving().await;
}

/// The router on ss1, its callers authenticated as `auth` says (the default when empty): DIIA
/// and OTHER submit, each with its own pinned certificate.
fn router_toml(store: &std::path::Path, auth: &str) -> String {
    let mut t = format!(
        "\n[router]\nstore_dir = \"{}\"\nclient = \"{DIIA}\"\nsubmitters = [\"{DIIA}\", \"SEVDEIR-TEST/GOV/00000009/OTHER\"]\n{auth}\n\n[[router.routes]]\nname = \"birth-record\"\nclient = \"{DIIA}\"\nservice = \"{BIRTH}\"\n",
        store.display()
    );
    for (stem, code) in [
        ("ehealth", "EHEALTH"),
        ("dracs", "DRACS"),
        ("dms", "DMS"),
        ("dps", "DPS"),
        ("msp", "EISSS"),
        ("rtg", "RTG"),
    ] {
        t += &format!(
            "\n[router.registries.{stem}]\nsubsystem = \"SEVDEIR-TEST/GOV/00000002/{code}\"\n"
        );
    }
    t
}

/// One HTTPS exchange with ss1's client listener, presenting `cert` (PEM certificate and key).
async fn call(
    addr: SocketAddr,
    ca: &str,
    cert: Option<&(String, String)>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Reply {
    let c = cert.map(|(c, k)| (c.as_str(), k.as_str()));
    request_tls_to(addr, ca, c, method, path, headers, body)
        .await
        .unwrap()
}

fn refused(r: &Reply) {
    assert_eq!(r.status, 403, "{}", r.text());
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        v["type"], "Server.ClientProxy.SslAuthenticationFailed",
        "{v}"
    );
}

fn id_of(r: &Reply) -> String {
    assert_eq!(r.status, 202, "{}", r.text());
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    v["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn the_router_serves_only_authenticated_information_systems() {
    let store = tempfile::tempdir().unwrap();
    let s = Setup::start(&router_toml(store.path(), ""), "").await;
    let https = s.ss1().client_https.unwrap();
    let ca = s.pair.net.pki.ca.cert_pem.clone();
    let diia = (s.pem("client-diia-is.pem"), s.pem("client-diia-is.key"));
    let other = (s.pem("ss2-internal.pem"), s.pem("ss2-internal.key"));
    let unpinned = (s.pem("ss1-internal.pem"), s.pem("ss1-internal.key"));
    let app = Bytes::from(
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/applications/all-services.json"
        ))
        .unwrap(),
    );
    let json = [("content-type", "application/json")];
    let submit = "/api/v1/applications";

    // Plain HTTP, HTTPS without a certificate, with one nobody pinned: refused and counted.
    refused(&request(s.client(), "POST", submit, &json, app.clone()).await);
    refused(&call(https, &ca, None, "POST", submit, &json, app.clone()).await);
    refused(
        &call(
            https,
            &ca,
            Some(&unpinned),
            "POST",
            submit,
            &json,
            app.clone(),
        )
        .await,
    );
    let metrics = &s.ss1().gateway.metrics();
    assert_eq!(metrics.security_events("is_authentication_failed"), 3);

    // DIIA's information system submits; only DIIA sees the application.
    let id = id_of(&call(https, &ca, Some(&diia), "POST", submit, &json, app.clone()).await);
    let path = format!("/api/v1/applications/{id}");
    let mine = call(https, &ca, Some(&diia), "GET", &path, &[], Bytes::new()).await;
    assert_eq!(mine.status, 200, "{}", mine.text());
    assert!(mine.text().contains(&id));
    let theirs = call(https, &ca, Some(&other), "GET", &path, &[], Bytes::new()).await;
    assert_eq!(theirs.status, 404, "{}", theirs.text());
    assert_eq!(metrics.security_events("access_denied"), 1);
    refused(&call(https, &ca, None, "GET", &path, &[], Bytes::new()).await);
    refused(&request(s.client(), "GET", &path, &[], Bytes::new()).await);

    // OTHER submits its own, which DIIA does not see.
    let other_id = id_of(&call(https, &ca, Some(&other), "POST", submit, &json, app.clone()).await);
    let path = format!("/api/v1/applications/{other_id}");
    let r = call(https, &ca, Some(&diia), "GET", &path, &[], Bytes::new()).await;
    assert_eq!(r.status, 404, "{}", r.text());

    // A wrap-mode route is its client's alone.
    let plain = Bytes::from_static(b"<d:getBirthRecord xmlns:d=\"http://minjust.gov.ua/dracs/v1\"><recordNumber>1</recordNumber></d:getBirthRecord>");
    let xml = [("content-type", "text/xml")];
    let route = "/route/birth-record";
    refused(&call(https, &ca, Some(&other), "POST", route, &xml, plain.clone()).await);
    refused(&request(s.client(), "POST", route, &xml, plain.clone()).await);
    let r = call(https, &ca, Some(&diia), "POST", route, &xml, plain.clone()).await;
    assert!(r.text().contains("getBirthRecordResponse"), "{}", r.text());
    s.still_serving().await;
}

#[test]
fn a_router_open_to_the_network_without_authentication_is_a_configuration_error() {
    let net = TwoServers::new();
    let store = tempfile::tempdir().unwrap();
    let check = |listeners: &str, other_certs: &str, auth: &str| {
        let clients = format!(
            "[[clients]]\nid = \"{DIIA}\"\nis_certs = [\"certs/client-diia-is.pem\"]\n[[clients]]\nid = \"SEVDEIR-TEST/GOV/00000009/OTHER\"\n{other_certs}\n{}",
            router_toml(store.path(), auth)
        );
        let toml = node_toml("ss1", "00000001", "globalconf", &clients).replace(
            "client_http = \"127.0.0.1:0\"\nclient_https = \"127.0.0.1:0\"",
            listeners,
        );
        let path = net.path().join("check.toml");
        std::fs::write(&path, toml).unwrap();
        brama::config::ServerConf::load(Some(&path))
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    let pinned = "is_certs = [\"certs/ss2-internal.pem\"]";
    let none = "authentication = \"none\"";
    let loopback = "client_http = \"127.0.0.1:0\"\nclient_https = \"127.0.0.1:0\"";
    let open = "client_http = \"0.0.0.0:0\"\nclient_https = \"127.0.0.1:0\"";
    let no_https = "client_http = \"127.0.0.1:0\"";
    assert_eq!(check(loopback, pinned, ""), Ok(()));
    assert_eq!(check(loopback, pinned, none), Ok(()));
    assert_eq!(
        check(open, pinned, ""),
        Ok(()),
        "certificates on any listener"
    );
    let err = check(open, pinned, none).unwrap_err();
    assert!(
        err.contains("router.authentication") && err.contains("0.0.0.0:0"),
        "{err}"
    );
    let err = check(no_https, pinned, "").unwrap_err();
    assert!(
        err.contains("router.authentication") && err.contains("client_https"),
        "{err}"
    );
    let err = check(loopback, "", "").unwrap_err();
    assert!(
        err.contains("router.submitters") && err.contains("OTHER"),
        "{err}"
    );
}

/// `brama serve` as a process, its log in a file; what a peer sends cannot start a line there.
#[test]
fn log_lines_cannot_be_forged_from_outside() {
    for format in ["text", "json"] {
        let net = TwoServers::new();
        let toml = node_toml(
            "ss1",
            "00000001",
            "globalconf",
            &format!(
                "[[clients]]\nid = \"{DIIA}\"\n\n[log]\nformat = \"{format}\"\nlevel = \"info\"\n"
            ),
        );
        let conf = net.path().join("ss1.toml");
        std::fs::write(&conf, toml).unwrap();
        let log_path = net.path().join("brama.log");
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_brama"))
            .args(["serve", "--config"])
            .arg(&conf)
            .stderr(std::fs::File::create(&log_path).unwrap())
            .spawn()
            .unwrap();
        let log = || strip_ansi(&std::fs::read_to_string(&log_path).unwrap_or_default());
        let port = wait_for(|| {
            let l = log();
            let at = l.find("client_http")?;
            let rest = &l[at..];
            let start = rest.find("127.0.0.1:")? + "127.0.0.1:".len();
            rest[start..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse::<u16>()
                .ok()
        });
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let forged = "2026-12-06T00:00:00.000000Z  WARN security: FORGED";
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let good = msg(DIIA, BIRTH, BIRTH_BODY);
            // A line break in an attribute value the fault quotes.
            let bad_type = good.replacen(
                "id:objectType=\"SUBSYSTEM\"",
                &format!("id:objectType=\"SUBSYSTEM\n{forged}\""),
                1,
            );
            let r = post_xml(addr, bad_type).await;
            assert!(fault_code(&r.body).is_some(), "{}", r.text());
            // Percent-encoded in a REST path, decoded before the fault quotes it.
            let path = format!(
                "/r1/SEVDEIR-TEST/GOV/00000002/DRACS/x%0A{}",
                forged.replace(' ', "%20")
            );
            let r = get(addr, &path, &[("x-road-client", DIIA)]).await;
            assert_eq!(r.status, 400, "{}", r.text());
        });
        wait_for(|| (log().matches("FORGED").count() >= 2).then_some(()));
        let _ = child.kill();
        let _ = child.wait();
        let text = log();
        for line in text.lines() {
            assert!(
                !line.starts_with("2026-12-06T00:00:00"),
                "forged line: {line}"
            );
            if format == "json" {
                let v: serde_json::Value = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("not one JSON object ({e}): {line}"));
                assert!(v.is_object());
            } else if line.contains("FORGED") {
                assert!(line.contains("\\n2026-12-06T00:00:00"), "unescaped: {line}");
            }
        }
    }
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters final-byte
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Polls `f` until it gives a value (10 s at most).
fn wait_for<T>(mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out");
        std::thread::sleep(Duration::from_millis(20));
    }
}
