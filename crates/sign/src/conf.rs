//! What the signer is configured with: one signing key per member, where it lives, how its PIN
//! is read. The server configuration resolves these from `[signer]`.

use brama_xroad::identifiers::ClientId;

use crate::digest::DigestAlgorithm;

/// Where a member's key is, as configured; the signer opens it when the server starts.
#[derive(Clone)]
pub enum KeyLocation {
    /// PKCS#8 bytes (read through the config source, so the embedded default works anywhere).
    Software { pkcs8: Vec<u8>, name: String },
    Pkcs11 {
        module: String,
        env: Vec<(String, String)>,
        token_label: Option<String>,
        token_serial: Option<String>,
        label: Option<String>,
        id: Option<Vec<u8>>,
        pin: PinSource,
        mechanism: Option<String>,
    },
}

#[derive(Clone, Debug)]
pub enum PinSource {
    Env(String),
    File(std::path::PathBuf),
}

impl PinSource {
    /// Reads the PIN now; it is never stored in the configuration or logged.
    pub fn read(&self) -> Result<String, String> {
        match self {
            PinSource::Env(v) => std::env::var(v)
                .map_err(|_| format!("environment variable {v} (the token PIN) is not set")),
            PinSource::File(p) => std::fs::read_to_string(p)
                .map(|s| s.trim_end_matches(['\r', '\n']).to_string())
                .map_err(|e| format!("PIN file {}: {e}", p.display())),
        }
    }
}

#[derive(Clone)]
pub struct SigningKeyConf {
    pub member: ClientId,
    /// Leaf first, then intermediates.
    pub cert_chain: Vec<Vec<u8>>,
    pub location: KeyLocation,
    pub sessions: usize,
}

impl std::fmt::Debug for SigningKeyConf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let loc = match &self.location {
            KeyLocation::Software { name, .. } => format!("software:{name}"),
            KeyLocation::Pkcs11 { module, label, .. } => format!("pkcs11:{module}:{label:?}"),
        };
        write!(f, "SigningKey({} at {loc})", self.member)
    }
}

/// The resolved signer settings.
#[derive(Clone, Debug)]
pub struct SignerConf {
    pub hash: DigestAlgorithm,
    /// The digest signatures are made over; `None` picks it by key type.
    pub signature_digest: Option<DigestAlgorithm>,
    pub max_batch: usize,
    pub batch_wait: std::time::Duration,
    pub timeout: std::time::Duration,
    pub keys: Vec<SigningKeyConf>,
}
