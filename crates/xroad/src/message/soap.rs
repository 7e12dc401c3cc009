//! Streaming parse of X-Road SOAP 4.0 envelopes (reference §1).
//!
//! The message's bytes are never rewritten: the parser records where the header ends (and where an
//! existing `requestHash` sits) so the provider side can set `requestHash` by splicing, and the
//! request hash, signatures and message log all see exactly what the information system sent.

use std::borrow::Cow;
use std::ops::Range;

use bytes::{Bytes, BytesMut};
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{Namespace, ResolveResult};

use super::{MessageError, NS_IDENTIFIERS, NS_REPRESENTATION, NS_SOAP_ENV, NS_XROAD};
use crate::error::ErrorCode;
use crate::identifiers::{is_valid_part, ClientId, SecurityServerId, ServiceId};
use crate::xml::{Reader, XmlError, XmlLimits};

/// Parser limits; every one is configurable under `[limits]`.
#[derive(Clone, Debug)]
pub struct SoapLimits {
    /// Bounds on the envelope as an XML document (depth, elements, attributes, namespaces, ...).
    pub xml: XmlLimits,
    /// Most header elements accepted (X-Road and foreign ones together).
    pub max_header_elements: usize,
}

impl Default for SoapLimits {
    fn default() -> Self {
        SoapLimits {
            xml: XmlLimits::default(),
            max_header_elements: 64,
        }
    }
}

impl SoapLimits {
    pub fn new(xml: XmlLimits) -> Self {
        SoapLimits {
            xml,
            ..SoapLimits::default()
        }
    }
}

/// `repr:representedParty`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepresentedParty {
    pub party_class: Option<String>,
    pub party_code: String,
}

/// The X-Road header fields found in an envelope. Requests must have client, service, id and
/// protocolVersion (checked by [`SoapMessage::validate_request`]); responses may lack any of them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct XRoadHeader {
    pub client: Option<ClientId>,
    pub service: Option<ServiceId>,
    pub id: Option<String>,
    pub user_id: Option<String>,
    pub issue: Option<String>,
    pub protocol_version: Option<String>,
    pub request_hash: Option<RequestHash>,
    pub security_server: Option<SecurityServerId>,
    pub represented_party: Option<RepresentedParty>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHash {
    pub algorithm_id: Option<String>,
    pub value: String,
}

/// What the body holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SoapBody {
    /// The one child element of `Body` (the operation wrapper).
    Element {
        local_name: String,
        namespace: Option<String>,
    },
    /// A SOAP 1.1 fault.
    Fault {
        code: String,
        string: String,
        detail: Option<String>,
    },
}

/// A parsed envelope plus its original bytes.
#[derive(Clone, Debug)]
pub struct SoapMessage {
    pub bytes: Bytes,
    pub header: XRoadHeader,
    has_header: bool,
    /// `None` when the envelope has no (or an empty) `Header` element.
    header_span: Option<HeaderSpan>,
    /// Offsets of the Body element's content in `bytes`.
    body_content: Range<usize>,
    /// The Envelope's and the Body's start tags (their namespace declarations are read again
    /// only when a standalone copy of the Body's element is asked for).
    envelope_tag: Range<usize>,
    body_tag: Range<usize>,
    /// A fault's `detail` content.
    fault_detail: Option<Range<usize>>,
    /// Where the Body's element is, when it was parsed (not built) and is not a fault.
    element: Option<ElementSpan>,
    pub body: SoapBody,
}

/// Offsets of the Body's one element: its start tag and its content.
#[derive(Clone, Debug)]
struct ElementSpan {
    start_tag: Range<usize>,
    content: Range<usize>,
    /// A default namespace is in scope inside Body (declared on Envelope or Body).
    default_ns_in_body: bool,
}

/// The Body's one element as received (see [`SoapMessage::body_element`]).
#[derive(Clone, Copy, Debug)]
pub struct BodyElementText<'a> {
    /// `<p:op xmlns:p="…">`, byte for byte.
    pub start_tag: &'a [u8],
    /// Everything between its start and end tag.
    pub content: &'a [u8],
    /// A default namespace is in scope inside Body: unprefixed children written into a new
    /// element there would fall into it.
    pub default_ns_in_body: bool,
}

#[derive(Clone, Debug)]
struct HeaderSpan {
    /// Offset of the header's end tag (`</SOAP-ENV:Header>`), where new fields are inserted.
    end_tag: usize,
    request_hash: Option<Range<usize>>,
}

fn err(code: ErrorCode, msg: impl Into<String>) -> MessageError {
    MessageError::new(code, msg)
}

fn invalid_xml(e: XmlError) -> MessageError {
    err(ErrorCode::InvalidXml, format!("Malformed XML: {e}"))
}

