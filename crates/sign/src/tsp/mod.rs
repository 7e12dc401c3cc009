//! RFC 3161 time-stamps (reference §6.3): the request brama sends a TSA, the TSA's reply and its
//! token, read by borrowing from their bytes, and X-Road's check of a token
//! (`TimestampVerifier`): the imprint over the stamped data, the TSA certificate found by the
//! token's signer id **among the global configuration's approved TSAs only** (certificates in the
//! token are not trusted), the signed attributes' message digest and signature, and the
//! certificate valid at the signing time. A reply is also checked against its request (status,
//! imprint, nonce), as X-Road's `TimeStampResponse.validate` does.
//!
//! Tokens are BER: TSAs write indefinite lengths (X-Road's 2012 EJBCA vectors do), so the outer
//! layers are read with `ber_read`, which stays linear in its input.

use crate::der::{der_read, generalized_time};
use crate::digest::DigestAlgorithm;
use crate::error::SignError;
use crate::scheme::{self, EcdsaForm, Hash, Scheme};
use brama_xroad::error::ErrorCode;

#[cfg(test)]
mod tests;

/// `Content-Type` of a request and of a reply.
pub const CT_QUERY: &str = "application/timestamp-query";
pub const CT_REPLY: &str = "application/timestamp-reply";
/// Largest reply accepted (real ones are 2–6 KiB).
pub const MAX_REPLY_BYTES: usize = 64 * 1024;
/// Most certificates a token may carry, and nesting a BER value may have.
const MAX_CERTS: usize = 8;
const MAX_DEPTH: usize = 16;

pub const OID_SIGNED_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02];
pub const OID_TST_INFO: &[u8] = &[
    0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x01, 0x04,
];
pub const OID_MESSAGE_DIGEST: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x04];
pub const OID_SIGNING_TIME: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x05];
const OID_RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];

/// A `TimeStampReq` over `digest` (made with `alg`): version 1, no policy, the nonce if given,
/// `certReq` as asked. X-Road sends neither a nonce nor `certReq`; brama sends a nonce, so a
/// replayed reply is refused.
pub fn request(alg: DigestAlgorithm, digest: &[u8], nonce: Option<u64>, cert_req: bool) -> Vec<u8> {
    use crate::der::{der_uint, tlv};
    let mut body = tlv(0x02, &[1]);
    body.extend(message_imprint(alg, digest));
    if let Some(n) = nonce {
        body.extend(der_uint(&n.to_be_bytes()));
    }
    if cert_req {
        body.extend(tlv(0x01, &[0xff]));
    }
    tlv(0x30, &body)
}

/// `MessageImprint` DER: the digest's `AlgorithmIdentifier` (with NULL parameters, as TSAs
/// write it) and the digest.
pub fn message_imprint(alg: DigestAlgorithm, digest: &[u8]) -> Vec<u8> {
    use crate::der::tlv;
    let n = match alg {
        DigestAlgorithm::Sha256 => 1,
        DigestAlgorithm::Sha384 => 2,
        DigestAlgorithm::Sha512 => 3,
    };
    let oid = [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, n];
    let alg_id = tlv(0x30, &[tlv(0x06, &oid), vec![0x05, 0x00]].concat());
    tlv(0x30, &[alg_id, tlv(0x04, digest)].concat())
}

/// A `TimeStampReq` as a TSA reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    /// The `MessageImprint`, whole (a token repeats it).
    pub imprint: &'a [u8],
    /// The nonce INTEGER's content.
    pub nonce: Option<&'a [u8]>,
    pub cert_req: bool,
}

