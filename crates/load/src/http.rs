//! The generator's HTTP/1.1 client: the gateway's one pool of keep-alive connections, at most
//! `size` of them to one target.
//!
//! Requests borrow a connection for one exchange (HTTP/1.1 has no multiplexing), so the pool's
//! size bounds the requests on the wire; the rest wait for a connection, and that wait is part of
//! their latency, as it would be for an information system with the same pool.

use std::time::Duration;

use brama_transport::body::Body;
use brama_transport::{Destination, Pool, TransportError};
use bytes::Bytes;
use tokio::sync::Semaphore;

use super::classify::Outcome;
use super::tls::TlsSettings;
use super::LoadError;

/// Largest answer read; a bigger one counts as an `io` failure.
const MAX_RESPONSE: usize = 64 * 1024 * 1024;
/// An idle connection older than this is not reused. (The driver bounds each request's time
/// itself, so the pool adds no timer of its own.)
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where requests go: scheme, address, `Host`, the URL's path prefix.
pub struct Target {
    pub url: String,
    dest: Destination,
    pub host: http::HeaderValue,
    /// The URL's path without a trailing `/`: `""` for `http://host:8080/`.
    pub base_path: String,
}

impl Target {
    /// Parses `http://` or `https://` URLs and checks the host resolves.
    pub async fn new(url: &str, tls: &TlsSettings) -> Result<Target, LoadError> {
        let bad = |why: &str| LoadError::Target(format!("--url '{url}': {why}"));
        let uri: http::Uri = url.parse().map_err(|e| bad(&format!("{e}")))?;
        let config = match uri.scheme_str() {
            Some("https") => Some(tls.client_config()?),
            _ => None,
        };
        let (dest, _) = Destination::for_url(url, config).map_err(|e| bad(&e))?;
        let resolved = tokio::net::lookup_host(dest.key.as_str())
            .await
            .map_err(|e| bad(&format!("cannot resolve {}: {e}", dest.key)))?;
        if resolved.count() == 0 {
            return Err(bad(&format!("{} has no address", dest.key)));
        }
        let authority = uri.authority().map_or(dest.key.as_str(), |a| a.as_str());
        Ok(Target {
            url: url.to_string(),
            host: http::HeaderValue::from_str(authority).map_err(|e| bad(&format!("{e}")))?,
            base_path: uri.path().trim_end_matches('/').to_string(),
            dest,
        })
    }
}

/// One answer, read whole.
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

/// A pool of at most `size` keep-alive connections, opened on demand.
pub struct Client {
    pub target: Target,
    pool: Pool,
    permits: Semaphore,
}

impl Client {
    pub fn new(target: Target, size: usize) -> Client {
        Client {
            target,
            pool: Pool::new(size.max(1), IDLE_TIMEOUT, CONNECT_TIMEOUT),
            permits: Semaphore::new(size.max(1)),
        }
    }

    /// One exchange on a pooled connection (a new one when none is idle or the idle one was
    /// closed by the server). Failures are outcomes, not errors: they are what a run measures.
    pub async fn send(&self, req: http::Request<Body>) -> Result<Reply, Outcome> {
        let _permit = self.permits.acquire().await.map_err(|_| Outcome::Io)?;
        let (parts, body) = self
            .pool
            .exchange_untimed(&self.target.dest, req, MAX_RESPONSE)
            .await
            .map_err(|e| match e {
                TransportError::Connect(..) | TransportError::Tls(..) => Outcome::Connect,
                TransportError::Timeout(..) => Outcome::Timeout,
                TransportError::Http(..) | TransportError::TooLarge(..) => Outcome::Io,
            })?;
        Ok(Reply {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        })
    }

    /// Builds a request to `path_and_query` on the target with its `Host`.
    pub fn request(
        &self,
        method: http::Method,
        path_and_query: &http::uri::PathAndQuery,
        headers: &http::HeaderMap,
        body: Bytes,
    ) -> http::Request<Body> {
        let mut req = http::Request::new(brama_transport::body::full(body));
        *req.method_mut() = method;
        *req.uri_mut() = http::Uri::from(path_and_query.clone());
        let h = req.headers_mut();
        h.reserve(headers.len() + 1);
        h.insert(http::header::HOST, self.target.host.clone());
        for (k, v) in headers {
            h.append(k, v.clone());
        }
        req
    }
}