impl SoapMessage {
    /// Parses an envelope. `charset` is the `Content-Type` parameter (UTF-8 when absent).
    pub fn parse(
        bytes: Bytes,
        charset: Option<&str>,
        limits: &SoapLimits,
    ) -> Result<Self, MessageError> {
        let text = Decoded::new(&bytes, charset)?;
        let mut p = Parser {
            reader: Reader::new(text.utf8(), &limits.xml).map_err(invalid_xml)?,
            limits,
            depth: 0,
            detail_span: None,
        };
        let parsed = p.envelope()?;
        p.nothing_after_envelope(text.utf8())?;
        let body_content = text.original_offset(parsed.body_content.start)
            ..text.original_offset(parsed.body_content.end);
        let range = |r: Range<usize>| text.original_offset(r.start)..text.original_offset(r.end);
        let header_span = parsed.header_span.map(|h| HeaderSpan {
            end_tag: text.original_offset(h.end_tag),
            request_hash: h.request_hash.map(range),
        });
        let element = parsed.element.map(|e| ElementSpan {
            start_tag: range(e.start_tag),
            content: range(e.content),
            default_ns_in_body: e.default_ns_in_body,
        });
        let envelope_tag = range(parsed.envelope_tag);
        let body_tag = range(parsed.body_tag);
        let fault_detail = parsed.fault_detail.map(range);
        drop(text);
        Ok(SoapMessage {
            bytes,
            has_header: parsed.has_header,
            header: parsed.header,
            header_span,
            body_content,
            envelope_tag,
            body_tag,
            fault_detail,
            element,
            body: parsed.body,
        })
    }

    /// A message written by [`super::build::request_message`], which knows what a parse would
    /// find: its header fields, where the header ends, and where the Body's content is.
    pub(super) fn built(
        bytes: Bytes,
        header: XRoadHeader,
        spans: &super::build::Spans,
        body: SoapBody,
    ) -> SoapMessage {
        let start = spans.envelope_start;
        // Built messages are sent, never asked for their Body's element or a fault's detail.
        SoapMessage {
            envelope_tag: start..start,
            body_tag: spans.body.start..spans.body.start,
            fault_detail: None,
            element: None,
            bytes,
            header,
            has_header: true,
            header_span: Some(HeaderSpan {
                end_tag: spans.header_end,
                request_hash: None,
            }),
            body_content: spans.body.clone(),
            body,
        }
    }

    pub fn is_fault(&self) -> bool {
        matches!(self.body, SoapBody::Fault { .. })
    }

    /// Checks what a request must carry (reference §1.3, §1.4).
    pub fn validate_request(&self) -> Result<(), MessageError> {
        if !self.has_header {
            return Err(err(
                ErrorCode::MissingHeader,
                "Malformed SOAP message: header missing",
            ));
        }
        let h = &self.header;
        for (present, name) in [
            (h.client.is_some(), "client"),
            (h.service.is_some(), "service"),
            (h.id.is_some(), "id"),
            (h.protocol_version.is_some(), "protocolVersion"),
        ] {
            if !present {
                return Err(err(
                    ErrorCode::MissingHeaderField,
                    format!("Required field '{name}' is missing"),
                ));
            }
        }
        if h.protocol_version.as_deref() != Some("4.0") {
            return Err(err(
                ErrorCode::InvalidProtocolVersion,
                format!(
                    "Invalid protocol version (expected 4.0, got '{}')",
                    h.protocol_version.as_deref().unwrap_or_default()
                ),
            ));
        }
        match &self.body {
            SoapBody::Fault { .. } => Err(err(
                ErrorCode::InvalidBody,
                "Malformed SOAP message: a request cannot be a fault",
            )),
            SoapBody::Element { local_name, .. } => {
                let code = &h.service.as_ref().expect("checked above").service_code;
                if local_name.starts_with(code.as_str()) {
                    Ok(())
                } else {
                    Err(err(
                        ErrorCode::InconsistentHeaders,
                        format!(
                            "Malformed SOAP message: service code '{code}' does not match body element '{local_name}'"
                        ),
                    ))
                }
            }
        }
    }

    /// The client id, service id and message id of a validated request.
    pub fn route(&self) -> (&ClientId, &ServiceId, &str) {
        let h = &self.header;
        (
            h.client.as_ref().expect("validated request"),
            h.service.as_ref().expect("validated request"),
            h.id.as_deref().expect("validated request"),
        )
    }

    /// Returns the bytes with `requestHash` set: an existing one is replaced, else one is inserted
    /// just before the header's end tag. Without a header the bytes come back unchanged.
    pub fn with_request_hash(&self, algorithm_uri: &str, hash_b64: &str) -> Bytes {
        let Some(span) = &self.header_span else {
            return self.bytes.clone();
        };
        let element = format!(
            "<xrd:requestHash xmlns:xrd=\"{NS_XROAD}\" algorithmId=\"{algorithm_uri}\">{hash_b64}</xrd:requestHash>"
        );
        let range = span
            .request_hash
            .clone()
            .unwrap_or(span.end_tag..span.end_tag);
        let mut out = BytesMut::with_capacity(self.bytes.len() + element.len());
        out.extend_from_slice(&self.bytes[..range.start]);
        out.extend_from_slice(element.as_bytes());
        out.extend_from_slice(&self.bytes[range.end..]);
        out.freeze()
    }

    /// The Body element's content, as received.
    pub fn body_content(&self) -> &[u8] {
        &self.bytes[self.body_content.clone()]
    }

