//! `brama wsdl list|show|gen`: the registry operations compiled in from `wsdl/` (or read from a
//! directory at run time), one operation in detail, and the Rust code generated from a WSDL.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use crate::wsdl::runtime::{FieldInfo, FieldKind, OperationInfo};
use crate::wsdl::{gen, parse};

#[derive(Subcommand)]
pub enum WsdlCommand {
    /// Every operation of every registry: registry, operation, version, Ukrainian title.
    List {
        /// Parse the WSDLs in this directory instead of the compiled-in ones.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// One operation (`operation` or `registry/operation`): service code, namespace, request and
    /// response fields, and a sample request body.
    Show { operation: String },
    /// Print the Rust code generated from a WSDL file (or every WSDL in --dir).
    Gen {
        file: Option<PathBuf>,
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

pub fn run(cmd: WsdlCommand) -> ExitCode {
    match cmd {
        WsdlCommand::List { dir: None } => {
            for op in compiled() {
                println!(
                    "{:<8} {:<28} {:<4} {}",
                    op.registry,
                    op.name,
                    op.version.unwrap_or("-"),
                    op.title_uk.unwrap_or("")
                );
            }
            ExitCode::SUCCESS
        }
        WsdlCommand::List { dir: Some(dir) } => match parse::parse_dir(&dir) {
            Ok(registries) => {
                for r in &registries {
                    for op in &r.operations {
                        println!(
                            "{:<8} {:<28} {:<4} {}",
                            r.name,
                            op.name,
                            op.version.as_deref().unwrap_or("-"),
                            op.title.uk.as_deref().unwrap_or("")
                        );
                    }
                }
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        },
        WsdlCommand::Show { operation } => {
            let (reg, name) = match operation.split_once('/') {
                Some((r, n)) => (Some(r), n),
                None => (None, operation.as_str()),
            };
            let found: Vec<&OperationInfo> = compiled()
                .filter(|o| o.name == name && reg.is_none_or(|r| r == o.registry))
                .collect();
            match found.as_slice() {
                [op] => {
                    show(op);
                    ExitCode::SUCCESS
                }
                [] => fail(format!(
                    "no operation '{operation}' (see `brama wsdl list`)"
                )),
                _ => fail(format!(
                    "'{operation}' is in several registries: name it as registry/operation"
                )),
            }
        }
        WsdlCommand::Gen { file, dir } => {
            let parsed = match (file, dir) {
                (Some(f), None) => parse::parse_file(&f).map(|r| vec![r]),
                (None, Some(d)) => parse::parse_dir(&d),
                (None, None) => parse::parse_dir(std::path::Path::new("wsdl")),
                (Some(_), Some(_)) => return fail("give a WSDL file or --dir, not both"),
            };
            match parsed {
                Ok(registries) => {
                    print!("{}", gen::generate(&registries, "brama::wsdl::runtime"));
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
    }
}

fn compiled() -> impl Iterator<Item = &'static OperationInfo> {
    crate::registries::ALL.iter().flat_map(|ops| ops.iter())
}

fn show(op: &OperationInfo) {
    println!("{}/{}", op.registry, op.name);
    if let Some(t) = op.title_uk {
        println!("  {t}");
    }
    if let Some(t) = op.title_en {
        println!("  {t}");
    }
    println!(
        "  X-Road service code {}, version {}",
        op.name,
        op.version.unwrap_or("-")
    );
    println!("  namespace {}", op.namespace);
    println!(
        "\n  request <{}> ({})",
        op.request.name, op.request.rust_type
    );
    fields(op.request.fields, 2);
    println!(
        "\n  response <{}> ({})",
        op.response.name, op.response.rust_type
    );
    fields(op.response.fields, 2);
    println!("\n  sample request body:\n  {}", op.sample_request_xml());
}

fn fields(list: &[FieldInfo], depth: usize) {
    for f in list {
        let mut ty = f.type_name.to_string();
        if f.list {
            ty += "[]";
        }
        if f.optional {
            ty += "?";
        }
        let rules = match (f.rules.values, f.rules.patterns) {
            (v, _) if !v.is_empty() => format!(" one of {}", v.join("|")),
            (_, p) if !p.is_empty() => format!(" pattern {}", p.join(" | ")),
            _ => String::new(),
        };
        println!(
            "{:indent$}{:<26} {:<18}{}  {}",
            "",
            f.name,
            ty,
            rules,
            f.title_uk.unwrap_or(""),
            indent = depth * 2
        );
        if f.kind == FieldKind::Complex {
            fields(f.fields, depth + 1);
        }
    }
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(1)
}
