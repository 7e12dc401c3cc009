//! Appends to the queue's newest segment past the page cache (`O_DIRECT`): the records go to disk
//! once and are read back rarely (a download, the archiver), and copying each into the page
//! cache, then writing it back, cost the server more CPU than the rest of logging a record.
//! `O_DIRECT` writes whole aligned blocks, so the last partial block's bytes are kept here and
//! written again, followed by the new ones, at the next write; the file may end in zeros past the
//! last frame until then (the queue reads them as a torn tail). Where the filesystem refuses
//! `O_DIRECT` (tmpfs), the segment is appended to the ordinary way.
//!
//! The file is grown ahead of the frames, [`GROW_BY`] at a time, with zeros written (not a
//! hole, nor `fallocate`'s unwritten extents, which a write converts): a group commit then
//! overwrites blocks that are already there, and its `fdatasync` has no size or extent to
//! write, only the data and the disk's cache flush. That halves the CPU and the time of a
//! commit (one I/O request less). The zeros past the last frame read as its end, as a torn
//! tail does; the queue cuts them off at open, and [`SegmentWriter::trim`] when the segment is
//! done with.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Arc;

/// `O_DIRECT`'s alignment of offsets, lengths and memory.
pub(crate) const BLOCK: usize = 4096;
/// How far ahead of the frames the file is grown with zeros.
const GROW_BY: u64 = 8 << 20;
/// Free space below which the file is not grown.
const ROOM: u64 = 64 << 20;
/// The zeros written at a time when it grows.
const ZEROS: usize = 1 << 20;

pub(crate) struct SegmentWriter {
    pub seq: u64,
    /// The segment (read and appended to the ordinary way); synced through it.
    pub file: Arc<File>,
    direct: Option<File>,
    /// Bytes written so far: where the next write goes.
    pub written: u64,
    /// The file's length: zeros from `written` (rounded up to a block) to here.
    allocated: u64,
    /// The bytes of the last partial block, `written % BLOCK` of them.
    tail: Vec<u8>,
    /// Aligned staging memory, kept between writes.
    buf: Vec<u8>,
    /// Aligned zeros for growing the file, made the first time it grows.
    zeros: Vec<u8>,
}

impl SegmentWriter {
    /// Writes at the end (`written`) of segment `seq`, whose last bytes are read back for the
    /// partial block.
    pub(crate) fn open(
        path: &Path,
        seq: u64,
        file: Arc<File>,
        written: u64,
    ) -> std::io::Result<Self> {
        let direct = File::options()
            .write(true)
            .custom_flags(rustix::fs::OFlags::DIRECT.bits() as i32)
            .open(path)
            .ok();
        let kept = written % BLOCK as u64;
        let mut tail = vec![0; kept as usize];
        file.read_exact_at(&mut tail, written - kept)?;
        Ok(SegmentWriter {
            seq,
            direct,
            written,
            tail,
            buf: Vec::new(),
            allocated: file.metadata()?.len().max(written),
            file,
            zeros: Vec::new(),
        })
    }

    /// Cuts the file back to the frames written (after a failed write, or when the segment is
    /// done with), dropping the zeros grown ahead.
    pub(crate) fn trim(&mut self) -> std::io::Result<()> {
        self.file.set_len(self.written)?;
        self.allocated = self.written;
        Ok(())
    }

