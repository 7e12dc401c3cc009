//! A real SOAP client (Python zeep) loads the WSDL that brama's `getWsdl` metaservice returns and
//! calls the service through brama; `pyxroad`, a Trembita client built on zeep, does the same
//! through brama's `GET /wsdl`, unmodified. `scripts/test.sh` installs both.

mod common;

use std::time::Duration;

use common::http::{self, post_xml};
use common::*;

use brama::identifiers::{ClientId, ServiceId};
use brama::message::build::{request, RequestHeader};
use brama::message::mime::{parse_multipart, ContentType};

#[tokio::test]
async fn zeep_calls_the_service_from_the_wsdl_brama_served() {
    let Pair { net, ss1, ss2, sim } = start_pair(Duration::ZERO).await;
    let dir = net.path();
    let proxy = ss1.client_http.unwrap();

    let get_wsdl = request(
        &RequestHeader {
            client: ClientId::parse_path("SEVDEIR-TEST/GOV/00000001/DIIA").unwrap(),
            service: ServiceId::parse_path("SEVDEIR-TEST/GOV/00000002/DRACS/getWsdl").unwrap(),
            id: uuid::Uuid::new_v4().to_string(),
            user_id: None,
            issue: None,
            security_server: None,
        },
        "<xroad:getWsdl xmlns:xroad=\"http://x-road.eu/xsd/xroad.xsd\"><xroad:serviceCode>getBirthRecord</xroad:serviceCode><xroad:serviceVersion>v1</xroad:serviceVersion></xroad:getWsdl>",
    );
    let r = post_xml(proxy, get_wsdl).await;
    let ct = ContentType::parse(r.content_type()).unwrap();
    assert_eq!(ct.mime, "multipart/related", "{}", r.text());
    let parts = parse_multipart(&r.body, ct.param("boundary").unwrap(), 8).unwrap();
    let wsdl = &parts[1].body;
    let wsdl_path = dir.join("dracs-from-getWsdl.wsdl");
    std::fs::write(&wsdl_path, wsdl).unwrap();

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/zeep_client.py");
    let url = format!("http://{proxy}/");
    let stdout = python(&[script, wsdl_path.to_str().unwrap(), &url], "zeep").await;
    assert!(stdout.contains("actRecordNumber=№ 4321"), "{stdout}");
    let id = stdout.lines().find_map(|l| l.strip_prefix("id=")).unwrap();
    assert!(
        sim.stats.saw_id(id),
        "the call went through brama to the registry"
    );
    ss1.shutdown().await;
    ss2.shutdown().await;
}

/// zeep, with only the WSDLs in `wsdl/`, calls each of the ten eMalyatko operations through
/// brama (ss1 → ss2 → simulator) and reads the typed answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zeep_calls_every_registry_through_brama_from_the_wsdls() {
    use common::emalyatko::*;
    let mut net = Net::new();
    let sim = start_sim(|_| {}).await;
    let dir = net.path();
    let ss2_l = std::mem::replace(&mut net.ss2_server, bind());
    let ss1_l = std::mem::replace(&mut net.ss1_server, bind());
    let _ss2 = start_node(&dir, "ss2", &ss2_toml(sim.addr), Some(ss2_l)).await;
    let ss1 = start_node(&dir, "ss1", &ss1_toml(&dir.join("store"), ""), Some(ss1_l)).await;
    let url = format!("http://{}/", ss1.client_http.unwrap());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/zeep_emalyatko.py");
    let wsdl_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/wsdl");
    let stdout = python(&[script, wsdl_dir, &url], "zeep").await;
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 10, "{stdout}");
    for line in lines {
        let mut f = line.splitn(3, ' ');
        let (op, id, value) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
        assert!(sim.stats.saw_id(id), "{op} did not reach the registry");
        assert!(!value.is_empty() && value != "None", "{op}: {line}");
    }
    assert!(
        stdout.contains("determineCitizenship") && stdout.contains(" UKR"),
        "{stdout}"
    );
}

