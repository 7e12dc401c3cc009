//! `brama keys list|generate|csr|import-cert`: signing keys on a configured token (PKCS#11 or
//! software key files).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};

use crate::config::file::TokenSection;
use crate::config::{ConfigSource, ServerConf};
use crate::identifiers::ClientId;
use crate::sign::pkcs11::{self, KeyRef, Module, ModuleSettings, TokenRef};
use crate::sign::token::KeyType;

#[derive(Args)]
pub struct TokenArgs {
    /// Server configuration (the embedded default when absent).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Name of a `[[signer.tokens]]` entry (default: the first pkcs11 token, else the first).
    #[arg(long)]
    token: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum KeyKind {
    Ec,
    Rsa,
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// List the signing keys on the token, with their certificates.
    List {
        #[command(flatten)]
        token: TokenArgs,
        /// Print a JSON array instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Generate a key pair (EC P-256 or RSA 2048) on the token.
    Generate {
        #[command(flatten)]
        token: TokenArgs,
        /// Label of the new key (software tokens: `<keys_dir>/<LABEL>.key`).
        #[arg(long)]
        label: String,
        /// The key's algorithm: EC P-256 (Trembita's) or RSA 2048.
        #[arg(long = "type", value_enum, default_value = "ec")]
        key_type: KeyKind,
    },
    /// Write a PKCS#10 request for a member's signing certificate (PEM).
    Csr {
        #[command(flatten)]
        token: TokenArgs,
        /// Label of the key.
        #[arg(long)]
        label: String,
        /// The member, INSTANCE/CLASS/CODE.
        #[arg(long)]
        member: String,
        /// Write the request here instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Store a certificate with the key whose public key it certifies.
    ImportCert {
        #[command(flatten)]
        token: TokenArgs,
        /// The certificate (PEM).
        file: PathBuf,
    },
}

pub fn run(command: KeysCommand) -> ExitCode {
    match dispatch(command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The selected token, opened as far as its kind needs.
enum Token {
    Pkcs11 {
        module: std::sync::Arc<Module>,
        token: TokenRef,
        pin: String,
    },
    Software {
        dir: PathBuf,
    },
    /// The embedded default's software keys: listed, never written.
    Embedded {
        keys: Vec<crate::sign::conf::SigningKeyConf>,
    },
}

const EMBEDDED_READ_ONLY: &str =
    "the embedded default configuration is read-only: pass --config FILE";

fn dispatch(command: KeysCommand) -> Result<(), String> {
    match command {
        KeysCommand::List { token, json } => {
            let (_, token) = open(&token)?;
            list(&token, json)
        }
        KeysCommand::Generate {
            token,
            label,
            key_type,
        } => {
            let (_, token) = open(&token)?;
            generate(&token, &label, key_type)
        }
        KeysCommand::Csr {
            token,
            label,
            member,
            out,
        } => {
            let (conf, token) = open(&token)?;
            let member = ClientId::parse_path(&member)?;
            if member.subsystem.is_some() {
                return Err("a signing certificate belongs to a member, not a subsystem".into());
            }
            let name = conf
                .globalconf
                .member_name(&member)
                .unwrap_or(&member.member_code)
                .to_string();
            let subject = vec![
                ("C".to_string(), "UA".to_string()),
                ("O".to_string(), name),
                (
                    "serialNumber".to_string(),
                    format!(
                        "{}/{}/{}",
                        member.instance, conf.server_id.server_code, member.member_class
                    ),
                ),
                ("CN".to_string(), member.member_code.clone()),
            ];
            let pem = csr(&token, &label, &subject)?;
            match out {
                Some(path) => {
                    std::fs::write(&path, pem).map_err(|e| format!("{}: {e}", path.display()))?;
                    println!("wrote {}", path.display());
                }
                None => print!("{pem}"),
            }
            Ok(())
        }
        KeysCommand::ImportCert { token, file } => {
            let (_, token) = open(&token)?;
            let pem = std::fs::read(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            import_cert(&token, &pem)
        }
    }
}

fn open(args: &TokenArgs) -> Result<(ServerConf, Token), String> {
    let conf = super::server_conf(args.config.as_deref()).map_err(|e| e.join("\n"))?;
    let tokens = &conf.file.signer.tokens;
    let section = match &args.token {
        Some(name) => tokens
            .iter()
            .find(|t| &t.name == name)
            .ok_or_else(|| format!("no token named '{name}' in [[signer.tokens]]"))?,
        None => tokens
            .iter()
            .find(|t| t.kind == "pkcs11")
            .or_else(|| tokens.first())
            .ok_or("the configuration has no [[signer.tokens]]")?,
    };
    let token = match (&conf.source, section.kind.as_str()) {
        (ConfigSource::Embedded, "software") => Token::Embedded {
            keys: conf.signer.keys.clone(),
        },
        _ => open_section(section, &conf.source)?,
    };
    Ok((conf, token))
}

fn open_section(t: &TokenSection, source: &ConfigSource) -> Result<Token, String> {
    match t.kind.as_str() {
        "pkcs11" => {
            let library = t
                .module
                .clone()
                .ok_or_else(|| format!("token '{}' has no module", t.name))?;
            let pin = crate::config::signer::token_pin(t, source)
                .ok_or_else(|| format!("token '{}' has neither pin_env nor pin_file", t.name))?;
            let module = Module::load(&ModuleSettings {
                library: PathBuf::from(library),
                env: t.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                mechanism: t.mechanism.clone(),
            })
            .map_err(|e| e.to_string())?;
            Ok(Token::Pkcs11 {
                module,
                token: TokenRef {
                    label: t.token_label.clone(),
                    serial: t.token_serial.clone(),
                },
                pin: pin.read()?,
            })
        }
        "software" => {
            let rel = t
                .keys_dir
                .as_deref()
                .ok_or_else(|| format!("software token '{}' has no keys_dir", t.name))?;
            Ok(Token::Software {
                dir: source.path(rel),
            })
        }
        other => Err(format!("token '{}' has unknown kind '{other}'", t.name)),
    }
}

fn type_name(t: KeyType) -> &'static str {
    match t {
        KeyType::Rsa => "RSA",
        KeyType::EcP256 => "EC P-256",
    }
}

fn cert_text(subject: Option<&str>) -> String {
    match subject {
        Some(s) => format!("certificate: {s}"),
        None => "no certificate".into(),
    }
}

/// One key as `keys list` shows it.
#[derive(serde::Serialize)]
struct Listed {
    label: String,
    /// PKCS#11 `CKA_ID`, hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(rename = "type")]
    key_type: &'static str,
    /// The certificate's subject; `None` without one.
    certificate: Option<String>,
}

impl Listed {
    fn line(&self) -> String {
        let id = self
            .id
            .as_ref()
            .map(|i| format!("  id={i}"))
            .unwrap_or_default();
        format!(
            "{}{id}  {}  {}",
            self.label,
            self.key_type,
            cert_text(self.certificate.as_deref())
        )
    }
}

fn list(token: &Token, json: bool) -> Result<(), String> {
    let (keys, none) = listed(token)?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&keys).unwrap_or_default()
        );
    } else if keys.is_empty() {
        println!("{none}");
    } else {
        keys.iter().for_each(|k| println!("{}", k.line()));
    }
    Ok(())
}

/// The token's keys, and what to say when there is none.
fn listed(token: &Token) -> Result<(Vec<Listed>, String), String> {
    Ok(match token {
        Token::Pkcs11 { module, token, pin } => {
            let keys = pkcs11::list_keys(module, token, pin).map_err(|e| e.to_string())?;
            let keys = keys
                .iter()
                .map(|k| Listed {
                    label: k.label.clone(),
                    id: Some(hex::encode(&k.id)),
                    key_type: type_name(k.key_type),
                    certificate: k
                        .has_cert
                        .then(|| k.cert_subject.clone().unwrap_or("(unparsable)".into())),
                })
                .collect();
            (keys, format!("no keys on token {token}"))
        }
        // Every key in the directory: `keys generate` may name one anything, and a
        // `[[signer.keys]]` entry may use it; `sign-<CLASS>-<CODE>` keys sign for their member
        // without one.
        Token::Software { dir } => {
            let keys = key_stems(dir)?
                .into_iter()
                .map(|stem| Listed {
                    key_type: read_key(dir, &stem)
                        .map(|k| software_type(&k))
                        .unwrap_or("unreadable"),
                    certificate: std::fs::read(dir.join(format!("{stem}.pem")))
                        .ok()
                        .and_then(|pem| cert_subject(&pem)),
                    id: None,
                    label: stem,
                })
                .collect();
            (keys, format!("no .key files in {}", dir.display()))
        }
        Token::Embedded { keys } => {
            let mut listed: Vec<Listed> = keys
                .iter()
                .filter_map(|k| match &k.location {
                    crate::sign::conf::KeyLocation::Software { name, .. } => Some(Listed {
                        label: name
                            .rsplit('/')
                            .next()
                            .unwrap_or(name)
                            .trim_end_matches(".key")
                            .to_string(),
                        id: None,
                        key_type: "EC P-256",
                        certificate: k.cert_chain.first().and_then(|der| {
                            x509_parser::parse_x509_certificate(der)
                                .ok()
                                .map(|(_, c)| c.subject().to_string())
                        }),
                    }),
                    crate::sign::conf::KeyLocation::Pkcs11 { .. } => None,
                })
                .collect();
            listed.sort_by(|a, b| a.label.cmp(&b.label));
            (listed, "no keys in the embedded default".into())
        }
    })
}

/// The names (without `.key`) of the key files in `dir`, sorted.
fn key_stems(dir: &Path) -> Result<Vec<String>, String> {
    let mut stems: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".key").map(str::to_string))
        .collect();
    stems.sort();
    Ok(stems)
}

