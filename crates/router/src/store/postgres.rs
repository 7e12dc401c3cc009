//! The router's store in PostgreSQL, shared by any number of nodes.
//!
//! Tables (`brama_pg::migrations`): applications, deliveries, notifications and idempotency keys, each
//! record as JSON beside the columns the nodes query. A transaction of the engine is a database
//! transaction holding an advisory lock on its application; its writes go in one round trip at
//! commit. A commit is durable (PostgreSQL's `synchronous_commit`), so an acknowledgement waits
//! for nothing more.
//!
//! Leases: each write of a delivery gives it to the writing node until its next attempt is due
//! plus `lease_margin` (in flight: until the attempt's timeout plus the margin). A node runs
//! only what it holds; every `orphan_scan` each node claims, with `FOR UPDATE SKIP LOCKED`, the
//! unfinished deliveries whose lease ran out (their node died or fell behind), and sends those
//! in flight again under their X-Road id. Notifications are claimed the same way.
//!
//! An unreachable database makes `failing` say why (the node refuses new applications,
//! its health check fails) until a probe reaches it again.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deadpool_postgres::{Object, Pool};
use futures_util::future::try_join_all;
use serde::de::DeserializeOwned;
use tokio_postgres::types::ToSql;

use super::super::model::{
    now_ms, AppRecord, Delivery, IdempotencyRecord, Lease, Millis, Notification, State,
};
use super::{lock_hash, Batch, Op, StoreError};
use brama_gateway::config::router::SharedStore;

/// What a node needs to use the shared store.
#[derive(Clone, Debug)]
pub struct PgConf {
    pub store: SharedStore,
    /// The longest attempt of any registry: a lease in flight lasts this plus the margin.
    pub longest_attempt: Duration,
}

pub(super) struct Pg {
    shared: Arc<Shared>,
}

struct Shared {
    pool: Pool,
    node: String,
    describe: String,
    margin_ms: u64,
    in_flight_ms: u64,
    /// Why the database cannot be used, while it cannot.
    failure: Mutex<Option<String>>,
    commits: AtomicU64,
    logical_bytes: AtomicU64,
    /// The write-ahead log's position when this node connected, and at the last probe.
    wal_start: u64,
    wal_now: AtomicU64,
}

impl Pg {
    pub(super) async fn connect(conf: &PgConf) -> Result<Pg, StoreError> {
        let s = &conf.store;
        let (pool, describe) = brama_pg::pool(&s.pg(), "router").map_err(StoreError::Engine)?;
        let client = pool
            .get()
            .await
            .map_err(|e| StoreError::Unavailable(format!("{describe}: {e}")))?;
        brama_pg::migrations::run(&client)
            .await
            .map_err(|e| StoreError::Engine(format!("{describe}: {e}")))?;
        let wal_start = wal_position(&client).await.unwrap_or(0);
        drop(client);
        let shared = Arc::new(Shared {
            pool,
            node: s.node.clone(),
            describe,
            margin_ms: s.lease_margin.as_millis() as u64,
            in_flight_ms: (conf.longest_attempt + s.lease_margin).as_millis() as u64,
            failure: Mutex::new(None),
            commits: AtomicU64::new(0),
            logical_bytes: AtomicU64::new(0),
            wal_start,
            wal_now: AtomicU64::new(wal_start),
        });
        tokio::spawn(probe(Arc::downgrade(&shared)));
        Ok(Pg { shared })
    }

    pub(super) fn node(&self) -> &str {
        &self.shared.node
    }

    pub(super) fn describe(&self) -> String {
        self.shared.describe.clone()
    }

