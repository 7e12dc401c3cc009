//! The running security server: client proxy (information systems in), server proxy (peer
//! security servers in), admin listener.

pub mod admin;
pub mod client;
pub mod meta;
pub mod mount;
mod process_metrics;
pub mod reload;
pub mod rest_client;
pub mod rest_server;
pub mod server;
pub mod wire;

// The accept loop and the body reader live in brama-transport; re-exported where they were.
pub use brama_transport::{body, listener};

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::config::ServerConf;
use brama_sign::{Signer, Verifier};
use brama_transport::live::Live;
use brama_transport::metrics::Metrics;
use brama_transport::tls::{self, LiveTrust, PeerTrust};
use brama_transport::Pool;
use brama_xroad::globalconf::{auth_cert_hash, GlobalConf};
use brama_xroad::identifiers::{ClientId, SecurityServerId};
use brama_xroad::message::soap::SoapLimits;
use listener::ListenerLimits;

/// What the global configuration in force makes of peers and signatures. Replaced whole when a
/// new one is downloaded; a request works with the one it started with.
pub struct Trusted {
    pub gc: Arc<GlobalConf>,
    pub verifier: Verifier,
    /// The downloaded directory's `Expire-date` (Unix seconds; `i64::MAX` for a configuration
    /// read from a directory that was not downloaded). Each download of the same files moves it.
    expires_at: std::sync::atomic::AtomicI64,
}

impl Trusted {
    fn new(
        gc: Arc<GlobalConf>,
        xml: brama_xroad::xml::XmlLimits,
        expires_at: Option<i64>,
    ) -> Trusted {
        Trusted {
            verifier: Verifier::new(&gc, xml),
            gc,
            expires_at: std::sync::atomic::AtomicI64::new(expires_at.unwrap_or(i64::MAX)),
        }
    }

    /// The `Expire-date` in force (Unix seconds), when the configuration was downloaded.
    pub fn expires_at(&self) -> Option<i64> {
        let at = self.expires_at.load(std::sync::atomic::Ordering::Relaxed);
        (at != i64::MAX).then_some(at)
    }

