//! The message log's records in the PostgreSQL database the nodes share (`[store] url`), behind
//! the same boundary as the file-based log: a record is a row, durable when its insert commits
//! (PostgreSQL's own group commit shares one WAL flush between concurrent messages). Any node
//! time-stamps any node's waiting records (claimed with `FOR UPDATE SKIP LOCKED`, so a dead
//! node's backlog is stamped by the others), serves any record on `GET /asic`, and one node at
//! a time archives, continuing the chain of archives the cluster shares.
//!
//! A record is `messagelog_records` (`brama_pg::migrations`): its container as written for
//! stamping (or whole, when no time-stamp is awaited), in the row or, for a body streamed to
//! disk, in a large object written a chunk at a time; a round is `messagelog_rounds`, its token
//! and the digests its chain covers, and a stamped record names its round and its place in it.
//! Its container is put together, stamped, when it is read, as the file-based log does.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use deadpool_postgres::{Object, Pool};
use tokio::sync::{mpsc, oneshot};

use super::archiver::ArchiveSettings;
use super::timestamper::ALG;
use brama_sign::archive::{self, Link};
use brama_sign::{asic, hashchain, tsp};

/// Large bodies go into their large object this much at a time.
const CHUNK: usize = 1 << 20;
/// At most this many records answer one query id (`GET /asic`).
pub(crate) const MAX_FOUND: i64 = 1_000;
/// Held while a node archives: the chain of archives has one end.
const ARCHIVE_LOCK: i64 = 0x6272_616d_615f_6172; // "brama_ar"

pub(crate) struct SharedRecords {
    pool: Pool,
    describe: String,
    node: String,
    migrated: AtomicBool,
    /// Why the last write or count failed, until one succeeds (`/health`).
    failure: std::sync::Mutex<Option<String>>,
    /// Records on their way to the group insert ([`write_groups`]), started at the first.
    group: OnceLock<mpsc::Sender<Waiting>>,
}

/// A record in memory waiting for the next group insert, and who waits for it.
struct Waiting {
    name: String,
    written_at: i64,
    digest: Option<Vec<u8>>,
    container: Vec<u8>,
    stamped_at: Option<i64>,
    done: oneshot::Sender<Result<(), String>>,
}

/// Records one group insert takes at most, and their containers' bytes (a record larger than
/// that goes alone).
const MAX_GROUP: usize = 512;
const MAX_GROUP_BYTES: usize = 64 << 20;

/// A record's container as it is logged: in memory, or a file (a streamed body).
pub(crate) enum Content<'a> {
    Bytes(Vec<u8>),
    File(&'a Path),
}

/// A record found by its name's prefix: its container (stamped when its round is done).
pub(crate) struct Found {
    pub bytes: Vec<u8>,
    pub waits: bool,
}

/// A record put in an archive.
struct Archived {
    id: i64,
    name: String,
    bytes: Vec<u8>,
    stamped_at: i64,
}

impl SharedRecords {
    pub(crate) fn new(settings: &brama_pg::Settings) -> Result<SharedRecords, String> {
        let (pool, describe) = brama_pg::pool(settings, "message log")?;
        Ok(SharedRecords {
            pool,
            describe,
            node: settings.node.clone(),
            migrated: AtomicBool::new(false),
            failure: std::sync::Mutex::new(None),
            group: OnceLock::new(),
        })
    }

    /// A connection, the schema migrated on the first.
    async fn client(&self) -> Result<Object, String> {
        let c = self
            .pool
            .get()
            .await
            .map_err(|e| self.error(brama_pg::with_causes(&e)))?;
        if !self.migrated.load(Ordering::Acquire) {
            brama_pg::migrations::run(&c)
                .await
                .map_err(|e| self.error(e))?;
            self.migrated.store(true, Ordering::Release);
        }
        Ok(c)
    }

    fn error(&self, e: impl std::fmt::Display) -> String {
        format!("{}: {e}", self.describe)
    }

