//! Against a real SoftHSM2. SoftHSM2 reads `SOFTHSM2_CONF` once, in `C_Initialize`, so the
//! whole test process shares one token directory: every test gets its own token in it.
//! Other modules' tests that need a PKCS#11 token must use [`test_token`] too.

use super::*;
use rustls_pki_types::SignatureVerificationAlgorithm;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

pub(crate) const PIN: &str = "1234";
const LIBRARY: &str = "/usr/lib/softhsm/libsofthsm2.so";
const TOKENS: &[&str] = &[
    "rsa", "ec", "csr", "lookup", "wrongpin", "kill", "parallel", "fixture", "spare",
];
const FIXTURE_KEY: &str = "certs-test/sign-GOV-00000001.key";
const FIXTURE_CERT: &str = "certs-test/sign-GOV-00000001.pem";

pub(crate) struct TestToken {
    pub dir: tempfile::TempDir,
    pub module: Arc<Module>,
}

/// The process-wide SoftHSM2 directory with one token per test (PIN [`PIN`]); the `spare`
/// token is free for other modules' tests.
pub(crate) fn test_token() -> &'static TestToken {
    static TOKEN: OnceLock<TestToken> = OnceLock::new();
    TOKEN.get_or_init(|| {
        assert!(
            Path::new(LIBRARY).exists(),
            "{LIBRARY} missing: install SoftHSM2 (apt-get install softhsm2)"
        );
        sweep_stale_dirs();
        let dir = tempfile::Builder::new()
            .prefix(DIR_PREFIX)
            .tempdir()
            .expect("temp dir");
        std::fs::write(dir.path().join("pid"), std::process::id().to_string()).unwrap();
        for label in TOKENS {
            init_script(dir.path(), &[label]);
        }
        init_script(
            dir.path(),
            &[
                "fixture",
                "--import",
                &manifest_path(FIXTURE_KEY),
                "--key-label",
                "gov1",
            ],
        );
        let conf = dir.path().join("softhsm2.conf");
        let module = Module::load(&ModuleSettings {
            library: LIBRARY.into(),
            env: vec![("SOFTHSM2_CONF".into(), conf.display().to_string())],
            mechanism: None,
        })
        .expect("load SoftHSM2");
        TestToken { dir, module }
    })
}

const DIR_PREFIX: &str = "brama-softhsm-";

/// Statics are never dropped, so every test process leaves its token directory behind:
/// remove those of processes that have exited.
fn sweep_stale_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for path in entries.flatten().map(|e| e.path()) {
        let ours = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(DIR_PREFIX));
        let pid = std::fs::read_to_string(path.join("pid")).unwrap_or_default();
        if ours && !pid.is_empty() && !Path::new("/proc").join(pid.trim()).exists() {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

fn manifest_path(rel: &str) -> String {
    format!("{}/../../{rel}", env!("CARGO_MANIFEST_DIR"))
}

fn init_script(dir: &Path, args: &[&str]) {
    let script = manifest_path("scripts/softhsm-init.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg(dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {script}: {e}"));
    assert!(
        out.status.success(),
        "{script} {args:?} failed (is softhsm2-util installed? apt-get install softhsm2):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("export SOFTHSM2_CONF="));
}

fn token(label: &str) -> TokenRef {
    TokenRef {
        label: Some(label.into()),
        serial: None,
    }
}

fn key(token_label: &str, key: KeyRef, mechanism: Option<&str>) -> Pkcs11Key {
    let module = test_token().module.clone();
    Pkcs11Key::new(
        module,
        token(token_label),
        key,
        PIN.into(),
        mechanism.map(Into::into),
    )
    .expect("open key")
}

/// Verifies a `KeySession::sign` result with ring (through webpki) against an SPKI.
fn verify(alg: SignatureAlgorithm, spki: &[u8], data: &[u8], signature: &[u8]) {
    use webpki::ring as algs;
    let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(spki).expect("SPKI");
    let (verifier, signature): (&dyn SignatureVerificationAlgorithm, Vec<u8>) = match alg {
        SignatureAlgorithm::RsaSha256 => (algs::RSA_PKCS1_2048_8192_SHA256, signature.to_vec()),
        SignatureAlgorithm::RsaSha384 => (algs::RSA_PKCS1_2048_8192_SHA384, signature.to_vec()),
        SignatureAlgorithm::RsaSha512 => (algs::RSA_PKCS1_2048_8192_SHA512, signature.to_vec()),
        SignatureAlgorithm::EcdsaSha512 => {
            // webpki pairs P-256 with SHA-256 and SHA-384 only; the p256 crate cuts the
            // SHA-512 digest to the curve's size as ECDSA defines.
            use p256::ecdsa::signature::hazmat::PrehashVerifier;
            let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&spki.subject_public_key.data)
                .expect("P-256 key");
            let sig = p256::ecdsa::Signature::from_slice(signature).expect("raw r‖s");
            key.verify_prehash(&alg.digest(data), &sig)
                .expect("EcdsaSha512 signature verifies");
            return;
        }
        SignatureAlgorithm::EcdsaSha256 => {
            assert_eq!(signature.len(), 64, "raw r‖s");
            (algs::ECDSA_P256_SHA256, ecdsa_raw_to_der(signature))
        }
        SignatureAlgorithm::EcdsaSha384 => {
            assert_eq!(signature.len(), 64, "raw r‖s");
            (algs::ECDSA_P256_SHA384, ecdsa_raw_to_der(signature))
        }
    };
    verifier
        .verify_signature(&spki.subject_public_key.data, data, &signature)
        .unwrap_or_else(|_| panic!("{alg:?} signature does not verify"));
}

