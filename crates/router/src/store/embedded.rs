//! The router's store embedded in the process: one redb table (`router.redb`), keys prefixed by
//! kind.
//!
//! - `a/<app>`: [`AppRecord`]
//! - `d/<app>/<service>`: [`Delivery`]
//! - `r/<app>/<service>`: the delivery's X-Road request (written once)
//! - `x/<app>/<service>`: empty; present while the delivery is not finished (restart scans only
//!   these)
//! - `n/<id>`: [`Notification`] not yet delivered
//! - `k/<submitter>/<idempotency key>`: [`IdempotencyRecord`]
//!
//! Changes go in a [`Batch`], applied whole. [`Embedded::apply`] takes a batch into memory (reads
//! see it at once) and hands it to the committer, a thread that writes every batch waiting into
//! one transaction and commits it with an `fsync` (`fdatasync`): a group commit, as a database
//! shares one log flush between its clients. [`Embedded::durable`] waits until everything applied
//! before it is committed so; nothing is acknowledged before that.
//!
//! Why redb and not sled (the first choice): sled's flush ends in `sync_file_range`, which
//! neither flushes the disk's cache nor the file's size, and a damaged sled file starts empty
//! or panics. redb commits with checksums and one `fsync`, checks them when it opens a file not
//! closed cleanly, and can verify a whole file ([`Embedded::check`]). See docs/ARCHITECTURE.md.
//!
//! Failures: a commit that fails (a full disk) is retried every 500 ms with the same batches
//! until it succeeds; meanwhile [`Embedded::durable`] answers [`StoreError::Unavailable`], and
//! [`Embedded::failing`] says why, for the health check and for refusing new applications. Nothing
//! is lost: the batches stay in memory, then on disk once there is room, without a restart.
//!

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use super::super::model::{AppRecord, Delivery, IdempotencyRecord, Notification};
use super::{faults, lock_hash, Batch, Op, StoreError};

const TABLE: TableDefinition<&str, &[u8]> = TableDefinition::new("records");
/// The data file, in the store directory.
pub const DATA_FILE: &str = "router.redb";
/// Written when the store is created: a directory that has it and no data file lost its data.
const CREATED: &str = "router.created";
/// How often a failed commit is tried again.
const RETRY: Duration = Duration::from_millis(500);
/// What batches waiting for a commit may add up to while commits fail; past it, `apply` refuses.
const MAX_WAITING: u64 = 64 << 20;

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Engine(e.to_string())
            }
        }
    )*};
}
from_redb!(
    redb::Error,
    redb::StorageError,
    redb::TableError,
    redb::TransactionError,
    redb::CommitError,
    redb::SetDurabilityError
);

/// A value, or `None` for a removed key.
type Value = Option<Arc<[u8]>>;
type Ops = Vec<(String, Value)>;

pub struct Embedded {
    db: Arc<Db>,
    shared: Arc<Shared>,
    path: PathBuf,
    committer: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Bytes of records written, for write amplification (disk bytes / these).
    logical_bytes: AtomicU64,
    /// Read-modify-write of one application's records is serialised by a stripe of these.
    stripes: Vec<tokio::sync::Mutex<()>>,
}

/// Lock stripes: enough that unrelated applications rarely wait for each other.
const STRIPES: usize = 256;

/// The redb database, reopened by the committer after a failed write: redb refuses every
/// operation after an I/O error until it is closed and opened again.
struct Db {
    current: std::sync::RwLock<Option<Arc<redb::Database>>>,
    path: PathBuf,
    cache: usize,
    /// The file's last failed write, resize or sync.
    last_error: Arc<Mutex<Option<String>>>,
}

impl Db {
    fn open(path: &Path, cache: usize) -> Result<Arc<Db>, StoreError> {
        let last_error = Arc::new(Mutex::new(None));
        let db = Db::create(path, cache, &last_error, true)?;
        Ok(Arc::new(Db {
            current: std::sync::RwLock::new(Some(Arc::new(db))),
            path: path.to_path_buf(),
            cache,
            last_error,
        }))
    }

    /// `verify`: every page's checksum, as at each start: a file changed or cut short behind
    /// redb's back fails to open, naming it, rather than being trusted. A reopen after a failed
    /// write skips it (redb repairs what it left unfinished itself).
    fn create(
        path: &Path,
        cache: usize,
        last_error: &Arc<Mutex<Option<String>>>,
        verify: bool,
    ) -> Result<redb::Database, StoreError> {
        redb::Database::builder()
            .set_cache_size(cache)
            .set_check_integrity_on_open(verify)
            .create_with_backend(faults::Backend::open(path, last_error.clone())?)
            .map_err(|e| damaged(path, e))
    }

