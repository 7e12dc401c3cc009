//! The simulator's REST side, the services behind X-Road REST (r1) calls:
//!
//! - `GET /ehealth/declarations?patient=<uuid>`, `GET /ehealth/declarations/{id}`: the eHealth
//!   declarations lookup of `openapi/ehealth-declarations.yaml` ([`super::declarations`]), with
//!   the ehealth registry's latency, error rate and outages.
//! - `GET /openapi/<name>`: the OpenAPI descriptions loaded at start.
//! - `/echo`, `/echo/**`, any method: what arrived, or the body itself with `?raw` ([`echo`]).
//! - `/status/{code}`, any method: that status, for tests that provider errors pass through.
//! - `POST /rest/{operation}`: the registry operations with JSON bodies ([`super::operations`]).
//!
//! Errors are JSON: `{"error": {"type", "message"}}` (the operations answer `{"type",
//! "message"}`, their fault code and sentence).

use std::sync::atomic::Ordering;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE, LOCATION, RETRY_AFTER};
use hyper::{Method, Request, Response, StatusCode};
use serde::Serialize;

use super::declarations::{self, Refused};
use super::echo::{self, consume, ECHO_MAX_BODY};
use super::{full, openapi_files, operations, Body, Ctx, MAX_BODY};

pub(crate) const JSON_UTF8: &str = "application/json; charset=utf-8";

/// A REST route, from the request line alone.
#[derive(Debug, PartialEq)]
pub(crate) enum Route {
    Echo,
    Status(String),
    Declarations,
    /// Everything after `/ehealth/declarations/` (one segment when it names a declaration).
    Declaration(String),
    OpenApi(String),
    Operation(String),
}

/// The REST route of `req`, or `None` for the SOAP and WSDL side.
///
/// `/echo` is also where SOAP test services are configured (`testQuery`, `getState`), so a
/// `POST` there stays SOAP when it looks like SOAP: a `text/xml` or `multipart/related` body,
/// no `?raw`, and no `x-road-service` header (the provider adds that one to REST calls only).
pub(crate) fn route<B>(req: &Request<B>) -> Option<Route> {
    let path = req.uri().path();
    if path == "/echo" || path.starts_with("/echo/") {
        return (!soap_post(req)).then_some(Route::Echo);
    }
    if let Some(code) = path.strip_prefix("/status/") {
        return Some(Route::Status(code.to_string()));
    }
    if let Some(rest) = path.strip_prefix("/ehealth/declarations") {
        return match rest {
            "" => Some(Route::Declarations),
            _ => rest
                .strip_prefix('/')
                .map(|id| Route::Declaration(id.to_string())),
        };
    }
    if let Some(name) = path.strip_prefix("/openapi/") {
        return Some(Route::OpenApi(name.to_string()));
    }
    if let Some(op) = path.strip_prefix("/rest/") {
        return Some(Route::Operation(op.to_string()));
    }
    None
}

fn soap_post<B>(req: &Request<B>) -> bool {
    let media = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    req.method() == Method::POST
        && matches!(media.as_deref(), Some("text/xml" | "multipart/related"))
        && !req.headers().contains_key("x-road-service")
        && !query_has(req.uri().query(), "raw")
}

pub(crate) async fn handle(route: Route, req: Request<Incoming>, ctx: &Ctx) -> Response<Body> {
    ctx.stats.rest_requests.fetch_add(1, Ordering::Relaxed);
    if let Some(id) = xroad_id(&req) {
        ctx.stats.record_id(&id);
    }
    match route {
        Route::Echo => echo::handle(req).await,
        Route::Status(code) => status(&code, req).await,
        Route::Declarations => declarations(None, req, ctx).await,
        Route::Declaration(id) => declarations(Some(&id), req, ctx).await,
        Route::OpenApi(name) => openapi(&name, req, ctx).await,
        Route::Operation(op) => operations::handle(&op, req, ctx).await,
    }
}

