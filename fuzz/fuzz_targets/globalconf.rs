//! Global configuration files (downloaded from a configuration source in a later release).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = brama::globalconf::SharedParams::parse(data);
    let _ = brama::globalconf::PrivateParams::parse(data);
});