    pub(super) fn failing(&self) -> Option<String> {
        self.shared
            .failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(super) async fn begin(&self, lock: Option<&str>) -> Result<PgTxn, StoreError> {
        let client = self.shared.client().await?;
        let start = match lock {
            // A number in the text: no injection, and one round trip for both.
            Some(name) => format!("BEGIN; SELECT pg_advisory_xact_lock({})", lock_hash(name)),
            None => "BEGIN".to_string(),
        };
        client
            .batch_execute(&start)
            .await
            .map_err(|e| self.shared.error(e))?;
        Ok(PgTxn {
            client: Some(client),
            shared: self.shared.clone(),
            batch: Batch::default(),
        })
    }

    pub(super) async fn app(&self, id: &str) -> Result<Option<AppRecord>, StoreError> {
        let c = self.shared.client().await?;
        app(&c, &self.shared, id).await
    }

    pub(super) async fn delivery(
        &self,
        app: &str,
        service: &str,
    ) -> Result<Option<Delivery>, StoreError> {
        let c = self.shared.client().await?;
        delivery(&c, &self.shared, app, service, true).await
    }

    pub(super) async fn deliveries(&self, app: &str) -> Result<Vec<Delivery>, StoreError> {
        let c = self.shared.client().await?;
        deliveries(&c, &self.shared, app).await
    }

    pub(super) async fn apps(&self, limit: usize) -> Result<Vec<AppRecord>, StoreError> {
        let c = self.shared.client().await?;
        let rows = self
            .shared
            .query(
                &c,
                "SELECT id, record::text FROM router_applications ORDER BY id LIMIT $1",
                &[&(limit.min(i64::MAX as usize) as i64)],
            )
            .await?;
        rows.iter().map(|r| decode(r.get(0), r.get(1))).collect()
    }

    /// What this node held before it restarted, and what nobody holds (claimed).
    pub(super) async fn resumable(&self) -> Result<Vec<(String, String)>, StoreError> {
        let c = self.shared.client().await?;
        let rows = self
            .shared
            .query(
                &c,
                "SELECT application, service FROM router_deliveries \
                 WHERE state IN ('pending', 'retrying', 'in_flight') AND lease_owner = $1",
                &[&self.shared.node],
            )
            .await?;
        let mut out: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        drop(c);
        let orphans = self.claim_orphans(usize::MAX).await?;
        out.extend(orphans.into_iter().map(|(a, s, _)| (a, s)));
        Ok(out)
    }

    /// Unfinished deliveries whose lease ran out, now this node's, with when each is due.
    pub(super) async fn claim_orphans(
        &self,
        limit: usize,
    ) -> Result<Vec<(String, String, Millis)>, StoreError> {
        let c = self.shared.client().await?;
        let now = now_ms() as i64;
        let rows = self
            .shared
            .query(
                &c,
                "WITH due AS ( \
                   SELECT application, service FROM router_deliveries \
                   WHERE state IN ('pending', 'retrying', 'in_flight') AND lease_until < $2 \
                   ORDER BY lease_until LIMIT $3 FOR UPDATE SKIP LOCKED) \
                 UPDATE router_deliveries d SET lease_owner = $1, lease_until = \
                   CASE WHEN d.state = 'in_flight' THEN $2 + $4 \
                        ELSE GREATEST(d.next_attempt_at, $2) + $5 END \
                 FROM due WHERE d.application = due.application AND d.service = due.service \
                 RETURNING d.application, d.service, COALESCE(d.next_attempt_at, $2)",
                &[
                    &self.shared.node,
                    &now,
                    &(limit.min(i64::MAX as usize) as i64),
                    &(self.shared.in_flight_ms as i64),
                    &(self.shared.margin_ms as i64),
                ],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get::<_, i64>(2) as Millis))
            .collect())
    }

    /// Due notifications nobody holds, claimed for this node; and when to look again (soon:
    /// other nodes add them too).
    pub(super) async fn due_notifications(
        &self,
        now: Millis,
    ) -> Result<(Vec<Notification>, Option<Millis>), StoreError> {
        let c = self.shared.client().await?;
        let rows = self
            .shared
            .query(
                &c,
                "WITH due AS ( \
                   SELECT id FROM router_notifications \
                   WHERE next_attempt_at <= $2 AND (lease_until IS NULL OR lease_until < $2) \
                   ORDER BY next_attempt_at LIMIT 64 FOR UPDATE SKIP LOCKED) \
                 UPDATE router_notifications n SET lease_owner = $1, lease_until = $2 + $3 \
                 FROM due WHERE n.id = due.id RETURNING n.id, n.record::text",
                &[
                    &self.shared.node,
                    &(now as i64),
                    &(self.shared.margin_ms as i64),
                ],
            )
            .await?;
        let due = rows
            .iter()
            .map(|r| decode(r.get(0), r.get(1)))
            .collect::<Result<Vec<Notification>, _>>()?;
        let next = self
            .shared
            .query(
                &c,
                "SELECT min(GREATEST(next_attempt_at, COALESCE(lease_until, 0))) \
                 FROM router_notifications",
                &[],
            )
            .await?
            .first()
            .and_then(|r| r.get::<_, Option<i64>>(0))
            .map(|t| t as Millis);
        let soon = now + 5_000;
        Ok((due, Some(next.map_or(soon, |t| t.min(soon)))))
    }

    pub(super) fn logical_bytes(&self) -> u64 {
        self.shared.logical_bytes.load(Ordering::Relaxed)
    }

    pub(super) fn commits(&self) -> u64 {
        self.shared.commits.load(Ordering::Relaxed)
    }

    /// Bytes of write-ahead log the database wrote since this node connected (every node's),
    /// as of the last probe.
    pub(super) fn wal_bytes(&self) -> u64 {
        self.shared
            .wal_now
            .load(Ordering::Relaxed)
            .saturating_sub(self.shared.wal_start)
    }
}

