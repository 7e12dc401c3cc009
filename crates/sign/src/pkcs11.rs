//! PKCS#11 signing keys (HSMs, network HSMs, SoftHSM2 in tests) on top of `cryptoki`.
//!
//! Tokens are found by label or serial number and keys by `CKA_LABEL` or `CKA_ID` every time a
//! session opens, because slot numbers and object handles are not stable (SoftHSM2 alone
//! renumbers slots when a token is initialised). The key-management functions at the end serve
//! `brama keys list|generate|csr|import-cert`.

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

use super::der::tlv;
use super::token::{KeySession, KeySource, KeyType, SignatureAlgorithm, TokenError};

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

/// The signing mechanisms brama drives. The plain ones sign a digest brama computes; the
/// `Sha*` ones hash on the token (for modules without raw `CKM_RSA_PKCS`/`CKM_ECDSA`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SignMech {
    RsaPkcs,
    Sha256RsaPkcs,
    Sha384RsaPkcs,
    Sha512RsaPkcs,
    Ecdsa,
    EcdsaSha256,
    EcdsaSha384,
    EcdsaSha512,
}

impl SignMech {
    const ALL: [SignMech; 8] = [
        SignMech::RsaPkcs,
        SignMech::Sha256RsaPkcs,
        SignMech::Sha384RsaPkcs,
        SignMech::Sha512RsaPkcs,
        SignMech::Ecdsa,
        SignMech::EcdsaSha256,
        SignMech::EcdsaSha384,
        SignMech::EcdsaSha512,
    ];

    fn name(self) -> &'static str {
        match self {
            SignMech::RsaPkcs => "CKM_RSA_PKCS",
            SignMech::Sha256RsaPkcs => "CKM_SHA256_RSA_PKCS",
            SignMech::Sha384RsaPkcs => "CKM_SHA384_RSA_PKCS",
            SignMech::Sha512RsaPkcs => "CKM_SHA512_RSA_PKCS",
            SignMech::Ecdsa => "CKM_ECDSA",
            SignMech::EcdsaSha256 => "CKM_ECDSA_SHA256",
            SignMech::EcdsaSha384 => "CKM_ECDSA_SHA384",
            SignMech::EcdsaSha512 => "CKM_ECDSA_SHA512",
        }
    }

    fn parse(name: &str) -> Result<SignMech, TokenError> {
        let name = name.trim();
        SignMech::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| TokenError::permanent(format!("unsupported signing mechanism {name}")))
    }

    /// The override if any, else the raw mechanism for the key type; checks they fit together.
    fn choose(name: Option<&str>, key_type: KeyType) -> Result<SignMech, TokenError> {
        let mech = match name {
            Some(name) => SignMech::parse(name)?,
            None if key_type == KeyType::Rsa => SignMech::RsaPkcs,
            None => SignMech::Ecdsa,
        };
        if mech.key_type() != key_type {
            return Err(TokenError::permanent(format!(
                "mechanism {} cannot sign with a {key_type:?} key",
                mech.name()
            )));
        }
        Ok(mech)
    }

    fn key_type(self) -> KeyType {
        match self {
            SignMech::RsaPkcs
            | SignMech::Sha256RsaPkcs
            | SignMech::Sha384RsaPkcs
            | SignMech::Sha512RsaPkcs => KeyType::Rsa,
            _ => KeyType::EcP256,
        }
    }

    /// The digest size in bits when the token hashes the data itself.
    fn hash_bits(self) -> Option<u16> {
        match self {
            SignMech::RsaPkcs | SignMech::Ecdsa => None,
            SignMech::Sha256RsaPkcs | SignMech::EcdsaSha256 => Some(256),
            SignMech::Sha384RsaPkcs | SignMech::EcdsaSha384 => Some(384),
            SignMech::Sha512RsaPkcs | SignMech::EcdsaSha512 => Some(512),
        }
    }

    fn mechanism(self) -> Mechanism<'static> {
        match self {
            SignMech::RsaPkcs => Mechanism::RsaPkcs,
            SignMech::Sha256RsaPkcs => Mechanism::Sha256RsaPkcs,
            SignMech::Sha384RsaPkcs => Mechanism::Sha384RsaPkcs,
            SignMech::Sha512RsaPkcs => Mechanism::Sha512RsaPkcs,
            SignMech::Ecdsa => Mechanism::Ecdsa,
            SignMech::EcdsaSha256 => Mechanism::EcdsaSha256,
            SignMech::EcdsaSha384 => Mechanism::EcdsaSha384,
            SignMech::EcdsaSha512 => Mechanism::EcdsaSha512,
        }
    }
}

fn alg_hash_bits(alg: SignatureAlgorithm) -> u16 {
    match alg {
        SignatureAlgorithm::RsaSha256 | SignatureAlgorithm::EcdsaSha256 => 256,
        SignatureAlgorithm::EcdsaSha384 => 384,
        SignatureAlgorithm::RsaSha512 | SignatureAlgorithm::EcdsaSha512 => 512,
    }
}

/// A key on a token; opens logged-in sessions for the signing pool.
#[derive(Debug)]
pub struct Pkcs11Key {
    module: Arc<Module>,
    token: TokenRef,
    key: KeyRef,
    /// `AuthPin` prints as `[REDACTED]` and is zeroed on drop.
    pin: AuthPin,
    mechanism: SignMech,
    key_type: KeyType,
}

impl Pkcs11Key {
    /// Checks that the token, PIN and key work and learns the key type. `mechanism` overrides
    /// the module's setting. Login is per token and process: while another session of this
    /// process is logged in to the token, `C_Login` answers `CKR_USER_ALREADY_LOGGED_IN`
    /// without looking at the PIN (SoftHSM2 does), so a wrong PIN shows only on a fresh login.
    pub fn new(
        module: Arc<Module>,
        token: TokenRef,
        key: KeyRef,
        pin: String,
        mechanism: Option<String>,
    ) -> Result<Pkcs11Key, TokenError> {
        let pin = AuthPin::new(pin);
        let session = module.login(&token, &pin, false)?;
        let (_, key_type) = find_private_key(&session, &key)?;
        let name = mechanism
            .as_deref()
            .or(module.settings.mechanism.as_deref());
        let mechanism = SignMech::choose(name, key_type)?;
        Ok(Pkcs11Key {
            module,
            token,
            key,
            pin,
            mechanism,
            key_type,
        })
    }

