//! A time-stamping authority over HTTP (RFC 3161 §3.4): `POST /tsa` with an
//! `application/timestamp-query` body, answered `application/timestamp-reply` by a
//! `brama_testkit::tsa::TimeStampAuthority` (the test TSA, or `openssl ts -reply` in the tests).
//! Control for tests and demos: `POST /_sim/tsa/outage?ms=N` (503 for that long; 0 ends it).

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use super::{plain, Body};
use brama_testkit::tsa::TimeStampAuthority;

/// A time-stamp request is about a hundred bytes.
const MAX_REQUEST: usize = 16 * 1024;

pub(crate) struct TsaSim {
    tsa: Arc<dyn TimeStampAuthority>,
    outage: super::Outage,
}

impl TsaSim {
    pub(crate) fn new(tsa: Arc<dyn TimeStampAuthority>) -> TsaSim {
        TsaSim {
            tsa,
            outage: super::Outage::default(),
        }
    }

    pub(crate) async fn answer(&self, req: Request<Incoming>) -> Response<Body> {
        if req.method() != Method::POST {
            return plain(
                StatusCode::METHOD_NOT_ALLOWED,
                "POST a time-stamp request\n",
            );
        }
        if self.outage.active() {
            return plain(StatusCode::SERVICE_UNAVAILABLE, "TSA outage\n");
        }
        let body = match Limited::new(req.into_body(), MAX_REQUEST).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => return plain(StatusCode::PAYLOAD_TOO_LARGE, "request too large\n"),
        };
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let tsa = self.tsa.clone();
        // An external TSA (openssl) blocks.
        let reply = tokio::task::spawn_blocking(move || tsa.reply(&body, now)).await;
        match reply {
            Ok(Ok(der)) => {
                let mut resp = Response::new(super::full(Bytes::from(der)));
                resp.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/timestamp-reply"),
                );
                resp
            }
            Ok(Err(e)) => super::response(
                StatusCode::INTERNAL_SERVER_ERROR,
                super::TEXT_PLAIN,
                format!("{e}\n"),
            ),
            Err(_) => plain(StatusCode::INTERNAL_SERVER_ERROR, "TSA failed\n"),
        }
    }

    pub(crate) fn control(&self, path: &str, req: &Request<Incoming>) -> Response<Body> {
        if req.method() != Method::POST || path != "outage" {
            return plain(StatusCode::NOT_FOUND, "POST /_sim/tsa/outage?ms=N\n");
        }
        let Some(ms) = super::query_ms(req) else {
            return plain(StatusCode::BAD_REQUEST, "use ?ms=N\n");
        };
        self.outage.start(ms);
        tracing::info!(ms, "registry simulator: TSA outage");
        plain(StatusCode::OK, "ok\n")
    }
}
