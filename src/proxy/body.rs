//! Message bodies: the one body type every listener answers with and every pooled connection
//! sends (whole or streamed), and reading request bodies within the size and time limits.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full, Limited};
use hyper::body::Incoming;

use crate::error::{ErrorCode, Fault, Prefix};

/// A body that is either whole in memory or streamed (a spooled REST body, a signed multipart
/// written while a large body passes through).
pub type Body = BoxBody<Bytes, std::io::Error>;

/// A body of bytes already in memory.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

/// Reads the whole body; too large or too slow becomes a fault with `prefix`.
pub async fn read(
    body: Incoming,
    max: usize,
    timeout: Duration,
    prefix: Prefix,
) -> Result<Bytes, Fault> {
    let collect = Limited::new(body, max).collect();
    match tokio::time::timeout(timeout, collect).await {
        Err(_) => Err(Fault::new(
            prefix,
            ErrorCode::IoError,
            format!(
                "Request body was not received within {} ms",
                timeout.as_millis()
            ),
        )),
        Ok(Err(e))
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(Fault::new(
                prefix,
                ErrorCode::InvalidMessage,
                format!("Request body is larger than the limit of {max} bytes"),
            ))
        }
        Ok(Err(e)) => Err(Fault::new(
            prefix,
            ErrorCode::IoError,
            format!("Reading the request failed: {e}"),
        )),
        Ok(Ok(c)) => Ok(c.to_bytes()),
    }
}
