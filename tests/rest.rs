//! X-Road REST (r1) and the UXP dialect through two brama security servers: every method, with
//! and without body, query strings, percent-encoded segments, provider errors passed through,
//! each X-Road error category, endpoint access rights and the REST metaservices.

mod common;

use bytes::Bytes;
use common::http::request;
use common::rest::*;
use sha2::{Digest, Sha256};

fn json(r: &common::http::Reply) -> serde_json::Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.text()))
}

fn header<'a>(r: &'a common::http::Reply, name: &str) -> &'a str {
    r.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

#[tokio::test]
async fn every_method_with_and_without_body_reaches_the_service() {
    let p = start_rest_pair("", "", "").await;
    let a = p.ss1.client_http.unwrap();
    for uxp in [false, true] {
        // X-Road: percent-encoded identifier segment, path and query on /r1; UXP: /restapi with
        // the service in Uxp-Service.
        let (path, names) = if uxp {
            (
                "/restapi/a/b%20c?x=1&y=%D0%B4",
                [
                    "uxp-client",
                    "uxp-userid",
                    "uxp-queryid",
                    "uxp-service",
                    "uxp-client",
                    "uxp-request-id",
                    "uxp-request-hash",
                    "uxp-error",
                ],
            )
        } else {
            (
                "/r1/SEVDEIR%2DTEST/GOV/00000002/DRACS/echo/a/b%20c?x=1&y=%D0%B4",
                [
                    "x-road-client",
                    "x-road-userid",
                    "x-road-id",
                    "x-road-service",
                    "x-road-client",
                    "x-road-request-id",
                    "x-road-request-hash",
                    "x-road-error",
                ],
            )
        };
        for method in [
            "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE",
        ] {
            for with_body in [false, true] {
                if with_body && matches!(method, "GET" | "HEAD" | "TRACE") {
                    continue;
                }
                let body = if with_body {
                    Bytes::from(format!("{{\"метод\":\"{method}\"}}"))
                } else {
                    Bytes::new()
                };
                let mut headers = vec![
                    (names[0], DIIA),
                    (names[1], "UA1234567890"),
                    ("x-custom", "значення"),
                    ("content-type", "application/json"),
                ];
                if uxp {
                    headers.push(("uxp-service", "SEVDEIR-TEST/GOV/00000002/DRACS/echo"));
                }
                let r = request(a, method, path, &headers, body.clone()).await;
                let ctx = format!("{method} uxp={uxp}: {}", r.text());
                assert_eq!(r.status, 200, "{ctx}");
                assert!(header(&r, names[2]).starts_with("SEVDEIR-TEST-"), "{ctx}");
                assert_eq!(header(&r, names[4]), DIIA);
                assert_eq!(header(&r, names[3]), "SEVDEIR-TEST/GOV/00000002/DRACS/echo");
                assert!(!header(&r, names[5]).is_empty());
                assert_eq!(header(&r, names[6]).len(), 88, "SHA-512 in base64");
                assert!(r.headers.get(names[7]).is_none());
                if method == "HEAD" {
                    assert!(r.body.is_empty());
                    continue;
                }
                let v = json(&r);
                assert_eq!(v["method"], method);
                assert_eq!(v["path"], "/echo/a/b%20c");
                assert_eq!(v["query"], "x=1&y=%D0%B4");
                // The service always sees X-Road's headers.
                assert_eq!(v["headers"]["x-road-client"], DIIA);
                assert_eq!(v["headers"]["x-road-userid"], "UA1234567890");
                assert!(v["headers"]["x-custom"].is_string(), "{v}");
                assert_eq!(v["bodyLength"], body.len());
                assert_eq!(v["bodySha256"], hex::encode(Sha256::digest(&body)));
            }
        }
    }
}

