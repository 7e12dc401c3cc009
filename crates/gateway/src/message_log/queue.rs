//! The records waiting for a time-stamp, in one append-only file (`pending.queue`): a record is
//! appended as a frame and made durable by a group commit (one `fdatasync` of this one file for
//! every record appended before it began), which costs a message far less than a file of its
//! own. The time-stamper reads the frames back, writes each container out stamped, and the
//! stamped frames are then dropped by rewriting the file with the rest.
//!
//! A frame is `len u32 LE, crc32 u32 LE, written_at i64 LE, kind u8, name_len u16 LE, name,
//! payload`; the CRC covers everything after it. The payload is the container (kind 0), or for a
//! record too large to pass through memory (kind 1, a streamed REST body) the digest of its
//! signature, the container itself written beside the queue in `incoming/`. At open, a torn last frame (a crash in the middle of an append) is cut
//! off; a frame whose CRC does not match is damage: the file is set aside whole
//! (`pending.queue.damaged-<unix>`), the frames before the damage are kept, and the damage is
//! reported, never silently used.

use std::collections::HashSet;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::GroupSync;

const HEADER: usize = 8;
/// `written_at`, `kind` and `name_len`, before the name.
const PREFIX: usize = 11;
/// A container larger than this is refused: larger bodies stream into `incoming/` instead.
const MAX_FRAME: usize = 256 << 20;

/// One waiting record.
#[derive(Clone, Debug)]
pub(crate) struct Frame {
    /// The container's file name once stamped.
    pub name: String,
    /// Where the container starts in the file, and its length.
    pub offset: u64,
    pub len: u32,
    /// The digest of its signature (what the time-stamp covers).
    pub digest: Vec<u8>,
    /// The container is a file of its own in `incoming/`, not in the queue.
    pub external: bool,
    /// When it was appended (Unix seconds).
    pub written_at: i64,
}

pub(crate) struct Queue {
    path: PathBuf,
    inner: Mutex<Inner>,
    sync: GroupSync,
    /// Damage found at open, for `/health`.
    pub damaged: Option<String>,
}

struct Inner {
    file: File,
    end: u64,
    frames: Vec<Frame>,
}

