//! What became of one request: success, an X-Road fault (by code), an HTTP status, or a
//! transport failure. Answers come from any security server, so nothing here trusts their shape.

use memchr::memmem;
use quick_xml::events::Event;

/// Longest fault code kept; longer ones are cut (a hostile or broken server must not make the
/// error table grow without bound per request).
const MAX_CODE: usize = 128;

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
pub const KINDS: [&str; 5] = ["fault", "http_status", "connect", "timeout", "io"];

impl Outcome {
    pub fn is_ok(&self) -> bool {
        matches!(self, Outcome::Ok)
    }

    /// One of [`KINDS`]; `None` for success.
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
pub fn soap(status: u16, body: &[u8]) -> Outcome {
    if let Some(code) = soap_fault_code(body) {
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
pub fn json_type(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Typed {
        #[serde(rename = "type")]
        ty: Option<String>,
    }
    serde_json::from_slice::<Typed>(body).ok()?.ty
}

/// The `faultcode` of a SOAP fault answer, if the answer is one.
///
/// Most answers are not faults and never contain the word, so one `memmem` pass rejects them.
/// Otherwise the envelope is read with quick-xml up to `Envelope/Body/Fault/faultcode`; when it
/// is not plain XML (a multipart answer) the first `<…faultcode>` element's text is taken.
pub fn soap_fault_code(body: &[u8]) -> Option<String> {
    memmem::find(body, b"faultcode")?;
    match xml_fault_code(body) {
        Ok(found) => found,
        Err(()) => scan_fault_code(body),
    }
}

/// Reads `Envelope/Body/Fault/faultcode` by local names; `Err` when the bytes are not XML.
fn xml_fault_code(body: &[u8]) -> Result<Option<String>, ()> {
    const PATH: [&[u8]; 4] = [b"Envelope", b"Body", b"Fault", b"faultcode"];
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut depth = 0usize;
    let mut matched = 0usize;
    let mut text = String::new();
    loop {
        match reader.read_event().map_err(|_| ())? {
            Event::Start(e) => {
                if matched == depth && matched < PATH.len() {
                    if e.local_name().as_ref() == PATH[matched] {
                        matched += 1;
                    } else if matched == 2 {
                        // The Body's first element is not a Fault.
                        return Ok(None);
                    }
                }
                depth += 1;
            }
            Event::Empty(e) if matched == depth => match matched {
                2 => return Ok(None),
                3 if e.local_name().as_ref() == PATH[3] => return Ok(Some(String::new())),
                _ => {}
            },
            Event::Text(t) if matched == PATH.len() && depth == matched => {
                text.push_str(&t.unescape().map_err(|_| ())?);
                if text.len() > MAX_CODE * 4 {
                    return Ok(Some(text));
                }
            }
            Event::End(_) => {
                if matched == PATH.len() && depth == matched {
                    return Ok(Some(text));
                }
                // The Body, or a Fault without a faultcode, closed.
                if matched == depth && matched >= 2 {
                    return Ok(None);
                }
                depth = depth.saturating_sub(1);
                matched = matched.min(depth);
            }
            Event::Eof => return Ok(None),
            _ => {}
        }
    }
}

/// `<faultcode>X</faultcode>` or `<p:faultcode …>X</…>`, by text.
fn scan_fault_code(body: &[u8]) -> Option<String> {
    let mut from = 0;
    while let Some(i) = memmem::find(&body[from..], b"faultcode") {
        let at = from + i;
        from = at + b"faultcode".len();
        // The name must start an element: `<faultcode` or `<prefix:faultcode`.
        let head = &body[..at];
        let name_start = head
            .iter()
            .rposition(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':')))
            .map_or(0, |p| p + 1);
        if name_start == 0 || body[name_start - 1] != b'<' {
            continue;
        }
        let prefix = &body[name_start..at];
        if !(prefix.is_empty() || prefix.ends_with(b":")) {
            continue;
        }
        let rest = &body[from..];
        let gt = memchr::memchr(b'>', rest)?;
        if rest[..gt].ends_with(b"/") {
            return Some(String::new());
        }
        let text = &rest[gt + 1..];
        let end = memchr::memchr(b'<', text)
            .unwrap_or(text.len())
            .min(MAX_CODE * 4);
        return Some(String::from_utf8_lossy(&text[..end]).into_owned());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAULT: &str = r#"<?xml version="1.0" encoding="UTF-8"?><SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Body><SOAP-ENV:Fault><faultcode>Server.ServerProxy.UnknownService</faultcode><faultstring>Unknown service</faultstring><faultactor></faultactor><detail><faultDetail xmlns="">abc</faultDetail></detail></SOAP-ENV:Fault></SOAP-ENV:Body></SOAP-ENV:Envelope>"#;

    #[test]
    fn fault_codes_from_envelopes() {
        assert_eq!(
            soap_fault_code(FAULT.as_bytes()).as_deref(),
            Some("Server.ServerProxy.UnknownService")
        );
        // Prefixed, with whitespace, a QName code, SOAP 1.1 as other servers write it.
        let other = "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\">\n <s:Header/>\n <s:Body>\n  <s:Fault>\n   <s:faultcode> s:Server </s:faultcode>\n  </s:Fault>\n </s:Body>\n</s:Envelope>";
        assert_eq!(soap(500, other.as_bytes()), Outcome::Fault("Server".into()));
        assert_eq!(
            soap(200, FAULT.as_bytes()),
            Outcome::Fault("Server.ServerProxy.UnknownService".into())
        );
    }

    #[test]
    fn answers_that_only_mention_faultcode_are_not_faults() {
        let ok = "<e:Envelope xmlns:e=\"http://schemas.xmlsoap.org/soap/envelope/\"><e:Header><x:id xmlns:x=\"urn:x\">1</x:id></e:Header><e:Body><r:echo xmlns:r=\"urn:r\"><faultcode>not a fault</faultcode></r:echo></e:Body></e:Envelope>";
        assert_eq!(soap_fault_code(ok.as_bytes()), None);
        assert_eq!(soap(200, ok.as_bytes()), Outcome::Ok);
        assert_eq!(soap(200, b"faultcode in plain text"), Outcome::Ok);
        assert_eq!(soap(503, b"busy"), Outcome::Status(503));
    }

    #[test]
    fn fault_codes_from_multipart_answers_by_scan() {
        let mp = format!("--b\r\nContent-Type: text/xml\r\n\r\n{FAULT}\r\n--b--\r\n");
        assert_eq!(
            soap_fault_code(mp.as_bytes()).as_deref(),
            Some("Server.ServerProxy.UnknownService")
        );
        assert_eq!(
            scan_fault_code(b"x <a:faultcode>Client.X</a:faultcode>").as_deref(),
            Some("Client.X")
        );
        assert_eq!(scan_fault_code(b"<myfaultcode>no</myfaultcode>"), None);
        assert_eq!(scan_fault_code(b"<faultcode"), None);
        assert_eq!(scan_fault_code(b"<faultcode/>").as_deref(), Some(""));
    }

    #[test]
    fn hostile_fault_codes_are_bounded() {
        let long = format!("<faultcode>{}</faultcode>", "é".repeat(1000));
        let Outcome::Fault(code) = Outcome::fault(&scan_fault_code(long.as_bytes()).unwrap())
        else {
            panic!()
        };
        assert!(code.len() <= MAX_CODE);
        assert_eq!(Outcome::fault("  "), Outcome::Fault("(empty)".into()));
        // Broken XML never panics and never loops.
        for junk in [
            &b"<a faultcode"[..],
            b"<<faultcode>>",
            b"faultcode</",
            b"\xff<faultcode>\xfe",
        ] {
            let _ = soap_fault_code(junk);
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
