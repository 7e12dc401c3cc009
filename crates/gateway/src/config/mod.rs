//! Server configuration: the TOML file, the global configuration it points to, and the checked,
//! resolved form the proxies use ([`ServerConf`]).

mod acl;
mod embedded;
pub mod file;
pub mod router;
pub mod signer;

use std::collections::HashMap;
use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use rustls_pki_types::{CertificateDer, PrivateKeyDer};

pub use crate::rest::acl::Endpoint;
pub use acl::{AccessRight, Subject};
pub use file::{ConfigFile, Connection};

use brama_xroad::globalconf::{GlobalConf, PrivateParams, SharedParams};
use brama_xroad::identifiers::{ClientId, SecurityServerId, ServiceId};

/// Where configuration files are read from: a directory on disk, or the copy compiled into the
/// binary (so `brama serve` runs from any working directory).
#[derive(Clone, Debug)]
pub enum ConfigSource {
    /// The directory holding the TOML file; relative paths inside it resolve from here.
    Dir(PathBuf),
    Embedded,
}

impl ConfigSource {
    /// Reads `rel` (relative to the config file's directory).
    pub fn read(&self, rel: &str) -> std::io::Result<Vec<u8>> {
        match self {
            ConfigSource::Dir(dir) => std::fs::read(dir.join(rel)),
            ConfigSource::Embedded => embedded::file(&normalize(Path::new("config").join(rel)))
                .map(<[u8]>::to_vec)
                .ok_or_else(|| {
                    std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        format!("{rel} is not in the embedded configuration"),
                    )
                }),
        }
    }

    /// A filesystem path for `rel` (PIN files are read when the token opens, not embedded).
    pub fn path(&self, rel: &str) -> PathBuf {
        match self {
            ConfigSource::Dir(dir) => dir.join(rel),
            ConfigSource::Embedded => PathBuf::from(rel),
        }
    }

    /// A name for messages: the path as the user would look for it.
    pub fn display(&self, rel: &str) -> String {
        match self {
            ConfigSource::Dir(dir) => dir.join(rel).display().to_string(),
            ConfigSource::Embedded => {
                format!("<embedded>/{}", normalize(Path::new("config").join(rel)))
            }
        }
    }
}

/// Folds `a/../b` into `b`, purely lexically (embedded paths have no symlinks).
fn normalize(p: PathBuf) -> String {
    let mut out: Vec<String> = Vec::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(s) => out.push(s.to_string_lossy().into_owned()),
            _ => {}
        }
    }
    out.join("/")
}

/// One configuration problem: which file, which key, what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}: {}: {}", self.file, self.key, self.message)
        }
    }
}

/// All problems found; `brama config check` prints each.
#[derive(Debug)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// A service this server provides.
#[derive(Clone, Debug)]
pub struct Service {
    pub id: ServiceId,
    pub url: http::Uri,
    pub timeout: Duration,
    /// `Some(notice)` when the service is disabled.
    pub disabled: Option<String>,
    pub wsdl: Option<http::Uri>,
    /// TLS settings for `https://` service and WSDL addresses.
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    pub kind: file::ServiceKind,
    /// The base endpoint first, then configured and OpenAPI-generated ones.
    pub endpoints: Vec<Endpoint>,
    /// The OpenAPI description of an `openapi` service, as stored.
    pub openapi: Option<bytes::Bytes>,
}

/// A member or subsystem hosted on this server.
#[derive(Clone, Debug)]
pub struct HostedClient {
    pub id: ClientId,
    pub connection: Connection,
    /// SHA-256 of the DER certificates pinned for `https-auth`.
    pub is_cert_hashes: Vec<Vec<u8>>,
    pub services: Vec<Service>,
    pub access: Vec<AccessRight>,
    pub local_groups: HashMap<String, Vec<ClientId>>,
    pub rest_dialect: crate::rest::dialect::DialectSetting,
}

impl HostedClient {
    /// The service with this code and version (both must match; X-Road treats a version as part of
    /// the service's identity).
    pub fn service(&self, code: &str, version: Option<&str>) -> Option<&Service> {
        self.services
            .iter()
            .find(|s| s.id.service_code == code && s.id.service_version.as_deref() == version)
    }

    /// X-Road's ACL decision for SOAP (reference §8.3): version ignored; a member's right does not
    /// cover its subsystems; global groups from the global configuration, local groups from here.
    /// SOAP needs a right on the base endpoint.
    pub(crate) fn is_allowed(
        &self,
        caller: &ClientId,
        service_code: &str,
        gc: &GlobalConf,
    ) -> bool {
        self.is_allowed_at(caller, service_code, None, None, gc)
    }

