//! Generates `$OUT_DIR/registries.rs` (the `brama::registries` modules) from `wsdl/*.wsdl`.
//! An invalid WSDL fails the build with its file, line and element.

#![allow(dead_code)]

#[path = "src/wsdl/dom.rs"]
mod dom;
#[path = "src/wsdl/gen.rs"]
mod gen;
#[path = "src/wsdl/model.rs"]
mod model;
#[path = "src/wsdl/parse.rs"]
mod parse;
#[path = "src/wsdl/pattern.rs"]
mod pattern;
#[path = "src/wsdl/schema.rs"]
mod schema;

use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=wsdl");
    for f in ["dom", "gen", "model", "parse", "pattern", "schema"] {
        println!("cargo:rerun-if-changed=src/wsdl/{f}.rs");
    }
    let registries = match parse::parse_dir(Path::new("wsdl")) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: invalid WSDL: {e}");
            std::process::exit(1);
        }
    };
    let code = gen::generate(&registries, "crate::wsdl::runtime");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out.join("registries.rs"), code).expect("OUT_DIR is writable");
}
