//! Test PKI for X-Road / Trembita style deployments (`brama certs init`, tests).
//!
//! One self-signed CA issues, for every security server, an authentication certificate (mutual
//! TLS between security servers) and an internal TLS certificate (HTTPS towards information
//! systems); for every member a signing certificate; and for every information system a TLS
//! client certificate. All keys are ECDSA P-256, stored as PKCS#8 PEM. Subjects follow X-Road's
//! FI profile (see `profile.rs`): auth `C=UA, O=<owner name>, serialNumber=<instance>/<server
//! code>/<owner class>, CN=<owner code>`; sign `C=UA, O=<member name>,
//! serialNumber=<instance>/<server code>/<member class>, CN=<member code>`, where the server is
//! the one the member owns, else the first server of the spec. An empty owner or member name
//! leaves `O` out.
//!
//! TEST ONLY: the keys are generated without any protection and are meant to be checked in.

mod profile;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use rcgen::{Certificate, CertificateParams, KeyPair, PKCS_ECDSA_P256_SHA256};

pub use profile::{NOT_AFTER, NOT_BEFORE};

/// What to generate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PkiSpec {
    /// X-Road instance identifier, e.g. `SEVDEIR-TEST`.
    pub instance: String,
    /// Common name of the CA.
    pub ca_name: String,
    pub servers: Vec<ServerSpec>,
    pub members: Vec<MemberSpec>,
    /// Information-system TLS client names, e.g. `diia-is`.
    pub clients: Vec<String>,
}

/// A security server and its owner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerSpec {
    pub owner_class: String,
    pub owner_code: String,
    pub owner_name: String,
    pub server_code: String,
    /// Host name or IP address the server is reached at, put into the SANs.
    pub address: String,
}

/// A member, which gets a signing certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberSpec {
    pub class: String,
    /// For Trembita the 8-digit EDRPOU code.
    pub code: String,
    pub name: String,
}

/// One certificate and its private key.
#[derive(Clone, PartialEq, Eq)]
pub struct Issued {
    pub cert_pem: String,
    /// PKCS#8 PEM.
    pub key_pem: String,
    pub cert_der: Vec<u8>,
}

// Hand-written so that a stray `{:?}` never prints a private key.
impl fmt::Debug for Issued {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issued")
            .field("cert_der", &format_args!("{} bytes", self.cert_der.len()))
            .field("key_pem", &format_args!("<redacted>"))
            .finish()
    }
}

/// A generated (or loaded) test PKI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pki {
    pub ca: Issued,
    /// The CA's OCSP responder (`ocsp-responder.pem`).
    pub ocsp: Issued,
    /// The CA's time-stamping authority (`tsa.pem`): critical EKU timeStamping.
    pub tsa: Issued,
    /// The test central server's configuration signing key (`central-server.pem`), self-signed:
    /// it signs the published global configuration that anchors name.
    pub central: Issued,
    /// By server code.
    pub auth: BTreeMap<String, Issued>,
    /// By server code.
    pub internal_tls: BTreeMap<String, Issued>,
    /// By `CLASS/CODE`.
    pub sign: BTreeMap<String, Issued>,
    /// By client name.
    pub clients: BTreeMap<String, Issued>,
}

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("invalid PKI spec: {0}")]
    InvalidSpec(String),
    #[error("certificate generation failed: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what}: {reason}")]
    BadPem { what: String, reason: String },
    #[error("{what}: the private key does not belong to the certificate")]
    KeyMismatch { what: String },
}

/// brama's embedded default: the instance, servers and members of `config/`
/// ([`crate::deploy::default_topology`]).
pub fn default_spec() -> PkiSpec {
    crate::deploy::default_topology().pki_spec("SEVDEIR-TEST Test CA", &["diia-is"])
}

/// Generates the whole PKI of `spec` with fresh keys.
pub fn generate(spec: &PkiSpec) -> Result<Pki, PkiError> {
    validate(spec)?;
    let ca = Authority::new_ca(&spec.ca_name)?;
    let mut pki = Pki {
        ca: ca.issued(),
        ocsp: ca.issue(profile::ocsp_responder(&spec.ca_name))?,
        tsa: ca.issue(profile::tsa(&spec.ca_name))?,
        central: generate_ca(&format!("{} central server", spec.instance))?,
        auth: BTreeMap::new(),
        internal_tls: BTreeMap::new(),
        sign: BTreeMap::new(),
        clients: BTreeMap::new(),
    };
    for s in &spec.servers {
        pki.auth.insert(
            s.server_code.clone(),
            ca.issue(profile::auth(&spec.instance, s)?)?,
        );
        pki.internal_tls
            .insert(s.server_code.clone(), ca.issue(profile::internal_tls(s)?)?);
    }
    for m in &spec.members {
        let server = sign_server(spec, m).ok_or_else(no_server)?;
        let params = profile::sign(
            &spec.instance,
            &server.server_code,
            &m.class,
            &m.code,
            &m.name,
        );
        pki.sign
            .insert(sign_key(&m.class, &m.code), ca.issue(params)?);
    }
    for c in &spec.clients {
        pki.clients.insert(c.clone(), ca.issue(profile::client(c))?);
    }
    Ok(pki)
}

