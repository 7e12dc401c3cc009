//! The two load models.
//!
//! Closed: N workers, each sending its next request when the previous one is answered; the
//! server's speed sets the rate. Open: requests start on a fixed schedule (request i at
//! i / rate after the start) whether or not earlier ones were answered, and each one's latency
//! is taken from its *intended* start. A server that stalls for a second then shows a second of
//! latency on every request that should have started in it, instead of the one request a closed
//! model would have waiting (coordinated omission). The dispatcher is a thread that sleeps until
//! the next request is due and starts every request due when it wakes; how late it started one
//! is counted in that request's latency, and the most is reported (`max_start_lag_ms`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::classify::Outcome;
use super::http::Client;
use super::report::{Recorder, RunInfo, Summary};
use super::scenario::Scenario;

/// How requests are started.
#[derive(Clone, Copy, Debug)]
pub enum Model {
    Closed { concurrency: usize },
    Open { rate: f64, max_in_flight: usize },
}

/// When a run ends (after the warm-up).
#[derive(Clone, Copy, Debug)]
pub enum Stop {
    Duration(Duration),
    Requests(u64),
}

#[derive(Clone, Debug)]
pub struct Plan {
    pub model: Model,
    pub stop: Stop,
    /// Requests started in the warm-up are sent but not recorded.
    pub warmup: Duration,
    /// Per request (per application, submit to completion).
    pub timeout: Duration,
    pub progress: bool,
    /// Runtime threads and pool size, for the summary.
    pub threads: usize,
    pub connections: usize,
    /// Set (by Ctrl-C) to stop starting requests; those out are awaited and the run summed up.
    pub interrupted: Arc<AtomicBool>,
}

struct Shared {
    scenario: Scenario,
    client: Client,
    rec: Arc<Recorder>,
    timeout: Duration,
    interrupted: Arc<AtomicBool>,
}

impl Shared {
    fn interrupted(&self) -> bool {
        self.interrupted.load(Ordering::Relaxed)
    }
}

/// Runs the plan to its end and sums it up.
pub async fn run(scenario: Scenario, client: Client, plan: Plan) -> Summary {
    let info = RunInfo {
        scenario: scenario.name(),
        url: client.target.url.clone(),
        model: match plan.model {
            Model::Closed { .. } => "closed",
            Model::Open { .. } => "open",
        },
        concurrency: match plan.model {
            Model::Closed { concurrency } => Some(concurrency),
            Model::Open { .. } => None,
        },
        rate: match plan.model {
            Model::Open { rate, .. } => Some(rate),
            Model::Closed { .. } => None,
        },
        connections: plan.connections,
        threads: plan.threads,
        warmup_s: plan.warmup.as_secs_f64(),
    };
    let rec = Arc::new(Recorder::default());
    let shared = Arc::new(Shared {
        scenario,
        client,
        rec: rec.clone(),
        timeout: plan.timeout,
        interrupted: plan.interrupted.clone(),
    });
    let start = Instant::now();
    let measure_start = match plan.model {
        Model::Closed { .. } => start + plan.warmup,
        // The first measured arrival's intended start.
        Model::Open { rate, .. } => start + offset(arrivals(plan.warmup, rate), rate),
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let progress = plan.progress.then(|| {
        tokio::spawn(super::progress::run(
            rec.clone(),
            start,
            measure_start,
            stop_rx,
        ))
    });
    match plan.model {
        Model::Closed { concurrency } => {
            closed(&shared, concurrency, plan.stop, start + plan.warmup).await
        }
        Model::Open {
            rate,
            max_in_flight,
        } => open(&shared, rate, max_in_flight, plan.stop, plan.warmup, start).await,
    }
    let _ = stop_tx.send(true);
    if let Some(p) = progress {
        let _ = p.await;
    }
    rec.summary(info, measure_start)
}

/// Intended start of arrival `i` after the first.
pub fn offset(i: u64, rate: f64) -> Duration {
    Duration::from_secs_f64(i as f64 / rate)
}

/// Arrivals in a span at `rate` per second.
pub fn arrivals(span: Duration, rate: f64) -> u64 {
    (span.as_secs_f64() * rate).round() as u64
}

/// One request, started (or due) at `start`, recorded when `measured`.
async fn one(sh: &Shared, start: Instant, measured: bool, seq: u64) {
    sh.rec.in_flight.fetch_add(1, Ordering::Relaxed);
    let done = match tokio::time::timeout(sh.timeout, sh.scenario.exec(&sh.client, seq)).await {
        Ok(d) => d,
        Err(_) => Outcome::Timeout.into(),
    };
    let end = Instant::now();
    sh.rec.in_flight.fetch_sub(1, Ordering::Relaxed);
    sh.rec.completed(&done.outcome);
    if measured {
        sh.rec.record(
            end.saturating_duration_since(start),
            &done.outcome,
            done.accept,
            end,
        );
    }
}

async fn closed(sh: &Arc<Shared>, concurrency: usize, stop: Stop, measure_start: Instant) {
    let seq = Arc::new(AtomicU64::new(0));
    let issued = Arc::new(AtomicU64::new(0));
    let end = match stop {
        Stop::Duration(d) => Some(measure_start + d),
        Stop::Requests(_) => None,
    };
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (sh, seq, issued) = (sh.clone(), seq.clone(), issued.clone());
        workers.spawn(async move {
            loop {
                let start = Instant::now();
                if end.is_some_and(|e| start >= e) || sh.interrupted() {
                    break;
                }
                let measured = start >= measure_start;
                if let (Stop::Requests(n), true) = (stop, measured) {
                    if issued.fetch_add(1, Ordering::Relaxed) >= n {
                        break;
                    }
                }
                one(&sh, start, measured, seq.fetch_add(1, Ordering::Relaxed)).await;
            }
        });
    }
    while workers.join_next().await.is_some() {}
}

