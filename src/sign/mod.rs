//! The seam for message signatures (reference §4).
//!
//! Every transport message has room for the batch-signature parts (`application/hash-chain-result`,
//! `application/hash-chain`) and the signature (`signature/bdoc-1.0/ts`, always last). This module
//! defines what the proxies call; the X-Road XAdES/hash-chain signer and verifier plug in here.
//! Until then [`Unsigned`] is the only implementation: it adds no parts and accepts messages that
//! carry none, so two brama servers interoperate but an X-Road peer would refuse the messages
//! with `MissingSignature`.

pub mod c14n;
pub mod digest;
pub mod hashchain;
pub mod pkcs11;
pub mod token;

use bytes::Bytes;

use crate::error::Fault;
use crate::identifiers::ClientId;

/// Signature parts of one transport message, in wire order.
#[derive(Clone, Debug, Default)]
pub struct SignatureParts {
    pub hash_chain_result: Option<Bytes>,
    pub hash_chain: Option<Bytes>,
    pub signature: Option<Bytes>,
}

impl SignatureParts {
    pub fn is_empty(&self) -> bool {
        self.signature.is_none() && self.hash_chain.is_none() && self.hash_chain_result.is_none()
    }
}

/// Signs the parts of a message with `member`'s signing key.
pub trait MessageSigner: Send + Sync {
    fn sign(&self, member: &ClientId, parts: &[&[u8]]) -> Result<SignatureParts, Fault>;
}

/// Verifies that `member` signed exactly these parts.
pub trait MessageVerifier: Send + Sync {
    fn verify(&self, member: &ClientId, parts: &[&[u8]], sig: &SignatureParts)
        -> Result<(), Fault>;
}

/// No signatures yet: see the module documentation.
#[derive(Clone, Copy, Debug, Default)]
pub struct Unsigned;

impl MessageSigner for Unsigned {
    fn sign(&self, _: &ClientId, _: &[&[u8]]) -> Result<SignatureParts, Fault> {
        Ok(SignatureParts::default())
    }
}

impl MessageVerifier for Unsigned {
    fn verify(&self, _: &ClientId, _: &[&[u8]], _: &SignatureParts) -> Result<(), Fault> {
        Ok(())
    }
}
