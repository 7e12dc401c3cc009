//! A large REST body (50 MB) sent through a pair of servers and back, streamed: what the
//! large-body tests share.

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::TokioIo;
use sha2::{Digest, Sha256};

pub const SIZE: usize = 50 * 1024 * 1024;
pub const CHUNK: usize = 256 * 1024;

/// Peak resident memory of this process (servers included), in bytes.
pub fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        * 1024
}

pub fn chunk(i: usize) -> Bytes {
    Bytes::from(
        (0..CHUNK)
            .map(|j| ((i * 31 + j) % 251) as u8)
            .collect::<Vec<u8>>(),
    )
}

/// Sends [`SIZE`] bytes through `p` to the echo service and checks what comes back, and that
/// the process's peak memory grew by far less than the body; returns the exchange's X-Road id.
pub async fn echo_fifty_megabytes(p: &super::Pair) -> String {
    let before = peak_rss();
    let mut sent = Sha256::new();
    for i in 0..SIZE / CHUNK {
        sent.update(chunk(i));
    }
    let sent = sent.finalize();

    let tcp = tokio::net::TcpStream::connect(p.ss1.client_http.unwrap())
        .await
        .unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let stream = futures_util::stream::iter(
        (0..SIZE / CHUNK).map(|i| Ok::<_, std::io::Error>(Frame::data(chunk(i)))),
    );
    let req = http::Request::post(format!("{}/echo/upload?raw=1", super::rest::PROVIDER))
        .header("host", "brama")
        .header("x-road-client", super::rest::DIIA)
        .header("content-type", "application/octet-stream")
        .body(StreamBody::new(stream))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200, "{:?}", resp.headers());
    let query_id = resp.headers()["x-road-id"].to_str().unwrap().to_string();
    assert_eq!(resp.headers()["content-type"], "application/octet-stream");
    let mut body = resp.into_body();
    let mut got = Sha256::new();
    let mut len = 0;
    while let Some(f) = body.frame().await {
        if let Ok(d) = f.unwrap().into_data() {
            len += d.len();
            got.update(&d);
        }
    }
    assert_eq!(len, SIZE);
    assert_eq!(got.finalize(), sent, "the body came back unchanged");
    let growth = peak_rss().saturating_sub(before);
    // Four spools (request and response on each server) hold at most 1 MiB each in memory;
    // a server that buffered the body would grow by 50 MB per copy.
    assert!(
        growth < 40 * 1024 * 1024,
        "peak memory grew by {} MiB for a {} MiB body",
        growth >> 20,
        SIZE >> 20
    );
    eprintln!("peak memory growth: {} MiB", growth >> 20);
    query_id
}
