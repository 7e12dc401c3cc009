//! OCSP responses (transport parts, `RevocationValues`, 5577 answers, responders' answers) and
//! the requests a responder reads.
#![no_main]
use libfuzzer_sys::fuzz_target;

use brama::sign::ocsp;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = ocsp::parse(data) {
        let _ = ocsp::CertIdFields::parse(r.cert_id);
    }
    let _ = ocsp::parse_request(data);
});
