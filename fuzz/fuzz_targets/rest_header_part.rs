//! The REST header part a peer security server sends (request) or answers (response), and the
//! request line and access-rule path an information system sends.
#![no_main]
use libfuzzer_sys::fuzz_target;

use brama::rest::header_part::{RestRequest, RestResponse};
use brama::rest::{acl, target};

fuzz_target!(|data: &[u8]| {
    let bytes = bytes::Bytes::copy_from_slice(data);
    let _ = RestRequest::parse(bytes.clone());
    let _ = RestResponse::parse(bytes);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = target::parse(text);
        let _ = target::parse_client(text);
        let _ = acl::normalize(text);
        let (pattern, path) = text.split_once('\n').unwrap_or((text, "/"));
        let _ = acl::glob(pattern, path);
    }
});
