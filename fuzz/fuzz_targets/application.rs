//! Untrusted router input: eMalyatko application JSON and wrap-mode SOAP bodies.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = brama::router::application::parse(data);
    let _ = brama::router::wrap::body_content(data, 64);
});
