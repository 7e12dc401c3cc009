//! The router's durable store, behind one boundary with two implementations:
//!
//! - [`embedded`]: redb in the store directory, the default (`brama serve` needs nothing else);
//!   one process.
//! - [`postgres`]: PostgreSQL (`[store] url = "postgres://…"`), shared by any number of nodes;
//!   deliveries are claimed with leases so each is sent by one node at a time.
//!
//! Writes go in a [`Batch`], applied whole. Read-modify-write of one application's records
//! happens in a [`Txn`] that holds the application's lock (a mutex stripe here, an advisory
//! lock across nodes in PostgreSQL), so two services finishing at once on two nodes cannot
//! overwrite each other's changes to a third. [`Store::durable`] returns once everything this
//! node wrote before it is on disk; nothing is acknowledged before that.
//!
//! Must not depend on the engine or the API above it.

pub mod embedded;
mod faults;
pub mod postgres;

use std::sync::Arc;

use serde::Serialize;

use super::model::{AppRecord, Delivery, IdempotencyRecord, Millis, Notification, State};
pub use embedded::{Embedded, DATA_FILE};
pub use postgres::PgConf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store: {0}")]
    Engine(String),
    #[error("store record {key} is unreadable: {reason}")]
    Corrupt { key: String, reason: String },
    /// Writes cannot be made durable now (a full disk, an unreachable database); the node
    /// refuses new work until they can.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("store closed")]
    Closed,
}

/// One change, its record already serialised (JSON, readable by `brama queue show` and an
/// operator), with the fields a store indexes beside it.
pub(crate) enum Op {
    App {
        id: String,
        received_at: Millis,
        json: String,
    },
    RemoveApp(String),
    Delivery {
        application: String,
        service: String,
        registry: String,
        state: State,
        next_attempt_at: Option<Millis>,
        json: String,
        /// The request, when just built (it is written once).
        request: Option<String>,
    },
    RemoveDelivery(String, String),
    Notification {
        id: String,
        next_attempt_at: Millis,
        json: String,
    },
    RemoveNotification(String),
    Idempotency {
        submitter: String,
        key: String,
        json: String,
    },
    RemoveIdempotency(String, String),
}

/// Changes applied together: every one or (after a crash) none.
#[derive(Default)]
pub struct Batch {
    pub(crate) ops: Vec<Op>,
    /// Bytes of records written, for write amplification (bytes on disk / these).
    pub(crate) bytes: u64,
}

impl Batch {
    pub(crate) fn put_app(&mut self, app: &AppRecord) {
        let json = self.json(app);
        self.ops.push(Op::App {
            id: app.id.clone(),
            received_at: app.received_at,
            json,
        });
    }

    /// Writes the delivery, and its request if it was just built.
    pub fn put_delivery(&mut self, d: &Delivery) {
        let request = match (d.request_dirty, &d.request) {
            (true, Some(r)) => {
                self.bytes += r.len() as u64;
                Some(r.clone())
            }
            _ => None,
        };
        let json = self.json(d);
        self.ops.push(Op::Delivery {
            application: d.application.clone(),
            service: d.service.clone(),
            registry: d.registry.clone(),
            state: d.state,
            next_attempt_at: d.next_attempt_at,
            json,
            request,
        });
    }

    pub(crate) fn put_notification(&mut self, n: &Notification) {
        let json = self.json(n);
        self.ops.push(Op::Notification {
            id: n.id.clone(),
            next_attempt_at: n.next_attempt_at,
            json,
        });
    }

    pub(crate) fn remove_notification(&mut self, id: &str) {
        self.ops.push(Op::RemoveNotification(id.into()));
    }

    pub(crate) fn put_idempotency(&mut self, submitter: &str, key: &str, r: &IdempotencyRecord) {
        let json = self.json(r);
        self.ops.push(Op::Idempotency {
            submitter: submitter.into(),
            key: key.into(),
            json,
        });
    }

    pub(crate) fn remove_app(&mut self, app: &AppRecord) {
        self.ops.push(Op::RemoveApp(app.id.clone()));
        if let (Some(s), Some(k)) = (&app.submitter, &app.idempotency_key) {
            self.ops.push(Op::RemoveIdempotency(s.clone(), k.clone()));
        }
        for s in &app.services {
            self.remove_delivery(&app.id, s);
        }
    }

    pub(crate) fn remove_delivery(&mut self, app: &str, service: &str) {
        self.ops
            .push(Op::RemoveDelivery(app.to_string(), service.to_string()));
    }

    /// Appends `other`'s changes after this batch's.
    pub fn append(&mut self, other: Batch) {
        self.ops.extend(other.ops);
        self.bytes += other.bytes;
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    fn json(&mut self, value: &impl Serialize) -> String {
        let v = serde_json::to_string(value).expect("store records serialize");
        self.bytes += v.len() as u64;
        v
    }
}

pub struct Store {
    backend: Backend,
}

enum Backend {
    Embedded(Arc<Embedded>),
    Postgres(postgres::Pg),
}

impl Store {
    /// The embedded store in `dir` (see [`Embedded::open`]).
    pub fn open(dir: &std::path::Path, cache_bytes: u64) -> Result<Arc<Store>, StoreError> {
        Ok(Arc::new(Store {
            backend: Backend::Embedded(Embedded::open(dir, cache_bytes)?),
        }))
    }

