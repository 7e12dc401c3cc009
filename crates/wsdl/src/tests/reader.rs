//! The WSDL reader: the model it builds, and refusals that name file, line and element.

use std::path::Path;

use super::FIXTURE;
use crate::model::{Builtin, TypeRef};
use crate::parse::{parse_dir, parse_registry};

#[test]
fn fixture_model() {
    let r = parse_registry("codegen.wsdl", "codegen", FIXTURE).unwrap();
    assert_eq!(
        (r.name.as_str(), r.namespace.as_str(), r.port_type.as_str()),
        ("codegen", "urn:brama:codegen:v1", "CodegenPortType")
    );
    let ops: Vec<_> = r
        .operations
        .iter()
        .map(|o| {
            (
                o.name.as_str(),
                o.version.as_deref(),
                o.input.as_str(),
                o.output.as_str(),
            )
        })
        .collect();
    assert_eq!(
        ops,
        [
            (
                "submitApplication",
                Some("v2"),
                "submitApplication",
                "submitApplicationResponse"
            ),
            ("ping", None, "ping", "pingResponse")
        ]
    );
    let submit = &r.operations[0];
    assert_eq!(submit.title.uk.as_deref(), Some("Подання заяви"));
    assert_eq!(submit.title.en.as_deref(), Some("Submit an application"));
    assert_eq!(
        submit.notes.en.as_deref(),
        Some("Every XSD construct the generator supports.")
    );

    // Extension chains put base fields first.
    let applicant = r.complex("Applicant").unwrap();
    let names: Vec<_> = applicant
        .fields
        .iter()
        .map(|f| (f.name.as_str(), f.optional))
        .collect();
    assert_eq!(
        names,
        [
            ("surname", false),
            ("givenName", false),
            ("patronymic", true),
            ("birthDate", false),
            ("rnokpp", true),
            ("phone", true)
        ]
    );
    assert_eq!(applicant.fields[0].title.en.as_deref(), Some("Surname"));
    assert_eq!(applicant.fields[4].ty, TypeRef::Simple("Rnokpp".into()));
    assert_eq!(applicant.base.as_deref(), Some("Person"));

    let wrapper = r.wrapper("submitApplication").unwrap();
    let f = |n: &str| wrapper.fields.iter().find(|f| f.name == n).unwrap();
    assert!(f("children").list && !f("children").optional);
    assert!(f("tags").list && f("tags").optional);
    assert_eq!(f("count").ty, TypeRef::Builtin(Builtin::Int));
    assert_eq!(f("total").ty, TypeRef::Builtin(Builtin::Long));
    for n in ["applicationNumber", "lookupRnokpp", "lookupDate"] {
        assert_eq!((f(n).choice, f(n).optional), (Some(1), true), "{n}");
    }
    assert_eq!(f("appointment").choice, None);
    // An element typed by a named complex type is a wrapper with that type's fields.
    assert_eq!(r.wrapper("pingResponse").unwrap().fields.len(), 2);

    let time = r.simple("Time").unwrap();
    assert_eq!(time.patterns.len(), 2);
    let code = r.simple("Code").unwrap();
    assert_eq!((code.min_length, code.max_length), (Some(2), Some(4)));
    assert_eq!(r.simple("Channel").unwrap().enumeration, ["DIIA", "CNAP"]);
    assert_eq!(
        r.simple("Rnokpp").unwrap().doc.as_deref(),
        Some("РНОКПП, 10 цифр")
    );
}

/// The registries in `wsdl/` follow the contract's naming (docs/registries.md).
#[test]
fn registry_wsdls_follow_the_contract() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../wsdl");
    let regs = parse_dir(&dir).unwrap();
    assert!(regs.iter().any(|r| r.name == "dracs"));
    let mut names: Vec<_> = regs.iter().map(|r| r.name.clone()).collect();
    names.sort();
    assert_eq!(
        names,
        regs.iter().map(|r| r.name.clone()).collect::<Vec<_>>()
    );
    for r in &regs {
        for o in &r.operations {
            assert_eq!(o.input, o.name, "{}", r.name);
            assert_eq!(o.output, format!("{}Response", o.name), "{}", r.name);
            assert_eq!(o.version.as_deref(), Some("v1"), "{}/{}", r.name, o.name);
            assert!(
                o.title.uk.is_some(),
                "{}/{} has no Ukrainian title",
                r.name,
                o.name
            );
        }
    }
}

fn line_of(text: &str, needle: &str) -> usize {
    1 + text[..text.find(needle).unwrap()].matches('\n').count()
}

