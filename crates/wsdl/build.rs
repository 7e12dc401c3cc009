//! Generates `$OUT_DIR/registries.rs` (the `brama_wsdl::registries` modules) from the repository's `wsdl/*.wsdl`.
//! An invalid WSDL fails the build with its file, line and element.

#![allow(dead_code)]

#[path = "src/dom.rs"]
mod dom;
#[path = "src/gen.rs"]
mod gen;
#[path = "src/model.rs"]
mod model;
#[path = "src/parse.rs"]
mod parse;
#[path = "src/pattern.rs"]
mod pattern;
#[path = "src/schema.rs"]
mod schema;

use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed={WSDL_DIR}");
    println!("cargo:rerun-if-changed={FIXTURE}");
    for f in ["dom", "gen", "model", "parse", "pattern", "schema"] {
        println!("cargo:rerun-if-changed=src/{f}.rs");
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let registries = or_exit(parse::parse_dir(Path::new(WSDL_DIR)));
    let code = gen::generate(&registries, "crate::runtime");
    std::fs::write(out.join("registries.rs"), code).expect("OUT_DIR is writable");
    // The generator's own test registry, compiled into the unit tests only.
    let fixture = or_exit(parse::parse_file(Path::new(FIXTURE)));
    let code = gen::generate(&[fixture], "crate::runtime");
    std::fs::write(out.join("wsdl_fixture.rs"), code).expect("OUT_DIR is writable");
}

const WSDL_DIR: &str = "../../wsdl";
const FIXTURE: &str = "../../tests/wsdl/codegen.wsdl";

fn or_exit<T>(r: Result<T, dom::Error>) -> T {
    r.unwrap_or_else(|e| {
        eprintln!("error: invalid WSDL: {e}");
        std::process::exit(1);
    })
}