use x509_parser::prelude::FromDer;

fn sign_and_verify(source: &Pkcs11Key, spki: &[u8], alg: SignatureAlgorithm) {
    let mut session = source.open().expect("open session");
    let data = format!("<SignedInfo>{alg:?}</SignedInfo>");
    let signature = session.sign(alg, data.as_bytes()).expect("sign");
    verify(alg, spki, data.as_bytes(), &signature);
}

#[test]
fn lists_tokens_by_label() {
    assert!(test_token().dir.path().join("softhsm2.conf").exists());
    let tokens = test_token().module.tokens().unwrap();
    for label in TOKENS {
        let t = tokens.iter().find(|t| t.label == *label).expect(label);
        assert!(!t.serial.is_empty());
        assert_eq!(t.model, "SoftHSM v2");
    }
    // By serial alone, too.
    let fixture = tokens.iter().find(|t| t.label == "fixture").unwrap();
    let by_serial = TokenRef {
        label: None,
        serial: Some(fixture.serial.clone()),
    };
    let keys = list_keys(&test_token().module, &by_serial, PIN).unwrap();
    assert_eq!(keys[0].label, "gov1");
}

#[test]
fn rsa_generate_list_sign_verify() {
    let module = &test_token().module;
    let info = generate_key(module, &token("rsa"), PIN, "sign-rsa", KeyType::Rsa).unwrap();
    assert_eq!(info.id.len(), 20);
    let keys = list_keys(module, &token("rsa"), PIN).unwrap();
    assert_eq!(keys, vec![info.clone()]);
    assert!(!keys[0].has_cert);

    let err = generate_key(module, &token("rsa"), PIN, "sign-rsa", KeyType::Rsa).unwrap_err();
    assert!(
        !err.retry_elsewhere && err.message.contains("already"),
        "{err}"
    );

    let key_ref = KeyRef::Label("sign-rsa".into());
    let spki = public_key_der(module, &token("rsa"), PIN, &key_ref).unwrap();
    let source = key("rsa", key_ref.clone(), None);
    assert_eq!(source.key_type(), KeyType::Rsa);
    sign_and_verify(&source, &spki, SignatureAlgorithm::RsaSha512);
    sign_and_verify(&source, &spki, SignatureAlgorithm::RsaSha384);
    sign_and_verify(&source, &spki, SignatureAlgorithm::RsaSha256);
    let err = source
        .open()
        .unwrap()
        .sign(SignatureAlgorithm::EcdsaSha256, b"x")
        .unwrap_err();
    assert!(!err.retry_elsewhere);

    // The token hashes with CKM_SHA512_RSA_PKCS: same signature scheme, other algs refused.
    let hashing = key("rsa", key_ref.clone(), Some("CKM_SHA512_RSA_PKCS"));
    sign_and_verify(&hashing, &spki, SignatureAlgorithm::RsaSha512);
    let err = hashing
        .open()
        .unwrap()
        .sign(SignatureAlgorithm::RsaSha256, b"x")
        .unwrap_err();
    assert!(!err.retry_elsewhere, "{err}");

    let err = Pkcs11Key::new(
        module.clone(),
        token("rsa"),
        key_ref,
        PIN.into(),
        Some("CKM_ECDSA".into()),
    )
    .unwrap_err();
    assert!(
        !err.retry_elsewhere && err.message.contains("CKM_ECDSA"),
        "{err}"
    );
}