/// A self-signed test CA.
pub fn generate_ca(name: &str) -> Result<Issued, PkiError> {
    if name.trim().is_empty() {
        return Err(PkiError::InvalidSpec("empty CA name".into()));
    }
    Ok(Authority::new_ca(name)?.issued())
}

/// Issues one more auth certificate for a server from a CA given as PEM cert+key (tests use this
/// to make "rogue" certificates from a second, unapproved CA).
pub fn issue_auth_cert(
    ca_cert_pem: &str,
    ca_key_pem: &str,
    instance: &str,
    server: &ServerSpec,
) -> Result<Issued, PkiError> {
    validate_instance(instance)?;
    validate_server(server)?;
    let ca = Authority::from_pem(ca_cert_pem, ca_key_pem)?;
    ca.issue(profile::auth(instance, server)?)
}

impl Pki {
    /// Writes every certificate and key plus a `README.md` into `dir` (created if missing).
    pub fn write_dir(&self, dir: &Path) -> Result<(), PkiError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        for (base, issued) in self.files() {
            write_file(&dir.join(format!("{base}.pem")), &issued.cert_pem, false)?;
            write_file(&dir.join(format!("{base}.key")), &issued.key_pem, true)?;
        }
        write_file(&dir.join("README.md"), &self.readme(), false)
    }

    /// Reads back what [`Pki::write_dir`] wrote for `spec`, checking that each key belongs to its
    /// certificate (a half-regenerated directory would otherwise fail only at TLS handshake time).
    pub fn load_dir(dir: &Path, spec: &PkiSpec) -> Result<Pki, PkiError> {
        validate(spec)?;
        let load = |base: &str| load_pair(dir, base);
        let mut pki = Pki {
            ca: load("ca")?,
            ocsp: load(OCSP_BASE)?,
            tsa: load(TSA_BASE)?,
            central: load(CENTRAL_BASE)?,
            auth: BTreeMap::new(),
            internal_tls: BTreeMap::new(),
            sign: BTreeMap::new(),
            clients: BTreeMap::new(),
        };
        for s in &spec.servers {
            let code = &s.server_code;
            pki.auth.insert(code.clone(), load(&auth_base(code))?);
            pki.internal_tls
                .insert(code.clone(), load(&internal_base(code))?);
        }
        for m in &spec.members {
            pki.sign.insert(
                sign_key(&m.class, &m.code),
                load(&sign_base(&m.class, &m.code))?,
            );
        }
        for c in &spec.clients {
            pki.clients.insert(c.clone(), load(&client_base(c))?);
        }
        Ok(pki)
    }

    /// (file base name, certificate) for every certificate, CA first.
    fn files(&self) -> Vec<(String, &Issued)> {
        let mut out = vec![
            ("ca".to_owned(), &self.ca),
            (OCSP_BASE.to_owned(), &self.ocsp),
            (TSA_BASE.to_owned(), &self.tsa),
            (CENTRAL_BASE.to_owned(), &self.central),
        ];
        out.extend(self.auth.iter().map(|(c, i)| (auth_base(c), i)));
        out.extend(self.internal_tls.iter().map(|(c, i)| (internal_base(c), i)));
        out.extend(
            self.sign
                .iter()
                .map(|(k, i)| (format!("sign-{}", k.replacen('/', "-", 1)), i)),
        );
        out.extend(self.clients.iter().map(|(n, i)| (client_base(n), i)));
        out
    }

    fn readme(&self) -> String {
        let list = |names: Vec<String>| {
            if names.is_empty() {
                "none".to_owned()
            } else {
                names
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        let servers = list(self.auth.keys().cloned().collect());
        let members = list(self.sign.keys().cloned().collect());
        let clients = list(self.clients.keys().cloned().collect());
        format!(
            "# Test PKI — TEST ONLY\n\n\
             This directory is a throwaway test PKI for brama; its private keys are public, so never \
             trust it outside tests. `ca.pem`/`ca.key` is the self-signed test CA that issued every \
             other certificate here; `ocsp-responder.pem`/`.key` is its OCSP responder (extended key \
             usage OCSPSigning), which signs the test responders' answers; `tsa.pem`/`.key` is its time-stamping \
             authority (critical extended key usage timeStamping), which signs the test TSAs' \
             tokens; `central-server.pem`/`.key` is the test central \
             server's self-signed configuration signing key (the anchor `config/anchor.xml` names \
             it); `<server>-auth.pem`/`.key` (servers: {servers}) are the security \
             servers' X-Road authentication certificates, used for mutual TLS between security servers \
             (subject `serialNumber=<instance>/<server>/<owner class>`, `CN=<owner code>`); \
             `<server>-internal.pem`/`.key` are the servers' HTTPS certificates towards information \
             systems; `sign-<CLASS>-<CODE>.pem`/`.key` (members: {members}) are the members' message \
             signing certificates (`serialNumber=<instance>/<server>/<class>`, `CN=<code>`); \
             `client-<name>.pem`/`.key` (clients: {clients}) are information systems' TLS client \
             certificates for SSLAUTH. Keys are ECDSA P-256 in PKCS#8 PEM; certificates are valid from \
             2024-01-01 to 2044-01-01. `brama certs init` regenerates all of it with new keys, which \
             changes the certificate hashes the global configuration registers.\n"
        )
    }
}

/// A CA able to issue: its certificate (as rcgen needs it for the issuer name and key
/// identifier) and its key.
struct Authority {
    cert: Certificate,
    key: KeyPair,
}

impl Authority {
    fn new_ca(name: &str) -> Result<Authority, PkiError> {
        let key = new_key()?;
        let cert = profile::ca(name).self_signed(&key)?;
        Ok(Authority { cert, key })
    }

    fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Authority, PkiError> {
        let der = single_cert_der(cert_pem, "CA certificate")?;
        let params = CertificateParams::from_ca_cert_der(&der.as_slice().into()).map_err(|e| {
            PkiError::BadPem {
                what: "CA certificate".into(),
                reason: e.to_string(),
            }
        })?;
        let key = KeyPair::from_pem(key_pem).map_err(|e| PkiError::BadPem {
            what: "CA key".into(),
            reason: e.to_string(),
        })?;
        check_key_matches(&der, &key, "CA")?;
        // Re-signing only rebuilds rcgen's issuer view (subject name, key identifier); the
        // certificate itself is not used.
        let cert = params.self_signed(&key)?;
        Ok(Authority { cert, key })
    }

    fn issued(&self) -> Issued {
        Issued {
            cert_pem: self.cert.pem(),
            key_pem: self.key.serialize_pem(),
            cert_der: self.cert.der().to_vec(),
        }
    }

    fn issue(&self, params: CertificateParams) -> Result<Issued, PkiError> {
        let key = new_key()?;
        let cert = params.signed_by(&key, &self.cert, &self.key)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().to_vec(),
        })
    }
}

