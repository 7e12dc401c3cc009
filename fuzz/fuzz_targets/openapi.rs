//! OpenAPI 3 descriptions (JSON or YAML), as a provider would publish them for REST services.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(d) = brama::openapi::parse(data) {
        // What is accepted is usable: bounded, upper-case methods, globs without templates.
        assert!(d.endpoints.len() <= brama::openapi::MAX_ENDPOINTS);
        for e in &d.endpoints {
            assert!(e.method.bytes().all(|b| b.is_ascii_uppercase()));
            assert!(e.path.starts_with('/') && !e.path.contains('{'));
        }
    }
});
