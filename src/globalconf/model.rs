//! The parts of the global configuration brama uses.

use crate::identifiers::{ClientId, SecurityServerId};

#[derive(Clone, Debug, PartialEq)]
pub struct SharedParams {
    /// Schema version the file was read as (3, 4 or 5); written back in that shape.
    pub version: u8,
    pub instance_identifier: String,
    pub sources: Vec<Source>,
    pub approved_cas: Vec<ApprovedCa>,
    pub approved_tsas: Vec<ApprovedTsa>,
    pub members: Vec<Member>,
    pub security_servers: Vec<SecurityServer>,
    pub global_groups: Vec<GlobalGroup>,
    pub global_settings: GlobalSettings,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub address: String,
    pub internal_verification_certs: Vec<Vec<u8>>,
    pub external_verification_certs: Vec<Vec<u8>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OcspInfo {
    pub url: String,
    pub cert_der: Option<Vec<u8>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaInfo {
    pub cert_der: Vec<u8>,
    pub ocsp: Vec<OcspInfo>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApprovedCa {
    pub name: String,
    pub authentication_only: bool,
    pub top_ca: CaInfo,
    pub intermediate_cas: Vec<CaInfo>,
    /// Java class name of X-Road's certificate profile (kept as is).
    pub certificate_profile_info: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApprovedTsa {
    pub name: String,
    pub url: String,
    pub cert_der: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subsystem {
    pub code: String,
    pub name: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub id: ClientId,
    pub name: String,
    pub class_description: String,
    pub subsystems: Vec<Subsystem>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecurityServer {
    pub id: SecurityServerId,
    /// Host name or IP; brama also accepts `host:port`.
    pub address: Option<String>,
    /// SHA-256 hashes of the registered authentication certificates.
    pub auth_cert_hashes: Vec<Vec<u8>>,
    pub clients: Vec<ClientId>,
    /// `Some(message)` while the server is in maintenance mode.
    pub maintenance: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlobalGroup {
    pub code: String,
    pub description: String,
    pub members: Vec<ClientId>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberClass {
    pub code: String,
    pub description: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlobalSettings {
    pub member_classes: Vec<MemberClass>,
    pub ocsp_freshness_seconds: u64,
}

impl Default for GlobalSettings {
    fn default() -> Self {
        GlobalSettings {
            member_classes: Vec::new(),
            ocsp_freshness_seconds: 3600,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManagementService {
    pub auth_cert_reg_service_address: String,
    pub auth_cert_reg_service_cert: Vec<u8>,
    pub management_request_service_provider_id: Option<ClientId>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnchorSource {
    pub download_url: String,
    pub verification_cert: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigurationAnchor {
    pub generated_at: String,
    pub instance_identifier: String,
    pub sources: Vec<AnchorSource>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrivateParams {
    pub version: u8,
    pub instance_identifier: String,
    pub configuration_anchors: Vec<ConfigurationAnchor>,
    pub management_service: Option<ManagementService>,
    pub time_stamping_interval_seconds: u64,
}
