//! The message log time-stamped as X-Road does it (reference §6.3): records wait in `pending/`,
//! the time-stamper stamps them in one batch per interval through the approved TSA (the test
//! network's, or `openssl ts -reply` as an independent one), and each container then verifies
//! with its time-stamp in `brama verify` and the independent verifier. A TSA outage longer than
//! the acceptable period stops new traffic with `TimestampingFailed` and a health reason, loses
//! nothing, and ends with the first successful stamp; a restart keeps the backlog.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::http::{get, post_xml, request};
use common::*;

const DIIA: &str = "SEVDEIR-TEST/GOV/00000001/DIIA";
const BIRTH: &str = "SEVDEIR-TEST/GOV/00000002/DRACS/getBirthRecord/v1";
const BIRTH_BODY: &str = "<d:getBirthRecord xmlns:d=\"http://minjust.gov.ua/dracs/v1\"><recordNumber>№ 77</recordNumber></d:getBirthRecord>";

/// ss1 logs, stamping every second; it refuses new messages once a record has waited 3 s.
fn log_on_ss1(name: &str, toml: String) -> String {
    match name {
        "ss1" => {
            toml + "\n[log]\nmessages_dir = \"messages\"\ntimestamp_interval_s = 1\n\
                    acceptable_timestamp_failure_period_s = 3\n"
        }
        _ => toml,
    }
}

async fn ask(p: &Pair) -> Option<String> {
    let r = post_xml(p.ss1.client_http.unwrap(), msg(DIIA, BIRTH, BIRTH_BODY)).await;
    fault_code(&r.body)
}

/// ss1's logged containers, loose or of rounds, as files.
fn containers(p: &Pair) -> Vec<PathBuf> {
    let out = p.net.path().join("logged");
    let _ = std::fs::remove_dir_all(&out);
    common::logged_containers(&p.net.path().join("messages"), &out)
}

async fn stamped(p: &Pair) {
    let log = p.ss1.gateway.message_log().unwrap();
    assert!(
        brama::message_log::timestamper::until_stamped(log, Duration::from_secs(30)).await,
        "records still wait: {:?}",
        log.stamping.state()
    );
}

