//! A received signature with its hash chain parts, through the whole verifier.
#![no_main]
use libfuzzer_sys::fuzz_target;

use brama::sign::verify::{verify, At, Part, Signed, TrustStore};

fuzz_target!(|data: &[u8]| {
    // Split the input into signature, hash chain result and hash chain.
    let mut parts = data.splitn(3, |&b| b == 0);
    let signature = parts.next().unwrap_or_default();
    let result = parts.next();
    let chain = parts.next();
    let _ = verify(
        Signed {
            signature,
            hash_chain_result: result,
            hash_chain: chain,
        },
        &Part::list(b"<m/>", []),
        &TrustStore::default(),
        None,
        At::Now,
    );
});
