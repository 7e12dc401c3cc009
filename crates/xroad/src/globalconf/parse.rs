//! From the element tree to the model. Elements are matched by local name; required elements
//! are required, unknown ones are skipped (v3+ allows extensions at the end of `conf`, and a
//! newer central server may add optional elements elsewhere).

use std::collections::HashMap;

use base64::Engine;

use super::model::*;
use super::xml::{self, Element, NS_IDENTIFIERS, NS_XROAD};
use super::GlobalConfError;
use crate::identifiers::{ClientId, SecurityServerId};

/// Parsing context: which file, for messages.
struct Cx<'a> {
    file: &'a str,
}

type Result<T> = std::result::Result<T, GlobalConfError>;

impl Cx<'_> {
    fn invalid(&self, el: &Element, message: impl Into<String>) -> GlobalConfError {
        GlobalConfError::Invalid {
            file: self.file.into(),
            path: el.path.clone(),
            line: el.line,
            message: message.into(),
        }
    }

    fn all<'e>(&self, el: &'e Element, name: &'e str) -> impl Iterator<Item = &'e Element> + 'e {
        el.children.iter().filter(move |c| c.name == name)
    }

    /// At most one `name` child.
    fn opt<'e>(&self, el: &'e Element, name: &str) -> Result<Option<&'e Element>> {
        let mut found = el.children.iter().filter(|c| c.name == name);
        match (found.next(), found.next()) {
            (first, None) => Ok(first),
            (Some(_), Some(second)) => {
                Err(self.invalid(second, format!("<{name}> may appear only once here")))
            }
            (None, Some(_)) => unreachable!("a second match implies a first"),
        }
    }

    fn req<'e>(&self, el: &'e Element, name: &str) -> Result<&'e Element> {
        self.opt(el, name)?
            .ok_or_else(|| self.invalid(el, format!("required element <{name}> is missing")))
    }

    /// Trimmed text of a required child that must not be empty (codes, ids, URLs).
    fn token(&self, el: &Element, name: &str) -> Result<String> {
        let child = self.req(el, name)?;
        self.nonempty(child)
    }

    fn nonempty(&self, el: &Element) -> Result<String> {
        match el.text.trim() {
            "" => Err(self.invalid(el, "is empty")),
            t => Ok(t.to_string()),
        }
    }

    /// Trimmed text of a required child that may be empty (names, descriptions).
    fn text(&self, el: &Element, name: &str) -> Result<String> {
        Ok(self.req(el, name)?.text.trim().to_string())
    }

    fn opt_text(&self, el: &Element, name: &str) -> Result<Option<String>> {
        Ok(self.opt(el, name)?.map(|c| c.text.trim().to_string()))
    }

    fn opt_token(&self, el: &Element, name: &str) -> Result<Option<String>> {
        self.opt(el, name)?.map(|c| self.nonempty(c)).transpose()
    }

    fn uint(&self, el: &Element, name: &str) -> Result<u64> {
        let child = self.req(el, name)?;
        let t = child.text.trim();
        t.parse()
            .map_err(|_| self.invalid(child, format!("'{t}' is not a non-negative integer")))
    }

    fn boolean(&self, el: &Element) -> Result<bool> {
        match el.text.trim() {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            t => Err(self.invalid(el, format!("'{t}' is not a boolean"))),
        }
    }

    fn base64(&self, el: &Element) -> Result<Vec<u8>> {
        let clean: String = el.text.chars().filter(|c| !c.is_whitespace()).collect();
        if clean.is_empty() {
            return Err(self.invalid(el, "is empty"));
        }
        base64::engine::general_purpose::STANDARD
            .decode(clean)
            .map_err(|e| self.invalid(el, format!("is not base64: {e}")))
    }

    /// A certificate: base64 of DER, or base64 of PEM text (X-Road's own samples do that; Java's
    /// certificate reader takes both), returned as DER.
    fn cert(&self, el: &Element) -> Result<Vec<u8>> {
        let bytes = self.base64(el)?;
        if !bytes.trim_ascii_start().starts_with(b"-----BEGIN") {
            return Ok(bytes);
        }
        let pem = std::str::from_utf8(&bytes)
            .map_err(|_| self.invalid(el, "PEM certificate is not text"))?;
        let body = pem
            .trim_start()
            .split_once('\n')
            .and_then(|(_, rest)| rest.split_once("-----END"))
            .map(|(body, _)| body)
            .ok_or_else(|| self.invalid(el, "PEM certificate lacks its END line"))?;
        let clean: String = body.chars().filter(|c| !c.is_whitespace()).collect();
        base64::engine::general_purpose::STANDARD
            .decode(clean)
            .map_err(|e| self.invalid(el, format!("PEM certificate body is not base64: {e}")))
    }

    fn certs(&self, el: &Element, name: &str) -> Result<Vec<Vec<u8>>> {
        self.all(el, name).map(|c| self.cert(c)).collect()
    }

    fn root<'d>(&self, doc: &'d xml::Document, name: &str, what: &str) -> Result<&'d Element> {
        let root = &doc.root;
        if root.name != name || root.namespace.as_deref().is_some_and(|ns| ns != NS_XROAD) {
            return Err(self.invalid(
                root,
                format!("root element is not <{name}> in {NS_XROAD}, so this is not {what}"),
            ));
        }
        Ok(root)
    }

    /// A declared configuration version; only 3 to 5 are read.
    fn version(&self, v: &str) -> Result<u8> {
        match v.trim().parse::<u8>() {
            Ok(n @ 3..=5) => Ok(n),
            _ => Err(GlobalConfError::UnsupportedVersion {
                file: self.file.into(),
                version: v.trim().into(),
            }),
        }
    }

    /// An `XRoadClientIdentifierType` element (`groupMember`, `managementRequestServiceProviderId`).
    fn client_id(&self, el: &Element) -> Result<ClientId> {
        let object_type = el
            .attrs
            .iter()
            .find(|a| a.name == "objectType" && a.namespace.as_deref() == Some(NS_IDENTIFIERS))
            .map(|a| a.value.trim())
            .ok_or_else(|| {
                self.invalid(
                    el,
                    format!("attribute objectType in namespace {NS_IDENTIFIERS} is missing"),
                )
            })?;
        let id = ClientId {
            instance: self.token(el, "xRoadInstance")?,
            member_class: self.token(el, "memberClass")?,
            member_code: self.token(el, "memberCode")?,
            subsystem: self.opt_token(el, "subsystemCode")?,
        };
        match (object_type, &id.subsystem) {
            ("MEMBER", None) | ("SUBSYSTEM", Some(_)) => Ok(id),
            ("MEMBER", Some(_)) => Err(self.invalid(el, "objectType MEMBER with a subsystemCode")),
            ("SUBSYSTEM", None) => {
                Err(self.invalid(el, "objectType SUBSYSTEM without a subsystemCode"))
            }
            (other, _) => Err(self.invalid(
                el,
                format!("objectType '{other}' is neither MEMBER nor SUBSYSTEM"),
            )),
        }
    }

    fn ca_info(&self, el: &Element) -> Result<CaInfo> {
        Ok(CaInfo {
            cert_der: self.cert(self.req(el, "cert")?)?,
            ocsp: self
                .all(el, "ocsp")
                .map(|o| {
                    Ok(OcspInfo {
                        url: self.token(o, "url")?,
                        cert_der: self.opt(o, "cert")?.map(|c| self.cert(c)).transpose()?,
                    })
                })
                .collect::<Result<_>>()?,
        })
    }

    fn anchor(&self, el: &Element) -> Result<ConfigurationAnchor> {
        let sources: Vec<AnchorSource> = self
            .all(el, "source")
            .map(|s| {
                let verification_certs = self.certs(s, "verificationCert")?;
                if verification_certs.is_empty() {
                    return Err(self.invalid(s, "required element <verificationCert> is missing"));
                }
                Ok(AnchorSource {
                    download_url: self.token(s, "downloadURL")?,
                    verification_certs,
                })
            })
            .collect::<Result<_>>()?;
        if sources.is_empty() {
            return Err(self.invalid(el, "required element <source> is missing"));
        }
        Ok(ConfigurationAnchor {
            generated_at: self.opt_token(el, "generatedAt")?,
            instance_identifier: self.token(el, "instanceIdentifier")?,
            sources,
        })
    }
}

