//! The `brama` binary as an integration engineer uses it.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

fn brama() -> Command {
    Command::new(env!("CARGO_BIN_EXE_brama"))
}

#[test]
fn config_check_accepts_the_embedded_default_and_names_every_error() {
    let out = brama().args(["config", "check"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("SEVDEIR-TEST/GOV/00000001/ss1"));

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        r#"
[server]
id = "SEVDEIR-TEST/GOV"
globalconf_dir = "nowhere"
[listeners]
server = "not an address"
[tls]
auth_cert = "missing.pem"
auth_key = "missing.key"
[[clients]]
id = "SEVDEIR-TEST/GOV/00000002/DRACS"
[[clients.services]]
code = "getBirthRecord"
url = "ftp://x"
[[clients.access]]
service = "getDeathRecord"
subjects = ["SUBSYSTEM:SEVDEIR-TEST/GOV/00000001", "LOCALGROUP:none"]
[log]
timestamping = "sometimes"
body_logging_except = ["not an id"]
[store]
url = "postgres://brama@db.internal/brama?sslmode=require"
"#,
    )
    .unwrap();
    let out = brama()
        .args(["config", "check", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    for key in [
        "server.id",
        "listeners.server",
        "tls.auth_cert",
        "tls.auth_key",
        "clients[0].services[0].url",
        "clients[0].access[0].service",
        "clients[0].access[0].subjects[0]",
        "clients[0].access[0].subjects[1]",
        "log.timestamping",
        "log.body_logging_except[0]",
        "store.tls_ca_file",
        "nowhere",
    ] {
        assert!(err.contains(key), "{key} not named in:\n{err}");
    }
    assert!(err.contains("bad.toml"), "file named: {err}");

    std::fs::write(&bad, "[server]\nid = 5\n").unwrap();
    let out = brama()
        .args(["config", "check", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("line"),
        "TOML errors carry the line"
    );
}

#[tokio::test]
async fn send_builds_a_request_and_prints_answer_or_fault() {
    let Pair {
        ss1,
        ss2,
        sim: _sim,
        ..
    } = start_pair(Duration::ZERO).await;
    let url = format!("http://{}/", ss1.client_http.unwrap());
    let body = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/soap/getBirthRecord.body.xml"
    );
    let run = |service: &'static str| {
        let url = url.clone();
        tokio::task::spawn_blocking(move || {
            brama()
                .args([
                    "send",
                    "--url",
                    &url,
                    "--client",
                    "SEVDEIR-TEST/GOV/00000001/DIIA",
                    "--service",
                    service,
                    "--body",
                    body,
                ])
                .output()
                .unwrap()
        })
    };
    let out = run("SEVDEIR-TEST/GOV/00000002/DRACS/getBirthRecord/v1")
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Шевченківський"));
    let out = run("SEVDEIR-TEST/GOV/00000002/DRACS/getBirthRecord/v9")
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Server.ServerProxy.UnknownService"));
    ss1.shutdown().await;
    ss2.shutdown().await;
}

/// The README's Quick start on the embedded default: `brama serve`, then `brama submit` (which
/// presents DIIA's test certificate over HTTPS) follows an application to completion, while an
/// unauthenticated caller of the router is refused. The embedded default's fixed ports must be
/// free.
#[test]
fn the_embedded_default_serves_the_readme_flow_to_diia_only() {
    let data = tempfile::tempdir().unwrap();
    let log = data.path().join("serve.log");
    let mut serve = brama()
        .arg("serve")
        .current_dir(data.path())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let up = (0..500).any(|_| {
        std::thread::sleep(Duration::from_millis(20));
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("brama is serving"))
    });
    let repo = env!("CARGO_MANIFEST_DIR");
    let result = std::panic::catch_unwind(|| {
        assert!(
            up,
            "serve did not start: {}",
            std::fs::read_to_string(&log).unwrap()
        );
        // It runs from a global configuration downloaded from the simulator's test central
        // server, signed and checked against the embedded anchor, as a member's server does.
        assert!(data
            .path()
            .join("brama-data/globalconf/current/SEVDEIR-TEST/shared-params.xml")
            .is_file());
        let out = brama()
            .args(["globalconf", "show", "--admin", "http://127.0.0.1:5588"])
            .output()
            .unwrap();
        let shown = String::from_utf8_lossy(&out.stdout);
        assert!(
            shown.contains("http://127.0.0.1:8091/internalconf") && shown.contains("expires in:"),
            "{shown}"
        );
        let out = brama()
            .args([
                "submit",
                "examples/applications/all-services.json",
                "--timeout",
                "60s",
            ])
            .current_dir(repo)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("delivered"), "{stdout}");
        // Not a terminal: a progress line when something changed, not one per poll.
        let stderr = String::from_utf8_lossy(&out.stderr);
        let progress: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with('['))
            .map(|l| l.rsplit_once(" · ").map_or(l, |(p, _)| p))
            .collect();
        assert!(!progress.is_empty(), "{stderr}");
        assert!(
            progress.windows(2).all(|w| w[0] != w[1]) && !stderr.contains('\r'),
            "{stderr}"
        );
        // The same application without the certificate, over plain HTTP: refused.
        let rt = tokio::runtime::Runtime::new().unwrap();
        let r = rt.block_on(common::http::request(
            "127.0.0.1:8080".parse().unwrap(),
            "POST",
            "/api/v1/applications",
            &[("content-type", "application/json")],
            bytes::Bytes::from(
                std::fs::read(format!("{repo}/examples/applications/all-services.json")).unwrap(),
            ),
        ));
        assert_eq!(r.status, 403, "{}", r.text());
        assert!(r
            .text()
            .contains("Server.ClientProxy.SslAuthenticationFailed"));

        // The message log: a SOAP exchange with an id of the caller's, then its signed
        // documents by that id (`force` stamps them at once through the simulator's TSA), which
        // `brama verify` accepts with their time-stamps.
        let id = format!("readme-{}", uuid::Uuid::new_v4());
        let soap = brama::message::build::request(
            &brama::message::build::RequestHeader {
                client: brama::identifiers::ClientId::parse_path("SEVDEIR-TEST/GOV/00000001/DIIA")
                    .unwrap(),
                service: brama::identifiers::ServiceId::parse_path(
                    "SEVDEIR-TEST/GOV/00000002/DRACS/getBirthRecord/v1",
                )
                .unwrap(),
                id: id.clone(),
                user_id: None,
                issue: None,
                security_server: None,
            },
            "<d:getBirthRecord xmlns:d=\"http://minjust.gov.ua/dracs/v1\"><recordNumber>1</recordNumber></d:getBirthRecord>",
        );
        let r = rt.block_on(common::http::post_xml(
            "127.0.0.1:8080".parse().unwrap(),
            soap,
        ));
        assert!(fault_code(&r.body).is_none(), "{}", r.text());
        let r = rt.block_on(common::http::get(
            "127.0.0.1:8080".parse().unwrap(),
            &format!("/asic?queryId={id}&xRoadInstance=SEVDEIR-TEST&memberClass=GOV&memberCode=00000001&subsystemCode=DIIA&force"),
            &[],
        ));
        assert_eq!(r.status, 200, "{}", r.text());
        let zip = data.path().join("documents.zip");
        std::fs::write(&zip, &r.body).unwrap();
        let mut archive = zip::ZipArchive::new(std::fs::File::open(&zip).unwrap()).unwrap();
        let mut files = Vec::new();
        for i in 0..archive.len() {
            let mut f = archive.by_index(i).unwrap();
            let path = data.path().join(f.name());
            std::io::copy(&mut f, &mut std::fs::File::create(&path).unwrap()).unwrap();
            files.push(path);
        }
        assert_eq!(files.len(), 2, "the request and its response");
        let out = brama()
            .arg("verify")
            .arg("--globalconf")
            .arg(data.path().join("brama-data/globalconf/current"))
            .args(&files)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        assert_eq!(
            text.matches("time-stamped by an approved TSA").count(),
            2,
            "{text}"
        );
        // The README's next step, from where `serve` ran: the message log directory, by the
        // path the embedded default names (relative to the working directory).
        let out = brama()
            .args(["verify", "brama-data/messages"])
            .current_dir(data.path())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && text.contains("VALID"), "{text}");

        // Its log, written to a file: no colour codes, plain values, a warning that this is the
        // test configuration, and one access line per exchange on each proxy.
        let logged = std::fs::read_to_string(&log).unwrap();
        assert!(
            !logged.contains('\u{1b}') && !logged.contains("Some("),
            "{logged}"
        );
        assert!(logged.contains("WARN") && logged.contains("embedded default configuration"));
        let access = logged
            .lines()
            .filter(|l| l.contains("access: exchange"))
            .collect::<Vec<_>>();
        assert!(
            access.iter().any(|l| l.contains("proxy=client")
                && l.contains("client=SEVDEIR-TEST/GOV/00000001/DIIA")
                && l.contains("service=SEVDEIR-TEST/GOV/00000002/DRACS/getBirthRecord/v1")
                && l.contains("status=200")
                && l.contains(" ms=")),
            "{logged}"
        );
        assert!(
            access.iter().any(|l| l.contains("proxy=server")),
            "{logged}"
        );
    });
    let _ = serve.kill();
    let _ = serve.wait();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

