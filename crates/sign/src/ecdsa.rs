//! ECDSA verification for every curve and digest a peer may pair: ring verifies XML-DSig's fixed
//! `r ‖ s` form only for P-256 with SHA-256 and P-384 with SHA-384, while an X-Road server with
//! an EC key signs with its configured digest, SHA-512 by default.

use sha2::{Digest, Sha256, Sha384, Sha512};

use super::token::SignatureAlgorithm;

/// Whether `sig` (`r ‖ s`, as XML-DSig writes it) is `alg`'s signature over `message` by the
/// SEC1 public key `key`. The curve is the signature's: 64 bytes for P-256, 96 for P-384. A
/// digest longer than the curve is cut to its size, as ECDSA defines.
pub(crate) fn verify(alg: SignatureAlgorithm, key: &[u8], message: &[u8], sig: &[u8]) -> bool {
    let digest = match alg {
        SignatureAlgorithm::EcdsaSha256 => Sha256::digest(message).to_vec(),
        SignatureAlgorithm::EcdsaSha384 => Sha384::digest(message).to_vec(),
        SignatureAlgorithm::EcdsaSha512 => Sha512::digest(message).to_vec(),
        SignatureAlgorithm::RsaSha256 | SignatureAlgorithm::RsaSha512 => return false,
    };
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
                verify(alg, pub256.as_bytes(), msg, &s.to_bytes()),
                "{alg:?} P-256"
            );
            assert!(!verify(alg, pub256.as_bytes(), b"other", &s.to_bytes()));
            let other = p256::ecdsa::SigningKey::from_slice(&[9u8; 32]).unwrap();
            let other_pub = other.verifying_key().to_encoded_point(false);
            assert!(!verify(alg, other_pub.as_bytes(), msg, &s.to_bytes()));

            let k384 = p384::ecdsa::SigningKey::from_slice(&[7u8; 48]).unwrap();
            let s: p384::ecdsa::Signature = k384.sign_prehash(&digest(msg)).unwrap();
            let pub384 = k384.verifying_key().to_encoded_point(false);
            assert!(
                verify(alg, pub384.as_bytes(), msg, &s.to_bytes()),
                "{alg:?} P-384"
            );
            assert!(!verify(alg, pub384.as_bytes(), b"other", &s.to_bytes()));
        }
        assert!(!verify(SignatureAlgorithm::EcdsaSha512, b"", msg, &[0; 64]));
        assert!(!verify(SignatureAlgorithm::RsaSha256, b"", msg, &[0; 64]));
    }

    /// Signatures made by an independent signer, `openssl dgst -sign`, as an X-Road server with
    /// an EC key makes them: P-256 with SHA-512, and the other pairings.
    #[test]
    fn openssl_signatures_verify() {
        use std::process::Command;
        let dir = tempfile::tempdir().unwrap();
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir.path())
                .output()
                .expect("openssl (scripts/test.sh installs it)");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            out.stdout
        };
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
                assert!(verify(alg, point, msg.as_bytes(), &raw), "{curve} {dgst}");
                assert!(!verify(alg, point, b"changed", &raw), "{curve} {dgst}");
            }
        }
    }
}