    /// The same decision for a REST request: a right on an endpoint whose method and path glob
    /// match (`path` percent-decoded and normalised).
    pub fn is_allowed_at(
        &self,
        caller: &ClientId,
        service_code: &str,
        method: Option<&str>,
        path: Option<&str>,
        gc: &GlobalConf,
    ) -> bool {
        self.access
            .iter()
            .filter(|r| r.service_code == service_code && r.endpoint.matches(method, path))
            .any(|r| self.grants(&r.subject, caller, gc))
    }

    /// Whether `subject` of an access right covers `caller`: the one subject matcher.
    fn grants(&self, subject: &Subject, caller: &ClientId, gc: &GlobalConf) -> bool {
        match subject {
            Subject::Client(id) => id == caller,
            Subject::GlobalGroup(g) => gc.is_global_group_member(g, caller),
            Subject::LocalGroup(code) => self
                .local_groups
                .get(code)
                .is_some_and(|m| m.contains(caller)),
        }
    }

    /// Service codes the caller may use (for `allowedMethods`): a right on any endpoint counts.
    pub(crate) fn allowed_services<'a>(
        &'a self,
        caller: &'a ClientId,
        gc: &'a GlobalConf,
    ) -> impl Iterator<Item = &'a Service> + 'a {
        self.services
            .iter()
            .filter(move |s| !self.allowed_endpoints(caller, s, gc).is_empty())
    }

    /// The endpoints of `service` the caller has a right to.
    pub(crate) fn allowed_endpoints<'a>(
        &'a self,
        caller: &ClientId,
        service: &'a Service,
        gc: &GlobalConf,
    ) -> Vec<&'a Endpoint> {
        let mut out: Vec<&Endpoint> = Vec::new();
        for r in self
            .access
            .iter()
            .filter(|r| r.service_code == service.id.service_code)
        {
            if self.grants(&r.subject, caller, gc) && !out.contains(&&r.endpoint) {
                out.push(&r.endpoint);
            }
        }
        out
    }

    /// A REST service by code (REST identifiers carry no version).
    pub fn rest_service(&self, code: &str) -> Option<&Service> {
        self.services
            .iter()
            .find(|s| s.id.service_code == code && s.kind.is_rest())
    }
}

/// The checked configuration the server runs on.
pub struct ServerConf {
    pub file: ConfigFile,
    pub source: ConfigSource,
    pub server_id: SecurityServerId,
    pub clients: HashMap<ClientId, HostedClient>,
    pub globalconf: GlobalConf,
    pub auth_certs: Vec<CertificateDer<'static>>,
    pub auth_key: PrivateKeyDer<'static>,
    pub internal_tls: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    pub signer: signer::SignerConf,
    /// `[router]`, when enabled.
    pub router: Option<router::RouterConf>,
    /// `[store] url`: the PostgreSQL database the router's store and the message log's records
    /// share with the other nodes; `None` keeps both on this machine.
    pub shared_store: Option<router::SharedStore>,
    /// The file as parsed TOML, to tell what a reload changes ([`changed_keys`]).
    pub raw: toml::Table,
}

