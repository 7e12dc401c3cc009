//! The simulator over real loopback sockets, driven by a plain hyper client.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use super::*;
use brama_xroad::message::mime::{self, ContentType};

/// The repository, whose `wsdl/` and `openapi/` the simulator serves.
pub(crate) const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
const WSDL_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../wsdl");

/// A configuration that can be read by name but not listed, as the binary's embedded default:
/// `config/` of the repository, seen through names only.
pub(crate) struct Unlisted;

impl ConfigFiles for Unlisted {
    fn dir(&self) -> Option<&Path> {
        None
    }

    fn read(&self, rel: &str) -> std::io::Result<Vec<u8>> {
        std::fs::read(Path::new(REPO).join("config").join(rel))
    }

    fn display(&self, rel: &str) -> String {
        format!("<unlisted>/config/{rel}")
    }
}
const EXAMPLE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../examples/soap/getBirthRecord.xml"
));

struct Sim {
    addr: SocketAddr,
    stats: Arc<SimStats>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Sim {
    async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let res = tokio::time::timeout(Duration::from_secs(10), &mut self.task).await;
        assert!(
            matches!(res, Ok(Ok(Ok(())))),
            "serve did not stop cleanly: {res:?}"
        );
    }
}

async fn start(error_rate: f64, latency: Duration) -> Sim {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cfg = SimConfig {
        latency,
        error_rate,
        wsdls: load_wsdls(Path::new("/"), WSDL_DIR).unwrap(),
        ..Default::default()
    };
    let stats = Arc::new(SimStats::default());
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, cfg, stats.clone(), async move {
        let _ = rx.await;
    }));
    Sim {
        addr,
        stats,
        stop: Some(tx),
        task,
    }
}

async fn connect(addr: SocketAddr) -> SendRequest<Full<Bytes>> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

struct Reply {
    status: StatusCode,
    content_type: String,
    body: String,
}