#[tokio::test]
async fn logged_exchanges_are_stamped_and_verify_everywhere() {
    let p = start_pair_with(Duration::ZERO, log_on_ss1).await;
    for _ in 0..3 {
        assert_eq!(ask(&p).await, None);
    }
    stamped(&p).await;
    let files = containers(&p);
    assert_eq!(files.len(), 6, "three requests and their responses");
    let gc = brama::globalconf::GlobalConf::load_dir(&p.net.path().join("globalconf")).unwrap();
    let trust = brama::sign::verify::TrustStore::from_globalconf(&gc);
    for f in &files {
        let c = brama::sign::asic::read(&std::fs::read(f).unwrap()).unwrap();
        assert!(c.timestamp.is_some() && c.ts_hash_chain.is_some());
        let v = brama::sign::asic::verify_container(&c, &trust).unwrap();
        assert!(v.time_stamped_at.is_some());
    }
    brama_verify(&p, &files).await;
    // The log directory itself, as an operator checks it.
    let messages = p.net.path().join("messages");
    let rounds = brama::message_log::stamps::files_in(&messages).unwrap();
    assert!(!rounds.is_empty());
    brama_verify_counting(
        &p.net.path().join("globalconf"),
        std::slice::from_ref(&messages),
        6,
    )
    .await;
    // Written out as files, all of them or one exchange's.
    let export = |query: Option<&str>| {
        let out = p.net.path().join(format!("export-{}", query.is_some()));
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_brama"));
        cmd.args(["archive", "export"])
            .arg(&messages)
            .arg("--out")
            .arg(&out);
        if let Some(q) = query {
            cmd.args(["--query-id", q]);
        }
        let run = cmd.output().unwrap();
        assert!(run.status.success(), "{run:?}");
        let mut names: Vec<String> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let all = export(None);
    let logged: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(all, logged);
    let one = all[0].split('-').next().unwrap().to_string();
    assert_eq!(
        export(Some(&one)).len(),
        2,
        "{one}: a request and its response"
    );
    let missing = std::process::Command::new(env!("CARGO_BIN_EXE_brama"))
        .args(["archive", "export", "no-such-log", "--out"])
        .arg(p.net.path().join("export-missing"))
        .output()
        .unwrap();
    assert!(
        !missing.status.success(),
        "a mistyped log directory is an error"
    );
    let requests: Vec<PathBuf> = files
        .iter()
        .filter(|f| f.to_string_lossy().ends_with("-request.asice"))
        .cloned()
        .collect();
    // The independent verifier, with the time-stamp checked by `openssl ts -verify`.
    let tsa = p.net.path().join("certs/tsa.pem");
    common::independent_verify_with(
        &p.net.path().join("certs/ca.pem"),
        "SEVDEIR-TEST/GOV/00000001",
        &requests,
        &["--tsa", tsa.to_str().unwrap()],
    );
    let m = get(p.ss1.admin.unwrap(), "/metrics", &[]).await.text();
    assert_metrics_described(&m);
    assert!(m.contains("brama_timestamped_records_total 6"), "{m}");
    assert!(m.contains("brama_timestamp_backlog 0"), "{m}");
}

/// The X-Road id (`<xroad:id>`) of a message `msg` built.
/// Every entry of a zip.
fn unzip(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    use std::io::Read;
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    (0..zip.len())
        .map(|i| {
            let mut f = zip.by_index(i).unwrap();
            let mut data = Vec::new();
            f.read_to_end(&mut data).unwrap();
            (f.name().to_string(), data)
        })
        .collect()
}

/// The documents an information system and an auditor download, as X-Road serves them:
/// `GET /asic` by the X-Road id (a zip, or one container with `unique`), only to the client's
/// own information systems, and `GET /verificationconf`, with which `brama verify` checks them.
#[tokio::test]
async fn signed_documents_are_downloaded_by_query_id() {
    let p = start_pair_with(Duration::ZERO, log_on_ss1).await;
    let m = msg(DIIA, BIRTH, BIRTH_BODY);
    let q = query_id(&m);
    let r = post_xml(p.ss1.client_http.unwrap(), m).await;
    assert_eq!(fault_code(&r.body), None, "{}", r.text());
    let ss1 = p.ss1.client_http.unwrap();
    let base = format!(
        "/asic?queryId={q}&xRoadInstance=SEVDEIR-TEST&memberClass=GOV&memberCode=00000001&subsystemCode=DIIA"
    );
    // Not stamped yet unless forced (the interval is 1 s: force it at once).
    let r = get(ss1, &format!("{base}&force"), &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.content_type(), "application/zip");
    let entries = unzip(&r.body);
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            format!("{q}-request-1.asice"),
            format!("{q}-response-1.asice")
        ]
    );
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (name, data) in &entries {
        let f = dir.path().join(name);
        std::fs::write(&f, data).unwrap();
        files.push(f);
    }
    let one = get(ss1, &format!("{base}&unique&requestOnly"), &[]).await;
    assert_eq!(one.status, 200);
    assert_eq!(one.content_type(), "application/vnd.etsi.asic-e+zip");
    assert_eq!(one.body.as_ref(), entries[0].1.as_slice());
    let two = get(ss1, &format!("{base}&unique"), &[]).await;
    assert_eq!(
        fault_code(&two.body).as_deref(),
        Some("Client.InvalidRequest")
    );
    let none = get(ss1, &base.replace(&q, "no-such-id"), &[]).await;
    assert_eq!(fault_code(&none.body).as_deref(), Some("Client.NotFound"));
    // OTHER's records are not DIIA's, and OTHER must present its pinned certificate.
    let other = base.replace(
        "00000001&subsystemCode=DIIA",
        "00000009&subsystemCode=OTHER",
    );
    let r = get(ss1, &other, &[]).await;
    assert_eq!(
        fault_code(&r.body).as_deref(),
        Some("Server.ClientProxy.SslAuthenticationFailed"),
        "{}",
        r.text()
    );

    // The verification configuration, unzipped, is what `brama verify` needs.
    let conf = get(ss1, "/verificationconf", &[]).await;
    assert_eq!(conf.status, 200);
    for (name, data) in unzip(&conf.body) {
        let f = dir.path().join(name);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, data).unwrap();
    }
    brama_verify_with(&dir.path().join("verificationconf"), &files).await;
}

