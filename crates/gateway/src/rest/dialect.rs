//! Trembita 2.0 (UXP) speaks the same REST protocol with its own header names: `Uxp-Client`,
//! `Uxp-Service`, `Uxp-Queryid`, `Uxp-Userid`, `Uxp-Issue`, `Uxp-Purpose-Ids`, and a request
//! path of `/restapi[/path]`. brama takes either dialect from information systems, carries the
//! X-Road form between security servers (that is what gets signed) and answers in the dialect
//! the request came in, so a Trembita information system switches to brama unchanged.

use std::borrow::Cow;

use serde::Deserialize;

use super::{target, Header, RestError};
use brama_xroad::error::ErrorCode;

/// Which header set an information system speaks (configured per client).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DialectSetting {
    /// UXP when the request has `Uxp-*` headers or the `/restapi` path, X-Road otherwise.
    #[default]
    Auto,
    Xroad,
    Uxp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    XRoad,
    Uxp,
}

/// UXP request header → X-Road header carried in the header part. UXP headers not listed
/// (`Uxp-Purpose-Ids`, `Uxp-Transaction-Id`, `Uxp-Consent-Ref`, ...) pass through unchanged.
const REQUEST_NAMES: [(&str, &str); 7] = [
    ("uxp-client", super::HDR_CLIENT),
    ("uxp-queryid", super::HDR_ID),
    ("uxp-id", super::HDR_ID),
    ("uxp-userid", super::HDR_USER_ID),
    ("uxp-issue", super::HDR_ISSUE),
    ("uxp-security-server", super::HDR_SECURITY_SERVER),
    ("uxp-represented-party", super::HDR_REPRESENTED_PARTY),
];

/// X-Road response header → the name a UXP client reads.
const RESPONSE_NAMES: [(&str, &str); 6] = [
    (super::HDR_ID, "uxp-queryid"),
    (super::HDR_CLIENT, "uxp-client"),
    (super::HDR_SERVICE, "uxp-service"),
    (super::HDR_REQUEST_ID, "uxp-request-id"),
    (super::HDR_REQUEST_HASH, "uxp-request-hash"),
    (super::HDR_ERROR, "uxp-error"),
];

pub(crate) const UXP_PATH: &str = "/restapi";

/// The dialect of a request under `setting`.
pub fn detect(setting: DialectSetting, path: &str, headers: &[Header]) -> Dialect {
    match setting {
        DialectSetting::Xroad => Dialect::XRoad,
        DialectSetting::Uxp => Dialect::Uxp,
        DialectSetting::Auto => {
            let uxp_path = path == UXP_PATH || path.starts_with("/restapi/");
            if uxp_path || headers.iter().any(|(n, _)| n.starts_with("uxp-")) {
                Dialect::Uxp
            } else {
                Dialect::XRoad
            }
        }
    }
}

/// Turns a request into X-Road terms: the `/r1/...` path and the headers with X-Road names.
/// A UXP request names its service in `Uxp-Service` and its path after `/restapi`; a UXP
/// request on an `/r1/...` path is taken as it is.
pub(crate) fn to_xroad(
    dialect: Dialect,
    path: &str,
    headers: Vec<Header>,
) -> Result<(String, Vec<Header>), RestError> {
    if dialect == Dialect::XRoad {
        return Ok((path.to_string(), headers));
    }
    let mut service = None;
    let mut out = Vec::with_capacity(headers.len());
    for (n, v) in headers {
        if n == "uxp-service" {
            service = Some(v);
            continue;
        }
        match REQUEST_NAMES.iter().find(|(u, _)| *u == n) {
            Some((_, x)) => out.push((x.to_string(), v)),
            None => out.push((n, v)),
        }
    }
    if path.starts_with("/r1/") {
        return Ok((path.to_string(), out));
    }
    let rest = path.strip_prefix(UXP_PATH).ok_or_else(|| {
        RestError::new(
            ErrorCode::InvalidRequest,
            format!("UXP REST requests go to {UXP_PATH}[/path] or /r1/..., not '{path}'"),
        )
    })?;
    let service = service.ok_or_else(|| {
        RestError::new(
            ErrorCode::InvalidRequest,
            "The request has no Uxp-Service header",
        )
    })?;
    let id = target::parse_service(&service)?;
    Ok((target::path_for(&id, rest), out))
}

/// The name of a response header as the information system expects it.
pub(crate) fn response_name(dialect: Dialect, name: &str) -> Cow<'_, str> {
    if dialect == Dialect::Uxp {
        if let Some((_, u)) = RESPONSE_NAMES.iter().find(|(x, _)| *x == name) {
            return Cow::Borrowed(u);
        }
    }
    Cow::Borrowed(name)
}

/// The error header (`X-Road-Error` / `Uxp-Error`).
pub(crate) fn error_header(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::XRoad => super::HDR_ERROR,
        Dialect::Uxp => "uxp-error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(n: &str, v: &str) -> Header {
        (n.into(), v.into())
    }

    #[test]
    fn uxp_requests_become_xroad_ones() {
        let headers = vec![
            h("uxp-client", "SEVDEIR-TEST/GOV/00000001/DIIA"),
            h(
                "uxp-service",
                "SEVDEIR-TEST/GOV/00000006/EHEALTH/declarations",
            ),
            h("uxp-queryid", "q-1"),
            h("uxp-purpose-ids", "p1,p2"),
            h("accept", "application/json"),
        ];
        assert_eq!(
            detect(DialectSetting::Auto, "/restapi", &headers),
            Dialect::Uxp
        );
        let (path, out) = to_xroad(Dialect::Uxp, "/restapi/by-id/7", headers).unwrap();
        assert_eq!(
            path,
            "/r1/SEVDEIR-TEST/GOV/00000006/EHEALTH/declarations/by-id/7"
        );
        assert_eq!(
            out,
            vec![
                h("x-road-client", "SEVDEIR-TEST/GOV/00000001/DIIA"),
                h("x-road-id", "q-1"),
                h("uxp-purpose-ids", "p1,p2"),
                h("accept", "application/json"),
            ]
        );
        assert!(to_xroad(Dialect::Uxp, "/restapi", vec![]).is_err());
        assert!(to_xroad(
            Dialect::Uxp,
            "/elsewhere",
            vec![h("uxp-service", "A/B/C/D/s")]
        )
        .is_err());
        assert_eq!(
            detect(
                DialectSetting::Auto,
                "/r1/A/B/C/D/s",
                &[h("x-road-client", "A/B/C")]
            ),
            Dialect::XRoad
        );
        assert_eq!(
            detect(DialectSetting::Xroad, "/restapi", &[]),
            Dialect::XRoad
        );
        assert_eq!(response_name(Dialect::Uxp, "x-road-id"), "uxp-queryid");
        assert_eq!(response_name(Dialect::XRoad, "x-road-id"), "x-road-id");
    }
}
