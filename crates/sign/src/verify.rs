//! Verifying a message signature (reference §4.7), in X-Road's order: hash chain, signing
//! certificate and signer, references and signature value, certificate path.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use x509_parser::certificate::X509Certificate;
use x509_parser::time::ASN1Time;

use super::c14n::{self, Method, Select};
use super::digest::DigestAlgorithm;
use super::error::SignError;
use super::hashchain::{self, Input};
use super::known_batches::{KnownBatch, KnownBatches};
use super::ocsp;
use super::scheme::{self, EcdsaForm, Scheme};
use super::xades::{self, ParsedSignature, HASHCHAIN_RESULT, SIGNED_PROPERTIES_TYPE};
use brama_xroad::error::ErrorCode;
use brama_xroad::globalconf::GlobalConf;
use brama_xroad::identifiers::ClientId;
use brama_xroad::xml::XmlLimits;

/// One signed part as received: `/message.xml`, `/attachment1`, ...
pub struct Part<'a> {
    pub name: String,
    pub data: &'a [u8],
    /// A digest computed while the part streamed in (a spooled REST body, whose `data` is then
    /// empty), with its algorithm.
    pub digest: Option<(DigestAlgorithm, Vec<u8>)>,
}

impl<'a> Part<'a> {
    /// Names parts in X-Road's order: the message, then its attachments.
    pub fn list(
        message: &'a [u8],
        attachments: impl IntoIterator<Item = &'a [u8]>,
    ) -> Vec<Part<'a>> {
        let mut v = vec![Part {
            name: hashchain::MESSAGE.to_string(),
            data: message,
            digest: None,
        }];
        v.extend(attachments.into_iter().enumerate().map(|(i, data)| Part {
            name: format!("/attachment{}", i + 1),
            data,
            digest: None,
        }));
        v
    }

    /// The part's digest with `alg`: computed now, or taken from the one made while it streamed
    /// (which must then be of the same algorithm).
    pub(crate) fn digest_with(&self, alg: DigestAlgorithm) -> Result<Vec<u8>, SignError> {
        match &self.digest {
            None => Ok(alg.digest(self.data)),
            Some((a, d)) if *a == alg => Ok(d.clone()),
            Some((a, _)) => Err(SignError::malformed(format!(
                "{} was digested with {} while it streamed, the signature uses {}",
                self.name,
                a.name(),
                alg.name()
            ))),
        }
    }
}

/// The signature parts of a message.
#[derive(Clone, Copy)]
pub struct Signed<'a> {
    pub signature: &'a [u8],
    pub hash_chain_result: Option<&'a [u8]>,
    pub hash_chain: Option<&'a [u8]>,
}

/// How a CA's certificates name members (globalconf `certificateProfileInfo`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Profile {
    /// `C=instance, O=memberClass, CN=memberCode` (X-Road's EJBCA default).
    Ejbca,
    /// `CN=memberCode, serialNumber=instance/serverCode/memberClass` (Finland; brama's test PKI).
    Fi,
    /// Unknown class: either mapping is accepted.
    Any,
}

impl Profile {
    pub(crate) fn from_class(name: &str) -> Profile {
        if name.contains("Ejbca") {
            Profile::Ejbca
        } else if name.contains("FiVRK") || name.contains(".fi.") {
            Profile::Fi
        } else {
            Profile::Any
        }
    }
}

