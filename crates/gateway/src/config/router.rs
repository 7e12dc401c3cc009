//! `[router]`: the Diia application router (durable fan-out to registries) and wrap-mode routes.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::ConfigSource;
use brama_xroad::identifiers::{ClientId, ServiceId};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RouterSection {
    pub enabled: bool,
    /// The store's directory (`router.redb`). Relative to the config file, or to the working directory for the
    /// embedded default.
    pub store_dir: String,
    /// Memory the store may use for its page cache.
    pub store_cache_mb: u64,
    /// The X-Road client of every delivery (`INSTANCE/CLASS/CODE/SUBSYSTEM`), hosted here.
    pub client: String,
    /// How callers of the router's endpoints are authenticated.
    pub authentication: Authentication,
    /// Hosted subsystems whose information systems may submit applications (default: `client`).
    /// Each sees only the applications it submitted.
    pub submitters: Vec<String>,
    /// Largest application accepted (bytes of JSON).
    pub max_application_bytes: usize,
    /// How long a submission's `Idempotency-Key` answers a repeat with the first application.
    pub idempotency_window_s: u64,
    /// How often an asynchronous registry (DRACS registration status) is asked again.
    pub poll_interval_ms: u64,
    /// Support notification for deliveries that failed for good; retried until it lands.
    pub webhook_url: Option<String>,
    pub webhook_timeout_ms: u64,
    pub retry: RetrySection,
    /// Per registry (WSDL name): its X-Road subsystem and limits.
    pub registries: BTreeMap<String, RegistrySection>,
    /// Per service of the flow (operation name): how it is delivered (SOAP by default).
    pub services: BTreeMap<String, ServiceDeliverySection>,
    /// Wrap mode: `POST /route/{name}`.
    pub routes: Vec<RouteSection>,
}

impl Default for RouterSection {
    fn default() -> Self {
        RouterSection {
            enabled: true,
            store_dir: "brama-data".into(),
            store_cache_mb: 16,
            client: String::new(),
            authentication: Authentication::Certificate,
            submitters: Vec::new(),
            max_application_bytes: 64 * 1024,
            idempotency_window_s: 24 * 3600,
            poll_interval_ms: 1_000,
            webhook_url: None,
            webhook_timeout_ms: 5_000,
            retry: RetrySection::default(),
            registries: BTreeMap::new(),
            services: BTreeMap::new(),
            routes: Vec::new(),
        }
    }
}

/// `[store]`: without `url`, the router's store is embedded in `[router] store_dir`; with it,
/// PostgreSQL, which any number of nodes share.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSection {
    /// `postgres://user[:password]@host[:port]/database`.
    pub url: Option<String>,
    /// A file holding the URL instead (its content, trimmed): a mounted secret, so the password
    /// stays out of the configuration file. Not with `url`.
    pub url_file: Option<String>,
    /// This node's name in delivery leases: unique among the nodes, the same across its
    /// restarts (so it takes back at once what it held). Default: the host name and the port of
    /// `[listeners] server`.
    pub node: Option<String>,
    /// Connections to the database this node keeps at most.
    pub pool_size: usize,
    /// Time to connect, and to wait for a free connection.
    pub connect_timeout_ms: u64,
    /// Longest a statement may run.
    pub statement_timeout_ms: u64,
    /// How long past its due time (or past its attempt's timeout, in flight) a delivery stays
    /// with its node; then any node takes it over.
    pub lease_margin_s: u64,
    /// How often each node looks for deliveries no node holds.
    pub orphan_scan_ms: u64,
    /// PEM: the CA(s) the database's certificate chains to. Set, every connection is TLS
    /// (rustls), the certificate checked against them and the URL's host.
    pub tls_ca_file: Option<String>,
}

impl Default for StoreSection {
    fn default() -> Self {
        StoreSection {
            url: None,
            url_file: None,
            node: None,
            pool_size: 16,
            connect_timeout_ms: 5_000,
            statement_timeout_ms: 30_000,
            lease_margin_s: 30,
            orphan_scan_ms: 1_000,
            tls_ca_file: None,
        }
    }
}

/// The checked `[store]` of a shared store.
#[derive(Clone, Debug)]
pub struct SharedStore {
    pub url: String,
    pub node: String,
    pub pool_size: usize,
    pub connect_timeout: Duration,
    pub statement_timeout: Duration,
    pub lease_margin: Duration,
    pub orphan_scan: Duration,
    /// `tls_ca_file`'s certificates (DER); empty without TLS.
    pub tls_roots: Vec<rustls_pki_types::CertificateDer<'static>>,
}

impl SharedStore {
    /// How this node connects to the database.
    pub fn pg(&self) -> brama_pg::Settings {
        brama_pg::Settings {
            url: self.url.clone(),
            node: self.node.clone(),
            pool_size: self.pool_size,
            connect_timeout: self.connect_timeout,
            statement_timeout: self.statement_timeout,
            tls_roots: self.tls_roots.clone(),
        }
    }
}