fn new_key() -> Result<KeyPair, PkiError> {
    Ok(KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?)
}

const OCSP_BASE: &str = "ocsp-responder";
const CENTRAL_BASE: &str = "central-server";
const TSA_BASE: &str = "tsa";

/// Issues a time-stamping authority's certificate from a CA given as PEM cert+key (adds one to
/// a checked-in PKI without regenerating it).
pub fn issue_tsa_cert(
    ca_cert_pem: &str,
    ca_key_pem: &str,
    ca_name: &str,
) -> Result<Issued, PkiError> {
    Authority::from_pem(ca_cert_pem, ca_key_pem)?.issue(profile::tsa(ca_name))
}

fn sign_key(class: &str, code: &str) -> String {
    format!("{class}/{code}")
}

fn auth_base(server_code: &str) -> String {
    format!("{server_code}-auth")
}

fn internal_base(server_code: &str) -> String {
    format!("{server_code}-internal")
}

fn sign_base(class: &str, code: &str) -> String {
    format!("sign-{class}-{code}")
}

fn client_base(name: &str) -> String {
    format!("client-{name}")
}

/// The server a member's signing certificate names: the one it owns, else the first.
fn sign_server<'a>(spec: &'a PkiSpec, m: &MemberSpec) -> Option<&'a ServerSpec> {
    spec.servers
        .iter()
        .find(|s| s.owner_class == m.class && s.owner_code == m.code)
        .or_else(|| spec.servers.first())
}

fn no_server() -> PkiError {
    PkiError::InvalidSpec("members need at least one server (sign certificates name one)".into())
}

fn validate(spec: &PkiSpec) -> Result<(), PkiError> {
    validate_instance(&spec.instance)?;
    if spec.ca_name.trim().is_empty() {
        return Err(PkiError::InvalidSpec("empty CA name".into()));
    }
    if !spec.members.is_empty() && spec.servers.is_empty() {
        return Err(no_server());
    }
    // Every certificate gets its own file pair; a collision would silently overwrite one.
    let mut bases = BTreeSet::from(["ca".to_owned()]);
    let mut claim = |base: String, what: &str| {
        if bases.insert(base.clone()) {
            Ok(())
        } else {
            Err(PkiError::InvalidSpec(format!(
                "{what}: file name {base:?} is used twice"
            )))
        }
    };
    for s in &spec.servers {
        validate_server(s)?;
        claim(auth_base(&s.server_code), &s.server_code)?;
        claim(internal_base(&s.server_code), &s.server_code)?;
    }
    for m in &spec.members {
        token(&m.class, "member class")?;
        token(&m.code, "member code")?;
        claim(sign_base(&m.class, &m.code), &sign_key(&m.class, &m.code))?;
    }
    for c in &spec.clients {
        token(c, "client name")?;
        claim(client_base(c), c)?;
    }
    Ok(())
}

