//! Typed payloads in and out of X-Road SOAP envelopes.
//!
//! Responses are read from network bytes: one streaming pass of the bounded XML reader (its
//! default limits) finds the Body's first element (or fault) and checks the whole document is
//! well-formed; only the wrapper's original bytes go to yaserde, with the namespace declarations of
//! Envelope and Body copied onto it so its prefixes still resolve.

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;

use super::{ClientError, Operation, Payload, XRoadHeader};
use brama_xroad::message::build::{self, RequestHeader};
use brama_xroad::message::soap::SoapMessage;
use brama_xroad::message::NS_SOAP_ENV;
use brama_xroad::xml::{Reader, XmlLimits};

/// A complete X-Road 4.0 request envelope for operation `O`.
pub fn request_envelope<O: Operation>(
    h: &XRoadHeader,
    req: &O::Request,
) -> Result<Vec<u8>, ClientError> {
    if h.service.service_code != O::NAME {
        return Err(ClientError::Request(format!(
            "the header names service '{}' but the body is {}",
            h.service.service_code,
            O::NAME
        )));
    }
    let body = request_body::<O>(req)?;
    let header = RequestHeader {
        client: h.client.clone(),
        service: h.service.clone(),
        id: h.id.clone(),
        user_id: h.user_id.clone(),
        issue: h.issue.clone(),
        security_server: None,
    };
    Ok(build::request(&header, &body).into_bytes())
}

/// The Body's element of operation `O`'s request, as XML text.
pub fn request_body<O: Operation>(req: &O::Request) -> Result<String, ClientError> {
    let config = yaserde::ser::Config {
        perform_indent: false,
        write_document_declaration: false,
        indent_string: None,
    };
    yaserde::ser::to_string_with_config(req, &config)
        .map_err(|e| ClientError::Request(format!("{}: {e}", O::Request::ELEMENT)))
}

/// Operation `O`'s request as the message the client proxy takes, built from its Body element
/// ([`request_body`]) without parsing it.
pub fn request_message<O: Operation>(h: &RequestHeader, body: &str) -> SoapMessage {
    build::request_message(
        h,
        build::BodyElement {
            xml: body,
            local_name: O::Request::ELEMENT,
            namespace: Some(O::NAMESPACE),
        },
    )
}

/// The typed response of operation `O`, or the SOAP fault it carries.
pub fn parse_response<O: Operation>(xml: &[u8]) -> Result<O::Response, ClientError> {
    let expected = O::Response::ELEMENT;
    match body_element(xml)? {
        BodyElement::Fault {
            code,
            string,
            detail,
        } => Err(ClientError::Fault {
            code,
            string,
            detail,
        }),
        BodyElement::Element {
            local,
            namespace,
            xml,
        } => {
            if local != expected || namespace.as_deref() != Some(O::NAMESPACE) {
                return Err(ClientError::Malformed(format!(
                    "expected {{{}}}{expected} in the Body, got {{{}}}{local}",
                    O::NAMESPACE,
                    namespace.unwrap_or_default()
                )));
            }
            yaserde::de::from_str(&xml)
                .map_err(|e| ClientError::Malformed(format!("{expected}: {e}")))
        }
    }
}

/// What the Body holds.
#[derive(Debug, PartialEq)]
pub(crate) enum BodyElement {
    Fault {
        code: String,
        string: String,
        detail: Option<String>,
    },
    /// The first element, as a standalone document.
    Element {
        local: String,
        namespace: Option<String>,
        xml: String,
    },
}

fn malformed(msg: impl Into<String>) -> ClientError {
    ClientError::Malformed(msg.into())
}

struct Scan<'x> {
    reader: Reader<'x>,
    depth: usize,
}

impl<'x> Scan<'x> {
    /// Next event with its namespace; tracks depth, refuses DOCTYPE and premature ends.
    fn next(&mut self) -> Result<(Option<String>, Event<'x>), ClientError> {
        let (ns, ev) = self
            .reader
            .read_resolved()
            .map_err(|e| malformed(format!("XML: {e}")))?;
        let ns = match ns {
            ResolveResult::Bound(n) => Some(String::from_utf8_lossy(n.as_ref()).into_owned()),
            ResolveResult::Unbound => None,
            ResolveResult::Unknown(p) => {
                return Err(malformed(format!(
                    "undeclared prefix '{}'",
                    String::from_utf8_lossy(&p)
                )))
            }
        };
        match &ev {
            Event::Start(_) => self.depth += 1,
            Event::End(_) => self.depth -= 1,
            Event::Eof if self.depth > 0 => return Err(malformed("unexpected end of document")),
            _ => {}
        }
        Ok((ns, ev))
    }

    fn pos(&self) -> usize {
        self.reader.position()
    }

    /// Reads to the end of the element whose start tag was just read.
    fn skip(&mut self) -> Result<(), ClientError> {
        let target = self.depth - 1;
        while self.depth > target {
            self.next()?;
        }
        Ok(())
    }

    /// Text content of the element just opened (nested elements' text included).
    fn text(&mut self) -> Result<String, ClientError> {
        let target = self.depth - 1;
        let mut out = String::new();
        while self.depth > target {
            match self.next()?.1 {
                Event::Text(t) => out.push_str(
                    &t.unescape()
                        .map_err(|e| malformed(format!("XML text: {e}")))?,
                ),
                Event::CData(c) => out.push_str(&String::from_utf8_lossy(&c)),
                _ => {}
            }
        }
        Ok(out.trim().to_string())
    }
}