    /// What the file's last failed operation was, once (taken).
    fn take_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    fn get(&self) -> Result<Arc<redb::Database>, StoreError> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| StoreError::Unavailable("the store is being reopened".into()))
    }

    /// Closes the database (once no read holds it) and opens it again, which repairs it to its
    /// last durable commit.
    fn reopen(&self) -> Result<(), StoreError> {
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        if let Some(mut db) = current.take() {
            // Reads hold it for moments.
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            loop {
                match Arc::try_unwrap(db) {
                    Ok(db) => break drop(db),
                    Err(still) if std::time::Instant::now() < deadline => {
                        db = still;
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    Err(still) => {
                        *current = Some(still);
                        return Err(StoreError::Unavailable("the store is in use".into()));
                    }
                }
            }
        }
        *current = Some(Arc::new(Db::create(
            &self.path,
            self.cache,
            &self.last_error,
            false,
        )?));
        Ok(())
    }
}

/// What the writers and the committer share.
struct Shared {
    state: Mutex<State>,
    /// Wakes the committer (work, or closing).
    work: Condvar,
    /// Wakes synchronous waiters after each commit attempt.
    committed: Condvar,
    /// The last committed batch, for asynchronous waiters; and each failed attempt.
    done: watch::Sender<Progress>,
    /// Commits made.
    commits: AtomicU64,
}

#[derive(Default)]
struct State {
    /// What reads see before it is committed: the newest value of each key in a batch not yet
    /// committed, with that batch's number (`None`: removed).
    overlay: BTreeMap<String, (u64, Value)>,
    /// Batches waiting for the committer, oldest first.
    waiting: Vec<(u64, Ops)>,
    /// Bytes of `waiting`, and of the batches the committer is trying.
    waiting_bytes: u64,
    /// The last batch number given out.
    applied: u64,
    progress: Progress,
    closing: bool,
}

#[derive(Clone, Default)]
struct Progress {
    /// Batches up to this one are committed.
    committed: u64,
    /// Why the last commit failed, while commits fail.
    failure: Option<String>,
}

