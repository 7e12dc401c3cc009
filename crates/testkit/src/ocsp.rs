//! A test OCSP responder's signing half: answers `OCSPRequest`s for one CA with responses its
//! responder certificate signs (ECDSA P-256 with SHA-256, the certificate included), and keeps
//! the revocations a test makes. The simulator serves it over HTTP; tests also run `openssl ocsp`
//! as an independent responder.

use std::collections::HashMap;
use std::sync::Mutex;

use brama_sign::der::{generalized_time_tlv, tlv};
use brama_sign::ocsp::{parse_request, sha1, CertIdFields, SHA1_ALGORITHM};
use ring::rand::SystemRandom;
use ring::signature::EcdsaKeyPair;

/// ecdsa-with-SHA256 (1.2.840.10045.4.3.2).
const ECDSA_SHA256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
/// id-pkix-ocsp-basic.
const OID_BASIC: &[u8] = &[
    0x06, 0x09, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01,
];

pub struct Responder {
    cert_der: Vec<u8>,
    subject: Vec<u8>,
    key: EcdsaKeyPair,
    /// SHA-1 of the CA's name and key, as CertIDs state them.
    ca_name_hash: [u8; 20],
    ca_key_hash: [u8; 20],
    /// Serial (INTEGER content) → revocation time (Unix seconds).
    revoked: Mutex<HashMap<Vec<u8>, i64>>,
    /// `nextUpdate` this long after `thisUpdate`; none when `None`.
    pub next_update_after: Option<i64>,
}

// Hand-written: the key must never be printed.
impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responder").finish_non_exhaustive()
    }
}

impl Responder {
    /// A responder for `ca_der` signing with `cert_der` and its PKCS#8 PEM key.
    pub fn new(ca_der: &[u8], cert_der: &[u8], key_pem: &str) -> Result<Responder, String> {
        let (_, ca) = x509_parser::parse_x509_certificate(ca_der).map_err(|e| e.to_string())?;
        let (_, cert) = x509_parser::parse_x509_certificate(cert_der).map_err(|e| e.to_string())?;
        let key = crate::pki::p256_signing_key(key_pem, "the responder key")?;
        Ok(Responder {
            cert_der: cert_der.to_vec(),
            subject: cert.subject().as_raw().to_vec(),
            key,
            ca_name_hash: sha1(ca.subject().as_raw()),
            ca_key_hash: sha1(&ca.public_key().subject_public_key.data),
            revoked: Mutex::default(),
            next_update_after: None,
        })
    }

    /// [`Responder::new`] from PEM texts.
    pub fn from_pem(ca_pem: &str, cert_pem: &str, key_pem: &str) -> Result<Responder, String> {
        let der = |pem: &str, what: &str| -> Result<Vec<u8>, String> {
            match rustls_pemfile::certs(&mut pem.as_bytes()).next() {
                Some(Ok(c)) => Ok(c.to_vec()),
                _ => Err(format!("no PEM certificate in the {what}")),
            }
        };
        Responder::new(
            &der(ca_pem, "CA file")?,
            &der(cert_pem, "responder file")?,
            key_pem,
        )
    }

    /// From now on, answers `revoked` (since `at`) for the certificate with this serial.
    pub fn revoke(&self, cert_der: &[u8], at: i64) -> Result<(), String> {
        let (_, cert) = x509_parser::parse_x509_certificate(cert_der).map_err(|e| e.to_string())?;
        self.revoked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(cert.raw_serial().to_vec(), at);
        Ok(())
    }

    /// The `OCSPResponse` to a request at `now` (Unix seconds): `malformedRequest` for bytes
    /// that are not a request; for each certificate, `unknown` when another CA issued it.
    pub fn respond(&self, request: &[u8], now: i64) -> Vec<u8> {
        match parse_request(request) {
            Ok(ids) => self.response(&ids, now),
            Err(_) => tlv(0x30, &tlv(0x0a, &[1])),
        }
    }

