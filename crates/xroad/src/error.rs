//! X-Road fault codes and the `Fault` every layer's error becomes before it goes on the wire.
//!
//! A fault code is `prefix.[ServiceFailed.]Leaf[.Sub]` (reference §1.7). Each layer has its own
//! error type carrying a leaf [`ErrorCode`]; the proxy that hit the error adds the prefix, so the
//! same parse error is `Client.InvalidBody` on the client proxy and `Server.ServerProxy.InvalidBody`
//! on the server proxy. [`Fault`] also records whose side the error is on and whether the same
//! request may be retried: the router's retry policy (a pure function of the fault) reads those.

use std::fmt;

use bytes::Bytes;

/// Declares [`ErrorCode`] from one list: each variant with its wire spelling, and
/// [`ErrorCode::ALL`].
macro_rules! error_codes {
    ($($variant:ident => $wire:literal,)*) => {
        /// Leaf codes, in X-Road 7's CamelCase spelling (what deployed X-Road and Trembita emit).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($variant,)*
        }

        impl ErrorCode {
            /// Every code, for tables and tests.
            pub const ALL: &[ErrorCode] = &[$(ErrorCode::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $wire,)*
                }
            }
        }
    };
}

error_codes! {
    IoError => "IOError",
    NetworkError => "NetworkError",
    InternalError => "InternalError",
    HttpError => "HttpError",
    InvalidRequest => "InvalidRequest",
    InvalidResponse => "InvalidResponse",
    BadRequest => "BadRequest",
    NotFound => "NotFound",
    InvalidSoap => "InvalidSoap",
    MalformedSoap => "MalformedSoap",
    MissingSoap => "MissingSoap",
    InvalidXml => "InvalidXml",
    InvalidBody => "InvalidBody",
    MissingBody => "MissingBody",
    MissingHeader => "MissingHeader",
    MissingHeaderField => "MissingHeaderField",
    DuplicateHeaderField => "DuplicateHeaderField",
    InconsistentHeaders => "InconsistentHeaders",
    InconsistentResponse => "InconsistentResponse",
    InvalidProtocolVersion => "InvalidProtocolVersion",
    InvalidClientIdentifier => "InvalidClientIdentifier",
    InvalidContentType => "InvalidContentType",
    InvalidHttpMethod => "InvalidHttpMethod",
    InvalidMessage => "InvalidMessage",
    MissingRest => "MissingRest",
    ServiceType => "ServiceType",
    MimeParsingFailed => "MimeParsingFailed",
    AccessDenied => "AccessDenied",
    UnknownService => "UnknownService",
    ServiceDisabled => "ServiceDisabled",
    UnknownMember => "UnknownMember",
    InvalidSecurityServer => "InvalidSecurityServer",
    ServiceMissingUrl => "ServiceMissingUrl",
    ServiceMalformedUrl => "ServiceMalformedUrl",
    SslAuthenticationFailed => "SslAuthenticationFailed",
    MissingSignature => "MissingSignature",
    MalformedSignature => "MalformedSignature",
    InvalidSignatureValue => "InvalidSignatureValue",
    IncorrectCertificate => "IncorrectCertificate",
    InvalidCertPath => "InvalidCertPath",
    IncorrectValidationInfo => "IncorrectValidationInfo",
    CertValidation => "CertValidation",
    CannotCreateSignature => "CannotCreateSignature",
    TokenNotActive => "TokenNotActive",
    KeyNotFound => "KeyNotFound",
    MalformedGlobalConf => "MalformedGlobalConf",
    MalformedServerConf => "MalformedServerConf",
    OutdatedGlobalConf => "OutdatedGlobalConf",
    MaintenanceMode => "MaintenanceMode",
    Timeout => "Timeout",
    TimestampValidation => "TimestampValidation",
    TimestampingFailed => "TimestampingFailed",
    LoggingFailed => "LoggingFailed",
}

