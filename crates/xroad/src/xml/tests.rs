use super::*;

const L: XmlLimits = XmlLimits::DEFAULT;

/// Reads a whole document; the first error, if any.
fn read(doc: &[u8], limits: &XmlLimits) -> Result<usize, XmlError> {
    let mut r = Reader::new(doc, limits)?;
    let mut events = 0;
    loop {
        match r.read_resolved()?.1 {
            Event::Eof => return Ok(events),
            _ => events += 1,
        }
    }
}

fn kind(doc: &str, limits: &XmlLimits) -> XmlErrorKind {
    read(doc.as_bytes(), limits).unwrap_err().kind()
}

fn attrs(n: usize) -> String {
    (0..n).map(|i| format!(" a{i}=\"v\"")).collect()
}

fn decls(n: usize) -> String {
    (0..n).map(|i| format!(" xmlns:p{i}=\"urn:{i}\"")).collect()
}

#[test]
fn reads_ordinary_documents() {
    let doc = r#"<?xml version="1.0" encoding="UTF-8"?>
<!-- c --><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" a="1 &amp; &#x41;&#65;">
<s:Body><x:op xmlns:x="urn:x"><![CDATA[<raw>]]>text &lt; more</x:op><?pi data?></s:Body></s:Envelope>"#;
    assert!(read(doc.as_bytes(), &L).unwrap() > 5);
}

#[test]
fn every_limit_is_checked() {
    let one = |field: fn(&mut XmlLimits), doc: String| {
        let mut l = L;
        field(&mut l);
        assert!(
            read(doc.as_bytes(), &L).is_ok(),
            "fits the defaults: {doc:.80}"
        );
        assert_eq!(kind(&doc, &l), XmlErrorKind::Limit, "{doc:.80}");
    };
    one(|l| l.max_depth = 3, "<a><b><c><d/></c></b></a>".into());
    one(|l| l.max_elements = 3, "<a><b/><c/><!--x--></a>".into());
    one(|l| l.max_attributes = 3, format!("<a{}/>", attrs(4)));
    one(|l| l.max_namespaces = 3, format!("<a{}/>", decls(4)));
    one(
        |l| l.max_namespaces_in_scope = 5,
        format!("<a{}><b{}/></a>", decls(3), decls(3)),
    );
    one(|l| l.max_name_bytes = 8, "<abcdefghi/>".into());
    one(|l| l.max_name_bytes = 8, "<a abcdefghi=\"\"/>".into());
    one(|l| l.max_attribute_bytes = 4, "<a b=\"12345\"/>".into());
    one(|l| l.max_text_bytes = 4, "<a>12345</a>".into());
    one(|l| l.max_text_bytes = 4, "<a><![CDATA[12345]]></a>".into());
}

#[test]
fn forbidden_characters_are_refused_written_or_referenced() {
    for doc in [
        "<a>\u{0}</a>",
        "<a>UA34\u{0}56789012</a>",
        "<a>\u{1}</a>",
        "<a>\u{c}</a>",
        "<a>\u{1b}[31m</a>",
        "<a>\u{fffe}</a>",
        "<a>\u{ffff}</a>",
        "<a b=\"\u{7}\"/>",
        "<a>&#0;</a>",
        "<a>&#x1;</a>",
        "<a>&#xFFFE;</a>",
        "<a>&#xD800;</a>",
        "<a>&#x110000;</a>",
        "<a b=\"&#27;\"/>",
        "\u{1}<a/>",
    ] {
        assert_eq!(
            kind(doc, &L),
            XmlErrorKind::ForbiddenCharacter,
            "{}",
            doc.escape_debug()
        );
    }
    for doc in [
        "<a>\t\r\n&#9;&#xA;&#13;\u{fffd}\u{10ffff}\u{ff9f}</a>",
        "<a>&#x10FFFF;</a>",
    ] {
        assert!(read(doc.as_bytes(), &L).is_ok(), "{}", doc.escape_debug());
    }
}

#[test]
fn attributes_as_xml_writes_them() {
    let doc = "<a b = 'x' c=\"y\"\n\td='&amp;' xmlns:p=\"urn:p\" p:e=\"1\" />";
    let mut r = Reader::new(doc.as_bytes(), &L).unwrap();
    match r.read().unwrap() {
        Event::Empty(e) => assert_eq!(e.attributes().count(), 5),
        other => panic!("{other:?}"),
    }
}

#[test]
fn malformed_documents_and_doctype() {
    assert_eq!(
        kind("<!DOCTYPE a [<!ENTITY e 'x'>]><a>&e;</a>", &L),
        XmlErrorKind::Doctype
    );
    for doc in [
        "<a b=\"1\" b=\"2\"/>",
        "<a>&foo;</a>",
        "<a>& b</a>",
        "<a b=\"<\"/>",
        "<a></b>",
        "<a b=1/>",
        "<a b/>",
        "<a b=\"1\"c=\"2\"/>",
        "<a b=\"1/>",
        "<a =\"1\"/>",
    ] {
        assert!(read(doc.as_bytes(), &L).is_err(), "{doc}");
    }
    let many = format!("<a{} a3=\"x\"/>", attrs(20));
    assert!(read(many.as_bytes(), &L).is_err(), "a duplicate among many");
    assert_eq!(
        read(b"<a>\xff</a>", &L).unwrap_err().kind(),
        XmlErrorKind::Malformed
    );
}

#[test]
fn scope_is_released_when_elements_end() {
    let l = XmlLimits {
        max_namespaces_in_scope: 4,
        ..L
    };
    // Siblings each declare 4: never more than 4 in scope at once.
    let doc = format!(
        "<r>{}</r>",
        format!("<a{}/><b{}></b>", decls(4), decls(4)).repeat(50)
    );
    assert!(read(doc.as_bytes(), &l).is_ok());
}
