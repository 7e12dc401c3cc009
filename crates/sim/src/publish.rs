//! A test network's central server over HTTP: `GET /internalconf` (any `?version=`) answers a
//! directory signed at that moment by `brama_testkit::publish::Publisher`, and the files it
//! lists are served at their `Content-location` for as long as the last few directories name
//! them. `POST /_sim/globalconf/outage?ms=N` makes it answer 503 for N ms.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tokio::sync::watch;

use brama_testkit::publish::Publisher;
use brama_transport::listener::{self, ListenerLimits, ListenerStats};

use super::{plain, Body};

/// Directories whose files stay servable (a client fetches them right after the directory).
const KEPT: usize = 16;

struct State {
    publisher: Arc<Publisher>,
    files: Mutex<VecDeque<(String, Bytes)>>,
    outage: super::Outage,
}

/// Serves `publisher` on `listener` until `shutdown`.
pub async fn serve_globalconf(
    listener: TcpListener,
    publisher: Arc<Publisher>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let state = Arc::new(State {
        publisher,
        files: Mutex::default(),
        outage: super::Outage::default(),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let limits = ListenerLimits {
        max_connections: 256,
        max_headers: 100,
        header_read_timeout: Duration::from_secs(10),
        first_byte_timeout: Duration::from_secs(10),
        shutdown_grace: Duration::from_secs(1),
    };
    let handler = move |req, _conn| {
        let state = state.clone();
        async move { handle(req, &state) }
    };
    listener::serve(
        listener,
        None,
        limits,
        Arc::new(ListenerStats::default()),
        stop_rx,
        handler,
    )
    .await;
}

fn handle(req: Request<Incoming>, state: &State) -> Response<Body> {
    let path = req.uri().path().to_string();
    if path == "/_sim/globalconf/outage" && req.method() == Method::POST {
        let Some(ms) = super::query_ms(&req) else {
            return plain(StatusCode::BAD_REQUEST, "use ?ms=N\n");
        };
        state.outage.start(ms);
        return plain(StatusCode::OK, "ok\n");
    }
    if req.method() != Method::GET {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "GET only\n");
    }
    if state.outage.active() {
        return plain(StatusCode::SERVICE_UNAVAILABLE, "central server outage\n");
    }
    if path == "/internalconf" {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let published = state.publisher.publish(now);
        let mut files = state.files.lock().unwrap_or_else(|p| p.into_inner());
        for f in published.files {
            files.push_back(f);
        }
        while files.len() > KEPT * 2 {
            files.pop_front();
        }
        return octets(published.directory);
    }
    let files = state.files.lock().unwrap_or_else(|p| p.into_inner());
    match files.iter().rev().find(|(p, _)| *p == path) {
        Some((_, b)) => octets(b.clone()),
        None => plain(StatusCode::NOT_FOUND, "not found\n"),
    }
}

fn octets(body: Bytes) -> Response<Body> {
    let mut resp = Response::new(super::full(body));
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    resp
}
