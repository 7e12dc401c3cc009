//! The signature of a central server's configuration directory (reference §8.1): made over the
//! directory part's bytes by the key whose certificate the anchor (or the last good shared
//! parameters' `source`) holds, found by `Verification-certificate-hash`. Only the public key is
//! used, as X-Road does: no validity, chain or key-usage checks on that certificate.

use brama_xroad::globalconf::directory::{DirectoryError, SignedDirectory};

use crate::digest::DigestAlgorithm;
use crate::scheme::{self, EcdsaForm, Scheme};

/// Checks `dir`'s signature with whichever of `certs` (DER) its hash names.
pub fn verify(dir: &SignedDirectory, certs: &[Vec<u8>]) -> Result<(), DirectoryError> {
    let alg = DigestAlgorithm::from_uri(&dir.cert_hash_algorithm).ok_or_else(|| {
        DirectoryError::BadSignature(format!(
            "unsupported certificate hash algorithm {}",
            dir.cert_hash_algorithm
        ))
    })?;
    let cert = certs
        .iter()
        .find(|c| alg.digest(c) == dir.cert_hash)
        .ok_or_else(|| {
            use base64::Engine;
            DirectoryError::UnknownCertificate(
                base64::engine::general_purpose::STANDARD.encode(&dir.cert_hash),
            )
        })?;
    let (_, parsed) = x509_parser::parse_x509_certificate(cert)
        .map_err(|e| DirectoryError::BadSignature(format!("verification certificate: {e}")))?;
    let scheme = Scheme::from_xml_uri(&dir.signature_algorithm).ok_or_else(|| {
        DirectoryError::BadSignature(format!(
            "unsupported signature algorithm {}",
            dir.signature_algorithm
        ))
    })?;
    let key = &parsed.public_key().subject_public_key.data;
    // A central server's ECDSA signature is DER, as Java's Signature writes it.
    match scheme::verify(scheme, key, &dir.signed, &dir.signature, EcdsaForm::Der) {
        true => Ok(()),
        false => Err(DirectoryError::BadSignature(
            "the signature does not verify with the verification certificate".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use brama_xroad::globalconf::ConfigurationAnchor;
    use bytes::Bytes;

    const DIR: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/xroad/globalconf-download/"
    );

    fn read(rel: &str) -> Bytes {
        Bytes::from(std::fs::read(format!("{DIR}{rel}")).unwrap())
    }

    fn pem(rel: &str) -> Vec<u8> {
        let text = read(rel);
        let mut slice = text.as_ref();
        let first = rustls_pemfile::certs(&mut slice).next().unwrap().unwrap();
        first.to_vec()
    }

    fn anchor_certs(rel: &str) -> Vec<Vec<u8>> {
        let a = ConfigurationAnchor::parse(&read(rel)).unwrap();
        a.sources
            .into_iter()
            .flat_map(|s| s.verification_certs)
            .collect()
    }

    /// The vectors' verdicts (their README): each directory verifies with its certificate, the
    /// rotated one only once the rotated key is known, a changed byte never.
    #[test]
    fn x_roads_directories_verify() {
        let parse = |rel: &str| SignedDirectory::parse(&read(rel), None).unwrap();
        let dev = anchor_certs("anchors/configuration-anchor-DEV.xml");
        verify(&parse("public/V6/internalconf"), &dev).unwrap();
        let cs2023 = anchor_certs("anchors/configuration-anchor-CS-2023.xml");
        verify(&parse("public/V2/internalconf"), &cs2023).unwrap();
        verify(&parse("public/V3/internalconf"), &cs2023).unwrap();
        for (dir, cert) in [
            ("public/V5/internalconf", "certs/internal-signing-V5.pem"),
            ("public/V5/externalconf", "certs/external-signing-V5.pem"),
            ("public/V4/internalconf", "certs/internal-signing-V4.pem"),
            ("public/V6/externalconf", "certs/external-signing-V6.pem"),
            ("rotated/V6/externalconf", "certs/external-signing-V6.pem"),
        ] {
            verify(&parse(dir), &[pem(cert)]).unwrap_or_else(|e| panic!("{dir}: {e}"));
        }
        let rotated = parse("rotated/V6/internalconf");
        assert!(matches!(
            verify(&rotated, &dev),
            Err(DirectoryError::UnknownCertificate(_))
        ));
        verify(&rotated, &[pem("certs/internal-signing-rotated.pem")]).unwrap();
        // One changed byte in what is signed.
        let mut tampered = parse("public/V6/internalconf");
        let mut bytes = tampered.signed.to_vec();
        let i = bytes.len() - 20;
        bytes[i] ^= 1;
        tampered.signed = Bytes::from(bytes);
        assert!(matches!(
            verify(&tampered, &dev),
            Err(DirectoryError::BadSignature(_))
        ));
    }
}