fn validate_instance(instance: &str) -> Result<(), PkiError> {
    // Only '/' matters: it separates the parts of the subject serialNumber.
    if instance.is_empty() || instance.contains('/') || instance.chars().any(char::is_control) {
        return Err(PkiError::InvalidSpec(format!(
            "bad instance identifier {instance:?}"
        )));
    }
    Ok(())
}

fn validate_server(s: &ServerSpec) -> Result<(), PkiError> {
    token(&s.server_code, "server code")?;
    token(&s.owner_class, "owner class")?;
    token(&s.owner_code, "owner code")?;
    let host = profile::bare_host(&s.address);
    let host_ok = host.parse::<std::net::IpAddr>().is_ok()
        || (!host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'));
    if !host_ok {
        return Err(PkiError::InvalidSpec(format!(
            "server {}: address {:?} is not a host name or IP address",
            s.server_code, s.address
        )));
    }
    Ok(())
}

/// Identifier parts end up in file names and in `/`-separated serial numbers, so they are kept
/// to a portable file-name alphabet.
fn token(value: &str, what: &str) -> Result<(), PkiError> {
    let ok = !value.is_empty()
        && !value.starts_with(['.', '-'])
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(PkiError::InvalidSpec(format!(
            "{what} {value:?} must be ASCII letters, digits, '.', '_' or '-'"
        )))
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> PkiError + '_ {
    move |source| PkiError::Io {
        path: path.to_owned(),
        source,
    }
}

fn write_file(path: &Path, contents: &str, private: bool) -> Result<(), PkiError> {
    fs::write(path, contents).map_err(io_err(path))?;
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(io_err(path))?;
    }
    #[cfg(not(unix))]
    let _ = private;
    Ok(())
}

fn load_pair(dir: &Path, base: &str) -> Result<Issued, PkiError> {
    let cert_path = dir.join(format!("{base}.pem"));
    let key_path = dir.join(format!("{base}.key"));
    let cert_pem = fs::read_to_string(&cert_path).map_err(io_err(&cert_path))?;
    let key_pem = fs::read_to_string(&key_path).map_err(io_err(&key_path))?;
    let cert_der = single_cert_der(&cert_pem, &cert_path.display().to_string())?;
    let key = KeyPair::from_pem(&key_pem).map_err(|e| PkiError::BadPem {
        what: key_path.display().to_string(),
        reason: e.to_string(),
    })?;
    check_key_matches(&cert_der, &key, &key_path.display().to_string())?;
    Ok(Issued {
        cert_pem,
        key_pem,
        cert_der,
    })
}

/// A P-256 PKCS#8 PEM key able to sign (ECDSA with SHA-256, DER values): the test
/// responder's and the test central server's.
pub(crate) fn p256_signing_key(
    key_pem: &str,
    what: &str,
) -> Result<ring::signature::EcdsaKeyPair, String> {
    let pkcs8 = rustls_pemfile::private_key(&mut key_pem.as_bytes())
        .map_err(|e| format!("{what}: {e}"))?
        .ok_or_else(|| format!("{what}: no private key in the PEM"))?;
    ring::signature::EcdsaKeyPair::from_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        pkcs8.secret_der(),
        &ring::rand::SystemRandom::new(),
    )
    .map_err(|e| format!("{what} is not a P-256 PKCS#8 key: {e}"))
}

/// The DER of the one certificate in `pem`.
fn single_cert_der(pem: &str, what: &str) -> Result<Vec<u8>, PkiError> {
    let bad = |reason: String| PkiError::BadPem {
        what: what.to_owned(),
        reason,
    };
    let certs = rustls_pemfile::certs(&mut pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    match certs.as_slice() {
        [one] => Ok(one.to_vec()),
        other => Err(bad(format!(
            "expected one certificate, found {}",
            other.len()
        ))),
    }
}

fn check_key_matches(cert_der: &[u8], key: &KeyPair, what: &str) -> Result<(), PkiError> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(cert_der).map_err(|e| PkiError::BadPem {
            what: what.to_owned(),
            reason: e.to_string(),
        })?;
    if cert.public_key().raw == key.public_key_der().as_slice() {
        Ok(())
    } else {
        Err(PkiError::KeyMismatch {
            what: what.to_owned(),
        })
    }
}
