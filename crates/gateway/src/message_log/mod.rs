//! The message log (reference §6.2): every signed message the client proxy sends and every
//! verified answer it receives, kept as an ASiC-E container (§6.4) before anything is forwarded,
//! so the signed record of an exchange can be shown later and checked by any ASiC verifier.
//! Off unless `[log] messages_dir` is set. As in X-Road, a message that cannot be logged is not
//! sent.
//!
//! Records are time-stamped (§6.3, [`timestamper`]) when the global configuration approves a
//! TSA: a record is written into `pending/` and moves out, time-stamped, at the next batch. A
//! record in `pending/` survives a crash or a restart and is stamped then. Without an approved
//! TSA (a test network) records are written straight into the directory, unstamped.
//!
//! A record is durable before the message goes on ([`GroupSync`]): concurrent records share one
//! `syncfs` of the log's filesystem, as a database's group commit shares one log flush.

pub mod archiver;
pub mod download;
pub mod timestamper;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use brama_sign::asic::{self, Container};
use brama_sign::SignatureParts;
use brama_transport::spool::Spooled;
use brama_xroad::error::{ErrorCode, Fault, Prefix};

pub use timestamper::Stamping;

/// Where records wait for their time-stamp.
const PENDING: &str = "pending";

pub struct MessageLog {
    dir: PathBuf,
    pending: PathBuf,
    /// Orders records written in the same nanosecond.
    counter: AtomicU64,
    pub stamping: Stamping,
    /// The records in `pending/` by file name (oldest first), with the digest of their
    /// signature: what the next time-stamp covers, without reading them again.
    index: Mutex<BTreeMap<String, Vec<u8>>>,
    sync: GroupSync,
    settings: Settings,
    /// Where and how records are archived (`[log] archive_dir`), when they are.
    pub(crate) archive: Option<archiver::ArchiveSettings>,
}

/// How records are time-stamped (`[log]`).
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// How often the waiting records are stamped (X-Road's `timeStampingIntervalSeconds`).
    pub interval: Duration,
    /// Once the oldest unstamped record is older than this, new messages are refused
    /// (`acceptable-timestamp-failure-period`); `None` never refuses.
    pub acceptable_failure: Option<Duration>,
    /// Time for a TSA to answer.
    pub timeout: Duration,
}

/// One message to log: the message (SOAP envelope or REST header part), its attachments or
/// REST body, and its signature parts.
pub struct Record<'a> {
    /// The information system's X-Road `id`, by which `GET /asic` finds the record.
    pub query_id: &'a str,
    /// This exchange's own id (one query id may be sent more than once).
    pub request_id: &'a str,
    pub direction: Direction,
    pub message: &'a [u8],
    pub attachments: Vec<Vec<u8>>,
    pub body: Option<&'a Spooled>,
    pub sig: &'a SignatureParts,
}

/// Which message of an exchange.
#[derive(Clone, Copy, Debug)]
pub enum Direction {
    Request,
    Response,
}

