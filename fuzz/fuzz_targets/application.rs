//! Untrusted router input: eMalyatko application JSON and wrap-mode SOAP bodies.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = brama::router::application::parse(data);
    let limits = brama::xml::XmlLimits::DEFAULT;
    if let Ok(out) = brama::router::wrap::body_content(data, &limits, 1 << 20) {
        assert!(out.len() <= 1 << 20, "copied declarations multiplied the body");
    }
});
