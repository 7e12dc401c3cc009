//! Test tooling shared by the CLI's `brama certs init`, the integration tests and the benches:
//! the test PKI, a test OCSP responder's signing half, and deployments described in code,
//! written as a global configuration.
//!
//! Owns: test certificates and keys made on demand, test OCSP answers, and the members,
//! subsystems and servers of a test instance. Must not depend on: the gateway, the router, the
//! simulator; only `brama-xroad` and `brama-sign` (for its DER and OCSP request reading) among
//! brama's crates. Nothing in the gateway or the router may depend on it.

pub mod deploy;
pub mod ocsp;
pub mod pki;
pub mod publish;
pub mod tsa;
