//! Writing the XML back (`brama certs init`, test deployments) in the element order of the X-Road
//! schemas, so X-Road's own tools read it too. Children of `conf` are unqualified, identifier
//! parts and `objectType` are in the identifiers namespace, as the schemas define them.

use std::collections::HashMap;
use std::fmt::Write;

use base64::Engine;

use super::model::*;
use super::xml::{NS_IDENTIFIERS, NS_XROAD, VERSION_COMMENT};
use crate::identifiers::ClientId;

/// Indenting writer; indentation keeps generated files readable and diffable.
struct W {
    out: String,
    depth: usize,
}

impl W {
    fn new(version: u8) -> W {
        let mut out =
            String::from("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n");
        let _ = writeln!(out, "<!-- {VERSION_COMMENT}{version} -->");
        let _ = writeln!(
            out,
            "<xrd:conf xmlns:id=\"{NS_IDENTIFIERS}\" xmlns:xrd=\"{NS_XROAD}\">"
        );
        W { out, depth: 1 }
    }

    fn indent(&mut self) {
        for _ in 0..self.depth {
            self.out.push_str("    ");
        }
    }

    fn open(&mut self, tag: &str) {
        self.open_with(tag, "");
    }

    /// `attrs` is written as is: callers pass only escaped values.
    fn open_with(&mut self, tag: &str, attrs: &str) {
        self.indent();
        let _ = writeln!(self.out, "<{tag}{attrs}>");
        self.depth += 1;
    }

    fn close(&mut self, tag: &str) {
        self.depth -= 1;
        self.indent();
        let _ = writeln!(self.out, "</{tag}>");
    }

    fn leaf(&mut self, tag: &str, text: &str) {
        self.indent();
        let _ = writeln!(self.out, "<{tag}>{}</{tag}>", escape(text));
    }

    fn b64(&mut self, tag: &str, data: &[u8]) {
        self.leaf(tag, &base64::engine::general_purpose::STANDARD.encode(data));
    }

    fn client_id(&mut self, tag: &str, id: &ClientId) {
        self.open_with(tag, &format!(" id:objectType=\"{}\"", id.object_type()));
        self.leaf("id:xRoadInstance", &id.instance);
        self.leaf("id:memberClass", &id.member_class);
        self.leaf("id:memberCode", &id.member_code);
        if let Some(s) = &id.subsystem {
            self.leaf("id:subsystemCode", s);
        }
        self.close(tag);
    }

    fn ca_info(&mut self, tag: &str, ca: &CaInfo) {
        self.open(tag);
        self.b64("cert", &ca.cert_der);
        for o in &ca.ocsp {
            self.open("ocsp");
            self.leaf("url", &o.url);
            if let Some(c) = &o.cert_der {
                self.b64("cert", c);
            }
            self.close("ocsp");
        }
        self.close(tag);
    }

