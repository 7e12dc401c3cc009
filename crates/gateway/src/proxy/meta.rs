//! Metaservices (reference §7.1): `listClients` on the client proxy; `listMethods`,
//! `allowedMethods` and `getWsdl` answered by the provider's server proxy itself.

use std::fmt::Write;

use bytes::Bytes;
use hyper::body::Incoming;
use quick_xml::events::{BytesStart, Event};

use super::listener::Response;
use super::{server, wire, Gateway};
use crate::config::{HostedClient, Service};
use brama_xroad::error::{ErrorCode, Fault, Prefix};
use brama_xroad::identifiers::{ClientId, ServiceId};
use brama_xroad::message::mime::{self, Part};
use brama_xroad::message::soap::escape;
use brama_xroad::message::{SoapEnvelope, NS_IDENTIFIERS, NS_XROAD};

/// The fault-code prefix of what this proxy raises.
const HERE: Prefix = Prefix::ServerProxy;

const METASERVICES: &[&str] = &["listMethods", "allowedMethods", "getWsdl"];

/// Where `getWsdl` points every `soap:address` (as X-Road does: the real address stays private).
const HIDDEN_ENDPOINT: &str = "http://example.org/xroad-endpoint";

pub(crate) fn is_metaservice(code: &str) -> bool {
    METASERVICES.contains(&code)
}

/// `GET /listClients[?xRoadInstance=X]`: XML, or JSON on `Accept: application/json`.
pub(crate) fn list_clients(gw: &Gateway, req: &http::Request<Incoming>) -> Response {
    let instance = req.uri().query().and_then(|q| {
        q.split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == "xRoadInstance")
            .map(|(_, v)| v.to_string())
    });
    let trusted = gw.trusted();
    let entries = trusted.gc.clients(Some(
        instance.as_deref().unwrap_or(&trusted.gc.own_instance),
    ));
    let json = req
        .headers()
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json"));
    if json {
        let members: Vec<serde_json::Value> = entries
            .iter()
            .map(|e| {
                let mut id = serde_json::json!({
                    "object_type": e.id.object_type(),
                    "xroad_instance": e.id.instance,
                    "member_class": e.id.member_class,
                    "member_code": e.id.member_code,
                });
                if let Some(s) = &e.id.subsystem {
                    id["subsystem_code"] = s.clone().into();
                }
                serde_json::json!({ "id": id, "name": e.name })
            })
            .collect();
        let body = serde_json::json!({ "member": members }).to_string();
        return wire::ok("application/json; charset=UTF-8", Bytes::from(body));
    }
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><xrd:clientList xmlns:xrd=\"{NS_XROAD}\" xmlns:id=\"{NS_IDENTIFIERS}\">"
    );
    for e in &entries {
        xml.push_str("<xrd:member>");
        write_client_id(&mut xml, "xrd:id", &e.id);
        let _ = write!(xml, "<xrd:name>{}</xrd:name>", escape(&e.name));
        xml.push_str("</xrd:member>");
    }
    xml.push_str("</xrd:clientList>");
    wire::ok("text/xml; charset=UTF-8", Bytes::from(xml))
}

/// `GET /wsdl?xRoadInstance=…&memberClass=…&memberCode=…[&subsystemCode=…]&serviceCode=…
/// [&version=…]`: the service's WSDL, as the client proxies of X-Road 6 and UXP serve it (and
/// Trembita's clients, `pyxroad` among them, download it): a `getWsdl` request from this
/// server's owner (user `wsdl-request`), exchanged through the client proxy in-process, and the
/// WSDL its answer carries. The provider's server proxy has pointed its addresses elsewhere.
pub async fn wsdl(gw: &Gateway, req: &http::Request<Incoming>) -> Response {
    match service_wsdl(gw, req.uri().query().unwrap_or_default()).await {
        Ok(wsdl) => wire::ok("text/xml; charset=UTF-8", wsdl),
        Err(fault) => {
            wire::soap_fault(&fault, brama_transport::metrics::Proxy::Client, &gw.metrics)
        }
    }
}

/// listMethods and allowedMethods as a WSDL, for clients that build calls from one.
const METASERVICES_WSDL: &str = include_str!("metaservices.wsdl");

