//! X-Road messages as information systems send them: SOAP envelopes, SwA/MTOM multiparts, faults.

pub mod build;
pub mod fault;
pub mod mime;
pub mod soap;

use base64::Engine;
use bytes::Bytes;
use sha2::{Digest, Sha512};

use crate::error::ErrorCode;
use mime::{ContentType, Part};
use soap::{SoapLimits, SoapMessage};

pub const NS_SOAP_ENV: &str = "http://schemas.xmlsoap.org/soap/envelope/";
pub const NS_XROAD: &str = "http://x-road.eu/xsd/xroad.xsd";
pub const NS_IDENTIFIERS: &str = "http://x-road.eu/xsd/identifiers";
pub const NS_REPRESENTATION: &str = "http://x-road.eu/xsd/representation.xsd";

/// XML-DSig URI of the default digest (SHA-512), used for `requestHash/@algorithmId`.
pub const SHA512_URI: &str = "http://www.w3.org/2001/04/xmlenc#sha512";

/// An error in a message's format. The proxy that met it adds the fault-code prefix.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct MessageError {
    pub code: ErrorCode,
    pub message: String,
}

impl crate::error::ToFault for MessageError {
    fn to_fault(&self, at: crate::error::Prefix) -> crate::error::Fault {
        at.fault(self.code, self.message.clone())
    }
}

impl MessageError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        MessageError {
            code,
            message: message.into(),
        }
    }
}

/// b64(SHA-512(bytes)): the `requestHash` of a request's SOAP part.
pub fn request_hash(soap_bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha512::digest(soap_bytes))
}

/// A SOAP message as posted by an information system or a service: the envelope and, for
/// multipart messages, the attachments with their MIME headers as received.
#[derive(Clone, Debug)]
pub struct SoapEnvelope {
    pub soap: SoapMessage,
    /// Content-Type of the SOAP part (`text/xml; charset=…` or `application/xop+xml; …`).
    pub soap_content_type: String,
    /// Header block of the SOAP part when it came inside a multipart (keeps `Content-ID` etc.).
    pub soap_part_headers: Option<Bytes>,
    pub attachments: Vec<Part>,
    /// The original Content-Type of the whole message.
    pub content_type: String,
}

impl SoapEnvelope {
    /// A plain `text/xml` message without attachments.
    pub fn plain(soap: SoapMessage) -> Self {
        const CT: &str = "text/xml; charset=UTF-8";
        SoapEnvelope {
            soap,
            soap_content_type: CT.to_string(),
            soap_part_headers: None,
            attachments: Vec::new(),
            content_type: CT.to_string(),
        }
    }

    /// Reads a message from its HTTP Content-Type and body. `max_parts` bounds multipart messages.
    pub fn from_http(
        content_type: Option<&str>,
        body: Bytes,
        limits: &SoapLimits,
        max_parts: usize,
    ) -> Result<Self, MessageError> {
        let raw_ct = content_type.ok_or_else(|| {
            MessageError::new(ErrorCode::InvalidContentType, "Missing Content-Type header")
        })?;
        let ct = ContentType::parse(raw_ct)?;
        match ct.mime.as_str() {
            "text/xml" => Ok(SoapEnvelope {
                soap: SoapMessage::parse(body, ct.charset(), limits)?,
                soap_content_type: raw_ct.to_string(),
                soap_part_headers: None,
                attachments: Vec::new(),
                content_type: raw_ct.to_string(),
            }),
            "multipart/related" => Self::from_multipart(&ct, raw_ct, body, limits, max_parts),
            other => Err(MessageError::new(
                ErrorCode::InvalidContentType,
                format!("Invalid content type '{other}': expected text/xml or multipart/related"),
            )),
        }
    }

    fn from_multipart(
        ct: &ContentType,
        raw_ct: &str,
        body: Bytes,
        limits: &SoapLimits,
        max_parts: usize,
    ) -> Result<Self, MessageError> {
        let boundary = ct.param("boundary").ok_or_else(|| {
            MessageError::new(
                ErrorCode::InvalidContentType,
                "multipart message without a boundary",
            )
        })?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(MessageError::new(
                ErrorCode::MissingSoap,
                "multipart message is empty",
            ));
        }
        let mut parts = mime::parse_multipart(&body, boundary, max_parts)?;
        // MTOM names its root part with `start`; otherwise the SOAP part comes first.
        let root = match ct.param("start") {
            Some(start) => {
                let start = start.trim_start_matches('<').trim_end_matches('>');
                parts
                    .iter()
                    .position(|p| p.content_id() == Some(start))
                    .ok_or_else(|| {
                        MessageError::new(
                            ErrorCode::MissingSoap,
                            "multipart root part named by 'start' is missing",
                        )
                    })?
            }
            None => 0,
        };
        if parts.is_empty() {
            return Err(MessageError::new(
                ErrorCode::MissingSoap,
                "multipart message has no parts",
            ));
        }
        let soap_part = parts.remove(root);
        let part_ct = soap_part.content_type()?;
        if part_ct.mime != "text/xml" && part_ct.mime != "application/xop+xml" {
            return Err(MessageError::new(
                ErrorCode::InvalidContentType,
                format!("Invalid content type of the SOAP part: '{}'", part_ct.mime),
            ));
        }
        if let Some(i) = parts
            .iter()
            .position(|p| p.header("content-type").is_none())
        {
            return Err(MessageError::new(
                ErrorCode::InvalidContentType,
                format!("Attachment part {} has no Content-Type", i + 1),
            ));
        }
        if soap_part.body.iter().all(u8::is_ascii_whitespace) {
            return Err(MessageError::new(
                ErrorCode::MissingSoap,
                "the SOAP part is empty",
            ));
        }
        Ok(SoapEnvelope {
            soap: SoapMessage::parse(soap_part.body.clone(), part_ct.charset(), limits)?,
            soap_content_type: soap_part
                .header("content-type")
                .unwrap_or("text/xml")
                .to_string(),
            soap_part_headers: Some(soap_part.raw_headers.clone()),
            attachments: parts,
            content_type: raw_ct.to_string(),
        })
    }

    /// The message as an HTTP body again: the envelope alone, or a `multipart/related` with the
    /// original boundary, part headers and attachments. Returns (Content-Type, body).
    pub fn to_http(&self) -> (String, Bytes) {
        if self.attachments.is_empty() && self.soap_part_headers.is_none() {
            return (self.soap_content_type.clone(), self.soap.bytes.clone());
        }
        let boundary = ContentType::parse(&self.content_type)
            .ok()
            .and_then(|ct| ct.param("boundary").map(str::to_string))
            .unwrap_or_else(|| mime::new_boundary("brama"));
        let size = self.soap.bytes.len()
            + self
                .attachments
                .iter()
                .map(|a| a.body.len() + 256)
                .sum::<usize>();
        let mut w = mime::MultipartWriter::new(boundary, size);
        self.write_parts(&mut w);
        (self.content_type.clone(), w.finish())
    }

    /// Writes the SOAP part and the attachments into `w`.
    pub(crate) fn write_parts(&self, w: &mut mime::MultipartWriter) {
        match &self.soap_part_headers {
            Some(h) => w.raw_part(h, &self.soap.bytes),
            None => w.part(&self.soap_content_type, &self.soap.bytes),
        }
        for a in &self.attachments {
            w.raw_part(&a.raw_headers, &a.body);
        }
    }
}

#[cfg(test)]
mod tests;
