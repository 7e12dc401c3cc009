//! The one XML reader, under the default limits and under tiny ones (every limit reached often):
//! it must end every document with an event stream or an error, never panic, and never let an
//! element past a limit.
#![no_main]
use libfuzzer_sys::fuzz_target;

use brama::xml::{Reader, XmlLimits};
use quick_xml::events::Event;

fuzz_target!(|data: &[u8]| {
    let tiny = XmlLimits {
        max_depth: 4,
        max_elements: 16,
        max_attributes: 3,
        max_namespaces: 2,
        max_namespaces_in_scope: 3,
        max_name_bytes: 8,
        max_attribute_bytes: 16,
        max_text_bytes: 32,
    };
    for limits in [XmlLimits::DEFAULT, tiny] {
        let Ok(mut r) = Reader::new(data, &limits) else { continue };
        loop {
            match r.read_resolved() {
                Ok((_, Event::Eof)) | Err(_) => break,
                Ok((_, Event::Start(e) | Event::Empty(e))) => {
                    assert!(r.depth() <= limits.max_depth);
                    assert!(e.attributes().with_checks(false).count() <= limits.max_attributes);
                }
                Ok(_) => {}
            }
        }
    }
});
