//! Every operation of every compiled-in WSDL: typed payloads round-trip through yaserde, requests
//! are X-Road messages brama's own parser accepts, answers and faults are read back.

use crate::identifiers::ClientId;
use crate::message::soap::{SoapLimits, SoapMessage};
use crate::registries;
use crate::wsdl::runtime::{
    parse_response, request_envelope, ClientError, Operation, OperationVisitor, Payload,
    XRoadHeader,
};

const ENV_OPEN: &str = r#"<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Body>"#;
const ENV_CLOSE: &str = "</SOAP-ENV:Body></SOAP-ENV:Envelope>";

struct Check {
    ops: usize,
}

/// The sample wrapper with the registry namespace declared as default (children then
/// `xmlns=""`), as some SOAP stacks write it.
fn default_ns(xml: &str, ns: &str, element: &str) -> String {
    let inner = xml
        .split_once('>')
        .map(|(_, rest)| rest)
        .unwrap_or_default()
        .trim_end_matches(&format!("</tns:{element}>"));
    // Unqualified children under a default namespace need `xmlns=""` (the top level suffices).
    let mut out = format!("<{element} xmlns=\"{ns}\">");
    let mut depth = 0;
    for piece in inner.split('<').filter(|p| !p.is_empty()) {
        if piece.starts_with('/') {
            depth -= 1;
            out.push('<');
            out.push_str(piece);
        } else {
            if depth == 0 {
                let (name, rest) = piece.split_once('>').unwrap_or((piece, ""));
                out.push_str(&format!("<{name} xmlns=\"\">{rest}"));
            } else {
                out.push('<');
                out.push_str(piece);
            }
            depth += 1;
        }
    }
    out.push_str(&format!("</{element}>"));
    out
}

impl OperationVisitor for Check {
    fn visit<O: Operation>(&mut self) {
        self.ops += 1;
        let info = O::INFO;
        // A valid sample request, read into the generated struct and written back.
        let sample = info.sample_request_xml();
        let req: O::Request = yaserde::de::from_str(&sample)
            .unwrap_or_else(|e| panic!("{}: request sample: {e}\n{sample}", O::NAME));
        let problems = Payload::validate(&req);
        assert!(problems.is_empty(), "{}: {problems:?}", O::NAME);
        let header = XRoadHeader::for_operation::<O>(
            ClientId::parse_path("SEVDEIR-TEST/GOV/00000001/DIIA").unwrap(),
            ClientId::parse_path("SEVDEIR-TEST/GOV/00000002/DRACS").unwrap(),
        );
        let env = request_envelope::<O>(&header, &req).unwrap();
        let m = SoapMessage::parse(env.clone().into(), None, &SoapLimits::default())
            .unwrap_or_else(|e| panic!("{}: {e}", O::NAME));
        m.validate_request()
            .unwrap_or_else(|e| panic!("{}: {e}", O::NAME));
        let text = String::from_utf8(env).unwrap();
        assert!(text.contains(&format!("<id:serviceCode>{}</id:serviceCode>", O::NAME)));

        // The sample answer, with the generator's prefix, another prefix, and a default namespace.
        let resp = info.sample_response_xml();
        let typed = parse_response::<O>(format!("{ENV_OPEN}{resp}{ENV_CLOSE}").as_bytes())
            .unwrap_or_else(|e| panic!("{}: response: {e}\n{resp}", O::NAME));
        let other = resp.replace("tns:", "r:").replace("xmlns:tns=", "xmlns:r=");
        let typed2 = parse_response::<O>(format!("{ENV_OPEN}{other}{ENV_CLOSE}").as_bytes())
            .unwrap_or_else(|e| panic!("{}: other prefix: {e}", O::NAME));
        assert_eq!(typed, typed2, "{}", O::NAME);
        let dflt = default_ns(&resp, O::NAMESPACE, &format!("{}Response", O::NAME));
        let typed3 = parse_response::<O>(format!("{ENV_OPEN}{dflt}{ENV_CLOSE}").as_bytes())
            .unwrap_or_else(|e| panic!("{}: default namespace: {e}\n{dflt}", O::NAME));
        assert_eq!(typed, typed3, "{}", O::NAME);
        assert_ne!(
            typed,
            O::Response::default(),
            "{}: nothing was read",
            O::NAME
        );

        // A fault is a fault, garbage is malformed, never a panic.
        let fault = format!("{ENV_OPEN}<SOAP-ENV:Fault><faultcode>Client.CertificateNotFound</faultcode><faultstring>нема</faultstring></SOAP-ENV:Fault>{ENV_CLOSE}");
        match parse_response::<O>(fault.as_bytes()) {
            Err(ClientError::Fault { code, string, .. }) => {
                assert_eq!(code, "Client.CertificateNotFound");
                assert_eq!(string, "нема");
            }
            other => panic!("{}: {other:?}", O::NAME),
        }
        for junk in [&b"<x"[..], b"", b"\xff\xfe", ENV_OPEN.as_bytes()] {
            assert!(parse_response::<O>(junk).is_err());
        }
    }
}

#[test]
fn every_operation_round_trips() {
    let mut c = Check { ops: 0 };
    registries::visit_all(&mut c);
    assert_eq!(c.ops, 11, "ten eMalyatko operations and getBirthRecord");
}

#[test]
fn the_registries_are_the_contract() {
    let names: Vec<String> = registries::ALL
        .iter()
        .flat_map(|ops| ops.iter().map(|o| o.path()))
        .collect();
    for p in [
        "ehealth/getMedicalBirthCertificate",
        "ehealth/registerNewbornPatient",
        "dracs/registerBirth",
        "dracs/getBirthRegistrationStatus",
        "dms/assignUnzr",
        "dms/determineCitizenship",
        "dps/registerTaxpayer",
        "msp/assignBirthAssistance",
        "msp/assignLargeFamilySupport",
        "rtg/registerResidence",
    ] {
        assert!(names.iter().any(|n| n == p), "{p} missing: {names:?}");
    }
}

#[test]
fn unsupported_schema_constructs_are_refused_with_a_clear_error() {
    let wsdl = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/wsdl/dps.wsdl"))
        .unwrap()
        .replace(
            "<xs:element name=\"registerTaxpayer\">",
            "<xs:element name=\"registerTaxpayer\"><xs:annotation/></xs:element><xs:element name=\"x\"><xs:complexType><xs:all><xs:element name=\"a\" type=\"xs:string\"/></xs:all></xs:complexType></xs:element><xs:element name=\"unused\">",
        );
    let e = crate::wsdl::parse::parse_registry("dps.wsdl", "dps", &wsdl);
    assert!(e.is_err(), "xs:all must be refused");
    let msg = e.unwrap_err().to_string();
    assert!(msg.contains("dps.wsdl"), "{msg}");
}
