//! Writing the XML back (`brama certs init` and test deployments), in the element order of the
//! X-Road schemas so X-Road tools read it too.

use std::fmt::Write;

use base64::Engine;

use super::model::*;
use crate::identifiers::ClientId;
use crate::message::soap::escape;

fn b64(d: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(d)
}

fn el(out: &mut String, name: &str, text: &str) {
    let _ = write!(out, "<{name}>{}</{name}>", escape(text));
}

fn id_parts(out: &mut String, id: &ClientId) {
    el(out, "id:xRoadInstance", &id.instance);
    el(out, "id:memberClass", &id.member_class);
    el(out, "id:memberCode", &id.member_code);
    if let Some(s) = &id.subsystem {
        el(out, "id:subsystemCode", s);
    }
}

fn ca_info(out: &mut String, tag: &str, ca: &CaInfo) {
    let _ = write!(out, "<{tag}>");
    el(out, "cert", &b64(&ca.cert_der));
    for o in &ca.ocsp {
        out.push_str("<ocsp>");
        el(out, "url", &o.url);
        if let Some(c) = &o.cert_der {
            el(out, "cert", &b64(c));
        }
        out.push_str("</ocsp>");
    }
    let _ = write!(out, "</{tag}>");
}

const HEAD: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<xrd:conf xmlns:id=\"http://x-road.eu/xsd/identifiers\" xmlns:xrd=\"http://x-road.eu/xsd/xroad.xsd\">";

impl SharedParams {
    pub fn to_xml(&self) -> String {
        let mut out = String::from(HEAD);
        el(&mut out, "instanceIdentifier", &self.instance_identifier);
        for s in &self.sources {
            out.push_str("<source>");
            el(&mut out, "address", &s.address);
            for c in &s.internal_verification_certs {
                el(&mut out, "internalVerificationCert", &b64(c));
            }
            for c in &s.external_verification_certs {
                el(&mut out, "externalVerificationCert", &b64(c));
            }
            out.push_str("</source>");
        }
        for ca in &self.approved_cas {
            out.push_str("<approvedCA>");
            el(&mut out, "name", &ca.name);
            el(&mut out, "authenticationOnly", if ca.authentication_only { "true" } else { "false" });
            ca_info(&mut out, "topCA", &ca.top_ca);
            for i in &ca.intermediate_cas {
                ca_info(&mut out, "intermediateCA", i);
            }
            el(&mut out, "certificateProfileInfo", &ca.certificate_profile_info);
            out.push_str("</approvedCA>");
        }
        for t in &self.approved_tsas {
            out.push_str("<approvedTSA>");
            el(&mut out, "name", &t.name);
            el(&mut out, "url", &t.url);
            el(&mut out, "cert", &b64(&t.cert_der));
            out.push_str("</approvedTSA>");
        }
        // XML ids for members and subsystems, referred to by the servers below.
        let mut refs: Vec<(ClientId, String)> = Vec::new();
        for m in &self.members {
            let mid = format!("id{}", refs.len());
            refs.push((m.id.clone(), mid.clone()));
            let _ = write!(out, "<member id=\"{mid}\"><memberClass>");
            el(&mut out, "code", &m.id.member_class);
            el(&mut out, "description", &m.class_description);
            out.push_str("</memberClass>");
            el(&mut out, "memberCode", &m.id.member_code);
            el(&mut out, "name", &m.name);
            for s in &m.subsystems {
                let sid = format!("id{}", refs.len());
                refs.push((ClientId { subsystem: Some(s.code.clone()), ..m.id.clone() }, sid.clone()));
                let _ = write!(out, "<subsystem id=\"{sid}\">");
                el(&mut out, "subsystemCode", &s.code);
                if let Some(n) = &s.name {
                    el(&mut out, "subsystemName", n);
                }
                out.push_str("</subsystem>");
            }
            out.push_str("</member>");
        }
        let ref_of = |id: &ClientId| refs.iter().find(|(c, _)| c == id).map(|(_, r)| r.clone()).unwrap_or_default();
        for s in &self.security_servers {
            out.push_str("<securityServer>");
            el(&mut out, "owner", &ref_of(&s.id.owner));
            el(&mut out, "serverCode", &s.id.server_code);
            if let Some(a) = &s.address {
                el(&mut out, "address", a);
            }
            for h in &s.auth_cert_hashes {
                el(&mut out, "authCertHash", &b64(h));
            }
            for c in &s.clients {
                el(&mut out, "client", &ref_of(c));
            }
            if let Some(m) = &s.maintenance {
                out.push_str("<inMaintenanceMode>");
                el(&mut out, "message", m);
                out.push_str("</inMaintenanceMode>");
            }
            out.push_str("</securityServer>");
        }
        for g in &self.global_groups {
            out.push_str("<globalGroup>");
            el(&mut out, "groupCode", &g.code);
            el(&mut out, "description", &g.description);
            for m in &g.members {
                let _ = write!(out, "<groupMember id:objectType=\"{}\">", m.object_type());
                id_parts(&mut out, m);
                out.push_str("</groupMember>");
            }
            out.push_str("</globalGroup>");
        }
        out.push_str("<globalSettings>");
        for c in &self.global_settings.member_classes {
            out.push_str("<memberClass>");
            el(&mut out, "code", &c.code);
            el(&mut out, "description", &c.description);
            out.push_str("</memberClass>");
        }
        el(&mut out, "ocspFreshnessSeconds", &self.global_settings.ocsp_freshness_seconds.to_string());
        out.push_str("</globalSettings></xrd:conf>\n");
        out
    }
}

impl PrivateParams {
    pub fn to_xml(&self) -> String {
        let mut out = String::from(HEAD);
        el(&mut out, "instanceIdentifier", &self.instance_identifier);
        for a in &self.configuration_anchors {
            out.push_str("<configurationAnchor>");
            el(&mut out, "generatedAt", &a.generated_at);
            el(&mut out, "instanceIdentifier", &a.instance_identifier);
            for s in &a.sources {
                out.push_str("<source>");
                el(&mut out, "downloadURL", &s.download_url);
                el(&mut out, "verificationCert", &b64(&s.verification_cert));
                out.push_str("</source>");
            }
            out.push_str("</configurationAnchor>");
        }
        if let Some(m) = &self.management_service {
            out.push_str("<managementService>");
            el(&mut out, "authCertRegServiceAddress", &m.auth_cert_reg_service_address);
            el(&mut out, "authCertRegServiceCert", &b64(&m.auth_cert_reg_service_cert));
            if let Some(id) = &m.management_request_service_provider_id {
                let _ = write!(out, "<managementRequestServiceProviderId id:objectType=\"{}\">", id.object_type());
                id_parts(&mut out, id);
                out.push_str("</managementRequestServiceProviderId>");
            }
            out.push_str("</managementService>");
        }
        el(&mut out, "timeStampingIntervalSeconds", &self.time_stamping_interval_seconds.to_string());
        out.push_str("</xrd:conf>\n");
        out
    }
}
