//! Turns the TOML file into a [`ServerConf`], collecting every problem instead of stopping at the
//! first, so one `brama config check` run lists them all.

use super::router::RouterConf;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

use super::file::{ClientSection, ConfigFile, Connection, ServiceKind};
use super::{
    load_globalconf, AccessRight, ConfigError, ConfigSource, Endpoint, HostedClient, ServerConf,
    Service, Subject,
};
use brama_xroad::globalconf::auth_cert_hash;
use brama_xroad::identifiers::{is_valid_part, ClientId, SecurityServerId, ServiceId};

struct Errors<'a> {
    file: &'a str,
    list: &'a mut Vec<ConfigError>,
}

impl Errors<'_> {
    fn add(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.list.push(ConfigError {
            file: self.file.into(),
            key: key.into(),
            message: message.into(),
        });
    }

    fn add_in(&mut self, file: String, key: impl Into<String>, message: impl Into<String>) {
        self.list.push(ConfigError {
            file,
            key: key.into(),
            message: message.into(),
        });
    }
}

pub(super) fn check(
    file: ConfigFile,
    source: ConfigSource,
    file_name: &str,
    list: &mut Vec<ConfigError>,
) -> Option<ServerConf> {
    let mut e = Errors {
        file: file_name,
        list,
    };

    let server_id = SecurityServerId::parse_path(&file.server.id)
        .map_err(|m| e.add("server.id", m))
        .ok();
    let gc_name = source.display(&file.server.globalconf_dir);
    // A downloaded configuration is read from the generation in force.
    let gc_dir = match &file.globalconf.anchor {
        Some(_) => format!(
            "{}/{}",
            file.server.globalconf_dir,
            crate::confclient::CURRENT
        ),
        None => file.server.globalconf_dir.clone(),
    };
    let downloaded = file.globalconf.anchor.is_some();
    let globalconf = if downloaded && !source.path(&gc_dir).join("instance-identifier").is_file() {
        e.add_in(
            gc_name.clone(),
            "",
            "no global configuration has been downloaded from [globalconf] anchor yet \
             (brama serve downloads it before it starts)"
                .to_string(),
        );
        None
    } else {
        load_globalconf(&source, &gc_dir, downloaded)
            .map_err(|m| e.add_in(gc_name.clone(), "", m))
            .ok()
    };

    for (key, addr) in [
        (
            "listeners.client_http",
            file.listeners.client_http.as_deref(),
        ),
        (
            "listeners.client_https",
            file.listeners.client_https.as_deref(),
        ),
        ("listeners.server", Some(file.listeners.server.as_str())),
        ("listeners.admin", file.listeners.admin.as_deref()),
        ("listeners.ocsp", file.listeners.ocsp.as_deref()),
    ] {
        if let Some(a) = addr {
            if a.parse::<SocketAddr>().is_err() {
                e.add(key, format!("'{a}' is not an address such as 0.0.0.0:8080"));
            }
        }
    }
    if file.listeners.client_https.is_some() && file.tls.internal_cert.is_none() {
        e.add(
            "tls.internal_cert",
            "listeners.client_https needs an internal TLS certificate and key",
        );
    }
    check_limits(&file, &mut e);

    let auth_certs = load_certs(&source, &file.tls.auth_cert, "tls.auth_cert", &mut e);
    let auth_key = load_key(&source, &file.tls.auth_key, "tls.auth_key", &mut e);
    let internal_tls = match (&file.tls.internal_cert, &file.tls.internal_key) {
        (Some(c), Some(k)) => {
            let certs = load_certs(&source, c, "tls.internal_cert", &mut e);
            let key = load_key(&source, k, "tls.internal_key", &mut e);
            certs.zip(key)
        }
        (None, None) => None,
        _ => {
            e.add("tls", "internal_cert and internal_key go together");
            None
        }
    };

    if let (Some(gc), Some(id)) = (&globalconf, &server_id) {
        match gc.server(id) {
            None => e.add_in(
                gc_name.clone(),
                "securityServer",
                format!("this server {id} is not in the global configuration"),
            ),
            Some(ss) => {
                if let Some(certs) = &auth_certs {
                    let hash = auth_cert_hash(&certs[0]);
                    if !ss.auth_cert_hashes.contains(&hash) {
                        e.add(
                            "tls.auth_cert",
                            format!("this certificate is not registered for {id} in the global configuration (authCertHash); run `brama certs init` to regenerate the test PKI"),
                        );
                    }
                }
            }
        }
    }

    let mut clients = HashMap::new();
    for (i, c) in file.clients.iter().enumerate() {
        let key = format!("clients[{i}]");
        if let Some(hc) = check_client(c, &key, &source, &file, &mut e) {
            if let (Some(gc), Some(sid)) = (&globalconf, &server_id) {
                if !gc.client_exists(&hc.id) {
                    e.add(
                        format!("{key}.id"),
                        format!(
                            "{} is not a member or subsystem in the global configuration",
                            hc.id
                        ),
                    );
                } else if !gc.servers_for_client(&hc.id).iter().any(|s| &s.id == sid) {
                    e.add(
                        format!("{key}.id"),
                        format!(
                            "{} is not registered as a client of {sid} in the global configuration",
                            hc.id
                        ),
                    );
                }
            }
            if clients.insert(hc.id.clone(), hc).is_some() {
                e.add(format!("{key}.id"), "this client is configured twice");
            }
        }
    }

    if let Some(sim) = &file.simulator {
        if sim.listen.parse::<SocketAddr>().is_err() {
            e.add(
                "simulator.listen",
                format!("'{}' is not an address", sim.listen),
            );
        }
        if !(0.0..=1.0).contains(&sim.error_rate) {
            e.add("simulator.error_rate", "must be between 0 and 1");
        }
        for (name, r) in &sim.registries {
            if r.error_rate.is_some_and(|x| !(0.0..=1.0).contains(&x)) {
                e.add(
                    format!("simulator.registries.{name}.error_rate"),
                    "must be between 0 and 1",
                );
            }
            if r.outages.iter().any(|o| o.until_ms <= o.from_ms) {
                e.add(
                    format!("simulator.registries.{name}.outages"),
                    "each window needs until_ms > from_ms",
                );
            }
        }
    }
    if !["batch", "single"].contains(&file.log.timestamping.as_str()) {
        e.add("log.timestamping", "must be 'batch' or 'single'");
    }
    for (i, provider) in file.log.body_logging_except.iter().enumerate() {
        if let Err(m) = ClientId::parse_path(provider) {
            e.add(format!("log.body_logging_except[{i}]"), m);
        }
    }
    if !["text", "json"].contains(&file.log.format.as_str()) {
        e.add("log.format", "must be 'text' or 'json'");
    }
    let hosted: Vec<ClientId> = clients.keys().cloned().collect();
    let signer = super::signer::resolve(&file, &source, &hosted, &mut |k, m| e.add(k, m));
    if let (Some(id), Some(certs)) = (&server_id, &auth_certs) {
        refuse_test_pki_outside_test(id, certs, &signer, &mut e);
    }
    let shared_store =
        super::router::resolve_store(&file.store, &source, &file.listeners.server, &mut |k, m| {
            e.add(k, m)
        });
    let router = match file.router.as_ref().filter(|r| r.enabled) {
        Some(r) => {
            let mut failed = false;
            let conf = super::router::resolve(r, &source, &hosted, &mut |k, m| {
                failed = true;
                e.add(k, m)
            });
            if failed {
                None
            } else {
                if let Some(rc) = &conf {
                    check_router_callers(rc, &file, &clients, &mut e);
                }
                conf.map(|rc| RouterConf {
                    shared_store: shared_store.clone(),
                    ..rc
                })
            }
        }
        None => None,
    };

    Some(ServerConf {
        router,
        shared_store,
        server_id: server_id?,
        globalconf: globalconf?,
        auth_certs: auth_certs?,
        auth_key: auth_key?,
        internal_tls,
        signer,
        clients,
        source,
        file,
        raw: toml::Table::new(),
    })
}

