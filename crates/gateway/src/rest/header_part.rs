//! The REST header part (reference §3.4): the bytes that stand for a REST message in the
//! signature (`/message.xml`) and travel as `application/x-road-rest-request` / `-response`.
//!
//! ```text
//! request:  METHOD CRLF /r1/.../SERVICE[/path][?query] CRLF (name ":" value CRLF)*
//! response: STATUS CRLF reason CRLF (name ":" value CRLF)*
//! ```
//! No space after the colon; header order preserved. A parser tells a response by its first
//! byte being a digit 1-9.

use bytes::Bytes;

use super::target::{self, Target};
use super::{find, is_skipped, Header, RestError};
use super::{HDR_CLIENT, HDR_ID, HDR_REQUEST_HASH, HDR_REQUEST_ID, HDR_SERVICE};
use brama_sign::digest::DigestAlgorithm;
use brama_xroad::error::ErrorCode;
use brama_xroad::identifiers::{ClientId, ServiceId};

/// Header parts larger than this are refused (they hold only a request line and headers).
pub(crate) const MAX_HEADER_PART: usize = 256 * 1024;

/// A REST request as carried between security servers.
#[derive(Clone, Debug)]
pub struct RestRequest {
    pub method: String,
    /// Raw path, `/r1/...`, as received (percent-encoding kept).
    pub path: String,
    pub query: Option<String>,
    pub headers: Vec<Header>,
    pub target: Target,
    pub client: ClientId,
    /// `x-road-id`: the message id.
    pub id: String,
    /// `x-road-request-id`: shared by the request and its response.
    pub request_id: String,
    /// The serialised header part (what is hashed and signed).
    pub bytes: Bytes,
}

