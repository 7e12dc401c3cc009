//! The X-Road message protocol for REST (reference §2, §3.4): the `/r1/...` request line, the
//! `X-Road-*` headers (and Trembita 2.0's `Uxp-*` dialect of them), the REST header part that is
//! signed and carried between security servers, request hashes, endpoint access rules and the
//! REST metaservices' JSON.

pub mod acl;
pub mod dialect;
pub mod header_part;
pub mod meta;
pub mod target;

/// The HTTP methods X-Road carries (`RestRequest.Verb`).
pub const METHODS: [&str; 8] = [
    "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE",
];

/// Headers never carried (hop-by-hop and connection details, reference §2.2 `SKIPPED_HEADERS`).
pub(crate) const SKIPPED_HEADERS: [&str; 13] = [
    "transfer-encoding",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
    "connection",
    "user-agent",
    "host",
    "content-length",
    "server",
    "expect",
];

pub const HDR_CLIENT: &str = "x-road-client";
pub const HDR_ID: &str = "x-road-id";
pub(crate) const HDR_USER_ID: &str = "x-road-userid";
pub const HDR_ISSUE: &str = "x-road-issue";
pub(crate) const HDR_SERVICE: &str = "x-road-service";
pub const HDR_REQUEST_ID: &str = "x-road-request-id";
pub(crate) const HDR_REQUEST_HASH: &str = "x-road-request-hash";
pub(crate) const HDR_SECURITY_SERVER: &str = "x-road-security-server";
pub(crate) const HDR_REPRESENTED_PARTY: &str = "x-road-represented-party";
pub(crate) const HDR_ERROR: &str = "x-road-error";

/// A header as carried in the REST header part: lower-case name, value, in arrival order.
pub type Header = (String, String);

/// An error in a REST message: its X-Road leaf code and a sentence, as for a SOAP message.
pub use brama_xroad::message::MessageError as RestError;

/// Whether the header is one of the skipped ones.
pub(crate) fn is_skipped(name: &str) -> bool {
    SKIPPED_HEADERS.iter().any(|s| name.eq_ignore_ascii_case(s))
}

/// The value of the first header named `name` (case-insensitive).
pub fn find<'a>(headers: &'a [Header], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}
