//! Signing sessions: a key found on its token at every session open, logged in, and the
//! mechanism that signs with it.

use super::*;
use crate::digest::DigestAlgorithm;

/// The signing mechanisms brama drives. The plain ones sign a digest brama computes; the
/// `Sha*` ones hash on the token (for modules without raw `CKM_RSA_PKCS`/`CKM_ECDSA`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum SignMech {
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

    pub(super) fn parse(name: &str) -> Result<SignMech, TokenError> {
        let name = name.trim();
        SignMech::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| TokenError::permanent(format!("unsupported signing mechanism {name}")))
    }

    /// The override if any, else the raw mechanism for the key type; checks they fit together.
    pub(super) fn choose(name: Option<&str>, key_type: KeyType) -> Result<SignMech, TokenError> {
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

pub(super) fn alg_hash_bits(alg: SignatureAlgorithm) -> u16 {
    match alg.hash() {
        DigestAlgorithm::Sha256 => 256,
        DigestAlgorithm::Sha384 => 384,
        DigestAlgorithm::Sha512 => 512,
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
pub(super) struct Pkcs11Session {
    /// `None` once killed.
    session: Option<Session>,
    key: ObjectHandle,
    key_type: KeyType,
    mechanism: SignMech,
}

impl Pkcs11Session {
    pub(super) fn new(
        session: Session,
        key: ObjectHandle,
        key_type: KeyType,
        mechanism: SignMech,
    ) -> Self {
        Pkcs11Session {
            session: Some(session),
            key,
            key_type,
            mechanism,
        }
    }
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
pub(super) fn find_private_key(
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
pub(super) fn key_type_of(
    session: &Session,
    handle: ObjectHandle,
) -> Result<Option<KeyType>, TokenError> {
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
pub(super) fn bytes_attr(
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