#[test]
fn constructs_outside_the_subset_are_refused_with_their_place() {
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            r#"<xs:element name="phone" type="xs:string" minOccurs="0"/>"#,
            "<xs:any/>",
            "<xs:any>",
            "outside the supported XSD subset",
        ),
        (
            r#"<xs:element name="givenName" type="xs:string"/>"#,
            r#"<xs:element name="givenName" type="xs:string" nillable="true"/>"#,
            r#"<xs:element name="givenName">"#,
            "attribute 'nillable'",
        ),
        (
            r#"<xs:schema targetNamespace="urn:brama:codegen:v1">"#,
            r#"<xs:schema targetNamespace="urn:brama:codegen:v1" elementFormDefault="qualified">"#,
            "<xs:schema>",
            "elementFormDefault must be unqualified",
        ),
        (
            r#"<xs:element name="count" type="xs:int"/>"#,
            r#"<xs:element name="count" type="xs:float"/>"#,
            r#"<xs:element name="count">"#,
            "xs:float is not supported",
        ),
        (
            r#"type="tns:Channel" minOccurs="0""#,
            r#"type="tns:Nope" minOccurs="0""#,
            r#"<xs:element name="submitApplication">"#,
            "field 'channel': unknown type {urn:brama:codegen:v1}Nope",
        ),
        (
            r#"<xs:element name="type" type="xs:string"/>
                </xs:sequence>"#,
            r#"<xs:element name="next" type="tns:Result"/>
                </xs:sequence>"#,
            r#"<xs:complexType name="Result">"#,
            "recursive type: Result -> Result",
        ),
        (
            r#"style="document" transport"#,
            r#"style="rpc" transport"#,
            "<soap:binding>",
            "only document style",
        ),
        (
            r#"<wsdl:output message="tns:pingResponse"/>"#,
            "",
            r#"<wsdl:operation name="ping">"#,
            "needs wsdl:input and wsdl:output",
        ),
        (
            "[0-9]{10}",
            "\\p{Nd}{10}",
            "<xs:pattern>",
            "'\\p' is not supported",
        ),
        (
            r#"<xs:complexType name="Result">"#,
            r#"<xs:complexType name="Result"><xs:attribute name="x" type="xs:string"/>"#,
            "<xs:attribute name=\"x\">",
            "outside the supported XSD subset",
        ),
        (
            r#"<xs:schema targetNamespace="http://x-road.eu/xsd/xroad.xsd""#,
            r#"<xs:schema targetNamespace="urn:other""#,
            "<xs:schema>",
            "schema for 'urn:other'",
        ),
        (
            r#"<xs:restriction base="xs:string">
                    <xs:minLength"#,
            r#"<xs:restriction base="xs:int">
                    <xs:minLength"#,
            "<xs:restriction>",
            "only restrictions of xs:string",
        ),
        (
            r#"<xs:element name="lookupDate" type="xs:date"/>"#,
            r#"<xs:element name="count" type="xs:date"/>"#,
            r#"<xs:element name="count">"#,
            "a second element of this name",
        ),
        (
            r#"<wsdl:part name="body" element="tns:ping"/>"#,
            r#"<wsdl:part name="body" type="xs:string"/>"#,
            r#"<wsdl:part name="body">"#,
            "only document/literal parts",
        ),
    ];
    for (from, to, element, message) in cases {
        assert!(FIXTURE.contains(from), "fixture lacks {from}");
        let text = FIXTURE.replacen(from, to, 1);
        let e = parse_registry("tests/codegen.wsdl", "codegen", &text)
            .expect_err(&format!("{to} should be refused"));
        assert!(e.message.contains(message), "{to}: {e}");
        assert_eq!(e.element, *element, "{to}: {e}");
        assert_eq!(e.file, "tests/codegen.wsdl");
        assert!(e
            .to_string()
            .starts_with(&format!("tests/codegen.wsdl:{}:", e.line)));
        if !to.is_empty() && e.element.starts_with("<xs:any") {
            assert_eq!(e.line, line_of(&text, to));
        }
    }
}

#[test]
fn malformed_files_and_names_are_refused() {
    let e = parse_registry("x.wsdl", "codegen", &FIXTURE[..FIXTURE.len() / 2]).unwrap_err();
    assert!(
        e.message.contains("malformed XML") || e.message.contains("end"),
        "{e}"
    );
    let e = parse_registry("x.wsdl", "Code-Gen", FIXTURE).unwrap_err();
    assert!(e.message.contains("cannot be a Rust module name"), "{e}");
    let e = parse_registry("x.wsdl", "x", "<definitions/>").unwrap_err();
    assert!(e.message.contains("not a WSDL 1.1 document"), "{e}");
    let e = parse_registry("x.wsdl", "x", "<!DOCTYPE x><x/>").unwrap_err();
    assert!(e.message.contains("DOCTYPE"), "{e}");
}
