//! Signature verification against X-Road's own vectors, and brama's signatures checked by an
//! independent verifier (Python lxml + cryptography, `tests/independent/verify_xroad.py`).

mod common;

use std::path::Path;

use brama::globalconf::GlobalConf;
use brama::sign::asic;
use brama::sign::verify::{self, At, Part, Signed, TrustStore};

const X: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/xroad/");

fn x_road_trust() -> TrustStore {
    let gc =
        GlobalConf::load_dir(Path::new(&format!("{X}globalconf/globalconf_good2_v3"))).unwrap();
    TrustStore::from_globalconf(&gc)
}

fn verdict(path: &str, trust: &TrustStore) -> Result<(), String> {
    let bytes = std::fs::read(format!("{X}{path}")).unwrap();
    asic::read(&bytes)
        .and_then(|c| asic::verify_container(&c, trust))
        .map(|_| ())
        .map_err(|e| e.code_string())
}

#[test]
fn asic_containers_get_x_roads_verdicts() {
    let trust = x_road_trust();
    let valid = [
        "valid-signed-message",
        "valid-non-batch-rest",
        "valid-non-batch-soap-attachments",
        "valid-signed-hashchain",
        "valid-batch-ts",
        // Valid in the reference implementation: its hash chain is not what is signed.
        "invalid-not-signed-hashchain",
    ];
    for name in valid {
        assert_eq!(
            verdict(&format!("asic/{name}.asice"), &trust),
            Ok(()),
            "{name}"
        );
    }
    let invalid = [
        ("wrong-message", "InvalidSignatureValue"),
        ("invalid-digest", "InvalidSignatureValue"),
        (
            "invalid-signed-hashchain",
            "MalformedSignature.InvalidHashChainRef",
        ),
        (
            "invalid-hashchain-modified-message",
            "MalformedSignature.HashChainUnusedInputs",
        ),
        ("invalid-incorrect-references", "MalformedSignature"),
        ("invalid-ts-hashchainresult", "MalformedSignature"),
    ];
    for (name, code) in invalid {
        let got = verdict(&format!("asic/{name}.asice"), &trust).unwrap_err();
        assert!(
            got == code || got.starts_with(&format!("{code}.")),
            "{name}: {got}"
        );
    }
}

/// X-Road's time-stamped containers: the token is checked first (a batch one through its ts hash
/// chain, a single one over the signature value), signed by an approved TSA only, and the
/// certificates and OCSP are checked as of its `genTime`.
#[test]
fn container_time_stamps_are_checked() {
    let trust = x_road_trust();
    assert_eq!(trust.tsa_certs.len(), 1, "the globalconf's approved TSA");
    let read =
        |name: &str| asic::read(&std::fs::read(format!("{X}asic/{name}.asice")).unwrap()).unwrap();
    let unix = |t: &str| {
        time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
            .unwrap()
            .unix_timestamp()
    };
    let batch = read("valid-batch-ts");
    assert!(batch.timestamp.is_some());
    let v = asic::verify_container(&batch, &trust).unwrap();
    assert_eq!(v.time_stamped_at, Some(unix("2024-12-05T07:34:14Z")));
    let single = read("valid-signed-message");
    assert!(single.timestamp.is_none(), "inside the signature");
    let v = asic::verify_container(&single, &trust).unwrap();
    assert_eq!(v.time_stamped_at, Some(unix("2024-12-05T13:16:35Z")));

    // No approved TSA, a changed token, a missing token: refused.
    let mut no_tsa = x_road_trust();
    no_tsa.tsa_certs.clear();
    for c in [&batch, &single] {
        let e = asic::verify_container(c, &no_tsa).unwrap_err();
        assert_eq!(e.code, brama::error::ErrorCode::TimestampValidation, "{e}");
    }
    let mut changed = batch.clone();
    let token = changed.timestamp.as_mut().unwrap();
    let n = token.len();
    token[n - 10] ^= 1; // inside the signature value
    let e = asic::verify_container(&changed, &trust).unwrap_err();
    assert_eq!(e.code, brama::error::ErrorCode::TimestampValidation, "{e}");
    let mut missing = batch.clone();
    missing.timestamp = None;
    assert!(asic::verify_container(&missing, &trust).is_err());
    // What brama writes reads back the same and verifies the same way.
    let again = asic::read(&asic::write(&batch).unwrap()).unwrap();
    assert_eq!(again.timestamp, batch.timestamp);
    assert_eq!(again.ts_hash_chain, batch.ts_hash_chain);
    asic::verify_container(&again, &trust).unwrap();
}

