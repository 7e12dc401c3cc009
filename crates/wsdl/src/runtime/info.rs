//! Static descriptions of operations (the generated `OPERATIONS`), for `brama wsdl` and anything
//! that handles operations by name, and sample payloads built from them.

use super::validate::TextRules;
use crate::model::Builtin;
use crate::pattern::Pattern;
use brama_xroad::message::soap::escape;

/// One operation of a registry.
#[derive(Clone, Copy, Debug)]
pub struct OperationInfo {
    pub registry: &'static str,
    /// The operation name (X-Road service code).
    pub name: &'static str,
    /// `xrd:version` (X-Road service version).
    pub version: Option<&'static str>,
    pub title_uk: Option<&'static str>,
    pub title_en: Option<&'static str>,
    pub notes_uk: Option<&'static str>,
    pub notes_en: Option<&'static str>,
    pub namespace: &'static str,
    pub request: ElementInfo,
    pub response: ElementInfo,
}

/// A wrapper element and its struct.
#[derive(Clone, Copy, Debug)]
pub struct ElementInfo {
    /// Local name, in the operation's namespace.
    pub name: &'static str,
    /// The generated struct.
    pub rust_type: &'static str,
    pub fields: &'static [FieldInfo],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKind {
    /// A built-in type, or a simple type restricting `xs:string` ([`Builtin::String`]).
    Simple(Builtin),
    /// A complex type: see [`FieldInfo::fields`].
    Complex,
}

/// One element of a payload (unqualified, in document order).
#[derive(Clone, Copy, Debug)]
pub struct FieldInfo {
    pub name: &'static str,
    /// The XSD type's local name: `string`, `date`, `Rnokpp`, `Newborn`.
    pub type_name: &'static str,
    pub kind: FieldKind,
    pub optional: bool,
    pub list: bool,
    /// Alternatives of one `xs:choice` share a number.
    pub choice: Option<u32>,
    pub title_uk: Option<&'static str>,
    pub title_en: Option<&'static str>,
    /// Facets of a simple type (none for built-ins and complex types).
    pub rules: TextRules,
    /// Children of a complex type, base type's first.
    pub fields: &'static [FieldInfo],
}

impl OperationInfo {
    /// `operation` or `registry/operation` among `ops`; an operation name several registries
    /// share must be given with its registry.
    pub fn find<'o>(
        ops: impl IntoIterator<Item = &'o OperationInfo>,
        wanted: &str,
    ) -> Result<&'o OperationInfo, String> {
        let matches: Vec<&OperationInfo> = ops
            .into_iter()
            .filter(|o| match wanted.split_once('/') {
                Some((reg, name)) => o.registry == reg && o.name == name,
                None => o.name == wanted,
            })
            .collect();
        match matches.as_slice() {
            [one] => Ok(one),
            [] => Err(format!("no operation '{wanted}' (see `brama wsdl list`)")),
            many => Err(format!(
                "'{wanted}' is in several registries: {}",
                many.iter().map(|o| o.path()).collect::<Vec<_>>().join(", ")
            )),
        }
    }

    /// `registry/operation`.
    pub fn path(&self) -> String {
        format!("{}/{}", self.registry, self.name)
    }

    /// A request wrapper with a valid value in every field (first alternative of a choice).
    pub fn sample_request_xml(&self) -> String {
        sample_xml(self.namespace, &self.request)
    }

    /// A response wrapper with a valid value in every field (first alternative of a choice).
    pub fn sample_response_xml(&self) -> String {
        sample_xml(self.namespace, &self.response)
    }
}

impl FieldInfo {
    /// A valid value for a simple field.
    pub(crate) fn sample_value(&self) -> String {
        let builtin = match self.kind {
            FieldKind::Simple(b) => b,
            FieldKind::Complex => return String::new(),
        };
        if let Some(v) = self.rules.values.first() {
            return v.to_string();
        }
        if let Some(p) = self
            .rules
            .patterns
            .first()
            .and_then(|p| Pattern::parse(p).ok())
        {
            return p.sample();
        }
        let mut v = match builtin {
            Builtin::String => self.name.to_string(),
            Builtin::Date => "2026-01-15".into(),
            Builtin::DateTime => "2026-01-15T10:30:00+02:00".into(),
            Builtin::Int | Builtin::Long => "1".into(),
            Builtin::Decimal => "1000.00".into(),
            Builtin::Boolean => "true".into(),
        };
        if let Some(max) = self.rules.max_length {
            v = v.chars().take(max as usize).collect();
        }
        while v.chars().count() < self.rules.min_length.unwrap_or(0) as usize {
            v.push('x');
        }
        v
    }
}

/// `<tns:name xmlns:tns="…">` with unqualified children: the shape the generated structs write
/// (xml-rs writes empty elements as `<a />`).
pub(crate) fn sample_xml(namespace: &str, element: &ElementInfo) -> String {
    let mut inner = String::new();
    sample_fields(&mut inner, element.fields);
    let open = format!("tns:{} xmlns:tns=\"{}\"", element.name, escape(namespace));
    wrap(&open, &format!("tns:{}", element.name), &inner)
}

fn wrap(open: &str, name: &str, inner: &str) -> String {
    if inner.is_empty() {
        format!("<{open} />")
    } else {
        format!("<{open}>{inner}</{name}>")
    }
}

fn sample_fields(out: &mut String, fields: &[FieldInfo]) {
    let mut chosen = Vec::new();
    for f in fields {
        if let Some(group) = f.choice {
            if chosen.contains(&group) {
                continue;
            }
            chosen.push(group);
        }
        let inner = match f.kind {
            FieldKind::Complex => {
                let mut inner = String::new();
                sample_fields(&mut inner, f.fields);
                inner
            }
            FieldKind::Simple(_) => escape(&f.sample_value()).into_owned(),
        };
        out.push_str(&wrap(f.name, f.name, &inner));
    }
}
