//! X-Road global configuration (reference §8): `shared-params.xml` and `private-params.xml`,
//! schema versions 3 to 5, read from a directory laid out as a security server stores it
//! (`<dir>/instance-identifier`, `<dir>/<INSTANCE>/shared-params.xml`).

mod model;
mod parse;
mod write;

use std::collections::BTreeMap;
use std::path::Path;

use sha2::{Digest, Sha256};

pub use model::*;

use crate::error::ErrorCode;
use crate::identifiers::{ClientId, GlobalGroupId, SecurityServerId};

/// Largest global configuration file accepted.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum GlobalConfError {
    #[error("{file}: cannot read: {source}")]
    Io { file: String, source: std::io::Error },
    #[error("{file}: {message}")]
    Malformed { file: String, message: String },
}

impl GlobalConfError {
    pub fn code(&self) -> ErrorCode {
        ErrorCode::MalformedGlobalConf
    }
}

/// `authCertHash` of a certificate: SHA-256 of its DER (schema v3 and later).
pub fn auth_cert_hash(der: &[u8]) -> Vec<u8> {
    Sha256::digest(der).to_vec()
}

/// One member or subsystem, for `listClients`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientListEntry {
    pub id: ClientId,
    pub name: String,
}

/// The whole global configuration as one security server sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct GlobalConf {
    pub own_instance: String,
    pub shared: BTreeMap<String, SharedParams>,
    pub private: Option<PrivateParams>,
}

fn read(path: &Path) -> Result<Vec<u8>, GlobalConfError> {
    let io = |source| GlobalConfError::Io {
        file: path.display().to_string(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(GlobalConfError::Malformed {
            file: path.display().to_string(),
            message: format!("larger than {MAX_FILE_BYTES} bytes"),
        });
    }
    std::fs::read(path).map_err(io)
}

fn named<T>(path: &Path, r: Result<T, GlobalConfError>) -> Result<T, GlobalConfError> {
    r.map_err(|e| match e {
        GlobalConfError::Malformed { message, .. } => GlobalConfError::Malformed {
            file: path.display().to_string(),
            message,
        },
        other => other,
    })
}

impl GlobalConf {
    /// Loads every instance directory holding a `shared-params.xml`.
    pub fn load_dir(dir: &Path) -> Result<GlobalConf, GlobalConfError> {
        let mut shared = BTreeMap::new();
        let entries = std::fs::read_dir(dir).map_err(|source| GlobalConfError::Io {
            file: dir.display().to_string(),
            source,
        })?;
        for entry in entries.flatten() {
            let path = entry.path().join("shared-params.xml");
            if path.is_file() {
                let params = named(&path, SharedParams::parse(&read(&path)?))?;
                shared.insert(params.instance_identifier.clone(), params);
            }
        }
        let id_file = dir.join("instance-identifier");
        let own_instance = if id_file.is_file() {
            String::from_utf8_lossy(&read(&id_file)?).trim().to_string()
        } else if shared.len() == 1 {
            shared.keys().next().cloned().unwrap_or_default()
        } else {
            return Err(GlobalConfError::Malformed {
                file: id_file.display().to_string(),
                message: format!("missing, and {} instances are present", shared.len()),
            });
        };
        if !shared.contains_key(&own_instance) {
            return Err(GlobalConfError::Malformed {
                file: dir.join(&own_instance).join("shared-params.xml").display().to_string(),
                message: format!("no shared parameters for the own instance '{own_instance}'"),
            });
        }
        let private_path = dir.join(&own_instance).join("private-params.xml");
        let private = if private_path.is_file() {
            Some(named(&private_path, PrivateParams::parse(&read(&private_path)?))?)
        } else {
            None
        };
        Ok(GlobalConf {
            own_instance,
            shared,
            private,
        })
    }

    fn member(&self, id: &ClientId) -> Option<&Member> {
        let member = id.member_id();
        self.shared.get(&id.instance)?.members.iter().find(|m| m.id == member)
    }

    pub fn client_exists(&self, id: &ClientId) -> bool {
        match (self.member(id), &id.subsystem) {
            (Some(_), None) => true,
            (Some(m), Some(s)) => m.subsystems.iter().any(|x| &x.code == s),
            (None, _) => false,
        }
    }

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
            .filter(|s| s.clients.contains(id) || (id.subsystem.is_none() && &s.id.owner == id))
            .collect()
    }

    pub fn server(&self, id: &SecurityServerId) -> Option<&SecurityServer> {
        self.shared
            .get(&id.owner.instance)?
            .security_servers
            .iter()
            .find(|s| &s.id == id)
    }

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

    pub fn approved_cas(&self) -> impl Iterator<Item = &ApprovedCa> {
        self.shared.values().flat_map(|s| &s.approved_cas)
    }

    /// Every member and subsystem of `instance` (all instances when `None`).
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
                });
                for s in &m.subsystems {
                    out.push(ClientListEntry {
                        id: ClientId {
                            subsystem: Some(s.code.clone()),
                            ..m.id.clone()
                        },
                        name: m.name.clone(),
                    });
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
