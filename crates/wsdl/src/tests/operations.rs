//! Every operation of every WSDL (the registries in `wsdl/` and the test registry): requests
//! become envelopes brama's own parser accepts, responses in any namespace spelling become the
//! typed struct, faults become `ClientError::Fault`.

use quick_xml::events::Event;

use super::{fixture, header, response_envelope};
use crate::runtime::{
    parse_response, request_envelope, ClientError, Operation, OperationVisitor, Payload,
};
use brama_xroad::message::soap::{SoapBody, SoapLimits, SoapMessage};

fn ser<T: yaserde::YaSerialize>(v: &T) -> String {
    let config = yaserde::ser::Config {
        perform_indent: false,
        write_document_declaration: false,
        indent_string: None,
    };
    yaserde::ser::to_string_with_config(v, &config).unwrap()
}

/// `<tns:e xmlns:tns="ns">inner</tns:e>` -> (e, inner).
fn split(sample: &str) -> (&str, &str) {
    let name = &sample[5..sample.find(' ').unwrap()];
    let inner = &sample[sample.find('>').unwrap() + 1..sample.rfind("</").unwrap()];
    (name, inner)
}

/// `xmlns=""` on every top-level child: unqualified children under a default namespace.
fn undeclare_children(inner: &str) -> String {
    let mut r = quick_xml::Reader::from_str(inner);
    let (mut depth, mut at) = (0, Vec::new());
    loop {
        let before = r.buffer_position() as usize;
        match r.read_event().unwrap() {
            Event::Start(s) => {
                if depth == 0 {
                    at.push(before + 1 + s.name().as_ref().len());
                }
                depth += 1;
            }
            Event::Empty(s) if depth == 0 => at.push(before + 1 + s.name().as_ref().len()),
            Event::End(_) => depth -= 1,
            Event::Eof => break,
            _ => {}
        }
    }
    let mut out = inner.to_string();
    for i in at.into_iter().rev() {
        out.insert_str(i, " xmlns=\"\"");
    }
    out
}

/// The same response wrapper spelled every way a service may write it.
fn spellings<O: Operation>(sample: &str) -> Vec<String> {
    let (name, inner) = split(sample);
    let ns = O::NAMESPACE;
    let soap = brama_xroad::message::NS_SOAP_ENV;
    vec![
        response_envelope::<O>(sample),
        response_envelope::<O>(&format!("<r:{name} xmlns:r=\"{ns}\">{inner}</r:{name}>")),
        response_envelope::<O>(&format!(
            "<{name} xmlns=\"{ns}\">{}</{name}>",
            undeclare_children(inner)
        )),
        format!(
            "<?xml version=\"1.0\"?>\n<soapenv:Envelope xmlns:soapenv=\"{soap}\" xmlns:ns1=\"{ns}\">\
             <soapenv:Header/><!-- c --><soapenv:Body>\n  <ns1:{name}>{inner}</ns1:{name}>\n</soapenv:Body></soapenv:Envelope>"
        ),
        format!(
            "\u{feff}<S:Envelope xmlns:S=\"{soap}\"><S:Body xmlns:x=\"{ns}\" xmlns:ns1=\"urn:shadowed\">\
             <x:{name} xmlns:ns1=\"{ns}\">{inner}</x:{name}></S:Body></S:Envelope>"
        ),
    ]
}

#[derive(Default)]
struct RoundTrip {
    seen: Vec<String>,
}