/// A transaction: reads on its connection, writes sent together at commit.
pub(crate) struct PgTxn {
    client: Option<Object>,
    shared: Arc<Shared>,
    batch: Batch,
}

impl PgTxn {
    pub(super) fn apply(&mut self, b: Batch) {
        self.batch.append(b);
    }

    fn client(&self) -> &Object {
        self.client
            .as_ref()
            .expect("a transaction's connection, until it ends")
    }

    pub(super) async fn app(&mut self, id: &str) -> Result<Option<AppRecord>, StoreError> {
        app(self.client(), &self.shared, id).await
    }

    pub(super) async fn idempotency(
        &mut self,
        submitter: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        let rows = self
            .shared
            .query(
                self.client(),
                "SELECT key, record::text FROM router_idempotency \
                 WHERE submitter = $1 AND key = $2",
                &[&submitter, &key],
            )
            .await?;
        rows.first().map(|r| decode(r.get(0), r.get(1))).transpose()
    }

    pub(super) async fn delivery(
        &mut self,
        app: &str,
        service: &str,
        with_request: bool,
    ) -> Result<Option<Delivery>, StoreError> {
        delivery(self.client(), &self.shared, app, service, with_request).await
    }

    pub(super) async fn deliveries(&mut self, app: &str) -> Result<Vec<Delivery>, StoreError> {
        deliveries(self.client(), &self.shared, app).await
    }

    pub(super) async fn commit(mut self) -> Result<(), StoreError> {
        let client = self.client.take().expect("committed once");
        let batch = std::mem::take(&mut self.batch);
        let written = batch.bytes;
        let has_writes = !batch.is_empty();
        let result = async {
            self.write(&client, batch).await?;
            client.batch_execute("COMMIT").await
        }
        .await;
        match result {
            Ok(()) => {
                if has_writes {
                    self.shared.commits.fetch_add(1, Ordering::Relaxed);
                    self.shared
                        .logical_bytes
                        .fetch_add(written, Ordering::Relaxed);
                }
                self.shared.recovered();
                Ok(())
            }
            Err(e) => {
                // Its transaction is aborted: the connection is closed rather than reused.
                drop(Object::take(client));
                Err(self.shared.error(e))
            }
        }
    }

