//! A small element tree built from the bounded XML reader's events. The files are small and read
//! rarely, so a tree keeps the model code simple; the limits that guard it: size, the reader's
//! [`LIMITS`] (depth, elements, attributes, namespaces), no DOCTYPE (so no entity is ever expanded),
//! UTF-8 only, and every namespace prefix declared.

use std::collections::HashMap;

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;

use super::{GlobalConfError, MAX_DEPTH, MAX_FILE_BYTES};
use crate::xml::{Reader, XmlErrorKind, XmlLimits};

/// A large instance lists tens of thousands of members and servers: more elements than one
/// message, the other limits as for messages.
/// The depth is checked while the tree is built, to name the path; the reader's bound is one more.
const LIMITS: XmlLimits = XmlLimits {
    max_depth: MAX_DEPTH + 1,
    max_elements: 2_000_000,
    ..XmlLimits::DEFAULT
};

/// Namespace of identifier elements and of their `objectType` attribute.
pub(super) const NS_IDENTIFIERS: &str = "http://x-road.eu/xsd/identifiers";
/// Namespace of the root elements (`conf`, `configurationAnchor`).
pub(super) const NS_XROAD: &str = "http://x-road.eu/xsd/xroad.xsd";

/// Comment before the root that carries the configuration version through [`super::SharedParams::to_xml`]
/// and back, since nothing else in a v4 or v5 file need show it.
pub(super) const VERSION_COMMENT: &str = "configurationVersion=";

#[derive(Debug)]
pub(super) struct Element {
    /// Local name; prefixes vary between writers, so only the local name is matched.
    pub name: String,
    pub namespace: Option<String>,
    /// Position for messages: `/conf/securityServer[2]/client[1]`.
    pub path: String,
    pub line: u64,
    pub attrs: Vec<Attr>,
    pub children: Vec<Element>,
    /// The element's own character data (its children's is theirs).
    pub text: String,
}

#[derive(Debug)]
pub(super) struct Attr {
    pub namespace: Option<String>,
    pub name: String,
    pub value: String,
}

pub(super) struct Document {
    pub root: Element,
    /// The value of a `configurationVersion=N` comment before the root, if any.
    pub version_hint: Option<String>,
}

/// Counts lines incrementally so positions cost O(file) overall.
struct Lines<'a> {
    xml: &'a [u8],
    pos: usize,
    line: u64,
}

impl Lines<'_> {
    fn at(&mut self, pos: u64) -> u64 {
        let pos = (pos as usize).min(self.xml.len());
        if pos < self.pos {
            self.pos = 0;
            self.line = 1;
        }
        self.line += self.xml[self.pos..pos]
            .iter()
            .filter(|&&b| b == b'\n')
            .count() as u64;
        self.pos = pos;
        self.line
    }
}

