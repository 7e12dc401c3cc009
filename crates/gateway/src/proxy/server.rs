//! Server proxy: takes transport messages from client security servers over mutual TLS, checks
//! them in X-Road's order (reference §3.5), calls the service and returns the signed response.

use std::sync::Arc;

use bytes::Bytes;
use hyper::body::Incoming;
use tracing::Instrument;

use super::client::message_parts;
use super::listener::{ConnInfo, Response};
use super::{body, meta, wire, Gateway};
use crate::config::{HostedClient, Service};
use brama_transport::codec::{self, Incoming as TransportIncoming};
use brama_transport::metrics::Proxy;
use brama_transport::{Destination, TransportError};
use brama_xroad::error::{ErrorCode, Fault, Prefix, ToFault};
use brama_xroad::message::{request_hash, MessageError, SoapEnvelope, SHA512_URI};

/// The fault-code prefix of what this proxy raises.
const HERE: Prefix = Prefix::ServerProxy;

/// Handles one request on the server listener.
pub async fn handle(
    gw: Arc<Gateway>,
    req: http::Request<Incoming>,
    conn: Arc<ConnInfo>,
) -> Response {
    if req.method() != http::Method::POST {
        // As X-Road's server proxy answers it: a SOAP fault, after the TLS handshake proved
        // the peer.
        let fault = Fault::new(
            HERE,
            ErrorCode::InvalidHttpMethod,
            format!("Must use POST request method instead of {}", req.method()),
        );
        return wire::soap_fault(&fault, Proxy::Server, &gw.metrics);
    }
    let _in_flight = gw.metrics.start(Proxy::Server);
    let span = tracing::info_span!(
        "message",
        proxy = "server",
        remote = %conn.remote,
        id = tracing::field::Empty,
        client = tracing::field::Empty,
        service = tracing::field::Empty
    );
    let started = std::time::Instant::now();
    let result = process(&gw, req, &conn).instrument(span.clone()).await;
    wire::soap_answer(&span, started, result, Proxy::Server, &gw.metrics)
}

