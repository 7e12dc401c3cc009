//! The signature XML (reference §4.4): X-Road's XAdES profile inside `asic:XAdESSignatures`.
//!
//! Building writes the document in canonical form already (attributes in order, start/end tag
//! pairs), so the canonical `SignedInfo` and `SignedProperties` are the written elements plus the
//! root's namespace declarations, which inclusive C14N pulls onto the apex. Nothing is parsed
//! back on the signing path. Parsing reads any signature, X-Road's or a generic XAdES library's.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;

use super::digest::DigestAlgorithm;
use super::token::SignatureAlgorithm;
use brama_xroad::xml::{Reader, XmlLimits};

pub(crate) const NS_ASIC: &str = "http://uri.etsi.org/02918/v1.2.1#";
pub(crate) const NS_DS: &str = "http://www.w3.org/2000/09/xmldsig#";
pub(crate) const NS_XADES: &str = "http://uri.etsi.org/01903/v1.3.2#";
pub(crate) const C14N_INCLUSIVE: &str = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315";
pub(crate) const SIGNED_PROPERTIES_TYPE: &str = "http://uri.etsi.org/01903#SignedProperties";
/// The reference a batch signature signs.
pub(crate) const HASHCHAIN_RESULT: &str = "/sig-hashchainresult.xml";

const ROOT_NS: &str = r#" xmlns:asic="http://uri.etsi.org/02918/v1.2.1#" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" xmlns:xades="http://uri.etsi.org/01903/v1.3.2#" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance""#;
const POLICY_ID: &str = "urn:oid:1.3.6.1.4.1.3516.16.2";
const POLICY_DESCRIPTION: &str = "Profile for High Performance Digital Signatures (version 1.2)";
const POLICY_HASH: &str =
    "BuO0EDNfkxSVlUbxCzmQPzX1AUF1/xx9ytWHk3/6SAOePxQiniEfDYk+90QeYb3lWpV3Izhuz9fKaYyE+lTcXw==";
const POLICY_URI: &str = "https://repo.cyber.ee/dsig-profile-1.2.pdf";

/// What one signature covers and who signs it.
pub struct SignatureInput<'a> {
    pub alg: SignatureAlgorithm,
    pub digest_alg: DigestAlgorithm,
    /// `/message.xml` (plain) or `/sig-hashchainresult.xml` (batch).
    pub reference_uri: &'a str,
    pub reference_digest: &'a [u8],
    /// `text/xml` or `application/hash-chain-result`.
    pub mime_type: &'a str,
    pub signer: &'a SignerCert,
    /// `2024-12-05T07:34:12.314Z`.
    pub signing_time: &'a str,
}

/// The signing certificate and what the signature repeats of it, prepared once per key.
#[derive(Clone, Debug)]
pub struct SignerCert {
    pub der: Vec<u8>,
    /// Intermediate CA certificates (not the trust anchor), for `CertificateValues`.
    pub chain: Vec<Vec<u8>>,
    pub issuer_rfc2253: String,
    pub serial_decimal: String,
}

impl SignerCert {
    pub fn from_der(der: Vec<u8>, chain: Vec<Vec<u8>>) -> Result<SignerCert, String> {
        let (_, cert) = x509_parser::parse_x509_certificate(&der)
            .map_err(|e| format!("not an X.509 certificate: {e}"))?;
        let issuer_rfc2253 = rfc2253(cert.issuer());
        let serial_decimal = cert.tbs_certificate.serial.to_str_radix(10);
        Ok(SignerCert {
            der,
            chain,
            issuer_rfc2253,
            serial_decimal,
        })
    }
}

