//! Typed clients for the registries in `wsdl/`, generated at build time (one module per WSDL:
//! `dracs`, `ehealth`, …). See this crate and `brama wsdl gen` for the code itself.

include!(concat!(env!("OUT_DIR"), "/registries.rs"));