    /// The shared store in PostgreSQL, its schema created or migrated first.
    pub async fn connect(conf: &PgConf) -> Result<Arc<Store>, StoreError> {
        Ok(Arc::new(Store {
            backend: Backend::Postgres(postgres::Pg::connect(conf).await?),
        }))
    }

    /// The embedded store, when this is one (tools and tests that work on its file).
    pub fn embedded(&self) -> Option<&Arc<Embedded>> {
        match &self.backend {
            Backend::Embedded(e) => Some(e),
            Backend::Postgres(_) => None,
        }
    }

    /// This node's name in leases, when the store is shared.
    pub fn node(&self) -> Option<&str> {
        match &self.backend {
            Backend::Embedded(_) => None,
            Backend::Postgres(p) => Some(p.node()),
        }
    }

    /// What the store is, for logs: its directory or its database (without a password).
    pub fn describe(&self) -> String {
        match &self.backend {
            Backend::Embedded(e) => e.path().display().to_string(),
            Backend::Postgres(p) => p.describe(),
        }
    }

    /// Starts a transaction holding the lock named `lock` (an application id, an idempotency
    /// key), if any: another transaction with the same lock waits, on any node.
    pub async fn begin(&self, lock: Option<&str>) -> Result<Txn<'_>, StoreError> {
        Ok(Txn {
            inner: match &self.backend {
                Backend::Embedded(e) => TxnInner::Embedded(e, e.lock(lock).await),
                Backend::Postgres(p) => TxnInner::Postgres(Box::new(p.begin(lock).await?)),
            },
        })
    }

    /// Writes `b` on its own (no lock).
    pub async fn write(&self, b: Batch) -> Result<(), StoreError> {
        let mut tx = self.begin(None).await?;
        tx.apply(b)?;
        tx.commit().await
    }

    /// Returns once everything this node wrote before the call is durable.
    pub async fn durable(&self) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Embedded(e) => e.durable().await,
            // Each transaction's commit is.
            Backend::Postgres(_) => Ok(()),
        }
    }

    /// Why writes cannot be made durable now, while they cannot.
    pub fn failing(&self) -> Option<String> {
        match &self.backend {
            Backend::Embedded(e) => e.failing(),
            Backend::Postgres(p) => p.failing(),
        }
    }

    pub async fn has_app(&self, id: &str) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Embedded(e) => e.has_app(id),
            Backend::Postgres(p) => Ok(p.app(id).await?.is_some()),
        }
    }

    pub async fn app(&self, id: &str) -> Result<Option<AppRecord>, StoreError> {
        match &self.backend {
            Backend::Embedded(e) => e.app(id),
            Backend::Postgres(p) => p.app(id).await,
        }
    }

    /// One delivery, with its request.
    pub async fn delivery(&self, app: &str, service: &str) -> Result<Option<Delivery>, StoreError> {
        match &self.backend {
            Backend::Embedded(e) => e.delivery(app, service),
            Backend::Postgres(p) => p.delivery(app, service).await,
        }
    }

    /// The deliveries of one application, by service name.
    pub async fn deliveries(&self, app: &str) -> Result<Vec<Delivery>, StoreError> {
        match &self.backend {
            Backend::Embedded(e) => e.deliveries(app),
            Backend::Postgres(p) => p.deliveries(app).await,
        }
    }

    /// Applications, oldest first (ids are time-ordered), at most `limit`.
    pub async fn apps(&self, limit: usize) -> Result<Vec<AppRecord>, StoreError> {
        match &self.backend {
            Backend::Embedded(e) => e.apps(limit),
            Backend::Postgres(p) => p.apps(limit).await,
        }
    }

    /// `(application, service)` of the unfinished deliveries this node should resume at its
    /// start: every one here; in a shared store, those its earlier run held and those nobody
    /// holds (claimed for this node).
    pub async fn resumable(&self) -> Result<Vec<(String, String)>, StoreError> {
        match &self.backend {
            Backend::Embedded(e) => e.active(),
            Backend::Postgres(p) => p.resumable().await,
        }
    }

    /// Due deliveries nobody holds (their node died, or fell behind), claimed for this node
    /// with their next attempt times; none in a store of one node.
    pub async fn claim_orphans(
        &self,
        limit: usize,
    ) -> Result<Vec<(String, String, Millis)>, StoreError> {
        match &self.backend {
            Backend::Embedded(_) => Ok(Vec::new()),
            Backend::Postgres(p) => p.claim_orphans(limit).await,
        }
    }

    /// Support notifications due now, each claimed for this node (in a shared store, no other
    /// node sends it while the claim lasts), and when the next is due.
    pub(crate) async fn due_notifications(
        &self,
        now: Millis,
    ) -> Result<(Vec<Notification>, Option<Millis>), StoreError> {
        match &self.backend {
            Backend::Embedded(e) => {
                let (due, later): (Vec<_>, Vec<_>) = e
                    .notifications()?
                    .into_iter()
                    .partition(|n| n.next_attempt_at <= now);
                Ok((due, later.iter().map(|n| n.next_attempt_at).min()))
            }
            Backend::Postgres(p) => p.due_notifications(now).await,
        }
    }

    /// Bytes of records written.
    pub fn logical_bytes(&self) -> u64 {
        match &self.backend {
            Backend::Embedded(e) => e.logical_bytes(),
            Backend::Postgres(p) => p.logical_bytes(),
        }
    }

    /// Commits made (each one `fsync` of the data file or of the database's log).
    pub fn flushes(&self) -> u64 {
        match &self.backend {
            Backend::Embedded(e) => e.flushes(),
            Backend::Postgres(p) => p.commits(),
        }
    }

    /// Bytes the store has on disk, as far as it can tell: the data file's size here; in
    /// PostgreSQL, the write-ahead log written since this node connected (measured each second).
    pub fn size_on_disk(&self) -> u64 {
        match &self.backend {
            Backend::Embedded(e) => e.size_on_disk(),
            Backend::Postgres(p) => p.wal_bytes(),
        }
    }
}