    fn open_session(&self) -> Result<Pkcs11Session, TokenError> {
        let session = self.module.login(&self.token, &self.pin, false)?;
        let (key, key_type) = find_private_key(&session, &self.key)?;
        if key_type != self.key_type {
            return Err(TokenError::permanent(format!(
                "key {} on token {} is now {key_type:?}, was {:?}",
                self.key, self.token, self.key_type
            )));
        }
        Ok(Pkcs11Session {
            session: Some(session),
            key,
            key_type,
            mechanism: self.mechanism,
        })
    }
}

impl KeySource for Pkcs11Key {
    fn open(&self) -> Result<Box<dyn KeySession>, TokenError> {
        Ok(Box::new(self.open_session()?))
    }

    fn key_type(&self) -> KeyType {
        self.key_type
    }

    fn describe(&self) -> String {
        format!(
            "pkcs11 {} token {} key {}",
            self.module.library_name(),
            self.token,
            self.key
        )
    }
}

/// One logged-in session and the key handle found in it (handles are per session).
struct Pkcs11Session {
    /// `None` once killed.
    session: Option<Session>,
    key: ObjectHandle,
    key_type: KeyType,
    mechanism: SignMech,
}

impl KeySession for Pkcs11Session {
    fn sign(&mut self, alg: SignatureAlgorithm, data: &[u8]) -> Result<Vec<u8>, TokenError> {
        let session = self
            .session
            .as_ref()
            .ok_or_else(|| TokenError::transient("PKCS#11 session closed"))?;
        if alg.key_type() != self.key_type {
            return Err(TokenError::permanent(format!(
                "a {:?} key cannot sign {}",
                self.key_type,
                alg.uri()
            )));
        }
        let input = match self.mechanism.hash_bits() {
            None if self.key_type == KeyType::Rsa => {
                [alg.digest_info_prefix(), &alg.digest(data)].concat()
            }
            None => alg.digest(data),
            Some(bits) if bits == alg_hash_bits(alg) => data.to_vec(),
            Some(_) => {
                return Err(TokenError::permanent(format!(
                    "mechanism {} cannot sign {}",
                    self.mechanism.name(),
                    alg.uri()
                )))
            }
        };
        let signature = session
            .sign(&self.mechanism.mechanism(), self.key, &input)
            .map_err(|e| ck_error("sign", e))?;
        match self.key_type {
            KeyType::Rsa => Ok(signature),
            KeyType::EcP256 if signature.len() == 64 => Ok(signature),
            // Some modules return X9.62 DER instead of the PKCS#11 r‖s.
            KeyType::EcP256 => ecdsa_der_to_raw(&signature, 32).ok_or_else(|| {
                TokenError::permanent(format!(
                    "token returned an ECDSA signature of {} bytes, neither r‖s nor DER",
                    signature.len()
                ))
            }),
        }
    }

    fn kill(&mut self) {
        // Dropping a cryptoki session calls C_CloseSession.
        self.session = None;
    }
}

/// The private key `key` refers to and its type; exactly one must match.
fn find_private_key(
    session: &Session,
    key: &KeyRef,
) -> Result<(ObjectHandle, KeyType), TokenError> {
    let selector = match key {
        KeyRef::Label(label) => Attribute::Label(label.as_bytes().to_vec()),
        KeyRef::Id(id) => Attribute::Id(id.clone()),
    };
    let found = session
        .find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY), selector])
        .map_err(|e| ck_error("find key", e))?;
    let handle = match found.as_slice() {
        [handle] => *handle,
        [] => {
            return Err(TokenError::permanent(format!(
                "private key {key} not found"
            )))
        }
        _ => {
            return Err(TokenError::permanent(format!(
                "{} private keys match {key}",
                found.len()
            )))
        }
    };
    let key_type = key_type_of(session, handle)?
        .ok_or_else(|| TokenError::permanent(format!("key {key} is neither RSA nor EC P-256")))?;
    Ok((handle, key_type))
}

/// `CKA_KEY_TYPE` (and the curve, for EC) as brama's key type; `None` if brama cannot use it.
fn key_type_of(session: &Session, handle: ObjectHandle) -> Result<Option<KeyType>, TokenError> {
    let attrs = session
        .get_attributes(handle, &[AttributeType::KeyType, AttributeType::EcParams])
        .map_err(|e| ck_error("read key attributes", e))?;
    let mut ck_type = None;
    let mut params = None;
    for attr in attrs {
        match attr {
            Attribute::KeyType(t) => ck_type = Some(t),
            Attribute::EcParams(p) => params = Some(p),
            _ => {}
        }
    }
    Ok(match ck_type {
        Some(t) if t == CkKeyType::RSA => Some(KeyType::Rsa),
        Some(t) if t == CkKeyType::EC && params.as_deref() == Some(OID_P256) => {
            Some(KeyType::EcP256)
        }
        _ => None,
    })
}

/// One byte-string attribute of an object, if the object has it.
fn bytes_attr(
    session: &Session,
    handle: ObjectHandle,
    which: AttributeType,
) -> Result<Option<Vec<u8>>, TokenError> {
    let attrs = session
        .get_attributes(handle, &[which])
        .map_err(|e| ck_error("read attribute", e))?;
    Ok(attrs.into_iter().find_map(|a| match a {
        Attribute::Label(v)
        | Attribute::Id(v)
        | Attribute::Value(v)
        | Attribute::Modulus(v)
        | Attribute::PublicExponent(v)
        | Attribute::EcPoint(v) => Some(v),
        _ => None,
    }))
}

// ---------------------------------------------------------------------------------------------
// Key management (`brama keys ...`).

/// The private keys on a token, with whether a certificate with the same `CKA_ID` is stored.
/// Keys brama cannot use (other curves, DSA, ...) are left out.
pub fn list_keys(module: &Module, token: &TokenRef, pin: &str) -> Result<Vec<KeyInfo>, TokenError> {
    let session = module.login(token, &AuthPin::new(pin.to_string()), false)?;
    let handles = session
        .find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY)])
        .map_err(|e| ck_error("find keys", e))?;
    let mut keys = Vec::new();
    for handle in handles {
        if let Some(info) = key_info(&session, handle)? {
            keys.push(info);
        }
    }
    keys.sort_by(|a, b| a.label.cmp(&b.label).then(a.id.cmp(&b.id)));
    Ok(keys)
}