fn software_type(k: &rcgen::KeyPair) -> &'static str {
    if k.algorithm() == &rcgen::PKCS_ECDSA_P256_SHA256 {
        "EC P-256"
    } else if k.algorithm() == &rcgen::PKCS_RSA_SHA256 {
        "RSA"
    } else {
        "other"
    }
}

fn read_key(dir: &Path, stem: &str) -> Result<rcgen::KeyPair, String> {
    let path = dir.join(format!("{stem}.key"));
    let pem = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    rcgen::KeyPair::from_pem(&pem).map_err(|e| format!("{}: {e}", path.display()))
}

/// The first certificate's DER in a PEM text.
fn first_cert(pem: &[u8]) -> Option<Vec<u8>> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateDer::pem_slice_iter(pem)
        .find_map(Result::ok)
        .map(|c| c.to_vec())
}

fn cert_subject(pem: &[u8]) -> Option<String> {
    let der = first_cert(pem)?;
    x509_parser::parse_x509_certificate(&der)
        .ok()
        .map(|(_, c)| c.subject().to_string())
}

fn check_label(label: &str) -> Result<(), String> {
    if label.is_empty()
        || label.starts_with('.')
        || !label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(format!(
            "label {label:?}: use letters, digits, '-', '_' and '.'"
        ));
    }
    Ok(())
}

