//! Registry WSDLs as Rust: the reader and generator `build.rs` runs on the repository's
//! `wsdl/*.wsdl` (and `brama wsdl` at run time), the runtime generated code calls, and the
//! generated clients themselves ([`registries`]).
//!
//! Owns: what a registry's operations look like as types, and how they become SOAP bodies.
//! Must not depend on: the gateway, the router, the simulator; only `brama-xroad` among brama's
//! crates. The generated clients' HTTP transport is the runtime's own small one.
//!
//! `dom`, `model`, `pattern`, `schema`, `parse` and `gen` are compiled into `build.rs` too
//! (`#[path]` includes), so they use only `std`, quick-xml and `super::` paths to each other.

pub mod dom;
pub mod gen;
pub mod model;
pub mod parse;
pub mod pattern;
pub mod registries;
pub mod runtime;
pub mod schema;

#[cfg(test)]
mod tests;
