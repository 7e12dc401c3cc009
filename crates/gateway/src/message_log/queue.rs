//! The message log's records, in append-only segment files (`pending.<n>.queue`): a record is
//! appended as a frame to the bytes waiting for the newest segment, in memory, and made durable
//! by a group commit: one write of everything waiting, past the page cache
//! (`super::segment_writer`), and one `fdatasync`, for every record appended before it began.
//! That costs a message far less than a file, or a write, of its own. A time-stamping round takes the oldest frames
//! waiting, records the token and where they are (`super::stamps`), and then moves the mark of
//! what is stamped (`pending.done`, the segment and offset of the first frame still waiting)
//! past them. The records stay where they are: a segment behind the mark holds stamped records,
//! read through the rounds' files, and goes when no round's file names it any more (the
//! archiver's clean-up). The time-stamper starts a new segment at the start of a round once the
//! newest one holds [`ROLL_AT`] bytes.
//!
//! A frame is `len u32 LE, crc32 u32 LE, written_at i64 LE, kind u8, name_len u16 LE, name,
//! payload`; the CRC covers everything after it. The payload is the container (kind 0), or for a
//! record too large to pass through memory (kind 1, a streamed REST body) the digest of its
//! signature, the container itself written beside the queue in `incoming/`. The mark is `seq u64
//! LE, offset u64 LE, crc32 u32 LE`. At open, a torn last frame (a crash in the middle of an
//! append: cut short, or followed by nothing but the zeros the file was grown by) is cut off;
//! any other frame whose CRC does not match is damage: the segment is copied aside
//! whole (`….damaged-<unix>`), the frames before the damage are kept, and the damage is
//! reported, never silently used. A damaged mark is reported too, and every segment is stamped
//! again (a record is stamped twice rather than lost).

use std::collections::VecDeque;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::group_sync::{Failed, GroupSync};
use super::segment_writer::SegmentWriter;

const HEADER: usize = 8;
/// `written_at`, `kind` and `name_len`, before the name.
const PREFIX: usize = 11;
/// A container larger than this is refused: larger bodies stream into `incoming/` instead.
const MAX_FRAME: usize = 256 << 20;
/// The mark of what is stamped.
const MARK: &str = "pending.done";
/// The queue of earlier versions, one file: read as the first segment.
const LEGACY: &str = "pending.queue";
/// What the records one bundle takes from the queue may add up to (a zip without zip64 holds 4
/// GiB; a record streamed to its own file counts its digest only).
pub(crate) const MAX_BUNDLE_BYTES: u64 = 1 << 30;
/// A round starts a new segment once the newest holds this much.
pub(crate) const ROLL_AT: u64 = 1 << 20;

/// One waiting record.
#[derive(Clone, Debug)]
pub(crate) struct Frame {
    /// The container's file name once stamped.
    pub name: String,
    /// The segment holding it, where its payload starts, and its length.
    pub segment: u64,
    pub offset: u64,
    pub len: u32,
    /// The digest of its signature (what the time-stamp covers).
    pub digest: Vec<u8>,
    /// The container is a file of its own in `incoming/`, not in the queue.
    pub external: bool,
    /// When it was appended (Unix seconds).
    pub written_at: i64,
}

impl Frame {
    /// Where the whole frame starts in its segment.
    fn start(&self) -> u64 {
        self.offset - (HEADER + PREFIX + self.name.len()) as u64
    }
}

pub(crate) struct Queue {
    dir: PathBuf,
    inner: Arc<Mutex<Inner>>,
    /// Writes the waiting frames to the newest segment, one flush at a time (lock order: the
    /// writer, then `inner`).
    writer: Arc<Mutex<SegmentWriter>>,
    sync: GroupSync,
    /// The mark, rewritten in place.
    mark: File,
    /// Damage found at open, for `/health`.
    pub damaged: Option<String>,
}

struct Inner {
    /// Oldest first; the last takes appends.
    segments: VecDeque<Segment>,
    frames: VecDeque<Frame>,
    /// Frames appended to the newest segment and not yet written: the next flush writes them
    /// all with one write.
    pending: Vec<u8>,
    /// The buffer of the last flush, emptied, for `pending` to take next: appends write into
    /// memory that is there already.
    spare: Option<Vec<u8>>,
}

