//! Plain HTTP to a security server's client listener (or straight to a service), over the
//! gateway's one HTTP client: a few kept-alive connections reused.

use std::time::Duration;

use bytes::Bytes;

use super::{BoxFuture, ClientError, SoapTransport};
use brama_transport::{Destination, Pool};
use brama_xroad::message::mime::{self, ContentType};

/// Largest response body read.
const MAX_RESPONSE: usize = 64 * 1024 * 1024;
/// Idle connections kept for reuse.
const MAX_IDLE: usize = 16;
/// An idle connection older than this is not reused (servers close theirs after a while).
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// POSTs envelopes as `text/xml` to one `http://` URL.
pub struct HttpTransport {
    url: String,
    dest: Destination,
    path: String,
    timeout: Duration,
    pool: Pool,
}

impl HttpTransport {
    /// A transport to `url` (`http://host[:port][/path]`): 60 s per call, 10 s to connect.
    pub fn new(url: &str) -> Result<Self, ClientError> {
        if !url.starts_with("http://") {
            return Err(ClientError::Request(format!(
                "'{url}': only http:// URLs are supported"
            )));
        }
        let (dest, path) = Destination::for_url(url, None).map_err(ClientError::Request)?;
        Ok(HttpTransport {
            url: url.to_string(),
            dest,
            path,
            timeout: Duration::from_secs(60),
            pool: Pool::new(MAX_IDLE, IDLE_TIMEOUT, Duration::from_secs(10)),
        })
    }

    /// Time allowed for a whole call (connect, send, read the answer).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.pool = Pool::new(MAX_IDLE, IDLE_TIMEOUT, timeout);
        self
    }

    async fn post(&self, body: Vec<u8>) -> Result<Vec<u8>, ClientError> {
        let req = http::Request::post(self.path.as_str())
            .header(http::header::HOST, self.dest.key.as_str())
            .header(http::header::CONTENT_TYPE, "text/xml; charset=UTF-8")
            .header("SOAPAction", "\"\"")
            .body(brama_transport::body::full(Bytes::from(body)))
            .map_err(|e| ClientError::Request(e.to_string()))?;
        let (parts, bytes) = self
            .pool
            .exchange(&self.dest, req, self.timeout, MAX_RESPONSE)
            .await
            .map_err(|e| ClientError::Transport(format!("{}: {e}", self.url)))?;
        let content_type = parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(ContentType::parse)
            .and_then(Result::ok);
        soap_part(parts.status, content_type.as_ref(), bytes)
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
        Box::pin(self.post(envelope))
    }
}