    /// Why the database could not be used the last time, until it could again.
    pub(crate) fn failing(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn note<T>(&self, r: Result<T, String>) -> Result<T, String> {
        let now = r.as_ref().err().cloned();
        *self.failure.lock().unwrap_or_else(|p| p.into_inner()) = now;
        r
    }

    /// Logs a record: waiting for a batch time-stamp over `digest` when there is one;
    /// `stamped` when its container carries its own (single mode).
    pub(crate) async fn insert(
        &self,
        name: &str,
        digest: Option<&[u8]>,
        content: Content<'_>,
        stamped: bool,
    ) -> Result<(), String> {
        let r = self.write(name, digest, content, stamped).await;
        self.note(r)
    }

    async fn write(
        &self,
        name: &str,
        digest: Option<&[u8]>,
        content: Content<'_>,
        stamped: bool,
    ) -> Result<(), String> {
        let now = crate::ocsp::now();
        let stamped_at = stamped.then_some(now);
        match content {
            Content::Bytes(container) => {
                // Concurrent records share one insert and one commit, as the file-based log's
                // records share one flush.
                if !self.migrated.load(Ordering::Acquire) {
                    drop(self.client().await?);
                }
                let group = self.group.get_or_init(|| {
                    let (tx, rx) = mpsc::channel(MAX_GROUP * 4);
                    tokio::spawn(write_groups(
                        self.pool.clone(),
                        self.node.clone(),
                        self.describe.clone(),
                        rx,
                    ));
                    tx
                });
                let (done, answer) = oneshot::channel();
                let waiting = Waiting {
                    name: name.to_string(),
                    written_at: now,
                    digest: digest.map(<[u8]>::to_vec),
                    container,
                    stamped_at,
                    done,
                };
                let gone = || self.error("the message log's writer stopped");
                group.send(waiting).await.map_err(|_| gone())?;
                answer.await.map_err(|_| gone())??;
            }
            Content::File(path) => {
                // One transaction: the large object exists only with its row.
                let c = self.client().await?;
                c.batch_execute("BEGIN").await.map_err(|e| self.error(e))?;
                let done = async {
                    let oid: u32 = c
                        .query_one("SELECT lo_create(0)", &[])
                        .await
                        .map_err(|e| e.to_string())?
                        .get(0);
                    let size = put_file(&c, oid, path).await?;
                    c.execute(
                        "INSERT INTO messagelog_records \
                           (name, node, written_at, waits, digest, size, blob, stamped_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                        &[
                            &name,
                            &self.node,
                            &now,
                            &digest.is_some(),
                            &digest,
                            &size,
                            &oid,
                            &stamped_at,
                        ],
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                    c.batch_execute("COMMIT").await.map_err(|e| e.to_string())
                }
                .await;
                if let Err(err) = done {
                    discard(c).await;
                    return Err(self.error(err));
                }
            }
        }
        Ok(())
    }

    /// Records waiting for a time-stamp, and when the oldest was written.
    pub(crate) async fn backlog(&self) -> Result<(usize, Option<i64>), String> {
        let r = self.count_waiting().await;
        self.note(r)
    }

    async fn count_waiting(&self) -> Result<(usize, Option<i64>), String> {
        let c = self.client().await?;
        let row = c
            .query_one(
                "SELECT count(*), min(written_at) FROM messagelog_records WHERE waits",
                &[],
            )
            .await
            .map_err(|e| self.error(e))?;
        Ok((row.get::<_, i64>(0) as usize, row.get(1)))
    }

    /// One round: the oldest `limit` waiting records nobody else is stamping, stamped with the
    /// token `stamp` gets over their digests (the TSA's URL and the token). Returns how many,
    /// and the TSA; `None` when nothing waits.
    pub(crate) async fn stamp_round<F>(
        &self,
        limit: usize,
        tsa_timeout: Duration,
        stamp: F,
    ) -> Result<Option<(usize, String)>, String>
    where
        F: AsyncFnOnce(&[Vec<u8>]) -> Result<(String, Vec<u8>), String>,
    {
        let c = self.client().await?;
        // The claim lasts while the TSAs are asked.
        let idle = tsa_timeout.as_millis() * 4 + 10_000;
        let begin = format!("BEGIN; SET LOCAL idle_in_transaction_session_timeout = {idle}");
        if let Err(e) = c.batch_execute(&begin).await {
            discard(c).await;
            return Err(self.error(e));
        }
        let rows = c
            .query(
                "SELECT id, digest FROM messagelog_records WHERE waits \
                 ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
                &[&(limit.min(i64::MAX as usize) as i64)],
            )
            .await;
        let rows = match rows {
            Ok(rows) => rows,
            Err(e) => {
                discard(c).await;
                return Err(self.error(e));
            }
        };
        let ids: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
        let digests: Vec<Vec<u8>> = rows.iter().map(|r| r.get(1)).collect();
        if ids.is_empty() {
            return match c.batch_execute("COMMIT").await {
                Ok(()) => Ok(None),
                Err(e) => Err(self.error(e)),
            };
        }
        let (tsa, token) = match stamp(&digests).await {
            Ok(t) => t,
            Err(e) => {
                discard(c).await;
                return Err(e);
            }
        };
        let at = tsp::parse_token(&token)
            .map(|t| t.gen_time)
            .unwrap_or_else(|_| crate::ocsp::now());
        let places: Vec<i32> = (0..ids.len() as i32).collect();
        let done = async {
            let round: i64 = c
                .query_one(
                    "INSERT INTO messagelog_rounds (tsa, token, digests) VALUES ($1, $2, $3) \
                     RETURNING id",
                    &[&tsa, &token, &digests],
                )
                .await?
                .get(0);
            c.execute(
                "UPDATE messagelog_records r SET waits = false, round = $1, place = u.place, \
                 stamped_at = $2 FROM unnest($3::int8[], $4::int4[]) AS u(id, place) \
                 WHERE r.id = u.id",
                &[&round, &at, &ids, &places],
            )
            .await?;
            c.batch_execute("COMMIT").await
        }
        .await;
        match done {
            Ok(()) => Ok(Some((ids.len(), tsa))),
            Err(e) => {
                discard(c).await;
                Err(self.error(e))
            }
        }
    }

    /// The records whose name starts with `prefix` (ASCII, as [`super::safe`] makes names),
    /// oldest first, at most [`MAX_FOUND`].
    pub(crate) async fn find(&self, prefix: &str) -> Result<Vec<Found>, String> {
        // A byte range, not `LIKE $1`: a prepared statement's generic plan uses the
        // `text_pattern_ops` index for the range operators, and for `LIKE` never.
        let Some(end) = prefix_end(prefix) else {
            return Ok(Vec::new());
        };
        let c = self.client().await?;
        let rows = c
            .query(
                &format!(
                    "{SELECT_RECORDS} WHERE r.name ~>=~ $1 AND r.name ~<~ $2 \
                     ORDER BY r.id LIMIT $3"
                ),
                &[&prefix, &end, &MAX_FOUND],
            )
            .await
            .map_err(|e| self.error(e))?;
        let mut trees = Trees::default();
        rows.iter()
            .map(|row| {
                let bytes = trees.container(row).map_err(|e| self.error(e))?;
                Ok(Found {
                    waits: row.get(2),
                    bytes,
                })
            })
            .collect()
    }

    /// Archives the time-stamped records not archived yet into `s.dir`, continuing the chain
    /// the cluster shares, unless another node is archiving; then deletes the records archived
    /// longer than `s.keep_archived` ago. Returns the archives written.
    pub(crate) async fn archive(&self, s: &ArchiveSettings) -> Result<Vec<PathBuf>, String> {
        let c = self.client().await?;
        let e = |e: tokio_postgres::Error| self.error(e);
        let mine: bool = c
            .query_one("SELECT pg_try_advisory_lock($1)", &[&ARCHIVE_LOCK])
            .await
            .map_err(e)?
            .get(0);
        if !mine {
            return Ok(Vec::new());
        }
        let mut written = Vec::new();
        let result = async {
            while let Some(path) = self.archive_one(&c, s).await? {
                written.push(path);
            }
            self.delete_archived(&c, s.keep_archived).await
        }
        .await;
        let unlocked = c
            .execute("SELECT pg_advisory_unlock($1)", &[&ARCHIVE_LOCK])
            .await;
        if result.is_err() || unlocked.is_err() {
            discard(c).await;
        }
        result.map(|()| written)
    }

    /// One archive: the oldest stamped records up to its size, written and synced, then marked
    /// archived with the chain's new end in one transaction. A crash in between writes that
    /// archive again, under the same predecessor; nothing is lost.
    async fn archive_one(
        &self,
        c: &Object,
        s: &ArchiveSettings,
    ) -> Result<Option<PathBuf>, String> {
        let e = |e: tokio_postgres::Error| self.error(e);
        let sizes = c
            .query(
                "SELECT id, size FROM messagelog_records \
                 WHERE archived_at IS NULL AND stamped_at IS NOT NULL \
                 ORDER BY stamped_at, id LIMIT 10000",
                &[],
            )
            .await
            .map_err(e)?;
        let mut ids = Vec::new();
        let mut total = 0u64;
        for row in &sizes {
            let size = row.get::<_, i64>(1).max(0) as u64;
            if !ids.is_empty() && total + size > s.max_file_bytes {
                break;
            }
            total += size;
            ids.push(row.get::<_, i64>(0));
        }
        if ids.is_empty() {
            return Ok(None);
        }
        let rows = c
            .query(
                &format!("{SELECT_RECORDS} WHERE r.id = ANY($1) ORDER BY r.stamped_at, r.id"),
                &[&ids],
            )
            .await
            .map_err(e)?;
        let mut trees = Trees::default();
        let records = rows
            .iter()
            .map(|row| {
                Ok(Archived {
                    id: row.get(0),
                    name: row.get(1),
                    stamped_at: row.get::<_, Option<i64>>(6).unwrap_or_default(),
                    bytes: trees.container(row).map_err(|e| self.error(e))?,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let link = c
            .query_opt("SELECT digest, file_name FROM messagelog_archive_link", &[])
            .await
            .map_err(e)?
            .map(|r| Link {
                digest: r.get(0),
                file_name: r.get(1),
            })
            .unwrap_or_default();
        let entries: Vec<(&str, &[u8])> = records
            .iter()
            .map(|r| (r.name.as_str(), r.bytes.as_slice()))
            .collect();
        let (bytes, next) = archive::write(&link, &entries);
        let first = records
            .iter()
            .map(|r| r.stamped_at)
            .min()
            .unwrap_or_default();
        let last = records
            .iter()
            .map(|r| r.stamped_at)
            .max()
            .unwrap_or_default();
        let name = archive::file_name(first, last, &next.digest);
        let dir = s.dir.clone();
        let file = name.clone();
        tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir)?;
            super::write_synced(&dir, &file, &bytes)?;
            std::fs::File::open(&dir)?.sync_all()
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|err| format!("{}: {err}", s.dir.display()))?;
        let archived: Vec<i64> = records.iter().map(|r| r.id).collect();
        let now = crate::ocsp::now();
        transaction(c, async |c: &Object| {
            c.execute(
                "INSERT INTO messagelog_archive_link (digest, file_name) VALUES ($1, $2) \
                 ON CONFLICT (one) DO UPDATE SET digest = $1, file_name = $2",
                &[&next.digest, &name],
            )
            .await?;
            c.execute(
                "UPDATE messagelog_records SET archived_at = $1 WHERE id = ANY($2)",
                &[&now, &archived],
            )
            .await
        })
        .await
        .map_err(|e| self.error(e))?;
        Ok(Some(s.dir.join(name)))
    }

    /// Deletes records archived longer than `keep` ago, their large objects, and the rounds no
    /// record names any more.
    async fn delete_archived(&self, c: &Object, keep: Duration) -> Result<(), String> {
        let before = crate::ocsp::now() - keep.as_secs().min(i64::MAX as u64) as i64;
        transaction(c, async |c: &Object| {
            c.execute(
                "WITH gone AS (DELETE FROM messagelog_records WHERE archived_at < $1 \
                   RETURNING blob, round) \
                 SELECT lo_unlink(blob) FROM gone WHERE blob IS NOT NULL",
                &[&before],
            )
            .await?;
            c.execute(
                "DELETE FROM messagelog_rounds o WHERE NOT EXISTS \
                 (SELECT 1 FROM messagelog_records r WHERE r.round = o.id)",
                &[],
            )
            .await
        })
        .await
        .map(drop)
        .map_err(|e| self.error(e))
    }
}

/// The least string after every string that starts with `prefix` (its last character the
/// next one); `None` when there is none to give (empty, or ending in the last ASCII character).
fn prefix_end(prefix: &str) -> Option<String> {
    let last = prefix.chars().last().filter(|c| (*c as u32) < 0x7f)?;
    let mut end = prefix[..prefix.len() - 1].to_string();
    end.push(char::from_u32(last as u32 + 1)?);
    Some(end)
}

/// Runs `work` between `BEGIN` and `COMMIT` on `c`, and rolls back when it fails.
async fn transaction<T>(
    c: &Object,
    work: impl AsyncFnOnce(&Object) -> Result<T, tokio_postgres::Error>,
) -> Result<T, tokio_postgres::Error> {
    c.batch_execute("BEGIN").await?;
    match work(c).await {
        Ok(t) => c.batch_execute("COMMIT").await.map(|()| t),
        Err(e) => {
            let _ = c.batch_execute("ROLLBACK").await;
            Err(e)
        }
    }
}

/// The group insert: whatever records wait when the last insert committed go in one statement
/// and one commit, and each waiter gets the outcome.
async fn write_groups(pool: Pool, node: String, describe: String, mut rx: mpsc::Receiver<Waiting>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while rx.recv_many(&mut group, MAX_GROUP).await > 0 {
        while !group.is_empty() {
            // One statement stays far below PostgreSQL's 1 GB message.
            let mut n = 1;
            let mut bytes = group[0].container.len();
            while n < group.len() && bytes + group[n].container.len() <= MAX_GROUP_BYTES {
                bytes += group[n].container.len();
                n += 1;
            }
            let outcome = insert_group(&pool, &node, &group[..n])
                .await
                .map_err(|e| format!("{describe}: {e}"));
            for w in group.drain(..n) {
                let _ = w.done.send(outcome.clone());
            }
        }
    }
}

async fn insert_group(pool: &Pool, node: &str, group: &[Waiting]) -> Result<(), String> {
    let c = pool.get().await.map_err(|e| brama_pg::with_causes(&e))?;
    let names: Vec<&str> = group.iter().map(|w| w.name.as_str()).collect();
    let written: Vec<i64> = group.iter().map(|w| w.written_at).collect();
    let digests: Vec<Option<&[u8]>> = group.iter().map(|w| w.digest.as_deref()).collect();
    let containers: Vec<&[u8]> = group.iter().map(|w| w.container.as_slice()).collect();
    let stamped: Vec<Option<i64>> = group.iter().map(|w| w.stamped_at).collect();
    c.execute(
        "INSERT INTO messagelog_records \
           (name, node, written_at, waits, digest, size, container, stamped_at) \
         SELECT u.name, $1, u.written_at, u.digest IS NOT NULL, u.digest, \
           octet_length(u.container), u.container, u.stamped_at \
         FROM unnest($2::text[], $3::int8[], $4::bytea[], $5::bytea[], $6::int8[]) \
           AS u(name, written_at, digest, container, stamped_at)",
        &[&node, &names, &written, &digests, &containers, &stamped],
    )
    .await
    .map_err(|e| e.to_string())?;
    Ok(())
}

/// A record with what its container needs: id, name, waits, place, bytes, the round's token
/// and digests, when stamped.
const SELECT_RECORDS: &str = "SELECT r.id, r.name, r.waits, r.place, \
     COALESCE(r.container, lo_get(r.blob)), o.token, r.stamped_at, o.digests, r.round \
     FROM messagelog_records r LEFT JOIN messagelog_rounds o ON o.id = r.round";

/// The rounds' time-stamp trees, each built once for the records of one query.
#[derive(Default)]
struct Trees(HashMap<i64, hashchain::TimestampTree>);

impl Trees {
    /// A row of [`SELECT_RECORDS`] as its container: with its round's time-stamp when it has one.
    fn container(&mut self, row: &tokio_postgres::Row) -> std::io::Result<Vec<u8>> {
        let bytes: Vec<u8> = row.get(4);
        let (Some(round), Some(place), Some(token)) = (
            row.get::<_, Option<i64>>(8),
            row.get::<_, Option<i32>>(3),
            row.get::<_, Option<Vec<u8>>>(5),
        ) else {
            return Ok(bytes);
        };
        let tree = self.0.entry(round).or_insert_with(|| {
            let digests: Vec<Vec<u8>> = row.get(7);
            hashchain::timestamp_tree(ALG, &digests)
        });
        asic::with_timestamp(bytes, &tree.result, &tree.chain(place as usize), &token)
    }
}

/// Writes the file into the large object `oid`, a chunk at a time; returns its size.
async fn put_file(c: &Object, oid: u32, path: &Path) -> Result<i64, String> {
    use tokio::io::AsyncReadExt;
    let io = |e: std::io::Error| format!("{}: {e}", path.display());
    let mut f = tokio::fs::File::open(path).await.map_err(io)?;
    let mut buf = vec![0u8; CHUNK];
    let mut at = 0i64;
    loop {
        let n = f.read(&mut buf).await.map_err(io)?;
        if n == 0 {
            return Ok(at);
        }
        let chunk: &[u8] = &buf[..n];
        c.execute("SELECT lo_put($1, $2, $3)", &[&oid, &at, &chunk])
            .await
            .map_err(|e| e.to_string())?;
        at += n as i64;
    }
}

/// Drops a connection whose transaction may be open or broken rather than returning it to the
/// pool.
async fn discard(c: Object) {
    let _ = c.batch_execute("ROLLBACK").await;
    let _ = Object::take(c);
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_prefix_range_ends_after_every_name_with_the_prefix() {
        let end = super::prefix_end("q-1-").unwrap();
        assert_eq!(end, "q-1.");
        for name in ["q-1-", "q-1-a-request.asice", "q-1-~~~~"] {
            assert!(name >= "q-1-" && name < end.as_str(), "{name}");
        }
        for name in ["q-1.", "q-10-x", "q-1"] {
            assert!(!(name >= "q-1-" && name < end.as_str()), "{name}");
        }
        assert_eq!(super::prefix_end(""), None);
        assert_eq!(super::prefix_end("a\u{7f}"), None);
    }
}