/// Checks `[store]`; `None` without a `url` (the embedded store).
pub fn resolve_store(
    s: &StoreSection,
    source: &super::ConfigSource,
    server_listener: &str,
    err: &mut dyn FnMut(String, String),
) -> Option<SharedStore> {
    let mut ok = true;
    let mut fail = |k: &str, m: String| {
        ok = false;
        err(format!("store.{k}"), m);
    };
    let url = match (&s.url, &s.url_file) {
        (None, None) => return None,
        (Some(u), None) => u.clone(),
        (Some(_), Some(_)) => {
            fail("url_file", "set url or url_file, not both".into());
            return None;
        }
        (None, Some(path)) => match source.read(path) {
            Ok(b) => String::from_utf8_lossy(&b).trim().to_string(),
            Err(e) => {
                fail(
                    "url_file",
                    format!("cannot read {}: {e}", source.display(path)),
                );
                return None;
            }
        },
    };
    let url = &url;
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        fail("url", "must be a postgres:// URL".into());
    }
    if s.pool_size == 0 {
        fail("pool_size", "must be positive".into());
    }
    if s.lease_margin_s == 0 {
        fail("lease_margin_s", "must be positive".into());
    }
    let node = s.node.clone().unwrap_or_else(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "brama".into());
        let port = server_listener.rsplit(':').next().unwrap_or("");
        format!("{host}:{port}")
    });
    if node.is_empty() || node.len() > 200 {
        fail("node", "must be 1 to 200 characters".into());
    }
    let mut tls_roots = Vec::new();
    if let Some(path) = &s.tls_ca_file {
        match source.read(path) {
            Ok(pem) => {
                use rustls_pki_types::pem::PemObject;
                tls_roots = rustls_pki_types::CertificateDer::pem_slice_iter(&pem)
                    .filter_map(Result::ok)
                    .collect();
                if tls_roots.is_empty() {
                    fail(
                        "tls_ca_file",
                        format!("{} holds no PEM certificate", source.display(path)),
                    );
                }
            }
            Err(e) => fail(
                "tls_ca_file",
                format!("cannot read {}: {e}", source.display(path)),
            ),
        }
    } else if url.contains("sslmode=require") {
        fail(
            "tls_ca_file",
            "the url asks for TLS (sslmode=require): name the CA of the database's certificate"
                .into(),
        );
    }
    ok.then(|| SharedStore {
        url: url.clone(),
        node,
        pool_size: s.pool_size,
        connect_timeout: Duration::from_millis(s.connect_timeout_ms.max(1)),
        statement_timeout: Duration::from_millis(s.statement_timeout_ms.max(1)),
        lease_margin: Duration::from_secs(s.lease_margin_s),
        orphan_scan: Duration::from_millis(s.orphan_scan_ms.max(10)),
        tls_roots,
    })
}

/// How the router's endpoints (`/api/v1/applications`, `/route/{name}`) know their caller.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Authentication {
    /// HTTPS with a client certificate pinned in the `is_certs` of the subsystem the caller acts
    /// as (X-Road's SSLAUTH).
    #[default]
    Certificate,
    /// Anyone who reaches a client listener; only allowed when every client listener is on
    /// loopback.
    None,
}

/// How one service of the flow reaches its registry.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceDeliverySection {
    pub protocol: Protocol,
    /// REST: the registry's REST service code (default: the operation name). The request is a
    /// `POST /r1/<registry subsystem>/<code>` with the operation's request as JSON.
    pub rest_service: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Soap,
    Rest,
}

/// Defaults for every registry; a `[router.registries.<name>]` entry may override each.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetrySection {
    /// Attempts before a delivery fails; 0 (the default) sets no limit: a delivery is retried
    /// until `max_age_s`, so a registry's maintenance window does not fail applications.
    pub max_attempts: u32,
    /// A delivery still not done this long after it became ready fails.
    pub max_age_s: u64,
    pub initial_backoff_ms: u64,
    pub max_backoff_ms: u64,
    pub multiplier: f64,
    /// Fraction of each delay drawn at random (0 = none, 1 = full jitter), so a registry that
    /// comes back is not hit by every waiting delivery at once.
    pub jitter: f64,
    /// One attempt's time limit.
    pub timeout_ms: u64,
    /// Attempts in flight per registry.
    pub concurrency: usize,
}