/// The containers' OCSP responses are checked at the signing time: without them, or with
/// another certificate's, the same container is refused as X-Road refuses it.
#[test]
fn container_ocsp_is_checked() {
    let trust = x_road_trust();
    let bytes = std::fs::read(format!("{X}asic/valid-signed-message.asice")).unwrap();
    let container = asic::read(&bytes).unwrap();
    let sig = String::from_utf8(container.signature.clone()).unwrap();
    let start = sig
        .find("<xades:RevocationValues")
        .expect("X-Road's container carries OCSP");
    let end = sig.find("</xades:RevocationValues>").unwrap() + "</xades:RevocationValues>".len();
    let check = |signature: String| {
        let c = asic::Container {
            signature: signature.into_bytes(),
            ..container.clone()
        };
        asic::verify_container(&c, &trust)
            .map(|_| ())
            .map_err(|e| (e.code_string(), e.message))
    };
    assert_eq!(check(sig.clone()), Ok(()));
    let (code, message) = check(format!("{}{}", &sig[..start], &sig[end..])).unwrap_err();
    assert_eq!(code, "InvalidCertPath.CertValidation");
    assert!(
        message.starts_with("Unable to find OCSP response for certificate"),
        "{message}"
    );
    // Another certificate's response (the 2014 one) in its place answers for nobody here.
    let other = std::fs::read(format!("{X}ocsp/xroad-2014/sign-0.ocsp.der")).unwrap();
    let swapped = format!(
        "{}<xades:RevocationValues><xades:OCSPValues><xades:EncapsulatedOCSPValue>{}</xades:EncapsulatedOCSPValue></xades:OCSPValues></xades:RevocationValues>{}",
        &sig[..start],
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, other),
        &sig[end..]
    );
    assert_eq!(
        check(swapped).unwrap_err().0,
        "InvalidCertPath.CertValidation"
    );
}

#[test]
fn asic_structure_cases() {
    let trust = x_road_trust();
    for name in ["no-message", "no-mimetype", "no-signature", "not-asic"] {
        let bytes = std::fs::read(format!("{X}asic-structure/{name}.asice")).unwrap();
        let e = asic::read(&bytes).unwrap_err();
        assert_eq!(
            e.code_string(),
            "MalformedSignature.InvalidContainer",
            "{name}"
        );
    }
    // Well-formed containers read; the one with attachments verifies.
    for name in [
        "valid-signed-message",
        "valid-signed-message-with-attachments",
    ] {
        let bytes = std::fs::read(format!("{X}asic-structure/{name}.asice")).unwrap();
        asic::read(&bytes).unwrap();
    }
    assert_eq!(
        verdict(
            "asic-structure/valid-signed-message-with-attachments.asice",
            &trust
        ),
        Ok(())
    );
}

fn sig_file(name: &str) -> Vec<u8> {
    std::fs::read(format!("{X}signatures/{name}")).unwrap()
}

