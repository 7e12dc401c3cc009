//! Registry simulator: a plain HTTP SOAP service standing in for the information systems behind
//! a provider security server.
//!
//! Owns: test tooling only; the `brama` binary carries it behind its default `sim` feature.
//! Must not depend on: the gateway, the router or the binary (it is handed its files through
//! [`ConfigFiles`]); only `brama-xroad`, `brama-wsdl`, `brama-transport` and `brama-testkit` (the
//! test CA's OCSP responder) among brama's crates. Nothing in the gateway or the router may
//! depend on it.
//! - `POST /ocsp`: the test CA's OCSP responder, when [`SimConfig::ocsp`] is set (`ocsp`).
//! - `POST /tsa`: a time-stamping authority, when [`SimConfig::tsa`] is set (`tsa`).
//!
//! - `POST` (any path), `text/xml` or `multipart/related` (SOAP part first): replies with the
//!   request's Envelope start tag and SOAP Header copied byte for byte (X-Road services must
//!   echo every header field in order) and a `<op>Response` body. `getBirthRecord` gets a
//!   made-up but deterministic DRACS birth record (`wsdl/dracs.wsdl`); any other operation gets
//!   the request wrapper's content echoed back. The reply is `text/xml; charset=UTF-8`; a
//!   multipart request gets a multipart reply (same SwA/MTOM style) with its attachments.
//! - `GET /wsdl/<name>.wsdl` and `GET /<name>?wsdl` serve the WSDLs in [`SimConfig::wsdls`],
//!   loaded once at start by [`load_wsdls`].
//! - Faults are SOAP 1.1 with HTTP 500, as ordinary SOAP services send them: `Client` for a
//!   request that cannot be understood, `Server.InternalError` for simulated failures
//!   ([`SimConfig::error_rate`], or the request header `x-sim-fault: 1`).
//! - The REST side (`rest`): the eHealth declarations lookup, OpenAPI descriptions, an echo of
//!   any method and body, simulated statuses, and the registry operations as JSON under `/rest/`.
//!   A `POST` to `/echo` is SOAP when it carries a SOAP content type and no X-Road REST header
//!   (see `rest::route`), so SOAP services configured at `/echo` keep working.

mod declarations;
mod dracs;
mod echo;
mod envelope;
mod files;
mod ocsp;
mod openapi_files;
mod operations;
mod publish;
mod registries;
mod rest;
#[cfg(test)]
mod tests;
mod tsa;

pub use publish::serve_globalconf;

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::{Body as _, Incoming};
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use rand::Rng;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use self::echo::ECHO_MAX_BODY;
use self::envelope::Wrapper;
pub use self::files::ConfigFiles;
pub use self::openapi_files::{load_openapi, OpenApiFiles};
use brama_transport::listener::{self, ListenerLimits, ListenerStats};
use brama_xroad::message::mime::{self, ContentType, MultipartWriter, Part};

/// The simulator's response bodies: whole buffers, or an echo streamed through (which fails
/// when its request body breaks off or grows past the limit).
pub(crate) type Body = brama_transport::body::Body;

/// Largest request body accepted.
pub(crate) const MAX_BODY: usize = 32 * 1024 * 1024;
/// A client that has not sent its request headers by then is disconnected.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections served at once; more wait (idle ones are closed to make room).
const MAX_CONNECTIONS: usize = 16_384;
/// How long `serve` waits for in-flight requests after the shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

const TEXT_XML: &str = "text/xml; charset=UTF-8";
const TEXT_PLAIN: &str = "text/plain; charset=UTF-8";

/// How the simulator behaves.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Added before every SOAP answer, to look like a real registry.
    pub latency: Duration,
    /// Fraction (0..=1) of well-formed requests answered with a `Server.InternalError` fault.
    pub error_rate: f64,
    /// The `.wsdl` (and `.xsd`) files served over `GET`.
    pub wsdls: Wsdls,
    /// How long DRACS answers `getBirthRegistrationStatus` with "in progress".
    pub dracs_processing: Duration,
    /// Behaviour of single registries (by WSDL name: ehealth, dracs, dms, dps, msp, rtg).
    pub registries: HashMap<String, RegistrySim>,
    /// The test CA's OCSP responder, answering `POST /ocsp`, when set.
    pub ocsp: Option<Arc<brama_testkit::ocsp::Responder>>,
    /// A time-stamping authority, answering `POST /tsa`, when set.
    pub tsa: Option<Arc<dyn brama_testkit::tsa::TimeStampAuthority>>,
}

