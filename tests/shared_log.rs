//! The message log's records in the PostgreSQL database the nodes share (`[store] url`), with a
//! real PostgreSQL: a record is a row, durable before the message goes on; any node time-stamps
//! the records another node wrote and serves them on `GET /asic`; one node archives them into a
//! chain `brama archive verify` accepts; an unreachable database refuses messages with X-Road's
//! `LoggingFailed` and fails the health check, and the node recovers by itself.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::http::{get, post_xml};
use common::*;

const DIIA: &str = "SEVDEIR-TEST/GOV/00000001/DIIA";
const BIRTH: &str = "SEVDEIR-TEST/GOV/00000002/DRACS/getBirthRecord/v1";
const BIRTH_BODY: &str = "<d:getBirthRecord xmlns:d=\"http://minjust.gov.ua/dracs/v1\"><recordNumber>№ 5</recordNumber></d:getBirthRecord>";

/// `[log]` in `messages_dir`, stamping every `interval_s`, and `[store]` in the database at
/// `url` as `node`.
fn shared_log(url: &str, node: &str, messages_dir: &str, interval_s: u64, extra: &str) -> String {
    format!(
        "\n[log]\nmessages_dir = \"{messages_dir}\"\ntimestamp_interval_s = {interval_s}\n{extra}\n\
         [store]\nurl = \"{url}\"\nnode = \"{node}\"\nconnect_timeout_ms = 1000\n"
    )
}

fn asic_path(q: &str) -> String {
    format!(
        "/asic?queryId={q}&xRoadInstance=SEVDEIR-TEST&memberClass=GOV&memberCode=00000001&subsystemCode=DIIA"
    )
}

/// The `.asice` entries of the archives in `dir`.
fn archived_containers(dir: &std::path::Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "zip"))
        .filter_map(|e| std::fs::read(e.path()).ok())
        .filter_map(|b| zip::ZipArchive::new(std::io::Cursor::new(b)).ok())
        .map(|z| z.file_names().filter(|n| n.ends_with(".asice")).count())
        .sum()
}

#[tokio::test]
async fn records_are_stamped_served_and_archived_by_any_node() {
    let Some(pg) = pg::Pg::start() else { return };
    // Node a logs, and would stamp only in an hour: node b stamps a's records.
    let p = start_pair_with(Duration::ZERO, |name, toml| match name {
        "ss1" => toml + &shared_log(&pg.url, "a", "messages-a", 3600, ""),
        _ => toml,
    })
    .await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let m = msg(DIIA, BIRTH, BIRTH_BODY);
        ids.push(query_id(&m));
        let r = post_xml(p.ss1.client_http.unwrap(), m).await;
        assert_eq!(fault_code(&r.body), None, "{}", r.text());
    }
    // Nothing in files: the records are the database's.
    let out = p.net.path().join("logged");
    assert!(logged_containers(&p.net.path().join("messages-a"), &out).is_empty());
    let a = p.ss1.gateway.message_log().unwrap();
    let r = get(p.ss1.client_http.unwrap(), &asic_path(&ids[0]), &[]).await;
    assert_eq!(
        fault_code(&r.body).as_deref(),
        Some("Client.NotFound"),
        "waiting for a time-stamp: {}",
        r.text()
    );
    assert!(a.stamping.state().oldest.is_some(), "a counts its backlog");

    // Node b, another client proxy of ss1 on the same database, stamping every second and
    // archiving every second.
    let archives = p.net.path().join("archives");
    let b_toml = ss1_toml()
        + &shared_log(
            &pg.url,
            "b",
            "messages-b",
            1,
            "archive_dir = \"archives\"\narchive_interval_s = 1\narchive_max_file_bytes = 30000\n",
        );
    let b = start_node(&p.net.path(), "ss1b", &b_toml, None).await;
    let log_b = b.gateway.message_log().unwrap();
    assert!(
        brama::message_log::timestamper::until_stamped(log_b, Duration::from_secs(30)).await,
        "{:?}",
        log_b.stamping.state()
    );

    // a's records, stamped by b, served by either node, and verified.
    let dir = tempfile::tempdir().unwrap();
    let mut files: Vec<PathBuf> = Vec::new();
    for (i, q) in ids.iter().enumerate() {
        let node = [p.ss1.client_http.unwrap(), b.client_http.unwrap()][i % 2];
        let r = get(node, &format!("{}&unique&requestOnly", asic_path(q)), &[]).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.content_type(), "application/vnd.etsi.asic-e+zip");
        let f = dir.path().join(format!("{q}.asice"));
        std::fs::write(&f, &r.body).unwrap();
        files.push(f);
    }
    brama_verify(&p, &files).await;

    // Archived by b, the only node that archives: every record, in a chain that verifies.
    until("the six records archived", || {
        archived_containers(&archives) == 6
    })
    .await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_brama"))
        .args(["archive", "verify", "--globalconf"])
        .arg(p.net.path().join("globalconf"))
        .arg(&archives)
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("as the first archive"), "{text}");
    // Still served once archived (retention keeps them).
    let r = get(
        b.client_http.unwrap(),
        &format!("{}&unique&responseOnly", asic_path(&ids[2])),
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    b.shutdown().await;
}

