//! What one request (or one application) of a run is: built from a template made once at start,
//! with what must differ per request (the X-Road message id, the applicant) filled in.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use http::uri::PathAndQuery;
use quick_xml::events::Event;
use rand::Rng;
use serde_json::Value;

use super::classify::{self, Outcome};
use super::http::Client;
use super::LoadError;

const NS_XROAD: &[u8] = b"http://x-road.eu/xsd/xroad.xsd";

/// A SOAP request file split around the text of its `xrd:id`, so each request is the two halves
/// and a fresh UUID: one allocation and two copies, no XML work per request.
#[derive(Clone, Debug)]
pub struct SoapTemplate {
    head: Vec<u8>,
    tail: Vec<u8>,
}

impl SoapTemplate {
    /// Finds `Envelope/Header/id` in the X-Road namespace (any prefix).
    pub fn new(xml: &[u8]) -> Result<SoapTemplate, LoadError> {
        let bad = |why: String| LoadError::Template(format!("SOAP request: {why}"));
        let mut reader = quick_xml::NsReader::from_reader(xml);
        // Open elements: 1 inside Envelope, 2 inside Header (the X-Road header fields).
        let mut depth = 0usize;
        let mut in_header = false;
        let mut text_start: Option<usize> = None;
        loop {
            let before = reader.buffer_position() as usize;
            let (ns, event) = reader
                .read_resolved_event()
                .map_err(|e| bad(format!("not well-formed XML at byte {before}: {e}")))?;
            let xroad =
                matches!(ns, quick_xml::name::ResolveResult::Bound(n) if n.as_ref() == NS_XROAD);
            match event {
                Event::Start(e) => {
                    let local = e.local_name();
                    if depth == 1 && local.as_ref() == b"Header" {
                        in_header = true;
                    } else if in_header && depth == 2 && xroad && local.as_ref() == b"id" {
                        text_start = Some(reader.buffer_position() as usize);
                    }
                    depth += 1;
                }
                Event::Empty(e)
                    if in_header && depth == 2 && xroad && e.local_name().as_ref() == b"id" =>
                {
                    // `<xrd:id/>` becomes `<xrd:id>…</xrd:id>`.
                    let name = e.name();
                    let after = reader.buffer_position() as usize;
                    let mut head = xml[..before].to_vec();
                    head.push(b'<');
                    head.extend_from_slice(name.as_ref());
                    head.push(b'>');
                    let mut tail = b"</".to_vec();
                    tail.extend_from_slice(name.as_ref());
                    tail.push(b'>');
                    tail.extend_from_slice(&xml[after..]);
                    return Ok(SoapTemplate { head, tail });
                }
                Event::End(_) => {
                    depth = depth.saturating_sub(1);
                    if let Some(start) = text_start.filter(|_| depth == 2) {
                        return Ok(SoapTemplate {
                            head: xml[..start].to_vec(),
                            tail: xml[before..].to_vec(),
                        });
                    }
                    if depth < 2 {
                        return Err(bad(format!(
                            "no id element of namespace {} in the SOAP Header",
                            String::from_utf8_lossy(NS_XROAD)
                        )));
                    }
                }
                Event::Eof => return Err(bad("no SOAP Header with an xrd:id".into())),
                _ => {}
            }
        }
    }

    /// The request with `id` as its message id.
    pub(crate) fn with_id(&self, id: &str) -> Bytes {
        let mut v = Vec::with_capacity(self.head.len() + id.len() + self.tail.len());
        v.extend_from_slice(&self.head);
        v.extend_from_slice(id.as_bytes());
        v.extend_from_slice(&self.tail);
        Bytes::from(v)
    }
}

/// A random (v4) UUID from the thread's fast generator, written without allocating.
pub(crate) fn fresh_id(buf: &mut [u8; uuid::fmt::Hyphenated::LENGTH]) -> &str {
    let id = uuid::Builder::from_random_bytes(rand::thread_rng().gen()).into_uuid();
    id.hyphenated().encode_lower(buf)
}

