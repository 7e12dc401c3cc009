//! A central server's publishing half, for test networks (`brama globalconf publish`, the
//! integration tests): signs a directory of global configuration files as a central server does
//! (reference §8.1, PR-GCONF: version 5, every file's SHA-512 listed, the listing signed with
//! ECDSA P-256 over SHA-256, the signer named by the SHA-512 of its certificate), with a fresh
//! `Expire-date` each time it is asked, and writes the anchor servers are given.

use std::path::Path;
use std::sync::Mutex;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;
use ring::rand::SystemRandom;
use ring::signature::EcdsaKeyPair;
use sha2::{Digest, Sha512};

use brama_xroad::globalconf::directory::{write_directory, write_listing, WrittenEntry};

const SHA512: &str = "http://www.w3.org/2001/04/xmlenc#sha512";
const ECDSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256";

/// The files a publisher serves: content identifier and file name, and the bytes.
struct Files {
    shared: Bytes,
    private: Option<Bytes>,
}

/// A fault put into what is served, for tests of the downloading side.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Tamper {
    #[default]
    None,
    /// A byte of the signed listing changed after signing.
    Directory,
    /// A listed file changed after its hash was listed.
    File,
}

pub struct Publisher {
    pub instance: String,
    pub tamper: Mutex<Tamper>,
    files: Mutex<Files>,
    key: EcdsaKeyPair,
    cert_der: Vec<u8>,
    /// How long each directory stays valid (X-Road's `confExpireIntervalSeconds`, 600 s).
    pub expire_after_s: Mutex<i64>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

/// One published directory: its body and the files it lists, by path.
pub struct Published {
    pub directory: Bytes,
    pub files: Vec<(String, Bytes)>,
}

impl Publisher {
    /// Publishes `dir` (laid out as brama reads a global configuration: `instance-identifier`,
    /// `<INSTANCE>/shared-params.xml`, optionally `private-params.xml`), signing with the P-256
    /// key of `cert_pem`.
    pub fn from_dir(dir: &Path, cert_pem: &str, key_pem: &str) -> Result<Publisher, String> {
        let read = |rel: &str| {
            let p = dir.join(rel);
            std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))
        };
        Publisher::from_read(read, cert_pem, key_pem)
    }

    /// [`Publisher::from_dir`] over any file source: `read` gives a file by its path relative
    /// to the configuration directory (the embedded default's files have no directory).
    pub fn from_read(
        read: impl Fn(&str) -> Result<Vec<u8>, String>,
        cert_pem: &str,
        key_pem: &str,
    ) -> Result<Publisher, String> {
        let instance = String::from_utf8_lossy(&read("instance-identifier")?)
            .trim()
            .to_string();
        let shared = Bytes::from(read(&format!("{instance}/shared-params.xml"))?);
        let private = read(&format!("{instance}/private-params.xml"))
            .ok()
            .map(Bytes::from);
        let cert_der = match rustls_pemfile::certs(&mut cert_pem.as_bytes()).next() {
            Some(Ok(c)) => c.to_vec(),
            _ => return Err("no PEM certificate for the signing key".into()),
        };
        let key = crate::pki::p256_signing_key(key_pem, "the signing key")?;
        Ok(Publisher {
            instance,
            tamper: Mutex::default(),
            files: Mutex::new(Files { shared, private }),
            key,
            cert_der,
            expire_after_s: Mutex::new(600),
        })
    }

    /// Publishes other shared parameters from now on (a central server's change).
    pub fn set_shared(&self, xml: Bytes) {
        self.files.lock().unwrap_or_else(|p| p.into_inner()).shared = xml;
    }

    /// A directory signed now, expiring `expire_after_s` from `now` (Unix seconds).
    pub fn publish(&self, now: i64) -> Published {
        let files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        let stamp = format!("/V5/{now}");
        let mut listed: Vec<(&str, String, Bytes)> = Vec::new();
        if let Some(p) = &files.private {
            listed.push((
                "PRIVATE-PARAMETERS",
                format!("{stamp}/private-params.xml"),
                p.clone(),
            ));
        }
        listed.push((
            "SHARED-PARAMETERS",
            format!("{stamp}/shared-params.xml"),
            files.shared.clone(),
        ));
        drop(files);
        let hashes: Vec<Vec<u8>> = listed
            .iter()
            .map(|(_, _, b)| Sha512::digest(b).to_vec())
            .collect();
        let entries: Vec<WrittenEntry<'_>> = listed
            .iter()
            .zip(&hashes)
            .map(|((id, location, _), hash)| WrittenEntry {
                content_identifier: id,
                instance: &self.instance,
                location,
                hash_algorithm: SHA512,
                hash,
            })
            .collect();
        let expire_after = *self
            .expire_after_s
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let (listing_type, signed) = write_listing(&rfc3339(now + expire_after), 5, &entries);
        // ring signs with fresh randomness; a failure would be a broken RNG.
        let signature = self
            .key
            .sign(&SystemRandom::new(), &signed)
            .map(|s| s.as_ref().to_vec())
            .unwrap_or_default();
        let directory = write_directory(
            &listing_type,
            &signed,
            ECDSA_SHA256,
            &signature,
            SHA512,
            &Sha512::digest(&self.cert_der),
        );
        let mut files: Vec<(String, Bytes)> = listed.into_iter().map(|(_, l, b)| (l, b)).collect();
        let tamper = *self.tamper.lock().unwrap_or_else(|p| p.into_inner());
        let directory = match tamper {
            Tamper::Directory => {
                // The first hash value's first character, inside what is signed.
                let mut d = directory.to_vec();
                let at = d
                    .windows(4)
                    .position(|w| w == b"==\r\n")
                    .map_or(d.len() / 2, |i| i - 5);
                d[at] = if d[at] == b'A' { b'B' } else { b'A' };
                Bytes::from(d)
            }
            _ => directory,
        };
        if tamper == Tamper::File {
            if let Some((_, b)) = files.last_mut() {
                let mut changed = b.to_vec();
                changed.extend_from_slice(b"<!-- changed -->");
                *b = Bytes::from(changed);
            }
        }
        Published { directory, files }
    }

    /// The configuration anchor for servers that download from `download_url`.
    pub fn anchor_xml(&self, download_url: &str) -> String {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n\
             <ns3:configurationAnchor xmlns:ns2=\"http://x-road.eu/xsd/identifiers\" xmlns:ns3=\"http://x-road.eu/xsd/xroad.xsd\">\n\
             \x20   <generatedAt>{}</generatedAt>\n\
             \x20   <instanceIdentifier>{}</instanceIdentifier>\n\
             \x20   <source>\n\
             \x20       <downloadURL>{download_url}</downloadURL>\n\
             \x20       <verificationCert>{}</verificationCert>\n\
             \x20   </source>\n\
             </ns3:configurationAnchor>\n",
            rfc3339(time::OffsetDateTime::now_utc().unix_timestamp()),
            self.instance,
            B64.encode(&self.cert_der)
        )
    }
}

use brama_xroad::time::rfc3339;
