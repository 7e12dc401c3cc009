//! Durability in groups: a writer writes, then waits here; one flush covers every write
//! finished before it began, so concurrent records share a flush instead of each paying for
//! its own, as a database's group commit shares one log flush. The flush is the caller's: the
//! queue writes its waiting frames and `fdatasync`s its segment, loose files `syncfs` their
//! filesystem.
//!
//! Each waiter gets its own answer when the flush covering it ends, and all of them are woken
//! together: a lock handed from waiter to waiter through a busy scheduler took longer than the
//! flush itself and left the processors idle under load.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use tokio::sync::{oneshot, watch};

/// Why a flush failed, and whether what was written before it may be lost.
pub(crate) struct Failed {
    pub error: std::io::Error,
    /// The flush itself (`fdatasync`) failed: the kernel may have dropped pages it could not
    /// write back, so a later flush proves nothing. Every later write fails from then on (a
    /// restart reads the queue back and checks every frame). A failed write (a full disk) is not
    /// such: its writers are refused, later writes may succeed.
    pub durability_lost: bool,
}

impl From<std::io::Error> for Failed {
    fn from(error: std::io::Error) -> Failed {
        Failed {
            error,
            durability_lost: true,
        }
    }
}

type Answer = Result<(), (std::io::ErrorKind, String)>;

pub(crate) struct GroupSync {
    /// Tickets handed out, one per finished write.
    written: AtomicU64,
    /// One flush at a time: set by the writer that flushes for the group.
    flushing: AtomicBool,
    /// The writers waiting, by ticket.
    waiting: Mutex<Vec<(u64, oneshot::Sender<Answer>)>>,
    /// Counts the flushes that ended, so that a writer not covered by one flushes next.
    ended: watch::Sender<u64>,
    /// Set by a flush that lost durability: every later wait fails with it.
    lost: Mutex<Option<(std::io::ErrorKind, String)>>,
}

impl Default for GroupSync {
    fn default() -> Self {
        GroupSync {
            written: AtomicU64::new(0),
            flushing: AtomicBool::new(false),
            waiting: Mutex::new(Vec::new()),
            ended: watch::Sender::new(0),
            lost: Mutex::new(None),
        }
    }
}

fn error((kind, why): (std::io::ErrorKind, String)) -> std::io::Error {
    std::io::Error::new(kind, why)
}

impl GroupSync {
    /// Returns once everything written before the call is flushed, or the error of the flush
    /// that was to cover it. `flush` is run (blocking, off the runtime's workers) if this writer
    /// is the one to flush for the group.
    pub(crate) async fn wait<F>(&self, flush: F) -> std::io::Result<()>
    where
        F: FnOnce() -> Result<(), Failed> + Send + 'static,
    {
        if let Some(lost) = self.lost.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            return Err(error(lost));
        }
        let ticket = self.written.fetch_add(1, Ordering::SeqCst) + 1;
        let (tx, mut answer) = oneshot::channel();
        self.waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((ticket, tx));
        let mut flush = Some(flush);
        // Subscribed before trying, so a flush ending after the try wakes this writer.
        let mut ended = self.ended.subscribe();
        loop {
            ended.borrow_and_update();
            if let Ok(a) = answer.try_recv() {
                return a.map_err(error);
            }
            if self
                .flushing
                .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                // Taken once: a flush covers this writer's ticket, so it is answered after it.
                if let Some(f) = flush.take() {
                    self.flush(f).await;
                } else {
                    self.flushing.store(false, Ordering::SeqCst);
                }
                continue;
            }
            tokio::select! {
                a = &mut answer => {
                    return a
                        .map_err(|_| std::io::Error::other("the message log was closed"))?
                        .map_err(error);
                }
                _ = ended.changed() => {}
            }
        }
    }

    /// One flush for every write finished so far; its end answers every writer it covered.
    async fn flush<F>(&self, flush: F)
    where
        F: FnOnce() -> Result<(), Failed> + Send + 'static,
    {
        // The other tasks ready now run first: the records they are writing join this flush
        // instead of waiting for the next (fewer flushes, no timer, no added wait when idle;
        // measured: without it, more flushes and lower throughput under load).
        tokio::task::yield_now().await;
        let upto = self.written.load(Ordering::SeqCst);
        let done = tokio::task::spawn_blocking(flush)
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e).into()));
        let answer: Answer = match done {
            Ok(()) => Ok(()),
            Err(f) => {
                let why = (f.error.kind(), f.error.to_string());
                if f.durability_lost {
                    tracing::error!(error = %f.error, "flushing the message log failed: new records are refused until a restart");
                    *self.lost.lock().unwrap_or_else(|p| p.into_inner()) = Some(why.clone());
                }
                Err(why)
            }
        };
        let covered: Vec<_> = {
            let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
            let (covered, rest) = std::mem::take(&mut *waiting)
                .into_iter()
                .partition(|(t, _)| *t <= upto);
            *waiting = rest;
            covered
        };
        // Released before the news: a writer not covered can flush at once.
        self.flushing.store(false, Ordering::SeqCst);
        for (_, tx) in covered {
            let _ = tx.send(answer.clone());
        }
        self.ended.send_modify(|n| *n += 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_waiter_is_answered_and_the_flushes_are_shared() {
        let sync = Arc::new(GroupSync::default());
        let flushes = Arc::new(AtomicUsize::new(0));
        let waiters: Vec<_> = (0..500)
            .map(|_| {
                let (sync, flushes) = (sync.clone(), flushes.clone());
                tokio::spawn(async move {
                    sync.wait(move || {
                        flushes.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(1));
                        Ok(())
                    })
                    .await
                })
            })
            .collect();
        for w in waiters {
            w.await.unwrap().unwrap();
        }
        let n = flushes.load(Ordering::SeqCst);
        assert!((1..500).contains(&n), "{n} flushes for 500 writers");
    }

    #[tokio::test]
    async fn a_failed_write_refuses_its_writers_and_a_failed_flush_all_later_ones() {
        let sync = GroupSync::default();
        let full = || {
            Err(Failed {
                error: std::io::Error::other("disk full"),
                durability_lost: false,
            })
        };
        assert_eq!(sync.wait(full).await.unwrap_err().to_string(), "disk full");
        sync.wait(|| Ok(())).await.unwrap();
        let eio = || Err(std::io::Error::other("EIO").into());
        assert_eq!(sync.wait(eio).await.unwrap_err().to_string(), "EIO");
        for _ in 0..3 {
            let e = sync.wait(|| Ok(())).await.unwrap_err();
            assert_eq!(e.to_string(), "EIO");
        }
    }
}