fn generate(token: &Token, label: &str, kind: KeyKind) -> Result<(), String> {
    let key_type = match kind {
        KeyKind::Ec => KeyType::EcP256,
        KeyKind::Rsa => KeyType::Rsa,
    };
    match token {
        Token::Pkcs11 { module, token, pin } => {
            let k = pkcs11::generate_key(module, token, pin, label, key_type)
                .map_err(|e| e.to_string())?;
            println!(
                "generated {} key {} id={}",
                type_name(k.key_type),
                k.label,
                hex::encode(&k.id)
            );
        }
        Token::Software { dir } => {
            check_label(label)?;
            if key_type != KeyType::EcP256 {
                return Err("software tokens generate EC P-256 keys only".into());
            }
            let key = rcgen::KeyPair::generate().map_err(|e| format!("generate key: {e}"))?;
            let path = dir.join(format!("{label}.key"));
            write_new_private(&path, key.serialize_pem().as_bytes())?;
            println!("generated EC P-256 key {label} in {}", path.display());
        }
        Token::Embedded { .. } => return Err(EMBEDDED_READ_ONLY.into()),
    }
    Ok(())
}

/// Creates `path` (never overwriting), readable by its owner only.
fn write_new_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            format!("{} already exists; not overwriting it", path.display())
        } else {
            format!("{}: {e}", path.display())
        }
    })?;
    f.write_all(bytes)
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn csr(token: &Token, label: &str, subject: &[(String, String)]) -> Result<String, String> {
    match token {
        Token::Pkcs11 { module, token, pin } => pkcs11::csr_pem(
            module,
            token,
            pin,
            &KeyRef::Label(label.to_string()),
            subject,
        )
        .map_err(|e| e.to_string()),
        Token::Software { dir } => {
            check_label(label)?;
            let key = read_key(dir, label)?;
            let mut params = rcgen::CertificateParams::default();
            params.distinguished_name = distinguished_name(subject)?;
            params
                .serialize_request(&key)
                .and_then(|r| r.pem())
                .map_err(|e| format!("build CSR: {e}"))
        }
        Token::Embedded { .. } => Err(EMBEDDED_READ_ONLY.into()),
    }
}

