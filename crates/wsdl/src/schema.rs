//! The registry's `xs:schema`: the XSD subset of `docs/registries.md` (plus `xs:choice`, which
//! `getBirthRecord` uses), read into [`super::model`] types. Anything else is an error naming the
//! element, so a WSDL outside the subset fails the build instead of generating wrong code.
//!
//! Shared with `build.rs` (included by path).

use super::dom::{Ctx, Error, Node};
use super::model::{Builtin, ComplexType, Field, SimpleType, Texts, TypeRef};
use super::pattern::Pattern;

pub(crate) const NS_XSD: &str = "http://www.w3.org/2001/XMLSchema";
pub const NS_XROAD: &str = "http://x-road.eu/xsd/xroad.xsd";
pub const NS_IDENTIFIERS: &str = "http://x-road.eu/xsd/identifiers";
pub const NS_REPRESENTATION: &str = "http://x-road.eu/xsd/representation.xsd";

/// What one registry schema declares, before type references are checked.
#[derive(Default)]
pub struct Schema {
    pub simple: Vec<(SimpleType, Node)>,
    /// Complex types and wrapper elements; `base` not yet flattened.
    pub complex: Vec<(ComplexType, Node)>,
    /// Wrapper elements declared with `type=` (element name, type name).
    pub typed_elements: Vec<(String, String, Node)>,
}

/// Whether a schema is one of X-Road's own (header and identifier types), which are skipped.
pub(crate) fn is_xroad(ns: &str) -> bool {
    ns == NS_XROAD || ns == NS_IDENTIFIERS || ns == NS_REPRESENTATION
}

fn xs(n: &Node, local: &str) -> bool {
    n.is(NS_XSD, local)
}

/// Fails on any attribute of `n` not in `allowed`.
pub(crate) fn only_attrs(ctx: &Ctx, n: &Node, allowed: &[&str]) -> Result<(), Error> {
    match n
        .attrs
        .iter()
        .find(|(k, _)| !allowed.contains(&k.as_str()) && !k.starts_with("xml:"))
    {
        Some((k, _)) => Err(ctx.err(
            n,
            format!("attribute '{k}' is outside the supported XSD subset"),
        )),
        None => Ok(()),
    }
}

fn name<'n>(ctx: &Ctx, n: &'n Node) -> Result<&'n str, Error> {
    n.attr("name")
        .ok_or_else(|| ctx.err(n, "missing 'name' attribute"))
}

/// `xs:annotation`: `xs:documentation` text and `xs:appinfo/xrd:title` by language.
fn annotation(n: &Node) -> (Option<String>, Texts) {
    let mut doc = None;
    let mut title = Texts::default();
    for a in n.children.iter().filter(|c| xs(c, "annotation")) {
        for c in &a.children {
            if xs(c, "documentation") && doc.is_none() {
                doc = Some(c.text_collapsed()).filter(|t| !t.is_empty());
            } else if xs(c, "appinfo") {
                for t in c.children.iter().filter(|t| t.is(NS_XROAD, "title")) {
                    set_text(&mut title, t);
                }
            }
        }
    }
    (doc, title)
}

/// Stores an `xrd:title`/`xrd:notes` text under its language (none = Ukrainian).
pub(crate) fn set_text(texts: &mut Texts, n: &Node) {
    let text = Some(n.text_collapsed()).filter(|t| !t.is_empty());
    match n.lang() {
        Some("en") => texts.en = texts.en.take().or(text),
        Some("uk") | None => texts.uk = texts.uk.take().or(text),
        Some(_) => {}
    }
}

