//! Admin listener (default 127.0.0.1:5588): `/health` for load balancers (X-Road's health check,
//! reference §7.5), `/health/live` for liveness probes, `/metrics` for Prometheus,
//! `/maintenance?targetState=true|false`, `POST /reload`.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use hyper::body::Incoming;
use rustls_pki_types::UnixTime;

use super::listener::Response;
use super::{wire, Gateway};
use brama_transport::metrics::label;

pub async fn handle(gw: Arc<Gateway>, req: http::Request<Incoming>) -> Response {
    if let Some(m) = gw.mounted.get() {
        if m.owns_admin(req.method(), req.uri().path()) {
            return m.admin(&gw, req).await;
        }
    }
    if req.uri().path() == "/reload" {
        return reload(&gw, req.method()).await;
    }
    if req.method() != http::Method::GET {
        return wire::plain(405, "Only GET is supported here");
    }
    match req.uri().path() {
        "/health" => health(&gw),
        // Liveness: the process serves. `/health` says whether it should get traffic, and a
        // restart mends none of what it reports (a database outage, maintenance mode).
        "/health/live" => wire::plain(200, "alive"),
        "/metrics" => wire::ok(
            "text/plain; version=0.0.4; charset=utf-8",
            Bytes::from(
                gw.metrics.render()
                    + &intake_metrics(&gw)
                    + &pool_metrics(&gw)
                    + &signer_metrics(&gw)
                    + &ocsp_metrics(&gw)
                    + &globalconf_metrics(&gw)
                    + &message_log_metrics(&gw)
                    + &gw.mounted.get().map(|m| m.metrics()).unwrap_or_default()
                    + &super::process_metrics::render(),
            ),
        ),
        // For `brama ocsp status` and `brama globalconf show`.
        "/ocsp" => json(serde_json::json!({ "certificates": gw.own_ocsp.status() })),
        "/globalconf" => json(globalconf_status(&gw)),
        // For `brama log status`.
        "/message-log" => json(serde_json::json!(gw
            .message_log
            .as_ref()
            .map(|l| l.stamping.state()))),
        "/maintenance" => {
            let target = req
                .uri()
                .query()
                .and_then(|q| q.strip_prefix("targetState="));
            match target {
                Some("true") => gw.maintenance.store(true, Ordering::Relaxed),
                Some("false") => gw.maintenance.store(false, Ordering::Relaxed),
                _ => return wire::plain(400, "Use /maintenance?targetState=true or false"),
            }
            wire::plain(
                200,
                &format!(
                    "maintenance mode: {}",
                    gw.maintenance.load(Ordering::Relaxed)
                ),
            )
        }
        _ => wire::plain(
            404,
            "Not found: /health, /health/live, /metrics, /ocsp, /globalconf, /maintenance or /reload",
        ),
    }
}

/// Runs the checks; the first failing one is named in a 503.
fn health(gw: &Gateway) -> Response {
    if gw.maintenance.load(Ordering::Relaxed) {
        return wire::plain(503, "Health check interface is in maintenance mode");
    }
    type Check = fn(&Gateway) -> Result<(), String>;
    let checks: [(&str, Check); 6] = [
        ("global configuration", |gw| {
            let trusted = gw.trusted();
            if let Some(expired) = gw.globalconf_expired(&trusted) {
                return Err(expired);
            }
            trusted
                .gc
                .server(&gw.conf.server_id)
                .map(|_| ())
                .ok_or_else(|| {
                    format!(
                        "this server {} is not in the global configuration",
                        gw.conf.server_id
                    )
                })
        }),
        ("authentication certificate", |gw| {
            if !gw.auth_cert_registered() {
                return Err("not registered for this server in the global configuration".into());
            }
            gw.peers.current().trust.verify_chain(
                &gw.conf.auth_certs[0],
                &gw.conf.auth_certs[1..],
                UnixTime::now(),
                true,
            )
        }),
        ("signing keys", |gw| {
            // A key with no open session cannot sign: its token is gone or refuses the PIN.
            match gw
                .signer
                .keys()
                .find(|k| k.stats.sessions_ready.load(Ordering::Relaxed) == 0)
            {
                Some(k) => Err(format!(
                    "no open session for the key of {} ({})",
                    k.member, k.source_name
                )),
                None => Ok(()),
            }
        }),
        ("OCSP", |gw| match gw.own_ocsp.problem() {
            Some(p) => Err(p),
            None => Ok(()),
        }),
        ("message log", |gw| {
            let Some(log) = gw.message_log.as_ref() else {
                return Ok(());
            };
            if let Some(p) = log.refusal() {
                return Err(format!("new messages are refused: {p}"));
            }
            if let Some(p) = log.shared.as_ref().and_then(|db| db.failing()) {
                return Err(format!("its database cannot be used: {p}"));
            }
            match &log.queue.damaged {
                Some(d) => Err(d.clone()),
                None => Ok(()),
            }
        }),
        ("hosted clients", |gw| {
            if gw.hosted().is_empty() {
                Err("no clients are configured".into())
            } else {
                Ok(())
            }
        }),
    ];
    for (name, check) in checks {
        if let Err(reason) = check(gw) {
            return wire::plain(503, &format!("{name}: {reason}"));
        }
    }
    if let Some(Err(reason)) = gw.mounted().map(|m| m.health()) {
        return wire::plain(503, &reason);
    }
    wire::plain(200, "OK")
}

