//! Rust source for parsed registries: payload structs (serde + yaserde), facet constants,
//! `validate()`, operation markers, typed client functions and the `OPERATIONS` tables.
//!
//! Shared with `build.rs` (included by path). The output is deterministic: the same WSDLs give
//! the same bytes, so builds stay reproducible and `brama wsdl gen` shows exactly what is compiled.

use std::fmt::Write;

use super::model::{
    ident, marker_name, screaming, snake, struct_name, Builtin, ComplexType, Field, Registry,
    SimpleType, Texts, TypeRef,
};

/// Source of every registry module plus the `ALL` table and `visit_all`. `runtime` is the path
/// of `brama::wsdl::runtime` as seen from where the code is included.
pub fn generate(registries: &[Registry], runtime: &str) -> String {
    let mut out = String::from(
        "// @generated from registry WSDLs by brama's WSDL code generator (crates/wsdl/src/gen.rs). Do not edit.\n",
    );
    for r in registries {
        out.push('\n');
        out.push_str(&module(r, runtime));
    }
    let _ = writeln!(
        out,
        "\n/// Every operation of every registry, by registry.\npub const ALL: &[&[{runtime}::OperationInfo]] = &["
    );
    for r in registries {
        let _ = writeln!(out, "    {}::OPERATIONS,", r.name);
    }
    let _ = writeln!(
        out,
        "];\n\n/// Calls `visitor.visit::<O>()` for every operation of every registry.\npub fn visit_all<V: {runtime}::OperationVisitor>(visitor: &mut V) {{"
    );
    for r in registries {
        let _ = writeln!(out, "    {}::visit_operations(visitor);", r.name);
    }
    out.push_str("}\n");
    out
}

fn lit(s: &str) -> String {
    format!("{s:?}")
}

fn opt(s: Option<&str>) -> String {
    s.map_or("None".into(), |s| format!("Some({})", lit(s)))
}

/// A one-line doc comment (collapsed whitespace), if there is text.
fn doc(out: &mut String, indent: &str, text: Option<&str>) {
    if let Some(t) = text.filter(|t| !t.trim().is_empty()) {
        let t = t.split_whitespace().collect::<Vec<_>>().join(" ");
        let _ = writeln!(out, "{indent}/// {t}");
    }
}

fn title_line(t: &Texts) -> Option<String> {
    match (&t.uk, &t.en) {
        (Some(uk), Some(en)) => Some(format!("{uk} / {en}")),
        (Some(one), None) | (None, Some(one)) => Some(one.clone()),
        (None, None) => None,
    }
}

/// One registry as `pub mod <name> { … }`.
pub fn module(r: &Registry, runtime: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "/// `{}` (`{}`): the registry described by `{}.wsdl`.\npub mod {} {{\n    use {runtime} as rt;\n",
        r.port_type, r.namespace, r.name, r.name
    );
    let _ = writeln!(
        out,
        "    /// Namespace of the wrapper elements.\n    pub const NAMESPACE: &str = {};\n    pub const REGISTRY: &str = {};",
        lit(&r.namespace),
        lit(&r.name)
    );
    for s in &r.simple_types {
        simple_consts(&mut out, s);
    }
    for t in &r.types {
        type_struct(&mut out, r, t);
        validate_impl(&mut out, t);
    }
    for (i, o) in r.operations.iter().enumerate() {
        let (req, resp) = (struct_name(&o.input), struct_name(&o.output));
        let marker = marker_name(&o.name);
        out.push('\n');
        doc(&mut out, "    ", title_line(&o.title).as_deref());
        let _ = writeln!(
            out,
            "    #[derive(Clone, Copy, Debug, Default)]\n    pub struct {marker};\n\n    impl rt::Operation for {marker} {{\n        type Request = {req};\n        type Response = {resp};\n        const NAME: &'static str = {};\n        const VERSION: Option<&'static str> = {};\n        const NAMESPACE: &'static str = NAMESPACE;\n        const REGISTRY: &'static str = REGISTRY;\n        const INFO: &'static rt::OperationInfo = &OPERATIONS[{i}];\n    }}\n",
            lit(&o.name),
            opt(o.version.as_deref()),
        );
        doc(
            &mut out,
            "    ",
            o.title.uk.as_deref().or(o.title.en.as_deref()),
        );
        let _ = writeln!(
            out,
            "    /// Calls `{}`{} through `transport`.\n    pub async fn {}<T: rt::SoapTransport + ?Sized>(\n        transport: &T,\n        header: &rt::XRoadHeader,\n        request: &{req},\n    ) -> Result<{resp}, rt::ClientError> {{\n        rt::call::<{marker}, T>(transport, header, request).await\n    }}",
            o.name,
            o.version.as_deref().map(|v| format!(" ({v})")).unwrap_or_default(),
            ident(&snake(&o.name)),
        );
    }
    operations_table(&mut out, r);
    let _ = writeln!(
        out,
        "\n    /// Calls `visitor.visit::<O>()` for every operation of this registry.\n    pub fn visit_operations<V: rt::OperationVisitor>(visitor: &mut V) {{"
    );
    for o in &r.operations {
        let _ = writeln!(out, "        visitor.visit::<{}>();", marker_name(&o.name));
    }
    out.push_str("    }\n}\n");
    out
}

