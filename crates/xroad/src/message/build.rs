//! Building X-Road SOAP requests (for `brama send`, tests and load generation).

use std::fmt::Write;

use super::soap::{escape, SoapBody, SoapMessage, XRoadHeader};
use super::{NS_IDENTIFIERS, NS_SOAP_ENV, NS_XROAD};
use crate::identifiers::{ClientId, SecurityServerId, ServiceId};

/// Header fields of a request to build.
#[derive(Clone, Debug)]
pub struct RequestHeader {
    pub client: ClientId,
    pub service: ServiceId,
    pub id: String,
    pub user_id: Option<String>,
    pub issue: Option<String>,
    pub security_server: Option<SecurityServerId>,
}

fn id_parts(out: &mut String, c: &ClientId) {
    let _ = write!(
        out,
        "<id:xRoadInstance>{}</id:xRoadInstance><id:memberClass>{}</id:memberClass><id:memberCode>{}</id:memberCode>",
        escape(&c.instance),
        escape(&c.member_class),
        escape(&c.member_code)
    );
    if let Some(s) = &c.subsystem {
        let _ = write!(out, "<id:subsystemCode>{}</id:subsystemCode>", escape(s));
    }
}

/// A complete SOAP 4.0 request whose Body holds `body` (one element, as XML text).
pub fn request(h: &RequestHeader, body: &str) -> String {
    write_request(h, body).0
}

/// The operation element a request's Body holds, as XML text, with its name: whoever made it
/// knows the name, so the request is built without being parsed.
#[derive(Clone, Copy, Debug)]
pub struct BodyElement<'a> {
    pub xml: &'a str,
    pub local_name: &'a str,
    pub namespace: Option<&'a str>,
}

/// [`request`], as the message the proxies take: the header fields and the offsets a parse would
/// find are recorded as it is written. For requests this server makes itself (the router's), so
/// that sending one again does not parse it again.
pub fn request_message(h: &RequestHeader, body: BodyElement<'_>) -> SoapMessage {
    let (xml, spans) = write_request(h, body.xml);
    let header = XRoadHeader {
        client: Some(h.client.clone()),
        service: Some(h.service.clone()),
        id: Some(h.id.clone()),
        user_id: h.user_id.clone(),
        issue: h.issue.clone(),
        protocol_version: Some("4.0".into()),
        request_hash: None,
        security_server: h.security_server.clone(),
        represented_party: None,
    };
    let element = SoapBody::Element {
        local_name: body.local_name.to_string(),
        namespace: body.namespace.map(str::to_string),
    };
    SoapMessage::built(xml.into(), header, &spans, element)
}

/// Where a written request's Envelope starts, its header ends and its Body's content is.
pub(super) struct Spans {
    pub envelope_start: usize,
    pub header_end: usize,
    pub body: std::ops::Range<usize>,
}

fn write_request(h: &RequestHeader, body: &str) -> (String, Spans) {
    let mut out = String::with_capacity(1024 + body.len());
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let envelope_start = out.len();
    let _ = write!(
        out,
        "<SOAP-ENV:Envelope xmlns:SOAP-ENV=\"{NS_SOAP_ENV}\" xmlns:xroad=\"{NS_XROAD}\" xmlns:id=\"{NS_IDENTIFIERS}\"><SOAP-ENV:Header>"
    );
    let _ = write!(
        out,
        "<xroad:client id:objectType=\"{}\">",
        h.client.object_type()
    );
    id_parts(&mut out, &h.client);
    out.push_str("</xroad:client><xroad:service id:objectType=\"SERVICE\">");
    id_parts(&mut out, &h.service.provider);
    let _ = write!(
        out,
        "<id:serviceCode>{}</id:serviceCode>",
        escape(&h.service.service_code)
    );
    if let Some(v) = &h.service.service_version {
        let _ = write!(out, "<id:serviceVersion>{}</id:serviceVersion>", escape(v));
    }
    out.push_str("</xroad:service>");
    if let Some(ss) = &h.security_server {
        out.push_str("<xroad:securityServer id:objectType=\"SERVER\">");
        id_parts(&mut out, &ss.owner);
        let _ = write!(
            out,
            "<id:serverCode>{}</id:serverCode></xroad:securityServer>",
            escape(&ss.server_code)
        );
    }
    let _ = write!(out, "<xroad:id>{}</xroad:id>", escape(&h.id));
    if let Some(u) = &h.user_id {
        let _ = write!(out, "<xroad:userId>{}</xroad:userId>", escape(u));
    }
    if let Some(i) = &h.issue {
        let _ = write!(out, "<xroad:issue>{}</xroad:issue>", escape(i));
    }
    out.push_str("<xroad:protocolVersion>4.0</xroad:protocolVersion>");
    let header_end = out.len();
    out.push_str("</SOAP-ENV:Header><SOAP-ENV:Body>");
    let body_start = out.len();
    out.push_str(body.trim());
    let body = body_start..out.len();
    out.push_str("</SOAP-ENV:Body></SOAP-ENV:Envelope>\n");
    let spans = Spans {
        envelope_start,
        header_end,
        body,
    };
    (out, spans)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::soap::SoapLimits;

    /// DIIA's header for DRACS's `getBirthRecord`.
    fn header(id: &str) -> RequestHeader {
        RequestHeader {
            client: ClientId::parse_path("SEVDEIR-TEST/GOV/00000001/DIIA").unwrap(),
            service: ServiceId::parse_path("SEVDEIR-TEST/GOV/00000002/DRACS/getBirthRecord/v1")
                .unwrap(),
            id: id.into(),
            user_id: None,
            issue: None,
            security_server: None,
        }
    }

    #[test]
    fn built_requests_parse_and_validate() {
        let h = RequestHeader {
            user_id: Some("UA<1>".into()),
            security_server: Some(
                SecurityServerId::parse_path("SEVDEIR-TEST/GOV/00000002/ss2").unwrap(),
            ),
            ..header("id-1")
        };
        let xml = request(
            &h,
            "<d:getBirthRecord xmlns:d=\"urn:x\"><n>1</n></d:getBirthRecord>",
        );
        let m = SoapMessage::parse(xml.into(), None, &SoapLimits::default()).unwrap();
        m.validate_request().unwrap();
        assert_eq!(m.header.user_id.as_deref(), Some("UA<1>"));
        assert_eq!(
            m.header.security_server.as_ref().unwrap().server_code,
            "ss2"
        );
    }

    /// A built message is what parsing its bytes gives: same header, same spans (the request
    /// hash is spliced at the same place), same body.
    #[test]
    fn built_message_equals_its_parse() {
        let h = RequestHeader {
            issue: Some("app <1>".into()),
            ..header("id-&-1")
        };
        let xml = " <d:getBirthRecord xmlns:d=\"urn:x\"><n>1</n></d:getBirthRecord>\n";
        let built = request_message(
            &h,
            BodyElement {
                xml,
                local_name: "getBirthRecord",
                namespace: Some("urn:x"),
            },
        );
        let parsed = SoapMessage::parse(built.bytes.clone(), None, &SoapLimits::default()).unwrap();
        built.validate_request().unwrap();
        assert_eq!(built.header, parsed.header);
        assert_eq!(built.body, parsed.body);
        assert_eq!(built.body_content(), parsed.body_content());
        assert_eq!(built.envelope_start(), parsed.envelope_start());
        assert_eq!(
            built.with_request_hash("urn:alg", "aGFzaA=="),
            parsed.with_request_hash("urn:alg", "aGFzaA==")
        );
        assert_eq!(built.with_body(b"<x/>"), parsed.with_body(b"<x/>"));
    }
}
