//! The generator's HTTP/1.1 client: a fixed pool of keep-alive connections to one target.
//!
//! Requests borrow a connection for one exchange (HTTP/1.1 has no multiplexing), so the pool's
//! size bounds the requests on the wire; the rest wait for a connection, and that wait is part of
//! their latency, as it would be for an information system with the same pool.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use super::classify::Outcome;
use super::tls::TlsSettings;
use super::LoadError;

/// Largest answer read; a bigger one counts as an `io` failure.
const MAX_RESPONSE: usize = 64 * 1024 * 1024;

type Sender = SendRequest<Full<Bytes>>;

/// Where requests go: scheme, address, `Host`, the URL's path prefix.
pub struct Target {
    pub url: String,
    addrs: Vec<SocketAddr>,
    /// Index into `addrs` of the address that last connected (`localhost` may resolve to `::1`
    /// first while the server listens on 127.0.0.1 only).
    good: AtomicUsize,
    pub host: http::HeaderValue,
    /// The URL's path without a trailing `/`: `""` for `http://host:8080/`.
    pub base_path: String,
    tls: Option<(
        tokio_rustls::TlsConnector,
        rustls_pki_types::ServerName<'static>,
    )>,
}

impl Target {
    /// Parses `http://` or `https://` URLs and resolves the host once.
    pub async fn new(url: &str, tls: &TlsSettings) -> Result<Target, LoadError> {
        let bad = |why: &str| LoadError::Target(format!("--url '{url}': {why}"));
        let uri: http::Uri = url.parse().map_err(|e| bad(&format!("{e}")))?;
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => return Err(bad("only http:// and https:// URLs")),
        };
        let host = uri.host().ok_or_else(|| bad("no host"))?;
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((bare, port))
            .await
            .map_err(|e| bad(&format!("cannot resolve {host}: {e}")))?
            .collect();
        if addrs.is_empty() {
            return Err(bad(&format!("{host} has no address")));
        }
        let authority = uri.authority().map_or(host, |a| a.as_str());
        let tls = if https {
            let name = rustls_pki_types::ServerName::try_from(bare.to_string())
                .map_err(|e| bad(&format!("{e}")))?;
            Some((tls.connector()?, name))
        } else {
            None
        };
        Ok(Target {
            url: url.to_string(),
            addrs,
            good: AtomicUsize::new(0),
            host: http::HeaderValue::from_str(authority).map_err(|e| bad(&format!("{e}")))?,
            base_path: uri.path().trim_end_matches('/').to_string(),
            tls,
        })
    }

    /// A fresh HTTP/1.1 connection; its driver runs as a task of the current runtime.
    async fn connect(&self) -> Result<Sender, Outcome> {
        let first = self.good.load(Ordering::Relaxed);
        let mut tcp = None;
        for i in 0..self.addrs.len() {
            let at = (first + i) % self.addrs.len();
            if let Ok(s) = TcpStream::connect(self.addrs[at]).await {
                self.good.store(at, Ordering::Relaxed);
                tcp = Some(s);
                break;
            }
        }
        let tcp = tcp.ok_or(Outcome::Connect)?;
        // Requests are small and answered before the next is written: Nagle would only delay.
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            None => http1(tcp).await,
            Some((connector, name)) => {
                let tls = connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|_| Outcome::Connect)?;
                http1(tls).await
            }
        }
    }
}

/// An HTTP/1.1 connection over `io`, driven by its own task.
async fn http1<T>(io: T) -> Result<Sender, Outcome>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::Builder::new()
        .handshake(TokioIo::new(io))
        .await
        .map_err(|_| Outcome::Connect)?;
    tokio::spawn(conn);
    Ok(sender)
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
    /// Idle connections, most recently used last: hot ones are reused first, so the ones a
    /// server times out are the ones left at the bottom.
    idle: Mutex<Vec<Sender>>,
    permits: Semaphore,
}

impl Client {
    pub fn new(target: Target, size: usize) -> Client {
        Client {
            target,
            idle: Mutex::new(Vec::with_capacity(size)),
            permits: Semaphore::new(size.max(1)),
        }
    }

    fn pop_idle(&self) -> Option<Sender> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop()
    }

    /// One exchange on a pooled connection (a new one when none is idle or the idle one was
    /// closed by the server). Failures are outcomes, not errors: they are what a run measures.
    pub async fn send(&self, req: http::Request<Full<Bytes>>) -> Result<Reply, Outcome> {
        let _permit = self.permits.acquire().await.map_err(|_| Outcome::Io)?;
        let mut sender = loop {
            match self.pop_idle() {
                Some(mut s) => {
                    // A connection the server closed while idle is dropped, not counted.
                    if !s.is_closed() && s.ready().await.is_ok() {
                        break s;
                    }
                }
                None => {
                    let mut s = self.target.connect().await?;
                    s.ready().await.map_err(|_| Outcome::Connect)?;
                    break s;
                }
            }
        };
        let resp = sender.send_request(req).await.map_err(|_| Outcome::Io)?;
        let (parts, body) = resp.into_parts();
        let body = Limited::new(body, MAX_RESPONSE)
            .collect()
            .await
            .map_err(|_| Outcome::Io)?
            .to_bytes();
        if !sender.is_closed() {
            self.idle
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(sender);
        }
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
    ) -> http::Request<Full<Bytes>> {
        let mut req = http::Request::new(Full::new(body));
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
