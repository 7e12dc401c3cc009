//! HTTP API: `POST /api/v1/applications`, `GET /api/v1/applications/{id}` on the client
//! listener, and the queue operations (`/api/v1/queue...`) on the admin listener.

use bytes::Bytes;
use hyper::body::Incoming;
use serde_json::{json, Value};

use sha2::Digest;

use super::application;
use super::auth;
use super::engine::{Accepted, Idempotency};
use super::model::{AppRecord, Delivery, Millis, State};
use super::{Router, RouterError};
use brama_gateway::proxy::wire;
use brama_gateway::proxy::Gateway;
use brama_transport::body::{Intake, IntakeError};
use brama_transport::listener::{ConnInfo, Response};
use brama_xroad::error::Prefix;
use brama_xroad::error::ToFault;
use brama_xroad::identifiers::ClientId;

/// `POST /api/v1/applications` from an authenticated submitter.
pub async fn submit(
    gw: &Gateway,
    router: &Router,
    req: http::Request<Incoming>,
    conn: &ConnInfo,
) -> Response {
    let candidates: Vec<&ClientId> = router.conf.submitters.iter().collect();
    let accepted = match auth::caller(
        gw,
        &router.conf,
        conn,
        &candidates,
        "submitting applications",
    ) {
        Ok(submitter) => accept(router, req, gw.intake(), &submitter).await,
        Err(e) => Err(e),
    };
    match accepted {
        Ok(Accepted { id, replayed }) => {
            let mut r = wire::json(
                202,
                &json!({ "id": id, "status": format!("/api/v1/applications/{id}") }),
            );
            if replayed {
                r.headers_mut().insert(
                    "idempotent-replayed",
                    http::HeaderValue::from_static("true"),
                );
            }
            r
        }
        Err(e) => super::routes::error(&e),
    }
}

async fn accept(
    router: &Router,
    req: http::Request<Incoming>,
    intake: &Intake,
    submitter: &ClientId,
) -> Result<Accepted, RouterError> {
    let idempotency_key = match req.headers().get("idempotency-key") {
        None => None,
        Some(v) => Some(idempotency_key(v.as_bytes())?),
    };
    if let Some(ct) = req.headers().get(http::header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or_default().to_ascii_lowercase();
        if !ct.starts_with("application/json") {
            return Err(RouterError::BadRequest(format!(
                "Content-Type must be application/json, not '{ct}'"
            )));
        }
    }
    let max = router.conf.max_application_bytes;
    let body = read(req.into_body(), max, intake).await?;
    let app = application::parse(&body).map_err(RouterError::Invalid)?;
    let idempotency = idempotency_key.map(|key| Idempotency {
        key,
        body_sha256: hex::encode(sha2::Sha256::digest(&body)),
    });
    router
        .engine
        .accept(&app, submitter, idempotency.as_ref())
        .await
}

/// An `Idempotency-Key`: 1 to 255 visible ASCII characters (it names a store record).
fn idempotency_key(v: &[u8]) -> Result<String, RouterError> {
    let ok = !v.is_empty() && v.len() <= 255 && v.iter().all(|b| (0x21..=0x7e).contains(b));
    match ok {
        true => Ok(String::from_utf8_lossy(v).into_owned()),
        false => Err(RouterError::BadRequest(
            "Idempotency-Key must be 1 to 255 visible ASCII characters".into(),
        )),
    }
}

/// Reads a body of at most `max` bytes within the intake's limits.
pub async fn read(body: Incoming, max: usize, intake: &Intake) -> Result<Bytes, RouterError> {
    match brama_transport::body::receive(body, max, intake).await {
        Ok(r) => Ok(r.bytes),
        Err(IntakeError::TooLarge(_) | IntakeError::Declared { .. }) => {
            Err(RouterError::TooLarge(max))
        }
        Err(e) => Err(RouterError::Refused(e.to_fault(Prefix::Client))),
    }
}

