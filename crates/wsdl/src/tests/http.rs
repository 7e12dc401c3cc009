//! `HttpTransport` against a tiny HTTP server on 127.0.0.1: answers, faults, HTTP errors,
//! refused connections, timeouts, multipart answers, connection reuse.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

use super::fixture::codegen::{self, Ping, PingOp};
use super::header;
use crate::runtime::{ClientError, HttpTransport, Operation, SoapTransport};
use brama_xroad::message::soap::{SoapLimits, SoapMessage};

type Answer = fn(Bytes) -> (u16, &'static str, String);

struct Server {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
}

/// Serves every request with `answer(request body)`.
async fn server(answer: Answer) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let count = connections.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let svc = service_fn(move |req: hyper::Request<Incoming>| async move {
                    assert_eq!(req.method(), hyper::Method::POST);
                    assert_eq!(req.uri().path(), "/r");
                    assert_eq!(req.headers()["content-type"], "text/xml; charset=UTF-8");
                    let body = req.into_body().collect().await.unwrap().to_bytes();
                    if body.starts_with(b"slow") {
                        tokio::time::sleep(Duration::from_secs(5)).await;
                    }
                    let (status, ct, text) = answer(body);
                    Ok::<_, Infallible>(
                        hyper::Response::builder()
                            .status(status)
                            .header("content-type", ct)
                            .body(Full::new(Bytes::from(text)))
                            .unwrap(),
                    )
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    Server { addr, connections }
}

const PONG: &str =
    "<p:pingResponse xmlns:p=\"urn:brama:codegen:v1\"><code>OK</code><type>pong</type></p:pingResponse>";

/// Checks the request as brama's client proxy would, then answers `pingResponse`.
fn pong(body: Bytes) -> (u16, &'static str, String) {
    let m = SoapMessage::parse(body, None, &SoapLimits::default()).unwrap();
    m.validate_request().unwrap();
    (
        200,
        "text/xml;charset=utf-8",
        super::response_envelope::<PingOp>(PONG),
    )
}

fn url(s: &Server) -> String {
    format!("http://{}/r", s.addr)
}

#[tokio::test]
async fn typed_call_reuses_its_connection() {
    let s = server(pong).await;
    let t = HttpTransport::new(&url(&s)).unwrap();
    for _ in 0..3 {
        let r = codegen::ping(&t, &header::<PingOp>(), &Ping::default())
            .await
            .unwrap();
        assert_eq!(r.r#type, "pong");
    }
    assert_eq!(s.connections.load(Ordering::SeqCst), 1);
    // Usable as a trait object, and from spawned tasks.
    let t: Arc<dyn SoapTransport> = Arc::new(t);
    let task = tokio::spawn(async move {
        codegen::ping(t.as_ref(), &header::<PingOp>(), &Ping::default()).await
    });
    assert_eq!(task.await.unwrap().unwrap().code, "OK");
}

#[tokio::test]
async fn faults_and_http_errors() {
    let s = server(|_| {
        let f = brama_xroad::message::fault::fault_xml("Client.InvalidRequest", "bad", None, None);
        (500, "text/xml", f)
    })
    .await;
    let t = HttpTransport::new(&url(&s)).unwrap();
    let e = codegen::ping(&t, &header::<PingOp>(), &Ping::default())
        .await
        .unwrap_err();
    assert_eq!(e.fault_code(), Some("Client.InvalidRequest"));
    assert!(!e.retryable());

    let s = server(|_| (404, "text/html", "<h1>no such page</h1>".into())).await;
    let t = HttpTransport::new(&url(&s)).unwrap();
    let e = codegen::ping(&t, &header::<PingOp>(), &Ping::default())
        .await
        .unwrap_err();
    assert_eq!(
        e,
        ClientError::Http {
            status: 404,
            message: "<h1>no such page</h1>".into()
        }
    );
    assert!(!e.retryable());
    let s = server(|_| (502, "text/plain", "bad gateway".into())).await;
    let t = HttpTransport::new(&url(&s)).unwrap();
    let e = codegen::ping(&t, &header::<PingOp>(), &Ping::default())
        .await
        .unwrap_err();
    assert!(e.retryable(), "{e}");
}

#[tokio::test]
async fn multipart_answers_give_their_soap_part() {
    let s = server(|_| {
        let env = super::response_envelope::<PingOp>(PONG);
        (
            200,
            "multipart/related; type=\"text/xml\"; boundary=b1",
            format!("--b1\r\ncontent-type: text/xml\r\n\r\n{env}\r\n--b1\r\ncontent-type: application/octet-stream\r\n\r\nxyz\r\n--b1--\r\n"),
        )
    })
    .await;
    let t = HttpTransport::new(&url(&s)).unwrap();
    let r = codegen::ping(&t, &header::<PingOp>(), &Ping::default())
        .await
        .unwrap();
    assert_eq!(r.code, "OK");
}

#[tokio::test]
async fn refused_and_slow_servers_are_transport_errors() {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = free.local_addr().unwrap();
    drop(free);
    let t = HttpTransport::new(&format!("http://{addr}/r")).unwrap();
    let e = codegen::ping(&t, &header::<PingOp>(), &Ping::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ClientError::Transport(m) if m.contains("cannot connect")),
        "{e}"
    );
    assert!(e.retryable());

    let s = server(pong).await;
    let t = HttpTransport::new(&url(&s))
        .unwrap()
        .with_timeout(Duration::from_millis(200));
    let e = t.call(b"slow".to_vec()).await.unwrap_err();
    assert!(
        matches!(&e, ClientError::Transport(m) if m.contains("did not answer within 200ms")),
        "{e}"
    );

    for bad in ["https://x/", "not a url", "http:///x"] {
        assert!(
            matches!(HttpTransport::new(bad), Err(ClientError::Request(_))),
            "{bad}"
        );
    }
    assert_eq!(PingOp::NAME, "ping");
}
