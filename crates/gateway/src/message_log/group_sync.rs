//! Durability in groups: a writer writes, then waits here; one flush covers every write
//! finished before it began, so concurrent records share a flush instead of each paying for
//! its own: `fdatasync` of one file (the queue), or `syncfs` of a directory's filesystem.
//!
//! The waiters of a flush are woken together when it ends (a broadcast), not handed a lock one
//! after another: a chain of hand-offs through a busy scheduler took longer than the flush
//! itself and left the processors idle under load.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use tokio::sync::watch;

pub(crate) struct GroupSync {
    target: Mutex<std::fs::File>,
    whole_fs: bool,
    /// Tickets handed out, one per finished write.
    written: AtomicU64,
    /// One flush at a time: set by the writer that flushes for the group.
    flushing: AtomicBool,
    state: watch::Sender<Flushed>,
}

/// What the flushes so far have covered.
#[derive(Clone, Default)]
struct Flushed {
    /// Every ticket up to this one is on disk.
    synced: u64,
    /// The first failed flush: every ticket after `synced` as it was then fails with its
    /// error from then on. A write it was to cover may be lost although a later flush succeeds
    /// (the kernel forgets a failed write-back), so nothing after it is reported durable again
    /// by this process; a restart reads the queue back and checks every frame.
    failed: Option<(u64, std::io::ErrorKind, String)>,
}

impl GroupSync {
    /// Flushes the whole filesystem of `dir`.
    pub(crate) fn filesystem(dir: &std::path::Path) -> std::io::Result<GroupSync> {
        Ok(Self::on(std::fs::File::open(dir)?, true))
    }

    /// Flushes the data of one file.
    pub(crate) fn data(file: std::fs::File) -> GroupSync {
        Self::on(file, false)
    }

    fn on(target: std::fs::File, whole_fs: bool) -> GroupSync {
        GroupSync {
            target: Mutex::new(target),
            whole_fs,
            written: AtomicU64::new(0),
            flushing: AtomicBool::new(false),
            state: watch::Sender::new(Flushed::default()),
        }
    }

    /// Flushes `file` from now on (the queue after it was rewritten).
    pub(crate) fn replace(&self, file: std::fs::File) {
        *self.target.lock().unwrap_or_else(|p| p.into_inner()) = file;
    }

    /// Returns once everything written before the call is on disk, or the error of the flush
    /// that was to put it there.
    pub(crate) async fn wait(&self) -> std::io::Result<()> {
        let ticket = self.written.fetch_add(1, Ordering::SeqCst) + 1;
        // Subscribed before looking, so a flush ending after the look wakes this writer.
        let mut flushed = self.state.subscribe();
        loop {
            {
                let now = flushed.borrow_and_update();
                if let Some((durable, kind, why)) = &now.failed {
                    if ticket > *durable {
                        return Err(std::io::Error::new(*kind, why.clone()));
                    }
                }
                if now.synced >= ticket {
                    return Ok(());
                }
            }
            if self
                .flushing
                .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                self.flush().await;
            } else if flushed.changed().await.is_err() {
                return Err(std::io::Error::other("the message log was closed"));
            }
        }
    }

    /// One flush for every write finished so far; its end, success or failure, wakes every
    /// waiter.
    async fn flush(&self) {
        // The other tasks ready now run first: the records they are writing join this flush
        // instead of waiting for the next (fewer flushes, no timer, no added wait when idle).
        tokio::task::yield_now().await;
        let upto = self.written.load(Ordering::SeqCst);
        let target = self
            .target
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .try_clone();
        let done = match target {
            Ok(target) => {
                let whole_fs = self.whole_fs;
                tokio::task::spawn_blocking(move || match whole_fs {
                    true => rustix::fs::syncfs(&target).map_err(std::io::Error::from),
                    false => target.sync_data(),
                })
                .await
                .unwrap_or_else(|e| Err(std::io::Error::other(e)))
            }
            Err(e) => Err(e),
        };
        // Released before the news: a writer that reads it and finds its ticket uncovered can
        // flush at once.
        self.flushing.store(false, Ordering::SeqCst);
        self.state.send_modify(|s| match done {
            Ok(()) => s.synced = s.synced.max(upto),
            Err(e) if s.failed.is_none() => {
                tracing::error!(error = %e, "flushing the message log failed: new records are refused until a restart");
                s.failed = Some((s.synced, e.kind(), e.to_string()));
            }
            Err(_) => {}
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_waiter_returns_once_a_flush_covers_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = std::fs::File::create(dir.path().join("f")).unwrap();
        let sync = Arc::new(GroupSync::data(file));
        let waiters: Vec<_> = (0..500)
            .map(|_| {
                let sync = sync.clone();
                tokio::spawn(async move { sync.wait().await })
            })
            .collect();
        for w in waiters {
            w.await.unwrap().unwrap();
        }
        let synced = sync.state.borrow().synced;
        assert_eq!(synced, 500, "the last flush covered every ticket");
    }

    #[tokio::test]
    async fn after_a_failed_flush_nothing_later_is_reported_durable() {
        let dir = tempfile::tempdir().unwrap();
        let file = std::fs::File::create(dir.path().join("f")).unwrap();
        let sync = GroupSync::data(file);
        sync.wait().await.unwrap();
        sync.wait().await.unwrap();
        // As a failed fdatasync leaves it: tickets up to 2 durable, the rest not.
        sync.state
            .send_modify(|s| s.failed = Some((2, std::io::ErrorKind::Other, "EIO".into())));
        for _ in 0..3 {
            let e = sync.wait().await.unwrap_err();
            assert_eq!(e.to_string(), "EIO");
        }
    }
}