async fn process(
    gw: &Gateway,
    req: http::Request<Incoming>,
    conn: &ConnInfo,
) -> Result<Response, Fault> {
    let (parts, incoming) = req.into_parts();
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let ct = header(http::header::CONTENT_TYPE.as_str())
        .unwrap_or_default()
        .to_string();
    let original = header(codec::HDR_ORIGINAL_CONTENT_TYPE).map(str::to_string);
    let soap_action = header(codec::HDR_ORIGINAL_SOAPACTION).map(str::to_string);
    let request_id = header(codec::HDR_REQUEST_ID).map(str::to_string);

    // The TLS layer already refused unknown certificates; find which server this is.
    let trusted = gw.check_globalconf(HERE)?;
    let caller_server = conn
        .peer_cert
        .as_ref()
        .and_then(|c| trusted.gc.server_by_auth_cert(c))
        .ok_or_else(|| {
            HERE.fault(
                ErrorCode::SslAuthenticationFailed,
                "Client security server presented no registered certificate",
            )
        })?;

    if header(brama_transport::rest_codec::HDR_MESSAGE_TYPE)
        .is_some_and(|t| t.eq_ignore_ascii_case(brama_transport::rest_codec::MESSAGE_TYPE_REST))
    {
        return super::rest_server::process(gw, parts, incoming, caller_server, conn).await;
    }
    // Held until the answer is built: the body's share of the memory budget.
    let received = body::read(incoming, gw.max_body(), &gw.intake, Prefix::ServerProxy).await?;
    let bytes = received.bytes.clone();
    let bad = |e: MessageError| HERE.fault(e.code, e.message);
    let decoded = match codec::decode(
        &ct,
        original.as_deref(),
        bytes,
        &gw.soap_limits,
        gw.max_parts(),
    )
    .map_err(bad)?
    {
        TransportIncoming::Message(d) => d,
        TransportIncoming::Fault(_) => {
            return Err(HERE.fault(ErrorCode::InvalidMessage, "Request is a SOAP fault"))
        }
    };
    // X-Road checks the TLS chain against the OCSP parts right after parsing (reference §3.5).
    gw.check_client_ocsp(conn, &decoded.ocsp, HERE)?;
    let env = decoded.envelope;
    env.soap.validate_request().map_err(bad)?;
    let (client, service, id) = env.soap.route();
    let span = tracing::Span::current();
    span.record("id", id);
    span.record("client", client.to_string());
    span.record("service", service.to_string());

    // The calling server must be the client's own: owned by its member or listing it as a client.
    if caller_server.id.owner != client.member_id() && !caller_server.clients.contains(client) {
        return Err(HERE.fault(
            ErrorCode::SslAuthenticationFailed,
            format!(
                "Client '{client}' is not registered at security server '{}'",
                caller_server.id
            ),
        ));
    }
    let hosted = gw.hosted();
    let provider = hosted.get(&service.provider).ok_or_else(|| {
        HERE.fault(
            ErrorCode::UnknownMember,
            format!(
                "Service provider '{}' is not hosted on this security server",
                service.provider
            ),
        )
    })?;
    if let Some(target) = &env.soap.header.security_server {
        if target != &gw.conf.server_id {
            return Err(HERE.fault(
                ErrorCode::InvalidSecurityServer,
                format!(
                    "Request was meant for security server '{target}', this is '{}'",
                    gw.conf.server_id
                ),
            ));
        }
    }

    let verify = || {
        trusted
            .verifier
            .verify(
                &client.member_id(),
                &message_parts(&env),
                &decoded.signature,
            )
            .map_err(|e| {
                gw.metrics.security_event("request_signature_invalid");
                e.to_fault(Prefix::ServerProxy)
            })
    };
    let answer = if meta::is_metaservice(&service.service_code) {
        verify()?;
        meta::answer(gw, provider, &env).await?
    } else {
        let svc = check_access(gw, provider, &env)?;
        verify()?;
        call_service(gw, svc, &env, soap_action.as_deref()).await?
    };
    respond(gw, &env, answer, request_id.as_deref()).await
}

/// Service exists, ACL allows, service enabled (in X-Road's order).
fn check_access<'a>(
    gw: &Gateway,
    provider: &'a HostedClient,
    env: &SoapEnvelope,
) -> Result<&'a Service, Fault> {
    let (client, service, _) = env.soap.route();
    let svc = provider
        .service(&service.service_code, service.service_version.as_deref())
        .ok_or_else(|| {
            HERE.fault(
                ErrorCode::UnknownService,
                format!("Unknown service: '{service}'"),
            )
        })?;
    if svc.kind.is_rest() {
        return Err(HERE.fault(
            ErrorCode::ServiceType,
            format!("Service '{service}' is a REST service, not a SOAP one"),
        ));
    }
    if !provider.is_allowed(client, &service.service_code, &gw.trusted().gc) {
        return Err(HERE.fault(
            ErrorCode::AccessDenied,
            format!("Request is not allowed: client '{client}' has no access right to service '{service}'"),
        ));
    }
    if let Some(notice) = &svc.disabled {
        return Err(HERE.fault(ErrorCode::ServiceDisabled, notice.clone()));
    }
    Ok(svc)
}

