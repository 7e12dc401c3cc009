//! Recording a run and summing it up: HDR histograms of latency (microseconds, three
//! significant digits), counts by outcome, the JSON summary and its text form.
//!
//! The JSON field names are stable; `docs/load.md` documents each.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

use super::classify::{Outcome, KINDS};

/// Longest latency told apart (one hour, in µs); longer ones are recorded as one hour.
const MAX_LATENCY_US: u64 = 3_600_000_000;

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("constant bounds are valid")
}

/// What the measured window recorded.
struct Tally {
    latency: Histogram<u64>,
    accept: Histogram<u64>,
    ok: u64,
    by_code: BTreeMap<Box<str>, u64>,
    by_kind: [u64; KINDS.len()],
    by_status: BTreeMap<u16, u64>,
    dropped: u64,
    last_end: Option<Instant>,
    max_lag: Duration,
}

/// Shared by every task of a run. The lock is held for a few hundred nanoseconds per request;
/// the atomics feed the progress line without it.
pub struct Recorder {
    tally: Mutex<Tally>,
    /// Completions including warm-up, for the progress line.
    pub completed: AtomicU64,
    pub failed: AtomicU64,
    pub in_flight: AtomicI64,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            tally: Mutex::new(Tally {
                latency: histogram(),
                accept: histogram(),
                ok: 0,
                by_code: BTreeMap::new(),
                by_kind: [0; KINDS.len()],
                by_status: BTreeMap::new(),
                dropped: 0,
                last_end: None,
                max_lag: Duration::ZERO,
            }),
            completed: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            in_flight: AtomicI64::new(0),
        }
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

