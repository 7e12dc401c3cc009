//! The delivery engine: runs attempts, records each one on disk before and after it, retries
//! with backoff, releases the services waiting for a delivered one, and fails (and reports) what
//! cannot be delivered.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use bytes::Bytes;
use serde_json::{json, Value};
use tokio::sync::{watch, OwnedSemaphorePermit};

use super::application::Application;
use super::flow::{self, Verdict};
use super::lanes::{Key, Lane};
use super::model::*;
use super::retry::{backoff, AttemptError};
use super::store::{Batch, Store, StoreError, Txn};
use super::RouterError;
use brama_gateway::config::router::RouterConf;
use brama_gateway::proxy::{client, Gateway};
use brama_xroad::error::Fault;
use brama_xroad::identifiers::ClientId;
use brama_xroad::message::soap::{SoapLimits, SoapMessage};
use brama_xroad::message::SoapEnvelope;

/// A submission's `Idempotency-Key` and the SHA-256 of its body (hex).
pub struct Idempotency {
    pub key: String,
    pub body_sha256: String,
}

/// An accepted application: stored now, or found as the first of an idempotency key's repeats.
pub struct Accepted {
    pub id: String,
    pub replayed: bool,
}

/// Counters for `/metrics`.
#[derive(Default)]
pub struct EngineStats {
    pub accepted: AtomicU64,
    pub attempts: AtomicU64,
    pub delivered: AtomicU64,
    pub retries: AtomicU64,
    pub failed: AtomicU64,
    pub polls: AtomicU64,
}

pub struct Engine {
    pub store: Arc<Store>,
    pub conf: Arc<RouterConf>,
    gw: Weak<Gateway>,
    lanes: HashMap<String, Arc<Lane>>,
    running: Mutex<HashSet<Key>>,
    pub stats: EngineStats,
    /// Wakes the support notifier.
    pub notify: tokio::sync::Notify,
}

impl Engine {
    /// The gateway deliveries and notifications go through, while it runs.
    pub(crate) fn gateway(&self) -> Option<Arc<Gateway>> {
        self.gw.upgrade()
    }

    /// `gw` may be empty (a tool working on the store while no server runs): then nothing is sent.
    pub fn new(store: Arc<Store>, conf: Arc<RouterConf>, gw: Weak<Gateway>) -> Arc<Engine> {
        let lanes = conf
            .registries
            .iter()
            .map(|(name, r)| (name.clone(), Arc::new(Lane::new(r.concurrency))))
            .collect();
        Arc::new(Engine {
            store,
            conf,
            gw,
            lanes,
            running: Mutex::new(HashSet::new()),
            stats: EngineStats::default(),
            notify: tokio::sync::Notify::new(),
        })
    }

    /// Starts one dispatcher per registry.
    pub fn start(self: &Arc<Self>, stop: watch::Receiver<bool>) {
        for lane in self.lanes.values() {
            let lane = lane.clone();
            let engine = Arc::downgrade(self);
            let stop = stop.clone();
            tokio::spawn(async move {
                lane.run(stop, move |key, permit| {
                    if let Some(e) = engine.upgrade() {
                        tokio::spawn(async move { e.attempt(key, permit).await });
                    }
                })
                .await;
            });
        }
    }

    /// Queue lengths and attempts in flight per registry.
    pub(crate) fn lanes(&self) -> Vec<(String, usize, usize)> {
        self.lanes
            .iter()
            .map(|(n, l)| {
                let c = self.conf.registries[n].concurrency;
                (n.clone(), l.len(), l.in_flight(c))
            })
            .collect()
    }

    fn schedule(&self, d: &Delivery) {
        if let (Some(at), Some(lane)) = (d.next_attempt_at, self.lanes.get(&d.registry)) {
            lane.schedule(at, (d.application.clone(), d.service.clone()));
        }
    }