    /// The envelope with the Body's content left out: the message log's copy when body logging
    /// is off (X-Road's `message-body-logging`; the signature no longer verifies against it).
    /// The Body's element stays, empty, so the copy is still one request of one operation.
    pub fn with_empty_body(&self) -> Vec<u8> {
        let cut = match &self.element {
            Some(e) => e.content.clone(),
            None => self.body_content.clone(),
        };
        [&self.bytes[..cut.start], &self.bytes[cut.end..]].concat()
    }

    /// The Body's one element as received: its start tag and content. `None` for a fault and
    /// for a message this server built.
    pub fn body_element(&self) -> Option<BodyElementText<'_>> {
        self.element.as_ref().map(|e| BodyElementText {
            start_tag: &self.bytes[e.start_tag.clone()],
            content: &self.bytes[e.content.clone()],
            default_ns_in_body: e.default_ns_in_body,
        })
    }

    /// Offset of the Envelope's start tag: what comes before it is an XML declaration (or a
    /// byte-order mark), comments and whitespace.
    pub fn envelope_start(&self) -> usize {
        self.envelope_tag.start
    }

    /// A fault's `detail` content as received (the service's own detail, when it is not
    /// X-Road's `faultDetail`).
    pub fn fault_detail_content(&self) -> Option<&[u8]> {
        self.fault_detail.clone().map(|r| &self.bytes[r])
    }

    /// The Body's element as a document of its own: the namespace declarations of Envelope and
    /// Body that it does not override are added to its start tag, so its prefixes still resolve
    /// when it is read alone (by a typed deserializer).
    pub fn body_element_standalone(&self) -> Option<String> {
        let e = self.element.as_ref()?;
        let text = |r: Range<usize>| String::from_utf8_lossy(&self.bytes[r]).into_owned();
        let tag = text(e.start_tag.clone());
        let empty = tag.ends_with("/>");
        let name_end = 1 + tag_qname(&tag).len();
        let own = tag_declarations(&tag);
        let mut added: Vec<String> = Vec::new();
        let mut out = String::with_capacity(tag.len() + e.content.len() + 256);
        out.push_str(&tag[..name_end]);
        // Body's declarations win over the Envelope's.
        for outer in [text(self.body_tag.clone()), text(self.envelope_tag.clone())] {
            for (k, v) in tag_declarations(&outer) {
                if own.iter().any(|(o, _)| *o == k) || added.contains(&k) {
                    continue;
                }
                out.push_str(&format!(" {k}=\"{}\"", v.replace('"', "&quot;")));
                added.push(k);
            }
        }
        out.push_str(&tag[name_end..]);
        if !empty {
            out.push_str(&String::from_utf8_lossy(&self.bytes[e.content.clone()]));
            out.push_str("</");
            out.push_str(&tag[1..name_end]);
            out.push('>');
        }
        Some(out)
    }

    /// A copy of this envelope (header echoed byte for byte) whose Body holds `content` instead.
    /// Used by the metaservices, whose answers echo the request's header.
    pub fn with_body(&self, content: &[u8]) -> Bytes {
        let mut out = BytesMut::with_capacity(self.bytes.len() + content.len());
        out.extend_from_slice(&self.bytes[..self.body_content.start]);
        out.extend_from_slice(content);
        out.extend_from_slice(&self.bytes[self.body_content.end..]);
        out.freeze()
    }

    /// Sets `requestHash` in place (see [`Self::with_request_hash`]), keeping offsets right.
    pub fn set_request_hash(&mut self, algorithm_uri: &str, hash_b64: &str) {
        let Some(span) = &self.header_span else {
            return;
        };
        let old = span
            .request_hash
            .clone()
            .unwrap_or(span.end_tag..span.end_tag);
        let bytes = self.with_request_hash(algorithm_uri, hash_b64);
        let new_len = bytes.len() + old.len() - self.bytes.len();
        let shift = |o: usize| o + new_len - old.len();
        self.body_content = shift(self.body_content.start)..shift(self.body_content.end);
        self.header_span = Some(HeaderSpan {
            end_tag: shift(span.end_tag),
            request_hash: Some(old.start..old.start + new_len),
        });
        self.bytes = bytes;
        self.header.request_hash = Some(RequestHash {
            algorithm_id: Some(algorithm_uri.to_string()),
            value: hash_b64.to_string(),
        });
    }

    /// Compares the response's echoed header with the request's (reference §1.5). Returns the first
    /// field that differs.
    pub fn inconsistent_echo(
        request: &XRoadHeader,
        response: &XRoadHeader,
    ) -> Option<&'static str> {
        if request.client != response.client {
            Some("client")
        } else if request.service != response.service {
            Some("service")
        } else if request.user_id != response.user_id {
            Some("userId")
        } else if request.represented_party != response.represented_party {
            Some("representedParty")
        } else if request.issue != response.issue {
            Some("issue")
        } else if request.id != response.id {
            Some("id")
        } else {
            None
        }
    }
}

/// The envelope as UTF-8 for the parser, and the way back to offsets in the original bytes.
enum Decoded<'a> {
    Utf8 { text: &'a [u8], skipped: usize },
    Latin1(String),
}

