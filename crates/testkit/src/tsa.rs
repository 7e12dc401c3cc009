//! A test time-stamping authority's signing half (RFC 3161): answers `TimeStampReq`s with
//! granted replies whose tokens its certificate signs (ECDSA P-256 with SHA-256; signed
//! attributes contentType, signingTime, messageDigest and ESS signingCertificateV2; the
//! certificate included when asked for). The simulator serves it over HTTP; the tests also
//! time-stamp with `openssl ts -reply` as an independent TSA and check these tokens with
//! `openssl ts -verify`.

use std::sync::atomic::{AtomicU64, Ordering};

use brama_sign::der::{der_uint, generalized_time_tlv, tlv};
use brama_sign::tsp::parse_request;
use ring::rand::SystemRandom;
use ring::signature::EcdsaKeyPair;
use sha2::{Digest, Sha256};

use brama_sign::tsp::{OID_MESSAGE_DIGEST, OID_SIGNED_DATA, OID_SIGNING_TIME, OID_TST_INFO};

/// contentType (1.2.840.113549.1.9.3) and signingCertificateV2, the attributes the verifier
/// does not read.
const OID_CONTENT_TYPE: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x03];
const OID_SIGNING_CERT_V2: &[u8] = &[
    0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x02, 0x2f,
];
const OID_SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
const OID_ECDSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
/// The test TSA's policy (1.3.6.1.4.1.55555.1.1, a private arc for tests).
const POLICY: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x83, 0xb2, 0x03, 0x01, 0x01];

/// A TSA as the simulator serves it: a reply for a request.
pub trait TimeStampAuthority: Send + Sync + std::fmt::Debug {
    /// The DER `TimeStampResp` for `request` at `now` (Unix seconds).
    fn reply(&self, request: &[u8], now: i64) -> Result<Vec<u8>, String>;
}

impl TimeStampAuthority for Tsa {
    fn reply(&self, request: &[u8], now: i64) -> Result<Vec<u8>, String> {
        Ok(self.respond(request, now))
    }
}

impl TimeStampAuthority for OpensslTsa {
    fn reply(&self, request: &[u8], _now: i64) -> Result<Vec<u8>, String> {
        let _one = self.busy.lock().unwrap_or_else(|p| p.into_inner());
        self.reply(request)
    }
}

pub struct Tsa {
    cert_der: Vec<u8>,
    /// The certificate's issuer `Name` and serial (INTEGER TLV), the token's signer id.
    issuer: Vec<u8>,
    serial: Vec<u8>,
    key: EcdsaKeyPair,
    next_serial: AtomicU64,
}

// Hand-written: the key must never be printed.
impl std::fmt::Debug for Tsa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tsa").finish_non_exhaustive()
    }
}

