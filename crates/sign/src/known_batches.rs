//! Batch signatures already verified. One batch signature covers up to `max_batch` messages, and
//! each of them arrives with the same signature, hash chain result and signing certificate: the
//! signature value, its references, the certificate and its path are checked on the first, and
//! every later message only has its own hash chain verified and the signer and times checked.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use x509_parser::time::ASN1Time;

use super::digest::DigestAlgorithm;
use brama_xroad::identifiers::ClientId;

/// What the first verification of a batch signature established.
#[derive(Debug)]
pub(super) struct KnownBatch {
    /// The hash chain's digest algorithm, from its result.
    pub alg: DigestAlgorithm,
    pub members: Vec<ClientId>,
    pub cert_subject: String,
    pub cert_validity: (ASN1Time, ASN1Time),
    /// Every CA on the certificate's path (subject, validity); `None` when it has no path, which
    /// fails every message at its time check.
    pub path_cas: Option<Vec<(String, ASN1Time, ASN1Time)>>,
    pub signing_time: Option<String>,
    pub signing_time_parsed: Option<ASN1Time>,
    /// Until when the signing chain's OCSP responses are fresh (Unix seconds); `None` when its
    /// CA names no responder.
    pub fresh_until: Option<i64>,
}

/// Keyed by SHA-256 of the signature and its hash chain result, everything the cached checks
/// read. Two generations bound it: when the newer one is full it becomes the older one, so a
/// batch still arriving is kept and hostile signatures cannot grow it.
#[derive(Debug, Default)]
pub(super) struct KnownBatches {
    generations: Mutex<[HashMap<[u8; 32], Arc<KnownBatch>>; 2]>,
}

/// Batches arrive within milliseconds of each other; this many recent ones is plenty.
const GENERATION: usize = 512;

impl KnownBatches {
    pub fn key(signature: &[u8], hash_chain_result: &[u8]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update((signature.len() as u64).to_be_bytes());
        h.update(signature);
        h.update(hash_chain_result);
        h.finalize().into()
    }

    pub fn get(&self, key: &[u8; 32]) -> Option<Arc<KnownBatch>> {
        let g = self.generations.lock().unwrap_or_else(|p| p.into_inner());
        g[0].get(key).or_else(|| g[1].get(key)).cloned()
    }

    pub fn insert(&self, key: [u8; 32], batch: KnownBatch) {
        let mut g = self.generations.lock().unwrap_or_else(|p| p.into_inner());
        if g[0].len() >= GENERATION {
            g[1] = std::mem::take(&mut g[0]);
        }
        g[0].insert(key, Arc::new(batch));
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        let g = self.generations.lock().unwrap_or_else(|p| p.into_inner());
        g[0].len() + g[1].len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch() -> KnownBatch {
        KnownBatch {
            alg: DigestAlgorithm::Sha512,
            members: Vec::new(),
            cert_subject: String::new(),
            cert_validity: (ASN1Time::now(), ASN1Time::now()),
            path_cas: None,
            signing_time: None,
            signing_time_parsed: None,
            fresh_until: None,
        }
    }

    #[test]
    fn stays_bounded_and_keeps_the_recent_generation() {
        let known = KnownBatches::default();
        for i in 0..(GENERATION * 5) as u64 {
            known.insert(KnownBatches::key(&i.to_be_bytes(), b""), batch());
        }
        assert!(known.len() <= 2 * GENERATION);
        let last = (GENERATION * 5 - 1) as u64;
        assert!(known
            .get(&KnownBatches::key(&last.to_be_bytes(), b""))
            .is_some());
        assert!(known
            .get(&KnownBatches::key(&0u64.to_be_bytes(), b""))
            .is_none());
    }

    #[test]
    fn the_key_separates_signature_from_result() {
        assert_ne!(
            KnownBatches::key(b"ab", b"c"),
            KnownBatches::key(b"a", b"bc")
        );
    }
}
