//! The OCSP port (X-Road's 5577, plain HTTP): `GET /?cert=<sha1 hex>&cert=…` (X-Road 7) or
//! `?cert_hash=<sha256 hex>` (X-Road 8) answers the server's own current responses as a
//! `multipart/related` body, one `application/ocsp-response` part per certificate, in the order
//! asked. `HEAD` is a heartbeat. Anything else, or a certificate without a response, is a 500
//! with the reason, as X-Road answers. Only public responses are served.

use std::sync::Arc;

use bytes::Bytes;

use crate::proxy::listener::Response;
use crate::proxy::Gateway;
use brama_sign::ocsp;
use brama_xroad::message::mime::{new_boundary, MultipartWriter};

/// Most certificates one request may ask about.
const MAX_CERTS: usize = 16;

fn text(status: u16, message: &str) -> Response {
    crate::proxy::wire::plain(status, message)
}

pub async fn handle(gw: Arc<Gateway>, req: http::Request<hyper::body::Incoming>) -> Response {
    match *req.method() {
        http::Method::HEAD => return text(200, ""),
        http::Method::GET => {}
        _ => return text(500, &format!("Invalid request method: {}", req.method())),
    }
    let own = gw.own_ocsp();
    let query = req.uri().query().unwrap_or_default();
    let (mut sha1s, mut sha256s) = (Vec::new(), Vec::new());
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        if sha1s.len() + sha256s.len() > 2 * MAX_CERTS {
            return text(500, "too many certificates asked about");
        }
        match pair.split_once('=') {
            Some(("cert", v)) => sha1s.push(v),
            Some(("cert_hash", v)) => sha256s.push(v),
            _ => {}
        }
    }
    // X-Road 8 sends both names for the same certificates; its responder reads `cert_hash`.
    let found = if !sha256s.is_empty() {
        lookup::<32>(&sha256s, |k| own.current_by_sha256(k))
    } else if !sha1s.is_empty() {
        lookup::<20>(&sha1s, |k| own.current(k))
    } else {
        Err("Could not get cert hashes".into())
    };
    let responses = match found {
        Ok(r) if r.len() <= MAX_CERTS => r,
        Ok(_) => return text(500, "too many certificates asked about"),
        Err(e) => return text(500, &e),
    };
    let mut w = MultipartWriter::new(
        new_boundary("xocsp"),
        responses.iter().map(|r| r.len() + 96).sum(),
    );
    for r in &responses {
        w.part(ocsp::CT_RESPONSE, r);
    }
    let ct = format!(
        "multipart/related; type=\"{}\"; boundary={}",
        ocsp::CT_RESPONSE,
        w.boundary()
    );
    crate::proxy::wire::ok(&ct, w.finish())
}

/// The current response for each hex hash, in order; the first one without a response fails.
fn lookup<const N: usize>(
    hashes: &[&str],
    find: impl Fn(&[u8; N]) -> Option<std::sync::Arc<crate::ocsp::own::Current>>,
) -> Result<Vec<Bytes>, String> {
    hashes
        .iter()
        .map(|h| {
            decode::<N>(h)
                .and_then(|k| find(&k))
                .map(|c| c.der.clone())
                .ok_or_else(|| format!("Could not find OCSP response for certificate {h}"))
        })
        .collect()
}

/// `N` bytes from hex, or nothing.
fn decode<const N: usize>(hex_text: &str) -> Option<[u8; N]> {
    let bytes = hex::decode(hex_text).ok()?;
    bytes.try_into().ok()
}
