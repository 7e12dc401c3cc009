//! The one reader of XML that arrives from outside: SOAP messages, signature documents, hash
//! chains, the global configuration, registry answers, wrap-mode bodies.
//!
//! It wraps quick-xml's namespace-aware reader, which borrows from the input, and checks every
//! limit of [`XmlLimits`] as each event is read, before a caller looks at it. Every check costs time
//! proportional to the bytes it covers, so a document is read in time linear in its length with a
//! small constant: attributes per element and namespaces in scope are bounded, which bounds
//! quick-xml's own per-element work (prefix lookups scan the bindings in scope; attribute lookups
//! with duplicate checks are quadratic in the attributes of one element). Characters XML 1.0
//! forbids, also as character references, are refused; so are DOCTYPE declarations (no entity
//! expansion, ever) and references to undeclared entities.
//!
//! Owns: the limits, the document checks and [`XmlError`]. Depends on quick-xml and memchr only,
//! never on another brama module; callers map [`XmlError`] to their own fault.

use std::fmt;
use std::ops::Range;

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{LocalName, QName, ResolveResult};
use quick_xml::NsReader;

/// Bounds on one document. Every one is configurable under `[limits]` (`max_xml_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XmlLimits {
    /// Deepest element nesting.
    pub max_depth: usize,
    /// Most elements, comments, processing instructions and CDATA sections in the document.
    pub max_elements: usize,
    /// Most attributes on one element, namespace declarations included.
    pub max_attributes: usize,
    /// Most namespace declarations on one element.
    pub max_namespaces: usize,
    /// Most namespace declarations in scope at any point.
    pub max_namespaces_in_scope: usize,
    /// Longest element or attribute name, prefix included.
    pub max_name_bytes: usize,
    /// Longest attribute value, as written.
    pub max_attribute_bytes: usize,
    /// Longest run of text (or CDATA section, comment, processing instruction), as written.
    pub max_text_bytes: usize,
}

impl XmlLimits {
    /// Generous for any X-Road message, tight enough that a hostile document is refused early.
    pub const DEFAULT: XmlLimits = XmlLimits {
        max_depth: 128,
        max_elements: 100_000,
        max_attributes: 64,
        max_namespaces: 64,
        max_namespaces_in_scope: 128,
        max_name_bytes: 512,
        max_attribute_bytes: 64 * 1024,
        max_text_bytes: 16 * 1024 * 1024,
    };
}

impl Default for XmlLimits {
    fn default() -> Self {
        XmlLimits::DEFAULT
    }
}

/// Why a document was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XmlErrorKind {
    /// Not well-formed XML (or not UTF-8).
    Malformed,
    /// A character XML 1.0 forbids, written or as a character reference.
    ForbiddenCharacter,
    /// A DOCTYPE declaration: never accepted from outside.
    Doctype,
    /// One of [`XmlLimits`] was exceeded.
    Limit,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XmlError {
    pub kind: XmlErrorKind,
    pub message: String,
}

impl XmlError {
    fn new(kind: XmlErrorKind, at: usize, message: impl fmt::Display) -> Self {
        XmlError {
            kind,
            message: format!("{message} (at byte {at})"),
        }
    }
}

impl fmt::Display for XmlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for XmlError {}

/// Whether `c` is a `Char` of XML 1.0 (§2.2).
pub fn is_xml_char(c: u32) -> bool {
    matches!(c, 0x9 | 0xA | 0xD | 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF)
}