/// One registry's own behaviour; unset values fall back to the simulator's.
#[derive(Clone, Debug, Default)]
pub struct RegistrySim {
    pub latency: Option<Duration>,
    pub error_rate: Option<f64>,
    /// Maintenance windows (from, until) after the simulator started: HTTP 503 with the fault
    /// `Server.Maintenance`.
    pub outages: Vec<(Duration, Duration)>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            latency: Duration::ZERO,
            error_rate: 0.0,
            wsdls: Wsdls::default(),
            dracs_processing: Duration::ZERO,
            registries: HashMap::new(),
            ocsp: None,
            tsa: None,
        }
    }
}

/// WSDL and schema files by file name, and the OpenAPI descriptions served beside them. Loaded
/// up front so the simulator also runs from the configuration compiled into the binary, and a
/// request never touches the file system.
#[derive(Clone, Debug, Default)]
pub struct Wsdls {
    files: HashMap<String, Bytes>,
    openapi: OpenApiFiles,
}

impl Wsdls {
    /// Every `*.wsdl` and `*.xsd` file directly inside `dir`.
    pub(crate) fn from_dir(dir: &Path) -> std::io::Result<Wsdls> {
        let files = servable_files(dir, "WSDL", servable)?
            .into_iter()
            .map(|(name, _, bytes)| (name, Bytes::from(bytes)))
            .collect();
        Ok(Wsdls {
            files,
            openapi: OpenApiFiles::default(),
        })
    }

    /// Adds or replaces one file. Names that could not be requested are refused.
    pub fn insert(&mut self, name: &str, content: impl Into<Bytes>) -> bool {
        let ok = servable(name);
        if ok {
            self.files.insert(name.to_string(), content.into());
        }
        ok
    }

    pub fn get(&self, name: &str) -> Option<&Bytes> {
        self.files.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }

    /// WSDL and schema files (the OpenAPI descriptions are counted by [`OpenApiFiles::len`]).
    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The OpenAPI descriptions served at `GET /openapi/<name>`.
    pub fn openapi(&self) -> &OpenApiFiles {
        &self.openapi
    }

    /// Serves `files` as the OpenAPI descriptions instead of the current ones (those of
    /// `simulator.openapi_dir`, see [`load_openapi`]).
    pub fn with_openapi(mut self, files: OpenApiFiles) -> Wsdls {
        self.openapi = files;
        self
    }
}

