//! The router's HTTP routes, which the binary mounts on the gateway's listeners: on the client
//! listener `POST /api/v1/applications`, `GET /api/v1/applications/{id}` and `POST
//! /route/{name}`; on the admin listener `/api/v1/queue…`; and its figures on `/metrics`. Mounted
//! also when `[router]` is off, so those paths answer `RouterDisabled` instead of a bare 404.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use hyper::body::Incoming;

use super::{api, wrap, Router, RouterError};
use brama_gateway::proxy::mount::{Answer, Mount};
use brama_gateway::proxy::{wire, Gateway};
use brama_transport::listener::{ConnInfo, Response};
use brama_transport::metrics::label;

/// The router's routes; `router` is `None` when `[router]` is off.
pub struct Routes {
    router: Option<Arc<Router>>,
}

impl Routes {
    pub fn new(router: Option<Arc<Router>>) -> Arc<Routes> {
        Arc::new(Routes { router })
    }
}

/// The router running behind `gw`'s listeners, if any.
pub fn of(gw: &Gateway) -> Option<Arc<Router>> {
    let routes = gw.mounted()?.as_any().downcast_ref::<Routes>()?;
    routes.router.clone()
}

const APPLICATIONS: &str = "/api/v1/applications";

impl Mount for Routes {
    fn health(&self) -> Result<(), String> {
        match self.router.as_ref().and_then(|r| r.engine.store.failing()) {
            Some(why) => Err(format!("router store: {why}")),
            None => Ok(()),
        }
    }

    fn owns_client(&self, method: &http::Method, path: &str) -> bool {
        (method == http::Method::POST && path == APPLICATIONS)
            || (method == http::Method::GET && path.starts_with("/api/v1/applications/"))
            || (method == http::Method::POST && path.starts_with("/route/"))
    }

    fn client(
        &self,
        gw: &Arc<Gateway>,
        req: http::Request<Incoming>,
        conn: &Arc<ConnInfo>,
    ) -> Answer {
        let Some(router) = self.router.clone() else {
            return Box::pin(async { error(&RouterError::Disabled) });
        };
        let (gw, conn) = (gw.clone(), conn.clone());
        Box::pin(async move {
            let path = req.uri().path().to_string();
            if let Some(id) = path.strip_prefix("/api/v1/applications/") {
                return api::status(&gw, &router, id, &conn).await;
            }
            if let Some(name) = path.strip_prefix("/route/") {
                return match router.conf.routes.get(name) {
                    Some(route) => {
                        let route = route.clone();
                        wrap::handle(gw, &router.conf, &route, req, &conn).await
                    }
                    None => error(&RouterError::NotFound(name.into())),
                };
            }
            api::submit(&gw, &router, req, &conn).await
        })
    }

    fn owns_admin(&self, _method: &http::Method, path: &str) -> bool {
        path.starts_with("/api/v1/queue")
    }

    fn admin(&self, _gw: &Arc<Gateway>, req: http::Request<Incoming>) -> Answer {
        let router = self.router.clone();
        Box::pin(async move {
            match router {
                Some(r) => api::admin(&r, req).await,
                None => error(&RouterError::Disabled),
            }
        })
    }

    fn metrics(&self) -> String {
        self.router.as_deref().map(metrics).unwrap_or_default()
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// A router error as JSON: `{type, message, fields?, retryable}` with the error's status.
pub fn error(e: &RouterError) -> Response {
    let mut v = serde_json::json!({
        "type": e.kind(),
        "message": e.to_string(),
        "retryable": e.retryable(),
    });
    if let RouterError::Invalid(fields) = e {
        v["fields"] = serde_json::json!(fields);
    }
    if e.status() >= 500 {
        tracing::warn!(kind = %e.kind(), "router: {e}");
    }
    wire::json(e.status(), &v)
}

/// Router counters, queue lengths and store figures.
fn metrics(r: &Router) -> String {
    use std::fmt::Write;
    let s = &r.engine.stats;
    let mut out = String::new();
    for (name, help, v) in [
        (
            "applications_accepted",
            "Applications accepted (202)",
            &s.accepted,
        ),
        ("attempts", "Delivery attempts started", &s.attempts),
        (
            "delivered",
            "Deliveries a registry answered for good",
            &s.delivered,
        ),
        (
            "retries",
            "Delivery attempts scheduled again after a failure",
            &s.retries,
        ),
        (
            "failed",
            "Deliveries that failed for good (support notified)",
            &s.failed,
        ),
        ("polls", "Asynchronous answers asked for again", &s.polls),
    ] {
        let _ = writeln!(
            out,
            "# HELP brama_router_{name}_total {help}\n\
             # TYPE brama_router_{name}_total counter\nbrama_router_{name}_total {}",
            v.load(Ordering::Relaxed)
        );
    }
    let lanes = r.engine.lanes();
    let _ = writeln!(
        out,
        "# HELP brama_router_scheduled Deliveries waiting for their registry's lane\n\
         # TYPE brama_router_scheduled gauge"
    );
    for (reg, queued, _) in &lanes {
        let _ = writeln!(
            out,
            "brama_router_scheduled{{registry=\"{}\"}} {queued}",
            label(reg)
        );
    }
    let _ = writeln!(
        out,
        "# HELP brama_router_in_flight Delivery attempts in flight, per registry\n\
         # TYPE brama_router_in_flight gauge"
    );
    for (reg, _, in_flight) in &lanes {
        let _ = writeln!(
            out,
            "brama_router_in_flight{{registry=\"{}\"}} {in_flight}",
            label(reg)
        );
    }
    let st = &r.engine.store;
    let _ = writeln!(
        out,
        "# HELP brama_store_logical_bytes_written_total Bytes of records the router's store was \
         given to write\n\
         # TYPE brama_store_logical_bytes_written_total counter\n\
         brama_store_logical_bytes_written_total {}\n\
         # HELP brama_store_flushes_total Commits of the router's store (group commits or \
         database transactions)\n\
         # TYPE brama_store_flushes_total counter\nbrama_store_flushes_total {}\n\
         # HELP brama_store_size_bytes Size of the router's store on disk (in a database: write-ahead log written since this node connected)\n\
         # TYPE brama_store_size_bytes gauge\nbrama_store_size_bytes {}",
        st.logical_bytes(),
        st.flushes(),
        st.size_on_disk()
    );
    out
}