impl MessageLog {
    pub fn open(
        dir: PathBuf,
        settings: Settings,
        archive: Option<archiver::ArchiveSettings>,
    ) -> std::io::Result<MessageLog> {
        let pending = dir.join(PENDING);
        std::fs::create_dir_all(&pending)?;
        // A backlog left by an earlier run is stamped first, and counts from its oldest record.
        let index = timestamper::read_pending(&pending)?;
        let log = MessageLog {
            stamping: Stamping::default(),
            counter: AtomicU64::new(0),
            sync: GroupSync::new(&dir)?,
            index: Mutex::new(index),
            dir,
            pending,
            settings,
            archive,
        };
        log.stamping
            .set_oldest(timestamper::oldest_pending(&log.pending));
        Ok(log)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes the record's container ([`final_name`]); into `pending/` when it is to be
    /// time-stamped (`stamped`). Refused while time-stamping has failed for longer than the
    /// acceptable period.
    pub async fn record(&self, r: Record<'_>, stamped: bool) -> Result<(), Fault> {
        let Record {
            query_id,
            request_id,
            direction,
            message,
            attachments,
            body,
            sig,
        } = r;
        let fail = |code: ErrorCode, e: String| {
            Fault::new(Prefix::ClientProxy, code, format!("Message log: {e}"))
        };
        if let Some(why) = self.refusal() {
            return Err(fail(ErrorCode::TimestampingFailed, why));
        }
        let mut attachments = attachments;
        if let Some(b) = body {
            attachments.push(
                b.to_bytes()
                    .await
                    .map_err(|e| fail(ErrorCode::LoggingFailed, e.to_string()))?
                    .to_vec(),
            );
        }
        let container = Container {
            message: message.to_vec(),
            attachments,
            signature: sig.signature.as_deref().unwrap_or_default().to_vec(),
            hash_chain_result: sig.hash_chain_result.as_ref().map(|b| b.to_vec()),
            hash_chain: sig.hash_chain.as_ref().map(|b| b.to_vec()),
            ..Container::default()
        };
        let name = final_name(query_id, request_id, direction);
        let io = |e: std::io::Error| fail(ErrorCode::LoggingFailed, e.to_string());
        if stamped {
            let now = timestamper::now_nanos();
            let n = self.counter.fetch_add(1, Ordering::Relaxed);
            let file = format!("{now:020}-{n:06}-{name}");
            let digest = timestamper::ALG.digest(&container.signature);
            let dir = self.pending.clone();
            let f = file.clone();
            tokio::task::spawn_blocking(move || {
                write_renamed(&dir, &f, &asic::write_for_stamping(&container))
            })
            .await
            .map_err(|e| fail(ErrorCode::LoggingFailed, e.to_string()))?
            .map_err(io)?;
            self.sync.wait().await.map_err(io)?;
            self.index
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(file, digest);
            self.stamping.set_oldest_if_none(crate::ocsp::now());
        } else {
            let dir = self.dir.clone();
            tokio::task::spawn_blocking(move || {
                write_renamed(&dir, &name, &asic::write(&container))
            })
            .await
            .map_err(|e| fail(ErrorCode::LoggingFailed, e.to_string()))?
            .map_err(io)?;
            self.sync.wait().await.map_err(io)?;
        }
        Ok(())
    }

    /// Why new messages are refused now, if they are.
    pub fn refusal(&self) -> Option<String> {
        let limit = self.settings.acceptable_failure?;
        let oldest = self.stamping.oldest()?;
        let age = crate::ocsp::now() - oldest;
        (age > limit.as_secs() as i64).then(|| {
            let last = self
                .stamping
                .last_error()
                .map(|e| format!(" (last error: {e})"))
                .unwrap_or_default();
            format!(
                "the oldest record has waited {age} s for a time-stamp, longer than the \
                 acceptable {} s{last}",
                limit.as_secs()
            )
        })
    }
}

/// `<query-id>-<request-id>-request.asice` (or `-response`), the ids made safe for a file name:
/// found by its query id's prefix, unique per exchange.
fn final_name(query_id: &str, request_id: &str, direction: Direction) -> String {
    let suffix = match direction {
        Direction::Request => "request",
        Direction::Response => "response",
    };
    format!("{}-{}-{suffix}.asice", safe(query_id), safe(request_id))
}

/// An id as part of a file name: ASCII letters, digits and `-`, anything else `_`, at most 100
/// characters (a query id is the information system's choice).
pub(crate) fn safe(id: &str) -> String {
    id.chars()
        .take(100)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Writes `name` in `dir` whole and synced, or not at all: a temporary file, synced, renamed.
fn write_synced(dir: &Path, name: &str, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(data)?;
    f.sync_data()?;
    std::fs::rename(&tmp, dir.join(name))
}

/// Writes `name` in `dir` whole or not at all (a temporary file renamed); durable once a
/// [`GroupSync`] that began after it returns.
fn write_renamed(dir: &Path, name: &str, data: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, data)?;
    std::fs::rename(&tmp, dir.join(name))
}

/// Durability in groups: a writer writes its files, then waits here; one `syncfs` of the log's
/// filesystem covers every write finished before it began, so concurrent records share a flush
/// instead of each paying for its own.
pub(crate) struct GroupSync {
    dir: std::fs::File,
    /// Tickets handed out, one per finished write.
    written: AtomicU64,
    /// Tickets covered by a finished `syncfs`; the lock makes one flush at a time.
    synced: tokio::sync::Mutex<u64>,
}

impl GroupSync {
    fn new(dir: &Path) -> std::io::Result<GroupSync> {
        Ok(GroupSync {
            dir: std::fs::File::open(dir)?,
            written: AtomicU64::new(0),
            synced: tokio::sync::Mutex::new(0),
        })
    }

    /// Returns once everything written before the call is on disk.
    pub(crate) async fn wait(&self) -> std::io::Result<()> {
        let ticket = self.written.fetch_add(1, Ordering::SeqCst) + 1;
        let mut synced = self.synced.lock().await;
        if *synced >= ticket {
            return Ok(());
        }
        let upto = self.written.load(Ordering::SeqCst);
        let dir = self.dir.try_clone()?;
        tokio::task::spawn_blocking(move || rustix::fs::syncfs(&dir))
            .await
            .map_err(std::io::Error::other)??;
        *synced = upto;
        Ok(())
    }
}
