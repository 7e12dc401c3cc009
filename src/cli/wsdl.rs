//! `brama wsdl list|show|gen`: the registries compiled into brama (or WSDLs read at run time),
//! their operations and fields, sample requests, and the generated Rust code.

use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::identifiers::{ClientId, ServiceId};
use crate::message::build::{self, RequestHeader};
use crate::wsdl::model::{ComplexType, Registry, TypeRef};
use crate::wsdl::runtime::{ElementInfo, FieldInfo, FieldKind, OperationInfo, TextRules};
use crate::wsdl::{gen, parse};

#[derive(clap::Subcommand)]
pub enum WsdlCommand {
    /// List every operation: registry, operation, version, Ukrainian title.
    List {
        /// Read the WSDLs in this directory instead of the compiled-in registries.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Show one operation (`registerBirth` or `dracs/registerBirth`): titles, X-Road service,
    /// namespace, request and response fields, and a sample request envelope.
    Show {
        /// The operation: `registerBirth` or `dracs/registerBirth`.
        operation: String,
        /// Read the WSDLs in this directory instead of the compiled-in registries.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Client of the sample request: INSTANCE/CLASS/CODE[/SUBSYSTEM].
        #[arg(long, default_value = "SEVDEIR-TEST/GOV/00000001/DIIA")]
        client: String,
        /// Provider subsystem of the sample request (INSTANCE/CLASS/CODE/SUBSYSTEM); a
        /// placeholder named after the registry by default.
        #[arg(long)]
        provider: Option<String>,
    },
    /// Print the Rust code generated from one WSDL file, or from every WSDL in --dir
    /// (default `wsdl`): the same generator build.rs runs.
    Gen {
        /// One WSDL file.
        file: Option<PathBuf>,
        /// Every WSDL in this directory.
        #[arg(long, conflicts_with = "file")]
        dir: Option<PathBuf>,
        /// Path of brama's WSDL runtime as seen from where the code is used.
        #[arg(long, default_value = "brama::wsdl::runtime")]
        runtime: String,
    },
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(1)
}

pub fn run(cmd: WsdlCommand) -> ExitCode {
    let result = match cmd {
        WsdlCommand::List { dir } => operations(dir.as_deref()).map(|ops| list(&ops)),
        WsdlCommand::Show {
            operation,
            dir,
            client,
            provider,
        } => operations(dir.as_deref())
            .and_then(|ops| show(&ops, &operation, &client, provider.as_deref())),
        WsdlCommand::Gen { file, dir, runtime } => {
            let regs = match (file, dir) {
                (Some(f), _) => parse::parse_file(&f).map(|r| vec![r]),
                (None, d) => parse::parse_dir(d.as_deref().unwrap_or(Path::new("wsdl"))),
            };
            regs.map(|r| gen::generate(&r, &runtime))
                .map_err(|e| e.to_string())
        }
    };
    match result {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// The compiled-in operations, or those of the WSDLs in `dir`.
fn operations(dir: Option<&Path>) -> Result<Vec<OperationInfo>, String> {
    match dir {
        None => Ok(crate::registries::ALL
            .iter()
            .flat_map(|ops| ops.iter().copied())
            .collect()),
        Some(d) => {
            let regs = parse::parse_dir(d).map_err(|e| e.to_string())?;
            if regs.is_empty() {
                return Err(format!("no .wsdl files in {}", d.display()));
            }
            Ok(regs.iter().flat_map(infos).collect())
        }
    }
}

fn list(ops: &[OperationInfo]) -> String {
    let rows: Vec<[&str; 4]> = ops
        .iter()
        .map(|o| {
            [
                o.registry,
                o.name,
                o.version.unwrap_or("-"),
                o.title_uk.or(o.title_en).unwrap_or(""),
            ]
        })
        .collect();
    let width = |i: usize| {
        rows.iter()
            .map(|r| r[i].chars().count())
            .chain([["REGISTRY", "OPERATION", "VERSION"][i].len()])
            .max()
            .unwrap_or(0)
    };
    let (a, b, c) = (width(0), width(1), width(2));
    let mut out = format!(
        "{:a$}  {:b$}  {:c$}  TITLE\n",
        "REGISTRY", "OPERATION", "VERSION"
    );
    for r in rows {
        let _ = writeln!(out, "{:a$}  {:b$}  {:c$}  {}", r[0], r[1], r[2], r[3]);
    }
    out
}

fn show(
    ops: &[OperationInfo],
    wanted: &str,
    client: &str,
    provider: Option<&str>,
) -> Result<String, String> {
    let o = OperationInfo::find(ops, wanted)?;
    let client = ClientId::parse_path(client)?;
    let provider = match provider {
        Some(p) => ClientId::parse_path(p)?,
        None => ClientId::subsystem(
            &client.instance,
            &client.member_class,
            "MEMBER-CODE",
            &o.registry.to_uppercase(),
        ),
    };
    let service = ServiceId::new(provider, o.name, o.version);
    let mut out = format!("{}\n", o.path());
    for (label, text) in [
        ("title", o.title_uk),
        ("title (en)", o.title_en),
        ("notes", o.notes_uk),
        ("notes (en)", o.notes_en),
    ] {
        if let Some(t) = text {
            let _ = writeln!(out, "  {label}: {t}");
        }
    }
    let _ = writeln!(
        out,
        "  X-Road service: code {}, version {}\n  namespace: {}",
        o.name,
        o.version.unwrap_or("(none)"),
        o.namespace
    );
    for (what, e) in [("request", &o.request), ("response", &o.response)] {
        let _ = writeln!(out, "\n{what} <{}> ({}):", e.name, e.rust_type);
        tree(&mut out, e.fields, 1);
    }
    let header = RequestHeader {
        client,
        service,
        id: "00000000-0000-0000-0000-000000000000".into(),
        user_id: None,
        issue: None,
        security_server: None,
    };
    let envelope = build::request(&header, &o.sample_request_xml());
    let _ = write!(out, "\nsample request:\n{}", indented(&envelope));
    Ok(out)
}

/// The envelope with one element per line, for reading (values are element-only content, so
/// the added whitespace changes nothing a registry reads).
fn indented(xml: &str) -> String {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut writer = quick_xml::Writer::new_with_indent(Vec::new(), b' ', 2);
    loop {
        match reader.read_event() {
            Ok(Event::Eof) => break,
            Ok(Event::Text(t)) if t.iter().all(u8::is_ascii_whitespace) => {}
            Ok(e) => {
                if writer.write_event(e).is_err() {
                    return xml.to_string();
                }
            }
            Err(_) => return xml.to_string(),
        }
    }
    let mut text = String::from_utf8(writer.into_inner()).unwrap_or_else(|_| xml.into());
    text.push('\n');
    text
}

/// One line per field: name, type (`?` optional, `[]` list, `|n` choice group), facets, title.
fn tree(out: &mut String, fields: &[FieldInfo], depth: usize) {
    for f in fields {
        let mut ty = f.type_name.to_string();
        if f.list {
            ty.push_str("[]");
        } else if f.optional {
            ty.push('?');
        }
        if let Some(g) = f.choice {
            let _ = write!(ty, " |{g}");
        }
        let mut facets = Vec::new();
        if !f.rules.values.is_empty() {
            facets.push(f.rules.values.join("|"));
        }
        facets.extend(f.rules.patterns.iter().map(|p| format!("/{p}/")));
        let indent = "  ".repeat(depth);
        let name = format!("{indent}{}", f.name);
        let line = format!(
            "{name:<34} {ty:<20} {:<22} {}",
            facets.join(" "),
            f.title_uk.or(f.title_en).unwrap_or("")
        );
        let _ = writeln!(out, "{}", line.trim_end());
        if f.kind == FieldKind::Complex {
            tree(out, f.fields, depth + 1);
        }
    }
}

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_owned().into_boxed_str())
}

fn leak_opt(s: &Option<String>) -> Option<&'static str> {
    s.as_deref().map(leak)
}

