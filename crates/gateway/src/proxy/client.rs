//! Client proxy: takes X-Road SOAP requests from information systems (reference §1), carries them
//! to the provider's security server (§3) and returns the checked response.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::body::Incoming;
use rustls_pki_types::ServerName;
use sha2::{Digest, Sha256};
use tracing::Instrument;

use super::listener::{ConnInfo, Response};
use super::{body, meta, wire, Gateway, Trusted};
use crate::config::Connection;
use brama_transport::codec::{self, Incoming as TransportIncoming};
use brama_transport::metrics::Proxy;
use brama_transport::{Destination, TransportError};
use brama_xroad::error::{ErrorCode, Fault, Prefix, ToFault};
use brama_xroad::globalconf::SecurityServer;
use brama_xroad::identifiers::ClientId;
use brama_xroad::message::soap::{SoapBody, SoapMessage};
use brama_xroad::message::{request_hash, MessageError, SoapEnvelope, SHA512_URI};

/// The fault-code prefix of what this proxy raises.
const HERE: Prefix = Prefix::ClientProxy;

/// Handles one request on the client listener.
pub async fn handle(
    gw: Arc<Gateway>,
    req: http::Request<Incoming>,
    conn: Arc<ConnInfo>,
) -> Response {
    if let Some(m) = gw.mounted.get() {
        if m.owns_client(req.method(), req.uri().path()) {
            return m.client(&gw, req, &conn).await;
        }
    }
    let path = req.uri().path().to_string();
    if is_rest_path(&path) {
        return super::rest_client::handle(gw, req, conn).await;
    }
    match (req.method(), path.as_str()) {
        (&http::Method::GET, "/listClients") => meta::list_clients(&gw, &req),
        (&http::Method::GET, "/wsdl") => meta::wsdl(&gw, &req).await,
        (&http::Method::GET, "/asic") => crate::message_log::download::asic(&gw, &req, &conn).await,
        (&http::Method::GET, "/verificationconf") => {
            crate::message_log::download::verificationconf(&gw)
        }
        // A SOAP message on any path, as X-Road's client proxy takes it (UXP-style clients post
        // to the address in the WSDL they downloaded).
        (&http::Method::POST, _) => {
            let _in_flight = gw.metrics.start(Proxy::Client);
            let span = tracing::info_span!(
                "message",
                proxy = "client",
                remote = %conn.remote,
                id = tracing::field::Empty,
                client = tracing::field::Empty,
                service = tracing::field::Empty
            );
            let started = std::time::Instant::now();
            let result = process(&gw, req, &conn).instrument(span.clone()).await;
            wire::soap_answer(&span, started, result, Proxy::Client, &gw.metrics)
        }
        (method, _) => wire::soap_fault(
            &Fault::new(
                Prefix::Client,
                ErrorCode::InvalidHttpMethod,
                format!("Must use POST request method instead of {method}"),
            ),
            Proxy::Client,
            &gw.metrics,
        ),
    }
}

/// `/rN/...` (X-Road REST; versions other than 1 get their error there) or UXP's `/restapi`.
fn is_rest_path(path: &str) -> bool {
    let b = path.as_bytes();
    let versioned = b.len() > 3
        && b[1] == b'r'
        && b[2].is_ascii_digit()
        && path[2..]
            .find('/')
            .is_some_and(|i| b[2..2 + i].iter().all(u8::is_ascii_digit));
    versioned || path == "/restapi" || path.starts_with("/restapi/")
}

