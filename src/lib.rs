//! brama: an X-Road / Trembita compatible security server and integration gateway.
//!
//! The request lifecycle is drawn in `docs/ARCHITECTURE.md`.

pub mod error;
pub mod identifiers;
pub mod message;
pub mod metrics;
pub mod pki;
pub mod sign;
pub mod globalconf;