impl Tsa {
    /// A TSA signing with `cert_pem` (critical EKU timeStamping) and its PKCS#8 PEM key.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Tsa, String> {
        let cert_der = match rustls_pemfile::certs(&mut cert_pem.as_bytes()).next() {
            Some(Ok(c)) => c.to_vec(),
            _ => return Err("no PEM certificate for the TSA".into()),
        };
        let (_, cert) = x509_parser::parse_x509_certificate(&cert_der)
            .map_err(|e| format!("the TSA certificate does not parse: {e}"))?;
        let issuer = cert.issuer().as_raw().to_vec();
        let serial = der_uint(cert.raw_serial());
        let key = crate::pki::p256_signing_key(key_pem, "the TSA key")?;
        Ok(Tsa {
            cert_der,
            issuer,
            serial,
            key,
            next_serial: AtomicU64::new(1),
        })
    }

    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The reply to `request` at `now` (Unix seconds): granted with a token, or `rejection`
    /// (status 2, badDataFormat) for a request that does not parse.
    pub fn respond(&self, request: &[u8], now: i64) -> Vec<u8> {
        let Ok(req) = parse_request(request) else {
            let status = tlv(
                0x30,
                &[tlv(0x02, &[2]), tlv(0x30, &tlv(0x0c, b"bad request"))].concat(),
            );
            return tlv(0x30, &status);
        };
        let mut tst = [
            tlv(0x02, &[1]),
            tlv(0x06, POLICY),
            req.imprint.to_vec(),
            der_uint(
                &self
                    .next_serial
                    .fetch_add(1, Ordering::Relaxed)
                    .to_be_bytes(),
            ),
            generalized_time_tlv(now),
        ]
        .concat();
        if let Some(n) = req.nonce {
            tst.extend(tlv(0x02, n));
        }
        let tst_info = tlv(0x30, &tst);
        let token = self.token(&tst_info, now, req.cert_req);
        tlv(0x30, &[tlv(0x30, &tlv(0x02, &[0])), token].concat())
    }

    fn token(&self, tst_info: &[u8], now: i64, with_cert: bool) -> Vec<u8> {
        let attribute =
            |oid: &[u8], value: Vec<u8>| tlv(0x30, &[tlv(0x06, oid), tlv(0x31, &value)].concat());
        let cert_hash = Sha256::digest(&self.cert_der);
        // SigningCertificateV2 { certs { ESSCertIDv2 { certHash } } } (SHA-256 is the default).
        let signing_cert = tlv(0x30, &tlv(0x30, &tlv(0x30, &tlv(0x04, &cert_hash))));
        let mut attrs = [
            attribute(OID_CONTENT_TYPE, tlv(0x06, OID_TST_INFO)),
            attribute(OID_SIGNING_TIME, utc_time(now)),
            attribute(OID_MESSAGE_DIGEST, tlv(0x04, &Sha256::digest(tst_info))),
            attribute(OID_SIGNING_CERT_V2, signing_cert),
        ];
        // DER orders a SET OF by encoding; verifiers re-encode before checking the signature.
        attrs.sort();
        let attrs = attrs.concat();
        let signature = self
            .key
            .sign(&SystemRandom::new(), &tlv(0x31, &attrs))
            .map(|s| s.as_ref().to_vec())
            .unwrap_or_default();
        let sha256 = tlv(0x30, &[tlv(0x06, OID_SHA256), vec![0x05, 0x00]].concat());
        let signer_info = tlv(
            0x30,
            &[
                tlv(0x02, &[1]),
                tlv(0x30, &[self.issuer.clone(), self.serial.clone()].concat()),
                sha256.clone(),
                tlv(0xa0, &attrs),
                tlv(0x30, &tlv(0x06, OID_ECDSA_SHA256)),
                tlv(0x04, &signature),
            ]
            .concat(),
        );
        let mut signed_data = [
            tlv(0x02, &[3]),
            tlv(0x31, &sha256),
            tlv(
                0x30,
                &[tlv(0x06, OID_TST_INFO), tlv(0xa0, &tlv(0x04, tst_info))].concat(),
            ),
        ]
        .concat();
        if with_cert {
            signed_data.extend(tlv(0xa0, &self.cert_der));
        }
        signed_data.extend(tlv(0x31, &signer_info));
        tlv(
            0x30,
            &[
                tlv(0x06, OID_SIGNED_DATA),
                tlv(0xa0, &tlv(0x30, &signed_data)),
            ]
            .concat(),
        )
    }
}

/// `openssl ts -reply` as an independent TSA: a working directory with its configuration
/// (signing with `cert`/`key`, SHA-256, policy 1.2.3.4.1, the ESS certificate id in SHA-256),
/// answering one request per call. Tests put it behind HTTP.
#[derive(Debug)]
pub struct OpensslTsa {
    dir: tempfile::TempDir,
    /// One request at a time: openssl keeps its serial number and files in the directory.
    busy: std::sync::Mutex<()>,
}

impl OpensslTsa {
    pub fn new(cert: &std::path::Path, key: &std::path::Path) -> std::io::Result<OpensslTsa> {
        let dir = tempfile::tempdir()?;
        let conf = format!(
            "[ tsa ]\ndefault_tsa = brama_test\n\n[ brama_test ]\n\
             serial = {serial}\nsigner_cert = {cert}\nsigner_key = {key}\n\
             signer_digest = sha256\ndefault_policy = 1.2.3.4.1\n\
             digests = sha256, sha384, sha512\naccuracy = secs:1\nordering = no\n\
             tsa_name = no\ness_cert_id_chain = no\ness_cert_id_alg = sha256\n",
            serial = dir.path().join("serial").display(),
            cert = cert.display(),
            key = key.display(),
        );
        std::fs::write(dir.path().join("tsa.cnf"), conf)?;
        std::fs::write(dir.path().join("serial"), "01\n")?;
        Ok(OpensslTsa {
            dir,
            busy: std::sync::Mutex::new(()),
        })
    }