/// The other side of `scripts/check-production-build.sh`: the search it makes for the checked-in
/// test keys finds them in a default build, whose embedded default carries them.
#[test]
fn a_default_build_carries_the_test_keys_the_production_check_looks_for() {
    let bin = std::fs::read(env!("CARGO_BIN_EXE_brama")).unwrap();
    let key = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/certs-test/ss1-auth.key"
    ))
    .unwrap();
    let line = key.lines().nth(2).expect("a third line");
    assert!(bin.windows(line.len()).any(|w| w == line.as_bytes()));
}

/// The embedded default's anchor names the checked-in test central server's certificate (a
/// `brama certs init` elsewhere must not rewrite it), and its download URL is the simulator's.
#[test]
fn the_embedded_anchor_names_the_test_central_server() {
    let root = env!("CARGO_MANIFEST_DIR");
    let anchor = brama::globalconf::ConfigurationAnchor::load(std::path::Path::new(&format!(
        "{root}/config/anchor.xml"
    )))
    .unwrap();
    let pem = std::fs::read(format!("{root}/certs-test/central-server.pem")).unwrap();
    let der = rustls_pemfile::certs(&mut pem.as_slice())
        .next()
        .unwrap()
        .unwrap()
        .to_vec();
    assert_eq!(anchor.sources[0].verification_certs, vec![der]);
    assert_eq!(
        anchor.sources[0].download_url,
        "http://127.0.0.1:8091/internalconf"
    );
}