/// Checks a whole document once: UTF-8, and no character XML 1.0 forbids (C0 controls other than
/// tab, newline and carriage return; U+FFFE, U+FFFF). Surrogates cannot occur in valid UTF-8.
pub fn check_document(bytes: &[u8]) -> Result<(), XmlError> {
    if let Err(e) = std::str::from_utf8(bytes) {
        return Err(XmlError::new(
            XmlErrorKind::Malformed,
            e.valid_up_to(),
            "the document is not valid UTF-8",
        ));
    }
    // Branch-free per chunk so the compiler vectorises it; the exact position is found only when
    // a chunk has a forbidden byte.
    const CHUNK: usize = 64;
    for (n, chunk) in bytes.chunks(CHUNK).enumerate() {
        let bad = chunk.iter().fold(false, |acc, &b| {
            acc | ((b < 0x20) & (b != 9) & (b != 10) & (b != 13))
        });
        if bad {
            let i = chunk
                .iter()
                .position(|&b| b < 0x20 && !matches!(b, 9 | 10 | 13))
                .unwrap_or(0);
            return Err(forbidden(n * CHUNK + i, u32::from(chunk[i])));
        }
    }
    // U+FFFE and U+FFFF are EF BF BE and EF BF BF.
    for i in memchr::memmem::find_iter(bytes, b"\xEF\xBF") {
        if let Some(&b) = bytes.get(i + 2) {
            if b >= 0xBE {
                return Err(forbidden(i, 0xFFF0 + u32::from(b - 0xB0)));
            }
        }
    }
    Ok(())
}

fn forbidden(at: usize, c: u32) -> XmlError {
    XmlError::new(
        XmlErrorKind::ForbiddenCharacter,
        at,
        format_args!("character U+{c:04X} is not allowed in XML"),
    )
}

/// Checks the references in raw text or an attribute value: only the five predefined entities and
/// character references to characters XML allows. `base` is the text's offset in the document.
fn check_references(raw: &[u8], base: usize) -> Result<(), XmlError> {
    for i in memchr::memchr_iter(b'&', raw) {
        let rest = &raw[i + 1..];
        // The longest legal reference, `#x10FFFF`, has 8 characters before its `;`.
        let end = rest.iter().take(10).position(|&b| b == b';');
        let Some(end) = end else {
            return Err(XmlError::new(
                XmlErrorKind::Malformed,
                base + i,
                "'&' that does not start a reference",
            ));
        };
        let name = &rest[..end];
        let ok = match name {
            b"lt" | b"gt" | b"amp" | b"apos" | b"quot" => true,
            [b'#', b'x', hex @ ..] if !hex.is_empty() => std::str::from_utf8(hex)
                .ok()
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .filter(|c| h_is_plain(hex) && is_xml_char(*c))
                .is_some(),
            [b'#', dec @ ..] if !dec.is_empty() => std::str::from_utf8(dec)
                .ok()
                .filter(|d| d.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|d| d.parse::<u32>().ok())
                .is_some_and(is_xml_char),
            _ => false,
        };
        if !ok {
            return Err(XmlError::new(
                XmlErrorKind::ForbiddenCharacter,
                base + i,
                format_args!(
                    "reference '&{};' is not a predefined entity or an allowed character",
                    String::from_utf8_lossy(name).escape_debug()
                ),
            ));
        }
    }
    Ok(())
}

/// Hex digits only (`from_str_radix` would also take a leading `+`).
fn h_is_plain(hex: &[u8]) -> bool {
    hex.iter().all(u8::is_ascii_hexdigit)
}

/// A namespace-aware pull reader over a whole document in memory, every event checked against
/// [`XmlLimits`]. Events borrow from the input.
pub struct Reader<'i> {
    inner: NsReader<&'i [u8]>,
    limits: XmlLimits,
    depth: usize,
    elements: usize,
    /// Namespace declarations of each open element.
    scopes: Vec<usize>,
    in_scope: usize,
    /// Attribute names of the element being checked, as ranges of its tag (reused).
    keys: Vec<Range<usize>>,
}

impl<'i> Reader<'i> {
    /// Checks the whole document (UTF-8, forbidden characters), then reads it event by event.
    pub fn new(input: &'i [u8], limits: &XmlLimits) -> Result<Self, XmlError> {
        check_document(input)?;
        let mut inner = NsReader::from_reader(input);
        let c = inner.config_mut();
        c.check_end_names = true;
        c.expand_empty_elements = false;
        Ok(Reader {
            inner,
            limits: *limits,
            depth: 0,
            elements: 0,
            scopes: Vec::new(),
            in_scope: 0,
            keys: Vec::new(),
        })
    }

