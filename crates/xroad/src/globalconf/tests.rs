use std::path::{Path, PathBuf};

use base64::Engine;

use super::*;

const SAMPLE_DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/xroad/globalconf/globalconf_good2_v3"
);
const SAMPLE_ANCHOR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/xroad/globalconf/configuration-anchor1.xml"
);

fn sample_dir() -> PathBuf {
    PathBuf::from(SAMPLE_DIR)
}

fn sample() -> SharedParams {
    SharedParams::load(&sample_dir().join("DEV/shared-params.xml")).unwrap()
}

fn b64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

/// A minimal valid shared-parameters document around `body`.
fn shared_doc(body: &str) -> String {
    format!(
        "<x:conf xmlns:x=\"http://x-road.eu/xsd/xroad.xsd\" xmlns:i=\"http://x-road.eu/xsd/identifiers\">\
         <instanceIdentifier>A</instanceIdentifier>{body}\
         <globalSettings><ocspFreshnessSeconds>600</ocspFreshnessSeconds></globalSettings></x:conf>"
    )
}

const MEMBER_A: &str = "<member id=\"m\"><memberClass><code>GOV</code><description>d</description></memberClass>\
     <memberCode>1</memberCode><name>One</name><subsystem id=\"s\"><subsystemCode>S</subsystemCode></subsystem></member>";

