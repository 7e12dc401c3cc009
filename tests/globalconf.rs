//! Two brama servers running from a global configuration they download, as real members do
//! (reference §8.1): a test central server publishes it signed (`brama globalconf publish`'s
//! publisher); each server downloads it from the anchor, checks it, stores it, refreshes it
//! every second here, and applies a changed one without a restart. Tampered, wrongly signed
//! and expired directories are refused with the good configuration kept; an expired one in
//! force stops traffic with `OutdatedGlobalConf` until a fresh one arrives.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::http::{get, post_xml, request};
use common::*;

const DIIA: &str = "SEVDEIR-TEST/GOV/00000001/DIIA";
const BIRTH: &str = "SEVDEIR-TEST/GOV/00000002/DRACS/getBirthRecord/v1";
const TEST: &str = "SEVDEIR-TEST/GOV/00000002/DRACS/test";
const BIRTH_BODY: &str = "<d:getBirthRecord xmlns:d=\"http://minjust.gov.ua/dracs/v1\"><recordNumber>№ 77</recordNumber></d:getBirthRecord>";

const DOWNLOAD: &str =
    "\n[globalconf]\nanchor = \"anchor.xml\"\nrefresh_interval_s = 1\ntimeout_ms = 2000\n";

struct Net {
    pair: Pair,
    central: Central,
}

async fn start() -> Net {
    let mut net = TwoServers::new();
    let central = Central::start(&net);
    let sim = start_sim(Duration::ZERO).await;
    let dead = bind().local_addr().unwrap();
    let dir = net.path();
    let ss2_listener = std::mem::replace(&mut net.ss2_server, bind());
    let ss1_listener = std::mem::replace(&mut net.ss1_server, bind());
    // Each server keeps its own downloads.
    let own = |toml: String, name: &str| {
        toml.replace(
            "globalconf_dir = \"globalconf\"",
            &format!("globalconf_dir = \"downloaded-{name}\""),
        ) + DOWNLOAD
    };
    let ss2 = start_node(
        &dir,
        "ss2",
        &own(ss2_toml(sim.addr, dead), "ss2"),
        Some(ss2_listener),
    )
    .await;
    let ss1 = start_node(&dir, "ss1", &own(ss1_toml(), "ss1"), Some(ss1_listener)).await;
    Net {
        pair: Pair { net, ss1, ss2, sim },
        central,
    }
}

impl Net {
    async fn ask(&self, service: &str) -> (Option<String>, String) {
        // The body's wrapper is named after the operation, as X-Road requires.
        let body = match service {
            TEST => "<t:test xmlns:t=\"http://example.org/test\"><q>1</q></t:test>",
            _ => BIRTH_BODY,
        };
        let r = post_xml(self.pair.ss1.client_http.unwrap(), msg(DIIA, service, body)).await;
        (fault_code(&r.body), r.text())
    }

    /// The published shared parameters, changed by `change`.
    fn publish_changed(&self, change: impl FnOnce(&mut brama::globalconf::SharedParams)) {
        let path = self
            .pair
            .net
            .path()
            .join("globalconf/SEVDEIR-TEST/shared-params.xml");
        let mut shared = brama::globalconf::SharedParams::load(&path).unwrap();
        change(&mut shared);
        self.central
            .publisher
            .set_shared(Bytes::from(shared.to_xml()));
    }

    fn last_error(&self, server: &brama::proxy::Running) -> Option<String> {
        server.gateway.confclient().unwrap().state().last_error
    }
}