/// The test CA checked into the repository (`certs-test/ca.pem`). Its certificate is public
/// like any CA's; what matters is that the private keys of everything it issued there are too.
const CHECKED_IN_TEST_CA: &[u8] = include_bytes!("../../../../certs-test/ca.pem");

/// Whether `der` was issued by the checked-in test CA (its signature checks with that CA's key),
/// so that its private key may be the public one in `certs-test/`. A test PKI made afresh with
/// `brama certs init` elsewhere has keys of its own and is not this.
pub fn issued_by_checked_in_test_ca(der: &[u8]) -> bool {
    use rustls_pki_types::pem::PemObject;
    let Ok(ca) = CertificateDer::from_pem_slice(CHECKED_IN_TEST_CA) else {
        return false;
    };
    let (Ok((_, ca)), Ok((_, cert))) = (
        x509_parser::parse_x509_certificate(&ca),
        x509_parser::parse_x509_certificate(der),
    ) else {
        return false;
    };
    cert.verify_signature(Some(ca.public_key())).is_ok()
}

/// The checked-in test keys serve test instances only: a server of any other instance must have
/// keys of its own.
fn refuse_test_pki_outside_test(
    id: &SecurityServerId,
    auth_certs: &[CertificateDer<'static>],
    signer: &brama_sign::conf::SignerConf,
    e: &mut Errors,
) {
    if id.owner.instance.to_ascii_uppercase().ends_with("TEST") {
        return;
    }
    let why = "is issued by the test CA checked into brama's repository (certs-test/), whose \
               private keys are public; a server of a production instance needs keys of its own \
               (brama keys generate, brama keys csr)";
    if auth_certs
        .first()
        .is_some_and(|c| issued_by_checked_in_test_ca(c))
    {
        e.add("tls.auth_cert", why);
    }
    for k in &signer.keys {
        if k.cert_chain
            .first()
            .is_some_and(|c| issued_by_checked_in_test_ca(c))
        {
            e.add("signer", format!("the signing key of {} {why}", k.member));
        }
    }
}

/// The router's endpoints serve whoever reaches a client listener: they must authenticate their
/// callers, or be reachable from this machine only.
fn check_router_callers(
    rc: &super::router::RouterConf,
    file: &ConfigFile,
    clients: &HashMap<ClientId, HostedClient>,
    e: &mut Errors,
) {
    use super::router::Authentication;
    let listeners = [
        (
            "listeners.client_http",
            file.listeners.client_http.as_deref(),
        ),
        (
            "listeners.client_https",
            file.listeners.client_https.as_deref(),
        ),
    ];
    match rc.authentication {
        Authentication::None => {
            for (key, addr) in listeners {
                if let Some(a) = addr.filter(|a| !brama_transport::listener::is_loopback(a)) {
                    e.add(
                        "router.authentication",
                        format!("\"none\" lets anyone who reaches {key} ({a}) submit applications and read them; bind it to loopback, or authenticate callers by certificate"),
                    );
                }
            }
        }
        Authentication::Certificate => {
            if file.listeners.client_https.is_none() {
                e.add(
                    "router.authentication",
                    "\"certificate\" needs listeners.client_https: callers present their certificate over HTTPS",
                );
            }
            let acting: Vec<(&str, &ClientId)> = rc
                .submitters
                .iter()
                .map(|c| ("router.submitters", c))
                .chain(rc.routes.values().map(|r| ("router.routes", &r.client)))
                .collect();
            for (key, id) in acting {
                if clients.get(id).is_some_and(|c| c.is_cert_hashes.is_empty()) {
                    e.add(
                        key,
                        format!("{id} pins no certificate (its is_certs), so no caller can authenticate as it"),
                    );
                }
            }
        }
    }
}

fn check_limits(file: &ConfigFile, e: &mut Errors) {
    let l = &file.limits;
    if l.body_memory_bytes < l.max_body_bytes {
        e.add(
            "limits.body_memory_bytes",
            "must be at least limits.max_body_bytes, or the largest request could never be received",
        );
    }
    for (key, v) in [
        ("limits.max_body_bytes", l.max_body_bytes),
        ("limits.max_xml_depth", l.max_xml_depth),
        ("limits.max_xml_elements", l.max_xml_elements),
        ("limits.max_xml_attributes", l.max_xml_attributes),
        ("limits.max_xml_namespaces", l.max_xml_namespaces),
        (
            "limits.max_xml_namespaces_in_scope",
            l.max_xml_namespaces_in_scope,
        ),
        ("limits.max_xml_name_bytes", l.max_xml_name_bytes),
        ("limits.max_xml_attribute_bytes", l.max_xml_attribute_bytes),
        ("limits.max_xml_text_bytes", l.max_xml_text_bytes),
        ("limits.max_header_elements", l.max_header_elements),
        ("limits.max_mime_parts", l.max_mime_parts),
        ("limits.max_http_headers", l.max_http_headers),
        ("limits.max_connections", l.max_connections),
        ("limits.body_memory_bytes", l.body_memory_bytes),
        (
            "limits.first_byte_timeout_ms",
            l.first_byte_timeout_ms as usize,
        ),
        ("limits.listen_backlog", l.listen_backlog as usize),
        ("limits.body_rate_window_ms", l.body_rate_window_ms as usize),
    ] {
        if v == 0 {
            e.add(key, "must be greater than 0");
        }
    }
}

fn check_client(
    c: &ClientSection,
    key: &str,
    source: &ConfigSource,
    file: &ConfigFile,
    e: &mut Errors,
) -> Option<HostedClient> {
    let id = ClientId::parse_path(&c.id)
        .map_err(|m| e.add(format!("{key}.id"), m))
        .ok()?;
    let mut is_cert_hashes = Vec::new();
    for (j, path) in c.is_certs.iter().enumerate() {
        if let Some(certs) = load_certs(source, path, &format!("{key}.is_certs[{j}]"), e) {
            is_cert_hashes.push(Sha256::digest(&certs[0]).to_vec());
        }
    }
    if c.connection == Connection::HttpsAuth && c.is_certs.is_empty() {
        e.add(
            format!("{key}.is_certs"),
            "connection 'https-auth' needs at least one pinned certificate",
        );
    }
    if c.connection != Connection::Http && file.listeners.client_https.is_none() {
        e.add(
            format!("{key}.connection"),
            "HTTPS connections need listeners.client_https",
        );
    }

    let mut services: Vec<Service> = Vec::new();
    for (j, s) in c.services.iter().enumerate() {
        let skey = format!("{key}.services[{j}]");
        if !is_valid_part(&s.code) || s.version.as_deref().is_some_and(|v| !is_valid_part(v)) {
            e.add(
                format!("{skey}.code"),
                "service code and version may hold letters, digits and '()+,-.=? only",
            );
            continue;
        }
        let url = parse_url(&s.url, &format!("{skey}.url"), e);
        let wsdl = s
            .wsdl
            .as_deref()
            .and_then(|w| parse_url(w, &format!("{skey}.wsdl"), e));
        let https = [&url, &wsdl]
            .into_iter()
            .flatten()
            .any(|u| u.scheme_str() == Some("https"));
        let tls = match (&s.tls_ca, https) {
            (Some(ca), _) => service_tls(source, ca, &format!("{skey}.tls_ca"), e),
            (None, true) => {
                e.add(
                    format!("{skey}.tls_ca"),
                    "an https:// service needs tls_ca, the CA its certificate chains to",
                );
                None
            }
            (None, false) => None,
        };
        if services
            .iter()
            .any(|x| x.id.service_code == s.code && x.id.service_version == s.version)
        {
            e.add(
                format!("{skey}.code"),
                "this service code and version is configured twice",
            );
        }
        if s.timeout_ms == 0 {
            e.add(format!("{skey}.timeout_ms"), "must be greater than 0");
        }
        let openapi = match (&s.openapi, s.kind) {
            (Some(f), ServiceKind::Openapi) => source
                .read(f)
                .map_err(|err| {
                    e.add(
                        format!("{skey}.openapi"),
                        format!("cannot read {}: {err}", source.display(f)),
                    )
                })
                .ok()
                .map(bytes::Bytes::from),
            (None, ServiceKind::Openapi) => {
                e.add(
                    format!("{skey}.openapi"),
                    "an openapi service needs its OpenAPI 3 description file",
                );
                None
            }
            (Some(_), _) => {
                e.add(
                    format!("{skey}.openapi"),
                    "only services of type \"openapi\" have an OpenAPI description",
                );
                None
            }
            (None, _) => None,
        };
        let mut endpoints = vec![Endpoint::any()];
        if let Some(doc) = &openapi {
            match openapi_endpoints(doc) {
                Ok(eps) => endpoints.extend(eps),
                Err(err) => e.add(format!("{skey}.openapi"), err),
            }
        }
        for (k, ep) in s.endpoints.iter().enumerate() {
            if !s.kind.is_rest() {
                e.add(
                    format!("{skey}.endpoints"),
                    "only REST services (type = \"rest\" or \"openapi\") have endpoints",
                );
                break;
            }
            match ep.validate() {
                Ok(()) if !endpoints.contains(ep) => endpoints.push(ep.clone()),
                Ok(()) => {}
                Err(m) => e.add(format!("{skey}.endpoints[{k}]"), m),
            }
        }
        if s.kind.is_rest() && (s.version.is_some() || s.wsdl.is_some()) {
            e.add(
                format!("{skey}.version"),
                "REST services have neither a version nor a WSDL",
            );
        }
        if let Some(url) = url {
            services.push(Service {
                kind: s.kind,
                endpoints,
                openapi,
                id: ServiceId::new(id.clone(), &s.code, s.version.as_deref()),
                url,
                timeout: Duration::from_millis(s.timeout_ms),
                disabled: s.disabled.then(|| {
                    s.disabled_notice
                        .clone()
                        .unwrap_or_else(|| "Service is disabled".into())
                }),
                wsdl,
                tls,
            });
        }
    }

    let mut local_groups = HashMap::new();
    for (j, g) in c.local_groups.iter().enumerate() {
        let gkey = format!("{key}.local_groups[{j}]");
        let members: Vec<ClientId> = g
            .members
            .iter()
            .enumerate()
            .filter_map(|(k, m)| {
                ClientId::parse_path(m)
                    .map_err(|msg| e.add(format!("{gkey}.members[{k}]"), msg))
                    .ok()
            })
            .collect();
        if local_groups.insert(g.code.clone(), members).is_some() {
            e.add(format!("{gkey}.code"), "this local group is defined twice");
        }
    }

    let mut access = Vec::new();
    for (j, a) in c.access.iter().enumerate() {
        let akey = format!("{key}.access[{j}]");
        let svc = c.services.iter().find(|s| s.code == a.service);
        if svc.is_none() {
            e.add(
                format!("{akey}.service"),
                format!("no service '{}' is configured for {id}", a.service),
            );
        }
        let endpoint = Endpoint {
            method: a.method.clone().unwrap_or_else(|| "*".into()),
            path: a.path.clone().unwrap_or_else(|| "**".into()),
        };
        if let Err(m) = endpoint.validate() {
            e.add(format!("{akey}.path"), m);
        } else if !endpoint.is_any() && svc.is_some_and(|s| !s.kind.is_rest()) {
            e.add(
                format!("{akey}.method"),
                "rights on endpoints (method, path) are for REST services only",
            );
        }
        for (k, s) in a.subjects.iter().enumerate() {
            match Subject::parse(s) {
                Ok(Subject::LocalGroup(g)) if !local_groups.contains_key(&g) => e.add(
                    format!("{akey}.subjects[{k}]"),
                    format!("local group '{g}' is not defined for {id}"),
                ),
                Ok(subject) => access.push(AccessRight {
                    service_code: a.service.clone(),
                    subject,
                    endpoint: endpoint.clone(),
                }),
                Err(m) => e.add(format!("{akey}.subjects[{k}]"), m),
            }
        }
    }

    Some(HostedClient {
        id,
        connection: c.connection,
        is_cert_hashes,
        services,
        access,
        local_groups,
        rest_dialect: c.rest_dialect,
    })
}

fn parse_url(s: &str, key: &str, e: &mut Errors) -> Option<http::Uri> {
    match s.parse::<http::Uri>() {
        Ok(u) if matches!(u.scheme_str(), Some("http") | Some("https")) && u.host().is_some() => {
            Some(u)
        }
        _ => {
            e.add(key, format!("'{s}' is not an http:// or https:// URL"));
            None
        }
    }
}

fn load_certs(
    source: &ConfigSource,
    path: &str,
    key: &str,
    e: &mut Errors,
) -> Option<Vec<CertificateDer<'static>>> {
    let bytes = source
        .read(path)
        .map_err(|err| e.add(key, format!("cannot read {}: {err}", source.display(path))))
        .ok()?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&bytes)
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        e.add(
            key,
            format!("{} holds no PEM certificate", source.display(path)),
        );
        return None;
    }
    Some(certs)
}

