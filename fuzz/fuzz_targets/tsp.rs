//! RFC 3161: a TSA's reply and the token in it (BER, indefinite lengths included), checked as
//! X-Road checks a token; and the request a TSA reads.
#![no_main]
use libfuzzer_sys::fuzz_target;

use brama::sign::tsp;

const TSA: &[u8] = include_bytes!("../../tests/fixtures/xroad/timestamp/testca-2024/tsa-test-tsa.pem");

fuzz_target!(|data: &[u8]| {
    if let Ok(token) = tsp::parse_reply(data) {
        let _ = tsp::parse_token(token);
    }
    let _ = tsp::verify(data, b"stamped", &[TSA.to_vec()]);
    let _ = tsp::parse_request(data);
});
