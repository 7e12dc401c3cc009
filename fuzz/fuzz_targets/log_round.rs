//! A message log round's file (`stamped-*.stamps`), as `brama verify DIR` and the archiver read
//! it from a directory someone handed over.
#![no_main]
use libfuzzer_sys::fuzz_target;

use brama::message_log::stamps;

fuzz_target!(|data: &[u8]| {
    if let Ok(round) = stamps::parse("stamped-0000000001-000000000000.stamps", data) {
        let _ = stamps::encode(&round.token, &round.records);
    }
});
