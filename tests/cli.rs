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
