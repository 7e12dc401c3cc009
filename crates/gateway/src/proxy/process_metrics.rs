//! The process's own figures in the names every Prometheus client library uses (`process_*`),
//! read from `/proc/self`, and `brama_build_info` with the version and commit.

use std::fmt::Write;

/// Linux reports CPU times and the start time in `/proc` in USER_HZ ticks, fixed at 100 for
/// user space on every architecture.
const TICKS_PER_SECOND: f64 = 100.0;

/// `process_*` and `brama_build_info`; a figure `/proc` does not give (not Linux) is left out.
pub fn render() -> String {
    let mut out = String::with_capacity(1024);
    let mut family = |name: &str, kind: &str, help: &str, value: Option<f64>| {
        if let Some(v) = value {
            let _ = write!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}\n"
            );
        }
    };
    let stat = Stat::read();
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = |key: &str| status_field(&status, key).map(|kb| kb * 1024.0);
    family(
        "process_cpu_seconds_total",
        "counter",
        "User and system CPU time spent, in seconds.",
        stat.as_ref()
            .map(|s| (s.utime + s.stime) as f64 / TICKS_PER_SECOND),
    );
    family(
        "process_resident_memory_bytes",
        "gauge",
        "Resident memory size, in bytes.",
        kib("VmRSS:"),
    );
    family(
        "process_virtual_memory_bytes",
        "gauge",
        "Virtual memory size, in bytes.",
        kib("VmSize:"),
    );
    family(
        "process_threads",
        "gauge",
        "Operating system threads in the process.",
        status_field(&status, "Threads:"),
    );
    family(
        "process_open_fds",
        "gauge",
        "Open file descriptors.",
        std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|d| d.count() as f64),
    );
    family(
        "process_max_fds",
        "gauge",
        "The limit on open file descriptors.",
        max_open_files(),
    );
    family(
        "process_start_time_seconds",
        "gauge",
        "Start time of the process since the Unix epoch, in seconds.",
        stat.and_then(|s| Some(boot_time()? + s.start_ticks as f64 / TICKS_PER_SECOND)),
    );
    let _ = write!(
        out,
        "# HELP brama_build_info The running build: its version and commit (always 1).\n\
         # TYPE brama_build_info gauge\n\
         brama_build_info{{version=\"{}\",commit=\"{}\"}} 1\n",
        crate::VERSION,
        crate::COMMIT
    );
    out
}

/// The fields of `/proc/self/stat` used here.
struct Stat {
    utime: u64,
    stime: u64,
    start_ticks: u64,
}

impl Stat {
    fn read() -> Option<Stat> {
        let text = std::fs::read_to_string("/proc/self/stat").ok()?;
        // The command name, in parentheses, may hold spaces: count fields after its end.
        let rest = &text[text.rfind(')')? + 1..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        let n = |i: usize| f.get(i)?.parse::<u64>().ok();
        // Fields 14, 15 and 22 of proc(5); `rest` starts at field 3.
        Some(Stat {
            utime: n(11)?,
            stime: n(12)?,
            start_ticks: n(19)?,
        })
    }
}

/// `Key:   123 kB` of `/proc/self/status`, as the number.
fn status_field(status: &str, key: &str) -> Option<f64> {
    let line = status.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

fn max_open_files() -> Option<f64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The machine's boot time since the Unix epoch (`btime` of `/proc/stat`).
fn boot_time() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_family_is_described_and_has_a_value() {
        let text = super::render();
        for name in [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_open_fds",
            "process_max_fds",
            "process_start_time_seconds",
            "process_threads",
        ] {
            assert!(text.contains(&format!("# HELP {name} ")), "{name}:\n{text}");
            let value: f64 = text
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name} ")))
                .unwrap_or_else(|| panic!("{name}:\n{text}"))
                .parse()
                .unwrap();
            assert!(value > 0.0, "{name} = {value}");
        }
        assert!(text.contains(&format!(
            "brama_build_info{{version=\"{}\",commit=\"{}\"}} 1",
            crate::VERSION,
            crate::COMMIT
        )));
    }
}
