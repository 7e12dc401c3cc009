//! X-Road global configuration (reference §8): `shared-params.xml` and `private-params.xml`,
//! configuration versions 3 to 5, read from a directory laid out as a security server stores it:
//!
//! ```text
//! <dir>/instance-identifier              own instance code (optional when one instance is present)
//! <dir>/<INSTANCE>/shared-params.xml     (+ optional .metadata sidecar declaring the version)
//! <dir>/<INSTANCE>/private-params.xml    own instance only, optional
//! ```
//!
//! Version differences (X-Road's `globalconf/v3..v5` schemas): v3 added `source` and the
//! extension point at the end of `conf`, and `approvedCA/acmeServer{directoryURL, ipAddress?}`;
//! v4 added `authenticationCertificateProfileId` and `signingCertificateProfileId` to
//! `acmeServer`; v5 added `subsystem/subsystemName` and `securityServer/inMaintenanceMode{message?}`.
//! The private parameters have one schema for v3 to v5. `authCertHash` is SHA-256 from v3 on
//! (v2 used SHA-1; v2 is not read).

pub mod directory;
mod model;
mod parse;
mod write;
mod xml;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

pub use model::*;

use crate::error::ErrorCode;
use crate::identifiers::{ClientId, GlobalGroupId, SecurityServerId};

/// Largest global configuration file accepted (16 MiB).
pub(crate) const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;
/// Deepest element nesting accepted; real files nest 5 deep.
pub(crate) const MAX_DEPTH: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum GlobalConfError {
    #[error("{file}: cannot read: {source}")]
    Io {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}: {size} bytes is more than the {MAX_FILE_BYTES}-byte limit")]
    TooLarge { file: String, size: u64 },
    #[error("{file}: DOCTYPE declarations are refused (entities are never expanded)")]
    Doctype { file: String },
    #[error("{file}: {path}: XML nested deeper than {MAX_DEPTH} elements")]
    TooDeep { file: String, path: String },
    #[error("{file}: line {line}: not well-formed XML: {message}")]
    Xml {
        file: String,
        line: u64,
        message: String,
    },
    #[error("{file}: {path} (line {line}): {message}")]
    Invalid {
        file: String,
        path: String,
        line: u64,
        message: String,
    },
    #[error("{file}: configuration version '{version}' is not supported (3, 4 and 5 are)")]
    UnsupportedVersion { file: String, version: String },
    #[error("{file}: {message}")]
    Metadata { file: String, message: String },
    #[error("{dir}: {message}")]
    Layout { dir: String, message: String },
}

impl GlobalConfError {
    pub fn code(&self) -> ErrorCode {
        ErrorCode::MalformedGlobalConf
    }
}

/// `authCertHash` of an authentication certificate: SHA-256 of its DER (configuration v3 and later).
pub fn auth_cert_hash(der: &[u8]) -> Vec<u8> {
    Sha256::digest(der).to_vec()
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> GlobalConfError + '_ {
    move |source| GlobalConfError::Io {
        file: path.display().to_string(),
        source,
    }
}

/// Reads at most [`MAX_FILE_BYTES`] (+1, to tell a file that grew after the size check).
fn read_limited(path: &Path) -> Result<Vec<u8>, GlobalConfError> {
    let file = std::fs::File::open(path).map_err(io_error(path))?;
    let size = file.metadata().map_err(io_error(path))?.len();
    let too_large = |size| GlobalConfError::TooLarge {
        file: path.display().to_string(),
        size,
    };
    if size > MAX_FILE_BYTES {
        return Err(too_large(size));
    }
    let mut buf = Vec::with_capacity(size as usize);
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(io_error(path))?;
    if buf.len() as u64 > MAX_FILE_BYTES {
        return Err(too_large(buf.len() as u64));
    }
    Ok(buf)
}

/// The `configurationVersion` of the `<file>.metadata` sidecar X-Road's configuration client
/// writes, when there is one.
fn declared_version(file: &Path) -> Result<Option<u8>, GlobalConfError> {
    let mut name = file.as_os_str().to_owned();
    name.push(".metadata");
    let meta_path = Path::new(&name);
    if !meta_path.is_file() {
        return Ok(None);
    }
    let label = meta_path.display().to_string();
    let bytes = read_limited(meta_path)?;
    let json: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| GlobalConfError::Metadata {
            file: label.clone(),
            message: format!("not JSON: {e}"),
        })?;
    match json.get("configurationVersion") {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(v)) => parse::declared_version(v, &label).map(Some),
        Some(serde_json::Value::Number(v)) => {
            parse::declared_version(&v.to_string(), &label).map(Some)
        }
        Some(other) => Err(GlobalConfError::Metadata {
            file: label,
            message: format!("configurationVersion {other} is not a version number"),
        }),
    }
}

