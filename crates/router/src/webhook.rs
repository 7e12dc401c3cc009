//! Support notifications: each failed delivery's report is stored with the failure and POSTed to
//! `router.webhook_url` until a 2xx answer, with backoff, across restarts.

use std::sync::Arc;
use std::time::Duration;

use brama_gateway::proxy::Gateway;
use brama_transport::Destination;
use bytes::Bytes;
use tokio::sync::watch;

use super::engine::Engine;
use super::model::{now_ms, Notification};
use super::store::Batch;

const MAX_BACKOFF_MS: u64 = 5 * 60_000;
/// Only the answer's status matters; a support endpoint that answers more is cut off here.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

pub fn start(engine: Arc<Engine>, mut stop: watch::Receiver<bool>) {
    let Some(url) = engine.conf.webhook_url.clone() else {
        return;
    };
    tokio::spawn(async move {
        loop {
            let next = match send_due(&engine, &url).await {
                Ok(next) => next,
                Err(e) => {
                    tracing::error!(error = %e, "support notifications: store failed");
                    Some(now_ms() + 1000)
                }
            };
            let wait = next.map_or(Duration::from_secs(60), |t| {
                Duration::from_millis(t.saturating_sub(now_ms()).max(10))
            });
            tokio::select! {
                _ = engine.notify.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => return,
            }
        }
    });
}

/// Sends every due notification; returns when the next one is due.
async fn send_due(
    engine: &Engine,
    url: &hyper::Uri,
) -> Result<Option<u64>, super::store::StoreError> {
    let (due, mut next) = engine.store.due_notifications(now_ms()).await?;
    for mut n in due {
        let mut b = Batch::default();
        let sent = match engine.gateway() {
            Some(gw) => post(&gw, url, &n, engine.conf.webhook_timeout).await,
            None => Err("the gateway has stopped".into()),
        };
        match sent {
            Ok(()) => {
                tracing::info!(id = %n.id, attempts = n.attempts + 1, "support notified");
                b.remove_notification(&n.id);
            }
            Err(e) => {
                n.attempts += 1;
                let delay = (1000u64 << n.attempts.min(20)).min(MAX_BACKOFF_MS);
                n.next_attempt_at = now_ms() + delay;
                tracing::warn!(id = %n.id, attempts = n.attempts, error = %e, "support notification not delivered; will retry");
                n.last_error = Some(e);
                next = Some(next.map_or(n.next_attempt_at, |t: u64| t.min(n.next_attempt_at)));
                b.put_notification(&n);
            }
        }
        engine.store.write(b).await?;
        engine.store.durable().await?;
    }
    Ok(next)
}

/// POSTs one notification through the gateway's one HTTP client (its keep-alive pool).
async fn post(
    gw: &Gateway,
    url: &hyper::Uri,
    n: &Notification,
    timeout: Duration,
) -> Result<(), String> {
    let host = url.host().ok_or("no host")?;
    let port = url.port_u16().unwrap_or(80);
    let body = serde_json::to_vec(&n.body).map_err(|e| e.to_string())?;
    let dest = Destination {
        key: format!("{host}:{port}"),
        tls: None,
        peer_check: None,
    };
    let req = http::Request::post(url.path_and_query().map_or("/", |p| p.as_str()))
        .header(http::header::HOST, dest.key.as_str())
        .header(http::header::CONTENT_TYPE, "application/json")
        .header("x-brama-notification-id", n.id.as_str())
        .body(brama_transport::body::full(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let (parts, _) = gw
        .pool()
        .exchange(&dest, req, timeout, MAX_ANSWER_BYTES)
        .await
        .map_err(|e| e.to_string())?;
    if parts.status.is_success() {
        Ok(())
    } else {
        Err(format!("HTTP {}", parts.status))
    }
}
