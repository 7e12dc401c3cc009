//! A REST transport message from a peer security server, decoded as it streams (body spooled).
#![no_main]
use libfuzzer_sys::fuzz_target;

use brama::message::soap::SoapLimits;
use brama::sign::digest::DigestAlgorithm;
use brama::transport::rest_codec::{decode, DecodeLimits, CT_REST_REQUEST};
use brama::transport::spool::SpoolConfig;

fuzz_target!(|data: &[u8]| {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let spool = SpoolConfig {
        memory: 4096,
        max: 1 << 20,
        dir: std::env::temp_dir(),
    };
    let soap = SoapLimits::default();
    let limits = DecodeLimits {
        spool: &spool,
        soap: &soap,
        max_parts: 16,
        digest: DigestAlgorithm::Sha512,
        budget: None,
    };
    let body = http_body_util::Full::new(bytes::Bytes::copy_from_slice(data));
    rt.block_on(async {
        let _ = decode("multipart/mixed; boundary=xtop", body, CT_REST_REQUEST, &limits).await;
    });
});