    /// Stores a new application with its plan, durably, and schedules what can start. With
    /// an idempotency key seen from this submitter within the window, nothing new is stored:
    /// the first application's id comes back, `replayed`.
    pub async fn accept(
        &self,
        app: &Application,
        submitter: &ClientId,
        idempotency: Option<&Idempotency>,
    ) -> Result<Accepted, RouterError> {
        // Nothing is taken that cannot be stored now: refused at once, not after a wait.
        if let Some(why) = self.store.failing() {
            return Err(StoreError::Unavailable(why).into());
        }
        let submitter_id = submitter.to_string();
        // Repeats of one key wait for each other, on any node: the first stores, the others
        // find it.
        let lock = idempotency.map(|k| format!("k/{submitter_id}/{}", k.key));
        let mut tx = self.store.begin(lock.as_deref()).await?;
        if let Some(k) = idempotency {
            if let Some(first) = tx.idempotency(&submitter_id, &k.key).await? {
                let fresh = now_ms().saturating_sub(first.at)
                    <= self.conf.idempotency_window.as_millis() as u64;
                if fresh && tx.has_app(&first.application).await? {
                    if first.body_sha256 != k.body_sha256 {
                        return Err(RouterError::Conflict(format!(
                            "Idempotency-Key '{}' was used for application {} with a different body",
                            k.key, first.application
                        )));
                    }
                    return Ok(Accepted {
                        id: first.application,
                        replayed: true,
                    });
                }
            }
        }
        let id = uuid::Uuid::now_v7().to_string();
        let now = now_ms();
        let plan = flow::plan(app);
        let record = AppRecord {
            id: id.clone(),
            received_at: now,
            application: app.json.clone(),
            services: plan.iter().map(|s| s.name.to_string()).collect(),
            submitter: Some(submitter_id.clone()),
            idempotency_key: idempotency.map(|k| k.key.clone()),
        };
        let mut deliveries = Vec::with_capacity(plan.len());
        for spec in &plan {
            let mut d = Delivery {
                application: id.clone(),
                service: spec.name.into(),
                registry: spec.registry.into(),
                state: State::Pending,
                waiting_for: spec
                    .needs
                    .iter()
                    .filter(|n| plan.iter().any(|p| p.name == **n))
                    .map(|n| n.to_string())
                    .collect(),
                xroad_id: uuid::Uuid::new_v4().to_string(),
                request: None,
                has_request: false,
                rest_path: None,
                request_dirty: false,
                attempt_count: 0,
                attempts: Vec::new(),
                attempts_dropped: 0,
                next_attempt_at: None,
                last_error: None,
                answer: None,
                created_at: now,
                ready_at: None,
                finished_at: None,
                lease: None,
            };
            if d.waiting_for.is_empty() {
                self.prepare(&mut d, app, &BTreeMap::new())
                    .map_err(RouterError::Plan)?;
            }
            deliveries.push(d);
        }
        // One batch, committed whole: the deliveries and the application record together.
        let mut b = Batch::default();
        for d in &deliveries {
            b.put_delivery(d);
        }
        b.put_app(&record);
        if let Some(k) = idempotency {
            let r = IdempotencyRecord {
                application: id.clone(),
                body_sha256: k.body_sha256.clone(),
                at: now,
            };
            b.put_idempotency(&submitter_id, &k.key, &r);
        }
        tx.apply(b)?;
        if let Err(e) = tx.commit_durable().await {
            // Refused, so withdrawn: committed later, once the store can, it would be an
            // application nobody was told about (and that the caller sends again).
            let mut undo = Batch::default();
            undo.remove_app(&record);
            if let Err(again) = self.store.write(undo).await {
                tracing::error!(application = %record.id, error = %again, "a refused application could not be withdrawn");
            }
            return Err(e.into());
        }
        self.stats.accepted.fetch_add(1, Ordering::Relaxed);
        for d in &deliveries {
            self.schedule(d);
        }
        Ok(Accepted {
            id,
            replayed: false,
        })
    }