fn load_key(
    source: &ConfigSource,
    path: &str,
    key: &str,
    e: &mut Errors,
) -> Option<PrivateKeyDer<'static>> {
    let bytes = source
        .read(path)
        .map_err(|err| e.add(key, format!("cannot read {}: {err}", source.display(path))))
        .ok()?;
    PrivateKeyDer::from_pem_slice(&bytes)
        .map_err(|err| {
            e.add(
                key,
                format!("{} holds no PEM private key: {err}", source.display(path)),
            )
        })
        .ok()
}

/// Client TLS settings trusting only `ca_path` (host names are checked).
fn service_tls(
    source: &ConfigSource,
    ca_path: &str,
    key: &str,
    e: &mut Errors,
) -> Option<std::sync::Arc<rustls::ClientConfig>> {
    let certs = load_certs(source, ca_path, key, e)?;
    let mut roots = rustls::RootCertStore::empty();
    for c in certs {
        if let Err(err) = roots.add(c) {
            e.add(key, format!("unusable CA certificate: {err}"));
            return None;
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(brama_transport::tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|err| e.add(key, err.to_string()))
        .ok()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Some(std::sync::Arc::new(config))
}

/// The endpoints of an OpenAPI 3 description (its paths, `{param}` as `*`).
fn openapi_endpoints(doc: &[u8]) -> Result<Vec<Endpoint>, String> {
    let d = brama_xroad::openapi::parse(doc).map_err(|e| e.to_string())?;
    Ok(d.endpoints
        .into_iter()
        .map(|e| Endpoint {
            method: e.method,
            path: e.path,
        })
        .collect())
}
