//! Key administration for `brama keys list|generate|csr|import-cert`.

use super::*;

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

pub(super) fn key_info(
    session: &Session,
    handle: ObjectHandle,
) -> Result<Option<KeyInfo>, TokenError> {
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
pub(super) fn find_cert(
    session: &Session,
    id: &[u8],
) -> Result<Option<(ObjectHandle, Vec<u8>)>, TokenError> {
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
pub(super) enum PublicKey {
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
pub(super) fn public_key_of(
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
pub(super) struct RemoteKey {
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
        session: Mutex::new(Pkcs11Session::new(session, handle, key_type, mechanism)),
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

pub(super) fn distinguished_name(
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
#[cfg(test)]
pub(crate) fn read_cert(
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
