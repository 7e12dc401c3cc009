//! What a peer security server posts to the server proxy (and answers to the client proxy).
#![no_main]
use libfuzzer_sys::fuzz_target;

use brama::message::soap::SoapLimits;
use brama::transport::codec::decode;

fuzz_target!(|data: &[u8]| {
    let body = bytes::Bytes::copy_from_slice(data);
    let _ = decode("multipart/mixed; boundary=xtop", Some("text/xml"), body, &SoapLimits::default(), 64);
});