fn write_headers(out: &mut Vec<u8>, headers: &[Header]) {
    for (n, v) in headers {
        out.extend_from_slice(n.as_bytes());
        out.push(b':');
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

impl RestRequest {
    /// Builds the request a client security server sends: the information system's headers
    /// minus the skipped ones and any `x-road-request-id`/`-hash`, then `x-road-request-id`, then
    /// a generated `x-road-id` (`INSTANCE-uuid`) if the client sent none (X-Road's order).
    pub fn build(
        method: &str,
        path: &str,
        query: Option<&str>,
        headers: Vec<Header>,
        request_id: &str,
    ) -> Result<RestRequest, RestError> {
        if !super::METHODS.contains(&method) {
            return Err(RestError::new(
                ErrorCode::InvalidHttpMethod,
                format!("HTTP method {method} is not supported"),
            ));
        }
        let target = target::parse(path)?;
        let mut headers: Vec<Header> = headers
            .into_iter()
            .filter(|(n, _)| {
                !is_skipped(n)
                    && !n.eq_ignore_ascii_case(HDR_REQUEST_ID)
                    && !n.eq_ignore_ascii_case(HDR_REQUEST_HASH)
            })
            .collect();
        headers.push((HDR_REQUEST_ID.into(), request_id.into()));
        if find(&headers, HDR_ID).is_none_or(str::is_empty) {
            headers.retain(|(n, _)| !n.eq_ignore_ascii_case(HDR_ID));
            headers.push((
                HDR_ID.into(),
                format!(
                    "{}-{}",
                    target.service.provider.instance,
                    uuid::Uuid::new_v4()
                ),
            ));
        }
        let mut out = Vec::with_capacity(256 + path.len());
        out.extend_from_slice(method.as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(path.as_bytes());
        if let Some(q) = query {
            out.push(b'?');
            out.extend_from_slice(q.as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        write_headers(&mut out, &headers);
        Self::parse(Bytes::from(out))
    }

    /// Parses a received header part.
    pub fn parse(bytes: Bytes) -> Result<RestRequest, RestError> {
        let bad = |m: &str| RestError::new(ErrorCode::InvalidRequest, m.to_string());
        if bytes.len() > MAX_HEADER_PART {
            return Err(bad("REST header part is too large"));
        }
        let text = std::str::from_utf8(&bytes).map_err(|_| bad("REST header part is not UTF-8"))?;
        let mut lines = split_lines(text);
        let method = lines
            .next()
            .ok_or_else(|| bad("REST header part is empty"))?;
        if !super::METHODS.contains(&method) {
            return Err(RestError::new(
                ErrorCode::InvalidHttpMethod,
                format!("HTTP method '{method}' is not supported"),
            ));
        }
        let uri = lines
            .next()
            .ok_or_else(|| bad("REST header part has no request URI"))?;
        if !uri.starts_with('/') || uri.contains('#') {
            return Err(bad("Invalid request URI"));
        }
        let (path, query) = match uri.split_once('?') {
            Some((p, q)) => (p, Some(q.to_string())),
            None => (uri, None),
        };
        let headers = parse_headers(lines)?;
        let target = target::parse(path)?;
        let client = find(&headers, HDR_CLIENT)
            .ok_or_else(|| {
                RestError::new(
                    ErrorCode::InvalidClientIdentifier,
                    "The request has no X-Road-Client header",
                )
            })
            .and_then(target::parse_client)?;
        let id = find(&headers, HDR_ID)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| bad("The request has no X-Road-Id"))?
            .to_string();
        let request_id = find(&headers, HDR_REQUEST_ID)
            .unwrap_or_default()
            .to_string();
        Ok(RestRequest {
            method: method.to_string(),
            path: path.to_string(),
            query,
            headers,
            target,
            client,
            id,
            request_id,
            bytes,
        })
    }

    pub fn service(&self) -> &ServiceId {
        &self.target.service
    }

    /// The path and query sent to the provider's service, after its URL's own path.
    pub fn service_path_and_query(&self) -> String {
        match &self.query {
            Some(q) => format!("{}?{q}", self.target.service_path),
            None => self.target.service_path.clone(),
        }
    }
}

/// A REST response as carried between security servers.
#[derive(Clone, Debug)]
pub struct RestResponse {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<Header>,
    pub id: String,
    pub request_hash: Vec<u8>,
    pub service: Option<ServiceId>,
    pub client: Option<ClientId>,
    pub request_id: Option<String>,
    pub bytes: Bytes,
}

/// What the provider side adds to the service's answer.
pub struct ResponseContext<'a> {
    pub client: &'a ClientId,
    pub id: &'a str,
    pub service: &'a ServiceId,
    pub request_id: &'a str,
    pub request_hash: &'a [u8],
}

impl RestResponse {
    /// Builds the response the provider's security server signs: the service's headers minus
    /// the skipped ones and its own `x-road-id`, `-request-hash`, `-client`, `-request-id`, then
    /// `x-road-id`, `x-road-client`, `x-road-service`, `x-road-request-id`,
    /// `x-road-request-hash` in that order.
    pub fn build(
        status: u16,
        reason: &str,
        headers: Vec<Header>,
        ctx: &ResponseContext<'_>,
    ) -> Result<RestResponse, RestError> {
        use base64::Engine;
        let mut headers: Vec<Header> = headers
            .into_iter()
            .filter(|(n, _)| {
                !is_skipped(n)
                    && ![HDR_ID, HDR_REQUEST_HASH, HDR_CLIENT, HDR_REQUEST_ID]
                        .iter()
                        .any(|h| n.eq_ignore_ascii_case(h))
            })
            .collect();
        headers.push((HDR_ID.into(), ctx.id.into()));
        headers.push((HDR_CLIENT.into(), target::client_header(ctx.client)));
        headers.push((HDR_SERVICE.into(), target::service_header(ctx.service)));
        headers.push((HDR_REQUEST_ID.into(), ctx.request_id.into()));
        headers.push((
            HDR_REQUEST_HASH.into(),
            base64::engine::general_purpose::STANDARD.encode(ctx.request_hash),
        ));
        let mut out = Vec::with_capacity(512);
        out.extend_from_slice(status.to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(reason.as_bytes());
        out.extend_from_slice(b"\r\n");
        write_headers(&mut out, &headers);
        Self::parse(Bytes::from(out))
    }

    pub fn parse(bytes: Bytes) -> Result<RestResponse, RestError> {
        use base64::Engine;
        let bad = |m: &str| RestError::new(ErrorCode::InvalidResponse, m.to_string());
        if bytes.len() > MAX_HEADER_PART {
            return Err(bad("REST header part is too large"));
        }
        let text = std::str::from_utf8(&bytes).map_err(|_| bad("REST header part is not UTF-8"))?;
        let mut lines = split_lines(text);
        let status = lines
            .next()
            .and_then(|s| s.parse::<u16>().ok())
            .filter(|s| (100..1000).contains(s))
            .ok_or_else(|| bad("REST response has no valid status"))?;
        let reason = lines.next().unwrap_or_default().to_string();
        let headers = parse_headers(lines).map_err(|e| bad(&e.message))?;
        let id = find(&headers, HDR_ID)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| bad("Invalid REST response: no x-road-id"))?
            .to_string();
        let request_hash = find(&headers, HDR_REQUEST_HASH)
            .and_then(|h| base64::engine::general_purpose::STANDARD.decode(h).ok())
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad("Invalid REST response: no x-road-request-hash"))?;
        let service = find(&headers, HDR_SERVICE)
            .map(target::parse_service)
            .transpose()
            .map_err(|e| bad(&e.message))?;
        let client = find(&headers, HDR_CLIENT)
            .map(target::parse_client)
            .transpose()
            .map_err(|e| bad(&e.message))?;
        let request_id = find(&headers, HDR_REQUEST_ID).map(str::to_string);
        Ok(RestResponse {
            status,
            reason,
            headers,
            id,
            request_hash,
            service,
            client,
            request_id,
            bytes,
        })
    }
}

/// Lines separated by CRLF; the text after the last CRLF (normally empty) is ignored only when
/// it is empty.
fn split_lines(text: &str) -> impl Iterator<Item = &str> {
    let text = text.strip_suffix("\r\n").unwrap_or(text);
    text.split("\r\n").filter(|_| !text.is_empty())
}

fn parse_headers<'a>(lines: impl Iterator<Item = &'a str>) -> Result<Vec<Header>, RestError> {
    let mut out = Vec::new();
    for line in lines {
        let (n, v) = line.split_once(':').ok_or_else(|| {
            RestError::new(
                ErrorCode::InvalidRequest,
                format!("Invalid header '{line}'"),
            )
        })?;
        if n.is_empty() || is_skipped(n) {
            return Err(RestError::new(
                ErrorCode::InvalidRequest,
                format!("Invalid header: '{n}'"),
            ));
        }
        if out.len() >= 1000 {
            return Err(RestError::new(
                ErrorCode::InvalidRequest,
                "REST header part has too many headers",
            ));
        }
        out.push((n.to_string(), v.to_string()));
    }
    Ok(out)
}

/// `X-Road-Request-Hash` (reference §2.2): H(header part), or H(H(header part) ‖ H(body)) when
/// the request has a body.
pub fn request_hash(
    alg: DigestAlgorithm,
    header_part: &[u8],
    body_digest: Option<&[u8]>,
) -> Vec<u8> {
    let head = alg.digest(header_part);
    match body_digest {
        None => head,
        Some(b) => {
            let mut both = head;
            both.extend_from_slice(b);
            alg.digest(&both)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(n: &str, v: &str) -> Header {
        (n.into(), v.into())
    }

    #[test]
    fn request_bytes_are_exact() {
        let r = RestRequest::build(
            "GET",
            "/r1/SEVDEIR-TEST/GOV/00000006/EHEALTH/declarations",
            Some("patient=1"),
            vec![
                h("x-road-client", "SEVDEIR-TEST/GOV/00000001/DIIA"),
                h("host", "localhost"),
                h("accept", "application/json"),
                h("x-road-id", "id-1"),
                h("x-road-request-hash", "forged"),
            ],
            "rid",
        )
        .unwrap();
        assert_eq!(
            &r.bytes[..],
            b"GET\r\n/r1/SEVDEIR-TEST/GOV/00000006/EHEALTH/declarations?patient=1\r\nx-road-client:SEVDEIR-TEST/GOV/00000001/DIIA\r\naccept:application/json\r\nx-road-id:id-1\r\nx-road-request-id:rid\r\n"
        );
        assert_eq!(r.client.to_string(), "SEVDEIR-TEST/GOV/00000001/DIIA");
        assert_eq!(r.service_path_and_query(), "?patient=1");
        // No id: one is generated after the request id.
        let r = RestRequest::build(
            "POST",
            "/r1/A/B/C/D/svc/x",
            None,
            vec![h("x-road-client", "A/B/C/E")],
            "rid",
        )
        .unwrap();
        let text = String::from_utf8(r.bytes.to_vec()).unwrap();
        assert!(text.starts_with("POST\r\n/r1/A/B/C/D/svc/x\r\nx-road-client:A/B/C/E\r\nx-road-request-id:rid\r\nx-road-id:A-"), "{text}");
        assert_eq!(r.service_path_and_query(), "/x");
        assert!(RestRequest::build("BREW", "/r1/A/B/C/D/s", None, vec![], "r").is_err());
        // No client.
        assert_eq!(
            RestRequest::build("GET", "/r1/A/B/C/D/s", None, vec![], "r")
                .unwrap_err()
                .code,
            ErrorCode::InvalidClientIdentifier
        );
    }

    #[test]
    fn response_headers_are_appended_in_order() {
        let client = ClientId::parse_path("A/B/C/E").unwrap();
        let service = ServiceId::parse_path("A/B/C/D/svc").unwrap();
        let r = RestResponse::build(
            200,
            "OK",
            vec![
                h("content-type", "application/json"),
                h("x-road-id", "spoof"),
                h("content-length", "2"),
            ],
            &ResponseContext {
                client: &client,
                id: "id-1",
                service: &service,
                request_id: "rid",
                request_hash: &[1, 2, 3],
            },
        )
        .unwrap();
        assert_eq!(
            &r.bytes[..],
            b"200\r\nOK\r\ncontent-type:application/json\r\nx-road-id:id-1\r\nx-road-client:A/B/C/E\r\nx-road-service:A/B/C/D/svc\r\nx-road-request-id:rid\r\nx-road-request-hash:AQID\r\n"
        );
        assert_eq!(r.request_hash, vec![1, 2, 3]);
        assert!(RestResponse::parse(Bytes::from_static(b"200\r\nOK\r\n")).is_err());
    }

    #[test]
    fn request_hash_covers_body_when_present() {
        let alg = DigestAlgorithm::Sha512;
        assert_eq!(request_hash(alg, b"h", None), alg.digest(b"h"));
        let body = alg.digest(b"body");
        let mut cat = alg.digest(b"h");
        cat.extend_from_slice(&body);
        assert_eq!(request_hash(alg, b"h", Some(&body)), alg.digest(&cat));
    }
}
