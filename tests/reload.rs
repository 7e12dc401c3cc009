//! Reloading without a restart: ss1 runs as a process of its own under a steady load. Its
//! configuration gains a hosted client and it is told with SIGHUP: the new client is served at
//! once and no request of the load fails. A broken configuration is then refused by
//! `brama reload` with every error named, and the one in force stays.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::processes::{self, wait_listening, Provider};
use common::{fault_code, http, msg, until};

const DIIA: &str = "SEVDEIR-TEST/GOV/00000001/DIIA";
/// A subsystem of the same member, hosted on ss1 only after the reload; ss2 grants it nothing.
const DIIA2: &str = "SEVDEIR-TEST/GOV/00000001/DIIA2";
const BIRTH: &str = "SEVDEIR-TEST/GOV/00000002/DRACS/getBirthRecord/v1";
const BODY: &str = "<d:getBirthRecord xmlns:d=\"http://minjust.gov.ua/dracs/v1\"><recordNumber>№ 9</recordNumber></d:getBirthRecord>";

/// The fault code of a request from `client` (`None`: answered).
async fn call(ss1: std::net::SocketAddr, client: &str) -> Option<String> {
    let r = http::post_xml(ss1, msg(client, BIRTH, BODY)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    fault_code(&r.body)
}

fn brama_reload(config: &std::path::Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_brama"))
        .args(["reload", "--config"])
        .arg(config)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_under_load_fails_nothing_and_a_broken_file_is_refused() {
    let p = Provider::start(Duration::from_millis(2)).await;
    let c = p.ss1_config("ss1", &p.dir.join("store"), "");
    let log = p.dir.join("ss1.log");
    let mut child = processes::spawn(&c.path, &log, &[]);
    wait_listening(c.client, &mut child, &log).await;
    let ss1 = c.client;
    assert_eq!(call(ss1, DIIA).await, None);
    let unknown = call(ss1, DIIA2).await.unwrap();
    assert!(unknown.ends_with("UnknownMember"), "{unknown}");

    // The load: DIIA's requests, back to back, until the end of the test.
    let stop = Arc::new(AtomicBool::new(false));
    let (done, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut load = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (stop, done, failed) = (stop.clone(), done.clone(), failed.clone());
        load.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let r = http::try_request(
                    ss1,
                    "POST",
                    "/",
                    &[("content-type", "text/xml; charset=UTF-8")],
                    msg(DIIA, BIRTH, BODY).into(),
                )
                .await;
                match r {
                    Ok(r) if r.status == 200 && fault_code(&r.body).is_none() => {
                        done.fetch_add(1, Ordering::Relaxed)
                    }
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        });
    }
    until("the load runs", || done.load(Ordering::Relaxed) > 50).await;

    // A hosted client more, and a change that needs a restart: SIGHUP.
    let original = std::fs::read_to_string(&c.path).unwrap();
    let grown = original.replace("pool_idle_timeout_ms = 300", "pool_idle_timeout_ms = 301")
        + &format!("\n[[clients]]\nid = \"{DIIA2}\"\n");
    std::fs::write(&c.path, &grown).unwrap();
    let pid = child.id().to_string();
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap();
    assert!(hup.success());
    let mut code = String::new();
    for _ in 0..100 {
        code = call(ss1, DIIA2).await.unwrap_or_default();
        if code.ends_with("AccessDenied") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // ss1 now sends DIIA2's request, and ss2, which grants it nothing, refuses it.
    assert_eq!(
        code,
        "Server.ServerProxy.AccessDenied",
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let before = done.load(Ordering::Relaxed);
    until("the load goes on", || {
        done.load(Ordering::Relaxed) > before + 50
    })
    .await;

    // `brama reload` with the file unchanged since: nothing applied, the restart still pending.
    let out = brama_reload(&c.path);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("applied nothing"), "{stdout}");
    assert!(
        stdout.contains("waiting for a restart: proxy.pool_idle_timeout_ms"),
        "{stdout}"
    );

    // A broken file: both errors named, exit 1, and the configuration in force stays.
    let broken = grown.replace(&format!("id = \"{DIIA2}\""), "id = \"not-an-id\"")
        + "\n[[clients]]\nid = \"SEVDEIR-TEST/GOV/00000001/DIIA3\"\nconnection = \"https-auth\"\n";
    std::fs::write(&c.path, broken).unwrap();
    let out = brama_reload(&c.path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("not-an-id"), "{stderr}");
    assert!(stderr.contains("is_certs"), "{stderr}");
    assert!(stderr.contains("reload refused: 4 error(s)"), "{stderr}");
    assert_eq!(
        call(ss1, DIIA2).await.as_deref(),
        Some("Server.ServerProxy.AccessDenied")
    );

    stop.store(true, Ordering::Relaxed);
    while load.join_next().await.is_some() {}
    let (done, failed) = (done.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    assert_eq!(failed, 0, "{failed} of {} requests failed", done + failed);
    assert!(child.try_wait().unwrap().is_none(), "ss1 exited");
    let _ = child.kill();
    let _ = child.wait();
    eprintln!("{done} requests under load, none failed, across two reloads and a refused one");
}
