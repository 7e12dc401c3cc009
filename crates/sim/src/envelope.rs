//! Streaming parse of a SOAP 1.1 request that keeps the original text of the parts the reply
//! must reproduce, and the writers for replies and faults.

use quick_xml::escape::escape;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{QName, ResolveResult};
use quick_xml::reader::NsReader;

pub(crate) const SOAP11_NS: &[u8] = b"http://schemas.xmlsoap.org/soap/envelope/";
pub(crate) const XROAD_NS: &[u8] = b"http://x-road.eu/xsd/xroad.xsd";

/// X-Road ids longer than this are not remembered (they only feed a statistic).
const MAX_ID_LEN: usize = 1024;

/// A request envelope; every `&str` is a slice of the request text.
#[derive(Debug)]
pub(crate) struct Envelope<'a> {
    /// `<SOAP-ENV:Envelope xmlns:...>` exactly as received, so the reply declares the same
    /// prefixes the echoed header uses.
    pub start_tag: &'a str,
    pub name: &'a str,
    pub header: Option<Header<'a>>,
    pub body_start_tag: &'a str,
    pub body_name: &'a str,
    /// A default namespace is in scope inside Body: unprefixed children we write would fall into it.
    pub body_default_ns: bool,
    pub wrapper: Wrapper<'a>,
    /// Text of the first `xrd:id` header field.
    pub xroad_id: Option<String>,
}

#[derive(Debug)]
pub(crate) enum Header<'a> {
    /// `<SOAP-ENV:Header/>`.
    Empty(&'a str),
    Full {
        start_tag: &'a str,
        /// Everything between the start and end tag, byte for byte.
        content: &'a str,
        name: &'a str,
    },
}

/// The body's single child element (the document/literal wrapper).
#[derive(Debug)]
pub(crate) struct Wrapper<'a> {
    pub qname: &'a str,
    pub prefix: Option<&'a str>,
    pub local: &'a str,
    /// Namespace URI as written in the declaring attribute.
    pub namespace: Option<String>,
    /// The wrapper's own `xmlns` declarations (each with a leading space), which its content
    /// may rely on.
    pub ns_decls: String,
    pub inner: &'a str,
}

enum Hdr<'a> {
    None,
    Open {
        start_tag: &'a str,
        content_from: usize,
        name: &'a str,
    },
    Done(Header<'a>),
}

struct WrapperHead<'a> {
    qname: &'a str,
    prefix: Option<&'a str>,
    local: &'a str,
    namespace: Option<String>,
    ns_decls: String,
}

