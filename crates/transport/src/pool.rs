//! Keep-alive HTTP/1.1 connections, pooled per destination: provider security servers (mutual TLS)
//! and services (HTTP or HTTPS).
//!
//! A connection is checked out for one exchange and returned once the response body has been read
//! to its end: by the pool itself ([`Pool::exchange`]), or by the caller for a streamed response
//! ([`Pool::send`], whose body hands the connection back when it ends).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::body::Body;

/// Where to connect and how.
#[derive(Clone)]
pub struct Destination {
    /// Pool key; also used in messages (`host:port`).
    pub key: String,
    pub tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
    /// Checked before every request on a TLS connection, new or pooled: what the handshake
    /// cannot check (a peer security server's OCSP status, which changes while connections live).
    pub peer_check: Option<Arc<dyn PeerCheck>>,
}

/// A check of the certificates a TLS peer presented (leaf first), made before each request.
/// A refusal fails the request as a TLS failure (`SslAuthenticationFailed`). A pass says until
/// when it holds (Unix seconds): the connection is not checked again before then.
pub trait PeerCheck: Send + Sync {
    fn check<'a>(
        &'a self,
        peer: &'a str,
        chain: &'a [CertificateDer<'static>],
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<i64, String>> + Send + 'a>>;
}

/// The certificates a TLS peer presented, kept with its connection.
type PeerChain = Arc<[CertificateDer<'static>]>;

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot connect to {0}: {1}")]
    Connect(String, String),
    #[error("TLS handshake with {0} failed: {1}")]
    Tls(String, String),
    #[error("HTTP exchange with {0} failed: {1}")]
    Http(String, String),
    #[error("{0} did not answer within {1:?}")]
    Timeout(String, Duration),
    #[error("response from {0} is larger than {1} bytes")]
    TooLarge(String, usize),
}

impl Destination {
    /// Where an `http://` or `https://` URL points (HTTPS with `tls`, the server's certificate
    /// checked for the URL's host), and the URL's path with its query. For the command line,
    /// the load generator and the generated clients: the gateway's own destinations come from
    /// its configuration.
    pub fn for_url(
        url: &str,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Result<(Destination, String), String> {
        let uri: http::Uri = url
            .parse()
            .map_err(|e| format!("'{url}' is not a URL: {e}"))?;
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => {
                return Err(format!(
                    "'{url}': only http:// and https:// URLs are supported"
                ))
            }
        };
        let host = uri.host().ok_or_else(|| format!("'{url}' has no host"))?;
        let key = format!(
            "{host}:{}",
            uri.port_u16().unwrap_or(if https { 443 } else { 80 })
        );
        let tls = match (https, tls) {
            (false, _) => None,
            (true, None) => return Err(format!("'{url}': no TLS settings for https://")),
            (true, Some(config)) => {
                let name = ServerName::try_from(host.trim_matches(['[', ']']).to_string())
                    .map_err(|e| format!("'{host}': {e}"))?;
                Some((config, name))
            }
        };
        let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
        Ok((
            Destination {
                key,
                tls,
                peer_check: None,
            },
            path,
        ))
    }

    /// Connections are shared only between requests with the same address *and* the same TLS
    /// trust: a connection verified against one CA must not serve a service trusting another.
    fn pool_key(&self) -> std::borrow::Cow<'_, str> {
        match &self.tls {
            None => std::borrow::Cow::Borrowed(&self.key),
            Some((config, _)) => format!("{}#{:p}", self.key, Arc::as_ptr(config)).into(),
        }
    }
}

impl TransportError {
    /// The TLS peer was refused (certificate not registered or not trusted).
    pub(crate) fn is_tls(&self) -> bool {
        matches!(self, TransportError::Tls(..))
    }
}

/// A peer security server that refused our TLS is `SslAuthenticationFailed`; anything else
/// between the servers is `NetworkError`.
impl brama_xroad::error::ToFault for TransportError {
    fn to_fault(&self, at: brama_xroad::error::Prefix) -> brama_xroad::error::Fault {
        let code = if self.is_tls() {
            brama_xroad::error::ErrorCode::SslAuthenticationFailed
        } else {
            brama_xroad::error::ErrorCode::NetworkError
        };
        at.fault(code, self.to_string())
    }
}

/// A connection: hyper's handle, and what its TLS peer presented.
struct Conn {
    sender: SendRequest<Body>,
    peer: Option<PeerChain>,
    /// Until when its peer check holds (Unix seconds).
    checked_until: i64,
}

struct Idle {
    conn: Conn,
    since: Instant,
}

type IdleMap = Arc<Mutex<HashMap<String, Vec<Idle>>>>;

