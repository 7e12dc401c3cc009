//! Signature schemes a peer may use, and the one check of a signature value: XML-DSig's
//! `SignatureMethod` URIs (message signatures) and X.509 algorithm identifiers (OCSP responses)
//! both map to a [`Scheme`]. The verifier accepts more than brama signs with: RSA PKCS#1 v1.5 and
//! RSA-PSS with SHA-256/384/512, ECDSA on P-256 and P-384 with each of those digests (an X-Road
//! server with an EC key signs with its configured digest, SHA-512 by default), and SHA-1 RSA
//! for old OCSP responders only. ring verifies what it can; the p256/p384 crates verify the
//! ECDSA pairings ring lacks.

use ring::signature::{self as rs, UnparsedPublicKey};
use sha2::{Digest, Sha256, Sha384, Sha512};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hash {
    /// Only in OCSP responses of old responders (X-Road's 2014 test PKI signs them so).
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    RsaPkcs1(Hash),
    /// RSASSA-PSS with MGF1 over the same digest and a salt as long as the digest (RFC 6931's
    /// `*-rsa-MGF1` URIs; the parameters X-Road's signer uses).
    RsaPss(Hash),
    Ecdsa(Hash),
}

/// How an ECDSA value is encoded: XML-DSig writes `r ‖ s`, X.509 and OCSP a DER SEQUENCE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EcdsaForm {
    Fixed,
    Der,
}

const XMLDSIG_MORE: &str = "http://www.w3.org/2001/04/xmldsig-more#";
const XMLDSIG_MORE_2007: &str = "http://www.w3.org/2007/05/xmldsig-more#";

impl Scheme {
    /// The scheme of an XML-DSig `SignatureMethod`.
    pub fn from_xml_uri(uri: &str) -> Option<Scheme> {
        if let Some(name) = uri.strip_prefix(XMLDSIG_MORE) {
            return Some(match name {
                "rsa-sha256" => Scheme::RsaPkcs1(Hash::Sha256),
                "rsa-sha384" => Scheme::RsaPkcs1(Hash::Sha384),
                "rsa-sha512" => Scheme::RsaPkcs1(Hash::Sha512),
                "ecdsa-sha256" => Scheme::Ecdsa(Hash::Sha256),
                "ecdsa-sha384" => Scheme::Ecdsa(Hash::Sha384),
                "ecdsa-sha512" => Scheme::Ecdsa(Hash::Sha512),
                _ => return None,
            });
        }
        Some(match uri.strip_prefix(XMLDSIG_MORE_2007)? {
            "sha256-rsa-MGF1" => Scheme::RsaPss(Hash::Sha256),
            "sha384-rsa-MGF1" => Scheme::RsaPss(Hash::Sha384),
            "sha512-rsa-MGF1" => Scheme::RsaPss(Hash::Sha512),
            _ => return None,
        })
    }

    /// The scheme of a DER `AlgorithmIdentifier`'s content (OID, then parameters). RSA-PSS is
    /// accepted with the parameters [`Scheme::RsaPss`] describes.
    pub fn from_algorithm_identifier(content: &[u8]) -> Option<Scheme> {
        let (0x06, oid, params) = crate::der::der_read(content)? else {
            return None;
        };
        const RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01];
        const ECDSA: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03];
        Some(match oid {
            [rsa @ .., n] if rsa == RSA => match n {
                5 => Scheme::RsaPkcs1(Hash::Sha1),
                11 => Scheme::RsaPkcs1(Hash::Sha256),
                12 => Scheme::RsaPkcs1(Hash::Sha384),
                13 => Scheme::RsaPkcs1(Hash::Sha512),
                10 => Scheme::RsaPss(pss_hash(params)?),
                _ => return None,
            },
            [ec @ .., n] if ec == ECDSA => match n {
                2 => Scheme::Ecdsa(Hash::Sha256),
                3 => Scheme::Ecdsa(Hash::Sha384),
                4 => Scheme::Ecdsa(Hash::Sha512),
                _ => return None,
            },
            // ecdsa-with-SHA1 (1.2.840.10045.4.1) is not accepted.
            _ => return None,
        })
    }
}

