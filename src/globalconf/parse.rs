//! Reading the XML. The files are small and read rarely, so they become a little element tree
//! first (with DOCTYPE refused and depth bounded), then the model.

use std::collections::HashMap;

use base64::Engine;
use quick_xml::events::Event;

use super::model::*;
use super::GlobalConfError;
use crate::identifiers::{ClientId, SecurityServerId};

const MAX_DEPTH: usize = 64;

#[derive(Debug, Default)]
struct Node {
    name: String,
    attrs: Vec<(String, String)>,
    children: Vec<Node>,
    text: String,
}

fn bad(message: impl Into<String>) -> GlobalConfError {
    GlobalConfError::Malformed {
        file: String::new(),
        message: message.into(),
    }
}

fn local(name: &[u8]) -> String {
    let s = String::from_utf8_lossy(name);
    s.rsplit(':').next().unwrap_or_default().to_string()
}

fn tree(xml: &[u8]) -> Result<Node, GlobalConfError> {
    let mut reader = quick_xml::Reader::from_reader(xml);
    let mut stack: Vec<Node> = vec![Node::default()];
    loop {
        let ev = reader.read_event().map_err(|e| bad(format!("malformed XML: {e}")))?;
        match ev {
            Event::DocType(_) => return Err(bad("DOCTYPE is not allowed")),
            Event::Start(e) | Event::Empty(e) if stack.len() > MAX_DEPTH => {
                return Err(bad(format!("XML deeper than {MAX_DEPTH} levels near <{}>", local(e.name().as_ref()))))
            }
            Event::Start(e) => stack.push(node(&e)?),
            Event::Empty(e) => {
                let n = node(&e)?;
                stack.last_mut().expect("root").children.push(n);
            }
            Event::End(_) => {
                let n = stack.pop().expect("balanced");
                stack.last_mut().ok_or_else(|| bad("unbalanced XML"))?.children.push(n);
            }
            Event::Text(t) => {
                let text = t.unescape().map_err(|e| bad(format!("malformed text: {e}")))?;
                stack.last_mut().expect("root").text.push_str(&text);
            }
            Event::CData(c) => stack.last_mut().expect("root").text.push_str(&String::from_utf8_lossy(&c)),
            Event::Eof => break,
            _ => {}
        }
    }
    let mut root = stack.pop().filter(|_| stack.is_empty()).ok_or_else(|| bad("unbalanced XML"))?;
    match root.children.len() {
        1 => Ok(root.children.remove(0)),
        _ => Err(bad("expected exactly one root element")),
    }
}

fn node(e: &quick_xml::events::BytesStart) -> Result<Node, GlobalConfError> {
    let mut attrs = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|e| bad(format!("malformed attribute: {e}")))?;
        let v = a.unescape_value().map_err(|e| bad(format!("malformed attribute: {e}")))?;
        attrs.push((local(a.key.as_ref()), v.into_owned()));
    }
    Ok(Node {
        name: local(e.name().as_ref()),
        attrs,
        ..Default::default()
    })
}

impl Node {
    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }
    fn opt(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }
    fn req(&self, name: &str) -> Result<&Node, GlobalConfError> {
        self.opt(name).ok_or_else(|| bad(format!("<{}> lacks <{name}>", self.name)))
    }
    fn text_of(&self, name: &str) -> Result<String, GlobalConfError> {
        Ok(self.req(name)?.text.trim().to_string())
    }
    fn opt_text(&self, name: &str) -> Option<String> {
        self.opt(name).map(|n| n.text.trim().to_string())
    }
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
    fn b64(&self, name: &str) -> Result<Vec<u8>, GlobalConfError> {
        decode_b64(&self.text_of(name)?, name)
    }
}

fn decode_b64(s: &str, what: &str) -> Result<Vec<u8>, GlobalConfError> {
    let clean: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(clean)
        .map_err(|e| bad(format!("<{what}> is not base64: {e}")))
}