/// A REST request: everything fixed but the message id header.
#[derive(Clone, Debug)]
pub struct RestTemplate {
    pub method: http::Method,
    pub path: PathAndQuery,
    pub headers: http::HeaderMap,
    /// `x-road-id` or, for UXP, `uxp-queryid`.
    pub id_header: HeaderName,
    pub body: Bytes,
}

/// eMalyatko applications: a template varied per request (applicant RNOKPP, medical certificate
/// number, child's name) so that no two are alike, then followed until done.
#[derive(Clone, Debug)]
pub struct AppTemplate {
    json: Value,
    /// Random per run, so that runs against one store do not repeat each other's applicants.
    base: u64,
    pub poll: Duration,
}

/// Given names the router's name check accepts.
const NAMES: &[&str] = &[
    "Марія",
    "Олена",
    "Софія",
    "Дарина",
    "Анна",
    "Ірина",
    "Катерина",
    "Тарас",
    "Андрій",
    "Богдан",
];

impl AppTemplate {
    pub fn new(json: &[u8], poll: Duration) -> Result<AppTemplate, LoadError> {
        let json: Value = serde_json::from_slice(json)
            .map_err(|e| LoadError::Template(format!("application JSON: {e}")))?;
        if !json.is_object() {
            return Err(LoadError::Template(
                "application JSON: not an object".into(),
            ));
        }
        Ok(AppTemplate {
            json,
            base: rand::thread_rng().gen_range(100_000_000..900_000_000),
            poll,
        })
    }

    /// The `seq`-th application of the run.
    pub fn body(&self, seq: u64) -> Bytes {
        let mut v = self.json.clone();
        let n = (self.base + seq) % 1_000_000_000;
        if let Some(app) = v.get_mut("applicant").and_then(Value::as_object_mut) {
            app.insert("rnokpp".into(), rnokpp(n).into());
        }
        // Four digit groups; the first stays non-zero (the simulated eHealth has no `0000…`).
        v["medicalBirthCertificate"] = format!(
            "{:04}-{:04}-{:04}-{:04}",
            2026,
            n / 100_000_000 % 10_000,
            n / 10_000 % 10_000,
            n % 10_000
        )
        .into();
        if let Some(child) = v.get_mut("child").and_then(Value::as_object_mut) {
            child.insert(
                "givenName".into(),
                NAMES[(seq % NAMES.len() as u64) as usize].into(),
            );
        }
        Bytes::from(v.to_string())
    }
}

/// A valid RNOKPP from nine digits of `n`.
pub fn rnokpp(n: u64) -> String {
    brama_xroad::rnokpp::complete(&format!("{:09}", n % 1_000_000_000))
        .expect("nine digits below 10^9")
}

/// The request of a run.
#[derive(Clone, Debug)]
pub enum Scenario {
    Soap {
        template: SoapTemplate,
        path: PathAndQuery,
        headers: http::HeaderMap,
    },
    Rest(RestTemplate),
    Application {
        template: AppTemplate,
        submit: PathAndQuery,
        headers: http::HeaderMap,
    },
}

/// What one execution produced: its outcome and, for applications, the submit's latency.
pub struct Done {
    pub outcome: Outcome,
    pub accept: Option<Duration>,
}

impl From<Outcome> for Done {
    fn from(outcome: Outcome) -> Done {
        Done {
            outcome,
            accept: None,
        }
    }
}

