//! The Diia router: accepts eMalyatko applications, turns each into one signed X-Road request
//! per registry service, and delivers them durably (redb), in the order the flow needs, with
//! retries (in the embedded store, or in PostgreSQL shared by several nodes); also wrap mode (`POST /route/{name}`), which forwards a plain SOAP body under a
//! configured X-Road header.
//!
//! Lifecycle of one application: `api` validates and [`engine::Engine::accept`]s it (stored and
//! flushed before the 202), `lanes` start each due delivery within its registry's concurrency,
//! `engine` records the attempt, sends it through the client proxy in-process
//! ([`brama_gateway::proxy::client::exchange`]), records the outcome, and releases the services
//! that waited for it; `webhook` tells support about deliveries that failed for good. Its HTTP
//! routes ([`routes`]) are mounted on the gateway's listeners by the binary.
//!
//! Owns: applications, deliveries and their store. Depends on `brama-gateway`, never the
//! reverse; must not depend on the simulator, the load generator or test tooling.

pub mod api;
pub mod application;
mod auth;
pub mod engine;
pub mod flow;
mod lanes;
pub mod model;
pub mod retry;
pub mod routes;
pub mod store;
mod webhook;
pub mod wrap;

use std::sync::Arc;

use tokio::sync::watch;

use application::FieldError;
use brama_gateway::config::router::RouterConf;
use brama_gateway::proxy::Gateway;
use engine::Engine;
use store::{Store, StoreError};

/// Errors of the router layer; [`routes::error`] puts them on the wire.
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    /// The application is invalid: every problem, by field (caller's side, final).
    #[error("the application is invalid")]
    Invalid(Vec<FieldError>),
    #[error("{0}")]
    BadRequest(String),
    #[error("the body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("no application or route '{0}'")]
    NotFound(String),
    /// An idempotency key sent again with a different application (caller's side, final).
    #[error("{0}")]
    Conflict(String),
    /// The flow could not build a request (our side, final).
    #[error("cannot plan the application: {0}")]
    Plan(String),
    /// The store failed (our side, may be retried).
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the router is not enabled on this server")]
    Disabled,
    /// Refused the way the client proxy refuses: an unauthenticated caller, a body too large,
    /// too slow or over the memory budget.
    #[error("{}", .0.message)]
    Refused(brama_xroad::error::Fault),
}

impl RouterError {
    pub fn status(&self) -> u16 {
        match self {
            RouterError::Invalid(_) | RouterError::BadRequest(_) => 400,
            RouterError::TooLarge(_) => 413,
            RouterError::NotFound(_) => 404,
            RouterError::Conflict(_) => 422,
            RouterError::Plan(_) => 500,
            RouterError::Store(_) | RouterError::Disabled => 503,
            RouterError::Refused(f) => f.rest_status(),
        }
    }

    /// Whether the caller may send the same thing again.
    pub fn retryable(&self) -> bool {
        match self {
            RouterError::Store(_) | RouterError::Disabled => true,
            RouterError::Refused(f) => f.retryable(),
            _ => false,
        }
    }

    pub fn kind(&self) -> std::borrow::Cow<'_, str> {
        std::borrow::Cow::Borrowed(match self {
            RouterError::Refused(f) => return f.code.to_wire(),
            RouterError::Invalid(_) => "InvalidApplication",
            RouterError::BadRequest(_) => "BadRequest",
            RouterError::TooLarge(_) => "TooLarge",
            RouterError::NotFound(_) => "NotFound",
            RouterError::Conflict(_) => "IdempotencyKeyReused",
            RouterError::Plan(_) => "CannotPlan",
            RouterError::Store(_) => "StoreUnavailable",
            RouterError::Disabled => "RouterDisabled",
        })
    }
}

/// The store `conf` names: PostgreSQL when `[store] url` is set, else the embedded one in
/// `store_dir` (created on first use).
pub async fn open_store(conf: &RouterConf) -> Result<Arc<Store>, String> {
    match &conf.shared_store {
        Some(shared) => {
            let longest_attempt = conf
                .registries
                .values()
                .map(|r| r.policy.timeout)
                .max()
                .unwrap_or_default();
            let pg = store::PgConf {
                store: shared.clone(),
                longest_attempt,
            };
            Store::connect(&pg)
                .await
                .map_err(|e| format!("router store: {e}"))
        }
        None => {
            std::fs::create_dir_all(&conf.store_dir)
                .map_err(|e| format!("router store {}: {e}", conf.store_dir.display()))?;
            Store::open(&conf.store_dir, conf.store_cache_bytes)
                .map_err(|e| format!("router store {}: {e}", conf.store_dir.display()))
        }
    }
}

/// A running router.
pub struct Router {
    pub conf: Arc<RouterConf>,
    pub engine: Arc<Engine>,
}

/// What the configuration cannot check without knowing the flow: every registry the flow
/// delivers to is configured, and every configured service is one of the flow's. `brama config
/// check` and [`Router::start`] call it.
pub fn check(conf: &RouterConf) -> Result<(), String> {
    for spec in flow::SERVICES {
        if !conf.registries.contains_key(spec.registry) {
            return Err(format!(
                "router.registries.{} is missing: the eMalyatko flow delivers {} there",
                spec.registry, spec.name
            ));
        }
    }
    match conf.service_names.iter().find(|n| !flow::is_service(n)) {
        Some(name) => Err(format!(
            "router.services.{name}: '{name}' is not a service of the flow"
        )),
        None => Ok(()),
    }
}

impl Router {
    /// Opens the store, recovers what was in flight, and starts delivering.
    pub async fn start(
        gw: &Arc<Gateway>,
        conf: RouterConf,
        stop: watch::Receiver<bool>,
    ) -> Result<Arc<Router>, String> {
        check(&conf)?;
        let store = open_store(&conf).await?;
        let conf = Arc::new(conf);
        let engine = Engine::new(store, conf.clone(), Arc::downgrade(gw));
        let resumed = engine.recover().await.map_err(|e| e.to_string())?;
        engine.start(stop.clone());
        if let Some(shared) = &conf.shared_store {
            engine.start_orphan_scan(shared.orphan_scan, stop.clone());
        }
        webhook::start(engine.clone(), stop);
        tracing::info!(store = %engine.store.describe(), node = engine.store.node().unwrap_or("-"), resumed, "router started");
        Ok(Arc::new(Router { conf, engine }))
    }
}