fn key_info(session: &Session, handle: ObjectHandle) -> Result<Option<KeyInfo>, TokenError> {
    let Some(key_type) = key_type_of(session, handle)? else {
        return Ok(None);
    };
    let label = bytes_attr(session, handle, AttributeType::Label)?.unwrap_or_default();
    let id = bytes_attr(session, handle, AttributeType::Id)?.unwrap_or_default();
    let cert = find_cert(session, &id)?;
    let cert_subject = match &cert {
        Some((_, der)) => x509_parser::parse_x509_certificate(der)
            .ok()
            .map(|(_, c)| c.subject().to_string()),
        None => None,
    };
    Ok(Some(KeyInfo {
        label: String::from_utf8_lossy(&label).into_owned(),
        id,
        key_type,
        has_cert: cert.is_some(),
        cert_subject,
    }))
}

/// The first certificate stored with `CKA_ID` = `id`: its handle and DER.
fn find_cert(session: &Session, id: &[u8]) -> Result<Option<(ObjectHandle, Vec<u8>)>, TokenError> {
    if id.is_empty() {
        return Ok(None);
    }
    let found = session
        .find_objects(&[
            Attribute::Class(ObjectClass::CERTIFICATE),
            Attribute::Id(id.to_vec()),
        ])
        .map_err(|e| ck_error("find certificate", e))?;
    for handle in found {
        if let Some(der) = bytes_attr(session, handle, AttributeType::Value)? {
            return Ok(Some((handle, der)));
        }
    }
    Ok(None)
}

/// Generates a key pair on the token: RSA 2048 or EC P-256, as token objects sharing a label and
/// a random 20-byte `CKA_ID`; the private half is sensitive and never extractable.
pub fn generate_key(
    module: &Module,
    token: &TokenRef,
    pin: &str,
    label: &str,
    key_type: KeyType,
) -> Result<KeyInfo, TokenError> {
    let session = module.login(token, &AuthPin::new(pin.to_string()), true)?;
    let existing = session
        .find_objects(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Label(label.as_bytes().to_vec()),
        ])
        .map_err(|e| ck_error("find keys", e))?;
    if !existing.is_empty() {
        return Err(TokenError::permanent(format!(
            "token {token} already has a key labelled {label}"
        )));
    }
    let id = session
        .generate_random_vec(20)
        .map_err(|e| ck_error("generate key id", e))?;
    let common = [
        Attribute::Token(true),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id.clone()),
    ];
    let mut public = vec![Attribute::Private(false), Attribute::Verify(true)];
    let mechanism = match key_type {
        KeyType::Rsa => {
            public.push(Attribute::ModulusBits(2048.into()));
            public.push(Attribute::PublicExponent(vec![0x01, 0x00, 0x01]));
            Mechanism::RsaPkcsKeyPairGen
        }
        KeyType::EcP256 => {
            public.push(Attribute::EcParams(OID_P256.to_vec()));
            Mechanism::EccKeyPairGen
        }
    };
    public.extend(common.iter().cloned());
    let mut private = vec![
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
    ];
    private.extend(common);
    session
        .generate_key_pair(&mechanism, &public, &private)
        .map_err(|e| ck_error("generate key pair", e))?;
    tracing::info!(token = %token, label, id = %hex::encode(&id), ?key_type, "generated key");
    Ok(KeyInfo {
        label: label.to_string(),
        id,
        key_type,
        has_cert: false,
        cert_subject: None,
    })
}

/// A public key's parts as PKCS#11 stores them.
enum PublicKey {
    Rsa { modulus: Vec<u8>, exponent: Vec<u8> },
    Ec { point: Vec<u8> },
}

impl PublicKey {
    /// The `subjectPublicKey` bits: `RSAPublicKey` DER or the uncompressed EC point.
    fn raw(&self) -> Vec<u8> {
        match self {
            PublicKey::Rsa { modulus, exponent } => {
                tlv(0x30, &[der_uint(modulus), der_uint(exponent)].concat())
            }
            PublicKey::Ec { point } => point.clone(),
        }
    }

    /// `SubjectPublicKeyInfo` DER.
    fn spki(&self) -> Vec<u8> {
        let algorithm = match self {
            PublicKey::Rsa { .. } => [OID_RSA_ENCRYPTION, &[0x05, 0x00]].concat(),
            PublicKey::Ec { .. } => [OID_EC_PUBLIC_KEY, OID_P256].concat(),
        };
        let bits = [&[0x00][..], &self.raw()].concat();
        tlv(0x30, &[tlv(0x30, &algorithm), tlv(0x03, &bits)].concat())
    }
}

/// The public half of a private key: from the public key object with the same `CKA_ID`, else
/// from the private key itself (RSA keeps the modulus there) or its certificate (EC).
fn public_key_of(
    session: &Session,
    handle: ObjectHandle,
    key_type: KeyType,
) -> Result<PublicKey, TokenError> {
    let id = bytes_attr(session, handle, AttributeType::Id)?.unwrap_or_default();
    let public = if id.is_empty() {
        None
    } else {
        session
            .find_objects(&[
                Attribute::Class(ObjectClass::PUBLIC_KEY),
                Attribute::Id(id.clone()),
            ])
            .map_err(|e| ck_error("find public key", e))?
            .into_iter()
            .next()
    };
    match key_type {
        KeyType::Rsa => {
            let h = public.unwrap_or(handle);
            match (
                bytes_attr(session, h, AttributeType::Modulus)?,
                bytes_attr(session, h, AttributeType::PublicExponent)?,
            ) {
                (Some(modulus), Some(exponent)) => Ok(PublicKey::Rsa { modulus, exponent }),
                _ => Err(TokenError::permanent(
                    "RSA key without modulus or public exponent",
                )),
            }
        }
        KeyType::EcP256 => {
            if let Some(h) = public {
                let value = bytes_attr(session, h, AttributeType::EcPoint)?.unwrap_or_default();
                return ec_point(&value)
                    .map(|point| PublicKey::Ec { point })
                    .ok_or_else(|| TokenError::permanent("malformed CKA_EC_POINT"));
            }
            let (_, der) = find_cert(session, &id)?.ok_or_else(|| {
                TokenError::permanent("EC key without a public key object or certificate")
            })?;
            let (_, cert) = x509_parser::parse_x509_certificate(&der)
                .map_err(|e| TokenError::permanent(format!("stored certificate: {e}")))?;
            let point = cert.public_key().subject_public_key.data.to_vec();
            Ok(PublicKey::Ec { point })
        }
    }
}

