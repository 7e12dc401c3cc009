//! The message log (reference §6.2): every signed message the client proxy sends and every
//! verified answer it receives, kept as an ASiC-E container (§6.4) before anything is forwarded,
//! so the signed record of an exchange can be shown later and checked by any ASiC verifier.
//! Off unless `[log] messages_dir` is set. As in X-Road, a message that cannot be logged is not
//! sent.
//!
//! Records are time-stamped (§6.3, [`timestamper`]) when the global configuration approves a
//! TSA: a record is appended, as its container, to the queue's newest segment file (`queue`,
//! `pending.<n>.queue`), and stays there; each time-stamping round writes the token and where its
//! records are ([`stamps`], `stamped-*.stamps`), and a record's container is put together,
//! stamped, when it is read (`GET /asic`, the archiver, `brama verify DIR`). A queued record
//! survives a crash or a restart and is stamped then. Without an approved TSA (a test network)
//! records are written straight into the directory as containers, unstamped.
//!
//! A record is durable before the message goes on (`GroupSync`): concurrent records share one
//! flush, as a database's group commit shares one log flush.
//!
//! Those are the records' own files, the default. With `[store] url` the records are rows of
//! the database the nodes share instead (`shared`), behind the same operations: logged,
//! stamped in rounds, put together when read, archived.

pub mod archiver;
pub mod download;
mod group_sync;
pub(crate) mod queue;
mod segment_writer;
pub(crate) mod shared;
pub mod stamps;
pub mod timestamper;

pub(crate) use group_sync::GroupSync;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::Duration;

use brama_sign::asic::{self, Container, Parts};
use brama_sign::SignatureParts;
use brama_transport::spool::Spooled;
use brama_xroad::error::{ErrorCode, Fault, Prefix};

pub use timestamper::Stamping;

/// Where the containers of streamed records wait, files of their own.
pub(crate) const INCOMING: &str = "incoming";

pub struct MessageLog {
    dir: PathBuf,
    pub stamping: Stamping,
    /// The records waiting for a time-stamp.
    pub(crate) queue: queue::Queue,
    /// Flushes the directory's filesystem (`syncfs`): records written as files of their own.
    sync: GroupSync,
    /// The directory, open for `syncfs`.
    dir_file: std::sync::Arc<std::fs::File>,
    settings: Settings,
    /// Where and how records are archived (`[log] archive_dir`), when they are.
    pub(crate) archive: Option<archiver::ArchiveSettings>,
    /// The digests of the last signatures logged: a batch signature is one document for all
    /// the messages of its batch, digested once.
    digests: SignatureDigests,
    /// The records' store when the nodes share a database (`[store] url`); the directory then
    /// holds only bodies on their way into it.
    pub(crate) shared: Option<shared::SharedRecords>,
}