/// Parses `src`. The error is a sentence for the `Client` fault.
pub(crate) fn parse(src: &str) -> Result<Envelope<'_>, String> {
    let mut r = NsReader::from_str(src);
    let mut depth = 0usize;
    let mut env: Option<(&str, &str)> = None;
    let mut env_closed = false;
    let mut hdr = Hdr::None;
    let mut body: Option<(&str, &str, bool)> = None;
    let mut in_body = false;
    let mut wrapper_open: Option<(WrapperHead<'_>, usize)> = None;
    let mut wrapper: Option<Wrapper<'_>> = None;
    let mut in_id = false;
    let mut xroad_id: Option<String> = None;

    loop {
        let before = pos(&r);
        let ev = r
            .read_event()
            .map_err(|e| format!("malformed XML near byte {}: {e}", r.error_position()))?;
        let after = pos(&r);
        match ev {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(ev, Event::Empty(_));
                check_attributes(e)?;
                // Names are sliced from the source (the tag starts `<name`) so they outlive the event.
                let tag = slice(src, before, after)?;
                let qname = e.name();
                let name = slice(tag, 1, 1 + qname.as_ref().len())?;
                if name.as_bytes() != qname.as_ref() {
                    return Err("malformed XML".into());
                }
                let (prefix, local) = match name.split_once(':') {
                    Some((p, l)) => (Some(p), l),
                    None => (None, name),
                };
                let ns = match r.resolve_element(qname).0 {
                    ResolveResult::Bound(n) => Some(n.0),
                    ResolveResult::Unbound => None,
                    ResolveResult::Unknown(p) => {
                        return Err(format!(
                            "undeclared namespace prefix '{}'",
                            String::from_utf8_lossy(&p)
                        ));
                    }
                };
                match depth + 1 {
                    1 => {
                        if env.is_some() {
                            return Err("content after the SOAP Envelope".into());
                        }
                        if ns != Some(SOAP11_NS) || local != "Envelope" {
                            return Err("the document is not a SOAP 1.1 Envelope".into());
                        }
                        if empty {
                            return Err("the SOAP Envelope is empty".into());
                        }
                        env = Some((tag, name));
                    }
                    2 => {
                        if ns != Some(SOAP11_NS) {
                            return Err(format!("unexpected element '{name}' in the Envelope"));
                        }
                        match local {
                            "Header" if matches!(hdr, Hdr::None) && body.is_none() => {
                                hdr = if empty {
                                    Hdr::Done(Header::Empty(tag))
                                } else {
                                    Hdr::Open {
                                        start_tag: tag,
                                        content_from: after,
                                        name,
                                    }
                                };
                            }
                            "Body" if body.is_none() => {
                                let default_ns = matches!(
                                    r.resolve_element(QName(b"x")).0,
                                    ResolveResult::Bound(_)
                                );
                                body = Some((tag, name, default_ns));
                                in_body = !empty;
                            }
                            _ => {
                                return Err(format!("unexpected element '{name}' in the Envelope"))
                            }
                        }
                    }
                    3 if in_body => {
                        if wrapper.is_some() || wrapper_open.is_some() {
                            return Err("the SOAP Body must have exactly one child element".into());
                        }
                        let head = WrapperHead {
                            qname: name,
                            prefix,
                            local,
                            namespace: ns.map(|n| String::from_utf8_lossy(n).into_owned()),
                            ns_decls: ns_decls(e)?,
                        };
                        if empty {
                            wrapper = Some(head.finish(""));
                        } else {
                            wrapper_open = Some((head, after));
                        }
                    }
                    3 if matches!(hdr, Hdr::Open { .. }) => {
                        in_id =
                            !empty && xroad_id.is_none() && ns == Some(XROAD_NS) && local == "id";
                        if in_id {
                            xroad_id = Some(String::new());
                        }
                    }
                    _ => {}
                }
                if !empty {
                    depth += 1;
                }
            }
            Event::End(_) => {
                match depth {
                    3 if in_body => {
                        if let Some((head, from)) = wrapper_open.take() {
                            wrapper = Some(head.finish(slice(src, from, before)?));
                        }
                    }
                    3 => in_id = false,
                    2 => {
                        if let Hdr::Open {
                            start_tag,
                            content_from,
                            name,
                        } = hdr
                        {
                            hdr = Hdr::Done(Header::Full {
                                start_tag,
                                content: slice(src, content_from, before)?,
                                name,
                            });
                        }
                        in_body = false;
                    }
                    1 => env_closed = true,
                    _ => {}
                }
                depth = depth.checked_sub(1).ok_or("unexpected end tag")?;
            }
            Event::Text(ref t) => {
                let blank = t.iter().all(u8::is_ascii_whitespace);
                if !blank && (depth == 0 || (in_body && depth == 2)) {
                    return Err(if depth == 0 {
                        "text outside the SOAP Envelope".into()
                    } else {
                        "the SOAP Body must have exactly one child element".into()
                    });
                }
                if in_id && depth == 3 {
                    let text = t.unescape().map_err(|e| format!("malformed XML: {e}"))?;
                    push_id(&mut xroad_id, &text);
                }
            }
            Event::CData(ref t) => {
                if depth == 0 || (in_body && depth == 2) {
                    return Err("unexpected CDATA section".into());
                }
                if in_id && depth == 3 {
                    push_id(&mut xroad_id, &String::from_utf8_lossy(t));
                }
            }
            Event::DocType(_) => return Err("DOCTYPE is not allowed in SOAP messages".into()),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }

    let (start_tag, name) = env.ok_or("the document has no SOAP Envelope")?;
    if !env_closed || depth != 0 {
        return Err("unexpected end of the document".into());
    }
    let (body_start_tag, body_name, body_default_ns) = body.ok_or("the SOAP Body is missing")?;
    let wrapper = wrapper.ok_or("the SOAP Body has no request element")?;
    Ok(Envelope {
        start_tag,
        name,
        header: match hdr {
            Hdr::Done(h) => Some(h),
            _ => None,
        },
        body_start_tag,
        body_name,
        body_default_ns,
        wrapper,
        xroad_id: xroad_id
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty()),
    })
}

