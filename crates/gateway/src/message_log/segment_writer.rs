//! Appends to the queue's newest segment past the page cache (`O_DIRECT`): the records go to disk
//! once and are read back rarely (a download, the archiver), and copying each into the page
//! cache, then writing it back, cost the server more CPU than the rest of logging a record.
//! `O_DIRECT` writes whole aligned blocks, so the last partial block's bytes are kept here and
//! written again, followed by the new ones, at the next write; the file may end in zeros past the
//! last frame until then (the queue reads them as a torn tail). Where the filesystem refuses
//! `O_DIRECT` (tmpfs), the segment is appended to the ordinary way.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Arc;

/// `O_DIRECT`'s alignment of offsets, lengths and memory.
pub(crate) const BLOCK: usize = 4096;

pub(crate) struct SegmentWriter {
    pub seq: u64,
    /// The segment (read and appended to the ordinary way); synced through it.
    pub file: Arc<File>,
    direct: Option<File>,
    /// Bytes written so far: where the next write goes.
    pub written: u64,
    /// The bytes of the last partial block, `written % BLOCK` of them.
    tail: Vec<u8>,
    /// Aligned staging memory, kept between writes.
    buf: Vec<u8>,
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
            file,
            direct,
            written,
            tail,
            buf: Vec::new(),
        })
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
                    self.file.set_len(self.written)?;
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
        direct.write_all_at(out, *written - tail.len() as u64)?;
        let kept = content % BLOCK;
        tail.clear();
        tail.extend_from_slice(&out[content - kept..content]);
        Ok(())
    }
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
    }
}
