//! XML canonicalization (inclusive C14N 1.0/1.1 and exclusive C14N, both without comments) of
//! one element subtree, as XML-DSig needs for same-document references and `SignedInfo`.
//!
//! One streaming pass over the document with our own namespace stack, read by the bounded
//! [`brama_xroad::xml::Reader`] (its limits checked as it goes) and never recursed over. DTDs are refused,
//! so the only entity references are the five predefined ones and character references, and every
//! attribute is CDATA for value normalization.

use std::borrow::Cow;
use std::collections::HashMap;

use quick_xml::events::attributes::Attributes;
use quick_xml::events::Event;

use brama_xroad::xml::{Reader, XmlError, XmlErrorKind, XmlLimits};

const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

/// Which canonicalization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Method {
    /// Canonical XML 1.0 without comments, `http://www.w3.org/TR/2001/REC-xml-c14n-20010315`.
    Inclusive,
    /// Canonical XML 1.1 without comments, `http://www.w3.org/2006/12/xml-c14n11`.
    Inclusive11,
    /// Exclusive XML Canonicalization 1.0 without comments,
    /// `http://www.w3.org/2001/10/xml-exc-c14n#`, with the InclusiveNamespaces PrefixList
    /// (`#default` names the default namespace).
    Exclusive { inclusive_prefixes: Vec<String> },
}

impl Method {
    /// Maps a CanonicalizationMethod/Transform Algorithm URI to a method; `None` if unknown
    /// (including the `#WithComments` variants, which we do not support).
    pub(crate) fn from_uri(uri: &str, inclusive_prefixes: Vec<String>) -> Option<Method> {
        match uri {
            "http://www.w3.org/TR/2001/REC-xml-c14n-20010315" => Some(Method::Inclusive),
            "http://www.w3.org/2006/12/xml-c14n11" => Some(Method::Inclusive11),
            "http://www.w3.org/2001/10/xml-exc-c14n#" => {
                Some(Method::Exclusive { inclusive_prefixes })
            }
            _ => None,
        }
    }
}

/// How to pick the element whose subtree is canonicalized (the apex).
#[derive(Clone, Copy, Debug, Default)]
pub enum Select<'a> {
    /// The element carrying an unprefixed attribute `Id`, `id` or `ID` with this value (a
    /// same-document reference `#value`). A second element with that value is an error: picking
    /// either would invite signature wrapping.
    ById(&'a str),
    /// The first element (document order) with this namespace URI and local name.
    ByName { ns: &'a str, local: &'a str },
    /// The whole document (a `""` reference): the document element plus processing
    /// instructions outside it.
    #[default]
    Root,
}

#[derive(Debug, thiserror::Error)]
pub enum C14nError {
    #[error("malformed XML: {0}")]
    Xml(String),
    #[error("element to canonicalize not found")]
    NotFound,
    #[error("more than one element has Id {0:?}")]
    DuplicateId(String),
    #[error("unsupported XML: {0}")]
    Unsupported(String),
    #[error("XML exceeds limit: {0}")]
    Limit(String),
}

impl From<XmlError> for C14nError {
    fn from(e: XmlError) -> Self {
        match e.kind() {
            XmlErrorKind::Limit => C14nError::Limit(e.message().into()),
            XmlErrorKind::Doctype => C14nError::Unsupported("DOCTYPE".into()),
            XmlErrorKind::Malformed | XmlErrorKind::ForbiddenCharacter => {
                C14nError::Xml(e.message().into())
            }
        }
    }
}

fn malformed(e: impl std::fmt::Display) -> C14nError {
    C14nError::Xml(e.to_string())
}

/// Canonicalizes the subtree rooted at the selected element of `doc` (a whole UTF-8 document).
pub fn canonicalize(
    doc: &[u8],
    select: Select<'_>,
    method: &Method,
    limits: &XmlLimits,
) -> Result<Vec<u8>, C14nError> {
    let doc = doc.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(doc);
    let doc = std::str::from_utf8(doc).map_err(|_| C14nError::Unsupported("not UTF-8".into()))?;
    Canon::new(select, method).run(doc, limits)
}

/// Canonicalizes the whole document (the node-set of a `""` reference).
pub fn canonicalize_document(
    doc: &[u8],
    method: &Method,
    limits: &XmlLimits,
) -> Result<Vec<u8>, C14nError> {
    canonicalize(doc, Select::Root, method, limits)
}

/// A stack of bindings (prefix → namespace, or `xml:*` name → value) with O(1) lookup; a mark
/// taken at element start restores the outer scope at element end.
#[derive(Default)]
struct Scope<'a> {
    items: Vec<(&'a str, Cow<'a, str>, Option<usize>)>,
    current: HashMap<&'a str, usize>,
}