    /// Builds the request of a delivery whose inputs are all known, and makes it due now.
    fn prepare(
        &self,
        d: &mut Delivery,
        app: &Application,
        answers: &BTreeMap<&str, &Value>,
    ) -> Result<(), String> {
        let reg = self
            .conf
            .registries
            .get(&d.registry)
            .ok_or_else(|| format!("registry '{}' is not configured", d.registry))?;
        let request = match self.conf.rest_services.get(&d.service) {
            Some(code) => {
                let service =
                    brama_xroad::identifiers::ServiceId::new(reg.subsystem.clone(), code, None);
                d.rest_path = Some(brama_gateway::rest::target::path_for(&service, ""));
                flow::rest_request(&d.service, app, answers)?
            }
            None => {
                d.rest_path = None;
                flow::request(&d.service, app, answers)?
            }
        };
        let now = now_ms();
        d.request = Some(request);
        d.has_request = true;
        d.request_dirty = true;
        d.state = State::Pending;
        d.ready_at = Some(now);
        d.next_attempt_at = Some(now);
        Ok(())
    }

    async fn attempt(self: Arc<Self>, key: Key, permit: OwnedSemaphorePermit) {
        if !self.lock_running().insert(key.clone()) {
            return;
        }
        let res = self.run_attempt(&key).await;
        self.lock_running().remove(&key);
        drop(permit);
        if let Err(e) = res {
            // The store failed (it may not even read now): look again shortly; an attempt left
            // in flight is taken up again then, as after a restart.
            tracing::error!(application = %key.0, service = %key.1, error = %e, "delivery attempt not recorded");
            if let Some(lane) = flow::spec(&key.1).and_then(|s| self.lanes.get(s.registry)) {
                lane.schedule(now_ms() + 1000, key);
            }
        }
    }

    fn lock_running(&self) -> std::sync::MutexGuard<'_, HashSet<Key>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn run_attempt(&self, (app, svc): &Key) -> Result<(), StoreError> {
        // The lease taken below runs from about now: the attempt, its send included, must end
        // within `policy.timeout` of it, whatever stalls this process meanwhile.
        let claimed = Instant::now();
        let now = now_ms();
        let me = self.store.node();
        let mut tx = self.store.begin(Some(app)).await?;
        let Some(mut d) = tx.delivery(app, svc).await? else {
            return Ok(());
        };
        // Another node sends it (or will): not this one.
        if d.held_by_other(me, now) {
            return Ok(());
        }
        // In flight with nobody running it (`running` says who does here; a lease that ran out
        // says its node stopped): its outcome is unknown. Interrupted, as after a restart, and
        // sent again under the same X-Road id.
        if d.state == State::InFlight {
            let why = match &d.lease {
                Some(l) if Some(l.owner.as_str()) != me => "the node sending it stopped",
                _ => "the store could not record the attempt's outcome",
            };
            d.interrupt(now, why);
        }
        // A stale heap entry (rescheduled, retried by hand, finished) is dropped here.
        let due = d.next_attempt_at.is_some_and(|t| t <= now + 5);
        let Some(request) = d.request.clone() else {
            return Ok(());
        };
        if !matches!(d.state, State::Pending | State::Retrying) || !due {
            return Ok(());
        }
        let Some(reg) = self.conf.registries.get(&d.registry) else {
            return Ok(());
        };
        let policy = reg.policy.clone();
        let before = d.clone();
        let number = d.attempts.last().map_or(1, |a| a.number + 1);
        d.state = State::InFlight;
        d.attempt_count += 1;
        d.next_attempt_at = None;
        d.push_attempt(Attempt {
            number,
            started_at: now,
            xroad_id: d.xroad_id.clone(),
            outcome: Outcome::Started,
            fault_code: None,
            message: None,
            latency_ms: None,
        });
        let mut b = Batch::default();
        b.put_delivery(&d);
        tx.apply(b)?;
        let recorded = match tx.commit().await {
            Ok(()) => self.store.durable().await,
            Err(e) => Err(e),
        };
        if let Err(e) = recorded {
            // Not sent: the attempt never began. Back as it was, due again once the store can
            // take it (`attempt` looks again shortly).
            let mut back = before;
            back.request_dirty = false;
            let mut b = Batch::default();
            b.put_delivery(&back);
            let mut tx = self.store.begin(Some(app)).await?;
            tx.apply(b)?;
            tx.commit().await?;
            return Err(e);
        }
        self.stats.attempts.fetch_add(1, Ordering::Relaxed);