/// The digest of RSASSA-PSS-params when they are the usual ones: the same digest for the
/// message and MGF1, and a salt as long as the digest.
fn pss_hash(params: &[u8]) -> Option<Hash> {
    let (0x30, mut fields, []) = crate::der::der_read(params)? else {
        return None;
    };
    let (mut hash, mut mgf_hash, mut salt) = (None, None, 20usize);
    while !fields.is_empty() {
        let (tag, content, rest) = crate::der::der_read(fields)?;
        fields = rest;
        let (_, inner, _) = crate::der::der_read(content)?;
        match tag {
            0xa0 => hash = hash_of_algorithm(inner),
            0xa1 => {
                // MGF1 (1.2.840.113549.1.1.8) with its digest's AlgorithmIdentifier.
                let (0x06, _, rest) = crate::der::der_read(inner)? else {
                    return None;
                };
                let (0x30, alg, _) = crate::der::der_read(rest)? else {
                    return None;
                };
                mgf_hash = hash_of_algorithm(alg);
            }
            0xa2 => salt = inner.iter().fold(0usize, |a, b| (a << 8) | usize::from(*b)),
            _ => {}
        }
    }
    let hash = hash?;
    (Some(hash) == mgf_hash && salt == hash.output_len()).then_some(hash)
}

/// A digest `AlgorithmIdentifier`'s content → its hash (SHA-2, and SHA-1 for old tokens).
pub(crate) fn hash_of_algorithm(content: &[u8]) -> Option<Hash> {
    let (0x06, oid, _) = crate::der::der_read(content)? else {
        return None;
    };
    match oid {
        [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, n] => match n {
            1 => Some(Hash::Sha256),
            2 => Some(Hash::Sha384),
            3 => Some(Hash::Sha512),
            _ => None,
        },
        [0x2b, 0x0e, 0x03, 0x02, 0x1a] => Some(Hash::Sha1),
        _ => None,
    }
}

impl Hash {
    pub fn output_len(self) -> usize {
        match self {
            Hash::Sha1 => 20,
            Hash::Sha256 => 32,
            Hash::Sha384 => 48,
            Hash::Sha512 => 64,
        }
    }

    pub(crate) fn digest(self, message: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha1 => ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, message)
                .as_ref()
                .to_vec(),
            Hash::Sha256 => Sha256::digest(message).to_vec(),
            Hash::Sha384 => Sha384::digest(message).to_vec(),
            Hash::Sha512 => Sha512::digest(message).to_vec(),
        }
    }
}

/// Whether `sig` is `scheme`'s signature over `message` by `key`, the `subjectPublicKey` bits of
/// the signer's certificate (PKCS#1 RSAPublicKey, or the SEC1 point for EC keys).
pub fn verify(scheme: Scheme, key: &[u8], message: &[u8], sig: &[u8], form: EcdsaForm) -> bool {
    let ring_alg: &'static dyn rs::VerificationAlgorithm = match scheme {
        Scheme::RsaPkcs1(Hash::Sha1) => &rs::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY,
        Scheme::RsaPkcs1(Hash::Sha256) => &rs::RSA_PKCS1_2048_8192_SHA256,
        Scheme::RsaPkcs1(Hash::Sha384) => &rs::RSA_PKCS1_2048_8192_SHA384,
        Scheme::RsaPkcs1(Hash::Sha512) => &rs::RSA_PKCS1_2048_8192_SHA512,
        Scheme::RsaPss(Hash::Sha256) => &rs::RSA_PSS_2048_8192_SHA256,
        Scheme::RsaPss(Hash::Sha384) => &rs::RSA_PSS_2048_8192_SHA384,
        Scheme::RsaPss(Hash::Sha512) => &rs::RSA_PSS_2048_8192_SHA512,
        Scheme::RsaPss(Hash::Sha1) | Scheme::Ecdsa(Hash::Sha1) => return false,
        Scheme::Ecdsa(hash) => {
            // The curve is the key's: a 65-byte point is P-256, 97 bytes P-384.
            let half = match key.len() {
                65 => 32,
                97 => 48,
                _ => return false,
            };
            let fixed = match form {
                EcdsaForm::Fixed => std::borrow::Cow::Borrowed(sig),
                EcdsaForm::Der => match crate::der::ecdsa_der_to_raw(sig, half) {
                    Some(raw) => std::borrow::Cow::Owned(raw),
                    None => return false,
                },
            };
            return ecdsa(hash, key, message, &fixed);
        }
    };
    UnparsedPublicKey::new(ring_alg, key)
        .verify(message, sig)
        .is_ok()
}

