//! Peer security servers' OCSP (reference §3.1): before a request goes to a provider server,
//! the certificates it presented in the TLS handshake must have good, fresh responses. They
//! come from the peer's OCSP port (`GET /?cert=<sha1>&cert_hash=<sha256>…`, both names, as
//! X-Road 8 asks so that 7.x peers understand too), are checked under X-Road's rules, and are
//! trusted until they stop being fresh or one fetch interval has passed, whichever is first:
//! a revoked certificate is refused within one interval.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use rustls_pki_types::CertificateDer;

use super::{now, sha1, sha256};
use crate::proxy::Trusted;
use brama_sign::ocsp;
use brama_transport::live::Live;
use brama_transport::{Destination, PeerCheck, Pool};
use brama_xroad::message::mime;

/// Most OCSP parts a peer's answer may have (a chain is a few certificates).
const MAX_PARTS: usize = 16;

/// What was established about one peer chain.
#[derive(Clone, Debug)]
struct Known {
    /// Unix seconds until which the chain is taken as good without asking again.
    until: i64,
}

pub struct PeerOcsp {
    trusted: Live<Trusted>,
    metrics: Arc<brama_transport::metrics::Metrics>,
    pool: Arc<Pool>,
    port: u16,
    timeout: Duration,
    interval: i64,
    known: Mutex<HashMap<[u8; 32], Known>>,
    /// One fetch at a time: a burst of requests to a new peer asks it once.
    fetching: tokio::sync::Mutex<()>,
}

/// Enough peers for any instance; beyond it the cache starts over.
const MAX_KNOWN: usize = 4096;

impl PeerOcsp {
    pub fn new(
        trusted: Live<Trusted>,
        metrics: Arc<brama_transport::metrics::Metrics>,
        pool: Arc<Pool>,
        section: &crate::config::file::OcspSection,
    ) -> PeerOcsp {
        PeerOcsp {
            trusted,
            metrics,
            pool,
            port: section.peer_port,
            timeout: Duration::from_millis(section.fetch_timeout_ms.max(1)),
            interval: section.fetch_interval_s.max(1) as i64,
            known: Mutex::default(),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    fn cached(&self, key: &[u8; 32], now: i64) -> Option<Known> {
        self.known
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned()
            .filter(|k| now <= k.until)
    }

    /// Checks `chain` of the peer at `peer` (`host:port` of its server proxy); until when the
    /// verdict holds.
    async fn check_chain(
        &self,
        peer: &str,
        chain: &[CertificateDer<'static>],
    ) -> Result<i64, String> {
        let mut h = ring::digest::Context::new(&ring::digest::SHA256);
        for c in chain {
            h.update(c);
        }
        let mut key = [0u8; 32];
        key.copy_from_slice(h.finish().as_ref());
        let now = now();
        if let Some(k) = self.cached(&key, now) {
            return Ok(k.until);
        }
        let _one = self.fetching.lock().await;
        if let Some(k) = self.cached(&key, now) {
            return Ok(k.until);
        }
        let ders: Vec<&[u8]> = chain.iter().map(|c| c.as_ref()).collect();
        let trusted = self.trusted.current();
        let trust = &trusted.verifier.trust;
        // A chain whose CA names no responder needs none.
        let responses = match trust.auth_chain_status(&ders, &[] as &[Bytes], now) {
            Ok(None) => Vec::new(),
            _ => self.fetch(peer, &ders).await?,
        };
        let until = trust
            .auth_chain_status(&ders, &responses, now)
            .map_err(|e| {
                self.metrics.security_event("peer_ocsp_refused");
                tracing::warn!(peer, code = %e.code_string(), reason = %e.message, "peer security server refused: OCSP");
                format!("{}: {}", e.code_string(), e.message)
            })?;
        let until = until.map_or(now + self.interval, |u| u.min(now + self.interval));
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        if known.len() >= MAX_KNOWN {
            known.clear();
        }
        known.insert(key, Known { until });
        Ok(until)
    }

    /// The peer's responses for `chain` from its OCSP port.
    async fn fetch(&self, peer: &str, chain: &[&[u8]]) -> Result<Vec<Bytes>, String> {
        let host = peer
            .rsplit_once(':')
            .map_or(peer, |(h, _)| h)
            .trim_matches(['[', ']']);
        let host = match host.contains(':') {
            true => format!("[{host}]"),
            false => host.to_string(),
        };
        let mut query = String::new();
        for c in chain {
            query.push_str(&format!("cert={}&", hex::encode(sha1(c))));
            query.push_str(&format!("cert_hash={}&", hex::encode(sha256(c))));
        }
        query.pop();
        let url = format!("http://{host}:{}/?{query}", self.port);
        let (dest, path): (Destination, String) = Destination::for_url(&url, None)?;
        let req = http::Request::get(path)
            .header(http::header::HOST, dest.key.as_str())
            .header(http::header::ACCEPT, "multipart/related")
            .body(brama_transport::body::empty())
            .map_err(|e| e.to_string())?;
        let max = MAX_PARTS * (ocsp::MAX_RESPONSE_BYTES + 512);
        let (parts, body) = self
            .pool
            .exchange(&dest, req, self.timeout, max)
            .await
            .map_err(|e| format!("OCSP responses from {}: {e}", dest.key))?;
        if parts.status != http::StatusCode::OK {
            return Err(format!(
                "OCSP responses from {}: HTTP {}",
                dest.key, parts.status
            ));
        }
        let ct = parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        read_answer(ct, body).map_err(|e| format!("OCSP responses from {}: {e}", dest.key))
    }
}

/// The `application/ocsp-response` parts of a `multipart/related` answer.
pub fn read_answer(content_type: &str, body: Bytes) -> Result<Vec<Bytes>, String> {
    let ct = mime::ContentType::parse(content_type).map_err(|e| e.message)?;
    if ct.mime != "multipart/related" {
        return Err(format!(
            "Content-Type '{content_type}' is not multipart/related"
        ));
    }
    let boundary = ct
        .param("boundary")
        .ok_or("no multipart boundary")?
        .to_string();
    let parts = mime::parse_multipart(&body, &boundary, MAX_PARTS).map_err(|e| e.message)?;
    let mut out = Vec::new();
    for p in parts {
        let is_ocsp = p.content_type().is_ok_and(|t| t.mime == ocsp::CT_RESPONSE);
        if is_ocsp && p.body.len() <= ocsp::MAX_RESPONSE_BYTES {
            out.push(p.body);
        }
    }
    Ok(out)
}

impl PeerCheck for PeerOcsp {
    fn check<'a>(
        &'a self,
        peer: &'a str,
        chain: &'a [CertificateDer<'static>],
    ) -> Pin<Box<dyn std::future::Future<Output = Result<i64, String>> + Send + 'a>> {
        Box::pin(self.check_chain(peer, chain))
    }
}