        let started = Instant::now();
        let send_by = claimed + policy.timeout;
        let left = send_by.saturating_duration_since(started);
        let sent = match &d.rest_path {
            Some(path) => {
                let send = self.send_rest(path, &d.xroad_id, &d.application, request, send_by);
                match tokio::time::timeout(left, send).await {
                    Err(_) => Err(AttemptError::Timeout),
                    Ok(r) => r.and_then(|json| flow::interpret_json(svc, &json)),
                }
            }
            None => {
                let send = self.send(&d, &reg.subsystem, &request, send_by);
                match tokio::time::timeout(left, send).await {
                    Err(_) => Err(AttemptError::Timeout),
                    Ok(r) => r.and_then(|answer| flow::interpret(svc, &answer.soap)),
                }
            }
        };
        let verdict = sent;
        let latency = started.elapsed().as_millis() as u64;

        let mut tx = self.store.begin(Some(app)).await?;
        // Reloaded: an operator may have purged it meanwhile. The request stays as stored.
        let Some(mut d) = tx.delivery_record(app, svc).await? else {
            return Ok(());
        };
        // Taken over by another node meanwhile (this one stalled past its lease): its attempt
        // is the one that counts.
        if d.state != State::InFlight || d.held_by_other(me, now_ms()) {
            return Ok(());
        }
        let now = now_ms();
        let last = d.attempts.last_mut().expect("the attempt was recorded");
        last.latency_ms = Some(latency);
        // In order: this delivery's outcome, then the services it releases (see `Batch`); a
        // failure makes it atomic.
        let mut batch = Batch::default();
        let mut release_batch = Batch::default();
        let mut wake_notifier = false;
        let mut released = Vec::new();
        match verdict {
            Ok(Verdict::Done(answer)) => {
                last.outcome = Outcome::Delivered;
                d.state = State::Delivered;
                d.answer = Some(answer);
                d.last_error = None;
                d.finished_at = Some(now);
                self.stats.delivered.fetch_add(1, Ordering::Relaxed);
                released = self.release(&mut tx, &d, &mut release_batch).await?;
            }
            Ok(Verdict::NotYet(answer)) => {
                last.outcome = Outcome::NotYet;
                d.attempt_count -= 1;
                d.answer = Some(answer);
                self.stats.polls.fetch_add(1, Ordering::Relaxed);
                if too_old(&d, &policy, now) {
                    let e = ErrorInfo {
                        code: "Router.MaxAgeExceeded".into(),
                        message: "the registry did not finish the work in time".into(),
                    };
                    wake_notifier = self.fail(&mut tx, &mut d, e, &mut batch).await?;
                } else {
                    d.state = State::Pending;
                    d.next_attempt_at = Some(now + self.conf.poll_interval.as_millis() as u64);
                }
            }
            Err(e) => {
                last.outcome = if e.retryable() {
                    Outcome::Retryable
                } else {
                    Outcome::Final
                };
                last.fault_code = Some(e.code());
                last.message = Some(e.message());
                let info = ErrorInfo {
                    code: e.code(),
                    message: e.message(),
                };
                let exhausted = policy.max_attempts.is_some_and(|n| d.attempt_count >= n);
                if e.retryable() && !exhausted && !too_old(&d, &policy, now) {
                    let delay = backoff(&policy, d.attempt_count, rand::random::<f64>());
                    d.state = State::Retrying;
                    d.next_attempt_at = Some(now + delay.as_millis() as u64);
                    d.last_error = Some(info);
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                } else {
                    let info = if e.retryable() {
                        ErrorInfo {
                            message: format!(
                                "gave up after {} attempts in {} s: {}",
                                d.attempt_count,
                                d.ready_at.map_or(0, |r| now.saturating_sub(r) / 1000),
                                info.message
                            ),
                            ..info
                        }
                    } else {
                        info
                    };
                    wake_notifier = self.fail(&mut tx, &mut d, info, &mut batch).await?;
                }
            }
        }
        batch.put_delivery(&d);
        batch.append(release_batch);
        tx.apply(batch)?;
        tx.commit().await?;
        // Not awaited: the store commits batches in order, and at once, so this outcome is on
        // disk before any later one. Lost in a crash before that, the attempt shows as
        // interrupted and is sent again under the same X-Road id.
        self.schedule(&d);
        for r in &released {
            self.schedule(r);
        }
        if wake_notifier {
            self.notify.notify_one();
        }
        Ok(())
    }

    /// Sends a SOAP delivery through the client proxy: its stored Body element in an envelope
    /// built (not parsed) under the delivery's X-Road id, the same on every attempt.
    async fn send(
        &self,
        d: &Delivery,
        provider: &brama_xroad::identifiers::ClientId,
        body: &str,
        send_by: Instant,
    ) -> Result<SoapEnvelope, AttemptError> {
        let gw = self
            .gw
            .upgrade()
            .ok_or_else(|| AttemptError::Network("the server is stopping".into()))?;
        let header = flow::Header {
            client: &self.conf.client,
            provider,
            id: &d.xroad_id,
            application: &d.application,
        };
        let env = match legacy_body(body, gw.soap_limits()) {
            Some(body) => flow::soap_request(&d.service, &header, &body?),
            None => flow::soap_request(&d.service, &header, body),
        }
        .map_err(|e| AttemptError::Malformed(format!("stored request: {e}")))?;
        client::exchange(&gw, SoapEnvelope::plain(env), None, Some(send_by))
            .await
            .map_err(AttemptError::Fault)
    }

    /// POSTs a REST delivery's JSON through the client proxy: same X-Road id on every attempt,
    /// the application as `X-Road-Issue`. A 2xx answer is the registry's JSON; an error with
    /// `{type, message}` (the registry's or X-Road's) becomes a fault, anything else an HTTP error.
    async fn send_rest(
        &self,
        path: &str,
        xroad_id: &str,
        application: &str,
        body: String,
        send_by: Instant,
    ) -> Result<Bytes, AttemptError> {
        let gw = self
            .gw
            .upgrade()
            .ok_or_else(|| AttemptError::Network("the server is stopping".into()))?;
        let headers = vec![
            (
                brama_gateway::rest::HDR_CLIENT.to_string(),
                brama_gateway::rest::target::client_header(&self.conf.client),
            ),
            (
                brama_gateway::rest::HDR_ID.to_string(),
                xroad_id.to_string(),
            ),
            (
                brama_gateway::rest::HDR_ISSUE.to_string(),
                application.to_string(),
            ),
            ("content-type".to_string(), "application/json".to_string()),
            ("accept".to_string(), "application/json".to_string()),
        ];
        let request_id = uuid::Uuid::new_v4().to_string();
        let request = brama_gateway::rest::header_part::RestRequest::build(
            "POST",
            path,
            None,
            headers,
            &request_id,
        )
        .map_err(|e| AttemptError::Malformed(format!("stored request: {e}")))?;
        let body = brama_transport::spool::Spooled::from_bytes(Bytes::from(body), gw.digest());
        let (resp, answer) = brama_gateway::proxy::rest_client::exchange(
            &gw,
            &request,
            Some(&body),
            None,
            Some(send_by),
        )
        .await
        .map_err(AttemptError::Fault)?;
        let bytes = match answer {
            Some(b) => b
                .to_bytes()
                .await
                .map_err(|e| AttemptError::Network(e.to_string()))?,
            None => Bytes::new(),
        };
        if (200..300).contains(&resp.status) {
            return Ok(bytes);
        }
        let err: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        match (err["type"].as_str(), err["message"].as_str()) {
            (Some(code), Some(message)) => Err(AttemptError::Fault(Fault::remote(
                code.to_string(),
                message.to_string(),
                None,
            ))),
            _ => Err(AttemptError::Http(resp.status)),
        }
    }

    /// The deliveries of `d`'s application that were waiting only for `d` get their request
    /// built (into `batch`); returned so they can be scheduled once written.
    async fn release(
        &self,
        tx: &mut Txn<'_>,
        d: &Delivery,
        batch: &mut Batch,
    ) -> Result<Vec<Delivery>, StoreError> {
        let mut all = tx.deliveries(&d.application).await?;
        for e in all.iter_mut() {
            if e.service == d.service {
                *e = d.clone();
            }
        }
        let waiting: Vec<usize> = (0..all.len())
            .filter(|&i| all[i].state == State::Pending && all[i].waiting_for.contains(&d.service))
            .collect();
        if waiting.is_empty() {
            return Ok(Vec::new());
        }
        let app = match application(tx, &d.application).await? {
            Some(a) => a,
            None => return Ok(Vec::new()),
        };
        let mut out = Vec::new();
        for i in waiting {
            let mut e = all[i].clone();
            e.waiting_for.retain(|w| *w != d.service);
            if e.waiting_for.is_empty() {
                if let Err(m) = self.prepare(&mut e, &app, &delivered_answers(&all)) {
                    let info = ErrorInfo {
                        code: "Router.CannotBuildRequest".into(),
                        message: m,
                    };
                    if self.fail(tx, &mut e, info, batch).await? {
                        self.notify.notify_one();
                    }
                    batch.put_delivery(&e);
                    continue;
                }
                out.push(e.clone());
            }
            batch.put_delivery(&e);
        }
        Ok(out)
    }

    /// Marks `d` failed, fails what waits for it, and queues a support notification. Returns
    /// whether one was queued.
    async fn fail(
        &self,
        tx: &mut Txn<'_>,
        d: &mut Delivery,
        e: ErrorInfo,
        batch: &mut Batch,
    ) -> Result<bool, StoreError> {
        let now = now_ms();
        d.state = State::Failed;
        d.next_attempt_at = None;
        d.finished_at = Some(now);
        d.last_error = Some(e.clone());
        self.stats.failed.fetch_add(1, Ordering::Relaxed);
        // Everything that needs it, directly or not, cannot happen now.
        let mut all = tx.deliveries(&d.application).await?;
        let mut failed = vec![d.service.clone()];
        let mut cascaded = Vec::new();
        loop {
            let mut more = false;
            for x in all.iter_mut() {
                if x.state == State::Pending && x.waiting_for.iter().any(|w| failed.contains(w)) {
                    x.state = State::Failed;
                    x.finished_at = Some(now);
                    x.last_error = Some(ErrorInfo {
                        code: "Router.DependencyFailed".into(),
                        message: format!("{} failed: {}", d.service, e.message),
                    });
                    failed.push(x.service.clone());
                    cascaded.push(x.service.clone());
                    batch.put_delivery(x);
                    more = true;
                }
            }
            if !more {
                break;
            }
        }
        if self.conf.webhook_url.is_none() {
            tracing::warn!(application = %d.application, service = %d.service, code = %e.code, "delivery failed (no webhook configured)");
            return Ok(false);
        }
        let n = Notification {
            id: uuid::Uuid::now_v7().to_string(),
            created_at: now,
            attempts: 0,
            next_attempt_at: now,
            last_error: None,
            body: json!({
                "event": "delivery.failed",
                "application": d.application,
                "service": d.service,
                "registry": d.registry,
                "xroadId": d.xroad_id,
                "attempts": d.attempt_count,
                "error": { "code": e.code, "message": e.message },
                "alsoFailed": cascaded,
                "failedAt": super::api::rfc3339(now),
                "history": d.attempts,
            }),
        };
        batch.put_notification(&n);
        Ok(true)
    }

    /// After a restart: interrupted attempts are marked and retried under the same X-Road id,
    /// and everything unfinished is scheduled again (in a shared store: what this node held, and
    /// what nobody holds).
    pub(crate) async fn recover(&self) -> Result<usize, StoreError> {
        let resumable = self.store.resumable().await?;
        let me = self.store.node();
        let now = now_ms();
        let mut count = 0;
        for (app, svc) in resumable {
            let mut tx = self.store.begin(Some(&app)).await?;
            let found = match tx.delivery(&app, &svc).await? {
                // Without its application record: written by an `accept` that did not finish,
                // so never acknowledged and never sent.
                Some(d) if tx.has_app(&app).await? => Some(d),
                _ => None,
            };
            let Some(mut d) = found else {
                let mut b = Batch::default();
                b.remove_delivery(&app, &svc);
                tx.apply(b)?;
                tx.commit().await?;
                continue;
            };
            if d.held_by_other(me, now) || d.state.is_terminal() {
                continue;
            }
            let mut batch = Batch::default();
            if d.state == State::InFlight {
                d.interrupt(now, "brama stopped while the attempt was in flight");
            } else if d.state == State::Pending && !d.has_request {
                let all = tx.deliveries(&app).await?;
                // What it waited for may have been delivered just before the crash, ahead of the
                // write that released it.
                let delivered = delivered_answers(&all);
                d.waiting_for
                    .retain(|w| !delivered.contains_key(w.as_str()));
                if d.waiting_for.is_empty() {
                    if let Some(application) = application(&mut tx, &app).await? {
                        if let Err(m) = self.prepare(&mut d, &application, &delivered) {
                            let info = ErrorInfo {
                                code: "Router.CannotBuildRequest".into(),
                                message: m,
                            };
                            self.fail(&mut tx, &mut d, info, &mut batch).await?;
                        }
                    }
                }
            }
            batch.put_delivery(&d);
            tx.apply(batch)?;
            tx.commit().await?;
            self.schedule(&d);
            count += 1;
        }
        self.store.durable().await?;
        Ok(count)
    }

    /// In a shared store, every `every`: deliveries whose node's lease ran out are claimed and
    /// scheduled here.
    pub(crate) fn start_orphan_scan(
        self: &Arc<Self>,
        every: std::time::Duration,
        mut stop: watch::Receiver<bool>,
    ) {
        let engine = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = stop.changed() => return,
                }
                let Some(e) = engine.upgrade() else { return };
                match e.store.claim_orphans(1000).await {
                    Ok(claimed) => {
                        if !claimed.is_empty() {
                            tracing::info!(
                                deliveries = claimed.len(),
                                "took over deliveries whose node stopped"
                            );
                        }
                        for (app, svc, due) in claimed {
                            if let Some(lane) =
                                flow::spec(&svc).and_then(|s| e.lanes.get(s.registry))
                            {
                                lane.schedule(due, (app, svc));
                            }
                        }
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "looking for deliveries to take over failed")
                    }
                }
            }
        });
    }

    /// Operator retry: failed deliveries of `app` (or only `service`) start over with a fresh
    /// attempt budget, under their X-Road id; services that failed because of them wait again.
    pub async fn retry(&self, app: &str, service: Option<&str>) -> Result<usize, RouterError> {
        let mut tx = self.store.begin(Some(app)).await?;
        let all = tx.deliveries(app).await?;
        if all.is_empty() {
            return Err(RouterError::NotFound(app.to_string()));
        }
        if let Some(s) = service.filter(|s| !all.iter().any(|d| d.service == *s)) {
            let known: Vec<&str> = all.iter().map(|d| d.service.as_str()).collect();
            return Err(RouterError::BadRequest(format!(
                "application {app} has no service '{s}' (it has {})",
                known.join(", ")
            )));
        }
        let application = application(&mut tx, app)
            .await?
            .ok_or_else(|| RouterError::NotFound(app.to_string()))?;
        let now = now_ms();
        let mut batch = Batch::default();
        let mut restarted = Vec::new();
        let delivered: HashSet<&str> = all
            .iter()
            .filter(|d| d.state == State::Delivered)
            .map(|d| d.service.as_str())
            .collect();
        for d in &all {
            if d.state != State::Failed || service.is_some_and(|s| s != d.service) {
                continue;
            }
            let mut d = d.clone();
            d.attempt_count = 0;
            d.finished_at = None;
            let spec = flow::spec(&d.service);
            d.waiting_for = spec
                .map(|s| s.needs)
                .unwrap_or_default()
                .iter()
                .filter(|n| all.iter().any(|x| x.service == **n) && !delivered.contains(**n))
                .map(|n| n.to_string())
                .collect();
            d.state = State::Pending;
            if d.waiting_for.is_empty() {
                if d.has_request {
                    d.ready_at = Some(now);
                    d.next_attempt_at = Some(now);
                } else {
                    self.prepare(&mut d, &application, &delivered_answers(&all))
                        .map_err(RouterError::Plan)?;
                }
            }
            batch.put_delivery(&d);
            restarted.push(d);
        }
        tx.apply(batch)?;
        tx.commit().await?;
        self.store.durable().await?;
        for d in &restarted {
            self.schedule(d);
        }
        Ok(restarted.len())
    }
}