async fn service_wsdl(gw: &Gateway, query: &str) -> Result<Bytes, Fault> {
    let params = crate::message_log::download::query(query);
    let get = |k: &str| {
        params
            .iter()
            .find(|(n, v)| n == k && !v.is_empty())
            .map(|(_, v)| v.as_str())
    };
    let need = |k: &str| {
        get(k).ok_or_else(|| {
            Fault::new(
                Prefix::Client,
                ErrorCode::InvalidRequest,
                format!("the '{k}' parameter is missing"),
            )
        })
    };
    let (instance, class, code) = (
        need("xRoadInstance")?,
        need("memberClass")?,
        need("memberCode")?,
    );
    let provider = match get("subsystemCode") {
        Some(sub) => ClientId::subsystem(instance, class, code, sub),
        None => ClientId::member(instance, class, code),
    };
    let service_code = need("serviceCode")?;
    // The list metaservices are X-Road's own, the same for every provider: their WSDL is ours.
    if matches!(service_code, "listMethods" | "allowedMethods") {
        return Ok(Bytes::from_static(METASERVICES_WSDL.as_bytes()));
    }
    let getwsdl = ServiceId {
        provider,
        service_code: "getWsdl".into(),
        service_version: None,
    };
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><SOAP-ENV:Envelope \
         xmlns:SOAP-ENV=\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns:xrd=\"{NS_XROAD}\" \
         xmlns:id=\"{NS_IDENTIFIERS}\"><SOAP-ENV:Header>"
    );
    write_client_id(&mut xml, "xrd:client", &gw.conf.server_id.owner);
    write_service_id(&mut xml, &getwsdl);
    let _ = write!(
        xml,
        "<xrd:id>{}</xrd:id><xrd:userId>wsdl-request</xrd:userId>\
         <xrd:protocolVersion>4.0</xrd:protocolVersion></SOAP-ENV:Header><SOAP-ENV:Body>\
         <xrd:getWsdl><xrd:serviceCode>{}</xrd:serviceCode>",
        uuid::Uuid::new_v4(),
        escape(service_code)
    );
    if let Some(v) = get("version") {
        let _ = write!(
            xml,
            "<xrd:serviceVersion>{}</xrd:serviceVersion>",
            escape(v)
        );
    }
    xml.push_str("</xrd:getWsdl></SOAP-ENV:Body></SOAP-ENV:Envelope>");
    let soap =
        brama_xroad::message::soap::SoapMessage::parse(Bytes::from(xml), None, &gw.soap_limits)
            .map_err(|e| Fault::new(Prefix::Client, ErrorCode::InvalidRequest, e.message))?;
    let request = SoapEnvelope {
        soap,
        soap_content_type: "text/xml; charset=UTF-8".into(),
        soap_part_headers: None,
        attachments: Vec::new(),
        content_type: "text/xml; charset=UTF-8".into(),
    };
    let answer = super::client::exchange(gw, request, None, None).await?;
    answer
        .attachments
        .into_iter()
        .next()
        .map(|part| part.body)
        .ok_or_else(|| {
            Fault::new(
                Prefix::ClientProxy,
                ErrorCode::InvalidResponse,
                "the getWsdl answer carries no WSDL",
            )
        })
}

fn write_client_id(out: &mut String, element: &str, id: &ClientId) {
    let _ = write!(
        out,
        "<{element} id:objectType=\"{}\"><id:xRoadInstance>{}</id:xRoadInstance><id:memberClass>{}</id:memberClass><id:memberCode>{}</id:memberCode>",
        id.object_type(),
        escape(&id.instance),
        escape(&id.member_class),
        escape(&id.member_code)
    );
    if let Some(s) = &id.subsystem {
        let _ = write!(out, "<id:subsystemCode>{}</id:subsystemCode>", escape(s));
    }
    let _ = write!(out, "</{element}>");
}

fn write_service_id(out: &mut String, id: &ServiceId) {
    let p = &id.provider;
    let _ = write!(
        out,
        "<xrd:service id:objectType=\"SERVICE\"><id:xRoadInstance>{}</id:xRoadInstance><id:memberClass>{}</id:memberClass><id:memberCode>{}</id:memberCode>",
        escape(&p.instance),
        escape(&p.member_class),
        escape(&p.member_code)
    );
    if let Some(s) = &p.subsystem {
        let _ = write!(out, "<id:subsystemCode>{}</id:subsystemCode>", escape(s));
    }
    let _ = write!(
        out,
        "<id:serviceCode>{}</id:serviceCode>",
        escape(&id.service_code)
    );
    if let Some(v) = &id.service_version {
        let _ = write!(out, "<id:serviceVersion>{}</id:serviceVersion>", escape(v));
    }
    out.push_str("</xrd:service>");
}

