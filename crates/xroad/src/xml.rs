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
use quick_xml::name::{LocalName, Namespace, QName, ResolveResult};

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

/// Boxed, so the `Result` of every event stays small on the parse's hot path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XmlError(Box<(XmlErrorKind, String)>);

impl XmlError {
    #[cold]
    fn new(kind: XmlErrorKind, at: usize, message: impl fmt::Display) -> Self {
        XmlError(Box::new((kind, format!("{message} (at byte {at})"))))
    }

    pub fn kind(&self) -> XmlErrorKind {
        self.0 .0
    }

    pub fn message(&self) -> &str {
        &self.0 .1
    }
}

impl fmt::Display for XmlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for XmlError {}

/// Whether `c` is a `Char` of XML 1.0 (§2.2).
pub(crate) fn is_xml_char(c: u32) -> bool {
    matches!(c, 0x9 | 0xA | 0xD | 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF)
}

/// Checks a whole document once: UTF-8, and no character XML 1.0 forbids (C0 controls other than
/// tab, newline and carriage return; U+FFFE, U+FFFF). Surrogates cannot occur in valid UTF-8.
pub(crate) fn check_document(bytes: &[u8]) -> Result<(), XmlError> {
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
/// [`XmlLimits`]. Events borrow from the input. Namespaces are resolved here, from the
/// declarations the limit checks already find, so each start tag's attributes are read once.
pub struct Reader<'i> {
    inner: quick_xml::Reader<&'i [u8]>,
    input: &'i [u8],
    limits: XmlLimits,
    depth: usize,
    elements: usize,
    /// Namespace declarations in scope, innermost last: (prefix, namespace) as ranges of the
    /// input; an empty prefix is the default namespace.
    bindings: Vec<(Range<usize>, Range<usize>)>,
    /// How many declarations each open element added.
    scopes: Vec<usize>,
    /// Declarations of the element that just ended (or was empty), dropped at the next read:
    /// its end event still resolves in its scope.
    pending_pop: usize,
    /// Attribute names of the element being checked, as ranges of its tag (reused).
    keys: Vec<Range<usize>>,
}

const NS_XML: &[u8] = b"http://www.w3.org/XML/1998/namespace";
const NS_XMLNS: &[u8] = b"http://www.w3.org/2000/xmlns/";

impl<'i> Reader<'i> {
    /// Checks the whole document (UTF-8, forbidden characters), then reads it event by event.
    pub fn new(input: &'i [u8], limits: &XmlLimits) -> Result<Self, XmlError> {
        check_document(input)?;
        let mut inner = quick_xml::Reader::from_reader(input);
        let c = inner.config_mut();
        c.check_end_names = true;
        c.expand_empty_elements = false;
        Ok(Reader {
            inner,
            input,
            limits: *limits,
            depth: 0,
            elements: 0,
            bindings: Vec::new(),
            scopes: Vec::new(),
            pending_pop: 0,
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

    /// The next event, checked. Always inlined: it is the parsers' inner loop, and with more
    /// callers the compiler stops inlining it on its own (a sixth of a SOAP parse).
    #[inline(always)]
    pub fn read(&mut self) -> Result<Event<'i>, XmlError> {
        let keep = self.bindings.len() - self.pending_pop;
        self.bindings.truncate(keep);
        self.pending_pop = 0;
        let start = self.position();
        let ev = self.inner.read_event().map_err(|e| self.malformed(e))?;
        self.check(&ev, start)?;
        Ok(ev)
    }

    /// The next event with the namespace of its name (elements only), checked.
    #[inline]
    pub fn read_resolved(&mut self) -> Result<(ResolveResult<'i>, Event<'i>), XmlError> {
        let ev = self.read()?;
        let ns = match &ev {
            Event::Start(e) | Event::Empty(e) => self.resolve(e.name(), true),
            Event::End(e) => self.resolve(e.name(), true),
            _ => ResolveResult::Unbound,
        };
        Ok((ns, ev))
    }

    /// Namespace and local name of an element name, in the current scope.
    pub(crate) fn resolve_element<'n>(
        &self,
        name: QName<'n>,
    ) -> (ResolveResult<'i>, LocalName<'n>) {
        (self.resolve(name, true), name.local_name())
    }

    /// Namespace and local name of an attribute name, in the current scope (an unprefixed
    /// attribute is in no namespace).
    pub(crate) fn resolve_attribute<'n>(
        &self,
        name: QName<'n>,
    ) -> (ResolveResult<'i>, LocalName<'n>) {
        (self.resolve(name, false), name.local_name())
    }