#[test]
fn ec_generate_sign_verify() {
    let module = &test_token().module;
    let info = generate_key(module, &token("ec"), PIN, "sign-ec", KeyType::EcP256).unwrap();
    assert_eq!(info.key_type, KeyType::EcP256);
    let key_ref = KeyRef::Label("sign-ec".into());
    let spki = public_key_der(module, &token("ec"), PIN, &key_ref).unwrap();
    let source = key("ec", key_ref.clone(), None);
    assert_eq!(source.key_type(), KeyType::EcP256);
    sign_and_verify(&source, &spki, SignatureAlgorithm::EcdsaSha256);
    sign_and_verify(&source, &spki, SignatureAlgorithm::EcdsaSha384);
    sign_and_verify(&source, &spki, SignatureAlgorithm::EcdsaSha512);

    // SoftHSM 2.6 has no CKM_ECDSA_SHA256; newer releases may.
    let hashing = key("ec", key_ref, Some("CKM_ECDSA_SHA256"));
    let slot = module.find_slot(&token("ec")).unwrap();
    let mechanisms = module.ctx.get_mechanism_list(slot).unwrap();
    if mechanisms.contains(&cryptoki::mechanism::MechanismType::ECDSA_SHA256) {
        sign_and_verify(&hashing, &spki, SignatureAlgorithm::EcdsaSha256);
    } else {
        let mut session = hashing.open().unwrap();
        let err = session
            .sign(SignatureAlgorithm::EcdsaSha256, b"x")
            .unwrap_err();
        assert!(
            !err.retry_elsewhere && err.message.contains("MechanismInvalid"),
            "{err}"
        );
    }
}

