//! `brama load`: an HTTP load generator for X-Road security servers, brama or any other.
//!
//! It speaks plain HTTP/1.1 (or HTTPS) to a client proxy, as an information system does, so it
//! needs nothing from brama on the other side. Three scenarios ([`scenario`]): SOAP requests
//! from a file or a WSDL operation, each with a fresh `xrd:id`; REST requests with a fresh
//! `X-Road-Id`; eMalyatko applications through the router, followed to completion. Two models
//! ([`driver`]): closed (N workers back to back) and open (a fixed arrival rate, latency taken
//! from each request's intended start so a slow server cannot hide its latency by slowing the
//! generator down). Results go into HDR histograms ([`report`]); the JSON summary's fields are
//! documented in `docs/load.md`.
//!
//! Owns: test tooling only. Must not depend on: the gateway or the router (it talks to them over
//! HTTP, as any client would); only `brama-xroad`, `brama-transport` (TLS set-up) and
//! `brama-wsdl` among brama's crates. Nothing in the gateway or the router depends on it.

pub mod classify;
pub mod driver;
pub mod http;
pub mod operation;
pub mod progress;
pub mod report;
pub mod scenario;
pub mod tls;

use std::path::PathBuf;
use std::time::Duration;

pub use driver::{run, Model, Plan, Stop};
pub use report::Summary;
pub use scenario::Scenario;

/// Everything that keeps a run from starting. A run that started reports its failures as data
/// (see [`classify::Outcome`]), not as errors.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A flag or a combination of flags that cannot work.
    #[error("{0}")]
    Usage(String),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A request template (SOAP file, application JSON) that cannot be used.
    #[error("{0}")]
    Template(String),
    /// The target URL, its address or its TLS settings.
    #[error("{0}")]
    Target(String),
}

/// Reads a file named on the command line.
pub fn read_file(path: &std::path::Path) -> Result<Vec<u8>, LoadError> {
    std::fs::read(path).map_err(|source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// `30s`, `500ms`, `2m`, `1h`, `1.5s`; a bare number is seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a duration (30s, 500ms, 2m)"))?;
    let scale = match unit.trim() {
        "" | "s" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        other => return Err(format!("unknown unit '{other}' in '{s}' (ms, s, m, h)")),
    };
    let secs = value * scale;
    if !secs.is_finite() || secs > 1e9 {
        return Err(format!("'{s}' is too long"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("0s").unwrap(), Duration::ZERO);
        for bad in ["", "s", "5 parsecs", "1e400s", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