impl<'a> Scope<'a> {
    fn get(&self, key: &str) -> Option<&Cow<'a, str>> {
        self.current
            .get(key)
            .and_then(|&i| self.items.get(i))
            .map(|item| &item.1)
    }
    fn set(&mut self, key: &'a str, value: Cow<'a, str>) {
        let shadowed = self.current.insert(key, self.items.len());
        self.items.push((key, value, shadowed));
    }
    fn restore(&mut self, mark: usize) {
        for (key, _, shadowed) in self.items.drain(mark.min(self.items.len())..).rev() {
            match shadowed {
                Some(i) => self.current.insert(key, i),
                None => self.current.remove(key),
            };
        }
    }
    fn entries(&self) -> impl Iterator<Item = (&'a str, &Cow<'a, str>)> + '_ {
        self.current
            .values()
            .filter_map(|&i| self.items.get(i))
            .map(|(k, v, _)| (*k, v))
    }
}

struct Attr<'a> {
    qname: &'a str,
    prefix: &'a str,
    local: &'a str,
    uri: Cow<'a, str>,
    value: Cow<'a, str>,
}

impl Attr<'_> {
    /// C14N orders attributes by namespace URI, then local name.
    fn key(&self) -> (&str, &str) {
        (&self.uri, self.local)
    }
}

/// Scope marks to restore when an element ends.
struct Frame {
    ns: usize,
    rendered: usize,
    xml: usize,
}

#[derive(Default)]
struct Canon<'a> {
    select: Select<'a>,
    /// Inherited `xml:*` attributes that the apex does not get (None: it gets none).
    skip_xml: Option<&'static [&'static str]>,
    exclusive: bool,
    /// The exclusive PrefixList, sorted ("" = default).
    incl: Vec<&'a str>,
    /// In-scope namespace bindings ("" = default namespace; value "" = undeclared).
    ns: Scope<'a>,
    /// Namespace declarations already output by output ancestors.
    rendered: Scope<'a>,
    /// `xml:*` attributes of ancestors of the apex, inherited by it in inclusive C14N.
    xml: Scope<'a>,
    frames: Vec<Frame>,
    /// Depth of the apex once found.
    apex: Option<usize>,
    /// The apex has ended.
    done: bool,
    root_seen: bool,
    out: Vec<u8>,
    // Per-element buffers, reused.
    decls: Vec<(&'a str, Cow<'a, str>)>,
    attrs: Vec<Attr<'a>>,
    cands: Vec<(&'a str, Cow<'a, str>)>,
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Text,
    Cdata,
    Attr,
}

fn borrowed<'a>(c: Cow<'a, [u8]>) -> Result<&'a str, C14nError> {
    match c {
        Cow::Borrowed(b) => std::str::from_utf8(b).map_err(malformed),
        // A slice reader only lends out of its input; owned data would mean an escaped value.
        Cow::Owned(_) => Err(malformed("unexpected owned event")),
    }
}

/// Re-borrows `part`, a slice the reader lent out of `doc`, for the lifetime of `doc`.
fn within<'a>(doc: &'a str, part: &[u8]) -> Result<&'a str, C14nError> {
    let off = (part.as_ptr() as usize).wrapping_sub(doc.as_ptr() as usize);
    doc.get(off..off.wrapping_add(part.len()))
        .filter(|s| s.as_ptr() == part.as_ptr())
        .ok_or_else(|| malformed("unexpected event buffer"))
}

impl<'a> Canon<'a> {
    fn new(select: Select<'a>, method: &'a Method) -> Self {
        let (skip_xml, mut incl): (_, Vec<&str>) = match method {
            Method::Inclusive => (Some(&[][..]), vec![]),
            // C14N 1.1 does not inherit xml:id and would fix up xml:base; we leave xml:base out.
            Method::Inclusive11 => (Some(&["id", "base"][..]), vec![]),
            Method::Exclusive {
                inclusive_prefixes: p,
            } => (
                None,
                p.iter()
                    .map(|p| if p == "#default" { "" } else { p })
                    .collect(),
            ),
        };
        incl.sort_unstable();
        let exclusive = skip_xml.is_none();
        Canon {
            select,
            skip_xml,
            exclusive,
            incl,
            ..Canon::default()
        }
    }

    fn emitting(&self) -> bool {
        self.apex.is_some() && !self.done
    }

