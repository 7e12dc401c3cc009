//! Errors of a typed registry call, and whether trying again may help.

/// What went wrong with one call.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The request could not be built (header does not match the operation, bad URL, ...).
    #[error("cannot build the request: {0}")]
    Request(String),
    /// No answer: connection refused or reset, timeout.
    #[error("transport error: {0}")]
    Transport(String),
    /// An HTTP error status without a SOAP body (a proxy or web server in the way).
    #[error("HTTP {status}: {message}")]
    Http { status: u16, message: String },
    /// The registry or a security server answered with a SOAP fault.
    #[error("SOAP fault {code}: {string}")]
    Fault {
        /// `faultcode` without a namespace prefix, e.g. `Server.ServerProxy.ServiceFailed`.
        code: String,
        string: String,
        /// `detail/faultDetail` text, or the detail's XML when it has another shape.
        detail: Option<String>,
    },
    /// The answer is not a SOAP envelope holding the expected response.
    #[error("malformed response: {0}")]
    Malformed(String),
}

impl ClientError {
    /// Whether the same request may succeed later: transport failures, 5xx and 429 statuses, and
    /// faults by X-Road's one retry rule ([`brama_xroad::error::is_retryable_code`]). Bad
    /// requests and malformed answers never will.
    pub fn retryable(&self) -> bool {
        use brama_xroad::error::{is_retryable_code, is_retryable_status};
        match self {
            ClientError::Transport(_) => true,
            ClientError::Http { status, .. } => is_retryable_status(*status),
            ClientError::Fault { code, .. } => is_retryable_code(code),
            ClientError::Request(_) | ClientError::Malformed(_) => false,
        }
    }

    /// The fault code, for a fault.
    pub fn fault_code(&self) -> Option<&str> {
        match self {
            ClientError::Fault { code, .. } => Some(code),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_policy() {
        let fault = |c: &str| ClientError::Fault {
            code: c.into(),
            string: "x".into(),
            detail: None,
        };
        assert!(fault("Server.ServerProxy.ServiceFailed").retryable());
        assert!(fault("Server").retryable());
        assert!(!fault("Client.ApplicationNotFound").retryable());
        assert!(!fault("ServerX").retryable());
        assert!(!fault("Server.ClientProxy.ServiceFailed.InconsistentResponse").retryable());
        assert!(ClientError::Transport("reset".into()).retryable());
        assert!(ClientError::Http {
            status: 503,
            message: String::new()
        }
        .retryable());
        assert!(!ClientError::Http {
            status: 404,
            message: String::new()
        }
        .retryable());
        assert!(!ClientError::Malformed("x".into()).retryable());
        assert_eq!(fault("Client.X").to_string(), "SOAP fault Client.X: x");
    }
}