impl SharedParams {
    /// Parses a `shared-params.xml`; the version comes from the file (see [`SharedParams::version`]).
    pub fn parse(xml: &[u8]) -> Result<SharedParams, GlobalConfError> {
        parse::shared_params(xml, "shared-params.xml", None)
    }

    /// Parses with the version declared outside the file (3 to 5), as the `.metadata` sidecar does.
    pub fn parse_with_version(xml: &[u8], version: u8) -> Result<SharedParams, GlobalConfError> {
        let file = "shared-params.xml";
        let version = parse::declared_version(&version.to_string(), file)?;
        parse::shared_params(xml, file, Some(version))
    }

    /// Reads a file, honouring its `.metadata` sidecar.
    pub fn load(path: &Path) -> Result<SharedParams, GlobalConfError> {
        let declared = declared_version(path)?;
        parse::shared_params(&read_limited(path)?, &path.display().to_string(), declared)
    }
}

impl PrivateParams {
    pub fn parse(xml: &[u8]) -> Result<PrivateParams, GlobalConfError> {
        parse::private_params(xml, "private-params.xml", None)
    }

    /// Reads a file, honouring its `.metadata` sidecar.
    pub fn load(path: &Path) -> Result<PrivateParams, GlobalConfError> {
        let declared = declared_version(path)?;
        parse::private_params(&read_limited(path)?, &path.display().to_string(), declared)
    }
}

impl ConfigurationAnchor {
    /// Parses a `configuration-anchor.xml` (root `configurationAnchor`).
    pub fn parse(xml: &[u8]) -> Result<ConfigurationAnchor, GlobalConfError> {
        parse::anchor(xml, "configuration anchor")
    }

    pub fn load(path: &Path) -> Result<ConfigurationAnchor, GlobalConfError> {
        parse::anchor(&read_limited(path)?, &path.display().to_string())
    }
}

/// The whole global configuration as one security server sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct GlobalConf {
    pub own_instance: String,
    /// Shared parameters by instance: the own one and federated ones.
    pub shared: BTreeMap<String, SharedParams>,
    /// The own instance's private parameters, when present.
    pub private: Option<PrivateParams>,
}

impl GlobalConf {
    /// Loads every instance directory holding a `shared-params.xml`. The own instance is named
    /// by `instance-identifier`, or is the only instance present; its shared parameters must be
    /// there. Each file's `instanceIdentifier` must match its directory.
    pub fn load_dir(dir: &Path) -> Result<GlobalConf, GlobalConfError> {
        let layout = |message: String| GlobalConfError::Layout {
            dir: dir.display().to_string(),
            message,
        };
        let id_file = dir.join("instance-identifier");
        let named = if id_file.is_file() {
            let bytes = read_limited(&id_file)?;
            let own = std::str::from_utf8(&bytes)
                .map_err(|_| layout("instance-identifier is not UTF-8".into()))?
                .trim();
            if own.is_empty() {
                return Err(layout("instance-identifier is empty".into()));
            }
            Some(own.to_string())
        } else {
            None
        };

        let mut shared = BTreeMap::new();
        let entries = std::fs::read_dir(dir).map_err(io_error(dir))?;
        for entry in entries {
            let entry = entry.map_err(io_error(dir))?;
            // Hidden directories hold downloads in progress, not configuration.
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if name.starts_with('.') || !entry.path().is_dir() {
                continue;
            }
            let path = entry.path().join("shared-params.xml");
            if !path.is_file() {
                continue;
            }
            let params = SharedParams::load(&path)?;
            if params.instance_identifier != name {
                return Err(layout(format!(
                    "{name}/shared-params.xml is for instance '{}', not '{name}'",
                    params.instance_identifier
                )));
            }
            shared.insert(name, params);
        }

        let own_instance = match named {
            Some(own) => own,
            None if shared.len() == 1 => shared.keys().next().cloned().unwrap_or_default(),
            None => {
                let found: Vec<&str> = shared.keys().map(String::as_str).collect();
                return Err(layout(format!(
                    "no instance-identifier file, and not exactly one instance directory (found: [{}])",
                    found.join(", ")
                )));
            }
        };
        if !shared.contains_key(&own_instance) {
            return Err(layout(format!(
                "no {own_instance}/shared-params.xml for the own instance '{own_instance}'"
            )));
        }
        let private_path = dir.join(&own_instance).join("private-params.xml");
        let private = if private_path.is_file() {
            let p = PrivateParams::load(&private_path)?;
            if p.instance_identifier != own_instance {
                return Err(layout(format!(
                    "{own_instance}/private-params.xml is for instance '{}'",
                    p.instance_identifier
                )));
            }
            Some(p)
        } else {
            None
        };
        Ok(GlobalConf {
            own_instance,
            shared,
            private,
        })
    }