fn xml_id(el: &Element) -> Option<&str> {
    el.attrs
        .iter()
        .find(|a| a.name == "id" && a.namespace.is_none())
        .map(|a| a.value.trim())
}

pub(super) fn shared_params(
    xml_bytes: &[u8],
    file: &str,
    declared: Option<u8>,
) -> Result<SharedParams> {
    let cx = Cx { file };
    let doc = xml::read(xml_bytes, file)?;
    let root = cx.root(&doc, "conf", "shared parameters")?;
    let hinted = doc
        .version_hint
        .as_deref()
        .map(|v| cx.version(v))
        .transpose()?;
    let instance = cx.token(root, "instanceIdentifier")?;

    let sources = cx
        .all(root, "source")
        .map(|s| {
            Ok(Source {
                address: cx.token(s, "address")?,
                internal_verification_certs: cx.certs(s, "internalVerificationCert")?,
                external_verification_certs: cx.certs(s, "externalVerificationCert")?,
            })
        })
        .collect::<Result<_>>()?;

    // The lowest version whose schema has every element present.
    let mut needs = 3;
    let mut approved_cas = Vec::new();
    for ca in cx.all(root, "approvedCA") {
        if let Some(acme) = cx.opt(ca, "acmeServer")? {
            cx.token(acme, "directoryURL")?;
            if cx
                .opt(acme, "authenticationCertificateProfileId")?
                .is_some()
                || cx.opt(acme, "signingCertificateProfileId")?.is_some()
            {
                needs = needs.max(4);
            }
        }
        approved_cas.push(ApprovedCa {
            name: cx.text(ca, "name")?,
            authentication_only: cx
                .opt(ca, "authenticationOnly")?
                .map(|b| cx.boolean(b))
                .transpose()?
                .unwrap_or(false),
            top_ca: cx.ca_info(cx.req(ca, "topCA")?)?,
            intermediate_cas: cx
                .all(ca, "intermediateCA")
                .map(|i| cx.ca_info(i))
                .collect::<Result<_>>()?,
            certificate_profile_info: cx.token(ca, "certificateProfileInfo")?,
        });
    }
    let approved_tsas = cx
        .all(root, "approvedTSA")
        .map(|t| {
            Ok(ApprovedTsa {
                name: cx.text(t, "name")?,
                url: cx.token(t, "url")?,
                cert_der: cx.cert(cx.req(t, "cert")?)?,
            })
        })
        .collect::<Result<_>>()?;

    // XML ids of members and subsystems, which servers refer to by IDREF.
    // Value: the identifier and the path of the element that declared the id.
    let mut targets: HashMap<String, (ClientId, String)> = HashMap::new();
    let mut register = |el: &Element, id: &ClientId| -> Result<()> {
        let Some(key) = xml_id(el) else { return Ok(()) };
        if let Some((_, prior)) = targets.get(key) {
            return Err(cx.invalid(el, format!("id '{key}' is already used by {prior}")));
        }
        targets.insert(key.to_string(), (id.clone(), el.path.clone()));
        Ok(())
    };
    let mut members = Vec::new();
    for m in cx.all(root, "member") {
        let class = cx.req(m, "memberClass")?;
        let id = ClientId::member(
            &instance,
            &cx.token(class, "code")?,
            &cx.token(m, "memberCode")?,
        );
        register(m, &id)?;
        let mut subsystems = Vec::new();
        for s in cx.all(m, "subsystem") {
            let code = cx.token(s, "subsystemCode")?;
            register(
                s,
                &ClientId::subsystem(&instance, &id.member_class, &id.member_code, &code),
            )?;
            let name = cx.opt_text(s, "subsystemName")?;
            if name.is_some() {
                needs = 5;
            }
            subsystems.push(Subsystem { code, name });
        }
        members.push(Member {
            name: cx.text(m, "name")?,
            class_description: cx.text(class, "description")?,
            id,
            subsystems,
        });
    }

    let resolve = |el: &Element| -> Result<ClientId> {
        let key = cx.nonempty(el)?;
        targets
            .get(&key)
            .map(|(id, _)| id.clone())
            .ok_or_else(|| cx.invalid(el, format!("IDREF '{key}' names no member or subsystem")))
    };
    let mut security_servers = Vec::new();
    for s in cx.all(root, "securityServer") {
        let owner_el = cx.req(s, "owner")?;
        let owner = resolve(owner_el)?;
        if owner.subsystem.is_some() {
            return Err(cx.invalid(
                owner_el,
                format!(
                    "owner '{}' is a subsystem; it must be a member",
                    owner_el.text.trim()
                ),
            ));
        }
        let mut auth_cert_hashes = Vec::new();
        for h in cx.all(s, "authCertHash") {
            let hash = cx.base64(h)?;
            if hash.len() != 32 {
                return Err(cx.invalid(
                    h,
                    format!("is {} bytes; configuration v3+ uses SHA-256 (32 bytes), v2's SHA-1 is not supported", hash.len()),
                ));
            }
            auth_cert_hashes.push(hash);
        }
        let maintenance = match cx.opt(s, "inMaintenanceMode")? {
            Some(m) => {
                needs = 5;
                Some(cx.opt_text(m, "message")?.unwrap_or_default())
            }
            None => None,
        };
        security_servers.push(SecurityServer {
            id: SecurityServerId {
                owner,
                server_code: cx.token(s, "serverCode")?,
            },
            address: cx.opt_text(s, "address")?.filter(|a| !a.is_empty()),
            auth_cert_hashes,
            clients: cx.all(s, "client").map(&resolve).collect::<Result<_>>()?,
            maintenance,
        });
    }

    let global_groups = cx
        .all(root, "globalGroup")
        .map(|g| {
            Ok(GlobalGroup {
                code: cx.token(g, "groupCode")?,
                description: cx.text(g, "description")?,
                members: cx
                    .all(g, "groupMember")
                    .map(|m| cx.client_id(m))
                    .collect::<Result<_>>()?,
            })
        })
        .collect::<Result<_>>()?;
    // `centralService` is deprecated and unused by security servers (X-Road's own reader skips
    // it too), so it is neither kept nor checked.

    let settings = cx.req(root, "globalSettings")?;
    let global_settings = GlobalSettings {
        member_classes: cx
            .all(settings, "memberClass")
            .map(|c| {
                Ok(MemberClass {
                    code: cx.token(c, "code")?,
                    description: cx.text(c, "description")?,
                })
            })
            .collect::<Result<_>>()?,
        ocsp_freshness_seconds: cx.uint(settings, "ocspFreshnessSeconds")?,
    };

    Ok(SharedParams {
        version: declared.or(hinted).unwrap_or(3).max(needs),
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

pub(super) fn private_params(
    xml_bytes: &[u8],
    file: &str,
    declared: Option<u8>,
) -> Result<PrivateParams> {
    let cx = Cx { file };
    let doc = xml::read(xml_bytes, file)?;
    let root = cx.root(&doc, "conf", "private parameters")?;
    let hinted = doc
        .version_hint
        .as_deref()
        .map(|v| cx.version(v))
        .transpose()?;
    let management_service = cx
        .opt(root, "managementService")?
        .map(|m| {
            Ok(ManagementService {
                auth_cert_reg_service_address: cx.token(m, "authCertRegServiceAddress")?,
                auth_cert_reg_service_cert: cx
                    .opt(m, "authCertRegServiceCert")?
                    .map(|c| cx.cert(c))
                    .transpose()?,
                management_request_service_provider_id: cx
                    .client_id(cx.req(m, "managementRequestServiceProviderId")?)?,
            })
        })
        .transpose()?;
    Ok(PrivateParams {
        version: declared.or(hinted).unwrap_or(3),
        instance_identifier: cx.token(root, "instanceIdentifier")?,
        configuration_anchors: cx
            .all(root, "configurationAnchor")
            .map(|a| cx.anchor(a))
            .collect::<Result<_>>()?,
        management_service,
        time_stamping_interval_seconds: cx.uint(root, "timeStampingIntervalSeconds")?,
    })
}

pub(super) fn anchor(xml_bytes: &[u8], file: &str) -> Result<ConfigurationAnchor> {
    let cx = Cx { file };
    let doc = xml::read(xml_bytes, file)?;
    cx.anchor(cx.root(&doc, "configurationAnchor", "a configuration anchor")?)
}

/// Checks a version read from outside the file (the `.metadata` sidecar).
pub(super) fn declared_version(v: &str, file: &str) -> Result<u8> {
    Cx { file }.version(v)
}
