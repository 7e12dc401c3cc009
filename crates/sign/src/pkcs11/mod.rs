//! PKCS#11 signing keys (HSMs, network HSMs, SoftHSM2 in tests) on top of `cryptoki`.
//!
//! Tokens are found by label or serial number and keys by `CKA_LABEL` or `CKA_ID` every time a
//! session opens, because slot numbers and object handles are not stable (SoftHSM2 alone
//! renumbers slots when a token is initialised). Split by concern: the module, tokens and keys
//! (here), signing sessions (`session`), key administration for `brama keys` (`admin`); the
//! DER they need is the crate's `der`.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use cryptoki::context::{CInitializeArgs, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{
    Attribute, AttributeType, CertificateType, KeyType as CkKeyType, ObjectClass, ObjectHandle,
};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;

use super::token::{KeySession, KeySource, KeyType, SignatureAlgorithm, TokenError};
use crate::der::{
    der_uint, ec_point, ecdsa_der_to_raw, ecdsa_raw_to_der, tlv, OID_EC_PUBLIC_KEY, OID_P256,
    OID_RSA_ENCRYPTION,
};
mod admin;
mod session;
#[cfg(test)]
pub(crate) mod tests;

pub use admin::*;
pub use session::*;

/// Settings of one PKCS#11 module (from the config file; vendor specifics included).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleSettings {
    pub library: PathBuf,
    /// Environment variables set before `C_Initialize` (e.g. `PKCS11_PROXY_SOCKET`, `SOFTHSM2_CONF`).
    pub env: Vec<(String, String)>,
    /// Signing mechanism override (`CKM_RSA_PKCS`, `CKM_ECDSA`, `CKM_SHA256_RSA_PKCS`,
    /// `CKM_ECDSA_SHA256`, ...); `None` picks by key type.
    pub mechanism: Option<String>,
}

/// Token selection: by label or serial number (both must match when both are given).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRef {
    pub label: Option<String>,
    pub serial: Option<String>,
}

impl fmt::Display for TokenRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.label, &self.serial) {
            (Some(l), Some(s)) => write!(f, "{l} (serial {s})"),
            (Some(l), None) => f.write_str(l),
            (None, Some(s)) => write!(f, "serial {s}"),
            (None, None) => f.write_str("(no token)"),
        }
    }
}

/// Key selection: by `CKA_LABEL` or `CKA_ID`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyRef {
    Label(String),
    Id(Vec<u8>),
}

impl fmt::Display for KeyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyRef::Label(l) => f.write_str(l),
            KeyRef::Id(id) => write!(f, "id {}", hex::encode(id)),
        }
    }
}

/// A token as the module reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenInfo {
    pub label: String,
    pub serial: String,
    pub manufacturer: String,
    pub model: String,
    pub slot_id: u64,
}

/// A private key on a token, for `brama keys list`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyInfo {
    pub label: String,
    pub id: Vec<u8>,
    pub key_type: KeyType,
    pub has_cert: bool,
    pub cert_subject: Option<String>,
}

/// Modules already initialised, by canonical library path: `C_Initialize` may run only once per
/// library per process (a second call fails with `CKR_CRYPTOKI_ALREADY_INITIALIZED`).
static MODULES: LazyLock<Mutex<HashMap<PathBuf, Arc<Module>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// A loaded and initialised PKCS#11 library, shared by every key on its tokens.
pub struct Module {
    settings: ModuleSettings,
    ctx: Pkcs11,
}

impl fmt::Debug for Module {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Module")
            .field("library", &self.settings.library)
            .finish()
    }
}

