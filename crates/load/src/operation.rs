//! `--operation REGISTRY/OP`: a SOAP request built from the registry code compiled into brama
//! (`brama wsdl list`), with the generated sample data: a valid value in every field, from the
//! WSDL's enumerations and patterns (the same request `brama wsdl show` prints). Every request
//! of a run carries the same data; only its `xrd:id` differs.

use brama_wsdl::runtime::OperationInfo;
use brama_xroad::identifiers::{ClientId, ServiceId};
use brama_xroad::message::build::{self, RequestHeader};

use super::LoadError;

/// `registerBirth` or `dracs/registerBirth`, among the compiled-in registries.
pub fn find(wanted: &str) -> Result<&'static OperationInfo, LoadError> {
    OperationInfo::find(
        brama_wsdl::registries::ALL.iter().copied().flatten(),
        wanted,
    )
    .map_err(LoadError::Usage)
}

/// The service called: `--service` as a provider subsystem (`I/C/M/S`, the operation's code and
/// version added) or as a whole service identifier (`I/C/M/S/CODE[/VERSION]`, e.g. to call a
/// version the provider does not have).
pub fn service(op: &OperationInfo, service: &str) -> Result<ServiceId, LoadError> {
    let parts = service.split('/').count();
    let id = if parts == 4 {
        ClientId::parse_path(service).map(|p| ServiceId::new(p, op.name, op.version))
    } else {
        ServiceId::parse_path(service)
    };
    id.map_err(|e| LoadError::Usage(format!("--service: {e}")))
}

/// The complete request envelope; its id is replaced per request.
pub fn request(
    op: &OperationInfo,
    client: &str,
    service_id: ServiceId,
    user_id: Option<String>,
) -> Result<String, LoadError> {
    let client =
        ClientId::parse_path(client).map_err(|e| LoadError::Usage(format!("--client: {e}")))?;
    let header = RequestHeader {
        client,
        service: service_id,
        id: "00000000-0000-0000-0000-000000000000".into(),
        user_id,
        issue: None,
        security_server: None,
    };
    Ok(build::request(&header, &op.sample_request_xml()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_from_operations_are_valid_x_road_messages() {
        let op = find("dracs/getBirthRecord").unwrap();
        assert_eq!(find("getBirthRecord").unwrap().path(), op.path());
        assert!(find("nothing").is_err());
        let svc = service(op, "SEVDEIR-TEST/GOV/00000002/DRACS").unwrap();
        assert_eq!(svc.service_code, "getBirthRecord");
        assert_eq!(svc.service_version.as_deref(), op.version);
        let v9 = service(op, "SEVDEIR-TEST/GOV/00000002/DRACS/getBirthRecord/v9").unwrap();
        assert_eq!(v9.service_version.as_deref(), Some("v9"));
        assert!(service(op, "SEVDEIR-TEST/GOV").is_err());
        let xml = request(op, "SEVDEIR-TEST/GOV/00000001/DIIA", svc.clone(), None).unwrap();
        let t = super::super::scenario::SoapTemplate::new(xml.as_bytes()).unwrap();
        let m = brama_xroad::message::soap::SoapMessage::parse(
            t.with_id("1b4e28ba-2fa1-41d2-883f-0016d3cca427"),
            None,
            &Default::default(),
        )
        .unwrap();
        m.validate_request().unwrap();
        assert_eq!(m.header.service, Some(svc));
        assert_eq!(
            m.header.id.as_deref(),
            Some("1b4e28ba-2fa1-41d2-883f-0016d3cca427")
        );
    }
}