/// `xmlns` / `xmlns:p` attributes of a start tag, as written (values still escaped).
fn declarations(s: &BytesStart) -> Vec<(Vec<u8>, Vec<u8>)> {
    s.attributes()
        .with_checks(false)
        .flatten()
        .filter(|a| a.key.as_ref() == b"xmlns" || a.key.as_ref().starts_with(b"xmlns:"))
        .map(|a| (a.key.as_ref().to_vec(), a.value.into_owned()))
        .collect()
}

pub(crate) fn body_element(xml: &[u8]) -> Result<BodyElement, ClientError> {
    let xml = xml.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(xml);
    let mut s = Scan {
        reader: Reader::new(xml, &XmlLimits::DEFAULT)
            .map_err(|e| malformed(format!("XML: {e}")))?,
        depth: 0,
    };
    // The reader checked that the document is UTF-8.
    let text = std::str::from_utf8(xml).map_err(|e| malformed(format!("not UTF-8: {e}")))?;
    let soap = Some(NS_SOAP_ENV.to_string());
    // Namespace declarations on Envelope and Body, which the wrapper may rely on.
    let mut outer: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let (mut found, mut seen_body, mut in_body) = (None, false, false);
    loop {
        let before = s.pos();
        let (ns, ev) = s.next()?;
        let (e, empty) = match &ev {
            Event::Start(e) => (e, false),
            Event::Empty(e) => (e, true),
            Event::End(_) if s.depth == 1 => {
                in_body = false;
                continue;
            }
            Event::Eof => break,
            _ => continue,
        };
        let local = e.local_name();
        let level = s.depth + usize::from(empty);
        // Whether the element is dealt with (entered or read); anything else is skipped.
        let mut consumed = empty;
        match level {
            1 if ns == soap && local.as_ref() == b"Envelope" => {
                consumed = true;
                outer.extend(declarations(e));
            }
            1 => return Err(malformed("not a SOAP 1.1 Envelope")),
            2 if ns == soap && local.as_ref() == b"Body" => {
                if seen_body {
                    return Err(malformed("a second SOAP Body"));
                }
                (seen_body, in_body, consumed) = (true, !empty, true);
                outer.extend(declarations(e));
            }
            3 if in_body && found.is_none() => {
                consumed = true;
                found = Some(if ns == soap && local.as_ref() == b"Fault" {
                    if empty {
                        fault_parts(Default::default())
                    } else {
                        fault(&mut s, text)?
                    }
                } else {
                    let own = declarations(e);
                    let local = String::from_utf8_lossy(local.as_ref()).into_owned();
                    if !empty {
                        s.skip()?;
                    }
                    let name_end = before + 1 + e.name().as_ref().len();
                    BodyElement::Element {
                        local,
                        namespace: ns,
                        xml: standalone(text, before, name_end, s.pos(), &outer, &own),
                    }
                });
            }
            _ => {}
        }
        if !consumed {
            s.skip()?;
        }
    }
    found.ok_or_else(|| malformed("the SOAP Body is missing or empty"))
}

/// The wrapper's bytes with the outer declarations it does not override added to its tag.
fn standalone(
    text: &str,
    start: usize,
    name_end: usize,
    end: usize,
    outer: &[(Vec<u8>, Vec<u8>)],
    own: &[(Vec<u8>, Vec<u8>)],
) -> String {
    let mut out = String::with_capacity(end - start + 256);
    out.push_str(&text[start..name_end]);
    let mut added: Vec<&[u8]> = Vec::new();
    // Innermost (Body) declarations win over the Envelope's.
    for (k, v) in outer.iter().rev() {
        if own.iter().any(|(o, _)| o == k) || added.contains(&k.as_slice()) {
            continue;
        }
        added.push(k);
        let value = String::from_utf8_lossy(v);
        out.push(' ');
        out.push_str(&String::from_utf8_lossy(k));
        out.push_str("=\"");
        out.push_str(&value.replace('"', "&quot;"));
        out.push('"');
    }
    out.push_str(&text[name_end..end]);
    out
}

fn fault_parts((code, string, detail): (String, String, Option<String>)) -> BodyElement {
    // `SOAP-ENV:Server.X` and `Server.X` are the same code.
    let code = match code.split_once(':') {
        Some((_, rest)) => rest.to_string(),
        None => code,
    };
    BodyElement::Fault {
        code,
        string,
        detail,
    }
}

/// `faultcode`, `faultstring` and `detail` of the Fault just opened.
fn fault(s: &mut Scan, text: &str) -> Result<BodyElement, ClientError> {
    let target = s.depth - 1;
    let (mut code, mut string, mut detail) = (String::new(), String::new(), None);
    while s.depth > target {
        let Event::Start(e) = s.next()?.1 else {
            continue;
        };
        match e.local_name().as_ref() {
            b"faultcode" => code = s.text()?,
            b"faultstring" => string = s.text()?,
            b"detail" => {
                let (inner_start, d) = (s.pos(), s.depth - 1);
                let (mut inner_end, mut fault_detail) = (inner_start, None);
                while s.depth > d {
                    inner_end = s.pos();
                    if let (_, Event::Start(c)) = s.next()? {
                        if c.local_name().as_ref() == b"faultDetail" && s.depth == d + 2 {
                            fault_detail = Some(s.text()?);
                        }
                    }
                }
                let raw = text[inner_start..inner_end].trim();
                detail = fault_detail.or_else(|| (!raw.is_empty()).then(|| raw.to_string()));
            }
            _ => s.skip()?,
        }
    }
    Ok(fault_parts((code, string, detail)))
}