/// Approved certification authorities of a global configuration, and what has been learned
/// about the signing certificates seen so far.
#[derive(Debug, Default)]
pub struct TrustStore {
    cas: Vec<Ca>,
    /// Certificate paths by SHA-256 of the signing certificate (and any intermediates the
    /// signature carried): the CA signature checks run once per certificate, not per message.
    paths: Mutex<HashMap<[u8; 32], Option<Arc<Anchored>>>>,
    /// Batch signatures verified so far: later messages of a batch skip the signature checks.
    batches: KnownBatches,
    /// Limits on the signature documents and hash chains read (`[limits] max_xml_*`).
    pub xml: XmlLimits,
    /// Every OCSP responder certificate the global configuration lists (authorised for the
    /// CAs), then every CA certificate: where a response's signer is looked for.
    ocsp_known: Vec<Vec<u8>>,
    /// How many of `ocsp_known` are listed responders.
    ocsp_listed: usize,
    /// `ocspFreshnessSeconds` and `verifyNextUpdate`.
    pub ocsp_policy: ocsp::Policy,
    /// The approved time-stamping authorities' certificates (`approvedTSA/cert`): the only
    /// signers a time-stamp is accepted from.
    pub tsa_certs: Vec<Vec<u8>>,
    /// Verified OCSP responses: the hot path checks a response's freshness, not its signature.
    ocsp_verdicts: Mutex<HashMap<[u8; 32], ocsp::Verdict>>,
}

#[derive(Debug)]
struct Ca {
    der: Vec<u8>,
    top: bool,
    profile: Profile,
    /// `authenticationOnly` CAs issue TLS certificates, never signing ones.
    signing: bool,
    /// The global configuration names an OCSP responder for this CA (top or intermediate): the
    /// status of the certificates under it is checked. A CA without one is a test network's.
    ocsp: bool,
}

/// A signing certificate's path to an approved top CA.
#[derive(Debug)]
struct Anchored {
    /// The issuing CA's certificate profile.
    profile: Profile,
    /// Every CA on the path (subject, validity), checked against the signing time per message.
    cas: Vec<(String, ASN1Time, ASN1Time)>,
    /// The CA certificates of the path, the signing certificate's issuer first, the top CA last.
    ders: Vec<Vec<u8>>,
    /// Whether the certificate's CA names an OCSP responder ([`Ca::ocsp`]).
    ocsp: bool,
}

/// What a certificate is checked for: `authenticationOnly` CAs issue TLS certificates only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Usage {
    Signing,
    Authentication,
}

/// Enough distinct signers for any instance; beyond it the cache starts over, so hostile
/// certificates cannot grow it.
const MAX_CACHED_PATHS: usize = 4096;