impl Recorder {
    fn tally(&self) -> std::sync::MutexGuard<'_, Tally> {
        self.tally.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts a completion for the progress line (measured or not).
    pub fn completed(&self, outcome: &Outcome) {
        self.completed.fetch_add(1, Ordering::Relaxed);
        if !outcome.is_ok() {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records one measured request: its latency whatever the outcome, the outcome, the submit
    /// latency of an application, and when it ended.
    pub fn record(
        &self,
        latency: Duration,
        outcome: &Outcome,
        accept: Option<Duration>,
        end: Instant,
    ) {
        let mut t = self.tally();
        t.latency.saturating_record(micros(latency));
        if let Some(a) = accept {
            t.accept.saturating_record(micros(a));
        }
        match outcome {
            Outcome::Ok => t.ok += 1,
            other => {
                if let Some(k) = other
                    .kind()
                    .and_then(|k| KINDS.iter().position(|x| *x == k))
                {
                    t.by_kind[k] += 1;
                }
                match other {
                    Outcome::Fault(code) => {
                        if let Some(n) = t.by_code.get_mut(code) {
                            *n += 1;
                        } else {
                            t.by_code.insert(code.clone(), 1);
                        }
                    }
                    Outcome::Status(s) => *t.by_status.entry(*s).or_default() += 1,
                    _ => {}
                }
            }
        }
        if t.last_end.is_none_or(|l| l < end) {
            t.last_end = Some(end);
        }
    }

    /// An open-model arrival that was not sent because `--max-in-flight` requests were out.
    pub fn dropped(&self) {
        self.tally().dropped += 1;
    }

    /// How late the open model's dispatcher started a request.
    pub(crate) fn lag(&self, lag: Duration) {
        let mut t = self.tally();
        if lag > t.max_lag {
            t.max_lag = lag;
        }
    }

    /// Measured requests so far and their p99 (progress line).
    pub(crate) fn snapshot(&self) -> (u64, Option<Duration>) {
        let t = self.tally();
        let n = t.latency.len();
        let p99 = (n > 0).then(|| Duration::from_micros(t.latency.value_at_quantile(0.99)));
        (n, p99)
    }

    /// The summary of the window that began at `measure_start`.
    pub fn summary(&self, run: RunInfo, measure_start: Instant) -> Summary {
        let t = self.tally();
        let window = t.last_end.map_or(Duration::ZERO, |e| {
            e.saturating_duration_since(measure_start)
        });
        let secs = window.as_secs_f64();
        let requests = t.latency.len();
        Summary {
            run,
            duration_s: round(secs, 3),
            requests,
            ok: t.ok,
            errors: requests - t.ok.min(requests),
            dropped: t.dropped,
            throughput_rps: if secs > 0.0 {
                round(t.ok as f64 / secs, 1)
            } else {
                0.0
            },
            latency_ms: Latency::of(&t.latency),
            accept_latency_ms: (!t.accept.is_empty()).then(|| Latency::of(&t.accept)),
            errors_by_code: t.by_code.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            errors_by_kind: KINDS
                .iter()
                .zip(t.by_kind)
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            errors_by_status: t
                .by_status
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            max_start_lag_ms: round(t.max_lag.as_secs_f64() * 1e3, 3),
        }
    }
}

fn round(v: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (v * f).round() / f
}

/// How the run was set up (echoed in the summary).
#[derive(Clone, Debug, Serialize)]
pub struct RunInfo {
    pub scenario: &'static str,
    pub url: String,
    /// `closed` or `open`.
    pub model: &'static str,
    pub concurrency: Option<usize>,
    pub rate: Option<f64>,
    pub connections: usize,
    pub threads: usize,
    pub warmup_s: f64,
}

/// Latency percentiles in milliseconds.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Latency {
    pub min: f64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p99_9: f64,
    pub max: f64,
}

impl Latency {
    fn of(h: &Histogram<u64>) -> Latency {
        let ms = |us: u64| round(us as f64 / 1e3, 3);
        if h.is_empty() {
            return Latency {
                min: 0.0,
                mean: 0.0,
                p50: 0.0,
                p90: 0.0,
                p99: 0.0,
                p99_9: 0.0,
                max: 0.0,
            };
        }
        Latency {
            min: ms(h.min()),
            mean: round(h.mean() / 1e3, 3),
            p50: ms(h.value_at_quantile(0.5)),
            p90: ms(h.value_at_quantile(0.9)),
            p99: ms(h.value_at_quantile(0.99)),
            p99_9: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        }
    }
}

/// The end of a run, as printed (`--json`: one object, these field names).
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    #[serde(flatten)]
    pub run: RunInfo,
    /// The measured window: from the end of the warm-up to the last measured completion.
    pub duration_s: f64,
    /// Measured requests that completed (answered, failed or timed out).
    pub requests: u64,
    pub ok: u64,
    pub errors: u64,
    /// Open model: arrivals not sent because `--max-in-flight` requests were outstanding.
    pub dropped: u64,
    /// Successful requests per second of the measured window.
    pub throughput_rps: f64,
    /// Every measured request, whatever its outcome; open model: from its intended start.
    pub latency_ms: Latency,
    /// Application scenario: from the POST to the router's 202.
    pub accept_latency_ms: Option<Latency>,
    pub errors_by_code: BTreeMap<String, u64>,
    pub errors_by_kind: BTreeMap<String, u64>,
    pub errors_by_status: BTreeMap<String, u64>,
    /// Open model: the most the dispatcher started a request after its intended time (a
    /// generator that falls behind shows here).
    pub max_start_lag_ms: f64,
}