impl<'a> Decoded<'a> {
    fn new(bytes: &'a [u8], charset: Option<&str>) -> Result<Self, MessageError> {
        let charset = charset
            .unwrap_or("utf-8")
            .trim_matches('"')
            .to_ascii_lowercase();
        match charset.as_str() {
            "utf-8" | "utf8" | "us-ascii" | "ascii" => {
                let skipped = if bytes.starts_with(b"\xEF\xBB\xBF") {
                    3
                } else {
                    0
                };
                // UTF-8 is checked by the XML reader.
                Ok(Decoded::Utf8 {
                    text: &bytes[skipped..],
                    skipped,
                })
            }
            // Latin-1 maps each byte to the code point of the same value.
            "iso-8859-1" | "latin1" | "iso8859-1" => {
                Ok(Decoded::Latin1(bytes.iter().map(|&b| b as char).collect()))
            }
            other => Err(err(
                ErrorCode::InvalidContentType,
                format!("Unsupported charset '{other}'"),
            )),
        }
    }

    fn utf8(&self) -> &[u8] {
        match self {
            Decoded::Utf8 { text, .. } => text,
            Decoded::Latin1(s) => s.as_bytes(),
        }
    }

    fn original_offset(&self, offset: usize) -> usize {
        match self {
            Decoded::Utf8 { skipped, .. } => offset + skipped,
            Decoded::Latin1(s) => s[..offset].chars().count(),
        }
    }
}

struct ParsedEnvelope {
    envelope_tag: Range<usize>,
    body_tag: Range<usize>,
    fault_detail: Option<Range<usize>>,
    element: Option<ElementSpan>,
    body_content: Range<usize>,
    has_header: bool,
    header: XRoadHeader,
    header_span: Option<HeaderSpan>,
    body: SoapBody,
}

/// The namespaces the parser acts on; everything else is `Other`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ns {
    SoapEnv,
    XRoad,
    Identifiers,
    Representation,
    Other,
}

impl Ns {
    fn of(ns: Option<&[u8]>) -> Ns {
        match ns {
            Some(n) if n == NS_SOAP_ENV.as_bytes() => Ns::SoapEnv,
            Some(n) if n == NS_XROAD.as_bytes() => Ns::XRoad,
            Some(n) if n == NS_IDENTIFIERS.as_bytes() => Ns::Identifiers,
            Some(n) if n == NS_REPRESENTATION.as_bytes() => Ns::Representation,
            _ => Ns::Other,
        }
    }
}

/// Which namespace an element or attribute resolved to.
fn ns_of<'a>(r: &'a ResolveResult<'_>) -> Option<&'a [u8]> {
    match r {
        ResolveResult::Bound(Namespace(ns)) => Some(ns),
        _ => None,
    }
}

/// The namespace declarations (`xmlns`, `xmlns:p`) of a start tag, name and value as written.
pub fn tag_declarations(tag: &str) -> Vec<(String, String)> {
    let name_len = tag_qname(tag).len();
    let Some(inner) = tag.get(1..) else {
        return Vec::new();
    };
    let inner = inner.trim_end_matches('>').trim_end_matches('/');
    BytesStart::from_content(inner, name_len)
        .attributes()
        .flatten()
        .filter(|a| a.key.as_ref() == b"xmlns" || a.key.as_ref().starts_with(b"xmlns:"))
        .map(|a| {
            (
                String::from_utf8_lossy(a.key.as_ref()).into_owned(),
                String::from_utf8_lossy(&a.value).into_owned(),
            )
        })
        .collect()
}

/// The qualified name of a start tag as written: `p:op` of `<p:op xmlns:p="…">`.
pub fn tag_qname(tag: &str) -> &str {
    let name = tag.get(1..).unwrap_or_default();
    let end = name
        .find(|c: char| c.is_ascii_whitespace() || c == '>' || c == '/')
        .unwrap_or(name.len());
    &name[..end]
}

/// The length of a start tag as written: `<` name and attributes `>` (or `/>`).
fn tag_len(e: &BytesStart, empty: bool) -> usize {
    e.len() + if empty { 3 } else { 2 }
}

fn local(e: &BytesStart) -> String {
    String::from_utf8_lossy(e.local_name().as_ref()).into_owned()
}

struct Parser<'i, 'l> {
    reader: Reader<'i>,
    limits: &'l SoapLimits,
    depth: usize,
    /// Where the fault's `detail` content is, once read.
    detail_span: Option<Range<usize>>,
}