impl TrustStore {
    pub fn from_globalconf(gc: &GlobalConf) -> TrustStore {
        let mut cas = Vec::new();
        let mut responders = Vec::new();
        for ca in gc.approved_cas() {
            let profile = Profile::from_class(&ca.certificate_profile_info);
            let signing = !ca.authentication_only;
            let infos = std::iter::once(&ca.top_ca).chain(&ca.intermediate_cas);
            let ocsp = infos.clone().any(|i| !i.ocsp.is_empty());
            for (n, info) in infos.enumerate() {
                cas.push(Ca {
                    der: info.cert_der.clone(),
                    top: n == 0,
                    profile,
                    signing,
                    ocsp,
                });
                responders.extend(info.ocsp.iter().filter_map(|o| o.cert_der.clone()));
            }
        }
        let ocsp_listed = responders.len();
        let mut ocsp_known = responders;
        ocsp_known.extend(cas.iter().map(|c| c.der.clone()));
        let ocsp_policy = ocsp::Policy {
            freshness_seconds: gc
                .own_shared()
                .map_or(3600, |s| s.global_settings.ocsp_freshness_seconds),
            verify_next_update: true,
        };
        TrustStore {
            cas,
            paths: Mutex::default(),
            batches: KnownBatches::default(),
            xml: XmlLimits::default(),
            ocsp_known,
            ocsp_listed,
            ocsp_policy,
            ocsp_verdicts: Mutex::default(),
            tsa_certs: gc
                .shared
                .values()
                .flat_map(|s| &s.approved_tsas)
                .map(|t| t.cert_der.clone())
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.cas.is_empty()
    }

    /// The status of `cert_der`, issued by `issuer_der`, at `at` (Unix seconds), from whichever
    /// of `responses` answers for it (X-Road's `CertChainVerifier`): none is `CertValidation`,
    /// otherwise [`ocsp::verify`]'s verdict. A response verified once for a certificate is only
    /// checked for freshness afterwards, without parsing anything.
    pub fn ocsp_status<R: AsRef<[u8]>>(
        &self,
        cert_der: &[u8],
        issuer_der: &[u8],
        responses: &[R],
        at: i64,
    ) -> Result<ocsp::Verdict, SignError> {
        let key = |response: &[u8]| -> [u8; 32] {
            let mut h = Sha256::new();
            h.update((cert_der.len() as u64).to_be_bytes());
            h.update(cert_der);
            h.update(response);
            h.finalize().into()
        };
        {
            let verdicts = self.ocsp_verdicts.lock().unwrap_or_else(|p| p.into_inner());
            for r in responses {
                if let Some(v) = verdicts.get(&key(r.as_ref())) {
                    if at <= v.fresh_until(self.ocsp_policy) {
                        return Ok(*v);
                    }
                }
            }
        }
        // Not seen, or no longer fresh: the whole check, which also says why.
        let (_, cert) = x509_parser::parse_x509_certificate(cert_der)
            .map_err(|e| SignError::malformed(format!("certificate does not parse: {e}")))?;
        let who = cert.subject().to_string();
        let issuer = x509_parser::parse_x509_certificate(issuer_der)
            .map_err(|e| SignError::malformed(format!("issuer of '{who}': {e}")))?
            .1;
        let id = ocsp::cert_id(&cert, &issuer);
        let answer = responses
            .iter()
            .map(AsRef::as_ref)
            .find(|r| ocsp::parse(r).is_ok_and(|p| p.cert_id == id.as_slice()))
            .ok_or_else(|| {
                SignError::new(
                    ErrorCode::CertValidation,
                    format!("Unable to find OCSP response for certificate {who}"),
                )
            })?;
        let responders = ocsp::Responders {
            listed: &self.ocsp_known[..self.ocsp_listed],
            known: &self.ocsp_known,
        };
        let verdict = ocsp::verify(answer, &cert, issuer_der, responders, at, self.ocsp_policy)?;
        let mut verdicts = self.ocsp_verdicts.lock().unwrap_or_else(|p| p.into_inner());
        if verdicts.len() >= MAX_CACHED_PATHS {
            verdicts.clear();
        }
        verdicts.insert(key(answer), verdict);
        Ok(verdict)
    }

    /// The OCSP status of a peer security server's TLS certificate (`chain`: the certificate,
    /// then the intermediates it sent) under an approved CA, with `responses` at `at`: until when
    /// it holds, `None` when the CA names no responder. Refusals keep X-Road's OCSP codes; the
    /// proxies report them under `SslAuthenticationFailed`.
    pub fn auth_chain_status<R: AsRef<[u8]>>(
        &self,
        chain: &[&[u8]],
        responses: &[R],
        at: i64,
    ) -> Result<Option<i64>, SignError> {
        let Some(cert_der) = chain.first() else {
            return Err(SignError::new(ErrorCode::CertValidation, "no certificate"));
        };
        let (_, cert) = x509_parser::parse_x509_certificate(cert_der)
            .map_err(|e| SignError::malformed(format!("certificate does not parse: {e}")))?;
        let extra: Vec<Vec<u8>> = chain[1..].iter().map(|c| c.to_vec()).collect();
        let path = self
            .anchor(cert_der, &cert, &extra, Usage::Authentication)
            .ok_or_else(|| {
                SignError::new(
                    ErrorCode::CertValidation,
                    format!(
                        "certificate '{}' does not chain to an approved certification authority",
                        cert.subject()
                    ),
                )
            })?;
        self.status_along(cert_der, &path, responses, at)
    }

    /// `cert_der` and every intermediate CA of `path`, each against its issuer, when the
    /// path's CA names a responder; the earliest time this stops holding (`None` when nothing
    /// is checked).
    fn status_along<R: AsRef<[u8]>>(
        &self,
        cert_der: &[u8],
        path: &Anchored,
        responses: &[R],
        at: i64,
    ) -> Result<Option<i64>, SignError> {
        if !path.ocsp {
            return Ok(None);
        }
        let mut until = self
            .ocsp_status(cert_der, &path.ders[0], responses, at)?
            .fresh_until(self.ocsp_policy);
        for pair in path.ders.windows(2) {
            let verdict = self.ocsp_status(&pair[0], &pair[1], responses, at)?;
            until = until.min(verdict.fresh_until(self.ocsp_policy));
        }
        Ok(Some(until))
    }

    /// The path of `cert` to an approved top CA, from the cache or built now.
    fn anchor(
        &self,
        der: &[u8],
        cert: &X509Certificate<'_>,
        extra: &[Vec<u8>],
        usage: Usage,
    ) -> Option<Arc<Anchored>> {
        let mut h = Sha256::new();
        h.update([usage as u8]);
        h.update(der);
        for e in extra {
            h.update(e);
        }
        let key: [u8; 32] = h.finalize().into();
        let cached = self
            .paths
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .cloned();
        if let Some(path) = cached {
            return path;
        }
        let path = self.build_path(cert, extra, usage).map(Arc::new);
        let mut paths = self.paths.lock().unwrap_or_else(|p| p.into_inner());
        if paths.len() >= MAX_CACHED_PATHS {
            paths.clear();
        }
        paths.insert(key, path.clone());
        path
    }

    fn build_path(
        &self,
        cert: &X509Certificate<'_>,
        extra: &[Vec<u8>],
        usage: Usage,
    ) -> Option<Anchored> {
        let may_issue = |c: &&Ca| c.signing || usage == Usage::Authentication;
        // The issuer: an approved CA for this use, or an intermediate the certificate came with.
        let approved = self
            .cas
            .iter()
            .filter(may_issue)
            .find(|c| issued_by(cert, &c.der))
            .map(|c| (c.der.as_slice(), c.profile, c.ocsp));
        let (mut current, profile, ocsp) = match approved {
            Some(found) => found,
            None => {
                let inter = extra.iter().find(|d| issued_by(cert, d))?;
                let (_, parsed) = x509_parser::parse_x509_certificate(inter).ok()?;
                let ca = self
                    .cas
                    .iter()
                    .filter(may_issue)
                    .find(|c| issued_by(&parsed, &c.der))?;
                (inter.as_slice(), ca.profile, ca.ocsp)
            }
        };
        // Walk up to a top CA (paths are short; the bound stops loops).
        let mut cas = Vec::new();
        let mut ders = Vec::new();
        for _ in 0..5 {
            let (_, ca) = x509_parser::parse_x509_certificate(current).ok()?;
            let v = ca.validity();
            cas.push((ca.subject().to_string(), v.not_before, v.not_after));
            ders.push(current.to_vec());
            if self.cas.iter().any(|c| c.top && c.der == current) {
                return Some(Anchored {
                    profile,
                    cas,
                    ders,
                    ocsp,
                });
            }
            current = &self.cas.iter().find(|c| issued_by(&ca, &c.der))?.der;
        }
        None
    }
}

/// Whether `ca_der` names and signed `cert`.
fn issued_by(cert: &X509Certificate<'_>, ca_der: &[u8]) -> bool {
    x509_parser::parse_x509_certificate(ca_der).is_ok_and(|(_, ca)| {
        ca.subject() == cert.issuer() && cert.verify_signature(Some(ca.public_key())).is_ok()
    })
}

/// When certificates must be valid.
#[derive(Clone, Copy, Debug)]
pub enum At {
    Now,
    /// The signature's own `SigningTime` (archived messages whose certificates have expired).
    SigningTime,
    /// A time-stamp's `genTime` (Unix seconds): a logged message is checked as of then.
    Stamped(i64),
}

impl At {
    /// The moment this names; `signing_time` gives the signature's own.
    fn time(
        self,
        signing_time: impl FnOnce() -> Result<ASN1Time, SignError>,
    ) -> Result<ASN1Time, SignError> {
        match self {
            At::Now => Ok(ASN1Time::now()),
            At::SigningTime => signing_time(),
            At::Stamped(t) => ASN1Time::from_timestamp(t)
                .map_err(|e| SignError::malformed(format!("time-stamp time {t}: {e}"))),
        }
    }
}

/// What a valid signature tells.
#[derive(Clone, Debug)]
pub struct Verified {
    pub signer: Option<ClientId>,
    pub signing_time: Option<String>,
    pub batch: bool,
    pub cert_subject: String,
    /// The time-stamp's `genTime` (Unix seconds) when a container carried one and it checked:
    /// the certificates and OCSP were then checked as of that moment.
    pub time_stamped_at: Option<i64>,
}

fn invalid(m: impl Into<String>) -> SignError {
    SignError::new(ErrorCode::InvalidSignatureValue, m)
}

fn incorrect_cert(m: impl Into<String>) -> SignError {
    SignError::new(ErrorCode::IncorrectCertificate, m)
}

/// Verifies that `signed` covers exactly `parts` and was made by `expected` (a member id) with a
/// certificate of an approved CA.
pub fn verify(
    signed: Signed<'_>,
    parts: &[Part<'_>],
    trust: &TrustStore,
    expected: Option<&ClientId>,
    at: At,
) -> Result<Verified, SignError> {
    let key = match (signed.hash_chain_result, signed.hash_chain) {
        (Some(result), Some(_)) => Some(KnownBatches::key(signed.signature, result)),
        _ => None,
    };
    if let Some(known) = key.as_ref().and_then(|k| trust.batches.get(k)) {
        return verify_in_known_batch(&known, signed, parts, expected, at, &trust.xml);
    }
    let (verified, known) = verify_signature(signed, parts, trust, expected, at)?;
    if let (Some(key), Some(known)) = (key, known) {
        trust.batches.insert(key, known);
    }
    Ok(verified)
}

/// A message of a batch whose signature has been verified before: its own hash chain, the
/// expected signer and the certificate path at `at`, in the order of [`verify_signature`].
fn verify_in_known_batch(
    known: &KnownBatch,
    signed: Signed<'_>,
    parts: &[Part<'_>],
    expected: Option<&ClientId>,
    at: At,
    limits: &XmlLimits,
) -> Result<Verified, SignError> {
    let (Some(result), Some(chain)) = (signed.hash_chain_result, signed.hash_chain) else {
        return Err(SignError::malformed(
            "a batch signature needs its hash chain result and hash chain",
        ));
    };
    verify_hash_chain(result, chain, parts, known.alg, limits, at)?;
    check_member(&known.members, &known.cert_subject, expected)?;
    let when = at.time(|| {
        known
            .signing_time_parsed
            .ok_or_else(|| SignError::malformed("no valid xades:SigningTime"))
    })?;
    check_path(
        &known.cert_subject,
        known.cert_validity,
        known.path_cas.as_deref(),
        when,
    )?;
    if let Some(until) = known.fresh_until {
        if when.timestamp() > until {
            return Err(SignError::new(
                ErrorCode::InvalidCertPath,
                format!(
                    "the OCSP response for '{}' is no longer fresh",
                    known.cert_subject
                ),
            )
            .with_sub(ErrorCode::IncorrectValidationInfo.as_str()));
        }
    }
    Ok(Verified {
        time_stamped_at: None,
        signer: known.members.first().cloned(),
        signing_time: known.signing_time.clone(),
        batch: true,
        cert_subject: known.cert_subject.clone(),
    })
}

/// Checks the message's parts against its hash chain: a live message as X-Road's signature
/// verifier does (the parts' digests go into the chain), an archived one (`at` its signing time)
/// as its container verifier does (the chain's stated digests are compared).
fn verify_hash_chain(
    result: &[u8],
    chain: &[u8],
    parts: &[Part<'_>],
    alg: DigestAlgorithm,
    limits: &XmlLimits,
    at: At,
) -> Result<(), SignError> {
    let inputs: Vec<Input<'_>> = parts
        .iter()
        .map(|p| {
            Ok(Input {
                uri: &p.name,
                digest: Some(p.digest_with(alg)?),
                compare: matches!(at, At::SigningTime | At::Stamped(_)),
            })
        })
        .collect::<Result<_, SignError>>()?;
    let resolve = |uri: &str| (uri == hashchain::SIG_HASHCHAIN).then_some(Cow::Borrowed(chain));
    hashchain::verify(result, &resolve, &inputs, limits)?;
    Ok(())
}

fn check_member(
    members: &[ClientId],
    cert_subject: &str,
    expected: Option<&ClientId>,
) -> Result<(), SignError> {
    if let Some(want) = expected {
        let want = want.member_id();
        if !members.contains(&want) {
            return Err(incorrect_cert(format!(
                "signer certificate '{cert_subject}' does not belong to member '{want}'"
            )));
        }
    }
    Ok(())
}

/// The whole verification; for a batch signature also what later messages of the batch reuse.
fn verify_signature(
    signed: Signed<'_>,
    parts: &[Part<'_>],
    trust: &TrustStore,
    expected: Option<&ClientId>,
    at: At,
) -> Result<(Verified, Option<KnownBatch>), SignError> {
    let limits = &trust.xml;
    let sig = xades::parse(signed.signature, limits)?;
    let file_refs: Vec<&xades::Reference> = sig
        .references
        .iter()
        .filter(|r| !r.uri.starts_with('#'))
        .collect();
    let batch = file_refs.iter().any(|r| r.uri == HASHCHAIN_RESULT);

    // 1. What the signature covers.
    if sig.wrapped {
        // X-Road's form: the message or the hash chain result (newer servers also sign each
        // attachment by its own reference).
        for r in &file_refs {
            let part = r.uri == hashchain::MESSAGE
                || r.uri
                    .strip_prefix("/attachment")
                    .is_some_and(|n| n.parse::<u32>().is_ok_and(|n| n > 0));
            if !(part || r.uri == HASHCHAIN_RESULT) || (batch && file_refs.len() > 1) {
                return Err(SignError::malformed(format!(
                    "unexpected signature reference '{}'",
                    r.uri
                )));
            }
        }
        if file_refs.is_empty() {
            return Err(SignError::malformed(
                "the signature references neither /message.xml nor /sig-hashchainresult.xml",
            ));
        }
        if !sig
            .references
            .iter()
            .any(|r| r.uri.starts_with('#') && r.kind.as_deref() == Some(SIGNED_PROPERTIES_TYPE))
        {
            return Err(SignError::malformed(
                "the signature does not sign its SignedProperties",
            ));
        }
    }
    let mut chain_alg = None;
    if batch {
        let (Some(result), Some(chain)) = (signed.hash_chain_result, signed.hash_chain) else {
            return Err(SignError::malformed(
                "a batch signature needs its hash chain result and hash chain",
            ));
        };
        let alg = DigestAlgorithm::from_uri(&hashchain::parse_result(result, limits)?.method)
            .ok_or_else(|| SignError::malformed("unsupported hash chain digest method"))?;
        verify_hash_chain(result, chain, parts, alg, limits, at)?;
        chain_alg = Some(alg);
    } else {
        // Every part must be covered by its own reference.
        for p in parts {
            if !file_refs.iter().any(|r| r.uri == p.name) {
                return Err(SignError::malformed(format!(
                    "{} is not covered by the signature",
                    p.name
                )));
            }
        }
    }

    // 2. The signing certificate: a signing key (nonRepudiation) of the expected member.
    let cert_der = &sig.certificates[0];
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der)
        .map_err(|e| SignError::malformed(format!("signing certificate does not parse: {e}")))?;
    match cert.key_usage() {
        Ok(Some(ku)) if ku.value.non_repudiation() => {}
        _ => {
            return Err(incorrect_cert(format!(
                "certificate '{}' is not a signing certificate (no nonRepudiation key usage)",
                cert.subject()
            )))
        }
    }
    let path = trust.anchor(cert_der, &cert, &sig.extra_certificates, Usage::Signing);
    let profile = path.as_ref().map_or(Profile::Any, |p| p.profile);
    let members = members_of(&cert, profile);
    let cert_subject = cert.subject().to_string();
    check_member(&members, &cert_subject, expected)?;
    if let Some((alg_uri, digest)) = &sig.cert_digest {
        let alg = DigestAlgorithm::from_uri(alg_uri)
            .ok_or_else(|| SignError::malformed("unsupported certificate digest method"))?;
        if &alg.digest(cert_der) != digest {
            return Err(incorrect_cert(
                "SigningCertificate digest does not match the certificate in KeyInfo",
            ));
        }
    } else if sig.wrapped {
        return Err(SignError::malformed("no xades:SigningCertificate"));
    }

    // 3. References and the signature value.
    for r in &sig.references {
        let alg = DigestAlgorithm::from_uri(&r.digest_method).ok_or_else(|| {
            SignError::malformed(format!("unsupported digest method {}", r.digest_method))
        })?;
        let actual = if let Some(id) = r.uri.strip_prefix('#') {
            let method = reference_c14n(r)?;
            let c = c14n::canonicalize(signed.signature, Select::ById(id), &method, limits)
                .map_err(|e| SignError::malformed(format!("reference {}: {e}", r.uri)))?;
            alg.digest(&c)
        } else if r.uri == HASHCHAIN_RESULT {
            alg.digest(signed.hash_chain_result.unwrap_or_default())
        } else {
            let p = parts.iter().find(|p| p.name == r.uri).ok_or_else(|| {
                SignError::malformed(format!("signature references missing part '{}'", r.uri))
            })?;
            p.digest_with(alg)?
        };
        if actual != r.digest {
            return Err(invalid(format!(
                "digest of reference '{}' does not match",
                r.uri
            )));
        }
    }
    check_signature_value(&sig, signed.signature, &cert, limits)?;

    // 4. The certificate path at the signing time.
    let when = at.time(|| signing_time(&sig))?;
    let validity = (cert.validity().not_before, cert.validity().not_after);
    let path_cas = path.as_deref().map(|p| p.cas.as_slice());
    check_path(&cert_subject, validity, path_cas, when)?;
    // 5. The chain's OCSP responses, carried in the signature, at the same time.
    let fresh_until = match path.as_deref() {
        // X-Road reports it as `InvalidCertPath` with the OCSP code as its cause.
        Some(p) => trust
            .status_along(cert_der, p, &sig.ocsp_responses, when.timestamp())
            .map_err(|e| {
                SignError::new(ErrorCode::InvalidCertPath, e.message).with_sub(e.code.as_str())
            })?,
        None => None,
    };

    let known = chain_alg.map(|alg| KnownBatch {
        alg,
        members: members.clone(),
        cert_subject: cert_subject.clone(),
        cert_validity: validity,
        path_cas: path_cas.map(<[_]>::to_vec),
        signing_time: sig.signing_time.clone(),
        signing_time_parsed: signing_time(&sig).ok(),
        fresh_until,
    });
    let verified = Verified {
        time_stamped_at: None,
        signer: members.into_iter().next(),
        signing_time: sig.signing_time.clone(),
        batch,
        cert_subject,
    };
    Ok((verified, known))
}

fn reference_c14n(r: &xades::Reference) -> Result<Method, SignError> {
    let mut method = Method::Inclusive;
    for (t, prefixes) in &r.transforms {
        if t == "http://www.w3.org/2000/09/xmldsig#enveloped-signature" {
            continue;
        }
        method = Method::from_uri(t, prefixes.clone())
            .ok_or_else(|| SignError::malformed(format!("unsupported transform {t}")))?;
    }
    Ok(method)
}

fn check_signature_value(
    sig: &ParsedSignature,
    doc: &[u8],
    cert: &X509Certificate<'_>,
    limits: &XmlLimits,
) -> Result<(), SignError> {
    let method =
        Method::from_uri(&sig.c14n_method, sig.c14n_prefixes.clone()).ok_or_else(|| {
            SignError::malformed(format!("unsupported canonicalization {}", sig.c14n_method))
        })?;
    let signed_info = c14n::canonicalize(
        doc,
        Select::ByName {
            ns: xades::NS_DS,
            local: "SignedInfo",
        },
        &method,
        limits,
    )
    .map_err(|e| SignError::malformed(format!("SignedInfo: {e}")))?;
    let scheme = Scheme::from_xml_uri(&sig.signature_method).ok_or_else(|| {
        SignError::malformed(format!(
            "signature method {} is not one X-Road signs with",
            sig.signature_method
        ))
    })?;
    let key = &cert.public_key().subject_public_key.data;
    match scheme::verify(
        scheme,
        key,
        &signed_info,
        &sig.signature_value,
        EcdsaForm::Fixed,
    ) {
        true => Ok(()),
        false => Err(invalid(
            "the signature value does not verify with the signing certificate",
        )),
    }
}

/// The signing certificate (`subject`, valid `validity`) and every CA on its path must be valid
/// at `when`.
fn check_path(
    subject: &str,
    validity: (ASN1Time, ASN1Time),
    path_cas: Option<&[(String, ASN1Time, ASN1Time)]>,
    when: ASN1Time,
) -> Result<(), SignError> {
    let path_err = |m: String| SignError::new(ErrorCode::InvalidCertPath, m);
    if when < validity.0 || when > validity.1 {
        return Err(path_err(format!(
            "signing certificate '{subject}' is not valid at {when}"
        )));
    }
    let Some(cas) = path_cas else {
        return Err(path_err(format!(
            "signing certificate '{subject}' does not chain to an approved certification authority"
        )));
    };
    for (subject, not_before, not_after) in cas {
        if when < *not_before || when > *not_after {
            return Err(path_err(format!("CA '{subject}' is not valid at {when}")));
        }
    }
    Ok(())
}

fn signing_time(sig: &ParsedSignature) -> Result<ASN1Time, SignError> {
    let t = sig
        .signing_time
        .as_deref()
        .ok_or_else(|| SignError::malformed("no xades:SigningTime"))?;
    let parsed = time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
        .map_err(|e| SignError::malformed(format!("SigningTime '{t}': {e}")))?;
    ASN1Time::from_timestamp(parsed.unix_timestamp())
        .map_err(|e| SignError::malformed(format!("SigningTime '{t}': {e}")))
}

/// The member ids a signing certificate names under `profile`.
pub(crate) fn members_of(cert: &X509Certificate<'_>, profile: Profile) -> Vec<ClientId> {
    use x509_parser::oid_registry as oids;
    let get = |oid: &x509_parser::der_parser::oid::Oid<'_>| -> Option<String> {
        cert.subject()
            .iter_by_oid(oid)
            .next()
            .and_then(|a| a.as_str().ok())
            .map(str::to_string)
    };
    let cn = get(&oids::OID_X509_COMMON_NAME);
    let mut out = Vec::new();
    if matches!(profile, Profile::Fi | Profile::Any) {
        if let (Some(code), Some(sn)) = (&cn, get(&oids::OID_X509_SERIALNUMBER)) {
            let f: Vec<&str> = sn.split('/').collect();
            if let [instance, _server, class] = f.as_slice() {
                out.push(ClientId::member(instance, class, code));
            }
        }
    }
    if matches!(profile, Profile::Ejbca | Profile::Any) {
        if let (Some(code), Some(i), Some(c)) = (
            &cn,
            get(&oids::OID_X509_COUNTRY_NAME),
            get(&oids::OID_X509_ORGANIZATION_NAME),
        ) {
            out.push(ClientId::member(&i, &c, code));
        }
    }
    out
}
