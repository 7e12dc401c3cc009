//! The security server: its configuration and the checks on it ([`config`]), the client and
//! server proxies for SOAP and REST with metaservices, the message log and the admin listener
//! ([`proxy`]), the X-Road REST protocol ([`rest`]), and the one mapping of a fault onto the wire
//! ([`proxy::wire`]).
//!
//! Owns: what happens to a message between two listeners. Must not depend on: the router, the
//! simulator, the load generator or test tooling; layers above mount their routes on its
//! listeners through [`proxy::mount::Mount`]. Below it: `brama-transport`, `brama-sign`,
//! `brama-xroad`, and `brama-pg` for the message log's records in a shared database.

/// This build's version and the commit it was built from (`unknown` without git or
/// `BRAMA_COMMIT`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const COMMIT: &str = env!("BRAMA_COMMIT");
/// What `brama --version` prints after the program's name.
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("BRAMA_COMMIT"),
    ")"
);

pub mod confclient;
pub mod config;
pub mod message_log;
pub mod ocsp;
pub mod proxy;
pub mod rest;
