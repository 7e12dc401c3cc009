//! Security server to security server: the multipart message format, mutual TLS and the
//! connection pool.

pub mod codec;
pub mod pool;
pub mod rest_codec;
pub mod spool;
pub mod tls;

pub use pool::{Destination, Pool, TransportError};