/// `<TYPE>_PATTERN(S)`, `<TYPE>_VALUES` and the `<TYPE>_RULES` that `validate()` applies.
fn simple_consts(out: &mut String, s: &SimpleType) {
    let c = screaming(&s.name);
    out.push('\n');
    doc(out, "    ", s.doc.as_deref());
    let patterns = match s.patterns.as_slice() {
        [] => "&[]".to_string(),
        [p] => {
            let _ = writeln!(out, "    pub const {c}_PATTERN: &str = {};", lit(p));
            format!("&[{c}_PATTERN]")
        }
        ps => {
            let list: Vec<String> = ps.iter().map(|p| lit(p)).collect();
            let _ = writeln!(
                out,
                "    pub const {c}_PATTERNS: &[&str] = &[{}];",
                list.join(", ")
            );
            format!("{c}_PATTERNS")
        }
    };
    let values = if s.enumeration.is_empty() {
        "&[]".to_string()
    } else {
        let list: Vec<String> = s.enumeration.iter().map(|v| lit(v)).collect();
        let _ = writeln!(
            out,
            "    pub const {c}_VALUES: &[&str] = &[{}];",
            list.join(", ")
        );
        format!("{c}_VALUES")
    };
    let len = |l: Option<u32>| l.map_or("None".into(), |l| format!("Some({l})"));
    let _ = writeln!(
        out,
        "    /// Facets of `{}`.\n    pub const {c}_RULES: rt::TextRules = rt::TextRules {{\n        patterns: {patterns},\n        values: {values},\n        min_length: {},\n        max_length: {},\n    }};",
        s.name,
        len(s.min_length),
        len(s.max_length)
    );
}

fn base_type(f: &Field) -> String {
    match &f.ty {
        TypeRef::Builtin(b) => b.rust_type().into(),
        TypeRef::Simple(_) => "String".into(),
        TypeRef::Complex(c) => struct_name(c),
    }
}

fn field_type(f: &Field) -> String {
    let base = base_type(f);
    if f.list {
        format!("Vec<{base}>")
    } else if f.optional {
        format!("Option<{base}>")
    } else {
        base
    }
}

fn xsd_type_name(f: &Field) -> &str {
    match &f.ty {
        TypeRef::Builtin(b) => b.xsd_name(),
        TypeRef::Simple(n) | TypeRef::Complex(n) => n,
    }
}

