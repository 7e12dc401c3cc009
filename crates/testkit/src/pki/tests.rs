use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, KeyUsage};
use x509_parser::oid_registry::{
    Oid, OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_SIG_ECDSA_WITH_SHA256, OID_X509_COMMON_NAME,
    OID_X509_COUNTRY_NAME, OID_X509_ORGANIZATION_NAME, OID_X509_SERIALNUMBER,
};
use x509_parser::x509::X509Name;

use super::*;

/// Key generation is cheap but not free; most tests only read the default PKI.
fn default_pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| generate(&default_spec()).expect("default spec generates"))
}

fn parse(der: &[u8]) -> X509Certificate<'_> {
    let (rest, cert) = x509_parser::parse_x509_certificate(der).expect("parses");
    assert!(rest.is_empty(), "trailing bytes after certificate");
    cert
}

/// Subject as (attribute OID, value) in RDN order.
fn subject(name: &X509Name<'_>) -> Vec<(Oid<'static>, String)> {
    name.iter_attributes()
        .map(|a| {
            (
                a.attr_type().to_owned(),
                a.as_str().expect("string attribute").to_owned(),
            )
        })
        .collect()
}

fn key_usages(ku: &KeyUsage) -> Vec<&'static str> {
    let all = [
        (ku.digital_signature(), "digitalSignature"),
        (ku.non_repudiation(), "nonRepudiation"),
        (ku.key_encipherment(), "keyEncipherment"),
        (ku.data_encipherment(), "dataEncipherment"),
        (ku.key_agreement(), "keyAgreement"),
        (ku.key_cert_sign(), "keyCertSign"),
        (ku.crl_sign(), "cRLSign"),
        (ku.encipher_only(), "encipherOnly"),
        (ku.decipher_only(), "decipherOnly"),
    ];
    all.into_iter()
        .filter(|(set, _)| *set)
        .map(|(_, n)| n)
        .collect()
}

fn ku_of(cert: &X509Certificate<'_>) -> Vec<&'static str> {
    let ext = cert.key_usage().unwrap().expect("keyUsage present");
    assert!(ext.critical, "keyUsage should be critical");
    key_usages(ext.value)
}

/// (serverAuth, clientAuth), or None without the extension.
fn eku_of(cert: &X509Certificate<'_>) -> Option<(bool, bool)> {
    cert.extended_key_usage().unwrap().map(|e| {
        assert!(!e.value.any && e.value.other.is_empty());
        (e.value.server_auth, e.value.client_auth)
    })
}

fn sans_of(cert: &X509Certificate<'_>) -> Vec<String> {
    let Some(ext) = cert.subject_alternative_name().unwrap() else {
        return Vec::new();
    };
    ext.value
        .general_names
        .iter()
        .map(|g| match g {
            GeneralName::DNSName(d) => format!("DNS:{d}"),
            GeneralName::IPAddress(b) => format!(
                "IP:{}",
                std::net::Ipv4Addr::from(<[u8; 4]>::try_from(*b).unwrap())
            ),
            other => panic!("unexpected SAN {other:?}"),
        })
        .collect()
}

/// Checks what every certificate of the PKI shares: P-256, ECDSA-SHA256, validity, issuer.
fn check_common(cert: &X509Certificate<'_>, ca: &X509Certificate<'_>, is_ca: bool) {
    assert_eq!(
        cert.signature_algorithm.algorithm,
        OID_SIG_ECDSA_WITH_SHA256
    );
    let spki = &cert.public_key().algorithm;
    assert_eq!(spki.algorithm, OID_KEY_TYPE_EC_PUBLIC_KEY);
    assert_eq!(
        spki.parameters.as_ref().unwrap().as_oid().unwrap(),
        OID_EC_P256
    );
    assert_eq!(
        cert.validity().not_before.timestamp(),
        NOT_BEFORE.unix_timestamp()
    );
    assert_eq!(
        cert.validity().not_after.timestamp(),
        NOT_AFTER.unix_timestamp()
    );
    assert_eq!(cert.validity().not_before.to_datetime().year(), 2024);
    assert_eq!(cert.validity().not_after.to_datetime().year(), 2044);
    assert_eq!(cert.issuer().as_raw(), ca.subject().as_raw());
    assert_eq!(cert.is_ca(), is_ca);
    // CAs say so; end-entity certificates carry no basicConstraints (DER forbids writing the
    // default cA FALSE, and strict parsers refuse it).
    let bc = cert.basic_constraints().unwrap();
    assert_eq!(bc.map(|b| b.value.ca), is_ca.then_some(true));
}

fn at_2030() -> UnixTime {
    UnixTime::since_unix_epoch(Duration::from_secs(1_893_456_000))
}

fn verify(
    ee: &[u8],
    ca: &[u8],
    usage: webpki::KeyUsage,
    now: UnixTime,
) -> Result<(), webpki::Error> {
    let ca = CertificateDer::from(ca);
    let anchor = webpki::anchor_from_trusted_cert(&ca)?;
    let ee = CertificateDer::from(ee);
    let cert = webpki::EndEntityCert::try_from(&ee)?;
    cert.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &[anchor],
        &[],
        now,
        usage,
        None,
        None,
    )
    .map(|_| ())
}