/// Reads a `TimeStampReq` (DER): version 1 and a SHA-2 imprint of the right length.
pub fn parse_request(bytes: &[u8]) -> Result<Request<'_>, String> {
    let bad = || "not a TimeStampReq".to_string();
    let (0x30, body, []) = der_read(bytes).ok_or_else(bad)? else {
        return Err(bad());
    };
    let mut d = crate::der::Der(body);
    if d.expect(0x02) != Some(&[1][..]) {
        return Err("not a version 1 TimeStampReq".into());
    }
    let imprint = d.raw().ok_or_else(bad)?;
    let (0x30, fields, _) = der_read(imprint).ok_or_else(bad)? else {
        return Err(bad());
    };
    let mut f = crate::der::Der(fields);
    let hash = f
        .expect(0x30)
        .and_then(crate::scheme::hash_of_algorithm)
        .ok_or("not a SHA-2 imprint")?;
    let digest = f.expect(0x04).ok_or_else(bad)?;
    if hash == Hash::Sha1 || digest.len() != hash.output_len() {
        return Err("the imprint is not a SHA-2 digest of its length".into());
    }
    d.optional(0x06); // reqPolicy
    let nonce = d.optional(0x02);
    let cert_req = d.optional(0x01).is_some_and(|b| b != [0]);
    Ok(Request {
        imprint,
        nonce,
        cert_req,
    })
}

/// What a token says, borrowed from its bytes.
#[derive(Clone, Debug)]
pub struct Token<'a> {
    /// The `TSTInfo` DER (the signed content).
    pub tst_info: &'a [u8],
    /// The TSA's policy OID (content bytes).
    pub policy: &'a [u8],
    pub imprint_hash: Hash,
    pub imprint: &'a [u8],
    /// The token's serial number (content bytes of the INTEGER).
    pub serial: &'a [u8],
    /// `genTime`, Unix seconds.
    pub gen_time: i64,
    pub nonce: Option<&'a [u8]>,
    /// Certificates the token carries (not trusted; the TSA's comes from the configuration).
    pub certs: Vec<&'a [u8]>,
    signer: SignerInfo<'a>,
}

#[derive(Clone, Debug)]
struct SignerInfo<'a> {
    sid: SignerId<'a>,
    digest: Hash,
    /// The `[0]` signed attributes' content: what the signature covers, as a SET.
    signed_attrs: &'a [u8],
    message_digest: &'a [u8],
    /// The `signingTime` attribute, when present (Unix seconds).
    signing_time: Option<i64>,
    /// `signatureAlgorithm` content.
    signature_algorithm: &'a [u8],
    signature: &'a [u8],
}

#[derive(Clone, Copy, Debug)]
enum SignerId<'a> {
    /// The issuer's `Name` (whole TLV) and the serial (INTEGER content).
    IssuerSerial(&'a [u8], &'a [u8]),
    /// `subjectKeyIdentifier`.
    KeyId(&'a [u8]),
}

/// Splits one BER value off `input`: (tag, content, rest). Definite lengths as DER; an
/// indefinite length (`0x80`) runs to its end-of-contents octets, found by reading the values
/// inside (at most [`MAX_DEPTH`] deep).
pub(crate) fn ber_read(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    ber_read_at(input, 0)
}

fn ber_read_at(input: &[u8], depth: usize) -> Option<(u8, &[u8], &[u8])> {
    match input {
        [tag, 0x80, rest @ ..] if tag & 0x20 != 0 => {
            if depth >= MAX_DEPTH {
                return None;
            }
            let mut inner = rest;
            loop {
                if let [0, 0, after @ ..] = inner {
                    let len = rest.len() - inner.len();
                    return Some((*tag, &rest[..len], after));
                }
                let (_, _, next) = ber_read_at(inner, depth + 1)?;
                inner = next;
            }
        }
        _ => der_read(input),
    }
}

/// Reads values in order from a BER constructed value's content.
#[derive(Clone, Copy)]
struct Ber<'a>(&'a [u8]);

impl<'a> Ber<'a> {
    fn any(&mut self) -> Option<(u8, &'a [u8])> {
        let (tag, content, rest) = ber_read(self.0)?;
        self.0 = rest;
        Some((tag, content))
    }

