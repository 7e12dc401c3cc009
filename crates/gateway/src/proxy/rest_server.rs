//! Server proxy for REST (reference §3.5): a REST transport message from a client security
//! server is decoded (its body spooled), checked in X-Road's order (member, service, type,
//! endpoint access, signature), the service is called with the remaining path and query, and
//! its answer is signed and streamed back. Errors go back as SOAP faults, as X-Road's servers
//! send them; the client side turns them into REST errors.

use hyper::body::Incoming;

use super::listener::{ConnInfo, Response};
use super::rest_client::{header_list, signed_parts};
use super::server::service_destination;
use super::Gateway;
use crate::config::{HostedClient, Service};
use crate::rest::header_part::{request_hash, ResponseContext, RestRequest, RestResponse};
use crate::rest::{acl, meta, target, HDR_SECURITY_SERVER};
use brama_sign::digest::DigestAlgorithm;
use brama_transport::codec;
use brama_transport::rest_codec::{self, DecodeLimits, Decoded};
use brama_transport::spool::{Spool, SpoolError, Spooled};
use brama_transport::TransportError;
use brama_xroad::error::{ErrorCode, Fault, Prefix, ToFault};
use brama_xroad::globalconf::SecurityServer;

/// The fault-code prefix of what this proxy raises.
const HERE: Prefix = Prefix::ServerProxy;

/// A checked REST request with its body.
struct Checked {
    request: RestRequest,
    body: Option<Spooled>,
    alg: DigestAlgorithm,
}

/// Processes one REST transport message from `caller` (already identified by its TLS
/// certificate).
pub async fn process(
    gw: &Gateway,
    parts: http::request::Parts,
    incoming: Incoming,
    caller: &SecurityServer,
    conn: &ConnInfo,
) -> Result<Response, Fault> {
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let ct = header(http::header::CONTENT_TYPE.as_str())
        .unwrap_or_default()
        .to_string();
    let alg = match header(codec::HDR_HASH_ALGORITHM) {
        None => DigestAlgorithm::Sha512,
        Some(name) => DigestAlgorithm::from_name(name).ok_or_else(|| {
            // X-Road's server proxy answers an unknown x-hash-algorithm so.
            HERE.fault(
                ErrorCode::InternalError,
                format!("Unsupported hash algorithm '{name}'"),
            )
        })?,
    };
    let limits = DecodeLimits {
        spool: &gw.spool,
        soap: &gw.soap_limits,
        max_parts: gw.max_parts(),
        digest: alg,
        budget: Some(&gw.intake.budget),
    };
    let decoding = rest_codec::decode(&ct, incoming, rest_codec::CT_REST_REQUEST, &limits);
    let decoded = tokio::time::timeout(gw.body_timeout(), decoding)
        .await
        .map_err(|_| {
            HERE.fault(
                ErrorCode::IoError,
                format!(
                    "Request was not received within {} ms",
                    gw.body_timeout().as_millis()
                ),
            )
        })?
        .map_err(|e| HERE.fault(e.code, e.message))?;
    let msg = match decoded {
        Decoded::Message(m) => m,
        Decoded::Fault(_) => {
            return Err(HERE.fault(ErrorCode::InvalidMessage, "Request is a SOAP fault"))
        }
    };
    if msg.signature.signature.is_none() {
        return Err(HERE.fault(ErrorCode::MissingSignature, "The request has no signature"));
    }
    gw.check_client_ocsp(conn, &msg.ocsp, HERE)?;
    let request =
        RestRequest::parse(msg.header_part.clone()).map_err(|e| HERE.fault(e.code, e.message))?;
    let span = tracing::Span::current();
    span.record("id", request.id.as_str());
    span.record("client", request.client.to_string());
    span.record("service", request.service().to_string());

    let client = &request.client;
    if caller.id.owner != client.member_id() && !caller.clients.contains(client) {
        return Err(HERE.fault(
            ErrorCode::SslAuthenticationFailed,
            format!(
                "Client '{client}' is not registered at security server '{}'",
                caller.id
            ),
        ));
    }
    let service_id = request.service().clone();
    let hosted = gw.hosted();
    let provider = hosted.get(&service_id.provider).ok_or_else(|| {
        HERE.fault(
            ErrorCode::UnknownMember,
            format!(
                "Service provider '{}' is not hosted on this security server",
                service_id.provider
            ),
        )
    })?;
    if let Some(v) = crate::rest::find(&request.headers, HDR_SECURITY_SERVER) {
        let target = target::parse_server(v).map_err(|e| HERE.fault(e.code, e.message))?;
        if target != gw.conf.server_id {
            return Err(HERE.fault(
                ErrorCode::InvalidSecurityServer,
                format!(
                    "Request was meant for security server '{target}', this is '{}'",
                    gw.conf.server_id
                ),
            ));
        }
    }
    let checked = Checked {
        request,
        body: msg.body.filter(|b| !b.is_empty()),
        alg,
    };
    let verify = || {
        let named = signed_parts(&checked.request.bytes, checked.body.as_ref(), alg);
        gw.trusted()
            .verifier
            .verify_parts(&checked.request.client.member_id(), &named, &msg.signature)
            .map(|_| ())
            .map_err(|e| {
                gw.metrics.security_event("request_signature_invalid");
                e.to_fault(Prefix::ServerProxy)
            })
    };
    let (status, headers, body) = if meta::is_metaservice(&service_id.service_code) {
        verify()?;
        metaservice(gw, provider, &checked.request, alg)?
    } else {
        let svc = check_access(gw, provider, &checked.request)?;
        verify()?;
        call_service(gw, svc, &checked).await?
    };
    respond(gw, &checked, status, headers, body).await
}

