//! `brama keys`: generate, list, CSR and certificate import on a SoftHSM2 token and on a
//! software token, through the built binary.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{node_toml, TwoServers};
use x509_parser::prelude::FromDer;

const BIN: &str = env!("CARGO_BIN_EXE_brama");

fn brama(config: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("keys")
        .args(args)
        .arg("--config")
        .arg(config)
        .env_remove("RUST_LOG")
        .output()
        .expect("runs brama")
}

/// stdout of a successful run.
fn ok(config: &Path, args: &[&str]) -> String {
    let out = brama(config, args);
    assert!(
        out.status.success(),
        "brama keys {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A SoftHSM2 token `brama` (PIN in a file) and a config naming it after the software token.
fn setup(dir: &Path) -> std::path::PathBuf {
    let conf = common::softhsm::init_token(dir, &[]);
    let config = dir.join("keys.toml");
    let toml = node_toml(
        "ss1",
        "00000001",
        "globalconf",
        &common::softhsm::token_toml(&conf),
    );
    std::fs::write(&config, toml).unwrap();
    config
}

/// Checks the CSR's subject, then issues a certificate for it with the test CA.
fn issue(dir: &Path, csr_pem: &str) -> String {
    let (_, pem) = x509_parser::pem::parse_x509_pem(csr_pem.as_bytes()).expect("PEM CSR");
    assert_eq!(pem.label, "CERTIFICATE REQUEST");
    let (_, csr) =
        x509_parser::certification_request::X509CertificationRequest::from_der(&pem.contents)
            .expect("PKCS#10");
    let subject = csr.certification_request_info.subject.to_string();
    assert!(subject.contains("CN=00000001"), "{subject}");
    assert!(subject.contains("C=UA"), "{subject}");
    assert!(subject.contains("Мінцифри"), "{subject}");
    assert!(subject.contains("SEVDEIR-TEST/ss1/GOV"), "{subject}");

    let ca_key =
        rcgen::KeyPair::from_pem(&std::fs::read_to_string(dir.join("certs/ca.key")).unwrap())
            .unwrap();
    let ca_cert = rcgen::CertificateParams::from_ca_cert_pem(
        &std::fs::read_to_string(dir.join("certs/ca.pem")).unwrap(),
    )
    .unwrap()
    .self_signed(&ca_key)
    .unwrap();
    rcgen::CertificateSigningRequestParams::from_pem(csr_pem)
        .unwrap()
        .signed_by(&ca_cert, &ca_key)
        .unwrap()
        .pem()
}

fn line<'a>(listing: &'a str, label: &str) -> &'a str {
    listing
        .lines()
        .find(|l| l.starts_with(&format!("{label} ")))
        .unwrap_or_else(|| panic!("no {label} in:\n{listing}"))
}

#[test]
fn keys_on_a_pkcs11_token() {
    let net = TwoServers::new();
    let dir = net.path();
    let config = setup(&dir);

    let out = ok(&config, &["generate", "--label", "sign-ec"]);
    assert!(out.contains("sign-ec") && out.contains("id="), "{out}");
    ok(
        &config,
        &["generate", "--label", "sign-rsa", "--type", "rsa"],
    );
    // The same label again is refused.
    let again = brama(&config, &["generate", "--label", "sign-ec"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).starts_with("error: "));

    let listing = ok(&config, &["list"]);
    assert!(line(&listing, "sign-ec").contains("EC P-256"), "{listing}");
    assert!(line(&listing, "sign-rsa").contains("RSA"), "{listing}");
    assert!(line(&listing, "sign-ec").contains("no certificate"));
    assert!(
        !listing.contains(common::softhsm::PIN),
        "the PIN is never printed"
    );

    for label in ["sign-ec", "sign-rsa"] {
        let csr_file = dir.join(format!("{label}.csr"));
        ok(
            &config,
            &[
                "csr",
                "--label",
                label,
                "--member",
                "SEVDEIR-TEST/GOV/00000001",
                "--out",
                csr_file.to_str().unwrap(),
            ],
        );
        let cert = issue(&dir, &std::fs::read_to_string(&csr_file).unwrap());
        let cert_file = dir.join(format!("{label}.pem"));
        std::fs::write(&cert_file, cert).unwrap();
        let out = ok(&config, &["import-cert", cert_file.to_str().unwrap()]);
        assert!(out.contains(label), "{out}");
    }

    let listing = ok(&config, &["list", "--token", "hsm"]);
    for label in ["sign-ec", "sign-rsa"] {
        let l = line(&listing, label);
        assert!(
            l.contains("certificate: ") && l.contains("CN=00000001"),
            "{l}"
        );
    }
}

#[test]
fn keys_on_a_software_token() {
    let net = TwoServers::new();
    let dir = net.path();
    let config = setup(&dir);
    fn with<'a>(args: &[&'a str]) -> Vec<&'a str> {
        [args, &["--token", "soft"][..]].concat()
    }

    ok(&config, &with(&["generate", "--label", "sign-new"]));
    assert!(dir.join("certs/sign-new.key").exists());
    let again = brama(&config, &with(&["generate", "--label", "sign-new"]));
    assert_eq!(again.status.code(), Some(1));

    let listing = ok(&config, &with(&["list"]));
    assert!(
        line(&listing, "sign-new").contains("no certificate"),
        "{listing}"
    );
    // The PKI's own signing keys have certificates.
    assert!(line(&listing, "sign-GOV-00000001").contains("certificate: "));

    let csr = ok(
        &config,
        &with(&[
            "csr",
            "--label",
            "sign-new",
            "--member",
            "SEVDEIR-TEST/GOV/00000001",
        ]),
    );
    let cert_file = dir.join("issued.pem");
    std::fs::write(&cert_file, issue(&dir, &csr)).unwrap();
    let out = ok(
        &config,
        &with(&["import-cert", cert_file.to_str().unwrap()]),
    );
    assert!(out.contains("sign-new"), "{out}");
    let listing = ok(&config, &with(&["list"]));
    assert!(
        line(&listing, "sign-new").contains("CN=00000001"),
        "{listing}"
    );

    // Any label is listed once generated, not only `sign-*` ones.
    ok(&config, &with(&["generate", "--label", "hsm-migration"]));
    let listing = ok(&config, &with(&["list"]));
    assert!(
        line(&listing, "hsm-migration").contains("EC P-256"),
        "{listing}"
    );
    // A CA certificate is not a signing certificate.
    let ca = dir.join("certs/ca.pem");
    let refused = brama(&config, &with(&["import-cert", ca.to_str().unwrap()]));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{err}");
    assert!(err.contains("is a CA certificate"), "{err}");
}

/// Without --config: the embedded default's keys, listed; writing to them is refused.
#[test]
fn keys_of_the_embedded_default() {
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_brama"))
            .arg("keys")
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["list"]);
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        line(&listing, "sign-GOV-00000001").contains("CN=00000001"),
        "{listing}"
    );
    let out = run(&["generate", "--label", "x"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("read-only"));
}