pub fn read(ctx: &Ctx, schema: &Node, tns: &str) -> Result<Schema, Error> {
    only_attrs(
        ctx,
        schema,
        &[
            "targetNamespace",
            "elementFormDefault",
            "attributeFormDefault",
            "version",
        ],
    )?;
    if schema
        .attr("elementFormDefault")
        .is_some_and(|v| v != "unqualified")
    {
        return Err(ctx.err(
            schema,
            "elementFormDefault must be unqualified: wrapper children are unqualified (docs/registries.md)",
        ));
    }
    let mut out = Schema::default();
    for c in &schema.children {
        if c.ns.as_deref() != Some(NS_XSD) {
            return Err(ctx.err(c, "not an XSD element"));
        }
        match c.local.as_str() {
            "annotation" => {}
            "import" => {
                let ns = c.attr("namespace").unwrap_or_default();
                if !is_xroad(ns) {
                    return Err(ctx.err(
                        c,
                        format!("importing '{ns}' is not supported: registry types live in the WSDL's own schema"),
                    ));
                }
            }
            "simpleType" => out.simple.push((simple_type(ctx, c)?, c.clone())),
            "complexType" => {
                let t = complex_type(ctx, c, name(ctx, c)?, None)?;
                out.complex.push((t, c.clone()));
            }
            "element" => {
                only_attrs(ctx, c, &["name", "type"])?;
                let el = name(ctx, c)?;
                let inline: Vec<&Node> =
                    c.children.iter().filter(|x| !xs(x, "annotation")).collect();
                match (c.attr("type"), inline.as_slice()) {
                    (Some(ty), []) => {
                        let (ns, local) = c
                            .resolve(ty)
                            .ok_or_else(|| ctx.err(c, format!("type '{ty}': undeclared prefix")))?;
                        if ns.as_deref() != Some(tns) {
                            return Err(ctx.err(
                                c,
                                "a top-level element must have an anonymous xs:complexType or a complex type of this schema",
                            ));
                        }
                        out.typed_elements.push((el.to_string(), local, c.clone()));
                    }
                    (None, [t]) if xs(t, "complexType") => {
                        let t = complex_type(ctx, t, el, Some(el))?;
                        out.complex.push((t, c.clone()));
                    }
                    _ => {
                        return Err(ctx.err(
                            c,
                            "a top-level element must have an anonymous xs:complexType or a complex type of this schema",
                        ))
                    }
                }
            }
            _ => return Err(ctx.err(c, "outside the supported XSD subset")),
        }
    }
    Ok(out)
}

fn simple_type(ctx: &Ctx, n: &Node) -> Result<SimpleType, Error> {
    only_attrs(ctx, n, &["name"])?;
    let (doc, _) = annotation(n);
    let mut t = SimpleType {
        name: name(ctx, n)?.to_string(),
        doc,
        ..SimpleType::default()
    };
    let mut restrictions = n.children.iter().filter(|c| !xs(c, "annotation"));
    let r = match (restrictions.next(), restrictions.next()) {
        (Some(r), None) if xs(r, "restriction") => r,
        (Some(other), _) => {
            return Err(ctx.err(
                other,
                "a simple type must be one xs:restriction of xs:string",
            ))
        }
        (None, _) => {
            return Err(ctx.err(n, "a simple type must be one xs:restriction of xs:string"))
        }
    };
    only_attrs(ctx, r, &["base"])?;
    let base = r.attr("base").and_then(|b| r.resolve(b));
    if base != Some((Some(NS_XSD.into()), "string".into())) {
        return Err(ctx.err(r, "only restrictions of xs:string are supported"));
    }
    for f in &r.children {
        if xs(f, "annotation") {
            continue;
        }
        only_attrs(ctx, f, &["value"])?;
        let value = f
            .attr("value")
            .ok_or_else(|| ctx.err(f, "missing 'value' attribute"))?;
        let number = || {
            value
                .parse::<u32>()
                .map_err(|_| ctx.err(f, "expected a non-negative integer"))
        };
        match f.local.as_str() {
            "pattern" if xs(f, "pattern") => {
                Pattern::parse(value).map_err(|e| ctx.err(f, e))?;
                t.patterns.push(value.to_string());
            }
            "enumeration" if xs(f, "enumeration") => t.enumeration.push(value.to_string()),
            "minLength" if xs(f, "minLength") => t.min_length = Some(number()?),
            "maxLength" if xs(f, "maxLength") => t.max_length = Some(number()?),
            "length" if xs(f, "length") => {
                t.min_length = Some(number()?);
                t.max_length = t.min_length;
            }
            _ => {
                return Err(ctx.err(
                    f,
                    "facet outside the supported subset (pattern, enumeration, length, minLength, maxLength)",
                ))
            }
        }
    }
    Ok(t)
}

/// A named complex type, or the anonymous type of wrapper element `element`.
fn complex_type(
    ctx: &Ctx,
    n: &Node,
    name: &str,
    element: Option<&str>,
) -> Result<ComplexType, Error> {
    only_attrs(ctx, n, if element.is_some() { &[] } else { &["name"] })?;
    let (doc, _) = annotation(n);
    let mut t = ComplexType {
        name: name.to_string(),
        element: element.map(str::to_string),
        doc,
        ..ComplexType::default()
    };
    let mut choices = 0;
    let content: Vec<&Node> = n.children.iter().filter(|c| !xs(c, "annotation")).collect();
    match content.as_slice() {
        [] => {}
        [p] if xs(p, "sequence") || xs(p, "choice") => {
            particle(ctx, p, false, None, &mut choices, &mut t.fields)?
        }
        [cc] if xs(cc, "complexContent") && element.is_none() => {
            only_attrs(ctx, cc, &[])?;
            let ext = match cc.children.iter().filter(|c| !xs(c, "annotation")).collect::<Vec<_>>()[..] {
                [e] if xs(e, "extension") => e,
                _ => return Err(ctx.err(cc, "only xs:extension of a named complex type is supported")),
            };
            only_attrs(ctx, ext, &["base"])?;
            let base = ext
                .attr("base")
                .and_then(|b| ext.resolve(b))
                .ok_or_else(|| ctx.err(ext, "missing or unresolvable 'base'"))?;
            t.base = Some(base.1);
            let body: Vec<&Node> = ext.children.iter().filter(|c| !xs(c, "annotation")).collect();
            match body.as_slice() {
                [] => {}
                [p] if xs(p, "sequence") || xs(p, "choice") => {
                    particle(ctx, p, false, None, &mut choices, &mut t.fields)?
                }
                [other, ..] => return Err(ctx.err(other, "outside the supported XSD subset")),
            }
        }
        [other, ..] => {
            return Err(ctx.err(
                other,
                "outside the supported XSD subset (xs:sequence, xs:choice or xs:complexContent/xs:extension)",
            ))
        }
    }
    Ok(t)
}