impl<'i> Parser<'i, '_> {
    fn pos(&self) -> usize {
        self.reader.position()
    }

    /// Next event that matters (comments, PIs and whitespace are skipped); tracks depth.
    fn next(&mut self) -> Result<(Ns, Event<'i>), MessageError> {
        loop {
            let (ns, ev) = self.reader.read_resolved().map_err(invalid_xml)?;
            if let ResolveResult::Unknown(prefix) = &ns {
                return Err(err(
                    ErrorCode::InvalidXml,
                    format!(
                        "Malformed XML: undeclared namespace prefix '{}'",
                        String::from_utf8_lossy(prefix)
                    ),
                ));
            }
            let ns = Ns::of(ns_of(&ns));
            match &ev {
                Event::Comment(_) | Event::PI(_) | Event::Decl(_) => continue,
                Event::Start(_) => self.depth += 1,
                Event::End(_) => self.depth -= 1,
                Event::Eof => {
                    return Err(err(
                        ErrorCode::InvalidXml,
                        "Malformed XML: unexpected end of document",
                    ))
                }
                _ => {}
            }
            return Ok((ns, ev));
        }
    }

    /// Like `next` but skips text that is only whitespace.
    fn next_markup(&mut self) -> Result<(Ns, Event<'i>), MessageError> {
        loop {
            let (ns, ev) = self.next()?;
            if let Event::Text(t) = &ev {
                if t.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
            }
            return Ok((ns, ev));
        }
    }

    /// A document has one root: after the Envelope only comments, processing instructions and
    /// whitespace may follow.
    #[inline(never)]
    fn nothing_after_envelope(&mut self, input: &[u8]) -> Result<(), MessageError> {
        // Usually a newline at most: no need to ask the reader for it.
        let rest = input.get(self.pos()..).unwrap_or_default();
        if rest.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        loop {
            match self.reader.read().map_err(invalid_xml)? {
                Event::Eof => return Ok(()),
                Event::Comment(_) | Event::PI(_) => {}
                Event::Text(t) if t.iter().all(u8::is_ascii_whitespace) => {}
                _ => {
                    return Err(err(
                        ErrorCode::InvalidSoap,
                        "Malformed SOAP message: content after the Envelope",
                    ))
                }
            }
        }
    }

    /// Skips the rest of the element whose start tag was just read; returns where its end tag
    /// starts.
    fn skip_to_end_tag(&mut self) -> Result<usize, MessageError> {
        let target = self.depth - 1;
        let mut at = self.pos();
        while self.depth > target {
            at = self.pos();
            self.next()?;
        }
        Ok(at)
    }

    /// Skips the rest of the element whose start tag was just read.
    fn skip_element(&mut self) -> Result<(), MessageError> {
        let target = self.depth - 1;
        while self.depth > target {
            self.next()?;
        }
        Ok(())
    }

    /// Reads the text content of the element whose start tag was just read.
    fn text(&mut self) -> Result<String, MessageError> {
        let mut out = String::new();
        loop {
            match self.next()?.1 {
                Event::Text(t) => out.push_str(
                    &t.unescape()
                        .map_err(|e| err(ErrorCode::InvalidXml, format!("Malformed XML: {e}")))?,
                ),
                Event::CData(c) => out.push_str(&String::from_utf8_lossy(&c)),
                Event::End(_) => return Ok(out),
                Event::Start(_) => {
                    return Err(err(
                        ErrorCode::InvalidXml,
                        "Unexpected element inside a text field",
                    ))
                }
                _ => {}
            }
        }
    }

    fn envelope(&mut self) -> Result<ParsedEnvelope, MessageError> {
        let (ns, ev) = self.next_markup().map_err(|e| {
            if e.code == ErrorCode::InvalidXml && e.message.contains("unexpected end") {
                err(
                    ErrorCode::InvalidSoap,
                    "Malformed SOAP message: empty document",
                )
            } else {
                e
            }
        })?;
        let start = match &ev {
            Event::Start(s) | Event::Empty(s) => s.clone().into_owned(),
            _ => {
                return Err(err(
                    ErrorCode::InvalidSoap,
                    "Malformed SOAP message: no root element",
                ))
            }
        };
        let envelope_tag = self.pos() - tag_len(&start, matches!(ev, Event::Empty(_)))..self.pos();
        if ns != Ns::SoapEnv || start.local_name().as_ref() != b"Envelope" {
            return Err(err(
                ErrorCode::InvalidSoap,
                "Malformed SOAP message: root is not a SOAP 1.1 Envelope",
            ));
        }
        if self.has_encoding_style(&start) {
            return Err(err(
                ErrorCode::InvalidSoap,
                "Malformed SOAP message: RPC/encoded messages are not supported (document/literal only)",
            ));
        }
        if matches!(ev, Event::Empty(_)) {
            return Err(err(
                ErrorCode::MissingBody,
                "Malformed SOAP message: body missing",
            ));
        }

        let mut header = XRoadHeader::default();
        let mut header_span = None;
        let mut has_header = false;
        let mut body = None;
        let mut body_content = 0..0;
        let mut body_tag = 0..0;
        let mut fault_detail = None;
        let mut element = None;
        loop {
            let (ns, ev) = self.next_markup()?;
            match ev {
                Event::Start(s) | Event::Empty(s) if ns == Ns::SoapEnv => {
                    let empty = self.depth == 1;
                    match s.local_name().as_ref() {
                        b"Header" if body.is_none() && !has_header => {
                            has_header = true;
                            // `<Header/>` has no fields and no place to insert a requestHash.
                            if !empty {
                                header_span = Some(self.header(&mut header)?);
                            }
                        }
                        b"Body" if body.is_none() => {
                            if empty {
                                return Err(err(
                                    ErrorCode::InvalidBody,
                                    "Malformed SOAP message: body must have exactly one child element",
                                ));
                            }
                            let start = self.pos();
                            body_tag = start - tag_len(&s, false)..start;
                            let (b, span, end) = self.body()?;
                            if let (SoapBody::Fault { .. }, Some(detail)) = (&b, &self.detail_span)
                            {
                                fault_detail = Some(detail.clone());
                            }
                            body = Some(b);
                            element = span;
                            body_content = start..end;
                        }
                        _ => {
                            return Err(err(
                                ErrorCode::InvalidSoap,
                                format!(
                                    "Malformed SOAP message: unexpected element '{}'",
                                    local(&s)
                                ),
                            ))
                        }
                    }
                }
                Event::End(_) if self.depth == 0 => break,
                Event::Start(s) | Event::Empty(s) => {
                    return Err(err(
                        ErrorCode::InvalidSoap,
                        format!("Malformed SOAP message: unexpected element '{}'", local(&s)),
                    ))
                }
                _ => {
                    return Err(err(
                        ErrorCode::InvalidSoap,
                        "Malformed SOAP message: text in Envelope",
                    ))
                }
            }
        }
        let body = body.ok_or_else(|| {
            err(
                ErrorCode::MissingBody,
                "Malformed SOAP message: body missing",
            )
        })?;
        Ok(ParsedEnvelope {
            envelope_tag,
            body_tag,
            fault_detail,
            element,
            body_content,
            has_header,
            header,
            header_span,
            body,
        })
    }

    fn has_encoding_style(&self, e: &BytesStart) -> bool {
        e.attributes().flatten().any(|a| {
            let (ns, name) = self.reader.resolve_attribute(a.key);
            name.as_ref() == b"encodingStyle" && ns_of(&ns) == Some(NS_SOAP_ENV.as_bytes())
        })
    }

    fn header(&mut self, h: &mut XRoadHeader) -> Result<HeaderSpan, MessageError> {
        let mut count = 0;
        let mut request_hash = None;
        loop {
            let at = self.pos();
            let (ns, ev) = self.next_markup()?;
            let (s, empty) = match ev {
                Event::End(_) => {
                    return Ok(HeaderSpan {
                        end_tag: at,
                        request_hash,
                    })
                }
                Event::Start(s) => (s.into_owned(), false),
                Event::Empty(s) => (s.into_owned(), true),
                _ => continue,
            };
            count += 1;
            if count > self.limits.max_header_elements {
                return Err(err(
                    ErrorCode::InvalidSoap,
                    format!(
                        "More than {} header elements",
                        self.limits.max_header_elements
                    ),
                ));
            }
            let name = local(&s);
            if ns == Ns::XRoad {
                match name.as_str() {
                    "client" => {
                        let id = self.identifier(&s, empty, "client")?;
                        set_once(&mut h.client, id.into_client("client")?, "client")?
                    }
                    "service" => {
                        let id = self.identifier(&s, empty, "service")?;
                        set_once(&mut h.service, id.into_service()?, "service")?
                    }
                    "securityServer" => {
                        let id = self.identifier(&s, empty, "securityServer")?;
                        set_once(&mut h.security_server, id.into_server()?, "securityServer")?
                    }
                    "id" => set_once(&mut h.id, self.text_or_empty(empty)?, "id")?,
                    "userId" => set_once(&mut h.user_id, self.text_or_empty(empty)?, "userId")?,
                    "issue" => set_once(&mut h.issue, self.text_or_empty(empty)?, "issue")?,
                    "protocolVersion" => set_once(
                        &mut h.protocol_version,
                        self.text_or_empty(empty)?,
                        "protocolVersion",
                    )?,
                    "requestHash" => {
                        let algorithm_id = s
                            .try_get_attribute("algorithmId")
                            .ok()
                            .flatten()
                            .map(|a| String::from_utf8_lossy(&a.value).into_owned());
                        let value = self.text_or_empty(empty)?;
                        request_hash = Some(at..self.pos());
                        set_once(
                            &mut h.request_hash,
                            RequestHash {
                                algorithm_id,
                                value,
                            },
                            "requestHash",
                        )?
                    }
                    _ if empty => {}
                    _ => self.skip_element()?,
                }
            } else if ns == Ns::Representation && name == "representedParty" {
                let party = self.represented_party(empty)?;
                set_once(&mut h.represented_party, party, "representedParty")?
            } else if !empty {
                // Foreign headers (security tokens, WS-Addressing, ...) travel untouched.
                self.skip_element()?;
            }
        }
    }

    fn text_or_empty(&mut self, empty: bool) -> Result<String, MessageError> {
        if empty {
            Ok(String::new())
        } else {
            self.text()
        }
    }

    fn identifier(
        &mut self,
        s: &BytesStart,
        empty: bool,
        field: &str,
    ) -> Result<RawIdentifier, MessageError> {
        let object_type = s
            .attributes()
            .flatten()
            .find(|a| {
                let (ns, name) = self.reader.resolve_attribute(a.key);
                name.as_ref() == b"objectType" && ns_of(&ns) == Some(NS_IDENTIFIERS.as_bytes())
            })
            .map(|a| String::from_utf8_lossy(&a.value).into_owned())
            .ok_or_else(|| {
                err(
                    ErrorCode::InvalidXml,
                    format!("Missing objectType attribute in '{field}'"),
                )
            })?;
        let mut id = RawIdentifier {
            object_type,
            parts: Default::default(),
        };
        if empty {
            return Ok(id);
        }
        loop {
            let (ns, ev) = self.next_markup()?;
            match ev {
                Event::End(_) => return Ok(id),
                Event::Start(c) if ns == Ns::Identifiers => {
                    let name = local(&c);
                    let value = self.text()?;
                    if !is_valid_part(&value) {
                        return Err(err(
                            ErrorCode::InvalidClientIdentifier,
                            format!("'{field}' has an invalid {name} '{}'", shown(&value)),
                        ));
                    }
                    let slot = match name.as_str() {
                        "xRoadInstance" => 0,
                        "memberClass" => 1,
                        "memberCode" => 2,
                        "subsystemCode" => 3,
                        "serviceCode" => 4,
                        "serviceVersion" => 5,
                        "serverCode" => 6,
                        "groupCode" => 7,
                        _ => {
                            return Err(err(
                                ErrorCode::InvalidXml,
                                format!("Unknown identifier element '{name}' in '{field}'"),
                            ))
                        }
                    };
                    if id.parts[slot].replace(value).is_some() {
                        return Err(err(
                            ErrorCode::InvalidXml,
                            format!("Duplicate '{name}' in '{field}'"),
                        ));
                    }
                }
                Event::Start(c) | Event::Empty(c) => {
                    return Err(err(
                        ErrorCode::InvalidXml,
                        format!("Unexpected element '{}' in '{field}'", local(&c)),
                    ))
                }
                _ => {
                    return Err(err(
                        ErrorCode::InvalidXml,
                        format!("Unexpected text in '{field}'"),
                    ))
                }
            }
        }
    }

    /// The text of an element that holds an identifier part, validated.
    fn identifier_text(&mut self, name: &str) -> Result<String, MessageError> {
        let value = self.text()?;
        if !is_valid_part(&value) {
            return Err(err(
                ErrorCode::InvalidClientIdentifier,
                format!("Invalid {name} '{}'", shown(&value)),
            ));
        }
        Ok(value)
    }

    fn represented_party(&mut self, empty: bool) -> Result<RepresentedParty, MessageError> {
        let (mut class, mut code) = (None, None);
        if !empty {
            loop {
                let (ns, ev) = self.next_markup()?;
                match ev {
                    Event::End(_) => break,
                    Event::Start(c) if ns == Ns::Representation => match c.local_name().as_ref() {
                        b"partyClass" => class = Some(self.identifier_text("partyClass")?),
                        b"partyCode" => code = Some(self.identifier_text("partyCode")?),
                        _ => self.skip_element()?,
                    },
                    Event::Start(_) => self.skip_element()?,
                    _ => {}
                }
            }
        }
        Ok(RepresentedParty {
            party_class: class,
            party_code: code.ok_or_else(|| {
                err(
                    ErrorCode::InvalidXml,
                    "representedParty lacks its partyCode",
                )
            })?,
        })
    }

    fn body(&mut self) -> Result<(SoapBody, Option<ElementSpan>, usize), MessageError> {
        let mut found: Option<SoapBody> = None;
        let mut span = None;
        // In Body's scope, before its element adds declarations of its own.
        let default_ns_in_body = matches!(
            self.reader.resolve_element(quick_xml::name::QName(b"x")).0,
            ResolveResult::Bound(_)
        );
        let end = loop {
            let at = self.pos();
            let (ns, ev) = self.next_markup()?;
            let (s, empty) = match ev {
                Event::End(_) => break at,
                Event::Start(s) => (s, false),
                Event::Empty(s) => (s, true),
                Event::Text(_) | Event::CData(_) => {
                    return Err(err(
                        ErrorCode::InvalidBody,
                        "Malformed SOAP message: text directly inside Body",
                    ))
                }
                _ => continue,
            };
            if found.is_some() {
                return Err(err(
                    ErrorCode::InvalidBody,
                    "Malformed SOAP message: body must have exactly one child element",
                ));
            }
            let is_fault = ns == Ns::SoapEnv && s.local_name().as_ref() == b"Fault";
            found = Some(if is_fault {
                if empty {
                    SoapBody::Fault {
                        code: String::new(),
                        string: String::new(),
                        detail: None,
                    }
                } else {
                    self.fault()?
                }
            } else {
                let local_name = local(&s);
                // Only the body element's namespace is kept as a string; resolving it here
                // (before its scope closes) spares an allocation on every other event.
                let namespace = ns_of(&self.reader.resolve_element(s.name()).0)
                    .map(|n| String::from_utf8_lossy(n).into_owned());
                let tag_end = self.pos();
                let content_end = if empty {
                    tag_end
                } else {
                    self.skip_to_end_tag()?
                };
                span = Some(ElementSpan {
                    start_tag: tag_end - tag_len(&s, empty)..tag_end,
                    content: tag_end..content_end,
                    default_ns_in_body,
                });
                SoapBody::Element {
                    local_name,
                    namespace,
                }
            });
        };
        let found = found.ok_or_else(|| {
            err(
                ErrorCode::InvalidBody,
                "Malformed SOAP message: body must have exactly one child element",
            )
        })?;
        Ok((found, span, end))
    }

    fn fault(&mut self) -> Result<SoapBody, MessageError> {
        let (mut code, mut string, mut detail) = (String::new(), String::new(), None);
        loop {
            match self.next_markup()?.1 {
                Event::End(_) => break,
                Event::Start(c) => match c.local_name().as_ref() {
                    b"faultcode" => code = self.text()?,
                    b"faultstring" => string = self.text()?,
                    b"detail" => {
                        let start = self.pos();
                        let (text, end) = self.fault_detail()?;
                        self.detail_span = Some(start..end);
                        detail = Some(text);
                    }
                    _ => self.skip_element()?,
                },
                _ => {}
            }
        }
        // `faultcode` is a QName: `SOAP-ENV:Server.X` and `Server.X` are the same code.
        let code = match code.trim().split_once(':') {
            Some((_, local)) => local.to_string(),
            None => code.trim().to_string(),
        };
        Ok(SoapBody::Fault {
            code,
            string: string.trim().to_string(),
            detail: detail.flatten(),
        })
    }

    /// `detail/faultDetail` text, if the detail has that shape, and where the detail ends.
    fn fault_detail(&mut self) -> Result<(Option<String>, usize), MessageError> {
        let mut out = None;
        loop {
            let at = self.pos();
            match self.next_markup()?.1 {
                Event::End(_) => return Ok((out, at)),
                Event::Start(c) if c.local_name().as_ref() == b"faultDetail" => {
                    out = Some(self.text()?)
                }
                Event::Start(_) => self.skip_element()?,
                _ => {}
            }
        }
    }
}