    /// A new download of the same files: only the expiry moves (the caches stay warm).
    pub fn extend(&self, expires_at: i64) {
        self.expires_at
            .store(expires_at, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Shared state of one running server.
pub struct Gateway {
    pub(crate) conf: ServerConf,
    /// The hosted clients in force: `conf.clients` at start, then each reload's.
    hosted: Live<HashMap<ClientId, crate::config::HostedClient>>,
    /// Reload requests of the admin listener, for whoever re-reads the file.
    reloads: reload::Requests,
    /// The global configuration in force, for the proxies and signatures.
    pub(crate) trusted: Live<Trusted>,
    /// The same, for the TLS verifiers.
    pub(crate) peers: LiveTrust,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) pool: Arc<Pool>,
    peer_tls: Mutex<HashMap<SecurityServerId, Arc<rustls::ClientConfig>>>,
    pub(crate) signer: Signer,
    pub(crate) soap_limits: SoapLimits,
    /// Set through the admin listener; the health check then answers 503.
    pub(crate) maintenance: AtomicBool,
    /// Routes mounted by another layer (the router's API), set once before the listeners start.
    pub(crate) mounted: std::sync::OnceLock<Arc<dyn mount::Mount>>,
    /// Where REST bodies are spooled, and their size limit.
    pub(crate) spool: brama_transport::spool::SpoolConfig,
    /// How request bodies are received: time, rate and the shared memory budget.
    pub(crate) intake: body::Intake,
    /// Connection counters of each listener.
    pub(crate) listeners: Listeners,
    pub(crate) message_log: Option<crate::message_log::MessageLog>,
    /// The server's own OCSP responses.
    pub(crate) own_ocsp: Arc<crate::ocsp::OwnOcsp>,
    /// Peer servers' OCSP, checked before each request to them.
    pub(crate) peer_ocsp: Arc<crate::ocsp::PeerOcsp>,
    /// Downloads of the global configuration, when `[globalconf] anchor` is set.
    pub(crate) confclient: Option<Arc<crate::confclient::refresh::ConfClient>>,
}

impl Gateway {
    pub fn new(conf: ServerConf) -> Result<Arc<Gateway>, String> {
        let gc = Arc::new(conf.globalconf.clone());
        let p = &conf.file.proxy;
        let l = &conf.file.limits;
        let signer = Signer::start(&conf.signer)?;
        let log = &conf.file.log;
        let message_log = match &log.messages_dir {
            Some(d) => Some(
                crate::message_log::MessageLog::open(
                    conf.source.path(d),
                    crate::message_log::Settings {
                        interval: Duration::from_secs(log.timestamp_interval_s.max(1)),
                        acceptable_failure: (log.acceptable_timestamp_failure_period_s > 0).then(
                            || Duration::from_secs(log.acceptable_timestamp_failure_period_s),
                        ),
                        timeout: Duration::from_millis(log.timestamp_timeout_ms.max(1)),
                        per_token: log.timestamp_records_per_token.max(1),
                        single: match log.timestamping.as_str() {
                            "batch" => false,
                            "single" => true,
                            other => {
                                return Err(format!(
                                    "log.timestamping: '{other}' is not 'batch' or 'single'"
                                ))
                            }
                        },
                        body_logging: log.body_logging,
                        body_logging_except: log
                            .body_logging_except
                            .iter()
                            .map(|s| {
                                ClientId::parse_path(s)
                                    .map_err(|e| format!("log.body_logging_except '{s}': {e}"))
                            })
                            .collect::<Result<_, _>>()?,
                    },
                    log.archive_dir.as_ref().map(|a| {
                        crate::message_log::archiver::ArchiveSettings {
                            dir: conf.source.path(a),
                            interval: Duration::from_secs(log.archive_interval_s.max(1)),
                            max_file_bytes: log.archive_max_file_bytes.max(1),
                            command: log.archive_command.clone(),
                            keep_archived: Duration::from_secs(log.keep_archived_s),
                        }
                    }),
                    conf.shared_store.as_ref().map(|s| s.pg()).as_ref(),
                )
                .map_err(|e| format!("log.messages_dir {d}: {e}"))?,
            ),
            None => None,
        };
        let confclient = crate::confclient::refresh::ConfClient::from_conf(&conf)?.map(Arc::new);
        let expires_at = confclient
            .as_ref()
            .and_then(|c| crate::confclient::store::expiry(&c.dir));
        let trusted = Live::new(Trusted::new(gc.clone(), l.xml(), expires_at));
        let store = trusted.current().verifier.trust.clone();
        let pool = Arc::new(Pool::new(
            p.pool_max_idle_per_peer,
            Duration::from_millis(p.pool_idle_timeout_ms),
            Duration::from_millis(p.connect_timeout_ms),
        ));
        let section = &conf.file.ocsp;
        let auth_chain: Vec<Vec<u8>> = conf.auth_certs.iter().map(|c| c.to_vec()).collect();
        let signing: Vec<_> = signer
            .keys()
            .map(|k| {
                let cert = k.cert();
                let chain = std::iter::once(cert.der.clone())
                    .chain(cert.chain.iter().cloned())
                    .collect();
                (k.member.clone(), chain)
            })
            .collect();
        let own_ocsp = Arc::new(crate::ocsp::OwnOcsp::new(
            &gc,
            &store,
            &auth_chain,
            &signing,
            section,
            section.cache_dir.as_ref().map(|d| conf.source.path(d)),
        ));
        let metrics = Arc::new(Metrics::default());
        let peer_ocsp = Arc::new(crate::ocsp::PeerOcsp::new(
            trusted.clone(),
            metrics.clone(),
            pool.clone(),
            section,
        ));
        let gw = Arc::new(Gateway {
            peers: LiveTrust::new(PeerTrust::new(gc)),
            trusted,
            metrics,
            pool,
            peer_tls: Mutex::new(HashMap::new()),
            signer,
            soap_limits: SoapLimits {
                xml: l.xml(),
                max_header_elements: l.max_header_elements,
            },
            maintenance: AtomicBool::new(false),
            mounted: std::sync::OnceLock::new(),
            spool: brama_transport::spool::SpoolConfig {
                memory: l.spool_memory_bytes,
                max: l.max_rest_body_bytes,
                dir: l
                    .spool_dir
                    .as_ref()
                    .map(|d| conf.source.path(d))
                    .unwrap_or_else(std::env::temp_dir),
            },
            intake: body::Intake {
                timeout: Duration::from_millis(l.body_read_timeout_ms),
                min_rate: l.min_body_rate_bytes,
                rate_window: Duration::from_millis(l.body_rate_window_ms),
                budget: body::MemoryBudget::new(
                    l.body_memory_bytes,
                    Duration::from_millis(l.body_memory_wait_ms),
                ),
            },
            listeners: Listeners::default(),
            message_log,
            own_ocsp,
            peer_ocsp,
            confclient,
            hosted: Live::new(conf.clients.clone()),
            reloads: Default::default(),
            conf,
        });
        // Responses kept on disk by an earlier run go into signatures at once.
        gw.own_ocsp.push_to_signer(&gw);
        Ok(gw)
    }

    /// The global configuration's downloads, when `[globalconf] anchor` is set.
    pub fn confclient(&self) -> Option<&Arc<crate::confclient::refresh::ConfClient>> {
        self.confclient.as_ref()
    }

    /// The message log, when `[log] messages_dir` is set.
    pub fn message_log(&self) -> Option<&crate::message_log::MessageLog> {
        self.message_log.as_ref()
    }

    /// Whether logged records are to be time-stamped: the global configuration in force
    /// approves a TSA (a test network without one logs them unstamped).
    pub(crate) fn log_stamps(&self) -> bool {
        self.trusted()
            .gc
            .own_shared()
            .is_some_and(|s| !s.approved_tsas.is_empty())
    }

    /// The server's own OCSP responses.
    pub fn own_ocsp(&self) -> &Arc<crate::ocsp::OwnOcsp> {
        &self.own_ocsp
    }

    /// The global configuration in force, with what is derived from it.
    pub fn trusted(&self) -> Arc<Trusted> {
        self.trusted.current()
    }

    /// Puts `gc` in force: the next request, handshake and signature check use it; requests
    /// under way finish with the one they started with.
    pub fn replace_globalconf(&self, gc: GlobalConf, expires_at: Option<i64>) {
        let gc = Arc::new(gc);
        let xml = self.conf.file.limits.xml();
        self.peers.replace(PeerTrust::new(gc.clone()));
        self.trusted
            .replace(Trusted::new(gc.clone(), xml, expires_at));
        let trusted = self.trusted();
        self.own_ocsp
            .reconfigure(self, &gc, &trusted.verifier.trust);
        tracing::info!(expires_at, "global configuration in force replaced");
    }

    /// Why the global configuration in force may not be used, once its `Expire-date` has passed
    /// (X-Road answers `OutdatedGlobalConf` then).
    pub(crate) fn globalconf_expired(&self, trusted: &Trusted) -> Option<String> {
        let at = trusted.expires_at()?;
        let now = crate::ocsp::now();
        (now > at).then(|| {
            let when = brama_xroad::time::rfc3339(at);
            format!(
                "the global configuration expired at {when} and no newer one has been downloaded"
            )
        })
    }

    /// `OutdatedGlobalConf` for a request while the configuration in force is expired.
    pub(crate) fn check_globalconf(
        &self,
        at: brama_xroad::error::Prefix,
    ) -> Result<Arc<Trusted>, brama_xroad::error::Fault> {
        let trusted = self.trusted();
        match self.globalconf_expired(&trusted) {
            Some(why) => Err(at.fault(brama_xroad::error::ErrorCode::OutdatedGlobalConf, why)),
            None => Ok(trusted),
        }
    }

    /// TLS client settings for reaching `server`, built once per server; they read the
    /// registered hashes and approved CAs in force at each handshake.
    pub(crate) fn peer_tls(
        &self,
        server: &SecurityServerId,
    ) -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
        let mut cache = self.peer_tls.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = cache.get(server) {
            return Ok(c.clone());
        }
        let config = Arc::new(tls::peer_client_config(
            self.peers.clone(),
            server.clone(),
            self.conf.auth_certs.clone(),
            self.conf.auth_key.clone_key(),
            self.metrics.clone(),
        )?);
        cache.insert(server.clone(), config.clone());
        Ok(config)
    }

    /// The hosted clients in force (a reload replaces them): requests look their clients up
    /// here; one that started keeps the set it took.
    pub fn hosted(&self) -> Arc<HashMap<ClientId, crate::config::HostedClient>> {
        self.hosted.current()
    }

    /// The server's configuration as it started, for in-process callers (the router); its
    /// hosted clients are [`Gateway::hosted`].
    pub fn conf(&self) -> &ServerConf {
        &self.conf
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub fn soap_limits(&self) -> &SoapLimits {
        &self.soap_limits
    }

    /// The memory budget and pacing every request body is read under.
    pub fn intake(&self) -> &body::Intake {
        &self.intake
    }

    /// The batch signer, for its statistics.
    pub fn signer(&self) -> &Signer {
        &self.signer
    }

    /// The digest the signer uses, for bodies built in process.
    pub fn digest(&self) -> brama_sign::digest::DigestAlgorithm {
        self.signer.digest
    }

    /// The one HTTP client's pool.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The routes mounted on this server's listeners, if any.
    pub fn mounted(&self) -> Option<&Arc<dyn mount::Mount>> {
        self.mounted.get()
    }

    pub fn max_body(&self) -> usize {
        self.conf.file.limits.max_body_bytes
    }

    pub fn max_parts(&self) -> usize {
        self.conf.file.limits.max_mime_parts
    }

    pub(crate) fn body_timeout(&self) -> Duration {
        self.intake.timeout
    }

    /// The client security server's TLS certificates against the OCSP responses its request
    /// carried (reference §3.5 step 3): refused as `SslAuthenticationFailed`, with X-Road's OCSP
    /// code as the cause, and counted as a security event.
    pub(crate) fn check_client_ocsp(
        &self,
        conn: &listener::ConnInfo,
        responses: &[bytes::Bytes],
        at: brama_xroad::error::Prefix,
    ) -> Result<(), brama_xroad::error::Fault> {
        use brama_xroad::error::ErrorCode;
        let Some(cert) = &conn.peer_cert else {
            return Err(at.fault(
                ErrorCode::SslAuthenticationFailed,
                "Client security server presented no certificate",
            ));
        };
        use std::sync::atomic::Ordering;
        let now = crate::ocsp::now();
        // Proven good on this connection and still fresh: nothing to redo per request.
        if now <= conn.status_good_until.load(Ordering::Relaxed) {
            return Ok(());
        }
        let chain: Vec<&[u8]> = std::iter::once(cert.as_ref())
            .chain(conn.peer_intermediates.iter().map(|c| c.as_ref()))
            .collect();
        match self
            .trusted()
            .verifier
            .trust
            .auth_chain_status(&chain, responses, now)
        {
            Ok(until) => {
                // Looked at again after one fetch interval at most, as a peer's is on the
                // client side: a revocation shows within it.
                let interval = self.own_ocsp.interval.as_secs() as i64;
                let until = until.map_or(now + interval, |u| u.min(now + interval));
                conn.status_good_until.store(until, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                self.metrics.security_event("client_ocsp_refused");
                tracing::warn!(peer = %conn.remote, code = %e.code_string(), reason = %e.message, "client security server refused: OCSP");
                Err(at
                    .fault(
                        ErrorCode::SslAuthenticationFailed,
                        format!("Client (TLS) certificate is not valid: {}", e.message),
                    )
                    .with_sub(e.code.as_str()))
            }
        }
    }

    /// Whether this server's own authentication certificate is registered in the global
    /// configuration (a health check).
    pub(crate) fn auth_cert_registered(&self) -> bool {
        self.trusted()
            .gc
            .server(&self.conf.server_id)
            .is_some_and(|s| {
                s.auth_cert_hashes
                    .contains(&auth_cert_hash(&self.conf.auth_certs[0]))
            })
    }
}

/// Connection counters per listener.
#[derive(Debug, Default)]
pub struct Listeners {
    pub client_http: Arc<listener::ListenerStats>,
    pub client_https: Arc<listener::ListenerStats>,
    pub server: Arc<listener::ListenerStats>,
    pub admin: Arc<listener::ListenerStats>,
    pub ocsp: Arc<listener::ListenerStats>,
}

impl Listeners {
    pub fn each(&self) -> [(&'static str, &listener::ListenerStats); 5] {
        [
            ("client_http", &self.client_http),
            ("client_https", &self.client_https),
            ("server", &self.server),
            ("admin", &self.admin),
            ("ocsp", &self.ocsp),
        ]
    }
}

/// Listeners bound by the caller beforehand (tests bind port 0 and write the ports into the
/// global configuration before loading it). Unset ones are bound from the configuration.
#[derive(Default)]
pub struct Prebound {
    pub client_http: Option<std::net::TcpListener>,
    pub client_https: Option<std::net::TcpListener>,
    pub server: Option<std::net::TcpListener>,
    pub admin: Option<std::net::TcpListener>,
    pub ocsp: Option<std::net::TcpListener>,
}

/// A started server: its bound addresses and the handle that stops it.
pub struct Running {
    pub gateway: Arc<Gateway>,
    pub client_http: Option<SocketAddr>,
    pub client_https: Option<SocketAddr>,
    pub server: SocketAddr,
    pub admin: Option<SocketAddr>,
    /// The OCSP port peers fetch this server's responses from.
    pub ocsp: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Running {
    /// Runs `task` beside the listeners: it is handed the shutdown signal (resolves when
    /// [`Running::shutdown`] is called) and awaited there, as the listeners are.
    pub fn spawn<F, Fut>(&mut self, task: F)
    where
        F: FnOnce(std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let mut stop = self.shutdown.subscribe();
        let signal = Box::pin(async move {
            while !*stop.borrow_and_update() {
                if stop.changed().await.is_err() {
                    break;
                }
            }
        });
        self.tasks.spawn(task(signal));
    }

    /// Stops accepting, lets in-flight requests finish (bounded by `limits.shutdown_grace_ms`).
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        while self.tasks.join_next().await.is_some() {}
        self.gateway.signer.stop();
    }
}

/// A listener's address for the log, `off` when it is not configured.
fn off_or(addr: Option<std::net::SocketAddr>) -> String {
    addr.map_or_else(|| "off".to_string(), |a| a.to_string())
}

async fn take_or_bind(
    pre: Option<std::net::TcpListener>,
    addr: &str,
    backlog: u32,
) -> std::io::Result<tokio::net::TcpListener> {
    match pre {
        Some(l) => listener::adopt(l, backlog),
        None => listener::bind(addr, backlog).await,
    }
}

/// Starts every configured listener.
pub async fn start(conf: ServerConf, pre: Prebound) -> std::io::Result<Running> {
    start_mounted(conf, pre, |_, _| async { Ok(None) }).await
}

/// Starts every configured listener, after `mount` (given the gateway and the shutdown signal)
/// has started whatever it mounts on them: the listeners serve its routes from their first
/// request.
pub async fn start_mounted<F, Fut>(
    conf: ServerConf,
    pre: Prebound,
    mount: F,
) -> std::io::Result<Running>
where
    F: FnOnce(Arc<Gateway>, watch::Receiver<bool>) -> Fut,
    Fut: std::future::Future<Output = std::io::Result<Option<Arc<dyn mount::Mount>>>>,
{
    let gw =
        Gateway::new(conf).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let f = &gw.conf.file;
    let limits = ListenerLimits {
        max_connections: f.limits.max_connections,
        max_headers: f.limits.max_http_headers,
        header_read_timeout: Duration::from_millis(f.limits.header_read_timeout_ms),
        // Never longer than a request head may take.
        first_byte_timeout: Duration::from_millis(
            f.limits
                .first_byte_timeout_ms
                .min(f.limits.header_read_timeout_ms),
        ),
        shutdown_grace: Duration::from_millis(f.limits.shutdown_grace_ms),
    };
    let backlog = f.limits.listen_backlog;
    let (tx, rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    if let Some(m) = mount(gw.clone(), rx.clone()).await? {
        let _ = gw.mounted.set(m);
    }
    let io_err =
        |e: rustls::Error| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string());

    // Server proxy: mutual TLS with peer security servers.
    let server_tls = tls::peer_server_config(
        gw.peers.clone(),
        gw.conf.auth_certs.clone(),
        gw.conf.auth_key.clone_key(),
        gw.metrics.clone(),
    )
    .map_err(io_err)?;
    let l = take_or_bind(pre.server, &f.listeners.server, backlog).await?;
    let server = l.local_addr()?;
    let g = gw.clone();
    tasks.spawn(listener::serve(
        l,
        Some(TlsAcceptor::from(Arc::new(server_tls))),
        limits.clone(),
        gw.listeners.server.clone(),
        rx.clone(),
        move |req, info| server::handle(g.clone(), req, info),
    ));

    let mut client_http = None;
    if let Some(addr) = &f.listeners.client_http {
        let l = take_or_bind(pre.client_http, addr, backlog).await?;
        client_http = Some(l.local_addr()?);
        let g = gw.clone();
        tasks.spawn(listener::serve(
            l,
            None,
            limits.clone(),
            gw.listeners.client_http.clone(),
            rx.clone(),
            move |req, info| client::handle(g.clone(), req, info),
        ));
    }
    let mut client_https = None;
    if let (Some(addr), Some((certs, key))) = (&f.listeners.client_https, &gw.conf.internal_tls) {
        let config = tls::internal_server_config(certs.clone(), key.clone_key()).map_err(io_err)?;
        let l = take_or_bind(pre.client_https, addr, backlog).await?;
        client_https = Some(l.local_addr()?);
        let g = gw.clone();
        tasks.spawn(listener::serve(
            l,
            Some(TlsAcceptor::from(Arc::new(config))),
            limits.clone(),
            gw.listeners.client_https.clone(),
            rx.clone(),
            move |req, info| client::handle(g.clone(), req, info),
        ));
    }
    let mut admin = None;
    if let Some(addr) = &f.listeners.admin {
        let l = take_or_bind(pre.admin, addr, backlog).await?;
        admin = Some(l.local_addr()?);
        let g = gw.clone();
        tasks.spawn(listener::serve(
            l,
            None,
            limits.clone(),
            gw.listeners.admin.clone(),
            rx.clone(),
            move |req, _| admin::handle(g.clone(), req),
        ));
    }
    let mut ocsp = None;
    if let Some(addr) = &f.listeners.ocsp {
        let l = take_or_bind(pre.ocsp, addr, backlog).await?;
        ocsp = Some(l.local_addr()?);
        let g = gw.clone();
        tasks.spawn(listener::serve(
            l,
            None,
            limits.clone(),
            gw.listeners.ocsp.clone(),
            rx.clone(),
            move |req, _| crate::ocsp::endpoint::handle(g.clone(), req),
        ));
    }
    tasks.spawn(crate::ocsp::own::OwnOcsp::run(gw.clone(), rx.clone()));
    tasks.spawn(crate::message_log::timestamper::run(gw.clone(), rx.clone()));
    tasks.spawn(crate::message_log::archiver::run(gw.clone(), rx.clone()));
    if let Some(c) = gw.confclient.clone() {
        tasks.spawn(c.run(gw.clone(), rx.clone()));
    }
    tracing::info!(
        server_id = %gw.conf.server_id,
        server = %server,
        client_http = %off_or(client_http),
        client_https = %off_or(client_https),
        admin = %off_or(admin),
        ocsp = %off_or(ocsp),
        "brama is serving"
    );
    Ok(Running {
        gateway: gw,
        client_http,
        client_https,
        server,
        admin,
        ocsp,
        shutdown: tx,
        tasks,
    })
}