/// Answers a metaservice request addressed to `provider`. The answer echoes the request's header.
pub async fn answer(
    gw: &Gateway,
    provider: &HostedClient,
    env: &SoapEnvelope,
) -> Result<SoapEnvelope, Fault> {
    let (client, service, _) = env.soap.route();
    let open =
        |name: &str| format!("<xrd:{name} xmlns:xrd=\"{NS_XROAD}\" xmlns:id=\"{NS_IDENTIFIERS}\">");
    let trusted = gw.trusted();
    let (body, attachment) = match service.service_code.as_str() {
        code @ ("listMethods" | "allowedMethods") => {
            let services: Vec<&Service> = if code == "listMethods" {
                provider.services.iter().collect()
            } else {
                provider.allowed_services(client, &trusted.gc).collect()
            };
            let mut out = open(&format!("{code}Response"));
            // REST services are listed by the REST metaservices.
            for s in services
                .iter()
                .filter(|s| !is_metaservice(&s.id.service_code) && !s.kind.is_rest())
            {
                write_service_id(&mut out, &s.id);
            }
            let _ = write!(out, "</xrd:{code}Response>");
            (out, None)
        }
        _ => {
            let (code, version) = requested_service(env.soap.body_content(), &gw.soap_limits.xml)?;
            let svc = provider.service(&code, version.as_deref()).ok_or_else(|| {
                HERE.fault(
                    ErrorCode::UnknownService,
                    format!("Unknown service: '{code}'"),
                )
            })?;
            let wsdl = fetch_wsdl(gw, svc).await?;
            let mut out = open("getWsdlResponse");
            let _ = write!(out, "<xrd:serviceCode>{}</xrd:serviceCode>", escape(&code));
            if let Some(v) = &version {
                let _ = write!(
                    out,
                    "<xrd:serviceVersion>{}</xrd:serviceVersion>",
                    escape(v)
                );
            }
            out.push_str("</xrd:getWsdlResponse>");
            (out, Some(wsdl))
        }
    };
    let bytes = env.soap.with_body(body.as_bytes());
    let soap = brama_xroad::message::soap::SoapMessage::parse(bytes, None, &gw.soap_limits)
        .map_err(|e| HERE.fault(ErrorCode::InternalError, e.message))?;
    let Some(wsdl) = attachment else {
        return Ok(SoapEnvelope {
            soap,
            soap_content_type: "text/xml; charset=UTF-8".into(),
            soap_part_headers: None,
            attachments: Vec::new(),
            content_type: "text/xml; charset=UTF-8".into(),
        });
    };
    let boundary = mime::new_boundary("xroad");
    let content_id = format!("wsdl-{}", uuid::Uuid::new_v4());
    Ok(SoapEnvelope {
        soap,
        soap_content_type: "text/xml; charset=UTF-8".into(),
        soap_part_headers: Some(Bytes::from_static(b"Content-Type: text/xml; charset=UTF-8")),
        attachments: vec![Part {
            raw_headers: Bytes::from(format!(
                "Content-Type: text/xml\r\nContent-ID: <{content_id}>"
            )),
            headers: vec![
                ("Content-Type".into(), "text/xml".into()),
                ("Content-ID".into(), format!("<{content_id}>")),
            ],
            body: wsdl,
        }],
        content_type: format!(
            "multipart/related; type=\"text/xml\"; charset=UTF-8; boundary={boundary}"
        ),
    })
}

/// `serviceCode` and `serviceVersion` from a `getWsdl` body.
fn requested_service(
    body: &[u8],
    limits: &brama_xroad::xml::XmlLimits,
) -> Result<(String, Option<String>), Fault> {
    let mut reader = brama_xroad::xml::Reader::new(body, limits).map_err(|e| {
        HERE.fault(
            ErrorCode::InvalidXml,
            format!("Malformed getWsdl request: {e}"),
        )
    })?;
    let (mut code, mut version, mut current) = (None, None, None::<Vec<u8>>);
    loop {
        match reader.read() {
            Ok(Event::Start(e)) => current = Some(e.local_name().as_ref().to_vec()),
            Ok(Event::Text(t)) => {
                let text = t.unescape().unwrap_or_default().trim().to_string();
                match current.as_deref() {
                    Some(b"serviceCode") if !text.is_empty() => code = Some(text),
                    Some(b"serviceVersion") if !text.is_empty() => version = Some(text),
                    _ => {}
                }
            }
            Ok(Event::End(_)) => current = None,
            Ok(Event::Eof) => break,
            Err(e) => {
                return Err(HERE.fault(
                    ErrorCode::InvalidXml,
                    format!("Malformed getWsdl request: {e}"),
                ))
            }
            _ => {}
        }
    }
    let code = code.ok_or_else(|| {
        HERE.fault(
            ErrorCode::InvalidBody,
            "getWsdl request names no serviceCode",
        )
    })?;
    Ok((code, version))
}

