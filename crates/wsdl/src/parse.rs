//! WSDL 1.1 (document/literal wrapped, X-Road header parts) into a [`Registry`]: one port type,
//! its operations with `xrd:version` and `xrd:title`, and the registry schema's types.
//!
//! Shared with `build.rs` (included by path): only `super::` paths to its sibling modules.

use std::collections::HashSet;
use std::path::Path;

use super::dom::{self, Ctx, Error, Node};
use super::model::{self, ComplexType, Operation, Registry, Texts, TypeRef};
use super::schema::{self, is_xroad, set_text, NS_XROAD, NS_XSD};

pub(crate) const NS_WSDL: &str = "http://schemas.xmlsoap.org/wsdl/";
pub(crate) const NS_WSDL_SOAP: &str = "http://schemas.xmlsoap.org/wsdl/soap/";

/// Every `*.wsdl` directly in `dir`, sorted by file name.
pub fn parse_dir(dir: &Path) -> Result<Vec<Registry>, Error> {
    let io = |e: std::io::Error| Error {
        file: dir.display().to_string(),
        line: 0,
        element: String::new(),
        message: e.to_string(),
    };
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wsdl") && p.is_file())
        .collect();
    files.sort();
    files.iter().map(|f| parse_file(f)).collect()
}

/// One WSDL file; the registry is named after the file stem.
pub fn parse_file(path: &Path) -> Result<Registry, Error> {
    let file = path.display().to_string();
    let xml = std::fs::read_to_string(path).map_err(|e| Error {
        file: file.clone(),
        line: 0,
        element: String::new(),
        message: e.to_string(),
    })?;
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    parse_registry(&file, stem, &xml)
}

/// Parses WSDL text. `file` only labels errors; `name` becomes [`Registry::name`].
pub(crate) fn parse_registry(file: &str, name: &str, xml: &str) -> Result<Registry, Error> {
    let ctx = Ctx { file: file.into() };
    let root = dom::parse(&ctx, xml)?;
    if !root.is(NS_WSDL, "definitions") {
        return Err(ctx.err(&root, "not a WSDL 1.1 document (wsdl:definitions)"));
    }
    let valid_name = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid_name {
        return Err(ctx.err(
            &root,
            format!("file name '{name}' cannot be a Rust module name (use lowercase letters, digits, '_')"),
        ));
    }
    let tns = root
        .attr("targetNamespace")
        .ok_or_else(|| ctx.err(&root, "missing targetNamespace"))?
        .to_string();

    let mut schemas = Vec::new();
    let (mut messages, mut port_types, mut bindings) = (Vec::new(), Vec::new(), Vec::new());
    for c in &root.children {
        if c.ns.as_deref() != Some(NS_WSDL) {
            return Err(ctx.err(c, "outside the supported WSDL subset"));
        }
        match c.local.as_str() {
            "documentation" | "service" => {}
            "types" => {
                for s in &c.children {
                    if !s.is(NS_XSD, "schema") {
                        return Err(ctx.err(s, "wsdl:types may only hold xs:schema"));
                    }
                    let ns = s.attr("targetNamespace").unwrap_or_default();
                    if is_xroad(ns) {
                        continue;
                    }
                    if ns != tns {
                        return Err(ctx.err(
                            s,
                            format!("schema for '{ns}': only the registry's namespace ('{tns}') and X-Road's header schemas are supported"),
                        ));
                    }
                    schemas.push(schema::read(&ctx, s, &tns)?);
                }
            }
            "message" => messages.push(c),
            "portType" => port_types.push(c),
            "binding" => bindings.push(c),
            _ => return Err(ctx.err(c, "outside the supported WSDL subset")),
        }
    }
    let port_type = match port_types.as_slice() {
        [p] => *p,
        _ => return Err(ctx.err(&root, "exactly one wsdl:portType is supported")),
    };

    let mut reg = Registry {
        name: name.into(),
        namespace: tns.clone(),
        port_type: port_type.attr("name").unwrap_or_default().into(),
        ..Registry::default()
    };
    types(&ctx, &tns, schemas, &mut reg)?;
    for op in port_type
        .children
        .iter()
        .filter(|c| !c.is(NS_WSDL, "documentation"))
    {
        reg.operations.push(operation(
            &ctx, &tns, op, &messages, &bindings, port_type, &reg,
        )?);
    }
    if reg.operations.is_empty() {
        return Err(ctx.err(port_type, "a port type without operations"));
    }
    check_names(&ctx, &root, &reg)?;
    Ok(reg)
}