impl Scenario {
    /// SOAP requests POSTed to the URL's path.
    pub fn soap(template: SoapTemplate, base_path: &str) -> Result<Scenario, LoadError> {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/xml; charset=UTF-8"),
        );
        headers.insert("soapaction", HeaderValue::from_static("\"\""));
        Ok(Scenario::Soap {
            template,
            path: path(&format!("{base_path}/"))?,
            headers,
        })
    }

    /// Applications POSTed to `{base}/api/v1/applications`.
    pub fn application(template: AppTemplate, base_path: &str) -> Result<Scenario, LoadError> {
        let mut headers = http::HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        Ok(Scenario::Application {
            template,
            submit: path(&format!("{base_path}/api/v1/applications"))?,
            headers,
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            Scenario::Soap { .. } => "soap",
            Scenario::Rest(_) => "rest",
            Scenario::Application { .. } => "application",
        }
    }

    /// Runs the `seq`-th request of the run.
    pub(crate) async fn exec(&self, client: &Client, seq: u64) -> Done {
        let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
        match self {
            Scenario::Soap {
                template,
                path,
                headers,
            } => {
                let body = template.with_id(fresh_id(&mut buf));
                let req = client.request(http::Method::POST, path, headers, body);
                match client.send(req).await {
                    Ok(r) => {
                        let ct = r.headers.get(http::header::CONTENT_TYPE);
                        let ct = ct.and_then(|v| v.to_str().ok());
                        classify::soap(r.status, ct, &r.body).into()
                    }
                    Err(o) => o.into(),
                }
            }
            Scenario::Rest(t) => {
                let mut req = client.request(t.method.clone(), &t.path, &t.headers, t.body.clone());
                if let Ok(v) = HeaderValue::from_str(fresh_id(&mut buf)) {
                    req.headers_mut().insert(t.id_header.clone(), v);
                }
                match client.send(req).await {
                    Ok(r) => classify::rest(r.status, &r.headers, &r.body).into(),
                    Err(o) => o.into(),
                }
            }
            Scenario::Application {
                template,
                submit,
                headers,
            } => application(client, template, submit, headers, seq).await,
        }
    }
}

fn path(p: &str) -> Result<PathAndQuery, LoadError> {
    p.parse()
        .map_err(|e| LoadError::Usage(format!("'{p}' is not a request path: {e}")))
}

