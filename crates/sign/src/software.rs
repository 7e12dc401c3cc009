//! The software token: PKCS#8 keys in files, for the embedded default and tests. Production keys
//! live in an HSM (`sign::pkcs11`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, RsaKeyPair};

use super::digest::DigestAlgorithm;
use super::token::{KeySession, KeySource, KeyType, SignatureAlgorithm, TokenError};

enum Key {
    /// ring signs P-256 with SHA-256 (the fast path); the p256 crate signs the digests ring
    /// does not pair with the curve (SHA-384, SHA-512: X-Road's default), cut to its size.
    Ec(EcdsaKeyPair, Box<p256::ecdsa::SigningKey>),
    Rsa(RsaKeyPair),
}

/// One PKCS#8 key; every session shares it (ring's keys are thread-safe).
pub(crate) struct SoftwareKey {
    path: PathBuf,
    key: Arc<Key>,
}

impl std::fmt::Debug for SoftwareKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SoftwareKey({})", self.path.display())
    }
}

impl SoftwareKey {
    /// A PKCS#8 key (PEM `PRIVATE KEY` or DER) read from `path`.
    pub(crate) fn from_pkcs8(path: &Path, raw: &[u8]) -> Result<SoftwareKey, TokenError> {
        let der = if raw.starts_with(b"-----") {
            let mut rd = raw;
            match rustls_pemfile::read_one(&mut rd) {
                Ok(Some(rustls_pemfile::Item::Pkcs8Key(k))) => k.secret_pkcs8_der().to_vec(),
                _ => {
                    return Err(TokenError::permanent(format!(
                        "{}: not a PKCS#8 private key",
                        path.display()
                    )))
                }
            }
        } else {
            raw.to_vec()
        };
        let rng = SystemRandom::new();
        let key =
            match EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &der, &rng)
            {
                Ok(k) => {
                    use p256::pkcs8::DecodePrivateKey;
                    let prehash = p256::ecdsa::SigningKey::from_pkcs8_der(&der)
                        .map_err(|e| TokenError::permanent(format!("{}: {e}", path.display())))?;
                    Key::Ec(k, Box::new(prehash))
                }
                Err(_) => Key::Rsa(RsaKeyPair::from_pkcs8(&der).map_err(|e| {
                    TokenError::permanent(format!(
                        "{}: neither a P-256 nor an RSA key: {e}",
                        path.display()
                    ))
                })?),
            };
        Ok(SoftwareKey {
            path: path.to_path_buf(),
            key: Arc::new(key),
        })
    }
}

impl KeySource for SoftwareKey {
    fn open(&self) -> Result<Box<dyn KeySession>, TokenError> {
        Ok(Box::new(SoftwareSession {
            key: self.key.clone(),
            rng: SystemRandom::new(),
            killed: false,
        }))
    }

    fn key_type(&self) -> KeyType {
        match *self.key {
            Key::Ec(..) => KeyType::EcP256,
            Key::Rsa(_) => KeyType::Rsa,
        }
    }

    fn describe(&self) -> String {
        format!("software:{}", self.path.display())
    }
}

struct SoftwareSession {
    key: Arc<Key>,
    rng: SystemRandom,
    killed: bool,
}

impl KeySession for SoftwareSession {
    fn sign(&mut self, alg: SignatureAlgorithm, data: &[u8]) -> Result<Vec<u8>, TokenError> {
        if self.killed {
            return Err(TokenError::transient("session closed"));
        }
        let fail = |e: ring::error::Unspecified| TokenError::transient(format!("signing: {e}"));
        match (&*self.key, alg) {
            (Key::Ec(k, _), SignatureAlgorithm::EcdsaSha256) => {
                Ok(k.sign(&self.rng, data).map_err(fail)?.as_ref().to_vec())
            }
            (Key::Ec(_, k), _) if alg.key_type() == KeyType::EcP256 => {
                use p256::ecdsa::signature::hazmat::PrehashSigner;
                let s: p256::ecdsa::Signature = k
                    .sign_prehash(&alg.digest(data))
                    .map_err(|e| TokenError::transient(format!("signing: {e}")))?;
                Ok(s.to_bytes().to_vec())
            }
            (Key::Rsa(k), _) if alg.key_type() == KeyType::Rsa => {
                let padding: &'static dyn signature::RsaEncoding = match alg.hash() {
                    DigestAlgorithm::Sha256 => &signature::RSA_PKCS1_SHA256,
                    DigestAlgorithm::Sha384 => &signature::RSA_PKCS1_SHA384,
                    DigestAlgorithm::Sha512 => &signature::RSA_PKCS1_SHA512,
                };
                let mut out = vec![0; k.public().modulus_len()];
                k.sign(padding, &self.rng, data, &mut out).map_err(fail)?;
                Ok(out)
            }
            _ => Err(TokenError::permanent(format!(
                "the software token cannot sign {alg:?} with this key"
            ))),
        }
    }

    fn kill(&mut self) {
        self.killed = true;
    }
}
