//! The durable store: one sled tree, keys prefixed by kind. Changes go in a [`Batch`]: single
//! writes in a recoverable order on the hot path, one atomic sled batch where a prefix would not do.
//!
//! - `a/<app>`: [`AppRecord`]
//! - `d/<app>/<service>`: [`Delivery`]
//! - `r/<app>/<service>`: the delivery's X-Road request (written once)
//! - `x/<app>/<service>`: empty; present while the delivery is not finished (restart scans only
//!   these)
//! - `n/<id>`: [`Notification`] not yet delivered
//!
//! Durability is group-committed: writers call [`Store::durable`] after their batch, and one
//! flusher fsyncs for everybody who wrote before it started.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::{watch, Notify};

use super::model::{AppRecord, Delivery, Notification};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store: {0}")]
    Sled(#[from] sled::Error),
    #[error("store record {key} is unreadable: {reason}")]
    Corrupt { key: String, reason: String },
    #[error("store flusher stopped")]
    Closed,
}

/// Changes to apply: atomically (one sled batch, the default), or `Batch::in_order` as single
/// writes in the order they were added.
///
/// In-order batches are the hot path's: sled seals and writes out its log buffer around every
/// atomic batch (two writes and a wake-up of its IO thread each), which made batches most of the
/// store's cost. Single writes are not sealed; sled recovers its log up to the first missing or
/// torn message, so a crash keeps a prefix of them, and in-order batches are built so that every
/// prefix is a state `super::engine::Engine::recover` completes: a delivery's request before the
/// delivery, its index entry before it becomes active and removed after it is finished, a
/// delivered service before the services it releases, an application's deliveries before its
/// record.
pub struct Batch {
    ops: Vec<(String, Option<sled::IVec>)>,
    atomic: bool,
    bytes: u64,
}

impl Default for Batch {
    fn default() -> Self {
        Batch {
            ops: Vec::new(),
            atomic: true,
            bytes: 0,
        }
    }
}

impl Batch {
    /// Single writes in order; see [`Batch`].
    pub(crate) fn in_order() -> Batch {
        Batch {
            atomic: false,
            ..Batch::default()
        }
    }

    /// From now on the whole batch must land at once (a failure and its cascade and
    /// notification).
    pub(crate) fn make_atomic(&mut self) {
        self.atomic = true;
    }

    pub(crate) fn put_app(&mut self, app: &AppRecord) {
        self.put(app_key(&app.id), app);
    }

    /// Writes the delivery and keeps the active index in step with its state.
    pub fn put_delivery(&mut self, d: &Delivery) {
        if let (true, Some(r)) = (d.request_dirty, &d.request) {
            self.raw(request_key(&d.application, &d.service), r.as_bytes());
        }
        let idx = index_key(&d.application, &d.service);
        if !d.state.is_terminal() {
            self.raw(idx.clone(), b"");
        }
        self.put(delivery_key(&d.application, &d.service), d);
        if d.state.is_terminal() {
            self.ops.push((idx, None));
        }
    }

    pub(crate) fn put_notification(&mut self, n: &Notification) {
        self.put(format!("n/{}", n.id), n);
    }

    pub(crate) fn remove_notification(&mut self, id: &str) {
        self.ops.push((format!("n/{id}"), None));
    }

    pub(crate) fn remove_app(&mut self, app: &AppRecord) {
        self.ops.push((app_key(&app.id), None));
        for s in &app.services {
            self.remove_delivery(&app.id, s);
        }
    }

    pub(crate) fn remove_delivery(&mut self, app: &str, service: &str) {
        self.ops.push((delivery_key(app, service), None));
        self.ops.push((index_key(app, service), None));
        self.ops.push((request_key(app, service), None));
    }

    /// Appends `other`'s changes after this batch's; atomic if either is.
    pub fn append(&mut self, other: Batch) {
        self.ops.extend(other.ops);
        self.atomic |= other.atomic;
        self.bytes += other.bytes;
    }

    fn put(&mut self, key: String, value: &impl Serialize) {
        let v = serde_json::to_vec(value).expect("store records serialize");
        self.bytes += (key.len() + v.len()) as u64;
        self.ops.push((key, Some(v.into())));
    }

    fn raw(&mut self, key: String, value: &[u8]) {
        self.bytes += (key.len() + value.len()) as u64;
        self.ops.push((key, Some(value.into())));
    }
}

pub struct Store {
    db: sled::Db,
    flush: Arc<Flusher>,
    /// Bytes of keys and values written, for write amplification (disk bytes / these).
    logical_bytes: AtomicU64,
    /// fsyncs done, and writes that waited for one.
    flushes: AtomicU64,
}

struct Flusher {
    requested: AtomicU64,
    wake: Notify,
    done: watch::Sender<u64>,
}