/// The key's `SubjectPublicKeyInfo` DER.
pub fn public_key_der(
    module: &Module,
    token: &TokenRef,
    pin: &str,
    key: &KeyRef,
) -> Result<Vec<u8>, TokenError> {
    let session = module.login(token, &AuthPin::new(pin.to_string()), false)?;
    let (handle, key_type) = find_private_key(&session, key)?;
    Ok(public_key_of(&session, handle, key_type)?.spki())
}

/// rcgen's view of a token key: signs the CSR through the token with SHA-256.
struct RemoteKey {
    session: Mutex<Pkcs11Session>,
    public_raw: Vec<u8>,
    key_type: KeyType,
}

impl rcgen::RemoteKeyPair for RemoteKey {
    fn public_key(&self) -> &[u8] {
        &self.public_raw
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        let mut session = self.session.lock().unwrap_or_else(PoisonError::into_inner);
        let alg = match self.key_type {
            KeyType::Rsa => SignatureAlgorithm::RsaSha256,
            KeyType::EcP256 => SignatureAlgorithm::EcdsaSha256,
        };
        let signature = session.sign(alg, msg).map_err(|e| {
            tracing::error!(error = %e, "signing the CSR on the token failed");
            rcgen::Error::RemoteKeyError
        })?;
        Ok(match self.key_type {
            KeyType::Rsa => signature,
            // X.509 carries ECDSA signatures as DER, PKCS#11 returns r‖s.
            KeyType::EcP256 => ecdsa_raw_to_der(&signature),
        })
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        match self.key_type {
            KeyType::Rsa => &rcgen::PKCS_RSA_SHA256,
            KeyType::EcP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
        }
    }
}

/// A PKCS#10 request for `key` with subject `subject` (pairs like `("CN", "00000001")`, in
/// order; `C`, `ST`, `L`, `O`, `OU`, `CN`, `serialNumber`, `organizationIdentifier` or a
/// dotted OID), signed by the key on the token.
pub fn csr_pem(
    module: &Module,
    token: &TokenRef,
    pin: &str,
    key: &KeyRef,
    subject: &[(String, String)],
) -> Result<String, TokenError> {
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = distinguished_name(subject)?;
    let session = module.login(token, &AuthPin::new(pin.to_string()), false)?;
    let (handle, key_type) = find_private_key(&session, key)?;
    let public_raw = public_key_of(&session, handle, key_type)?.raw();
    let mechanism = SignMech::choose(module.settings.mechanism.as_deref(), key_type)?;
    let remote = RemoteKey {
        session: Mutex::new(Pkcs11Session {
            session: Some(session),
            key: handle,
            key_type,
            mechanism,
        }),
        public_raw,
        key_type,
    };
    let key_pair = rcgen::KeyPair::from_remote(Box::new(remote))
        .map_err(|e| TokenError::permanent(format!("CSR key: {e}")))?;
    let csr = params
        .serialize_request(&key_pair)
        .map_err(|e| TokenError::permanent(format!("build CSR: {e}")))?;
    csr.pem()
        .map_err(|e| TokenError::permanent(format!("encode CSR: {e}")))
}

fn distinguished_name(
    subject: &[(String, String)],
) -> Result<rcgen::DistinguishedName, TokenError> {
    use rcgen::{DnType, DnValue, PrintableString};
    let mut dn = rcgen::DistinguishedName::new();
    for (name, value) in subject {
        let ty = match name.as_str() {
            "C" => DnType::CountryName,
            "ST" | "S" => DnType::StateOrProvinceName,
            "L" => DnType::LocalityName,
            "O" => DnType::OrganizationName,
            "OU" => DnType::OrganizationalUnitName,
            "CN" => DnType::CommonName,
            "serialNumber" | "SERIALNUMBER" => DnType::CustomDnType(vec![2, 5, 4, 5]),
            "organizationIdentifier" => DnType::CustomDnType(vec![2, 5, 4, 97]),
            oid => DnType::CustomDnType(
                oid.split('.')
                    .map(|arc| arc.parse::<u64>())
                    .collect::<Result<Vec<_>, _>>()
                    .ok()
                    .filter(|arcs| arcs.len() >= 2)
                    .ok_or_else(|| {
                        TokenError::permanent(format!("unknown subject attribute {name}"))
                    })?,
            ),
        };
        // X.520 wants countryName and serialNumber as PrintableString.
        let value = match ty {
            DnType::CountryName => PrintableString::try_from(value.as_str())
                .map(DnValue::PrintableString)
                .map_err(|_| {
                    TokenError::permanent(format!("country {value:?} is not printable"))
                })?,
            DnType::CustomDnType(ref oid) if oid == &[2, 5, 4, 5] => {
                match PrintableString::try_from(value.as_str()) {
                    Ok(p) => DnValue::PrintableString(p),
                    Err(_) => DnValue::Utf8String(value.clone()),
                }
            }
            _ => DnValue::Utf8String(value.clone()),
        };
        dn.push(ty, value);
    }
    Ok(dn)
}

/// Stores `cert_der` next to the key whose public key it certifies (same `CKA_ID` and label),
/// replacing certificates stored for that key before.
pub fn import_cert(
    module: &Module,
    token: &TokenRef,
    pin: &str,
    cert_der: &[u8],
) -> Result<KeyInfo, TokenError> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der)
        .map_err(|e| TokenError::permanent(format!("not an X.509 certificate: {e}")))?;
    let cert_key = cert.public_key().subject_public_key.data.to_vec();
    let session = module.login(token, &AuthPin::new(pin.to_string()), true)?;
    let handles = session
        .find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY)])
        .map_err(|e| ck_error("find keys", e))?;
    let mut matched = None;
    for handle in handles {
        let Some(key_type) = key_type_of(&session, handle)? else {
            continue;
        };
        // A key whose public half cannot be read cannot be the one; keep looking.
        if let Ok(public) = public_key_of(&session, handle, key_type) {
            if public.raw() == cert_key {
                matched = Some(handle);
                break;
            }
        }
    }
    let handle = matched.ok_or_else(|| {
        TokenError::permanent(format!(
            "no key on token {token} matches the certificate's public key"
        ))
    })?;
    let label = bytes_attr(&session, handle, AttributeType::Label)?.unwrap_or_default();
    let id = bytes_attr(&session, handle, AttributeType::Id)?.unwrap_or_default();
    if id.is_empty() {
        return Err(TokenError::permanent("the matching key has no CKA_ID"));
    }
    let old = session
        .find_objects(&[
            Attribute::Class(ObjectClass::CERTIFICATE),
            Attribute::Id(id.clone()),
        ])
        .map_err(|e| ck_error("find certificates", e))?;
    let serial = tlv(0x02, cert.tbs_certificate.raw_serial());
    session
        .create_object(&[
            Attribute::Class(ObjectClass::CERTIFICATE),
            Attribute::CertificateType(CertificateType::X_509),
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Label(label),
            Attribute::Id(id),
            Attribute::Subject(cert.subject().as_raw().to_vec()),
            Attribute::Issuer(cert.issuer().as_raw().to_vec()),
            Attribute::SerialNumber(serial),
            Attribute::Value(cert_der.to_vec()),
        ])
        .map_err(|e| ck_error("store certificate", e))?;
    // Remove the old ones only once the new one is stored.
    for handle in old {
        session
            .destroy_object(handle)
            .map_err(|e| ck_error("remove old certificate", e))?;
    }
    key_info(&session, handle)?
        .ok_or_else(|| TokenError::permanent("the matching key is of an unsupported type"))
}