fn wrong_eku(r: Result<(), webpki::Error>) -> bool {
    matches!(r, Err(webpki::Error::RequiredEkuNotFoundContext(_)))
}

fn valid_for_name(ee: &[u8], name: &str) -> bool {
    let ee = CertificateDer::from(ee);
    let cert = webpki::EndEntityCert::try_from(&ee).unwrap();
    cert.verify_is_valid_for_subject_name(&ServerName::try_from(name).unwrap())
        .is_ok()
}

#[test]
fn default_spec_generates_every_certificate() {
    let pki = default_pki();
    assert_eq!(pki.auth.keys().collect::<Vec<_>>(), ["ss1", "ss2"]);
    assert_eq!(pki.internal_tls.keys().collect::<Vec<_>>(), ["ss1", "ss2"]);
    assert_eq!(
        pki.sign.keys().collect::<Vec<_>>(),
        [
            "GOV/00000001",
            "GOV/00000002",
            "GOV/00000003",
            "GOV/00000004",
            "GOV/00000005",
            "GOV/00000006",
            "GOV/00000007",
            "GOV/00000009"
        ]
    );
    assert_eq!(pki.clients.keys().collect::<Vec<_>>(), ["diia-is"]);
    let all = std::iter::once(&pki.ca)
        .chain(pki.auth.values())
        .chain(pki.internal_tls.values())
        .chain(pki.sign.values())
        .chain(pki.clients.values());
    for issued in all {
        assert!(issued.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(
            issued.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"),
            "PKCS#8 expected"
        );
        assert_eq!(
            single_cert_der(&issued.cert_pem, "test").unwrap(),
            issued.cert_der
        );
    }
    // Debug output must not leak keys.
    assert!(!format!("{pki:?}").contains("PRIVATE KEY"));
}

#[test]
fn ca_profile() {
    let pki = default_pki();
    let ca = parse(&pki.ca.cert_der);
    check_common(&ca, &ca, true);
    assert_eq!(
        subject(ca.subject()),
        [
            (OID_X509_COUNTRY_NAME, "UA".to_owned()),
            (OID_X509_ORGANIZATION_NAME, "brama test PKI".to_owned()),
            (OID_X509_COMMON_NAME, "SEVDEIR-TEST Test CA".to_owned()),
        ]
    );
    assert_eq!(ku_of(&ca), ["keyCertSign", "cRLSign"]);
    assert_eq!(eku_of(&ca), None);
    ca.verify_signature(None).expect("self-signed");
}

#[test]
fn auth_profile() {
    let pki = default_pki();
    let ca = parse(&pki.ca.cert_der);
    for (code, owner_code, owner_name) in [
        (
            "ss1",
            "00000001",
            "Міністерство цифрової трансформації України",
        ),
        ("ss2", "00000002", "Міністерство юстиції України (ДРАЦС)"),
    ] {
        let cert = parse(&pki.auth[code].cert_der);
        check_common(&cert, &ca, false);
        assert_eq!(
            subject(cert.subject()),
            [
                (OID_X509_COUNTRY_NAME, "UA".to_owned()),
                (OID_X509_ORGANIZATION_NAME, owner_name.to_owned()),
                (OID_X509_SERIALNUMBER, format!("SEVDEIR-TEST/{code}/GOV")),
                (OID_X509_COMMON_NAME, owner_code.to_owned()),
            ]
        );
        assert_eq!(
            ku_of(&cert),
            ["digitalSignature", "keyEncipherment", "keyAgreement"]
        );
        assert_eq!(eku_of(&cert), Some((true, true)));
        assert_eq!(
            sans_of(&cert),
            [
                format!("DNS:{code}"),
                "IP:127.0.0.1".into(),
                "DNS:localhost".into()
            ]
        );
        cert.verify_signature(Some(ca.public_key()))
            .expect("signed by the CA");
    }
}

#[test]
fn auth_sans_keep_a_host_name_address() {
    let mut spec = default_spec();
    spec.servers.truncate(1);
    spec.servers[0].address = "ss1.sevdeir.test".into();
    spec.members.clear();
    spec.clients.clear();
    let pki = generate(&spec).unwrap();
    assert_eq!(
        sans_of(&parse(&pki.auth["ss1"].cert_der)),
        [
            "DNS:ss1",
            "DNS:ss1.sevdeir.test",
            "DNS:localhost",
            "IP:127.0.0.1"
        ]
    );
    assert_eq!(
        sans_of(&parse(&pki.internal_tls["ss1"].cert_der)),
        ["DNS:localhost", "IP:127.0.0.1", "DNS:ss1.sevdeir.test"]
    );
}

#[test]
fn empty_names_leave_out_the_organization() {
    let mut spec = default_spec();
    spec.servers[0].owner_name.clear();
    spec.members[0].name.clear();
    let pki = generate(&spec).unwrap();
    for der in [
        &pki.auth["ss1"].cert_der,
        &pki.sign["GOV/00000001"].cert_der,
    ] {
        let cert = parse(der);
        let oids: Vec<_> = subject(cert.subject())
            .into_iter()
            .map(|(o, _)| o)
            .collect();
        assert_eq!(
            oids,
            [
                OID_X509_COUNTRY_NAME,
                OID_X509_SERIALNUMBER,
                OID_X509_COMMON_NAME
            ]
        );
    }
}

#[test]
fn internal_tls_profile() {
    let pki = default_pki();
    let ca = parse(&pki.ca.cert_der);
    let cert = parse(&pki.internal_tls["ss1"].cert_der);
    check_common(&cert, &ca, false);
    assert_eq!(
        subject(cert.subject()),
        [(OID_X509_COMMON_NAME, "ss1".to_owned())]
    );
    assert_eq!(ku_of(&cert), ["digitalSignature"]);
    assert_eq!(eku_of(&cert), Some((true, false)));
    assert_eq!(sans_of(&cert), ["DNS:localhost", "IP:127.0.0.1"]);
}

#[test]
fn sign_profile() {
    let pki = default_pki();
    let ca = parse(&pki.ca.cert_der);
    for (code, server, name) in [
        (
            "00000001",
            "ss1",
            "Міністерство цифрової трансформації України",
        ),
        ("00000002", "ss2", "Міністерство юстиції України (ДРАЦС)"),
        // Owns no server: named after the first one.
        ("00000009", "ss1", "Тестова установа"),
    ] {
        let cert = parse(&pki.sign[&format!("GOV/{code}")].cert_der);
        check_common(&cert, &ca, false);
        assert_eq!(
            subject(cert.subject()),
            [
                (OID_X509_COUNTRY_NAME, "UA".to_owned()),
                (OID_X509_ORGANIZATION_NAME, name.to_owned()),
                (OID_X509_SERIALNUMBER, format!("SEVDEIR-TEST/{server}/GOV")),
                (OID_X509_COMMON_NAME, code.to_owned()),
            ]
        );
        assert_eq!(ku_of(&cert), ["nonRepudiation"]);
        assert_eq!(eku_of(&cert), None);
        assert!(sans_of(&cert).is_empty());
    }
}

#[test]
fn client_profile() {
    let pki = default_pki();
    let ca = parse(&pki.ca.cert_der);
    let cert = parse(&pki.clients["diia-is"].cert_der);
    check_common(&cert, &ca, false);
    assert_eq!(
        subject(cert.subject()),
        [(OID_X509_COMMON_NAME, "diia-is".to_owned())]
    );
    assert_eq!(ku_of(&cert), ["digitalSignature"]);
    assert_eq!(eku_of(&cert), Some((false, true)));
}

#[test]
fn webpki_accepts_the_chains() {
    let pki = default_pki();
    let ca = &pki.ca.cert_der;
    for now in [at_2030(), UnixTime::now()] {
        for auth in pki.auth.values() {
            verify(&auth.cert_der, ca, webpki::KeyUsage::server_auth(), now)
                .expect("auth as TLS server");
            verify(&auth.cert_der, ca, webpki::KeyUsage::client_auth(), now)
                .expect("auth as TLS client");
        }
        for internal in pki.internal_tls.values() {
            verify(&internal.cert_der, ca, webpki::KeyUsage::server_auth(), now).unwrap();
            assert!(wrong_eku(verify(
                &internal.cert_der,
                ca,
                webpki::KeyUsage::client_auth(),
                now
            )));
        }
        let client = &pki.clients["diia-is"].cert_der;
        verify(client, ca, webpki::KeyUsage::client_auth(), now).unwrap();
        assert!(wrong_eku(verify(
            client,
            ca,
            webpki::KeyUsage::server_auth(),
            now
        )));
    }
    let before =
        UnixTime::since_unix_epoch(Duration::from_secs(NOT_BEFORE.unix_timestamp() as u64 - 1));
    assert!(verify(
        &pki.auth["ss1"].cert_der,
        ca,
        webpki::KeyUsage::server_auth(),
        before
    )
    .is_err());

    for name in ["ss1", "localhost", "127.0.0.1"] {
        assert!(
            valid_for_name(&pki.auth["ss1"].cert_der, name),
            "auth valid for {name}"
        );
    }
    assert!(!valid_for_name(&pki.auth["ss1"].cert_der, "ss2"));
    for name in ["localhost", "127.0.0.1"] {
        assert!(
            valid_for_name(&pki.internal_tls["ss1"].cert_der, name),
            "internal valid for {name}"
        );
    }
}

#[test]
fn rustls_loads_the_keys() {
    let pki = default_pki();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    for issued in pki.auth.values().chain(pki.internal_tls.values()) {
        let key = rustls_pemfile::private_key(&mut issued.key_pem.as_bytes())
            .unwrap()
            .unwrap();
        assert!(matches!(key, PrivateKeyDer::Pkcs8(_)));
        rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![CertificateDer::from(issued.cert_der.clone())], key)
            .expect("rustls accepts cert and key");
    }
}