/// The `x-road-id` header the provider's security server adds.
pub(crate) fn xroad_id(req: &Request<Incoming>) -> Option<String> {
    req.headers()
        .get("x-road-id")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

/// `status` with a JSON body.
pub(crate) fn json_as(
    status: StatusCode,
    content_type: &'static str,
    value: &impl Serialize,
) -> Response<Body> {
    // Serialising our own plain structs and maps cannot fail; an empty body would show it.
    let body = serde_json::to_vec(value).unwrap_or_default();
    super::response(status, content_type, body)
}

/// `status` with a JSON body, `application/json; charset=utf-8`.
pub(crate) fn json(status: StatusCode, value: &impl Serialize) -> Response<Body> {
    json_as(status, JSON_UTF8, value)
}

/// `{"error": {"type", "message"}}`.
pub(crate) fn error(status: StatusCode, kind: &str, message: &str) -> Response<Body> {
    json(
        status,
        &serde_json::json!({ "error": { "type": kind, "message": message } }),
    )
}

fn not_allowed(allow: &'static str) -> Response<Body> {
    let mut resp = error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        &format!("only {allow} here"),
    );
    resp.headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    resp
}

/// Whether the query has a parameter `name` (with or without a value).
pub(crate) fn query_has(query: Option<&str>, name: &str) -> bool {
    query.is_some_and(|q| {
        q.split('&')
            .any(|p| p.split('=').next().is_some_and(|k| k == name))
    })
}

/// The first value of query parameter `name`, percent-decoded (`+` is a space).
pub(crate) fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        (k == name).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `/status/{code}`: that status with `X-Sim-Status` and `{"status", "message"}` (no body for
/// 204 and 304); a 3xx with `?location=<url>` carries it as `Location`. The request body is read
/// first, so a client still sending it is not cut off.
async fn status(code: &str, req: Request<Incoming>) -> Response<Body> {
    let Some(status) = code
        .parse::<u16>()
        .ok()
        .filter(|c| (200..=599).contains(c))
        .and_then(|c| StatusCode::from_u16(c).ok())
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &format!(
                "'{}' is not a status from 200 to 599",
                code.chars().take(32).collect::<String>()
            ),
        );
    };
    let location = query_param(req.uri().query(), "location");
    if let Err(e) = consume(req.into_body(), ECHO_MAX_BODY).await {
        return error(e.status(), "invalid_request", &e.message());
    }
    let mut resp = if matches!(status.as_u16(), 204 | 304) {
        let mut r = Response::new(full(bytes::Bytes::new()));
        *r.status_mut() = status;
        r
    } else {
        json(
            status,
            &serde_json::json!({ "status": status.as_u16(), "message": "simulated" }),
        )
    };
    resp.headers_mut()
        .insert("x-sim-status", HeaderValue::from(status.as_u16()));
    if let Some(location) = location.filter(|_| status.is_redirection()) {
        match HeaderValue::from_str(&location) {
            Ok(v) => {
                resp.headers_mut().insert(LOCATION, v);
            }
            Err(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "location is not a usable header value",
                )
            }
        }
    }
    resp
}

/// A registry's maintenance and simulated failures, after its latency: `None` when
/// the request is to be answered.
pub(crate) async fn registry_trouble(
    registry: &str,
    req_forced: bool,
    ctx: &Ctx,
) -> Option<Trouble> {
    let (latency, rate) = ctx.behaviour(Some(registry));
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if let Some(until) = ctx.outage_until(registry) {
        let left = until.saturating_duration_since(std::time::Instant::now());
        return Some(Trouble::Maintenance(left));
    }
    (req_forced || super::roll(rate)).then_some(Trouble::Failure)
}

pub(crate) enum Trouble {
    Maintenance(Duration),
    Failure,
}

/// `503` with `Retry-After`, for a registry under maintenance.
pub(crate) fn with_retry_after(mut resp: Response<Body>, left: Duration) -> Response<Body> {
    resp.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(left.as_secs() + 1));
    resp
}

/// The request header `x-sim-fault: 1` (or `true`) forces a simulated failure.
pub(crate) fn forced_fault(req: &Request<Incoming>) -> bool {
    req.headers()
        .get("x-sim-fault")
        .is_some_and(|v| v.as_bytes() == b"1" || v.as_bytes().eq_ignore_ascii_case(b"true"))
}

