//! OCSP in the running server (reference §3.1, §6.1): the server's own responses kept fresh
//! from the responders the global configuration names ([`own`]), served to peers on the OCSP
//! port ([`endpoint`]), and peers' responses fetched from theirs and checked before a request
//! goes out ([`peers`]). What a response says is decided by `brama_sign::ocsp`; this module
//! fetches, caches and serves.

pub mod endpoint;
pub mod own;
pub mod peers;

pub use own::OwnOcsp;
pub use peers::PeerOcsp;

/// Unix seconds now.
pub(crate) fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

pub(crate) use brama_sign::ocsp::sha1;

pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(data).into()
}
