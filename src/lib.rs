//! brama: an X-Road / Trembita compatible security server and integration gateway.
//!
//! The request lifecycle is drawn in `docs/ARCHITECTURE.md`.

pub mod cli;
pub mod config;
pub mod deploy;
pub mod error;
pub mod globalconf;
pub mod identifiers;
pub mod load;
pub mod message;
pub mod metrics;
pub mod openapi;
pub mod pki;
pub mod proxy;
pub mod registries;
pub mod rest;
pub mod router;
pub mod sign;
pub mod sim;
pub mod transport;
pub mod wsdl;
pub mod xml;
