//! Wrap mode: `POST /route/{name}` takes a SOAP message without an X-Road header (or a bare
//! payload element), wraps its Body content in the route's X-Road header with a fresh id, and
//! forwards it synchronously through the client proxy.

use std::sync::Arc;

use bytes::Bytes;
use hyper::body::Incoming;
use quick_xml::events::Event;

use brama_gateway::config::router::{Route, RouterConf};
use brama_gateway::proxy::{body, client, wire, Gateway};
use brama_transport::listener::{ConnInfo, Response};
use brama_transport::metrics::Proxy;
use brama_xroad::error::{ErrorCode, Fault, Prefix, ToFault};
use brama_xroad::message::build::{self, RequestHeader};
use brama_xroad::message::SoapEnvelope;
use brama_xroad::xml::{Reader, XmlLimits};

pub async fn handle(
    gw: Arc<Gateway>,
    conf: &RouterConf,
    route: &Route,
    req: http::Request<Incoming>,
    conn: &ConnInfo,
) -> Response {
    // Only the route's own client's information systems may use it.
    if let Err(e) = super::auth::caller(&gw, conf, conn, &[&route.client], "this route") {
        return super::routes::error(&e);
    }
    let _in_flight = gw.metrics().start(Proxy::Client);
    match forward(&gw, route, req).await {
        Ok(resp) => resp,
        Err(f) => wire::soap_fault(&f, Proxy::Client, gw.metrics()),
    }
}

async fn forward(
    gw: &Gateway,
    route: &Route,
    req: http::Request<Incoming>,
) -> Result<Response, Fault> {
    let (parts, incoming) = req.into_parts();
    let user_id = parts
        .headers
        .get(route.user_id_header.as_str())
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| route.user_id.clone());
    let received = body::read(incoming, gw.max_body(), gw.intake(), Prefix::Client).await?;
    let content = body_content(&received.bytes, &gw.soap_limits().xml, gw.max_body())
        .map_err(|m| Fault::new(Prefix::Client, ErrorCode::InvalidSoap, m))?;
    let id = uuid::Uuid::new_v4().to_string();
    let xml = build::request(
        &RequestHeader {
            client: route.client.clone(),
            service: route.service.clone(),
            id: id.clone(),
            user_id,
            issue: None,
            security_server: None,
        },
        &content,
    );
    let env = SoapEnvelope::from_http(
        Some("text/xml; charset=UTF-8"),
        Bytes::from(xml),
        gw.soap_limits(),
        gw.max_parts(),
    )
    .map_err(|e| e.to_fault(Prefix::Client))?;
    env.soap
        .validate_request()
        .map_err(|e| e.to_fault(Prefix::Client))?;
    let answer = client::exchange(gw, env, None, None).await?;
    let (ct, bytes) = answer.to_http();
    let mut resp = wire::ok(&ct, bytes);
    if let Ok(v) = http::HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-road-id", v);
    }
    Ok(resp)
}