    /// Every change of the batch, pipelined; the deliveries in one statement. Leases follow each
    /// delivery's state.
    async fn write(&self, c: &Object, batch: Batch) -> Result<(), tokio_postgres::Error> {
        let now = now_ms();
        let mut deliveries: Vec<DeliveryRow> = Vec::new();
        let mut others = Vec::new();
        for op in batch.ops {
            let Op::Delivery {
                application,
                service,
                registry,
                state,
                next_attempt_at,
                json,
                request,
            } = op
            else {
                others.push(op);
                continue;
            };
            let lease_until = match (state, next_attempt_at) {
                (State::InFlight, _) => Some(now + self.shared.in_flight_ms),
                (State::Pending | State::Retrying, Some(t)) => {
                    Some(t.max(now) + self.shared.margin_ms)
                }
                _ => None,
            };
            let row = DeliveryRow {
                application,
                service,
                registry,
                state: state_name(state),
                next_attempt_at: next_attempt_at.map(|t| t as i64),
                lease_owner: lease_until.map(|_| self.shared.node.clone()),
                lease_until: lease_until.map(|t| t as i64),
                json,
                request,
            };
            // A later write of the same delivery in this batch replaces the earlier one, and
            // carries its request (written once, with the write that built it).
            match deliveries
                .iter_mut()
                .find(|d| d.application == row.application && d.service == row.service)
            {
                Some(earlier) => {
                    let request = row.request.clone().or(earlier.request.take());
                    *earlier = DeliveryRow { request, ..row };
                }
                None => deliveries.push(row),
            }
        }
        // Removals and records in batch order, before the deliveries.
        try_join_all(others.iter().map(|op| statement(c, op))).await?;
        if deliveries.is_empty() {
            return Ok(());
        }
        let column = |f: fn(&DeliveryRow) -> &str| deliveries.iter().map(f).collect::<Vec<_>>();
        let (apps, services, registries, states, jsons) = (
            column(|d| &d.application),
            column(|d| &d.service),
            column(|d| &d.registry),
            column(|d| d.state),
            column(|d| &d.json),
        );
        let next: Vec<Option<i64>> = deliveries.iter().map(|d| d.next_attempt_at).collect();
        let owners: Vec<Option<&str>> = deliveries
            .iter()
            .map(|d| d.lease_owner.as_deref())
            .collect();
        let untils: Vec<Option<i64>> = deliveries.iter().map(|d| d.lease_until).collect();
        let requests: Vec<Option<&str>> = deliveries.iter().map(|d| d.request.as_deref()).collect();
        exec(
            c,
            "INSERT INTO router_deliveries AS d (application, service, registry, state, \
               next_attempt_at, lease_owner, lease_until, record, request) \
             SELECT a, s, r, st, n, lo, lu, j::json, q FROM unnest( \
               $1::text[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::text[], \
               $7::int8[], $8::text[], $9::text[]) AS t(a, s, r, st, n, lo, lu, j, q) \
             ON CONFLICT (application, service) DO UPDATE SET \
               registry = EXCLUDED.registry, state = EXCLUDED.state, \
               next_attempt_at = EXCLUDED.next_attempt_at, \
               lease_owner = EXCLUDED.lease_owner, lease_until = EXCLUDED.lease_until, \
               record = EXCLUDED.record, request = COALESCE(EXCLUDED.request, d.request)",
            &[
                &apps,
                &services,
                &registries,
                &states,
                &next,
                &owners,
                &untils,
                &jsons,
                &requests,
            ],
        )
        .await?;
        Ok(())
    }
}

