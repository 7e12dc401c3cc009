//! The live progress line on standard error, once a second: one line rewritten in place on a
//! terminal, one line per second otherwise (logs, CI).

use std::io::{IsTerminal, Write};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::report::Recorder;

/// `   3.0 s  warm-up  12,345 req/s  0 errors  p99 1.23 ms  64 in flight`
pub fn line(
    elapsed: Duration,
    warming: bool,
    rate: f64,
    errors: u64,
    p99: Option<Duration>,
    in_flight: i64,
) -> String {
    let p99 = p99.map_or("-".to_string(), |d| {
        format!("{:.2} ms", d.as_secs_f64() * 1e3)
    });
    format!(
        "{:7.1} s {} {:>9.0} req/s  {errors} errors  p99 {p99}  {in_flight} in flight",
        elapsed.as_secs_f64(),
        if warming { " warm-up " } else { " measured" },
        rate,
    )
}

/// Prints until `stop` fires; leaves a finished terminal line in place.
pub async fn run(
    rec: Arc<Recorder>,
    start: Instant,
    measure_start: Instant,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let tty = std::io::stderr().is_terminal();
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::from_std(start + Duration::from_secs(1)),
        Duration::from_secs(1),
    );
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = (start, 0u64);
    let mut printed = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => break,
        }
        let now = Instant::now();
        let done = rec.completed.load(Ordering::Relaxed);
        let rate = (done - last.1) as f64 / now.duration_since(last.0).as_secs_f64().max(1e-9);
        // The phase of the second just past, which the rate describes.
        let warming = last.0 < measure_start;
        last = (now, done);
        let (_, p99) = rec.snapshot();
        let text = line(
            now - start,
            warming,
            rate,
            rec.failed.load(Ordering::Relaxed),
            p99,
            rec.in_flight.load(Ordering::Relaxed),
        );
        let mut err = std::io::stderr().lock();
        let _ = if tty {
            write!(err, "\r\x1b[2K{text}")
        } else {
            writeln!(err, "{text}")
        };
        let _ = err.flush();
        printed = true;
    }
    if tty && printed {
        eprintln!();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_names_rate_errors_and_p99() {
        let l = line(
            Duration::from_millis(3000),
            false,
            12345.4,
            2,
            Some(Duration::from_micros(1234)),
            64,
        );
        assert!(l.contains("3.0 s"), "{l}");
        assert!(l.contains("12345 req/s"), "{l}");
        assert!(l.contains("2 errors"), "{l}");
        assert!(l.contains("p99 1.23 ms"), "{l}");
        assert!(line(Duration::ZERO, true, 0.0, 0, None, 0).contains("p99 -"));
    }
}
