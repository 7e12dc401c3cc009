//! Signing keys behind one interface: a software token (PKCS#8 files) and PKCS#11 modules.
//!
//! The batch signer (`sign::batch`) owns sessions; each session signs on a blocking thread. A
//! session signs *data* (the canonical `SignedInfo` bytes): the token hashes it with the
//! algorithm's digest, and for PKCS#11 signs the digest (`CKM_RSA_PKCS` over a DER `DigestInfo`,
//! `CKM_ECDSA` over the raw digest), so one code path serves every token.

use std::fmt;

use crate::digest::DigestAlgorithm;

/// The XML-DSig signature algorithms brama signs with: a key type and a digest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SignatureAlgorithm {
    RsaSha256,
    RsaSha384,
    RsaSha512,
    /// ECDSA P-256 with SHA-256: Trembita's profile.
    EcdsaSha256,
    EcdsaSha384,
    /// ECDSA with SHA-512: X-Road's default digest (`signature-digest-algorithm-id`).
    EcdsaSha512,
}

impl SignatureAlgorithm {
    pub fn uri(self) -> &'static str {
        match self {
            SignatureAlgorithm::RsaSha256 => "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
            SignatureAlgorithm::RsaSha384 => "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
            SignatureAlgorithm::RsaSha512 => "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
            SignatureAlgorithm::EcdsaSha256 => {
                "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
            }
            SignatureAlgorithm::EcdsaSha384 => {
                "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384"
            }
            SignatureAlgorithm::EcdsaSha512 => {
                "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512"
            }
        }
    }

    pub fn key_type(self) -> KeyType {
        match self {
            SignatureAlgorithm::RsaSha256
            | SignatureAlgorithm::RsaSha384
            | SignatureAlgorithm::RsaSha512 => KeyType::Rsa,
            _ => KeyType::EcP256,
        }
    }

    /// The digest the signature is computed over.
    pub fn hash(self) -> DigestAlgorithm {
        match self {
            SignatureAlgorithm::RsaSha256 | SignatureAlgorithm::EcdsaSha256 => {
                DigestAlgorithm::Sha256
            }
            SignatureAlgorithm::RsaSha384 | SignatureAlgorithm::EcdsaSha384 => {
                DigestAlgorithm::Sha384
            }
            SignatureAlgorithm::RsaSha512 | SignatureAlgorithm::EcdsaSha512 => {
                DigestAlgorithm::Sha512
            }
        }
    }

    /// The algorithm a key signs with, as X-Road's signer picks it from the key type and the
    /// configured digest. Without one: RSA with SHA-512 (X-Road's default), P-256 with SHA-256
    /// (Trembita's profile).
    pub fn for_key(key: KeyType, digest: Option<DigestAlgorithm>) -> SignatureAlgorithm {
        use DigestAlgorithm::*;
        match (key, digest) {
            (KeyType::Rsa, Some(Sha256)) => SignatureAlgorithm::RsaSha256,
            (KeyType::Rsa, Some(Sha384)) => SignatureAlgorithm::RsaSha384,
            (KeyType::Rsa, Some(Sha512) | None) => SignatureAlgorithm::RsaSha512,
            (KeyType::EcP256, Some(Sha256) | None) => SignatureAlgorithm::EcdsaSha256,
            (KeyType::EcP256, Some(Sha384)) => SignatureAlgorithm::EcdsaSha384,
            (KeyType::EcP256, Some(Sha512)) => SignatureAlgorithm::EcdsaSha512,
        }
    }

    /// Digests `data` with this algorithm's hash.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        self.hash().digest(data)
    }

    /// DER `DigestInfo` prefix for RSA PKCS#1 v1.5 (RFC 8017 §9.2 note 1).
    pub(crate) fn digest_info_prefix(self) -> &'static [u8] {
        match self.hash() {
            DigestAlgorithm::Sha256 => &[
                0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x01, 0x05, 0x00, 0x04, 0x20,
            ],
            DigestAlgorithm::Sha384 => &[
                0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x02, 0x05, 0x00, 0x04, 0x30,
            ],
            DigestAlgorithm::Sha512 => &[
                0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x03, 0x05, 0x00, 0x04, 0x40,
            ],
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// RSA (2048 bits when generated).
    Rsa,
    /// ECDSA on secp256r1.
    EcP256,
}

/// A token failure. `retry_elsewhere` says whether another session may succeed (a closed or
/// broken session, a device error) as opposed to a failure every session would repeat (no such
/// key, wrong PIN, unsupported mechanism).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct TokenError {
    pub message: String,
    pub retry_elsewhere: bool,
}

impl TokenError {
    pub fn transient(message: impl Into<String>) -> TokenError {
        TokenError {
            message: message.into(),
            retry_elsewhere: true,
        }
    }

    pub(crate) fn permanent(message: impl Into<String>) -> TokenError {
        TokenError {
            message: message.into(),
            retry_elsewhere: false,
        }
    }
}

/// One open, logged-in session able to sign with one key. Used from one thread at a time.
pub trait KeySession: Send {
    /// Signs `data` with `alg`. ECDSA values are returned raw (`r‖s`, RFC 4051), RSA values as
    /// the PKCS#1 v1.5 signature.
    fn sign(&mut self, alg: SignatureAlgorithm, data: &[u8]) -> Result<Vec<u8>, TokenError>;

    /// Closes the session on the token behind the pool's back, as a token reset or a dropped
    /// network HSM connection would. Later `sign` calls fail with a transient error. Used by
    /// fault-injection tests and the admin listener's chaos switch.
    fn kill(&mut self);
}

/// Where one key lives; opens as many sessions as the pool asks for.
pub trait KeySource: Send + Sync + fmt::Debug {
    /// Opens and logs in a new session, finding the key by label or id (never by slot index).
    fn open(&self) -> Result<Box<dyn KeySession>, TokenError>;

    fn key_type(&self) -> KeyType;

    /// A short description for logs, `/health` and `/metrics` (module, token label, key label;
    /// never the PIN).
    fn describe(&self) -> String;
}
