//! Canonical XML of untrusted signature documents.
#![no_main]
use libfuzzer_sys::fuzz_target;

use brama::sign::c14n::{canonicalize, Method, Select};
use brama::xml::XmlLimits;

fuzz_target!(|data: &[u8]| {
    for m in [
        Method::Inclusive,
        Method::Exclusive {
            inclusive_prefixes: vec!["#default".into(), "ds".into()],
        },
    ] {
        let _ = canonicalize(data, Select::Root, &m, &XmlLimits::DEFAULT);
        let _ = canonicalize(data, Select::ById("signed-properties"), &m, &XmlLimits::DEFAULT);
    }
});