async fn fetch_wsdl(gw: &Gateway, svc: &Service) -> Result<Bytes, Fault> {
    let url = svc.wsdl.as_ref().ok_or_else(|| {
        HERE.fault(
            ErrorCode::ServiceMissingUrl,
            format!("No WSDL is configured for service {}", svc.id),
        )
    })?;
    let dest = server::service_destination(url, svc.tls.as_ref())?;
    let path = url.path_and_query().map_or("/", |p| p.as_str());
    let req = http::Request::get(path)
        .header(http::header::HOST, dest.key.as_str())
        .body(brama_transport::body::full(Bytes::new()))
        .map_err(|e| HERE.fault(ErrorCode::InternalError, e.to_string()))?;
    let (parts, body) = gw
        .pool
        .exchange(&dest, req, svc.timeout, gw.max_body())
        .await
        .map_err(|e| {
            HERE.service_failed(
                ErrorCode::NetworkError,
                format!("Fetching the WSDL failed: {e}"),
            )
        })?;
    if !parts.status.is_success() {
        return Err(HERE.service_failed(
            ErrorCode::HttpError,
            format!(
                "Fetching the WSDL from {url} answered HTTP {}",
                parts.status
            ),
        ));
    }
    hide_addresses(&body).map_err(|e| {
        HERE.fault(
            ErrorCode::InvalidXml,
            format!("The WSDL of {} is not valid XML: {e}", svc.id),
        )
    })
}

/// Rewrites every `address/@location` (SOAP 1.1 and 1.2 bindings) to `HIDDEN_ENDPOINT`.
pub(crate) fn hide_addresses(wsdl: &[u8]) -> Result<Bytes, quick_xml::Error> {
    let mut reader = quick_xml::Reader::from_reader(wsdl);
    let mut writer = quick_xml::Writer::new(Vec::with_capacity(wsdl.len()));
    loop {
        let ev = reader.read_event()?;
        let ev = match ev {
            Event::Eof => break,
            Event::DocType(_) => {
                return Err(quick_xml::Error::Syntax(
                    quick_xml::errors::SyntaxError::InvalidBangMarkup,
                ))
            }
            Event::Start(e) if e.local_name().as_ref() == b"address" => Event::Start(relocate(&e)),
            Event::Empty(e) if e.local_name().as_ref() == b"address" => Event::Empty(relocate(&e)),
            other => other,
        };
        writer
            .write_event(ev)
            .map_err(|e| quick_xml::Error::Io(std::sync::Arc::new(e)))?;
    }
    Ok(Bytes::from(writer.into_inner()))
}

fn relocate(e: &BytesStart) -> BytesStart<'static> {
    let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
    let mut out = BytesStart::new(name);
    for a in e.attributes().flatten() {
        if a.key.as_ref() == b"location" {
            out.push_attribute(("location", HIDDEN_ENDPOINT));
        } else {
            out.push_attribute(a);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hides_soap_addresses() {
        let wsdl = br#"<definitions xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/"><service><port><soap:address location="http://10.0.0.5/secret"/></port></service></definitions>"#;
        let out = hide_addresses(wsdl).unwrap();
        let text = String::from_utf8(out.to_vec()).unwrap();
        assert!(text.contains(HIDDEN_ENDPOINT));
        assert!(!text.contains("10.0.0.5"));
        assert!(hide_addresses(b"<!DOCTYPE x><a/>").is_err());
    }

    #[test]
    fn reads_get_wsdl_body() {
        let body = b"<xroad:getWsdl xmlns:xroad=\"x\"><xroad:serviceCode>getBirthRecord</xroad:serviceCode><xroad:serviceVersion>v1</xroad:serviceVersion></xroad:getWsdl>";
        let (c, v) = requested_service(body, &Default::default()).unwrap();
        assert_eq!(c, "getBirthRecord");
        assert_eq!(v.as_deref(), Some("v1"));
        assert!(requested_service(b"<getWsdl/>", &Default::default()).is_err());
    }
}