/// `GET /api/v1/applications/{id}`: only to the subsystem that submitted it.
pub async fn status(gw: &Gateway, router: &Router, id: &str, conn: &ConnInfo) -> Response {
    let candidates: Vec<&ClientId> = router.conf.submitters.iter().collect();
    let shown = match auth::caller(gw, &router.conf, conn, &candidates, "reading applications") {
        Err(e) => Err(e),
        Ok(caller) => {
            let shown = describe(router, id, Some(&caller)).await;
            match shown {
                Err(RouterError::NotFound(_)) => match router.engine.store.has_app(id).await {
                    Err(e) => Err(e.into()),
                    Ok(true) => {
                        // Someone else's: answered as if it did not exist, and counted.
                        gw.metrics().security_event("access_denied");
                        tracing::warn!(target: "security", caller = %caller, "an application submitted by another subsystem was asked for");
                        shown
                    }
                    Ok(false) => shown,
                },
                _ => shown,
            }
        }
    };
    match shown {
        Ok(v) => wire::json(200, &v),
        Err(e) => super::routes::error(&e),
    }
}

/// An application and the state of each of its services; with `caller`, only when that
/// subsystem submitted it.
pub async fn describe(
    router: &Router,
    id: &str,
    caller: Option<&ClientId>,
) -> Result<Value, RouterError> {
    if id.is_empty() || id.len() > 64 || id.contains('/') {
        return Err(RouterError::NotFound(id.into()));
    }
    let store = &router.engine.store;
    let app = store
        .app(id)
        .await?
        .ok_or_else(|| RouterError::NotFound(id.into()))?;
    if let Some(caller) = caller {
        // Records from before callers were authenticated are the router client's.
        let owner = app.submitter.as_deref().map(str::to_string);
        if owner.unwrap_or_else(|| router.conf.client.to_string()) != caller.to_string() {
            return Err(RouterError::NotFound(id.into()));
        }
    }
    let deliveries = store.deliveries(id).await?;
    Ok(app_json(&app, &deliveries, true))
}

pub(crate) fn app_json(app: &AppRecord, deliveries: &[Delivery], detail: bool) -> Value {
    let mut services: Vec<&Delivery> = deliveries.iter().collect();
    services.sort_by_key(|d| app.services.iter().position(|s| *s == d.service));
    let overall = if services.iter().all(|d| d.state == State::Delivered) {
        "completed"
    } else if services.iter().all(|d| d.state.is_terminal()) {
        "failed"
    } else {
        "in_progress"
    };
    json!({
        "id": app.id,
        "receivedAt": rfc3339(app.received_at),
        "status": overall,
        "services": services.iter().map(|d| delivery_json(d, detail)).collect::<Vec<_>>(),
    })
}

fn delivery_json(d: &Delivery, detail: bool) -> Value {
    let mut v = json!({
        "service": d.service,
        "registry": d.registry,
        "state": d.state,
        "xroadId": d.xroad_id,
        "attempts": d.attempt_count,
    });
    let o = v.as_object_mut().expect("an object");
    if d.has_request {
        let protocol = if d.rest_path.is_some() {
            "rest"
        } else {
            "soap"
        };
        o.insert("protocol".into(), json!(protocol));
    }
    if !d.waiting_for.is_empty() {
        o.insert("waitingFor".into(), json!(d.waiting_for));
    }
    if let Some(t) = d.next_attempt_at {
        o.insert("nextAttemptAt".into(), json!(rfc3339(t)));
    }
    if let Some(e) = &d.last_error {
        o.insert("lastError".into(), json!(e));
    }
    if let Some(t) = d.finished_at {
        o.insert("finishedAt".into(), json!(rfc3339(t)));
    }
    if let Some(a) = &d.answer {
        o.insert("answer".into(), a.clone());
    }
    if detail {
        o.insert("history".into(), json!(d.attempts));
    }
    v
}

