//! X-Road's time-stamp vectors (`tests/fixtures/xroad/timestamp/`, verdicts in its README) and
//! hostile bytes.

use super::*;

const DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/xroad/timestamp/"
);

fn file(name: &str) -> Vec<u8> {
    std::fs::read(format!("{DIR}{name}")).unwrap()
}

/// A PEM certificate file as DER.
fn cert(name: &str) -> Vec<u8> {
    let text = String::from_utf8(file(name)).unwrap();
    let b64: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap()
}

fn unix(rfc3339: &str) -> i64 {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .unwrap()
        .unix_timestamp()
}

#[test]
fn x_roads_2012_tokens_get_their_verdicts() {
    let tsa = vec![cert("ejbca-2012/tsa-timestamp1.pem")];
    let token = file("ejbca-2012/valid.tst");
    let data = file("ejbca-2012/stamped-data");
    let stamped = verify(&token, &data, &tsa).unwrap();
    assert_eq!(stamped.gen_time, unix("2012-11-29T13:10:04Z"));
    assert_eq!(stamped.tsa_cert, tsa[0]);
    let t = parse_token(&token).unwrap();
    assert_eq!(
        t.nonce,
        Some(&[0x01, 0x4a, 0x73, 0xdb, 0x55, 0xfb, 0x4b, 0x80][..])
    );
    assert_eq!(t.policy, &[0x2a, 0x03]); // 1.2.3

    // The data changed: the imprint no longer matches.
    let err = verify(
        &token,
        &file("ejbca-2012/stamped-data-byte42-modified"),
        &tsa,
    )
    .unwrap_err();
    assert_eq!(err.code, ErrorCode::MalformedSignature, "{err}");
    // A TSA list without its signer (X-Road's test passes OCSP responder certificates).
    let others = vec![cert("testca-2024/tsa-test-tsa.pem")];
    let err = verify(&token, &data, &others).unwrap_err();
    assert_eq!(err.code, ErrorCode::TimestampValidation, "{err}");
    assert!(err.message.contains("not an approved"), "{err}");
    let err = verify(&token, &data, &[]).unwrap_err();
    assert_eq!(err.code, ErrorCode::TimestampValidation, "{err}");
    // One byte of the signature changed.
    let err = verify(&file("ejbca-2012/invalid-signature.tst"), &data, &tsa).unwrap_err();
    assert_eq!(err.code, ErrorCode::TimestampValidation, "{err}");
    assert!(err.message.contains("signature"), "{err}");
    // A batch token over a hash-chain result that is not the stamped one.
    let err = verify(
        &file("ejbca-2012/asic-invalid-ts-hashchainresult.tst"),
        &file("ejbca-2012/asic-invalid-ts-hashchainresult.ts-hashchainresult.xml"),
        &tsa,
    )
    .unwrap_err();
    assert_eq!(err.code, ErrorCode::MalformedSignature, "{err}");
}

/// The canned reply of X-Road's message-log tests: granted, its token signed by the TSA, and
/// refused against any request but the one it answers.
#[test]
fn a_full_reply_is_read_and_checked_against_its_request() {
    let reply = file("ejbca-2012/tsp.response.tsr");
    let token_der = parse_reply(&reply).unwrap();
    let token = parse_token(token_der).unwrap();
    assert_eq!(token.gen_time, unix("2014-05-06T08:28:49Z"));
    assert_eq!(token.imprint_hash, Hash::Sha256);
    assert_eq!(&token.imprint[..4], &[0x71, 0xd5, 0x85, 0xc9]);
    let tsa = vec![cert("ejbca-2012/tsa-timestamp1.pem")];
    verify_signer(&token, &tsa).unwrap();
    let imprint = token.imprint.to_vec();
    check_reply(&token, DigestAlgorithm::Sha256, &imprint, Some(123_456_789)).unwrap();
    assert!(check_reply(&token, DigestAlgorithm::Sha256, &imprint, Some(1)).is_err());
    assert!(check_reply(&token, DigestAlgorithm::Sha256, &imprint, None).is_err());
    assert!(check_reply(&token, DigestAlgorithm::Sha512, &imprint, Some(123_456_789)).is_err());
    assert!(check_reply(&token, DigestAlgorithm::Sha256, &[0; 32], Some(123_456_789)).is_err());
}

#[test]
fn x_roads_2024_tokens_verify() {
    let tsa = vec![cert("testca-2024/tsa-test-tsa.pem")];
    let single = verify(
        &file("testca-2024/asic-valid-signed-message.tst"),
        &file("testca-2024/asic-valid-signed-message.signature-value.bin"),
        &tsa,
    )
    .unwrap();
    assert_eq!(single.gen_time, unix("2024-12-05T13:16:35Z"));
    let batch = verify(
        &file("testca-2024/asic-valid-batch-ts.tst"),
        &file("testca-2024/asic-valid-batch-ts.ts-hashchainresult.xml"),
        &tsa,
    )
    .unwrap();
    assert_eq!(batch.gen_time, unix("2024-12-05T07:34:14Z"));
    // The token carries the TSA's certificate, which is not trusted by itself.
    let err = verify(
        &file("testca-2024/asic-valid-batch-ts.tst"),
        &file("testca-2024/asic-valid-batch-ts.ts-hashchainresult.xml"),
        &[cert("ejbca-2012/tsa-timestamp1.pem")],
    )
    .unwrap_err();
    assert_eq!(err.code, ErrorCode::TimestampValidation);
}

#[test]
fn requests_are_what_rfc_3161_says() {
    let digest = [7u8; 64];
    let req = request(DigestAlgorithm::Sha512, &digest, Some(0x80), true);
    // SEQUENCE { INTEGER 1, MessageImprint, INTEGER nonce (a leading zero keeps it positive),
    // BOOLEAN TRUE }
    let (0x30, body, []) = der_read(&req).unwrap() else {
        panic!()
    };
    let mut d = crate::der::Der(body);
    assert_eq!(d.expect(0x02).unwrap(), &[1]);
    assert_eq!(
        d.raw().unwrap(),
        message_imprint(DigestAlgorithm::Sha512, &digest)
    );
    assert_eq!(d.expect(0x02).unwrap(), &[0, 0x80]);
    assert_eq!(d.expect(0x01).unwrap(), &[0xff]);
    assert!(d.is_empty());
    let plain = request(DigestAlgorithm::Sha256, &[1; 32], None, false);
    assert_eq!(plain.len(), 2 + 3 + 2 + 15 + 34);
}

/// Every prefix and every one-byte change of real tokens and replies is refused or read, never
/// a panic; deep indefinite-length nesting is refused.
#[test]
fn hostile_bytes_are_refused_not_panicked_on() {
    let tsa = vec![cert("ejbca-2012/tsa-timestamp1.pem")];
    let data = file("ejbca-2012/stamped-data");
    for name in [
        "ejbca-2012/valid.tst",
        "testca-2024/asic-valid-batch-ts.tst",
    ] {
        let token = file(name);
        for n in 0..token.len() {
            let _ = verify(&token[..n], &data, &tsa);
        }
        for i in 0..token.len() {
            let mut t = token.clone();
            t[i] ^= 0x41;
            let _ = verify(&t, &data, &tsa);
        }
    }
    let reply = file("ejbca-2012/tsp.response.tsr");
    for n in 0..reply.len() {
        let _ = parse_reply(&reply[..n]).map(parse_token);
    }
    let deep: Vec<u8> = std::iter::repeat_n([0x30, 0x80], 10_000)
        .flatten()
        .collect();
    assert!(parse_token(&deep).is_err());
    assert!(parse_reply(&deep).is_err());
}
