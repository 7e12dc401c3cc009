//! Parser cases; the conformance vectors are run in `tests/conformance_soap.rs`.

use super::soap::{SoapBody, SoapLimits, SoapMessage};
use super::*;

const SIMPLE: &str = include_str!("../../../../examples/soap/getBirthRecord.xml");

fn parse(s: &str) -> Result<SoapMessage, MessageError> {
    SoapMessage::parse(
        Bytes::copy_from_slice(s.as_bytes()),
        None,
        &SoapLimits::default(),
    )
}

#[test]
fn parses_the_example_request() {
    let m = parse(SIMPLE).unwrap();
    m.validate_request().unwrap();
    let (client, service, id) = m.route();
    assert_eq!(client.to_string(), "SEVDEIR-TEST/GOV/00000001/DIIA");
    assert_eq!(
        service.to_string(),
        "SEVDEIR-TEST/GOV/00000002/DRACS/getBirthRecord/v1"
    );
    assert!(!id.is_empty());
    assert!(
        matches!(&m.body, SoapBody::Element { local_name, .. } if local_name == "getBirthRecord")
    );
}

#[test]
fn request_hash_is_inserted_then_replaced() {
    let m = parse(SIMPLE).unwrap();
    let once = m.with_request_hash(SHA512_URI, "AAAA");
    let m2 = SoapMessage::parse(once, None, &SoapLimits::default()).unwrap();
    assert_eq!(m2.header.request_hash.as_ref().unwrap().value, "AAAA");
    let twice = m2.with_request_hash(SHA512_URI, "BBBB");
    let m3 = SoapMessage::parse(twice.clone(), None, &SoapLimits::default()).unwrap();
    assert_eq!(m3.header.request_hash.as_ref().unwrap().value, "BBBB");
    assert_eq!(
        m3.header
            .request_hash
            .as_ref()
            .unwrap()
            .algorithm_id
            .as_deref(),
        Some(SHA512_URI)
    );
    assert_eq!(twice.len(), m2.bytes.len());
}

#[test]
fn refuses_doctype_and_deep_nesting() {
    let doctype = format!("<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>{SIMPLE}");
    assert_eq!(parse(&doctype).unwrap_err().code, ErrorCode::InvalidXml);
    let deep = SIMPLE.replace(
        "<SOAP-ENV:Body>",
        &format!("<SOAP-ENV:Body>{}", "<a>".repeat(200)),
    );
    assert_eq!(parse(&deep).unwrap_err().code, ErrorCode::InvalidXml);
}

#[test]
fn latin1_offsets_map_back() {
    let xml = "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns:x=\"http://x-road.eu/xsd/xroad.xsd\"><s:Header><x:userId>\u{e4}\u{f5}</x:userId></s:Header><s:Body><x:aResponse/></s:Body></s:Envelope>";
    let latin1: Vec<u8> = xml.chars().map(|c| c as u8).collect();
    let m = SoapMessage::parse(
        Bytes::from(latin1),
        Some("ISO-8859-1"),
        &SoapLimits::default(),
    )
    .unwrap();
    assert_eq!(m.header.user_id.as_deref(), Some("\u{e4}\u{f5}"));
    let out = m.with_request_hash(SHA512_URI, "QQ==");
    let end = out.windows(11).position(|w| w == b"</s:Header>").unwrap();
    assert!(out[..end].ends_with(b"</xrd:requestHash>"));
}

#[test]
fn faults_are_read() {
    let xml = fault::fault_xml(
        "Server.ServerProxy.AccessDenied",
        "no <way>",
        None,
        Some("id-1"),
    );
    let m = parse(&xml).unwrap();
    assert_eq!(
        m.body,
        SoapBody::Fault {
            code: "Server.ServerProxy.AccessDenied".into(),
            string: "no <way>".into(),
            detail: Some("id-1".into())
        }
    );
}

/// `faultcode` is a QName: a service writing `SOAP-ENV:Server.Maintenance` means the code
/// `Server.Maintenance`, which the retry rule must see as such.
#[test]
fn fault_codes_lose_their_qname_prefix() {
    let xml = fault::fault_xml("SOAP-ENV:Server.Maintenance", "later", None, None);
    let m = parse(&xml).unwrap();
    let SoapBody::Fault { code, .. } = &m.body else {
        panic!("not a fault: {:?}", m.body)
    };
    assert_eq!(code, "Server.Maintenance");
    assert!(crate::error::is_retryable_code(code));
}