pub fn rfc3339(ms: Millis) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Admin: `GET /api/v1/queue[?state=S&limit=N]`, `GET /api/v1/queue/{id}`,
/// `POST /api/v1/queue/{id}/retry[?service=S]`, `POST /api/v1/queue/purge[?id=ID][&force=1]`.
pub async fn admin(router: &Router, req: http::Request<Incoming>) -> Response {
    let path = req.uri().path().trim_end_matches('/').to_string();
    let query = parse_query(req.uri().query().unwrap_or_default());
    let q = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let rest = path.strip_prefix("/api/v1/queue").unwrap_or_default();
    let res = match (req.method().clone(), rest) {
        (http::Method::GET, "") => {
            let limit = q("limit").and_then(|l| l.parse().ok()).unwrap_or(1000);
            list(router, q("state"), limit).await
        }
        (http::Method::POST, "/purge") => purge(router, q("id"), q("force") == Some("1")).await,
        (http::Method::POST, r) if r.ends_with("/retry") => {
            let id = r.trim_start_matches('/').trim_end_matches("/retry");
            router
                .engine
                .retry(id, q("service"))
                .await
                .map(|n| json!({ "id": id, "restarted": n }))
        }
        (http::Method::GET, r) => describe(router, r.trim_start_matches('/'), None).await,
        _ => Err(RouterError::NotFound(path.clone())),
    };
    match res {
        Ok(v) => wire::json(200, &v),
        Err(e) => super::routes::error(&e),
    }
}

/// What `list` filters by: a service's state, or an application's overall status.
pub const LIST_STATES: [&str; 7] = [
    "pending",
    "in_flight",
    "retrying",
    "delivered",
    "failed",
    "in_progress",
    "completed",
];

/// Applications with their services, oldest first; `state` keeps the applications that have a
/// service in that state (`pending`, `in_flight`, `retrying`, `delivered`, `failed`) or whose
/// overall status is `completed` / `in_progress`.
pub async fn list(
    router: &Router,
    state: Option<&str>,
    limit: usize,
) -> Result<Value, RouterError> {
    if let Some(s) = state.filter(|s| !LIST_STATES.contains(s)) {
        return Err(RouterError::BadRequest(format!(
            "state '{s}' is not one of {}",
            LIST_STATES.join(", ")
        )));
    }
    let store = &router.engine.store;
    let mut out = Vec::new();
    for app in store.apps(usize::MAX).await? {
        if out.len() >= limit {
            break;
        }
        let ds = store.deliveries(&app.id).await?;
        let v = app_json(&app, &ds, false);
        let keep = match state {
            None => true,
            Some(s) => v["status"] == s || ds.iter().any(|d| json!(d.state) == s),
        };
        if keep {
            out.push(v);
        }
    }
    let lanes: Vec<Value> = router
        .engine
        .lanes()
        .into_iter()
        .map(|(n, q, f)| json!({ "registry": n, "scheduled": q, "inFlight": f }))
        .collect();
    Ok(json!({ "applications": out, "registries": lanes }))
}

/// Removes finished applications (every service delivered or failed), or one application by id;
/// an unfinished one only with `force`.
pub async fn purge(router: &Router, id: Option<&str>, force: bool) -> Result<Value, RouterError> {
    let store = &router.engine.store;
    let apps = match id {
        Some(id) => vec![store
            .app(id)
            .await?
            .ok_or_else(|| RouterError::NotFound(id.into()))?],
        None => store.apps(usize::MAX).await?,
    };
    let mut purged = Vec::new();
    for app in apps {
        let ds = store.deliveries(&app.id).await?;
        let finished = ds.iter().all(|d| d.state.is_terminal());
        if !finished && !force {
            if id.is_some() {
                return Err(RouterError::BadRequest(format!(
                    "application {} is still being delivered; add force to purge it",
                    app.id
                )));
            }
            continue;
        }
        let mut b = super::store::Batch::default();
        b.remove_app(&app);
        store.write(b).await?;
        purged.push(app.id);
    }
    store.durable().await?;
    Ok(json!({ "purged": purged }))
}

fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}