impl Embedded {
    /// Opens the store in `dir`, created on first use (blocking: every page of the file is
    /// checked against its checksum). Refuses a directory whose data file is missing or
    /// damaged, naming the file.
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<Arc<Embedded>, StoreError> {
        let path = dir.join(DATA_FILE);
        let created = dir.join(CREATED);
        if !path.exists() {
            if created.exists() {
                return Err(StoreError::Engine(format!(
                    "{} is missing, but {} says the store was made here: its data is lost or \
                     moved; restore the file, or move the directory aside to start empty",
                    path.display(),
                    created.display()
                )));
            }
            if dir.join("conf").exists() && dir.join("db").exists() {
                return Err(StoreError::Engine(format!(
                    "{} holds a store of an earlier brama (sled); finish its applications \
                     with that version, or move the directory aside to start empty",
                    dir.display()
                )));
            }
        }
        let db = Db::open(&path, cache_bytes as usize)?;
        if !created.exists() {
            std::fs::write(&created, b"brama router store\n")
                .and_then(|()| std::fs::File::open(&created)?.sync_all())
                .and_then(|()| std::fs::File::open(dir)?.sync_all())
                .map_err(|e| StoreError::Engine(format!("{}: {e}", created.display())))?;
        }
        let (done, _) = watch::channel(Progress::default());
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            work: Condvar::new(),
            committed: Condvar::new(),
            done,
            commits: AtomicU64::new(0),
        });
        let committer = {
            let (db, shared) = (db.clone(), shared.clone());
            std::thread::Builder::new()
                .name("store-commit".into())
                .spawn(move || commit_loop(&db, &shared))
                .map_err(|e| StoreError::Engine(e.to_string()))?
        };
        Ok(Arc::new(Embedded {
            db,
            shared,
            path,
            committer: Mutex::new(Some(committer)),
            logical_bytes: AtomicU64::new(0),
            stripes: (0..STRIPES).map(|_| tokio::sync::Mutex::new(())).collect(),
        }))
    }

    /// Verifies every page of the store's file against its checksum and reads every record
    /// (`brama store check`; blocking, with the store closed elsewhere).
    pub fn check(dir: &Path) -> Result<String, StoreError> {
        let path = dir.join(DATA_FILE);
        if !path.exists() {
            return Err(StoreError::Engine(format!(
                "{} is not there",
                path.display()
            )));
        }
        // Opening checks every page against its checksum.
        let db = Db::create(&path, 16 << 20, &Arc::new(Mutex::new(None)), true)?;
        let txn = db.begin_read()?;
        let (mut records, mut unreadable) = (0u64, Vec::new());
        if let Ok(table) = txn.open_table(TABLE) {
            for kv in table.iter()? {
                let (k, v) = kv?;
                records += 1;
                let key = k.value();
                if !key.starts_with("r/") && !key.starts_with("x/") {
                    if let Err(e) = serde_json::from_slice::<serde_json::Value>(v.value()) {
                        unreadable.push(format!("{key}: {e}"));
                    }
                }
            }
        }
        if !unreadable.is_empty() {
            return Err(StoreError::Corrupt {
                key: unreadable.join("; "),
                reason: "not a record".into(),
            });
        }
        Ok(format!(
            "{}: {records} records, every page's checksum and every record read",
            path.display()
        ))
    }

    /// Takes `b` (reads see it at once) for the next commit; see [`Embedded::durable`].
    pub fn apply(&self, b: Batch) -> Result<(), StoreError> {
        if b.ops.is_empty() {
            return Ok(());
        }
        self.logical_bytes.fetch_add(b.bytes, Ordering::Relaxed);
        let ops = key_values(b.ops);
        let mut st = self.shared.lock();
        if st.closing {
            return Err(StoreError::Closed);
        }
        if let Some(why) = &st.progress.failure {
            if st.waiting_bytes > MAX_WAITING {
                return Err(StoreError::Unavailable(why.clone()));
            }
        }
        st.applied += 1;
        let n = st.applied;
        for (k, v) in &ops {
            st.overlay.insert(k.clone(), (n, v.clone()));
        }
        st.waiting_bytes += ops_bytes(&ops);
        st.waiting.push((n, ops));
        drop(st);
        self.shared.work.notify_one();
        Ok(())
    }

    /// The stripe lock of `name` (none for `None`).
    pub(super) async fn lock(&self, name: Option<&str>) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        let name = name?;
        let stripe = lock_hash(name).unsigned_abs() as usize % STRIPES;
        Some(self.stripes[stripe].lock().await)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Returns once everything applied before the call is committed and synced; an error while
    /// commits fail (the batches stay, and are committed once they can be).
    pub async fn durable(&self) -> Result<(), StoreError> {
        let mine = self.shared.lock().applied;
        let mut rx = self.shared.done.subscribe();
        let p = rx
            .wait_for(|p| p.committed >= mine || p.failure.is_some())
            .await
            .map_err(|_| StoreError::Closed)?
            .clone();
        match p.failure {
            Some(why) if p.committed < mine => Err(StoreError::Unavailable(why)),
            _ => Ok(()),
        }
    }

    /// As [`Embedded::durable`], blocking (tools that open the store directly).
    pub fn flush_sync(&self) -> Result<(), StoreError> {
        let mut st = self.shared.lock();
        let mine = st.applied;
        while st.progress.committed < mine {
            if let Some(why) = &st.progress.failure {
                return Err(StoreError::Unavailable(why.clone()));
            }
            st = self
                .shared
                .committed
                .wait(st)
                .unwrap_or_else(|p| p.into_inner());
        }
        Ok(())
    }

    /// Why writes cannot be made durable now, while they cannot.
    pub fn failing(&self) -> Option<String> {
        self.shared.lock().progress.failure.clone()
    }

    /// Whether the application's record is there (not read).
    pub fn has_app(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.raw_get(&app_key(id))?.is_some())
    }

    pub fn app(&self, id: &str) -> Result<Option<AppRecord>, StoreError> {
        self.get(&app_key(id))
    }

    pub(crate) fn idempotency(
        &self,
        submitter: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        self.get(&idempotency_key(submitter, key))
    }

    /// One delivery, without its request.
    pub fn delivery_record(
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
            let raw = self.raw_get(&key)?.ok_or_else(|| StoreError::Corrupt {
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
        self.scan(&format!("d/{app}/"), usize::MAX)
    }

    /// `(application, service)` of every unfinished delivery.
    pub fn active(&self) -> Result<Vec<(String, String)>, StoreError> {
        Ok(self
            .raw_scan("x/", usize::MAX)?
            .into_keys()
            .filter_map(|k| {
                let (a, s) = k[2..].split_once('/')?;
                Some((a.to_string(), s.to_string()))
            })
            .collect())
    }

    /// Applications, oldest first (ids are time-ordered), at most `limit`.
    pub fn apps(&self, limit: usize) -> Result<Vec<AppRecord>, StoreError> {
        self.scan("a/", limit)
    }

    pub(crate) fn notifications(&self) -> Result<Vec<Notification>, StoreError> {
        self.scan("n/", usize::MAX)
    }

    pub fn logical_bytes(&self) -> u64 {
        self.logical_bytes.load(Ordering::Relaxed)
    }

    /// Commits made (each one `fsync`).
    pub fn flushes(&self) -> u64 {
        self.shared.commits.load(Ordering::Relaxed)
    }

    pub fn size_on_disk(&self) -> u64 {
        std::fs::metadata(&self.path).map_or(0, |m| m.len())
    }

    fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StoreError> {
        match self.raw_get(key)? {
            None => Ok(None),
            Some(v) => decode(key, &v).map(Some),
        }
    }

    fn raw_get(&self, key: &str) -> Result<Value, StoreError> {
        // The snapshot is taken under the lock: a key missing from the overlay is committed in
        // it (the committer empties the overlay under the lock, after its commit).
        let txn = {
            let st = self.shared.lock();
            if let Some((_, v)) = st.overlay.get(key) {
                return Ok(v.clone());
            }
            self.db.get()?.begin_read()?
        };
        let table = match txn.open_table(TABLE) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let value = table.get(key)?.map(|v| Arc::from(v.value()));
        Ok(value)
    }

    fn scan<T: DeserializeOwned>(&self, prefix: &str, limit: usize) -> Result<Vec<T>, StoreError> {
        self.raw_scan(prefix, limit)?
            .iter()
            .map(|(k, v)| decode(k, v))
            .collect()
    }

    /// The records under `prefix`, the overlay over the committed ones, at most `limit`.
    fn raw_scan(
        &self,
        prefix: &str,
        limit: usize,
    ) -> Result<BTreeMap<String, Arc<[u8]>>, StoreError> {
        let (txn, recent) = {
            let st = self.shared.lock();
            let recent: Ops = st
                .overlay
                .range(prefix.to_string()..)
                .take_while(|(k, _)| k.starts_with(prefix))
                .map(|(k, (_, v))| (k.clone(), v.clone()))
                .collect();
            (self.db.get()?.begin_read()?, recent)
        };
        let mut out = BTreeMap::new();
        let removed = recent.iter().filter(|(_, v)| v.is_none()).count();
        match txn.open_table(TABLE) {
            Ok(table) => {
                for kv in table.range(prefix..)? {
                    let (k, v) = kv?;
                    let k = k.value();
                    if !k.starts_with(prefix) || out.len() >= limit.saturating_add(removed) {
                        break;
                    }
                    out.insert(k.to_string(), Arc::from(v.value()));
                }
            }
            Err(redb::TableError::TableDoesNotExist(_)) => {}
            Err(e) => return Err(e.into()),
        }
        for (k, v) in recent {
            match v {
                Some(v) => out.insert(k, v),
                None => out.remove(&k),
            };
        }
        while out.len() > limit {
            out.pop_last();
        }
        Ok(out)
    }
}

impl Drop for Embedded {
    /// Commits what is waiting, then stops the committer.
    fn drop(&mut self) {
        self.shared.lock().closing = true;
        self.shared.work.notify_one();
        if let Some(t) = self.committer.lock().ok().and_then(|mut c| c.take()) {
            let _ = t.join();
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The committer: everything waiting, one transaction, one `fsync`; again and again.
fn commit_loop(db: &Db, shared: &Shared) {
    loop {
        let batches = {
            let mut st = shared.lock();
            while st.waiting.is_empty() && !st.closing {
                st = shared.work.wait(st).unwrap_or_else(|p| p.into_inner());
            }
            if st.waiting.is_empty() {
                return; // closing, and nothing left
            }
            std::mem::take(&mut st.waiting)
        };
        let last = batches.last().map_or(0, |(n, _)| *n);
        match db.get().and_then(|d| commit(&d, &batches)) {
            Ok(()) => {
                shared.commits.fetch_add(1, Ordering::Relaxed);
                let mut st = shared.lock();
                // Committed values leave the overlay unless a later batch changed them again.
                for (_, ops) in &batches {
                    for (k, _) in ops {
                        if st.overlay.get(k).is_some_and(|(n, _)| *n <= last) {
                            st.overlay.remove(k);
                        }
                    }
                }
                if st.progress.failure.take().is_some() {
                    tracing::info!("router store: writes are durable again");
                }
                let done: u64 = batches.iter().map(|(_, ops)| ops_bytes(ops)).sum();
                st.waiting_bytes -= done;
                st.progress.committed = last;
                shared.done.send_replace(st.progress.clone());
                shared.committed.notify_all();
            }
            Err(e) => {
                // redb answers every later call with "previous I/O error" until reopened: the
                // first error is the one worth telling.
                let cause = db.take_error().unwrap_or_else(|| e.to_string());
                let reopened = db.reopen();
                let mut st = shared.lock();
                let why = match &st.progress.failure {
                    Some(first) => first.clone(),
                    None => {
                        tracing::error!(error = %cause, "router store: commit failed; retrying until it succeeds");
                        format!("the store cannot commit: {cause}")
                    }
                };
                if let Err(e) = reopened {
                    tracing::debug!(error = %e, "router store: reopening failed; tried again");
                }
                // Back in front of what came since, in order, for the next try.
                let mut again = batches;
                again.append(&mut st.waiting);
                st.waiting = again;
                st.progress.failure = Some(why);
                shared.done.send_replace(st.progress.clone());
                shared.committed.notify_all();
                if st.closing {
                    tracing::error!(
                        "router store: closing with writes that could not be made durable"
                    );
                    return;
                }
                // The full pause, whatever is applied meanwhile.
                let until = std::time::Instant::now() + RETRY;
                while !st.closing {
                    let Some(left) = until.checked_duration_since(std::time::Instant::now()) else {
                        break;
                    };
                    st = shared
                        .work
                        .wait_timeout(st, left)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
            }
        }
    }
}

fn commit(db: &redb::Database, batches: &[(u64, Ops)]) -> Result<(), StoreError> {
    let mut txn = db.begin_write()?;
    txn.set_durability(redb::Durability::Immediate)?;
    {
        let mut table = txn.open_table(TABLE)?;
        for (_, ops) in batches {
            for (k, v) in ops {
                match v {
                    Some(v) => drop(table.insert(k.as_str(), &v[..])?),
                    None => drop(table.remove(k.as_str())?),
                }
            }
        }
    }
    txn.commit()?;
    Ok(())
}

/// The batch's changes as keys and values; a delivery keeps its active index in step with its
/// state.
fn key_values(ops: Vec<Op>) -> Ops {
    let mut kv = Ops::with_capacity(ops.len() + 2);
    let put = |s: String| Some(Arc::<[u8]>::from(s.into_bytes()));
    for op in ops {
        match op {
            Op::App { id, json, .. } => kv.push((app_key(&id), put(json))),
            Op::RemoveApp(id) => kv.push((app_key(&id), None)),
            Op::Delivery {
                application: a,
                service: s,
                state,
                json,
                request,
                ..
            } => {
                if let Some(r) = request {
                    kv.push((request_key(&a, &s), put(r)));
                }
                let active = (!state.is_terminal()).then(|| Arc::<[u8]>::from(&b""[..]));
                kv.push((index_key(&a, &s), active));
                kv.push((delivery_key(&a, &s), put(json)));
            }
            Op::RemoveDelivery(a, s) => {
                kv.push((delivery_key(&a, &s), None));
                kv.push((index_key(&a, &s), None));
                kv.push((request_key(&a, &s), None));
            }
            Op::Notification { id, json, .. } => kv.push((format!("n/{id}"), put(json))),
            Op::RemoveNotification(id) => kv.push((format!("n/{id}"), None)),
            Op::Idempotency {
                submitter,
                key,
                json,
            } => kv.push((idempotency_key(&submitter, &key), put(json))),
            Op::RemoveIdempotency(submitter, key) => {
                kv.push((idempotency_key(&submitter, &key), None))
            }
        }
    }
    kv
}

fn ops_bytes(ops: &Ops) -> u64 {
    ops.iter()
        .map(|(k, v)| (k.len() + v.as_ref().map_or(0, |v| v.len())) as u64)
        .sum()
}

/// A data file redb could not open: named, with redb's reason.
fn damaged(path: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError::Engine(format!(
        "{} is damaged or unreadable ({e}); `brama store check` verifies it",
        path.display()
    ))
}

fn decode<T: DeserializeOwned>(key: &str, v: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(v).map_err(|e| StoreError::Corrupt {
        key: key.to_string(),
        reason: e.to_string(),
    })
}

fn idempotency_key(submitter: &str, key: &str) -> String {
    format!("k/{submitter}/{key}")
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