fn type_struct(out: &mut String, r: &Registry, t: &ComplexType) {
    let name = struct_name(&t.name);
    out.push('\n');
    match &t.element {
        Some(e) => {
            let _ = writeln!(out, "    /// The `{e}` element.");
        }
        None => doc(
            out,
            "    ",
            t.doc
                .as_deref()
                .or(Some(&format!("The `{}` type.", t.name))),
        ),
    }
    out.push_str("    #[derive(Debug, Clone, Default, PartialEq, ::serde::Serialize, ::serde::Deserialize, ::yaserde::YaSerialize, ::yaserde::YaDeserialize)]\n");
    if let Some(e) = &t.element {
        // Written `<tns:e xmlns:tns="…">` with unqualified children; read with any prefix
        // (yaserde compares the namespace URI, not the prefix).
        let _ = writeln!(
            out,
            "    #[yaserde(rename = {}, prefix = \"tns\", namespaces = {{ \"tns\" = {} }})]",
            lit(e),
            lit(&r.namespace)
        );
    }
    let _ = writeln!(out, "    pub struct {name} {{");
    for f in &t.fields {
        let mut what = format!("`{}`: {}", f.name, xsd_type_name(f));
        if f.list {
            what.push_str(", list");
        } else if f.optional {
            what.push_str(", optional");
        }
        let title = title_line(&f.title).map_or(what.clone(), |t| format!("{t} ({what})"));
        doc(out, "        ", Some(&title));
        let _ = writeln!(out, "        #[yaserde(rename = {})]", lit(&f.name));
        let serde_extra = if f.list {
            ", default, skip_serializing_if = \"Vec::is_empty\""
        } else if f.optional {
            ", default, skip_serializing_if = \"Option::is_none\""
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "        #[serde(rename = {}{serde_extra})]",
            lit(&f.name)
        );
        let _ = writeln!(
            out,
            "        pub {}: {},",
            ident(&snake(&f.name)),
            field_type(f)
        );
    }
    out.push_str("    }\n");
}

/// The rules constant for a simple field.
fn rules(f: &Field) -> Option<String> {
    Some(match &f.ty {
        TypeRef::Builtin(Builtin::Date) => "rt::TextRules::DATE".into(),
        TypeRef::Builtin(Builtin::DateTime) => "rt::TextRules::DATE_TIME".into(),
        TypeRef::Builtin(Builtin::Decimal) => "rt::TextRules::DECIMAL".into(),
        TypeRef::Builtin(Builtin::String) => "rt::TextRules::NONE".into(),
        TypeRef::Builtin(_) | TypeRef::Complex(_) => return None,
        TypeRef::Simple(s) => format!("{}_RULES", screaming(s)),
    })
}

fn validate_impl(out: &mut String, t: &ComplexType) {
    let name = struct_name(&t.name);
    let _ = writeln!(
        out,
        "\n    impl {name} {{\n        /// Enumeration, pattern and length violations, missing required values and unmet\n        /// choices, by field path.\n        pub fn validate(&self) -> Vec<rt::Violation> {{\n            let mut out = Vec::new();\n            self.validate_at(\"\", &mut out);\n            out\n        }}\n\n        #[doc(hidden)]\n        #[allow(unused_variables, clippy::ptr_arg)]\n        pub fn validate_at(&self, path: &str, out: &mut Vec<rt::Violation>) {{"
    );
    for f in &t.fields {
        let (id, xml) = (ident(&snake(&f.name)), lit(&f.name));
        let line = match (rules(f), &f.ty) {
            (Some(rules), _) if f.list => format!(
                "for (i, v) in self.{id}.iter().enumerate() {{\n                rt::check_text(out, path, &format!(\"{}[{{i}}]\"), v, true, &{rules});\n            }}",
                f.name
            ),
            (Some(rules), _) if f.optional => format!(
                "if let Some(v) = &self.{id} {{\n                rt::check_text(out, path, {xml}, v, false, &{rules});\n            }}"
            ),
            (Some(rules), _) => format!("rt::check_text(out, path, {xml}, &self.{id}, true, &{rules});"),
            (None, TypeRef::Complex(_)) if f.list => format!(
                "for (i, v) in self.{id}.iter().enumerate() {{\n                v.validate_at(&rt::nested(path, {xml}, Some(i)), out);\n            }}"
            ),
            (None, TypeRef::Complex(_)) if f.optional => format!(
                "if let Some(v) = &self.{id} {{\n                v.validate_at(&rt::nested(path, {xml}, None), out);\n            }}"
            ),
            (None, TypeRef::Complex(_)) => format!("self.{id}.validate_at(&rt::nested(path, {xml}, None), out);"),
            (None, _) => continue,
        };
        let _ = writeln!(out, "            {line}");
    }
    let mut groups: Vec<u32> = t.fields.iter().filter_map(|f| f.choice).collect();
    groups.dedup();
    for g in groups {
        let members: Vec<&Field> = t.fields.iter().filter(|f| f.choice == Some(g)).collect();
        let names: Vec<String> = members.iter().map(|f| lit(&f.name)).collect();
        let present: Vec<String> = members
            .iter()
            .map(|f| {
                let id = ident(&snake(&f.name));
                if f.list {
                    format!("!self.{id}.is_empty()")
                } else {
                    format!("self.{id}.is_some()")
                }
            })
            .collect();
        let _ = writeln!(
            out,
            "            rt::check_choice(out, path, &[{}], &[{}]);",
            names.join(", "),
            present.join(", ")
        );
    }
    out.push_str("        }\n    }\n");
    if let Some(e) = &t.element {
        let _ = writeln!(
            out,
            "\n    impl rt::Payload for {name} {{\n        const ELEMENT: &'static str = {};\n        fn validate(&self) -> Vec<rt::Violation> {{\n            {name}::validate(self)\n        }}\n    }}",
            lit(e)
        );
    }
}

