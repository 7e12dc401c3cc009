//! Client proxy for REST (reference §2, §3): takes `{METHOD} /r1/...` requests (or UXP's
//! `/restapi` ones) from information systems, signs the header part and the body, carries them
//! to the provider's security server and returns the checked answer, streaming bodies through
//! spools.

use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use tracing::Instrument;

use super::body::IntakeError;
use super::client::{authenticate_is, destination, provider_servers, transport_fault};
use super::listener::{ConnInfo, Response};
use super::{wire, Gateway};
use crate::message_log::Direction;
use crate::rest::dialect::{self, Dialect, DialectSetting};
use crate::rest::header_part::{request_hash, RestRequest, RestResponse};
use crate::rest::{target, Header, HDR_CLIENT, HDR_SECURITY_SERVER};
use brama_sign::verify::Part;
use brama_transport::codec;
use brama_transport::metrics::Proxy;
use brama_transport::rest_codec::{self, DecodeLimits, Decoded};
use brama_transport::spool::{Spool, SpoolError, Spooled};
use brama_transport::TransportError;
use brama_xroad::error::{ErrorCode, Fault, Prefix, ToFault};

/// The fault-code prefix of what this proxy raises.
const HERE: Prefix = Prefix::ClientProxy;

/// The request's headers in arrival order, names lower case.
pub(crate) fn header_list(headers: &http::HeaderMap) -> Vec<Header> {
    headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// Handles one REST request on the client listener.
pub async fn handle(
    gw: Arc<Gateway>,
    req: http::Request<Incoming>,
    conn: Arc<ConnInfo>,
) -> Response {
    let _in_flight = gw.metrics.start(Proxy::Client);
    let headers = header_list(req.headers());
    let accept = req
        .headers()
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let dialect = dialect::detect(setting_of(&gw, &headers), req.uri().path(), &headers);
    let span = tracing::info_span!(
        "message",
        proxy = "client",
        protocol = "rest",
        remote = %conn.remote,
        id = tracing::field::Empty,
        client = tracing::field::Empty,
        service = tracing::field::Empty
    );
    let started = std::time::Instant::now();
    let result = process(&gw, req, headers, dialect, &conn)
        .instrument(span.clone())
        .await;
    wire::access(&span, started, &result);
    result.unwrap_or_else(|fault| {
        wire::rest_error(
            &fault,
            dialect,
            accept.as_deref(),
            Proxy::Client,
            &gw.metrics,
        )
    })
}

/// The dialect configured for the client the request names (in either header set).
fn setting_of(gw: &Gateway, headers: &[Header]) -> DialectSetting {
    crate::rest::find(headers, HDR_CLIENT)
        .or_else(|| crate::rest::find(headers, "uxp-client"))
        .and_then(|v| target::parse_client(v).ok())
        .and_then(|id| gw.hosted().get(&id).map(|c| c.rest_dialect))
        .unwrap_or(DialectSetting::Auto)
}

async fn process(
    gw: &Gateway,
    req: http::Request<Incoming>,
    headers: Vec<Header>,
    dialect: Dialect,
    conn: &ConnInfo,
) -> Result<Response, Fault> {
    let (parts, incoming) = req.into_parts();
    let (path, headers) = dialect::to_xroad(dialect, parts.uri.path(), headers)
        .map_err(|e| e.to_fault(Prefix::Client))?;
    let request_id = uuid::Uuid::new_v4().to_string();
    let request = RestRequest::build(
        parts.method.as_str(),
        &path,
        parts.uri.query(),
        headers,
        &request_id,
    )
    .map_err(|e| e.to_fault(Prefix::Client))?;
    let span = tracing::Span::current();
    span.record("id", request.id.as_str());
    span.record("client", request.client.to_string());
    span.record("service", request.service().to_string());

    let clients = gw.hosted();
    let hosted = clients.get(&request.client).ok_or_else(|| {
        HERE.fault(
            ErrorCode::UnknownMember,
            format!(
                "Client '{}' is not hosted on this security server",
                request.client
            ),
        )
    })?;
    authenticate_is(
        gw,
        hosted.connection,
        &hosted.is_cert_hashes,
        &request.client,
        conn,
    )?;
    let target_server = crate::rest::find(&request.headers, HDR_SECURITY_SERVER)
        .map(target::parse_server)
        .transpose()
        .map_err(|e| e.to_fault(Prefix::Client))?;

    let body = read_body(gw, incoming).await?;
    let exchange = exchange(gw, &request, body.as_ref(), target_server.as_ref(), None);
    let (response, response_body) = exchange.await?;
    Ok(to_information_system(dialect, &response, response_body))
}

/// Spools the information system's body (none when empty), within the intake's limits.
async fn read_body(gw: &Gateway, incoming: Incoming) -> Result<Option<Spooled>, Fault> {
    let spool = Spool::new(&gw.spool, gw.signer.digest);
    let spooled = spool
        .read_request(incoming, &gw.intake)
        .await
        .map_err(|e| match e {
            SpoolError::TooLarge(max) => IntakeError::TooLarge(max).to_fault(Prefix::Client),
            SpoolError::Intake(e) => e.to_fault(Prefix::Client),
            SpoolError::Io(_) => HERE.fault(ErrorCode::IoError, e.to_string()),
        })?;
    Ok((!spooled.is_empty()).then_some(spooled))
}

/// Signs and sends a REST request to the provider's security server; returns its verified
/// response and body. Also the entry of in-process callers (the router's REST deliveries).
pub async fn exchange(
    gw: &Gateway,
    request: &RestRequest,
    body: Option<&Spooled>,
    target_server: Option<&brama_xroad::identifiers::SecurityServerId>,
    send_by: Option<std::time::Instant>,
) -> Result<(RestResponse, Option<Spooled>), Fault> {
    let alg = gw.signer.digest;
    let provider = &request.service().provider;
    let trusted = gw.check_globalconf(HERE)?;
    let ocsp = gw
        .own_ocsp
        .auth_parts()
        .map_err(|e| HERE.fault(ErrorCode::InternalError, e))?;
    let candidates = provider_servers(&trusted, provider, target_server)?;
    let mut digests = vec![alg.digest(&request.bytes)];
    digests.extend(body.map(|b| b.digest.clone()));
    // REST is always signed in the hash-chain form.
    let sig = gw
        .signer
        .sign_digests(&request.client.member_id(), digests, true)
        .await
        .map_err(|e| e.to_fault(Prefix::Signer))?;
    if let Some(log) = &gw.message_log {
        log.record(
            gw,
            crate::message_log::Record {
                query_id: &request.id,
                request_id: &request.request_id,
                direction: Direction::Request,
                message: &request.bytes,
                attachments: vec![],
                body: body.filter(|_| log.logs_body(provider)),
                sig: &sig,
            },
        )
        .await?;
    }
    let timeout = Duration::from_millis(gw.conf.file.proxy.peer_timeout_ms);
    let mut last_err = None;
    for server in candidates {
        let dest = destination(gw, server)?;
        let (ct, transport_body) = rest_codec::encode(
            &ocsp,
            rest_codec::CT_REST_REQUEST,
            &request.bytes,
            body,
            &sig,
        );
        let req = http::Request::post("/")
            .header(http::header::HOST, dest.key.as_str())
            .header(http::header::CONTENT_TYPE, ct)
            .header(codec::HDR_REQUEST_ID, request.request_id.as_str())
            .header(codec::HDR_HASH_ALGORITHM, alg.name())
            .header(rest_codec::HDR_MESSAGE_TYPE, rest_codec::MESSAGE_TYPE_REST)
            .header(
                codec::HDR_PROXY_VERSION,
                concat!("brama/", env!("CARGO_PKG_VERSION")),
            )
            .body(transport_body)
            .map_err(|e| HERE.fault(ErrorCode::InternalError, e.to_string()))?;
        super::client::too_late(send_by)?;
        match gw.pool.send(&dest, req, timeout).await {
            Ok(resp) => {
                let work = response(gw, request, body, resp);
                return tokio::time::timeout(timeout, work).await.map_err(|_| {
                    TransportError::Timeout(dest.key.clone(), timeout).to_fault(HERE)
                })?;
            }
            // Connection-level failures may succeed on another server; anything after the
            // request was sent is not retried, so a service is never called twice.
            Err(e @ (TransportError::Connect(..) | TransportError::Tls(..))) => {
                tracing::warn!(server = %server.id, error = %e, "provider security server unreachable");
                last_err = Some(e);
            }
            Err(e) => return Err(e.to_fault(HERE)),
        }
    }
    Err(last_err
        .expect("at least one candidate was tried")
        .to_fault(HERE))
}

/// Decodes and checks the provider's answer (signature by the provider member, echoed ids,
/// request hash).
async fn response(
    gw: &Gateway,
    request: &RestRequest,
    body: Option<&Spooled>,
    resp: http::Response<brama_transport::pool::PooledBody>,
) -> Result<(RestResponse, Option<Spooled>), Fault> {
    let (parts, incoming) = resp.into_parts();
    let header = |n: &str| parts.headers.get(n).and_then(|v| v.to_str().ok());
    let ct = header(http::header::CONTENT_TYPE.as_str())
        .unwrap_or_default()
        .to_string();
    let alg = header(codec::HDR_HASH_ALGORITHM)
        .and_then(brama_sign::digest::DigestAlgorithm::from_name)
        .unwrap_or(gw.signer.digest);
    let bad = |code: ErrorCode, m: String| {
        HERE.fault(
            code,
            format!("Malformed response from the provider's security server: {m}"),
        )
    };
    let limits = DecodeLimits {
        spool: &gw.spool,
        soap: &gw.soap_limits,
        max_parts: gw.max_parts(),
        digest: alg,
        budget: None,
    };
    let decoded = rest_codec::decode(&ct, incoming, rest_codec::CT_REST_RESPONSE, &limits)
        .await
        .map_err(|e| bad(ErrorCode::InvalidResponse, e.message))?;
    let msg = match decoded {
        // The provider's server failed: its fault goes to the client as an X-Road error.
        Decoded::Fault(f) => return Err(transport_fault(&f)),
        Decoded::Message(m) => m,
    };
    let rest = RestResponse::parse(msg.header_part.clone())
        .map_err(|e| bad(ErrorCode::InvalidResponse, e.message))?;
    let named = signed_parts(&msg.header_part, msg.body.as_ref(), alg);
    gw.trusted()
        .verifier
        .verify_parts(
            &request.service().provider.member_id(),
            &named,
            &msg.signature,
        )
        .map_err(|e| {
            gw.metrics.security_event("response_signature_invalid");
            e.to_fault(Prefix::ClientProxy)
        })?;
    let inconsistent = |what: &str| {
        HERE.service_failed(
            ErrorCode::InconsistentResponse,
            format!("Response {what} does not match the request"),
        )
    };
    if rest.client.as_ref() != Some(&request.client) {
        return Err(inconsistent("client id"));
    }
    if rest.id != request.id {
        return Err(inconsistent("message id"));
    }
    if rest.service.as_ref() != Some(request.service()) {
        return Err(inconsistent("service id"));
    }
    if rest.request_id.as_deref() != Some(request.request_id.as_str()) {
        return Err(inconsistent("request id"));
    }
    let expected = request_hash(alg, &request.bytes, body.map(|b| &b.digest[..]));
    if rest.request_hash != expected {
        return Err(inconsistent("request hash"));
    }
    let body = msg.body.filter(|b| !b.is_empty());
    if let Some(log) = &gw.message_log {
        log.record(
            gw,
            crate::message_log::Record {
                query_id: &request.id,
                request_id: &request.request_id,
                direction: Direction::Response,
                message: &msg.header_part,
                attachments: vec![],
                body: body
                    .as_ref()
                    .filter(|_| log.logs_body(&request.service().provider)),
                sig: &msg.signature,
            },
        )
        .await?;
    }
    Ok((rest, body))
}

/// `/message.xml` (the header part) and `/attachment1` (the body, digested while it streamed).
pub(crate) fn signed_parts<'a>(
    header_part: &'a [u8],
    body: Option<&Spooled>,
    alg: brama_sign::digest::DigestAlgorithm,
) -> Vec<Part<'a>> {
    let mut named = Part::list(header_part, []);
    if let Some(b) = body.filter(|b| !b.is_empty()) {
        named.push(Part {
            name: "/attachment1".into(),
            data: &[],
            digest: Some((alg, b.digest.clone())),
        });
    }
    named
}

/// The verified response as the information system gets it: the service's status, reason
/// and headers (X-Road's own headers renamed for UXP clients) and the body.
fn to_information_system(dialect: Dialect, rest: &RestResponse, body: Option<Spooled>) -> Response {
    let status = http::StatusCode::from_u16(rest.status).unwrap_or(http::StatusCode::BAD_GATEWAY);
    let mut resp = http::Response::builder().status(status);
    for (n, v) in &rest.headers {
        let name = dialect::response_name(dialect, n);
        match (
            http::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_str(v.trim_start()),
        ) {
            (Ok(n), Ok(v)) => resp = resp.header(n, v),
            _ => tracing::debug!(header = %n, "response header dropped: not valid in HTTP"),
        }
    }
    let body = match body {
        Some(b) => {
            resp = resp.header(http::header::CONTENT_LENGTH, b.len);
            b.body()
        }
        None => super::body::empty(),
    };
    resp.body(body)
        .unwrap_or_else(|_| wire::plain(502, "invalid response from the provider"))
}
