//! X-Road's OCSP vectors (tests/fixtures/xroad/ocsp, verdicts from its README and X-Road's
//! `OcspVerifierTest`/`SignatureVerifierTest`), and requests read back.

use x509_parser::certificate::X509Certificate;

use super::*;
use brama_xroad::error::ErrorCode;

const DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/xroad/ocsp/"
);

fn read(name: &str) -> Vec<u8> {
    std::fs::read(format!("{DIR}{name}")).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn pem(name: &str) -> Vec<u8> {
    let text = read(name);
    let mut slice = text.as_slice();
    let first = rustls_pemfile::certs(&mut slice).next().unwrap().unwrap();
    first.to_vec()
}

fn unix(rfc3339: &str) -> i64 {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .unwrap()
        .unix_timestamp()
}

struct Case {
    subject: Vec<u8>,
    issuer: Vec<u8>,
    listed: Vec<Vec<u8>>,
    known: Vec<Vec<u8>>,
}

impl Case {
    fn check(
        &self,
        response: &[u8],
        at: &str,
        policy: Policy,
    ) -> Result<Verdict, (ErrorCode, String)> {
        let (_, subject) = x509_parser::parse_x509_certificate(&self.subject).unwrap();
        let responders = Responders {
            listed: &self.listed,
            known: &self.known,
        };
        verify(
            response,
            &subject,
            &self.issuer,
            responders,
            unix(at),
            policy,
        )
        .map_err(|e| (e.code, e.message))
    }
}

/// The constructed cases: the CA answers for itself.
fn constructed() -> Case {
    let issuer = pem("constructed/issuer-and-responder-root-ca.pem");
    Case {
        subject: pem("constructed/subject-user-0.pem"),
        issuer: issuer.clone(),
        listed: Vec::new(),
        known: vec![issuer],
    }
}

const T: &str = "2025-06-01T12:00:00Z";

#[test]
fn constructed_verdicts_match_x_roads() {
    let case = constructed();
    let policy = Policy::default();
    for good in [
        "good",
        "good-with-next-update",
        "good-responder-by-key-hash",
        "good-future-this-update",
    ] {
        let der = read(&format!("constructed/{good}.der"));
        case.check(&der, T, policy)
            .unwrap_or_else(|e| panic!("{good}: {e:?}"));
    }
    for (name, code) in [
        ("revoked", ErrorCode::CertValidation),
        ("unknown", ErrorCode::CertValidation),
        ("next-update-passed", ErrorCode::IncorrectValidationInfo),
        ("stale-this-update", ErrorCode::IncorrectValidationInfo),
        ("bad-signature", ErrorCode::IncorrectValidationInfo),
        ("unauthorized-signer", ErrorCode::IncorrectValidationInfo),
    ] {
        let der = read(&format!("constructed/{name}.der"));
        let err = case.check(&der, T, policy).expect_err(name);
        assert_eq!(err.0, code, "{name}: {}", err.1);
    }
    // nextUpdate checking off: the passed nextUpdate no longer matters.
    let off = Policy {
        verify_next_update: false,
        ..policy
    };
    case.check(&read("constructed/next-update-passed.der"), T, off)
        .unwrap();
    // The same good response checked for another certificate (the issuer itself).
    let other = Case {
        subject: case.issuer.clone(),
        ..constructed()
    };
    let err = other
        .check(&read("constructed/good.der"), T, policy)
        .unwrap_err();
    assert_eq!(err.0, ErrorCode::IncorrectValidationInfo, "{}", err.1);
    assert!(err.1.contains("not for certificate"), "{}", err.1);
}

#[test]
fn revoked_and_unauthorized_messages_say_why() {
    let case = constructed();
    let (_, m) = case
        .check(&read("constructed/revoked.der"), T, Policy::default())
        .unwrap_err();
    assert!(m.contains("revoked at 2025-05-01T00:00:00Z"), "{m}");
    let (_, m) = case
        .check(
            &read("constructed/unauthorized-signer.der"),
            T,
            Policy::default(),
        )
        .unwrap_err();
    // The response carries its signer: found, and refused for what it is.
    assert!(m.contains("'CN=Ca2 Test' is not authorised"), "{m}");
}

#[test]
fn freshness_window_edges() {
    let case = constructed();
    let der = read("constructed/good.der"); // thisUpdate 11:59:00
    let p = Policy::default();
    case.check(&der, "2025-06-01T12:59:00Z", p).unwrap();
    let err = case.check(&der, "2025-06-01T12:59:01Z", p).unwrap_err();
    assert!(err.1.contains("too old"), "{}", err.1);
    let v = case.check(&der, T, p).unwrap();
    assert_eq!(v.fresh_until(p), unix("2025-06-01T12:59:00Z"));
    let next = case
        .check(&read("constructed/good-with-next-update.der"), T, p)
        .unwrap();
    assert_eq!(
        next.fresh_until(p),
        unix("2025-06-01T12:59:00Z").min(unix("2025-06-01T13:00:00Z"))
    );
}

/// Responses X-Road's own responders made, checked at the times its tests check them.
#[test]
fn x_roads_real_responses() {
    // 2024 test CA: an EKU OCSPSigning responder issued by the CA (also listed in globalconf).
    let issuer = pem("testca-2024/issuer-test-ca.pem");
    let responder = pem("testca-2024/responder-test-ocsp.pem");
    for (subject, response, at) in [
        (
            "subject-non-batch-sig-signer.pem",
            "non-batch-sig.ocsp.der",
            "2024-07-09T00:00:00Z",
        ),
        (
            "subject-asic-signer.pem",
            "asic-valid-signed-message.ocsp.der",
            "2024-12-05T13:16:35Z",
        ),
        (
            "subject-asic-signer.pem",
            "asic-valid-batch-ts.ocsp.der",
            "2024-12-05T07:34:14Z",
        ),
    ] {
        let der = read(&format!("testca-2024/{response}"));
        for listed in [vec![responder.clone()], Vec::new()] {
            let case = Case {
                subject: pem(&format!("testca-2024/{subject}")),
                issuer: issuer.clone(),
                listed,
                known: vec![issuer.clone()],
            };
            case.check(&der, at, Policy::default())
                .unwrap_or_else(|e| panic!("{response}: {e:?}"));
        }
    }
    // Derived from the README: an hour after thisUpdate the same response is too old.
    let case = Case {
        subject: pem("testca-2024/subject-asic-signer.pem"),
        issuer: issuer.clone(),
        listed: Vec::new(),
        known: vec![issuer],
    };
    let der = read("testca-2024/asic-valid-signed-message.ocsp.der");
    let err = case
        .check(&der, "2024-12-05T14:13:27Z", Policy::default())
        .unwrap_err();
    assert_eq!(err.0, ErrorCode::IncorrectValidationInfo);

    // 2014 test PKI: the ResponderID names the responder with its RDNs reversed and another
    // string type; SHA-1 RSA; the responder is listed in globalconf (freshness 42 s there).
    let issuer = pem("xroad-2014/issuer-cyber-root-ca.pem");
    let responder = pem("xroad-2014/responder-ocspsigner.pem");
    let case = Case {
        subject: pem("xroad-2014/subject-consumer.pem"),
        issuer: issuer.clone(),
        listed: vec![responder.clone()],
        known: vec![responder.clone(), issuer.clone()],
    };
    let policy = Policy {
        freshness_seconds: 42,
        verify_next_update: true,
    };
    for response in ["sign-0.ocsp.der", "batch-sig.ocsp.der"] {
        case.check(
            &read(&format!("xroad-2014/{response}")),
            "2014-10-30T00:00:00Z",
            policy,
        )
        .unwrap_or_else(|e| panic!("{response}: {e:?}"));
    }
    // Not listed, not the CA, no OCSPSigning: not authorised.
    let unlisted = Case {
        listed: Vec::new(),
        ..case
    };
    let err = unlisted
        .check(
            &read("xroad-2014/sign-0.ocsp.der"),
            "2014-10-30T00:00:00Z",
            policy,
        )
        .unwrap_err();
    assert!(err.1.contains("not authorised"), "{}", err.1);
}

/// EJBCA's 2013 response: by key hash, signed by the CA it carries.
#[test]
fn ejbca_response_parses_and_its_signature_verifies() {
    let der = read("ejbca-2013/test.ocsp.der");
    let resp = parse(&der).unwrap();
    assert!(matches!(resp.responder, ResponderId::ByKey(_)));
    assert_eq!(resp.status, CertStatus::Good);
    assert_eq!(resp.this_update, unix("2013-02-07T09:02:33Z"));
    assert_eq!(resp.certs.len(), 1);
    let (_, ca) = x509_parser::parse_x509_certificate(resp.certs[0]).unwrap();
    let scheme =
        crate::scheme::Scheme::from_algorithm_identifier(resp.signature_algorithm).unwrap();
    assert!(crate::scheme::verify(
        scheme,
        &ca.public_key().subject_public_key.data,
        resp.tbs,
        resp.signature,
        crate::scheme::EcdsaForm::Der
    ));
}

#[test]
fn a_request_names_the_certificate_and_reads_back() {
    let subject_der = pem("constructed/subject-user-0.pem");
    let issuer_der = pem("constructed/issuer-and-responder-root-ca.pem");
    let (_, subject) = x509_parser::parse_x509_certificate(&subject_der).unwrap();
    let (_, issuer): (_, X509Certificate<'_>) =
        x509_parser::parse_x509_certificate(&issuer_der).unwrap();
    let id = cert_id(&subject, &issuer);
    // The responder answered with the same CertID.
    let resp_der = read("constructed/good.der");
    assert_eq!(parse(&resp_der).unwrap().cert_id, id.as_slice());
    let req = request(std::slice::from_ref(&id));
    assert_eq!(parse_request(&req).unwrap(), vec![id.as_slice()]);
    let fields = CertIdFields::parse(&id).unwrap();
    assert_eq!(fields.hash_algorithm, SHA1_ALGORITHM);
    assert_eq!(fields.serial, [4]);
}

#[test]
fn hostile_bytes_are_refused_not_panicked_on() {
    let good = read("constructed/good.der");
    for cut in 0..good.len() {
        assert!(parse(&good[..cut]).is_err(), "cut at {cut}");
    }
    let mut flipped = good.clone();
    for i in 0..flipped.len() {
        flipped[i] ^= 0xff;
        let _ = parse(&flipped);
        flipped[i] ^= 0xff;
    }
    assert!(parse(&vec![0x30; MAX_RESPONSE_BYTES + 1]).is_err());
    // A responder's refusal is named.
    let try_later = [0x30, 0x03, 0x0a, 0x01, 0x03];
    assert_eq!(
        parse(&try_later).unwrap_err(),
        "the responder answered tryLater"
    );
    assert!(parse_request(b"").is_err());
    assert!(parse_request(&request(&[])).is_err());
}