impl ErrorCode {
    /// Whether sending the same request again could succeed: transient network and service
    /// trouble may clear, a malformed request or a refused right will not (`TRANSIENT_WORDS`).
    pub(crate) fn is_transient(self) -> bool {
        TRANSIENT_WORDS.contains(&self.as_str())
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the error arose: the first part of the fault code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prefix {
    /// The information system sent something invalid.
    Client,
    /// The client's own security server failed.
    ClientProxy,
    /// The provider's security server failed.
    ServerProxy,
    Signer,
}

impl Prefix {
    fn as_str(self) -> &'static str {
        match self {
            Prefix::Client => "Client",
            Prefix::ClientProxy => "Server.ClientProxy",
            Prefix::ServerProxy => "Server.ServerProxy",
            Prefix::Signer => "Signer",
        }
    }

    /// A fault raised here: `Server.ServerProxy.AccessDenied`.
    pub fn fault(self, code: ErrorCode, message: impl Into<String>) -> Fault {
        Fault::new(self, code, message)
    }

    /// A fault raised here because the other side failed: `Server.ServerProxy.ServiceFailed.…`.
    pub fn service_failed(self, code: ErrorCode, message: impl Into<String>) -> Fault {
        Fault::service_failed(self, code, message)
    }
}

/// Whose side an error is on: decides alerting and whether a retry makes sense.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The caller (information system or client security server) sent something wrong.
    Caller,
    /// This server failed.
    Local,
    /// The peer security server or the service behind it failed.
    Remote,
}

/// A fault's code: one this server raised, or one a peer or a service sent that is passed on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultCode {
    /// `prefix.[ServiceFailed.]code[.sub]`.
    Raised {
        prefix: Prefix,
        service_failed: bool,
        code: ErrorCode,
        /// X-Road's cause under the code: `InvalidHashChainRef` under `MalformedSignature`.
        sub: Option<&'static str>,
    },
    /// Received from the peer security server or the service, exactly as it was spelled.
    Passed(String),
}

impl FaultCode {
    /// Whose side the fault is on: the caller for `Client.*`, the other side for `ServiceFailed`
    /// and for everything passed on, else this server.
    pub fn side(&self) -> Side {
        match self {
            FaultCode::Raised {
                prefix: Prefix::Client,
                ..
            } => Side::Caller,
            FaultCode::Raised {
                service_failed: true,
                ..
            }
            | FaultCode::Passed(_) => Side::Remote,
            FaultCode::Raised { .. } => Side::Local,
        }
    }

    /// The one retry rule ([`is_retryable_code`]), decided on the code's words for our own
    /// codes and on its spelling for passed ones; the two agree (the table test below).
    pub fn retryable(&self) -> bool {
        match self {
            FaultCode::Raised {
                prefix: Prefix::Client,
                ..
            } => false,
            // A sub-code names a signature or certificate failure, which a retry does not
            // cure unless it is the certificate's status (its OCSP response), which changes.
            FaultCode::Raised { code, sub, .. } => match sub {
                None => code.is_transient(),
                Some(sub) => is_status_cause(sub),
            },
            FaultCode::Passed(code) => is_retryable_code(code),
        }
    }

    /// Whether the caller broke the protocol (`Client.*`): a REST error is then 400.
    pub(crate) fn is_callers(&self) -> bool {
        match self {
            FaultCode::Raised { prefix, .. } => *prefix == Prefix::Client,
            FaultCode::Passed(c) => c == "Client" || c.starts_with("Client."),
        }
    }

    /// The leaf code, for metrics labels.
    pub fn leaf(&self) -> &str {
        match self {
            FaultCode::Raised { code, .. } => code.as_str(),
            FaultCode::Passed(c) => c.rsplit('.').next().unwrap_or(c),
        }
    }

    /// The wire spelling.
    pub fn to_wire(&self) -> std::borrow::Cow<'_, str> {
        match self {
            FaultCode::Passed(c) => std::borrow::Cow::Borrowed(c),
            raised => std::borrow::Cow::Owned(raised.to_string()),
        }
    }

    /// Whether any word of the code is `word` (in either spelling).
    fn names(&self, word: ErrorCode) -> bool {
        match self {
            FaultCode::Raised { code, .. } => *code == word,
            FaultCode::Passed(c) => c.split('.').any(|seg| same_word(seg, word.as_str())),
        }
    }
}

