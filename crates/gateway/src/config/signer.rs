//! Resolves `[signer]`: one signing key per member, with the token it lives on.

use std::collections::HashMap;

use super::file::{ConfigFile, TokenSection};
use super::ConfigSource;
pub use brama_sign::conf::{KeyLocation, PinSource, SignerConf, SigningKeyConf};
use brama_sign::digest::DigestAlgorithm;
use brama_xroad::identifiers::ClientId;

pub(super) fn resolve(
    file: &ConfigFile,
    source: &ConfigSource,
    hosted: &[ClientId],
    add: &mut dyn FnMut(String, String),
) -> SignerConf {
    let s = &file.signer;
    let hash = DigestAlgorithm::from_name(&s.hash_algorithm).unwrap_or_else(|| {
        add(
            "signer.hash_algorithm".into(),
            format!("'{}' is not SHA-256, SHA-384 or SHA-512", s.hash_algorithm),
        );
        DigestAlgorithm::Sha512
    });
    let signature_digest = s.signature_digest.as_deref().and_then(|name| {
        let d = DigestAlgorithm::from_name(name);
        if d.is_none() {
            add(
                "signer.signature_digest".into(),
                format!("'{name}' is not SHA-256, SHA-384 or SHA-512"),
            );
        }
        d
    });
    if s.max_batch == 0 {
        add("signer.max_batch".into(), "must be greater than 0".into());
    }
    if s.sessions == 0 {
        add("signer.sessions".into(), "must be greater than 0".into());
    }
    let mut tokens: HashMap<&str, &TokenSection> = HashMap::new();
    for (i, t) in s.tokens.iter().enumerate() {
        let key = format!("signer.tokens[{i}]");
        match t.kind.as_str() {
            "software" => {}
            "pkcs11" => {
                if t.module.is_none() {
                    add(
                        format!("{key}.module"),
                        "a pkcs11 token needs its module path".into(),
                    );
                }
                if t.token_label.is_none() && t.token_serial.is_none() {
                    add(
                        format!("{key}.token_label"),
                        "a pkcs11 token is found by label or serial, never by slot".into(),
                    );
                }
                if t.pin_env.is_none() == t.pin_file.is_none() {
                    add(
                        format!("{key}.pin_env"),
                        "set exactly one of pin_env and pin_file".into(),
                    );
                }
            }
            other => add(
                format!("{key}.kind"),
                format!("'{other}' is not 'software' or 'pkcs11'"),
            ),
        }
        if tokens.insert(t.name.as_str(), t).is_some() {
            add(
                format!("{key}.name"),
                format!("token name '{}' is used twice", t.name),
            );
        }
    }

    let mut keys = Vec::new();
    for (i, k) in s.keys.iter().enumerate() {
        let key = format!("signer.keys[{i}]");
        let member = match ClientId::parse_path(&k.member) {
            Ok(m) if m.subsystem.is_none() => m,
            Ok(_) => {
                add(
                    format!("{key}.member"),
                    "a signing key belongs to a member, not a subsystem".into(),
                );
                continue;
            }
            Err(m) => {
                add(format!("{key}.member"), m);
                continue;
            }
        };
        let Some(token) = tokens.get(k.token.as_str()) else {
            add(
                format!("{key}.token"),
                format!("no token named '{}'", k.token),
            );
            continue;
        };
        let cert_chain = match read_chain(source, &k.cert) {
            Ok(c) => c,
            Err(m) => {
                add(format!("{key}.cert"), m);
                continue;
            }
        };
        let location = match token.kind.as_str() {
            "software" => {
                let Some(f) = &k.file else {
                    add(
                        format!("{key}.file"),
                        "a software key needs its PKCS#8 file".into(),
                    );
                    continue;
                };
                match source.read(f) {
                    Ok(pkcs8) => KeyLocation::Software {
                        pkcs8,
                        name: f.clone(),
                    },
                    Err(err) => {
                        add(format!("{key}.file"), format!("cannot read '{f}': {err}"));
                        continue;
                    }
                }
            }
            _ => {
                let id = match k.id.as_deref().map(hex::decode) {
                    Some(Ok(id)) => Some(id),
                    Some(Err(_)) => {
                        add(format!("{key}.id"), "not hex".into());
                        continue;
                    }
                    None => None,
                };
                if id.is_none() && k.label.is_none() {
                    add(
                        format!("{key}.label"),
                        "a pkcs11 key is found by label or id".into(),
                    );
                    continue;
                }
                match pkcs11_location(token, k.label.clone(), id, source) {
                    Some(l) => l,
                    None => continue,
                }
            }
        };
        keys.push(SigningKeyConf {
            member,
            cert_chain,
            location,
            sessions: k.sessions.unwrap_or(s.sessions).max(1),
        });
    }

    // Members without an explicit key take `sign-<CLASS>-<CODE>` from a software keys_dir.
    let dirs: Vec<&String> = s
        .tokens
        .iter()
        .filter(|t| t.kind == "software")
        .filter_map(|t| t.keys_dir.as_ref())
        .collect();
    for client in hosted {
        let member = client.member_id();
        if keys.iter().any(|k| k.member == member) {
            continue;
        }
        for dir in &dirs {
            let base = format!("{dir}/sign-{}-{}", member.member_class, member.member_code);
            if let (Ok(pkcs8), Ok(chain)) = (
                source.read(&format!("{base}.key")),
                read_chain(source, &format!("{base}.pem")),
            ) {
                keys.push(SigningKeyConf {
                    member: member.clone(),
                    cert_chain: chain,
                    location: KeyLocation::Software {
                        pkcs8,
                        name: format!("{base}.key"),
                    },
                    sessions: s.sessions.max(1),
                });
                break;
            }
        }
    }
    SignerConf {
        hash,
        signature_digest,
        max_batch: s.max_batch.max(1),
        batch_wait: std::time::Duration::from_micros(s.batch_wait_us),
        timeout: std::time::Duration::from_millis(s.timeout_ms),
        keys,
    }
}

/// Where a PKCS#11 token's PIN comes from (`pin_env` before `pin_file`); the signer and
/// `brama keys` both read it here.
pub fn token_pin(t: &TokenSection, source: &ConfigSource) -> Option<PinSource> {
    match (&t.pin_env, &t.pin_file) {
        (Some(v), _) => Some(PinSource::Env(v.clone())),
        (None, Some(f)) => Some(PinSource::File(source.path(f))),
        (None, None) => None,
    }
}

fn pkcs11_location(
    t: &TokenSection,
    label: Option<String>,
    id: Option<Vec<u8>>,
    source: &ConfigSource,
) -> Option<KeyLocation> {
    let pin = token_pin(t, source)?;
    Some(KeyLocation::Pkcs11 {
        module: t.module.clone()?,
        env: t.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        token_label: t.token_label.clone(),
        token_serial: t.token_serial.clone(),
        label,
        id,
        pin,
        mechanism: t.mechanism.clone(),
    })
}

fn read_chain(source: &ConfigSource, rel: &str) -> Result<Vec<Vec<u8>>, String> {
    use rustls_pki_types::pem::PemObject;
    let pem = source
        .read(rel)
        .map_err(|e| format!("cannot read '{rel}': {e}"))?;
    let certs: Vec<Vec<u8>> = rustls_pki_types::CertificateDer::pem_slice_iter(&pem)
        .filter_map(Result::ok)
        .map(|c| c.to_vec())
        .collect();
    if certs.is_empty() {
        return Err(format!("'{rel}' holds no PEM certificate"));
    }
    Ok(certs)
}