/// Destination of a service URL: plain HTTP, or HTTPS verified against the service's `tls_ca`.
pub(crate) fn service_destination(
    url: &http::Uri,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> Result<Destination, Fault> {
    let host = url.host().unwrap_or_default();
    let https = url.scheme_str() == Some("https");
    let port = url.port_u16().unwrap_or(if https { 443 } else { 80 });
    let key = format!("{host}:{port}");
    if !https {
        return Ok(Destination {
            key,
            tls: None,
            peer_check: None,
        });
    }
    let config = tls.ok_or_else(|| {
        HERE.fault(
            ErrorCode::ServiceMalformedUrl,
            format!("No TLS trust is configured for {url}"),
        )
    })?;
    let name = rustls_pki_types::ServerName::try_from(host.trim_matches(['[', ']']).to_string())
        .map_err(|_| {
            HERE.fault(
                ErrorCode::ServiceMalformedUrl,
                format!("'{host}' is not a usable host name"),
            )
        })?;
    Ok(Destination {
        key,
        tls: Some((config.clone(), name)),
        peer_check: None,
    })
}

/// Calls the provider's information system and parses its answer.
async fn call_service(
    gw: &Gateway,
    svc: &Service,
    env: &SoapEnvelope,
    soap_action: Option<&str>,
) -> Result<SoapEnvelope, Fault> {
    let dest = service_destination(&svc.url, svc.tls.as_ref())?;
    let (ct, body) = env.to_http();
    let path = svc.url.path_and_query().map_or("/", |p| p.as_str());
    let mut req = http::Request::post(path)
        .header(http::header::HOST, dest.key.as_str())
        .header(http::header::CONTENT_TYPE, ct);
    if let Some(a) = soap_action {
        req = req.header("SOAPAction", a);
    }
    let req = req
        .body(brama_transport::body::full(body))
        .map_err(|e| HERE.fault(ErrorCode::InternalError, e.to_string()))?;
    let (parts, body) = gw
        .pool
        .exchange(&dest, req, svc.timeout, gw.max_body())
        .await
        .map_err(|e| match e {
            TransportError::TooLarge(..) => {
                HERE.service_failed(ErrorCode::InvalidMessage, e.to_string())
            }
            _ => HERE.service_failed(
                ErrorCode::NetworkError,
                format!("Service {} failed: {e}", svc.id),
            ),
        })?;
    let ct = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let env = SoapEnvelope::from_http(ct, body, &gw.soap_limits, gw.max_parts()).map_err(|e| {
        let code = match e.code {
            ErrorCode::MimeParsingFailed => ErrorCode::InvalidMessage,
            c => c,
        };
        HERE.service_failed(
            code,
            format!(
                "Service {} answered with an invalid message: {}",
                svc.id, e.message
            ),
        )
    })?;
    if !env.soap.is_fault() && parts.status.is_server_error() {
        return Err(HERE.service_failed(
            ErrorCode::HttpError,
            format!("Service {} answered HTTP {}", svc.id, parts.status),
        ));
    }
    Ok(env)
}

/// Sets requestHash, signs with the provider member's key and encodes the transport response.
async fn respond(
    gw: &Gateway,
    req: &SoapEnvelope,
    mut answer: SoapEnvelope,
    request_id: Option<&str>,
) -> Result<Response, Fault> {
    if !answer.soap.is_fault() {
        answer
            .soap
            .set_request_hash(SHA512_URI, &request_hash(&req.soap.bytes));
    }
    let (_, service, _) = req.soap.route();
    let sig = gw
        .signer
        .sign(
            &service.provider.member_id(),
            &message_parts(&answer),
            false,
        )
        .await
        .map_err(|e| e.to_fault(Prefix::Signer))?;
    let (ct, body): (String, Bytes) = codec::encode(&answer, &[], &sig);
    let mut resp = http::Response::builder()
        .status(200)
        .header(http::header::CONTENT_TYPE, ct)
        .header(codec::HDR_HASH_ALGORITHM, gw.signer.digest.name())
        .header(
            codec::HDR_ORIGINAL_CONTENT_TYPE,
            answer.content_type.as_str(),
        );
    if let Some(id) = request_id {
        resp = resp.header(codec::HDR_REQUEST_ID, id);
    }
    resp.body(brama_transport::body::full(body))
        .map_err(|e| HERE.fault(ErrorCode::InternalError, e.to_string()))
}