/// brama's test keys (their private keys are in this repository) serve test instances only: a
/// configuration of a production instance that uses them is refused, naming each key.
#[test]
fn a_production_instance_with_the_test_keys_is_refused() {
    let root = env!("CARGO_MANIFEST_DIR");
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("prod.toml");
    std::fs::write(
        &conf,
        format!(
            r#"
[server]
id = "SEVDEIR/GOV/00000001/ss1"
globalconf_dir = "{root}/config/globalconf"
[tls]
auth_cert = "{root}/certs-test/ss1-auth.pem"
auth_key = "{root}/certs-test/ss1-auth.key"
[[signer.tokens]]
name = "soft"
kind = "software"
keys_dir = "{root}/certs-test"
[[clients]]
id = "SEVDEIR/GOV/00000001/DIIA"
"#
        ),
    )
    .unwrap();
    let out = brama()
        .args(["config", "check", "--config"])
        .arg(&conf)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("tls.auth_cert: is issued by the test CA checked into brama's repository"),
        "{err}"
    );
}

/// A file that is not there is said to be unreadable, not an invalid signature.
#[test]
fn verify_says_when_it_cannot_read_a_file() {
    let out = brama().args(["verify", "nope.asice"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot read nope.asice"), "{err}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("MalformedSignature"));
    // For scripts: one JSON object per file.
    let out = brama()
        .args(["verify", "--json", "nope.asice"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], false, "{v}");
    assert!(v["error"].as_str().unwrap().contains("cannot read"), "{v}");
}

/// `config check --json` and `keys list --json`: what a script reads.
#[test]
fn config_check_and_keys_list_speak_json() {
    let out = brama()
        .args(["config", "check", "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["server"], "SEVDEIR-TEST/GOV/00000001/ss1", "{v}");
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[server]\nid = \"SEVDEIR-TEST/GOV\"\n").unwrap();
    let out = brama()
        .args(["config", "check", "--json", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false, "{v}");
    assert!(!v["errors"].as_array().unwrap().is_empty(), "{v}");

    let out = brama().args(["keys", "list", "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let first = &v.as_array().unwrap()[0];
    assert_eq!(first["label"], "sign-GOV-00000001", "{v}");
    assert_eq!(first["type"], "EC P-256", "{v}");
}
