//! `/echo` and `/echo/**`, any method: what arrived (method, path, query, headers, body length
//! and SHA-256) as JSON, or with `?raw` the body itself streamed back. Bodies are never held
//! whole: requests through the REST proxy may be tens of megabytes, and the memory of the
//! simulator must stay flat however large they are.

use std::collections::BTreeMap;

use http_body_util::{BodyExt, Limited};
use hyper::body::{Body as _, Incoming};
use hyper::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::rest::{json, query_has};
use super::Body;

/// Largest body `/echo` reads or streams back.
pub const ECHO_MAX_BODY: u64 = 256 * 1024 * 1024;

/// What `/echo` answers without `?raw`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Echo {
    method: String,
    path: String,
    query: Option<String>,
    /// Lower-case names; repeated headers joined with `, ` in arrival order.
    headers: BTreeMap<String, String>,
    body_length: u64,
    body_sha256: String,
}

/// Length and SHA-256 of a body read to its end (at most `limit` bytes).
pub(crate) struct Consumed {
    pub length: u64,
    pub sha256: [u8; 32],
}

/// Why a body could not be read to its end.
#[derive(Debug)]
pub(crate) enum ReadError {
    TooLarge(u64),
    Broken(String),
}

impl ReadError {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            ReadError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ReadError::Broken(_) => StatusCode::BAD_REQUEST,
        }
    }

    pub(crate) fn message(&self) -> String {
        match self {
            ReadError::TooLarge(limit) => {
                format!("the request body is larger than {limit} bytes")
            }
            ReadError::Broken(e) => format!("the request body could not be read: {e}"),
        }
    }
}

/// Reads `body` frame by frame, hashing it; nothing is kept. A declared length over `limit` is
/// refused before anything is read.
pub(crate) async fn consume(mut body: Incoming, limit: u64) -> Result<Consumed, ReadError> {
    if body.size_hint().lower() > limit {
        return Err(ReadError::TooLarge(limit));
    }
    let mut hash = Sha256::new();
    let mut length = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ReadError::Broken(e.to_string()))?;
        if let Some(data) = frame.data_ref() {
            length += data.len() as u64;
            if length > limit {
                return Err(ReadError::TooLarge(limit));
            }
            hash.update(data);
        }
    }
    Ok(Consumed {
        length,
        sha256: hash.finalize().into(),
    })
}

pub(crate) async fn handle(req: Request<Incoming>) -> Response<Body> {
    if req.method() != Method::HEAD && query_has(req.uri().query(), "raw") {
        return raw(req);
    }
    let (parts, body) = req.into_parts();
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        headers
            .entry(name.as_str().to_string())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert_with(|| value.into_owned());
    }
    let consumed = match consume(body, ECHO_MAX_BODY).await {
        Ok(c) => c,
        Err(e) => return json(e.status(), &error(&e.message())),
    };
    let echo = Echo {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(str::to_string),
        headers,
        body_length: consumed.length,
        body_sha256: hex::encode(consumed.sha256),
    };
    // HEAD: hyper sends the headers of this answer and no body.
    json(StatusCode::OK, &echo)
}

/// The request body streamed back as it arrives, with the request's Content-Type (and its
/// Content-Length when it declared one). Past [`ECHO_MAX_BODY`] the stream breaks off: the
/// status line has already gone, so the connection is closed mid-body.
fn raw(req: Request<Incoming>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    if body.size_hint().lower() > ECHO_MAX_BODY {
        let e = ReadError::TooLarge(ECHO_MAX_BODY);
        return json(e.status(), &error(&e.message()));
    }
    let content_type = parts
        .headers
        .get(CONTENT_TYPE)
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static("application/octet-stream"));
    let length = parts.headers.get(CONTENT_LENGTH).cloned();
    let streamed = Limited::new(body, ECHO_MAX_BODY as usize)
        .map_err(std::io::Error::other)
        .boxed();
    let mut resp = Response::new(streamed);
    resp.headers_mut().insert(CONTENT_TYPE, content_type);
    if let Some(length) = length {
        resp.headers_mut().insert(CONTENT_LENGTH, length);
    }
    resp
}

fn error(message: &str) -> serde_json::Value {
    serde_json::json!({ "error": { "type": "invalid_request", "message": message } })
}
