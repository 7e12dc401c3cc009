//! A damaged router store is found at open, named, and never used: a data file cut short,
//! changed in the middle, or deleted. `brama store check` says the same offline.

use std::path::Path;
use std::process::Command;

use brama::router::model::{Delivery, State};
use brama::router::store::{Batch, Embedded as Store, DATA_FILE};

fn delivery(i: usize) -> Delivery {
    Delivery {
        application: format!("01JD{i:022}"),
        service: "registerTaxpayer".into(),
        registry: "dps".into(),
        state: State::Pending,
        waiting_for: Vec::new(),
        xroad_id: format!("5b3e8f0a-2c1d-4e6f-8a9b-{i:012}"),
        request: Some("<request/>".repeat(50)),
        has_request: true,
        rest_path: None,
        request_dirty: true,
        attempt_count: 0,
        attempts: Vec::new(),
        attempts_dropped: 0,
        next_attempt_at: None,
        last_error: None,
        answer: None,
        created_at: 0,
        ready_at: None,
        finished_at: None,
        lease: None,
    }
}

/// A store holding 2,000 deliveries, closed.
fn filled(dir: &Path) {
    let store = Store::open(dir, 16 << 20).unwrap();
    for chunk in 0..20 {
        let mut b = Batch::default();
        for i in chunk * 100..(chunk + 1) * 100 {
            b.put_delivery(&delivery(i));
        }
        store.apply(b).unwrap();
    }
    store.flush_sync().unwrap();
}

fn check(dir: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_brama"))
        .args(["store", "check"])
        .arg(dir)
        .env_remove("BRAMA_STORE_FAULT_FULL")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// The server refuses the store and `brama store check` fails, both naming the data file.
fn refused_by_name(dir: &Path) {
    let why = refused(dir);
    assert!(why.contains(DATA_FILE), "{why}");
    let (ok, text) = check(dir);
    assert!(!ok && text.contains(DATA_FILE), "{text}");
}

fn refused(dir: &Path) -> String {
    match Store::open(dir, 16 << 20) {
        Ok(_) => panic!("a damaged store was opened"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn a_whole_store_checks_and_reopens_with_everything() {
    let dir = tempfile::tempdir().unwrap();
    filled(dir.path());
    let (ok, text) = check(dir.path());
    assert!(ok, "{text}");
    assert!(text.contains("6000 records"), "{text}");
    let store = Store::open(dir.path(), 16 << 20).unwrap();
    assert_eq!(store.active().unwrap().len(), 2000);
    let app = delivery(1234).application;
    let d = store.delivery(&app, "registerTaxpayer").unwrap().unwrap();
    assert_eq!(d.request, delivery(1234).request);
}

#[test]
fn a_data_file_cut_short_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    filled(dir.path());
    let path = dir.path().join(DATA_FILE);
    let len = std::fs::metadata(&path).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(len / 2).unwrap();
    drop(f);
    refused_by_name(dir.path());
}

#[test]
fn a_data_file_changed_in_the_middle_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    filled(dir.path());
    let path = dir.path().join(DATA_FILE);
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    for (i, b) in bytes[mid..mid + 4096].iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(31) ^ 0x5a;
    }
    std::fs::write(&path, &bytes).unwrap();
    refused_by_name(dir.path());
}

#[test]
fn a_deleted_data_file_is_refused_rather_than_started_empty() {
    let dir = tempfile::tempdir().unwrap();
    filled(dir.path());
    std::fs::remove_file(dir.path().join(DATA_FILE)).unwrap();
    let why = refused(dir.path());
    assert!(why.contains(DATA_FILE) && why.contains("missing"), "{why}");
    assert!(
        !dir.path().join(DATA_FILE).exists(),
        "nothing was created in its place"
    );
}
