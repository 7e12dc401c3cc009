//! ASiC-E containers given to `brama verify`.
#![no_main]
use libfuzzer_sys::fuzz_target;

use brama::sign::asic;
use brama::sign::verify::TrustStore;

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = asic::read(data) {
        let _ = asic::verify_container(&c, &TrustStore::default());
    }
});