/// A request stored by an earlier version as a whole envelope (deliveries queued before an
/// upgrade): its Body's content, parsed out on each attempt. Requests stored since are the
/// Body's element itself, which never starts with an XML declaration.
fn legacy_body(stored: &str, limits: &SoapLimits) -> Option<Result<String, String>> {
    if !stored.starts_with("<?xml") {
        return None;
    }
    let soap = SoapMessage::parse(Bytes::from(stored.to_string()), None, limits);
    Some(
        soap.map_err(|e| e.to_string())
            .map(|m| String::from_utf8_lossy(m.body_content()).trim().to_string()),
    )
}

async fn application(tx: &mut Txn<'_>, id: &str) -> Result<Option<Application>, StoreError> {
    let Some(rec) = tx.app(id).await? else {
        return Ok(None);
    };
    Application::from_stored(rec.application)
        .map(Some)
        .map_err(|e| StoreError::Corrupt {
            key: format!("a/{id}"),
            reason: format!("stored application no longer valid: {e:?}"),
        })
}

/// The answers of an application's delivered services, by service: what later requests are built
/// from.
fn delivered_answers(all: &[Delivery]) -> BTreeMap<&str, &Value> {
    all.iter()
        .filter(|x| x.state == State::Delivered)
        .filter_map(|x| x.answer.as_ref().map(|a| (x.service.as_str(), a)))
        .collect()
}

