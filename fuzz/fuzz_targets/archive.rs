//! Message-log archives: the zip, its `linkinginfo` and the chain it states.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = brama::sign::archive::check(data);
});
