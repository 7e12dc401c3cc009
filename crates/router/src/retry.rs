//! When to try again: the verdict on an attempt is a pure function of what came back, and the
//! delay a pure function of the attempt number and a random draw.

use std::time::Duration;

use brama_gateway::config::router::RetryPolicy;
use brama_xroad::error::{is_retryable_status, Fault};

/// What went wrong with one attempt.
#[derive(Clone, Debug)]
pub(crate) enum AttemptError {
    /// No answer: connection refused or reset, TLS failure, timeout.
    Network(String),
    Timeout,
    /// An HTTP status without a SOAP answer.
    Http(u16),
    /// A fault: raised by a security server, passed on from the registry, or the registry's
    /// own REST error.
    Fault(Fault),
    /// The answer could not be understood.
    Malformed(String),
}

impl AttemptError {
    /// Retry network trouble, timeouts, 5xx, and faults by the one rule the proxies use
    /// ([`Fault::retryable`]); an answer that cannot be read will not get better.
    pub fn retryable(&self) -> bool {
        match self {
            AttemptError::Network(_) | AttemptError::Timeout => true,
            AttemptError::Http(status) => is_retryable_status(*status),
            AttemptError::Fault(f) => f.retryable(),
            AttemptError::Malformed(_) => false,
        }
    }

    pub fn code(&self) -> String {
        match self {
            AttemptError::Network(_) => "NetworkError".into(),
            AttemptError::Timeout => "Timeout".into(),
            AttemptError::Http(s) => format!("HttpError.{s}"),
            AttemptError::Fault(f) => f.code.to_string(),
            AttemptError::Malformed(_) => "InvalidResponse".into(),
        }
    }

    pub fn message(&self) -> String {
        match self {
            AttemptError::Network(m) | AttemptError::Malformed(m) => m.clone(),
            AttemptError::Timeout => "no answer within the attempt's time limit".into(),
            AttemptError::Http(s) => format!("HTTP status {s}"),
            AttemptError::Fault(f) => f.message.clone(),
        }
    }
}

/// Delay before attempt `n + 1` after `n` failed attempts (`n >= 1`): exponential, capped, and
/// with the `jitter` fraction of it scaled by `draw` (uniform in 0..1).
pub fn backoff(p: &RetryPolicy, failed: u32, draw: f64) -> Duration {
    let exp = p.multiplier.powi(failed.saturating_sub(1).min(64) as i32);
    let base = (p.initial_backoff.as_secs_f64() * exp).min(p.max_backoff.as_secs_f64());
    let draw = draw.clamp(0.0, 1.0);
    Duration::from_secs_f64(base * (1.0 - p.jitter * draw))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: Some(5),
            max_age: Duration::from_secs(60),
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            multiplier: 2.0,
            jitter: 0.5,
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn backoff_grows_caps_and_jitters() {
        let p = policy();
        assert_eq!(backoff(&p, 1, 0.0), Duration::from_millis(100));
        assert_eq!(backoff(&p, 2, 0.0), Duration::from_millis(200));
        assert_eq!(backoff(&p, 4, 0.0), Duration::from_millis(800));
        assert_eq!(backoff(&p, 5, 0.0), Duration::from_secs(1));
        assert_eq!(backoff(&p, 1000, 0.0), Duration::from_secs(1));
        assert_eq!(backoff(&p, 2, 1.0), Duration::from_millis(100));
        assert_eq!(backoff(&p, 2, 7.0), Duration::from_millis(100));
    }

    #[test]
    fn verdict_is_a_function_of_the_error() {
        let fault = |c: &str| AttemptError::Fault(Fault::remote(c.into(), String::new(), None));
        assert!(AttemptError::Network("refused".into()).retryable());
        assert!(AttemptError::Timeout.retryable());
        assert!(AttemptError::Http(503).retryable());
        assert!(!AttemptError::Http(404).retryable());
        assert!(fault("Server.Maintenance").retryable());
        assert!(fault("Server.ServerProxy.ServiceFailed.NetworkError").retryable());
        assert!(!fault("Client.CertificateNotFound").retryable());
        assert!(!fault("Server.ServerProxy.AccessDenied").retryable());
        assert!(!fault("Server.ServerProxy.UnknownService").retryable());
        assert!(!AttemptError::Malformed("x".into()).retryable());
    }
}
