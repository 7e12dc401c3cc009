//! A SOAP 1.1 request as the simulator reads it (with the gateway's one envelope parser,
//! [`SoapMessage`]) and the writers for replies and faults.

use bytes::Bytes;
use quick_xml::escape::escape;

use brama_xroad::message::soap::{tag_declarations, tag_qname, SoapBody, SoapLimits, SoapMessage};

/// X-Road ids longer than this are not remembered (they only feed a statistic).
const MAX_ID_LEN: usize = 1024;

/// A parsed request and its Body's element.
#[derive(Debug)]
pub(crate) struct Envelope {
    msg: SoapMessage,
}

/// The body's single child element (the document/literal wrapper); every `&str` is a slice of
/// the request.
#[derive(Debug)]
pub(crate) struct Wrapper<'a> {
    pub qname: &'a str,
    pub prefix: Option<&'a str>,
    pub local: &'a str,
    pub namespace: Option<&'a str>,
    /// The wrapper's own `xmlns` declarations (each with a leading space), which its content
    /// may rely on.
    pub ns_decls: String,
    pub inner: &'a str,
    /// A default namespace is in scope inside Body: unprefixed children we write would fall
    /// into it.
    pub body_default_ns: bool,
}

/// Parses a request (UTF-8 text). The error is a sentence for the `Client` fault; a Body
/// without a request element is refused by [`Envelope::wrapper`].
pub(crate) fn parse(src: &str) -> Result<Envelope, String> {
    let msg = SoapMessage::parse(
        Bytes::copy_from_slice(src.as_bytes()),
        Some("utf-8"),
        &SoapLimits::default(),
    )
    .map_err(|e| e.message)?;
    Ok(Envelope { msg })
}

impl Envelope {
    /// The `xrd:id` header field, when it is not too long to remember.
    pub fn xroad_id(&self) -> Option<&str> {
        let id = self.msg.header.id.as_deref()?.trim();
        (!id.is_empty() && id.len() <= MAX_ID_LEN).then_some(id)
    }

    pub fn wrapper(&self) -> Result<Wrapper<'_>, String> {
        let (
            SoapBody::Element {
                local_name,
                namespace,
            },
            Some(e),
        ) = (&self.msg.body, self.msg.body_element())
        else {
            return Err("the SOAP Body has no request element".into());
        };
        // The parser checked the text is UTF-8.
        let text = |b| std::str::from_utf8(b).map_err(|_| "the request is not UTF-8".to_string());
        let tag = text(e.start_tag)?;
        let qname = tag_qname(tag);
        // The parser read every attribute already: these are well-formed.
        let ns_decls = tag_declarations(tag)
            .into_iter()
            .map(|(k, v)| format!(" {k}=\"{}\"", attr_value(v.as_bytes())))
            .collect();
        Ok(Wrapper {
            qname,
            prefix: qname.split_once(':').map(|(p, _)| p),
            local: local_name,
            namespace: namespace.as_deref(),
            ns_decls,
            inner: text(e.content)?,
            body_default_ns: e.default_ns_in_body,
        })
    }
}

/// A raw attribute value re-quoted with `"` (it may have been written between `'`).
fn attr_value(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).replace('"', "&quot;")
}

/// A reply envelope: the request's Envelope, its Header byte for byte, and `body_content` in
/// the request's Body, under a UTF-8 declaration.
pub(crate) fn reply(env: &Envelope, body_content: &str) -> String {
    let echoed = env.msg.with_body(body_content.as_bytes());
    let mut out = String::with_capacity(64 + echoed.len());
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&String::from_utf8_lossy(
        &echoed[env.msg.envelope_start()..],
    ));
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
pub(crate) fn own_wrapper(w: &Wrapper<'_>) -> (String, String) {
    match &w.namespace {
        Some(ns) => {
            let p = w.prefix.unwrap_or("ns");
            let undeclare = if w.body_default_ns { " xmlns=\"\"" } else { "" };
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
    <x:client i:objectType="MEMBER"><i:xRoadInstance>UA</i:xRoadInstance><i:memberClass>GOV</i:memberClass><i:memberCode>1</i:memberCode></x:client>
    <x:id>abc-<![CDATA[1]]>&amp;2</x:id>
    <x:protocolVersion>4.0</x:protocolVersion>
  </s:Header>
  <s:Body><p:getPet xmlns:p="urn:pets" xmlns:q="urn:q"><q:petId>42</q:petId></p:getPet></s:Body>
</s:Envelope>"#;

    #[test]
    fn parses_and_keeps_raw_parts() {
        let env = parse(REQ).unwrap();
        assert_eq!(env.xroad_id(), Some("abc-1&2"));
        let w = env.wrapper().unwrap();
        assert_eq!(w.local, "getPet");
        assert_eq!(w.prefix, Some("p"));
        assert_eq!(w.namespace, Some("urn:pets"));
        assert_eq!(w.inner, "<q:petId>42</q:petId>");
        assert_eq!(
            echo_body(&w),
            r#"<p:getPetResponse xmlns:p="urn:pets" xmlns:q="urn:q"><q:petId>42</q:petId></p:getPetResponse>"#
        );
        let out = reply(&env, "<x/>");
        let header = &REQ[REQ.find("<s:Envelope").unwrap()..REQ.find("<s:Body>").unwrap()];
        assert!(out.contains(header), "{out}");
        parse(&out.replace("<x/>", "<p:r xmlns:p=\"urn:p\"/>")).unwrap();
    }

    #[test]
    fn default_namespace_wrapper() {
        let src = r#"<Envelope xmlns="http://schemas.xmlsoap.org/soap/envelope/"><Body><op xmlns="urn:a"/></Body></Envelope>"#;
        let env = parse(src).unwrap();
        let w = env.wrapper().unwrap();
        assert!(w.body_default_ns);
        assert_eq!(w.inner, "");
        let (open, close) = own_wrapper(&w);
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
