//! The security-server-to-security-server message format (reference §3.2, §3.3): a
//! `multipart/mixed` body whose parts are, in order, OCSP responses (requests only), the SOAP
//! envelope, one nested `multipart/mixed` with all attachments, the batch-signature parts and the
//! signature, always last.

use bytes::Bytes;

use brama_sign::SignatureParts;
use brama_xroad::error::ErrorCode;
use brama_xroad::message::mime::{self, ContentType, MultipartWriter, Part};
use brama_xroad::message::soap::{SoapLimits, SoapMessage};
use brama_xroad::message::{MessageError, SoapEnvelope};

pub(crate) const CT_SIGNATURE: &str = "signature/bdoc-1.0/ts";
pub(crate) const CT_HASH_CHAIN_RESULT: &str = "application/hash-chain-result";
pub(crate) const CT_HASH_CHAIN: &str = "application/hash-chain";
pub(crate) const CT_OCSP: &str = "application/ocsp-response";

pub const HDR_REQUEST_ID: &str = "x-road-request-id";
pub const HDR_HASH_ALGORITHM: &str = "x-hash-algorithm";
pub const HDR_ORIGINAL_CONTENT_TYPE: &str = "x-original-content-type";
pub const HDR_ORIGINAL_SOAPACTION: &str = "x-original-soapaction";
pub const HDR_PROXY_VERSION: &str = "x-proxy-version";

/// Encodes an envelope and its signature parts; returns (Content-Type, body).
pub fn encode(env: &SoapEnvelope, ocsp: &[Bytes], sig: &SignatureParts) -> (String, Bytes) {
    let size = env.soap.bytes.len()
        + env
            .attachments
            .iter()
            .map(|a| a.body.len() + 256)
            .sum::<usize>()
        + sig.signature.as_ref().map_or(0, Bytes::len);
    let mut w = MultipartWriter::new(mime::new_boundary("xtop"), size);
    for o in ocsp {
        w.part(CT_OCSP, o);
    }
    match &env.soap_part_headers {
        Some(h) => w.raw_part(h, &env.soap.bytes),
        None => w.part(&env.soap_content_type, &env.soap.bytes),
    }
    if !env.attachments.is_empty() {
        let mut att = MultipartWriter::new(mime::new_boundary("xatt"), size);
        for a in &env.attachments {
            att.raw_part(&a.raw_headers, &a.body);
        }
        let ct = format!(
            "multipart/mixed; charset=UTF-8; boundary={}",
            att.boundary()
        );
        w.part(&ct, &att.finish());
    }
    write_signature(&mut w, sig);
    let ct = format!("multipart/mixed; charset=UTF-8; boundary={}", w.boundary());
    (ct, w.finish())
}

/// The signature parts, in wire order (the signature last).
pub(crate) fn write_signature(w: &mut MultipartWriter, sig: &SignatureParts) {
    for (ct, part) in [
        (CT_HASH_CHAIN_RESULT, &sig.hash_chain_result),
        (CT_HASH_CHAIN, &sig.hash_chain),
        (CT_SIGNATURE, &sig.signature),
    ] {
        if let Some(p) = part {
            w.part(ct, p);
        }
    }
}

/// A decoded transport message.
#[derive(Debug)]
pub struct Decoded {
    pub envelope: SoapEnvelope,
    pub ocsp: Vec<Bytes>,
    pub signature: SignatureParts,
}

/// What a transport body turned out to be.
#[derive(Debug)]
pub enum Incoming {
    Message(Box<Decoded>),
    /// A bare SOAP fault (`text/xml` instead of multipart), or a fault as the last part: the
    /// sender failed before or while streaming.
    Fault(Box<SoapMessage>),
}