    fn run(mut self, doc: &'a str, limits: &XmlLimits) -> Result<Vec<u8>, C14nError> {
        let mut reader = Reader::new(doc.as_bytes(), limits)?;
        let mut first = true;
        loop {
            let event = reader.read()?;
            let was_first = std::mem::replace(&mut first, false);
            match event {
                Event::Start(e) => self.start(within(doc, &e)?, e.name().as_ref().len())?,
                Event::Empty(e) => {
                    self.start(within(doc, &e)?, e.name().as_ref().len())?;
                    self.end(e.name().as_ref());
                }
                Event::End(e) => self.end(e.name().as_ref()),
                Event::Text(t) => {
                    let raw = borrowed(t.into_inner())?;
                    if self.frames.is_empty() {
                        if !raw
                            .bytes()
                            .all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
                        {
                            return Err(malformed("text outside the document element"));
                        }
                    } else {
                        let text = decode(raw, Mode::Text)?;
                        if self.emitting() {
                            escape(&text, Mode::Text, &mut self.out);
                        }
                    }
                }
                Event::CData(t) => {
                    if self.frames.is_empty() {
                        return Err(malformed("CDATA outside the document element"));
                    }
                    let text = decode(borrowed(t.into_inner())?, Mode::Cdata)?;
                    if self.emitting() {
                        escape(&text, Mode::Text, &mut self.out);
                    }
                }
                Event::PI(pi) => {
                    let outside = self.frames.is_empty() && matches!(self.select, Select::Root);
                    if outside && self.done {
                        self.out.push(b'\n');
                    }
                    if self.emitting() || outside {
                        // The data starts after the whitespace separating it from the target.
                        let data = std::str::from_utf8(pi.content()).map_err(malformed)?;
                        let data = decode(
                            data.trim_start_matches([' ', '\t', '\r', '\n']),
                            Mode::Cdata,
                        )?;
                        self.out.extend_from_slice(b"<?");
                        self.out.extend_from_slice(pi.target());
                        if !data.is_empty() {
                            self.out.push(b' ');
                            self.out.extend_from_slice(data.as_bytes());
                        }
                        self.out.extend_from_slice(b"?>");
                    }
                    if outside && !self.root_seen {
                        self.out.push(b'\n');
                    }
                }
                Event::Comment(_) => {}
                Event::Decl(d) => {
                    if !was_first {
                        return Err(malformed("misplaced XML declaration"));
                    }
                    if let Some(enc) = d.encoding() {
                        let enc = enc.map_err(malformed)?;
                        if !enc.eq_ignore_ascii_case(b"utf-8") {
                            return Err(C14nError::Unsupported("encoding other than UTF-8".into()));
                        }
                    }
                }
                // The reader refuses DOCTYPE.
                Event::DocType(_) => return Err(C14nError::Unsupported("DOCTYPE".into())),
                Event::Eof => break,
            }
        }
        if !self.frames.is_empty() || !self.root_seen {
            return Err(malformed("unexpected end of document"));
        }
        if self.apex.is_none() {
            return Err(C14nError::NotFound);
        }
        Ok(self.out)
    }

