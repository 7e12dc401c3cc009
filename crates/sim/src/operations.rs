//! `POST /rest/{operation}`: the registry operations of [`super::registries::OPERATIONS`] with
//! JSON bodies, answered by the same logic as their SOAP form.
//!
//! The body is the serde_json form of the operation's generated request type
//! (`brama_wsdl::registries::<registry>::<Operation>`); it is read into that type, validated, written
//! by yaserde as the request element and answered by [`super::registries::answer`]; the answer
//! is read back into the generated response type and sent as its serde_json form. So the JSON
//! both ways is exactly what the generated clients (and the router) use, and a REST answer
//! carries the same values as the SOAP answer to the same request.

use std::sync::atomic::Ordering;

use hyper::body::Incoming;
use hyper::header::ALLOW;
use hyper::{Method, Request, Response, StatusCode};
use quick_xml::events::Event;
use quick_xml::reader::Reader;
use serde::Serialize;

use super::registries::{self, Refusal, OPERATIONS};
use super::rest::{forced_fault, json_as, registry_trouble, with_retry_after, xroad_id, Trouble};
use super::{Body, Ctx, MAX_BODY};
use brama_wsdl::registries::visit_all;
use brama_wsdl::runtime::{Operation, OperationVisitor, Payload, Violation};

const APPLICATION_JSON: &str = "application/json";

/// An operation's error answer: its fault code and sentence, and the failed checks.
#[derive(Debug, Serialize)]
struct Problem {
    #[serde(rename = "type")]
    code: String,
    message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    violations: Vec<Violation>,
}

/// An error answer before it is written.
#[derive(Debug)]
struct Failure {
    status: StatusCode,
    problem: Problem,
}

impl Failure {
    fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Failure {
        Failure {
            status,
            problem: Problem {
                code: code.into(),
                message: message.into(),
                violations: Vec::new(),
            },
        }
    }

    fn response(&self) -> Response<Body> {
        json_as(self.status, APPLICATION_JSON, &self.problem)
    }
}

fn problem(status: StatusCode, code: &str, message: impl Into<String>) -> Response<Body> {
    Failure::new(status, code, message).response()
}

/// `Client.*` refusals are the caller's (400), `Server.*` the registry's (500).
fn refusal_status(code: &str) -> StatusCode {
    if code.starts_with("Client") {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    }
}

pub(crate) async fn handle(op: &str, req: Request<Incoming>, ctx: &Ctx) -> Response<Body> {
    let Some(&(op, registry)) = OPERATIONS.iter().find(|(o, _)| *o == op) else {
        return problem(
            StatusCode::NOT_FOUND,
            "Client.UnknownOperation",
            format!(
                "'{}' is not an operation of the simulated registries",
                op.chars().take(64).collect::<String>()
            ),
        );
    };
    if req.method() != Method::POST {
        let mut resp = problem(
            StatusCode::METHOD_NOT_ALLOWED,
            "Client.InvalidRequest",
            "only POST here",
        );
        resp.headers_mut()
            .insert(ALLOW, hyper::header::HeaderValue::from_static("POST"));
        return resp;
    }
    let stats = &ctx.stats;
    stats.requests.fetch_add(1, Ordering::Relaxed);
    let forced = forced_fault(&req);
    let id = xroad_id(&req);
    let body = match read(req).await {
        Ok(b) => b,
        Err(f) => {
            stats.faults.fetch_add(1, Ordering::Relaxed);
            return f.response();
        }
    };
    let mut call = Call {
        op,
        json: &body,
        ctx,
        id: id.as_deref(),
        out: None,
    };
    visit_all(&mut call);
    let answer = call.out.unwrap_or_else(|| {
        // Every entry of OPERATIONS is a generated operation (checked by a unit test).
        Err(Failure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Server.InternalError",
            format!("{op} has no generated types"),
        ))
    });
    let trouble = registry_trouble(registry, forced, ctx).await;
    let resp = match (trouble, answer) {
        (Some(Trouble::Maintenance(left)), _) => with_retry_after(
            problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "Server.Maintenance",
                super::maintenance_message(left),
            ),
            left,
        ),
        (Some(Trouble::Failure), Ok(_)) => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Server.InternalError",
            "Simulated internal error of the registry",
        ),
        (_, Ok(json)) => {
            return super::response(StatusCode::OK, APPLICATION_JSON, json);
        }
        (_, Err(f)) => f.response(),
    };
    stats.faults.fetch_add(1, Ordering::Relaxed);
    resp
}

async fn read(req: Request<Incoming>) -> Result<bytes::Bytes, Failure> {
    use http_body_util::{BodyExt, LengthLimitError, Limited};
    let body = req.into_body();
    if hyper::body::Body::size_hint(&body).lower() > MAX_BODY as u64 {
        return Err(Failure::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Client.InvalidRequest",
            format!("the request body is larger than {MAX_BODY} bytes"),
        ));
    }
    match Limited::new(body, MAX_BODY).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(Failure::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Client.InvalidRequest",
            format!("the request body is larger than {MAX_BODY} bytes"),
        )),
        Err(e) => Err(Failure::new(
            StatusCode::BAD_REQUEST,
            "Client.InvalidRequest",
            format!("the request body could not be read: {e}"),
        )),
    }
}

