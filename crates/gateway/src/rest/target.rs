//! The REST request line (reference §2.1): `/r1/{instance}/{class}/{code}/{subsystem}/{service}`
//! followed by the path passed to the provider, each identifier segment percent-encoded on its
//! own.

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS};

use super::RestError;
use brama_xroad::error::ErrorCode;
use brama_xroad::identifiers::{ClientId, SecurityServerId, ServiceId};

/// What a `/r1/...` path names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub service: ServiceId,
    /// The raw path up to and including the service code.
    pub service_prefix: String,
    /// The raw remainder after the service code: `""` or `/...`, passed on to the provider.
    pub service_path: String,
}

/// Characters escaped when an identifier part is written into a path segment (what Guava's
/// path-segment escaper leaves alone stays as it is).
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// Percent-encodes one identifier part for a path segment or an identifier header.
pub(crate) fn encode_segment(part: &str) -> String {
    utf8_percent_encode(part, SEGMENT).to_string()
}

/// Decodes one percent-encoded segment; it must be UTF-8.
pub(crate) fn decode_segment(seg: &str) -> Result<String, RestError> {
    percent_decode_str(seg)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| {
            RestError::new(
                ErrorCode::InvalidRequest,
                format!("Path segment '{seg}' is not percent-encoded UTF-8"),
            )
        })
}

/// Parses the raw request path (`/r1/...`, without the query).
pub fn parse(raw_path: &str) -> Result<Target, RestError> {
    let bad = |m: String| RestError::new(ErrorCode::InvalidRequest, m);
    // At most 8 pieces: "", version, five identifier parts, and the rest of the path.
    let parts: Vec<&str> = raw_path.splitn(8, '/').collect();
    if parts.len() < 7 || !parts[0].is_empty() {
        return Err(bad(format!(
            "Invalid request URI '{raw_path}': expected /r1/INSTANCE/CLASS/CODE/SUBSYSTEM/SERVICE[/path]"
        )));
    }
    match parts[1].as_bytes() {
        [b'r', b'1'] => {}
        [b'r', d] if d.is_ascii_digit() => {
            return Err(RestError::new(
                ErrorCode::InvalidProtocolVersion,
                format!("Unsupported protocol version {}", parts[1]),
            ))
        }
        _ => {
            return Err(RestError::new(
                ErrorCode::InvalidProtocolVersion,
                format!("Invalid protocol version '{}'", parts[1]),
            ))
        }
    }
    let mut ids = Vec::with_capacity(5);
    for seg in &parts[2..7] {
        ids.push(decode_segment(seg)?);
    }
    let provider = ClientId::parse_path(&ids[..4].join("/"))
        .ok()
        .filter(|_| ids[..4].iter().all(|p| !p.contains('/')))
        .ok_or_else(|| {
            RestError::new(
                ErrorCode::InvalidClientIdentifier,
                format!("'{}' is not a valid service provider", ids[..4].join("/")),
            )
        })?;
    if !brama_xroad::identifiers::is_valid_part(&ids[4]) {
        return Err(bad(format!("'{}' is not a valid service code", ids[4])));
    }
    let service_path = match parts.get(7) {
        Some(rest) => format!("/{rest}"),
        None => String::new(),
    };
    let service_prefix = raw_path[..raw_path.len() - service_path.len()].to_string();
    Ok(Target {
        service: ServiceId::new(provider, &ids[4], None),
        service_prefix,
        service_path,
    })
}

/// The request path for `service` and a provider path (`""` or starting with `/`).
pub fn path_for(service: &ServiceId, service_path: &str) -> String {
    let p = &service.provider;
    let mut s = String::from("/r1");
    for part in [&p.instance, &p.member_class, &p.member_code]
        .into_iter()
        .chain(p.subsystem.as_ref())
        .chain([&service.service_code])
    {
        s.push('/');
        s.push_str(&encode_segment(part));
    }
    s.push_str(service_path);
    s
}

/// An identifier header value of `parts` `/`-separated, each percent-encoded: the decoded parts
/// joined by `/`, or `None` when the count is wrong or a decoded part holds a `/`.
fn decode_identifier(value: &str, parts: std::ops::RangeInclusive<usize>) -> Option<String> {
    let raw: Vec<&str> = value.trim().split('/').collect();
    if !parts.contains(&raw.len()) {
        return None;
    }
    let decoded: Vec<String> = raw
        .iter()
        .map(|p| decode_segment(p).ok())
        .collect::<Option<_>>()?;
    (!decoded.iter().any(|p| p.contains('/'))).then(|| decoded.join("/"))
}

