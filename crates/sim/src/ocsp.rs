//! The test CA's OCSP responder over HTTP (RFC 6960 Appendix A): `POST /ocsp` with an
//! `application/ocsp-request` body, answered by `brama_testkit::ocsp::Responder`. Control for
//! tests and demos: `POST /_sim/ocsp/outage?ms=N` (503 for that long; 0 ends it) and
//! `POST /_sim/ocsp/revoke` with a PEM certificate in the body.

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use super::{plain, Body};
use brama_testkit::ocsp::Responder;

/// An OCSP request is a few hundred bytes.
const MAX_REQUEST: usize = 16 * 1024;

pub(crate) struct OcspSim {
    pub(crate) responder: std::sync::Arc<Responder>,
    outage: super::Outage,
}

impl OcspSim {
    pub(crate) fn new(responder: std::sync::Arc<Responder>) -> OcspSim {
        OcspSim {
            responder,
            outage: super::Outage::default(),
        }
    }

    pub(crate) async fn answer(&self, req: Request<Incoming>) -> Response<Body> {
        if req.method() != Method::POST {
            return plain(StatusCode::METHOD_NOT_ALLOWED, "POST an OCSP request\n");
        }
        if self.outage.active() {
            return plain(StatusCode::SERVICE_UNAVAILABLE, "OCSP responder outage\n");
        }
        let body = match Limited::new(req.into_body(), MAX_REQUEST).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => return plain(StatusCode::PAYLOAD_TOO_LARGE, "request too large\n"),
        };
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let der = self.responder.respond(&body, now);
        let mut resp = Response::new(super::full(Bytes::from(der)));
        resp.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/ocsp-response"),
        );
        resp
    }

    pub(crate) async fn control(&self, path: &str, req: Request<Incoming>) -> Response<Body> {
        if req.method() != Method::POST {
            return plain(StatusCode::METHOD_NOT_ALLOWED, "POST only\n");
        }
        match path {
            "outage" => {
                let Some(ms) = super::query_ms(&req) else {
                    return plain(StatusCode::BAD_REQUEST, "use ?ms=N\n");
                };
                self.outage.start(ms);
                tracing::info!(ms, "registry simulator: OCSP responder outage");
                plain(StatusCode::OK, "ok\n")
            }
            "revoke" => {
                let body = match Limited::new(req.into_body(), MAX_REQUEST).collect().await {
                    Ok(b) => b.to_bytes(),
                    Err(_) => return plain(StatusCode::PAYLOAD_TOO_LARGE, "too large\n"),
                };
                let der = match rustls_pemfile::certs(&mut body.as_ref()).next() {
                    Some(Ok(c)) => c.to_vec(),
                    _ => return plain(StatusCode::BAD_REQUEST, "send one PEM certificate\n"),
                };
                let now = time::OffsetDateTime::now_utc().unix_timestamp();
                match self.responder.revoke(&der, now) {
                    Ok(()) => plain(StatusCode::OK, "revoked\n"),
                    Err(e) => super::response(
                        StatusCode::BAD_REQUEST,
                        super::TEXT_PLAIN,
                        format!("{e}\n"),
                    ),
                }
            }
            _ => plain(StatusCode::NOT_FOUND, "not found\n"),
        }
    }
}