/// `openssl ts -reply` as the network's approved TSA: an implementation brama's code did not
/// write stamps the records, and they verify.
#[tokio::test]
async fn an_independent_tsa_stamps_the_log() {
    let mut net = TwoServers::new();
    let certs = net.path().join("certs");
    let openssl =
        brama::test_tsa::OpensslTsa::new(&certs.join("tsa.pem"), &certs.join("tsa.key")).unwrap();
    let tsa = TestResponder::start_with(&net.pki, Arc::new(openssl));
    net.topology.tsa_urls = vec![tsa.tsa_url()];
    net.topology
        .write_globalconf(&net.path().join("globalconf"), &net.pki)
        .unwrap();
    let p = start_pair_on(net, Duration::ZERO, log_on_ss1).await;
    assert_eq!(ask(&p).await, None);
    stamped(&p).await;
    let files = containers(&p);
    assert_eq!(files.len(), 2);
    brama_verify(&p, &files).await;
    let state = p.ss1.gateway.message_log().unwrap().stamping.state();
    assert_eq!(state.tsa, Some(tsa.tsa_url()));
}

/// Starts (`ms` > 0) or ends a TSA outage at the test network's simulator.
async fn outage(sim: std::net::SocketAddr, ms: u64) -> ::http::StatusCode {
    let path = format!("/_sim/tsa/outage?ms={ms}");
    request(sim, "POST", &path, &[], bytes::Bytes::new())
        .await
        .status
}

/// The TSA goes down: messages keep flowing while the oldest record is younger than the
/// acceptable period, then are refused with X-Road's fault and a health reason; records queue
/// on disk, survive a restart, and are all stamped once the TSA is back, which lifts the refusal.
#[tokio::test]
async fn a_tsa_outage_stops_traffic_only_past_the_acceptable_period() {
    // Two records per token: the backlog takes several tokens in one round.
    let p = start_pair_with(Duration::ZERO, |name, toml| match name {
        "ss1" => log_on_ss1(name, toml) + "timestamp_records_per_token = 2\n",
        _ => toml,
    })
    .await;
    let tsa = p.net.ocsp.addr;
    assert_eq!(outage(tsa, 600_000).await, 200u16);
    let start = Instant::now();
    assert_eq!(ask(&p).await, None, "traffic goes on at first");
    let code = loop {
        if let Some(code) = ask(&p).await {
            break code;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "never refused");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(code, "Server.ClientProxy.TimestampingFailed");
    assert!(
        start.elapsed() >= Duration::from_secs(3),
        "refused too early"
    );
    let health = get(p.ss1.admin.unwrap(), "/health", &[]).await;
    assert_eq!(health.status, 503);
    assert!(health.text().contains("time-stamp"), "{}", health.text());
    let m = get(p.ss1.admin.unwrap(), "/metrics", &[]).await.text();
    assert!(!m.contains("brama_timestamp_failures_total 0\n"), "{m}");
    let waiting = p.ss1.gateway.message_log().unwrap().waiting();
    assert!(waiting >= 2, "the records wait on disk");

    // A restart in the middle keeps the backlog (and still refuses).
    let toml = std::fs::read_to_string(p.net.path().join("ss1.toml")).unwrap();
    let Pair { net, ss1, ss2, sim } = p;
    ss1.shutdown().await;
    let ss1 = start_node(&net.path(), "ss1", &toml, Some(bind())).await;
    let p = Pair { net, ss1, ss2, sim };
    assert_eq!(
        ask(&p).await.as_deref(),
        Some("Server.ClientProxy.TimestampingFailed")
    );

    // The TSA is back: the backlog is stamped and traffic resumes.
    assert_eq!(outage(tsa, 0).await, 200u16);
    stamped(&p).await;
    let m = get(p.ss1.admin.unwrap(), "/metrics", &[]).await.text();
    assert!(
        m.contains(&format!("brama_timestamped_records_total {waiting}\n")),
        "the whole backlog, in tokens of two: {m}"
    );
    eventually!("traffic to resume", ask(&p).await.is_none());
    assert_eq!(get(p.ss1.admin.unwrap(), "/health", &[]).await.status, 200);
    stamped(&p).await;
    let files = containers(&p);
    assert_eq!(files.len(), waiting + 2, "nothing logged was lost");
    brama_verify(&p, &files).await;
}

/// Time-stamped records go into archives chained by `linkinginfo`, rotated by size, named as
/// X-Road names them, after which `archive_command` runs; `brama archive verify` accepts the
/// chain and finds a changed, removed or reordered archive. Archived records are still served by
/// `GET /asic`.
#[tokio::test]
async fn archives_chain_and_tampering_is_found() {
    let marker = tempfile::tempdir().unwrap();
    let out = marker.path().join("archives.txt");
    let cmd = format!("echo \"$BRAMA_ARCHIVES\" >> '{}'", out.display());
    let p = start_pair_with(Duration::ZERO, |name, toml| match name {
        "ss1" => {
            log_on_ss1(name, toml)
                + &format!(
                    "archive_dir = \"archives\"\narchive_interval_s = 1\n\
                     archive_max_file_bytes = 30000\narchive_command = \"{}\"\n",
                    cmd.replace('\\', "\\\\").replace('"', "\\\"")
                )
        }
        _ => toml,
    })
    .await;
    let mut ids = Vec::new();
    for _ in 0..4 {
        let m = msg(DIIA, BIRTH, BIRTH_BODY);
        ids.push(query_id(&m));
        let r = post_xml(p.ss1.client_http.unwrap(), m).await;
        assert_eq!(fault_code(&r.body), None, "{}", r.text());
        // A round each: rotation is by whole rounds.
        stamped(&p).await;
    }
    let archives = p.net.path().join("archives");
    until("the records archived", || {
        containers(&p).is_empty() && out.is_file()
    })
    .await;
    let mut files: Vec<PathBuf> = std::fs::read_dir(&archives)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "zip"))
        .collect();
    files.sort();
    assert!(files.len() >= 2, "rotated by size: {files:?}");
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with("mlog-")
                && name.len() == "mlog-20261207045700-20261207045701-0123456789abcdef.zip".len(),
            "{name}"
        );
    }
    assert!(std::fs::read_to_string(&out).unwrap().contains("mlog-"));

    let run = |args: Vec<PathBuf>| {
        let gc = p.net.path().join("globalconf");
        async move {
            let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_brama"))
                .args(["archive", "verify", "--globalconf"])
                .arg(gc)
                .args(&args)
                .output()
                .await
                .unwrap();
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
            )
        }
    };
    let (ok, text) = run(vec![archives.clone()]).await;
    assert!(ok, "{text}");
    assert_eq!(text.matches("VALID ").count(), files.len(), "{text}");
    assert!(text.contains("as the first archive"), "{text}");
    // The chain's order, as the check found it.
    let files: Vec<PathBuf> = text
        .lines()
        .filter_map(|l| l.strip_prefix("VALID "))
        .map(|l| PathBuf::from(l.split(": ").next().unwrap()))
        .collect();
    let (ok, text) = run(files.clone()).await;
    assert!(ok, "in chain order, one by one: {text}");

    // Removed: the archive after the gap does not continue the one before it.
    let mut gap = files.clone();
    gap.remove(files.len() / 2);
    if gap.len() > 1 {
        let (ok, text) = run(gap).await;
        assert!(!ok && text.contains("does not continue"), "{text}");
    }
    // Reordered.
    let mut swapped = files.clone();
    swapped.swap(0, 1);
    let (ok, text) = run(swapped).await;
    assert!(!ok && text.contains("does not continue"), "{text}");
    // Changed: one byte inside a stored container.
    let tampered = marker.path().join("tampered.zip");
    let mut bytes = std::fs::read(&files[0]).unwrap();
    let at = bytes.windows(11).position(|w| w == b"message.xml").unwrap() + 200;
    bytes[at] ^= 1;
    std::fs::write(&tampered, bytes).unwrap();
    let (ok, text) = run(vec![tampered]).await;
    assert!(!ok && text.contains("INVALID"), "{text}");

    // Archived records are still served.
    let base = format!(
        "/asic?queryId={}&xRoadInstance=SEVDEIR-TEST&memberClass=GOV&memberCode=00000001&subsystemCode=DIIA&unique&responseOnly",
        ids[0]
    );
    let r = get(p.ss1.client_http.unwrap(), &base, &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.content_type(), "application/vnd.etsi.asic-e+zip");
}