fn invalid_path(e: &GlobalConfError) -> &str {
    match e {
        GlobalConfError::Invalid { path, .. } => path,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn parses_the_real_v3_sample() {
    let sp = sample();
    assert_eq!(sp.version, 3);
    assert_eq!(sp.instance_identifier, "DEV");

    assert_eq!(sp.sources.len(), 1);
    assert_eq!(sp.sources[0].address, "cs");
    assert_eq!(sp.sources[0].internal_verification_certs.len(), 1);
    assert_eq!(sp.sources[0].external_verification_certs.len(), 1);

    assert_eq!(sp.members.len(), 2);
    let m0 = &sp.members[0];
    assert_eq!(m0.id, ClientId::member("DEV", "COM", "1234"));
    assert_eq!(m0.name, "Test member");
    assert_eq!(m0.class_description, "Commercial");
    let codes: Vec<&str> = m0.subsystems.iter().map(|s| s.code.as_str()).collect();
    assert_eq!(codes, ["MANAGEMENT", "TestService"]);
    assert_eq!(sp.members[1].subsystems[0].code, "TestClient");

    assert_eq!(sp.security_servers.len(), 2);
    let ss0 = &sp.security_servers[0];
    assert_eq!(ss0.id.to_string(), "DEV/COM/1234/SS0");
    assert_eq!(ss0.address.as_deref(), Some("ss0"));
    assert_eq!(
        ss0.auth_cert_hashes,
        vec![b64("doUtNhEOGtC25LLCQJ9iOE3ZRMXj9EhDAZTcusuEUIs=")]
    );
    assert_eq!(
        ss0.clients,
        vec![
            ClientId::subsystem("DEV", "COM", "1234", "MANAGEMENT"),
            ClientId::subsystem("DEV", "COM", "1234", "TestService"),
        ]
    );
    assert_eq!(ss0.maintenance, None);
    let ss1 = &sp.security_servers[1];
    assert_eq!(ss1.id.to_string(), "DEV/COM/4321/SS1");
    assert_eq!(
        ss1.clients,
        vec![ClientId::subsystem("DEV", "COM", "4321", "TestClient")]
    );
    assert_eq!(ss1.auth_cert_hashes[0].len(), 32);

    assert_eq!(sp.approved_cas.len(), 1);
    let ca = &sp.approved_cas[0];
    assert_eq!(ca.name, "Test CA");
    assert!(!ca.authentication_only);
    assert!(ca.intermediate_cas.is_empty());
    assert!(ca
        .certificate_profile_info
        .ends_with("FiVRKCertificateProfileInfoProvider"));
    // The sample carries base64 of PEM; the model holds DER (a SEQUENCE with a long length).
    assert_eq!(&ca.top_ca.cert_der[..2], &[0x30, 0x82]);
    assert_eq!(ca.top_ca.ocsp.len(), 1);
    assert_eq!(ca.top_ca.ocsp[0].url, "http://testca:8888");
    assert_eq!(
        &ca.top_ca.ocsp[0].cert_der.as_ref().unwrap()[..2],
        &[0x30, 0x82]
    );
    assert!(x509_parser::parse_x509_certificate(&ca.top_ca.cert_der).is_ok());

    assert_eq!(sp.approved_tsas.len(), 1);
    assert_eq!(sp.approved_tsas[0].name, "Test TSA");
    assert_eq!(sp.approved_tsas[0].url, "http://testca:8899");
    assert!(x509_parser::parse_x509_certificate(&sp.approved_tsas[0].cert_der).is_ok());

    assert_eq!(sp.global_groups.len(), 1);
    let g = &sp.global_groups[0];
    assert_eq!(g.code, "security-server-owners");
    assert_eq!(g.description, "Security server owners");
    assert_eq!(
        g.members,
        vec![
            ClientId::member("DEV", "COM", "1234"),
            ClientId::member("DEV", "COM", "4321")
        ]
    );

    assert_eq!(sp.global_settings.ocsp_freshness_seconds, 3600);
    assert_eq!(
        sp.global_settings.member_classes,
        vec![MemberClass {
            code: "COM".into(),
            description: "Commercial".into()
        }]
    );
}

#[test]
fn loads_the_sample_directory_and_answers_queries() {
    let gc = GlobalConf::load_dir(&sample_dir()).unwrap();
    assert_eq!(gc.own_instance, "DEV");
    assert_eq!(gc.shared.keys().collect::<Vec<_>>(), ["DEV"]);
    assert!(gc.private.is_none());
    assert_eq!(gc.own_shared().unwrap(), &sample());

    let service = ClientId::subsystem("DEV", "COM", "1234", "TestService");
    assert!(gc.client_exists(&service));
    assert!(gc.client_exists(&ClientId::member("DEV", "COM", "4321")));
    assert!(!gc.client_exists(&ClientId::subsystem("DEV", "COM", "1234", "Nope")));
    assert!(!gc.client_exists(&ClientId::member("DEV", "GOV", "1234")));
    assert!(!gc.client_exists(&ClientId::member("OTHER", "COM", "1234")));
    assert_eq!(gc.member_name(&service), Some("Test member"));
    assert_eq!(
        gc.member_name(&ClientId::member("DEV", "COM", "4321")),
        Some("Test client")
    );
    assert_eq!(gc.member_name(&ClientId::member("DEV", "COM", "9")), None);

    let codes = |c: &ClientId| -> Vec<String> {
        gc.servers_for_client(c)
            .iter()
            .map(|s| s.id.server_code.clone())
            .collect()
    };
    assert_eq!(codes(&service), ["SS0"]);
    assert_eq!(
        codes(&ClientId::subsystem("DEV", "COM", "4321", "TestClient")),
        ["SS1"]
    );
    // Owners are served by their servers without being listed as clients.
    assert_eq!(codes(&ClientId::member("DEV", "COM", "1234")), ["SS0"]);
    assert!(codes(&ClientId::subsystem("DEV", "COM", "1234", "Nope")).is_empty());
    assert!(codes(&ClientId::subsystem("X", "COM", "1234", "TestService")).is_empty());

    let sid = SecurityServerId::parse_path("DEV/COM/4321/SS1").unwrap();
    assert_eq!(gc.server(&sid).unwrap().address.as_deref(), Some("ss1"));
    assert!(gc
        .server(&SecurityServerId::parse_path("DEV/COM/4321/SS0").unwrap())
        .is_none());

    let group = GlobalGroupId {
        instance: "DEV".into(),
        group_code: "security-server-owners".into(),
    };
    assert!(gc.is_global_group_member(&group, &ClientId::member("DEV", "COM", "4321")));
    // A member in a group does not bring its subsystems in.
    assert!(!gc.is_global_group_member(
        &group,
        &ClientId::subsystem("DEV", "COM", "4321", "TestClient")
    ));
    let other = GlobalGroupId {
        instance: "DEV".into(),
        group_code: "nope".into(),
    };
    assert!(!gc.is_global_group_member(&other, &ClientId::member("DEV", "COM", "4321")));

    assert_eq!(gc.approved_cas().count(), 1);

    let clients = gc.clients(Some("DEV"));
    let ids: Vec<String> = clients.iter().map(|c| c.id.to_string()).collect();
    assert_eq!(
        ids,
        [
            "DEV/COM/1234",
            "DEV/COM/1234/MANAGEMENT",
            "DEV/COM/1234/TestService",
            "DEV/COM/4321",
            "DEV/COM/4321/TestClient"
        ]
    );
    assert_eq!(clients[2].name, "Test member");
    assert_eq!(clients[2].subsystem_name, None);
    assert_eq!(gc.clients(None), clients);
    assert!(gc.clients(Some("OTHER")).is_empty());
}

#[test]
fn finds_a_server_by_its_auth_certificate() {
    let mut gc = GlobalConf::load_dir(&sample_dir()).unwrap();
    assert!(gc.server_by_auth_cert(b"anything").is_none());
    let cert = b"stand-in DER bytes; only the SHA-256 hash matters";
    let hash = auth_cert_hash(cert);
    assert_eq!(hash.len(), 32);
    assert_eq!(
        base64::engine::general_purpose::STANDARD.encode(auth_cert_hash(b"abc")),
        "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="
    );
    gc.shared.get_mut("DEV").unwrap().security_servers[1]
        .auth_cert_hashes
        .push(hash);
    assert_eq!(gc.server_by_auth_cert(cert).unwrap().id.server_code, "SS1");
    assert!(gc.server_by_auth_cert(b"other").is_none());
}

#[test]
fn sample_round_trips_through_xml() {
    let sp = sample();
    let xml = sp.to_xml();
    assert_eq!(SharedParams::parse(xml.as_bytes()).unwrap(), sp);
}

fn cert(tag: u8) -> Vec<u8> {
    vec![0x30, 0x03, 0x02, 0x01, tag]
}

fn rich_shared(version: u8) -> SharedParams {
    let a = |c: &str| ClientId::member("UA", "GOV", c);
    SharedParams {
        version,
        instance_identifier: "UA".into(),
        sources: vec![
            Source {
                address: "cs1".into(),
                internal_verification_certs: vec![cert(1), cert(2)],
                external_verification_certs: vec![],
            },
            Source {
                address: "cs2".into(),
                internal_verification_certs: vec![],
                external_verification_certs: vec![cert(3)],
            },
        ],
        approved_cas: vec![ApprovedCa {
            name: "CA <&> \"quoted\" 'single'".into(),
            authentication_only: true,
            top_ca: CaInfo {
                cert_der: cert(4),
                ocsp: vec![
                    OcspInfo {
                        url: "http://ocsp/a?x=1&y=2".into(),
                        cert_der: None,
                    },
                    OcspInfo {
                        url: "http://ocsp/b".into(),
                        cert_der: Some(cert(5)),
                    },
                ],
            },
            intermediate_cas: vec![CaInfo {
                cert_der: cert(6),
                ocsp: vec![],
            }],
            certificate_profile_info:
                "ee.ria.xroad.common.certificateprofile.impl.EjbcaCertificateProfileInfoProvider"
                    .into(),
        }],
        approved_tsas: vec![ApprovedTsa {
            name: "TSA".into(),
            url: "http://tsa".into(),
            cert_der: cert(7),
        }],
        members: vec![
            Member {
                id: a("00000001"),
                name: "Міністерство цифрової трансформації".into(),
                class_description: "Державні органи".into(),
                subsystems: vec![
                    Subsystem {
                        code: "DIIA".into(),
                        name: Some("Дія".into()),
                    },
                    Subsystem {
                        code: "MGMT".into(),
                        name: None,
                    },
                ],
            },
            Member {
                id: a("00000002"),
                name: "".into(),
                class_description: "".into(),
                subsystems: vec![],
            },
        ],
        security_servers: vec![
            SecurityServer {
                id: SecurityServerId {
                    owner: a("00000001"),
                    server_code: "ss1".into(),
                },
                address: Some("ss1.example:5500".into()),
                auth_cert_hashes: vec![auth_cert_hash(b"one"), auth_cert_hash(b"two")],
                clients: vec![
                    ClientId::subsystem("UA", "GOV", "00000001", "DIIA"),
                    a("00000002"),
                ],
                maintenance: Some("back at noon".into()),
            },
            SecurityServer {
                id: SecurityServerId {
                    owner: a("00000002"),
                    server_code: "ss2".into(),
                },
                address: None,
                auth_cert_hashes: vec![],
                clients: vec![],
                maintenance: Some(String::new()),
            },
        ],
        global_groups: vec![GlobalGroup {
            code: "g".into(),
            description: "group".into(),
            members: vec![
                a("00000002"),
                ClientId::subsystem("UA", "GOV", "00000001", "DIIA"),
                ClientId::subsystem("OTHER", "COM", "9", "X"),
            ],
        }],
        global_settings: GlobalSettings {
            member_classes: vec![MemberClass {
                code: "GOV".into(),
                description: "Державні органи".into(),
            }],
            ocsp_freshness_seconds: 120,
        },
    }
}

#[test]
fn every_field_round_trips_for_v5() {
    let sp = rich_shared(5);
    let xml = sp.to_xml();
    assert!(xml.contains("<subsystemName>Дія</subsystemName>"), "{xml}");
    assert!(xml.contains("<inMaintenanceMode/>"), "{xml}");
    assert_eq!(SharedParams::parse(xml.as_bytes()).unwrap(), sp);
}

#[test]
fn the_version_round_trips_and_older_versions_drop_v5_elements() {
    let mut v4 = rich_shared(4);
    for m in &mut v4.members {
        m.subsystems.iter_mut().for_each(|s| s.name = None);
    }
    v4.security_servers
        .iter_mut()
        .for_each(|s| s.maintenance = None);
    assert_eq!(SharedParams::parse(v4.to_xml().as_bytes()).unwrap(), v4);

    // A v3 document cannot say subsystemName or inMaintenanceMode, so they are left out.
    let v3 = SharedParams {
        version: 3,
        ..rich_shared(5)
    };
    let xml = v3.to_xml();
    assert!(!xml.contains("subsystemName") && !xml.contains("inMaintenanceMode"));
    let back = SharedParams::parse(xml.as_bytes()).unwrap();
    assert_eq!(back.version, 3);
    assert_eq!(back.members[0].subsystems[0].name, None);
    assert_eq!(back.security_servers[0].maintenance, None);
}

#[test]
fn writer_leaves_out_references_the_format_cannot_express() {
    let mut sp = rich_shared(5);
    sp.security_servers[0]
        .clients
        .push(ClientId::subsystem("UA", "GOV", "00000001", "UNLISTED"));
    sp.security_servers[1].id.owner = ClientId::member("UA", "GOV", "unknown");
    let back = SharedParams::parse(sp.to_xml().as_bytes()).unwrap();
    assert_eq!(back.security_servers.len(), 1);
    assert_eq!(
        back.security_servers[0].clients,
        rich_shared(5).security_servers[0].clients
    );
}

#[test]
fn version_comes_from_declaration_or_content() {
    let plain = shared_doc(MEMBER_A);
    assert_eq!(SharedParams::parse(plain.as_bytes()).unwrap().version, 3);
    assert_eq!(
        SharedParams::parse_with_version(plain.as_bytes(), 4)
            .unwrap()
            .version,
        4
    );
    assert!(matches!(
        SharedParams::parse_with_version(plain.as_bytes(), 2),
        Err(GlobalConfError::UnsupportedVersion { .. })
    ));
    let commented = format!("<!-- configurationVersion=7 -->{plain}");
    assert!(matches!(
        SharedParams::parse(commented.as_bytes()),
        Err(GlobalConfError::UnsupportedVersion { .. })
    ));

    let ca = |acme: &str| {
        shared_doc(&format!(
            "<approvedCA><name>n</name><topCA><cert>MAA=</cert></topCA>\
             <certificateProfileInfo>p</certificateProfileInfo>{acme}</approvedCA>"
        ))
    };
    let v3_acme = ca("<acmeServer><directoryURL>https://acme</directoryURL><ipAddress>1.2.3.4</ipAddress></acmeServer>");
    assert_eq!(SharedParams::parse(v3_acme.as_bytes()).unwrap().version, 3);
    let v4_acme = ca("<acmeServer><directoryURL>https://acme</directoryURL>\
         <authenticationCertificateProfileId>1</authenticationCertificateProfileId></acmeServer>");
    assert_eq!(SharedParams::parse(v4_acme.as_bytes()).unwrap().version, 4);

    let v5 = shared_doc(
        "<member id=\"m\"><memberClass><code>GOV</code><description>d</description></memberClass>\
         <memberCode>1</memberCode><name>One</name><subsystem id=\"s\"><subsystemCode>S</subsystemCode>\
         <subsystemName>Ess</subsystemName></subsystem></member>\
         <securityServer><owner>m</owner><serverCode>ss</serverCode><client>s</client>\
         <inMaintenanceMode><message>later</message></inMaintenanceMode></securityServer>",
    );
    let sp = SharedParams::parse(v5.as_bytes()).unwrap();
    assert_eq!(sp.version, 5);
    assert_eq!(sp.security_servers[0].maintenance.as_deref(), Some("later"));
    assert_eq!(sp.members[0].subsystems[0].name.as_deref(), Some("Ess"));
    // A lower declaration is raised to what the content needs.
    assert_eq!(
        SharedParams::parse_with_version(v5.as_bytes(), 3)
            .unwrap()
            .version,
        5
    );
}

fn private_full() -> PrivateParams {
    PrivateParams {
        version: 5,
        instance_identifier: "DEV".into(),
        configuration_anchors: vec![
            ConfigurationAnchor {
                generated_at: Some("2026-01-01T00:00:00Z".into()),
                instance_identifier: "OTHER".into(),
                sources: vec![
                    AnchorSource {
                        download_url: "http://cs/internalconf".into(),
                        verification_certs: vec![cert(1), cert(2)],
                    },
                    AnchorSource {
                        download_url: "http://cs2/internalconf".into(),
                        verification_certs: vec![cert(3)],
                    },
                ],
            },
            ConfigurationAnchor {
                generated_at: None,
                instance_identifier: "THIRD".into(),
                sources: vec![AnchorSource {
                    download_url: "http://third/conf".into(),
                    verification_certs: vec![cert(4)],
                }],
            },
        ],
        management_service: Some(ManagementService {
            auth_cert_reg_service_address: "https://cs:4001/managementservice/".into(),
            auth_cert_reg_service_cert: Some(cert(5)),
            management_request_service_provider_id: ClientId::subsystem(
                "DEV",
                "COM",
                "1234",
                "MANAGEMENT",
            ),
        }),
        time_stamping_interval_seconds: 60,
    }
}

#[test]
fn private_params_round_trip() {
    let pp = private_full();
    assert_eq!(PrivateParams::parse(pp.to_xml().as_bytes()).unwrap(), pp);

    let minimal = PrivateParams {
        version: 3,
        instance_identifier: "X".into(),
        configuration_anchors: vec![],
        management_service: None,
        time_stamping_interval_seconds: 0,
    };
    assert_eq!(
        PrivateParams::parse(minimal.to_xml().as_bytes()).unwrap(),
        minimal
    );

    let member_provider = PrivateParams {
        management_service: Some(ManagementService {
            auth_cert_reg_service_address: "https://cs".into(),
            auth_cert_reg_service_cert: None,
            management_request_service_provider_id: ClientId::member("DEV", "COM", "1"),
        }),
        ..minimal
    };
    assert_eq!(
        PrivateParams::parse(member_provider.to_xml().as_bytes()).unwrap(),
        member_provider
    );
}

#[test]
fn parses_a_configuration_anchor() {
    let anchor = ConfigurationAnchor::load(Path::new(SAMPLE_ANCHOR)).unwrap();
    assert_eq!(anchor.instance_identifier, "EE");
    assert_eq!(anchor.generated_at, None);
    assert_eq!(anchor.sources.len(), 3);
    assert_eq!(anchor.sources[0].download_url, "http://www.bar.com/conf");
    assert_eq!(anchor.sources[0].verification_certs.len(), 2);
    assert!(x509_parser::parse_x509_certificate(&anchor.sources[2].verification_certs[0]).is_ok());
}

fn write(path: &Path, content: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

#[test]
fn load_dir_reads_federated_instances_and_private_params() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let own = rich_shared(5);
    let fed = SharedParams {
        version: 3,
        ..sample()
    };
    write(&dir.join("instance-identifier"), "UA\n");
    write(&dir.join("UA/shared-params.xml"), &own.to_xml());
    write(
        &dir.join("UA/shared-params.xml.metadata"),
        r#"{"configurationVersion":"5"}"#,
    );
    let mut private = private_full();
    private.instance_identifier = "UA".into();
    write(&dir.join("UA/private-params.xml"), &private.to_xml());
    write(&dir.join("DEV/shared-params.xml"), &fed.to_xml());
    // Neither a hidden directory nor one without shared parameters is an instance.
    write(&dir.join(".tmp/shared-params.xml"), "garbage");
    write(&dir.join("EMPTY/readme"), "x");

    let gc = GlobalConf::load_dir(dir).unwrap();
    assert_eq!(gc.own_instance, "UA");
    assert_eq!(gc.shared.keys().collect::<Vec<_>>(), ["DEV", "UA"]);
    assert_eq!(gc.shared["UA"], own);
    assert_eq!(gc.shared["DEV"], fed);
    assert_eq!(gc.private.as_ref(), Some(&private));
    assert_eq!(gc.approved_cas().count(), 2);
    assert_eq!(gc.clients(None).len(), 5 + 4);
    let diia = ClientId::subsystem("UA", "GOV", "00000001", "DIIA");
    let entry = gc
        .clients(Some("UA"))
        .into_iter()
        .find(|e| e.id == diia)
        .unwrap();
    assert_eq!(entry.subsystem_name.as_deref(), Some("Дія"));
    assert_eq!(
        gc.member_name(&diia),
        Some("Міністерство цифрової трансформації")
    );
    assert!(gc.client_exists(&ClientId::subsystem("DEV", "COM", "4321", "TestClient")));
    assert_eq!(
        gc.servers_for_client(&diia)[0].maintenance.as_deref(),
        Some("back at noon")
    );
    let group = GlobalGroupId {
        instance: "UA".into(),
        group_code: "g".into(),
    };
    assert!(gc.is_global_group_member(&group, &ClientId::subsystem("OTHER", "COM", "9", "X")));

    // The sidecar's version counts; an unsupported one is refused, naming the sidecar.
    write(
        &dir.join("DEV/shared-params.xml.metadata"),
        r#"{"configurationVersion":"2"}"#,
    );
    let e = GlobalConf::load_dir(dir).unwrap_err();
    assert!(
        matches!(e, GlobalConfError::UnsupportedVersion { .. }),
        "{e}"
    );
    assert!(e.to_string().contains("shared-params.xml.metadata"), "{e}");
    write(
        &dir.join("DEV/shared-params.xml.metadata"),
        r#"{"configurationVersion":"4"}"#,
    );
    assert_eq!(GlobalConf::load_dir(dir).unwrap().shared["DEV"].version, 4);

    // Without instance-identifier, two instances leave the own one undecided.
    std::fs::remove_file(dir.join("instance-identifier")).unwrap();
    let e = GlobalConf::load_dir(dir).unwrap_err();
    assert!(matches!(e, GlobalConfError::Layout { .. }), "{e}");
    assert!(e.to_string().contains("DEV, UA"), "{e}");

    // A file in the wrong instance directory.
    write(&dir.join("instance-identifier"), "UA");
    write(&dir.join("EE/shared-params.xml"), &fed.to_xml());
    let e = GlobalConf::load_dir(dir).unwrap_err();
    assert!(
        e.to_string().contains("is for instance 'DEV', not 'EE'"),
        "{e}"
    );
    std::fs::remove_dir_all(dir.join("EE")).unwrap();

    // The own instance must be present.
    write(&dir.join("instance-identifier"), "NOPE");
    assert!(matches!(
        GlobalConf::load_dir(dir),
        Err(GlobalConfError::Layout { .. })
    ));
}

#[test]
fn load_errors_name_the_file_and_element() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("DEV/shared-params.xml");
    write(
        &path,
        &shared_doc(&format!(
            "{MEMBER_A}<securityServer><owner>m</owner><serverCode>x</serverCode><client>ghost</client></securityServer>"
        )),
    );
    let e = SharedParams::load(&path).unwrap_err();
    let msg = e.to_string();
    assert!(msg.starts_with(&path.display().to_string()), "{msg}");
    assert!(msg.contains("/conf/securityServer[1]/client[1]"), "{msg}");
    assert!(msg.contains("'ghost'"), "{msg}");
    assert_eq!(e.code(), crate::error::ErrorCode::MalformedGlobalConf);
}

#[test]
fn refuses_doctype_and_entities() {
    let xxe =
        "<!DOCTYPE conf [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>".to_string() + &shared_doc("");
    let e = SharedParams::parse(xxe.as_bytes()).unwrap_err();
    assert!(matches!(e, GlobalConfError::Doctype { .. }), "{e}");
    assert!(matches!(
        PrivateParams::parse(xxe.as_bytes()),
        Err(GlobalConfError::Doctype { .. })
    ));
    // Without a DOCTYPE no entity can be declared, so a reference to one is an error.
    let undeclared = shared_doc("").replace(">A<", ">&x;<");
    assert!(matches!(
        SharedParams::parse(undeclared.as_bytes()),
        Err(GlobalConfError::Xml { .. })
    ));
    // The predefined ones are fine.
    let amp = shared_doc("").replace(">A<", ">A&amp;B<");
    assert_eq!(
        SharedParams::parse(amp.as_bytes())
            .unwrap()
            .instance_identifier,
        "A&B"
    );
}

#[test]
fn refuses_unknown_and_misdirected_idrefs() {
    let dangling = shared_doc(
        "<securityServer><owner>nope</owner><serverCode>s</serverCode></securityServer>",
    );
    let e = SharedParams::parse(dangling.as_bytes()).unwrap_err();
    assert_eq!(invalid_path(&e), "/conf/securityServer[1]/owner[1]");
    assert!(e.to_string().contains("'nope'"), "{e}");

    let sub_owner = shared_doc(&format!(
        "{MEMBER_A}<securityServer><owner>s</owner><serverCode>x</serverCode></securityServer>"
    ));
    let e = SharedParams::parse(sub_owner.as_bytes()).unwrap_err();
    assert!(e.to_string().contains("must be a member"), "{e}");

    let duplicate = shared_doc(&format!("{MEMBER_A}{}", MEMBER_A.replace("\"s\"", "\"t\"")));
    let e = SharedParams::parse(duplicate.as_bytes()).unwrap_err();
    assert_eq!(invalid_path(&e), "/conf/member[2]");
    assert!(
        e.to_string().contains("already used by /conf/member[1]"),
        "{e}"
    );

    // A member may be a client; the reference resolves to the member itself.
    let ok = shared_doc(&format!(
        "{MEMBER_A}<securityServer><owner>m</owner><serverCode>x</serverCode><client>m</client><client>s</client></securityServer>"
    ));
    let sp = SharedParams::parse(ok.as_bytes()).unwrap();
    assert_eq!(
        sp.security_servers[0].clients,
        vec![
            ClientId::member("A", "GOV", "1"),
            ClientId::subsystem("A", "GOV", "1", "S")
        ]
    );
}

#[test]
fn refuses_garbage_and_malformed_content() {
    let refused = |xml: &[u8]| SharedParams::parse(xml).unwrap_err();
    assert!(matches!(refused(b"garbage"), GlobalConfError::Xml { .. }));
    assert!(matches!(refused(b""), GlobalConfError::Xml { .. }));
    assert!(matches!(
        refused(b"\x00\xff\xfe<conf"),
        GlobalConfError::Xml { .. }
    ));
    assert!(matches!(
        refused(b"<conf><instanceIdentifier>A</conf>"),
        GlobalConfError::Xml { .. }
    ));
    assert!(matches!(refused(b"<conf>"), GlobalConfError::Xml { .. }));
    assert!(matches!(
        refused(b"<conf/><conf/>"),
        GlobalConfError::Xml { .. }
    ));
    // Wrong root, or the right name in a foreign namespace.
    assert!(matches!(
        refused(b"<other/>"),
        GlobalConfError::Invalid { .. }
    ));
    assert!(matches!(
        refused(b"<f:conf xmlns:f=\"urn:x\"/>"),
        GlobalConfError::Invalid { .. }
    ));
    // Undeclared prefixes, other encodings.
    let e = refused(shared_doc("<q:extra/>").as_bytes());
    assert!(e.to_string().contains("prefix 'q'"), "{e}");
    let latin = format!(
        "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>{}",
        shared_doc("")
    );
    assert!(refused(latin.as_bytes()).to_string().contains("only UTF-8"));
    // A UTF-8 byte order mark is fine.
    let bom = format!("\u{feff}{}", shared_doc(""));
    assert!(SharedParams::parse(bom.as_bytes()).is_ok());

    // Required elements, bad values.
    let e = refused(b"<conf><instanceIdentifier>A</instanceIdentifier></conf>");
    assert!(e.to_string().contains("<globalSettings> is missing"), "{e}");
    let e = refused(shared_doc("").replace("600", "soon").as_bytes());
    assert!(e.to_string().contains("'soon'"), "{e}");
    let e = refused(
        shared_doc(&format!(
            "{MEMBER_A}<securityServer><owner>m</owner><serverCode>x</serverCode><authCertHash>!!</authCertHash></securityServer>"
        ))
        .as_bytes(),
    );
    assert_eq!(invalid_path(&e), "/conf/securityServer[1]/authCertHash[1]");
    // A SHA-1 (v2) hash is refused rather than never matching.
    let e = refused(
        shared_doc(&format!(
            "{MEMBER_A}<securityServer><owner>m</owner><serverCode>x</serverCode>\
             <authCertHash>qZk+NkcGgWq6PiVxeFDCbJzQ2J0=</authCertHash></securityServer>"
        ))
        .as_bytes(),
    );
    assert!(e.to_string().contains("20 bytes"), "{e}");
    let e = refused(shared_doc("<instanceIdentifier>B</instanceIdentifier>").as_bytes());
    assert!(e.to_string().contains("only once"), "{e}");

    // Identifier elements need objectType in the identifiers namespace, matching their parts.
    let group = |member: &str| {
        shared_doc(&format!(
            "<globalGroup><groupCode>g</groupCode><description/>{member}</globalGroup>"
        ))
    };
    let parts = "<i:xRoadInstance>A</i:xRoadInstance><i:memberClass>GOV</i:memberClass><i:memberCode>1</i:memberCode>";
    let ok = group(&format!(
        "<groupMember i:objectType=\"MEMBER\">{parts}</groupMember>"
    ));
    assert_eq!(
        SharedParams::parse(ok.as_bytes()).unwrap().global_groups[0].members,
        vec![ClientId::member("A", "GOV", "1")]
    );
    let e = refused(
        group(&format!(
            "<groupMember objectType=\"MEMBER\">{parts}</groupMember>"
        ))
        .as_bytes(),
    );
    assert!(e.to_string().contains("objectType in namespace"), "{e}");
    let e = refused(
        group(&format!(
            "<groupMember i:objectType=\"SUBSYSTEM\">{parts}</groupMember>"
        ))
        .as_bytes(),
    );
    assert!(e.to_string().contains("without a subsystemCode"), "{e}");
    let e = refused(
        group(&format!(
            "<groupMember i:objectType=\"SERVICE\">{parts}</groupMember>"
        ))
        .as_bytes(),
    );
    assert!(e.to_string().contains("'SERVICE'"), "{e}");
}

#[test]
fn refuses_deep_and_large_files() {
    let deep = shared_doc(&("<a>".repeat(100) + &"</a>".repeat(100)));
    let e = SharedParams::parse(deep.as_bytes()).unwrap_err();
    assert!(matches!(e, GlobalConfError::TooDeep { .. }), "{e}");
    assert!(e.to_string().contains("deeper than 64"), "{e}");
    // 64 levels are fine (the root is level 1); unknown elements are skipped.
    let fits = shared_doc(&("<a>".repeat(63) + &"</a>".repeat(63)));
    assert!(SharedParams::parse(fits.as_bytes()).is_ok());
    let too_deep = shared_doc(&("<a>".repeat(64) + &"</a>".repeat(64)));
    assert!(SharedParams::parse(too_deep.as_bytes()).is_err());

    let mut big = shared_doc("").into_bytes();
    big.resize(MAX_FILE_BYTES as usize + 1, b' ');
    assert!(matches!(
        SharedParams::parse(&big),
        Err(GlobalConfError::TooLarge { .. })
    ));
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("shared-params.xml");
    std::fs::write(&path, &big).unwrap();
    assert!(matches!(
        SharedParams::load(&path),
        Err(GlobalConfError::TooLarge { .. })
    ));
}

#[test]
fn reads_the_repositorys_own_deployment() {
    // brama's committed default configuration must stay readable by this parser.
    let dir = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../config/globalconf"
    ));
    if dir.is_dir() {
        let gc = GlobalConf::load_dir(dir).unwrap();
        assert!(!gc.own_shared().unwrap().members.is_empty());
    }
}
