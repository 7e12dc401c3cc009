//! `CertID` and `OCSPRequest` (RFC 6960 §4.1): what a client asks a responder, and what a
//! responder reads back out of a request.

use x509_parser::certificate::X509Certificate;

use crate::der::{self, Der};

/// `AlgorithmIdentifier { sha1, NULL }`: the only CertID hash X-Road compares against (a SHA-256
/// CertID never matches, `OcspVerifier`).
pub const SHA1_ALGORITHM: &[u8] = &[
    0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00,
];

/// Most certificates one request may ask about: a chain is a few certificates.
const MAX_REQUESTED: usize = 32;

/// SHA-1, as OCSP names certificates and keys (CertID, ResponderID by key, X-Road's 5577
/// `cert=`).
pub fn sha1(data: &[u8]) -> [u8; 20] {
    let d = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, data);
    let mut out = [0u8; 20];
    out.copy_from_slice(d.as_ref());
    out
}

/// The SHA-1 `CertID` (whole TLV) of `subject` issued by `issuer`: the issuer's name as the
/// subject certificate states it, the issuer's key bits, the subject's serial.
pub fn cert_id(subject: &X509Certificate<'_>, issuer: &X509Certificate<'_>) -> Vec<u8> {
    let name_hash = sha1(subject.issuer().as_raw());
    let key_hash = sha1(&issuer.public_key().subject_public_key.data);
    let content = [
        SHA1_ALGORITHM,
        &der::tlv(0x04, &name_hash),
        &der::tlv(0x04, &key_hash),
        &der::tlv(0x02, subject.raw_serial()),
    ]
    .concat();
    der::tlv(0x30, &content)
}

/// An `OCSPRequest` for `cert_ids` (whole CertID TLVs): unsigned, no nonce, as X-Road asks.
pub fn request(cert_ids: &[Vec<u8>]) -> Vec<u8> {
    let list: Vec<u8> = cert_ids.iter().flat_map(|id| der::tlv(0x30, id)).collect();
    let tbs = der::tlv(0x30, &der::tlv(0x30, &list));
    der::tlv(0x30, &tbs)
}

/// The CertIDs (whole TLVs) an `OCSPRequest` asks about. Extensions and an optional signature
/// are skipped; more than a chain's worth of certificates is refused.
pub fn parse_request(der_bytes: &[u8]) -> Result<Vec<&[u8]>, String> {
    let bad = |what: &str| format!("not an OCSP request: {what}");
    let mut outer = Der(der_bytes);
    let request = outer.expect(0x30).ok_or_else(|| bad("no OCSPRequest"))?;
    if !outer.is_empty() {
        return Err(bad("bytes after the request"));
    }
    let mut request = Der(request);
    let mut tbs = Der(request.expect(0x30).ok_or_else(|| bad("no tbsRequest"))?);
    tbs.optional(0xa0); // version
    tbs.optional(0xa1); // requestorName
    let mut list = Der(tbs.expect(0x30).ok_or_else(|| bad("no requestList"))?);
    let mut ids = Vec::new();
    while !list.is_empty() {
        if ids.len() == MAX_REQUESTED {
            return Err(bad("more than 32 certificates"));
        }
        let mut one = Der(list
            .expect(0x30)
            .ok_or_else(|| bad("a Request is not a SEQUENCE"))?);
        let id = one.raw().ok_or_else(|| bad("no reqCert"))?;
        CertIdFields::parse(id).ok_or_else(|| bad("a reqCert is not a CertID"))?;
        ids.push(id);
    }
    if ids.is_empty() {
        return Err(bad("no certificate asked about"));
    }
    Ok(ids)
}

/// A CertID's fields, borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CertIdFields<'a> {
    /// The hash `AlgorithmIdentifier`, whole.
    pub hash_algorithm: &'a [u8],
    pub issuer_name_hash: &'a [u8],
    pub issuer_key_hash: &'a [u8],
    /// The INTEGER's content bytes.
    pub serial: &'a [u8],
}

impl<'a> CertIdFields<'a> {
    /// Reads a whole CertID TLV.
    pub fn parse(tlv: &'a [u8]) -> Option<CertIdFields<'a>> {
        let mut outer = Der(tlv);
        let mut d = Der(outer.expect(0x30)?);
        let fields = CertIdFields {
            hash_algorithm: d.raw()?,
            issuer_name_hash: d.expect(0x04)?,
            issuer_key_hash: d.expect(0x04)?,
            serial: d.expect(0x02)?,
        };
        (d.is_empty() && outer.is_empty()).then_some(fields)
    }
}