    /// Trims whitespace around text (off by default).
    pub fn trim_text(&mut self, trim: bool) {
        self.inner.config_mut().trim_text(trim);
    }

    /// Offset just past the last event read.
    pub fn position(&self) -> usize {
        self.inner.buffer_position() as usize
    }

    /// Current element nesting.
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// The next event, checked.
    pub fn read(&mut self) -> Result<Event<'i>, XmlError> {
        let start = self.position();
        let ev = self.inner.read_event().map_err(|e| self.malformed(e))?;
        self.check(&ev, start)?;
        Ok(ev)
    }

    /// The next event with the namespace of its name (elements only), checked.
    pub fn read_resolved(&mut self) -> Result<(ResolveResult<'_>, Event<'i>), XmlError> {
        let start = self.position();
        let ev = self.inner.read_event().map_err(|e| self.malformed(e))?;
        self.check(&ev, start)?;
        let ns = match &ev {
            Event::Start(e) | Event::Empty(e) => self.inner.resolve_element(e.name()).0,
            Event::End(e) => self.inner.resolve_element(e.name()).0,
            _ => ResolveResult::Unbound,
        };
        Ok((ns, ev))
    }

    /// Namespace and local name of an element name, in the current scope.
    pub fn resolve_element<'n>(&self, name: QName<'n>) -> (ResolveResult<'_>, LocalName<'n>) {
        self.inner.resolve_element(name)
    }

    /// Namespace and local name of an attribute name, in the current scope.
    pub fn resolve_attribute<'n>(&self, name: QName<'n>) -> (ResolveResult<'_>, LocalName<'n>) {
        self.inner.resolve_attribute(name)
    }

    fn malformed(&self, e: impl fmt::Display) -> XmlError {
        XmlError::new(XmlErrorKind::Malformed, self.position(), e)
    }

    fn limit(&self, at: usize, what: fmt::Arguments<'_>) -> XmlError {
        XmlError::new(XmlErrorKind::Limit, at, what)
    }

    fn count_node(&mut self, at: usize) -> Result<(), XmlError> {
        self.elements += 1;
        if self.elements > self.limits.max_elements {
            return Err(self.limit(
                at,
                format_args!(
                    "more than {} elements (max_xml_elements)",
                    self.limits.max_elements
                ),
            ));
        }
        Ok(())
    }

    fn text_len(&self, len: usize, at: usize) -> Result<(), XmlError> {
        if len > self.limits.max_text_bytes {
            return Err(self.limit(
                at,
                format_args!(
                    "a text of more than {} bytes (max_xml_text_bytes)",
                    self.limits.max_text_bytes
                ),
            ));
        }
        Ok(())
    }

    fn check(&mut self, ev: &Event<'i>, at: usize) -> Result<(), XmlError> {
        match ev {
            Event::Start(e) => {
                let declared = self.open(e, at)?;
                self.depth += 1;
                self.scopes.push(declared);
                self.in_scope += declared;
            }
            Event::Empty(e) => {
                self.open(e, at)?;
            }
            Event::End(_) => {
                self.depth = self.depth.saturating_sub(1);
                self.in_scope -= self.scopes.pop().unwrap_or(0);
            }
            Event::Text(t) => {
                self.text_len(t.len(), at)?;
                check_references(t, at)?;
            }
            Event::CData(t) => {
                self.count_node(at)?;
                self.text_len(t.len(), at)?;
            }
            Event::Comment(t) => {
                self.count_node(at)?;
                self.text_len(t.len(), at)?;
            }
            Event::PI(t) => {
                self.count_node(at)?;
                self.text_len(t.len(), at)?;
            }
            Event::DocType(_) => {
                return Err(XmlError::new(
                    XmlErrorKind::Doctype,
                    at,
                    "DOCTYPE is not allowed",
                ))
            }
            Event::Decl(_) | Event::Eof => {}
        }
        Ok(())
    }

    /// Checks a start tag; returns how many namespaces it declares.
    fn open(&mut self, e: &BytesStart<'i>, at: usize) -> Result<usize, XmlError> {
        self.count_node(at)?;
        let l = self.limits;
        if self.depth + 1 > l.max_depth {
            return Err(self.limit(
                at,
                format_args!("XML nesting is deeper than {} (max_xml_depth)", l.max_depth),
            ));
        }
        if e.name().as_ref().len() > l.max_name_bytes {
            return Err(self.limit(
                at,
                format_args!(
                    "a name longer than {} bytes (max_xml_name_bytes)",
                    l.max_name_bytes
                ),
            ));
        }
        self.keys.clear();
        let tag: &[u8] = e;
        let mut declared = 0;
        // Unchecked iteration: quick-xml's duplicate check compares each attribute with every
        // earlier one; duplicates are found below by sorting.
        for a in e.attributes().with_checks(false) {
            let a = a.map_err(|err| XmlError::new(XmlErrorKind::Malformed, at, err))?;
            if self.keys.len() == l.max_attributes {
                return Err(self.limit(
                    at,
                    format_args!(
                        "more than {} attributes on one element (max_xml_attributes)",
                        l.max_attributes
                    ),
                ));
            }
            let key = a.key.into_inner();
            if key.len() > l.max_name_bytes {
                return Err(self.limit(
                    at,
                    format_args!(
                        "a name longer than {} bytes (max_xml_name_bytes)",
                        l.max_name_bytes
                    ),
                ));
            }
            if a.value.len() > l.max_attribute_bytes {
                return Err(self.limit(
                    at,
                    format_args!(
                        "an attribute value longer than {} bytes (max_xml_attribute_bytes)",
                        l.max_attribute_bytes
                    ),
                ));
            }
            if memchr::memchr(b'<', &a.value).is_some() {
                return Err(XmlError::new(
                    XmlErrorKind::Malformed,
                    at,
                    "'<' in an attribute value",
                ));
            }
            check_references(&a.value, at)?;
            if key == b"xmlns" || key.starts_with(b"xmlns:") {
                declared += 1;
                if declared > l.max_namespaces {
                    return Err(self.limit(
                        at,
                        format_args!(
                            "more than {} namespace declarations on one element (max_xml_namespaces)",
                            l.max_namespaces
                        ),
                    ));
                }
                if self.in_scope + declared > l.max_namespaces_in_scope {
                    return Err(self.limit(
                        at,
                        format_args!(
                            "more than {} namespace declarations in scope (max_xml_namespaces_in_scope)",
                            l.max_namespaces_in_scope
                        ),
                    ));
                }
            }
            // Where the key sits in the tag: keys borrow from `e`.
            let from = key.as_ptr() as usize - tag.as_ptr() as usize;
            self.keys.push(from..from + key.len());
        }
        if has_duplicates(tag, &mut self.keys) {
            return Err(XmlError::new(
                XmlErrorKind::Malformed,
                at,
                "an attribute appears twice on one element",
            ));
        }
        Ok(declared)
    }
}

/// Whether two of `keys` (ranges of `tag`) name the same attribute: pairwise for a few, by sorting
/// for more, so the cost stays O(n log n) in the attributes of one element.
fn has_duplicates(tag: &[u8], keys: &mut [Range<usize>]) -> bool {
    let k = |r: &Range<usize>| &tag[r.clone()];
    if keys.len() <= 8 {
        keys.iter()
            .enumerate()
            .any(|(i, a)| keys[..i].iter().any(|b| k(a) == k(b)))
    } else {
        keys.sort_unstable_by(|a, b| k(a).cmp(k(b)));
        keys.windows(2).any(|w| k(&w[0]) == k(&w[1]))
    }
}

#[cfg(test)]
mod tests;
