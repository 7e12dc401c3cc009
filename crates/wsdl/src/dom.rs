//! A small element tree over quick-xml with namespaces resolved, for reading WSDL files (trusted,
//! small build inputs, so a tree is simpler than streaming) and the errors that point into them.
//!
//! Shared with `build.rs` (included by path).

use std::fmt;
use std::rc::Rc;

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

pub const NS_XML: &str = "http://www.w3.org/XML/1998/namespace";

/// An error in a WSDL file: where (file, line, element) and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub file: String,
    pub line: usize,
    /// The element the problem is in, as written (`<xs:element name="child">`).
    pub element: String,
    pub message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
        }
        if !self.element.is_empty() {
            write!(f, ": {}", self.element)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for Error {}

/// Namespace bindings in scope: `(prefix, uri)`, innermost last; `""` is the default namespace.
type Scope = Rc<Vec<(String, String)>>;

#[derive(Clone, Debug)]
pub struct Node {
    pub ns: Option<String>,
    pub local: String,
    /// The start tag's name as written.
    pub qname: String,
    /// Attributes other than namespace declarations: name as written, unescaped value.
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Node>,
    pub text: String,
    pub line: usize,
    scope: Scope,
}

impl Node {
    pub fn is(&self, ns: &str, local: &str) -> bool {
        self.ns.as_deref() == Some(ns) && self.local == local
    }

    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Resolves a QName-valued attribute (`tns:Person`) to `(namespace, local name)`.
    pub fn resolve(&self, qname: &str) -> Option<(Option<String>, String)> {
        let (prefix, local) = qname.split_once(':').unwrap_or(("", qname));
        let ns = self
            .scope
            .iter()
            .rev()
            .find(|(p, _)| p == prefix)
            .map(|(_, uri)| uri.clone())
            .filter(|uri| !uri.is_empty());
        if ns.is_none() && !prefix.is_empty() {
            return None;
        }
        Some((ns, local.to_string()))
    }

    /// The start tag for messages, with its `name` when it has one.
    pub fn describe(&self) -> String {
        match self.attr("name") {
            Some(n) => format!("<{} name=\"{n}\">", self.qname),
            None => format!("<{}>", self.qname),
        }
    }

    /// Text content with runs of whitespace collapsed.
    pub(crate) fn text_collapsed(&self) -> String {
        self.text.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    /// `xml:lang` (the `xml` prefix cannot be rebound).
    pub fn lang(&self) -> Option<&str> {
        self.attr("xml:lang")
    }
}

/// Error builder bound to one file.
#[derive(Clone, Debug)]
pub struct Ctx {
    pub file: String,
}

impl Ctx {
    pub fn err(&self, node: &Node, message: impl Into<String>) -> Error {
        Error {
            file: self.file.clone(),
            line: node.line,
            element: node.describe(),
            message: message.into(),
        }
    }
}

/// Parses a whole document into its root element.
pub fn parse(ctx: &Ctx, xml: &str) -> Result<Node, Error> {
    let mut reader = Reader::from_str(xml);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Node> = Vec::new();
    let mut root = None;
    let mut line = 1;
    let mut seen = 0;
    let fail = |line: usize, message: String| Error {
        file: ctx.file.clone(),
        line,
        element: String::new(),
        message,
    };
    loop {
        let before = reader.buffer_position() as usize;
        line += xml.as_bytes()[seen.min(xml.len())..before.min(xml.len())]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        seen = before;
        let event = reader
            .read_event()
            .map_err(|e| fail(line, format!("malformed XML: {e}")))?;
        match event {
            Event::Start(_) | Event::Empty(_) if root.is_some() => {
                return Err(fail(line, "content after the root element".into()));
            }
            Event::Start(s) => {
                let parent = stack.last().map(|n| n.scope.clone());
                stack.push(element(&s, parent, line).map_err(|m| fail(line, m))?);
            }
            Event::Empty(s) => {
                let parent = stack.last().map(|n| n.scope.clone());
                let node = element(&s, parent, line).map_err(|m| fail(line, m))?;
                match stack.last_mut() {
                    Some(p) => p.children.push(node),
                    None => root = Some(node),
                }
            }
            Event::End(_) => {
                let node = stack.pop().expect("end names are checked");
                match stack.last_mut() {
                    Some(p) => p.children.push(node),
                    None => root = Some(node),
                }
            }
            Event::Text(t) => {
                if let Some(n) = stack.last_mut() {
                    let text = t
                        .unescape()
                        .map_err(|e| fail(line, format!("malformed text: {e}")))?;
                    n.text.push_str(&text);
                }
            }
            Event::CData(c) => {
                if let Some(n) = stack.last_mut() {
                    n.text.push_str(&String::from_utf8_lossy(&c));
                }
            }
            Event::DocType(_) => return Err(fail(line, "DOCTYPE is not supported".into())),
            Event::Eof => break,
            _ => {}
        }
    }
    root.ok_or_else(|| fail(line, "no root element".into()))
}

fn element(s: &BytesStart, parent: Option<Scope>, line: usize) -> Result<Node, String> {
    let qname = String::from_utf8_lossy(s.name().as_ref()).into_owned();
    let mut decls = Vec::new();
    let mut attrs = Vec::new();
    for a in s.attributes() {
        let a = a.map_err(|e| format!("malformed attribute in <{qname}>: {e}"))?;
        let key = String::from_utf8_lossy(a.key.as_ref()).into_owned();
        let value = a
            .unescape_value()
            .map_err(|e| format!("malformed attribute value in <{qname}>: {e}"))?
            .into_owned();
        if key == "xmlns" {
            decls.push((String::new(), value));
        } else if let Some(p) = key.strip_prefix("xmlns:") {
            decls.push((p.to_string(), value));
        } else {
            attrs.push((key, value));
        }
    }
    let scope = match (parent, decls.is_empty()) {
        (Some(p), true) => p,
        (p, _) => {
            let mut all = p.map(|p| p.as_ref().clone()).unwrap_or_default();
            all.push(("xml".into(), NS_XML.into()));
            all.extend(decls);
            Rc::new(all)
        }
    };
    let (prefix, local) = qname.split_once(':').unwrap_or(("", &qname));
    let ns = scope
        .iter()
        .rev()
        .find(|(p, _)| p == prefix)
        .map(|(_, uri)| uri.clone())
        .filter(|u| !u.is_empty());
    if ns.is_none() && !prefix.is_empty() {
        return Err(format!("<{qname}>: prefix '{prefix}' is not declared"));
    }
    Ok(Node {
        ns,
        local: local.to_string(),
        qname: qname.clone(),
        attrs,
        children: Vec::new(),
        text: String::new(),
        line,
        scope,
    })
}