/// Service exists and is REST, an endpoint right matches, service enabled (X-Road's order).
fn check_access<'a>(
    gw: &Gateway,
    provider: &'a HostedClient,
    request: &RestRequest,
) -> Result<&'a Service, Fault> {
    let service = request.service();
    // A SOAP service may share the code (under a version): the REST one is meant.
    let svc = provider
        .rest_service(&service.service_code)
        .or_else(|| {
            provider
                .services
                .iter()
                .find(|s| s.id.service_code == service.service_code)
        })
        .ok_or_else(|| {
            HERE.fault(
                ErrorCode::UnknownService,
                format!("Unknown service: '{service}'"),
            )
        })?;
    if !svc.kind.is_rest() {
        return Err(HERE.fault(
            ErrorCode::ServiceType,
            format!("Service '{service}' is a SOAP service, not a REST one"),
        ));
    }
    let path =
        acl::normalize(&request.target.service_path).map_err(|e| HERE.fault(e.code, e.message))?;
    if !provider.is_allowed_at(
        &request.client,
        &service.service_code,
        Some(&request.method),
        Some(&path),
        &gw.trusted().gc,
    ) {
        return Err(HERE.fault(
            ErrorCode::AccessDenied,
            format!(
                "Request is not allowed: client '{}' has no access right to {} {path} of service '{service}'",
                request.client, request.method
            ),
        ));
    }
    if let Some(notice) = &svc.disabled {
        return Err(HERE.fault(ErrorCode::ServiceDisabled, notice.clone()));
    }
    Ok(svc)
}

type Answer = (u16, Vec<crate::rest::Header>, Option<Spooled>);

/// Calls the service at its URL plus the remaining path and query, streaming the body from
/// its spool and spooling the answer.
async fn call_service(gw: &Gateway, svc: &Service, checked: &Checked) -> Result<Answer, Fault> {
    let request = &checked.request;
    let dest = service_destination(&svc.url, svc.tls.as_ref())?;
    let base = svc.url.path().trim_end_matches('/');
    let mut uri = format!("{base}{}", request.target.service_path);
    if uri.is_empty() {
        uri.push('/');
    }
    match (svc.url.query(), request.query.as_deref()) {
        (Some(a), Some(b)) => uri.push_str(&format!("?{a}&{b}")),
        (Some(q), None) | (None, Some(q)) => uri.push_str(&format!("?{q}")),
        (None, None) => {}
    }
    let mut req = http::Request::builder()
        .method(request.method.as_str())
        .uri(uri.as_str())
        .header(http::header::HOST, dest.key.as_str());
    for (n, v) in &request.headers {
        req = req.header(n.as_str(), v.as_str());
    }
    let body = match &checked.body {
        Some(b) => {
            req = req.header(http::header::CONTENT_LENGTH, b.len);
            b.body()
        }
        None => super::body::empty(),
    };
    let req = req.body(body).map_err(|e| {
        HERE.fault(
            ErrorCode::InvalidRequest,
            format!("Cannot build the service request: {e}"),
        )
    })?;
    let failed = |e: TransportError| {
        HERE.service_failed(
            ErrorCode::NetworkError,
            format!("Service {} failed: {e}", svc.id),
        )
    };
    let resp = gw
        .pool
        .send(&dest, req, svc.timeout)
        .await
        .map_err(failed)?;
    let (parts, incoming) = resp.into_parts();
    let spool = Spool::new(&gw.spool, checked.alg);
    let answer = tokio::time::timeout(svc.timeout, spool.read_body(incoming))
        .await
        .map_err(|_| failed(TransportError::Timeout(dest.key.clone(), svc.timeout)))?
        .map_err(|e| match e {
            SpoolError::TooLarge(_) => HERE.service_failed(
                ErrorCode::InvalidMessage,
                format!("Service {} answered with a body too large: {e}", svc.id),
            ),
            SpoolError::Io(_) | SpoolError::Intake(_) => HERE.service_failed(
                ErrorCode::NetworkError,
                format!("Service {} failed: {e}", svc.id),
            ),
        })?;
    Ok((
        parts.status.as_u16(),
        header_list(&parts.headers),
        (!answer.is_empty()).then_some(answer),
    ))
}