/// The WSDLs in `dir`, a directory relative to the configuration (`simulator.wsdl_dir`). An
/// embedded configuration cannot be listed, so there the files the binary carries are looked up
/// by name.
///
/// The OpenAPI descriptions of `openapi/` compiled into the binary come along
/// ([`OpenApiFiles::builtin`]), so every simulator serves them without configuration;
/// [`Wsdls::with_openapi`] replaces them with those of `simulator.openapi_dir`.
pub fn load_wsdls(source: &(impl ConfigFiles + ?Sized), dir: &str) -> std::io::Result<Wsdls> {
    let wsdls = match source.dir() {
        Some(base) => Wsdls::from_dir(&base.join(dir))?,
        None => {
            let mut wsdls = Wsdls::default();
            for name in EMBEDDED_WSDLS {
                match source.read(&format!("{}/{name}", dir.trim_end_matches('/'))) {
                    Ok(bytes) => {
                        wsdls.insert(name, bytes);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
            wsdls
        }
    };
    Ok(wsdls.with_openapi(OpenApiFiles::builtin()))
}

/// The WSDLs looked up by name in a configuration that cannot be listed (the binary's
/// embedded default carries these).
const EMBEDDED_WSDLS: &[&str] = &[
    "dracs.wsdl",
    "ehealth.wsdl",
    "dms.wsdl",
    "dps.wsdl",
    "msp.wsdl",
    "rtg.wsdl",
];

struct Answering {
    stats: Arc<SimStats>,
    id: String,
}

impl Drop for Answering {
    fn drop(&mut self) {
        let mut a = self
            .stats
            .answering
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(n) = a.get_mut(&self.id) {
            *n -= 1;
            if *n == 0 {
                a.remove(&self.id);
            }
        }
    }
}

/// What the simulator has seen; shared with the caller so tests and benchmarks can check that
/// every message reached the registry exactly once.
#[derive(Debug, Default)]
pub struct SimStats {
    requests: AtomicU64,
    faults: AtomicU64,
    wsdl_requests: AtomicU64,
    rest_requests: AtomicU64,
    ids: Mutex<HashSet<String>>,
    /// Requests whose X-Road id had been seen before: a delivery sent again (its sender could
    /// not know it had arrived), recognisable by its id.
    repeats: AtomicU64,
    /// X-Road ids of SOAP requests being answered now (within the latency), and how many times
    /// a request arrived while another with its id was still being answered: two senders at
    /// once, which leases must prevent.
    answering: Mutex<HashMap<String, u32>>,
    overlapping: AtomicU64,
    /// Per operation: requests, and X-Road ids per distinct request content.
    ops: Mutex<HashMap<String, OpStats>>,
}

#[derive(Debug, Default)]
struct OpStats {
    requests: u64,
    /// SHA-256 of the Body content → the X-Road ids it came with (at most a few).
    ids_by_content: HashMap<[u8; 32], Vec<String>>,
}

/// Distinct request contents remembered per operation, and distinct X-Road ids remembered:
/// beyond these new ones are not tracked, so a simulator left under load for hours stays
/// bounded (about 25 MiB each when full) while every test and benchmark run fits well inside.
const MAX_TRACKED_CONTENTS: usize = 100_000;
const MAX_TRACKED_IDS: usize = 100_000;

impl SimStats {
    /// Registry requests received, whatever the outcome: every SOAP `POST` and every `POST
    /// /rest/<operation>`.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// SOAP faults sent (malformed requests and simulated failures), and refusals of `/rest/`
    /// operations.
    pub fn faults(&self) -> u64 {
        self.faults.load(Ordering::Relaxed)
    }

    /// WSDL and schema `GET`s answered with a file.
    pub fn wsdl_requests(&self) -> u64 {
        self.wsdl_requests.load(Ordering::Relaxed)
    }

    /// Requests answered by the REST side (every route of `rest`, whatever the outcome).
    pub(crate) fn rest_requests(&self) -> u64 {
        self.rest_requests.load(Ordering::Relaxed)
    }

    /// Distinct X-Road message ids seen (the `xrd:id` SOAP header field, the `x-road-id` HTTP
    /// header of REST requests), counting at most the first `MAX_TRACKED_IDS`.
    pub fn distinct_ids(&self) -> usize {
        self.lock_ids().len()
    }

    /// Requests that came again under an X-Road id already seen.
    pub fn repeats(&self) -> u64 {
        self.repeats.load(Ordering::Relaxed)
    }

    /// Requests that arrived while another with the same X-Road id was still being answered.
    pub fn overlapping(&self) -> u64 {
        self.overlapping.load(Ordering::Relaxed)
    }

    /// Deliveries the registry saw more than once as separate deliveries: the same request under
    /// two X-Road ids (not recognisable as a repeat), or one id sent twice at once.
    pub fn duplicated(&self) -> u64 {
        let under_two_ids = self
            .lock_ops()
            .values()
            .flat_map(|o| o.ids_by_content.values())
            .filter(|ids| ids.len() > 1)
            .count() as u64;
        under_two_ids + self.overlapping()
    }

    /// Whether a message with this X-Road id has arrived.
    pub fn saw_id(&self, id: &str) -> bool {
        self.lock_ids().contains(id)
    }

    /// Requests per operation (wrapper element name).
    pub fn operation_requests(&self, op: &str) -> u64 {
        self.lock_ops().get(op).map_or(0, |o| o.requests)
    }

    /// Distinct request contents seen for `op` (one per delivery when every delivery's content
    /// differs).
    pub fn distinct_requests(&self, op: &str) -> usize {
        self.lock_ops()
            .get(op)
            .map_or(0, |o| o.ids_by_content.len())
    }

    /// The most X-Road ids any one request content came with: 1 means no request was ever
    /// sent again under a new id.
    pub fn max_ids_per_request(&self) -> usize {
        self.lock_ops()
            .values()
            .flat_map(|o| o.ids_by_content.values().map(Vec::len))
            .max()
            .unwrap_or(0)
    }

    fn record_request(&self, op: &str, content: &str, id: Option<&str>) {
        let digest: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(content.as_bytes()).into();
        let mut ops = self.lock_ops();
        let o = ops.entry(op.to_string()).or_default();
        o.requests += 1;
        if o.ids_by_content.len() >= MAX_TRACKED_CONTENTS && !o.ids_by_content.contains_key(&digest)
        {
            return;
        }
        let ids = o.ids_by_content.entry(digest).or_default();
        let id = id.unwrap_or("");
        if !ids.iter().any(|i| i == id) && ids.len() < 16 {
            ids.push(id.to_string());
        }
    }

    fn lock_ops(&self) -> std::sync::MutexGuard<'_, HashMap<String, OpStats>> {
        self.ops.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record_id(&self, id: &str) {
        let mut ids = self.lock_ids();
        if ids.contains(id) {
            self.repeats.fetch_add(1, Ordering::Relaxed);
        } else if ids.len() < MAX_TRACKED_IDS {
            ids.insert(id.to_string());
        }
    }

    /// A SOAP request with `id` is being answered until the guard is dropped.
    fn answering(self: &Arc<Self>, id: String) -> Answering {
        let mut a = self.answering.lock().unwrap_or_else(|e| e.into_inner());
        let n = a.entry(id.clone()).or_default();
        if *n > 0 {
            self.overlapping.fetch_add(1, Ordering::Relaxed);
        }
        *n += 1;
        Answering {
            stats: self.clone(),
            id,
        }
    }

    fn lock_ids(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        // A panic elsewhere cannot leave a HashSet half-updated in a way that matters here.
        self.ids.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct Ctx {
    cfg: SimConfig,
    ocsp: Option<ocsp::OcspSim>,
    tsa: Option<tsa::TsaSim>,
    stats: Arc<SimStats>,
    dracs: registries::Dracs,
    started: std::time::Instant,
    /// Outages started at run time (`POST /_sim/outage/<registry>?ms=N`): registry → until.
    outages: Mutex<HashMap<String, std::time::Instant>>,
}

impl Ctx {
    /// When the registry's current outage ends, if it is in one.
    fn outage_until(&self, registry: &str) -> Option<std::time::Instant> {
        let now = std::time::Instant::now();
        let runtime = self
            .outages
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(registry)
            .copied()
            .filter(|u| *u > now);
        let since = self.started.elapsed();
        let configured = self.cfg.registries.get(registry).and_then(|r| {
            r.outages
                .iter()
                .find(|(from, until)| *from <= since && since < *until)
                .map(|(_, until)| self.started + *until)
        });
        runtime.max(configured)
    }

    /// The latency and error rate of `registry` (its own, else the simulator's).
    fn behaviour(&self, registry: Option<&str>) -> (Duration, f64) {
        let own = registry.and_then(|r| self.cfg.registries.get(r));
        (
            own.and_then(|b| b.latency).unwrap_or(self.cfg.latency),
            own.and_then(|b| b.error_rate)
                .unwrap_or(self.cfg.error_rate),
        )
    }
}

/// The sentence of a maintenance answer, `left` before the registry is back.
fn maintenance_message(left: Duration) -> String {
    format!(
        "Реєстр на технічному обслуговуванні ще {} с (registry under maintenance)",
        left.as_secs() + 1
    )
}

/// Serves HTTP/1.1 (keep-alive, one task per connection) on `listener` until `shutdown`
/// completes, then stops accepting and gives open connections a short grace period to finish
/// their current request. The accept loop is the gateway's.
pub async fn serve(
    listener: TcpListener,
    cfg: SimConfig,
    stats: Arc<SimStats>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let ctx = Arc::new(Ctx {
        ocsp: cfg.ocsp.clone().map(ocsp::OcspSim::new),
        tsa: cfg.tsa.clone().map(tsa::TsaSim::new),
        cfg,
        stats,
        dracs: registries::Dracs::default(),
        started: std::time::Instant::now(),
        outages: Mutex::new(HashMap::new()),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let limits = ListenerLimits {
        max_connections: MAX_CONNECTIONS,
        max_headers: 100,
        header_read_timeout: HEADER_READ_TIMEOUT,
        first_byte_timeout: HEADER_READ_TIMEOUT,
        shutdown_grace: SHUTDOWN_GRACE,
    };
    let handler = move |req, _conn| {
        let ctx = ctx.clone();
        async move { handle(req, &ctx).await }
    };
    let stats = Arc::new(ListenerStats::default());
    listener::serve(listener, None, limits, stats, stop_rx, handler).await;
    Ok(())
}

async fn handle(req: Request<Incoming>, ctx: &Ctx) -> Response<Body> {
    if let Some(o) = &ctx.ocsp {
        let path = req.uri().path().to_string();
        if path == "/ocsp" {
            return o.answer(req).await;
        }
        if let Some(what) = path.strip_prefix("/_sim/ocsp/") {
            return o.control(what, req).await;
        }
    }
    if let Some(t) = &ctx.tsa {
        let path = req.uri().path();
        if path == "/tsa" {
            return t.answer(req).await;
        }
        if let Some(what) = path.strip_prefix("/_sim/tsa/") {
            return t.control(what, &req);
        }
    }
    if req.uri().path().starts_with("/_sim/") {
        return control(&req, ctx);
    }
    if let Some(route) = rest::route(&req) {
        return rest::handle(route, req, ctx).await;
    }
    match *req.method() {
        Method::POST => soap(req, ctx).await,
        Method::GET | Method::HEAD => get(&req, ctx).await,
        _ => {
            let mut resp = plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
            resp.headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD, POST"));
            resp
        }
    }
}

/// Test and demo control: `POST /_sim/outage/<registry>?ms=N` (0 ends it), `GET /_sim/stats`.
fn control(req: &Request<Incoming>, ctx: &Ctx) -> Response<Body> {
    let path = req.uri().path();
    if let Some(reg) = path.strip_prefix("/_sim/outage/") {
        if req.method() != Method::POST {
            return plain(StatusCode::METHOD_NOT_ALLOWED, "POST only\n");
        }
        if !registries::OPERATIONS.iter().any(|(_, r)| *r == reg) {
            return plain(StatusCode::NOT_FOUND, "no such registry\n");
        }
        let Some(ms) = query_ms(req) else {
            return plain(StatusCode::BAD_REQUEST, "use ?ms=N\n");
        };
        let until = std::time::Instant::now() + Duration::from_millis(ms);
        ctx.outages
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(reg.to_string(), until);
        tracing::info!(registry = reg, ms, "registry simulator: outage");
        return plain(StatusCode::OK, "ok\n");
    }
    if path == "/_sim/stats" {
        let s = &ctx.stats;
        let ops: serde_json::Map<String, serde_json::Value> = registries::OPERATIONS
            .iter()
            .map(|(op, _)| (op.to_string(), s.operation_requests(op).into()))
            .collect();
        let v = serde_json::json!({
            "requests": s.requests(),
            "restRequests": s.rest_requests(),
            "faults": s.faults(),
            "distinctIds": s.distinct_ids(),
            "maxIdsPerRequest": s.max_ids_per_request(),
            "repeats": s.repeats(),
            "overlapping": s.overlapping(),
            "duplicated": s.duplicated(),
            "operations": ops,
        });
        let mut resp = response(StatusCode::OK, TEXT_PLAIN, v.to_string());
        resp.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        return resp;
    }
    plain(StatusCode::NOT_FOUND, "not found\n")
}

async fn get(req: &Request<Incoming>, ctx: &Ctx) -> Response<Body> {
    let path = req.uri().path();
    let wants_wsdl = req
        .uri()
        .query()
        .is_some_and(|q| q.split('&').any(|p| p.eq_ignore_ascii_case("wsdl")));
    let file = match path.strip_prefix("/wsdl/") {
        Some(name) => name.to_string(),
        None if wants_wsdl => format!("{}.wsdl", path.trim_start_matches('/')),
        None => return plain(StatusCode::NOT_FOUND, "not found\n"),
    };
    // Only names that could have been loaded are looked up; `/` and `..` never match.
    match ctx.cfg.wsdls.get(&file).filter(|_| servable(&file)) {
        Some(bytes) => {
            ctx.stats.wsdl_requests.fetch_add(1, Ordering::Relaxed);
            response(StatusCode::OK, TEXT_XML, bytes.clone())
        }
        None => plain(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// The regular files directly inside `dir` (`what` names it in errors) whose names pass
/// `wanted`: name, path, content.
fn servable_files(
    dir: &Path,
    what: &str,
    wanted: fn(&str) -> bool,
) -> std::io::Result<Vec<(String, std::path::PathBuf, Vec<u8>)>> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        std::io::Error::new(e.kind(), format!("{what} directory {}: {e}", dir.display()))
    })?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if wanted(&name) && entry.file_type()?.is_file() {
            let bytes = std::fs::read(entry.path())?;
            files.push((name, entry.path(), bytes));
        }
    }
    Ok(files)
}

/// A `.wsdl` or `.xsd` file name of ordinary characters: one path segment, no `/`, `\`, `..`,
/// hidden files or escapes.
fn servable(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && !name.contains("..")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && (name.ends_with(".wsdl") || name.ends_with(".xsd"))
}

async fn soap(req: Request<Incoming>, ctx: &Ctx) -> Response<Body> {
    let stats = &ctx.stats;
    stats.requests.fetch_add(1, Ordering::Relaxed);
    let forced = req
        .headers()
        .get("x-sim-fault")
        .is_some_and(|v| v.as_bytes() == b"1" || v.as_bytes().eq_ignore_ascii_case(b"true"));
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();

    let too_large = (
        StatusCode::PAYLOAD_TOO_LARGE,
        "the request body is larger than 32 MiB",
    );
    // A declared Content-Length over the limit is refused before reading anything.
    let read = if req.body().size_hint().lower() > MAX_BODY as u64 {
        Err(too_large)
    } else {
        Limited::new(req.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<LengthLimitError>() {
                    too_large
                } else {
                    (
                        StatusCode::BAD_REQUEST,
                        "the request body could not be read",
                    )
                }
            })
    };
    let body = match read {
        Ok(c) => c.to_bytes(),
        Err((status, msg)) => {
            stats.faults.fetch_add(1, Ordering::Relaxed);
            return response(status, TEXT_XML, envelope::fault("Client", msg));
        }
    };

    let (registry, id, answer) = answer(&content_type, &body, ctx);
    let _answering = id.map(|id| ctx.stats.answering(id));
    let (latency, rate) = ctx.behaviour(registry);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if let Some(until) = registry.and_then(|r| ctx.outage_until(r)) {
        stats.faults.fetch_add(1, Ordering::Relaxed);
        let left = until.saturating_duration_since(std::time::Instant::now());
        return response(
            StatusCode::SERVICE_UNAVAILABLE,
            TEXT_XML,
            envelope::fault("Server.Maintenance", &maintenance_message(left)),
        );
    }
    let fail = forced || roll(rate);
    let fault = match answer {
        Ok(reply) if !fail => {
            let mut resp = response(StatusCode::OK, TEXT_XML, reply.body);
            resp.headers_mut().insert(CONTENT_TYPE, reply.content_type);
            return resp;
        }
        Ok(_) => envelope::fault(
            "Server.InternalError",
            "Simulated internal error of the registry",
        ),
        Err((code, msg)) => {
            tracing::debug!(code, reason = %msg, "registry simulator: fault");
            envelope::fault(code, &msg)
        }
    };
    stats.faults.fetch_add(1, Ordering::Relaxed);
    response(StatusCode::INTERNAL_SERVER_ERROR, TEXT_XML, fault)
}

pub(crate) fn roll(rate: f64) -> bool {
    // NaN and out-of-range rates must not reach the generator (`gen_bool` panics on them).
    if rate.is_nan() || rate <= 0.0 {
        false
    } else if rate >= 1.0 {
        true
    } else {
        rand::thread_rng().gen::<f64>() < rate
    }
}

struct Reply {
    content_type: HeaderValue,
    body: Bytes,
}

/// The reply to a request body, or the sentence of a `Client` fault. A `multipart/related`
/// request gets a `multipart/related` reply in the same style (SwA or MTOM) carrying its
/// attachments back unchanged, so attachments can be seen to travel both ways.
/// The registry a request went to, its X-Road id, and the reply or a fault's sentence.
type Answered = (
    Option<&'static str>,
    Option<String>,
    Result<Reply, (&'static str, String)>,
);

fn answer(content_type: &str, body: &Bytes, ctx: &Ctx) -> Answered {
    let mut registry = None;
    let mut id = None;
    let res = parse_and_answer(content_type, body, ctx, &mut registry, &mut id);
    (registry, id, res)
}

fn parse_and_answer(
    content_type: &str,
    body: &Bytes,
    ctx: &Ctx,
    registry: &mut Option<&'static str>,
    xroad_id: &mut Option<String>,
) -> Result<Reply, (&'static str, String)> {
    let client = |m: String| ("Client", m);
    let stats = &ctx.stats;
    // A missing type is read as SOAP: some clients omit it.
    let ct = match content_type.trim() {
        "" => None,
        t => Some(ContentType::parse(t).map_err(|e| client(e.message))?),
    };
    let param = |name: &str| ct.as_ref().and_then(|c| c.param(name)).map(str::to_string);
    let media = ct.as_ref().map_or("", |c| c.mime.as_str());
    let (xml, charset, multipart) = match media {
        // A missing type is read as SOAP: some clients omit it.
        "" | "text/xml" => (body.clone(), param("charset"), None),
        "multipart/related" => {
            let boundary = param("boundary")
                .ok_or_else(|| client("multipart/related without a boundary".into()))?;
            let parts =
                mime::parse_multipart(body, &boundary, 64).map_err(|e| client(e.message))?;
            let root = parts
                .first()
                .ok_or_else(|| client("multipart body has no parts".into()))?;
            let root_ct = match root.header("content-type") {
                None => None,
                Some(t) => Some(ContentType::parse(t).map_err(|e| client(e.message))?),
            };
            let mtom = match root_ct.as_ref().map_or("", |c| c.mime.as_str()) {
                "" | "text/xml" => false,
                "application/xop+xml" => true,
                other => {
                    return Err(client(format!(
                        "the first MIME part is '{other}', not SOAP"
                    )))
                }
            };
            if let Some(cte) = root.header("content-transfer-encoding") {
                if !matches!(
                    cte.to_ascii_lowercase().as_str(),
                    "8bit" | "7bit" | "binary"
                ) {
                    return Err(client(format!(
                        "unsupported Content-Transfer-Encoding '{cte}' of the SOAP part"
                    )));
                }
            }
            let charset = root_ct
                .as_ref()
                .and_then(|c| c.charset())
                .map(str::to_string);
            (root.body.clone(), charset, Some((parts, mtom)))
        }
        other => return Err(client(format!("unsupported Content-Type '{other}'"))),
    };
    let text = decode(&xml, charset.as_deref()).map_err(client)?;
    let env = envelope::parse(&text).map_err(client)?;
    let wrapper = env.wrapper().map_err(client)?;
    *registry = registries::registry_of(wrapper.local);
    stats.record_request(wrapper.local, wrapper.inner, env.xroad_id());
    if let Some(id) = env.xroad_id() {
        stats.record_id(id);
        *xroad_id = Some(id.to_string());
    }
    let xml = envelope::reply(&env, &body_content(&wrapper, ctx)?);
    match multipart {
        None => Ok(Reply {
            content_type: HeaderValue::from_static(TEXT_XML),
            body: Bytes::from(xml),
        }),
        Some((parts, mtom)) => multipart_reply(xml.as_bytes(), &parts, mtom).map_err(client),
    }
}

fn multipart_reply(xml: &[u8], parts: &[Part], mtom: bool) -> Result<Reply, String> {
    let boundary = format!("brama-sim-{:032x}", rand::random::<u128>());
    // The request's root Content-ID is reused when it can be quoted in a header parameter.
    let cid = parts[0]
        .header("content-id")
        .filter(|c| {
            c.bytes()
                .all(|b| (0x21..0x7f).contains(&b) && b != b'"' && b != b'\\')
        })
        .map(str::to_string)
        .or_else(|| mtom.then(|| "<root.message@brama.sim>".to_string()));
    let (outer, root_type) = if mtom {
        (
            format!(
                "multipart/related; type=\"application/xop+xml\"; start-info=\"text/xml\"; boundary=\"{boundary}\""
            ),
            "application/xop+xml; charset=UTF-8; type=\"text/xml\"",
        )
    } else {
        (
            format!("multipart/related; type=\"text/xml\"; charset=UTF-8; boundary=\"{boundary}\""),
            TEXT_XML,
        )
    };
    let outer = match &cid {
        Some(c) => format!("{outer}; start=\"{c}\""),
        None => outer,
    };
    let mut root_headers = vec![
        format!("Content-Type: {root_type}"),
        "Content-Transfer-Encoding: 8bit".to_string(),
    ];
    if let Some(c) = &cid {
        root_headers.push(format!("Content-ID: {c}"));
    }
    Ok(Reply {
        content_type: HeaderValue::from_str(&outer)
            .map_err(|_| "cannot build the multipart Content-Type".to_string())?,
        body: {
            let size = xml.len() + parts.iter().map(|p| p.body.len() + 256).sum::<usize>();
            let mut w = MultipartWriter::new(boundary, size);
            w.raw_part(root_headers.join("\r\n").as_bytes(), xml);
            for p in &parts[1..] {
                w.raw_part(&p.raw_headers, &p.body);
            }
            w.finish()
        },
    })
}

fn body_content(w: &Wrapper<'_>, ctx: &Ctx) -> Result<String, (&'static str, String)> {
    let op = w.local;
    if op == dracs::OPERATION {
        let inner = dracs::answer(&dracs::parse_query(w.inner).map_err(|m| ("Client", m))?)
            .map_err(|m| ("Client", m))?;
        let (open, close) = envelope::own_wrapper(w);
        return Ok(format!("{open}{inner}\n        {close}"));
    }
    if registries::OPERATIONS.iter().any(|(o, _)| *o == op) {
        let inner = registries::answer(op, w.inner, &ctx.dracs, ctx.cfg.dracs_processing)
            .map_err(|r| (r.code, r.message))?;
        let (open, close) = envelope::own_wrapper(w);
        return Ok(format!("{open}{inner}{close}"));
    }
    Ok(envelope::echo_body(w))
}

/// The request as UTF-8. The charset comes from `Content-Type`, else the XML declaration, else
/// UTF-8 (PR-MESS §1.6). ISO-8859-1 maps byte for byte onto the first 256 code points.
fn decode<'a>(bytes: &'a [u8], charset: Option<&str>) -> Result<Cow<'a, str>, String> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let charset = match charset {
        Some(c) => c.trim().to_ascii_lowercase(),
        None => declared_encoding(bytes).unwrap_or_default(),
    };
    match charset.as_str() {
        "" | "utf-8" | "utf8" => std::str::from_utf8(bytes)
            .map(Cow::Borrowed)
            .map_err(|_| "the request is not valid UTF-8".to_string()),
        "iso-8859-1" | "iso8859-1" | "latin1" | "l1" | "us-ascii" | "ascii" => {
            Ok(Cow::Owned(bytes.iter().map(|&b| char::from(b)).collect()))
        }
        other => Err(format!("unsupported charset '{other}'")),
    }
}

/// `encoding` of the XML declaration, lower-cased.
fn declared_encoding(bytes: &[u8]) -> Option<String> {
    let head = bytes.get(..bytes.len().min(256))?;
    if !head.starts_with(b"<?xml") {
        return None;
    }
    let end = head.windows(2).position(|w| w == b"?>")?;
    let decl = String::from_utf8_lossy(&head[..end]);
    let rest = &decl[decl.find("encoding")? + "encoding".len()..];
    let rest = rest.trim_start().strip_prefix('=')?.trim_start();
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let value = &rest[1..];
    Some(value[..value.find(quote)?].to_ascii_lowercase())
}

/// The `ms=N` of a control request's query.
fn query_ms<B>(req: &Request<B>) -> Option<u64> {
    req.uri()
        .query()?
        .split('&')
        .find_map(|p| p.strip_prefix("ms="))?
        .parse()
        .ok()
}

/// An outage switched on at run time for a while (`POST …/outage?ms=N`; 0 ends it).
#[derive(Default)]
struct Outage(Mutex<Option<std::time::Instant>>);

impl Outage {
    fn start(&self, ms: u64) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(std::time::Instant::now() + Duration::from_millis(ms));
    }

    fn active(&self) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some_and(|u| std::time::Instant::now() < u)
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    response(status, TEXT_PLAIN, text)
}

/// A whole buffer as a response body.
pub(crate) fn full(body: impl Into<Bytes>) -> Body {
    brama_transport::body::full(body)
}

pub(crate) fn response(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut resp = Response::new(full(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}
