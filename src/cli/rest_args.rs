//! What `brama send --rest` and `brama load --scenario rest` share: turning `--client`,
//! `--service`, `--path`, `--method`, `--header` and the dialect into an information system's
//! REST request to a client proxy.

use crate::identifiers::{ClientId, ServiceId};
use crate::rest::target::{client_header, path_for, service_header};

/// An information system's request line and identifier headers, in one dialect.
pub struct RestTarget {
    /// The path after the client proxy's base URL, with `--path` (and its query) appended.
    pub path: String,
    /// The client (and for UXP the service) identifier headers.
    pub headers: Vec<(String, String)>,
    /// `x-road` or `uxp`: the prefix of the dialect's other headers (`-userid`, `-issue`, ...).
    pub prefix: &'static str,
    /// `x-road-id` or `uxp-queryid`.
    pub id_header: &'static str,
}

/// X-Road's `/r1/{service}{path}` with `X-Road-Client`, or UXP's `/restapi{path}` with
/// `Uxp-Client` and `Uxp-Service`.
pub fn target(
    client: &ClientId,
    service: &ServiceId,
    path: &str,
    uxp: bool,
) -> Result<RestTarget, String> {
    if !path.is_empty() && !path.starts_with('/') && !path.starts_with('?') {
        return Err("--path starts with / or ?".into());
    }
    Ok(if uxp {
        RestTarget {
            path: format!("/restapi{path}"),
            headers: vec![
                ("uxp-client".into(), client_header(client)),
                ("uxp-service".into(), service_header(service)),
            ],
            prefix: "uxp",
            id_header: "uxp-queryid",
        }
    } else {
        RestTarget {
            path: format!("{}{path}", path_for(service, "")),
            headers: vec![("x-road-client".into(), client_header(client))],
            prefix: "x-road",
            id_header: "x-road-id",
        }
    })
}

/// `--method`, any case.
pub fn method(m: &str) -> Result<http::Method, String> {
    http::Method::from_bytes(m.to_ascii_uppercase().as_bytes())
        .map_err(|_| format!("'{m}' is not an HTTP method"))
}

/// `--header 'Name: value'`: the name lower-cased, both trimmed.
pub fn header(h: &str) -> Result<(String, String), String> {
    match h.split_once(':') {
        Some((n, v)) if !n.trim().is_empty() => {
            Ok((n.trim().to_ascii_lowercase(), v.trim().to_string()))
        }
        _ => Err(format!("--header '{h}' is not 'Name: value'")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_dialects_and_bad_arguments() {
        let c = ClientId::parse_path("SEVDEIR-TEST/GOV/00000001/DIIA").unwrap();
        let s = ServiceId::parse_path("SEVDEIR-TEST/GOV/00000006/EHEALTH/declarations").unwrap();
        let x = target(&c, &s, "?patient=1", false).unwrap();
        assert_eq!(
            x.path,
            "/r1/SEVDEIR-TEST/GOV/00000006/EHEALTH/declarations?patient=1"
        );
        assert_eq!(x.headers[0].0, "x-road-client");
        let u = target(&c, &s, "/7", true).unwrap();
        assert_eq!(u.path, "/restapi/7");
        assert_eq!(u.headers.len(), 2);
        assert_eq!(u.id_header, "uxp-queryid");
        assert!(target(&c, &s, "items", false).is_err());
        assert_eq!(method("get").unwrap(), http::Method::GET);
        assert!(method("G ET").is_err());
        assert_eq!(header(" X-A : b ").unwrap(), ("x-a".into(), "b".into()));
        assert!(header(": b").is_err());
    }
}