/// The dispatcher's shortest sleep. Waking for every arrival costs the runtime a wake-up per
/// request (twice the CPU per request at 20,000/s); sleeping at least this long lets arrivals
/// closer together start in small batches, at most this much (plus the OS's timer slack) late.
const NAP_MIN: Duration = Duration::from_micros(200);
/// The longest, so that an interruption is seen promptly at low rates.
const NAP_MAX: Duration = Duration::from_millis(100);

async fn open(
    sh: &Arc<Shared>,
    rate: f64,
    max_in_flight: usize,
    stop: Stop,
    warmup: Duration,
    start: Instant,
) {
    let warm = arrivals(warmup, rate);
    let total = warm
        + match stop {
            Stop::Requests(n) => n,
            Stop::Duration(d) => arrivals(d, rate),
        };
    let slots = Arc::new(Semaphore::new(max_in_flight.max(1)));
    let (sh2, slots2) = (sh.clone(), slots.clone());
    let runtime = tokio::runtime::Handle::current();
    // The schedule keeps a thread of its own: tokio's timer has a 1 ms grain, which would add
    // up to a millisecond to every request's latency, while a thread's sleep wakes within about
    // 0.1 ms. The requests themselves run on the runtime.
    let schedule = tokio::task::spawn_blocking(move || {
        let mut i = 0u64;
        while i < total && !sh2.interrupted() {
            let due = start + offset(i, rate);
            let now = Instant::now();
            if due > now {
                std::thread::sleep((due - now).clamp(NAP_MIN, NAP_MAX));
                continue;
            }
            let measured = i >= warm;
            if measured {
                sh2.rec.lag(now - due);
            }
            match slots2.clone().try_acquire_owned() {
                Ok(slot) => {
                    let sh = sh2.clone();
                    runtime.spawn(async move {
                        let _slot = slot;
                        one(&sh, due, measured, i).await;
                    });
                }
                Err(_) if measured => sh2.rec.dropped(),
                Err(_) => {}
            }
            i += 1;
        }
    });
    let _ = schedule.await;
    // Every slot back: every request answered or timed out.
    let all = u32::try_from(max_in_flight.max(1)).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrivals_are_evenly_spaced_from_the_start() {
        assert_eq!(offset(0, 200.0), Duration::ZERO);
        assert_eq!(offset(1, 200.0), Duration::from_millis(5));
        assert_eq!(offset(400, 200.0), Duration::from_secs(2));
        assert_eq!(offset(3, 0.5), Duration::from_secs(6));
        assert_eq!(arrivals(Duration::from_secs(2), 200.0), 400);
        assert_eq!(arrivals(Duration::from_millis(1500), 3.0), 5); // 4.5 rounds up
        assert_eq!(arrivals(Duration::ZERO, 1e6), 0);
        // 20k/s: 20 arrivals per millisecond tick, none lost or doubled by rounding.
        let rate = 20_000.0;
        let ms = Duration::from_millis(1);
        let due_by = |t: Duration| (0..1000u64).filter(|&i| offset(i, rate) <= t).count();
        assert_eq!(due_by(ms), 21);
        assert_eq!(due_by(ms * 2) - due_by(ms), 20);
    }

    #[test]
    fn the_warm_up_is_a_whole_number_of_arrivals() {
        // With a 1 s warm-up at 200/s, arrival 200 is the first measured, due at 1 s.
        let warm = arrivals(Duration::from_secs(1), 200.0);
        assert_eq!(warm, 200);
        assert_eq!(offset(warm, 200.0), Duration::from_secs(1));
    }
}