/// Finds the operation's generated types and runs it.
struct Call<'a> {
    op: &'a str,
    json: &'a [u8],
    ctx: &'a Ctx,
    id: Option<&'a str>,
    /// The JSON answer, or the error.
    out: Option<Result<Vec<u8>, Failure>>,
}

impl OperationVisitor for Call<'_> {
    fn visit<O: Operation>(&mut self) {
        if self.out.is_none() && O::NAME == self.op {
            self.out = Some(self.run::<O>());
        }
    }
}

impl Call<'_> {
    fn run<O: Operation>(&self) -> Result<Vec<u8>, Failure> {
        let bad = |message: String, violations: Vec<Violation>| Failure {
            status: StatusCode::BAD_REQUEST,
            problem: Problem {
                code: "Client.InvalidRequest".into(),
                message,
                violations,
            },
        };
        let request: O::Request = serde_json::from_slice(self.json).map_err(|e| {
            bad(
                format!(
                    "{}: the body is not a valid {} request: {e}",
                    O::NAME,
                    O::NAME
                ),
                Vec::new(),
            )
        })?;
        let violations = request.validate();
        if !violations.is_empty() {
            let fields: Vec<String> = violations.iter().map(ToString::to_string).collect();
            return Err(bad(
                format!("{}: invalid fields: {}", O::NAME, fields.join("; ")),
                violations,
            ));
        }
        let inner = request_content::<O>(&request).map_err(|e| internal(O::NAME, &e))?;
        // As the SOAP path: requests per operation and the X-Road ids per request content.
        self.ctx.stats.record_request(O::NAME, &inner, self.id);
        let ctx = self.ctx;
        match registries::answer(O::NAME, &inner, &ctx.dracs, ctx.cfg.dracs_processing) {
            Ok(content) => {
                let response = response_of::<O>(&content).map_err(|e| internal(O::NAME, &e))?;
                serde_json::to_vec(&response).map_err(|e| internal(O::NAME, &e.to_string()))
            }
            Err(Refusal { code, message }) => {
                Err(Failure::new(refusal_status(code), code, message))
            }
        }
    }
}

/// A bug of the simulator (its answer does not fit the WSDL), not of the request.
fn internal(op: &str, e: &str) -> Failure {
    tracing::warn!(operation = op, error = e, "registry simulator: REST answer");
    Failure::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Server.InternalError",
        format!("{op}: the simulated answer does not fit the WSDL: {e}"),
    )
}

/// The content of the request element yaserde writes for `request`: what the SOAP path hands
/// to the registry logic (the wrapper's children).
fn request_content<O: Operation>(request: &O::Request) -> Result<String, String> {
    let config = yaserde::ser::Config {
        perform_indent: false,
        write_document_declaration: false,
        indent_string: None,
    };
    let xml = yaserde::ser::to_string_with_config(request, &config).map_err(|e| e.to_string())?;
    let mut reader = Reader::from_str(&xml);
    loop {
        match reader.read_event().map_err(|e| e.to_string())? {
            Event::Start(_) => break,
            Event::Empty(_) => return Ok(String::new()),
            Event::Eof => return Err("yaserde wrote no element".into()),
            _ => {}
        }
    }
    let start = reader.buffer_position() as usize;
    let end = xml
        .rfind("</")
        .filter(|&e| e >= start)
        .ok_or("yaserde wrote no end tag")?;
    Ok(xml[start..end].to_string())
}

/// The generated response of `O` whose element holds `content` (unqualified children, as the
/// SOAP answer's wrapper).
fn response_of<O: Operation>(content: &str) -> Result<O::Response, String> {
    let element = O::Response::ELEMENT;
    let ns = quick_xml::escape::escape(O::NAMESPACE);
    let xml = format!("<tns:{element} xmlns:tns=\"{ns}\">{content}</tns:{element}>");
    yaserde::de::from_str(&xml).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every operation answered here has generated types, and its sample request goes through
    /// the same XML content as the SOAP path would carry.
    struct Check(Vec<&'static str>);

    impl OperationVisitor for Check {
        fn visit<O: Operation>(&mut self) {
            if OPERATIONS.iter().any(|(o, _)| *o == O::NAME) {
                let sample: O::Request =
                    yaserde::de::from_str(&O::INFO.sample_request_xml()).unwrap();
                let inner = request_content::<O>(&sample).unwrap();
                assert!(!inner.contains(O::Request::ELEMENT), "{}: {inner}", O::NAME);
                self.0.push(O::NAME);
            }
        }
    }

    #[test]
    fn every_operation_has_generated_types() {
        let mut c = Check(Vec::new());
        visit_all(&mut c);
        let mut all: Vec<&str> = OPERATIONS.iter().map(|(o, _)| *o).collect();
        all.sort_unstable();
        c.0.sort_unstable();
        assert_eq!(c.0, all);
    }

    #[test]
    fn refusal_statuses() {
        assert_eq!(
            refusal_status("Client.NotEligible"),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            refusal_status("Server.InternalError"),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
