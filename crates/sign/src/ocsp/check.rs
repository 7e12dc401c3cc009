//! X-Road's OCSP verification rules (`OcspVerifier`, reference §6.1), in its order and with its
//! codes: whatever is wrong with the response itself is `IncorrectValidationInfo`; a revoked or
//! unknown certificate is `CertValidation`.

use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;
use x509_parser::x509::X509Name;

use super::request::cert_id;
use super::response::{parse, CertStatus, ResponderId};
use crate::error::SignError;
use crate::scheme::{self, EcdsaForm, Scheme};
use brama_xroad::error::ErrorCode;

/// id-kp-OCSPSigning (1.3.6.1.5.5.7.3.9).
const OID_OCSP_SIGNING: &str = "1.3.6.1.5.5.7.3.9";

/// How fresh a response must be: the global configuration's `ocspFreshnessSeconds` and
/// `OCSP-NEXTUPDATE` part (`verifyNextUpdate`, on when absent).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    pub freshness_seconds: u64,
    pub verify_next_update: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            freshness_seconds: 3600,
            verify_next_update: true,
        }
    }
}

/// The responder certificates the global configuration knows.
#[derive(Clone, Copy, Debug, Default)]
pub struct Responders<'a> {
    /// `ocsp/cert` of the issuing CA: authorised to answer for it.
    pub listed: &'a [Vec<u8>],
    /// Where else a responder is looked up: every CA and every listed responder certificate.
    pub known: &'a [Vec<u8>],
}

/// A good, fresh, authorised response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub produced_at: i64,
    pub this_update: i64,
    pub next_update: Option<i64>,
}

impl Verdict {
    /// Until when the response may be used under `policy` (Unix seconds).
    pub fn fresh_until(&self, policy: Policy) -> i64 {
        let by_age = self
            .this_update
            .saturating_add(i64::try_from(policy.freshness_seconds).unwrap_or(i64::MAX));
        match self.next_update {
            Some(next) if policy.verify_next_update => by_age.min(next),
            _ => by_age,
        }
    }
}

fn incorrect(message: String) -> SignError {
    SignError::new(ErrorCode::IncorrectValidationInfo, message)
}

/// Checks `der`, an OCSP response, for `subject` issued by `issuer_der` at `at` (Unix seconds).
pub fn verify(
    der: &[u8],
    subject: &X509Certificate<'_>,
    issuer_der: &[u8],
    responders: Responders<'_>,
    at: i64,
    policy: Policy,
) -> Result<Verdict, SignError> {
    let who = subject.subject();
    let resp = parse(der).map_err(|e| incorrect(format!("OCSP response for '{who}': {e}")))?;
    let (_, issuer) = x509_parser::parse_x509_certificate(issuer_der)
        .map_err(|e| incorrect(format!("issuer of '{who}' does not parse: {e}")))?;

    // 1. It answers for this certificate (a SHA-1 CertID, equal as DER).
    if resp.cert_id != cert_id(subject, &issuer).as_slice() {
        return Err(incorrect(format!(
            "the OCSP response is not for certificate '{who}' (serial {})",
            subject.raw_serial_as_string()
        )));
    }

    // 2–3. The responder's certificate, found by ResponderID, verifies the signature.
    let scheme = Scheme::from_algorithm_identifier(resp.signature_algorithm).ok_or_else(|| {
        incorrect("the OCSP response's signature algorithm is not supported".into())
    })?;
    let candidates = responders
        .known
        .iter()
        .map(Vec::as_slice)
        .chain([issuer_der])
        .chain(resp.certs.iter().copied());
    let mut found = false;
    let mut signer = None;
    for c in candidates {
        let Ok((_, cert)) = x509_parser::parse_x509_certificate(c) else {
            continue;
        };
        if !names_responder(&resp.responder, &cert) {
            continue;
        }
        found = true;
        let key = &cert.public_key().subject_public_key.data;
        if scheme::verify(scheme, key, resp.tbs, resp.signature, EcdsaForm::Der) {
            signer = Some((c, cert));
            break;
        }
    }
    let Some((signer_der, signer)) = signer else {
        return Err(incorrect(match found {
            true => format!("the signature of the OCSP response for '{who}' does not verify"),
            false => format!("the signer of the OCSP response for '{who}' is not known"),
        }));
    };

    // 4. The responder may answer for this CA.
    let authorised = responders.listed.iter().any(|l| l == signer_der)
        || signer_der == issuer_der
        || (signer.issuer() == issuer.subject()
            && signer.verify_signature(Some(issuer.public_key())).is_ok()
            && has_ocsp_signing(&signer));
    if !authorised {
        return Err(incorrect(format!(
            "'{}' is not authorised to answer OCSP for '{}'",
            signer.subject(),
            issuer.subject()
        )));
    }

    // 5. Fresh at the time of use.
    let verdict = Verdict {
        produced_at: resp.produced_at,
        this_update: resp.this_update,
        next_update: resp.next_update,
    };
    check_freshness(&verdict, &who.to_string(), at, policy)?;

    // 6. Good.
    match resp.status {
        CertStatus::Good => Ok(verdict),
        CertStatus::Revoked { time, .. } => Err(SignError::new(
            ErrorCode::CertValidation,
            format!("certificate '{who}' was revoked at {}", show(time)),
        )),
        CertStatus::Unknown => Err(SignError::new(
            ErrorCode::CertValidation,
            format!("the OCSP responder does not know certificate '{who}'"),
        )),
    }
}