#[tokio::test]
async fn servers_run_from_a_published_configuration_and_apply_changes_live() {
    let net = start().await;
    for s in [&net.pair.ss1, &net.pair.ss2] {
        let t = s.gateway.trusted();
        assert!(
            t.expires_at().is_some(),
            "a downloaded configuration carries its Expire-date"
        );
        assert!(net
            .pair
            .net
            .path()
            .join("downloaded-ss1/current/SEVDEIR-TEST/shared-params.xml")
            .is_file());
    }
    assert_eq!(net.ask(BIRTH).await.0, None);
    // `brama globalconf show`, as an operator runs it (without blocking the runtime serving it).
    let admin = format!("http://{}", net.pair.ss1.admin.unwrap());
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_brama"))
        .args(["globalconf", "show", "--admin", &admin])
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("instance:   SEVDEIR-TEST") && text.contains("expires in:"),
        "{text}"
    );
    assert!(text.contains("/internalconf"), "{text}");

    // Under traffic: a new member, and DIIA added to the global group a right names. No
    // request fails while the configuration changes under it.
    let ss1 = net.pair.ss1.client_http.unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let (mut ok, mut failed) = (0u32, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = post_xml(ss1, msg(DIIA, BIRTH, BIRTH_BODY)).await;
                match fault_code(&r.body) {
                    None => ok += 1,
                    Some(code) => failed.push(code),
                }
            }
            (ok, failed)
        })
    };
    assert_eq!(
        net.ask(TEST).await.0.as_deref(),
        Some("Server.ServerProxy.AccessDenied")
    );
    net.publish_changed(|s| {
        let mut m = s.members[0].clone();
        m.id = brama::identifiers::ClientId::member("SEVDEIR-TEST", "GOV", "00000077");
        m.name = "Нова установа".into();
        s.members.push(m);
        s.global_groups[0].members.push(sub("00000001", "DIIA"));
    });
    let new_member = brama::identifiers::ClientId::member("SEVDEIR-TEST", "GOV", "00000077");
    until("the new member on both servers", || {
        [&net.pair.ss1, &net.pair.ss2]
            .iter()
            .all(|s| s.gateway.trusted().gc.client_exists(&new_member))
    })
    .await;
    assert_eq!(net.ask(TEST).await.0, None, "the group's right applies");
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (ok, failed) = load.await.unwrap();
    assert!(ok > 0 && failed.is_empty(), "{ok} ok, failed: {failed:?}");

    // The right removed again (DIIA out of the group): refused from the next download on.
    net.publish_changed(|s| {
        s.global_groups[0]
            .members
            .retain(|m| m.subsystem.as_deref() != Some("DIIA"))
    });
    eventually!(
        "the removed right to stop applying",
        net.ask(TEST).await.0.as_deref() == Some("Server.ServerProxy.AccessDenied")
    );

    // ss1's registered authentication-certificate hash changed: ss2 no longer takes it for ss1.
    net.publish_changed(|s| s.security_servers[0].auth_cert_hashes = vec![vec![7; 32]]);
    let start = Instant::now();
    loop {
        let (code, text) = net.ask(BIRTH).await;
        if code
            .as_deref()
            .is_some_and(|c| c.contains("SslAuthenticationFailed"))
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the changed hash never applied: {text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn bad_directories_are_refused_and_the_good_configuration_stays() {
    let net = start().await;
    let ss1 = &net.pair.ss1;
    let good = ss1.gateway.trusted().gc.clone();
    for (tamper, word) in [
        (brama::test_publish::Tamper::Directory, "signature"),
        (brama::test_publish::Tamper::File, "does not match the hash"),
    ] {
        *net.central.publisher.tamper.lock().unwrap() = tamper;
        until(&format!("refusal of {tamper:?}"), || {
            net.last_error(ss1).is_some_and(|e| e.contains(word))
        })
        .await;
        assert_eq!(*ss1.gateway.trusted().gc, *good);
        assert_eq!(
            net.ask(BIRTH).await.0,
            None,
            "traffic goes on under the good configuration"
        );
    }
    *net.central.publisher.tamper.lock().unwrap() = brama::test_publish::Tamper::None;
    // Expired on arrival.
    *net.central.publisher.expire_after_s.lock().unwrap() = -60;
    until("refusal of an expired directory", || {
        net.last_error(ss1).is_some_and(|e| e.contains("expired"))
    })
    .await;
    *net.central.publisher.expire_after_s.lock().unwrap() = 600;
    until("recovery", || net.last_error(ss1).is_none()).await;

    // An anchor with another key: the directory's signer is unknown.
    let other = brama::pki::generate_ca("someone else").unwrap();
    let dir = net.pair.net.path().join("other");
    std::fs::create_dir_all(dir.join("SEVDEIR-TEST")).unwrap();
    std::fs::copy(
        net.pair.net.path().join("globalconf/instance-identifier"),
        dir.join("instance-identifier"),
    )
    .unwrap();
    std::fs::copy(
        net.pair
            .net
            .path()
            .join("globalconf/SEVDEIR-TEST/shared-params.xml"),
        dir.join("SEVDEIR-TEST/shared-params.xml"),
    )
    .unwrap();
    let wrong =
        brama::test_publish::Publisher::from_dir(&dir, &other.cert_pem, &other.key_pem).unwrap();
    let anchor = brama::globalconf::ConfigurationAnchor::parse(
        wrong
            .anchor_xml(&format!("http://{}/internalconf", net.central.addr))
            .as_bytes(),
    )
    .unwrap();
    let err = brama::confclient::download(ss1.gateway.pool(), &anchor, &[], Duration::from_secs(2))
        .await
        .unwrap_err();
    assert!(err.contains("no trusted certificate"), "{err}");
}

#[tokio::test]
async fn an_expired_configuration_stops_traffic_until_a_fresh_one_arrives() {
    let net = start().await;
    assert_eq!(net.ask(BIRTH).await.0, None);
    *net.central.publisher.expire_after_s.lock().unwrap() = 3;
    // The next directories expire 3 s after they are made; then the central server goes away.
    until("a short-lived directory in force", || {
        net.pair
            .ss1
            .gateway
            .trusted()
            .expires_at()
            .is_some_and(|e| e < time::OffsetDateTime::now_utc().unix_timestamp() + 10)
    })
    .await;
    let outage = request(
        net.central.addr,
        "POST",
        "/_sim/globalconf/outage?ms=8000",
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(outage.status, 200);
    let start = Instant::now();
    loop {
        let (code, text) = net.ask(BIRTH).await;
        if code.as_deref() == Some("Server.ClientProxy.OutdatedGlobalConf") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "never outdated: {text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let health = get(net.pair.ss1.admin.unwrap(), "/health", &[]).await;
    assert_eq!(health.status, 503);
    assert!(health.text().contains("expired"), "{}", health.text());
    // The central server is back: traffic resumes by itself.
    *net.central.publisher.expire_after_s.lock().unwrap() = 600;
    eventually!("traffic to resume", net.ask(BIRTH).await.0.is_none());
    assert_eq!(
        get(net.pair.ss1.admin.unwrap(), "/health", &[])
            .await
            .status,
        200
    );
}

/// The CA's responder moves: the address in a newly published configuration is used from that
/// download on, without a restart, and the old responder can go away.
#[tokio::test]
async fn a_moved_ocsp_responder_is_used_without_a_restart() {
    let mut net = start().await;
    let moved = TestResponder::start(&net.pair.net.pki);
    let url = moved.url();
    net.publish_changed(|s| {
        for ca in &mut s.approved_cas {
            for o in &mut ca.top_ca.ocsp {
                o.url = url.clone();
            }
        }
    });
    drop(std::mem::replace(&mut net.pair.net.ocsp, moved));
    for s in [&net.pair.ss1, &net.pair.ss2] {
        until("the moved responder's answers in use", || {
            let status = s.gateway.own_ocsp().status();
            !status.is_empty()
                && status
                    .iter()
                    .all(|c| c.responder.as_deref() == Some(url.as_str()) && c.state == "good")
        })
        .await;
        assert!(s
            .gateway
            .own_ocsp()
            .status()
            .iter()
            .all(|c| c.responders == [url.clone()]));
    }
    assert_eq!(net.ask(BIRTH).await.0, None);
}
