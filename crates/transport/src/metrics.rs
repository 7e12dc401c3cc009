//! Counters and latency histograms, rendered in the Prometheus text format on `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Which proxy a figure belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proxy {
    Client = 0,
    Server = 1,
}

impl Proxy {
    fn label(self) -> &'static str {
        match self {
            Proxy::Client => "client",
            Proxy::Server => "server",
        }
    }
}

#[derive(Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|&b| secs <= b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }
}

/// All of brama's metrics. Cheap to update from any task.
#[derive(Default)]
pub struct Metrics {
    requests: [AtomicU64; 2],
    in_flight: [AtomicI64; 2],
    latency: [Histogram; 2],
    /// (proxy, fault code) → count.
    faults: Mutex<BTreeMap<(&'static str, String), u64>>,
    /// Security event kind → count (refused TLS peers, access denied, bad signatures).
    security: Mutex<BTreeMap<&'static str, u64>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

/// Counts a request as in flight until dropped, then records its latency.
pub struct InFlight<'a> {
    metrics: &'a Metrics,
    proxy: Proxy,
    start: std::time::Instant,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let i = self.proxy as usize;
        self.metrics.in_flight[i].fetch_sub(1, Ordering::Relaxed);
        self.metrics.latency[i].observe(self.start.elapsed());
    }
}

impl Metrics {
    pub fn start(&self, proxy: Proxy) -> InFlight<'_> {
        let i = proxy as usize;
        self.requests[i].fetch_add(1, Ordering::Relaxed);
        self.in_flight[i].fetch_add(1, Ordering::Relaxed);
        InFlight {
            metrics: self,
            proxy,
            start: std::time::Instant::now(),
        }
    }

    /// Counts a fault by its code; codes outside X-Road's vocabulary count as `other`.
    pub fn fault(&self, proxy: Proxy, code: &str) {
        let code = if brama_xroad::error::is_known_code(code) {
            code
        } else {
            "other"
        };
        let mut f = self.faults.lock().unwrap_or_else(|p| p.into_inner());
        match f.get_mut(&(proxy.label(), code.to_string())) {
            Some(n) => *n += 1,
            None => {
                f.insert((proxy.label(), code.to_string()), 1);
            }
        }
    }

    pub fn security_event(&self, kind: &'static str) {
        let mut s = self.security.lock().unwrap_or_else(|p| p.into_inner());
        *s.entry(kind).or_default() += 1;
    }

    pub fn security_events(&self, kind: &str) -> u64 {
        let s = self.security.lock().unwrap_or_else(|p| p.into_inner());
        s.get(kind).copied().unwrap_or(0)
    }

    pub fn in_flight(&self) -> i64 {
        self.in_flight
            .iter()
            .map(|a| a.load(Ordering::Relaxed))
            .sum()
    }

    /// Prometheus text exposition format 0.0.4.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let proxies = [Proxy::Client, Proxy::Server];
        out.push_str("# HELP brama_requests_total Requests received, by proxy.\n# TYPE brama_requests_total counter\n");
        for p in proxies {
            let _ = writeln!(
                out,
                "brama_requests_total{{proxy=\"{}\"}} {}",
                p.label(),
                self.requests[p as usize].load(Ordering::Relaxed)
            );
        }
        out.push_str("# HELP brama_in_flight Requests being processed, by proxy.\n# TYPE brama_in_flight gauge\n");
        for p in proxies {
            let _ = writeln!(
                out,
                "brama_in_flight{{proxy=\"{}\"}} {}",
                p.label(),
                self.in_flight[p as usize].load(Ordering::Relaxed)
            );
        }
        out.push_str("# HELP brama_faults_total Faults answered, by proxy and X-Road fault code.\n# TYPE brama_faults_total counter\n");
        for ((p, code), n) in self.faults.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(
                out,
                "brama_faults_total{{proxy=\"{p}\",code=\"{}\"}} {n}",
                label(code)
            );
        }
        out.push_str("# HELP brama_security_events_total Security events (refused TLS peers, denied access).\n# TYPE brama_security_events_total counter\n");
        for (kind, n) in self
            .security
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(out, "brama_security_events_total{{kind=\"{kind}\"}} {n}");
        }
        out.push_str("# HELP brama_request_duration_seconds Request latency, by proxy.\n# TYPE brama_request_duration_seconds histogram\n");
        for p in proxies {
            let h = &self.latency[p as usize];
            let mut cumulative = 0;
            for (i, b) in BUCKETS.iter().enumerate() {
                cumulative += h.buckets[i].load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "brama_request_duration_seconds_bucket{{proxy=\"{}\",le=\"{b}\"}} {cumulative}",
                    p.label()
                );
            }
            let count = h.count.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "brama_request_duration_seconds_bucket{{proxy=\"{}\",le=\"+Inf\"}} {count}",
                p.label()
            );
            let _ = writeln!(
                out,
                "brama_request_duration_seconds_sum{{proxy=\"{}\"}} {}",
                p.label(),
                h.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
            );
            let _ = writeln!(
                out,
                "brama_request_duration_seconds_count{{proxy=\"{}\"}} {count}",
                p.label()
            );
        }
        out
    }
}

/// A label value as the text exposition format needs it: backslash, double quote and line feed
/// escaped.
pub fn label(value: &str) -> std::borrow::Cow<'_, str> {
    if !value.contains(['\\', '"', '\n']) {
        return value.into();
    }
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::default();
        {
            let _g = m.start(Proxy::Client);
            assert_eq!(m.in_flight(), 1);
        }
        m.fault(Proxy::Server, "Server.ServerProxy.AccessDenied");
        m.security_event("access_denied");
        let text = m.render();
        assert!(text.contains("brama_requests_total{proxy=\"client\"} 1"));
        assert!(text.contains(
            "brama_faults_total{proxy=\"server\",code=\"Server.ServerProxy.AccessDenied\"} 1"
        ));
        assert!(text.contains("brama_security_events_total{kind=\"access_denied\"} 1"));
        assert!(text.contains("brama_request_duration_seconds_count{proxy=\"client\"} 1"));
        assert_eq!(m.in_flight(), 0);
    }

    #[test]
    fn invented_codes_cannot_break_the_page_or_add_series() {
        let m = Metrics::default();
        for i in 0..100 {
            m.fault(Proxy::Client, &format!("Server.X{i}\"}} 1\nforged_total 9"));
        }
        let text = m.render();
        assert!(text.contains("brama_faults_total{proxy=\"client\",code=\"other\"} 100"));
        assert!(!text.contains("forged"));
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