/// Merges the registry schemas and resolves type references and extensions.
fn types(
    ctx: &Ctx,
    tns: &str,
    schemas: Vec<schema::Schema>,
    reg: &mut Registry,
) -> Result<(), Error> {
    let mut complex: Vec<(ComplexType, Node)> = Vec::new();
    let mut typed = Vec::new();
    let mut simple_nodes = Vec::new();
    for s in schemas {
        for (t, n) in s.simple {
            simple_nodes.push((t.name.clone(), n));
            reg.simple_types.push(t);
        }
        complex.extend(s.complex);
        typed.extend(s.typed_elements);
    }
    let mut seen = HashSet::new();
    for (t, n) in &simple_nodes {
        if !seen.insert(t.clone()) {
            return Err(ctx.err(n, "declared twice"));
        }
    }
    let (mut named, mut elements) = (HashSet::new(), HashSet::new());
    for (t, n) in &complex {
        let set = if t.element.is_some() {
            &mut elements
        } else {
            &mut named
        };
        if !set.insert(t.name.clone()) {
            return Err(ctx.err(n, "declared twice"));
        }
    }
    for (e, _, n) in &typed {
        if !elements.insert(e.clone()) {
            return Err(ctx.err(n, "declared twice"));
        }
    }
    // Field types: `{ns}local` -> simple or complex type of this schema.
    let simple: HashSet<String> = reg.simple_types.iter().map(|t| t.name.clone()).collect();
    for (t, n) in complex.iter_mut() {
        for f in t.fields.iter_mut() {
            if let TypeRef::Complex(clark) = &f.ty {
                let local = clark
                    .strip_prefix(&format!("{{{tns}}}"))
                    .filter(|l| simple.contains(*l) || named.contains(*l))
                    .ok_or_else(|| ctx.err(n, format!("field '{}': unknown type {clark}", f.name)))?
                    .to_string();
                f.ty = if simple.contains(&local) {
                    TypeRef::Simple(local)
                } else {
                    TypeRef::Complex(local)
                };
            }
        }
    }
    // Extensions: base fields first, recursively.
    let raw: Vec<ComplexType> = complex.iter().map(|(t, _)| t.clone()).collect();
    for (t, n) in complex.iter_mut() {
        let mut chain = vec![t.name.clone()];
        let mut base = t.base.clone();
        while let Some(b) = base {
            if chain.contains(&b) {
                return Err(ctx.err(n, format!("extension cycle through '{b}'")));
            }
            let parent = raw
                .iter()
                .find(|r| r.element.is_none() && r.name == b)
                .ok_or_else(|| {
                    ctx.err(
                        n,
                        format!("extension base '{b}' is not a complex type of this schema"),
                    )
                })?;
            let mut fields = parent.fields.clone();
            // Choice groups are numbered per type: the extension's come after the base's.
            let offset = fields.iter().filter_map(|f| f.choice).max().unwrap_or(0);
            for f in t.fields.iter_mut() {
                if fields.iter().any(|p| p.name == f.name) {
                    return Err(ctx.err(n, format!("field '{}' is already in base '{b}'", f.name)));
                }
                f.choice = f.choice.map(|c| c + offset);
            }
            fields.append(&mut t.fields);
            t.fields = fields;
            chain.push(b);
            base = parent.base.clone();
        }
    }
    for (element, ty, n) in typed {
        let mut t = complex
            .iter()
            .find(|(c, _)| c.element.is_none() && c.name == ty)
            .map(|(c, _)| c.clone())
            .ok_or_else(|| {
                ctx.err(
                    &n,
                    format!("type '{ty}' is not a complex type of this schema"),
                )
            })?;
        t.name = element.clone();
        t.element = Some(element);
        complex.push((t, n));
    }
    // A type that contains itself would be a struct of infinite size.
    for (t, n) in complex.iter().filter(|(t, _)| t.element.is_none()) {
        let mut path = vec![t.name.clone()];
        if cycle(&complex, &t.name, &mut path) {
            return Err(ctx.err(n, format!("recursive type: {}", path.join(" -> "))));
        }
    }
    reg.types = complex.into_iter().map(|(t, _)| t).collect();
    Ok(())
}

/// Whether the type at the end of `path` reaches `root` through its fields (`path` then ends
/// with `root`).
fn cycle(all: &[(ComplexType, Node)], root: &str, path: &mut Vec<String>) -> bool {
    let current = path.last().cloned().unwrap_or_default();
    let Some((t, _)) = all
        .iter()
        .find(|(t, _)| t.element.is_none() && t.name == current)
    else {
        return false;
    };
    for f in &t.fields {
        if let TypeRef::Complex(c) = &f.ty {
            if c == root {
                path.push(c.clone());
                return true;
            }
            if !path.contains(c) {
                path.push(c.clone());
                if cycle(all, root, path) {
                    return true;
                }
                path.pop();
            }
        }
    }
    false
}

