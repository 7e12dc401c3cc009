//! A file written once, front to back, past the page cache (`O_DIRECT`): a time-stamping round
//! writes tens of megabytes of containers that nothing reads soon, and copying them into the
//! page cache, then writing them back, cost the server more CPU than the records themselves.
//! Where the filesystem refuses `O_DIRECT` (tmpfs), the file is written the ordinary way, and
//! synced all the same.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Writes go down in blocks of this size, aligned to it, as `O_DIRECT` needs.
const BLOCK: usize = 4096;
const BUFFER: usize = 1 << 20;

pub(crate) struct DirectFile {
    file: File,
    /// `BUFFER + BLOCK` bytes, used from `start` on: the aligned part.
    buf: Vec<u8>,
    start: usize,
    filled: usize,
    written: u64,
}

impl DirectFile {
    /// Creates (truncates) `path`.
    pub(crate) fn create(path: &Path) -> std::io::Result<DirectFile> {
        let open = |flags: i32| {
            File::options()
                .write(true)
                .create(true)
                .truncate(true)
                .custom_flags(flags)
                .open(path)
        };
        // Refused (EINVAL on tmpfs, others elsewhere): the ordinary way, whose error counts.
        let file = match open(rustix::fs::OFlags::DIRECT.bits() as i32) {
            Ok(f) => f,
            Err(_) => open(0)?,
        };
        let buf = vec![0u8; BUFFER + BLOCK];
        let start = buf.as_ptr().align_offset(BLOCK).min(BLOCK);
        Ok(DirectFile {
            file,
            buf,
            start,
            filled: 0,
            written: 0,
        })
    }

    fn write_out(&mut self, len: usize) -> std::io::Result<()> {
        self.file
            .write_all(&self.buf[self.start..self.start + len])?;
        self.written += len as u64;
        self.filled = 0;
        Ok(())
    }

    /// Writes what is left, the last block padded and the padding cut off again, and syncs:
    /// the file whole on disk.
    pub(crate) fn finish(mut self) -> std::io::Result<File> {
        let len = self.filled as u64;
        let padded = self.filled.div_ceil(BLOCK) * BLOCK;
        self.buf[self.start + self.filled..self.start + padded].fill(0);
        self.write_out(padded)?;
        self.file.set_len(self.written - padded as u64 + len)?;
        self.file.sync_data()?;
        Ok(self.file)
    }
}

impl Write for DirectFile {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let n = data.len().min(BUFFER - self.filled);
        let at = self.start + self.filled;
        self.buf[at..at + n].copy_from_slice(&data[..n]);
        self.filled += n;
        if self.filled == BUFFER {
            self.write_out(BUFFER)?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_exactly_what_it_is_given() {
        let dir = tempfile::tempdir().unwrap();
        for len in [
            0,
            1,
            BLOCK - 1,
            BLOCK,
            BUFFER - 3,
            BUFFER,
            BUFFER + BLOCK + 17,
            3 * BUFFER + 5,
        ] {
            let path = dir.path().join(format!("f{len}"));
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let mut f = DirectFile::create(&path).unwrap();
            for piece in data.chunks(7919) {
                f.write_all(piece).unwrap();
            }
            f.finish().unwrap();
            assert_eq!(std::fs::read(&path).unwrap(), data, "{len} bytes");
        }
    }
}