    fn resolve(&self, name: QName<'_>, element: bool) -> ResolveResult<'i> {
        let input = self.input;
        let prefix = name.prefix().map(|p| p.into_inner());
        match prefix {
            Some(b"xml") => return ResolveResult::Bound(Namespace(NS_XML)),
            Some(b"xmlns") => return ResolveResult::Bound(Namespace(NS_XMLNS)),
            None if !element => return ResolveResult::Unbound,
            _ => {}
        }
        let want = prefix.unwrap_or_default();
        let found = self
            .bindings
            .iter()
            .rev()
            .find(|(p, _)| &input[p.clone()] == want);
        match (found, prefix) {
            (Some((_, ns)), _) if !ns.is_empty() => {
                ResolveResult::Bound(Namespace(&input[ns.clone()]))
            }
            // `xmlns=""` undeclares the default namespace.
            (_, None) => ResolveResult::Unbound,
            (_, Some(p)) => ResolveResult::Unknown(p.to_vec()),
        }
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
            }
            Event::Empty(e) => {
                self.pending_pop = self.open(e, at)?;
            }
            Event::End(_) => {
                self.depth = self.depth.saturating_sub(1);
                self.pending_pop = self.scopes.pop().unwrap_or(0);
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

    /// Puts the declaration `key="value"` (ranges and slice of `tag`) in scope.
    fn declare(
        &mut self,
        tag: &[u8],
        key: Range<usize>,
        value: &[u8],
        at: usize,
    ) -> Result<(), XmlError> {
        let prefix = &tag[key.clone()][b"xmlns".len()..];
        let prefix = prefix.strip_prefix(b":").unwrap_or(prefix);
        let bad = match prefix {
            b"xml" => value != NS_XML,
            b"xmlns" => true,
            b"" => value == NS_XML || value == NS_XMLNS,
            // Namespaces in XML 1.0: a prefix cannot be undeclared.
            _ => value.is_empty() || value == NS_XML || value == NS_XMLNS,
        };
        if bad {
            return Err(XmlError::new(
                XmlErrorKind::Malformed,
                at,
                format_args!(
                    "a namespace declaration that is not allowed ({})",
                    String::from_utf8_lossy(&tag[key]).escape_debug()
                ),
            ));
        }
        // The tag is a slice of the input (the reader never copies one).
        let base = tag.as_ptr() as usize - self.input.as_ptr() as usize;
        let p = base + (prefix.as_ptr() as usize - tag.as_ptr() as usize);
        let v = base + (value.as_ptr() as usize - tag.as_ptr() as usize);
        self.bindings
            .push((p..p + prefix.len(), v..v + value.len()));
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
        // One pass over the tag with a scanner of its own (quotes found by memchr): quick-xml's
        // attribute iterator is slower, accepts unquoted values, and its duplicate check is
        // quadratic; duplicates are found below by sorting.
        let mut rest = AttributeScan {
            tag,
            at: e.name().as_ref().len(),
        };
        while let Some((key, value)) = rest
            .next()
            .map_err(|m| XmlError::new(XmlErrorKind::Malformed, at, m))?
        {
            if self.keys.len() == l.max_attributes {
                return Err(self.limit(
                    at,
                    format_args!(
                        "more than {} attributes on one element (max_xml_attributes)",
                        l.max_attributes
                    ),
                ));
            }
            let (k, v) = (&tag[key.clone()], &tag[value]);
            if k.len() > l.max_name_bytes {
                return Err(self.limit(
                    at,
                    format_args!(
                        "a name longer than {} bytes (max_xml_name_bytes)",
                        l.max_name_bytes
                    ),
                ));
            }
            if v.len() > l.max_attribute_bytes {
                return Err(self.limit(
                    at,
                    format_args!(
                        "an attribute value longer than {} bytes (max_xml_attribute_bytes)",
                        l.max_attribute_bytes
                    ),
                ));
            }
            if memchr::memchr(b'<', v).is_some() {
                return Err(XmlError::new(
                    XmlErrorKind::Malformed,
                    at,
                    "'<' in an attribute value",
                ));
            }
            check_references(v, at)?;
            if k == b"xmlns" || k.starts_with(b"xmlns:") {
                self.declare(tag, key.clone(), v, at)?;
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
                if self.bindings.len() > l.max_namespaces_in_scope {
                    return Err(self.limit(
                        at,
                        format_args!(
                            "more than {} namespace declarations in scope (max_xml_namespaces_in_scope)",
                            l.max_namespaces_in_scope
                        ),
                    ));
                }
            }
            self.keys.push(key);
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

/// An attribute's name and value, as ranges of its tag.
type NameValue = (Range<usize>, Range<usize>);

/// The attributes of a start tag (its content after the name), as XML writes them:
/// `name = "value"` or `'value'`, separated by whitespace.
struct AttributeScan<'t> {
    tag: &'t [u8],
    at: usize,
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

impl AttributeScan<'_> {
    fn skip_space(&mut self) {
        while self.at < self.tag.len() && is_space(self.tag[self.at]) {
            self.at += 1;
        }
    }

    /// The next attribute's name and value as ranges of the tag.
    fn next(&mut self) -> Result<Option<NameValue>, &'static str> {
        let t = self.tag;
        let before = self.at;
        self.skip_space();
        if self.at == t.len() {
            return Ok(None);
        }
        if self.at == before {
            return Err("attributes must be separated by whitespace");
        }
        let key = self.at;
        while self.at < t.len() && !is_space(t[self.at]) && t[self.at] != b'=' {
            self.at += 1;
        }
        let key = key..self.at;
        self.skip_space();
        if key.is_empty() || t.get(self.at) != Some(&b'=') {
            return Err("an attribute without a value");
        }
        self.at += 1;
        self.skip_space();
        let quote = match t.get(self.at) {
            Some(&q @ (b'"' | b'\'')) => q,
            _ => return Err("an attribute value without quotes"),
        };
        let start = self.at + 1;
        let len = memchr::memchr(quote, &t[start..]).ok_or("an unterminated attribute value")?;
        self.at = start + len + 1;
        Ok(Some((key, start..start + len)))
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