/// Whether a response (its `verdict`) about `who` may be used at `at`. A `thisUpdate` in the
/// future is accepted, as X-Road does.
pub fn check_freshness(
    verdict: &Verdict,
    who: &str,
    at: i64,
    policy: Policy,
) -> Result<(), SignError> {
    let fresh_from = at.saturating_sub(i64::try_from(policy.freshness_seconds).unwrap_or(i64::MAX));
    if verdict.this_update < fresh_from {
        return Err(incorrect(format!(
            "the OCSP response for '{who}' is too old (thisUpdate {}, at most {} s before {})",
            show(verdict.this_update),
            policy.freshness_seconds,
            show(at)
        )));
    }
    if let Some(next) = verdict.next_update.filter(|_| policy.verify_next_update) {
        if next < at {
            return Err(incorrect(format!(
                "the OCSP response for '{who}' expired at its nextUpdate {}",
                show(next)
            )));
        }
    }
    Ok(())
}

/// Whether `cert` is the responder a ResponderID names.
fn names_responder(id: &ResponderId<'_>, cert: &X509Certificate<'_>) -> bool {
    match id {
        ResponderId::ByKey(hash) => {
            let key = &cert.public_key().subject_public_key.data;
            super::sha1(key).as_slice() == *hash
        }
        ResponderId::ByName(name) => {
            X509Name::from_der(name).is_ok_and(|(_, name)| same_name(&name, cert.subject()))
        }
    }
}

/// Names equal as X-Road compares them (BouncyCastle's `X500Name.equals`): the same attributes
/// with values equal after trimming and ignoring case, whatever their string type, and the RDNs
/// in the same or in reverse order (X-Road's own test responder writes them reversed).
fn same_name(a: &X509Name<'_>, b: &X509Name<'_>) -> bool {
    if a.as_raw() == b.as_raw() {
        return true;
    }
    let rdns = |n: &X509Name<'_>| -> Option<Vec<Vec<(String, String)>>> {
        n.iter()
            .map(|rdn| {
                rdn.iter()
                    .map(|atv| {
                        let value = atv.as_str().ok()?.trim().to_lowercase();
                        Some((atv.attr_type().to_id_string(), value))
                    })
                    .collect()
            })
            .collect()
    };
    let (Some(x), Some(mut y)) = (rdns(a), rdns(b)) else {
        return false;
    };
    if x == y {
        return true;
    }
    y.reverse();
    x == y
}

fn has_ocsp_signing(cert: &X509Certificate<'_>) -> bool {
    cert.extended_key_usage().is_ok_and(|eku| {
        eku.is_some_and(|e| {
            e.value.ocsp_signing
                || e.value
                    .other
                    .iter()
                    .any(|o| o.to_id_string() == OID_OCSP_SIGNING)
        })
    })
}

use brama_xroad::time::rfc3339 as show;
