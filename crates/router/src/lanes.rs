//! One lane per registry: deliveries due at a time, started no earlier than that and no more at
//! once than the registry's concurrency. A heap rather than a sleeping task per delivery, so a
//! long outage with a million waiting deliveries costs memory for keys only.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};

use super::model::{now_ms, Millis};

/// `(application, service)`.
pub type Key = (String, String);

pub(crate) struct Lane {
    heap: Mutex<BinaryHeap<Reverse<(Millis, Key)>>>,
    wake: Notify,
    permits: Arc<Semaphore>,
}

impl Lane {
    pub fn new(concurrency: usize) -> Lane {
        Lane {
            heap: Mutex::new(BinaryHeap::new()),
            wake: Notify::new(),
            permits: Arc::new(Semaphore::new(concurrency)),
        }
    }

    pub fn schedule(&self, at: Millis, key: Key) {
        self.lock().push(Reverse((at, key)));
        self.wake.notify_one();
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn in_flight(&self, concurrency: usize) -> usize {
        concurrency.saturating_sub(self.permits.available_permits())
    }

    /// Hands due keys, with a concurrency permit each, to `start` until `stop` fires.
    pub async fn run(
        &self,
        mut stop: watch::Receiver<bool>,
        start: impl Fn(Key, OwnedSemaphorePermit),
    ) {
        loop {
            let next = self.lock().peek().map(|Reverse((at, _))| *at);
            let wait = next.map(|at| at.saturating_sub(now_ms()));
            if wait == Some(0) {
                let permit = tokio::select! {
                    p = self.permits.clone().acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => return,
                    },
                    _ = stop.changed() => return,
                };
                // The earliest key is due (an earlier one may have arrived meanwhile: also due).
                let Some(Reverse((_, key))) = self.lock().pop() else {
                    continue;
                };
                start(key, permit);
                continue;
            }
            let sleep = wait.map_or(Duration::from_secs(3600), Duration::from_millis);
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(sleep) => {}
                _ = stop.changed() => return,
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BinaryHeap<Reverse<(Millis, Key)>>> {
        self.heap.lock().unwrap_or_else(|p| p.into_inner())
    }
}
