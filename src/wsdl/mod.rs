//! Registry WSDLs as Rust: the reader and generator `build.rs` runs on `wsdl/*.wsdl` (and
//! `brama wsdl` at run time), and the runtime the generated `brama::registries` code calls.
//!
//! `dom`, `model`, `pattern`, `schema`, `parse` and `gen` are compiled into `build.rs` too
//! (`#[path]` includes), so they use only `std`, quick-xml and `super::` paths to each other.

pub mod dom;
pub mod gen;
pub mod model;
pub mod parse;
pub mod pattern;
pub mod runtime;
pub mod schema;

#[cfg(test)]
mod tests;