impl<'a> WrapperHead<'a> {
    fn finish(self, inner: &'a str) -> Wrapper<'a> {
        Wrapper {
            qname: self.qname,
            prefix: self.prefix,
            local: self.local,
            namespace: self.namespace,
            ns_decls: self.ns_decls,
            inner,
        }
    }
}

fn push_id(id: &mut Option<String>, text: &str) {
    if let Some(s) = id {
        if s.len() + text.len() <= MAX_ID_LEN {
            s.push_str(text);
        }
    }
}

fn pos<R>(r: &NsReader<R>) -> usize {
    usize::try_from(r.buffer_position()).unwrap_or(usize::MAX)
}

fn slice(src: &str, from: usize, to: usize) -> Result<&str, String> {
    src.get(from..to).ok_or_else(|| "malformed XML".to_string())
}

fn as_str(b: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(b).map_err(|_| "malformed XML: name is not UTF-8".to_string())
}

/// quick-xml checks attributes only when they are read; reading them all makes a malformed
/// attribute a `Client` fault instead of something echoed back.
fn check_attributes(e: &BytesStart<'_>) -> Result<(), String> {
    for a in e.attributes() {
        a.map_err(|err| format!("malformed XML attribute: {err}"))?;
    }
    Ok(())
}

fn ns_decls(e: &BytesStart<'_>) -> Result<String, String> {
    let mut out = String::new();
    for a in e.attributes().flatten() {
        let key = a.key.as_ref();
        if key == b"xmlns" || key.starts_with(b"xmlns:") {
            out.push(' ');
            out.push_str(as_str(key)?);
            out.push_str("=\"");
            out.push_str(&attr_value(&a.value));
            out.push('"');
        }
    }
    Ok(out)
}

/// A raw attribute value re-quoted with `"` (it may have been written between `'`).
fn attr_value(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).replace('"', "&quot;")
}

/// Writes a reply envelope: the request's Envelope start tag and Header verbatim, then
/// `body_content` inside the request's Body start tag.
pub(crate) fn reply(env: &Envelope<'_>, body_content: &str) -> String {
    let header_len = match &env.header {
        Some(Header::Full {
            start_tag, content, ..
        }) => start_tag.len() + content.len() + 64,
        Some(Header::Empty(t)) => t.len(),
        None => 0,
    };
    let mut out = String::with_capacity(
        128 + env.start_tag.len() + header_len + env.body_start_tag.len() + body_content.len(),
    );
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(env.start_tag);
    match &env.header {
        Some(Header::Full {
            start_tag,
            content,
            name,
        }) => {
            out.push_str("\n    ");
            out.push_str(start_tag);
            out.push_str(content);
            out.push_str("</");
            out.push_str(name);
            out.push('>');
        }
        Some(Header::Empty(tag)) => {
            out.push_str("\n    ");
            out.push_str(tag);
        }
        None => {}
    }
    out.push_str("\n    ");
    out.push_str(env.body_start_tag);
    out.push_str("\n        ");
    out.push_str(body_content);
    out.push_str("\n    </");
    out.push_str(env.body_name);
    out.push_str(">\n</");
    out.push_str(env.name);
    out.push_str(">\n");
    out
}

/// `<op>Response` around the request wrapper's content, in the wrapper's namespace.
pub(crate) fn echo_body(w: &Wrapper<'_>) -> String {
    format!(
        "<{q}Response{d}>{inner}</{q}Response>",
        q = w.qname,
        d = w.ns_decls,
        inner = w.inner
    )
}

/// Opening and closing tags of `<op>Response` for content we write ourselves with unqualified
/// children (the X-Road convention): the wrapper gets an explicit prefix, and a default
/// namespace in scope is undeclared so the children stay unqualified.
pub(crate) fn own_wrapper(env: &Envelope<'_>) -> (String, String) {
    let w = &env.wrapper;
    match &w.namespace {
        Some(ns) => {
            let p = w.prefix.unwrap_or("ns");
            let undeclare = if env.body_default_ns {
                " xmlns=\"\""
            } else {
                ""
            };
            (
                format!(
                    "<{p}:{l}Response xmlns:{p}=\"{ns}\"{undeclare}>",
                    l = w.local,
                    ns = attr_value(ns.as_bytes())
                ),
                format!("</{p}:{l}Response>", l = w.local),
            )
        }
        None => (
            format!("<{}Response>", w.local),
            format!("</{}Response>", w.local),
        ),
    }
}

