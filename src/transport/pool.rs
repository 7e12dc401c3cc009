//! Keep-alive HTTP/1.1 connections, pooled per destination: provider security servers (mutual TLS)
//! and services (HTTP or HTTPS).
//!
//! A connection is checked out for one exchange and returned once the response body has been read
//! whole, which the proxies need anyway (a message is verified before anything is forwarded).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Where to connect and how.
#[derive(Clone)]
pub struct Destination {
    /// Pool key; also used in messages (`host:port`).
    pub key: String,
    pub tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
}

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
    /// Connections are shared only between requests with the same address *and* the same TLS
    /// trust: a connection verified against one CA must not serve a service trusting another.
    fn pool_key(&self) -> String {
        match &self.tls {
            None => self.key.clone(),
            Some((config, _)) => format!("{}#{:p}", self.key, Arc::as_ptr(config)),
        }
    }
}

impl TransportError {
    /// The TLS peer was refused (certificate not registered or not trusted).
    pub fn is_tls(&self) -> bool {
        matches!(self, TransportError::Tls(..))
    }
}

struct Idle {
    sender: SendRequest<Full<Bytes>>,
    since: Instant,
}

/// Pool of idle connections.
pub struct Pool {
    idle: Mutex<HashMap<String, Vec<Idle>>>,
    max_idle_per_destination: usize,
    idle_timeout: Duration,
    connect_timeout: Duration,
}

impl Pool {
    pub fn new(
        max_idle_per_destination: usize,
        idle_timeout: Duration,
        connect_timeout: Duration,
    ) -> Self {
        Pool {
            idle: Mutex::new(HashMap::new()),
            max_idle_per_destination,
            idle_timeout,
            connect_timeout,
        }
    }

    fn checkout(&self, key: &str) -> Option<SendRequest<Full<Bytes>>> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let list = idle.get_mut(key)?;
        while let Some(c) = list.pop() {
            if !c.sender.is_closed() && c.sender.is_ready() && c.since.elapsed() < self.idle_timeout
            {
                return Some(c.sender);
            }
        }
        None
    }

    fn checkin(&self, key: &str, sender: SendRequest<Full<Bytes>>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let list = idle.entry(key.to_string()).or_default();
        if list.len() < self.max_idle_per_destination {
            list.push(Idle {
                sender,
                since: Instant::now(),
            });
        }
    }

    async fn connect(
        &self,
        dest: &Destination,
    ) -> Result<SendRequest<Full<Bytes>>, TransportError> {
        let tcp = tokio::time::timeout(self.connect_timeout, TcpStream::connect(&dest.key))
            .await
            .map_err(|_| TransportError::Timeout(dest.key.clone(), self.connect_timeout))?
            .map_err(|e| TransportError::Connect(dest.key.clone(), e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        match &dest.tls {
            None => handshake(TokioIo::new(tcp), &dest.key).await,
            Some((config, name)) => {
                let tls = tokio::time::timeout(
                    self.connect_timeout,
                    TlsConnector::from(config.clone()).connect(name.clone(), tcp),
                )
                .await
                .map_err(|_| TransportError::Timeout(dest.key.clone(), self.connect_timeout))?
                .map_err(|e| TransportError::Tls(dest.key.clone(), e.to_string()))?;
                handshake(TokioIo::new(tls), &dest.key).await
            }
        }
    }

    /// Sends `req` and reads the whole response (at most `max_body` bytes) within `timeout`.
    pub async fn exchange(
        &self,
        dest: &Destination,
        req: http::Request<Full<Bytes>>,
        timeout: Duration,
        max_body: usize,
    ) -> Result<(http::response::Parts, Bytes), TransportError> {
        let work = async {
            let pool_key = dest.pool_key();
            let (mut sender, pooled) = match self.checkout(&pool_key) {
                Some(s) => (s, true),
                None => (self.connect(dest).await?, false),
            };
            let http_err = |e: hyper::Error| TransportError::Http(dest.key.clone(), e.to_string());
            let resp = match sender.try_send_request(req).await {
                Ok(r) => r,
                // A pooled connection the peer had already closed: the request was never sent,
                // so it goes out once more on a fresh connection (a service is never called twice).
                Err(mut e) => match (pooled, e.take_message()) {
                    (true, Some(req)) => {
                        sender = self.connect(dest).await?;
                        sender.send_request(req).await.map_err(http_err)?
                    }
                    _ => return Err(http_err(e.into_error())),
                },
            };
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
            self.checkin(&pool_key, sender);
            Ok((parts, body.to_bytes()))
        };
        tokio::time::timeout(timeout, work)
            .await
            .map_err(|_| TransportError::Timeout(dest.key.clone(), timeout))?
    }
}

async fn handshake<T>(io: TokioIo<T>, key: &str) -> Result<SendRequest<Full<Bytes>>, TransportError>
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
