//! OCSP responses (transport parts, `RevocationValues`, responders' answers), the requests a
//! responder reads, and a peer's `multipart/related` answer from its OCSP port.
#![no_main]
use libfuzzer_sys::fuzz_target;

use brama::sign::ocsp;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = ocsp::parse(data) {
        let _ = ocsp::CertIdFields::parse(r.cert_id);
    }
    let _ = ocsp::parse_request(data);
    let body = bytes::Bytes::copy_from_slice(data);
    let _ = brama::ocsp::peers::read_answer("multipart/related; boundary=xocsp0", body);
});
