//! `parse_response` on answers that are not the happy path, and `validate()` on typed values.

use super::fixture::codegen::{self, PingOp, SubmitApplication, SubmitApplicationOp};
use crate::runtime::{parse_response, ClientError};

const SOAP: &str = "http://schemas.xmlsoap.org/soap/envelope/";

fn ping(xml: &str) -> Result<codegen::PingResponse, ClientError> {
    parse_response::<PingOp>(xml.as_bytes())
}

fn malformed(xml: &str) -> String {
    match ping(xml) {
        Err(ClientError::Malformed(m)) => m,
        other => panic!("expected Malformed, got {other:?} for\n{xml}"),
    }
}

fn body(inner: &str) -> String {
    format!("<e:Envelope xmlns:e=\"{SOAP}\"><e:Header><x:deep xmlns:x=\"urn:x\"><x:y/></x:deep></e:Header><e:Body>{inner}</e:Body></e:Envelope>")
}

const PING_OK: &str =
    "<c:pingResponse xmlns:c=\"urn:brama:codegen:v1\"><code>OK</code><type>t</type><extra><a/></extra></c:pingResponse>";

#[test]
fn answers_are_read_leniently_where_it_is_safe() {
    let r = ping(&body(PING_OK)).unwrap();
    assert_eq!((r.code.as_str(), r.r#type.as_str()), ("OK", "t"));
    // Whitespace, comments and a processing instruction around the wrapper.
    let spaced = body(&format!("\n  <!-- x -->\n  {PING_OK}\n<?pi x?>"));
    assert_eq!(ping(&spaced).unwrap(), r);
    // Escapes and CDATA in values.
    let escaped = body("<c:pingResponse xmlns:c=\"urn:brama:codegen:v1\"><code>&lt;&amp;</code><type><![CDATA[a<b]]></type></c:pingResponse>");
    let r = ping(&escaped).unwrap();
    assert_eq!((r.code.as_str(), r.r#type.as_str()), ("<&", "a<b"));
}

#[test]
fn faults_in_their_usual_spellings() {
    let f = |code: &str, detail: &str| {
        body(&format!(
            "<e:Fault><faultcode>{code}</faultcode><faultstring> Заяву не знайдено </faultstring>{detail}</e:Fault>"
        ))
    };
    let e = ping(&f("e:Client.ApplicationNotFound", "")).unwrap_err();
    assert_eq!(e.fault_code(), Some("Client.ApplicationNotFound"));
    assert!(!e.retryable());
    assert_eq!(
        e.to_string(),
        "SOAP fault Client.ApplicationNotFound: Заяву не знайдено"
    );
    let e = ping(&f(
        "Server",
        "<detail><b:err xmlns:b=\"urn:b\">x</b:err></detail>",
    ))
    .unwrap_err();
    assert_eq!(
        e,
        ClientError::Fault {
            code: "Server".into(),
            string: "Заяву не знайдено".into(),
            detail: Some("<b:err xmlns:b=\"urn:b\">x</b:err>".into())
        }
    );
    assert!(e.retryable());
    let e = ping(&body("<e:Fault/>")).unwrap_err();
    assert_eq!(e.fault_code(), Some(""));
}

#[test]
fn malformed_answers_say_what_is_wrong() {
    assert!(malformed("").contains("empty document"));
    assert!(malformed("not xml").contains("no root element"));
    assert!(malformed("<html><body>502</body></html>").contains("not a SOAP 1.1 Envelope"));
    let soap12 =
        "<e:Envelope xmlns:e=\"http://www.w3.org/2003/05/soap-envelope\"><e:Body/></e:Envelope>";
    assert!(malformed(soap12).contains("not a SOAP 1.1 Envelope"));
    assert!(malformed(&format!(
        "<!DOCTYPE e [<!ENTITY a \"b\">]>{}",
        body(PING_OK)
    ))
    .contains("DOCTYPE"));
    assert!(malformed(&body("")).contains("exactly one child element"));
    assert!(malformed(&format!(
        "<e:Envelope xmlns:e=\"{SOAP}\"><e:Header/></e:Envelope>"
    ))
    .contains("body missing"));
    let m = malformed(&body(
        "<c:pingResponse xmlns:c=\"urn:other\"><code>OK</code><type>t</type></c:pingResponse>",
    ));
    assert!(
        m.contains("expected {urn:brama:codegen:v1}pingResponse")
            && m.contains("{urn:other}pingResponse"),
        "{m}"
    );
    let m = malformed(&body(
        "<c:pingResponse xmlns:c=\"urn:brama:codegen:v1\"><code>OK</code></c:pingResponse>",
    ));
    assert!(m.contains("pingResponse") && m.contains("required"), "{m}");
    let m = malformed(&body(
        &PING_OK
            .replace("<code>", "<u:code>")
            .replace("</code>", "</u:code>"),
    ));
    assert!(m.contains("undeclared namespace prefix"), "{m}");
    assert!(malformed(&body(PING_OK)[..60]).contains("end"));
    let m = malformed(&body(&PING_OK.replace("</type>", "</typo>")));
    assert!(m.contains("XML"), "{m}");
    let mut latin = body(PING_OK).into_bytes();
    latin.push(0xff);
    assert!(
        matches!(parse_response::<PingOp>(&latin), Err(ClientError::Malformed(m)) if m.contains("UTF-8"))
    );
    let deep = format!("{}{}", "<a>".repeat(200), "</a>".repeat(200));
    assert!(malformed(&body(&format!(
        "<c:pingResponse xmlns:c=\"urn:brama:codegen:v1\">{deep}</c:pingResponse>"
    )))
    .contains("nesting"));
    // A value that does not parse as its type.
    let bad = body(&PING_OK.replace("<code>OK</code>", "<code>OK</code><code>again</code>"));
    assert!(
        ping(&bad).is_ok(),
        "a repeated single field keeps the last value"
    );
    let sample = {
        use crate::runtime::Operation;
        SubmitApplicationOp::INFO.sample_request_xml()
    };
    let bad = sample.replace("<count>1</count>", "<count>many</count>");
    assert!(yaserde::de::from_str::<SubmitApplication>(&bad).is_err());
}

#[test]
fn validate_reports_paths() {
    let v: Vec<String> = SubmitApplication::default()
        .validate()
        .iter()
        .map(|v| v.to_string())
        .collect();
    for expected in [
        "applicant.surname: required value is missing",
        "applicant.birthDate: required value is missing",
        "amount: required value is missing",
        "appointment: required value is missing",
        "applicationNumber|lookupRnokpp|lookupDate: one of applicationNumber, lookupRnokpp, lookupDate is required",
    ] {
        assert!(v.iter().any(|x| x == expected), "missing '{expected}' in {v:#?}");
    }
    let mut req: SubmitApplication = yaserde::de::from_str(&{
        use crate::runtime::Operation;
        SubmitApplicationOp::INFO.sample_request_xml()
    })
    .unwrap();
    assert_eq!(req.validate(), []);
    req.channel = Some("POST".into());
    req.appointment = "24:01".into();
    req.children[0].rnokpp = Some("123".into());
    req.tags.push(String::new());
    req.amount = "1,5".into();
    req.applicant.birth_date = "15.01.2026".into();
    let v: Vec<String> = req.validate().iter().map(|v| v.path.clone()).collect();
    assert_eq!(
        v,
        [
            "applicant.birthDate",
            "children[0].rnokpp",
            "amount",
            "tags[1]",
            "channel",
            "appointment"
        ]
    );
    let time = crate::runtime::TextRules {
        patterns: codegen::TIME_PATTERNS,
        ..crate::runtime::TextRules::NONE
    };
    assert_eq!(time.problem("24:00"), None);
    assert!(codegen::CODE_RULES
        .problem("X")
        .unwrap()
        .contains("shorter than 2"));
    assert!(codegen::CODE_RULES
        .problem("XXXXX")
        .unwrap()
        .contains("longer than 4"));
}