/// `listMethods`, `allowedMethods` (JSON) and `getOpenAPI?serviceCode=` (the stored
/// description), answered here.
fn metaservice(
    gw: &Gateway,
    provider: &HostedClient,
    request: &RestRequest,
    alg: DigestAlgorithm,
) -> Result<Answer, Fault> {
    let json = |v: serde_json::Value| -> Answer {
        let b = Spooled::from_bytes(bytes::Bytes::from(v.to_string()), alg);
        (
            200,
            vec![("content-type".into(), "application/json".into())],
            Some(b),
        )
    };
    let rest = provider.services.iter().filter(|s| s.kind.is_rest());
    match request.service().service_code.as_str() {
        meta::LIST_METHODS => Ok(json(meta::service_list(
            rest.map(|s| (s, s.endpoints.iter().collect())),
        ))),
        meta::ALLOWED_METHODS => Ok(json(meta::service_list(rest.filter_map(|s| {
            let eps = provider.allowed_endpoints(&request.client, s, &gw.trusted().gc);
            (!eps.is_empty()).then_some((s, eps))
        })))),
        _ => {
            let code = request
                .query
                .as_deref()
                .unwrap_or_default()
                .split('&')
                .filter_map(|kv| kv.split_once('='))
                .find(|(k, _)| *k == "serviceCode")
                .and_then(|(_, v)| target::decode_segment(v).ok())
                .ok_or_else(|| {
                    HERE.fault(
                        ErrorCode::InvalidRequest,
                        "getOpenAPI needs the query parameter serviceCode",
                    )
                })?;
            let svc = provider
                .services
                .iter()
                .find(|s| s.id.service_code == code)
                .ok_or_else(|| {
                    HERE.fault(
                        ErrorCode::UnknownService,
                        format!("Unknown service: '{code}'"),
                    )
                })?;
            let doc = svc.openapi.clone().ok_or_else(|| {
                HERE.fault(
                    ErrorCode::ServiceType,
                    format!("Service '{code}' has no OpenAPI description"),
                )
            })?;
            let ct = if doc.trim_ascii_start().starts_with(b"{") {
                "application/json"
            } else {
                "application/yaml"
            };
            let b = Spooled::from_bytes(doc, alg);
            Ok((200, vec![("content-type".into(), ct.into())], Some(b)))
        }
    }
}

/// Builds the response header part (request hash, echoed ids), signs it with the provider
/// member's key and streams the transport message back.
async fn respond(
    gw: &Gateway,
    checked: &Checked,
    status: u16,
    headers: Vec<crate::rest::Header>,
    body: Option<Spooled>,
) -> Result<Response, Fault> {
    let request = &checked.request;
    let alg = checked.alg;
    let hash = request_hash(
        alg,
        &request.bytes,
        checked.body.as_ref().map(|b| &b.digest[..]),
    );
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    let response = RestResponse::build(
        status,
        reason,
        headers,
        &ResponseContext {
            client: &request.client,
            id: &request.id,
            service: request.service(),
            request_id: &request.request_id,
            request_hash: &hash,
        },
    )
    .map_err(|e| HERE.fault(ErrorCode::InternalError, e.message))?;
    let mut digests = vec![alg.digest(&response.bytes)];
    digests.extend(body.as_ref().map(|b| b.digest.clone()));
    let sig = gw
        .signer
        .sign_digests(&request.service().provider.member_id(), digests, true)
        .await
        .map_err(|e| e.to_fault(Prefix::Signer))?;
    let (ct, transport) = rest_codec::encode(
        &[],
        rest_codec::CT_REST_RESPONSE,
        &response.bytes,
        body.as_ref(),
        &sig,
    );
    http::Response::builder()
        .status(200)
        .header(http::header::CONTENT_TYPE, ct)
        .header(codec::HDR_HASH_ALGORITHM, alg.name())
        .header(codec::HDR_REQUEST_ID, request.request_id.as_str())
        .body(transport)
        .map_err(|e| HERE.fault(ErrorCode::InternalError, e.to_string()))
}