/// The issuer name as Java's `X500Principal.getName()` writes it: RDNs last to first, no spaces.
fn rfc2253(name: &x509_parser::x509::X509Name<'_>) -> String {
    use x509_parser::oid_registry as oids;
    let mut rdns = Vec::new();
    for rdn in name.iter() {
        let mut parts = Vec::new();
        for atv in rdn.iter() {
            let oid = atv.attr_type();
            let key = if *oid == oids::OID_X509_COMMON_NAME {
                "CN".to_string()
            } else if *oid == oids::OID_X509_ORGANIZATION_NAME {
                "O".to_string()
            } else if *oid == oids::OID_X509_ORGANIZATIONAL_UNIT {
                "OU".to_string()
            } else if *oid == oids::OID_X509_COUNTRY_NAME {
                "C".to_string()
            } else if *oid == oids::OID_X509_LOCALITY_NAME {
                "L".to_string()
            } else if *oid == oids::OID_X509_STATE_OR_PROVINCE_NAME {
                "ST".to_string()
            } else {
                oid.to_id_string()
            };
            let value = atv.as_str().unwrap_or_default();
            let mut escaped = String::with_capacity(value.len());
            for (i, c) in value.chars().enumerate() {
                if matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
                    || (i == 0 && (c == '#' || c == ' '))
                {
                    escaped.push('\\');
                }
                escaped.push(c);
            }
            parts.push(format!("{key}={escaped}"));
        }
        rdns.push(parts.join("+"));
    }
    rdns.reverse();
    rdns.join(",")
}

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '\r' => o.push_str("&#xD;"),
            _ => o.push(c),
        }
    }
    o
}