impl Summary {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    /// The human form.
    pub fn to_text(&self) -> String {
        let r = &self.run;
        let mut out = String::new();
        let shape = match (r.concurrency, r.rate) {
            (Some(c), _) => format!("closed model, concurrency {c}"),
            (None, Some(rate)) => format!("open model, {rate} requests/s"),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "{} → {} ({shape}, {} connections, {} thread{})",
            r.scenario,
            r.url,
            r.connections,
            r.threads,
            if r.threads == 1 { "" } else { "s" }
        );
        let _ = writeln!(
            out,
            "requests     {} in {:.2} s: {} ok, {} errors{}",
            self.requests,
            self.duration_s,
            self.ok,
            self.errors,
            if self.dropped > 0 {
                format!(", {} dropped (max in flight)", self.dropped)
            } else {
                String::new()
            }
        );
        let _ = writeln!(out, "throughput   {:.1} requests/s", self.throughput_rps);
        let line = |l: &Latency| {
            format!(
                "p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}  mean {:.2} ms",
                l.p50, l.p90, l.p99, l.p99_9, l.max, l.mean
            )
        };
        let _ = writeln!(out, "latency      {}", line(&self.latency_ms));
        if let Some(a) = &self.accept_latency_ms {
            let _ = writeln!(out, "accepted     {}", line(a));
        }
        if r.rate.is_some() {
            let _ = writeln!(out, "start lag    max {:.2} ms", self.max_start_lag_ms);
        }
        if self.errors > 0 {
            let _ = writeln!(out, "errors");
            for (kind, n) in self.errors_by_kind.iter().filter(|(_, n)| **n > 0) {
                let _ = writeln!(out, "  {kind:<44} {n}");
            }
            for (code, n) in &self.errors_by_code {
                let _ = writeln!(out, "  fault {code:<38} {n}");
            }
            for (status, n) in &self.errors_by_status {
                let _ = writeln!(out, "  HTTP {status:<39} {n}");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> RunInfo {
        RunInfo {
            scenario: "soap",
            url: "http://127.0.0.1:8080".into(),
            model: "closed",
            concurrency: Some(8),
            rate: None,
            connections: 8,
            threads: 1,
            warmup_s: 0.0,
        }
    }

    #[test]
    fn summary_json_has_the_documented_shape() {
        let r = Recorder::default();
        let start = Instant::now();
        for i in 1..=1000u64 {
            r.record(
                Duration::from_micros(i * 10),
                &Outcome::Ok,
                None,
                start + Duration::from_millis(500),
            );
        }
        r.record(
            Duration::from_millis(3),
            &Outcome::fault("Server.ServerProxy.UnknownService"),
            None,
            start + Duration::from_secs(1),
        );
        r.record(Duration::from_millis(1), &Outcome::Status(503), None, start);
        r.record(Duration::from_secs(30), &Outcome::Timeout, None, start);
        r.dropped();
        let s = r.summary(info(), start);
        let v: serde_json::Value = serde_json::from_str(&s.to_json()).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        for k in [
            "scenario",
            "url",
            "model",
            "concurrency",
            "rate",
            "connections",
            "threads",
            "warmup_s",
            "duration_s",
            "requests",
            "ok",
            "errors",
            "dropped",
            "throughput_rps",
            "latency_ms",
            "accept_latency_ms",
            "errors_by_code",
            "errors_by_kind",
            "errors_by_status",
            "max_start_lag_ms",
        ] {
            assert!(keys.contains(&k), "{k} missing from {v}");
        }
        assert_eq!(keys.len(), 20, "{keys:?}");
        assert_eq!(v["requests"], 1003);
        assert_eq!(v["ok"], 1000);
        assert_eq!(v["errors"], 3);
        assert_eq!(v["dropped"], 1);
        assert_eq!(v["duration_s"], 1.0);
        assert_eq!(v["throughput_rps"], 1000.0);
        assert_eq!(v["accept_latency_ms"], serde_json::Value::Null);
        assert_eq!(
            v["errors_by_code"],
            serde_json::json!({"Server.ServerProxy.UnknownService": 1})
        );
        assert_eq!(
            v["errors_by_kind"],
            serde_json::json!({"fault": 1, "http_status": 1, "connect": 0, "timeout": 1, "io": 0})
        );
        assert_eq!(v["errors_by_status"], serde_json::json!({"503": 1}));
        let l = &v["latency_ms"];
        let order = ["min", "p50", "p90", "p99", "p99_9", "max"].map(|k| l[k].as_f64().unwrap());
        assert!(order.windows(2).all(|w| w[0] <= w[1]), "{l}");
        // Three significant digits: 5 ms is 5.0 ± 0.005.
        assert!((l["p50"].as_f64().unwrap() - 5.0).abs() < 0.01, "{l}");
        assert!((l["max"].as_f64().unwrap() - 30_000.0).abs() < 30.0, "{l}");
        assert!(s
            .to_text()
            .contains("fault Server.ServerProxy.UnknownService"));
    }

    #[test]
    fn an_empty_run_sums_up_to_zeros() {
        let s = Recorder::default().summary(info(), Instant::now());
        assert_eq!(
            (s.requests, s.ok, s.errors, s.throughput_rps),
            (0, 0, 0, 0.0)
        );
        assert_eq!(s.latency_ms.max, 0.0);
    }
}