#[test]
fn csr_and_certificate_round_trip() {
    let module = &test_token().module;
    let t = token("csr");
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::default();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let subject: Vec<(String, String)> = [
        ("C", "UA"),
        ("O", "Test Org"),
        ("serialNumber", "SEVDEIR-TEST/ss1/GOV"),
        ("CN", "00000001"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();

    for (label, key_type) in [("csr-ec", KeyType::EcP256), ("csr-rsa", KeyType::Rsa)] {
        generate_key(module, &t, PIN, label, key_type).unwrap();
        let key_ref = KeyRef::Label(label.into());
        let spki = public_key_der(module, &t, PIN, &key_ref).unwrap();
        assert_eq!(read_cert(module, &t, PIN, &key_ref).unwrap(), None);

        let pem = csr_pem(module, &t, PIN, &key_ref, &subject).unwrap();
        assert!(
            pem.starts_with("-----BEGIN CERTIFICATE REQUEST-----"),
            "{pem}"
        );
        // rcgen checks the CSR's signature with ring as it parses it.
        let csr = rcgen::CertificateSigningRequestParams::from_pem(&pem).unwrap();
        let der = x509_parser::pem::parse_x509_pem(pem.as_bytes())
            .unwrap()
            .1
            .contents;
        let (_, parsed) =
            x509_parser::certification_request::X509CertificationRequest::from_der(&der).unwrap();
        assert_eq!(parsed.certification_request_info.subject_pki.raw, &spki[..]);
        assert_eq!(
            parsed.certification_request_info.subject.to_string(),
            "C=UA, O=Test Org, serialNumber=SEVDEIR-TEST/ss1/GOV, CN=00000001"
        );

        let cert = csr.signed_by(&ca, &ca_key).unwrap();
        let info = import_cert(module, &t, PIN, cert.der()).unwrap();
        assert_eq!(info.label, label);
        assert!(info.has_cert);
        assert_eq!(
            info.cert_subject.as_deref(),
            Some("C=UA, O=Test Org, serialNumber=SEVDEIR-TEST/ss1/GOV, CN=00000001")
        );
        let stored = read_cert(module, &t, PIN, &key_ref).unwrap();
        assert_eq!(stored.as_deref(), Some(&cert.der()[..]));
        let by_id = read_cert(module, &t, PIN, &KeyRef::Id(info.id.clone())).unwrap();
        assert_eq!(by_id, stored);

        // Importing again replaces rather than piles up.
        import_cert(module, &t, PIN, cert.der()).unwrap();
        let session = module.login(&t, &AuthPin::new(PIN.into()), false).unwrap();
        let certs = session
            .find_objects(&[
                Attribute::Class(ObjectClass::CERTIFICATE),
                Attribute::Id(info.id.clone()),
            ])
            .unwrap();
        assert_eq!(certs.len(), 1);
    }
    let keys = list_keys(module, &t, PIN).unwrap();
    assert_eq!(keys.len(), 2);
    assert!(keys.iter().all(|k| k.has_cert));

    // No key on the token matches the CA's own certificate.
    let err = import_cert(module, &t, PIN, ca.der()).unwrap_err();
    assert!(
        !err.retry_elsewhere && err.message.contains("no key"),
        "{err}"
    );
}

#[test]
fn finds_keys_by_label_and_id() {
    let module = &test_token().module;
    let t = token("lookup");
    let a = generate_key(module, &t, PIN, "lookup-a", KeyType::EcP256).unwrap();
    let b = generate_key(module, &t, PIN, "lookup-b", KeyType::EcP256).unwrap();
    assert_ne!(a.id, b.id);
    let spki_a = public_key_der(module, &t, PIN, &KeyRef::Label("lookup-a".into())).unwrap();
    let spki_b = public_key_der(module, &t, PIN, &KeyRef::Id(b.id.clone())).unwrap();
    assert_ne!(spki_a, spki_b);
    let by_label = key("lookup", KeyRef::Label("lookup-b".into()), None);
    let by_id = key("lookup", KeyRef::Id(b.id.clone()), None);
    sign_and_verify(&by_label, &spki_b, SignatureAlgorithm::EcdsaSha256);
    sign_and_verify(&by_id, &spki_b, SignatureAlgorithm::EcdsaSha256);

    assert!(by_label.describe().contains("libsofthsm2.so"));
    assert!(by_label.describe().contains("lookup-b"));
    let debug = format!("{by_label:?}");
    assert!(
        !debug.contains(PIN) && debug.contains("REDACTED"),
        "{debug}"
    );

    let missing = |key_ref: KeyRef, token_ref: TokenRef| {
        Pkcs11Key::new(module.clone(), token_ref, key_ref, PIN.into(), None).unwrap_err()
    };
    let err = missing(KeyRef::Label("nope".into()), t.clone());
    assert!(
        !err.retry_elsewhere && err.message.contains("not found"),
        "{err}"
    );
    let err = missing(KeyRef::Id(vec![1, 2, 3]), t.clone());
    assert!(!err.retry_elsewhere, "{err}");
    let err = missing(KeyRef::Label("lookup-a".into()), token("no-such-token"));
    assert!(
        !err.retry_elsewhere && err.message.contains("not found"),
        "{err}"
    );
}

#[test]
fn wrong_pin_is_permanent() {
    // Nothing else logs in to this token: a logged-in token accepts any PIN.
    let module = &test_token().module;
    let t = token("wrongpin");
    let err = list_keys(module, &t, "0000").unwrap_err();
    assert!(!err.retry_elsewhere, "{err}");
    assert!(err.message.contains("PinIncorrect"), "{err}");
    assert!(!err.message.contains("0000"));
    let err = Pkcs11Key::new(
        module.clone(),
        t.clone(),
        KeyRef::Label("k".into()),
        "0000".into(),
        None,
    )
    .unwrap_err();
    assert!(
        !err.retry_elsewhere && err.message.contains("PinIncorrect"),
        "{err}"
    );
    assert_eq!(list_keys(module, &t, PIN).unwrap(), vec![]);
}

#[test]
fn killed_session_fails_transiently_and_a_new_one_works() {
    let module = &test_token().module;
    generate_key(module, &token("kill"), PIN, "kill", KeyType::EcP256).unwrap();
    let key_ref = KeyRef::Label("kill".into());
    let spki = public_key_der(module, &token("kill"), PIN, &key_ref).unwrap();
    let source = key("kill", key_ref, None);
    let mut victim = source.open().unwrap();
    let mut other = source.open().unwrap();
    let alg = SignatureAlgorithm::EcdsaSha256;
    victim.sign(alg, b"before").unwrap();

    victim.kill();
    let err = victim.sign(alg, b"after").unwrap_err();
    assert!(err.retry_elsewhere, "{err}");
    victim.kill(); // twice is harmless

    // The other session stays logged in and working.
    let sig = other.sign(alg, b"after").unwrap();
    verify(alg, &spki, b"after", &sig);
    sign_and_verify(&source, &spki, alg);

    // Once every session is gone the token logs out; a new session logs in again.
    drop(other);
    drop(victim);
    sign_and_verify(&source, &spki, alg);
}

#[test]
fn sessions_sign_in_parallel() {
    let module = &test_token().module;
    let t = token("parallel");
    generate_key(module, &t, PIN, "par-ec", KeyType::EcP256).unwrap();
    generate_key(module, &t, PIN, "par-rsa", KeyType::Rsa).unwrap();
    let mut threads = Vec::new();
    for (i, (label, alg)) in [
        ("par-ec", SignatureAlgorithm::EcdsaSha256),
        ("par-rsa", SignatureAlgorithm::RsaSha512),
    ]
    .into_iter()
    .cycle()
    .take(8)
    .enumerate()
    {
        let key_ref = KeyRef::Label(label.into());
        let spki = public_key_der(module, &t, PIN, &key_ref).unwrap();
        let source = Arc::new(key("parallel", key_ref, None));
        threads.push(std::thread::spawn(move || {
            let mut session = source.open().unwrap();
            for n in 0..20 {
                let data = format!("thread {i} message {n}");
                let sig = session.sign(alg, data.as_bytes()).unwrap();
                verify(alg, &spki, data.as_bytes(), &sig);
            }
        }));
    }
    for thread in threads {
        thread.join().unwrap();
    }
}

#[test]
fn fixture_key_imported_by_script() {
    let module = &test_token().module;
    let t = token("fixture");
    let pem = std::fs::read(manifest_path(FIXTURE_CERT)).unwrap();
    let cert_der = x509_parser::pem::parse_x509_pem(&pem).unwrap().1.contents;
    let (_, cert) = x509_parser::parse_x509_certificate(&cert_der).unwrap();
    let cert_spki = cert.public_key().raw.to_vec();

    let key_ref = KeyRef::Label("gov1".into());
    assert_eq!(
        public_key_der(module, &t, PIN, &key_ref).unwrap(),
        cert_spki
    );
    let source = key("fixture", key_ref.clone(), None);
    sign_and_verify(&source, &cert_spki, SignatureAlgorithm::EcdsaSha256);

    let info = import_cert(module, &t, PIN, &cert_der).unwrap();
    assert_eq!(info.label, "gov1");
    assert_eq!(info.cert_subject, Some(cert.subject().to_string()));
    let stored = read_cert(module, &t, PIN, &KeyRef::Id(info.id)).unwrap();
    assert_eq!(stored, Some(cert_der.clone()));
}

#[test]
fn module_loads_once_per_library() {
    let module = &test_token().module;
    let again = Module::load(module.settings()).unwrap();
    assert!(Arc::ptr_eq(module, &again));
    let mut other = module.settings().clone();
    other.mechanism = Some("CKM_RSA_PKCS".into());
    assert!(Arc::ptr_eq(module, &Module::load(&other).unwrap()));
    other
        .env
        .push(("PKCS11_PROXY_SOCKET".into(), "tcp://x".into()));
    assert!(Module::load(&other).is_err());
    let missing = ModuleSettings {
        library: "/nonexistent/libpkcs11.so".into(),
        env: vec![],
        mechanism: None,
    };
    assert!(!Module::load(&missing).unwrap_err().retry_elsewhere);
}

#[test]
fn der_helpers() {
    // r with a high bit (gets a 0x00 pad in DER), s with leading zeros (shorter in DER).
    let mut raw = vec![0x80; 32];
    raw.extend([0, 0, 1].iter().chain(&[7u8; 29]));
    let der = ecdsa_raw_to_der(&raw);
    assert_eq!(&der[..4], &[0x30, 0x43, 0x02, 0x21]);
    assert_eq!(ecdsa_der_to_raw(&der, 32), Some(raw.clone()));
    assert_eq!(ecdsa_der_to_raw(&der[..der.len() - 1], 32), None);
    assert_eq!(ecdsa_der_to_raw(&[der.clone(), vec![0]].concat(), 32), None);

    let point = [&[0x04][..], &[9u8; 64]].concat();
    assert_eq!(ec_point(&point), Some(point.clone()));
    assert_eq!(ec_point(&tlv(0x04, &point)), Some(point.clone()));
    assert_eq!(ec_point(&point[..33]), None);

    assert_eq!(tlv(0x04, &[0; 300])[..4], [0x04, 0x82, 0x01, 0x2c]);
    assert_eq!(der_uint(&[0, 0]), vec![0x02, 0x01, 0x00]);

    assert_eq!(SignMech::parse("ckm_ecdsa").unwrap(), SignMech::Ecdsa);
    assert!(SignMech::parse("CKM_RSA_PKCS_PSS").is_err());
    assert_eq!(
        SignMech::choose(None, KeyType::Rsa).unwrap(),
        SignMech::RsaPkcs
    );
}