impl Queue {
    /// Opens (or creates) the queue at `path`; `digest` gives a container's signature digest
    /// for frames found in the file.
    pub(crate) fn open(
        path: &Path,
        digest: &dyn Fn(&[u8]) -> Option<Vec<u8>>,
    ) -> std::io::Result<Queue> {
        let (frames, good_end, damage, file_len) = match File::open(path) {
            Ok(f) => {
                let len = f.metadata()?.len();
                let (frames, end, damage) = scan(&f, len, digest)?;
                (frames, end, damage, len)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Vec::new(), 0, None, 0),
            Err(e) => return Err(e),
        };
        let mut damaged = None;
        if let Some(why) = damage {
            let now = crate::ocsp::now();
            let aside = path.with_extension(format!("queue.damaged-{now}"));
            std::fs::copy(path, &aside)?;
            let msg = format!(
                "the message log's queue {} was damaged ({why}); it is kept as {}, the {} records \
                 before the damage are kept",
                path.display(),
                aside.display(),
                frames.len()
            );
            tracing::error!("{msg}");
            damaged = Some(msg);
        }
        if good_end != file_len {
            // A torn or damaged tail: the file keeps what reads.
            let f = File::options().write(true).open(path)?;
            f.set_len(good_end)?;
            f.sync_all()?;
        }
        let file = File::options()
            .create(true)
            .append(true)
            .read(true)
            .open(path)?;
        let dir = path.parent().unwrap_or(Path::new("."));
        File::open(dir)?.sync_all()?;
        Ok(Queue {
            path: path.to_path_buf(),
            sync: GroupSync::data(file.try_clone()?),
            inner: Mutex::new(Inner {
                file,
                end: good_end,
                frames,
            }),
            damaged,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends a record, not yet durable: see [`Queue::commit`]. A short write into the page
    /// cache.
    pub(crate) fn append(
        &self,
        name: &str,
        container: &[u8],
        digest: Vec<u8>,
    ) -> std::io::Result<()> {
        self.append_frame(name, container, digest, false)
    }

    /// Appends a record whose container was written, synced, into `incoming/<name>`.
    pub(crate) fn append_external(&self, name: &str, digest: Vec<u8>) -> std::io::Result<()> {
        self.append_frame(name, &digest.clone(), digest, true)
    }

    fn append_frame(
        &self,
        name: &str,
        payload: &[u8],
        digest: Vec<u8>,
        external: bool,
    ) -> std::io::Result<()> {
        if payload.len() > MAX_FRAME || name.len() > usize::from(u16::MAX) {
            return Err(std::io::Error::other(
                "the record is too large for the queue",
            ));
        }
        let written_at = crate::ocsp::now();
        // One buffer: the header's length and CRC are filled in once the body is behind them.
        let mut frame = Vec::with_capacity(HEADER + PREFIX + name.len() + payload.len());
        frame.extend_from_slice(&[0; HEADER]);
        frame.extend_from_slice(&written_at.to_le_bytes());
        frame.push(u8::from(external));
        frame.extend_from_slice(&(name.len() as u16).to_le_bytes());
        frame.extend_from_slice(name.as_bytes());
        frame.extend_from_slice(payload);
        let body_len = (frame.len() - HEADER) as u32;
        let crc = crc32fast::hash(&frame[HEADER..]);
        frame[..4].copy_from_slice(&body_len.to_le_bytes());
        frame[4..HEADER].copy_from_slice(&crc.to_le_bytes());
        let mut inner = self.lock();
        if let Err(e) = inner.file.write_all(&frame) {
            // A full disk may have taken part of the frame: cut it off, so the next frame
            // starts where the index says (appends go to the end of the file).
            let end = inner.end;
            inner.file.set_len(end)?;
            return Err(e);
        }
        let offset = inner.end + (HEADER + PREFIX + name.len()) as u64;
        inner.end += frame.len() as u64;
        inner.frames.push(Frame {
            name: name.to_string(),
            offset,
            len: payload.len() as u32,
            digest,
            external,
            written_at,
        });
        Ok(())
    }

    /// Returns once every record appended before the call is on disk.
    pub(crate) async fn commit(&self) -> std::io::Result<()> {
        self.sync.wait().await
    }

    /// The records waiting now, oldest first.
    pub(crate) fn frames(&self) -> Vec<Frame> {
        self.lock().frames.clone()
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().frames.len()
    }

    /// When the oldest waiting record was appended.
    pub(crate) fn oldest(&self) -> Option<i64> {
        self.lock().frames.first().map(|f| f.written_at)
    }

    /// A waiting record's container (blocking).
    pub(crate) fn read(&self, frame: &Frame) -> std::io::Result<Vec<u8>> {
        let file = self.lock().file.try_clone()?;
        let mut buf = vec![0; frame.len as usize];
        file.read_exact_at(&mut buf, frame.offset)?;
        Ok(buf)
    }

    /// Drops the records named (stamped and written out; blocking): the file is rewritten with
    /// the others, synced, and renamed over the old one while appends wait.
    pub(crate) fn remove(&self, names: &HashSet<String>) -> std::io::Result<()> {
        let mut inner = self.lock();
        let keep: Vec<Frame> = inner
            .frames
            .iter()
            .filter(|f| !names.contains(&f.name))
            .cloned()
            .collect();
        let tmp = self.path.with_extension("queue.tmp");
        let mut out = File::create(&tmp)?;
        let mut frames = Vec::with_capacity(keep.len());
        let mut end = 0u64;
        for f in keep {
            let start = f.offset - (HEADER + PREFIX + f.name.len()) as u64;
            let whole = f.len as u64 + (HEADER + PREFIX + f.name.len()) as u64;
            let mut buf = vec![0; whole as usize];
            inner.file.read_exact_at(&mut buf, start)?;
            out.write_all(&buf)?;
            frames.push(Frame {
                offset: end + (HEADER + PREFIX + f.name.len()) as u64,
                ..f
            });
            end += whole;
        }
        out.sync_all()?;
        std::fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            File::open(dir)?.sync_all()?;
        }
        inner.file = File::options().append(true).read(true).open(&self.path)?;
        self.sync.replace(inner.file.try_clone()?);
        inner.end = end;
        inner.frames = frames;
        Ok(())
    }
}

/// The frames of `file` that read, where they end, and why reading stopped early when it is
/// damage rather than a torn last frame. Read frame by frame: memory stays bounded by one
/// frame, however long the backlog.
fn scan(
    file: &File,
    file_len: u64,
    digest: &dyn Fn(&[u8]) -> Option<Vec<u8>>,
) -> std::io::Result<(Vec<Frame>, u64, Option<String>)> {
    let mut frames = Vec::new();
    let mut at = 0u64;
    let bad = |at: u64| Some(format!("a bad frame at byte {at}"));
    while at < file_len {
        if file_len - at < HEADER as u64 {
            return Ok((frames, at, None)); // torn header
        }
        let mut header = [0u8; HEADER];
        file.read_exact_at(&mut header, at)?;
        let len = u32::from_le_bytes(header[..4].try_into().unwrap_or_default()) as u64;
        let crc = u32::from_le_bytes(header[4..].try_into().unwrap_or_default());
        if at + HEADER as u64 + len > file_len {
            return Ok((frames, at, None)); // torn body
        }
        if len < PREFIX as u64 || len > (MAX_FRAME + PREFIX + usize::from(u16::MAX)) as u64 {
            return Ok((frames, at, bad(at)));
        }
        let mut body = vec![0u8; len as usize];
        file.read_exact_at(&mut body, at + HEADER as u64)?;
        if crc32fast::hash(&body) != crc {
            return Ok((frames, at, bad(at)));
        }
        let written_at = i64::from_le_bytes(body[..8].try_into().unwrap_or_default());
        let external = match body[8] {
            0 => false,
            1 => true,
            _ => return Ok((frames, at, bad(at))),
        };
        let name_len = usize::from(u16::from_le_bytes([body[9], body[10]]));
        let (Some(name), Some(payload)) = (
            body.get(PREFIX..PREFIX + name_len),
            body.get(PREFIX + name_len..),
        ) else {
            return Ok((frames, at, bad(at)));
        };
        let d = match external {
            true => Some(payload.to_vec()),
            false => digest(payload),
        };
        let Some(d) = d else {
            return Ok((
                frames,
                at,
                Some(format!("an unreadable record at byte {at}")),
            ));
        };
        frames.push(Frame {
            name: String::from_utf8_lossy(name).into_owned(),
            offset: at + (HEADER + PREFIX + name_len) as u64,
            len: payload.len() as u32,
            digest: d,
            external,
            written_at,
        });
        at += HEADER as u64 + len;
    }
    Ok((frames, at, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(c: &[u8]) -> Option<Vec<u8>> {
        Some(c.iter().rev().copied().collect())
    }

    #[tokio::test]
    async fn records_survive_reopen_and_damage_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pending.queue");
        let q = Queue::open(&path, &digest).unwrap();
        for i in 0..5u8 {
            q.append(
                &format!("r{i}.asice"),
                &vec![i; 100 + usize::from(i)],
                vec![i],
            )
            .unwrap();
        }
        q.commit().await.unwrap();
        assert_eq!(q.read(&q.frames()[3]).unwrap(), vec![3; 103]);
        q.remove(&["r1.asice".to_string(), "r3.asice".to_string()].into())
            .unwrap();
        q.append("r5.asice", b"five", vec![5]).unwrap();
        q.append_external("big.asice", vec![9; 64]).unwrap();
        q.commit().await.unwrap();
        let names: Vec<String> = q.frames().into_iter().map(|f| f.name).collect();
        assert_eq!(
            names,
            ["r0.asice", "r2.asice", "r4.asice", "r5.asice", "big.asice"]
        );
        drop(q);

        // Reopened: the same records, each readable.
        let q = Queue::open(&path, &digest).unwrap();
        assert!(q.damaged.is_none());
        let frames = q.frames();
        assert_eq!(frames.len(), 5);
        assert_eq!(q.read(&frames[1]).unwrap(), vec![2; 102]);
        assert_eq!(q.read(&frames[3]).unwrap(), b"five");
        assert!(frames[4].external && frames[4].digest == vec![9; 64]);
        drop(q);

        // A torn last frame is cut off quietly.
        let len = std::fs::metadata(&path).unwrap().len();
        let f = File::options().write(true).open(&path).unwrap();
        f.set_len(len - 2).unwrap();
        let q = Queue::open(&path, &digest).unwrap();
        assert!(q.damaged.is_none());
        assert_eq!(q.len(), 4);
        drop(q);

        // A changed byte in the middle is damage: reported, set aside, the frames before kept.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[HEADER + PREFIX + 8 + 150] ^= 1; // inside the second frame
        std::fs::write(&path, &bytes).unwrap();
        let q = Queue::open(&path, &digest).unwrap();
        assert!(q.damaged.as_deref().unwrap().contains("damaged"));
        assert_eq!(q.len(), 1);
        assert!(std::fs::read_dir(dir.path()).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains("damaged")));
    }
}