/// How records are time-stamped, and whose bodies are logged (`[log]`).
#[derive(Clone, Debug)]
pub struct Settings {
    /// How often the waiting records are stamped (X-Road's `timeStampingIntervalSeconds`).
    pub interval: Duration,
    /// Once the oldest unstamped record is older than this, new messages are refused
    /// (`acceptable-timestamp-failure-period`); `None` never refuses.
    pub acceptable_failure: Option<Duration>,
    /// Time for a TSA to answer.
    pub timeout: Duration,
    /// Records one token covers at most (a round takes as many as it needs).
    pub per_token: usize,
    /// Each record time-stamped on its own before the message goes on (X-Road's
    /// `timestamp-immediately`), instead of in the next batch.
    pub single: bool,
    /// Whether bodies are logged, and the service providers for which the opposite holds.
    pub body_logging: bool,
    pub body_logging_except: Vec<brama_xroad::identifiers::ClientId>,
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
        shared: Option<&brama_pg::Settings>,
    ) -> Result<MessageLog, String> {
        let shared = shared.map(shared::SharedRecords::new).transpose()?;
        let io = |e: std::io::Error| format!("{}: {e}", dir.display());
        std::fs::create_dir_all(&dir).map_err(io)?;
        // A backlog left by an earlier run is stamped first, and counts from its oldest record.
        let queue = queue::Queue::open(&dir, &|c| {
            asic::read_signature(c)
                .ok()
                .map(|s| timestamper::ALG.digest(&s))
        })
        .map_err(io)?;
        let log = MessageLog {
            stamping: Stamping::default(),
            sync: GroupSync::default(),
            dir_file: std::sync::Arc::new(std::fs::File::open(&dir).map_err(io)?),
            queue,
            dir,
            settings,
            archive,
            digests: SignatureDigests::default(),
            shared,
        };
        log.stamping.set_oldest(log.queue.oldest());
        Ok(log)
    }

    /// Whether the bodies of messages to and from `provider`'s services are logged.
    pub fn logs_body(&self, provider: &brama_xroad::identifiers::ClientId) -> bool {
        self.settings.body_logging != self.settings.body_logging_except.contains(provider)
    }

    /// A SOAP message as it is logged for `provider`'s service: whole with its attachments, or
    /// with the Body emptied and without attachments when its body is not logged.
    pub fn soap_copy<'m>(
        &self,
        provider: &brama_xroad::identifiers::ClientId,
        soap: &'m brama_xroad::message::soap::SoapMessage,
        attachments: impl FnOnce() -> Vec<Vec<u8>>,
    ) -> (std::borrow::Cow<'m, [u8]>, Vec<Vec<u8>>) {
        match self.logs_body(provider) {
            true => (std::borrow::Cow::Borrowed(&soap.bytes[..]), attachments()),
            false => (std::borrow::Cow::Owned(soap.with_empty_body()), Vec::new()),
        }
    }

    /// A waiting record's container, from the queue or, streamed, from `incoming/` (blocking).
    pub(crate) fn read_waiting(&self, frame: &queue::Frame) -> std::io::Result<Vec<u8>> {
        match frame.external {
            true => std::fs::read(self.dir.join(INCOMING).join(&frame.name)),
            false => self.queue.read(frame),
        }
    }

    /// Records waiting for a time-stamp (in a shared database: at the last count).
    pub fn waiting(&self) -> usize {
        match &self.shared {
            Some(_) => self.stamping.state().backlog,
            None => self.queue.len(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Logs a record: into the queue when it is to be time-stamped (`stamped`), else straight
    /// as its container (`final_name`). Refused while time-stamping has failed for longer than the
    /// acceptable period.
    pub async fn record(&self, gw: &crate::proxy::Gateway, r: Record<'_>) -> Result<(), Fault> {
        let stamped = gw.log_stamps();
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
        // A body spooled to disk streams into its container, never whole in memory.
        let streamed = body.filter(|b| b.on_disk());
        if let Some(b) = body.filter(|b| !b.on_disk()) {
            attachments.push(
                b.to_bytes()
                    .await
                    .map_err(|e| fail(ErrorCode::LoggingFailed, e.to_string()))?
                    .to_vec(),
            );
        }
        let name = final_name(query_id, request_id, direction);
        let io = |e: std::io::Error| fail(ErrorCode::LoggingFailed, e.to_string());
        let signed = sig.signature.as_deref().unwrap_or_default();
        // Single mode: the time-stamp now, into the logged signature; a failure leaves the
        // record to the batch, under the same failure policy.
        let single = match stamped && self.settings.single {
            true => match timestamper::stamp_single(gw, self, signed).await {
                Ok(signature) => Some(signature),
                Err(e) => {
                    tracing::warn!(error = %e, "time-stamping a message at once failed; it waits for the next batch");
                    self.stamping.failures.fetch_add(1, Ordering::Relaxed);
                    None
                }
            },
            false => None,
        };
        // Borrowed from the message as it was sent: written once, into its frame or file.
        let parts = Parts {
            message,
            attachments: &attachments,
            signature: single.as_deref().unwrap_or(signed),
            hash_chain_result: sig.hash_chain_result.as_deref(),
            hash_chain: sig.hash_chain.as_deref(),
            ..Parts::default()
        };
        // A record waiting for a batch time-stamp: the digest its chain covers, that of its
        // signature document (one per signing batch, digested once).
        let waits = stamped && single.is_none();
        let digest = match (waits, &sig.signature) {
            (false, _) => None,
            (true, Some(signature)) => Some(self.digests.of(signature)),
            (true, None) => Some(timestamper::ALG.digest(parts.signature)),
        };
        if let Some(db) = &self.shared {
            let logged = match streamed {
                Some(b) => {
                    self.insert_streamed(db, &name, digest.as_deref(), &parts, b, waits)
                        .await
                }
                None => {
                    let container = match waits {
                        true => {
                            let mut out = Vec::new();
                            asic::append_for_stamping(&parts, &mut out).map(|()| out)
                        }
                        false => asic::write_parts(&parts),
                    }
                    .map_err(io)?;
                    db.insert(
                        &name,
                        digest.as_deref(),
                        shared::Content::Bytes(container),
                        single.is_some(),
                    )
                    .await
                }
            };
            logged.map_err(|e| fail(ErrorCode::LoggingFailed, e))?;
        } else if let Some(b) = streamed {
            let dir = match waits {
                true => self.dir.join(INCOMING),
                false => self.dir.clone(),
            };
            let reader = b.reader();
            let file = name.clone();
            let container = parts.to_container();
            tokio::task::spawn_blocking(move || {
                write_streamed(&dir, &file, &container, reader, waits)
            })
            .await
            .map_err(|e| fail(ErrorCode::LoggingFailed, e.to_string()))?
            .map_err(io)?;
            if let Some(digest) = digest {
                self.queue.append_external(&name, digest).map_err(io)?;
            }
        } else if let Some(digest) = digest {
            // The container written straight into the queue's waiting bytes, behind its
            // frame's header; the write and the flush are shared (commit).
            self.queue
                .append_with(&name, digest, false, |frame| {
                    asic::append_for_stamping(&parts, frame)
                })
                .map_err(io)?;
        } else {
            let dir = self.dir.clone();
            let bytes = asic::write_parts(&parts).map_err(io)?;
            tokio::task::spawn_blocking(move || write_renamed(&dir, &name, &bytes))
                .await
                .map_err(|e| fail(ErrorCode::LoggingFailed, e.to_string()))?
                .map_err(io)?;
            let dir = self.dir_file.clone();
            let flush = move || Ok(rustix::fs::syncfs(&*dir).map_err(std::io::Error::from)?);
            self.sync.wait(flush).await.map_err(io)?;
        }
        if waits && self.shared.is_none() {
            self.queue.commit().await.map_err(io)?;
        }
        if waits {
            self.stamping.set_oldest_if_none(crate::ocsp::now());
        }
        Ok(())
    }

    /// A record whose body streams from disk, into the shared database through a file of its
    /// own (never whole in memory), which goes once the database has it.
    async fn insert_streamed(
        &self,
        db: &shared::SharedRecords,
        name: &str,
        digest: Option<&[u8]>,
        parts: &Parts<'_>,
        body: &Spooled,
        waits: bool,
    ) -> Result<(), String> {
        let path = self.dir.join(INCOMING).join(format!(".{name}.upload"));
        let (container, reader, to) = (parts.to_container(), body.reader(), path.clone());
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            std::fs::create_dir_all(to.parent().unwrap_or(Path::new(".")))?;
            let mut reader = reader;
            asic::write_streaming(std::fs::File::create(&to)?, &container, &mut reader, waits)
                .map(drop)
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("{}: {e}", path.display()))?;
        let done = db
            .insert(name, digest, shared::Content::File(&path), false)
            .await;
        let _ = tokio::fs::remove_file(&path).await;
        done
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
    let mut name = String::with_capacity(query_id.len() + request_id.len() + 20);
    push_safe(&mut name, query_id);
    name.push('-');
    push_safe(&mut name, request_id);
    name.push('-');
    name.push_str(suffix);
    name.push_str(".asice");
    name
}

/// An id as part of a file name: ASCII letters, digits and `-`, anything else `_`, at most 100
/// characters (a query id is the information system's choice).
pub fn safe(id: &str) -> String {
    let mut out = String::with_capacity(id.len().min(100));
    push_safe(&mut out, id);
    out
}

fn push_safe(out: &mut String, id: &str) {
    out.extend(id.chars().take(100).map(|c| {
        if c.is_ascii_alphanumeric() || c == '-' {
            c
        } else {
            '_'
        }
    }));
}

/// Writes `name` in `dir` whole and synced, or not at all: a temporary file, synced, renamed.
fn write_synced(dir: &Path, name: &str, data: &[u8]) -> std::io::Result<()> {
    write_whole(dir, name, |f| write_all(f, data, true))
}

/// Writes `name` in `dir` whole or not at all (a temporary file renamed); durable once a
/// [`GroupSync`] that began after it returns.
fn write_renamed(dir: &Path, name: &str, data: &[u8]) -> std::io::Result<()> {
    write_whole(dir, name, |f| write_all(f, data, false))
}

fn write_all(mut f: std::fs::File, data: &[u8], sync: bool) -> std::io::Result<std::fs::File> {
    use std::io::Write;
    f.write_all(data)?;
    if sync {
        f.sync_data()?;
    }
    Ok(f)
}

/// Writes a container with a streamed body into `dir/name`, synced before it is renamed into
/// place (a large record pays its own flush).
fn write_streamed(
    dir: &Path,
    name: &str,
    c: &Container,
    mut body: Box<dyn std::io::Read + Send>,
    ts_listed: bool,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    write_whole(dir, name, |f| {
        let f = asic::write_streaming(f, c, &mut body, ts_listed)?;
        f.sync_all()?;
        Ok(f)
    })?;
    std::fs::File::open(dir)?.sync_all()
}

/// Writes `name` in `dir` whole or not at all: `write` fills a temporary file (and returns it),
/// which is then renamed into place. Durable as `write` makes it.
fn write_whole(
    dir: &Path,
    name: &str,
    write: impl FnOnce(std::fs::File) -> std::io::Result<std::fs::File>,
) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    if let Err(e) = std::fs::File::create(&tmp).and_then(write) {
        // A full disk: no half file is left behind.
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, dir.join(name))
}

/// The message log's digests of the signature documents logged last, by content: the messages
/// of one signing batch share their signature document (the same bytes, whether they come from
/// our signer or from a peer's answers), and a SHA-512 of it costs more than the rest of a
/// record but one comparison.
#[derive(Default)]
struct SignatureDigests {
    recent: Mutex<std::collections::VecDeque<(bytes::Bytes, Vec<u8>)>>,
}

impl SignatureDigests {
    const KEPT: usize = 16;

    fn of(&self, signature: &bytes::Bytes) -> Vec<u8> {
        let lock = || self.recent.lock().unwrap_or_else(|p| p.into_inner());
        // The same allocation (our own batch's signature) is found without reading it.
        let same = |s: &bytes::Bytes| {
            (s.as_ptr() == signature.as_ptr() && s.len() == signature.len()) || s == signature
        };
        let known = lock().iter().find(|(s, _)| same(s)).map(|(_, d)| d.clone());
        if let Some(d) = known {
            return d;
        }
        let digest = timestamper::ALG.digest(signature);
        let mut recent = lock();
        if recent.len() == Self::KEPT {
            recent.pop_front();
        }
        recent.push_back((signature.clone(), digest.clone()));
        digest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_digest_is_the_digest_of_its_bytes_however_often_seen() {
        let d = SignatureDigests::default();
        let docs: Vec<bytes::Bytes> = (0..40u8)
            .map(|i| bytes::Bytes::from(vec![i; 100 + usize::from(i % 3)]))
            .collect();
        for round in 0..3 {
            for doc in docs.iter().skip(round) {
                // A copy, not the same allocation: equal bytes, equal digest.
                let copy = bytes::Bytes::from(doc.to_vec());
                assert_eq!(d.of(&copy), timestamper::ALG.digest(doc));
                assert_eq!(d.of(doc), timestamper::ALG.digest(doc));
            }
        }
    }
}