    fn finish(mut self) -> String {
        self.out.push_str("</xrd:conf>\n");
        self.out
    }
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

impl SharedParams {
    /// The document for `self.version`: elements a later version introduced (`subsystemName`,
    /// `inMaintenanceMode`, v5) are left out of older ones. Member and subsystem ids are
    /// numbered afresh (`id0`, `id1`, …). References the format cannot express are left out:
    /// a client that is not among `members` and their subsystems, and a whole server whose
    /// owner is not among `members`.
    pub fn to_xml(&self) -> String {
        let v5 = self.version >= 5;
        let mut w = W::new(self.version);
        w.leaf("instanceIdentifier", &self.instance_identifier);
        for s in &self.sources {
            w.open("source");
            w.leaf("address", &s.address);
            for c in &s.internal_verification_certs {
                w.b64("internalVerificationCert", c);
            }
            for c in &s.external_verification_certs {
                w.b64("externalVerificationCert", c);
            }
            w.close("source");
        }
        for ca in &self.approved_cas {
            w.open("approvedCA");
            w.leaf("name", &ca.name);
            w.leaf(
                "authenticationOnly",
                if ca.authentication_only {
                    "true"
                } else {
                    "false"
                },
            );
            w.ca_info("topCA", &ca.top_ca);
            for i in &ca.intermediate_cas {
                w.ca_info("intermediateCA", i);
            }
            w.leaf("certificateProfileInfo", &ca.certificate_profile_info);
            w.close("approvedCA");
        }
        for t in &self.approved_tsas {
            w.open("approvedTSA");
            w.leaf("name", &t.name);
            w.leaf("url", &t.url);
            w.b64("cert", &t.cert_der);
            w.close("approvedTSA");
        }
        let mut refs: HashMap<ClientId, String> = HashMap::new();
        // A counter of its own, so duplicate identifiers in the model never yield duplicate ids.
        let mut next = 0;
        let mut new_ref = || {
            next += 1;
            format!("id{}", next - 1)
        };
        for m in &self.members {
            let member_ref = new_ref();
            refs.entry(m.id.member_id())
                .or_insert_with(|| member_ref.clone());
            w.open_with("member", &format!(" id=\"{member_ref}\""));
            w.open("memberClass");
            w.leaf("code", &m.id.member_class);
            w.leaf("description", &m.class_description);
            w.close("memberClass");
            w.leaf("memberCode", &m.id.member_code);
            w.leaf("name", &m.name);
            for s in &m.subsystems {
                let sub_ref = new_ref();
                let id = ClientId {
                    subsystem: Some(s.code.clone()),
                    ..m.id.member_id()
                };
                refs.entry(id).or_insert_with(|| sub_ref.clone());
                w.open_with("subsystem", &format!(" id=\"{sub_ref}\""));
                w.leaf("subsystemCode", &s.code);
                if let (true, Some(name)) = (v5, &s.name) {
                    w.leaf("subsystemName", name);
                }
                w.close("subsystem");
            }
            w.close("member");
        }
        for s in &self.security_servers {
            let Some(owner) = refs.get(&s.id.owner) else {
                continue;
            };
            w.open("securityServer");
            w.leaf("owner", owner);
            w.leaf("serverCode", &s.id.server_code);
            if let Some(a) = s.address.as_deref().filter(|a| !a.is_empty()) {
                w.leaf("address", a);
            }
            for h in &s.auth_cert_hashes {
                w.b64("authCertHash", h);
            }
            for c in s.clients.iter().filter_map(|c| refs.get(c)) {
                w.leaf("client", c);
            }
            match (v5, s.maintenance.as_deref()) {
                (true, Some("")) => {
                    w.indent();
                    w.out.push_str("<inMaintenanceMode/>\n");
                }
                (true, Some(message)) => {
                    w.open("inMaintenanceMode");
                    w.leaf("message", message);
                    w.close("inMaintenanceMode");
                }
                _ => {}
            }
            w.close("securityServer");
        }
        for g in &self.global_groups {
            w.open("globalGroup");
            w.leaf("groupCode", &g.code);
            w.leaf("description", &g.description);
            for m in &g.members {
                w.client_id("groupMember", m);
            }
            w.close("globalGroup");
        }
        w.open("globalSettings");
        for c in &self.global_settings.member_classes {
            w.open("memberClass");
            w.leaf("code", &c.code);
            w.leaf("description", &c.description);
            w.close("memberClass");
        }
        w.leaf(
            "ocspFreshnessSeconds",
            &self.global_settings.ocsp_freshness_seconds.to_string(),
        );
        w.close("globalSettings");
        w.finish()
    }
}

impl PrivateParams {
    /// The `PrivateParametersTypeV3` document (the private schema is the same for v3 to v5).
    pub fn to_xml(&self) -> String {
        let mut w = W::new(self.version);
        w.leaf("instanceIdentifier", &self.instance_identifier);
        for a in &self.configuration_anchors {
            w.open("configurationAnchor");
            if let Some(at) = &a.generated_at {
                w.leaf("generatedAt", at);
            }
            w.leaf("instanceIdentifier", &a.instance_identifier);
            for s in &a.sources {
                w.open("source");
                w.leaf("downloadURL", &s.download_url);
                for c in &s.verification_certs {
                    w.b64("verificationCert", c);
                }
                w.close("source");
            }
            w.close("configurationAnchor");
        }
        if let Some(m) = &self.management_service {
            w.open("managementService");
            w.leaf(
                "authCertRegServiceAddress",
                &m.auth_cert_reg_service_address,
            );
            if let Some(c) = &m.auth_cert_reg_service_cert {
                w.b64("authCertRegServiceCert", c);
            }
            w.client_id(
                "managementRequestServiceProviderId",
                &m.management_request_service_provider_id,
            );
            w.close("managementService");
        }
        w.leaf(
            "timeStampingIntervalSeconds",
            &self.time_stamping_interval_seconds.to_string(),
        );
        w.finish()
    }
}