struct Segment {
    seq: u64,
    file: Arc<File>,
    /// Where the next frame goes (its written bytes and `pending`).
    end: u64,
}

/// What the waiting frames may add up to while they cannot be written (a full disk): past it,
/// records are refused at once.
const MAX_PENDING: usize = 64 << 20;
/// A flushed buffer larger than this is freed rather than kept for the next appends.
const MAX_SPARE: usize = 8 << 20;

pub(crate) fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("pending.{seq}.queue"))
}

/// The segments in `dir`, oldest first.
fn segments_in(dir: &Path) -> std::io::Result<Vec<u64>> {
    let mut seqs = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let name = e?.file_name();
        let name = name.to_string_lossy();
        if let Some(n) = name
            .strip_prefix("pending.")
            .and_then(|n| n.strip_suffix(".queue"))
            .and_then(|n| n.parse::<u64>().ok())
        {
            seqs.push(n);
        }
    }
    seqs.sort_unstable();
    Ok(seqs)
}

impl Queue {
    /// Opens (or creates) the queue in `dir`; `digest` gives a container's signature digest
    /// for frames found in the files.
    pub(crate) fn open(
        dir: &Path,
        digest: &dyn Fn(&[u8]) -> Option<Vec<u8>>,
    ) -> std::io::Result<Queue> {
        let legacy = dir.join(LEGACY);
        if legacy.exists() && !segment_path(dir, 0).exists() {
            std::fs::rename(&legacy, segment_path(dir, 0))?;
        }
        let mut damage = Vec::new();
        let mark_file = File::options()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(dir.join(MARK))?;
        let mark = match read_mark(&mark_file) {
            Ok(m) => m,
            Err(why) => {
                // The rounds' files name the segments stamped: the newest of them is stamped
                // again from its start (a record stamped twice rather than lost), the older
                // ones are not read at all (a log kept for years is not loaded into memory).
                let newest = [dir.to_path_buf(), dir.join(super::archiver::ARCHIVED)]
                    .iter()
                    .flat_map(|d| super::stamps::files_in(d).unwrap_or_default())
                    .filter_map(|p| super::stamps::segment_of(&p.file_name()?.to_string_lossy()))
                    .max();
                damage.push(format!(
                    "its mark {MARK} was damaged ({why}); the records from segment {} on are \
                     stamped again",
                    newest.unwrap_or(0)
                ));
                newest.map(|seq| (seq, 0))
            }
        };
        let (mark_seq, mark_offset) = mark.unwrap_or((0, 0));
        let mut segments = VecDeque::new();
        let mut frames = VecDeque::new();
        for seq in segments_in(dir)? {
            let path = segment_path(dir, seq);
            if seq < mark_seq {
                continue; // stamped: read through the rounds' files
            }
            let file = File::options().read(true).append(true).open(&path)?;
            let len = file.metadata()?.len();
            let from = if seq == mark_seq {
                mark_offset.min(len)
            } else {
                0
            };
            let (found, good_end, bad) = scan(&file, &path, seq, from, len, digest)?;
            if let Some(why) = bad {
                let aside = path.with_extension(format!("queue.damaged-{}", crate::ocsp::now()));
                std::fs::copy(&path, &aside)?;
                damage.push(format!(
                    "{} was damaged ({why}); it is kept as {}, the {} records before the damage \
                     are kept",
                    path.display(),
                    aside.display(),
                    found.len()
                ));
            }
            if good_end != len {
                // A torn or damaged tail: the file keeps what reads.
                file.set_len(good_end)?;
                file.sync_all()?;
            }
            frames.extend(found);
            segments.push_back(Segment {
                seq,
                file: Arc::new(file),
                end: good_end,
            });
        }
        if segments.is_empty() {
            // A fresh segment always comes after the mark, never under it.
            let seq = mark.map_or(0, |(s, _)| s + 1);
            segments.push_back(Segment {
                seq,
                file: Arc::new(create_segment(dir, seq)?),
                end: 0,
            });
        }
        File::open(dir)?.sync_all()?;
        let damaged = (!damage.is_empty()).then(|| {
            let msg = format!("the message log's queue: {}", damage.join("; "));
            tracing::error!("{msg}");
            msg
        });
        let writer = match segments.back() {
            Some(s) => {
                SegmentWriter::open(&segment_path(dir, s.seq), s.seq, s.file.clone(), s.end)?
            }
            None => return Err(std::io::Error::other("the queue has no segment")),
        };
        Ok(Queue {
            dir: dir.to_path_buf(),
            sync: GroupSync::default(),
            writer: Arc::new(Mutex::new(writer)),
            inner: Arc::new(Mutex::new(Inner {
                segments,
                frames,
                pending: Vec::new(),
                spare: None,
            })),
            mark: mark_file,
            damaged,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends a record whose container is written already.
    #[cfg(test)]
    pub(crate) fn append(
        &self,
        name: &str,
        container: &[u8],
        digest: Vec<u8>,
    ) -> std::io::Result<()> {
        self.append_with(name, digest, false, |frame| {
            frame.extend_from_slice(container);
            Ok(())
        })
    }

    /// Appends a record whose container was written, synced, into `incoming/<name>`.
    pub(crate) fn append_external(&self, name: &str, digest: Vec<u8>) -> std::io::Result<()> {
        let payload = digest.clone();
        self.append_with(name, digest, true, |frame| {
            frame.extend_from_slice(&payload);
            Ok(())
        })
    }

    /// Appends a record, not yet durable nor written: see [`Queue::commit`]. `write` appends
    /// the payload to the bytes it is given: the frames waiting to be written, behind this
    /// frame's header (the container is written once, where it is written from).
    pub(crate) fn append_with(
        &self,
        name: &str,
        digest: Vec<u8>,
        external: bool,
        write: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let Ok(name_len) = u16::try_from(name.len()) else {
            return Err(std::io::Error::other("the record's name is too long"));
        };
        let written_at = crate::ocsp::now();
        let mut inner = self.lock();
        let Inner {
            segments,
            pending,
            frames,
            ..
        } = &mut *inner;
        if pending.len() > MAX_PENDING {
            return Err(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                "the message log's queue cannot be written (is the disk full?)",
            ));
        }
        let Some(seg) = segments.back_mut() else {
            return Err(std::io::Error::other("the queue has no segment"));
        };
        // The header's length and CRC are filled in once the body is behind them.
        let start = pending.len();
        pending.extend_from_slice(&[0; HEADER]);
        pending.extend_from_slice(&written_at.to_le_bytes());
        pending.push(u8::from(external));
        pending.extend_from_slice(&name_len.to_le_bytes());
        pending.extend_from_slice(name.as_bytes());
        let before = pending.len();
        let written = write(pending);
        let payload_len = pending.len() - before;
        if written.is_err() || payload_len > MAX_FRAME {
            pending.truncate(start);
            written?;
            return Err(std::io::Error::other(
                "the record is too large for the queue",
            ));
        }
        let frame = &mut pending[start..];
        let body_len = (frame.len() - HEADER) as u32;
        let crc = crc32fast::hash(&frame[HEADER..]);
        frame[..4].copy_from_slice(&body_len.to_le_bytes());
        frame[4..HEADER].copy_from_slice(&crc.to_le_bytes());
        let (segment, offset) = (seg.seq, seg.end + (before - start) as u64);
        seg.end += (pending.len() - start) as u64;
        frames.push_back(Frame {
            name: name.to_string(),
            segment,
            offset,
            len: payload_len as u32,
            digest,
            external,
            written_at,
        });
        Ok(())
    }

    /// Returns once every record appended before the call is on disk: the frames waiting are
    /// written with one write and the segment synced, once for every writer waiting then.
    pub(crate) async fn commit(&self) -> std::io::Result<()> {
        let (inner, writer) = (self.inner.clone(), self.writer.clone());
        self.sync
            .wait(move || {
                let mut w = writer.lock().unwrap_or_else(|p| p.into_inner());
                write_pending(&mut w, &inner)
            })
            .await
    }

    /// Whether `chunk` (from [`Queue::first`]) is still the oldest records, where they were: a
    /// failed write moves the records appended after it.
    pub(crate) fn still_first(&self, chunk: &[Frame]) -> bool {
        let inner = self.lock();
        chunk.len() <= inner.frames.len()
            && chunk
                .iter()
                .zip(&inner.frames)
                .all(|(a, b)| (a.segment, a.offset) == (b.segment, b.offset))
    }

    /// The records waiting now, oldest first.
    pub(crate) fn frames(&self) -> Vec<Frame> {
        self.lock().frames.iter().cloned().collect()
    }

    /// The `n` oldest records waiting, of one segment, as many of them as fit `max_bytes` (at
    /// least one).
    pub(crate) fn first(&self, n: usize, max_bytes: u64) -> Vec<Frame> {
        let mut bytes = 0u64;
        let inner = self.lock();
        let segment = inner.frames.front().map(|f| f.segment);
        let fits = inner.frames.iter().take(n).take_while(|f| {
            bytes += u64::from(f.len);
            bytes <= max_bytes && Some(f.segment) == segment
        });
        let mut out: Vec<Frame> = fits.cloned().collect();
        if out.is_empty() {
            out.extend(inner.frames.front().cloned());
        }
        out
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().frames.len()
    }

    /// When the oldest waiting record was appended.
    pub(crate) fn oldest(&self) -> Option<i64> {
        self.lock().frames.front().map(|f| f.written_at)
    }

    /// A waiting record's container (blocking).
    pub(crate) fn read(&self, frame: &Frame) -> std::io::Result<Vec<u8>> {
        let file = {
            let inner = self.lock();
            let seg = inner.segments.iter().find(|s| s.seq == frame.segment);
            seg.map(|s| s.file.clone())
                .ok_or_else(|| std::io::Error::other("the record has left the queue"))?
        };
        // Room for the time-stamp the round adds, so that the container grows in place.
        let mut buf = Vec::with_capacity(frame.len as usize + 16 * 1024);
        buf.resize(frame.len as usize, 0);
        file.read_exact_at(&mut buf, frame.offset)?;
        Ok(buf)
    }

    /// Starts a new segment for appends if the newest holds `at_least` bytes (blocking): what
    /// waits for the old one is written there first, and synced.
    pub(crate) fn roll(&self, at_least: u64) -> std::io::Result<()> {
        let mut w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let taken = {
            let mut inner = self.lock();
            let Some(last) = inner.segments.back() else {
                return Ok(());
            };
            if last.end < at_least.max(1) {
                return Ok(());
            }
            let seq = last.seq + 1;
            let file = Arc::new(create_segment(&self.dir, seq)?);
            inner.segments.push_back(Segment { seq, file, end: 0 });
            std::mem::take(&mut inner.pending)
        };
        // The old segment's last frames; the new one takes the writes whatever came of that.
        let written = write_taken(&mut w, &self.inner, taken);
        if written.is_ok() {
            // Its zeros grown ahead are not needed any more (they read as its end anyway).
            if let Err(e) = w.trim() {
                tracing::warn!(segment = w.seq, error = %e, "trimming a message log segment failed");
            }
        }
        let newest = self.lock().segments.back().map(|s| (s.seq, s.file.clone()));
        if let Some((seq, file)) = newest {
            *w = SegmentWriter::open(&segment_path(&self.dir, seq), seq, file, 0)?;
        }
        written.map_err(|f| f.error)?;
        File::open(&self.dir)?.sync_all()
    }

    /// Forgets the `n` oldest records (stamped; blocking): the mark moves past them, durably.
    /// The segments wholly behind it stay on disk, stamped ([`delete_unused`]).
    pub(crate) fn remove_first(&self, n: usize) -> std::io::Result<()> {
        let mut inner = self.lock();
        let n = n.min(inner.frames.len());
        inner.frames.drain(..n);
        let mark = match (inner.frames.front(), inner.segments.back()) {
            (Some(f), _) => (f.segment, f.start()),
            (None, Some(s)) => (s.seq, s.end),
            (None, None) => return Ok(()),
        };
        let mut bytes = [0u8; 20];
        bytes[..8].copy_from_slice(&mark.0.to_le_bytes());
        bytes[8..16].copy_from_slice(&mark.1.to_le_bytes());
        let crc = crc32fast::hash(&bytes[..16]);
        bytes[16..].copy_from_slice(&crc.to_le_bytes());
        self.mark.write_all_at(&bytes, 0)?;
        self.mark.sync_data()?;
        while inner.segments.front().is_some_and(|s| s.seq < mark.0) {
            inner.segments.pop_front();
        }
        Ok(())
    }
}

/// Deletes the stamped segments of `dir` that `used` does not name (the segments the rounds'
/// files still read from); returns how many went.
pub(crate) fn delete_unused(dir: &Path, used: &dyn Fn(u64) -> bool) -> std::io::Result<usize> {
    let mark = File::open(dir.join(MARK))
        .map_err(|e| e.to_string())
        .and_then(|f| read_mark(&f));
    let Ok(Some((stamped_below, _))) = mark else {
        return Ok(0); // nothing stamped yet, or a damaged mark: nothing is known to be stamped
    };
    let mut deleted = 0;
    for seq in segments_in(dir)? {
        if seq < stamped_below && !used(seq) {
            std::fs::remove_file(segment_path(dir, seq))?;
            deleted += 1;
        }
    }
    if deleted > 0 {
        File::open(dir)?.sync_all()?;
    }
    Ok(deleted)
}

/// A stamped record's container from its segment, its frame checked: the frame that starts
/// `name`'s payload at `offset` must read whole with a good checksum.
pub(crate) fn read_checked(
    segment: &File,
    offset: u64,
    len: u32,
    name: &str,
) -> std::io::Result<Vec<u8>> {
    let head = (HEADER + PREFIX + name.len()) as u64;
    let damaged = || {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("the record {name} at byte {offset} of its segment is damaged"),
        )
    };
    let start = offset.checked_sub(head).ok_or_else(damaged)?;
    if len as usize > MAX_FRAME {
        return Err(damaged());
    }
    let total = head as usize + len as usize;
    // Room for the time-stamp the reader adds, so that the container grows in place.
    let mut frame = Vec::with_capacity(total + 16 * 1024);
    frame.resize(total, 0);
    segment
        .read_exact_at(&mut frame, start)
        .map_err(|_| damaged())?;
    let body_len = u32::from_le_bytes(frame[..4].try_into().unwrap_or_default()) as usize;
    let crc = u32::from_le_bytes(frame[4..HEADER].try_into().unwrap_or_default());
    let named = frame.get(HEADER + PREFIX..head as usize) == Some(name.as_bytes());
    if body_len != total - HEADER || crc32fast::hash(&frame[HEADER..]) != crc || !named {
        return Err(damaged());
    }
    frame.drain(..head as usize);
    Ok(frame)
}

/// Writes the frames waiting (blocking) and syncs them.
fn write_pending(w: &mut SegmentWriter, inner: &Mutex<Inner>) -> Result<(), Failed> {
    let taken = {
        let mut i = inner.lock().unwrap_or_else(|p| p.into_inner());
        let spare = i.spare.take().unwrap_or_default();
        std::mem::replace(&mut i.pending, spare)
    };
    write_taken(w, inner, taken)
}

/// Writes frames taken from `pending` at the end of the writer's segment and syncs them. A
/// failed write is cut off the file and its records are forgotten (their writers are refused);
/// the records appended since move down into their place.
fn write_taken(
    w: &mut SegmentWriter,
    inner: &Mutex<Inner>,
    mut taken: Vec<u8>,
) -> Result<(), Failed> {
    if taken.is_empty() {
        return Ok(()); // everything was written and synced by the flush before
    }
    let written = write_and_sync(w, inner, &taken);
    // The buffer serves the appends again (kept unless a backlog made it large).
    if taken.capacity() <= MAX_SPARE {
        taken.clear();
        inner.lock().unwrap_or_else(|p| p.into_inner()).spare = Some(taken);
    }
    written
}

fn write_and_sync(w: &mut SegmentWriter, inner: &Mutex<Inner>, taken: &[u8]) -> Result<(), Failed> {
    let start = w.written;
    if let Err(error) = w.write(taken) {
        // Cut back, so the file ends where the index says; failing that, nothing is sure.
        w.trim()?;
        let cut = taken.len() as u64;
        let mut inner = inner.lock().unwrap_or_else(|p| p.into_inner());
        let seq = w.seq;
        inner
            .frames
            .retain(|f| f.segment != seq || f.offset < start || f.offset >= start + cut);
        for f in inner
            .frames
            .iter_mut()
            .filter(|f| f.segment == seq && f.offset > start)
        {
            f.offset -= cut;
        }
        if let Some(seg) = inner.segments.iter_mut().find(|s| s.seq == seq) {
            seg.end -= cut;
        }
        return Err(Failed {
            error,
            durability_lost: false,
        });
    }
    w.file.sync_data()?;
    Ok(())
}

fn create_segment(dir: &Path, seq: u64) -> std::io::Result<File> {
    File::options()
        .create_new(true)
        .read(true)
        .append(true)
        .open(segment_path(dir, seq))
}

/// The mark of what is stamped: the segment and offset of the first record still waiting;
/// `None` before anything was stamped.
fn read_mark(file: &File) -> Result<Option<(u64, u64)>, String> {
    let mut bytes = [0u8; 20];
    match file.metadata().map_err(|e| e.to_string())?.len() {
        0 => return Ok(None),
        20 => {}
        n => return Err(format!("{n} bytes")),
    }
    file.read_exact_at(&mut bytes, 0)
        .map_err(|e| e.to_string())?;
    let word = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().unwrap_or_default());
    let crc = u32::from_le_bytes(bytes[16..].try_into().unwrap_or_default());
    if crc32fast::hash(&bytes[..16]) != crc {
        return Err("a bad checksum".into());
    }
    Ok(Some((word(0), word(8))))
}