impl fmt::Display for FaultCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultCode::Raised {
                prefix,
                service_failed,
                code,
                sub,
            } => {
                f.write_str(prefix.as_str())?;
                if *service_failed {
                    f.write_str(".ServiceFailed")?;
                }
                write!(f, ".{code}")?;
                match sub {
                    Some(s) => write!(f, ".{s}"),
                    None => Ok(()),
                }
            }
            FaultCode::Passed(c) => f.write_str(c),
        }
    }
}

impl PartialEq<&str> for FaultCode {
    fn eq(&self, other: &&str) -> bool {
        self.to_wire() == *other
    }
}

/// Turns a layer's error into the fault of the proxy that met it: the same parse error is
/// `Client.InvalidBody` on the client proxy and `Server.ServerProxy.InvalidBody` on the server
/// proxy, so the prefix is the proxy's to give. Each layer implements it for its error.
pub trait ToFault {
    fn to_fault(&self, at: Prefix) -> Fault;
}

/// An error as it goes on the wire: its code, a sentence, and an id that is also logged.
#[derive(Clone, Debug)]
pub struct Fault {
    pub code: FaultCode,
    pub message: String,
    /// Error id for `detail/faultDetail`, matched against the log.
    pub id: String,
    /// The HTTP status to answer with instead of the wire's default (X-Road answers SOAP faults
    /// with 200): 413 for a body refused by its declared length, 408 for one too slow, 503 when
    /// the server is out of body memory. The connection is then closed, its body unread.
    pub http_status: Option<u16>,
    /// A passed-on SOAP fault exactly as the peer sent it (and signed it): answered unchanged.
    pub original: Option<Bytes>,
}

impl Fault {
    /// A fault raised here with `prefix`.
    pub fn new(prefix: Prefix, code: ErrorCode, message: impl Into<String>) -> Self {
        Self::raised(prefix, false, code, message)
    }

    /// A fault raised here because the remote side or the service itself failed: the
    /// `ServiceFailed` infix.
    pub fn service_failed(prefix: Prefix, code: ErrorCode, message: impl Into<String>) -> Self {
        Self::raised(prefix, true, code, message)
    }

    fn raised(
        prefix: Prefix,
        service_failed: bool,
        code: ErrorCode,
        msg: impl Into<String>,
    ) -> Self {
        Fault {
            code: FaultCode::Raised {
                prefix,
                service_failed,
                code,
                sub: None,
            },
            message: msg.into(),
            id: uuid::Uuid::new_v4().to_string(),
            http_status: None,
            original: None,
        }
    }

    /// A fault received from the peer or the service, passed on unchanged.
    pub fn remote(code: String, message: String, id: Option<String>) -> Self {
        Fault {
            code: FaultCode::Passed(code),
            message,
            id: id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            http_status: None,
            original: None,
        }
    }

    /// A passed-on SOAP fault whose document is answered byte for byte.
    pub fn with_original(mut self, envelope: Bytes) -> Self {
        self.original = Some(envelope);
        self
    }

    /// Answers with `status` instead of the wire's default.
    pub fn with_status(mut self, status: u16) -> Self {
        self.http_status = Some(status);
        self
    }

    /// Adds a sub-code (`MalformedSignature` → `MalformedSignature.InvalidHashChainRef`), as
    /// X-Road reports the cause of a signature failure.
    pub fn with_sub(mut self, new: &'static str) -> Self {
        match &mut self.code {
            FaultCode::Raised { sub, .. } => *sub = Some(new),
            FaultCode::Passed(c) => {
                c.push('.');
                c.push_str(new);
            }
        }
        self
    }

    pub fn side(&self) -> Side {
        self.code.side()
    }

    /// Whether the same request, sent again unchanged, may succeed: the proxies, the router and
    /// the generated clients all decide with this one rule.
    pub fn retryable(&self) -> bool {
        self.code.retryable()
    }

    /// The message was written by the peer or the service (a fault passed on), so it may quote
    /// personal data and is logged only at debug level.
    pub fn is_peers(&self) -> bool {
        matches!(self.code, FaultCode::Passed(_))
    }