/// The Body's content of a SOAP Envelope, or the whole document when it is not an Envelope; the
/// namespace declarations it inherits from Envelope and Body are copied onto each top-level
/// element, since those elements move into a new envelope. The result is at most `max_out` bytes:
/// copying declarations onto many elements must not multiply the message.
pub fn body_content(xml: &[u8], limits: &XmlLimits, max_out: usize) -> Result<String, String> {
    let xml = xml.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(xml);
    let mut r = Reader::new(xml, limits).map_err(|e| format!("not well-formed XML: {e}"))?;
    // The reader checked that the document is UTF-8.
    let text = std::str::from_utf8(xml).map_err(|_| "the message is not UTF-8".to_string())?;
    let mut added = 0usize;
    let mut depth = 0usize;
    let mut inherited: Vec<(String, String)> = Vec::new();
    let mut in_envelope = false;
    let mut body_range: Option<(usize, usize)> = None;
    let mut body_depth = usize::MAX;
    let mut inserts: Vec<(usize, String)> = Vec::new();
    loop {
        let before = r.position();
        let ev = r.read().map_err(|e| format!("not well-formed XML: {e}"))?;
        match ev {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(ev, Event::Empty(_));
                let local = e.local_name();
                let name_len = e.name().as_ref().len();
                if depth == 0 {
                    if local.as_ref() != b"Envelope" {
                        // A bare payload element.
                        return Ok(text[before..].trim().to_string());
                    }
                    in_envelope = true;
                    collect_ns(e, &mut inherited)?;
                } else if depth == 1 && in_envelope && local.as_ref() == b"Body" {
                    collect_ns(e, &mut inherited)?;
                    if empty {
                        return Err("the SOAP Body is empty".into());
                    }
                    body_depth = depth;
                    body_range = Some((r.position(), 0));
                } else if body_depth.checked_add(1) == Some(depth) {
                    let own: Vec<String> = e
                        .attributes()
                        .flatten()
                        .map(|a| String::from_utf8_lossy(a.key.as_ref()).into_owned())
                        .collect();
                    let decls: String = inherited
                        .iter()
                        .filter(|(k, _)| !own.contains(k))
                        .map(|(k, v)| format!(" {k}=\"{v}\""))
                        .collect();
                    added += decls.len();
                    if xml.len() + added > max_out {
                        return Err(format!(
                            "the wrapped message would be larger than {max_out} bytes"
                        ));
                    }
                    inserts.push((before + 1 + name_len, decls));
                }
                if !empty {
                    depth += 1;
                }
            }
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                if depth == body_depth {
                    if let Some((start, _)) = body_range {
                        body_range = Some((start, before));
                    }
                    body_depth = usize::MAX;
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let (start, end) = match body_range {
        Some((s, e)) if e > s => (s, e),
        _ => return Err("the message has no SOAP Body".into()),
    };
    let mut out = String::with_capacity(end - start + 256);
    let mut at = start;
    for (pos, decls) in inserts.iter().filter(|(p, _)| *p > start && *p < end) {
        out.push_str(&text[at..*pos]);
        out.push_str(decls);
        at = *pos;
    }
    out.push_str(&text[at..end]);
    let trimmed = out.trim();
    if trimmed.is_empty() {
        return Err("the SOAP Body is empty".into());
    }
    Ok(trimmed.to_string())
}

fn collect_ns(
    e: &quick_xml::events::BytesStart<'_>,
    into: &mut Vec<(String, String)>,
) -> Result<(), String> {
    for a in e.attributes().with_checks(false) {
        let a = a.map_err(|e| format!("bad attribute: {e}"))?;
        let key = String::from_utf8_lossy(a.key.as_ref()).into_owned();
        if key == "xmlns" || key.starts_with("xmlns:") {
            let value = String::from_utf8_lossy(&a.value).into_owned();
            into.retain(|(k, _)| *k != key);
            into.push((key, value));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_content_carries_inherited_namespaces() {
        let xml = br#"<?xml version="1.0"?>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:d="urn:dracs"><s:Header/><s:Body xmlns:x="urn:x"><d:getBirthRecord><recordNumber>1</recordNumber></d:getBirthRecord></s:Body></s:Envelope>"#;
        let c = body_content(xml, &XmlLimits::default(), 1 << 20).unwrap();
        assert!(c.starts_with("<d:getBirthRecord xmlns:s="), "{c}");
        assert!(c.contains(r#"xmlns:d="urn:dracs""#), "{c}");
        assert!(c.contains(r#"xmlns:x="urn:x""#), "{c}");
        assert!(c.ends_with("</d:getBirthRecord>"), "{c}");
    }

    #[test]
    fn bare_payloads_and_errors() {
        let l = XmlLimits::default();
        let content = |xml: &[u8]| body_content(xml, &l, 1 << 20);
        assert_eq!(
            content(b"<a xmlns=\"urn:a\"><b/></a>").unwrap(),
            "<a xmlns=\"urn:a\"><b/></a>"
        );
        assert!(content(b"<s:Envelope xmlns:s=\"x\"><s:Body/></s:Envelope>").is_err());
        assert!(content(b"<s:Envelope xmlns:s=\"x\"><s:Body><a>").is_err());
        assert!(content(b"\xff\xfe").is_err());
        let deep = format!("<s:Envelope xmlns:s=\"x\"><s:Body>{}", "<a>".repeat(100));
        let shallow = XmlLimits { max_depth: 10, ..l };
        assert!(body_content(deep.as_bytes(), &shallow, 1 << 20)
            .unwrap_err()
            .contains("deeper"));
    }

    #[test]
    fn copied_declarations_cannot_multiply_the_message() {
        let decls: String = (0..60)
            .map(|i| format!(" xmlns:p{i}=\"urn:{i}\""))
            .collect();
        let xml = format!(
            "<s:Envelope xmlns:s=\"x\"{decls}><s:Body>{}</s:Body></s:Envelope>",
            "<a/>".repeat(5000)
        );
        let err = body_content(xml.as_bytes(), &XmlLimits::default(), 1 << 20).unwrap_err();
        assert!(err.contains("larger than"), "{err}");
    }
}