/// The `signatures/` vectors come from an older test CA that no global configuration approves:
/// everything up to the certificate path must pass, or fail with the expected code.
fn check_signature(
    sig: &[u8],
    parts: &[Part<'_>],
    hcr: Option<&[u8]>,
    hc: Option<&[u8]>,
) -> String {
    let r = verify::verify(
        Signed {
            signature: sig,
            hash_chain_result: hcr,
            hash_chain: hc,
        },
        parts,
        &TrustStore::default(),
        None,
        At::SigningTime,
    );
    r.map(|_| "valid".to_string())
        .unwrap_or_else(|e| e.code_string())
}

#[test]
fn signature_vectors() {
    let message = sig_file("message-1.xml");
    let batch = sig_file("batch-sig.xml");
    let hcr = sig_file("hash-chain-result.xml");
    let attachment_digest_only = Part::list(&message, []);
    // hash-chain-1 covers message-1 plus an attachment we only know by digest: with the message
    // alone the chain verifies and only the (unapproved) certificate path is left.
    let got = check_signature(
        &batch,
        &attachment_digest_only,
        Some(&hcr),
        Some(&sig_file("hash-chain-1.xml")),
    );
    assert_eq!(got, "InvalidCertPath");
    // Another message's chain does not fit this message.
    let got = check_signature(
        &batch,
        &attachment_digest_only,
        Some(&hcr),
        Some(&sig_file("hash-chain-2.xml")),
    );
    assert!(got.starts_with("MalformedSignature."), "{got}");

    let plain =
        |name: &str| check_signature(&sig_file(name), &Part::list(&message, []), None, None);
    assert_eq!(
        plain("sign-0-invalid-signature-value.xml"),
        "InvalidSignatureValue"
    );
    assert_eq!(plain("sign-0-no-signature.xml"), "MalformedSignature");
    assert_eq!(plain("sign-0-no-signing-cert.xml"), "MalformedSignature");
    assert_eq!(plain("sign-0-schema-fail.xml"), "MalformedSignature");
    assert_eq!(plain("empty.xml"), "MalformedSignature");
}

/// A SOAP request from GOV/00000001's DIIA subsystem, numbered `n`.
fn soap(n: usize) -> String {
    format!("<SOAP-ENV:Envelope xmlns:SOAP-ENV=\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns:xroad=\"http://x-road.eu/xsd/xroad.xsd\" xmlns:id=\"http://x-road.eu/xsd/identifiers\"><SOAP-ENV:Header><xroad:client id:objectType=\"SUBSYSTEM\"><id:xRoadInstance>SEVDEIR-TEST</id:xRoadInstance><id:memberClass>GOV</id:memberClass><id:memberCode>00000001</id:memberCode><id:subsystemCode>DIIA</id:subsystemCode></xroad:client><xroad:service id:objectType=\"SERVICE\"><id:xRoadInstance>SEVDEIR-TEST</id:xRoadInstance><id:memberClass>GOV</id:memberClass><id:memberCode>00000002</id:memberCode><id:subsystemCode>DRACS</id:subsystemCode><id:serviceCode>getBirthRecord</id:serviceCode></xroad:service><xroad:id>{n}</xroad:id><xroad:protocolVersion>4.0</xroad:protocolVersion></SOAP-ENV:Header><SOAP-ENV:Body><b>Дитина №{n}</b></SOAP-ENV:Body></SOAP-ENV:Envelope>")
}

/// The test network's responder's answer for `key`'s certificate, for its signatures to carry
/// (the test network's CA names a responder, so signatures need one).
fn give_ocsp(net: &common::TwoServers, key: &brama::sign::batch::KeyWorker) {
    let (_, cert) = x509_parser::parse_x509_certificate(&key.cert().der).unwrap();
    let (_, ca) = x509_parser::parse_x509_certificate(&net.pki.ca.cert_der).unwrap();
    let id = brama::sign::ocsp::cert_id(&cert, &ca);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let answer = net.ocsp.responder.response(&[&id], now);
    key.set_ocsp(vec![bytes::Bytes::from(answer)], None);
}

/// A member signing key of the test PKI on the software token; `extra` is added to its
/// configuration.
fn software_signer_with(dir: &Path, extra: &str) -> brama::sign::Signer {
    let toml = common::node_toml(
        "ss1",
        "00000001",
        "globalconf",
        "[[clients]]\nid = \"SEVDEIR-TEST/GOV/00000001/DIIA\"\n",
    ) + extra;
    let path = dir.join("ss1.toml");
    std::fs::write(&path, toml).unwrap();
    let conf = brama::config::ServerConf::load(Some(&path)).unwrap();
    brama::sign::Signer::start(&conf.signer).unwrap()
}

fn software_signer(dir: &Path) -> brama::sign::Signer {
    software_signer_with(dir, "")
}

/// Signatures over each digest (Trembita's SHA-256 by default, X-Road's SHA-512), plain and
/// batch, pass brama's verifier and the independent one.
#[tokio::test]
async fn brama_signatures_pass_the_independent_verifier() {
    for digest in ["", "SHA-512", "SHA-384"] {
        signatures_pass_the_independent_verifier(digest).await;
    }
}

async fn signatures_pass_the_independent_verifier(digest: &str) {
    let net = common::TwoServers::new();
    let dir = net.path();
    let signer = match digest {
        "" => software_signer(&dir),
        d => software_signer_with(&dir, &format!("\n[signer]\nsignature_digest = \"{d}\"\n")),
    };
    let member = brama::identifiers::ClientId::parse_path("SEVDEIR-TEST/GOV/00000001").unwrap();
    let key = signer.key(&member).unwrap().clone();
    assert!(
        key.algorithm().uri().ends_with(match digest {
            "" => "ecdsa-sha256",
            "SHA-512" => "ecdsa-sha512",
            _ => "ecdsa-sha384",
        }),
        "{digest}: {:?}",
        key.algorithm()
    );
    give_ocsp(&net, &key);
    // Plain (one message), batch (three, one with attachments).
    let plain = vec![(soap(0).into_bytes(), vec![])];
    let batch = vec![
        (soap(1).into_bytes(), vec![]),
        (
            soap(2).into_bytes(),
            vec![b"%PDF medical certificate".to_vec(), vec![0u8, 1, 2, 255]],
        ),
        (soap(3).into_bytes(), vec![]),
    ];
    let trust =
        TrustStore::from_globalconf(&GlobalConf::load_dir(&dir.join("globalconf")).unwrap());
    let mut files = Vec::new();
    for (name, set) in [("plain", plain), ("batch", batch)] {
        let containers = asic::sign_containers(&key, set, name == "batch").await;
        for (i, c) in containers.into_iter().enumerate() {
            let c = c.unwrap();
            assert_eq!(c.hash_chain.is_some(), name == "batch");
            // brama's own verifier agrees, and refuses a tampered copy.
            asic::verify_container(&c, &trust).unwrap();
            let mut bad = c.clone();
            bad.message[200] ^= 1;
            assert!(asic::verify_container(&bad, &trust).is_err());
            let f = dir.join(format!("{name}-{i}.asice"));
            std::fs::write(&f, asic::write(&c).unwrap()).unwrap();
            files.push(f);
        }
    }
    // One signature for the whole batch.
    assert_eq!(
        key.stats
            .sign_calls
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    common::independent_verify(
        &dir.join("certs/ca.pem"),
        "SEVDEIR-TEST/GOV/00000001",
        &files,
    );
    signer.stop();
}

/// Signatures carry the signing certificate's OCSP response in `RevocationValues`: brama's
/// verifier and the independent one accept it; without a response, or with a revoked one, the
/// same signature is refused as X-Road refuses it.
#[tokio::test]
async fn signatures_carry_ocsp() {
    let net = common::TwoServers::new();
    let dir = net.path();
    let signer = software_signer(&dir);
    let member = brama::identifiers::ClientId::parse_path("SEVDEIR-TEST/GOV/00000001").unwrap();
    let key = signer.key(&member).unwrap().clone();
    let responder = brama::test_ocsp::Responder::new(
        &net.pki.ca.cert_der,
        &net.pki.ocsp.cert_der,
        &net.pki.ocsp.key_pem,
    )
    .unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&key.cert().der).unwrap();
    let (_, ca) = x509_parser::parse_x509_certificate(&net.pki.ca.cert_der).unwrap();
    let id = brama::sign::ocsp::cert_id(&cert, &ca);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let answer = |now| bytes::Bytes::from(responder.response(&[&id], now));

    // A CA whose responder the global configuration names: its certificates' status is checked.
    let mut gc = GlobalConf::load_dir(&dir.join("globalconf")).unwrap();
    for shared in gc.shared.values_mut() {
        for ca in &mut shared.approved_cas {
            ca.top_ca.ocsp.push(brama::globalconf::OcspInfo {
                url: "http://127.0.0.1:9/".into(),
                cert_der: None,
            });
        }
    }
    let trust = TrustStore::from_globalconf(&gc);
    let sign = |batch: bool| {
        let key = key.clone();
        async move {
            let set = (0..if batch { 2 } else { 1 })
                .map(|n| (soap(n).into_bytes(), vec![]))
                .collect();
            asic::sign_containers(&key, set, batch)
                .await
                .into_iter()
                .map(Result::unwrap)
                .collect::<Vec<_>>()
        }
    };
    let verdict = |c: &asic::Container| {
        asic::verify_container(c, &trust)
            .map(|_| ())
            .map_err(|e| e.code_string())
    };

    key.set_ocsp(vec![answer(now)], None);
    let mut files = Vec::new();
    for batch in [false, true] {
        for (i, c) in sign(batch).await.into_iter().enumerate() {
            assert!(String::from_utf8_lossy(&c.signature).contains("<xades:EncapsulatedOCSPValue"));
            assert_eq!(verdict(&c), Ok(()));
            let f = dir.join(format!("ocsp-{batch}-{i}.asice"));
            std::fs::write(&f, asic::write(&c).unwrap()).unwrap();
            files.push(f);
        }
    }
    common::independent_verify_with(
        &dir.join("certs/ca.pem"),
        "SEVDEIR-TEST/GOV/00000001",
        &files,
        &["--ocsp", "3600"],
    );

    // No response: refused.
    key.set_ocsp(Vec::new(), None);
    let c = sign(false).await.remove(0);
    assert_eq!(verdict(&c), Err("InvalidCertPath.CertValidation".into()));
    // A response two hours old at the signing time: too old.
    key.set_ocsp(vec![answer(now - 7200)], None);
    let c = sign(false).await.remove(0);
    assert_eq!(
        verdict(&c),
        Err("InvalidCertPath.IncorrectValidationInfo".into())
    );
    // Revoked: refused, by both verifiers.
    responder.revoke(&key.cert().der, now - 60).unwrap();
    key.set_ocsp(vec![answer(now)], None);
    let c = sign(false).await.remove(0);
    assert_eq!(verdict(&c), Err("InvalidCertPath.CertValidation".into()));
    signer.stop();
}

/// Later messages of a batch skip the signature checks already made for the first one; each
/// still has its own hash chain, signer and parts checked.
#[tokio::test]
async fn a_known_batch_still_checks_every_message() {
    let net = common::TwoServers::new();
    let dir = net.path();
    let signer = software_signer(&dir);
    let member = brama::identifiers::ClientId::parse_path("SEVDEIR-TEST/GOV/00000001").unwrap();
    let other = brama::identifiers::ClientId::parse_path("SEVDEIR-TEST/GOV/00000002").unwrap();
    let key = signer.key(&member).unwrap().clone();
    give_ocsp(&net, &key);
    let set = (0..3)
        .map(|n| (format!("<m>повідомлення {n}</m>").into_bytes(), vec![]))
        .collect();
    let c: Vec<asic::Container> = asic::sign_containers(&key, set, true)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let trust =
        TrustStore::from_globalconf(&GlobalConf::load_dir(&dir.join("globalconf")).unwrap());
    let check = |c: &asic::Container, message: &[u8], chain: &[u8], who: &_| {
        verify::verify(
            Signed {
                signature: &c.signature,
                hash_chain_result: c.hash_chain_result.as_deref(),
                hash_chain: Some(chain),
            },
            &Part::list(message, []),
            &trust,
            Some(who),
            At::Now,
        )
        .map_err(|e| e.code_string())
    };
    let chain = |i: usize| c[i].hash_chain.clone().unwrap();
    // The first message makes the batch known.
    assert!(
        check(&c[0], &c[0].message, &chain(0), &member)
            .unwrap()
            .batch
    );
    // Later ones: their own message with their own chain passes...
    check(&c[1], &c[1].message, &chain(1), &member).unwrap();
    // ...a changed message, another message's chain or another signer does not.
    // A part changed after signing: its own digest goes into the chain, which then computes to
    // another root, X-Road's `InvalidHashChain` (reference §4.7), for a known batch and for a
    // batch seen for the first time alike.
    let mut changed = c[1].message.clone();
    changed[3] ^= 1;
    let invalid = "MalformedSignature.InvalidHashChain";
    assert_eq!(
        check(&c[1], &changed, &chain(1), &member).unwrap_err(),
        invalid
    );
    assert_eq!(
        check(&c[1], &c[1].message, &chain(2), &member).unwrap_err(),
        invalid
    );
    let fresh =
        TrustStore::from_globalconf(&GlobalConf::load_dir(&dir.join("globalconf")).unwrap());
    let first_seen = verify::verify(
        Signed {
            signature: &c[1].signature,
            hash_chain_result: c[1].hash_chain_result.as_deref(),
            hash_chain: Some(&chain(1)),
        },
        &Part::list(&changed, []),
        &fresh,
        Some(&member),
        At::Now,
    );
    assert_eq!(first_seen.unwrap_err().code_string(), invalid);
    assert_eq!(
        check(&c[2], &c[2].message, &chain(2), &other).unwrap_err(),
        "IncorrectCertificate"
    );
    // A changed signature is not the known one: it is verified again, and refused.
    let mut forged = c[2].clone();
    let at = forged.signature.len() / 2;
    forged.signature[at] ^= 1;
    assert!(check(&forged, &c[2].message, &chain(2), &member).is_err());
    check(&c[2], &c[2].message, &chain(2), &member).unwrap();
    signer.stop();
}
