//! What a configuration source sends: the signed directory (read as X-Road reads it: the
//! signature part, then the listing) and the files it lists, and the anchor.
#![no_main]
use libfuzzer_sys::fuzz_target;

use brama::globalconf::directory::SignedDirectory;

fuzz_target!(|data: &[u8]| {
    let _ = brama::globalconf::SharedParams::parse(data);
    let _ = brama::globalconf::PrivateParams::parse(data);
    let _ = brama::globalconf::ConfigurationAnchor::parse(data);
    let body = bytes::Bytes::copy_from_slice(data);
    if let Ok(d) = SignedDirectory::parse(&body, Some("multipart/related; boundary=b")) {
        let _ = d.listing();
    }
});
