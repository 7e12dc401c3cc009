//! The one place where errors become what goes on the wire.

use bytes::Bytes;

use super::listener::Response;
use brama_transport::metrics::{Metrics, Proxy};
use brama_xroad::error::Fault;

/// A SOAP fault the way X-Road answers: HTTP 200, `text/xml; charset=UTF-8`, `SOAPAction: ""`.
/// The fault is logged with its id (the same id is in `faultDetail`) and counted.
pub fn soap_fault(fault: &Fault, proxy: Proxy, metrics: &Metrics) -> Response {
    log_fault(fault, proxy, metrics);
    closing(
        fault,
        http::Response::builder().status(fault.http_status.unwrap_or(200)),
    )
    .header(http::header::CONTENT_TYPE, "text/xml; charset=UTF-8")
    .header("SOAPAction", "\"\"")
    .body(brama_transport::body::full(fault.to_soap()))
    .expect("static response parts are valid")
}

/// A fault with its own status was answered before the request body was read: the connection
/// cannot carry another request.
fn closing(fault: &Fault, b: http::response::Builder) -> http::response::Builder {
    match fault.http_status {
        Some(_) => b.header(http::header::CONNECTION, "close"),
        None => b,
    }
}

fn log_fault(fault: &Fault, proxy: Proxy, metrics: &Metrics) {
    let code = fault.code.to_wire();
    metrics.fault(proxy, &code);
    if let Some(event) = fault.security_event() {
        metrics.security_event(event);
        tracing::warn!(target: "security", error_id = %fault.id, code = %code, side = ?fault.side(), "{}", fault.message);
    } else if fault.is_peers() {
        // Written by the peer or the service: it may quote personal data, so only at debug level.
        tracing::info!(error_id = %fault.id, code = %code, side = ?fault.side(), retryable = fault.retryable(), "the provider's side failed");
        tracing::debug!(error_id = %fault.id, code = %code, "{}", fault.message);
    } else {
        tracing::info!(error_id = %fault.id, code = %code, side = ?fault.side(), retryable = fault.retryable(), "{}", fault.message);
    }
}

/// The access log: one line per exchange (target `access`), inside the exchange's span, which
/// names the proxy, the client, the service and the X-Road id: the outcome (the HTTP status
/// answered, or the fault code) and the time to the answer's head. Never a body.
pub fn access(span: &tracing::Span, started: std::time::Instant, result: &Result<Response, Fault>) {
    let ms = format_args!("{:.1}", started.elapsed().as_secs_f64() * 1e3);
    span.in_scope(|| match result {
        Ok(r) => tracing::info!(target: "access", status = r.status().as_u16(), ms, "exchange"),
        Err(f) => tracing::info!(target: "access", fault = %f.code.to_wire(), ms, "exchange"),
    });
}

/// A SOAP exchange's end: written to the access log, a fault answered as X-Road answers it.
pub fn soap_answer(
    span: &tracing::Span,
    started: std::time::Instant,
    result: Result<Response, Fault>,
    proxy: Proxy,
    metrics: &Metrics,
) -> Response {
    access(span, started, &result);
    result.unwrap_or_else(|f| soap_fault(&f, proxy, metrics))
}

/// A plain-text answer for requests that are not X-Road messages at all (wrong method or path).
pub fn plain(status: u16, text: &str) -> Response {
    http::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "text/plain; charset=UTF-8")
        .body(brama_transport::body::full(Bytes::from(format!(
            "{text}\n"
        ))))
        .expect("static response parts are valid")
}

/// A successful response with a body and content type.
pub fn ok(content_type: &str, body: Bytes) -> Response {
    http::Response::builder()
        .status(200)
        .header(http::header::CONTENT_TYPE, content_type)
        .body(brama_transport::body::full(body))
        .unwrap_or_else(|_| plain(500, "invalid content type"))
}

/// A JSON answer (router API).
pub fn json(status: u16, value: &serde_json::Value) -> Response {
    http::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(brama_transport::body::full(Bytes::from(value.to_string())))
        .expect("static response parts are valid")
}

/// An X-Road error for a REST client (reference §2.3): 400 when the request broke the protocol
/// (`Client.*`), 500 when a security server or the service failed; JSON `{type, message,
/// detail}` (XML when the client accepts only XML) and the error type in `X-Road-Error` (or
/// `Uxp-Error`). The same fault is logged and counted as a SOAP fault is.
pub(crate) fn rest_error(
    fault: &Fault,
    dialect: crate::rest::dialect::Dialect,
    accept: Option<&str>,
    proxy: Proxy,
    metrics: &Metrics,
) -> Response {
    log_fault(fault, proxy, metrics);
    let status = fault.rest_status();
    let wants_xml = accept.is_some_and(|a| a.contains("xml") && !a.contains("json"));
    let (ct, body) = if wants_xml {
        let esc = |s: &str| quick_xml::escape::escape(s).into_owned();
        (
            "application/xml; charset=UTF-8",
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><error><type>{}</type><message>{}</message><detail>{}</detail></error>",
                esc(&fault.code.to_wire()),
                esc(&fault.message),
                esc(&fault.id)
            ),
        )
    } else {
        (
            "application/json; charset=UTF-8",
            serde_json::json!({
                "type": fault.code.to_wire(),
                "message": fault.message,
                "detail": fault.id,
            })
            .to_string(),
        )
    };
    closing(fault, http::Response::builder().status(status))
        .header(http::header::CONTENT_TYPE, ct)
        .header(
            crate::rest::dialect::error_header(dialect),
            fault.code.to_wire().as_ref(),
        )
        .body(super::body::full(body))
        .unwrap_or_else(|_| plain(500, "invalid error"))
}