fn digest_method(out: &mut String, alg: DigestAlgorithm) {
    out.push_str(r#"<ds:DigestMethod Algorithm=""#);
    out.push_str(alg.uri());
    out.push_str(r#""></ds:DigestMethod>"#);
}

/// The element with the root's namespace declarations on its first tag: its inclusive C14N.
fn canonical(element: &str, tag: &str) -> Vec<u8> {
    let mut c = Vec::with_capacity(element.len() + ROOT_NS.len());
    c.extend_from_slice(tag.as_bytes());
    c.extend_from_slice(ROOT_NS.as_bytes());
    c.extend_from_slice(&element.as_bytes()[tag.len()..]);
    c
}

/// The parts of a signature before its value exists.
pub struct Prepared {
    signed_info: String,
    signed_properties: String,
    /// Inclusive C14N of `SignedInfo`: the bytes the key signs.
    pub to_sign: Vec<u8>,
}

pub fn prepare(input: &SignatureInput<'_>) -> Prepared {
    let d = input.digest_alg;
    let mut sp = String::with_capacity(2048);
    sp.push_str(r#"<xades:SignedProperties Id="signed-properties"><xades:SignedSignatureProperties><xades:SigningTime>"#);
    sp.push_str(input.signing_time);
    sp.push_str("</xades:SigningTime><xades:SigningCertificate><xades:Cert><xades:CertDigest>");
    digest_method(&mut sp, d);
    sp.push_str("<ds:DigestValue>");
    sp.push_str(&B64.encode(d.digest(&input.signer.der)));
    sp.push_str("</ds:DigestValue></xades:CertDigest><xades:IssuerSerial><ds:X509IssuerName>");
    sp.push_str(&esc(&input.signer.issuer_rfc2253));
    sp.push_str("</ds:X509IssuerName><ds:X509SerialNumber>");
    sp.push_str(&input.signer.serial_decimal);
    sp.push_str(
        "</ds:X509SerialNumber></xades:IssuerSerial></xades:Cert></xades:SigningCertificate>",
    );
    sp.push_str(r#"<xades:SignaturePolicyIdentifier><xades:SignaturePolicyId><xades:SigPolicyId><xades:Identifier Qualifier="OIDAsURN">"#);
    sp.push_str(POLICY_ID);
    sp.push_str("</xades:Identifier><xades:Description>");
    sp.push_str(POLICY_DESCRIPTION);
    sp.push_str("</xades:Description></xades:SigPolicyId><xades:SigPolicyHash>");
    digest_method(&mut sp, DigestAlgorithm::Sha512);
    sp.push_str("<ds:DigestValue>");
    sp.push_str(POLICY_HASH);
    sp.push_str("</ds:DigestValue></xades:SigPolicyHash><xades:SigPolicyQualifiers><xades:SigPolicyQualifier><xades:SPURI>");
    sp.push_str(POLICY_URI);
    sp.push_str("</xades:SPURI></xades:SigPolicyQualifier></xades:SigPolicyQualifiers></xades:SignaturePolicyId></xades:SignaturePolicyIdentifier></xades:SignedSignatureProperties>");
    sp.push_str(r##"<xades:SignedDataObjectProperties><xades:DataObjectFormat ObjectReference="#signature-reference-0"><xades:MimeType>"##);
    sp.push_str(input.mime_type);
    sp.push_str("</xades:MimeType></xades:DataObjectFormat></xades:SignedDataObjectProperties></xades:SignedProperties>");
    let sp_digest = d.digest(&canonical(&sp, "<xades:SignedProperties"));

    let mut si = String::with_capacity(1024);
    si.push_str(r#"<ds:SignedInfo><ds:CanonicalizationMethod Algorithm=""#);
    si.push_str(C14N_INCLUSIVE);
    si.push_str(r#""></ds:CanonicalizationMethod><ds:SignatureMethod Algorithm=""#);
    si.push_str(input.alg.uri());
    si.push_str(r#""></ds:SignatureMethod><ds:Reference Id="signature-reference-0" URI=""#);
    si.push_str(input.reference_uri);
    si.push_str(r#"">"#);
    digest_method(&mut si, d);
    si.push_str("<ds:DigestValue>");
    si.push_str(&B64.encode(input.reference_digest));
    si.push_str(r##"</ds:DigestValue></ds:Reference><ds:Reference Id="signature-reference-1" Type="http://uri.etsi.org/01903#SignedProperties" URI="#signed-properties">"##);
    digest_method(&mut si, d);
    si.push_str("<ds:DigestValue>");
    si.push_str(&B64.encode(sp_digest));
    si.push_str("</ds:DigestValue></ds:Reference></ds:SignedInfo>");
    let to_sign = canonical(&si, "<ds:SignedInfo");
    Prepared {
        signed_info: si,
        signed_properties: sp,
        to_sign,
    }
}

impl Prepared {
    /// The whole signature document, with the signature value inserted and the signing chain's
    /// OCSP responses (DER) in `xades:RevocationValues`.
    pub fn finish(&self, signer: &SignerCert, signature_value: &[u8], ocsp: &[Bytes]) -> Vec<u8> {
        let ocsp_len: usize = ocsp.iter().map(|o| o.len() * 4 / 3 + 96).sum();
        let mut x = String::with_capacity(4096 + signer.der.len() * 2 + ocsp_len);
        x.push_str(
            r#"<?xml version="1.0" encoding="UTF-8" standalone="no"?><asic:XAdESSignatures"#,
        );
        x.push_str(ROOT_NS);
        x.push_str(r#"><ds:Signature Id="signature">"#);
        x.push_str(&self.signed_info);
        x.push_str(r#"<ds:SignatureValue Id="signature-value">"#);
        x.push_str(&B64.encode(signature_value));
        x.push_str("</ds:SignatureValue><ds:KeyInfo><ds:X509Data><ds:X509Certificate>");
        x.push_str(&B64.encode(&signer.der));
        x.push_str(r##"</ds:X509Certificate></ds:X509Data></ds:KeyInfo><ds:Object><xades:QualifyingProperties Target="#signature">"##);
        x.push_str(&self.signed_properties);
        if !signer.chain.is_empty() || !ocsp.is_empty() {
            x.push_str("<xades:UnsignedProperties><xades:UnsignedSignatureProperties>");
        }
        if !signer.chain.is_empty() {
            x.push_str("<xades:CertificateValues>");
            for (i, c) in signer.chain.iter().enumerate() {
                x.push_str(&format!(
                    r#"<xades:EncapsulatedX509Certificate Id="encapsulated-cert-{i}">"#
                ));
                x.push_str(&B64.encode(c));
                x.push_str("</xades:EncapsulatedX509Certificate>");
            }
            x.push_str("</xades:CertificateValues>");
        }
        if !ocsp.is_empty() {
            x.push_str("<xades:RevocationValues><xades:OCSPValues>");
            for (i, o) in ocsp.iter().enumerate() {
                x.push_str(&format!(
                    r#"<xades:EncapsulatedOCSPValue Id="ocsp-response-{i}">"#
                ));
                x.push_str(&B64.encode(o));
                x.push_str("</xades:EncapsulatedOCSPValue>");
            }
            x.push_str("</xades:OCSPValues></xades:RevocationValues>");
        }
        if !signer.chain.is_empty() || !ocsp.is_empty() {
            x.push_str("</xades:UnsignedSignatureProperties></xades:UnsignedProperties>");
        }
        x.push_str(
            "</xades:QualifyingProperties></ds:Object></ds:Signature></asic:XAdESSignatures>",
        );
        x.into_bytes()
    }
}

/// A signature document with a single-message time-stamp (`token`, DER, over the decoded
/// `ds:SignatureValue`) added as `xades:SignatureTimeStamp`, first among the unsigned signature
/// properties, as X-Road's synchronous time-stamping writes it. Unsigned properties are not
/// signed, so the signature still verifies. `None` for a document not written with the `xades`
/// prefix this inserts by.
pub fn with_signature_time_stamp(doc: &[u8], token: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(doc).ok()?;
    let stamp = format!(
        r#"<xades:SignatureTimeStamp Id="signature-timestamp"><xades:EncapsulatedTimeStamp>{}</xades:EncapsulatedTimeStamp></xades:SignatureTimeStamp>"#,
        B64.encode(token)
    );
    const OPEN: &str = "<xades:UnsignedSignatureProperties>";
    const CLOSE: &str = "</xades:QualifyingProperties>";
    let out = if let Some(at) = text.find(OPEN) {
        let at = at + OPEN.len();
        format!("{}{stamp}{}", &text[..at], &text[at..])
    } else {
        let at = text.find(CLOSE)?;
        format!(
            "{}<xades:UnsignedProperties>{OPEN}{stamp}</xades:UnsignedSignatureProperties></xades:UnsignedProperties>{}",
            &text[..at],
            &text[at..]
        )
    };
    Some(out.into_bytes())
}

// ---------------------------------------------------------------------------------------------
// Parsing

#[derive(Clone, Debug, Default)]
pub struct Reference {
    pub id: Option<String>,
    pub uri: String,
    pub kind: Option<String>,
    pub transforms: Vec<(String, Vec<String>)>,
    pub digest_method: String,
    pub digest: Vec<u8>,
}

/// What a verifier needs from a signature document.
#[derive(Clone, Debug, Default)]
pub struct ParsedSignature {
    /// True for X-Road's `asic:XAdESSignatures` wrapper, false for a bare `ds:Signature`.
    pub wrapped: bool,
    pub c14n_method: String,
    pub c14n_prefixes: Vec<String>,
    pub signature_method: String,
    pub references: Vec<Reference>,
    pub signature_value: Vec<u8>,
    pub certificates: Vec<Vec<u8>>,
    pub extra_certificates: Vec<Vec<u8>>,
    pub signing_time: Option<String>,
    pub cert_digest: Option<(String, Vec<u8>)>,
    /// DER OCSP responses of `xades:RevocationValues` (the signing chain's).
    pub ocsp_responses: Vec<Vec<u8>>,
    /// A single-message time-stamp (`xades:SignatureTimeStamp/EncapsulatedTimeStamp`, DER),
    /// over the decoded `ds:SignatureValue`.
    pub timestamp: Option<Vec<u8>>,
}

#[derive(Debug, thiserror::Error)]
#[error("malformed signature: {0}")]
pub struct MalformedSignature(pub String);

fn bad(m: impl Into<String>) -> MalformedSignature {
    MalformedSignature(m.into())
}

const MAX_REFERENCES: usize = 64;
/// Signing certificate plus intermediates: a real chain is a handful.
const MAX_CERTIFICATES: usize = 16;

fn b64(s: &str) -> Result<Vec<u8>, MalformedSignature> {
    let clean: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    B64.decode(clean)
        .map_err(|e| bad(format!("bad base64: {e}")))
}

/// Parses a signature document. Structure is checked; values are checked by the verifier.
pub fn parse(doc: &[u8], limits: &XmlLimits) -> Result<ParsedSignature, MalformedSignature> {
    let mut r = Reader::new(doc, limits).map_err(|e| bad(format!("not XML: {e}")))?;
    let mut p = ParsedSignature::default();
    // Path of (namespace, local name) from the root.
    let mut path: Vec<(u8, String)> = Vec::new();
    let mut text = String::new();
    let mut cur_ref: Option<Reference> = None;
    let mut signatures = 0;
    let mut in_sig_props_cert = false;
    loop {
        let (res, ev) = r
            .read_resolved()
            .map_err(|e| bad(format!("not XML: {e}")))?;
        let ns = match res {
            ResolveResult::Bound(n) if n.as_ref() == NS_DS.as_bytes() => 1u8,
            ResolveResult::Bound(n) if n.as_ref() == NS_XADES.as_bytes() => 2,
            ResolveResult::Bound(n) if n.as_ref() == NS_ASIC.as_bytes() => 3,
            ResolveResult::Bound(n) if n.as_ref() == b"http://uri.etsi.org/02918/v1.1.1#" => 3,
            _ => 0,
        };
        match ev {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(ev, Event::Empty(_));
                let local = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                let attr = |name: &[u8]| -> Option<String> {
                    e.attributes()
                        .with_checks(false)
                        .flatten()
                        .find(|a| a.key.as_ref() == name)
                        .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
                };
                let parent = path.last().map(|(n, l)| (*n, l.as_str()));
                match (ns, local.as_str(), parent) {
                    (3, "XAdESSignatures", None) => p.wrapped = true,
                    (1, "Signature", None) | (1, "Signature", Some((3, "XAdESSignatures"))) => {
                        signatures += 1;
                        if signatures > 1 {
                            return Err(bad("more than one signature"));
                        }
                    }
                    (_, _, None) => return Err(bad(format!("unexpected root element {local}"))),
                    (1, "CanonicalizationMethod", Some((1, "SignedInfo"))) => {
                        p.c14n_method = attr(b"Algorithm").unwrap_or_default()
                    }
                    (1, "SignatureMethod", Some((1, "SignedInfo"))) => {
                        p.signature_method = attr(b"Algorithm").unwrap_or_default()
                    }
                    (1, "Reference", Some((1, "SignedInfo"))) => {
                        if p.references.len() >= MAX_REFERENCES {
                            return Err(bad("too many references"));
                        }
                        cur_ref = Some(Reference {
                            id: attr(b"Id"),
                            uri: attr(b"URI").ok_or_else(|| bad("Reference has no URI"))?,
                            kind: attr(b"Type"),
                            ..Default::default()
                        });
                    }
                    (1, "Transform", Some((1, "Transforms"))) => {
                        if let Some(r) = cur_ref.as_mut() {
                            r.transforms
                                .push((attr(b"Algorithm").unwrap_or_default(), Vec::new()));
                        }
                    }
                    (_, "InclusiveNamespaces", _) => {
                        let prefixes: Vec<String> = attr(b"PrefixList")
                            .unwrap_or_default()
                            .split_whitespace()
                            .map(str::to_string)
                            .collect();
                        match (cur_ref.as_mut(), parent) {
                            (Some(r), Some((1, "Transform"))) => {
                                if let Some(t) = r.transforms.last_mut() {
                                    t.1 = prefixes;
                                }
                            }
                            _ => p.c14n_prefixes = prefixes,
                        }
                    }
                    (1, "DigestMethod", Some((1, "Reference"))) => {
                        if let Some(r) = cur_ref.as_mut() {
                            r.digest_method = attr(b"Algorithm").unwrap_or_default();
                        }
                    }
                    (1, "DigestMethod", Some((2, "CertDigest"))) if in_sig_props_cert => {
                        p.cert_digest = Some((attr(b"Algorithm").unwrap_or_default(), Vec::new()));
                    }
                    (2, "SigningCertificate", _) | (2, "SigningCertificateV2", _) => {
                        in_sig_props_cert = p.cert_digest.is_none()
                    }
                    _ => {}
                }
                if !empty {
                    path.push((ns, local));
                    text.clear();
                }
            }
            Event::Text(t) => {
                let s = t.unescape().map_err(|e| bad(format!("bad text: {e}")))?;
                text.push_str(&s);
            }
            Event::CData(t) => text.push_str(&String::from_utf8_lossy(&t)),
            Event::End(_) => {
                let (ns, local) = path.pop().ok_or_else(|| bad("unbalanced"))?;
                let parent = path.last().map(|(n, l)| (*n, l.as_str()));
                match (ns, local.as_str(), parent) {
                    (1, "DigestValue", Some((1, "Reference"))) => {
                        if let Some(r) = cur_ref.as_mut() {
                            r.digest = b64(&text)?;
                        }
                    }
                    (1, "Reference", Some((1, "SignedInfo"))) => {
                        if let Some(r) = cur_ref.take() {
                            p.references.push(r);
                        }
                    }
                    (1, "SignatureValue", _) => p.signature_value = b64(&text)?,
                    (1, "X509Certificate", Some((1, "X509Data"))) => {
                        if p.certificates.len() == MAX_CERTIFICATES {
                            return Err(bad("too many certificates"));
                        }
                        p.certificates.push(b64(&text)?)
                    }
                    (2, "EncapsulatedX509Certificate", _) => {
                        if p.extra_certificates.len() == MAX_CERTIFICATES {
                            return Err(bad("too many certificates"));
                        }
                        p.extra_certificates.push(b64(&text)?)
                    }
                    (2, "EncapsulatedOCSPValue", Some((2, "OCSPValues"))) => {
                        if p.ocsp_responses.len() == MAX_CERTIFICATES {
                            return Err(bad("too many OCSP responses"));
                        }
                        p.ocsp_responses.push(b64(&text)?)
                    }
                    (2, "SigningTime", _) => p.signing_time = Some(text.trim().to_string()),
                    (2, "EncapsulatedTimeStamp", Some((2, "SignatureTimeStamp"))) => {
                        p.timestamp = Some(b64(&text)?)
                    }
                    (1, "DigestValue", Some((2, "CertDigest"))) if in_sig_props_cert => {
                        if let Some((_, d)) = p.cert_digest.as_mut() {
                            *d = b64(&text)?;
                        }
                        in_sig_props_cert = false;
                    }
                    _ => {}
                }
                text.clear();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if signatures == 0 {
        return Err(bad("no ds:Signature"));
    }
    if p.signature_value.is_empty() {
        return Err(bad("no ds:SignatureValue"));
    }
    if p.c14n_method.is_empty() || p.signature_method.is_empty() {
        return Err(bad(
            "SignedInfo lacks its canonicalization or signature method",
        ));
    }
    if p.certificates.is_empty() {
        return Err(bad("no signing certificate in ds:KeyInfo"));
    }
    Ok(p)
}

/// `2024-12-05T07:34:12.314Z` for now.
pub(crate) fn signing_time_now() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        now.millisecond()
    )
}