pub(super) fn read(xml: &[u8], file: &str) -> Result<Document, GlobalConfError> {
    if xml.len() as u64 > MAX_FILE_BYTES {
        return Err(GlobalConfError::TooLarge {
            file: file.into(),
            size: xml.len() as u64,
        });
    }
    let not_xml = |line: u64, message: String| GlobalConfError::Xml {
        file: file.into(),
        line,
        message,
    };
    let xml = xml.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(xml);
    if xml.starts_with(b"\xFE\xFF") || xml.starts_with(b"\xFF\xFE") {
        return Err(not_xml(
            1,
            "UTF-16 is not supported; global configuration is UTF-8".into(),
        ));
    }
    let mut lines = Lines {
        xml,
        pos: 0,
        line: 1,
    };
    let mut reader = Reader::new(xml, &LIMITS).map_err(|e| not_xml(1, e.to_string()))?;
    let mut stack: Vec<Element> = Vec::new();
    // Children seen so far per open element, by name: numbers paths without rescanning siblings.
    let mut seen: Vec<HashMap<String, usize>> = Vec::new();
    let mut root: Option<Element> = None;
    let mut version_hint = None;
    loop {
        let event = match reader.read() {
            Ok(e) => e,
            Err(e) if e.kind() == XmlErrorKind::Doctype => {
                return Err(GlobalConfError::Doctype { file: file.into() })
            }
            Err(e) => return Err(not_xml(lines.at(reader.position() as u64), e.to_string())),
        };
        let line = lines.at(reader.position() as u64);
        match event {
            Event::DocType(_) => return Err(GlobalConfError::Doctype { file: file.into() }),
            Event::Decl(decl) => {
                if let Some(enc) = decl.encoding() {
                    let enc = enc.map_err(|e| not_xml(line, e.to_string()))?;
                    if !enc.eq_ignore_ascii_case(b"utf-8") && !enc.eq_ignore_ascii_case(b"utf8") {
                        let enc = String::from_utf8_lossy(&enc);
                        return Err(not_xml(
                            line,
                            format!("declares encoding {enc}; only UTF-8 is supported"),
                        ));
                    }
                }
            }
            Event::Start(start) => {
                let el = open(
                    &reader,
                    &start,
                    &stack,
                    &mut seen,
                    root.is_some(),
                    file,
                    line,
                )?;
                stack.push(el);
                seen.push(HashMap::new());
            }
            Event::Empty(start) => {
                let el = open(
                    &reader,
                    &start,
                    &stack,
                    &mut seen,
                    root.is_some(),
                    file,
                    line,
                )?;
                close(el, &mut stack, &mut root);
            }
            Event::End(_) => {
                // The reader has already checked that the end tag matches.
                let el = stack
                    .pop()
                    .ok_or_else(|| not_xml(line, "unexpected end tag".into()))?;
                seen.pop();
                close(el, &mut stack, &mut root);
            }
            Event::Text(t) => {
                let text = t.unescape().map_err(|e| not_xml(line, e.to_string()))?;
                match stack.last_mut() {
                    Some(el) => el.text.push_str(&text),
                    None if text.trim().is_empty() => {}
                    None => return Err(not_xml(line, "text outside the root element".into())),
                }
            }
            Event::CData(c) => {
                let text = std::str::from_utf8(&c).map_err(|e| not_xml(line, e.to_string()))?;
                match stack.last_mut() {
                    Some(el) => el.text.push_str(text),
                    None => return Err(not_xml(line, "CDATA outside the root element".into())),
                }
            }
            Event::Comment(c) if root.is_none() && stack.is_empty() => {
                let c = String::from_utf8_lossy(&c);
                if let Some(v) = c.trim().strip_prefix(VERSION_COMMENT) {
                    version_hint = Some(v.trim().to_string());
                }
            }
            Event::Comment(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
    }
    if let Some(open) = stack.last() {
        return Err(not_xml(
            lines.at(xml.len() as u64),
            format!("<{}> is never closed", open.name),
        ));
    }
    let root = root.ok_or_else(|| not_xml(lines.at(xml.len() as u64), "no root element".into()))?;
    Ok(Document { root, version_hint })
}

fn open(
    reader: &Reader<'_>,
    start: &BytesStart,
    stack: &[Element],
    seen: &mut [HashMap<String, usize>],
    had_root: bool,
    file: &str,
    line: u64,
) -> Result<Element, GlobalConfError> {
    let not_xml = |message: String| GlobalConfError::Xml {
        file: file.into(),
        line,
        message,
    };
    let (ns, local) = reader.resolve_element(start.name());
    let name = utf8(local.as_ref()).map_err(not_xml)?;
    let namespace = namespace_of(ns).map_err(not_xml)?;
    let path = match stack.last() {
        Some(parent) => {
            let nth = match seen.last_mut() {
                Some(counts) => {
                    let n = counts.entry(name.clone()).or_default();
                    *n += 1;
                    *n
                }
                None => 1,
            };
            format!("{}/{name}[{nth}]", parent.path)
        }
        None if had_root => return Err(not_xml(format!("a second root element <{name}>"))),
        None => format!("/{name}"),
    };
    if stack.len() >= MAX_DEPTH {
        return Err(GlobalConfError::TooDeep {
            file: file.into(),
            path,
        });
    }
    let mut attrs = Vec::new();
    for attr in start.attributes().with_checks(false) {
        let attr = attr.map_err(|e| not_xml(e.to_string()))?;
        if attr.key.as_namespace_binding().is_some() {
            continue;
        }
        let (ns, local) = reader.resolve_attribute(attr.key);
        let value = attr.unescape_value().map_err(|e| not_xml(e.to_string()))?;
        attrs.push(Attr {
            namespace: namespace_of(ns).map_err(not_xml)?,
            name: utf8(local.as_ref()).map_err(not_xml)?,
            value: value.into_owned(),
        });
    }
    Ok(Element {
        name,
        namespace,
        path,
        line,
        attrs,
        children: Vec::new(),
        text: String::new(),
    })
}

fn close(el: Element, stack: &mut [Element], root: &mut Option<Element>) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(el),
        None => *root = Some(el),
    }
}

fn utf8(b: &[u8]) -> Result<String, String> {
    String::from_utf8(b.to_vec()).map_err(|e| e.to_string())
}

fn namespace_of(ns: ResolveResult) -> Result<Option<String>, String> {
    match ns {
        ResolveResult::Bound(ns) => utf8(ns.as_ref()).map(Some),
        ResolveResult::Unbound => Ok(None),
        ResolveResult::Unknown(prefix) => Err(format!(
            "namespace prefix '{}' is not declared",
            String::from_utf8_lossy(&prefix)
        )),
    }
}