/// The frames of segment `seq` from byte `at` on, where they end, and why reading stopped early
/// when it is damage rather than a torn last frame. Read frame by frame: memory stays bounded
/// by one frame, however long the backlog.
fn scan(
    file: &File,
    path: &Path,
    seq: u64,
    mut at: u64,
    file_len: u64,
    digest: &dyn Fn(&[u8]) -> Option<Vec<u8>>,
) -> std::io::Result<(Vec<Frame>, u64, Option<String>)> {
    let mut frames = Vec::new();
    let bad = |at: u64| Some(format!("a bad frame at byte {at}"));
    while at < file_len {
        if file_len - at < HEADER as u64 {
            return Ok((frames, at, None)); // torn header
        }
        let mut header = [0u8; HEADER];
        file.read_exact_at(&mut header, at)?;
        if header == [0; HEADER] && zeros_to_end(file, at + HEADER as u64, file_len)? {
            // Past the last frame: the zeros the file was grown by, or a block's padding.
            return Ok((frames, at, None));
        }
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
            let end = at + HEADER as u64 + len;
            if zeros_to_end(file, end, file_len)? {
                // Nothing written after it: the last write, torn by a crash before its flush
                // ended (as a database's log ends at its first bad record). Its records were
                // never acknowledged; its bytes are kept aside for whoever wants to look.
                let aside = path.with_extension(format!("queue.torn-{at}"));
                let mut bytes = header.to_vec();
                bytes.extend_from_slice(&body);
                std::fs::write(&aside, bytes)?;
                tracing::warn!(
                    segment = %path.display(),
                    at,
                    kept = %aside.display(),
                    "the message log's last write before the stop was torn: it is cut off"
                );
                return Ok((frames, at, None));
            }
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
            segment: seq,
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

/// Whether the file holds only zeros from `at` to `file_len` (read a piece at a time).
fn zeros_to_end(file: &File, mut at: u64, file_len: u64) -> std::io::Result<bool> {
    let mut piece = vec![0u8; 64 << 10];
    while at < file_len {
        let n = (file_len - at).min(piece.len() as u64) as usize;
        file.read_exact_at(&mut piece[..n], at)?;
        if piece[..n].iter().any(|b| *b != 0) {
            return Ok(false);
        }
        at += n as u64;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(c: &[u8]) -> Option<Vec<u8>> {
        Some(c.iter().rev().copied().collect())
    }

    fn names(q: &Queue) -> Vec<String> {
        q.frames().into_iter().map(|f| f.name).collect()
    }

    fn files(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[tokio::test]
    async fn records_survive_reopen_and_stamped_segments_go() {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::open(dir.path(), &digest).unwrap();
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
        q.remove_first(2).unwrap();
        q.append("r5.asice", b"five", vec![5]).unwrap();
        q.append_external("big.asice", vec![9; 64]).unwrap();
        q.commit().await.unwrap();
        assert_eq!(
            names(&q),
            ["r2.asice", "r3.asice", "r4.asice", "r5.asice", "big.asice"]
        );
        drop(q);

        // Reopened: the same records, each readable; the stamped ones stay stamped.
        let q = Queue::open(dir.path(), &digest).unwrap();
        assert!(q.damaged.is_none());
        let frames = q.frames();
        assert_eq!(frames.len(), 5);
        assert_eq!(q.read(&frames[0]).unwrap(), vec![2; 102]);
        assert_eq!(q.read(&frames[3]).unwrap(), b"five");
        assert!(frames[4].external && frames[4].digest == vec![9; 64]);
        // Read as a stamped record is: the frame checked whole.
        let seg = File::open(segment_path(dir.path(), 0)).unwrap();
        let f = &frames[1];
        assert_eq!(
            read_checked(&seg, f.offset, f.len, &f.name).unwrap(),
            vec![3; 103]
        );
        assert!(read_checked(&seg, f.offset, f.len, "r4.asice").is_err());
        assert!(read_checked(&seg, f.offset + 1, f.len, &f.name).is_err());
        assert!(read_checked(&seg, f.offset, f.len + 1, &f.name).is_err());

        // A new segment; once everything in the first is stamped, its file goes.
        q.roll(ROLL_AT).unwrap(); // too small to roll
        assert_eq!(files(dir.path()), ["pending.0.queue", "pending.done"]);
        q.roll(1).unwrap();
        q.append("r6.asice", b"six", vec![6]).unwrap();
        q.commit().await.unwrap();
        q.remove_first(4).unwrap();
        assert_eq!(files(dir.path()).len(), 3);
        q.remove_first(1).unwrap();
        // Stamped, the first segment stays while a round's file reads from it.
        let both = ["pending.0.queue", "pending.1.queue", "pending.done"];
        assert_eq!(files(dir.path()), both);
        assert_eq!(delete_unused(dir.path(), &|s| s == 0).unwrap(), 0);
        assert_eq!(files(dir.path()), both);
        assert_eq!(delete_unused(dir.path(), &|_| false).unwrap(), 1);
        assert_eq!(files(dir.path()), ["pending.1.queue", "pending.done"]);
        assert_eq!(names(&q), ["r6.asice"]);
        for i in 7..10u8 {
            q.append(&format!("r{i}.asice"), &[i; 200], vec![i])
                .unwrap();
        }
        q.commit().await.unwrap();
        drop(q);
        let q = Queue::open(dir.path(), &digest).unwrap();
        assert_eq!(names(&q), ["r6.asice", "r7.asice", "r8.asice", "r9.asice"]);
        q.remove_first(4).unwrap();
        drop(q);
        // Everything stamped: a reopened queue appends after the mark, never under it.
        let q = Queue::open(dir.path(), &digest).unwrap();
        assert_eq!(q.len(), 0);
        q.append("r10.asice", b"ten", vec![10]).unwrap();
        q.commit().await.unwrap();
        drop(q);
        let q = Queue::open(dir.path(), &digest).unwrap();
        assert_eq!(names(&q), ["r10.asice"]);
    }

    #[tokio::test]
    async fn a_torn_tail_is_cut_and_damage_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::open(dir.path(), &digest).unwrap();
        for i in 0..4u8 {
            q.append(&format!("r{i}.asice"), &[i; 200], vec![i])
                .unwrap();
        }
        q.commit().await.unwrap();
        let last = q.frames().pop().unwrap();
        let end = last.offset + u64::from(last.len);
        drop(q);
        let path = segment_path(dir.path(), 0);

        // The zeros of a block written whole past the last frame are no frame.
        let len = std::fs::metadata(&path).unwrap().len();
        if len > end {
            let q = Queue::open(dir.path(), &digest).unwrap();
            assert!(q.damaged.is_none());
            assert_eq!(q.len(), 4);
            assert_eq!(
                std::fs::metadata(&path).unwrap().len(),
                end,
                "cut at the last frame"
            );
            drop(q);
        }

        // A torn last frame is cut off quietly.
        let f = File::options().write(true).open(&path).unwrap();
        f.set_len(end - 2).unwrap();
        let q = Queue::open(dir.path(), &digest).unwrap();
        assert!(q.damaged.is_none());
        assert_eq!(q.len(), 3);
        drop(q);

        // A last frame with a wrong byte and nothing but zeros after it (the file grown ahead):
        // a torn last write, cut off, its bytes kept aside.
        let end = std::fs::metadata(&path).unwrap().len();
        let f = File::options().write(true).open(&path).unwrap();
        f.write_all_at(&[0xff], end - 10).unwrap();
        f.set_len(end + 3 * 4096).unwrap();
        let q = Queue::open(dir.path(), &digest).unwrap();
        assert!(q.damaged.is_none());
        assert_eq!(q.len(), 2);
        assert!(files(dir.path()).iter().any(|f| f.contains("torn")));
        q.append("r5.asice", &[5; 200], vec![5]).unwrap();
        q.commit().await.unwrap();
        drop(q);

        // A changed byte with frames after it is damage: reported, set aside, the frames before kept.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[HEADER + PREFIX + 8 + 200 + 50] ^= 1; // inside the second frame
        std::fs::write(&path, &bytes).unwrap();
        let q = Queue::open(dir.path(), &digest).unwrap();
        assert!(q.damaged.as_deref().unwrap().contains("damaged"));
        assert_eq!(q.len(), 1);
        assert!(files(dir.path()).iter().any(|f| f.contains("damaged")));
        q.append("r4.asice", &[4; 200], vec![4]).unwrap();
        q.commit().await.unwrap();
        q.remove_first(1).unwrap();
        drop(q);

        // A damaged mark: reported, and every record is stamped again rather than lost.
        let mark = dir.path().join(MARK);
        let mut m = std::fs::read(&mark).unwrap();
        m[3] ^= 1;
        std::fs::write(&mark, &m).unwrap();
        let q = Queue::open(dir.path(), &digest).unwrap();
        assert!(q.damaged.as_deref().unwrap().contains("mark"));
        assert_eq!(names(&q), ["r0.asice", "r4.asice"]);
    }

    #[tokio::test]
    async fn a_damaged_mark_reloads_from_the_newest_stamped_segment_only() {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::open(dir.path(), &digest).unwrap();
        q.append("r0.asice", b"zero", vec![0]).unwrap();
        q.commit().await.unwrap();
        q.roll(1).unwrap();
        q.append("r1.asice", b"one", vec![1]).unwrap();
        q.commit().await.unwrap();
        q.remove_first(2).unwrap();
        drop(q);
        // Segment 1's round was written; the mark then damaged.
        let round = super::super::stamps::file_name(1, 0);
        std::fs::write(dir.path().join(round), b"a round").unwrap();
        std::fs::write(dir.path().join(MARK), [7u8; 20]).unwrap();
        let q = Queue::open(dir.path(), &digest).unwrap();
        assert!(q.damaged.as_deref().unwrap().contains("from segment 1 on"));
        assert_eq!(names(&q), ["r1.asice"], "segment 0 is not read again");
    }

    #[tokio::test]
    async fn the_single_file_of_earlier_versions_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::open(dir.path(), &digest).unwrap();
        q.append("r0.asice", b"zero", vec![0]).unwrap();
        q.commit().await.unwrap();
        drop(q);
        std::fs::remove_file(dir.path().join(MARK)).unwrap();
        std::fs::rename(segment_path(dir.path(), 0), dir.path().join(LEGACY)).unwrap();
        let q = Queue::open(dir.path(), &digest).unwrap();
        assert_eq!(names(&q), ["r0.asice"]);
        assert_eq!(files(dir.path()), ["pending.0.queue", "pending.done"]);
    }
}