/// ECDSA over `r ‖ s`: ring for the pairings it has (P-256/SHA-256, Trembita's, the fastest;
/// P-384/SHA-384), the p256/p384 crates for the rest. A digest longer than the curve is cut to
/// its size, as ECDSA defines.
fn ecdsa(hash: Hash, key: &[u8], message: &[u8], sig: &[u8]) -> bool {
    let by_ring: Option<&'static rs::EcdsaVerificationAlgorithm> = match (hash, sig.len()) {
        (Hash::Sha256, 64) => Some(&rs::ECDSA_P256_SHA256_FIXED),
        (Hash::Sha384, 96) => Some(&rs::ECDSA_P384_SHA384_FIXED),
        _ => None,
    };
    if let Some(alg) = by_ring {
        return UnparsedPublicKey::new(alg, key)
            .verify(message, sig)
            .is_ok();
    }
    let digest = hash.digest(message);
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    // The same three steps for each curve's crate.
    macro_rules! on_curve {
        ($curve:ident) => {
            match (
                $curve::ecdsa::VerifyingKey::from_sec1_bytes(key),
                $curve::ecdsa::Signature::from_slice(sig),
            ) {
                (Ok(k), Ok(s)) => k.verify_prehash(&digest, &s).is_ok(),
                _ => false,
            }
        };
    }
    match sig.len() {
        64 => on_curve!(p256),
        96 => on_curve!(p384),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::SignatureAlgorithm;

    fn check(alg: SignatureAlgorithm, key: &[u8], msg: &[u8], sig: &[u8]) -> bool {
        let scheme = Scheme::from_xml_uri(alg.uri()).unwrap();
        verify(scheme, key, msg, sig, EcdsaForm::Fixed)
    }
    use p256::ecdsa::signature::hazmat::PrehashSigner;

    /// Every digest on both curves: a signature verifies, one over another message does not,
    /// and one by another key does not.
    #[test]
    fn every_digest_on_both_curves() {
        let msg = b"<ds:SignedInfo>...</ds:SignedInfo>";
        for alg in [
            SignatureAlgorithm::EcdsaSha256,
            SignatureAlgorithm::EcdsaSha384,
            SignatureAlgorithm::EcdsaSha512,
        ] {
            let digest = |m: &[u8]| match alg {
                SignatureAlgorithm::EcdsaSha256 => Sha256::digest(m).to_vec(),
                SignatureAlgorithm::EcdsaSha384 => Sha384::digest(m).to_vec(),
                _ => Sha512::digest(m).to_vec(),
            };
            let k256 = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
            let s: p256::ecdsa::Signature = k256.sign_prehash(&digest(msg)).unwrap();
            let pub256 = k256.verifying_key().to_encoded_point(false);
            assert!(
                check(alg, pub256.as_bytes(), msg, &s.to_bytes()),
                "{alg:?} P-256"
            );
            assert!(!check(alg, pub256.as_bytes(), b"other", &s.to_bytes()));
            let other = p256::ecdsa::SigningKey::from_slice(&[9u8; 32]).unwrap();
            let other_pub = other.verifying_key().to_encoded_point(false);
            assert!(!check(alg, other_pub.as_bytes(), msg, &s.to_bytes()));

            let k384 = p384::ecdsa::SigningKey::from_slice(&[7u8; 48]).unwrap();
            let s: p384::ecdsa::Signature = k384.sign_prehash(&digest(msg)).unwrap();
            let pub384 = k384.verifying_key().to_encoded_point(false);
            assert!(
                check(alg, pub384.as_bytes(), msg, &s.to_bytes()),
                "{alg:?} P-384"
            );
            assert!(!check(alg, pub384.as_bytes(), b"other", &s.to_bytes()));
        }
        assert!(!check(SignatureAlgorithm::EcdsaSha512, b"", msg, &[0; 64]));
        assert!(!check(SignatureAlgorithm::RsaSha256, b"", msg, &[0; 64]));
    }

    /// Runs openssl in `dir`; its output.
    fn openssl(dir: &std::path::Path, args: &[&str]) -> Vec<u8> {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl (scripts/test.sh installs it)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Signatures made by an independent signer, `openssl dgst -sign`, as an X-Road server with
    /// an EC key makes them: P-256 with SHA-512, and the other pairings.
    #[test]
    fn openssl_signatures_verify() {
        let dir = tempfile::tempdir().unwrap();
        let run = |args: &[&str]| openssl(dir.path(), args);
        let msg =
            "<ds:SignedInfo xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\">…</ds:SignedInfo>";
        std::fs::write(dir.path().join("msg"), msg).unwrap();
        for (curve, half) in [("prime256v1", 32), ("secp384r1", 48)] {
            run(&[
                "ecparam", "-name", curve, "-genkey", "-noout", "-out", "key.pem",
            ]);
            let spki = run(&["ec", "-in", "key.pem", "-pubout", "-outform", "DER"]);
            // The SubjectPublicKeyInfo ends with the uncompressed point.
            let point = &spki[spki.len() - (2 * half + 1)..];
            for (alg, dgst) in [
                (SignatureAlgorithm::EcdsaSha256, "-sha256"),
                (SignatureAlgorithm::EcdsaSha384, "-sha384"),
                (SignatureAlgorithm::EcdsaSha512, "-sha512"),
            ] {
                let der = run(&["dgst", dgst, "-sign", "key.pem", "msg"]);
                let raw = crate::der::ecdsa_der_to_raw(&der, half).unwrap();
                assert!(check(alg, point, msg.as_bytes(), &raw), "{curve} {dgst}");
                assert!(!check(alg, point, b"changed", &raw), "{curve} {dgst}");
                // The DER form, as OCSP responses carry it.
                let scheme = Scheme::from_xml_uri(alg.uri()).unwrap();
                assert!(verify(scheme, point, msg.as_bytes(), &der, EcdsaForm::Der));
            }
        }
    }

    /// RSA as X-Road's signer makes it, PKCS#1 v1.5 and PSS (MGF1, salt = digest length) with
    /// each digest, signed by openssl and verified by URI.
    #[test]
    fn openssl_rsa_signatures_verify() {
        use x509_parser::prelude::FromDer;
        let dir = tempfile::tempdir().unwrap();
        let run = |args: &[&str]| openssl(dir.path(), args);
        std::fs::write(dir.path().join("msg"), b"<ds:SignedInfo/>").unwrap();
        run(&[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "rsa.pem",
        ]);
        let spki_der = run(&["pkey", "-in", "rsa.pem", "-pubout", "-outform", "DER"]);
        let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(&spki_der).unwrap();
        let key = &spki.subject_public_key.data;
        for bits in ["256", "384", "512"] {
            let dgst = format!("-sha{bits}");
            let pkcs1 = run(&["dgst", &dgst, "-sign", "rsa.pem", "msg"]);
            let uri = format!("http://www.w3.org/2001/04/xmldsig-more#rsa-sha{bits}");
            let scheme = Scheme::from_xml_uri(&uri).unwrap();
            assert!(
                verify(scheme, key, b"<ds:SignedInfo/>", &pkcs1, EcdsaForm::Fixed),
                "{uri}"
            );
            assert!(
                !verify(scheme, key, b"changed", &pkcs1, EcdsaForm::Fixed),
                "{uri}"
            );
            let pss = run(&[
                "dgst",
                &dgst,
                "-sigopt",
                "rsa_padding_mode:pss",
                "-sigopt",
                "rsa_pss_saltlen:digest",
                "-sign",
                "rsa.pem",
                "msg",
            ]);
            let uri = format!("http://www.w3.org/2007/05/xmldsig-more#sha{bits}-rsa-MGF1");
            let scheme = Scheme::from_xml_uri(&uri).unwrap();
            assert!(
                verify(scheme, key, b"<ds:SignedInfo/>", &pss, EcdsaForm::Fixed),
                "{uri}"
            );
            // A PSS signature is not a PKCS#1 v1.5 one.
            let pkcs1_scheme = Scheme::RsaPkcs1(scheme_hash(scheme));
            assert!(!verify(
                pkcs1_scheme,
                key,
                b"<ds:SignedInfo/>",
                &pss,
                EcdsaForm::Fixed
            ));
        }
    }

    fn scheme_hash(s: Scheme) -> Hash {
        match s {
            Scheme::RsaPkcs1(h) | Scheme::RsaPss(h) | Scheme::Ecdsa(h) => h,
        }
    }

    /// X.509 algorithm identifiers, PSS with its parameters.
    #[test]
    fn algorithm_identifiers() {
        let sha256_rsa = [
            0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00,
        ];
        assert_eq!(
            Scheme::from_algorithm_identifier(&sha256_rsa),
            Some(Scheme::RsaPkcs1(Hash::Sha256))
        );
        let ecdsa512 = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04];
        assert_eq!(
            Scheme::from_algorithm_identifier(&ecdsa512),
            Some(Scheme::Ecdsa(Hash::Sha512))
        );
        // RSASSA-PSS, SHA-256, MGF1-SHA-256, salt 32 (what openssl writes for -sigopt ...:digest).
        let pss = hex::decode(
            "06092a864886f70d01010a3034a00f300d06096086480165030402010500a11c301a06092a864886f70d010108300d06096086480165030402010500a203020120",
        )
        .unwrap();
        assert_eq!(
            Scheme::from_algorithm_identifier(&pss),
            Some(Scheme::RsaPss(Hash::Sha256))
        );
        assert_eq!(Scheme::from_algorithm_identifier(&[0x06, 0x01, 0x00]), None);
        assert_eq!(Scheme::from_algorithm_identifier(b""), None);
    }
}
