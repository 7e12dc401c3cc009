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

/// The Body's element is found as written: its start tag, its content, where the Envelope
/// starts, and whether a default namespace reaches into Body, in UTF-8 and in Latin-1.
#[test]
fn body_element_spans() {
    let xml = "<?xml version=\"1.0\"?>\n<!-- c --><e:Envelope xmlns:e=\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns=\"urn:d\"><e:Body>\n <p:op xmlns:p=\"urn:p\" a='>'><x>é</x><y/></p:op> </e:Body></e:Envelope>";
    for charset in [None, Some("ISO-8859-1")] {
        let bytes: Vec<u8> = match charset {
            None => xml.as_bytes().to_vec(),
            Some(_) => xml.chars().map(|c| c as u8).collect(),
        };
        let m = SoapMessage::parse(bytes.clone().into(), charset, &SoapLimits::default()).unwrap();
        let e = m.body_element().unwrap();
        assert_eq!(e.start_tag, b"<p:op xmlns:p=\"urn:p\" a='>'>");
        let content: Vec<u8> = match charset {
            None => "<x>é</x><y/>".as_bytes().to_vec(),
            Some(_) => "<x>é</x><y/>".chars().map(|c| c as u8).collect(),
        };
        assert_eq!(e.content, &content[..]);
        assert!(e.default_ns_in_body);
        assert!(bytes[m.envelope_start()..].starts_with(b"<e:Envelope "));
    }
    let m = parse("<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body><op/></s:Body></s:Envelope>").unwrap();
    let e = m.body_element().unwrap();
    assert_eq!((e.start_tag, e.content), (&b"<op/>"[..], &b""[..]));
    assert!(!e.default_ns_in_body);
    assert_eq!(m.envelope_start(), 0);
    let f = parse(&fault::fault_xml("Server", "x", None, None)).unwrap();
    assert!(f.body_element().is_none());
    // The tag helpers take any text without panicking.
    assert_eq!(soap::tag_qname("<p:op xmlns:p='u'/>"), "p:op");
    assert_eq!(
        soap::tag_declarations("<p:op a='1' xmlns:p='u' xmlns=\"d\">"),
        [
            ("xmlns:p".to_string(), "u".to_string()),
            ("xmlns".into(), "d".into())
        ]
    );
    for junk in ["", "<", "<>", "</", "<a x=>", "<é"] {
        let _ = (soap::tag_qname(junk), soap::tag_declarations(junk));
    }
}

/// One root: anything but comments and whitespace after the Envelope is refused, since the
/// signed and logged bytes would carry it.
#[test]
fn content_after_the_envelope_is_refused() {
    let env = "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body><a/></s:Body></s:Envelope>";
    for ok in ["", "\n", "<!-- c -->\n", "<?pi x?>"] {
        parse(&format!("{env}{ok}")).unwrap();
    }
    let undeclared = env.replace("<a/>", "<z:a/>");
    assert_eq!(parse(&undeclared).unwrap_err().code, ErrorCode::InvalidXml);
    for bad in ["<x/>", "text", "<s:Envelope/>"] {
        let e = parse(&format!("{env}{bad}")).unwrap_err();
        assert!(
            matches!(e.code, ErrorCode::InvalidSoap | ErrorCode::InvalidXml),
            "{bad}: {e}"
        );
    }
}