#[tokio::test]
async fn client_chosen_id_is_kept_and_echoed() {
    let p = start_rest_pair("", "", "").await;
    let r = request(
        p.ss1.client_http.unwrap(),
        "GET",
        &format!("{PROVIDER}/echo"),
        &[("x-road-client", DIIA), ("x-road-id", "diia-42")],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(header(&r, "x-road-id"), "diia-42");
    assert_eq!(json(&r)["headers"]["x-road-id"], "diia-42");
}

/// Both hops keep their connections: the REST transport message is read past its closing
/// boundary to the end, so the connection goes back to the pool (without it, every request paid
/// a new TLS handshake).
#[tokio::test]
async fn connections_are_reused_across_requests() {
    let p = start_rest_pair("", "", "").await;
    let opened = |r: &brama::proxy::Running| {
        r.gateway
            .pool()
            .opened
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    // After the first request every connection exists (to the peer, its OCSP port, the service,
    // the OCSP responder); later requests open none.
    let mut before = None;
    for _ in 0..10 {
        for body in [Bytes::new(), Bytes::from(vec![b'x'; 100_000])] {
            let r = request(
                p.ss1.client_http.unwrap(),
                "POST",
                &format!("{PROVIDER}/echo"),
                &[("x-road-client", DIIA)],
                body,
            )
            .await;
            assert_eq!(r.status, 200, "{}", r.text());
            before.get_or_insert((opened(&p.ss1), opened(&p.ss2)));
        }
    }
    let (ss1, ss2) = before.unwrap();
    assert_eq!(opened(&p.ss1), ss1, "ss1 → ss2 connections");
    assert_eq!(opened(&p.ss2), ss2, "ss2 → service connections");
}

#[tokio::test]
async fn provider_errors_pass_through_unchanged() {
    let p = start_rest_pair("", "", "").await;
    for code in ["404", "409", "503"] {
        let r = request(
            p.ss1.client_http.unwrap(),
            "GET",
            &format!("{PROVIDER}/status/{code}"),
            &[("x-road-client", DIIA)],
            Bytes::new(),
        )
        .await;
        assert_eq!(r.status.as_str(), code, "{}", r.text());
        assert_eq!(header(&r, "x-sim-status"), code);
        assert!(
            r.headers.get("x-road-error").is_none(),
            "category 1 has no X-Road-Error"
        );
        assert_eq!(json(&r)["status"].to_string(), code);
    }
}

/// One request and the error it must give: status, `X-Road-Error`.
async fn expect_error(
    a: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    status: u16,
    code: &str,
) {
    let r = request(a, method, path, headers, Bytes::new()).await;
    assert_eq!(r.status.as_u16(), status, "{path}: {}", r.text());
    assert_eq!(header(&r, "x-road-error"), code, "{path}: {}", r.text());
    let v = json(&r);
    assert_eq!(v["type"], code);
    assert!(!v["message"].as_str().unwrap_or_default().is_empty());
    assert_eq!(
        v["detail"].as_str().unwrap_or_default().len(),
        36,
        "error id"
    );
}

#[tokio::test]
async fn each_xroad_error_category() {
    let p = start_rest_pair("", "", "").await;
    let a = p.ss1.client_http.unwrap();
    let diia = [("x-road-client", DIIA)];
    // 3: the request does not follow the protocol: 400.
    expect_error(
        a,
        "GET",
        &format!("{PROVIDER}/echo"),
        &[],
        400,
        "Client.InvalidClientIdentifier",
    )
    .await;
    expect_error(
        a,
        "GET",
        "/r2/SEVDEIR-TEST/GOV/00000002/DRACS/echo",
        &diia,
        400,
        "Client.InvalidProtocolVersion",
    )
    .await;
    expect_error(
        a,
        "GET",
        "/r1/SEVDEIR-TEST/GOV/00000002/echo",
        &diia,
        400,
        "Client.InvalidRequest",
    )
    .await;
    expect_error(
        a,
        "GET",
        &format!("{PROVIDER}/echo"),
        &[("x-road-client", "SEVDEIR-TEST/GOV")],
        400,
        "Client.InvalidClientIdentifier",
    )
    .await;
    // 2: the provider failed technically: 500.
    expect_error(
        a,
        "GET",
        &format!("{PROVIDER}/dead"),
        &diia,
        500,
        "Server.ServerProxy.ServiceFailed.NetworkError",
    )
    .await;
    // 4: a security server refused or failed: 500.
    expect_error(
        a,
        "GET",
        "/r1/SEVDEIR-TEST/GOV/00000077/X/echo",
        &diia,
        500,
        "Server.ClientProxy.UnknownMember",
    )
    .await;
    expect_error(
        a,
        "GET",
        &format!("{PROVIDER}/nothing"),
        &diia,
        500,
        "Server.ServerProxy.UnknownService",
    )
    .await;
    expect_error(
        a,
        "GET",
        &format!("{PROVIDER}/getBirthRecord"),
        &diia,
        500,
        "Server.ServerProxy.ServiceType",
    )
    .await;
    expect_error(
        a,
        "GET",
        &format!("{PROVIDER}/echo/a/%2e%2e/b"),
        &diia,
        500,
        "Server.ServerProxy.InvalidRequest",
    )
    .await;
    // X-Road-Security-Server: the provider's own server works, another one or garbage does not.
    let ok = request(
        a,
        "GET",
        &format!("{PROVIDER}/echo"),
        &[
            ("x-road-client", DIIA),
            ("x-road-security-server", "SEVDEIR-TEST/GOV/00000002/ss2"),
        ],
        Bytes::new(),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    expect_error(
        a,
        "GET",
        &format!("{PROVIDER}/echo"),
        &[
            ("x-road-client", DIIA),
            ("x-road-security-server", "SEVDEIR-TEST/GOV/00000001/ss1"),
        ],
        500,
        "Server.ClientProxy.InvalidSecurityServer",
    )
    .await;
    expect_error(
        a,
        "GET",
        &format!("{PROVIDER}/echo"),
        &[("x-road-client", DIIA), ("x-road-security-server", "ss2")],
        400,
        "Client.InvalidRequest",
    )
    .await;
    // Endpoint rights: OTHER may only GET /allowed/*.
    let other = [("x-road-client", OTHER)];
    let ok = request(
        a,
        "GET",
        &format!("{PROVIDER}/echo/allowed/1"),
        &other,
        Bytes::new(),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    expect_error(
        a,
        "POST",
        &format!("{PROVIDER}/echo/allowed/1"),
        &other,
        500,
        "Server.ServerProxy.AccessDenied",
    )
    .await;
    expect_error(
        a,
        "GET",
        &format!("{PROVIDER}/echo/allowed/1/2"),
        &other,
        500,
        "Server.ServerProxy.AccessDenied",
    )
    .await;
    expect_error(
        a,
        "GET",
        &format!("{PROVIDER}/status/200"),
        &other,
        500,
        "Server.ServerProxy.AccessDenied",
    )
    .await;
    // An XML error for a client that accepts only XML.
    let r = request(
        a,
        "GET",
        &format!("{PROVIDER}/nothing"),
        &[("x-road-client", DIIA), ("accept", "application/xml")],
        Bytes::new(),
    )
    .await;
    assert!(
        r.text()
            .contains("<type>Server.ServerProxy.UnknownService</type>"),
        "{}",
        r.text()
    );
}

#[tokio::test]
async fn uxp_dialect_in_and_out() {
    let p = start_rest_pair("", "", "").await;
    let a = p.ss1.client_http.unwrap();
    let service = "SEVDEIR-TEST/GOV/00000002/DRACS/echo";
    let r = request(
        a,
        "POST",
        "/restapi/by-id/7?full=true",
        &[
            ("uxp-client", DIIA),
            ("uxp-service", service),
            ("uxp-queryid", "uxp-q-1"),
            ("uxp-userid", "UA0000000001"),
            ("uxp-purpose-ids", "birth-registration"),
        ],
        Bytes::from_static(b"{\"a\":1}"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(header(&r, "uxp-queryid"), "uxp-q-1");
    assert_eq!(header(&r, "uxp-service"), service);
    assert_eq!(header(&r, "uxp-client"), DIIA);
    assert_eq!(header(&r, "uxp-request-hash").len(), 88);
    assert!(r.headers.get("x-road-id").is_none());
    let v = json(&r);
    assert_eq!(v["path"], "/echo/by-id/7");
    assert_eq!(v["query"], "full=true");
    // The service sees X-Road's headers and the purpose as sent.
    assert_eq!(v["headers"]["x-road-id"], "uxp-q-1");
    assert_eq!(v["headers"]["x-road-userid"], "UA0000000001");
    assert_eq!(v["headers"]["uxp-purpose-ids"], "birth-registration");
    // UXP headers on the /r1 path work too.
    let r = request(
        a,
        "GET",
        &format!("{PROVIDER}/echo"),
        &[("uxp-client", DIIA)],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(!header(&r, "uxp-queryid").is_empty());
    // Errors in UXP terms.
    let r = request(a, "GET", "/restapi", &[("uxp-client", DIIA)], Bytes::new()).await;
    assert_eq!(r.status, 400);
    assert_eq!(header(&r, "uxp-error"), "Client.InvalidRequest");
    let r = request(
        a,
        "GET",
        "/restapi",
        &[
            ("uxp-client", DIIA),
            ("uxp-service", "SEVDEIR-TEST/GOV/00000002/DRACS/nothing"),
        ],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 500);
    assert_eq!(header(&r, "uxp-error"), "Server.ServerProxy.UnknownService");
    // A client configured for X-Road headers does not get the UXP treatment.
    let r = request(
        a,
        "GET",
        "/restapi",
        &[("uxp-client", OTHER), ("uxp-service", service)],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.headers.get("uxp-error").is_none());
}

#[tokio::test]
async fn rest_metaservices_list_and_filter_services() {
    let p = start_rest_pair("", "", "").await;
    let a = p.ss1.client_http.unwrap();
    let list = |client: &'static str, meta: &'static str| async move {
        let r = request(
            a,
            "GET",
            &format!("{PROVIDER}/{meta}"),
            &[("x-road-client", client)],
            Bytes::new(),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
        json(&r)
    };
    let all = list(DIIA, "listMethods").await;
    let codes: Vec<&str> = all["service"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["service_code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        ["echo", "status", "dead"],
        "SOAP services are not listed: {all}"
    );
    let echo = &all["service"][0];
    assert_eq!(echo["service_type"], "REST");
    assert_eq!(echo["subsystem_code"], "DRACS");
    assert_eq!(echo["endpoint_list"].as_array().unwrap().len(), 2, "{echo}");
    let other = list(OTHER, "allowedMethods").await;
    assert_eq!(other["service"].as_array().unwrap().len(), 1, "{other}");
    assert_eq!(
        other["service"][0]["endpoint_list"],
        serde_json::json!([{"method": "GET", "path": "/allowed/*"}])
    );
    let r = request(
        a,
        "GET",
        &format!("{PROVIDER}/getOpenAPI?serviceCode=echo"),
        &[("x-road-client", DIIA)],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 500);
    assert_eq!(header(&r, "x-road-error"), "Server.ServerProxy.ServiceType");
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused() {
    let p = start_rest_pair(
        "max_rest_body_bytes = 100000\nspool_memory_bytes = 1000",
        "",
        "",
    )
    .await;
    let a = p.ss1.client_http.unwrap();
    let r = request(
        a,
        "POST",
        &format!("{PROVIDER}/echo"),
        &[("x-road-client", DIIA)],
        Bytes::from(vec![b'x'; 100_001]),
    )
    .await;
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(header(&r, "x-road-error"), "Client.InvalidMessage");
    // Just under the limit goes through (spooled to disk past 1000 bytes).
    let r = request(
        a,
        "POST",
        &format!("{PROVIDER}/echo"),
        &[("x-road-client", DIIA)],
        Bytes::from(vec![b'x'; 100_000]),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(json(&r)["bodyLength"], 100_000);
}

#[tokio::test]
async fn signed_rest_exchanges_pass_brama_and_the_independent_verifier() {
    let p = start_rest_pair(
        "",
        "[log]\nmessages_dir = \"messages\"\ntimestamp_interval_s = 1",
        "",
    )
    .await;
    let a = p.ss1.client_http.unwrap();
    for (method, body) in [
        ("GET", Bytes::new()),
        (
            "POST",
            Bytes::from_static("{\"дитина\":\"Олена\"}".as_bytes()),
        ),
    ] {
        let r = request(
            a,
            method,
            &format!("{PROVIDER}/echo/x?y=1"),
            &[("x-road-client", DIIA)],
            body,
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    // Logged, then time-stamped by the test network's TSA at the next batch.
    let log = p.ss1.gateway.message_log().unwrap();
    assert!(
        brama::message_log::timestamper::until_stamped(log, std::time::Duration::from_secs(30))
            .await
    );
    let dir = p.net.path();
    let mut requests = Vec::new();
    let mut responses = Vec::new();
    for path in common::logged_containers(&dir.join("messages"), &dir.join("logged")) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with("-request.asice") {
            requests.push(path);
        } else if name.ends_with("-response.asice") {
            responses.push(path);
        }
    }
    assert_eq!((requests.len(), responses.len()), (2, 2));
    // brama's own verifier: requests signed by DIIA's member, responses by DRACS's.
    let gc = brama::globalconf::GlobalConf::load_dir(&dir.join("globalconf")).unwrap();
    let trust = brama::sign::verify::TrustStore::from_globalconf(&gc);
    for f in requests.iter().chain(&responses) {
        let c = brama::sign::asic::read(&std::fs::read(f).unwrap()).unwrap();
        assert!(
            c.hash_chain.is_some(),
            "REST is signed in the hash-chain form"
        );
        let v = brama::sign::asic::verify_container(&c, &trust).unwrap();
        assert!(v.time_stamped_at.is_some(), "{}", f.display());
    }
    let ca = dir.join("certs/ca.pem");
    common::independent_verify(&ca, "SEVDEIR-TEST/GOV/00000001", &requests);
    common::independent_verify(&ca, "SEVDEIR-TEST/GOV/00000002", &responses);
}

#[tokio::test]
async fn brama_send_rest_from_the_command_line() {
    let p = start_rest_pair("", "", "").await;
    let url = format!("http://{}", p.ss1.client_http.unwrap());
    let dir = p.net.path();
    let body = dir.join("body.json");
    std::fs::write(&body, "{\"патронім\":\"Тарасович\"}").unwrap();
    let run = |args: Vec<String>| {
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_brama"))
                .arg("send")
                .args(args)
                .output()
                .unwrap()
        })
    };
    let base = |service: &str| {
        vec![
            "--rest".to_string(),
            "--url".into(),
            url.clone(),
            "--client".into(),
            DIIA.into(),
            "--service".into(),
            format!("SEVDEIR-TEST/GOV/00000002/DRACS/{service}"),
        ]
    };
    for uxp in [false, true] {
        let mut args = base("echo");
        args.extend(
            [
                "--method",
                "POST",
                "--path",
                "/x?y=1",
                "--header",
                "X-Custom: так",
                "--body",
                body.to_str().unwrap(),
            ]
            .map(String::from),
        );
        if uxp {
            args.push("--uxp".into());
        }
        let out = run(args).await.unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{stderr}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["method"], "POST");
        assert_eq!(v["path"], "/echo/x");
        assert_eq!(v["query"], "y=1");
        assert!(v["headers"]["x-custom"].is_string(), "{v}");
        let id_header = if uxp { "uxp-queryid" } else { "x-road-id" };
        assert!(
            stderr.contains("HTTP 200") && stderr.contains(id_header),
            "{stderr}"
        );
    }
    let out = run(base("nothing")).await.unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("x-road-error: Server.ServerProxy.UnknownService"));
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"detail\""));
}

#[tokio::test]
async fn soap_and_rest_services_do_not_mix() {
    let p = start_rest_pair("", "", "").await;
    let soap = common::msg(
        DIIA,
        "SEVDEIR-TEST/GOV/00000002/DRACS/echo",
        "<e:echo xmlns:e=\"urn:e\"/>",
    );
    let r = common::http::post_xml(p.ss1.client_http.unwrap(), soap).await;
    assert_eq!(
        common::fault_code(&r.body).as_deref(),
        Some("Server.ServerProxy.ServiceType"),
        "{}",
        r.text()
    );
}

const DECLARATIONS: &str = r#"
[[clients.services]]
code = "declarations"
type = "openapi"
openapi = "openapi.yaml"
url = "http://{sim}/ehealth/declarations"

[[clients.access]]
service = "declarations"
subjects = ["SUBSYSTEM:SEVDEIR-TEST/GOV/00000001/DIIA"]
method = "GET"
"#;

fn curl(args: &[&str]) -> (String, String) {
    let out = std::process::Command::new("curl")
        .args(["-s", "-S", "-D", "/dev/stderr"])
        .args(args)
        .output()
        .expect("curl runs (scripts/test.sh installs it)");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The OpenAPI-described eHealth declarations lookup, called by curl through both servers.
#[tokio::test]
async fn curl_calls_the_openapi_described_declarations_service() {
    let openapi = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/openapi/ehealth-declarations.yaml"
    );
    let p = start_rest_pair("", "", &DECLARATIONS.replace("openapi.yaml", openapi)).await;
    let a = p.ss1.client_http.unwrap();
    let patient = "3f2504e0-4f89-41d3-9a0c-0305e82c3301";
    let url = format!("http://{a}{PROVIDER}/declarations?patient={patient}");
    let (body, head) = tokio::task::spawn_blocking({
        let url = url.clone();
        move || curl(&["-H", &format!("X-Road-Client: {DIIA}"), &url])
    })
    .await
    .unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}{body}");
    assert!(
        head.to_ascii_lowercase().contains("x-road-request-hash:"),
        "{head}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(v["patient"], patient);
    assert!(!v["declarations"].as_array().unwrap().is_empty(), "{v}");
    // OTHER has no right to it.
    let (body, head) = tokio::task::spawn_blocking({
        let url = url.clone();
        move || curl(&["-H", &format!("X-Road-Client: {OTHER}"), &url])
    })
    .await
    .unwrap();
    assert!(head.starts_with("HTTP/1.1 500"), "{head}{body}");
    assert!(
        head.to_ascii_lowercase()
            .contains("x-road-error: server.serverproxy.accessdenied"),
        "{head}"
    );
    // The registry's own 400 for a malformed patient id passes through.
    let bad = format!("http://{a}{PROVIDER}/declarations?patient=42");
    let (body, head) =
        tokio::task::spawn_blocking(move || curl(&["-H", &format!("X-Road-Client: {DIIA}"), &bad]))
            .await
            .unwrap();
    assert!(head.starts_with("HTTP/1.1 400"), "{head}{body}");
    assert!(
        !head.to_ascii_lowercase().contains("x-road-error"),
        "{head}"
    );
    // Its endpoints come from the OpenAPI description; getOpenAPI returns the description.
    let r = request(
        a,
        "GET",
        &format!("{PROVIDER}/listMethods"),
        &[("x-road-client", DIIA)],
        Bytes::new(),
    )
    .await;
    let list = json(&r);
    let decl = list["service"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service_code"] == "declarations")
        .unwrap()
        .clone();
    assert_eq!(decl["service_type"], "OPENAPI");
    assert!(
        decl["endpoint_list"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["method"] == "GET" && e["path"] == "/*"),
        "{decl}"
    );
    let r = request(
        a,
        "GET",
        &format!("{PROVIDER}/getOpenAPI?serviceCode=declarations"),
        &[("x-road-client", DIIA)],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("openapi: \"3.0.3\""), "{}", r.text());
}

/// The embedded default serves the declarations lookup (its endpoints from the OpenAPI file) to
/// DIIA, and not to OTHER.
#[test]
fn embedded_default_offers_declarations_to_diia_only() {
    use brama::identifiers::ClientId;
    brama::serve::prepare_blocking(None).unwrap();
    let conf = brama::config::ServerConf::load(None).unwrap();
    let id = |s: &str| ClientId::parse_path(s).unwrap();
    let ehealth = conf
        .client(&id("SEVDEIR-TEST/GOV/00000006/EHEALTH"))
        .unwrap();
    let svc = ehealth.rest_service("declarations").unwrap();
    assert_eq!(svc.kind, brama::config::file::ServiceKind::Openapi);
    assert!(svc.openapi.is_some());
    assert!(svc.endpoints.len() > 1, "{:?}", svc.endpoints);
    let gc = &conf.globalconf;
    let allowed = |client: &str, method: &str, path: &str| {
        ehealth.is_allowed_at(&id(client), "declarations", Some(method), Some(path), gc)
    };
    assert!(allowed(DIIA, "GET", "/"));
    assert!(allowed(
        DIIA,
        "GET",
        "/7d7a4a1e-0c4b-4f5e-9a7e-2f1c3b5d6e8f"
    ));
    assert!(!allowed(DIIA, "DELETE", "/"));
    assert!(!allowed(OTHER, "GET", "/"));
}