    /// Resolves a prefix of an element (`""` = default namespace) or attribute.
    fn resolve(&self, prefix: &str) -> Result<Cow<'a, str>, C14nError> {
        if prefix == "xml" {
            return Ok(Cow::Borrowed(XML_NS));
        }
        match self.ns.get(prefix) {
            Some(uri) => Ok(uri.clone()),
            None if prefix.is_empty() => Ok(Cow::Borrowed("")),
            None => Err(C14nError::Xml(format!("unbound prefix {prefix:.64}"))),
        }
    }

    /// `tag` is the content of a start tag between `<` and `>`, the name its first `name_len` bytes.
    fn start(&mut self, tag: &'a str, name_len: usize) -> Result<(), C14nError> {
        if self.frames.is_empty() {
            if self.root_seen {
                return Err(malformed("more than one document element"));
            }
            self.root_seen = true;
        }
        let qname = tag
            .get(..name_len)
            .ok_or_else(|| malformed("bad tag name"))?;
        let (prefix, local) = split_qname(qname)?;

        self.decls.clear();
        self.attrs.clear();
        // Duplicates are found by sorting below; the reader's own check is quadratic.
        let mut attributes = Attributes::new(tag, name_len);
        for attr in attributes.with_checks(false) {
            let attr = attr.map_err(malformed)?;
            let key = std::str::from_utf8(attr.key.into_inner()).map_err(malformed)?;
            let value = decode(borrowed(attr.value)?, Mode::Attr)?;
            if key == "xmlns" {
                self.decls.push(("", value));
            } else if let Some(p) = key.strip_prefix("xmlns:") {
                split_qname(p)?;
                match (p, &*value) {
                    ("xml", XML_NS) => {} // Implicit; C14N never outputs it.
                    ("xml" | "xmlns", _) | (_, "") | (_, XML_NS) => {
                        return Err(C14nError::Xml(format!("bad declaration of prefix {p:.64}")))
                    }
                    _ => self.decls.push((p, value)),
                }
            } else {
                let (prefix, local) = split_qname(key)?;
                let uri = Cow::Borrowed("");
                self.attrs.push(Attr {
                    qname: key,
                    prefix,
                    local,
                    uri,
                    value,
                });
            }
        }

        self.decls.sort_by(|a, b| a.0.cmp(b.0));
        if self.decls.windows(2).any(|w| w[0].0 == w[1].0) {
            return Err(malformed("duplicate namespace declaration"));
        }
        let frame = Frame {
            ns: self.ns.items.len(),
            rendered: self.rendered.items.len(),
            xml: self.xml.items.len(),
        };
        for (p, v) in &self.decls {
            self.ns.set(p, v.clone());
        }
        let uri = self.resolve(prefix)?;
        for i in 0..self.attrs.len() {
            let p = self.attrs[i].prefix;
            if !p.is_empty() {
                self.attrs[i].uri = self.resolve(p)?;
            }
        }

        self.attrs.sort_by(|a, b| a.key().cmp(&b.key()));
        if self.attrs.windows(2).any(|w| w[0].key() == w[1].key()) {
            return Err(malformed("duplicate attribute"));
        }
        let hit = match self.select {
            Select::ById(id) => self.attrs.iter().any(|a| {
                a.prefix.is_empty() && matches!(a.local, "Id" | "id" | "ID") && a.value == id
            }),
            Select::ByName { ns, local: l } => self.apex.is_none() && uri == ns && local == l,
            Select::Root => self.frames.is_empty(),
        };
        if hit {
            if let (Some(_), Select::ById(id)) = (self.apex, self.select) {
                return Err(C14nError::DuplicateId(id.chars().take(64).collect()));
            }
            self.apex = Some(self.frames.len());
        }
        if self.emitting() {
            self.write_start(qname, prefix, hit)?;
        } else if self.apex.is_none() {
            for a in self.attrs.iter().filter(|a| a.prefix == "xml") {
                self.xml.set(a.qname, a.value.clone());
            }
        }
        self.frames.push(frame);
        Ok(())
    }

    fn write_start(
        &mut self,
        qname: &'a str,
        prefix: &'a str,
        apex: bool,
    ) -> Result<(), C14nError> {
        self.cands.clear();
        if self.exclusive {
            let ns = &self.ns;
            let lookup = |p: &'a str| match ns.get(p) {
                Some(v) => Some((p, v.clone())),
                None if p.is_empty() => Some((p, Cow::Borrowed(""))),
                None => None,
            };
            // Visibly utilized: the element's prefix (or the default) and attribute prefixes.
            self.cands.extend(lookup(prefix));
            let attrs = self.attrs.iter().filter(|a| !a.prefix.is_empty());
            self.cands.extend(attrs.filter_map(|a| lookup(a.prefix)));
            // PrefixList prefixes are treated as in inclusive C14N: below the apex only a new
            // declaration can differ from what an ancestor output.
            if apex {
                self.cands
                    .extend(self.incl.iter().filter_map(|p| lookup(p)));
            } else {
                let new = self
                    .decls
                    .iter()
                    .filter(|d| self.incl.binary_search(&d.0).is_ok());
                self.cands.extend(new.cloned());
            }
        } else if apex {
            self.cands
                .extend(self.ns.entries().map(|(k, v)| (k, v.clone())));
        } else {
            // Below the apex everything in scope is output, so only new declarations can differ.
            self.cands.extend(self.decls.iter().cloned());
        }
        self.cands.retain(|(p, _)| *p != "xml");
        self.cands.sort_by(|a, b| a.0.cmp(b.0));
        self.cands.dedup_by(|a, b| a.0 == b.0);

        self.out.push(b'<');
        self.out.extend_from_slice(qname.as_bytes());
        for (p, v) in self.cands.drain(..) {
            // Output a binding unless an output ancestor already did; an undeclared default
            // needs xmlns="" only when an ancestor output a non-empty default.
            if self.rendered.get(p).map_or("", |r| r.as_ref()) == v.as_ref() {
                continue;
            }
            self.out
                .extend_from_slice(if p.is_empty() { b" xmlns" } else { b" xmlns:" });
            self.out.extend_from_slice(p.as_bytes());
            self.out.extend_from_slice(b"=\"");
            escape(&v, Mode::Attr, &mut self.out);
            self.out.push(b'"');
            self.rendered.set(p, v);
        }

        if let (true, Some(skip)) = (apex, self.skip_xml) {
            let own = self.attrs.len();
            for (qname, value) in self.xml.entries() {
                let local = qname.get(4..).unwrap_or("");
                // The apex's own attributes are sorted already.
                let own_attr =
                    self.attrs[..own].binary_search_by(|a| a.key().cmp(&(XML_NS, local)));
                if !skip.contains(&local) && own_attr.is_err() {
                    let (uri, value) = (Cow::Borrowed(XML_NS), value.clone());
                    self.attrs.push(Attr {
                        qname,
                        prefix: "xml",
                        local,
                        uri,
                        value,
                    });
                }
            }
            self.attrs.sort_by(|a, b| a.key().cmp(&b.key()));
        }
        for a in &self.attrs {
            self.out.push(b' ');
            self.out.extend_from_slice(a.qname.as_bytes());
            self.out.extend_from_slice(b"=\"");
            escape(&a.value, Mode::Attr, &mut self.out);
            self.out.push(b'"');
        }
        self.out.push(b'>');
        Ok(())
    }

    fn end(&mut self, qname: &[u8]) {
        if self.emitting() {
            self.out.extend_from_slice(b"</");
            self.out.extend_from_slice(qname);
            self.out.push(b'>');
        }
        if let Some(f) = self.frames.pop() {
            self.ns.restore(f.ns);
            self.rendered.restore(f.rendered);
            self.xml.restore(f.xml);
        }
        if self.apex == Some(self.frames.len()) {
            self.done = true;
        }
    }
}

