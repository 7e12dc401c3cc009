//! What became of one request: success, an X-Road fault (by code), an HTTP status, or a
//! transport failure. Answers come from any security server, so nothing here trusts their shape.

use brama_xroad::message::soap::{SoapBody, SoapLimits};
use brama_xroad::message::SoapEnvelope;
use bytes::Bytes;
use memchr::memmem;

/// Longest fault code kept; longer ones are cut (a hostile or broken server must not make the
/// error table grow without bound per request).
const MAX_CODE: usize = 128;
/// Most MIME parts read from a multipart answer.
const MAX_PARTS: usize = 64;

/// The result of one request (or one application, followed to its end).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// An X-Road (or SOAP) fault code, a REST `X-Road-Error` type, or a router error type.
    Fault(Box<str>),
    /// A non-2xx answer that named no fault.
    Status(u16),
    /// No answer within `--timeout`.
    Timeout,
    /// Could not connect (TCP or TLS handshake).
    Connect,
    /// The connection broke mid-exchange, or the answer could not be read.
    Io,
}

/// The error kinds of the summary (`errors_by_kind`), in the order they are printed.
pub(crate) const KINDS: [&str; 5] = ["fault", "http_status", "connect", "timeout", "io"];

impl Outcome {
    pub fn is_ok(&self) -> bool {
        matches!(self, Outcome::Ok)
    }

    /// One of `KINDS`; `None` for success.
    pub fn kind(&self) -> Option<&'static str> {
        match self {
            Outcome::Ok => None,
            Outcome::Fault(_) => Some("fault"),
            Outcome::Status(_) => Some("http_status"),
            Outcome::Connect => Some("connect"),
            Outcome::Timeout => Some("timeout"),
            Outcome::Io => Some("io"),
        }
    }

    /// A fault from untrusted text: trimmed, QName prefix dropped, bounded.
    pub fn fault(code: &str) -> Outcome {
        let code = code.trim();
        // `soapenv:Server` → `Server`; X-Road codes never contain ':'.
        let code = code.rsplit(':').next().unwrap_or(code);
        let mut end = code.len().min(MAX_CODE);
        while !code.is_char_boundary(end) {
            end -= 1;
        }
        let code = &code[..end];
        Outcome::Fault(if code.is_empty() { "(empty)" } else { code }.into())
    }
}

/// A SOAP answer: a fault by its code whatever the HTTP status (brama answers faults with 200,
/// other servers with 500), else the HTTP status.
pub fn soap(status: u16, content_type: Option<&str>, body: &[u8]) -> Outcome {
    if let Some(code) = soap_fault_code(content_type, body) {
        return Outcome::fault(&code);
    }
    by_status(status)
}

/// A REST answer: `X-Road-Error` / `Uxp-Error`, else for an error status the JSON `type` when it
/// is an X-Road error type, else the status.
pub fn rest(status: u16, headers: &http::HeaderMap, body: &[u8]) -> Outcome {
    for name in ["x-road-error", "uxp-error"] {
        if let Some(v) = headers.get(name) {
            return Outcome::fault(&String::from_utf8_lossy(v.as_bytes()));
        }
    }
    if !(200..300).contains(&status) {
        if let Some(t) = json_type(body).filter(|t| is_xroad_code(t)) {
            return Outcome::fault(&t);
        }
    }
    by_status(status)
}

fn by_status(status: u16) -> Outcome {
    if (200..300).contains(&status) {
        Outcome::Ok
    } else {
        Outcome::Status(status)
    }
}

fn is_xroad_code(t: &str) -> bool {
    t.starts_with("Client.") || t.starts_with("Server.")
}

/// The `type` string of a JSON object body (X-Road REST errors, brama's router errors).
pub(crate) fn json_type(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Typed {
        #[serde(rename = "type")]
        ty: Option<String>,
    }
    serde_json::from_slice::<Typed>(body).ok()?.ty
}

