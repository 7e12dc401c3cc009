//! Message signatures (reference §4, §5): tokens and their sessions, the batch signer, the
//! signature XML and hash chains, and verification.
//!
//! The proxies see two things: [`Signer::sign`], which queues a message's parts for its member's
//! key and returns its signature parts, and [`Verifier::verify`], which checks a received
//! message's parts against its signature before anything is forwarded.
//!
//! Owns: keys and tokens (PKCS#11 and software), signature production and verification, ASiC
//! containers. Must not depend on: sockets, HTTP, the gateway's configuration file, the router;
//! only `brama-xroad` among brama's crates.

pub mod archive;
pub mod asic;
pub mod batch;
pub mod c14n;
pub mod conf;
pub mod der;
pub mod digest;
pub mod directory;
pub mod error;
pub mod hashchain;
mod known_batches;
pub mod ocsp;
pub mod pkcs11;
pub mod scheme;
pub mod software;
mod stored_zip;
pub mod token;
pub mod tsp;
pub mod verify;
pub mod xades;

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

use crate::conf::{KeyLocation, SignerConf};
use batch::{KeySettings, KeyWorker};
use brama_xroad::error::ErrorCode;
use brama_xroad::globalconf::GlobalConf;
use brama_xroad::identifiers::ClientId;
use digest::DigestAlgorithm;
use error::SignError;
use token::KeySource;

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

/// Every member signing key of this server, each with its own queue and sessions.
pub struct Signer {
    keys: HashMap<ClientId, Arc<KeyWorker>>,
    pub digest: DigestAlgorithm,
}

impl Signer {
    /// Opens every configured key. A PKCS#11 token that is not reachable yet does not stop the
    /// server: its sessions keep retrying, and requests wait (bounded by `signer.timeout_ms`).
    pub fn start(conf: &SignerConf) -> Result<Signer, String> {
        let mut keys = HashMap::new();
        for k in &conf.keys {
            let source = open_source(&k.location)
                .map_err(|e| format!("signing key of {}: {e}", k.member))?;
            let cert =
                xades::SignerCert::from_der(k.cert_chain[0].clone(), k.cert_chain[1..].to_vec())
                    .map_err(|e| format!("signing certificate of {}: {e}", k.member))?;
            let worker = KeyWorker::start(
                source,
                KeySettings {
                    member: k.member.clone(),
                    cert,
                    digest: conf.hash,
                    signature_digest: conf.signature_digest,
                    max_batch: conf.max_batch,
                    batch_wait: conf.batch_wait,
                    timeout: conf.timeout,
                    sessions: k.sessions,
                },
            );
            keys.insert(k.member.clone(), worker);
        }
        Ok(Signer {
            keys,
            digest: conf.hash,
        })
    }

    pub fn key(&self, member: &ClientId) -> Option<&Arc<KeyWorker>> {
        self.keys.get(&member.member_id())
    }

    fn key_of(&self, member: &ClientId) -> Result<&Arc<KeyWorker>, SignError> {
        self.key(member).ok_or_else(|| {
            SignError::new(
                ErrorCode::KeyNotFound,
                format!(
                    "no signing key is configured for member '{}'",
                    member.member_id()
                ),
            )
        })
    }

    pub fn keys(&self) -> impl Iterator<Item = &Arc<KeyWorker>> {
        self.keys.values()
    }

    /// Signs `parts` (`/message.xml` first, then attachments) with `member`'s key.
    pub async fn sign(
        &self,
        member: &ClientId,
        parts: &[&[u8]],
        force_chain: bool,
    ) -> Result<SignatureParts, SignError> {
        let key = self.key_of(member)?;
        let digests = parts.iter().map(|p| key.digest().digest(p)).collect();
        key.sign(digests, force_chain).await
    }

    /// Signs parts already digested with [`Signer::digest`] (bodies digested as they streamed).
    pub async fn sign_digests(
        &self,
        member: &ClientId,
        digests: Vec<Vec<u8>>,
        force_chain: bool,
    ) -> Result<SignatureParts, SignError> {
        let key = self.key_of(member)?;
        if key.digest() != self.digest {
            return Err(SignError::new(
                ErrorCode::InternalError,
                "the key's digest algorithm differs from the server's",
            ));
        }
        key.sign(digests, force_chain).await
    }

    pub fn stop(&self) {
        for k in self.keys.values() {
            k.stop();
        }
    }
}

impl Drop for Signer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn open_source(loc: &KeyLocation) -> Result<Arc<dyn KeySource>, String> {
    match loc {
        KeyLocation::Software { pkcs8, name } => {
            software::SoftwareKey::from_pkcs8(std::path::Path::new(name), pkcs8)
                .map(|k| Arc::new(k) as Arc<dyn KeySource>)
                .map_err(|e| e.message)
        }
        KeyLocation::Pkcs11 {
            module,
            env,
            token_label,
            token_serial,
            label,
            id,
            pin,
            mechanism,
        } => {
            let m = pkcs11::Module::load(&pkcs11::ModuleSettings {
                library: module.into(),
                env: env.clone(),
                mechanism: mechanism.clone(),
            })
            .map_err(|e| e.message)?;
            let key = match (id, label) {
                (Some(id), _) => pkcs11::KeyRef::Id(id.clone()),
                (None, Some(l)) => pkcs11::KeyRef::Label(l.clone()),
                (None, None) => return Err("a pkcs11 key needs a label or id".into()),
            };
            let pin = pin.read()?;
            pkcs11::Pkcs11Key::new(
                m,
                pkcs11::TokenRef {
                    label: token_label.clone(),
                    serial: token_serial.clone(),
                },
                key,
                pin,
                mechanism.clone(),
            )
            .map(|k| Arc::new(k) as Arc<dyn KeySource>)
            .map_err(|e| e.message)
        }
    }
}

/// Checks received signatures against the global configuration's approved CAs.
pub struct Verifier {
    pub trust: Arc<verify::TrustStore>,
}

impl Verifier {
    /// Trusts the approved CAs of `gc`; reads signature documents within `xml`.
    pub fn new(gc: &GlobalConf, xml: brama_xroad::xml::XmlLimits) -> Verifier {
        let mut trust = verify::TrustStore::from_globalconf(gc);
        trust.xml = xml;
        Verifier {
            trust: Arc::new(trust),
        }
    }

    /// Verifies that `member` signed exactly `parts` (message, then attachments).
    pub fn verify(
        &self,
        member: &ClientId,
        parts: &[&[u8]],
        sig: &SignatureParts,
    ) -> Result<verify::Verified, SignError> {
        let named = verify::Part::list(parts[0], parts[1..].iter().copied());
        self.verify_parts(member, &named, sig)
    }

    /// Verifies named parts, some of which may carry the digest made while they streamed.
    pub fn verify_parts(
        &self,
        member: &ClientId,
        named: &[verify::Part<'_>],
        sig: &SignatureParts,
    ) -> Result<verify::Verified, SignError> {
        let Some(signature) = &sig.signature else {
            return Err(SignError::new(
                ErrorCode::MissingSignature,
                "the message carries no signature",
            ));
        };
        verify::verify(
            verify::Signed {
                signature,
                hash_chain_result: sig.hash_chain_result.as_deref(),
                hash_chain: sig.hash_chain.as_deref(),
            },
            named,
            &self.trust,
            Some(member),
            verify::At::Now,
        )
    }
}