#[tokio::test]
async fn an_unreachable_database_refuses_messages_until_it_is_back() {
    let Some(pg) = pg::Pg::start() else { return };
    let p = start_pair_with(Duration::ZERO, |name, toml| match name {
        "ss1" => toml + &shared_log(&pg.url, "a", "messages", 1, ""),
        _ => toml,
    })
    .await;
    let ss1 = p.ss1.client_http.unwrap();
    let r = post_xml(ss1, msg(DIIA, BIRTH, BIRTH_BODY)).await;
    assert_eq!(fault_code(&r.body), None, "{}", r.text());
    pg.halt();
    let started = std::time::Instant::now();
    let r = post_xml(ss1, msg(DIIA, BIRTH, BIRTH_BODY)).await;
    assert_eq!(
        fault_code(&r.body).as_deref(),
        Some("Server.ClientProxy.LoggingFailed"),
        "{}",
        r.text()
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    let admin = p.ss1.admin.unwrap();
    let health = get(admin, "/health", &[]).await;
    assert_eq!(health.status, 503);
    assert!(health.text().contains("message log"), "{}", health.text());
    // Alive all the same: a restart would not bring the database back.
    assert_eq!(get(admin, "/health/live", &[]).await.status, 200);
    // Not sent: a message that cannot be logged does not go on.
    let sent = p.sim.stats.requests();
    pg.resume();
    eventually!(
        "the node logging again",
        fault_code(&post_xml(ss1, msg(DIIA, BIRTH, BIRTH_BODY)).await.body).is_none()
    );
    assert_eq!(p.sim.stats.requests(), sent + 1);
    assert_eq!(get(admin, "/health", &[]).await.status, 200);
    let log = p.ss1.gateway.message_log().unwrap();
    assert!(brama::message_log::timestamper::until_stamped(log, Duration::from_secs(30)).await);
}

/// `[store] tls_ca_file`: every connection is TLS (rustls), the database's certificate checked
/// against the CA and the URL's host; a database whose certificate another CA issued is refused.
#[tokio::test]
async fn the_database_is_reached_over_tls_checked_against_its_ca() {
    // The database serves the test network's ss1 certificate (its names: localhost, 127.0.0.1).
    let net = TwoServers::new();
    let certs = net.path().join("certs");
    let tls = tempfile::tempdir().unwrap();
    std::fs::copy(certs.join("ss1-auth.pem"), tls.path().join("server.crt")).unwrap();
    std::fs::copy(certs.join("ss1-auth.key"), tls.path().join("server.key")).unwrap();
    let Some(pg) = pg::Pg::start_tls(tls.path()) else {
        return;
    };
    let url = format!("{}?sslmode=require", pg.url);
    let ca = certs.join("ca.pem");
    let store = |ca: &std::path::Path| {
        format!(
            "\n[log]\nmessages_dir = \"messages\"\ntimestamp_interval_s = 1\n\
             [store]\nurl = \"{url}\"\nnode = \"a\"\nconnect_timeout_ms = 1000\n\
             tls_ca_file = \"{}\"\n",
            ca.display()
        )
    };
    let p = start_pair_on(net, Duration::ZERO, |name, toml| match name {
        "ss1" => toml + &store(&ca),
        _ => toml,
    })
    .await;
    let r = post_xml(p.ss1.client_http.unwrap(), msg(DIIA, BIRTH, BIRTH_BODY)).await;
    assert_eq!(fault_code(&r.body), None, "{}", r.text());
    let log = p.ss1.gateway.message_log().unwrap();
    assert!(brama::message_log::timestamper::until_stamped(log, Duration::from_secs(30)).await);
    // Every connection of brama's is encrypted, as the database sees it.
    let out = std::process::Command::new("psql")
        .arg(&pg.url)
        .args([
            "-tAc",
            "SELECT count(*) FILTER (WHERE s.ssl), count(*) FILTER (WHERE NOT s.ssl) \
             FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
             WHERE a.application_name LIKE 'brama %'",
        ])
        .output()
        .unwrap();
    let counts = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let (tls_conns, plain) = counts.split_once('|').unwrap_or(("0", "?"));
    assert!(
        tls_conns.parse::<u32>().unwrap_or(0) > 0 && plain == "0",
        "{counts}"
    );

    // A node trusting another CA does not talk to this database.
    let other = tempfile::tempdir().unwrap();
    let other_ca = other.path().join("other-ca.pem");
    std::fs::write(
        &other_ca,
        brama::pki::generate_ca("another CA").unwrap().cert_pem,
    )
    .unwrap();
    let toml = ss1_toml() + &store(&other_ca).replace("\"messages\"", "\"messages-b\"");
    let b = start_node(&p.net.path(), "ss1b", &toml, None).await;
    let r = post_xml(b.client_http.unwrap(), msg(DIIA, BIRTH, BIRTH_BODY)).await;
    assert_eq!(
        fault_code(&r.body).as_deref(),
        Some("Server.ClientProxy.LoggingFailed"),
        "{}",
        r.text()
    );
    assert!(r.text().contains("certificate"), "{}", r.text());
    b.shutdown().await;
}