/// `POST /reload` (`brama reload`): the configuration file read again and applied; 200 with
/// what was applied and what waits for a restart, 422 with every error when it is refused.
async fn reload(gw: &Gateway, method: &http::Method) -> Response {
    if method != http::Method::POST {
        return wire::plain(405, "Use POST /reload");
    }
    let Some(report) = gw.ask_reload().await else {
        return wire::plain(503, "this server does not reload its configuration");
    };
    let status = if report.errors.is_empty() { 200 } else { 422 };
    let body = serde_json::to_vec(&report).unwrap_or_default();
    http::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(brama_transport::body::full(Bytes::from(body)))
        .expect("static response parts are valid")
}

/// Incoming connections per listener and the request-body memory budget.
fn intake_metrics(gw: &Gateway) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let series: [(&str, &str, &str); 3] = [
        (
            "brama_connections_open",
            "gauge",
            "Open incoming connections",
        ),
        (
            "brama_connections_shed_total",
            "counter",
            "Idle connections closed to make room near max_connections",
        ),
        (
            "brama_connections_silent_total",
            "counter",
            "Connections closed for sending nothing within first_byte_timeout_ms",
        ),
    ];
    for (i, (name, kind, help)) in series.iter().enumerate() {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (listener, s) in gw.listeners.each() {
            let v = match i {
                0 => s.open.load(Ordering::Relaxed) as u64,
                1 => s.shed.load(Ordering::Relaxed),
                _ => s.silent.load(Ordering::Relaxed),
            };
            let _ = writeln!(out, "{name}{{listener=\"{listener}\"}} {v}");
        }
    }
    let b = &gw.intake.budget;
    let _ = writeln!(
        out,
        "# HELP brama_body_memory_bytes Request-body bytes held in memory\n# TYPE brama_body_memory_bytes gauge\nbrama_body_memory_bytes {}\n# HELP brama_body_memory_limit_bytes limits.body_memory_bytes\n# TYPE brama_body_memory_limit_bytes gauge\nbrama_body_memory_limit_bytes {}",
        b.in_use(),
        b.total()
    );
    out
}

/// Outgoing connections (to security servers and services).
fn pool_metrics(gw: &Gateway) -> String {
    let n = gw.pool.opened.load(Ordering::Relaxed);
    format!(
        "# HELP brama_connections_opened_total Outgoing connections opened (to security servers and services)\n\
         # TYPE brama_connections_opened_total counter\nbrama_connections_opened_total {n}\n"
    )
}

fn json(v: serde_json::Value) -> Response {
    wire::ok("application/json", Bytes::from(v.to_string()))
}