/// Splits a QName into prefix ("" if none) and local part.
fn split_qname(name: &str) -> Result<(&str, &str), C14nError> {
    let bad = |s: &str| {
        s.is_empty()
            || s.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '.')
            || s.contains(|c: char| c.is_ascii_whitespace() || "\"'<>&=/:".contains(c))
    };
    let (prefix, local) = name.split_once(':').unwrap_or(("", name));
    if bad(local) || (name.contains(':') && bad(prefix)) {
        return Err(C14nError::Xml(format!("bad name {name:.64}")));
    }
    Ok((prefix, local))
}

/// Expands references and normalizes line ends as an XML parser does; attribute values also get
/// CDATA attribute-value normalization (literal whitespace → space).
fn decode(raw: &str, mode: Mode) -> Result<Cow<'_, str>, C14nError> {
    let attr = mode == Mode::Attr;
    let special = |b: u8| {
        (b < 0x20 && (attr || (b != b'\t' && b != b'\n')))
            || (b == b'&' && mode != Mode::Cdata)
            || (b == b'<' && attr)
    };
    let bytes = raw.as_bytes();
    let Some(mut i) = bytes.iter().position(|&b| special(b)) else {
        return Ok(Cow::Borrowed(raw));
    };
    let mut s = String::with_capacity(raw.len());
    let mut start = 0;
    while let Some(&b) = bytes.get(i) {
        if !special(b) {
            i += 1;
            continue;
        }
        // Special bytes are ASCII, so these are char boundaries.
        s.push_str(&raw[start..i]);
        i += 1;
        match b {
            b'\r' => {
                if bytes.get(i) == Some(&b'\n') {
                    i += 1;
                }
                s.push(if attr { ' ' } else { '\n' });
            }
            b'\t' | b'\n' => s.push(' '),
            b'&' => {
                let len = raw[i..]
                    .find(';')
                    .ok_or_else(|| malformed("unterminated reference"))?;
                s.push(entity(&raw[i..i + len])?);
                i += len + 1;
            }
            _ => return Err(C14nError::Xml(format!("invalid character {:?}", b as char))),
        }
        start = i;
    }
    s.push_str(&raw[start..]);
    Ok(Cow::Owned(s))
}

/// Resolves the name of an entity or character reference.
fn entity(name: &str) -> Result<char, C14nError> {
    let (digits, radix) = match name {
        "amp" => return Ok('&'),
        "lt" => return Ok('<'),
        "gt" => return Ok('>'),
        "quot" => return Ok('"'),
        "apos" => return Ok('\''),
        _ => match name.strip_prefix('#') {
            Some(hex) if hex.starts_with('x') => (&hex[1..], 16),
            Some(dec) => (dec, 10),
            None => {
                return Err(C14nError::Unsupported(format!(
                    "entity reference &{name:.64};"
                )))
            }
        },
    };
    let bad = || C14nError::Xml(format!("bad character reference &{name:.64};"));
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err(bad());
    }
    let c = u32::from_str_radix(digits, radix)
        .ok()
        .and_then(char::from_u32)
        .ok_or_else(bad)?;
    // XML 1.0 Char: no C0 controls except tab/LF/CR, no U+FFFE/U+FFFF (surrogates are not chars).
    if (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || matches!(c, '\u{FFFE}' | '\u{FFFF}') {
        return Err(bad());
    }
    Ok(c)
}