impl fmt::Debug for ServerConf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConf")
            .field("server_id", &self.server_id)
            .field("clients", &self.clients.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl ServerConf {
    /// Loads `path`, or the embedded default when `None`, and checks everything.
    pub fn load(path: Option<&Path>) -> Result<ServerConf, ConfigErrors> {
        let (source, file_name, text) = read_text(path)?;
        Self::from_toml(&text, source, &file_name)
    }

    /// Parses and checks a TOML text whose relative paths resolve through `source`.
    pub(crate) fn from_toml(
        text: &str,
        source: ConfigSource,
        file_name: &str,
    ) -> Result<ServerConf, ConfigErrors> {
        let file: ConfigFile = toml::from_str(text).map_err(|e| {
            let span = e
                .span()
                .map(|s| {
                    let line = text[..s.start].matches('\n').count() + 1;
                    format!("line {line}")
                })
                .unwrap_or_default();
            one(file_name, &span, e.message().to_string())
        })?;
        let mut errors = Vec::new();
        let conf = check::check(file, source, file_name, &mut errors);
        match conf {
            Some(mut c) if errors.is_empty() => {
                c.raw = toml::from_str(text).unwrap_or_default();
                Ok(c)
            }
            _ => Err(ConfigErrors(errors)),
        }
    }

    /// The hosted client `id` as this configuration has it (a running server's are
    /// `Gateway::hosted`, which a reload replaces).
    pub fn client(&self, id: &ClientId) -> Option<&HostedClient> {
        self.clients.get(id)
    }
}

/// The keys whose values differ between two configuration files: a table's keys one level down
/// (`listeners.admin`, `log.level`), anything else whole (`clients`).
pub fn changed_keys(old: &toml::Table, new: &toml::Table) -> Vec<String> {
    let mut changed = Vec::new();
    let keys: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for key in keys {
        match (old.get(key), new.get(key)) {
            (a, b) if a == b => {}
            (Some(toml::Value::Table(a)), Some(toml::Value::Table(b))) => {
                let inner: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
                for k in inner.into_iter().filter(|k| a.get(*k) != b.get(*k)) {
                    changed.push(format!("{key}.{k}"));
                }
            }
            _ => changed.push(key.clone()),
        }
    }
    changed
}

/// The configuration file `path` (the embedded default when `None`): where its relative paths
/// resolve, its name for messages, and its text.
fn read_text(path: Option<&Path>) -> Result<(ConfigSource, String, String), ConfigErrors> {
    let (source, name) = match path {
        Some(p) => (
            ConfigSource::Dir(p.parent().map(Path::to_path_buf).unwrap_or_default()),
            p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        ),
        None if embedded::available() => (ConfigSource::Embedded, "brama.toml".to_string()),
        None => {
            return Err(one(
                "<embedded>",
                "",
                "this build has no embedded default configuration (it comes with the \
                 `sim` feature); pass --config FILE"
                    .into(),
            ))
        }
    };
    let file_name = source.display(&name);
    let text = source
        .read(&name)
        .map_err(|e| one(&file_name, "", format!("cannot read: {e}")))?;
    let text = String::from_utf8(text).map_err(|_| one(&file_name, "", "not UTF-8".into()))?;
    Ok((source, file_name, text))
}

/// The configuration file `path` (the embedded default when `None`) parsed but not checked:
/// what is needed before its global configuration is there (downloading it, logging).
/// The configuration file as plain TOML, unchecked: what `brama reload` reads to find the admin
/// listener of a server whose new configuration may not pass its checks.
pub fn read_table(path: Option<&Path>) -> Result<toml::Table, ConfigErrors> {
    let (_, file_name, text) = read_text(path)?;
    toml::from_str(&text).map_err(|e| one(&file_name, "", e.message().to_string()))
}

pub fn read_file(path: Option<&Path>) -> Result<(ConfigFile, ConfigSource), ConfigErrors> {
    let (source, file_name, text) = read_text(path)?;
    let file = toml::from_str(&text).map_err(|e| one(&file_name, "", e.message().to_string()))?;
    Ok((file, source))
}

fn one(file: &str, key: &str, message: String) -> ConfigErrors {
    ConfigErrors(vec![ConfigError {
        file: file.into(),
        key: key.into(),
        message,
    }])
}

/// Loads the global configuration directory `dir` (relative to the config file); a downloaded
/// one is always on disk, whatever the source of the configuration file.
pub(crate) fn load_globalconf(
    source: &ConfigSource,
    dir: &str,
    downloaded: bool,
) -> Result<GlobalConf, String> {
    match source {
        _ if downloaded => GlobalConf::load_dir(&source.path(dir)).map_err(|e| e.to_string()),
        ConfigSource::Dir(base) => GlobalConf::load_dir(&base.join(dir)).map_err(|e| e.to_string()),
        ConfigSource::Embedded => {
            let read = |rel: &str| source.read(&format!("{dir}/{rel}"));
            let own =
                String::from_utf8_lossy(&read("instance-identifier").map_err(|e| e.to_string())?)
                    .trim()
                    .to_string();
            let shared = SharedParams::parse(
                &read(&format!("{own}/shared-params.xml")).map_err(|e| e.to_string())?,
            )
            .map_err(|e| e.to_string())?;
            let private = match read(&format!("{own}/private-params.xml")) {
                Ok(b) => Some(PrivateParams::parse(&b).map_err(|e| e.to_string())?),
                Err(_) => None,
            };
            Ok(GlobalConf {
                own_instance: own.clone(),
                shared: [(own, shared)].into_iter().collect(),
                private,
            })
        }
    }
}

pub mod check;