    /// The security event this fault is, for the log and its counter: `access_denied` for a
    /// refused right, `authentication_failed` for a refused peer, signature or certificate.
    pub fn security_event(&self) -> Option<&'static str> {
        if self.code.names(ErrorCode::AccessDenied) {
            Some("access_denied")
        } else if self.code.names(ErrorCode::SslAuthenticationFailed)
            || self.code.names(ErrorCode::InvalidSignatureValue)
        {
            Some("authentication_failed")
        } else {
            None
        }
    }

    /// The HTTP status of this fault as a REST or router error (reference §2.3): its own status
    /// when it has one, 400 when the caller broke the protocol (`Client.*`), else 500.
    pub fn rest_status(&self) -> u16 {
        let caller = self.code.is_callers();
        self.http_status.unwrap_or(if caller { 400 } else { 500 })
    }

    /// The leaf code, for metrics labels.
    pub fn leaf(&self) -> &str {
        self.code.leaf()
    }
}

/// The one retry rule, over a fault code as it goes on the wire (ours or a peer's): whether the
/// same request, sent again unchanged, may succeed.
///
/// - `Client.*` (and anything not `Server.*` or `Signer.*`) is final: the request itself is wrong.
/// - A code naming one of X-Road's error words is final unless every such word is transient
///   (`ErrorCode::is_transient`, `TRANSIENT_WORDS`): `…ServiceFailed.InconsistentResponse`,
///   `…AccessDenied`, `…MalformedSignature.InvalidHashChainRef` will be refused again,
///   `…ServiceFailed.NetworkError` may clear.
/// - A `Server` fault naming none (a service's own `Server`, `Server.Maintenance`) may succeed
///   later, as SOAP 1.1 defines the `Server` class.
/// - A certificate refused for its status (`…SslAuthenticationFailed.CertValidation`,
///   `…InvalidCertPath.IncorrectValidationInfo`: stale, missing or revoked OCSP) may clear: the
///   peer's responder recovers or a new certificate is registered, and the request is the same.
///   The code cannot tell revoked from stale, so both are retried until the router's limits.
///
/// The proxies set [`Fault::retryable`] with it and the router and the generated clients decide
/// their retries with it, so they cannot disagree.
pub fn is_retryable_code(code: &str) -> bool {
    let mut words = code.split('.');
    if !matches!(words.next(), Some("Server" | "Signer")) {
        return false;
    }
    if code.rsplit('.').next().is_some_and(is_status_cause) {
        return true;
    }
    words
        .filter(|w| {
            !matches!(
                *w,
                "ClientProxy" | "ServerProxy" | "ServiceFailed" | "OpMonitor"
            )
        })
        .filter(|w| is_known_word(w))
        .all(|w| TRANSIENT_WORDS.iter().any(|t| same_word(w, t)))
}

/// X-Road's causes under `SslAuthenticationFailed` and `InvalidCertPath` that name a
/// certificate's status rather than the certificate itself.
fn is_status_cause(word: &str) -> bool {
    ["CertValidation", "IncorrectValidationInfo"]
        .iter()
        .any(|k| same_word(word, k))
}

/// An HTTP status without a SOAP or REST error body: 5xx and 429 may clear.
pub fn is_retryable_status(status: u16) -> bool {
    status >= 500 || status == 429
}

/// X-Road's error words that name trouble which may clear: the transient [`ErrorCode`]s and the
/// words peers send for the same (a database, an HSM, the message log or the TSA down).
pub(crate) const TRANSIENT_WORDS: &[&str] = &[
    "IOError",
    "NetworkError",
    "InternalError",
    "HttpError",
    "Timeout",
    "MaintenanceMode",
    "OutdatedGlobalConf",
    // Mostly a stale OCSP response: the peer's responder is down, and recovers.
    "IncorrectValidationInfo",
    "CertValidation",
    "ServiceDisabled",
    "CannotCreateSignature",
    "TokenNotActive",
    "DatabaseError",
    "HSMNonOperational",
    "CannotSign",
    "LoggingFailed",
    "TimestampingFailed",
    "Maintenance",
];