impl Store {
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<Arc<Store>, StoreError> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_bytes)
            .mode(sled::Mode::HighThroughput)
            // Durability comes from explicit group-committed flushes.
            .flush_every_ms(Some(1000))
            .open()?;
        let (done, _) = watch::channel(0);
        Ok(Arc::new(Store {
            db,
            flush: Arc::new(Flusher {
                requested: AtomicU64::new(0),
                wake: Notify::new(),
                done,
            }),
            logical_bytes: AtomicU64::new(0),
            flushes: AtomicU64::new(0),
        }))
    }

    /// Starts the group-commit flusher; call once, from a tokio runtime.
    pub fn start_flusher(self: &Arc<Self>) {
        let store = Arc::downgrade(self);
        let flush = self.flush.clone();
        tokio::spawn(async move {
            loop {
                flush.wake.notified().await;
                let target = flush.requested.load(Ordering::Acquire);
                let Some(s) = store.upgrade() else { break };
                let db = s.db.clone();
                drop(s);
                let res = tokio::task::spawn_blocking(move || db.flush()).await;
                match res {
                    Ok(Ok(_)) => {
                        if let Some(s) = store.upgrade() {
                            s.flushes.fetch_add(1, Ordering::Relaxed);
                        }
                        flush.done.send_replace(target);
                    }
                    // Waiters keep waiting: nothing may be acknowledged that is not on disk.
                    Ok(Err(e)) => {
                        tracing::error!(error = %e, "store flush failed");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        flush.wake.notify_one();
                    }
                    Err(_) => break,
                }
            }
        });
    }

    pub fn apply(&self, b: Batch) -> Result<(), StoreError> {
        self.logical_bytes.fetch_add(b.bytes, Ordering::Relaxed);
        if b.atomic && b.ops.len() > 1 {
            let mut batch = sled::Batch::default();
            for (k, v) in b.ops {
                match v {
                    Some(v) => batch.insert(k.as_bytes(), v),
                    None => batch.remove(k.as_bytes()),
                }
            }
            self.db.apply_batch(batch)?;
        } else {
            for (k, v) in b.ops {
                match v {
                    Some(v) => self.db.insert(k.as_bytes(), v)?,
                    None => self.db.remove(k.as_bytes())?,
                };
            }
        }
        Ok(())
    }

    /// Returns once everything written before the call is on disk.
    pub async fn durable(&self) -> Result<(), StoreError> {
        let mut rx = self.flush.done.subscribe();
        let mine = self.flush.requested.fetch_add(1, Ordering::AcqRel) + 1;
        self.flush.wake.notify_one();
        rx.wait_for(|done| *done >= mine)
            .await
            .map_err(|_| StoreError::Closed)?;
        Ok(())
    }

    /// Asks for a flush without waiting for it.
    pub(crate) fn request_flush(&self) {
        self.flush.requested.fetch_add(1, Ordering::AcqRel);
        self.flush.wake.notify_one();
    }

    /// Flush now, without the flusher task (tools that open the store directly).
    pub fn flush_sync(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    pub(crate) fn has_app(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.db.contains_key(app_key(id).as_bytes())?)
    }

    pub fn app(&self, id: &str) -> Result<Option<AppRecord>, StoreError> {
        self.get(&app_key(id))
    }

    /// One delivery, without its request.
    pub(crate) fn delivery_record(
        &self,
        app: &str,
        service: &str,
    ) -> Result<Option<Delivery>, StoreError> {
        self.get::<Delivery>(&delivery_key(app, service))
    }

    /// One delivery, with its request.
    pub fn delivery(&self, app: &str, service: &str) -> Result<Option<Delivery>, StoreError> {
        let Some(mut d) = self.delivery_record(app, service)? else {
            return Ok(None);
        };
        if d.has_request {
            let key = request_key(app, service);
            let raw = self
                .db
                .get(key.as_bytes())?
                .ok_or_else(|| StoreError::Corrupt {
                    key: key.clone(),
                    reason: "the delivery's request is missing".into(),
                })?;
            d.request = Some(
                String::from_utf8(raw.to_vec()).map_err(|_| StoreError::Corrupt {
                    key,
                    reason: "not UTF-8".into(),
                })?,
            );
        }
        Ok(Some(d))
    }

    /// The deliveries of one application, in key order.
    pub fn deliveries(&self, app: &str) -> Result<Vec<Delivery>, StoreError> {
        self.scan(&format!("d/{app}/"))
    }

    /// `(application, service)` of every unfinished delivery.
    pub fn active(&self) -> Result<Vec<(String, String)>, StoreError> {
        let mut out = Vec::new();
        for kv in self.db.scan_prefix(b"x/") {
            let (k, _) = kv?;
            let k = String::from_utf8_lossy(&k[2..]).into_owned();
            if let Some((a, s)) = k.split_once('/') {
                out.push((a.to_string(), s.to_string()));
            }
        }
        Ok(out)
    }

    /// Applications, oldest first (ids are time-ordered), at most `limit`.
    pub fn apps(&self, limit: usize) -> Result<Vec<AppRecord>, StoreError> {
        let mut out = Vec::new();
        for kv in self.db.scan_prefix(b"a/").take(limit) {
            let (k, v) = kv?;
            out.push(decode(&k, &v)?);
        }
        Ok(out)
    }

    pub(crate) fn notifications(&self) -> Result<Vec<Notification>, StoreError> {
        self.scan("n/")
    }

    pub fn logical_bytes(&self) -> u64 {
        self.logical_bytes.load(Ordering::Relaxed)
    }

    pub fn flushes(&self) -> u64 {
        self.flushes.load(Ordering::Relaxed)
    }

    pub fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }

    fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StoreError> {
        match self.db.get(key.as_bytes())? {
            None => Ok(None),
            Some(v) => decode(key.as_bytes(), &v).map(Some),
        }
    }

    fn scan<T: DeserializeOwned>(&self, prefix: &str) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        for kv in self.db.scan_prefix(prefix.as_bytes()) {
            let (k, v) = kv?;
            out.push(decode(&k, &v)?);
        }
        Ok(out)
    }
}

fn decode<T: DeserializeOwned>(key: &[u8], v: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(v).map_err(|e| StoreError::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        reason: e.to_string(),
    })
}

fn app_key(id: &str) -> String {
    format!("a/{id}")
}

fn delivery_key(app: &str, service: &str) -> String {
    format!("d/{app}/{service}")
}

fn request_key(app: &str, service: &str) -> String {
    format!("r/{app}/{service}")
}

fn index_key(app: &str, service: &str) -> String {
    format!("x/{app}/{service}")
}