/// Operation descriptions of a registry read at run time (leaked: a command runs once).
fn infos(r: &Registry) -> Vec<OperationInfo> {
    let element = |name: &str| ElementInfo {
        name: leak(name),
        rust_type: leak(&crate::wsdl::model::struct_name(name)),
        fields: r.wrapper(name).map_or(&[], |t| fields(r, t)),
    };
    r.operations
        .iter()
        .map(|o| OperationInfo {
            registry: leak(&r.name),
            name: leak(&o.name),
            version: leak_opt(&o.version),
            title_uk: leak_opt(&o.title.uk),
            title_en: leak_opt(&o.title.en),
            notes_uk: leak_opt(&o.notes.uk),
            notes_en: leak_opt(&o.notes.en),
            namespace: leak(&r.namespace),
            request: element(&o.input),
            response: element(&o.output),
        })
        .collect()
}

fn fields(r: &Registry, t: &ComplexType) -> &'static [FieldInfo] {
    let list: Vec<FieldInfo> = t
        .fields
        .iter()
        .map(|f| {
            let (kind, type_name, rules, children) = match &f.ty {
                TypeRef::Builtin(b) => (
                    FieldKind::Simple(*b),
                    b.xsd_name(),
                    TextRules::NONE,
                    &[][..],
                ),
                TypeRef::Simple(s) => {
                    let st = r.simple(s).expect("the parser resolved it");
                    let strs = |v: &[String]| -> &'static [&'static str] {
                        Box::leak(
                            v.iter()
                                .map(|s| leak(s))
                                .collect::<Vec<_>>()
                                .into_boxed_slice(),
                        )
                    };
                    let rules = TextRules {
                        patterns: strs(&st.patterns),
                        values: strs(&st.enumeration),
                        min_length: st.min_length,
                        max_length: st.max_length,
                    };
                    (
                        FieldKind::Simple(crate::wsdl::model::Builtin::String),
                        leak(s),
                        rules,
                        &[][..],
                    )
                }
                TypeRef::Complex(c) => {
                    let ct = r.complex(c).expect("the parser resolved it");
                    (FieldKind::Complex, leak(c), TextRules::NONE, fields(r, ct))
                }
            };
            FieldInfo {
                name: leak(&f.name),
                type_name,
                kind,
                optional: f.optional,
                list: f.list,
                choice: f.choice,
                title_uk: leak_opt(&f.title.uk),
                title_en: leak_opt(&f.title.en),
                rules,
                fields: children,
            }
        })
        .collect();
    Box::leak(list.into_boxed_slice())
}
