//! Bytes on sockets: the one accept loop ([`listener`]), request bodies read under the shared
//! limits ([`body`]), the security-server-to-security-server message format ([`codec`],
//! [`rest_codec`]) with spools for large bodies, mutual TLS ([`tls`]), the one keep-alive HTTP
//! client pool ([`pool`]), and the Prometheus registry every layer above counts in ([`metrics`]).
//!
//! Owns: how bytes arrive and leave, within limits. Must not depend on: the gateway's
//! configuration, its proxies, the router or any test tooling; only `brama-xroad` and
//! `brama-sign` among brama's crates.

pub mod body;
pub mod codec;
pub mod listener;
pub mod live;
pub mod metrics;
pub mod pool;
pub mod rest_codec;
pub mod spool;
pub mod tls;

pub use pool::{Destination, PeerCheck, Pool, TransportError};