/// A refused value as a fault may quote it: escaped, and cut short.
fn shown(value: &str) -> String {
    let mut s: String = value
        .chars()
        .take(64)
        .flat_map(char::escape_debug)
        .collect();
    if value.chars().count() > 64 {
        s.push('…');
    }
    s
}

fn set_once<T>(slot: &mut Option<T>, value: T, name: &str) -> Result<(), MessageError> {
    if slot.replace(value).is_some() {
        return Err(err(
            ErrorCode::DuplicateHeaderField,
            format!("Header field '{name}' appears more than once"),
        ));
    }
    Ok(())
}

/// Identifier children by slot: instance, class, code, subsystem, service, version, server, group.
struct RawIdentifier {
    object_type: String,
    parts: [Option<String>; 8],
}

impl RawIdentifier {
    fn take(&mut self, slot: usize, name: &str) -> Result<String, MessageError> {
        self.parts[slot]
            .take()
            .ok_or_else(|| err(ErrorCode::InvalidXml, format!("Identifier lacks '{name}'")))
    }

    fn client_parts(&mut self) -> Result<ClientId, MessageError> {
        Ok(ClientId {
            instance: self.take(0, "xRoadInstance")?,
            member_class: self.take(1, "memberClass")?,
            member_code: self.take(2, "memberCode")?,
            subsystem: None,
        })
    }