    /// The reply openssl makes for `request` (DER `TimeStampReq`); not to be called twice at
    /// once (the [`TimeStampAuthority`] implementation serialises).
    pub fn reply(&self, request: &[u8]) -> Result<Vec<u8>, String> {
        let dir = self.dir.path();
        std::fs::write(dir.join("req.tsq"), request).map_err(|e| e.to_string())?;
        let out = std::process::Command::new("openssl")
            .args([
                "ts",
                "-reply",
                "-config",
                "tsa.cnf",
                "-queryfile",
                "req.tsq",
                "-out",
                "resp.tsr",
            ])
            .current_dir(dir)
            .output()
            .map_err(|e| format!("openssl (scripts/test.sh installs it): {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        std::fs::read(dir.join("resp.tsr")).map_err(|e| e.to_string())
    }
}

/// Unix seconds as a UTCTime TLV (`YYMMDDHHMMSSZ`), as CMS writes signingTime before 2050.
fn utc_time(unix: i64) -> Vec<u8> {
    let general = generalized_time_tlv(unix);
    // `18 0f YYYYMMDDHHMMSSZ` → `17 0d YYMMDDHHMMSSZ`.
    tlv(0x17, &general[4..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use brama_sign::digest::DigestAlgorithm;
    use brama_sign::tsp;

    const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../certs-test/");

    fn tsa() -> Tsa {
        let read = |n: &str| std::fs::read_to_string(format!("{DIR}{n}")).unwrap();
        Tsa::from_pem(&read("tsa.pem"), &read("tsa.key")).unwrap()
    }

    /// Its tokens verify as X-Road verifies them, against its request; another request's
    /// reply, or another TSA list, does not.
    #[test]
    fn tokens_verify_under_x_roads_rules() {
        let t = tsa();
        let data = b"<ts-hashchainresult/>";
        let digest = DigestAlgorithm::Sha512.digest(data);
        let now = 1_800_000_000;
        for (nonce, cert_req) in [(Some(42), true), (None, false)] {
            let req = tsp::request(DigestAlgorithm::Sha512, &digest, nonce, cert_req);
            let reply = t.respond(&req, now);
            let token_der = tsp::parse_reply(&reply).unwrap();
            let token = tsp::parse_token(token_der).unwrap();
            tsp::check_reply(&token, DigestAlgorithm::Sha512, &digest, nonce).unwrap();
            assert_eq!(token.certs.len(), usize::from(cert_req));
            let stamped = tsp::verify(token_der, data, &[t.cert_der().to_vec()]).unwrap();
            assert_eq!(stamped.gen_time, now);
            assert!(tsp::verify(token_der, b"other", &[t.cert_der().to_vec()]).is_err());
            assert!(tsp::verify(token_der, data, &[]).is_err());
        }
        let refused = t.respond(b"\x30\x00", now);
        assert!(tsp::parse_reply(&refused)
            .unwrap_err()
            .contains("bad request"));
    }

    /// brama's requests answered by `openssl ts -reply` (an independent TSA) check under
    /// X-Road's rules; the test TSA's replies pass `openssl ts -verify`.
    #[test]
    fn openssl_agrees_both_ways() {
        let pem = |n: &str| std::path::PathBuf::from(format!("{DIR}{n}"));
        let cert_der = tsa().cert_der().to_vec();
        let data = b"<ts-hashchainresult>openssl</ts-hashchainresult>".to_vec();
        let openssl = OpensslTsa::new(&pem("tsa.pem"), &pem("tsa.key")).unwrap();
        for alg in [DigestAlgorithm::Sha256, DigestAlgorithm::Sha512] {
            let digest = alg.digest(&data);
            let req = tsp::request(alg, &digest, Some(0x0102_0304_0506), false);
            let reply = openssl.reply(&req).unwrap();
            let token_der = tsp::parse_reply(&reply).unwrap();
            let token = tsp::parse_token(token_der).unwrap();
            tsp::check_reply(&token, alg, &digest, Some(0x0102_0304_0506)).unwrap();
            tsp::verify(token_der, &data, std::slice::from_ref(&cert_der)).unwrap();
        }

        let dir = tempfile::tempdir().unwrap();
        let t = tsa();
        let digest = DigestAlgorithm::Sha512.digest(&data);
        let reply = t.respond(
            &tsp::request(DigestAlgorithm::Sha512, &digest, Some(7), true),
            1_800_000_000,
        );
        std::fs::write(dir.path().join("reply.tsr"), &reply).unwrap();
        let openssl_verify = |data: &[u8]| {
            std::fs::write(dir.path().join("data"), data).unwrap();
            let out = std::process::Command::new("openssl")
                .args([
                    "ts",
                    "-verify",
                    "-data",
                    "data",
                    "-in",
                    "reply.tsr",
                    "-CAfile",
                ])
                .arg(pem("ca.pem"))
                .arg("-untrusted")
                .arg(pem("tsa.pem"))
                .current_dir(dir.path())
                .output()
                .expect("openssl (scripts/test.sh installs it)");
            let text = String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr);
            (
                out.status.success() && text.contains("Verification: OK"),
                text,
            )
        };
        let (ok, text) = openssl_verify(&data);
        assert!(ok, "{text}");
        // Other data: openssl refuses it too.
        let (ok, _) = openssl_verify(b"other");
        assert!(!ok);
    }
}