async fn send(sender: &mut SendRequest<Full<Bytes>>, req: Request<Full<Bytes>>) -> Reply {
    sender.ready().await.unwrap();
    let resp = sender.send_request(req).await.unwrap();
    let status = resp.status();
    let content_type = resp
        .headers()
        .get(CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        content_type,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

fn post(content_type: &str, body: impl Into<Bytes>) -> Request<Full<Bytes>> {
    Request::post("/dracs")
        .header("host", "sim")
        .header(CONTENT_TYPE, content_type)
        .body(Full::new(body.into()))
        .unwrap()
}

fn get_req(uri: &str) -> Request<Full<Bytes>> {
    Request::get(uri)
        .header("host", "sim")
        .body(Full::new(Bytes::new()))
        .unwrap()
}

/// The text between `<...Header...>` and `</...Header>` in `xml`.
fn header_content(xml: &str) -> &str {
    let open = xml.find(":Header>").unwrap() + ":Header>".len();
    let close = xml.find("</SOAP-ENV:Header>").unwrap();
    &xml[open..close]
}

fn echo_request(id: &str, body: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<SOAP-ENV:Envelope
        xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"
        xmlns:xroad="http://x-road.eu/xsd/xroad.xsd"
        xmlns:id="http://x-road.eu/xsd/identifiers">
    <SOAP-ENV:Header>
        <xroad:client id:objectType="MEMBER">
            <id:xRoadInstance>SEVDEIR-TEST</id:xRoadInstance>
            <id:memberClass>GOV</id:memberClass>
            <id:memberCode>00000001</id:memberCode>
        </xroad:client>
        <xroad:service id:objectType="SERVICE">
            <id:xRoadInstance>SEVDEIR-TEST</id:xRoadInstance>
            <id:memberClass>GOV</id:memberClass>
            <id:memberCode>00000002</id:memberCode>
            <id:serviceCode>testQuery</id:serviceCode>
        </xroad:service>
        <xroad:userId>UA3188701231</xroad:userId>
        <xroad:id>{id}</xroad:id>
        <xroad:issue/>
        <xroad:protocolVersion>4.0</xroad:protocolVersion>
    </SOAP-ENV:Header>
    <SOAP-ENV:Body>{body}</SOAP-ENV:Body>
</SOAP-ENV:Envelope>
"#
    )
}

#[tokio::test]
async fn get_birth_record_echoes_header_and_answers_in_ukrainian() {
    let sim = start(0.0, Duration::ZERO).await;
    let mut c = connect(sim.addr).await;
    let r = send(&mut c, post("text/xml; charset=UTF-8", EXAMPLE)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.content_type, "text/xml; charset=UTF-8");
    // The header comes back byte for byte, inside the request's own Envelope start tag.
    assert_eq!(header_content(&r.body), header_content(EXAMPLE));
    let env_tag = &EXAMPLE[EXAMPLE.find("<SOAP-ENV:Envelope").unwrap()..];
    assert!(r.body.contains(&env_tag[..env_tag.find('>').unwrap() + 1]));
    for want in [
        "<dracs:getBirthRecordResponse xmlns:dracs=\"http://minjust.gov.ua/dracs/v1\">",
        "<actRecordNumber>№ 1234</actRecordNumber>",
        "<katottg>UA80000000000093317</katottg>",
        "<settlement>м. Київ</settlement>",
        "Шевченківський відділ державної реєстрації актів цивільного стану у місті Києві",
        "<status>",
        "</dracs:getBirthRecordResponse>",
    ] {
        assert!(r.body.contains(want), "missing {want} in {}", r.body);
    }
    assert!(r
        .body
        .chars()
        .any(|c| ('\u{0400}'..='\u{04FF}').contains(&c)));
    envelope::parse(&r.body).unwrap();
    // Deterministic: the same question gets the same record.
    let again = send(&mut c, post("text/xml; charset=UTF-8", EXAMPLE)).await;
    assert_eq!(again.body, r.body);
    assert_eq!(sim.stats.requests(), 2);
    assert_eq!(sim.stats.distinct_ids(), 1);
    let id = envelope::parse(EXAMPLE)
        .unwrap()
        .xroad_id()
        .unwrap()
        .to_string();
    assert!(sim.stats.saw_id(&id));
    sim.stop().await;
}

#[tokio::test]
async fn other_operations_are_echoed() {
    let sim = start(0.0, Duration::ZERO).await;
    let mut c = connect(sim.addr).await;
    let body = r#"<ns1:testQuery xmlns:ns1="http://test.x-road.eu"><a x="1">aä &amp; õ</a><![CDATA[<raw>]]><b/></ns1:testQuery>"#;
    let req = echo_request("echo-1", body);
    let r = send(&mut c, post("text/xml", req.clone())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(header_content(&r.body), header_content(&req));
    assert!(r.body.contains(
        r#"<ns1:testQueryResponse xmlns:ns1="http://test.x-road.eu"><a x="1">aä &amp; õ</a><![CDATA[<raw>]]><b/></ns1:testQueryResponse>"#
    ), "{}", r.body);

    // Text content and a prefix declared on the Envelope (the conformance getState query).
    let req = echo_request("echo-2", "<xroad:getState>aäõ</xroad:getState>");
    let r = send(&mut c, post("text/xml; charset=utf-8", req)).await;
    assert!(
        r.body
            .contains("<xroad:getStateResponse>aäõ</xroad:getStateResponse>"),
        "{}",
        r.body
    );

    // An empty wrapper in the default namespace.
    let req = echo_request("echo-3", r#"<test xmlns="urn:t"/>"#);
    let r = send(&mut c, post("text/xml", req)).await;
    assert!(
        r.body
            .contains(r#"<testResponse xmlns="urn:t"></testResponse>"#),
        "{}",
        r.body
    );
    sim.stop().await;
}

#[tokio::test]
async fn multipart_request_is_answered_with_its_attachments() {
    let sim = start(0.0, Duration::ZERO).await;
    let mut c = connect(sim.addr).await;
    let soap = echo_request(
        "mp-1",
        r#"<ns1:test xmlns:ns1="http://cosumer.ee.xroad.net">aä</ns1:test>"#,
    );
    let body = format!(
        "--jetty771207119h3h10dty\r\nContent-Type: text/xml; charset=\"utf-8\"\r\n\r\n{soap}\r\n\
         --jetty771207119h3h10dty\r\nContent-Type: application/pdf\r\ncontent-id: <att1>\r\nX-Folded: a\r\n b\r\n\r\n%PDF-1.4 довідка\r\n\
         --jetty771207119h3h10dty--\r\n"
    );
    let ct =
        r#"multipart/related; type="text/xml"; charset=UTF-8; boundary=jetty771207119h3h10dty"#;
    let r = send(&mut c, post(ct, body)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let reply_ct = ContentType::parse(&r.content_type).unwrap();
    assert_eq!(reply_ct.mime, "multipart/related");
    assert_eq!(reply_ct.param("type"), Some("text/xml"));
    let parts = mime::parse_multipart(
        &bytes::Bytes::from(r.body.clone()),
        reply_ct.param("boundary").unwrap(),
        64,
    )
    .unwrap();
    assert_eq!(parts.len(), 2);
    assert_eq!(
        parts[0].header("content-type"),
        Some("text/xml; charset=UTF-8")
    );
    assert_eq!(parts[0].header("content-transfer-encoding"), Some("8bit"));
    let xml = std::str::from_utf8(&parts[0].body).unwrap();
    assert_eq!(header_content(xml), header_content(&soap));
    assert!(xml.contains(
        r#"<ns1:testResponse xmlns:ns1="http://cosumer.ee.xroad.net">aä</ns1:testResponse>"#
    ));
    // The attachment comes back with its MIME headers exactly as sent.
    assert_eq!(
        &parts[1].raw_headers[..],
        &b"Content-Type: application/pdf\r\ncontent-id: <att1>\r\nX-Folded: a\r\n b"[..]
    );
    assert_eq!(&parts[1].body[..], "%PDF-1.4 довідка".as_bytes());

    // No boundary parameter, a part that never ends, a first part that is not SOAP.
    for (ct, body) in [
        ("multipart/related", soap.clone()),
        (ct, format!("--jetty771207119h3h10dty\r\n\r\n{soap}")),
        (
            ct,
            format!("--jetty771207119h3h10dty\r\nContent-Type: text/plain\r\n\r\n{soap}\r\n--jetty771207119h3h10dty--"),
        ),
    ] {
        let r = send(&mut c, post(ct, body)).await;
        assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(r.body.contains("<faultcode>SOAP-ENV:Client</faultcode>"));
    }
    assert!(sim.stats.saw_id("mp-1"));
    sim.stop().await;
}

#[tokio::test]
async fn mtom_request_gets_an_mtom_reply() {
    let sim = start(0.0, Duration::ZERO).await;
    let mut c = connect(sim.addr).await;
    let soap = echo_request(
        "mtom-1",
        r#"<ns1:test xmlns:ns1="urn:t"><xop:Include xmlns:xop="http://www.w3.org/2004/08/xop/include" href="cid:a1@example.org"/></ns1:test>"#,
    );
    let body = format!(
        "--b\r\nContent-Type: application/xop+xml; type=\"text/xml\"; charset=utf-8\r\nContent-ID: <foo>\r\n\r\n{soap}\r\n\
         --b\r\nContent-Type: text/plain\r\nContent-ID: <a1@example.org>\r\n\r\nfoobar\r\n--b--\r\n"
    );
    let ct = r#"multipart/related; type="application/xop+xml"; start="<foo>"; start-info="text/xml"; boundary=b"#;
    let r = send(&mut c, post(ct, body)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let reply_ct = ContentType::parse(&r.content_type).unwrap();
    assert_eq!(reply_ct.param("type"), Some("application/xop+xml"));
    assert_eq!(reply_ct.param("start"), Some("<foo>"));
    let parts = mime::parse_multipart(
        &bytes::Bytes::from(r.body.clone()),
        reply_ct.param("boundary").unwrap(),
        64,
    )
    .unwrap();
    assert_eq!(
        parts[0].header("content-type"),
        Some("application/xop+xml; charset=UTF-8; type=\"text/xml\"")
    );
    assert_eq!(parts[0].header("content-id"), Some("<foo>"));
    assert!(std::str::from_utf8(&parts[0].body)
        .unwrap()
        .contains("href=\"cid:a1@example.org\""));
    assert_eq!(&parts[1].body[..], b"foobar");
    sim.stop().await;
}

#[tokio::test]
async fn wsdl_is_served_and_paths_are_confined() {
    let sim = start(0.0, Duration::ZERO).await;
    let mut c = connect(sim.addr).await;
    let file = std::fs::read_to_string(format!("{WSDL_DIR}/dracs.wsdl")).unwrap();
    for uri in ["/wsdl/dracs.wsdl", "/dracs?wsdl", "/dracs?WSDL"] {
        let r = send(&mut c, get_req(uri)).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}");
        assert_eq!(r.content_type, "text/xml; charset=UTF-8");
        assert_eq!(r.body, file, "{uri}");
    }
    for uri in [
        "/wsdl/../Cargo.toml",
        "/wsdl/..%2FCargo.toml",
        "/wsdl/missing.wsdl",
        "/wsdl/",
        "/wsdl/.hidden.wsdl",
        "/?wsdl",
        "/dracs",
        "/a/b?wsdl",
    ] {
        let r = send(&mut c, get_req(uri)).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{uri}");
    }
    let r = send(
        &mut c,
        Request::delete("/")
            .header("host", "sim")
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(sim.stats.wsdl_requests(), 3);
    assert_eq!(sim.stats.requests(), 0);
    sim.stop().await;
}

#[tokio::test]
async fn malformed_requests_get_client_faults() {
    let sim = start(0.0, Duration::ZERO).await;
    let mut c = connect(sim.addr).await;
    let missing_wrapper = echo_request("x", "");
    let cases: Vec<(&str, String)> = vec![
        ("text/xml", "<SOAP-ENV:Envelope xmlns:SOAP-ENV=\"http://schemas.xmlsoap.org/soap/envelope/\"><SOAP-ENV:Body><a>".into()),
        ("text/xml", "just text".into()),
        ("text/xml", missing_wrapper),
        ("text/xml", echo_request("x", "<dracs:getBirthRecord xmlns:dracs=\"urn:d\"/>")),
        ("application/json", "{}".into()),
        ("text/xml; charset=koi8-u", EXAMPLE.into()),
    ];
    for (ct, body) in cases {
        let r = send(&mut c, post(ct, body.clone())).await;
        assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
        assert_eq!(r.content_type, "text/xml; charset=UTF-8");
        assert!(
            r.body.contains("<faultcode>SOAP-ENV:Client</faultcode>"),
            "{}",
            r.body
        );
        envelope::parse(&r.body).unwrap();
    }
    // Not UTF-8 although declared so.
    let r = send(&mut c, post("text/xml", Bytes::from_static(b"<a>\xff</a>"))).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    // The connection survived all of it.
    assert_eq!(sim.stats.requests(), 7);
    assert_eq!(sim.stats.faults(), 7);
    sim.stop().await;
}

#[tokio::test]
async fn iso_8859_1_request_is_answered_in_utf8() {
    let sim = start(0.0, Duration::ZERO).await;
    let mut c = connect(sim.addr).await;
    let utf8 = echo_request("latin", "<xroad:getState>aäõ</xroad:getState>")
        .replace("encoding=\"utf-8\"", "encoding=\"ISO-8859-1\"");
    let latin1: Vec<u8> = utf8
        .chars()
        .map(|ch| u8::try_from(u32::from(ch)).unwrap())
        .collect();
    // The charset is only in the XML declaration here.
    let r = send(&mut c, post("text/xml", latin1)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r
        .body
        .contains("<xroad:getStateResponse>aäõ</xroad:getStateResponse>"));
    assert!(r
        .body
        .starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
    sim.stop().await;
}

#[tokio::test]
async fn distinct_ids_are_counted_over_keep_alive() {
    let sim = start(0.0, Duration::ZERO).await;
    let mut c = connect(sim.addr).await;
    for id in ["id-a", "id-b", "id-a", "id-c", "id-b"] {
        let r = send(
            &mut c,
            post("text/xml", echo_request(id, "<t:test xmlns:t=\"urn:t\"/>")),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
    }
    // A second connection, concurrently with the first.
    let mut c2 = connect(sim.addr).await;
    let (a, b) = tokio::join!(
        send(
            &mut c,
            post(
                "text/xml",
                echo_request("id-d", "<t:test xmlns:t=\"urn:t\"/>")
            )
        ),
        send(
            &mut c2,
            post(
                "text/xml",
                echo_request("id-a", "<t:test xmlns:t=\"urn:t\"/>")
            )
        ),
    );
    assert_eq!((a.status, b.status), (StatusCode::OK, StatusCode::OK));
    assert_eq!(sim.stats.requests(), 7);
    assert_eq!(sim.stats.distinct_ids(), 4);
    assert!(sim.stats.saw_id("id-c") && !sim.stats.saw_id("id-e"));
    sim.stop().await;
}

#[tokio::test]
async fn simulated_faults_and_latency() {
    let sim = start(0.0, Duration::ZERO).await;
    let mut c = connect(sim.addr).await;
    let mut req = post("text/xml", EXAMPLE);
    req.headers_mut()
        .insert("x-sim-fault", HeaderValue::from_static("1"));
    let r = send(&mut c, req).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        r.body
            .contains("<faultcode>SOAP-ENV:Server.InternalError</faultcode>"),
        "{}",
        r.body
    );
    // The id still counts: the message reached the registry.
    assert_eq!(sim.stats.distinct_ids(), 1);
    sim.stop().await;

    let sim = start(1.0, Duration::from_millis(150)).await;
    let mut c = connect(sim.addr).await;
    let t = std::time::Instant::now();
    let r = send(&mut c, post("text/xml", EXAMPLE)).await;
    assert!(t.elapsed() >= Duration::from_millis(150));
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(r.body.contains("Server.InternalError"));
    sim.stop().await;
}

#[tokio::test]
async fn oversized_body_is_refused() {
    let sim = start(0.0, Duration::ZERO).await;
    // A raw socket: the refusal comes from Content-Length alone, before any body is sent.
    let mut s = TcpStream::connect(sim.addr).await.unwrap();
    let head = format!(
        "POST / HTTP/1.1\r\nHost: sim\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n",
        MAX_BODY + 1
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("SOAP-ENV:Client"));
    sim.stop().await;
}

#[test]
fn error_rate_edges_do_not_panic() {
    assert!(!roll(0.0) && !roll(-1.0) && !roll(f64::NAN));
    assert!(roll(1.0) && roll(7.0) && roll(f64::INFINITY));
}

#[test]
fn embedded_and_directory_wsdls() {
    let w = load_wsdls(&Unlisted, "../wsdl").unwrap();
    assert!(
        w.get("dracs.wsdl").is_some(),
        "{:?}",
        w.names().collect::<Vec<_>>()
    );
    let d = Wsdls::from_dir(Path::new(WSDL_DIR)).unwrap();
    assert_eq!(d.get("dracs.wsdl"), w.get("dracs.wsdl"));
    assert!(load_wsdls(Path::new("/nonexistent"), "wsdl").is_err());
    let mut w = Wsdls::default();
    assert!(!w.insert("../x.wsdl", "x") && !w.insert("x.txt", "x") && w.insert("x.xsd", "x"));
    assert_eq!(w.len(), 1);
}
