//! Deployments described in code: which members, subsystems and security servers an instance
//! has. `brama certs init` writes the default one as a global configuration; the integration
//! tests build their own (two servers, other instances) the same way.

use std::path::Path;

use crate::pki::{MemberSpec, Pki, PkiSpec, ServerSpec};
use brama_xroad::globalconf::{
    auth_cert_hash, ApprovedCa, ApprovedTsa, CaInfo, GlobalGroup, GlobalSettings, Member,
    MemberClass, OcspInfo, PrivateParams, SecurityServer, SharedParams, Subsystem,
};
use brama_xroad::identifiers::{ClientId, SecurityServerId};

#[derive(Clone, Debug)]
pub struct MemberDef {
    pub class: String,
    pub code: String,
    pub name: String,
    pub subsystems: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct ServerDef {
    /// Owner member code (class from the owner's member definition).
    pub owner_code: String,
    pub code: String,
    /// `host` or `host:port`.
    pub address: String,
    pub clients: Vec<ClientId>,
}

#[derive(Clone, Debug)]
pub struct Topology {
    pub instance: String,
    pub members: Vec<MemberDef>,
    pub servers: Vec<ServerDef>,
    pub global_groups: Vec<GlobalGroup>,
    /// The test CA's OCSP responders (`approvedCA/topCA/ocsp/url`); none: statuses unchecked.
    pub ocsp_urls: Vec<String>,
    /// The test TSA's addresses (the simulator's `POST /tsa` by default).
    pub tsa_urls: Vec<String>,
}

const MINTSYFRY: &str = "Міністерство цифрової трансформації України";
const MINJUST: &str = "Міністерство юстиції України (ДРАЦС)";

/// The embedded default: `ss1` hosts DIIA, DRACS and OTHER; `ss2` (owned by the DRACS member) is
/// registered for tests that run a second brama.
pub fn default_topology() -> Topology {
    let i = "SEVDEIR-TEST";
    let member = |code: &str, name: &str, subs: &[&str]| MemberDef {
        class: "GOV".into(),
        code: code.into(),
        name: name.into(),
        subsystems: subs.iter().map(|s| s.to_string()).collect(),
    };
    Topology {
        instance: i.into(),
        members: vec![
            member("00000001", MINTSYFRY, &["DIIA"]),
            member("00000002", MINJUST, &["DRACS"]),
            member("00000003", "Державна міграційна служба України", &["DMS"]),
            member("00000004", "Державна податкова служба України", &["DPS"]),
            member(
                "00000005",
                "Міністерство соціальної політики України",
                &["EISSS"],
            ),
            member(
                "00000006",
                "Національна служба здоров'я України",
                &["EHEALTH"],
            ),
            member("00000007", "Реєстр територіальної громади", &["RTG"]),
            member("00000009", "Тестова установа", &["OTHER"]),
        ],
        servers: vec![
            ServerDef {
                owner_code: "00000001".into(),
                code: "ss1".into(),
                address: "127.0.0.1".into(),
                clients: vec![
                    ClientId::subsystem(i, "GOV", "00000001", "DIIA"),
                    ClientId::subsystem(i, "GOV", "00000002", "DRACS"),
                    ClientId::subsystem(i, "GOV", "00000003", "DMS"),
                    ClientId::subsystem(i, "GOV", "00000004", "DPS"),
                    ClientId::subsystem(i, "GOV", "00000005", "EISSS"),
                    ClientId::subsystem(i, "GOV", "00000006", "EHEALTH"),
                    ClientId::subsystem(i, "GOV", "00000007", "RTG"),
                    ClientId::subsystem(i, "GOV", "00000009", "OTHER"),
                ],
            },
            ServerDef {
                owner_code: "00000002".into(),
                code: "ss2".into(),
                address: "127.0.0.1:5501".into(),
                clients: vec![],
            },
        ],
        global_groups: vec![GlobalGroup {
            code: "security-server-owners".into(),
            description: "Security server owners".into(),
            members: vec![
                ClientId::member(i, "GOV", "00000001"),
                ClientId::member(i, "GOV", "00000002"),
            ],
        }],
        // The simulator's test responder (config/brama.toml, [simulator.ocsp_responder]).
        ocsp_urls: vec!["http://127.0.0.1:8090/ocsp".into()],
        tsa_urls: vec!["http://127.0.0.1:8090/tsa".into()],
    }
}

impl Topology {
    fn member(&self, code: &str) -> Option<&MemberDef> {
        self.members.iter().find(|m| m.code == code)
    }

