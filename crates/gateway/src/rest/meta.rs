//! REST metaservices (reference §7.2): `listMethods`, `allowedMethods` and `getOpenAPI`,
//! answered by the provider's security server itself.

use crate::config::{Endpoint, Service};

pub(crate) const LIST_METHODS: &str = "listMethods";
pub(crate) const ALLOWED_METHODS: &str = "allowedMethods";
pub(crate) const GET_OPENAPI: &str = "getOpenAPI";

pub(crate) fn is_metaservice(code: &str) -> bool {
    [LIST_METHODS, ALLOWED_METHODS, GET_OPENAPI].contains(&code)
}

/// `{"service":[...]}` with each service's identifier, type and the given endpoints.
pub(crate) fn service_list<'a>(
    services: impl IntoIterator<Item = (&'a Service, Vec<&'a Endpoint>)>,
) -> serde_json::Value {
    let list: Vec<serde_json::Value> = services
        .into_iter()
        .map(|(s, endpoints)| {
            let p = &s.id.provider;
            let endpoint_list: Vec<serde_json::Value> = endpoints
                .into_iter()
                .map(|e| serde_json::json!({"method": e.method, "path": e.path}))
                .collect();
            serde_json::json!({
                "object_type": "SERVICE",
                "xroad_instance": p.instance,
                "member_class": p.member_class,
                "member_code": p.member_code,
                "subsystem_code": p.subsystem,
                "service_code": s.id.service_code,
                "service_type": s.kind.as_str(),
                "endpoint_list": endpoint_list,
            })
        })
        .collect();
    serde_json::json!({ "service": list })
}