    /// Writes `data` at the end: whole, or an error (the caller cuts the file back to
    /// `written`, which is unchanged then).
    pub(crate) fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        if self.direct.is_some() {
            match self.write_direct(data) {
                Ok(()) => {
                    self.written += data.len() as u64;
                    return Ok(());
                }
                // Alignment refused after all: the ordinary way from now on, appending where
                // the frames end (not after the zeros of an earlier block).
                Err(e) if e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) => {
                    self.direct = None;
                    self.trim()?;
                }
                Err(e) => return Err(e),
            }
        }
        let mut f = &*self.file; // opened to append: the write lands at `written`
        f.write_all(data)?;
        self.written += data.len() as u64;
        Ok(())
    }

    fn write_direct(&mut self, data: &[u8]) -> std::io::Result<()> {
        let SegmentWriter {
            direct: Some(direct),
            tail,
            buf,
            written,
            allocated,
            zeros,
            ..
        } = self
        else {
            return Ok(());
        };
        let content = tail.len() + data.len();
        let padded = content.div_ceil(BLOCK) * BLOCK;
        if buf.len() < padded + BLOCK {
            *buf = vec![0; (padded + BLOCK).next_power_of_two()];
        }
        let start = buf.as_ptr().align_offset(BLOCK).min(BLOCK);
        let out = &mut buf[start..start + padded];
        out[..tail.len()].copy_from_slice(tail);
        out[tail.len()..content].copy_from_slice(data);
        out[content..].fill(0);
        let at = *written - tail.len() as u64;
        direct.write_all_at(out, at)?;
        let kept = content % BLOCK;
        tail.clear();
        tail.extend_from_slice(&out[content - kept..content]);
        let end = at + padded as u64;
        if end > *allocated {
            *allocated = end;
            if roomy(direct) {
                match grow(direct, zeros, end, end + GROW_BY) {
                    Ok(()) => *allocated = end + GROW_BY,
                    // Appended, as without growing: what the failed growth took is given back.
                    Err(_) => direct.set_len(end)?,
                }
            }
        }
        Ok(())
    }
}

/// Whether the disk has room to spare for growing: growth only makes commits cheaper, so it
/// never takes a disk's last [`ROOM`] (the records themselves may).
fn roomy(file: &File) -> bool {
    rustix::fs::fstatvfs(file).is_ok_and(|s| s.f_bavail.saturating_mul(s.f_frsize) > ROOM)
}

/// Writes zeros over `from..to` (block-aligned).
fn grow(direct: &File, zeros: &mut Vec<u8>, from: u64, to: u64) -> std::io::Result<()> {
    if zeros.is_empty() {
        *zeros = vec![0; ZEROS + BLOCK];
    }
    let start = zeros.as_ptr().align_offset(BLOCK).min(BLOCK);
    let zeros = &zeros[start..start + ZEROS];
    let mut at = from;
    while at < to {
        let n = (to - at).min(ZEROS as u64) as usize;
        direct.write_all_at(&zeros[..n], at)?;
        at += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_segment_reads_as_the_bytes_written_in_any_pieces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        std::fs::write(&path, b"before").unwrap();
        let open = || {
            let f = File::options().read(true).append(true).open(&path).unwrap();
            let len = f.metadata().unwrap().len();
            SegmentWriter::open(&path, 0, Arc::new(f), len).unwrap()
        };
        let mut w = open();
        let mut expected = b"before".to_vec();
        let mut n = 0u8;
        for len in [1, BLOCK - 7, BLOCK, 3 * BLOCK + 5, 11_000, 2, 70_000] {
            let piece: Vec<u8> = (0..len).map(|i| (i % 251) as u8 ^ n).collect();
            w.write(&piece).unwrap();
            expected.extend_from_slice(&piece);
            n += 1;
            let got = std::fs::read(&path).unwrap();
            assert!(got.len() as u64 >= w.written + GROW_BY / 2, "grown ahead");
            assert_eq!(&got[..expected.len()], &expected[..], "after {len}");
            assert!(
                got[expected.len()..].iter().all(|b| *b == 0),
                "zeros past the end"
            );
            if n == 4 {
                // Reopened mid-way, as after a restart that cut the padding off.
                File::options()
                    .write(true)
                    .open(&path)
                    .unwrap()
                    .set_len(expected.len() as u64)
                    .unwrap();
                w = open();
            }
        }
        w.trim().unwrap();
        assert_eq!(
            std::fs::read(&path).unwrap(),
            expected,
            "trimmed to the frames"
        );
    }
}
