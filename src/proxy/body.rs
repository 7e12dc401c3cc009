//! Reading request bodies within the size and time limits.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use crate::error::{ErrorCode, Fault, Prefix};

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