/// Pool of idle connections.
pub struct Pool {
    idle: IdleMap,
    max_idle_per_destination: usize,
    idle_timeout: Duration,
    connect_timeout: Duration,
    /// Connections opened so far (`/metrics`): a steady rise under steady load means
    /// connections are not being reused.
    pub opened: std::sync::atomic::AtomicU64,
}

impl Pool {
    pub fn new(
        max_idle_per_destination: usize,
        idle_timeout: Duration,
        connect_timeout: Duration,
    ) -> Self {
        Pool {
            idle: Arc::new(Mutex::new(HashMap::new())),
            max_idle_per_destination,
            idle_timeout,
            connect_timeout,
            opened: Default::default(),
        }
    }

    fn checkout(&self, key: &str) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let list = idle.get_mut(key)?;
        while let Some(c) = list.pop() {
            let s = &c.conn.sender;
            if !s.is_closed() && s.is_ready() && c.since.elapsed() < self.idle_timeout {
                return Some(c.conn);
            }
        }
        None
    }

    fn checkin(&self, key: &str, conn: Conn) {
        checkin(&self.idle, self.max_idle_per_destination, key, conn);
    }

    /// A new connection, its peer checked.
    async fn connect(&self, dest: &Destination) -> Result<Conn, TransportError> {
        let mut conn = self.open(dest).await?;
        check_peer(dest, &mut conn).await?;
        Ok(conn)
    }

    async fn open(&self, dest: &Destination) -> Result<Conn, TransportError> {
        self.opened
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tcp = tokio::time::timeout(self.connect_timeout, TcpStream::connect(&dest.key))
            .await
            .map_err(|_| TransportError::Timeout(dest.key.clone(), self.connect_timeout))?
            .map_err(|e| TransportError::Connect(dest.key.clone(), e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        match &dest.tls {
            None => Ok(Conn {
                sender: handshake(TokioIo::new(tcp), &dest.key).await?,
                peer: None,
                checked_until: 0,
            }),
            Some((config, name)) => {
                let tls = tokio::time::timeout(
                    self.connect_timeout,
                    TlsConnector::from(config.clone()).connect(name.clone(), tcp),
                )
                .await
                .map_err(|_| TransportError::Timeout(dest.key.clone(), self.connect_timeout))?
                .map_err(|e| TransportError::Tls(dest.key.clone(), e.to_string()))?;
                let peer = tls.get_ref().1.peer_certificates().map(|chain| {
                    chain
                        .iter()
                        .map(|c| c.clone().into_owned())
                        .collect::<Vec<_>>()
                        .into()
                });
                Ok(Conn {
                    sender: handshake(TokioIo::new(tls), &dest.key).await?,
                    peer,
                    checked_until: 0,
                })
            }
        }
    }

    /// Sends `req` and waits for the response head; the body is left to the caller, and the
    /// connection goes back to the pool when that body has been read to its end.
    async fn send_request(
        &self,
        dest: &Destination,
        req: http::Request<Body>,
    ) -> Result<(http::Response<Incoming>, Conn), TransportError> {
        let pool_key = dest.pool_key();
        let (mut conn, pooled) = match self.checkout(&pool_key) {
            Some(mut c) => {
                check_peer(dest, &mut c).await?;
                (c, true)
            }
            None => (self.connect(dest).await?, false),
        };
        let http_err = |e: hyper::Error| TransportError::Http(dest.key.clone(), e.to_string());
        let resp = match conn.sender.try_send_request(req).await {
            Ok(r) => r,
            // A pooled connection the peer had already closed: the request was never sent,
            // so it goes out once more on a fresh connection (a service is never called twice).
            Err(mut e) => match (pooled, e.take_message()) {
                (true, Some(req)) => {
                    conn = self.connect(dest).await?;
                    conn.sender.send_request(req).await.map_err(http_err)?
                }
                _ => return Err(http_err(e.into_error())),
            },
        };
        Ok((resp, conn))
    }

    /// Sends `req` and returns the response head within `timeout`, its body streaming. The
    /// connection is reused once the body has been read to its end.
    pub async fn send(
        &self,
        dest: &Destination,
        req: http::Request<Body>,
        timeout: Duration,
    ) -> Result<http::Response<PooledBody>, TransportError> {
        let (resp, conn) = tokio::time::timeout(timeout, self.send_request(dest, req))
            .await
            .map_err(|_| TransportError::Timeout(dest.key.clone(), timeout))??;
        let (parts, body) = resp.into_parts();
        Ok(http::Response::from_parts(
            parts,
            PooledBody {
                inner: body,
                home: Some((
                    self.idle.clone(),
                    self.max_idle_per_destination,
                    dest.pool_key().into_owned(),
                    conn,
                )),
            },
        ))
    }

    /// Sends `req` and reads the whole response (at most `max_body` bytes) within `timeout`.
    pub async fn exchange(
        &self,
        dest: &Destination,
        req: http::Request<Body>,
        timeout: Duration,
        max_body: usize,
    ) -> Result<(http::response::Parts, Bytes), TransportError> {
        tokio::time::timeout(timeout, self.exchange_untimed(dest, req, max_body))
            .await
            .map_err(|_| TransportError::Timeout(dest.key.clone(), timeout))?
    }

    /// One POST to a plain-HTTP service of the PKI (an OCSP responder, a TSA): the answer's body
    /// when it is HTTP 200 with a `Content-Type` starting with `expect`, at most `max` bytes,
    /// within `timeout`. A redirect is not followed.
    pub async fn post_for(
        &self,
        url: &str,
        content_type: &str,
        expect: &str,
        body: Bytes,
        timeout: Duration,
        max: usize,
    ) -> Result<Bytes, String> {
        let (dest, path) = Destination::for_url(url, None)?;
        let req = http::Request::post(path)
            .header(http::header::HOST, dest.key.as_str())
            .header(http::header::CONTENT_TYPE, content_type)
            .header(http::header::ACCEPT, expect)
            .body(crate::body::full(body))
            .map_err(|e| e.to_string())?;
        let (parts, body) = self
            .exchange(&dest, req, timeout, max)
            .await
            .map_err(|e| e.to_string())?;
        if parts.status != http::StatusCode::OK {
            return Err(format!("answered HTTP {}", parts.status));
        }
        let ct = parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !ct.trim().to_ascii_lowercase().starts_with(expect) {
            return Err(format!("answered Content-Type '{ct}', not {expect}"));
        }
        Ok(body)
    }

    /// [`Pool::exchange`] without a time limit of its own, for a caller that bounds the whole
    /// operation itself (the load generator, where a timer per request is measurable).
    pub async fn exchange_untimed(
        &self,
        dest: &Destination,
        req: http::Request<Body>,
        max_body: usize,
    ) -> Result<(http::response::Parts, Bytes), TransportError> {
        let pool_key = dest.pool_key();
        let (resp, conn) = self.send_request(dest, req).await?;
        let (parts, body) = resp.into_parts();
        let body = Limited::new(body, max_body).collect().await.map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                TransportError::TooLarge(dest.key.clone(), max_body)
            } else {
                TransportError::Http(dest.key.clone(), e.to_string())
            }
        })?;
        self.checkin(&pool_key, conn);
        Ok((parts, body.to_bytes()))
    }
}