/// One change other than a delivery's.
async fn statement(c: &Object, op: &Op) -> Result<u64, tokio_postgres::Error> {
    // The one time a record carries, as PostgreSQL's int8 (it has no unsigned type).
    let at: i64 = match op {
        Op::App { received_at, .. } => *received_at as i64,
        Op::Notification {
            next_attempt_at, ..
        } => *next_attempt_at as i64,
        _ => 0,
    };
    let (sql, params): (&str, Vec<&(dyn ToSql + Sync)>) = match op {
        Op::App { id, json, .. } => (
            "INSERT INTO router_applications (id, received_at, record) \
             VALUES ($1, $2, $3::text::json) \
             ON CONFLICT (id) DO UPDATE SET record = EXCLUDED.record",
            vec![id, &at, json],
        ),
        Op::RemoveApp(id) => ("DELETE FROM router_applications WHERE id = $1", vec![id]),
        Op::RemoveDelivery(a, s) => (
            "DELETE FROM router_deliveries WHERE application = $1 AND service = $2",
            vec![a, s],
        ),
        Op::Notification { id, json, .. } => (
            "INSERT INTO router_notifications (id, next_attempt_at, record) \
             VALUES ($1, $2, $3::text::json) ON CONFLICT (id) DO UPDATE SET \
             next_attempt_at = EXCLUDED.next_attempt_at, record = EXCLUDED.record, \
             lease_owner = NULL, lease_until = NULL",
            vec![id, &at, json],
        ),
        Op::RemoveNotification(id) => ("DELETE FROM router_notifications WHERE id = $1", vec![id]),
        Op::Idempotency {
            submitter,
            key,
            json,
        } => (
            "INSERT INTO router_idempotency (submitter, key, record) \
             VALUES ($1, $2, $3::text::json) \
             ON CONFLICT (submitter, key) DO UPDATE SET record = EXCLUDED.record",
            vec![submitter, key, json],
        ),
        Op::RemoveIdempotency(s, k) => (
            "DELETE FROM router_idempotency WHERE submitter = $1 AND key = $2",
            vec![s, k],
        ),
        Op::Delivery { .. } => return Ok(0), // written together, in `write`
    };
    exec(c, sql, &params).await
}

/// A statement, prepared once per connection.
async fn exec(
    c: &Object,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<u64, tokio_postgres::Error> {
    let stmt = c.prepare_cached(sql).await?;
    c.execute(&stmt, params).await
}

impl Drop for PgTxn {
    /// A transaction left without a commit (a read that found nothing to do, an error on the
    /// way) is rolled back before its connection goes back to the pool; without a runtime to
    /// do that, the connection is closed, which rolls it back too.
    fn drop(&mut self) {
        let Some(c) = self.client.take() else { return };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    if c.batch_execute("ROLLBACK").await.is_err() {
                        drop(Object::take(c));
                    }
                });
            }
            Err(_) => drop(Object::take(c)),
        }
    }
}

/// A delivery as its columns.
struct DeliveryRow {
    application: String,
    service: String,
    registry: String,
    state: &'static str,
    next_attempt_at: Option<i64>,
    lease_owner: Option<String>,
    lease_until: Option<i64>,
    json: String,
    request: Option<String>,
}

fn state_name(s: State) -> &'static str {
    match s {
        State::Pending => "pending",
        State::InFlight => "in_flight",
        State::Retrying => "retrying",
        State::Delivered => "delivered",
        State::Failed => "failed",
    }
}

impl Shared {
    async fn client(&self) -> Result<Object, StoreError> {
        use deadpool_postgres::{PoolError, TimeoutType};
        match self.pool.get().await {
            Ok(c) => Ok(c),
            // Every connection busy: this node is loaded, the database is fine.
            Err(PoolError::Timeout(TimeoutType::Wait)) => Err(StoreError::Unavailable(format!(
                "{}: all {} connections busy",
                self.describe,
                self.pool.status().max_size
            ))),
            Err(e) => {
                let why = format!("{}: {}", self.describe, brama_pg::with_causes(&e));
                self.set_failure(&why);
                Err(StoreError::Unavailable(why))
            }
        }
    }

    async fn query(
        &self,
        c: &Object,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        let result = async {
            let stmt = c.prepare_cached(sql).await?;
            c.query(&stmt, params).await
        }
        .await;
        result.map_err(|e| self.error(e))
    }