#[test]
fn write_and_load_round_trip() {
    let pki = default_pki();
    let dir = tempfile::TempDir::new().unwrap();
    let out = dir.path().join("certs-test");
    pki.write_dir(&out).unwrap();

    let mut names: Vec<String> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let mut expected: Vec<String> = [
        "ca",
        "ocsp-responder",
        "ss1-auth",
        "ss2-auth",
        "ss1-internal",
        "ss2-internal",
        "sign-GOV-00000001",
        "sign-GOV-00000002",
        "sign-GOV-00000003",
        "sign-GOV-00000004",
        "sign-GOV-00000005",
        "sign-GOV-00000006",
        "sign-GOV-00000007",
        "sign-GOV-00000009",
        "client-diia-is",
        "central-server",
        "tsa",
    ]
    .iter()
    .flat_map(|b| [format!("{b}.pem"), format!("{b}.key")])
    .chain(["README.md".to_owned()])
    .collect();
    expected.sort();
    assert_eq!(names, expected);

    let readme = fs::read_to_string(out.join("README.md")).unwrap();
    assert!(readme.contains("TEST ONLY") && readme.contains("brama certs init"));
    assert!(
        readme.contains("`ss2`")
            && readme.contains("`GOV/00000009`")
            && readme.contains("`diia-is`")
    );

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(out.join("ss1-auth.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let loaded = Pki::load_dir(&out, &default_spec()).unwrap();
    assert_eq!(&loaded, pki);

    // Writing again over an existing directory works (certs init re-run).
    pki.write_dir(&out).unwrap();
}

#[test]
fn load_dir_reports_missing_and_mismatched_files() {
    let pki = default_pki();
    let dir = tempfile::TempDir::new().unwrap();
    pki.write_dir(dir.path()).unwrap();

    fs::copy(
        dir.path().join("ss2-auth.key"),
        dir.path().join("ss1-auth.key"),
    )
    .unwrap();
    let err = Pki::load_dir(dir.path(), &default_spec()).unwrap_err();
    assert!(
        matches!(err, PkiError::KeyMismatch { ref what } if what.ends_with("ss1-auth.key")),
        "{err}"
    );

    fs::remove_file(dir.path().join("ss1-auth.key")).unwrap();
    let err = Pki::load_dir(dir.path(), &default_spec()).unwrap_err();
    assert!(matches!(err, PkiError::Io { .. }), "{err}");

    fs::write(dir.path().join("ca.pem"), "not a certificate").unwrap();
    let err = Pki::load_dir(dir.path(), &default_spec()).unwrap_err();
    assert!(matches!(err, PkiError::BadPem { .. }), "{err}");
}

#[test]
fn rogue_ca_certificates_do_not_verify() {
    let spec = default_spec();
    let pki = default_pki();
    // Same name as the approved CA: only the key tells them apart.
    let rogue_ca = generate_ca(&spec.ca_name).unwrap();
    let rogue = issue_auth_cert(
        &rogue_ca.cert_pem,
        &rogue_ca.key_pem,
        &spec.instance,
        &spec.servers[0],
    )
    .unwrap();

    // The rogue certificate looks exactly like the real one...
    let (real_cert, rogue_cert) = (parse(&pki.auth["ss1"].cert_der), parse(&rogue.cert_der));
    assert_eq!(real_cert.subject().as_raw(), rogue_cert.subject().as_raw());
    assert_eq!(real_cert.issuer().as_raw(), rogue_cert.issuer().as_raw());
    // ...and is fine under its own CA...
    verify(
        &rogue.cert_der,
        &rogue_ca.cert_der,
        webpki::KeyUsage::server_auth(),
        at_2030(),
    )
    .unwrap();
    // ...but not under the approved one.
    for usage in [
        webpki::KeyUsage::server_auth(),
        webpki::KeyUsage::client_auth(),
    ] {
        assert!(verify(&rogue.cert_der, &pki.ca.cert_der, usage, at_2030()).is_err());
    }

    // Issuing from the approved CA's PEM files gives certificates that do verify.
    let extra = issue_auth_cert(
        &pki.ca.cert_pem,
        &pki.ca.key_pem,
        &spec.instance,
        &spec.servers[1],
    )
    .unwrap();
    verify(
        &extra.cert_der,
        &pki.ca.cert_der,
        webpki::KeyUsage::client_auth(),
        at_2030(),
    )
    .unwrap();
    assert_ne!(extra.cert_der, pki.auth["ss2"].cert_der);

    // A CA certificate with somebody else's key is refused up front.
    let err = issue_auth_cert(
        &pki.ca.cert_pem,
        &rogue_ca.key_pem,
        &spec.instance,
        &spec.servers[0],
    )
    .unwrap_err();
    assert!(matches!(err, PkiError::KeyMismatch { .. }), "{err}");
    let err =
        issue_auth_cert("garbage", &pki.ca.key_pem, &spec.instance, &spec.servers[0]).unwrap_err();
    assert!(matches!(err, PkiError::BadPem { .. }), "{err}");
}

#[test]
fn invalid_specs_are_refused() {
    let refused = |f: &dyn Fn(&mut PkiSpec)| {
        let mut spec = default_spec();
        f(&mut spec);
        matches!(generate(&spec), Err(PkiError::InvalidSpec(_)))
    };
    assert!(refused(&|s| s.instance.clear()));
    assert!(refused(&|s| s.instance = "A/B".into()));
    assert!(refused(&|s| s.ca_name = " ".into()));
    assert!(refused(&|s| s.servers[1].server_code = "ss1".into()));
    assert!(refused(&|s| s.servers[0].server_code = "../ss1".into()));
    assert!(refused(&|s| s.servers[0].address = "not a host".into()));
    assert!(refused(&|s| s.servers[0].owner_class = "GOV/X".into()));
    assert!(refused(&|s| s.members.push(s.members[0].clone())));
    assert!(refused(&|s| s.clients.push("diia-is".into())));
    assert!(refused(&|s| s.clients.push(String::new())));
    assert!(refused(&|s| s.servers.clear()));
    // Distinct identifiers, same file name: server "sign-GOV" vs member GOV/auth.
    assert!(refused(&|s| {
        s.servers[0].server_code = "sign-GOV".into();
        s.members.push(MemberSpec {
            class: "GOV".into(),
            code: "auth".into(),
            name: "x".into(),
        });
    }));
    // Servers alone, without members, are fine; so are IPv6 addresses, bracketed or not.
    assert!(!refused(&|s| s.members.clear()));
    assert!(!refused(&|s| s.servers[0].address = "::1".into()));
    assert!(!refused(&|s| s.servers[0].address = "[::1]".into()));
}
