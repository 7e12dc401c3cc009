//! Plain HTTP to a security server's client listener (or straight to a service), with a few
//! kept-alive connections reused.

use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;

use super::{BoxFuture, ClientError, SoapTransport};
use brama_xroad::message::mime::{self, ContentType};

/// Largest response body read.
const MAX_RESPONSE: usize = 64 * 1024 * 1024;
/// Idle connections kept for reuse.
const MAX_IDLE: usize = 16;

type Sender = SendRequest<Full<Bytes>>;

/// POSTs envelopes as `text/xml` to one `http://` URL.
pub struct HttpTransport {
    url: String,
    /// `host:port` to connect to, also sent as `Host`.
    authority: String,
    path: String,
    timeout: Duration,
    connect_timeout: Duration,
    idle: Mutex<Vec<Sender>>,
}

impl HttpTransport {
    /// A transport to `url` (`http://host[:port][/path]`): 60 s per call, 10 s to connect.
    pub fn new(url: &str) -> Result<Self, ClientError> {
        let uri: http::Uri = url
            .parse()
            .map_err(|e| ClientError::Request(format!("'{url}' is not a URL: {e}")))?;
        if uri.scheme_str() != Some("http") {
            return Err(ClientError::Request(format!(
                "'{url}': only http:// URLs are supported"
            )));
        }
        let host = uri
            .host()
            .ok_or_else(|| ClientError::Request(format!("'{url}' has no host")))?;
        Ok(HttpTransport {
            url: url.to_string(),
            authority: format!("{host}:{}", uri.port_u16().unwrap_or(80)),
            path: uri.path_and_query().map_or("/", |p| p.as_str()).to_string(),
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            idle: Mutex::new(Vec::new()),
        })
    }

    /// Time allowed for a whole call (connect, send, read the answer).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    fn transport(&self, what: impl std::fmt::Display) -> ClientError {
        ClientError::Transport(format!("{}: {what}", self.url))
    }

    async fn connect(&self) -> Result<Sender, ClientError> {
        let tcp = tokio::time::timeout(
            self.connect_timeout,
            tokio::net::TcpStream::connect(&self.authority),
        )
        .await
        .map_err(|_| self.transport("connect timed out"))?
        .map_err(|e| self.transport(format_args!("cannot connect: {e}")))?;
        let _ = tcp.set_nodelay(true);
        let (sender, conn) = http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(|e| self.transport(e))?;
        tokio::spawn(conn);
        Ok(sender)
    }

    fn request(&self, body: Bytes) -> http::Request<Full<Bytes>> {
        http::Request::post(self.path.as_str())
            .header(http::header::HOST, self.authority.as_str())
            .header(http::header::CONTENT_TYPE, "text/xml; charset=UTF-8")
            .header("SOAPAction", "\"\"")
            .body(Full::new(body))
            .expect("method, path and headers are valid")
    }

    async fn post(&self, body: Vec<u8>) -> Result<Vec<u8>, ClientError> {
        let body = Bytes::from(body);
        let mut pooled = self.idle.lock().expect("idle list").pop();
        if let Some(s) = pooled.as_mut() {
            if s.ready().await.is_err() {
                pooled = None;
            }
        }
        let reused = match pooled {
            Some(mut s) => match s.try_send_request(self.request(body.clone())).await {
                Ok(r) => Some((s, r)),
                // The kept-alive connection closed before the request went out: a new one.
                Err(e) if e.message().is_some() => None,
                Err(e) => {
                    return Err(self
                        .transport(format_args!("connection lost while sending: {}", e.error())))
                }
            },
            None => None,
        };
        let (sender, response) = match reused {
            Some(pair) => pair,
            None => {
                let mut s = self.connect().await?;
                let r = s
                    .send_request(self.request(body))
                    .await
                    .map_err(|e| self.transport(e))?;
                (s, r)
            }
        };
        let status = response.status();
        let content_type = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(ContentType::parse)
            .and_then(Result::ok);
        let bytes = Limited::new(response.into_body(), MAX_RESPONSE)
            .collect()
            .await
            .map_err(|e| self.transport(format_args!("reading the answer: {e}")))?
            .to_bytes();
        // Readiness is checked when the connection is taken again (waiting here could outlast
        // a slow server's close).
        if !sender.is_closed() {
            let mut idle = self.idle.lock().expect("idle list");
            if idle.len() < MAX_IDLE {
                idle.push(sender);
            }
        }
        soap_part(status, content_type.as_ref(), bytes)
    }
}

/// The SOAP envelope of an answer. A fault comes with HTTP 500 and is still an answer; any
/// other status without a SOAP body is an HTTP error.
fn soap_part(
    status: http::StatusCode,
    ct: Option<&ContentType>,
    bytes: Bytes,
) -> Result<Vec<u8>, ClientError> {
    match ct {
        Some(ct) if ct.mime == "multipart/related" => {
            let boundary = ct.param("boundary").unwrap_or_default();
            let parts = mime::parse_multipart(&bytes, boundary, 1024)
                .map_err(|e| ClientError::Malformed(format!("multipart answer: {e}")))?;
            let start = ct.param("start").map(|s| s.trim_matches(['<', '>']));
            let root = match start {
                Some(id) => parts.iter().find(|p| p.content_id() == Some(id)),
                None => parts.first(),
            };
            root.map(|p| p.body.to_vec()).ok_or_else(|| {
                ClientError::Malformed("multipart answer without a SOAP part".into())
            })
        }
        Some(ct) if ct.mime == "text/xml" => Ok(bytes.to_vec()),
        _ if status.is_success() => Ok(bytes.to_vec()),
        _ => Err(ClientError::Http {
            status: status.as_u16(),
            message: String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned(),
        }),
    }
}

impl SoapTransport for HttpTransport {
    fn call(&self, envelope: Vec<u8>) -> BoxFuture<'_, Result<Vec<u8>, ClientError>> {
        Box::pin(async move {
            tokio::time::timeout(self.timeout, self.post(envelope))
                .await
                .map_err(|_| {
                    self.transport(format_args!(
                        "no answer within {} s",
                        self.timeout.as_secs_f64()
                    ))
                })?
        })
    }
}