/// Submits one application and polls its status until it is `completed` or `failed`.
async fn application(
    client: &Client,
    t: &AppTemplate,
    submit: &PathAndQuery,
    headers: &http::HeaderMap,
    seq: u64,
) -> Done {
    let started = Instant::now();
    let req = client.request(http::Method::POST, submit, headers, t.body(seq));
    let r = match client.send(req).await {
        Ok(r) => r,
        Err(o) => return o.into(),
    };
    let accept = Some(started.elapsed());
    let done = |outcome| Done { outcome, accept };
    if r.status != 202 {
        // The router's errors are JSON `{type, message}`; anything else by its status.
        return done(match classify::json_type(&r.body) {
            Some(t) => Outcome::fault(&t),
            None => Outcome::Status(r.status),
        });
    }
    let Some(id) = serde_json::from_slice::<Value>(&r.body)
        .ok()
        .and_then(|v| v["id"].as_str().map(str::to_string))
        .filter(|id| id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
    else {
        return done(Outcome::fault("NoApplicationId"));
    };
    let Ok(status_path) = path(&format!("{}/{id}", submit.path())) else {
        return done(Outcome::fault("NoApplicationId"));
    };
    let none = http::HeaderMap::new();
    loop {
        tokio::time::sleep(t.poll).await;
        let req = client.request(http::Method::GET, &status_path, &none, Bytes::new());
        let r = match client.send(req).await {
            Ok(r) => r,
            Err(o) => return done(o),
        };
        if r.status != 200 {
            return done(Outcome::Status(r.status));
        }
        let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
        match v["status"].as_str() {
            Some("completed") => return done(Outcome::Ok),
            Some("failed") => return done(failed_code(&v)),
            Some(_) => {}
            None => return done(Outcome::fault("NoApplicationStatus")),
        }
    }
}

/// A failed application by the X-Road fault of its first failed service.
fn failed_code(v: &Value) -> Outcome {
    let code = v["services"].as_array().and_then(|s| {
        s.iter()
            .filter(|d| d["state"] == "failed")
            .find_map(|d| d["lastError"]["code"].as_str())
    });
    Outcome::fault(code.unwrap_or("ApplicationFailed"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> Vec<u8> {
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/soap/getBirthRecord.xml"
        ))
        .unwrap()
    }

    fn id_of(xml: &[u8]) -> String {
        let m = brama_xroad::message::soap::SoapMessage::parse(
            Bytes::copy_from_slice(xml),
            None,
            &Default::default(),
        )
        .unwrap();
        m.header.id.unwrap()
    }

    #[test]
    fn the_id_text_is_replaced_and_nothing_else() {
        let xml = example();
        let t = SoapTemplate::new(&xml).unwrap();
        let mut buf = [0u8; 36];
        let id = fresh_id(&mut buf).to_string();
        let out = t.with_id(&id);
        assert_eq!(id_of(&out), id);
        let original = String::from_utf8(xml).unwrap();
        let expected = original.replace("5f0c6c3e-8a1d-4c55-9d2b-6a2f1e7b9c01", &id);
        assert_eq!(std::str::from_utf8(&out).unwrap(), expected);
        // Fresh every time, and a valid v4 UUID.
        let mut b2 = [0u8; 36];
        assert_ne!(fresh_id(&mut b2), id);
        assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 4);
    }

    #[test]
    fn any_prefix_and_empty_ids_work_and_body_ids_are_left_alone() {
        let xml = r#"<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/" xmlns:q="http://x-road.eu/xsd/xroad.xsd"><e:Header><q:userId>u</q:userId><id xmlns="urn:other">keep</id><q:id/></e:Header><e:Body><x:b xmlns:x="urn:x"><q:id>body</q:id></x:b></e:Body></e:Envelope>"#;
        let t = SoapTemplate::new(xml.as_bytes()).unwrap();
        let out = String::from_utf8(t.with_id("N").to_vec()).unwrap();
        assert_eq!(out, xml.replace("<q:id/>", "<q:id>N</q:id>"));
        let prefixed = "<S:Envelope xmlns:S=\"http://schemas.xmlsoap.org/soap/envelope/\"><S:Header><xroad:id xmlns:xroad=\"http://x-road.eu/xsd/xroad.xsd\">\n  old\n</xroad:id></S:Header><S:Body/></S:Envelope>";
        let t = SoapTemplate::new(prefixed.as_bytes()).unwrap();
        assert!(String::from_utf8(t.with_id("N").to_vec())
            .unwrap()
            .contains("<xroad:id xmlns:xroad=\"http://x-road.eu/xsd/xroad.xsd\">N</xroad:id>"));
    }

    #[test]
    fn requests_without_an_id_are_refused_at_start() {
        for xml in [
            "<e:Envelope xmlns:e=\"http://schemas.xmlsoap.org/soap/envelope/\"><e:Header/><e:Body/></e:Envelope>",
            "<e:Envelope xmlns:e=\"http://schemas.xmlsoap.org/soap/envelope/\"><e:Header><id>x</id></e:Header><e:Body/></e:Envelope>",
            "<e:Envelope",
            "",
            "--boundary\r\n",
        ] {
            assert!(SoapTemplate::new(xml.as_bytes()).is_err(), "{xml}");
        }
    }

    #[test]
    fn applications_differ_and_stay_valid() {
        let json = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/applications/all-services.json"
        ))
        .unwrap();
        let t = AppTemplate::new(&json, Duration::from_millis(10)).unwrap();
        let mut seen = std::collections::HashSet::new();
        for seq in 0..50 {
            let body = t.body(seq);
            brama_router::application::parse(&body).unwrap_or_else(|e| panic!("{seq}: {e:?}"));
            let v: Value = serde_json::from_slice(&body).unwrap();
            assert!(seen.insert(v["applicant"]["rnokpp"].as_str().unwrap().to_string()));
        }
        assert!(brama_xroad::rnokpp::valid(&rnokpp(0)));
        assert!(brama_xroad::rnokpp::valid(&rnokpp(123_456_789)));
    }
}