async fn declarations(id: Option<&str>, req: Request<Incoming>, ctx: &Ctx) -> Response<Body> {
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return not_allowed("GET, HEAD");
    }
    let patient = query_param(req.uri().query(), "patient");
    let forced = forced_fault(&req);
    if let Err(e) = consume(req.into_body(), MAX_BODY as u64).await {
        return error(e.status(), "invalid_request", &e.message());
    }
    match registry_trouble("ehealth", forced, ctx).await {
        Some(Trouble::Maintenance(left)) => {
            return with_retry_after(
                error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "service_unavailable",
                    &super::maintenance_message(left),
                ),
                left,
            )
        }
        Some(Trouble::Failure) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "Simulated internal error of the registry",
            )
        }
        None => {}
    }
    let answer = match (id, patient) {
        (Some(id), _) if id.contains('/') => Err(Refused::NotFound(
            "Такого ресурсу немає (no such resource)".into(),
        )),
        (Some(id), _) => declarations::by_id(id).map(|d| json(StatusCode::OK, &d)),
        (None, Some(patient)) => {
            declarations::for_patient(&patient).map(|d| json(StatusCode::OK, &d))
        }
        (None, None) => Err(Refused::Invalid(
            "patient: обовʼязковий параметр запиту (the query parameter is required)".into(),
        )),
    };
    answer.unwrap_or_else(|refused| match refused {
        Refused::Invalid(m) => error(StatusCode::BAD_REQUEST, "validation_failed", &m),
        Refused::NotFound(m) => error(StatusCode::NOT_FOUND, "not_found", &m),
    })
}

async fn openapi(name: &str, req: Request<Incoming>, ctx: &Ctx) -> Response<Body> {
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return not_allowed("GET, HEAD");
    }
    if let Err(e) = consume(req.into_body(), MAX_BODY as u64).await {
        return error(e.status(), "invalid_request", &e.message());
    }
    // Only names that could have been loaded are looked up; `/` and `..` never match.
    match ctx
        .cfg
        .wsdls
        .openapi()
        .get(name)
        .filter(|_| openapi_files::servable(name))
    {
        Some(bytes) => super::response(
            StatusCode::OK,
            openapi_files::content_type(name),
            bytes.clone(),
        ),
        None => error(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such OpenAPI description",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries() {
        assert!(query_has(Some("raw"), "raw"));
        assert!(query_has(Some("a=1&raw=1"), "raw"));
        assert!(!query_has(Some("rawer=1&a=raw"), "raw"));
        assert!(!query_has(None, "raw"));
        assert_eq!(
            query_param(Some("x=1&patient=a%2Fb+c%zz%4"), "patient").as_deref(),
            Some("a/b c%zz%4")
        );
        assert_eq!(query_param(Some("patient"), "patient").as_deref(), Some(""));
        assert_eq!(query_param(Some("p=1"), "patient"), None);
        assert_eq!(percent_decode("%D0%86%"), "І%");
    }

    fn route_of(method: &str, uri: &str, headers: &[(&str, &str)]) -> Option<Route> {
        let mut b = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        route(&b.body(()).unwrap())
    }

    #[test]
    fn routes() {
        use Route::*;
        let xml = [("content-type", "text/xml; charset=UTF-8")];
        assert_eq!(route_of("GET", "/echo", &[]), Some(Echo));
        assert_eq!(route_of("DELETE", "/echo/a/b?x=1", &[]), Some(Echo));
        assert_eq!(route_of("POST", "/echo", &xml), None, "SOAP stays SOAP");
        assert_eq!(route_of("POST", "/echo?raw=1", &xml), Some(Echo));
        assert_eq!(
            route_of(
                "POST",
                "/echo",
                &[xml[0], ("x-road-service", "X/Y/Z/S/echo")]
            ),
            Some(Echo)
        );
        assert_eq!(
            route_of("POST", "/echo", &[("content-type", "application/json")]),
            Some(Echo)
        );
        assert_eq!(route_of("POST", "/echoes", &[]), None);
        assert_eq!(
            route_of("GET", "/status/503", &[]),
            Some(Status("503".into()))
        );
        assert_eq!(
            route_of("GET", "/ehealth/declarations?patient=x", &[]),
            Some(Declarations)
        );
        assert_eq!(
            route_of("GET", "/ehealth/declarations/abc", &[]),
            Some(Declaration("abc".into()))
        );
        assert_eq!(route_of("GET", "/ehealth/declarationsX", &[]), None);
        assert_eq!(route_of("POST", "/ehealth", &xml), None);
        assert_eq!(
            route_of("GET", "/openapi/a.yaml", &[]),
            Some(OpenApi("a.yaml".into()))
        );
        assert_eq!(
            route_of("POST", "/rest/registerTaxpayer", &[]),
            Some(Operation("registerTaxpayer".into()))
        );
        assert_eq!(route_of("POST", "/dracs", &xml), None);
        assert_eq!(route_of("GET", "/wsdl/dracs.wsdl", &[]), None);
    }
}
