//! X-Road's data and formats, as pure functions over bytes: identifiers, fault codes, the one
//! bounded XML reader, SOAP messages and their MIME packaging, the global configuration's model
//! and parser, OpenAPI descriptions.
//!
//! Owns: what a message, an identifier or a configuration *is*, and how it is read and written.
//! Must not depend on: an async runtime, sockets, files other than a configuration directory it
//! is asked to read, or any other brama crate. Everything above (signing, transport, the
//! gateway, the router) builds on this one.

#![forbid(unsafe_code)]

pub mod error;
pub mod globalconf;
pub mod identifiers;
pub mod message;
pub mod openapi;
pub mod rnokpp;
pub mod time;
pub mod xml;