/// Body logging off for a provider (X-Road's `message-body-logging` and its per-subsystem
/// overrides): the logged copy keeps the envelope, its header and the Body's element, emptied, is
/// still time-stamped, and its signature no longer verifies against it, as X-Road documents.
#[tokio::test]
async fn bodies_are_left_out_where_body_logging_is_off() {
    let p = start_pair_with(Duration::ZERO, |name, toml| match name {
        "ss1" => {
            log_on_ss1(name, toml) + "body_logging_except = [\"SEVDEIR-TEST/GOV/00000002/DRACS\"]\n"
        }
        _ => toml,
    })
    .await;
    assert_eq!(ask(&p).await, None);
    stamped(&p).await;
    let files = containers(&p);
    assert_eq!(files.len(), 2);
    let gc = brama::globalconf::GlobalConf::load_dir(&p.net.path().join("globalconf")).unwrap();
    let trust = brama::sign::verify::TrustStore::from_globalconf(&gc);
    for f in &files {
        let c = brama::sign::asic::read(&std::fs::read(f).unwrap()).unwrap();
        let text = String::from_utf8_lossy(&c.message);
        assert!(
            !text.contains("recordNumber") && !text.contains("№ 77"),
            "{text}"
        );
        assert!(text.contains("<xroad:id>"), "the header stays: {text}");
        assert!(c.timestamp.is_some());
        let e = brama::sign::asic::verify_container(&c, &trust).unwrap_err();
        assert_eq!(
            e.code,
            brama::error::ErrorCode::InvalidSignatureValue,
            "{e}"
        );
    }
}