/// The global configuration in force and its downloads.
fn globalconf_status(gw: &Gateway) -> serde_json::Value {
    let trusted = gw.trusted();
    let gc = &trusted.gc;
    let shared = gc.own_shared();
    let now = crate::ocsp::now();
    serde_json::json!({
        "instance": gc.own_instance,
        "instances": gc.shared.keys().collect::<Vec<_>>(),
        "expiresAt": trusted.expires_at(),
        "expiresInSeconds": trusted.expires_at().map(|e| e - now),
        "members": shared.map_or(0, |s| s.members.len()),
        "securityServers": shared.map_or(0, |s| s.security_servers.len()),
        "approvedCAs": gc.approved_cas().map(|ca| serde_json::json!({
            "name": ca.name,
            "ocsp": std::iter::once(&ca.top_ca).chain(&ca.intermediate_cas)
                .flat_map(|i| i.ocsp.iter().map(|o| o.url.clone())).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "approvedTSAs": shared.map_or(Vec::new(), |s| s.approved_tsas.iter().map(|t| t.url.clone()).collect()),
        "ocspFreshnessSeconds": shared.map(|s| s.global_settings.ocsp_freshness_seconds),
        "download": gw.confclient.as_ref().map(|c| serde_json::json!({
            "anchorInstance": c.anchor.instance_identifier,
            "sources": c.anchor.sources.iter().map(|s| s.download_url.clone()).collect::<Vec<_>>(),
            "dir": c.dir.display().to_string(),
            "state": c.state(),
        })),
    })
}

/// The configuration in force: time to its expiry, time since it was last downloaded.
fn globalconf_metrics(gw: &Gateway) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let now = crate::ocsp::now();
    if let Some(at) = gw.trusted().expires_at() {
        let _ = writeln!(
            out,
            "# HELP brama_globalconf_expires_in_seconds Seconds until the global configuration in force expires (negative: expired)\n\
             # TYPE brama_globalconf_expires_in_seconds gauge\nbrama_globalconf_expires_in_seconds {}",
            at - now
        );
    }
    if let Some(c) = &gw.confclient {
        let s = c.state();
        if let Some(t) = s.last_success {
            let _ = writeln!(
                out,
                "# HELP brama_globalconf_age_seconds Seconds since the global configuration was last downloaded and checked\n\
                 # TYPE brama_globalconf_age_seconds gauge\nbrama_globalconf_age_seconds {}",
                now - t
            );
        }
        let _ = writeln!(
            out,
            "# HELP brama_globalconf_download_failures Downloads failed since the last good one\n\
             # TYPE brama_globalconf_download_failures gauge\nbrama_globalconf_download_failures {}",
            s.failures
        );
    }
    out
}

/// The message log's time-stamping: backlog, its oldest record's age, stamped records and
/// failed rounds.
fn message_log_metrics(gw: &Gateway) -> String {
    let Some(log) = gw.message_log.as_ref() else {
        return String::new();
    };
    let s = log.stamping.state();
    let age = s.oldest.map_or(0, |o| crate::ocsp::now() - o);
    format!(
        "# HELP brama_timestamp_backlog Message log records waiting for a time-stamp\n\
         # TYPE brama_timestamp_backlog gauge\n\
         brama_timestamp_backlog {}\n\
         # HELP brama_timestamp_oldest_age_seconds Age of the oldest record waiting for a \
         time-stamp (0: none waits)\n\
         # TYPE brama_timestamp_oldest_age_seconds gauge\n\
         brama_timestamp_oldest_age_seconds {age}\n\
         # HELP brama_timestamped_records_total Message log records time-stamped\n\
         # TYPE brama_timestamped_records_total counter\n\
         brama_timestamped_records_total {}\n\
         # HELP brama_timestamp_failures_total Time-stamping rounds that no approved TSA \
         answered usably\n\
         # TYPE brama_timestamp_failures_total counter\n\
         brama_timestamp_failures_total {}\n",
        s.backlog,
        log.stamping.stamped.load(Ordering::Relaxed),
        log.stamping.failures.load(Ordering::Relaxed),
    )
}

/// The age and freshness left of each of the server's own OCSP responses.
fn ocsp_metrics(gw: &Gateway) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let status = gw.own_ocsp.status();
    let series: [(&str, &str); 3] = [
        (
            "brama_ocsp_response_age_seconds",
            "Age of the server's own OCSP response (since thisUpdate), by certificate",
        ),
        (
            "brama_ocsp_response_fresh_seconds",
            "Seconds until the server's own OCSP response stops being fresh (negative: stale)",
        ),
        (
            "brama_ocsp_response_good",
            "1 when the server's own certificate has a good, fresh OCSP response",
        ),
    ];
    for (i, (name, help)) in series.iter().enumerate() {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for c in &status {
            let v = match i {
                0 => c.age_s,
                1 => c.fresh_for_s,
                _ => Some(i64::from(c.state == "good")),
            };
            if let Some(v) = v {
                let _ = writeln!(
                    out,
                    "{name}{{certificate=\"{}\",sha1=\"{}\"}} {v}",
                    label(&c.label),
                    c.sha1
                );
            }
        }
    }
    let _ = writeln!(
        out,
        "# HELP brama_ocsp_fetch_failures_total Fetches of the server's own OCSP responses that no responder answered usably\n\
         # TYPE brama_ocsp_fetch_failures_total counter\nbrama_ocsp_fetch_failures_total {}",
        gw.own_ocsp.fetch_failures.load(Ordering::Relaxed)
    );
    out
}

/// Per-key signer state in Prometheus text format.
fn signer_metrics(gw: &Gateway) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let series: [(&str, &str, &str); 6] = [
        (
            "brama_signer_sign_calls_total",
            "counter",
            "Token signing calls (C_Sign)",
        ),
        (
            "brama_signer_messages_total",
            "counter",
            "Messages covered by signatures",
        ),
        (
            "brama_signer_failures_total",
            "counter",
            "Failed signing calls",
        ),
        (
            "brama_signer_session_reopens_total",
            "counter",
            "Sessions reopened after a failure",
        ),
        (
            "brama_signer_sessions_ready",
            "gauge",
            "Logged-in sessions able to sign",
        ),
        ("brama_signer_sessions", "gauge", "Configured sessions"),
    ];
    for (i, (name, kind, help)) in series.iter().enumerate() {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for k in gw.signer.keys() {
            let s = &k.stats;
            let v = match i {
                0 => s.sign_calls.load(Ordering::Relaxed),
                1 => s.messages.load(Ordering::Relaxed),
                2 => s.failures.load(Ordering::Relaxed),
                3 => s.reopens.load(Ordering::Relaxed),
                4 => s.sessions_ready.load(Ordering::Relaxed) as u64,
                _ => s.sessions_total.load(Ordering::Relaxed) as u64,
            };
            let member = k.member.to_string();
            let _ = writeln!(out, "{name}{{member=\"{}\"}} {v}", label(&member));
        }
    }
    out
}