    /// A database error as the store's: the connection's problems make the store unavailable
    /// (retried, and the node refuses new work until a probe gets through).
    fn error(&self, e: tokio_postgres::Error) -> StoreError {
        match e.as_db_error() {
            Some(db) => StoreError::Engine(format!("{}: {}", self.describe, db)),
            None => {
                let why = format!("{}: {}", self.describe, brama_pg::with_causes(&e));
                self.set_failure(&why);
                StoreError::Unavailable(why)
            }
        }
    }

    fn set_failure(&self, why: &str) {
        let mut f = self.failure.lock().unwrap_or_else(|p| p.into_inner());
        if f.is_none() {
            tracing::error!(error = %why, "router store: the database cannot be used; new applications are refused");
            *f = Some(why.to_string());
        }
    }

    fn recovered(&self) {
        let mut f = self.failure.lock().unwrap_or_else(|p| p.into_inner());
        if f.take().is_some() {
            tracing::info!(store = %self.describe, "router store: the database is reachable again");
        }
    }
}

/// Every second: can the database be reached? Clears or sets the failure the health check and
/// `accept` read, also while nothing else touches the database.
async fn probe(shared: std::sync::Weak<Shared>) {
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let Some(s) = shared.upgrade() else { return };
        if let Ok(c) = s.client().await {
            match wal_position(&c).await {
                Ok(at) => {
                    s.wal_now.store(at, Ordering::Relaxed);
                    s.recovered();
                }
                Err(e) => drop(s.error(e)),
            }
        }
    }
}

async fn app(c: &Object, s: &Shared, id: &str) -> Result<Option<AppRecord>, StoreError> {
    let rows = s
        .query(
            c,
            "SELECT id, record::text FROM router_applications WHERE id = $1",
            &[&id],
        )
        .await?;
    rows.first().map(|r| decode(r.get(0), r.get(1))).transpose()
}

async fn delivery(
    c: &Object,
    s: &Shared,
    app: &str,
    service: &str,
    with_request: bool,
) -> Result<Option<Delivery>, StoreError> {
    let sql = if with_request {
        "SELECT service, record::text, lease_owner, lease_until, request FROM router_deliveries \
         WHERE application = $1 AND service = $2"
    } else {
        "SELECT service, record::text, lease_owner, lease_until, NULL::text FROM router_deliveries \
         WHERE application = $1 AND service = $2"
    };
    let rows = s.query(c, sql, &[&app, &service]).await?;
    rows.first().map(delivery_row).transpose()
}

async fn deliveries(c: &Object, s: &Shared, app: &str) -> Result<Vec<Delivery>, StoreError> {
    let rows = s
        .query(
            c,
            "SELECT service, record::text, lease_owner, lease_until, request FROM router_deliveries \
             WHERE application = $1 ORDER BY service",
            &[&app],
        )
        .await?;
    rows.iter().map(delivery_row).collect()
}

fn delivery_row(r: &tokio_postgres::Row) -> Result<Delivery, StoreError> {
    let mut d: Delivery = decode(r.get(0), r.get(1))?;
    d.lease = match (r.get::<_, Option<String>>(2), r.get::<_, Option<i64>>(3)) {
        (Some(owner), Some(until)) => Some(Lease {
            owner,
            until: until as Millis,
        }),
        _ => None,
    };
    d.request = r.get(4);
    Ok(d)
}

fn decode<T: DeserializeOwned>(key: &str, json: &str) -> Result<T, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt {
        key: key.to_string(),
        reason: e.to_string(),
    })
}

/// Also the probe: an error on the connection marks the store failing.
async fn wal_position(c: &Object) -> Result<u64, tokio_postgres::Error> {
    let row = c
        .query_one(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::int8",
            &[],
        )
        .await?;
    Ok(row.get::<_, i64>(0) as u64)
}
