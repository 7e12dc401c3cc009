//! The store's file, with faults that tests inject from outside the process:
//!
//! - `BRAMA_STORE_FAULT_FULL=<path>`: while a file exists at `<path>`, every write, resize and
//!   sync of the store fails as on a full disk (`ENOSPC`): the disk-full tests, without a small
//!   filesystem to mount.
//! - `BRAMA_STORE_FAULT_CRASH_AFTER=<n>`: the process aborts at its `n`-th write, resize or sync
//!   of the store, before it is done: the crash tests cut the write path at random points.
//!
//! Read once, when the store opens; without them the file is redb's own backend, unchanged.

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use redb::backends::FileBackend;
use redb::{BackendError, StorageBackend};

use super::StoreError;

#[derive(Debug)]
pub(super) struct Backend {
    file: FileBackend,
    full_while: Option<PathBuf>,
    crash_after: Option<u64>,
    calls: AtomicU64,
    /// The last write, resize or sync that failed: redb reports later calls as "previous I/O
    /// error", this is what it was.
    last_error: Arc<Mutex<Option<String>>>,
}

impl Backend {
    pub(super) fn open(
        path: &Path,
        last_error: Arc<Mutex<Option<String>>>,
    ) -> Result<Backend, StoreError> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| StoreError::Engine(format!("{}: {e}", path.display())))?;
        Ok(Backend {
            file: FileBackend::new(file),
            full_while: std::env::var_os("BRAMA_STORE_FAULT_FULL").map(PathBuf::from),
            crash_after: std::env::var("BRAMA_STORE_FAULT_CRASH_AFTER")
                .ok()
                .and_then(|n| n.parse().ok()),
            calls: AtomicU64::new(0),
            last_error,
        })
    }

    /// Runs a write, resize or sync, with the fault injected first, and keeps its error.
    fn writing(&self, op: impl FnOnce() -> Result<(), BackendError>) -> Result<(), BackendError> {
        let r = self.fault().and_then(|()| op());
        if let Err(e) = &r {
            *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
        }
        r
    }

    /// Injects the configured fault before a write, resize or sync.
    fn fault(&self) -> Result<(), BackendError> {
        let n = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        if self.crash_after.is_some_and(|after| n >= after) {
            std::process::abort();
        }
        if self.full_while.as_deref().is_some_and(Path::exists) {
            return Err(BackendError::Io(std::io::Error::from_raw_os_error(
                rustix::io::Errno::NOSPC.raw_os_error(),
            )));
        }
        Ok(())
    }
}

impl StorageBackend for Backend {
    fn len(&self) -> Result<u64, BackendError> {
        self.file.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), BackendError> {
        self.file.read(offset, out)
    }

    fn set_len(&self, len: u64) -> Result<(), BackendError> {
        self.writing(|| self.file.set_len(len))
    }

    fn sync_data(&self) -> Result<(), BackendError> {
        self.writing(|| self.file.sync_data())
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), BackendError> {
        self.writing(|| self.file.write(offset, data))
    }

    fn close(&self) -> Result<(), BackendError> {
        self.file.close()
    }

    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.file.try_lock_range(start, end)
    }

    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, BackendError> {
        self.file.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.lock_range(start, end)
    }

    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.unlock_range(start, end)
    }

    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.file.query_lock_range(start, end)
    }
}
