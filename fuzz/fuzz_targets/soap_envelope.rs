//! What an information system posts to the client proxy: text/xml or multipart/related.
#![no_main]
use libfuzzer_sys::fuzz_target;

use brama::message::soap::SoapLimits;
use brama::message::SoapEnvelope;

fuzz_target!(|data: &[u8]| {
    let limits = SoapLimits::default();
    let body = bytes::Bytes::copy_from_slice(data);
    if let Ok(env) = SoapEnvelope::from_http(Some("text/xml; charset=UTF-8"), body.clone(), &limits, 64) {
        let _ = env.soap.validate_request();
        let _ = env.soap.with_request_hash("u", "h");
    }
    let _ = SoapEnvelope::from_http(Some("multipart/related; boundary=b"), body, &limits, 64);
});