/// Single mode (X-Road's `timestamp-immediately`): each record is stamped before its message
/// goes on, the token over the signature value inside the logged signature
/// (`xades:SignatureTimeStamp`); brama's verifier and the independent one (openssl) accept it.
#[tokio::test]
async fn single_mode_stamps_each_record_at_once() {
    let p = start_pair_with(Duration::ZERO, |name, toml| match name {
        "ss1" => log_on_ss1(name, toml) + "timestamping = \"single\"\n",
        _ => toml,
    })
    .await;
    assert_eq!(ask(&p).await, None);
    assert_eq!(
        p.ss1.gateway.message_log().unwrap().waiting(),
        0,
        "nothing waits for a batch"
    );
    let files = containers(&p);
    assert_eq!(files.len(), 2, "written at once");
    for f in &files {
        let c = brama::sign::asic::read(&std::fs::read(f).unwrap()).unwrap();
        assert!(c.timestamp.is_none() && c.ts_hash_chain.is_none());
        assert!(String::from_utf8_lossy(&c.signature).contains("<xades:SignatureTimeStamp"));
    }
    brama_verify(&p, &files).await;
    let tsa = p.net.path().join("certs/tsa.pem");
    let requests: Vec<PathBuf> = files
        .iter()
        .filter(|f| f.to_string_lossy().ends_with("-request.asice"))
        .cloned()
        .collect();
    common::independent_verify_with(
        &p.net.path().join("certs/ca.pem"),
        "SEVDEIR-TEST/GOV/00000001",
        &requests,
        &["--tsa", tsa.to_str().unwrap()],
    );
}

/// A small filesystem of its own for the message log (tmpfs; the suite runs as root, as its
/// apt installs do), unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(bytes: u64) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mounting a small tmpfs needs root: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        SmallDisk { dir }
    }

    fn path(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazily: the test's servers may still hold files there.
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// The message log's disk fills up: new messages are refused with X-Road's `LoggingFailed`
/// (nothing is sent unlogged), what was logged stays whole and verifies, and once space is
/// freed messages flow again without a restart.
#[tokio::test]
async fn a_full_disk_refuses_messages_and_corrupts_nothing() {
    let disk = SmallDisk::mount(512 * 1024);
    let messages = disk.path().join("messages");
    let filler = disk.path().join("filler");
    let p = start_pair_with(Duration::ZERO, |name, toml| match name {
        "ss1" => {
            toml + &format!(
                "\n[log]\nmessages_dir = \"{}\"\ntimestamp_interval_s = 1\n",
                messages.display()
            )
        }
        _ => toml,
    })
    .await;
    assert_eq!(ask(&p).await, None);
    // Fill what is left, then keep asking until the log cannot take a record.
    let free = disk_free(disk.path());
    std::fs::write(&filler, vec![0u8; free.saturating_sub(20 * 1024) as usize]).unwrap();
    let mut ok = 1;
    let code = loop {
        match ask(&p).await {
            None => ok += 1,
            Some(code) => break code,
        }
        assert!(ok < 500, "the disk never filled");
    };
    assert_eq!(code, "Server.ClientProxy.LoggingFailed");
    // Space again: traffic resumes without a restart, and everything acknowledged is stamped
    // and verifies.
    std::fs::remove_file(&filler).unwrap();
    assert_eq!(ask(&p).await, None);
    ok += 1;
    let log = p.ss1.gateway.message_log().unwrap();
    assert!(
        brama::message_log::timestamper::until_stamped(log, Duration::from_secs(30)).await,
        "{:?}",
        log.stamping.state()
    );
    let read = tempfile::tempdir().unwrap();
    let files = common::logged_containers(&messages, read.path());
    assert!(
        files.len() >= 2 * ok,
        "{} containers for {ok} exchanges",
        files.len()
    );
    brama_verify(&p, &files).await;
}

/// Bytes free on the filesystem of `path`.
fn disk_free(path: &std::path::Path) -> u64 {
    let out = std::process::Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}