impl Default for RetrySection {
    fn default() -> Self {
        RetrySection {
            max_attempts: 0,
            max_age_s: 24 * 3600,
            initial_backoff_ms: 1_000,
            max_backoff_ms: 10 * 60_000,
            multiplier: 2.0,
            jitter: 0.5,
            timeout_ms: 60_000,
            concurrency: 64,
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistrySection {
    /// `INSTANCE/CLASS/CODE/SUBSYSTEM` that provides the registry's services.
    pub subsystem: String,
    pub max_attempts: Option<u32>,
    pub max_age_s: Option<u64>,
    pub timeout_ms: Option<u64>,
    pub concurrency: Option<usize>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSection {
    pub name: String,
    /// `INSTANCE/CLASS/CODE/SUBSYSTEM`, hosted here.
    pub client: String,
    /// `INSTANCE/CLASS/CODE/SUBSYSTEM/SERVICE[/VERSION]`.
    pub service: String,
    /// Request header whose value becomes `xrd:userId`.
    #[serde(default = "default_user_id_header")]
    pub user_id_header: String,
    /// `xrd:userId` when the header is absent; without either the field is left out.
    pub user_id: Option<String>,
}

fn default_user_id_header() -> String {
    "x-road-userid".into()
}

/// The checked `[router]` section.
#[derive(Clone, Debug)]
pub struct RouterConf {
    /// The embedded store's directory (unused with a shared store).
    pub store_dir: PathBuf,
    /// PostgreSQL, shared by nodes, when `[store] url` is set.
    pub shared_store: Option<SharedStore>,
    pub store_cache_bytes: u64,
    pub client: ClientId,
    pub authentication: Authentication,
    /// Who may submit applications: `client` unless `submitters` names others.
    pub submitters: Vec<ClientId>,
    pub max_application_bytes: usize,
    pub idempotency_window: Duration,
    pub poll_interval: Duration,
    pub webhook_url: Option<hyper::Uri>,
    pub webhook_timeout: Duration,
    pub registries: BTreeMap<String, RegistryConf>,
    /// Services delivered over REST: operation name → REST service code.
    pub rest_services: BTreeMap<String, String>,
    /// Every `[router.services.<name>]` named; the router refuses to start on a name its flow
    /// does not have (the configuration does not know the flow).
    pub service_names: Vec<String>,
    pub routes: BTreeMap<String, Route>,
}

/// Limits of one registry, defaults applied.
#[derive(Clone, Debug)]
pub struct RegistryConf {
    pub subsystem: ClientId,
    pub policy: RetryPolicy,
    pub concurrency: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// `None`: no limit but `max_age`.
    pub max_attempts: Option<u32>,
    pub max_age: Duration,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    pub multiplier: f64,
    pub jitter: f64,
    pub timeout: Duration,
}

#[derive(Clone, Debug)]
pub struct Route {
    pub client: ClientId,
    pub service: ServiceId,
    pub user_id_header: String,
    pub user_id: Option<String>,
}

/// Checks the section; every problem goes to `err` as (key, message).
pub fn resolve(
    s: &RouterSection,
    source: &ConfigSource,
    hosted: &[ClientId],
    err: &mut dyn FnMut(String, String),
) -> Option<RouterConf> {
    let mut ok = true;
    let mut fail = |k: &str, m: String| {
        ok = false;
        err(format!("router.{k}"), m);
    };
    let client = match ClientId::parse_path(&s.client) {
        Ok(c) if c.subsystem.is_some() => {
            if !hosted.contains(&c) {
                fail("client", format!("'{c}' is not a client hosted here"));
            }
            Some(c)
        }
        Ok(_) => {
            fail("client", "must be a subsystem".into());
            None
        }
        Err(m) => {
            fail("client", m);
            None
        }
    };
    let mut submitters = Vec::new();
    for (i, sub) in s.submitters.iter().enumerate() {
        match ClientId::parse_path(sub) {
            Ok(c) if c.subsystem.is_some() && hosted.contains(&c) => submitters.push(c),
            Ok(c) => fail(
                &format!("submitters[{i}]"),
                format!("'{c}' is not a subsystem hosted here"),
            ),
            Err(m) => fail(&format!("submitters[{i}]"), m),
        }
    }
    if s.submitters.is_empty() {
        submitters.extend(client.clone());
    }
    let r = &s.retry;
    check_retry(r, "retry", &mut fail);
    let mut registries = BTreeMap::new();
    for (name, reg) in &s.registries {
        let key = format!("registries.{name}");
        let subsystem = match ClientId::parse_path(&reg.subsystem) {
            Ok(c) => Some(c),
            Err(m) => {
                fail(&format!("{key}.subsystem"), m);
                None
            }
        };
        let policy = RetryPolicy {
            max_attempts: Some(reg.max_attempts.unwrap_or(r.max_attempts)).filter(|n| *n > 0),
            max_age: Duration::from_secs(reg.max_age_s.unwrap_or(r.max_age_s)),
            initial_backoff: Duration::from_millis(r.initial_backoff_ms),
            max_backoff: Duration::from_millis(r.max_backoff_ms),
            multiplier: r.multiplier,
            jitter: r.jitter,
            timeout: Duration::from_millis(reg.timeout_ms.unwrap_or(r.timeout_ms)),
        };
        let concurrency = reg.concurrency.unwrap_or(r.concurrency);
        if concurrency == 0 {
            fail(&format!("{key}.concurrency"), "must be at least 1".into());
        }
        if let Some(subsystem) = subsystem {
            registries.insert(
                name.clone(),
                RegistryConf {
                    subsystem,
                    policy,
                    concurrency,
                },
            );
        }
    }
    let mut routes = BTreeMap::new();
    for (i, route) in s.routes.iter().enumerate() {
        let key = format!("routes[{i}]");
        if route.name.is_empty()
            || !route
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            fail(
                &format!("{key}.name"),
                "must be letters, digits, '-' or '_'".into(),
            );
        }
        let client = ClientId::parse_path(&route.client)
            .map_err(|m| fail(&format!("{key}.client"), m))
            .ok();
        if let Some(c) = &client {
            if !hosted.contains(c) {
                fail(
                    &format!("{key}.client"),
                    format!("'{c}' is not a client hosted here"),
                );
            }
        }
        let service = ServiceId::parse_path(&route.service)
            .map_err(|m| fail(&format!("{key}.service"), m))
            .ok();
        if http::HeaderName::from_bytes(route.user_id_header.as_bytes()).is_err() {
            fail(
                &format!("{key}.user_id_header"),
                "is not a header name".into(),
            );
        }
        if let (Some(client), Some(service)) = (client, service) {
            let dup = routes.insert(
                route.name.clone(),
                Route {
                    client,
                    service,
                    user_id_header: route.user_id_header.to_ascii_lowercase(),
                    user_id: route.user_id.clone(),
                },
            );
            if dup.is_some() {
                fail(&format!("{key}.name"), format!("'{}' twice", route.name));
            }
        }
    }
    let mut rest_services = BTreeMap::new();
    for (name, svc) in &s.services {
        let key = format!("services.{name}");
        let code = svc.rest_service.clone().unwrap_or_else(|| name.clone());
        match svc.protocol {
            Protocol::Rest if brama_xroad::identifiers::is_valid_part(&code) => {
                rest_services.insert(name.clone(), code);
            }
            Protocol::Rest => fail(
                &format!("{key}.rest_service"),
                format!("'{code}' is not a valid service code"),
            ),
            Protocol::Soap if svc.rest_service.is_some() => fail(
                &format!("{key}.rest_service"),
                "only REST deliveries (protocol = \"rest\") name a REST service".into(),
            ),
            Protocol::Soap => {}
        }
    }
    let webhook_url = match &s.webhook_url {
        None => None,
        Some(u) => match u.parse::<hyper::Uri>() {
            Ok(uri) if uri.scheme_str() == Some("http") && uri.host().is_some() => Some(uri),
            _ => {
                fail("webhook_url", format!("'{u}' is not an http:// URL"));
                None
            }
        },
    };
    if s.max_application_bytes == 0 {
        fail("max_application_bytes", "must be positive".into());
    }
    let store_dir = match source {
        ConfigSource::Dir(_) => source.path(&s.store_dir),
        ConfigSource::Embedded => PathBuf::from(&s.store_dir),
    };
    let client = client?;
    ok.then(|| RouterConf {
        store_dir,
        shared_store: None,
        store_cache_bytes: s.store_cache_mb * 1024 * 1024,
        client,
        authentication: s.authentication,
        submitters,
        max_application_bytes: s.max_application_bytes,
        idempotency_window: Duration::from_secs(s.idempotency_window_s),
        poll_interval: Duration::from_millis(s.poll_interval_ms.max(1)),
        webhook_url,
        webhook_timeout: Duration::from_millis(s.webhook_timeout_ms),
        registries,
        rest_services,
        service_names: s.services.keys().cloned().collect(),
        routes,
    })
}

fn check_retry(r: &RetrySection, key: &str, fail: &mut impl FnMut(&str, String)) {
    if r.initial_backoff_ms == 0 || r.max_backoff_ms < r.initial_backoff_ms {
        fail(
            &format!("{key}.max_backoff_ms"),
            "backoffs must be positive and max_backoff_ms >= initial_backoff_ms".into(),
        );
    }
    if !(r.multiplier >= 1.0 && r.multiplier <= 100.0) {
        fail(
            &format!("{key}.multiplier"),
            "must be within 1..=100".into(),
        );
    }
    if !(0.0..=1.0).contains(&r.jitter) {
        fail(&format!("{key}.jitter"), "must be within 0..=1".into());
    }
    if r.timeout_ms == 0 {
        fail(&format!("{key}.timeout_ms"), "must be positive".into());
    }
}
