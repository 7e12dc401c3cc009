//! Every parser of untrusted input costs time linear in its input. For each, an input of the
//! worst shape its limits allow (most attributes and namespace declarations per element, most
//! entries, longest values) is parsed at two sizes, sixteen times apart: the larger must take
//! less than 40 times as long as the smaller (linear is about 16, n log n about 18, quadratic 256).
//! Each time is the best of several runs, and the parsers run one after another in one test, so
//! the other tests' threads disturb the ratio as little as possible.

use std::time::{Duration, Instant};

use bytes::Bytes;

use brama::message::soap::SoapLimits;
use brama::message::SoapEnvelope;
use brama::sign::c14n::{self, Method, Select};
use brama::sign::hashchain;
use brama::xml::{Reader, XmlLimits};

const L: XmlLimits = XmlLimits::DEFAULT;
const FACTOR: usize = 16;
const RATIO: f64 = 40.0;

/// `make(n)` and `make(FACTOR * n)`, parsed; the ratio of their best times.
fn growth(make: &dyn Fn(usize) -> Vec<u8>, n: usize, parse: &dyn Fn(&[u8])) -> (f64, Duration) {
    let (small, large) = (make(n), make(FACTOR * n));
    let best = |doc: &[u8]| {
        (0..5)
            .map(|_| {
                let t = Instant::now();
                parse(doc);
                t.elapsed()
            })
            .min()
            .unwrap()
    };
    parse(&small);
    let (s, l) = (best(&small), best(&large));
    (l.as_secs_f64() / s.as_secs_f64(), s)
}

/// A start tag with half the attributes and half the namespace declarations one element may
/// have: the most work per byte the limits let through.
fn heavy_tag(name: &str) -> String {
    let decls: String = (0..L.max_namespaces / 2)
        .map(|i| format!(" xmlns:n{i}=\"urn:n{i}\""))
        .collect();
    let attrs: String = (0..L.max_attributes / 2)
        .map(|i| format!(" a{i}=\"&amp;v{i}\""))
        .collect();
    format!("<{name}{decls}{attrs}")
}

fn heavy_elements(n: usize) -> String {
    let tag = heavy_tag("e");
    format!("{tag}>text &lt; more</e>").repeat(n)
}

fn envelope(body: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xroad="http://x-road.eu/xsd/xroad.xsd" xmlns:id="http://x-road.eu/xsd/identifiers"><SOAP-ENV:Header><xroad:client id:objectType="SUBSYSTEM"><id:xRoadInstance>SEVDEIR-TEST</id:xRoadInstance><id:memberClass>GOV</id:memberClass><id:memberCode>00000001</id:memberCode><id:subsystemCode>DIIA</id:subsystemCode></xroad:client><xroad:service id:objectType="SERVICE"><id:xRoadInstance>SEVDEIR-TEST</id:xRoadInstance><id:memberClass>GOV</id:memberClass><id:memberCode>00000002</id:memberCode><id:subsystemCode>DRACS</id:subsystemCode><id:serviceCode>getBirthRecord</id:serviceCode><id:serviceVersion>v1</id:serviceVersion></xroad:service><xroad:id>1</xroad:id><xroad:protocolVersion>4.0</xroad:protocolVersion></SOAP-ENV:Header><SOAP-ENV:Body><d:getBirthRecordResponse xmlns:d="http://minjust.gov.ua/dracs/v1">{body}</d:getBirthRecordResponse></SOAP-ENV:Body></SOAP-ENV:Envelope>"#
    )
}