    fn expect(&mut self, tag: u8) -> Option<&'a [u8]> {
        match ber_read(self.0)? {
            (t, content, rest) if t == tag => {
                self.0 = rest;
                Some(content)
            }
            _ => None,
        }
    }

    fn optional(&mut self, tag: u8) -> Option<&'a [u8]> {
        match ber_read(self.0) {
            Some((t, content, rest)) if t == tag => {
                self.0 = rest;
                Some(content)
            }
            _ => None,
        }
    }

    /// The next value whole, header included.
    fn raw(&mut self) -> Option<&'a [u8]> {
        let (_, _, rest) = ber_read(self.0)?;
        let whole = &self.0[..self.0.len() - rest.len()];
        self.0 = rest;
        Some(whole)
    }

    /// The content of an OCTET STRING, which BER may write in pieces: only one piece is
    /// accepted (TSAs write one).
    fn octets(&mut self) -> Option<&'a [u8]> {
        match self.any()? {
            (0x04, c) => Some(c),
            (0x24, c) => {
                let mut pieces = Ber(c);
                let one = pieces.expect(0x04)?;
                pieces.0.is_empty().then_some(one)
            }
            _ => None,
        }
    }
}

/// The reply's token, when the TSA granted the request (`granted`, `grantedWithMods`); a
/// refusal is an error quoting its status and text.
pub fn parse_reply(bytes: &[u8]) -> Result<&[u8], String> {
    if bytes.len() > MAX_REPLY_BYTES {
        return Err(format!("the reply is larger than {MAX_REPLY_BYTES} bytes"));
    }
    let bad = || "the reply is not a TimeStampResp".to_string();
    let (0x30, content, _) = ber_read(bytes).ok_or_else(bad)? else {
        return Err(bad());
    };
    let mut resp = Ber(content);
    let mut status_info = Ber(resp.expect(0x30).ok_or_else(bad)?);
    let status = match status_info.expect(0x02).ok_or_else(bad)? {
        [s] => *s,
        _ => return Err(bad()),
    };
    if status > 1 {
        // statusString: a SEQUENCE of UTF8Strings.
        let text = status_info
            .optional(0x30)
            .and_then(|s| Ber(s).expect(0x0c))
            .map(|t| format!(": {}", String::from_utf8_lossy(t).escape_debug()))
            .unwrap_or_default();
        return Err(format!(
            "the TSA refused the request (status {status}){text}"
        ));
    }
    let token = resp.raw().ok_or("a granted reply without a token")?;
    Ok(token)
}

/// Reads a `TimeStampToken` (a CMS `ContentInfo` with `SignedData` over a `TSTInfo`).
pub fn parse_token(bytes: &[u8]) -> Result<Token<'_>, String> {
    if bytes.len() > MAX_REPLY_BYTES {
        return Err(format!("the token is larger than {MAX_REPLY_BYTES} bytes"));
    }
    token(bytes).ok_or_else(|| "the time-stamp token does not parse".to_string())
}

fn token(bytes: &[u8]) -> Option<Token<'_>> {
    let (0x30, content_info, _) = ber_read(bytes)? else {
        return None;
    };
    let mut ci = Ber(content_info);
    if ci.expect(0x06)? != OID_SIGNED_DATA {
        return None;
    }
    let mut explicit = Ber(ci.expect(0xa0)?);
    let mut sd = Ber(explicit.expect(0x30)?);
    sd.expect(0x02)?; // version
    sd.expect(0x31)?; // digestAlgorithms
    let mut encap = Ber(sd.expect(0x30)?);
    if encap.expect(0x06)? != OID_TST_INFO {
        return None;
    }
    let tst_info = Ber(encap.expect(0xa0)?).octets()?;
    let mut certs = Vec::new();
    if let Some(set) = sd.optional(0xa0) {
        let mut set = Ber(set);
        while !set.0.is_empty() {
            let cert = set.raw()?;
            if cert.first() == Some(&0x30) && certs.len() < MAX_CERTS {
                certs.push(cert);
            }
        }
    }
    sd.optional(0xa1); // crls
    let mut signer_infos = Ber(sd.expect(0x31)?);
    let signer = signer_info(signer_infos.expect(0x30)?)?;

    // TSTInfo is DER (RFC 3161 §2.4.2).
    let (0x30, tst, _) = der_read(tst_info)? else {
        return None;
    };
    let mut t = crate::der::Der(tst);
    t.expect(0x02)?; // version
    let policy = t.expect(0x06)?;
    let mut imprint = crate::der::Der(t.expect(0x30)?);
    let imprint_hash = crate::scheme::hash_of_algorithm(imprint.expect(0x30)?)?;
    let imprint = imprint.expect(0x04)?;
    let serial = t.expect(0x02)?;
    let gen_time = generalized_time(t.expect(0x18)?)?;
    t.optional(0x30); // accuracy
    t.optional(0x01); // ordering
    let nonce = t.optional(0x02);
    Some(Token {
        tst_info,
        policy,
        imprint_hash,
        imprint,
        serial,
        gen_time,
        nonce,
        certs,
        signer,
    })
}