/// Writes `s` escaped as C14N requires for text or attribute values.
fn escape(s: &str, mode: Mode, out: &mut Vec<u8>) {
    let attr = mode == Mode::Attr;
    let mut last = 0;
    for (i, b) in s.bytes().enumerate() {
        let rep: &[u8] = match b {
            b'&' => b"&amp;",
            b'<' => b"&lt;",
            b'>' if !attr => b"&gt;",
            b'"' if attr => b"&quot;",
            b'\t' if attr => b"&#x9;",
            b'\n' if attr => b"&#xA;",
            b'\r' => b"&#xD;",
            _ => continue,
        };
        out.extend_from_slice(&s.as_bytes()[last..i]);
        out.extend_from_slice(rep);
        last = i + 1;
    }
    out.extend_from_slice(&s.as_bytes()[last..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: XmlLimits = XmlLimits::DEFAULT;
    use base64::Engine;
    use quick_xml::events::BytesStart;
    use sha2::Digest;

    const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/xroad/");
    const INC: Method = Method::Inclusive;

    fn exc(prefixes: &[&str]) -> Method {
        Method::Exclusive {
            inclusive_prefixes: prefixes.iter().map(|p| p.to_string()).collect(),
        }
    }

    fn c14n(doc: &str, select: Select<'_>, method: &Method) -> String {
        String::from_utf8(canonicalize(doc.as_bytes(), select, method, &L).unwrap()).unwrap()
    }

    fn sha256_hex(data: &[u8]) -> String {
        sha2::Sha256::digest(data)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Same-document references of a signature: (URI without '#', transforms, digest method,
    /// digest value), scanned up to the first XML error.
    fn references(xml: &[u8]) -> Vec<(String, Vec<String>, String, Vec<u8>)> {
        let attr = |e: &BytesStart, name: &[u8]| -> String {
            let a = e.try_get_attribute(name).ok().flatten();
            a.map(|a| String::from_utf8(a.value.into_owned()).unwrap())
                .unwrap_or_default()
        };
        let (mut refs, mut cur, mut in_value) = (Vec::new(), None, false);
        let mut reader = quick_xml::Reader::from_reader(xml);
        while let Ok(event) = reader.read_event() {
            match event {
                Event::Start(e) | Event::Empty(e) => match e.local_name().as_ref() {
                    b"Reference" => {
                        let uri = attr(&e, b"URI");
                        cur = uri
                            .strip_prefix('#')
                            .map(|u| (u.into(), vec![], String::new(), vec![]));
                    }
                    b"Transform" => cur
                        .iter_mut()
                        .for_each(|r| r.1.push(attr(&e, b"Algorithm"))),
                    b"DigestMethod" => cur.iter_mut().for_each(|r| r.2 = attr(&e, b"Algorithm")),
                    b"DigestValue" => in_value = true,
                    _ => {}
                },
                Event::Text(t) if in_value => {
                    let text: String = t.unescape().unwrap().split_whitespace().collect();
                    let value = base64::engine::general_purpose::STANDARD
                        .decode(text)
                        .unwrap();
                    if let Some(r) = cur.as_mut() {
                        r.3 = value;
                    }
                }
                Event::End(e) if e.local_name().as_ref() == b"DigestValue" => in_value = false,
                Event::End(e) if e.local_name().as_ref() == b"Reference" => refs.extend(cur.take()),
                Event::Eof => break,
                _ => {}
            }
        }
        refs
    }

    fn signature_files() -> Vec<(String, Vec<u8>)> {
        let mut files = Vec::new();
        for dir in [
            "asic",
            "asic-structure",
            "signatures",
            "signatures/non-batch-sig",
        ] {
            for entry in std::fs::read_dir(format!("{DIR}{dir}")).unwrap() {
                let path = entry.unwrap().path();
                let name = path.display().to_string();
                let mut data = Vec::new();
                if name.ends_with(".asice") {
                    let zip = zip::ZipArchive::new(std::fs::File::open(&path).unwrap());
                    let Ok(mut zip) = zip else { continue };
                    let Ok(mut sig) = zip.by_name("META-INF/signatures.xml") else {
                        continue;
                    };
                    std::io::Read::read_to_end(&mut sig, &mut data).unwrap();
                } else if name.ends_with(".xml") {
                    data = std::fs::read(&path).unwrap();
                }
                files.push((name, data));
            }
        }
        files
    }

    /// Every `#id` reference digest in the X-Road conformance signatures matches, except the one
    /// the test data breaks on purpose; the same outcomes as Santuario and lxml.
    #[test]
    fn conformance_reference_digests() {
        let (mut ok, mut not_found, mut errors) = (0, 0, Vec::new());
        for (name, xml) in signature_files() {
            for (id, transforms, digest_method, expected) in references(&xml) {
                let exc = transforms.iter().find_map(|t| Method::from_uri(t, vec![]));
                let result = canonicalize(&xml, Select::ById(&id), &exc.unwrap_or(INC), &L);
                let Ok(c) = result else {
                    match result {
                        Err(C14nError::NotFound) => not_found += 1,
                        _ => errors.push(name.clone()),
                    }
                    continue;
                };
                let digest = match digest_method.rsplit('#').next() {
                    Some("sha512") => sha2::Sha512::digest(&c).to_vec(),
                    Some("sha256") => sha2::Sha256::digest(&c).to_vec(),
                    _ => panic!("{name}: digest {digest_method}"),
                };
                if digest == expected {
                    ok += 1;
                } else {
                    assert!(name.ends_with("invalid-digest.asice"), "{name} #{id}");
                }
            }
        }
        assert_eq!((ok, not_found), (29, 8));
        assert!(
            errors
                .iter()
                .all(|n| n.ends_with("sign-0-malformed-xml.xml")),
            "{errors:?}"
        );
    }

    /// SignedInfo as the signature value covers it (hashes from Santuario and lxml).
    #[test]
    fn conformance_signed_info() {
        let files = signature_files();
        let file = |suffix: &str| &files.iter().find(|f| f.0.ends_with(suffix)).unwrap().1;
        let si = Select::ByName {
            ns: "http://www.w3.org/2000/09/xmldsig#",
            local: "SignedInfo",
        };
        let c = canonicalize(file("valid-batch-ts.asice"), si, &INC, &L).unwrap();
        assert!(c.starts_with(b"<ds:SignedInfo xmlns:asic=\"http://uri.etsi.org/02918/v1.2.1#\""));
        let want = "0f52385d5a1d7c72980b511d29301e0e61617e280085c5c9e798067469552c00";
        assert_eq!(sha256_hex(&c), want);
        let c = canonicalize(file("valid-non-batch-rest.asice"), si, &exc(&[]), &L).unwrap();
        let want = "e7b95619750702d5d1d636e652f4f9c192baa76041645d185522d3af89e378f5";
        assert_eq!(sha256_hex(&c), want);
    }

    // Expected outputs below are from Apache Santuario (and lxml where it agrees with the spec).

    #[test]
    fn namespaces_and_xml_attributes() {
        let doc = r#"<r xmlns="urn:d" xmlns:a="urn:a" xmlns:b="urn:b" xml:lang="en" xml:space="preserve"><x:p xmlns:x="urn:x" b:z="1" a:y="2" c="3"><a:q xmlns:a="urn:a" xmlns:x="urn:x2"><s xmlns=""/></a:q></x:p></r>"#;
        let p = Select::ByName {
            ns: "urn:x",
            local: "p",
        };
        let inc = r#"<x:p xmlns="urn:d" xmlns:a="urn:a" xmlns:b="urn:b" xmlns:x="urn:x" c="3" xml:lang="en" xml:space="preserve" a:y="2" b:z="1"><a:q xmlns:x="urn:x2"><s xmlns=""></s></a:q></x:p>"#;
        assert_eq!(c14n(doc, p, &INC), inc);
        assert_eq!(c14n(doc, p, &Method::Inclusive11), inc);
        let exc_out = r#"<x:p xmlns:a="urn:a" xmlns:b="urn:b" xmlns:x="urn:x" c="3" a:y="2" b:z="1"><a:q><s></s></a:q></x:p>"#;
        assert_eq!(c14n(doc, p, &exc(&[])), exc_out);
        // The nearest ancestor's xml:* attribute wins, the apex's own over all.
        let doc = r#"<r xml:lang="en" xml:space="preserve"><m xml:lang="de"><p xml:lang="fr" a="1"/></m></r>"#;
        let (m, p) = (
            Select::ByName { ns: "", local: "m" },
            Select::ByName { ns: "", local: "p" },
        );
        let m_out = r#"<m xml:lang="de" xml:space="preserve"><p a="1" xml:lang="fr"></p></m>"#;
        assert_eq!(c14n(doc, m, &INC), m_out);
        assert_eq!(
            c14n(doc, p, &INC),
            r#"<p a="1" xml:lang="fr" xml:space="preserve"></p>"#
        );
    }

    #[test]
    fn escaping_cdata_pi_and_empty_elements() {
        let doc = "<?xml version=\"1.0\"?>\r\n<r xmlns=\"urn:d\" xmlns:a=\"urn:a\"><s:e xmlns:s=\"urn:s\" xmlns:b=\"urn:b\" b:z=\"x&#9;y\r\nz\" a:z=\"&#13;&#10;\" z=\"q&quot;&lt;&gt;&amp;\"  >t&#13;x\r\ny\rz&amp;&lt;&gt;\"<![CDATA[<&>]]]]><e/><a:e xmlns:a=\"urn:a\"/><?p  d\r\n?><!-- c --><n xmlns=\"\"><m xmlns=\"\"/></n></s:e></r>";
        let e = Select::ByName {
            ns: "urn:s",
            local: "e",
        };
        let body = "z=\"q&quot;&lt;>&amp;\" a:z=\"&#xD;&#xA;\" b:z=\"x&#x9;y z\">t&#xD;x\ny\nz&amp;&lt;&gt;\"&lt;&amp;&gt;]]";
        let inc = format!("<s:e xmlns=\"urn:d\" xmlns:a=\"urn:a\" xmlns:b=\"urn:b\" xmlns:s=\"urn:s\" {body}<e></e><a:e></a:e><?p d\n?><n xmlns=\"\"><m></m></n></s:e>");
        assert_eq!(c14n(doc, e, &INC), inc);
        let exc_out = format!("<s:e xmlns:a=\"urn:a\" xmlns:b=\"urn:b\" xmlns:s=\"urn:s\" {body}<e xmlns=\"urn:d\"></e><a:e></a:e><?p d\n?><n><m></m></n></s:e>");
        assert_eq!(c14n(doc, e, &exc(&[])), exc_out);
    }

    #[test]
    fn exclusive_prefix_list() {
        let doc = r#"<r xmlns="urn:d" xmlns:p="urn:p" xmlns:q="urn:q" xmlns:u="urn:u"><a><b xmlns=""><c xmlns:p="urn:p" xmlns:q="urn:q2"/></b><p:d q:x="1"/></a></r>"#;
        let a = Select::ByName {
            ns: "urn:d",
            local: "a",
        };
        let cases: [(&[&str], &str, &str); 4] = [
            (&[], "", r#" xmlns:p="urn:p" xmlns:q="urn:q""#),
            (&["#default"], "", r#" xmlns:p="urn:p" xmlns:q="urn:q""#),
            (
                &["p", "#default"],
                r#" xmlns:p="urn:p""#,
                r#" xmlns:q="urn:q""#,
            ),
            (
                &["u"],
                r#" xmlns:u="urn:u""#,
                r#" xmlns:p="urn:p" xmlns:q="urn:q""#,
            ),
        ];
        for (list, on_a, on_d) in cases {
            let want = format!(
                r#"<a xmlns="urn:d"{on_a}><b xmlns=""><c></c></b><p:d{on_d} q:x="1"></p:d></a>"#
            );
            assert_eq!(c14n(doc, a, &exc(list)), want, "{list:?}");
        }
        let inc = r#"<a xmlns="urn:d" xmlns:p="urn:p" xmlns:q="urn:q" xmlns:u="urn:u"><b xmlns=""><c xmlns:q="urn:q2"></c></b><p:d q:x="1"></p:d></a>"#;
        assert_eq!(c14n(doc, a, &INC), inc);
    }

    #[test]
    fn whole_document_and_id() {
        let doc = "<?xml version=\"1.0\"?>\n<?pi a?>\n<!--c-->\n<r b=\"2\" a=\"1\"><x Id=\"i\"/></r>\n<?end?>\n<!--c-->\n";
        let out = canonicalize_document(doc.as_bytes(), &INC, &L).unwrap();
        assert_eq!(
            out,
            b"<?pi a?>\n<r a=\"1\" b=\"2\"><x Id=\"i\"></x></r>\n<?end?>"
        );
        assert_eq!(c14n(doc, Select::ById("i"), &INC), "<x Id=\"i\"></x>");
    }

    #[test]
    fn errors() {
        let err =
            |doc: &str| canonicalize(doc.as_bytes(), Select::ById("x"), &INC, &L).unwrap_err();
        assert!(matches!(
            err("<!DOCTYPE r><r Id='x'/>"),
            C14nError::Unsupported(_)
        ));
        assert!(matches!(
            err("<r Id='x'/>"[..6].as_ref()),
            C14nError::Xml(_)
        ));
        for bad in [
            "<r Id='x'>",
            "<r Id='x'></s>",
            "<r Id='x'/><r/>",
            "<a:r Id='x'/>",
            "<r Id='x'>&#0;</r>",
            "<r Id='x'>&foo;</r>",
        ] {
            assert!(matches!(err(bad), C14nError::Xml(_)), "{bad}");
        }
        assert!(matches!(
            err("<r id='x'><s ID='x'/></r>"),
            C14nError::DuplicateId(_)
        ));
        assert!(matches!(err("<r Id='y'/>"), C14nError::NotFound));
        let deep = |n| format!("{}{}", "<a Id='x'>".repeat(n), "</a>".repeat(n)).into_bytes();
        assert!(canonicalize(&deep(L.max_depth), Select::Root, &INC, &L).is_ok());
        let too_deep = canonicalize(&deep(L.max_depth + 1), Select::Root, &INC, &L);
        assert!(matches!(too_deep, Err(C14nError::Limit(_))));
        let wide = format!("<r Id='x'>{}</r>", "<a/>".repeat(L.max_elements));
        assert!(matches!(err(&wide), C14nError::Limit(_)));
        assert_eq!(
            Method::from_uri("http://www.w3.org/2006/12/xml-c14n11", vec![]),
            Some(Method::Inclusive11)
        );
        assert_eq!(
            Method::from_uri(
                "http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments",
                vec![]
            ),
            None
        );
    }

    /// Truncated and corrupted signatures give errors, never panics.
    #[test]
    fn no_panic_on_damaged_input() {
        let xml = &signature_files()
            .into_iter()
            .find(|f| f.0.ends_with("batch-sig.xml"))
            .unwrap()
            .1;
        for len in (0..xml.len()).step_by(13) {
            let _ = canonicalize(&xml[..len], Select::ById("signed-properties"), &INC, &L);
        }
        let mut state = 0x2545_f491_u32;
        for _ in 0..2000 {
            let mut doc = xml.clone();
            for _ in 0..4 {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                let i = state as usize % doc.len();
                doc[i] = b"<>&;:\"'=/ x#\r\n\xC3"[(state >> 20) as usize % 15];
            }
            let _ = canonicalize(
                &doc,
                Select::ById("signed-properties"),
                &exc(&["#default", "ds"]),
                &L,
            );
        }
    }
}
