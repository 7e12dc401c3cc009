//! The configuration client (reference §8.1, PR-GCONF): the global configuration downloaded
//! from the sources of a configuration anchor, its directory's signature checked with the
//! anchor's certificates (and, once one has been stored, with the verification certificates the
//! stored shared parameters list, for key rotation), every file's hash checked, federated
//! instances' shared parameters fetched from the anchors the private parameters list; stored as
//! a whole new generation and put in force by one rename ([`store`]), so a failed or partial
//! download never replaces a good configuration. [`refresh`] repeats it every
//! `[globalconf] refresh_interval_s`, backing off on failure and recovering by itself, and
//! swaps a changed configuration into the running server.

pub mod download;
pub mod refresh;
pub mod store;

pub use download::{download, Downloaded};

/// The name, inside the download directory, of the generation in force.
pub const CURRENT: &str = "current";