async fn handshake<T>(io: TokioIo<T>, key: &str) -> Result<SendRequest<Body>, TransportError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = http1::handshake(io)
        .await
        .map_err(|e| TransportError::Http(key.to_string(), e.to_string()))?;
    tokio::spawn(async move {
        // Ends when the peer closes or the sender is dropped.
        let _ = conn.await;
    });
    Ok(sender)
}

/// The destination's peer check on a TLS connection, unless the last one still holds.
async fn check_peer(dest: &Destination, conn: &mut Conn) -> Result<(), TransportError> {
    match (&dest.peer_check, &conn.peer) {
        (Some(_), Some(_)) if unix_now() <= conn.checked_until => Ok(()),
        (Some(check), Some(chain)) => {
            conn.checked_until = check
                .check(&dest.key, chain)
                .await
                .map_err(|e| TransportError::Tls(dest.key.clone(), e))?;
            Ok(())
        }
        (Some(_), None) if dest.tls.is_some() => Err(TransportError::Tls(
            dest.key.clone(),
            "the peer presented no certificate".into(),
        )),
        _ => Ok(()),
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn checkin(idle: &IdleMap, max: usize, key: &str, conn: Conn) {
    if conn.sender.is_closed() {
        return;
    }
    let mut idle = idle.lock().unwrap_or_else(|p| p.into_inner());
    // The key is allocated only the first time a destination's connection comes back.
    let list = match idle.get_mut(key) {
        Some(list) => list,
        None => idle.entry(key.to_string()).or_default(),
    };
    if list.len() < max {
        list.push(Idle {
            conn,
            since: Instant::now(),
        });
    }
}

/// A response body read by the caller; at its end the connection returns to the pool (a body
/// dropped half-read takes its connection with it, as the rest of the response is unread).
pub struct PooledBody {
    inner: Incoming,
    home: Option<(IdleMap, usize, String, Conn)>,
}

impl hyper::body::Body for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        if let std::task::Poll::Ready(None) = polled {
            if let Some((idle, max, key, conn)) = self.home.take() {
                checkin(&idle, max, &key, conn);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