/// Decodes a transport body. `original_ct` is `x-original-content-type`, restored on the envelope.
pub fn decode(
    content_type: &str,
    original_ct: Option<&str>,
    body: Bytes,
    limits: &SoapLimits,
    max_parts: usize,
) -> Result<Incoming, MessageError> {
    let ct = ContentType::parse(content_type)?;
    if ct.mime == "text/xml" {
        return Ok(Incoming::Fault(Box::new(SoapMessage::parse(
            body,
            ct.charset(),
            limits,
        )?)));
    }
    if ct.mime != "multipart/mixed" {
        return Err(MessageError::new(
            ErrorCode::InvalidContentType,
            format!("Invalid transport content type '{}'", ct.mime),
        ));
    }
    let boundary = ct.param("boundary").ok_or_else(|| {
        MessageError::new(
            ErrorCode::InvalidContentType,
            "transport message without boundary",
        )
    })?;
    let parts = mime::parse_multipart(&body, boundary, max_parts)?;
    let mut it = parts.into_iter().peekable();

    let mut ocsp = Vec::new();
    while let Some(p) = it.next_if(|p| is_type(p, CT_OCSP)) {
        ocsp.push(p.body);
    }
    let soap_part = it.next().ok_or_else(|| {
        MessageError::new(ErrorCode::MissingSoap, "transport message has no SOAP part")
    })?;
    let soap_ct = soap_part.content_type()?;
    if soap_ct.mime != "text/xml" && soap_ct.mime != "application/xop+xml" {
        return Err(MessageError::new(
            ErrorCode::InvalidContentType,
            format!("Invalid content type of the SOAP part: '{}'", soap_ct.mime),
        ));
    }
    let soap = SoapMessage::parse(soap_part.body.clone(), soap_ct.charset(), limits)?;

    let mut attachments = Vec::new();
    if let Some(att) = it.next_if(|p| is_type(p, "multipart/mixed")) {
        let act = att.content_type()?;
        let b = act.param("boundary").ok_or_else(|| {
            MessageError::new(
                ErrorCode::MimeParsingFailed,
                "attachment part without boundary",
            )
        })?;
        attachments = mime::parse_multipart(&att.body, b, max_parts)?;
    }
    let mut signature = SignatureParts::default();
    for p in it {
        if signature.signature.is_some() {
            return Err(MessageError::new(
                ErrorCode::InvalidMessage,
                "Transport message has parts after its signature",
            ));
        }
        let t = p.content_type()?;
        match t.mime.as_str() {
            CT_HASH_CHAIN_RESULT => signature.hash_chain_result = Some(p.body),
            CT_HASH_CHAIN => signature.hash_chain = Some(p.body),
            CT_SIGNATURE => signature.signature = Some(p.body),
            // A SOAP fault as last part: the sender failed while streaming.
            "text/xml" => {
                return Ok(Incoming::Fault(Box::new(SoapMessage::parse(
                    p.body,
                    t.charset(),
                    limits,
                )?)))
            }
            other => {
                return Err(MessageError::new(
                    ErrorCode::InvalidMessage,
                    format!("Unexpected part '{other}' in transport message"),
                ))
            }
        }
    }
    let original = original_ct.unwrap_or("text/xml; charset=UTF-8").to_string();
    let soap_part_headers = ContentType::parse(&original)
        .map(|c| c.is_multipart())
        .unwrap_or(false)
        .then(|| soap_part.raw_headers.clone());
    Ok(Incoming::Message(Box::new(Decoded {
        envelope: SoapEnvelope {
            soap,
            soap_content_type: soap_part
                .header("content-type")
                .unwrap_or("text/xml")
                .to_string(),
            soap_part_headers,
            attachments,
            content_type: original,
        },
        ocsp,
        signature,
    })))
}

fn is_type(p: &Part, mime: &str) -> bool {
    p.content_type().map(|c| c.mime == mime).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conformance(name: &str) -> Bytes {
        let path = format!(
            "{}/../../tests/fixtures/xroad/transport/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        Bytes::from(std::fs::read(path).unwrap())
    }

    fn boundary_of(b: &[u8]) -> String {
        let line = b.split(|&c| c == b'\n').next().unwrap();
        String::from_utf8_lossy(&line[2..]).trim().to_string()
    }

    fn decode_file(name: &str) -> Result<Incoming, MessageError> {
        let body = conformance(name);
        let ct = format!("multipart/mixed; boundary={}", boundary_of(&body));
        decode(&ct, None, body, &SoapLimits::default(), 64)
    }

    #[test]
    fn decodes_conformance_transport_messages() {
        for name in ["normal.request", "attachment.request", "ocsp.request"] {
            let Incoming::Message(d) = decode_file(name).unwrap_or_else(|e| panic!("{name}: {e}"))
            else {
                panic!("{name}: not a message");
            };
            assert!(d.signature.signature.is_some(), "{name}: signature part");
            if name == "attachment.request" {
                assert_eq!(d.envelope.attachments.len(), 1);
            }
            if name == "ocsp.request" {
                assert!(!d.ocsp.is_empty());
            }
        }
        assert!(
            matches!(decode_file("normal-soapfault.request"), Ok(Incoming::Message(d)) if d.envelope.soap.is_fault())
        );
        assert!(matches!(
            decode_file("fault-signature.request"),
            Ok(Incoming::Fault(_))
        ));
        // normal.response carries X-Road 5 headers (no identifier objectType): not a 4.0 message.
        assert_eq!(
            decode_file("normal.response").unwrap_err().code,
            ErrorCode::InvalidXml
        );
        for bad in [
            "invalid-soap-contenttype.request",
            "extracontent.request",
            "invalid-contenttype-signature.request",
        ] {
            assert!(decode_file(bad).is_err(), "{bad} must be refused");
        }
    }

    #[test]
    fn encode_then_decode_keeps_bytes() {
        let body = conformance("attachment.request");
        let ct = format!("multipart/mixed; boundary={}", boundary_of(&body));
        let Incoming::Message(d) = decode(&ct, None, body, &SoapLimits::default(), 64).unwrap()
        else {
            panic!()
        };
        let (ct2, bytes) = encode(&d.envelope, &[], &d.signature);
        let Incoming::Message(d2) = decode(&ct2, None, bytes, &SoapLimits::default(), 64).unwrap()
        else {
            panic!()
        };
        assert_eq!(d.envelope.soap.bytes, d2.envelope.soap.bytes);
        assert_eq!(
            d.envelope.attachments[0].body,
            d2.envelope.attachments[0].body
        );
        assert_eq!(d.signature.signature, d2.signature.signature);
    }
}
