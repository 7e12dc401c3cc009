//! `brama wsdl list|show|gen` as an integration engineer uses them.

use std::path::Path;
use std::process::{Command, Output};

use brama::message::soap::{SoapLimits, SoapMessage};

fn brama(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_brama"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = brama(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn fails(args: &[&str]) -> String {
    let out = brama(args);
    assert_eq!(out.status.code(), Some(1), "{args:?}");
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn list_names_every_compiled_in_operation() {
    let text = ok(&["wsdl", "list"]);
    assert!(text.starts_with("REGISTRY"));
    let ops: Vec<_> = brama::registries::ALL
        .iter()
        .flat_map(|o| o.iter())
        .collect();
    assert_eq!(text.lines().count(), 1 + ops.len());
    for o in ops {
        let line = text
            .lines()
            .find(|l| l.split_whitespace().take(2).eq([o.registry, o.name]))
            .unwrap_or_else(|| panic!("{} missing:\n{text}", o.path()));
        assert!(line.contains(o.title_uk.unwrap()), "{line}");
    }
    assert!(text.contains("Отримання відомостей з актового запису про народження"));
}

#[test]
fn list_reads_a_directory_at_run_time() {
    let text = ok(&["wsdl", "list", "--dir", "tests/wsdl"]);
    assert!(
        text.contains("codegen   submitApplication  v2       Подання заяви"),
        "{text}"
    );
    assert!(text.contains("codegen   ping               -"), "{text}");

    let dir = tempfile::tempdir().unwrap();
    let wsdl = std::fs::read_to_string("tests/wsdl/codegen.wsdl").unwrap();
    std::fs::write(
        dir.path().join("bad.wsdl"),
        wsdl.replace("<xs:sequence/>", "<xs:all/>"),
    )
    .unwrap();
    let err = fails(&["wsdl", "list", "--dir", dir.path().to_str().unwrap()]);
    assert!(
        err.contains("bad.wsdl:")
            && err.contains("<xs:all>")
            && err.contains("outside the supported XSD subset"),
        "{err}"
    );
    let err = fails(&["wsdl", "list", "--dir", "/nonexistent-brama-dir"]);
    assert!(err.starts_with("error: /nonexistent-brama-dir: "), "{err}");
}

#[test]
fn show_prints_fields_and_a_valid_sample_request() {
    let text = ok(&[
        "wsdl",
        "show",
        "dracs/getBirthRecord",
        "--provider",
        "SEVDEIR-TEST/GOV/00000002/DRACS",
    ]);
    for expected in [
        "dracs/getBirthRecord\n",
        "  title: Отримання відомостей з актового запису про народження",
        "  X-Road service: code getBirthRecord, version v1",
        "  namespace: http://minjust.gov.ua/dracs/v1",
        "request <getBirthRecord> (GetBirthRecord):",
        "response <getBirthRecordResponse> (GetBirthRecordResponse):",
        "  rnokpp ",
        "Rnokpp? |1",
        "/[0-9]{10}/",
        "ACTIVE|AMENDED|CANCELLED",
        "<id:memberCode>00000002</id:memberCode>",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    let envelope = &text[text.find("sample request:\n").unwrap() + 16..];
    let m = SoapMessage::parse(envelope.to_string().into(), None, &SoapLimits::default()).unwrap();
    m.validate_request().unwrap();
    assert_eq!(
        m.header.service.unwrap().to_string(),
        "SEVDEIR-TEST/GOV/00000002/DRACS/getBirthRecord/v1"
    );

    // The operation name alone is enough when it is unique.
    assert!(ok(&["wsdl", "show", "getBirthRecord"]).starts_with("dracs/getBirthRecord"));
    let err = fails(&["wsdl", "show", "noSuchOperation"]);
    assert!(err.contains("no operation 'noSuchOperation'"), "{err}");
    let err = fails(&["wsdl", "show", "getBirthRecord", "--client", "bad"]);
    assert!(err.contains("not a client identifier"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    for name in ["a.wsdl", "b.wsdl"] {
        std::fs::copy("tests/wsdl/codegen.wsdl", dir.path().join(name)).unwrap();
    }
    let d = dir.path().to_str().unwrap();
    let err = fails(&["wsdl", "show", "ping", "--dir", d]);
    assert!(
        err.contains("'ping' is in several registries: a/ping, b/ping"),
        "{err}"
    );
    assert!(ok(&["wsdl", "show", "b/ping", "--dir", d]).starts_with("b/ping\n"));
}

#[test]
fn gen_prints_what_build_rs_compiles() {
    let text = ok(&["wsdl", "gen", "tests/wsdl/codegen.wsdl"]);
    let reg = brama::wsdl::parse::parse_file(Path::new("tests/wsdl/codegen.wsdl")).unwrap();
    assert_eq!(
        text,
        brama::wsdl::gen::generate(&[reg], "brama::wsdl::runtime")
    );
    let text = ok(&["wsdl", "gen", "--runtime", "crate::rt"]);
    assert!(text.contains("pub mod dracs {\n    use crate::rt as rt;"));
    let err = fails(&["wsdl", "gen", "missing.wsdl"]);
    assert!(err.contains("missing.wsdl"), "{err}");
}
