//! ASiC-E containers given to `brama verify`, alone or in a zip of containers (a `GET /asic`
//! download, an archive).
#![no_main]
use libfuzzer_sys::fuzz_target;

use brama::sign::asic;
use brama::sign::verify::TrustStore;

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = asic::read(data) {
        let _ = asic::verify_container(&c, &TrustStore::default());
    }
    let _ = asic::each_in_zip(std::io::Cursor::new(data), &|_| true, &mut |_, bytes| {
        let _ = asic::read(&bytes);
        Ok(())
    });
});