/// The `faultcode` of a SOAP fault answer, if the answer is one.
///
/// Most answers never contain the word, so one `memmem` pass rejects them. The rest are read by
/// the security server's own SOAP reader ([`SoapEnvelope::from_http`], plain or multipart, within
/// its default limits), so a load test and the gateway agree on what is a fault; an answer it
/// cannot read is not one. Without a Content-Type the body is taken as `text/xml`.
pub(crate) fn soap_fault_code(content_type: Option<&str>, body: &[u8]) -> Option<String> {
    memmem::find(body, b"faultcode")?;
    let ct = Some(content_type.unwrap_or("text/xml"));
    let body = Bytes::copy_from_slice(body);
    let envelope = SoapEnvelope::from_http(ct, body, &SoapLimits::default(), MAX_PARTS).ok()?;
    match envelope.soap.body {
        SoapBody::Fault { code, .. } => Some(code),
        SoapBody::Element { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAULT: &str = r#"<?xml version="1.0" encoding="UTF-8"?><SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Body><SOAP-ENV:Fault><faultcode>Server.ServerProxy.UnknownService</faultcode><faultstring>Unknown service</faultstring><faultactor></faultactor><detail><faultDetail xmlns="">abc</faultDetail></detail></SOAP-ENV:Fault></SOAP-ENV:Body></SOAP-ENV:Envelope>"#;

    #[test]
    fn fault_codes_from_envelopes() {
        assert_eq!(
            soap_fault_code(None, FAULT.as_bytes()).as_deref(),
            Some("Server.ServerProxy.UnknownService")
        );
        // Prefixed, with whitespace, a QName code, SOAP 1.1 as other servers write it.
        let other = "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\">\n <s:Header/>\n <s:Body>\n  <s:Fault>\n   <s:faultcode> s:Server </s:faultcode>\n  </s:Fault>\n </s:Body>\n</s:Envelope>";
        assert_eq!(
            soap(500, None, other.as_bytes()),
            Outcome::Fault("Server".into())
        );
        assert_eq!(
            soap(200, Some("text/xml; charset=UTF-8"), FAULT.as_bytes()),
            Outcome::Fault("Server.ServerProxy.UnknownService".into())
        );
    }

    #[test]
    fn answers_that_only_mention_faultcode_are_not_faults() {
        let ok = "<e:Envelope xmlns:e=\"http://schemas.xmlsoap.org/soap/envelope/\"><e:Header><x:id xmlns:x=\"urn:x\">1</x:id></e:Header><e:Body><r:echo xmlns:r=\"urn:r\"><faultcode>not a fault</faultcode></r:echo></e:Body></e:Envelope>";
        assert_eq!(soap_fault_code(None, ok.as_bytes()), None);
        assert_eq!(soap(200, None, ok.as_bytes()), Outcome::Ok);
        assert_eq!(soap(200, None, b"faultcode in plain text"), Outcome::Ok);
        assert_eq!(soap(503, None, b"busy"), Outcome::Status(503));
    }

    #[test]
    fn fault_codes_from_multipart_answers() {
        let mp = format!("--b\r\nContent-Type: text/xml\r\n\r\n{FAULT}\r\n--b--\r\n");
        let ct = r#"multipart/related; type="text/xml"; boundary=b"#;
        assert_eq!(
            soap_fault_code(Some(ct), mp.as_bytes()).as_deref(),
            Some("Server.ServerProxy.UnknownService")
        );
        // Without its boundary it cannot be read, so it is not taken for a fault.
        assert_eq!(soap_fault_code(None, mp.as_bytes()), None);
        assert_eq!(soap(500, None, mp.as_bytes()), Outcome::Status(500));
    }

    #[test]
    fn hostile_fault_codes_are_bounded() {
        let long = FAULT.replace("Server.ServerProxy.UnknownService", &"é".repeat(1000));
        let Outcome::Fault(code) = soap(200, None, long.as_bytes()) else {
            panic!()
        };
        assert!(code.len() <= MAX_CODE);
        assert_eq!(Outcome::fault("  "), Outcome::Fault("(empty)".into()));
        // Broken XML never panics and is no fault.
        for junk in [
            &b"<a faultcode"[..],
            b"<<faultcode>>",
            b"faultcode</",
            b"\xff<faultcode>\xfe",
            b"x <a:faultcode>Client.X</a:faultcode>",
        ] {
            assert_eq!(soap_fault_code(None, junk), None);
        }
    }

    #[test]
    fn rest_errors_by_header_then_json_type_then_status() {
        let mut h = http::HeaderMap::new();
        assert_eq!(rest(200, &h, b"{}"), Outcome::Ok);
        assert_eq!(rest(404, &h, b"not found"), Outcome::Status(404));
        assert_eq!(
            rest(
                500,
                &h,
                br#"{"type":"Server.ServerProxy.AccessDenied","message":"x"}"#
            ),
            Outcome::Fault("Server.ServerProxy.AccessDenied".into())
        );
        // A service's own error type is its business, not an X-Road fault.
        assert_eq!(
            rest(400, &h, br#"{"type":"about:blank"}"#),
            Outcome::Status(400)
        );
        h.insert(
            "x-road-error",
            "Server.ClientProxy.NetworkError".parse().unwrap(),
        );
        assert_eq!(
            rest(500, &h, b""),
            Outcome::Fault("Server.ClientProxy.NetworkError".into())
        );
    }
}
