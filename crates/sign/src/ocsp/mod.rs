//! OCSP (RFC 6960) as X-Road uses it (reference §6.1): the SHA-1 `CertID` X-Road builds and
//! compares, requests to responders, the responses' DER read by borrowing from the received
//! bytes, and X-Road's verification rules (`OcspVerifier`): the responder found by name or key
//! hash, its signature and authorisation, freshness at the time of use, and the status.
//!
//! Fetching, caching and serving responses are the gateway's; building responses is the test
//! responder's (`brama-testkit`). Nothing here does I/O.

mod check;
mod request;
mod response;
#[cfg(test)]
mod tests;

pub use check::{check_freshness, verify, Policy, Responders, Verdict};
pub use request::{cert_id, parse_request, request, sha1, CertIdFields, SHA1_ALGORITHM};
pub use response::{parse, CertStatus, OcspResponse, ResponderId, MAX_RESPONSE_BYTES};

/// `application/ocsp-request`, the body a client POSTs to a responder.
pub const CT_REQUEST: &str = "application/ocsp-request";
/// `application/ocsp-response`: a responder's answer, a transport part, a 5577 part.
pub const CT_RESPONSE: &str = "application/ocsp-response";