/// Every word of a fault code X-Road and Trembita servers send (reference §1.7): prefixes, the
/// `ServiceFailed` infix, leaf codes and the sub-codes of signature failures.
const KNOWN_WORDS: &[&str] = &[
    "TimestampValidation",
    "Client",
    "Server",
    "ClientProxy",
    "ServerProxy",
    "Signer",
    "OpMonitor",
    "ServiceFailed",
    "IOError",
    "NetworkError",
    "InternalError",
    "DatabaseError",
    "HttpError",
    "InvalidRequest",
    "InvalidResponse",
    "BadRequest",
    "NotFound",
    "InvalidSoap",
    "MalformedSoap",
    "MissingSoap",
    "InvalidXml",
    "InvalidBody",
    "MissingBody",
    "MissingHeader",
    "MissingHeaderField",
    "DuplicateHeaderField",
    "InconsistentHeaders",
    "InconsistentResponse",
    "InvalidProtocolVersion",
    "InvalidClientIdentifier",
    "InvalidContentType",
    "InvalidSoapAction",
    "InvalidHttpMethod",
    "InvalidMessage",
    "MimeParsingFailed",
    "MissingRest",
    "InvalidRest",
    "AccessDenied",
    "UnknownService",
    "ServiceDisabled",
    "ServiceType",
    "UnknownMember",
    "InvalidSecurityServer",
    "ServiceMissingUrl",
    "ServiceMalformedUrl",
    "SslAuthenticationFailed",
    "MissingSignature",
    "MalformedSignature",
    "InvalidSignatureValue",
    "SignatureVerification",
    "InvalidReference",
    "InvalidHashChain",
    "MalformedHashChain",
    "HashChainUnusedInputs",
    "InvalidHashChainRef",
    "CertValidation",
    "CertValidityTime",
    "IncorrectCertificate",
    "CannotCreateCertPath",
    "InvalidCertPath",
    "MissingValidationInfo",
    "IncorrectValidationInfo",
    "CannotCreateSignature",
    "OutdatedGlobalConf",
    "MalformedGlobalConf",
    "MalformedServerConf",
    "MaintenanceMode",
    "ClientProxyVersionNotSupported",
    "LoggingFailed",
    "TimestampingFailed",
    "TokenNotActive",
    "KeyNotFound",
    "CannotSign",
    "HSMNonOperational",
    "Timeout",
    "Maintenance",
];

/// Whether `code` is made of X-Road's fault-code words only (in either spelling: `AccessDenied`
/// or X-Road 7.7's `access_denied`), so a metric can carry it as a label: a peer that invents codes
/// must not invent series.
pub fn is_known_code(code: &str) -> bool {
    let words: Vec<&str> = code.split('.').collect();
    words.len() <= 6 && words.iter().all(|w| is_known_word(w))
}

/// One of [`KNOWN_WORDS`], in either spelling.
fn is_known_word(w: &str) -> bool {
    KNOWN_WORDS.iter().any(|k| same_word(w, k))
}