/// The DER certificate stored for `key`, if any.
pub fn read_cert(
    module: &Module,
    token: &TokenRef,
    pin: &str,
    key: &KeyRef,
) -> Result<Option<Vec<u8>>, TokenError> {
    let session = module.login(token, &AuthPin::new(pin.to_string()), false)?;
    let (handle, _) = find_private_key(&session, key)?;
    let id = bytes_attr(&session, handle, AttributeType::Id)?.unwrap_or_default();
    Ok(find_cert(&session, &id)?.map(|(_, der)| der))
}

// ---------------------------------------------------------------------------------------------
// Just enough DER.

const OID_RSA_ENCRYPTION: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
];
const OID_EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// secp256r1 (1.2.840.10045.3.1.7), also the `CKA_EC_PARAMS` value for P-256.
const OID_P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// An INTEGER from an unsigned big-endian number.
fn der_uint(value: &[u8]) -> Vec<u8> {
    let skip = value.iter().take_while(|b| **b == 0).count();
    let value = &value[skip..];
    match value.first() {
        None => tlv(0x02, &[0]),
        Some(b) if b & 0x80 != 0 => tlv(0x02, &[&[0], value].concat()),
        Some(_) => tlv(0x02, value),
    }
}

/// Splits one TLV off `input`: (tag, content, rest).
fn der_read(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// ECDSA-Sig-Value DER → r‖s with `half`-byte halves.
fn ecdsa_der_to_raw(signature: &[u8], half: usize) -> Option<Vec<u8>> {
    let (0x30, body, []) = der_read(signature)? else {
        return None;
    };
    let (0x02, r, body) = der_read(body)? else {
        return None;
    };
    let (0x02, s, []) = der_read(body)? else {
        return None;
    };
    let mut out = Vec::with_capacity(2 * half);
    for int in [r, s] {
        let skip = int.iter().take_while(|b| **b == 0).count();
        let int = &int[skip..];
        if int.len() > half {
            return None;
        }
        out.resize(out.len() + half - int.len(), 0);
        out.extend_from_slice(int);
    }
    Some(out)
}

/// r‖s → ECDSA-Sig-Value DER.
fn ecdsa_raw_to_der(signature: &[u8]) -> Vec<u8> {
    let (r, s) = signature.split_at(signature.len() / 2);
    tlv(0x30, &[der_uint(r), der_uint(s)].concat())
}

/// The uncompressed point from `CKA_EC_POINT`: PKCS#11 says DER OCTET STRING (SoftHSM2 does
/// that), some modules return the bare point.
fn ec_point(value: &[u8]) -> Option<Vec<u8>> {
    if value.len() == 65 && value[0] == 0x04 {
        return Some(value.to_vec());
    }
    match der_read(value)? {
        (0x04, point, []) if point.len() == 65 && point[0] == 0x04 => Some(point.to_vec()),
        _ => None,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    //! Against a real SoftHSM2. SoftHSM2 reads `SOFTHSM2_CONF` once, in `C_Initialize`, so the
    //! whole test process shares one token directory: every test gets its own token in it.
    //! Other modules' tests that need a PKCS#11 token must use [`test_token`] too.

    use super::*;
    use rustls_pki_types::SignatureVerificationAlgorithm;
    use std::path::Path;
    use std::process::Command;
    use std::sync::OnceLock;

    pub(crate) const PIN: &str = "1234";
    const LIBRARY: &str = "/usr/lib/softhsm/libsofthsm2.so";
    const TOKENS: &[&str] = &[
        "rsa", "ec", "csr", "lookup", "wrongpin", "kill", "parallel", "fixture", "spare",
    ];
    const FIXTURE_KEY: &str = "certs-test/sign-GOV-00000001.key";
    const FIXTURE_CERT: &str = "certs-test/sign-GOV-00000001.pem";

    pub(crate) struct TestToken {
        pub dir: tempfile::TempDir,
        pub module: Arc<Module>,
    }

    /// The process-wide SoftHSM2 directory with one token per test (PIN [`PIN`]); the `spare`
    /// token is free for other modules' tests.
    pub(crate) fn test_token() -> &'static TestToken {
        static TOKEN: OnceLock<TestToken> = OnceLock::new();
        TOKEN.get_or_init(|| {
            assert!(
                Path::new(LIBRARY).exists(),
                "{LIBRARY} missing: install SoftHSM2 (apt-get install softhsm2)"
            );
            sweep_stale_dirs();
            let dir = tempfile::Builder::new()
                .prefix(DIR_PREFIX)
                .tempdir()
                .expect("temp dir");
            std::fs::write(dir.path().join("pid"), std::process::id().to_string()).unwrap();
            for label in TOKENS {
                init_script(dir.path(), &[label]);
            }
            init_script(
                dir.path(),
                &[
                    "fixture",
                    "--import",
                    &manifest_path(FIXTURE_KEY),
                    "--key-label",
                    "gov1",
                ],
            );
            let conf = dir.path().join("softhsm2.conf");
            let module = Module::load(&ModuleSettings {
                library: LIBRARY.into(),
                env: vec![("SOFTHSM2_CONF".into(), conf.display().to_string())],
                mechanism: None,
            })
            .expect("load SoftHSM2");
            TestToken { dir, module }
        })
    }

    const DIR_PREFIX: &str = "brama-softhsm-";

    /// Statics are never dropped, so every test process leaves its token directory behind:
    /// remove those of processes that have exited.
    fn sweep_stale_dirs() {
        let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
            return;
        };
        for path in entries.flatten().map(|e| e.path()) {
            let ours = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(DIR_PREFIX));
            let pid = std::fs::read_to_string(path.join("pid")).unwrap_or_default();
            if ours && !pid.is_empty() && !Path::new("/proc").join(pid.trim()).exists() {
                let _ = std::fs::remove_dir_all(&path);
            }
        }
    }

    fn manifest_path(rel: &str) -> String {
        format!("{}/../../{rel}", env!("CARGO_MANIFEST_DIR"))
    }

    fn init_script(dir: &Path, args: &[&str]) {
        let script = manifest_path("scripts/softhsm-init.sh");
        let out = Command::new("bash")
            .arg(&script)
            .arg(dir)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {script}: {e}"));
        assert!(
            out.status.success(),
            "{script} {args:?} failed (is softhsm2-util installed? apt-get install softhsm2):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("export SOFTHSM2_CONF="));
    }

    fn token(label: &str) -> TokenRef {
        TokenRef {
            label: Some(label.into()),
            serial: None,
        }
    }

    fn key(token_label: &str, key: KeyRef, mechanism: Option<&str>) -> Pkcs11Key {
        let module = test_token().module.clone();
        Pkcs11Key::new(
            module,
            token(token_label),
            key,
            PIN.into(),
            mechanism.map(Into::into),
        )
        .expect("open key")
    }

    /// Verifies a `KeySession::sign` result with ring (through webpki) against an SPKI.
    fn verify(alg: SignatureAlgorithm, spki: &[u8], data: &[u8], signature: &[u8]) {
        use webpki::ring as algs;
        let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(spki).expect("SPKI");
        let (verifier, signature): (&dyn SignatureVerificationAlgorithm, Vec<u8>) = match alg {
            SignatureAlgorithm::RsaSha256 => (algs::RSA_PKCS1_2048_8192_SHA256, signature.to_vec()),
            SignatureAlgorithm::RsaSha512 => (algs::RSA_PKCS1_2048_8192_SHA512, signature.to_vec()),
            SignatureAlgorithm::EcdsaSha256 => {
                assert_eq!(signature.len(), 64, "raw r‖s");
                (algs::ECDSA_P256_SHA256, ecdsa_raw_to_der(signature))
            }
            SignatureAlgorithm::EcdsaSha384 => {
                assert_eq!(signature.len(), 64, "raw r‖s");
                (algs::ECDSA_P256_SHA384, ecdsa_raw_to_der(signature))
            }
            other => panic!("no verifier for {other:?}"),
        };
        verifier
            .verify_signature(&spki.subject_public_key.data, data, &signature)
            .unwrap_or_else(|_| panic!("{alg:?} signature does not verify"));
    }

    use x509_parser::prelude::FromDer;

    fn sign_and_verify(source: &Pkcs11Key, spki: &[u8], alg: SignatureAlgorithm) {
        let mut session = source.open().expect("open session");
        let data = format!("<SignedInfo>{alg:?}</SignedInfo>");
        let signature = session.sign(alg, data.as_bytes()).expect("sign");
        verify(alg, spki, data.as_bytes(), &signature);
    }

    #[test]
    fn lists_tokens_by_label() {
        assert!(test_token().dir.path().join("softhsm2.conf").exists());
        let tokens = test_token().module.tokens().unwrap();
        for label in TOKENS {
            let t = tokens.iter().find(|t| t.label == *label).expect(label);
            assert!(!t.serial.is_empty());
            assert_eq!(t.model, "SoftHSM v2");
        }
        // By serial alone, too.
        let fixture = tokens.iter().find(|t| t.label == "fixture").unwrap();
        let by_serial = TokenRef {
            label: None,
            serial: Some(fixture.serial.clone()),
        };
        let keys = list_keys(&test_token().module, &by_serial, PIN).unwrap();
        assert_eq!(keys[0].label, "gov1");
    }

    #[test]
    fn rsa_generate_list_sign_verify() {
        let module = &test_token().module;
        let info = generate_key(module, &token("rsa"), PIN, "sign-rsa", KeyType::Rsa).unwrap();
        assert_eq!(info.id.len(), 20);
        let keys = list_keys(module, &token("rsa"), PIN).unwrap();
        assert_eq!(keys, vec![info.clone()]);
        assert!(!keys[0].has_cert);

        let err = generate_key(module, &token("rsa"), PIN, "sign-rsa", KeyType::Rsa).unwrap_err();
        assert!(
            !err.retry_elsewhere && err.message.contains("already"),
            "{err}"
        );

        let key_ref = KeyRef::Label("sign-rsa".into());
        let spki = public_key_der(module, &token("rsa"), PIN, &key_ref).unwrap();
        let source = key("rsa", key_ref.clone(), None);
        assert_eq!(source.key_type(), KeyType::Rsa);
        sign_and_verify(&source, &spki, SignatureAlgorithm::RsaSha512);
        sign_and_verify(&source, &spki, SignatureAlgorithm::RsaSha256);
        let err = source
            .open()
            .unwrap()
            .sign(SignatureAlgorithm::EcdsaSha256, b"x")
            .unwrap_err();
        assert!(!err.retry_elsewhere);

        // The token hashes with CKM_SHA512_RSA_PKCS: same signature scheme, other algs refused.
        let hashing = key("rsa", key_ref.clone(), Some("CKM_SHA512_RSA_PKCS"));
        sign_and_verify(&hashing, &spki, SignatureAlgorithm::RsaSha512);
        let err = hashing
            .open()
            .unwrap()
            .sign(SignatureAlgorithm::RsaSha256, b"x")
            .unwrap_err();
        assert!(!err.retry_elsewhere, "{err}");

        let err = Pkcs11Key::new(
            module.clone(),
            token("rsa"),
            key_ref,
            PIN.into(),
            Some("CKM_ECDSA".into()),
        )
        .unwrap_err();
        assert!(
            !err.retry_elsewhere && err.message.contains("CKM_ECDSA"),
            "{err}"
        );
    }

    #[test]
    fn ec_generate_sign_verify() {
        let module = &test_token().module;
        let info = generate_key(module, &token("ec"), PIN, "sign-ec", KeyType::EcP256).unwrap();
        assert_eq!(info.key_type, KeyType::EcP256);
        let key_ref = KeyRef::Label("sign-ec".into());
        let spki = public_key_der(module, &token("ec"), PIN, &key_ref).unwrap();
        let source = key("ec", key_ref.clone(), None);
        assert_eq!(source.key_type(), KeyType::EcP256);
        sign_and_verify(&source, &spki, SignatureAlgorithm::EcdsaSha256);
        sign_and_verify(&source, &spki, SignatureAlgorithm::EcdsaSha384);

        // SoftHSM 2.6 has no CKM_ECDSA_SHA256; newer releases may.
        let hashing = key("ec", key_ref, Some("CKM_ECDSA_SHA256"));
        let slot = module.find_slot(&token("ec")).unwrap();
        let mechanisms = module.ctx.get_mechanism_list(slot).unwrap();
        if mechanisms.contains(&cryptoki::mechanism::MechanismType::ECDSA_SHA256) {
            sign_and_verify(&hashing, &spki, SignatureAlgorithm::EcdsaSha256);
        } else {
            let mut session = hashing.open().unwrap();
            let err = session
                .sign(SignatureAlgorithm::EcdsaSha256, b"x")
                .unwrap_err();
            assert!(
                !err.retry_elsewhere && err.message.contains("MechanismInvalid"),
                "{err}"
            );
        }
    }

    #[test]
    fn csr_and_certificate_round_trip() {
        let module = &test_token().module;
        let t = token("csr");
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::default();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let subject: Vec<(String, String)> = [
            ("C", "UA"),
            ("O", "Test Org"),
            ("serialNumber", "SEVDEIR-TEST/ss1/GOV"),
            ("CN", "00000001"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();

        for (label, key_type) in [("csr-ec", KeyType::EcP256), ("csr-rsa", KeyType::Rsa)] {
            generate_key(module, &t, PIN, label, key_type).unwrap();
            let key_ref = KeyRef::Label(label.into());
            let spki = public_key_der(module, &t, PIN, &key_ref).unwrap();
            assert_eq!(read_cert(module, &t, PIN, &key_ref).unwrap(), None);

            let pem = csr_pem(module, &t, PIN, &key_ref, &subject).unwrap();
            assert!(
                pem.starts_with("-----BEGIN CERTIFICATE REQUEST-----"),
                "{pem}"
            );
            // rcgen checks the CSR's signature with ring as it parses it.
            let csr = rcgen::CertificateSigningRequestParams::from_pem(&pem).unwrap();
            let der = x509_parser::pem::parse_x509_pem(pem.as_bytes())
                .unwrap()
                .1
                .contents;
            let (_, parsed) =
                x509_parser::certification_request::X509CertificationRequest::from_der(&der)
                    .unwrap();
            assert_eq!(parsed.certification_request_info.subject_pki.raw, &spki[..]);
            assert_eq!(
                parsed.certification_request_info.subject.to_string(),
                "C=UA, O=Test Org, serialNumber=SEVDEIR-TEST/ss1/GOV, CN=00000001"
            );

            let cert = csr.signed_by(&ca, &ca_key).unwrap();
            let info = import_cert(module, &t, PIN, cert.der()).unwrap();
            assert_eq!(info.label, label);
            assert!(info.has_cert);
            assert_eq!(
                info.cert_subject.as_deref(),
                Some("C=UA, O=Test Org, serialNumber=SEVDEIR-TEST/ss1/GOV, CN=00000001")
            );
            let stored = read_cert(module, &t, PIN, &key_ref).unwrap();
            assert_eq!(stored.as_deref(), Some(&cert.der()[..]));
            let by_id = read_cert(module, &t, PIN, &KeyRef::Id(info.id.clone())).unwrap();
            assert_eq!(by_id, stored);

            // Importing again replaces rather than piles up.
            import_cert(module, &t, PIN, cert.der()).unwrap();
            let session = module.login(&t, &AuthPin::new(PIN.into()), false).unwrap();
            let certs = session
                .find_objects(&[
                    Attribute::Class(ObjectClass::CERTIFICATE),
                    Attribute::Id(info.id.clone()),
                ])
                .unwrap();
            assert_eq!(certs.len(), 1);
        }
        let keys = list_keys(module, &t, PIN).unwrap();
        assert_eq!(keys.len(), 2);
        assert!(keys.iter().all(|k| k.has_cert));

        // No key on the token matches the CA's own certificate.
        let err = import_cert(module, &t, PIN, ca.der()).unwrap_err();
        assert!(
            !err.retry_elsewhere && err.message.contains("no key"),
            "{err}"
        );
    }

    #[test]
    fn finds_keys_by_label_and_id() {
        let module = &test_token().module;
        let t = token("lookup");
        let a = generate_key(module, &t, PIN, "lookup-a", KeyType::EcP256).unwrap();
        let b = generate_key(module, &t, PIN, "lookup-b", KeyType::EcP256).unwrap();
        assert_ne!(a.id, b.id);
        let spki_a = public_key_der(module, &t, PIN, &KeyRef::Label("lookup-a".into())).unwrap();
        let spki_b = public_key_der(module, &t, PIN, &KeyRef::Id(b.id.clone())).unwrap();
        assert_ne!(spki_a, spki_b);
        let by_label = key("lookup", KeyRef::Label("lookup-b".into()), None);
        let by_id = key("lookup", KeyRef::Id(b.id.clone()), None);
        sign_and_verify(&by_label, &spki_b, SignatureAlgorithm::EcdsaSha256);
        sign_and_verify(&by_id, &spki_b, SignatureAlgorithm::EcdsaSha256);

        assert!(by_label.describe().contains("libsofthsm2.so"));
        assert!(by_label.describe().contains("lookup-b"));
        let debug = format!("{by_label:?}");
        assert!(
            !debug.contains(PIN) && debug.contains("REDACTED"),
            "{debug}"
        );

        let missing = |key_ref: KeyRef, token_ref: TokenRef| {
            Pkcs11Key::new(module.clone(), token_ref, key_ref, PIN.into(), None).unwrap_err()
        };
        let err = missing(KeyRef::Label("nope".into()), t.clone());
        assert!(
            !err.retry_elsewhere && err.message.contains("not found"),
            "{err}"
        );
        let err = missing(KeyRef::Id(vec![1, 2, 3]), t.clone());
        assert!(!err.retry_elsewhere, "{err}");
        let err = missing(KeyRef::Label("lookup-a".into()), token("no-such-token"));
        assert!(
            !err.retry_elsewhere && err.message.contains("not found"),
            "{err}"
        );
    }

    #[test]
    fn wrong_pin_is_permanent() {
        // Nothing else logs in to this token: a logged-in token accepts any PIN.
        let module = &test_token().module;
        let t = token("wrongpin");
        let err = list_keys(module, &t, "0000").unwrap_err();
        assert!(!err.retry_elsewhere, "{err}");
        assert!(err.message.contains("PinIncorrect"), "{err}");
        assert!(!err.message.contains("0000"));
        let err = Pkcs11Key::new(
            module.clone(),
            t.clone(),
            KeyRef::Label("k".into()),
            "0000".into(),
            None,
        )
        .unwrap_err();
        assert!(
            !err.retry_elsewhere && err.message.contains("PinIncorrect"),
            "{err}"
        );
        assert_eq!(list_keys(module, &t, PIN).unwrap(), vec![]);
    }

    #[test]
    fn killed_session_fails_transiently_and_a_new_one_works() {
        let module = &test_token().module;
        generate_key(module, &token("kill"), PIN, "kill", KeyType::EcP256).unwrap();
        let key_ref = KeyRef::Label("kill".into());
        let spki = public_key_der(module, &token("kill"), PIN, &key_ref).unwrap();
        let source = key("kill", key_ref, None);
        let mut victim = source.open().unwrap();
        let mut other = source.open().unwrap();
        let alg = SignatureAlgorithm::EcdsaSha256;
        victim.sign(alg, b"before").unwrap();

        victim.kill();
        let err = victim.sign(alg, b"after").unwrap_err();
        assert!(err.retry_elsewhere, "{err}");
        victim.kill(); // twice is harmless

        // The other session stays logged in and working.
        let sig = other.sign(alg, b"after").unwrap();
        verify(alg, &spki, b"after", &sig);
        sign_and_verify(&source, &spki, alg);

        // Once every session is gone the token logs out; a new session logs in again.
        drop(other);
        drop(victim);
        sign_and_verify(&source, &spki, alg);
    }

    #[test]
    fn sessions_sign_in_parallel() {
        let module = &test_token().module;
        let t = token("parallel");
        generate_key(module, &t, PIN, "par-ec", KeyType::EcP256).unwrap();
        generate_key(module, &t, PIN, "par-rsa", KeyType::Rsa).unwrap();
        let mut threads = Vec::new();
        for (i, (label, alg)) in [
            ("par-ec", SignatureAlgorithm::EcdsaSha256),
            ("par-rsa", SignatureAlgorithm::RsaSha512),
        ]
        .into_iter()
        .cycle()
        .take(8)
        .enumerate()
        {
            let key_ref = KeyRef::Label(label.into());
            let spki = public_key_der(module, &t, PIN, &key_ref).unwrap();
            let source = Arc::new(key("parallel", key_ref, None));
            threads.push(std::thread::spawn(move || {
                let mut session = source.open().unwrap();
                for n in 0..20 {
                    let data = format!("thread {i} message {n}");
                    let sig = session.sign(alg, data.as_bytes()).unwrap();
                    verify(alg, &spki, data.as_bytes(), &sig);
                }
            }));
        }
        for thread in threads {
            thread.join().unwrap();
        }
    }

    #[test]
    fn fixture_key_imported_by_script() {
        let module = &test_token().module;
        let t = token("fixture");
        let pem = std::fs::read(manifest_path(FIXTURE_CERT)).unwrap();
        let cert_der = x509_parser::pem::parse_x509_pem(&pem).unwrap().1.contents;
        let (_, cert) = x509_parser::parse_x509_certificate(&cert_der).unwrap();
        let cert_spki = cert.public_key().raw.to_vec();

        let key_ref = KeyRef::Label("gov1".into());
        assert_eq!(
            public_key_der(module, &t, PIN, &key_ref).unwrap(),
            cert_spki
        );
        let source = key("fixture", key_ref.clone(), None);
        sign_and_verify(&source, &cert_spki, SignatureAlgorithm::EcdsaSha256);

        let info = import_cert(module, &t, PIN, &cert_der).unwrap();
        assert_eq!(info.label, "gov1");
        assert_eq!(info.cert_subject, Some(cert.subject().to_string()));
        let stored = read_cert(module, &t, PIN, &KeyRef::Id(info.id)).unwrap();
        assert_eq!(stored, Some(cert_der.clone()));
    }

    #[test]
    fn module_loads_once_per_library() {
        let module = &test_token().module;
        let again = Module::load(module.settings()).unwrap();
        assert!(Arc::ptr_eq(module, &again));
        let mut other = module.settings().clone();
        other.mechanism = Some("CKM_RSA_PKCS".into());
        assert!(Arc::ptr_eq(module, &Module::load(&other).unwrap()));
        other
            .env
            .push(("PKCS11_PROXY_SOCKET".into(), "tcp://x".into()));
        assert!(Module::load(&other).is_err());
        let missing = ModuleSettings {
            library: "/nonexistent/libpkcs11.so".into(),
            env: vec![],
            mechanism: None,
        };
        assert!(!Module::load(&missing).unwrap_err().retry_elsewhere);
    }

    #[test]
    fn der_helpers() {
        // r with a high bit (gets a 0x00 pad in DER), s with leading zeros (shorter in DER).
        let mut raw = vec![0x80; 32];
        raw.extend([0, 0, 1].iter().chain(&[7u8; 29]));
        let der = ecdsa_raw_to_der(&raw);
        assert_eq!(&der[..4], &[0x30, 0x43, 0x02, 0x21]);
        assert_eq!(ecdsa_der_to_raw(&der, 32), Some(raw.clone()));
        assert_eq!(ecdsa_der_to_raw(&der[..der.len() - 1], 32), None);
        assert_eq!(ecdsa_der_to_raw(&[der.clone(), vec![0]].concat(), 32), None);

        let point = [&[0x04][..], &[9u8; 64]].concat();
        assert_eq!(ec_point(&point), Some(point.clone()));
        assert_eq!(ec_point(&tlv(0x04, &point)), Some(point.clone()));
        assert_eq!(ec_point(&point[..33]), None);

        assert_eq!(tlv(0x04, &[0; 300])[..4], [0x04, 0x82, 0x01, 0x2c]);
        assert_eq!(der_uint(&[0, 0]), vec![0x02, 0x01, 0x00]);

        assert_eq!(SignMech::parse("ckm_ecdsa").unwrap(), SignMech::Ecdsa);
        assert!(SignMech::parse("CKM_RSA_PKCS_PSS").is_err());
        assert_eq!(
            SignMech::choose(None, KeyType::Rsa).unwrap(),
            SignMech::RsaPkcs
        );
    }
}