fn distinguished_name(subject: &[(String, String)]) -> Result<rcgen::DistinguishedName, String> {
    use rcgen::{DnType, DnValue, PrintableString};
    let printable = |v: &str| {
        PrintableString::try_from(v)
            .map(DnValue::PrintableString)
            .map_err(|_| format!("{v:?} is not a printable string"))
    };
    let mut dn = rcgen::DistinguishedName::new();
    for (name, value) in subject {
        let (ty, value) = match name.as_str() {
            "C" => (DnType::CountryName, printable(value)?),
            "O" => (DnType::OrganizationName, DnValue::Utf8String(value.clone())),
            "CN" => (DnType::CommonName, DnValue::Utf8String(value.clone())),
            "serialNumber" => (DnType::CustomDnType(vec![2, 5, 4, 5]), printable(value)?),
            other => return Err(format!("unsupported subject attribute {other}")),
        };
        dn.push(ty, value);
    }
    Ok(dn)
}

fn import_cert(token: &Token, pem: &[u8]) -> Result<(), String> {
    let der = first_cert(pem).ok_or("the file holds no PEM certificate")?;
    refuse_ca(&der)?;
    match token {
        Token::Pkcs11 { module, token, pin } => {
            let k = pkcs11::import_cert(module, token, pin, &der).map_err(|e| e.to_string())?;
            println!(
                "imported the certificate for key {} id={} ({})",
                k.label,
                hex::encode(&k.id),
                k.cert_subject.as_deref().unwrap_or("")
            );
        }
        Token::Software { dir } => {
            let (_, cert) = x509_parser::parse_x509_certificate(&der)
                .map_err(|e| format!("not an X.509 certificate: {e}"))?;
            let cert_key = cert.public_key().subject_public_key.data.to_vec();
            let stem = key_stems(dir)?
                .into_iter()
                .find(|s| read_key(dir, s).is_ok_and(|k| k.public_key_raw() == cert_key))
                .ok_or_else(|| {
                    format!(
                        "no key in {} matches the certificate's public key",
                        dir.display()
                    )
                })?;
            let path = dir.join(format!("{stem}.pem"));
            std::fs::write(&path, pem).map_err(|e| format!("{}: {e}", path.display()))?;
            println!(
                "imported the certificate for key {stem} as {} ({})",
                path.display(),
                cert.subject()
            );
        }
        Token::Embedded { .. } => return Err(EMBEDDED_READ_ONLY.into()),
    }
    Ok(())
}

/// A signing certificate is an end entity's: a CA certificate (basicConstraints CA) is refused.
fn refuse_ca(der: &[u8]) -> Result<(), String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| format!("not an X.509 certificate: {e}"))?;
    if cert.is_ca() {
        return Err(format!(
            "{} is a CA certificate (basicConstraints CA), not a member's signing certificate",
            cert.subject()
        ));
    }
    Ok(())
}