fn number(n: &Node, name: &str, default: u64) -> Result<u64, GlobalConfError> {
    match n.opt_text(name) {
        None => Ok(default),
        Some(t) => t.parse().map_err(|_| bad(format!("<{name}> is not a number: '{t}'"))),
    }
}

/// An identifier element (`groupMember`, `managementRequestServiceProviderId`).
fn client_id(n: &Node) -> Result<ClientId, GlobalConfError> {
    let id = ClientId {
        instance: n.text_of("xRoadInstance")?,
        member_class: n.text_of("memberClass")?,
        member_code: n.text_of("memberCode")?,
        subsystem: n.opt_text("subsystemCode"),
    };
    match (n.attr("objectType"), &id.subsystem) {
        (Some("MEMBER"), None) | (Some("SUBSYSTEM"), Some(_)) => Ok(id),
        (t, _) => Err(bad(format!("<{}> has objectType {:?} that does not fit its parts", n.name, t))),
    }
}

fn ca_info(n: &Node) -> Result<CaInfo, GlobalConfError> {
    Ok(CaInfo {
        cert_der: n.b64("cert")?,
        ocsp: n
            .all("ocsp")
            .map(|o| {
                Ok(OcspInfo {
                    url: o.text_of("url")?,
                    cert_der: o.opt("cert").map(|_| o.b64("cert")).transpose()?,
                })
            })
            .collect::<Result<_, GlobalConfError>>()?,
    })
}

impl SharedParams {
    pub fn parse(xml: &[u8]) -> Result<SharedParams, GlobalConfError> {
        let root = tree(xml)?;
        if root.name != "conf" {
            return Err(bad(format!("root is <{}>, expected shared parameters <conf>", root.name)));
        }
        let instance = root.text_of("instanceIdentifier")?;
        // v5 added ACME settings to approved CAs; earlier files are read as v3/v4 alike.
        let version = if root.all("approvedCA").any(|c| c.opt("acmeServer").is_some()) { 5 } else { 3 };

        let sources = root
            .all("source")
            .map(|s| {
                Ok(Source {
                    address: s.text_of("address")?,
                    internal_verification_certs: s.all("internalVerificationCert").map(|c| decode_b64(&c.text, "internalVerificationCert")).collect::<Result<_, _>>()?,
                    external_verification_certs: s.all("externalVerificationCert").map(|c| decode_b64(&c.text, "externalVerificationCert")).collect::<Result<_, _>>()?,
                })
            })
            .collect::<Result<_, GlobalConfError>>()?;
        let approved_cas = root
            .all("approvedCA")
            .map(|c| {
                Ok(ApprovedCa {
                    name: c.text_of("name")?,
                    authentication_only: c.opt_text("authenticationOnly").is_some_and(|t| t == "true"),
                    top_ca: ca_info(c.req("topCA")?)?,
                    intermediate_cas: c.all("intermediateCA").map(ca_info).collect::<Result<_, _>>()?,
                    certificate_profile_info: c.opt_text("certificateProfileInfo").unwrap_or_default(),
                })
            })
            .collect::<Result<_, GlobalConfError>>()?;
        let approved_tsas = root
            .all("approvedTSA")
            .map(|t| {
                Ok(ApprovedTsa {
                    name: t.text_of("name")?,
                    url: t.text_of("url")?,
                    cert_der: t.b64("cert")?,
                })
            })
            .collect::<Result<_, GlobalConfError>>()?;

        // Members and subsystems carry XML ids that servers refer to.
        let mut by_ref: HashMap<String, ClientId> = HashMap::new();
        let mut members = Vec::new();
        for m in root.all("member") {
            let class = m.req("memberClass")?;
            let id = ClientId::member(&instance, &class.text_of("code")?, &m.text_of("memberCode")?);
            if let Some(r) = m.attr("id") {
                by_ref.insert(r.to_string(), id.clone());
            }
            let mut subsystems = Vec::new();
            for s in m.all("subsystem") {
                let code = s.text_of("subsystemCode")?;
                if let Some(r) = s.attr("id") {
                    by_ref.insert(r.to_string(), ClientId { subsystem: Some(code.clone()), ..id.clone() });
                }
                subsystems.push(Subsystem { code, name: s.opt_text("subsystemName") });
            }
            members.push(Member {
                id,
                name: m.opt_text("name").unwrap_or_default(),
                class_description: class.opt_text("description").unwrap_or_default(),
                subsystems,
            });
        }
        let resolve = |r: &str| by_ref.get(r).cloned().ok_or_else(|| bad(format!("reference to unknown member or subsystem id '{r}'")));
        let mut security_servers = Vec::new();
        for s in root.all("securityServer") {
            let owner = resolve(&s.text_of("owner")?)?;
            if owner.subsystem.is_some() {
                return Err(bad("a security server's owner must be a member"));
            }
            security_servers.push(SecurityServer {
                id: SecurityServerId { owner, server_code: s.text_of("serverCode")? },
                address: s.opt_text("address"),
                auth_cert_hashes: s.all("authCertHash").map(|h| decode_b64(&h.text, "authCertHash")).collect::<Result<_, _>>()?,
                clients: s.all("client").map(|c| resolve(c.text.trim())).collect::<Result<_, _>>()?,
                maintenance: s.opt("inMaintenanceMode").map(|m| m.opt_text("message").unwrap_or_default()),
            });
        }
        let global_groups = root
            .all("globalGroup")
            .map(|g| {
                Ok(GlobalGroup {
                    code: g.text_of("groupCode")?,
                    description: g.opt_text("description").unwrap_or_default(),
                    members: g.all("groupMember").map(client_id).collect::<Result<_, _>>()?,
                })
            })
            .collect::<Result<_, GlobalConfError>>()?;
        let global_settings = match root.opt("globalSettings") {
            None => GlobalSettings::default(),
            Some(gs) => GlobalSettings {
                member_classes: gs
                    .all("memberClass")
                    .map(|c| Ok(MemberClass { code: c.text_of("code")?, description: c.opt_text("description").unwrap_or_default() }))
                    .collect::<Result<_, GlobalConfError>>()?,
                ocsp_freshness_seconds: number(gs, "ocspFreshnessSeconds", 3600)?,
            },
        };
        Ok(SharedParams {
            version,
            instance_identifier: instance,
            sources,
            approved_cas,
            approved_tsas,
            members,
            security_servers,
            global_groups,
            global_settings,
        })
    }
}

