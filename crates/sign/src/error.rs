//! The signing layer's error: an X-Road code (with its cause as a sub-code), a sentence, and
//! whether sending the message again could help.

use brama_xroad::error::{ErrorCode, Fault, Prefix, ToFault};

#[derive(Debug, Clone, thiserror::Error)]
#[error("{}{}: {message}", code.as_str(), sub.map(|s| format!(".{s}")).unwrap_or_default())]
pub struct SignError {
    pub code: ErrorCode,
    /// X-Road's cause, e.g. `InvalidHashChainRef` under `MalformedSignature`.
    pub sub: Option<&'static str>,
    pub message: String,
}

impl SignError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> SignError {
        SignError {
            code,
            sub: None,
            message: message.into(),
        }
    }

    pub fn with_sub(mut self, sub: &'static str) -> SignError {
        self.sub = Some(sub);
        self
    }

    pub fn malformed(message: impl Into<String>) -> SignError {
        SignError::new(ErrorCode::MalformedSignature, message)
    }

    /// The full X-Road code without a proxy prefix (`MalformedSignature.HashChainUnusedInputs`).
    pub fn code_string(&self) -> String {
        match self.sub {
            Some(s) => format!("{}.{s}", self.code.as_str()),
            None => self.code.as_str().to_string(),
        }
    }
}

/// Signing failures are `Signer.*`; verification failures carry the proxy's prefix.
impl ToFault for SignError {
    fn to_fault(&self, at: Prefix) -> Fault {
        let f = at.fault(self.code, self.message.clone());
        match self.sub {
            Some(s) => f.with_sub(s),
            None => f,
        }
    }
}

impl From<super::hashchain::HashChainError> for SignError {
    fn from(e: super::hashchain::HashChainError) -> SignError {
        SignError::malformed(e.message).with_sub(e.kind.code())
    }
}

impl From<super::xades::MalformedSignature> for SignError {
    fn from(e: super::xades::MalformedSignature) -> SignError {
        SignError::malformed(e.0)
    }
}