/// A unit of read-modify-write: reads see the store and this transaction's own writes are
/// applied at [`Txn::commit`], all or none.
pub struct Txn<'a> {
    inner: TxnInner<'a>,
}

enum TxnInner<'a> {
    /// The application's stripe lock; batches go to the store as they are applied (reads see
    /// them at once, the committer makes them durable in order).
    Embedded(&'a Embedded, Option<tokio::sync::MutexGuard<'a, ()>>),
    Postgres(Box<postgres::PgTxn>),
}

impl Txn<'_> {
    /// Adds `b` to the transaction. Reads in the same transaction are not promised to see it
    /// (PostgreSQL sends the writes at commit): read first, then write.
    pub fn apply(&mut self, b: Batch) -> Result<(), StoreError> {
        match &mut self.inner {
            TxnInner::Embedded(e, _) => e.apply(b),
            TxnInner::Postgres(t) => {
                t.apply(b);
                Ok(())
            }
        }
    }

    /// Ends the transaction and releases its lock. In PostgreSQL the writes are durable when it
    /// returns; in the embedded store they are once [`Store::durable`] returns.
    pub async fn commit(self) -> Result<(), StoreError> {
        match self.inner {
            TxnInner::Embedded(..) => Ok(()),
            TxnInner::Postgres(t) => t.commit().await,
        }
    }

    /// As [`Txn::commit`], returning once the writes are durable, the lock held until then.
    pub async fn commit_durable(self) -> Result<(), StoreError> {
        match self.inner {
            TxnInner::Embedded(e, _guard) => e.durable().await,
            TxnInner::Postgres(t) => t.commit().await,
        }
    }

    pub async fn app(&mut self, id: &str) -> Result<Option<AppRecord>, StoreError> {
        match &mut self.inner {
            TxnInner::Embedded(e, _) => e.app(id),
            TxnInner::Postgres(t) => t.app(id).await,
        }
    }

    pub async fn has_app(&mut self, id: &str) -> Result<bool, StoreError> {
        match &mut self.inner {
            TxnInner::Embedded(e, _) => e.has_app(id),
            TxnInner::Postgres(t) => Ok(t.app(id).await?.is_some()),
        }
    }

    pub(crate) async fn idempotency(
        &mut self,
        submitter: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        match &mut self.inner {
            TxnInner::Embedded(e, _) => e.idempotency(submitter, key),
            TxnInner::Postgres(t) => t.idempotency(submitter, key).await,
        }
    }

    /// One delivery, with its request.
    pub async fn delivery(
        &mut self,
        app: &str,
        service: &str,
    ) -> Result<Option<Delivery>, StoreError> {
        match &mut self.inner {
            TxnInner::Embedded(e, _) => e.delivery(app, service),
            TxnInner::Postgres(t) => t.delivery(app, service, true).await,
        }
    }

    /// One delivery, without its request.
    pub async fn delivery_record(
        &mut self,
        app: &str,
        service: &str,
    ) -> Result<Option<Delivery>, StoreError> {
        match &mut self.inner {
            TxnInner::Embedded(e, _) => e.delivery_record(app, service),
            TxnInner::Postgres(t) => t.delivery(app, service, false).await,
        }
    }

    pub async fn deliveries(&mut self, app: &str) -> Result<Vec<Delivery>, StoreError> {
        match &mut self.inner {
            TxnInner::Embedded(e, _) => e.deliveries(app),
            TxnInner::Postgres(t) => t.deliveries(app).await,
        }
    }
}

/// A stable 64-bit name for a lock (PostgreSQL's advisory locks take a number; the embedded
/// store picks a stripe with it): FNV-1a, the same on every node and version. A collision only
/// makes two unrelated transactions wait for each other.
pub(crate) fn lock_hash(name: &str) -> i64 {
    let h = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    });
    h as i64
}
