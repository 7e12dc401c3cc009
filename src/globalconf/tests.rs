use std::path::PathBuf;

use super::*;

fn sample_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/conformance/xroad/globalconf/globalconf_good2_v3"))
}

#[test]
fn parses_the_real_v3_sample() {
    let gc = GlobalConf::load_dir(&sample_dir()).unwrap();
    assert_eq!(gc.own_instance, "DEV");
    let sp = &gc.shared["DEV"];
    assert_eq!(sp.members.len(), 2);
    assert_eq!(sp.members[0].subsystems.len(), 2);
    assert_eq!(sp.security_servers.len(), 2);
    assert_eq!(sp.approved_cas.len(), 1);
    assert_eq!(sp.approved_cas[0].top_ca.ocsp[0].url, "http://testca:8888");
    assert_eq!(sp.approved_tsas.len(), 1);
    assert_eq!(sp.global_groups[0].members.len(), 2);
    assert_eq!(sp.global_settings.ocsp_freshness_seconds, 3600);

    let sub = ClientId::subsystem("DEV", "COM", "1234", "TestService");
    assert!(gc.client_exists(&sub));
    assert!(!gc.client_exists(&ClientId::subsystem("DEV", "COM", "1234", "Nope")));
    let servers = gc.servers_for_client(&sub);
    assert_eq!(servers.len(), 1);
    assert_eq!(servers[0].id.server_code, "SS0");
    assert_eq!(servers[0].auth_cert_hashes[0].len(), 32);

    let group = GlobalGroupId { instance: "DEV".into(), group_code: "security-server-owners".into() };
    assert!(gc.is_global_group_member(&group, &ClientId::member("DEV", "COM", "4321")));
    // A member in a group does not bring its subsystems in.
    assert!(!gc.is_global_group_member(&group, &ClientId::subsystem("DEV", "COM", "4321", "TestClient")));
}

#[test]
fn round_trips_through_xml() {
    let gc = GlobalConf::load_dir(&sample_dir()).unwrap();
    let sp = &gc.shared["DEV"];
    let again = SharedParams::parse(sp.to_xml().as_bytes()).unwrap();
    assert_eq!(&again, sp);

    let pp = PrivateParams {
        version: 3,
        instance_identifier: "DEV".into(),
        configuration_anchors: vec![ConfigurationAnchor {
            generated_at: "2026-01-01T00:00:00Z".into(),
            instance_identifier: "OTHER".into(),
            sources: vec![AnchorSource { download_url: "http://cs/internalconf".into(), verification_cert: vec![1, 2, 3] }],
        }],
        management_service: Some(ManagementService {
            auth_cert_reg_service_address: "https://cs:4001".into(),
            auth_cert_reg_service_cert: vec![4, 5],
            management_request_service_provider_id: Some(ClientId::subsystem("DEV", "COM", "1234", "MANAGEMENT")),
        }),
        time_stamping_interval_seconds: 60,
    };
    assert_eq!(PrivateParams::parse(pp.to_xml().as_bytes()).unwrap(), pp);
}

#[test]
fn server_found_by_auth_cert() {
    let mut gc = GlobalConf::load_dir(&sample_dir()).unwrap();
    let cert = b"not really a certificate, but hashed the same way";
    gc.shared.get_mut("DEV").unwrap().security_servers[1].auth_cert_hashes.push(auth_cert_hash(cert));
    assert_eq!(gc.server_by_auth_cert(cert).unwrap().id.server_code, "SS1");
    assert!(gc.server_by_auth_cert(b"other").is_none());
}

#[test]
fn refuses_hostile_and_broken_files() {
    let doctype = b"<!DOCTYPE conf [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><conf><instanceIdentifier>&x;</instanceIdentifier></conf>";
    assert!(SharedParams::parse(doctype).is_err());
    let dangling = b"<conf><instanceIdentifier>A</instanceIdentifier><securityServer><owner>nope</owner><serverCode>s</serverCode></securityServer></conf>";
    assert!(SharedParams::parse(dangling).unwrap_err().to_string().contains("nope"));
    assert!(SharedParams::parse(b"garbage").is_err());
    assert!(SharedParams::parse(b"<other/>").is_err());
    let deep = format!("<conf>{}</conf>", "<a>".repeat(100) + &"</a>".repeat(100));
    assert!(SharedParams::parse(deep.as_bytes()).is_err());
}