/// The wrapper element a message's single part names.
fn message_element(
    ctx: &Ctx,
    tns: &str,
    at: &Node,
    messages: &[&Node],
    reg: &Registry,
) -> Result<String, Error> {
    let q = at
        .attr("message")
        .ok_or_else(|| ctx.err(at, "missing 'message' attribute"))?;
    let (ns, local) = at
        .resolve(q)
        .ok_or_else(|| ctx.err(at, format!("message '{q}': undeclared prefix")))?;
    let msg = messages
        .iter()
        .find(|m| ns.as_deref() == Some(tns) && m.attr("name") == Some(local.as_str()))
        .ok_or_else(|| ctx.err(at, format!("no wsdl:message '{q}'")))?;
    let parts: Vec<&Node> = msg
        .children
        .iter()
        .filter(|c| c.is(NS_WSDL, "part"))
        .collect();
    let part = match parts.as_slice() {
        [p] => *p,
        _ => return Err(ctx.err(msg, "a body message must have exactly one part")),
    };
    let el = part.attr("element").ok_or_else(|| {
        ctx.err(
            part,
            "only document/literal parts with 'element' are supported",
        )
    })?;
    match part.resolve(el) {
        Some((Some(ns), local)) if ns == tns && reg.wrapper(&local).is_some() => Ok(local),
        _ => Err(ctx.err(
            part,
            format!("element '{el}' is not a wrapper element of the registry schema"),
        )),
    }
}

fn operation(
    ctx: &Ctx,
    tns: &str,
    op: &Node,
    messages: &[&Node],
    bindings: &[&Node],
    port_type: &Node,
    reg: &Registry,
) -> Result<Operation, Error> {
    if !op.is(NS_WSDL, "operation") {
        return Err(ctx.err(op, "outside the supported WSDL subset"));
    }
    let name = op
        .attr("name")
        .ok_or_else(|| ctx.err(op, "missing 'name' attribute"))?;
    let (mut title, mut notes) = (Texts::default(), Texts::default());
    let (mut input, mut output) = (None, None);
    for c in &op.children {
        match (c.ns.as_deref(), c.local.as_str()) {
            (Some(NS_WSDL), "documentation") => {
                for t in &c.children {
                    if t.is(NS_XROAD, "title") {
                        set_text(&mut title, t);
                    } else if t.is(NS_XROAD, "notes") {
                        set_text(&mut notes, t);
                    }
                }
            }
            (Some(NS_WSDL), "input") => input = Some(message_element(ctx, tns, c, messages, reg)?),
            (Some(NS_WSDL), "output") => {
                output = Some(message_element(ctx, tns, c, messages, reg)?)
            }
            // Business refusals arrive as SOAP faults whatever the WSDL declares.
            (Some(NS_WSDL), "fault") => {}
            _ => return Err(ctx.err(c, "outside the supported WSDL subset")),
        }
    }
    let (Some(input), Some(output)) = (input, output) else {
        return Err(ctx.err(op, "an operation needs wsdl:input and wsdl:output"));
    };
    Ok(Operation {
        name: name.into(),
        version: version(ctx, tns, name, bindings, port_type)?,
        title,
        notes,
        input,
        output,
    })
}

/// `xrd:version` of the operation in the binding of `port_type`.
fn version(
    ctx: &Ctx,
    tns: &str,
    op: &str,
    bindings: &[&Node],
    port_type: &Node,
) -> Result<Option<String>, Error> {
    let pt = port_type.attr("name").unwrap_or_default();
    for b in bindings {
        let ty = b.attr("type").and_then(|t| b.resolve(t));
        if ty != Some((Some(tns.to_string()), pt.to_string())) {
            continue;
        }
        for c in &b.children {
            if c.is(NS_WSDL_SOAP, "binding") && c.attr("style").is_some_and(|s| s != "document") {
                return Err(ctx.err(c, "only document style is supported"));
            }
            if c.is(NS_WSDL, "operation") && c.attr("name") == Some(op) {
                return Ok(c
                    .children
                    .iter()
                    .find(|v| v.is(NS_XROAD, "version"))
                    .map(|v| v.text_collapsed()));
            }
        }
    }
    Ok(None)
}

/// Generated Rust names must not collide (two XSD names can map to one Rust name).
fn check_names(ctx: &Ctx, root: &Node, reg: &Registry) -> Result<(), Error> {
    let mut seen = HashSet::new();
    let clash = |what: String| {
        ctx.err(
            root,
            format!("{what}: two declarations map to this Rust name"),
        )
    };
    for t in &reg.types {
        if !seen.insert(model::struct_name(&t.name)) {
            return Err(clash(format!("struct {}", model::struct_name(&t.name))));
        }
        let mut fields = HashSet::new();
        for f in &t.fields {
            if !fields.insert(model::ident(&model::snake(&f.name))) {
                return Err(clash(format!(
                    "field {} of {}",
                    model::snake(&f.name),
                    t.name
                )));
            }
        }
    }
    let mut fns = HashSet::new();
    for o in &reg.operations {
        if !seen.insert(model::marker_name(&o.name)) {
            return Err(clash(format!("type {}", model::marker_name(&o.name))));
        }
        if !fns.insert(model::snake(&o.name)) {
            return Err(clash(format!("function {}", model::snake(&o.name))));
        }
    }
    let mut consts = HashSet::new();
    for s in &reg.simple_types {
        if !consts.insert(model::screaming(&s.name)) {
            return Err(clash(format!("constants {}_*", model::screaming(&s.name))));
        }
    }
    Ok(())
}