    /// The PKI this topology needs (one auth certificate per server, a signing one per member).
    pub fn pki_spec(&self, ca_name: &str, clients: &[&str]) -> PkiSpec {
        PkiSpec {
            instance: self.instance.clone(),
            ca_name: ca_name.into(),
            servers: self
                .servers
                .iter()
                .map(|s| {
                    let owner = self.member(&s.owner_code);
                    ServerSpec {
                        owner_class: owner.map_or("GOV".into(), |m| m.class.clone()),
                        owner_code: s.owner_code.clone(),
                        owner_name: owner.map_or(String::new(), |m| m.name.clone()),
                        server_code: s.code.clone(),
                        address: s
                            .address
                            .rsplit_once(':')
                            .map_or(s.address.as_str(), |(h, _)| h)
                            .to_string(),
                    }
                })
                .collect(),
            members: self
                .members
                .iter()
                .map(|m| MemberSpec {
                    class: m.class.clone(),
                    code: m.code.clone(),
                    name: m.name.clone(),
                })
                .collect(),
            clients: clients.iter().map(|c| c.to_string()).collect(),
        }
    }

    /// Shared parameters with the PKI's CA approved and its auth certificates registered.
    pub fn shared_params(&self, pki: &Pki) -> SharedParams {
        let i = &self.instance;
        let mut classes: Vec<MemberClass> = Vec::new();
        for m in &self.members {
            if !classes.iter().any(|c| c.code == m.class) {
                classes.push(MemberClass {
                    code: m.class.clone(),
                    description: "Державні органи (government)".into(),
                });
            }
        }
        SharedParams {
            version: 3,
            instance_identifier: i.clone(),
            sources: Vec::new(),
            approved_cas: vec![ApprovedCa {
                name: "brama test CA".into(),
                authentication_only: false,
                top_ca: CaInfo {
                    cert_der: pki.ca.cert_der.clone(),
                    ocsp: self
                        .ocsp_urls
                        .iter()
                        .map(|url| OcspInfo {
                            url: url.clone(),
                            cert_der: None,
                        })
                        .collect(),
                },
                intermediate_cas: Vec::new(),
                certificate_profile_info: "ee.ria.xroad.common.certificateprofile.impl.FiVRKCertificateProfileInfoProvider".into(),
            }],
            approved_tsas: self
                .tsa_urls
                .iter()
                .map(|url| ApprovedTsa {
                    name: "brama test TSA".into(),
                    url: url.clone(),
                    cert_der: pki.tsa.cert_der.clone(),
                })
                .collect(),
            members: self
                .members
                .iter()
                .map(|m| Member {
                    id: ClientId::member(i, &m.class, &m.code),
                    name: m.name.clone(),
                    class_description: "Державні органи (government)".into(),
                    subsystems: m.subsystems.iter().map(|s| Subsystem { code: s.clone(), name: None }).collect(),
                })
                .collect(),
            security_servers: self
                .servers
                .iter()
                .map(|s| SecurityServer {
                    id: SecurityServerId {
                        owner: ClientId::member(i, &self.member(&s.owner_code).map_or("GOV".into(), |m| m.class.clone()), &s.owner_code),
                        server_code: s.code.clone(),
                    },
                    address: Some(s.address.clone()),
                    auth_cert_hashes: pki.auth.get(&s.code).map(|c| vec![auth_cert_hash(&c.cert_der)]).unwrap_or_default(),
                    clients: s.clients.clone(),
                    maintenance: None,
                })
                .collect(),
            global_groups: self.global_groups.clone(),
            global_settings: GlobalSettings {
                member_classes: classes,
                ocsp_freshness_seconds: 3600,
            },
        }
    }

    /// Writes `dir/instance-identifier` and `dir/<INSTANCE>/{shared,private}-params.xml`.
    pub fn write_globalconf(&self, dir: &Path, pki: &Pki) -> std::io::Result<()> {
        let inst = dir.join(&self.instance);
        std::fs::create_dir_all(&inst)?;
        std::fs::write(dir.join("instance-identifier"), &self.instance)?;
        std::fs::write(
            inst.join("shared-params.xml"),
            self.shared_params(pki).to_xml(),
        )?;
        let private = PrivateParams {
            version: 3,
            instance_identifier: self.instance.clone(),
            configuration_anchors: Vec::new(),
            management_service: None,
            time_stamping_interval_seconds: 60,
        };
        std::fs::write(inst.join("private-params.xml"), private.to_xml())
    }
}
