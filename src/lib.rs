//! brama: an X-Road / Trembita compatible security server and integration gateway.
//!
//! The request lifecycle is drawn in `docs/ARCHITECTURE.md`.

pub use brama_gateway::{confclient, config, message_log, ocsp, proxy, rest};
pub use brama_load as load;
pub use brama_router as router;
pub use brama_sign as sign;
#[cfg(feature = "sim")]
pub use brama_sim as sim;
pub use brama_testkit::{deploy, ocsp as test_ocsp, pki, publish as test_publish, tsa as test_tsa};
pub use brama_transport as transport;
pub use brama_transport::metrics;
pub use brama_wsdl as wsdl;
pub use brama_wsdl::registries;
pub use brama_xroad::{error, globalconf, identifiers, message, openapi, time, xml};

pub mod cli;
pub mod serve;
