//! The parsed form of one registry WSDL: what the generator and `brama wsdl` need, nothing more.
//!
//! Shared with `build.rs` (included by path), so it depends on nothing outside `std`.

/// One WSDL: a registry's port type, its operations and the schema types they use.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Registry {
    /// File stem (`dracs` for `wsdl/dracs.wsdl`): the Rust module name.
    pub name: String,
    /// The WSDL's `targetNamespace`, which is also the registry schema's.
    pub namespace: String,
    pub port_type: String,
    pub operations: Vec<Operation>,
    /// Named complex types and wrapper elements, in document order.
    pub types: Vec<ComplexType>,
    pub simple_types: Vec<SimpleType>,
}

/// `xrd:title` (or `xrd:notes`) texts by language. Text without `xml:lang` counts as Ukrainian.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Texts {
    pub uk: Option<String>,
    pub en: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Operation {
    pub name: String,
    /// `xrd:version` of the binding operation.
    pub version: Option<String>,
    pub title: Texts,
    pub notes: Texts,
    /// Local names of the input and output wrapper elements (in [`Registry::namespace`]).
    pub input: String,
    pub output: String,
}

/// A named complex type, or the anonymous type of a wrapper element (`element` is then set).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ComplexType {
    /// The XSD type name, or the element name for a wrapper.
    pub name: String,
    pub element: Option<String>,
    /// `xs:extension` base; its fields are already copied to the front of `fields`.
    pub base: Option<String>,
    pub fields: Vec<Field>,
    pub doc: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    /// The XML (unqualified) element name.
    pub name: String,
    pub ty: TypeRef,
    /// `minOccurs="0"`, or an alternative of an `xs:choice`.
    pub optional: bool,
    /// `maxOccurs="unbounded"` (or above 1).
    pub list: bool,
    /// Fields of the same `xs:choice` share a group number; at least one of them must be present.
    pub choice: Option<u32>,
    pub title: Texts,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TypeRef {
    Builtin(Builtin),
    /// A named simple type of the registry schema.
    Simple(String),
    /// A named complex type of the registry schema.
    Complex(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Builtin {
    String,
    Date,
    DateTime,
    Int,
    Long,
    Decimal,
    Boolean,
}

impl Builtin {
    pub(crate) fn from_xsd(local: &str) -> Option<Builtin> {
        Some(match local {
            "string" => Builtin::String,
            "date" => Builtin::Date,
            "dateTime" => Builtin::DateTime,
            "int" => Builtin::Int,
            "long" => Builtin::Long,
            "decimal" => Builtin::Decimal,
            "boolean" => Builtin::Boolean,
            _ => return None,
        })
    }

    pub fn xsd_name(self) -> &'static str {
        match self {
            Builtin::String => "string",
            Builtin::Date => "date",
            Builtin::DateTime => "dateTime",
            Builtin::Int => "int",
            Builtin::Long => "long",
            Builtin::Decimal => "decimal",
            Builtin::Boolean => "boolean",
        }
    }

    /// The Rust type a field of this type gets.
    pub fn rust_type(self) -> &'static str {
        match self {
            Builtin::Int => "i32",
            Builtin::Long => "i64",
            Builtin::Boolean => "bool",
            _ => "String",
        }
    }
}

/// A named `xs:simpleType` restricting `xs:string`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimpleType {
    pub name: String,
    pub patterns: Vec<String>,
    pub enumeration: Vec<String>,
    pub min_length: Option<u32>,
    pub max_length: Option<u32>,
    pub doc: Option<String>,
}

impl Registry {
    pub fn complex(&self, name: &str) -> Option<&ComplexType> {
        self.types
            .iter()
            .find(|t| t.element.is_none() && t.name == name)
    }

    pub fn wrapper(&self, element: &str) -> Option<&ComplexType> {
        self.types
            .iter()
            .find(|t| t.element.as_deref() == Some(element))
    }

    pub fn simple(&self, name: &str) -> Option<&SimpleType> {
        self.simple_types.iter().find(|t| t.name == name)
    }
}

/// `registerBirth` -> `RegisterBirth`; other characters than letters and digits split words.
pub(crate) fn upper_camel(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            if upper {
                out.push(c.to_ascii_uppercase());
            } else {
                out.push(c);
            }
            upper = false;
        } else {
            upper = true;
        }
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, 'T');
    }
    out
}

/// The struct for a complex type or wrapper element; names that would shadow the prelude names
/// the generated code (and yaserde's derive) use get a `Type` suffix.
pub fn struct_name(xsd_name: &str) -> String {
    let n = upper_camel(xsd_name);
    match n.as_str() {
        "String" | "Option" | "Vec" | "Box" | "Result" | "Some" | "None" | "Ok" | "Err"
        | "Self" => {
            format!("{n}Type")
        }
        _ => n,
    }
}

/// The marker type of an operation: `registerBirth` -> `RegisterBirthOp`.
pub(crate) fn marker_name(op: &str) -> String {
    format!("{}Op", upper_camel(op))
}

/// `givenName` -> `given_name`, `birthPlaceKATOTTG` -> `birth_place_katottg`.
pub(crate) fn snake(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_ascii_alphanumeric() {
            if !out.is_empty() && !out.ends_with('_') {
                out.push('_');
            }
            continue;
        }
        if c.is_ascii_uppercase() && i > 0 && !out.ends_with('_') {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            let word_start = prev.is_ascii_lowercase()
                || prev.is_ascii_digit()
                || (prev.is_ascii_uppercase() && next_lower);
            if word_start {
                out.push('_');
            }
        }
        out.push(c.to_ascii_lowercase());
    }
    let out = out.trim_end_matches('_');
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        format!("f_{out}")
    } else {
        out.to_string()
    }
}

/// `RegisterBirth` / `Rnokpp` -> `RNOKPP`, for constants.
pub(crate) fn screaming(name: &str) -> String {
    snake(name).to_ascii_uppercase()
}

/// Rust keywords that need `r#` as identifiers (`self` and friends cannot be raw: suffixed).
pub fn ident(name: &str) -> String {
    const RAW: &[&str] = &[
        "as", "async", "await", "break", "const", "continue", "dyn", "else", "enum", "extern",
        "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut",
        "pub", "ref", "return", "static", "struct", "trait", "true", "type", "unsafe", "use",
        "where", "while", "abstract", "become", "box", "do", "final", "gen", "macro", "override",
        "priv", "try", "typeof", "unsized", "virtual", "yield",
    ];
    match name {
        "self" | "super" | "crate" | "Self" => format!("{name}_"),
        n if RAW.contains(&n) => format!("r#{n}"),
        n => n.to_string(),
    }
}