    /// The own instance's shared parameters.
    pub fn own_shared(&self) -> Option<&SharedParams> {
        self.shared.get(&self.own_instance)
    }

    fn member(&self, id: &ClientId) -> Option<&Member> {
        self.shared
            .get(&id.instance)?
            .members
            .iter()
            .find(|m| m.id.member_class == id.member_class && m.id.member_code == id.member_code)
    }

    /// The member exists; for a subsystem, the subsystem is listed under its member.
    pub fn client_exists(&self, id: &ClientId) -> bool {
        match (self.member(id), &id.subsystem) {
            (Some(_), None) => true,
            (Some(m), Some(s)) => m.subsystems.iter().any(|x| &x.code == s),
            (None, _) => false,
        }
    }

    /// The name of the member (of the subsystem's member, for a subsystem).
    pub fn member_name(&self, id: &ClientId) -> Option<&str> {
        self.member(id).map(|m| m.name.as_str())
    }

    /// Servers that serve `id`: those listing it as a client, and for a member the ones it owns.
    pub fn servers_for_client(&self, id: &ClientId) -> Vec<&SecurityServer> {
        let Some(shared) = self.shared.get(&id.instance) else {
            return Vec::new();
        };
        shared
            .security_servers
            .iter()
            .filter(|s| s.clients.contains(id) || &s.id.owner == id)
            .collect()
    }

    pub fn server(&self, id: &SecurityServerId) -> Option<&SecurityServer> {
        self.shared
            .get(&id.owner.instance)?
            .security_servers
            .iter()
            .find(|s| &s.id == id)
    }

    /// The server whose `authCertHash` list holds the hash of this certificate (DER), in any instance.
    pub fn server_by_auth_cert(&self, der: &[u8]) -> Option<&SecurityServer> {
        let hash = auth_cert_hash(der);
        self.shared
            .values()
            .flat_map(|s| &s.security_servers)
            .find(|s| s.auth_cert_hashes.contains(&hash))
    }

    /// Exact membership: a group listing a member does not cover that member's subsystems.
    pub fn is_global_group_member(&self, group: &GlobalGroupId, client: &ClientId) -> bool {
        self.shared.get(&group.instance).is_some_and(|s| {
            s.global_groups
                .iter()
                .any(|g| g.code == group.group_code && g.members.contains(client))
        })
    }

    /// Approved CAs of every instance.
    pub fn approved_cas(&self) -> impl Iterator<Item = &ApprovedCa> {
        self.shared.values().flat_map(|s| &s.approved_cas)
    }

    /// Every member and subsystem of `instance` (all instances when `None`), members each
    /// followed by their subsystems.
    pub fn clients(&self, instance: Option<&str>) -> Vec<ClientListEntry> {
        let mut out = Vec::new();
        for (name, shared) in &self.shared {
            if instance.is_some_and(|i| i != name) {
                continue;
            }
            for m in &shared.members {
                out.push(ClientListEntry {
                    id: m.id.clone(),
                    name: m.name.clone(),
                    subsystem_name: None,
                });
                for s in &m.subsystems {
                    out.push(ClientListEntry {
                        id: ClientId {
                            subsystem: Some(s.code.clone()),
                            ..m.id.clone()
                        },
                        name: m.name.clone(),
                        subsystem_name: s.name.clone(),
                    });
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