impl OperationVisitor for RoundTrip {
    fn visit<O: Operation>(&mut self) {
        let info = O::INFO;
        let op = info.path();
        assert_eq!(
            (info.name, info.registry, info.namespace),
            (O::NAME, O::REGISTRY, O::NAMESPACE)
        );
        assert_eq!(info.version, O::VERSION);
        assert_eq!(info.request.name, O::Request::ELEMENT);
        assert_eq!(info.response.name, O::Response::ELEMENT);
        let h = header::<O>();
        let limits = SoapLimits::default();

        // Default and sample requests: envelopes brama's proxy accepts, body read back typed.
        let sample_xml = info.sample_request_xml();
        let sample: O::Request = yaserde::de::from_str(&sample_xml)
            .unwrap_or_else(|e| panic!("{op}: sample request: {e}\n{sample_xml}"));
        assert_eq!(
            ser(&sample),
            sample_xml,
            "{op}: yaserde and the sample writer disagree"
        );
        assert_eq!(sample.validate(), [], "{op}: sample request");
        for req in [O::Request::default(), sample.clone()] {
            let env = request_envelope::<O>(&h, &req).unwrap();
            let m = SoapMessage::parse(env.into(), None, &limits)
                .unwrap_or_else(|e| panic!("{op}: {e}"));
            m.validate_request().unwrap_or_else(|e| panic!("{op}: {e}"));
            assert_eq!(m.header.service.as_ref(), Some(&h.service));
            assert_eq!(m.header.client.as_ref(), Some(&h.client));
            assert_eq!(m.header.user_id, h.user_id);
            assert_eq!(
                m.body,
                SoapBody::Element {
                    local_name: O::Request::ELEMENT.into(),
                    namespace: Some(O::NAMESPACE.into())
                }
            );
            let body = std::str::from_utf8(m.body_content()).unwrap();
            let back: O::Request = yaserde::de::from_str(body).unwrap();
            assert_eq!(back, req, "{op}");
        }
        let json = serde_json::to_string(&sample).unwrap();
        assert_eq!(
            serde_json::from_str::<O::Request>(&json).unwrap(),
            sample,
            "{op}"
        );

        // A header for another service is refused before anything is sent.
        let mut other = h.clone();
        other.service.service_code = "somethingElse".into();
        assert!(matches!(
            request_envelope::<O>(&other, &sample),
            Err(ClientError::Request(_))
        ));

        // Responses, whatever the prefix or default namespace.
        let resp_xml = info.sample_response_xml();
        let expected: O::Response = yaserde::de::from_str(&resp_xml)
            .unwrap_or_else(|e| panic!("{op}: sample response: {e}\n{resp_xml}"));
        assert_eq!(expected.validate(), [], "{op}: sample response");
        assert_eq!(ser(&expected), resp_xml, "{op}");
        for env in spellings::<O>(&resp_xml) {
            match parse_response::<O>(env.as_bytes()) {
                Ok(got) => assert_eq!(got, expected, "{op}:\n{env}"),
                Err(e) => panic!("{op}: {e}\n{env}"),
            }
        }
        let json = serde_json::to_value(&expected).unwrap();
        assert_eq!(
            serde_json::from_value::<O::Response>(json).unwrap(),
            expected
        );

        // Faults.
        let fault = brama_xroad::message::fault::fault_xml(
            "Server.ServerProxy.ServiceFailed",
            "down",
            None,
            Some("err-1"),
        );
        let e = parse_response::<O>(fault.as_bytes()).unwrap_err();
        assert_eq!(
            e,
            ClientError::Fault {
                code: "Server.ServerProxy.ServiceFailed".into(),
                string: "down".into(),
                detail: Some("err-1".into())
            }
        );
        assert!(e.retryable());
        // The request is not a response.
        let env = request_envelope::<O>(&h, &sample).unwrap();
        match parse_response::<O>(&env) {
            Err(ClientError::Malformed(m)) => assert!(m.contains(O::Response::ELEMENT), "{m}"),
            other => panic!("{op}: {other:?}"),
        }
        self.seen.push(op);
    }
}

#[test]
fn every_registry_operation_round_trips() {
    let mut v = RoundTrip::default();
    crate::registries::visit_all(&mut v);
    let all: Vec<String> = crate::registries::ALL
        .iter()
        .flat_map(|ops| ops.iter().map(|o| o.path()))
        .collect();
    assert_eq!(v.seen, all);
    assert!(all.contains(&"dracs/getBirthRecord".to_string()));
}

#[test]
fn fixture_operations_round_trip() {
    let mut v = RoundTrip::default();
    fixture::visit_all(&mut v);
    assert_eq!(v.seen, ["codegen/submitApplication", "codegen/ping"]);
}
