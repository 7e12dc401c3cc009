//! The TOML file as written (`config/brama.toml`); every key is documented in `config/README.md`.

use serde::Deserialize;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub server: ServerSection,
    #[serde(default)]
    pub listeners: Listeners,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub proxy: ProxySection,
    pub tls: TlsSection,
    #[serde(default)]
    pub clients: Vec<ClientSection>,
    pub simulator: Option<SimulatorSection>,
    #[serde(default)]
    pub signer: SignerSection,
    #[serde(default)]
    pub log: LogSection,
    #[serde(default)]
    pub ocsp: OcspSection,
    #[serde(default)]
    pub globalconf: GlobalconfSection,
    pub router: Option<super::router::RouterSection>,
    /// Where the router keeps its records: embedded (the default) or PostgreSQL, shared by nodes.
    #[serde(default)]
    pub store: super::router::StoreSection,
}

/// Downloading the global configuration (reference §8.1).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GlobalconfSection {
    /// The configuration anchor (relative to this file). When set, `server.globalconf_dir` is
    /// where downloads are kept, the configuration in force in its `current`; unset, the
    /// directory is read as it is, once.
    pub anchor: Option<String>,
    /// How often the configuration is downloaded again (X-Road's `update-interval`).
    pub refresh_interval_s: u64,
    /// Time for a source to answer one request.
    pub timeout_ms: u64,
}

impl Default for GlobalconfSection {
    fn default() -> Self {
        GlobalconfSection {
            anchor: None,
            refresh_interval_s: 60,
            timeout_ms: 30_000,
        }
    }
}

/// OCSP: keeping the server's own responses fresh and checking peers' (reference §6.1).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OcspSection {
    /// Where the server's own responses are kept across restarts, relative to the configuration
    /// file; none keeps them in memory only (a restart then waits for the responders).
    pub cache_dir: Option<String>,
    /// How often the server's own responses are fetched again: X-Road's `ocspFetchInterval`
    /// (1,200 s). Also how long a peer's verified responses are trusted before they are fetched
    /// again, so a revocation is noticed within one interval.
    pub fetch_interval_s: u64,
    /// Time for a responder, or a peer's OCSP port, to answer.
    pub fetch_timeout_ms: u64,
    /// The port peer security servers serve their OCSP responses on (X-Road: 5577).
    pub peer_port: u16,
}