/// A SOAP 1.1 fault envelope. `code` is the local part of the fault code (`Client`,
/// `Server.InternalError`), qualified with the envelope prefix as SOAP 1.1 requires.
pub(crate) fn fault(code: &str, message: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <SOAP-ENV:Envelope xmlns:SOAP-ENV=\"http://schemas.xmlsoap.org/soap/envelope/\">\
         <SOAP-ENV:Body><SOAP-ENV:Fault>\
         <faultcode>SOAP-ENV:{code}</faultcode>\
         <faultstring>{msg}</faultstring>\
         </SOAP-ENV:Fault></SOAP-ENV:Body></SOAP-ENV:Envelope>\n",
        code = escape(code),
        msg = escape(message),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQ: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:x="http://x-road.eu/xsd/xroad.xsd" xmlns:i="http://x-road.eu/xsd/identifiers">
  <s:Header>
    <x:client i:objectType="MEMBER"><i:xRoadInstance>UA</i:xRoadInstance></x:client>
    <x:id>abc-<![CDATA[1]]>&amp;2</x:id>
    <x:protocolVersion>4.0</x:protocolVersion>
  </s:Header>
  <s:Body><p:getPet xmlns:p="urn:pets" xmlns:q="urn:q"><q:petId>42</q:petId></p:getPet></s:Body>
</s:Envelope>"#;

    #[test]
    fn parses_and_keeps_raw_parts() {
        let env = parse(REQ).unwrap();
        assert!(
            env.start_tag.starts_with("<s:Envelope ") && env.start_tag.ends_with("identifiers\">")
        );
        let Some(Header::Full { content, name, .. }) = &env.header else {
            panic!("header")
        };
        assert_eq!(*name, "s:Header");
        assert!(
            content.starts_with("\n    <x:client") && content.ends_with("</x:protocolVersion>\n  ")
        );
        assert_eq!(env.xroad_id.as_deref(), Some("abc-1&2"));
        assert_eq!(env.wrapper.local, "getPet");
        assert_eq!(env.wrapper.prefix, Some("p"));
        assert_eq!(env.wrapper.namespace.as_deref(), Some("urn:pets"));
        assert_eq!(env.wrapper.inner, "<q:petId>42</q:petId>");
        assert_eq!(
            echo_body(&env.wrapper),
            r#"<p:getPetResponse xmlns:p="urn:pets" xmlns:q="urn:q"><q:petId>42</q:petId></p:getPetResponse>"#
        );
        let out = reply(&env, "<x/>");
        assert!(out.contains(content));
        parse(&out.replace("<x/>", "<p:r xmlns:p=\"urn:p\"/>")).unwrap();
    }

    #[test]
    fn default_namespace_wrapper() {
        let src = r#"<Envelope xmlns="http://schemas.xmlsoap.org/soap/envelope/"><Body><op xmlns="urn:a"/></Body></Envelope>"#;
        let env = parse(src).unwrap();
        assert!(env.header.is_none());
        assert!(env.body_default_ns);
        assert_eq!(env.wrapper.inner, "");
        let (open, close) = own_wrapper(&env);
        assert_eq!(open, r#"<ns:opResponse xmlns:ns="urn:a" xmlns="">"#);
        assert_eq!(close, "</ns:opResponse>");
        parse(&reply(&env, &format!("{open}<a/>{close}"))).unwrap();
    }

    #[test]
    fn refusals() {
        let soap = r#"xmlns:s="http://schemas.xmlsoap.org/soap/envelope/""#;
        for bad in [
            "".to_string(),
            "not xml".to_string(),
            "<a/>".to_string(),
            format!("<s:Envelope {soap}/>"),
            format!("<s:Envelope {soap}><s:Body/></s:Envelope>"),
            format!("<s:Envelope {soap}><s:Body></s:Body></s:Envelope>"),
            format!("<s:Envelope {soap}><s:Body>text</s:Body></s:Envelope>"),
            format!("<s:Envelope {soap}><s:Body><a/><b/></s:Body></s:Envelope>"),
            format!("<s:Envelope {soap}><s:Body><a></s:Body></s:Envelope>"),
            format!("<s:Envelope {soap}><s:Body><a/></s:Body>"),
            format!("<s:Envelope {soap}><s:Body><a/></s:Body></s:Envelope><x/>"),
            format!("<s:Envelope {soap}><s:Body><a/></s:Body><s:Header/></s:Envelope>"),
            format!("<s:Envelope {soap}><s:Body><z:a/></s:Body></s:Envelope>"),
            format!("<s:Envelope {soap}><s:Body><a b=\"1\" b=\"2\"/></s:Body></s:Envelope>"),
            format!("<!DOCTYPE x><s:Envelope {soap}><s:Body><a/></s:Body></s:Envelope>"),
            r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><a/></s:Body></s:Envelope>"#.to_string(),
        ] {
            assert!(parse(&bad).is_err(), "accepted: {bad}");
        }
    }

    #[test]
    fn no_panic_on_any_prefix() {
        // Truncations at every byte exercise the error paths without panicking.
        for (i, _) in REQ.char_indices() {
            let _ = parse(&REQ[..i]);
        }
    }

    #[test]
    fn fault_escapes() {
        let f = fault("Client", "bad <thing> & more");
        assert!(f.contains("<faultcode>SOAP-ENV:Client</faultcode>"));
        assert!(f.contains("bad &lt;thing&gt; &amp; more"));
    }
}