/// `xs:sequence` / `xs:choice` and what they hold. Everything inside a choice is optional and
/// shares the outermost choice's group number.
fn particle(
    ctx: &Ctx,
    p: &Node,
    optional: bool,
    group: Option<u32>,
    choices: &mut u32,
    out: &mut Vec<Field>,
) -> Result<(), Error> {
    only_attrs(ctx, p, &["minOccurs", "maxOccurs"])?;
    if p.attr("maxOccurs").is_some_and(|m| m != "1") {
        return Err(ctx.err(p, "repeated groups are not supported"));
    }
    let optional = optional || occurs(ctx, p)?.0;
    let group = match (xs(p, "choice"), group) {
        (true, None) => {
            *choices += 1;
            Some(*choices)
        }
        (_, g) => g,
    };
    let optional = optional || group.is_some();
    for c in &p.children {
        if c.ns.as_deref() != Some(NS_XSD) {
            return Err(ctx.err(c, "not an XSD element"));
        }
        match c.local.as_str() {
            "annotation" => {}
            "sequence" | "choice" => particle(ctx, c, optional, group, choices, out)?,
            "element" => {
                let f = field(ctx, c, optional, group)?;
                if out.iter().any(|o| o.name == f.name) {
                    return Err(ctx.err(c, "a second element of this name in one type"));
                }
                out.push(f);
            }
            _ => return Err(ctx.err(c, "outside the supported XSD subset")),
        }
    }
    Ok(())
}

/// `(minOccurs = 0, maxOccurs > 1)`.
fn occurs(ctx: &Ctx, n: &Node) -> Result<(bool, bool), Error> {
    let min = match n.attr("minOccurs") {
        None | Some("1") => false,
        Some("0") => true,
        Some(v) => return Err(ctx.err(n, format!("minOccurs=\"{v}\" is not supported (0 or 1)"))),
    };
    let list = match n.attr("maxOccurs") {
        None | Some("1") => false,
        Some("unbounded") => true,
        Some(v) if v.parse::<u32>().is_ok_and(|m| m > 1) => true,
        Some(v) => return Err(ctx.err(n, format!("maxOccurs=\"{v}\" is not supported"))),
    };
    Ok((min, list))
}

fn field(ctx: &Ctx, n: &Node, optional: bool, group: Option<u32>) -> Result<Field, Error> {
    only_attrs(ctx, n, &["name", "type", "minOccurs", "maxOccurs"])?;
    let name = name(ctx, n)?;
    if let Some(c) = n.children.iter().find(|c| !xs(c, "annotation")) {
        return Err(ctx.err(c, "inline types are not supported: declare a named type"));
    }
    let ty = n
        .attr("type")
        .ok_or_else(|| ctx.err(n, "missing 'type' attribute"))?;
    let (ns, local) = n
        .resolve(ty)
        .ok_or_else(|| ctx.err(n, format!("type '{ty}': undeclared prefix")))?;
    let ty = if ns.as_deref() == Some(NS_XSD) {
        TypeRef::Builtin(Builtin::from_xsd(&local).ok_or_else(|| {
            ctx.err(
                n,
                format!("xs:{local} is not supported (string, date, dateTime, int, long, decimal, boolean)"),
            )
        })?)
    } else {
        // `{namespace}local` until the whole schema is read and it resolves to a simple or a
        // complex type of the registry.
        TypeRef::Complex(format!("{{{}}}{local}", ns.unwrap_or_default()))
    };
    let (min0, list) = occurs(ctx, n)?;
    let (doc, mut title) = annotation(n);
    if title.uk.is_none() {
        title.uk = doc;
    }
    Ok(Field {
        name: name.to_string(),
        ty,
        optional: optional || min0,
        list,
        choice: group,
        title,
    })
}