#[test]
fn every_parser_of_untrusted_input_is_linear() {
    let mut report = Vec::new();
    let mut check =
        |name: &str, n: usize, make: &dyn Fn(usize) -> Vec<u8>, parse: &dyn Fn(&[u8])| {
            let (ratio, base) = growth(make, n, parse);
            report.push(format!("{name}: {ratio:.1}x (base {base:?})"));
            assert!(
                ratio < RATIO,
                "{name}: {FACTOR} times the input took {ratio:.1} times as long\n{}",
                report.join("\n")
            );
        };

    check(
        "xml reader",
        150,
        &|n| format!("<r>{}</r>", heavy_elements(n)).into_bytes(),
        &|d| {
            let mut r = Reader::new(d, &L).unwrap();
            while !matches!(r.read_resolved().unwrap().1, quick_xml::events::Event::Eof) {}
        },
    );

    let soap = SoapLimits::new(L);
    check(
        "SOAP envelope",
        150,
        &|n| envelope(&heavy_elements(n)).into_bytes(),
        &|d| {
            SoapEnvelope::from_http(
                Some("text/xml; charset=UTF-8"),
                Bytes::copy_from_slice(d),
                &soap,
                64,
            )
            .unwrap();
        },
    );

    check(
        "transport multipart",
        150,
        &|n| {
            format!(
            "--b\r\nContent-Type: text/xml; charset=UTF-8\r\n\r\n{}\r\n--b\r\nContent-Type: signature/bdoc-1.0/ts\r\n\r\n<sig/>\r\n--b--\r\n",
            envelope(&heavy_elements(n))
        )
        .into_bytes()
        },
        &|d| {
            brama::transport::codec::decode(
                "multipart/mixed; boundary=b",
                None,
                Bytes::copy_from_slice(d),
                &soap,
                64,
            )
            .unwrap();
        },
    );

    check(
        "C14N",
        100,
        &|n| format!("<r Id=\"x\">{}</r>", heavy_elements(n)).into_bytes(),
        &|d| {
            c14n::canonicalize(d, Select::ById("x"), &Method::Inclusive, &L).unwrap();
        },
    );

    check(
        "signature document",
        150,
        &|n| {
            format!(
            "<ds:Signature xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm=\"x\"/><ds:SignatureMethod Algorithm=\"y\"/></ds:SignedInfo><ds:SignatureValue>AAAA</ds:SignatureValue><ds:Object>{}</ds:Object></ds:Signature>",
            heavy_elements(n)
        )
        .into_bytes()
        },
        &|d| {
            // Refused at its end (no certificate), after reading all of it.
            assert!(brama::sign::xades::parse(d, &L).is_err());
        },
    );

    check(
        "hash chain",
        500,
        &|n| {
            let value = "<hc:HashValue><ds:DigestValue>AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=</ds:DigestValue></hc:HashValue>";
            format!(
            "<hc:HashChain xmlns:hc=\"http://cyber.ee/hashchain\" xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"><hc:DefaultDigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"/><hc:HashStep id=\"s\">{}</hc:HashStep></hc:HashChain>",
            value.repeat(n)
        )
        .into_bytes()
        },
        &|d| {
            let result = "<hc:HashChainResult xmlns:hc=\"http://cyber.ee/hashchain\" xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\" URI=\"/c.xml#s\"><ds:DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"/><ds:DigestValue>AAAA</ds:DigestValue></hc:HashChainResult>";
            let resolve = |_: &str| Some(std::borrow::Cow::Borrowed(d));
            assert!(hashchain::verify(result.as_bytes(), &resolve, &[], &L).is_err());
        },
    );

    check(
        "global configuration",
        800,
        &|n| {
            let member = |i: usize| {
                format!("<member id=\"m{i}\"><memberClass><code>GOV</code><description>x</description></memberClass><memberCode>{i:08}</memberCode><name>Member {i}</name><subsystem id=\"s{i}\"><subsystemCode>S{i}</subsystemCode></subsystem></member>")
            };
            format!(
            "<tns:conf xmlns:tns=\"http://x-road.eu/xsd/xroad.xsd\"><instanceIdentifier>SEVDEIR-TEST</instanceIdentifier>{}</tns:conf>",
            (0..n).map(member).collect::<String>()
        )
        .into_bytes()
        },
        &|d| {
            let _ = brama::globalconf::SharedParams::parse(d);
        },
    );

    check(
        "wrap-mode body",
        100,
        &|n| {
            let decls: String = (0..60)
                .map(|i| format!(" xmlns:p{i}=\"urn:{i}\""))
                .collect();
            format!(
            "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"{decls}><s:Body>{}</s:Body></s:Envelope>",
            heavy_elements(n)
        )
        .into_bytes()
        },
        &|d| {
            brama::router::wrap::body_content(d, &L, 64 << 20).unwrap();
        },
    );

    check(
        "registry answer (yaserde)",
        100,
        &|n| {
            envelope(&format!(
                "<d:birthRecord><d:recordNumber>1</d:recordNumber></d:birthRecord>{}",
                heavy_elements(n)
            ))
            .into_bytes()
        },
        &|d| {
            let _ = brama::wsdl::runtime::parse_response::<
                brama::registries::dracs::GetBirthRecordOp,
            >(d);
        },
    );

    check(
        "REST header part",
        60,
        &|n| {
            let mut h = String::from("GET\r\n/r1/SEVDEIR-TEST/GOV/00000002/DRACS/test?q=1\r\n");
            for i in 0..n {
                h += &format!("x-custom-{i}: {}\r\n", "v".repeat(200));
            }
            h += "x-road-client: SEVDEIR-TEST/GOV/00000001/DIIA\r\nx-road-id: 1\r\nx-road-request-id: 2\r\n";
            h.into_bytes()
        },
        &|d| {
            brama::rest::header_part::RestRequest::parse(Bytes::copy_from_slice(d)).unwrap();
        },
    );

    check(
        "OpenAPI description",
        300,
        &|n| {
            let paths: Vec<String> = (0..n)
            .map(|i| format!("\"/p{i}/{{id}}/x\": {{\"get\": {{\"responses\": {{\"200\": {{\"description\": \"ok\"}}}}}}}}"))
            .collect();
            format!("{{\"openapi\": \"3.0.3\", \"info\": {{\"title\": \"t\", \"version\": \"1\"}}, \"paths\": {{{}}}}}", paths.join(","))
            .into_bytes()
        },
        &|d| {
            let _ = brama::openapi::parse(d);
        },
    );

    check(
        "application",
        300,
        &|n| {
            let extra: Vec<String> = (0..n)
                .map(|i| format!("\"x{i}\": \"{}\"", "v".repeat(100)))
                .collect();
            format!("{{{}}}", extra.join(",")).into_bytes()
        },
        &|d| {
            let _ = brama::router::application::parse(d);
        },
    );

    println!("{}", report.join("\n"));
}
