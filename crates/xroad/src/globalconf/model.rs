//! The global configuration as brama keeps it in memory.
//!
//! Field shapes follow the X-Road schemas (`SharedParametersTypeV3..V5`, `PrivateParametersTypeV3`),
//! with XML ids resolved: every member, subsystem and server reference is a [`ClientId`].
//! Certificates are held as DER even when the file carries base64 of PEM text, as X-Road's own
//! test configurations do.

use crate::identifiers::{ClientId, SecurityServerId};

/// `shared-params.xml`.
#[derive(Clone, Debug, PartialEq)]
pub struct SharedParams {
    /// Schema version (3, 4 or 5): the declared one (`.metadata` sidecar or the marker comment
    /// [`SharedParams::to_xml`] writes), raised to the lowest version whose elements the file uses.
    /// `to_xml` writes only the elements this version has.
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

/// A configuration source of the instance (`source`, v3+): used for signing-key rotation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub address: String,
    pub internal_verification_certs: Vec<Vec<u8>>,
    pub external_verification_certs: Vec<Vec<u8>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OcspInfo {
    pub url: String,
    /// The responder's signing certificate, when it is not the CA itself.
    pub cert_der: Option<Vec<u8>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaInfo {
    pub cert_der: Vec<u8>,
    pub ocsp: Vec<OcspInfo>,
}

/// `approvedCA`. Its optional `acmeServer` settings are not kept: brama does not order
/// certificates over ACME.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApprovedCa {
    pub name: String,
    /// Certificates of this CA serve TLS authentication only, never signatures.
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
    /// `subsystemName` (v5).
    pub name: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Instance, class and code; never a subsystem.
    pub id: ClientId,
    pub name: String,
    pub class_description: String,
    pub subsystems: Vec<Subsystem>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecurityServer {
    pub id: SecurityServerId,
    /// Host name or IP; brama also accepts `host:port`. A blank address reads as `None`.
    pub address: Option<String>,
    /// SHA-256 hashes of the registered authentication certificates (see [`super::auth_cert_hash`]).
    pub auth_cert_hashes: Vec<Vec<u8>>,
    /// Registered clients, members or subsystems. The owner serves too without being listed.
    pub clients: Vec<ClientId>,
    /// `Some(message)` while the server is in maintenance mode (v5); the message may be empty.
    pub maintenance: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlobalGroup {
    pub code: String,
    pub description: String,
    /// Members and subsystems, matched exactly: a member does not bring in its subsystems.
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
    /// OCSP responses older than this are stale.
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

/// `managementService` of the private parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManagementService {
    pub auth_cert_reg_service_address: String,
    /// TLS certificate of the registration service, when the file carries one.
    pub auth_cert_reg_service_cert: Option<Vec<u8>>,
    pub management_request_service_provider_id: ClientId,
}

/// One source of a configuration anchor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnchorSource {
    pub download_url: String,
    /// Certificates whose public keys may have signed the configuration (rotation lists several).
    pub verification_certs: Vec<Vec<u8>>,
}

/// A configuration anchor: in `configuration-anchor.xml`, or a federated instance's anchor inside
/// the private parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigurationAnchor {
    /// `generatedAt` as written (ISO 8601), when present.
    pub generated_at: Option<String>,
    pub instance_identifier: String,
    pub sources: Vec<AnchorSource>,
}

/// `private-params.xml` (one schema for configuration versions 3 to 5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrivateParams {
    /// Configuration version the file belongs to (3 unless declared otherwise).
    pub version: u8,
    pub instance_identifier: String,
    /// Anchors of federated instances.
    pub configuration_anchors: Vec<ConfigurationAnchor>,
    /// Required by the schema; optional here because brama's own test deployments have none.
    pub management_service: Option<ManagementService>,
    pub time_stamping_interval_seconds: u64,
}

/// One member or subsystem, as `listClients` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientListEntry {
    pub id: ClientId,
    /// The member's name (for a subsystem too, as X-Road's `listClients` does).
    pub name: String,
    /// `subsystemName` (v5), for subsystems that have one.
    pub subsystem_name: Option<String>,
}