    fn into_client(mut self, field: &str) -> Result<ClientId, MessageError> {
        let mut id = self.client_parts()?;
        match self.object_type.as_str() {
            "MEMBER" if self.parts[3].is_none() => Ok(id),
            "SUBSYSTEM" => {
                id.subsystem = Some(self.take(3, "subsystemCode")?);
                Ok(id)
            }
            other => Err(err(
                ErrorCode::InvalidXml,
                format!("'{field}' must be a MEMBER or SUBSYSTEM identifier, not '{other}'"),
            )),
        }
    }

    fn into_service(mut self) -> Result<ServiceId, MessageError> {
        if self.object_type != "SERVICE" {
            return Err(err(
                ErrorCode::InvalidXml,
                format!(
                    "'service' must be a SERVICE identifier, not '{}'",
                    self.object_type
                ),
            ));
        }
        let mut provider = self.client_parts()?;
        provider.subsystem = self.parts[3].take();
        Ok(ServiceId {
            provider,
            service_code: self.take(4, "serviceCode")?,
            service_version: self.parts[5].take(),
        })
    }

    fn into_server(mut self) -> Result<SecurityServerId, MessageError> {
        if self.object_type != "SERVER" {
            return Err(err(
                ErrorCode::InvalidXml,
                format!(
                    "'securityServer' must be a SERVER identifier, not '{}'",
                    self.object_type
                ),
            ));
        }
        Ok(SecurityServerId {
            owner: self.client_parts()?,
            server_code: self.take(6, "serverCode")?,
        })
    }
}

/// Escapes text for XML element content and attribute values.
pub fn escape(s: &str) -> Cow<'_, str> {
    quick_xml::escape::escape(s)
}
