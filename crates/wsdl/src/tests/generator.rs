//! The generator's output for the test registry, and the name mapping it relies on.

use super::FIXTURE;
use crate::gen::generate;
use crate::model::{ident, marker_name, screaming, snake, struct_name, upper_camel};
use crate::parse::parse_registry;

#[test]
fn names() {
    for (xml, rust) in [
        ("givenName", "given_name"),
        ("birthPlaceKatottg", "birth_place_katottg"),
        ("birthPlaceKATOTTG", "birth_place_katottg"),
        ("HTMLParser", "html_parser"),
        ("amountUah", "amount_uah"),
        ("iban", "iban"),
        ("x2Y", "x2_y"),
        ("my-field.name", "my_field_name"),
        ("2fa", "f_2fa"),
    ] {
        assert_eq!(snake(xml), rust, "{xml}");
    }
    assert_eq!(upper_camel("getBirthRecord"), "GetBirthRecord");
    assert_eq!(upper_camel("birth-record"), "BirthRecord");
    assert_eq!(struct_name("Result"), "ResultType");
    assert_eq!(struct_name("string"), "StringType");
    assert_eq!(struct_name("Person"), "Person");
    assert_eq!(marker_name("registerBirth"), "RegisterBirthOp");
    assert_eq!(screaming("RecordStatus"), "RECORD_STATUS");
    assert_eq!(ident("type"), "r#type");
    assert_eq!(ident("self"), "self_");
    assert_eq!(ident("surname"), "surname");
}

#[test]
fn fixture_code() {
    let r = parse_registry("codegen.wsdl", "codegen", FIXTURE).unwrap();
    let code = generate(std::slice::from_ref(&r), "brama::wsdl::runtime");
    assert_eq!(
        code,
        generate(&[r], "brama::wsdl::runtime"),
        "deterministic"
    );
    for expected in [
        "pub mod codegen {\n    use brama::wsdl::runtime as rt;",
        "pub const NAMESPACE: &str = \"urn:brama:codegen:v1\";",
        "#[yaserde(rename = \"submitApplication\", prefix = \"tns\", namespaces = { \"tns\" = \"urn:brama:codegen:v1\" })]",
        "pub struct SubmitApplication {",
        "pub struct SubmitApplicationResponse {",
        "pub struct ResultType {",
        "pub result: Option<ResultType>,",
        "#[yaserde(rename = \"type\")]\n        #[serde(rename = \"type\")]\n        pub r#type: String,",
        "pub const RNOKPP_PATTERN: &str = \"[0-9]{10}\";",
        "pub const TIME_PATTERNS: &[&str] = &[\"([01][0-9]|2[0-3]):[0-5][0-9]\", \"24:00\"];",
        "pub const CHANNEL_VALUES: &[&str] = &[\"DIIA\", \"CNAP\"];",
        "min_length: Some(2),\n        max_length: Some(4),",
        "pub children: Vec<Person>,",
        "#[serde(rename = \"tags\", default, skip_serializing_if = \"Vec::is_empty\")]\n        pub tags: Vec<String>,",
        "#[serde(rename = \"channel\", default, skip_serializing_if = \"Option::is_none\")]\n        pub channel: Option<String>,",
        "pub count: i32,",
        "pub total: i64,",
        "pub urgent: bool,",
        "pub amount: String,",
        "/// Прізвище / Surname (`surname`: string)",
        "rt::check_choice(out, path, &[\"applicationNumber\", \"lookupRnokpp\", \"lookupDate\"], &[self.application_number.is_some(), self.lookup_rnokpp.is_some(), self.lookup_date.is_some()]);",
        "/// Подання заяви / Submit an application\n    #[derive(Clone, Copy, Debug, Default)]\n    pub struct SubmitApplicationOp;",
        "const VERSION: Option<&'static str> = Some(\"v2\");",
        "const VERSION: Option<&'static str> = None;",
        "const INFO: &'static rt::OperationInfo = &OPERATIONS[1];",
        "pub async fn submit_application<T: rt::SoapTransport + ?Sized>(\n        transport: &T,\n        header: &rt::XRoadHeader,\n        request: &SubmitApplication,\n    ) -> Result<SubmitApplicationResponse, rt::ClientError> {",
        "pub async fn ping<T: rt::SoapTransport + ?Sized>(",
        "impl rt::Payload for PingResponse {\n        const ELEMENT: &'static str = \"pingResponse\";",
        "pub const ALL: &[&[brama::wsdl::runtime::OperationInfo]] = &[\n    codegen::OPERATIONS,\n];",
        "pub fn visit_all<V: brama::wsdl::runtime::OperationVisitor>(visitor: &mut V) {\n    codegen::visit_operations(visitor);\n}",
    ] {
        assert!(code.contains(expected), "generated code lacks:\n{expected}\n---\n{code}");
    }
}