fn signer_info(content: &[u8]) -> Option<SignerInfo<'_>> {
    let mut si = Ber(content);
    si.expect(0x02)?; // version
    let sid = match si.any()? {
        (0x30, c) => {
            let mut c = Ber(c);
            let issuer = c.raw()?;
            SignerId::IssuerSerial(issuer, c.expect(0x02)?)
        }
        (0x80, key_id) => SignerId::KeyId(key_id),
        _ => return None,
    };
    let digest = crate::scheme::hash_of_algorithm(si.expect(0x30)?)?;
    let signed_attrs = si.expect(0xa0)?;
    let signature_algorithm = si.expect(0x30)?;
    let signature = si.expect(0x04)?;
    let (mut message_digest, mut signing_time) = (None, None);
    let mut attrs = Ber(signed_attrs);
    while !attrs.0.is_empty() {
        let mut attr = Ber(attrs.expect(0x30)?);
        let oid = attr.expect(0x06)?;
        let mut values = Ber(attr.expect(0x31)?);
        match oid {
            OID_MESSAGE_DIGEST => message_digest = Some(values.expect(0x04)?),
            OID_SIGNING_TIME => {
                signing_time = match values.any()? {
                    (0x17, t) => utc_time(t),
                    (0x18, t) => generalized_time(t),
                    _ => None,
                }
            }
            _ => {}
        }
    }
    Some(SignerInfo {
        sid,
        digest,
        signed_attrs,
        message_digest: message_digest?,
        signing_time,
        signature_algorithm,
        signature,
    })
}

/// A UTCTime (`YYMMDDHHMMSSZ`; years 50–99 are 19xx) as Unix seconds.
fn utc_time(content: &[u8]) -> Option<i64> {
    let century: &[u8] = if content.first()? >= &b'5' {
        b"19"
    } else {
        b"20"
    };
    generalized_time(&[century, content].concat())
}

/// A token checked as X-Road checks it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stamped {
    /// `genTime`, Unix seconds: the time a logged signature and its OCSP are checked at.
    pub gen_time: i64,
    /// The approved TSA certificate that signed it (DER).
    pub tsa_cert: Vec<u8>,
}

fn malformed(m: String) -> SignError {
    SignError::new(ErrorCode::MalformedSignature, m)
}

fn invalid(m: String) -> SignError {
    SignError::new(ErrorCode::TimestampValidation, m)
}

/// Checks `token_der` over `data` against the approved TSAs' certificates (DER), in X-Road's
/// order: imprint (`MalformedSignature`), a TSA certificate to check with, the message digest
/// and signature over the signed attributes, and the certificate valid at the signing time
/// (`TimestampValidation`).
pub fn verify(token_der: &[u8], data: &[u8], tsa_certs: &[Vec<u8>]) -> Result<Stamped, SignError> {
    let token = parse_token(token_der).map_err(malformed)?;
    if token.imprint_hash.digest(data) != token.imprint {
        return Err(malformed(
            "the time-stamp's imprint does not match the stamped data".into(),
        ));
    }
    verify_signer(&token, tsa_certs)
}

