//! `OCSPResponse` / `BasicOCSPResponse` (RFC 6960 §4.2), read by borrowing from the received
//! DER. Only what X-Road's verifier looks at is kept: the first `SingleResponse` (X-Road looks at
//! `responses[0]` only), the responder, the signature and the certificates it carries.

use crate::der::{self, Der};

/// Largest response accepted anywhere (a transport part, a 5577 part, a responder's answer, a
/// cache file): real ones are 1–4 KiB.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// Most certificates a response may carry (real ones carry the responder's, perhaps its CA).
const MAX_CERTS: usize = 8;

/// id-pkix-ocsp-basic (1.3.6.1.5.5.7.48.1.1).
const OID_BASIC: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponderId<'a> {
    /// The responder's subject `Name`, whole TLV.
    ByName(&'a [u8]),
    /// SHA-1 of the responder's `subjectPublicKey` bits.
    ByKey(&'a [u8]),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertStatus {
    Good,
    Revoked {
        /// Unix seconds.
        time: i64,
        /// CRLReason, when given.
        reason: Option<u8>,
    },
    Unknown,
}

/// A successful response, borrowed from its DER.
#[derive(Clone, Debug)]
pub struct OcspResponse<'a> {
    /// `tbsResponseData`, whole: what the signature covers.
    pub tbs: &'a [u8],
    pub responder: ResponderId<'a>,
    /// Unix seconds.
    pub produced_at: i64,
    /// The first `SingleResponse`'s CertID, whole.
    pub cert_id: &'a [u8],
    pub status: CertStatus,
    pub this_update: i64,
    pub next_update: Option<i64>,
    /// The signature `AlgorithmIdentifier`'s content.
    pub signature_algorithm: &'a [u8],
    /// The BIT STRING's bits.
    pub signature: &'a [u8],
    /// Certificates (DER) the response carries.
    pub certs: Vec<&'a [u8]>,
}

/// Why a responder did not answer (`OCSPResponseStatus`).
fn status_name(status: u8) -> &'static str {
    match status {
        1 => "malformedRequest",
        2 => "internalError",
        3 => "tryLater",
        5 => "sigRequired",
        6 => "unauthorized",
        _ => "an unknown status",
    }
}

/// Reads an `OCSPResponse`. A responder's refusal (`tryLater`, `unauthorized`, …) is an error
/// naming it.
pub fn parse(bytes: &[u8]) -> Result<OcspResponse<'_>, String> {
    if bytes.len() > MAX_RESPONSE_BYTES {
        return Err(format!(
            "an OCSP response of {} bytes is more than the {MAX_RESPONSE_BYTES}-byte limit",
            bytes.len()
        ));
    }
    let bad = |what: &str| format!("not an OCSP response: {what}");
    let mut outer = Der(bytes);
    let mut resp = Der(outer.expect(0x30).ok_or_else(|| bad("no OCSPResponse"))?);
    if !outer.is_empty() {
        return Err(bad("bytes after the response"));
    }
    match resp.expect(0x0a).ok_or_else(|| bad("no responseStatus"))? {
        [0] => {}
        [s] => return Err(format!("the responder answered {}", status_name(*s))),
        _ => return Err(bad("responseStatus is not one byte")),
    }
    let explicit = resp.expect(0xa0).ok_or_else(|| bad("no responseBytes"))?;
    let mut rb = Der(Der(explicit)
        .expect(0x30)
        .ok_or_else(|| bad("responseBytes"))?);
    if rb.expect(0x06) != Some(OID_BASIC) {
        return Err(bad("the response type is not id-pkix-ocsp-basic"));
    }
    let basic = rb
        .expect(0x04)
        .ok_or_else(|| bad("no response OCTET STRING"))?;
    let mut basic_outer = Der(basic);
    let mut b = Der(basic_outer
        .expect(0x30)
        .ok_or_else(|| bad("BasicOCSPResponse"))?);
    let tbs = b.raw().ok_or_else(|| bad("no tbsResponseData"))?;
    let signature_algorithm = b.expect(0x30).ok_or_else(|| bad("no signatureAlgorithm"))?;
    let signature = match b.expect(0x03).ok_or_else(|| bad("no signature"))? {
        [0, bits @ ..] => bits,
        _ => return Err(bad("the signature BIT STRING has unused bits")),
    };
    let mut certs = Vec::new();
    if let Some(explicit) = b.optional(0xa0) {
        let mut list = Der(Der(explicit).expect(0x30).ok_or_else(|| bad("certs"))?);
        while !list.is_empty() {
            if certs.len() == MAX_CERTS {
                return Err(bad("more than 8 certificates"));
            }
            certs.push(list.raw().ok_or_else(|| bad("a certificate"))?);
        }
    }

    let mut t = Der(Der(tbs)
        .expect(0x30)
        .ok_or_else(|| bad("tbsResponseData"))?);
    if let Some(v) = t.optional(0xa0) {
        if Der(v).expect(0x02) != Some(&[0][..]) {
            return Err(bad("version is not v1"));
        }
    }
    let responder = match t.any().ok_or_else(|| bad("no responderID"))? {
        (0xa1, name) => ResponderId::ByName(Der(name).raw().ok_or_else(|| bad("byName"))?),
        (0xa2, key) => ResponderId::ByKey(Der(key).expect(0x04).ok_or_else(|| bad("byKey"))?),
        _ => return Err(bad("responderID is neither byName nor byKey")),
    };
    let produced_at = time(t.expect(0x18)).ok_or_else(|| bad("producedAt"))?;
    let mut responses = Der(t.expect(0x30).ok_or_else(|| bad("no responses"))?);
    let mut single = Der(responses
        .expect(0x30)
        .ok_or_else(|| bad("no SingleResponse"))?);
    let cert_id = single.raw().ok_or_else(|| bad("no certID"))?;
    let status = match single.any().ok_or_else(|| bad("no certStatus"))? {
        (0x80, []) => CertStatus::Good,
        (0xa1, info) => {
            let mut info = Der(info);
            let time = time(info.expect(0x18)).ok_or_else(|| bad("revocationTime"))?;
            let reason = info
                .optional(0xa0)
                .and_then(|r| Der(r).expect(0x0a))
                .and_then(|r| r.first().copied());
            CertStatus::Revoked { time, reason }
        }
        (0x82, _) => CertStatus::Unknown,
        _ => return Err(bad("certStatus")),
    };
    let this_update = time(single.expect(0x18)).ok_or_else(|| bad("thisUpdate"))?;
    let next_update = match single.optional(0xa0) {
        Some(explicit) => Some(time(Der(explicit).expect(0x18)).ok_or_else(|| bad("nextUpdate"))?),
        None => None,
    };
    Ok(OcspResponse {
        tbs,
        responder,
        produced_at,
        cert_id,
        status,
        this_update,
        next_update,
        signature_algorithm,
        signature,
        certs,
    })
}

fn time(content: Option<&[u8]>) -> Option<i64> {
    der::generalized_time(content?)
}