impl Default for OcspSection {
    fn default() -> Self {
        OcspSection {
            cache_dir: None,
            fetch_interval_s: 1200,
            fetch_timeout_ms: 20_000,
            peer_port: 5577,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// `INSTANCE/CLASS/CODE/SERVERCODE` of this security server.
    pub id: String,
    /// Directory of the global configuration, relative to the config file.
    pub globalconf_dir: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Listeners {
    pub client_http: Option<String>,
    pub client_https: Option<String>,
    pub server: String,
    pub admin: Option<String>,
    /// Plain HTTP: the server's own OCSP responses for peers (`GET /?cert=…`, X-Road's 5577).
    pub ocsp: Option<String>,
}

impl Default for Listeners {
    fn default() -> Self {
        Listeners {
            client_http: Some("0.0.0.0:8080".into()),
            client_https: None,
            server: "0.0.0.0:5500".into(),
            admin: Some("127.0.0.1:5588".into()),
            ocsp: Some("0.0.0.0:5577".into()),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub max_xml_depth: usize,
    pub max_xml_elements: usize,
    pub max_xml_attributes: usize,
    pub max_xml_namespaces: usize,
    pub max_xml_namespaces_in_scope: usize,
    pub max_xml_name_bytes: usize,
    pub max_xml_attribute_bytes: usize,
    pub max_xml_text_bytes: usize,
    pub max_header_elements: usize,
    pub max_mime_parts: usize,
    pub max_http_headers: usize,
    /// Time to receive a request's head (slow-client protection).
    pub header_read_timeout_ms: u64,
    /// Time to receive a whole request body.
    pub body_read_timeout_ms: u64,
    /// Request bodies held in memory across all connections (a request waits for its share).
    pub body_memory_bytes: usize,
    /// How long a request waits for its share of `body_memory_bytes` before it is refused.
    pub body_memory_wait_ms: u64,
    /// Least rate of a request body, over every `body_rate_window_ms` (0: none).
    pub min_body_rate_bytes: u64,
    pub body_rate_window_ms: u64,
    pub max_connections: usize,
    /// A new connection that sends nothing this long is closed.
    pub first_byte_timeout_ms: u64,
    /// Connections the kernel queues for each listener before they are accepted.
    pub listen_backlog: u32,
    pub shutdown_grace_ms: u64,
    /// Largest REST body carried (request or response); REST bodies stream through a spool.
    pub max_rest_body_bytes: u64,
    /// REST bodies up to this size stay in memory; larger ones go to a temporary file.
    pub spool_memory_bytes: usize,
    /// Where spooled bodies are written (default: the system's temporary directory).
    pub spool_dir: Option<String>,
}

impl Limits {
    /// The XML reader's limits (`max_xml_*`).
    pub fn xml(&self) -> brama_xroad::xml::XmlLimits {
        brama_xroad::xml::XmlLimits {
            max_depth: self.max_xml_depth,
            max_elements: self.max_xml_elements,
            max_attributes: self.max_xml_attributes,
            max_namespaces: self.max_xml_namespaces,
            max_namespaces_in_scope: self.max_xml_namespaces_in_scope,
            max_name_bytes: self.max_xml_name_bytes,
            max_attribute_bytes: self.max_xml_attribute_bytes,
            max_text_bytes: self.max_xml_text_bytes,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        let x = brama_xroad::xml::XmlLimits::default();
        Limits {
            max_body_bytes: 32 * 1024 * 1024,
            max_xml_depth: x.max_depth,
            max_xml_elements: x.max_elements,
            max_xml_attributes: x.max_attributes,
            max_xml_namespaces: x.max_namespaces,
            max_xml_namespaces_in_scope: x.max_namespaces_in_scope,
            max_xml_name_bytes: x.max_name_bytes,
            max_xml_attribute_bytes: x.max_attribute_bytes,
            max_xml_text_bytes: x.max_text_bytes,
            max_header_elements: 64,
            max_mime_parts: 64,
            max_http_headers: 100,
            header_read_timeout_ms: 10_000,
            body_read_timeout_ms: 60_000,
            body_memory_bytes: 256 * 1024 * 1024,
            body_memory_wait_ms: 1_000,
            min_body_rate_bytes: 8 * 1024,
            body_rate_window_ms: 5_000,
            max_connections: 5000,
            first_byte_timeout_ms: 5_000,
            listen_backlog: 4096,
            shutdown_grace_ms: 10_000,
            max_rest_body_bytes: 256 * 1024 * 1024,
            spool_memory_bytes: 1024 * 1024,
            spool_dir: None,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxySection {
    /// Port of peer security servers when the global configuration gives a bare host.
    pub peer_port: u16,
    pub connect_timeout_ms: u64,
    /// Read timeout for a peer's whole response when the service sets none.
    pub peer_timeout_ms: u64,
    pub pool_max_idle_per_peer: usize,
    /// Must stay below the peer's idle close (brama: `limits.header_read_timeout_ms`).
    pub pool_idle_timeout_ms: u64,
}

impl Default for ProxySection {
    fn default() -> Self {
        ProxySection {
            peer_port: 5500,
            connect_timeout_ms: 5_000,
            peer_timeout_ms: 120_000,
            pool_max_idle_per_peer: 256,
            pool_idle_timeout_ms: 5_000,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// Authentication certificate and key of this server (PEM), used between security servers.
    pub auth_cert: String,
    pub auth_key: String,
    /// Certificate and key of the information-system facing HTTPS listener.
    pub internal_cert: Option<String>,
    pub internal_key: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Connection {
    /// X-Road NOSSL: HTTP or HTTPS.
    #[default]
    Http,
    /// X-Road SSLNOAUTH: HTTPS only.
    Https,
    /// X-Road SSLAUTH: HTTPS with a pinned information-system certificate.
    HttpsAuth,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSection {
    /// `INSTANCE/CLASS/CODE[/SUBSYSTEM]`.
    pub id: String,
    #[serde(default)]
    pub connection: Connection,
    /// PEM certificates of information systems allowed in with `https-auth`.
    #[serde(default)]
    pub is_certs: Vec<String>,
    #[serde(default)]
    pub services: Vec<ServiceSection>,
    #[serde(default)]
    pub access: Vec<AccessSection>,
    #[serde(default)]
    pub local_groups: Vec<LocalGroupSection>,
    /// REST header dialect of this client's information systems: `auto`, `xroad` or `uxp`.
    #[serde(default)]
    pub rest_dialect: crate::rest::dialect::DialectSetting,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSection {
    pub code: String,
    pub version: Option<String>,
    pub url: String,
    #[serde(default = "default_service_timeout")]
    pub timeout_ms: u64,
    #[serde(default)]
    pub disabled: bool,
    pub disabled_notice: Option<String>,
    /// Where the WSDL of this service is fetched from (`getWsdl`): an http(s) URL.
    pub wsdl: Option<String>,
    /// PEM CA certificate(s) that an `https://` service's certificate must chain to; the host name
    /// in the URL must match the certificate.
    pub tls_ca: Option<String>,
    /// `wsdl` (SOAP, the default), `rest` or `openapi` (REST described by `openapi`).
    #[serde(rename = "type", default)]
    pub kind: ServiceKind,
    /// OpenAPI 3 description (file, relative to this file) of an `openapi` service: its endpoints
    /// are generated from it and `getOpenAPI` returns it.
    pub openapi: Option<String>,
    /// REST endpoints (method and path glob) that access rights can name, besides the base
    /// endpoint (`*` `**`) every service has.
    #[serde(default)]
    pub endpoints: Vec<crate::rest::acl::Endpoint>,
}

/// How a service is called.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceKind {
    #[default]
    Wsdl,
    Rest,
    Openapi,
}

impl ServiceKind {
    pub(crate) fn is_rest(self) -> bool {
        self != ServiceKind::Wsdl
    }

    /// The name used in REST metaservice answers (`service_type`).
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceKind::Wsdl => "WSDL",
            ServiceKind::Rest => "REST",
            ServiceKind::Openapi => "OPENAPI",
        }
    }
}

fn default_service_timeout() -> u64 {
    60_000
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessSection {
    /// Service code; the version is ignored, as in X-Road.
    pub service: String,
    /// `MEMBER:I/C/M`, `SUBSYSTEM:I/C/M/S`, `GLOBALGROUP:I/CODE` or `LOCALGROUP:CODE`.
    pub subjects: Vec<String>,
    /// REST only: the endpoint the right is for (default `*`, any method).
    pub method: Option<String>,
    /// REST only: the endpoint path glob (default `**`, any path).
    pub path: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalGroupSection {
    pub code: String,
    #[serde(default)]
    pub description: String,
    pub members: Vec<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulatorSection {
    #[serde(default = "yes")]
    pub enabled: bool,
    pub listen: String,
    #[serde(default)]
    pub latency_ms: u64,
    #[serde(default)]
    pub error_rate: f64,
    pub wsdl_dir: String,
    /// Directory of the OpenAPI descriptions served at `/openapi/<name>` (relative to this
    /// file); unset: the descriptions of `openapi/` built into the binary.
    #[serde(default)]
    pub openapi_dir: Option<String>,
    /// How long DRACS keeps a birth registration "in progress".
    #[serde(default)]
    pub dracs_processing_ms: u64,
    /// Per registry (WSDL name): latency, error rate, maintenance windows.
    #[serde(default)]
    pub registries: std::collections::BTreeMap<String, SimRegistrySection>,
    /// The test CA's OCSP responder at `POST /ocsp` (PEM files relative to this file).
    pub ocsp_responder: Option<SimOcspSection>,
    /// A test central server publishing a global configuration, signed, on a listener of its
    /// own (`GET /internalconf`): what `[globalconf] anchor` downloads in a test network.
    pub central: Option<SimCentralSection>,
    /// The test CA's time-stamping authority at `POST /tsa` (PEM files relative to this file).
    pub tsa: Option<SimTsaSection>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimTsaSection {
    /// The TSA's certificate (critical EKU timeStamping) and key.
    pub cert: String,
    pub key: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimCentralSection {
    pub listen: String,
    /// The global configuration it publishes (relative to this file).
    pub dir: String,
    /// Its self-signed configuration signing certificate and key (PEM), the anchor's.
    pub cert: String,
    pub key: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimOcspSection {
    /// The CA whose certificates it answers for.
    pub ca_cert: String,
    /// The responder's certificate (issued by the CA, id-kp-OCSPSigning) and key.
    pub cert: String,
    pub key: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimRegistrySection {
    pub latency_ms: Option<u64>,
    pub error_rate: Option<f64>,
    #[serde(default)]
    pub outages: Vec<OutageSection>,
}

/// Milliseconds after the simulator started.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutageSection {
    pub from_ms: u64,
    pub until_ms: u64,
}

fn yes() -> bool {
    true
}

/// Message signing: tokens (where keys live) and one signing key per member. PINs never live
/// here: they come from the environment variable or file a token names.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignerSection {
    /// Digest of message parts and references, sent as `x-hash-algorithm`.
    pub hash_algorithm: String,
    /// The digest message signatures are made over (`SHA-256`, `SHA-384`, `SHA-512`), as
    /// X-Road's `signature-digest-algorithm-id`. Unset: SHA-256 for P-256 keys (Trembita's
    /// profile), SHA-512 for RSA keys (X-Road's default). Peers verify every one of them.
    pub signature_digest: Option<String>,
    /// Most messages one signature covers.
    pub max_batch: usize,
    /// Under load (messages arriving closer together than this), how long a free session may
    /// wait for more messages before signing a smaller batch; 0 signs whatever is queued at
    /// once (X-Road's behaviour). Fewer token calls, and one signature per batch to verify.
    pub batch_wait_us: u64,
    /// A request waiting longer than this for a signature fails (`Signer.Timeout`).
    pub timeout_ms: u64,
    /// Sessions per key unless a key says otherwise.
    pub sessions: usize,
    pub tokens: Vec<TokenSection>,
    pub keys: Vec<KeySection>,
}

impl Default for SignerSection {
    fn default() -> Self {
        SignerSection {
            hash_algorithm: "SHA-512".into(),
            signature_digest: None,
            max_batch: 4096,
            batch_wait_us: 1000,
            timeout_ms: 60_000,
            sessions: 2,
            tokens: Vec::new(),
            keys: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenSection {
    pub name: String,
    /// `software` (PKCS#8 files) or `pkcs11`.
    pub kind: String,
    /// Software: directory of `sign-<CLASS>-<CODE>.key`/`.pem`, used for hosted members that
    /// have no `[[signer.keys]]` entry.
    pub keys_dir: Option<String>,
    /// PKCS#11: the module (`.so`) path.
    pub module: Option<String>,
    /// PKCS#11: token label or serial number (never a slot index).
    pub token_label: Option<String>,
    pub token_serial: Option<String>,
    pub pin_env: Option<String>,
    pub pin_file: Option<String>,
    /// PKCS#11: environment variables set before the module loads (`PKCS11_PROXY_SOCKET`...).
    pub env: std::collections::BTreeMap<String, String>,
    /// PKCS#11: mechanism override (`CKM_ECDSA`, `CKM_RSA_PKCS`).
    pub mechanism: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeySection {
    /// `INSTANCE/CLASS/CODE` of the member whose key this is.
    pub member: String,
    /// Name of a `[[signer.tokens]]` entry.
    pub token: String,
    /// Software: the PKCS#8 key file. PKCS#11: unused.
    pub file: Option<String>,
    /// PKCS#11: `CKA_LABEL` of the private key.
    pub label: Option<String>,
    /// PKCS#11: hex `CKA_ID` of the private key.
    pub id: Option<String>,
    /// The signing certificate (PEM; intermediates may follow the leaf).
    pub cert: String,
    pub sessions: Option<usize>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSection {
    /// `text` or `json`.
    pub format: String,
    /// A `tracing` filter such as `info` or `brama=debug`; `RUST_LOG` wins when set.
    pub level: String,
    /// Message log: each signed request sent and verified response received by the client
    /// proxy is written here as an ASiC-E container (off when unset).
    pub messages_dir: Option<String>,
    /// How often logged records are time-stamped, in one batch (X-Road's
    /// `timeStampingIntervalSeconds`, 60).
    pub timestamp_interval_s: u64,
    /// New messages are refused once the oldest unstamped record is older than this
    /// (`acceptable-timestamp-failure-period`, 14,400 s); 0 never refuses.
    pub acceptable_timestamp_failure_period_s: u64,
    /// Time for a TSA to answer.
    pub timestamp_timeout_ms: u64,
    /// Records one time-stamp covers at most; a round takes as many tokens as the backlog needs,
    /// so this bounds memory, never how much a round stamps.
    pub timestamp_records_per_token: usize,
    /// `batch` (X-Road's default: every interval, one token for all waiting records) or
    /// `single` (each record stamped before its message goes on, `timestamp-immediately`).
    pub timestamping: String,
    /// Where time-stamped records are archived (zip files chained by `linkinginfo`); unset:
    /// not archived.
    pub archive_dir: Option<String>,
    /// How often records are archived (X-Road's `archive-interval`, every 6 hours).
    pub archive_interval_s: u64,
    /// An archive file is closed at about this size (`archive-max-filesize`, 32 MiB).
    pub archive_max_file_bytes: u64,
    /// Run (`sh -c`) after each run that wrote archives (`archive-transfer-command`).
    pub archive_command: Option<String>,
    /// How long archived records stay for `GET /asic` (`keep-records-for`, 30 days).
    pub keep_archived_s: u64,
    /// Whether message bodies are logged (X-Road's `message-body-logging`): off, the logged copy
    /// has the SOAP Body emptied and no attachments or REST body (so its signature no longer
    /// verifies).
    pub body_logging: bool,
    /// Service providers (`INSTANCE/CLASS/CODE/SUBSYSTEM`) for whose services the opposite of
    /// `body_logging` holds (X-Road's `enabled-`/`disabled-body-logging-…-producer-subsystems`).
    pub body_logging_except: Vec<String>,
}

impl Default for LogSection {
    fn default() -> Self {
        LogSection {
            format: "text".into(),
            level: "info".into(),
            messages_dir: None,
            timestamp_interval_s: 60,
            acceptable_timestamp_failure_period_s: 14_400,
            timestamp_timeout_ms: 20_000,
            timestamping: "batch".into(),
            timestamp_records_per_token: 10_000,
            archive_dir: None,
            archive_interval_s: 21_600,
            archive_max_file_bytes: 32 * 1024 * 1024,
            archive_command: None,
            keep_archived_s: 30 * 86_400,
            body_logging: true,
            body_logging_except: Vec::new(),
        }
    }
}