/// The checks of [`verify`] after the imprint: who signed the token, and the signature.
pub fn verify_signer(token: &Token<'_>, tsa_certs: &[Vec<u8>]) -> Result<Stamped, SignError> {
    if tsa_certs.is_empty() {
        return Err(invalid(
            "no approved time-stamping authority is known".into(),
        ));
    }
    let signer = &token.signer;
    let (cert_der, cert) = tsa_certs
        .iter()
        .find_map(|der| {
            let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
            names(&signer.sid, &cert).then_some((der, cert))
        })
        .ok_or_else(|| {
            invalid("the time-stamp's signer is not an approved time-stamping authority".into())
        })?;
    if signer.digest.digest(token.tst_info) != signer.message_digest {
        return Err(invalid(
            "the time-stamp's message digest does not match its content".into(),
        ));
    }
    // The signature covers the attributes as a SET, not as the `[0]` they are written in.
    let signed = crate::der::tlv(0x31, signer.signed_attrs);
    let key = &cert.public_key().subject_public_key.data;
    let ok = match signature_scheme(signer) {
        Some(Scheme::RsaPkcs1(hash)) => rsa_pkcs1(hash, key, &signed, signer.signature),
        Some(s) => scheme::verify(s, key, &signed, signer.signature, EcdsaForm::Der),
        None => false,
    };
    if !ok {
        return Err(invalid(format!(
            "the time-stamp's signature does not verify with '{}'",
            cert.subject()
        )));
    }
    let at = signer.signing_time.unwrap_or(token.gen_time);
    let validity = cert.validity();
    if at < validity.not_before.timestamp() || at > validity.not_after.timestamp() {
        return Err(invalid(format!(
            "the time-stamping authority's certificate '{}' is not valid at the signing time",
            cert.subject()
        )));
    }
    Ok(Stamped {
        gen_time: token.gen_time,
        tsa_cert: cert_der.clone(),
    })
}

/// Checks a granted reply's token against the request it answers (X-Road's
/// `TimeStampResponse.validate`): the same imprint, the same nonce.
pub fn check_reply(
    token: &Token<'_>,
    alg: DigestAlgorithm,
    digest: &[u8],
    nonce: Option<u64>,
) -> Result<(), String> {
    let same_alg = matches!(
        (alg, token.imprint_hash),
        (DigestAlgorithm::Sha256, Hash::Sha256)
            | (DigestAlgorithm::Sha384, Hash::Sha384)
            | (DigestAlgorithm::Sha512, Hash::Sha512)
    );
    if !same_alg || token.imprint != digest {
        return Err("the reply's imprint is not the request's".into());
    }
    let want = nonce.map(|n| crate::der::der_uint(&n.to_be_bytes()));
    let got = token.nonce.map(|n| crate::der::tlv(0x02, n));
    if want != got {
        return Err("the reply's nonce is not the request's".into());
    }
    Ok(())
}

fn names(sid: &SignerId<'_>, cert: &x509_parser::certificate::X509Certificate<'_>) -> bool {
    match sid {
        SignerId::IssuerSerial(issuer, serial) => {
            cert.issuer().as_raw() == *issuer && trim(cert.raw_serial()) == trim(serial)
        }
        SignerId::KeyId(id) => cert.extensions().iter().any(|e| {
            matches!(
                e.parsed_extension(),
                x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(k) if k.0 == *id
            )
        }),
    }
}

fn trim(int: &[u8]) -> &[u8] {
    let skip = int.iter().take_while(|b| **b == 0).count();
    &int[skip..]
}

/// CMS names the signature by the key's algorithm (`rsaEncryption`, `id-ecPublicKey`) with the
/// digest given apart, or by the combined algorithm.
fn signature_scheme(signer: &SignerInfo<'_>) -> Option<Scheme> {
    let (0x06, oid, _) = der_read(signer.signature_algorithm)? else {
        return None;
    };
    match oid {
        OID_RSA_ENCRYPTION => Some(Scheme::RsaPkcs1(signer.digest)),
        OID_EC_PUBLIC_KEY => Some(Scheme::Ecdsa(signer.digest)),
        _ => Scheme::from_algorithm_identifier(signer.signature_algorithm),
    }
}

/// RSA PKCS#1 v1.5 for time-stamps, 1024-bit keys included: TSAs of X-Road's era signed with
/// them, and archived records stay verifiable. Message signatures keep the 2048-bit floor.
fn rsa_pkcs1(hash: Hash, key: &[u8], message: &[u8], sig: &[u8]) -> bool {
    use ring::signature as rs;
    let alg: &'static rs::RsaParameters = match hash {
        Hash::Sha1 => &rs::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY,
        Hash::Sha256 => &rs::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
        Hash::Sha384 => &rs::RSA_PKCS1_2048_8192_SHA384,
        Hash::Sha512 => &rs::RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY,
    };
    rs::UnparsedPublicKey::new(alg, key)
        .verify(message, sig)
        .is_ok()
}