/// `pyxroad` (PyPI), unmodified: `GET /wsdl?…` on the client proxy, then the SOAP request posted
/// through the client proxy as its HTTP proxy, to the address in the WSDL.
#[tokio::test]
async fn pyxroad_downloads_the_wsdl_and_calls_the_service() {
    // OTHER over plain HTTP, as DIIA: pyxroad speaks HTTP to the security server.
    let Pair { ss1, ss2, sim, .. } = start_pair_with(Duration::ZERO, |name, toml| match name {
        "ss1" => toml.replace(
            "connection = \"https-auth\"\nis_certs = [\"certs/client-diia-is.pem\"]\n",
            "",
        ),
        _ => toml,
    })
    .await;
    let proxy = ss1.client_http.unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pyxroad_client.py");
    let stdout = python(
        &[
            script,
            &format!("http://{proxy}"),
            "SEVDEIR-TEST/GOV/00000001/DIIA",
            "SEVDEIR-TEST/GOV/00000002/DRACS/getBirthRecord/v1",
        ],
        "pyxroad",
    )
    .await;
    assert!(stdout.contains("№ 2026"), "{stdout}");
    let id = stdout.lines().find_map(|l| l.strip_prefix("id=")).unwrap();
    assert!(
        sim.stats.saw_id(id),
        "the call went through brama to the registry"
    );

    // OTHER has no right to the service: ss2 refuses it, and pyxroad reports X-Road's fault.
    let stdout = python(
        &[
            script,
            &format!("http://{proxy}"),
            "SEVDEIR-TEST/GOV/00000009/OTHER",
            "SEVDEIR-TEST/GOV/00000002/DRACS/getBirthRecord/v1",
        ],
        "pyxroad",
    )
    .await;
    assert!(
        stdout.contains("refused") && stdout.contains("Server.ServerProxy.AccessDenied"),
        "{stdout}"
    );
    let id = stdout.lines().find_map(|l| l.strip_prefix("id=")).unwrap();
    assert!(!sim.stats.saw_id(id), "a refused call reaches no registry");

    // The metaservices, the same way: the WSDL brama serves for them, then the call.
    for (meta, client) in [
        ("listMethods", "DIIA"),
        ("allowedMethods", "DIIA"),
        ("allowedMethods", "OTHER"),
    ] {
        let client = format!(
            "SEVDEIR-TEST/GOV/0000000{}/{client}",
            if client == "DIIA" { 1 } else { 9 }
        );
        let stdout = python(
            &[
                script,
                &format!("http://{proxy}"),
                &client,
                &format!("SEVDEIR-TEST/GOV/00000002/DRACS/{meta}"),
            ],
            "pyxroad",
        )
        .await;
        let answer = stdout
            .lines()
            .find(|l| l.starts_with("answer="))
            .unwrap_or_else(|| panic!("{stdout}"));
        // DIIA may call getBirthRecord; OTHER, allowed nothing, is listed nothing.
        let listed = answer.contains("('serviceCode', 'getBirthRecord')");
        assert_eq!(
            listed,
            client.ends_with("DIIA"),
            "{meta} as {client}: {stdout}"
        );
        if meta == "listMethods" {
            assert!(answer.contains("('serviceCode', 'testQuery')"), "{stdout}");
        }
    }

    // The WSDL download itself, and its faults.
    let q = "xRoadInstance=SEVDEIR-TEST&memberClass=GOV&memberCode=00000002&subsystemCode=DRACS";
    let r = http::get(
        proxy,
        &format!("/wsdl?{q}&serviceCode=getBirthRecord&version=v1"),
        &[],
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(r.content_type().starts_with("text/xml"));
    assert!(r.text().contains("getBirthRecord") && r.text().contains("definitions"));
    let r = http::get(proxy, &format!("/wsdl?{q}"), &[]).await;
    assert_eq!(
        fault_code(&r.body).as_deref(),
        Some("Client.InvalidRequest")
    );
    // An unknown service, and hostile values, which stay text, never markup: an escaped name is
    // an unknown service too.
    for code in ["noSuchService", "x%3C%2Fxrd%3AserviceCode%3E%3Cy"] {
        let r = http::get(proxy, &format!("/wsdl?{q}&serviceCode={code}"), &[]).await;
        assert_eq!(
            fault_code(&r.body).as_deref(),
            Some("Server.ServerProxy.UnknownService"),
            "{code}: {}",
            r.text()
        );
    }
    let r = http::get(
        proxy,
        "/wsdl?xRoadInstance=SEVDEIR-TEST&memberClass=GOV&memberCode=99999999&serviceCode=a",
        &[],
    )
    .await;
    assert!(fault_code(&r.body).is_some(), "{}", r.text());
    ss1.shutdown().await;
    ss2.shutdown().await;
}

/// Runs `python3 args…`, which must succeed (its package, `what`, installed by
/// `scripts/test.sh`); returns its standard output.
async fn python(args: &[&str], what: &str) -> String {
    let out = tokio::process::Command::new("python3")
        .args(args)
        .output()
        .await
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{what} failed (is it installed? run scripts/test.sh):\n{stdout}\n{stderr}"
    );
    stdout
}