async fn process(
    gw: &Gateway,
    req: http::Request<Incoming>,
    conn: &ConnInfo,
) -> Result<Response, Fault> {
    let (parts, incoming) = req.into_parts();
    let content_type = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let soap_action = parts
        .headers
        .get("soapaction")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    // Held until the answer is built: the body's share of the memory budget.
    let received = body::read(incoming, gw.max_body(), &gw.intake, Prefix::Client).await?;
    let env = SoapEnvelope::from_http(
        content_type.as_deref(),
        received.bytes.clone(),
        &gw.soap_limits,
        gw.max_parts(),
    )
    .map_err(|e| e.to_fault(Prefix::Client))?;
    env.soap
        .validate_request()
        .map_err(|e| e.to_fault(Prefix::Client))?;
    let (client, service, id) = env.soap.route();
    let span = tracing::Span::current();
    span.record("id", id);
    span.record("client", client.to_string());
    span.record("service", service.to_string());

    let clients = gw.hosted();
    let hosted = clients.get(client).ok_or_else(|| {
        HERE.fault(
            ErrorCode::UnknownMember,
            format!("Client '{client}' is not hosted on this security server"),
        )
    })?;
    authenticate_is(gw, hosted.connection, &hosted.is_cert_hashes, client, conn)?;
    let answer = exchange(gw, env, soap_action.as_deref(), None).await?;
    let (ct, bytes) = answer.to_http();
    Ok(wire::ok(&ct, bytes))
}