/// A client identifier header value: `INSTANCE/CLASS/CODE[/SUBSYSTEM]`, parts percent-encoded.
pub fn parse_client(value: &str) -> Result<ClientId, RestError> {
    decode_identifier(value, 3..=4)
        .and_then(|p| ClientId::parse_path(&p).ok())
        .ok_or_else(|| {
            RestError::new(
                ErrorCode::InvalidClientIdentifier,
                format!("'{value}' is not a client identifier (INSTANCE/CLASS/CODE[/SUBSYSTEM])"),
            )
        })
}

/// A service identifier header value: `INSTANCE/CLASS/CODE/SUBSYSTEM/SERVICE[/VERSION]`.
pub(crate) fn parse_service(value: &str) -> Result<ServiceId, RestError> {
    decode_identifier(value, 5..=6)
        .and_then(|p| ServiceId::parse_path(&p).ok())
        .ok_or_else(|| {
            RestError::new(
                ErrorCode::InvalidRequest,
                format!(
                    "'{value}' is not a service identifier (INSTANCE/CLASS/CODE/SUBSYSTEM/SERVICE)"
                ),
            )
        })
}

/// `X-Road-Security-Server`: `INSTANCE/CLASS/CODE/SERVERCODE`, parts percent-encoded.
pub(crate) fn parse_server(value: &str) -> Result<SecurityServerId, RestError> {
    decode_identifier(value, 4..=4)
        .and_then(|p| SecurityServerId::parse_path(&p).ok())
        .ok_or_else(|| {
            RestError::new(
                ErrorCode::InvalidRequest,
                format!("'{value}' is not a security server identifier"),
            )
        })
}

/// The identifier header form of a client: parts percent-encoded, joined by `/`.
pub fn client_header(id: &ClientId) -> String {
    let mut parts = vec![
        encode_segment(&id.instance),
        encode_segment(&id.member_class),
        encode_segment(&id.member_code),
    ];
    parts.extend(id.subsystem.as_deref().map(encode_segment));
    parts.join("/")
}

/// The identifier header form of a service (`x-road-service`).
pub fn service_header(id: &ServiceId) -> String {
    let mut s = client_header(&id.provider);
    s.push('/');
    s.push_str(&encode_segment(&id.service_code));
    if let Some(v) = &id.service_version {
        s.push('/');
        s.push_str(&encode_segment(v));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_request_line() {
        let t = parse("/r1/SEVDEIR-TEST/GOV/00000006/EHEALTH/declarations").unwrap();
        assert_eq!(
            t.service.to_string(),
            "SEVDEIR-TEST/GOV/00000006/EHEALTH/declarations"
        );
        assert_eq!(t.service_path, "");
        let t = parse("/r1/SEVDEIR%2DTEST/GOV/00000006/EHEALTH/declarations/a/b%20c").unwrap();
        assert_eq!(t.service.provider.instance, "SEVDEIR-TEST");
        assert_eq!(t.service_path, "/a/b%20c");
        assert_eq!(
            t.service_prefix,
            "/r1/SEVDEIR%2DTEST/GOV/00000006/EHEALTH/declarations"
        );
        // The subsystem is required (as in X-Road's implementation).
        assert!(parse("/r1/A/B/C/svc").is_err());
        assert_eq!(
            parse("/r2/A/B/C/D/svc").unwrap_err().code,
            ErrorCode::InvalidProtocolVersion
        );
        assert!(parse("/r1/A/B/C%2FX/D/svc").is_err());
        assert!(parse("/r1/A/B/C/D/%FF").is_err());
        assert!(parse("r1/A/B/C/D/svc").is_err());
    }

    #[test]
    fn identifier_headers_round_trip() {
        let c = parse_client("SEVDEIR-TEST/GOV/00000001/DIIA").unwrap();
        assert_eq!(client_header(&c), "SEVDEIR-TEST/GOV/00000001/DIIA");
        assert!(parse_client("A/B").is_err());
        assert!(parse_client("A/B/C/D/E").is_err());
        let s = parse_service("A/B/C/D/svc").unwrap();
        assert_eq!(service_header(&s), "A/B/C/D/svc");
        assert_eq!(path_for(&s, "/x?y"), "/r1/A/B/C/D/svc/x?y");
    }
}