fn fields_const(t: &ComplexType) -> String {
    format!("FIELDS_{}", screaming(&struct_name(&t.name)))
}

/// `OPERATIONS` and the field trees it points to (one constant per type).
fn operations_table(out: &mut String, r: &Registry) {
    for t in &r.types {
        let _ = writeln!(
            out,
            "\n    #[doc(hidden)]\n    pub const {}: &[rt::FieldInfo] = &[",
            fields_const(t)
        );
        for f in &t.fields {
            let (kind, rules_c, children) = match &f.ty {
                TypeRef::Builtin(b) => (
                    format!("rt::FieldKind::Simple(rt::Builtin::{b:?})"),
                    "rt::TextRules::NONE".to_string(),
                    "&[]".to_string(),
                ),
                TypeRef::Simple(s) => (
                    "rt::FieldKind::Simple(rt::Builtin::String)".into(),
                    format!("{}_RULES", screaming(s)),
                    "&[]".into(),
                ),
                TypeRef::Complex(c) => (
                    "rt::FieldKind::Complex".into(),
                    "rt::TextRules::NONE".into(),
                    r.complex(c).map(fields_const).unwrap_or_default(),
                ),
            };
            let _ = writeln!(
                out,
                "        rt::FieldInfo {{\n            name: {},\n            type_name: {},\n            kind: {kind},\n            optional: {},\n            list: {},\n            choice: {},\n            title_uk: {},\n            title_en: {},\n            rules: {rules_c},\n            fields: {children},\n        }},",
                lit(&f.name),
                lit(xsd_type_name(f)),
                f.optional,
                f.list,
                f.choice.map_or("None".into(), |c| format!("Some({c})")),
                opt(f.title.uk.as_deref()),
                opt(f.title.en.as_deref()),
            );
        }
        out.push_str("    ];\n");
    }
    out.push_str("\n    /// Every operation of this registry, in WSDL order.\n    pub const OPERATIONS: &[rt::OperationInfo] = &[\n");
    for o in &r.operations {
        let element = |e: &str| {
            let t = r.wrapper(e).expect("the parser checked the wrapper exists");
            format!(
                "rt::ElementInfo {{\n                name: {},\n                rust_type: {},\n                fields: {},\n            }}",
                lit(e),
                lit(&struct_name(e)),
                fields_const(t)
            )
        };
        let _ = writeln!(
            out,
            "        rt::OperationInfo {{\n            registry: REGISTRY,\n            name: {},\n            version: {},\n            title_uk: {},\n            title_en: {},\n            notes_uk: {},\n            notes_en: {},\n            namespace: NAMESPACE,\n            request: {},\n            response: {},\n        }},",
            lit(&o.name),
            opt(o.version.as_deref()),
            opt(o.title.uk.as_deref()),
            opt(o.title.en.as_deref()),
            opt(o.notes.uk.as_deref()),
            opt(o.notes.en.as_deref()),
            element(&o.input),
            element(&o.output),
        );
    }
    out.push_str("    ];\n");
}