/// Signs a checked request of a hosted client, carries it to the provider's security server and
/// returns the verified answer, parsed. Also the entry point of in-process callers (router, wrap
/// mode): a fault from the provider's side comes back as a passed-on [`Fault`], with its side
/// and retryability, not as a document to read again.
pub async fn exchange(
    gw: &Gateway,
    env: SoapEnvelope,
    soap_action: Option<&str>,
    send_by: Option<Instant>,
) -> Result<SoapEnvelope, Fault> {
    let (client, service, _) = env.soap.route();
    let trusted = gw.check_globalconf(HERE)?;
    let ocsp = gw
        .own_ocsp
        .auth_parts()
        .map_err(|e| HERE.fault(ErrorCode::InternalError, e))?;
    let candidates = provider_servers(
        &trusted,
        &service.provider,
        env.soap.header.security_server.as_ref(),
    )?;
    let parts = message_parts(&env);
    let sig = gw
        .signer
        .sign(&client.member_id(), &parts, false)
        .await
        .map_err(|e| e.to_fault(Prefix::Signer))?;
    let (transport_ct, transport_body) = codec::encode(&env, &ocsp, &sig);
    let request_id = uuid::Uuid::new_v4().to_string();
    if let Some(log) = &gw.message_log {
        let (message, attachments) = log.soap_copy(&service.provider, &env.soap, || {
            env.attachments.iter().map(|a| a.body.to_vec()).collect()
        });
        log.record(
            gw,
            crate::message_log::Record {
                query_id: env.soap.header.id.as_deref().unwrap_or_default(),
                request_id: &request_id,
                direction: crate::message_log::Direction::Request,
                message: &message,
                attachments,
                body: None,
                sig: &sig,
            },
        )
        .await?;
    }

    let mut last_err = None;
    for server in candidates {
        let dest = destination(gw, server)?;
        let mut req = http::Request::post("/")
            .header(http::header::HOST, dest.key.as_str())
            .header(http::header::CONTENT_TYPE, transport_ct.as_str())
            .header(codec::HDR_REQUEST_ID, request_id.as_str())
            .header(codec::HDR_HASH_ALGORITHM, gw.signer.digest.name())
            .header(codec::HDR_ORIGINAL_CONTENT_TYPE, env.content_type.as_str())
            .header(
                codec::HDR_PROXY_VERSION,
                concat!("brama/", env!("CARGO_PKG_VERSION")),
            );
        if let Some(a) = soap_action {
            req = req.header(codec::HDR_ORIGINAL_SOAPACTION, a);
        }
        let req = req
            .body(brama_transport::body::full(transport_body.clone()))
            .map_err(|e| HERE.fault(ErrorCode::InternalError, e.to_string()))?;
        let timeout = Duration::from_millis(gw.conf.file.proxy.peer_timeout_ms);
        too_late(send_by)?;
        match gw.pool.exchange(&dest, req, timeout, gw.max_body()).await {
            Ok((parts, body)) => {
                let (decoded, sig) = response(gw, &env, parts, body)?;
                if let Some(log) = &gw.message_log {
                    let (message, attachments) =
                        log.soap_copy(&service.provider, &decoded.soap, || {
                            decoded
                                .attachments
                                .iter()
                                .map(|a| a.body.to_vec())
                                .collect()
                        });
                    log.record(
                        gw,
                        crate::message_log::Record {
                            query_id: env.soap.header.id.as_deref().unwrap_or_default(),
                            request_id: &request_id,
                            direction: crate::message_log::Direction::Response,
                            message: &message,
                            attachments,
                            body: None,
                            sig: &sig,
                        },
                    )
                    .await?;
                }
                return match passed_fault(&decoded.soap) {
                    Some(fault) => Err(fault),
                    None => Ok(decoded),
                };
            }
            // Connection-level failures may succeed on another server; anything after the request
            // was sent is not retried, so a service is never called twice.
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

/// The signed parts of a message: the SOAP bytes, then each attachment's body.
pub(crate) fn message_parts(env: &SoapEnvelope) -> Vec<&[u8]> {
    let mut parts = Vec::with_capacity(1 + env.attachments.len());
    parts.push(&env.soap.bytes[..]);
    parts.extend(env.attachments.iter().map(|a| &a.body[..]));
    parts
}

/// Refuses to send past `send_by`: a caller that holds a message under a lease (the router)
/// must not send it once the lease may have passed to another node, as after the process was
/// frozen between the claim and the send. Checked just before the request goes out.
pub(crate) fn too_late(send_by: Option<Instant>) -> Result<(), Fault> {
    match send_by {
        Some(t) if Instant::now() >= t => Err(HERE.fault(
            ErrorCode::Timeout,
            "not sent: its time to be sent had passed (the sender's lease on it ran out)",
        )),
        _ => Ok(()),
    }
}

/// SSLAUTH: the information system must have presented one of the client's pinned certificates.
pub(crate) fn authenticate_is(
    gw: &Gateway,
    connection: Connection,
    pinned: &[Vec<u8>],
    client: &ClientId,
    conn: &ConnInfo,
) -> Result<(), Fault> {
    let fail = |msg: String| {
        gw.metrics.security_event("is_authentication_failed");
        Err(HERE.fault(ErrorCode::SslAuthenticationFailed, msg))
    };
    match connection {
        Connection::Http => Ok(()),
        Connection::Https if conn.tls => Ok(()),
        Connection::Https => fail(format!("Client '{client}' must connect over HTTPS")),
        Connection::HttpsAuth => match &conn.peer_cert {
            Some(cert) if pinned.contains(&Sha256::digest(cert).to_vec()) => Ok(()),
            Some(_) => fail(format!(
                "The TLS certificate presented is not pinned for client '{client}'"
            )),
            None => fail(format!(
                "Client '{client}' must present its TLS certificate over HTTPS"
            )),
        },
    }
}

/// The provider's security servers from the global configuration, narrowed by the optional
/// `securityServer` header, maintenance-mode servers left out.
pub(super) fn provider_servers<'a>(
    trusted: &'a Trusted,
    provider: &ClientId,
    target: Option<&brama_xroad::identifiers::SecurityServerId>,
) -> Result<Vec<&'a SecurityServer>, Fault> {
    if !trusted.gc.client_exists(provider) {
        return Err(HERE.fault(
            ErrorCode::UnknownMember,
            format!("Service provider '{provider}' is not in the global configuration"),
        ));
    }
    let mut servers = trusted.gc.servers_for_client(provider);
    if let Some(target) = target {
        servers.retain(|s| &s.id == target);
        if servers.is_empty() {
            return Err(HERE.fault(
                ErrorCode::InvalidSecurityServer,
                format!("Security server '{target}' does not serve provider '{provider}'"),
            ));
        }
    }
    let total = servers.len();
    servers.retain(|s| s.maintenance.is_none() && s.address.is_some());
    if servers.is_empty() {
        let (code, what) = if total > 0 {
            (
                ErrorCode::MaintenanceMode,
                "all its security servers are in maintenance mode or have no address",
            )
        } else {
            (ErrorCode::UnknownMember, "no security server serves it")
        };
        return Err(HERE.fault(code, format!("Cannot reach provider '{provider}': {what}")));
    }
    Ok(servers)
}

pub(super) fn destination(gw: &Gateway, server: &SecurityServer) -> Result<Destination, Fault> {
    let address = server.address.as_deref().unwrap_or_default();
    let key = if address.contains(':')
        && !address.starts_with('[')
        && address.matches(':').count() == 1
    {
        address.to_string()
    } else {
        format!("{address}:{}", gw.conf.file.proxy.peer_port)
    };
    let host = key
        .rsplit_once(':')
        .map_or(address, |(h, _)| h)
        .trim_matches(['[', ']']);
    let name = ServerName::try_from(host.to_string()).map_err(|_| {
        HERE.fault(
            ErrorCode::NetworkError,
            format!("'{address}' is not a usable server address"),
        )
    })?;
    let tls = gw
        .peer_tls(&server.id)
        .map_err(|e| HERE.fault(ErrorCode::InternalError, format!("TLS setup failed: {e}")))?;
    Ok(Destination {
        key,
        tls: Some((tls, name)),
        peer_check: Some(gw.peer_ocsp.clone()),
    })
}

/// Decodes and checks the provider's answer: its signature, and for an answer that is not a
/// fault, the echoed header and the request hash. An unsigned fault of the provider's server is
/// passed on at once; a signed one is returned, to be logged first.
fn response(
    gw: &Gateway,
    req: &SoapEnvelope,
    parts: http::response::Parts,
    body: Bytes,
) -> Result<(SoapEnvelope, brama_sign::SignatureParts), Fault> {
    let ct = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let original = parts
        .headers
        .get(codec::HDR_ORIGINAL_CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let bad = |e: MessageError| {
        HERE.fault(
            ErrorCode::InvalidResponse,
            format!("Malformed response from the provider's security server: {e}"),
        )
    };
    let decoded =
        match codec::decode(ct, original, body, &gw.soap_limits, gw.max_parts()).map_err(bad)? {
            TransportIncoming::Fault(f) => return Err(transport_fault(&f)),
            TransportIncoming::Message(d) => d,
        };
    let (_, service, _) = req.soap.route();
    gw.trusted()
        .verifier
        .verify(
            &service.provider.member_id(),
            &message_parts(&decoded.envelope),
            &decoded.signature,
        )
        .map_err(|e| {
            gw.metrics.security_event("response_signature_invalid");
            e.to_fault(HERE)
        })?;
    let resp = &decoded.envelope.soap;
    if resp.is_fault() {
        return Ok((decoded.envelope, decoded.signature));
    }
    if let Some(field) = SoapMessage::inconsistent_echo(&req.soap.header, &resp.header) {
        return Err(HERE.service_failed(
            ErrorCode::InconsistentResponse,
            format!("Field '{field}' does not match in request and response"),
        ));
    }
    let expected = request_hash(&req.soap.bytes);
    match &resp.header.request_hash {
        Some(h)
            if h.value == expected && h.algorithm_id.as_deref().is_none_or(|a| a == SHA512_URI) => {
        }
        Some(_) => {
            return Err(HERE.service_failed(
                ErrorCode::InconsistentResponse,
                "Request hash in the response does not match the request",
            ))
        }
        None => {
            return Err(HERE.service_failed(
                ErrorCode::InconsistentResponse,
                "Response has no requestHash",
            ))
        }
    }
    Ok((decoded.envelope, decoded.signature))
}

/// The provider's server answered the transport with a SOAP fault (it refused or failed the
/// request before its service was called): passed on.
pub(super) fn transport_fault(f: &SoapMessage) -> Fault {
    passed_fault(f).unwrap_or_else(|| {
        HERE.fault(
            ErrorCode::InvalidResponse,
            "The provider's security server answered with a SOAP message that is not a fault",
        )
    })
}

/// A fault from the provider's server or its service, passed on as it was sent: the client
/// gets the same document, the router its code's side and retryability.
fn passed_fault(f: &SoapMessage) -> Option<Fault> {
    match &f.body {
        SoapBody::Fault {
            code,
            string,
            detail,
        } => Some(
            Fault::remote(code.clone(), string.clone(), detail.clone())
                .with_original(f.bytes.clone()),
        ),
        SoapBody::Element { .. } => None,
    }
}