fn too_old(d: &Delivery, p: &brama_gateway::config::router::RetryPolicy, now: Millis) -> bool {
    d.ready_at
        .is_some_and(|r| now.saturating_sub(r) > p.max_age.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A delivery queued before requests were stored as their Body's element still goes out
    /// byte for byte as it was stored.
    #[test]
    fn requests_stored_as_envelopes_are_sent_unchanged() {
        let client = ClientId::parse_path("SEVDEIR-TEST/GOV/00000001/DIIA").unwrap();
        let provider = ClientId::parse_path("SEVDEIR-TEST/GOV/00000002/DMS").unwrap();
        let header = flow::Header {
            client: &client,
            provider: &provider,
            id: "x-1",
            application: "app-1",
        };
        let element = "<u:assignUnzr xmlns:u=\"urn:x\"><a>1 &amp; 2</a></u:assignUnzr>";
        let built = flow::soap_request("assignUnzr", &header, element).unwrap();
        let stored = String::from_utf8(built.bytes.to_vec()).unwrap();
        let limits = SoapLimits::default();
        let body = legacy_body(&stored, &limits).unwrap().unwrap();
        assert_eq!(body, element);
        let again = flow::soap_request("assignUnzr", &header, &body).unwrap();
        assert_eq!(again.bytes, built.bytes);
        assert!(legacy_body(element, &limits).is_none());
        assert!(legacy_body("<?xml version=\"1.0\"?><broken", &limits)
            .unwrap()
            .is_err());
    }
}