/// `w` is the word `k`, in its CamelCase or X-Road 7.7's snake_case spelling.
fn same_word(w: &str, k: &str) -> bool {
    k.eq_ignore_ascii_case(w)
        || (w.contains('_') && w.len() > k.len() && w.replace('_', "").eq_ignore_ascii_case(k))
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for Fault {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composes_codes() {
        let f = Fault::new(Prefix::Client, ErrorCode::InvalidBody, "x");
        assert_eq!(f.code, "Client.InvalidBody");
        assert!(!f.retryable());
        assert_eq!(f.side(), Side::Caller);
        let f = Fault::service_failed(Prefix::ServerProxy, ErrorCode::NetworkError, "x");
        assert_eq!(f.code, "Server.ServerProxy.ServiceFailed.NetworkError");
        assert!(f.retryable());
        assert_eq!(f.leaf(), "NetworkError");
    }

    #[test]
    fn known_codes_are_x_roads() {
        for c in [
            "Server.ServerProxy.AccessDenied",
            "Server.ClientProxy.ServiceFailed.MalformedSignature.InvalidHashChainRef",
            "server.serverproxy.access_denied",
            "Client.InvalidXml",
            "Server.Maintenance",
        ] {
            assert!(is_known_code(c), "{c}");
        }
        for c in [
            "Server.\"X",
            "Server.Made.Up",
            "",
            "Client..InvalidXml",
            "Client.Invalid\nXml",
        ] {
            assert!(!is_known_code(c), "{}", c.escape_debug());
        }
    }

    #[test]
    fn retry_policy_is_a_function_of_the_code() {
        assert!(is_retryable_code(
            "Server.ServerProxy.ServiceFailed.NetworkError"
        ));
        assert!(!is_retryable_code("Server.ServerProxy.AccessDenied"));
        assert!(!is_retryable_code("Client.InvalidSoap"));
        assert!(!is_retryable_code("Server.ServerProxy.UnknownService"));
        assert!(!is_retryable_code(
            "Server.ServerProxy.MalformedSignature.InvalidHashChainRef"
        ));
        assert!(!is_retryable_code(
            "Server.ClientProxy.InvalidSignatureValue"
        ));
        // A certificate's status may clear; the certificate itself will not.
        for (code, sub) in [
            (ErrorCode::SslAuthenticationFailed, "CertValidation"),
            (
                ErrorCode::SslAuthenticationFailed,
                "IncorrectValidationInfo",
            ),
            (ErrorCode::InvalidCertPath, "CertValidation"),
            (ErrorCode::InvalidCertPath, "IncorrectValidationInfo"),
        ] {
            let f = Fault::new(Prefix::ServerProxy, code, "").with_sub(sub);
            assert!(f.retryable(), "{}", f.code);
            assert!(is_retryable_code(&f.code.to_string()), "{}", f.code);
        }
        assert!(!is_retryable_code(
            "Server.ServerProxy.SslAuthenticationFailed"
        ));
        assert!(!is_retryable_code("Server.ServerProxy.InvalidCertPath"));
        assert!(!is_retryable_code("Client.InvalidCertPath.CertValidation"));
        assert!(!Fault::new(Prefix::Client, ErrorCode::InvalidCertPath, "")
            .with_sub("CertValidation")
            .retryable());
    }

    /// Every code we produce, from every side: its full code, whose side it is on, and whether
    /// it is retried; the retry rule on the wire string agrees with the code's own.
    #[test]
    fn every_code_with_its_side_and_retryability() {
        // No wildcard: a new code does not compile until it is placed here.
        fn transient(c: ErrorCode) -> bool {
            use ErrorCode::*;
            match c {
                IoError => true,
                NetworkError => true,
                InternalError => true,
                HttpError => true,
                InvalidRequest => false,
                InvalidResponse => false,
                BadRequest => false,
                NotFound => false,
                InvalidSoap => false,
                MalformedSoap => false,
                MissingSoap => false,
                InvalidXml => false,
                InvalidBody => false,
                MissingBody => false,
                MissingHeader => false,
                MissingHeaderField => false,
                DuplicateHeaderField => false,
                InconsistentHeaders => false,
                InconsistentResponse => false,
                InvalidProtocolVersion => false,
                InvalidClientIdentifier => false,
                InvalidContentType => false,
                InvalidHttpMethod => false,
                InvalidMessage => false,
                MissingRest => false,
                ServiceType => false,
                MimeParsingFailed => false,
                AccessDenied => false,
                UnknownService => false,
                ServiceDisabled => true,
                UnknownMember => false,
                InvalidSecurityServer => false,
                ServiceMissingUrl => false,
                ServiceMalformedUrl => false,
                SslAuthenticationFailed => false,
                MissingSignature => false,
                MalformedSignature => false,
                InvalidSignatureValue => false,
                IncorrectCertificate => false,
                InvalidCertPath => false,
                IncorrectValidationInfo => true,
                CertValidation => true,
                CannotCreateSignature => true,
                TokenNotActive => true,
                KeyNotFound => false,
                MalformedGlobalConf => false,
                MalformedServerConf => false,
                OutdatedGlobalConf => true,
                MaintenanceMode => true,
                Timeout => true,
                TimestampValidation => false,
                TimestampingFailed => true,
                LoggingFailed => true,
            }
        }
        let mut seen = std::collections::HashSet::new();
        for &c in ErrorCode::ALL {
            assert!(seen.insert(c.as_str()), "{c} twice");
            assert!(
                is_known_code(c.as_str()),
                "{c} is not one of X-Road's words"
            );
            assert_eq!(c.is_transient(), transient(c), "{c}");
            let cases = [
                (
                    Fault::new(Prefix::Client, c, ""),
                    format!("Client.{c}"),
                    Side::Caller,
                    false,
                ),
                (
                    Fault::new(Prefix::ClientProxy, c, ""),
                    format!("Server.ClientProxy.{c}"),
                    Side::Local,
                    transient(c),
                ),
                (
                    Fault::new(Prefix::ServerProxy, c, ""),
                    format!("Server.ServerProxy.{c}"),
                    Side::Local,
                    transient(c),
                ),
                (
                    Fault::service_failed(Prefix::ClientProxy, c, ""),
                    format!("Server.ClientProxy.ServiceFailed.{c}"),
                    Side::Remote,
                    transient(c),
                ),
                (
                    Fault::service_failed(Prefix::ServerProxy, c, ""),
                    format!("Server.ServerProxy.ServiceFailed.{c}"),
                    Side::Remote,
                    transient(c),
                ),
                (
                    Fault::new(Prefix::Signer, c, ""),
                    format!("Signer.{c}"),
                    Side::Local,
                    transient(c),
                ),
            ];
            for (f, code, side, retryable) in cases {
                assert_eq!(f.code.to_string(), code);
                assert_eq!(f.side(), side, "{code}");
                assert_eq!(f.retryable(), retryable, "{code}");
                assert_eq!(is_retryable_code(&code), retryable, "{code}");
                assert_eq!(f.http_status, None, "{code}: SOAP faults go with 200");
                let status = if side == Side::Caller { 400 } else { 500 };
                assert_eq!(f.rest_status(), status, "{code} as a REST error");
                // The same code from a peer, passed on, is retried alike.
                let passed = Fault::remote(code.clone(), String::new(), None);
                assert_eq!(
                    (passed.retryable(), passed.side()),
                    (retryable, Side::Remote),
                    "{code}"
                );
            }
        }
    }

    #[test]
    fn security_events_and_rest_statuses() {
        let f = |c: &str| Fault::remote(c.into(), String::new(), None);
        assert_eq!(
            f("Server.ServerProxy.AccessDenied").security_event(),
            Some("access_denied")
        );
        assert_eq!(
            f("server.serverproxy.access_denied").security_event(),
            Some("access_denied")
        );
        for c in [
            "Server.ServerProxy.SslAuthenticationFailed",
            "Server.ServerProxy.InvalidSignatureValue",
        ] {
            assert_eq!(f(c).security_event(), Some("authentication_failed"), "{c}");
        }
        assert_eq!(
            f("Server.ServerProxy.UnknownService").security_event(),
            None
        );
        assert_eq!(f("Client.InvalidXml").rest_status(), 400);
        assert_eq!(f("Server.ServerProxy.UnknownService").rest_status(), 500);
        assert_eq!(f("Client.InvalidXml").with_status(413).rest_status(), 413);
        assert_eq!(f("ClientX").rest_status(), 500);
    }

    #[test]
    fn codes_the_two_old_policies_disagreed_on_are_final() {
        for code in [
            "Server.ClientProxy.ServiceFailed.InconsistentResponse",
            "Server.ClientProxy.ServiceFailed.InvalidResponse",
            "Server.ServerProxy.ServiceFailed.ServiceMissingUrl",
            "Server.ServerProxy.ServiceMalformedUrl",
            "server.clientproxy.service_failed.inconsistent_response",
        ] {
            assert!(!is_retryable_code(code), "{code}");
        }
        // Signer trouble and a peer's snake_case transient code may clear; a service's own
        // `Server` fault may too (SOAP 1.1), a `Client` one never.
        for code in [
            "Signer.TokenNotActive",
            "Server.ServerProxy.ServiceFailed.network_error",
            "Server",
            "Server.Maintenance",
            "Server.ServerProxy.ServiceFailed",
            "Server.ServerProxy.DatabaseError",
        ] {
            assert!(is_retryable_code(code), "{code}");
        }
        for code in [
            "Client",
            "Client.ApplicationNotFound",
            "ServerX",
            "",
            "Server.ServerProxy.AccessDenied.NetworkError",
        ] {
            assert!(!is_retryable_code(code), "{code}");
        }
        assert!(is_retryable_status(503) && is_retryable_status(429));
        assert!(!is_retryable_status(404) && !is_retryable_status(200));
    }
}