    /// A signed response about `cert_ids` (whole CertID TLVs) at `now`.
    pub fn response(&self, cert_ids: &[&[u8]], now: i64) -> Vec<u8> {
        let revoked = self.revoked.lock().unwrap_or_else(|p| p.into_inner());
        let mut singles = Vec::new();
        for id in cert_ids {
            let status = match CertIdFields::parse(id) {
                Some(f)
                    if f.hash_algorithm == SHA1_ALGORITHM
                        && f.issuer_name_hash == self.ca_name_hash
                        && f.issuer_key_hash == self.ca_key_hash =>
                {
                    match revoked.get(f.serial) {
                        Some(at) => tlv(0xa1, &generalized_time_tlv(*at)),
                        None => vec![0x80, 0x00],
                    }
                }
                _ => vec![0x82, 0x00],
            };
            let mut single = [*id, &status, &generalized_time_tlv(now)].concat();
            if let Some(after) = self.next_update_after {
                single.extend(tlv(0xa0, &generalized_time_tlv(now + after)));
            }
            singles.extend(tlv(0x30, &single));
        }
        let tbs = tlv(
            0x30,
            &[
                tlv(0xa1, &self.subject),
                generalized_time_tlv(now),
                tlv(0x30, &singles),
            ]
            .concat(),
        );
        // ring signs with fresh randomness; a failure here would be a broken RNG.
        let signature = self
            .key
            .sign(&SystemRandom::new(), &tbs)
            .map(|s| s.as_ref().to_vec())
            .unwrap_or_default();
        let basic = tlv(
            0x30,
            &[
                tbs,
                tlv(0x30, ECDSA_SHA256),
                tlv(0x03, &[&[0u8][..], &signature].concat()),
                tlv(0xa0, &tlv(0x30, &self.cert_der)),
            ]
            .concat(),
        );
        let bytes = tlv(0x30, &[OID_BASIC.to_vec(), tlv(0x04, &basic)].concat());
        tlv(0x30, &[tlv(0x0a, &[0]), tlv(0xa0, &bytes)].concat())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use brama_sign::ocsp::{cert_id, request, verify, Policy, Responders};
    use brama_xroad::error::ErrorCode;

    const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../certs-test/");

    fn pem_der(name: &str) -> Vec<u8> {
        let text = std::fs::read(format!("{DIR}{name}")).unwrap();
        let first = rustls_pemfile::certs(&mut text.as_slice())
            .next()
            .unwrap()
            .unwrap();
        first.to_vec()
    }

    fn responder() -> Responder {
        let key = std::fs::read_to_string(format!("{DIR}ocsp-responder.key")).unwrap();
        Responder::new(&pem_der("ca.pem"), &pem_der("ocsp-responder.pem"), &key).unwrap()
    }

    /// What the test responder says verifies under X-Road's rules, good then revoked; a
    /// certificate of another CA is unknown.
    #[test]
    fn answers_verify_under_x_roads_rules() {
        let r = responder();
        let ca = pem_der("ca.pem");
        let signer = pem_der("sign-GOV-00000001.pem");
        let (_, subject) = x509_parser::parse_x509_certificate(&signer).unwrap();
        let (_, issuer) = x509_parser::parse_x509_certificate(&ca).unwrap();
        let id = cert_id(&subject, &issuer);
        let now = 1_800_000_000;
        let answer = r.respond(&request(std::slice::from_ref(&id)), now);
        let known = [ca.clone()];
        let responders = Responders {
            listed: &[],
            known: &known,
        };
        verify(
            &answer,
            &subject,
            &ca,
            responders,
            now + 10,
            Policy::default(),
        )
        .unwrap();
        r.revoke(&signer, now - 5).unwrap();
        let answer = r.respond(&request(std::slice::from_ref(&id)), now);
        let err = verify(&answer, &subject, &ca, responders, now, Policy::default()).unwrap_err();
        assert_eq!(err.code, ErrorCode::CertValidation);
        // A CertID of another issuer: unknown.
        let other_der = pem_der("ss1-auth.pem");
        let (_, other) = x509_parser::parse_x509_certificate(&other_der).unwrap();
        let foreign = cert_id(&subject, &other);
        let answer = r.respond(&request(&[foreign]), now);
        let parsed = brama_sign::ocsp::parse(&answer).unwrap();
        assert_eq!(parsed.status, brama_sign::ocsp::CertStatus::Unknown);
        // Garbage: malformedRequest.
        let refused = r.respond(b"not DER", now);
        assert_eq!(
            brama_sign::ocsp::parse(&refused).unwrap_err(),
            "the responder answered malformedRequest"
        );
    }

    /// openssl, an independent reader, verifies the test responder's answers.
    #[test]
    fn openssl_verifies_the_answers() {
        let dir = tempfile::tempdir().unwrap();
        let r = responder();
        let ca = pem_der("ca.pem");
        let signer = pem_der("sign-GOV-00000002.pem");
        let (_, subject) = x509_parser::parse_x509_certificate(&signer).unwrap();
        let (_, issuer) = x509_parser::parse_x509_certificate(&ca).unwrap();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let answer = r.response(&[&cert_id(&subject, &issuer)], now);
        std::fs::write(dir.path().join("resp.der"), answer).unwrap();
        let out = std::process::Command::new("openssl")
            .args(["ocsp", "-respin", "resp.der", "-CAfile"])
            .arg(format!("{DIR}ca.pem"))
            .arg("-issuer")
            .arg(format!("{DIR}ca.pem"))
            .arg("-cert")
            .arg(format!("{DIR}sign-GOV-00000002.pem"))
            .current_dir(dir.path())
            .output()
            .expect("openssl (scripts/test.sh installs it)");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{text}");
        assert!(text.contains("Response verify OK"), "{text}");
        assert!(text.contains(": good"), "{text}");
    }

    /// `openssl ocsp` as an independent responder, from its index file: brama's requests are
    /// understood, and its answers verify under X-Road's rules, good and revoked.
    #[test]
    fn openssl_as_the_responder() {
        let dir = tempfile::tempdir().unwrap();
        let ca = pem_der("ca.pem");
        let (_, issuer) = x509_parser::parse_x509_certificate(&ca).unwrap();
        let good = pem_der("sign-GOV-00000003.pem");
        let revoked = pem_der("sign-GOV-00000004.pem");
        let (_, good_cert) = x509_parser::parse_x509_certificate(&good).unwrap();
        let (_, revoked_cert) = x509_parser::parse_x509_certificate(&revoked).unwrap();
        let index = format!(
            "V\t440101000000Z\t\t{}\tunknown\t/CN=00000003\n\
             R\t440101000000Z\t250101000000Z\t{}\tunknown\t/CN=00000004\n",
            hex_upper(good_cert.raw_serial()),
            hex_upper(revoked_cert.raw_serial())
        );
        std::fs::write(dir.path().join("index.txt"), index).unwrap();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let known = [ca.clone()];
        let responders = Responders {
            listed: &[],
            known: &known,
        };
        for (cert, status) in [
            (&good_cert, None),
            (&revoked_cert, Some(ErrorCode::CertValidation)),
        ] {
            let req = request(&[cert_id(cert, &issuer)]);
            std::fs::write(dir.path().join("req.der"), req).unwrap();
            let out = std::process::Command::new("openssl")
                .args([
                    "ocsp",
                    "-index",
                    "index.txt",
                    "-reqin",
                    "req.der",
                    "-respout",
                    "resp.der",
                ])
                .arg("-CA")
                .arg(format!("{DIR}ca.pem"))
                .arg("-rsigner")
                .arg(format!("{DIR}ocsp-responder.pem"))
                .arg("-rkey")
                .arg(format!("{DIR}ocsp-responder.key"))
                .current_dir(dir.path())
                .output()
                .expect("openssl (scripts/test.sh installs it)");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let answer = std::fs::read(dir.path().join("resp.der")).unwrap();
            let verdict = verify(&answer, cert, &ca, responders, now, Policy::default());
            assert_eq!(verdict.err().map(|e| e.code), status);
        }
    }

    fn hex_upper(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02X}")).collect()
    }
}