impl PrivateParams {
    pub fn parse(xml: &[u8]) -> Result<PrivateParams, GlobalConfError> {
        let root = tree(xml)?;
        if root.name != "conf" {
            return Err(bad(format!("root is <{}>, expected private parameters <conf>", root.name)));
        }
        let configuration_anchors = root
            .all("configurationAnchor")
            .map(|a| {
                Ok(ConfigurationAnchor {
                    generated_at: a.opt_text("generatedAt").unwrap_or_default(),
                    instance_identifier: a.text_of("instanceIdentifier")?,
                    sources: a
                        .all("source")
                        .map(|s| Ok(AnchorSource { download_url: s.text_of("downloadURL")?, verification_cert: s.b64("verificationCert")? }))
                        .collect::<Result<_, GlobalConfError>>()?,
                })
            })
            .collect::<Result<_, GlobalConfError>>()?;
        let management_service = root
            .opt("managementService")
            .map(|m| {
                Ok::<_, GlobalConfError>(ManagementService {
                    auth_cert_reg_service_address: m.text_of("authCertRegServiceAddress")?,
                    auth_cert_reg_service_cert: m.b64("authCertRegServiceCert")?,
                    management_request_service_provider_id: m.opt("managementRequestServiceProviderId").map(client_id).transpose()?,
                })
            })
            .transpose()?;
        Ok(PrivateParams {
            version: 3,
            instance_identifier: root.text_of("instanceIdentifier")?,
            configuration_anchors,
            management_service,
            time_stamping_interval_seconds: number(&root, "timeStampingIntervalSeconds", 60)?,
        })
    }
}