impl Module {
    /// Loads and initialises the library, or returns the instance loaded earlier in this process.
    /// The same library loaded twice must have the same `env` (read once, by `C_Initialize`);
    /// `mechanism` is only a default, so the first load's stays and keys pass their own.
    pub fn load(settings: &ModuleSettings) -> Result<Arc<Module>, TokenError> {
        // dlopen shares one instance between paths to the same file, so key by the real path.
        let path = std::fs::canonicalize(&settings.library).unwrap_or(settings.library.clone());
        let mut modules = MODULES.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(module) = modules.get(&path) {
            if module.settings.env != settings.env {
                return Err(TokenError::permanent(format!(
                    "PKCS#11 library {} is already loaded with another environment \
                     (a library is initialised once per process)",
                    path.display()
                )));
            }
            return Ok(module.clone());
        }
        if let Some(name) = &settings.mechanism {
            SignMech::parse(name)?;
        }
        // Modules read their environment in C_Initialize; the registry lock serialises this.
        for (name, value) in &settings.env {
            std::env::set_var(name, value);
        }
        let ctx = Pkcs11::new(&path).map_err(|e| {
            TokenError::permanent(format!(
                "cannot load PKCS#11 library {}: {e}",
                path.display()
            ))
        })?;
        match ctx.initialize(CInitializeArgs::OsThreads) {
            // Someone else in the process initialised it: the library is usable all the same.
            Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(e) => return Err(ck_error(&format!("initialise {}", path.display()), e)),
        }
        tracing::info!(library = %path.display(), "PKCS#11 module initialised");
        let module = Arc::new(Module {
            settings: settings.clone(),
            ctx,
        });
        modules.insert(path, module.clone());
        Ok(module)
    }

    pub fn settings(&self) -> &ModuleSettings {
        &self.settings
    }

    /// Every slot that holds an initialised token.
    pub fn tokens(&self) -> Result<Vec<TokenInfo>, TokenError> {
        let slots = self
            .ctx
            .get_slots_with_token()
            .map_err(|e| ck_error("list slots", e))?;
        let mut tokens = Vec::with_capacity(slots.len());
        for slot in slots {
            let info = match self.ctx.get_token_info(slot) {
                Ok(info) if info.token_initialized() => info,
                // Uninitialised (SoftHSM2's spare slot) or pulled out since the slot list.
                Ok(_) | Err(CkError::Pkcs11(RvError::TokenNotPresent, _)) => continue,
                Err(e) => return Err(ck_error("token info", e)),
            };
            tokens.push(TokenInfo {
                label: info.label().to_string(),
                serial: info.serial_number().to_string(),
                manufacturer: info.manufacturer_id().to_string(),
                model: info.model().to_string(),
                slot_id: slot.id(),
            });
        }
        Ok(tokens)
    }

    /// The slot that holds `token` now.
    fn find_slot(&self, token: &TokenRef) -> Result<Slot, TokenError> {
        if token.label.is_none() && token.serial.is_none() {
            return Err(TokenError::permanent(
                "token needs a label or a serial number",
            ));
        }
        let matching: Vec<TokenInfo> = self
            .tokens()?
            .into_iter()
            .filter(|t| token.label.as_ref().is_none_or(|l| *l == t.label))
            .filter(|t| token.serial.as_ref().is_none_or(|s| *s == t.serial))
            .collect();
        match matching.as_slice() {
            [t] => Slot::try_from(t.slot_id).map_err(|e| ck_error("slot id", e)),
            [] => Err(TokenError::permanent(format!("token {token} not found"))),
            _ => Err(TokenError::permanent(format!(
                "more than one token matches {token}: select it by serial number"
            ))),
        }
    }

    /// Opens a session on `token` and logs the user in.
    fn login(&self, token: &TokenRef, pin: &AuthPin, rw: bool) -> Result<Session, TokenError> {
        let slot = self.find_slot(token)?;
        let session = if rw {
            self.ctx.open_rw_session(slot)
        } else {
            self.ctx.open_ro_session(slot)
        }
        .map_err(|e| ck_error("open session", e))?;
        match session.login(UserType::User, Some(pin)) {
            // Login state is per token and process, shared by every session.
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(session),
            Err(e) => Err(ck_error(&format!("log in to token {token}"), e)),
        }
    }

    fn library_name(&self) -> String {
        let lib = &self.settings.library;
        lib.file_name()
            .unwrap_or(lib.as_os_str())
            .to_string_lossy()
            .into_owned()
    }
}

/// Maps a cryptoki error: failures another (or a fresh) session may not repeat are transient.
fn ck_error(context: &str, e: CkError) -> TokenError {
    match e {
        CkError::Pkcs11(rv, function) => {
            let message = format!("{context}: C_{function:?} failed: CKR_{rv:?}");
            match rv {
                RvError::SessionHandleInvalid
                | RvError::SessionClosed
                | RvError::DeviceError
                | RvError::DeviceMemory
                | RvError::DeviceRemoved
                | RvError::TokenNotPresent
                | RvError::UserNotLoggedIn
                | RvError::GeneralError => TokenError::transient(message),
                _ => TokenError::permanent(message),
            }
        }
        other => TokenError::permanent(format!("{context}: {other}")),
    }
}
