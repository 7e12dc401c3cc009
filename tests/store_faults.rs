//! The router's store on a full disk, and damaged: a full disk refuses new applications at once
//! with a failing health check and recovers by itself once there is room, losing nothing
//! acknowledged; a truncated, changed or deleted data file stops the server at start, naming
//! the file, and `brama store check` finds it. The full disk is the store's fault hook
//! (`BRAMA_STORE_FAULT_FULL`), set for this test binary alone.

mod common;

use std::time::{Duration, Instant};

use common::emalyatko::*;
use common::{http, start_node};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_applications_and_recovers_without_a_restart() {
    let mut net = Net::new();
    let dir = net.path();
    let full = dir.join("disk-is-full");
    // SAFETY: set before any store opens, in a test binary whose only test reads it.
    unsafe { std::env::set_var("BRAMA_STORE_FAULT_FULL", &full) };
    let sim = start_sim(|_| {}).await;
    let ss2_l = std::mem::replace(&mut net.ss2_server, common::bind());
    let _ss2 = start_node(&dir, "ss2", &ss2_toml(sim.addr), Some(ss2_l)).await;
    let ss1_l = std::mem::replace(&mut net.ss1_server, common::bind());
    let ss1 = start_node(&dir, "ss1", &ss1_toml(&dir.join("store"), ""), Some(ss1_l)).await;
    let (client, admin) = (ss1.client_http.unwrap(), ss1.admin.unwrap());

    let (code, v) = submit(client, &application(0)).await;
    assert_eq!(code, 202, "{v}");
    let first = v["id"].as_str().unwrap().to_string();
    assert_eq!(http::get(admin, "/health", &[]).await.status, 200);

    // The disk fills: refused within moments, never hanging, and the health check says why.
    std::fs::write(&full, b"").unwrap();
    for i in 1..4 {
        let start = Instant::now();
        let (code, v) = submit(client, &application(i)).await;
        assert_eq!(code, 503, "{v}");
        assert_eq!(v["type"], "StoreUnavailable", "{v}");
        assert!(v["retryable"].as_bool().unwrap(), "{v}");
        assert!(
            v["message"].as_str().unwrap().contains("space"),
            "the reason is named: {v}"
        );
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
    }
    let health = http::get(admin, "/health", &[]).await;
    assert_eq!(health.status, 503);
    assert!(
        String::from_utf8_lossy(&health.body).contains("router store"),
        "{:?}",
        health.body
    );

    // Room again: new applications are taken without a restart, and everything acknowledged
    // is delivered.
    std::fs::remove_file(&full).unwrap();
    let start = Instant::now();
    let second = loop {
        let (code, v) = submit(client, &application(10)).await;
        if code == 202 {
            break v["id"].as_str().unwrap().to_string();
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "still refused: {v}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(http::get(admin, "/health", &[]).await.status, 200);
    for id in [&first, &second] {
        let done = wait_done(client, id, Duration::from_secs(30)).await;
        assert_eq!(done["status"], "completed", "{done:#}");
    }
    // The refused ones were withdrawn: only the two acknowledged applications are stored.
    let list = http::get(admin, "/api/v1/queue", &[]).await;
    let v: serde_json::Value = serde_json::from_slice(&list.body).unwrap();
    assert_eq!(v["applications"].as_array().unwrap().len(), 2, "{v:#}");
    ss1.shutdown().await;
}
