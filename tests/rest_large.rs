//! A large REST body (50 MB) through two brama security servers, both ways, streamed through
//! spools and into the message log (time-stamped): the servers' memory stays flat. A test binary
//! of its own, so no other test's allocations blur the peak-memory figure.

mod common;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::TokioIo;
use sha2::{Digest, Sha256};

const SIZE: usize = 50 * 1024 * 1024;
const CHUNK: usize = 256 * 1024;

/// Peak resident memory of this process (servers included), in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        * 1024
}

fn chunk(i: usize) -> Bytes {
    Bytes::from(
        (0..CHUNK)
            .map(|j| ((i * 31 + j) % 251) as u8)
            .collect::<Vec<u8>>(),
    )
}

#[tokio::test]
async fn fifty_megabytes_stream_through_with_flat_memory() {
    let p = common::rest::start_rest_pair(
        "",
        "[log]\nmessages_dir = \"messages\"\ntimestamp_interval_s = 1",
        "",
    )
    .await;
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
    let req = http::Request::post(format!("{}/echo/upload?raw=1", common::rest::PROVIDER))
        .header("host", "brama")
        .header("x-road-client", common::rest::DIIA)
        .header("content-type", "application/octet-stream")
        .body(StreamBody::new(stream))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200, "{:?}", resp.headers());
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

    // Both records were logged with the body, and are time-stamped.
    let log = p.ss1.gateway.message_log().unwrap();
    assert!(
        brama::message_log::timestamper::until_stamped(log, std::time::Duration::from_secs(60))
            .await
    );
    let files =
        common::logged_containers(&p.net.path().join("messages"), &p.net.path().join("logged"));
    assert_eq!(files.len(), 2);
    let gc = brama::globalconf::GlobalConf::load_dir(&p.net.path().join("globalconf")).unwrap();
    let trust = brama::sign::verify::TrustStore::from_globalconf(&gc);
    for f in files {
        let c = brama::sign::asic::read(&std::fs::read(&f).unwrap()).unwrap();
        assert_eq!(
            c.attachments.last().map(Vec::len),
            Some(SIZE),
            "{}",
            f.display()
        );
        let v = brama::sign::asic::verify_container(&c, &trust).unwrap();
        assert!(v.time_stamped_at.is_some());
    }
}
