//! Batch time-stamping of the message log (reference §6.3), X-Road's default mode: every
//! interval, the records waiting in `pending/` are stamped with one RFC 3161 request over their
//! time-stamp hash chain (leaf `/META-INF/signatures.xml`, result `/ts-hashchain.xml#STEP0`).
//! The global configuration's approved TSAs are asked in its order until one gives a reply that
//! checks (against the request and the TSA's certificate). Each record then gets the shared
//! result, its own chain and the token, and moves out of `pending/`. There is no cap on a batch:
//! whatever waits is stamped at once, so stamping cannot fall behind the message rate.
//!
//! While stamping fails, records keep queueing on disk; the message log refuses new messages
//! once the oldest has waited longer than the acceptable period ([`super::MessageLog::refusal`]),
//! and the first successful stamp lifts that.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;

use std::collections::BTreeMap;

use super::MessageLog;
use crate::proxy::Gateway;
use brama_sign::asic;
use brama_sign::digest::DigestAlgorithm;
use brama_sign::{hashchain, tsp};

/// The message log's digest (X-Road's `message-log.hash-algo-id`).
pub(crate) const ALG: DigestAlgorithm = DigestAlgorithm::Sha512;

/// The time-stamper's state, for the refusal check, `/health` and `/metrics`.
#[derive(Default)]
pub struct Stamping {
    state: Mutex<State>,
    /// Records stamped since start.
    pub stamped: AtomicU64,
    /// Stamping rounds that failed at every TSA.
    pub failures: AtomicU64,
    /// Wakes the time-stamper at once (a test, an operator).
    pub wake: tokio::sync::Notify,
}

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct State {
    /// When the oldest record waiting for a stamp was written (Unix seconds).
    pub oldest: Option<i64>,
    /// Records waiting at the last count.
    pub backlog: usize,
    pub last_success: Option<i64>,
    pub last_error: Option<String>,
    /// The TSA that gave the last token.
    pub tsa: Option<String>,
}

impl Stamping {
    pub fn state(&self) -> State {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn update(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.state.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub(crate) fn oldest(&self) -> Option<i64> {
        self.state().oldest
    }

    pub(crate) fn last_error(&self) -> Option<String> {
        self.state().last_error
    }

    pub(crate) fn set_oldest(&self, oldest: Option<i64>) {
        self.update(|s| s.oldest = oldest);
    }

    pub(crate) fn set_oldest_if_none(&self, at: i64) {
        self.update(|s| {
            s.oldest.get_or_insert(at);
            s.backlog += 1;
        });
    }
}

pub(crate) fn now_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// The waiting records, oldest first (their names start with the nanosecond they were written).
fn pending_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "asice"))
        .collect();
    files.sort();
    Ok(files)
}

/// When the oldest waiting record was written (Unix seconds).
pub(crate) fn oldest_pending(dir: &Path) -> Option<i64> {
    let first = pending_files(dir).ok()?.into_iter().next()?;
    written_at(first.file_name()?.to_str()?)
}

/// When a pending record was written, from its name (Unix seconds).
fn written_at(pending_name: &str) -> Option<i64> {
    let nanos: u128 = pending_name.split('-').next()?.parse().ok()?;
    Some((nanos / 1_000_000_000) as i64)
}

/// The record's name once stamped: its pending name without the time and counter.
fn final_name(pending: &Path) -> Option<String> {
    let name = pending.file_name()?.to_str()?;
    let mut parts = name.splitn(3, '-');
    parts.next()?;
    parts.next()?;
    parts.next().map(str::to_string)
}

/// Runs until `stop`: a round every interval; after a failed round, the next one after the
/// same interval (records keep queueing meanwhile).
pub async fn run(gw: Arc<Gateway>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let Some(log) = gw.message_log.as_ref() else {
        return;
    };
    loop {
        match stamp_pending(&gw, log).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(records = n, "message log records time-stamped"),
            Err(e) => {
                log.stamping.failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "time-stamping the message log failed");
                log.stamping.update(|s| s.last_error = Some(e));
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(log.settings.interval) => {}
            _ = log.stamping.wake.notified() => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
    }
}

/// One round: every waiting record stamped with one token, or none.
pub async fn stamp_pending(gw: &Gateway, log: &MessageLog) -> Result<usize, String> {
    let waiting: Vec<(String, Vec<u8>)> = log
        .index
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|(n, d)| (n.clone(), d.clone()))
        .collect();
    log.stamping.update(|s| s.backlog = waiting.len());
    if waiting.is_empty() {
        log.stamping.set_oldest(None);
        return Ok(0);
    }
    let trusted = gw.trusted();
    let tsas: Vec<(String, Vec<u8>)> = trusted
        .gc
        .own_shared()
        .map(|s| {
            s.approved_tsas
                .iter()
                .map(|t| (t.url.clone(), t.cert_der.clone()))
                .collect()
        })
        .unwrap_or_default();
    if tsas.is_empty() {
        return Err("the global configuration approves no time-stamping authority".into());
    }
    let certs: Vec<Vec<u8>> = tsas.iter().map(|(_, c)| c.clone()).collect();
    let digests: Vec<Vec<u8>> = waiting.iter().map(|(_, d)| d.clone()).collect();
    let built = hashchain::build_timestamp(ALG, &digests);
    let imprint = ALG.digest(&built.result);
    let nonce = uuid::Uuid::new_v4().as_u64_pair().0;
    let query = Query {
        request: Bytes::from(tsp::request(ALG, &imprint, Some(nonce), false)),
        imprint: &imprint,
        nonce,
        stamped: &built.result,
        certs: &certs,
    };
    let mut errors = Vec::new();
    let mut token = None;
    for (url, _) in &tsas {
        match ask(gw, log, url, &query).await {
            Ok(t) => {
                token = Some((url.clone(), t));
                break;
            }
            Err(e) => errors.push(format!("{url}: {e}")),
        }
    }
    let Some((tsa, token)) = token else {
        return Err(errors.join("; "));
    };
    let n = waiting.len();
    let dir = log.dir.clone();
    let pending = log.pending.clone();
    let result = built.result;
    let names: Vec<String> = waiting.into_iter().map(|(n, _)| n).collect();
    let moved = names.clone();
    tokio::task::spawn_blocking(move || {
        for (name, chain) in moved.iter().zip(built.chains) {
            let from = pending.join(name);
            let mut f = std::fs::File::options()
                .read(true)
                .write(true)
                .open(&from)
                .map_err(|e| format!("{}: {e}", from.display()))?;
            asic::append_timestamp(&mut f, &result, &chain, &token)
                .map_err(|e| format!("{}: {e}", from.display()))?;
            let to = final_name(Path::new(name)).ok_or("a pending record without its name")?;
            std::fs::rename(&from, dir.join(to)).map_err(|e| e.to_string())?;
        }
        Ok::<_, String>(())
    })
    .await
    .map_err(|e| e.to_string())??;
    log.sync.wait().await.map_err(|e| e.to_string())?;
    let oldest = {
        let mut index = log.index.lock().unwrap_or_else(|p| p.into_inner());
        for name in &names {
            index.remove(name);
        }
        index.keys().next().and_then(|n| written_at(n))
    };
    log.stamping.stamped.fetch_add(n as u64, Ordering::Relaxed);
    log.stamping.update(|s| {
        s.oldest = oldest;
        s.backlog = s.backlog.saturating_sub(n);
        s.last_success = Some(crate::ocsp::now());
        s.last_error = None;
        s.tsa = Some(tsa);
    });
    Ok(n)
}

/// One round's request to the TSAs and what their answer is checked against.
struct Query<'a> {
    request: Bytes,
    imprint: &'a [u8],
    nonce: u64,
    /// The ts hash-chain result the token must cover.
    stamped: &'a [u8],
    /// The approved TSAs' certificates.
    certs: &'a [Vec<u8>],
}

/// One TSA's token for the query, checked against the request and the approved TSAs.
async fn ask(gw: &Gateway, log: &MessageLog, url: &str, q: &Query<'_>) -> Result<Vec<u8>, String> {
    let reply = gw
        .pool
        .post_for(
            url,
            tsp::CT_QUERY,
            tsp::CT_REPLY,
            q.request.clone(),
            log.settings.timeout,
            tsp::MAX_REPLY_BYTES,
        )
        .await?;
    let token_der = tsp::parse_reply(&reply)?;
    let token = tsp::parse_token(token_der)?;
    tsp::check_reply(&token, ALG, q.imprint, Some(q.nonce))?;
    tsp::verify(token_der, q.stamped, q.certs).map_err(|e| e.to_string())?;
    Ok(token_der.to_vec())
}

/// The records an earlier run left in `pending/`, with their signature digests; one that does
/// not read is moved aside to `damaged/` (it would otherwise hold the queue forever) and
/// reported.
pub(crate) fn read_pending(dir: &Path) -> std::io::Result<BTreeMap<String, Vec<u8>>> {
    let mut out = BTreeMap::new();
    for path in pending_files(dir)? {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|b| asic::read_signature(&b).map_err(|e| e.to_string()))
        {
            Ok(sig) => {
                out.insert(name, ALG.digest(&sig));
            }
            Err(e) => {
                let damaged = dir.join("damaged");
                std::fs::create_dir_all(&damaged)?;
                std::fs::rename(&path, damaged.join(&name))?;
                tracing::error!(file = %path.display(), error = %e, "a message log record does not read; moved to damaged/");
            }
        }
    }
    Ok(out)
}

/// Waits `d` at most for the time-stamper to have stamped everything written before the call
/// (tests, `brama` commands).
pub async fn until_stamped(log: &MessageLog, d: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + d;
    loop {
        if pending_files(&log.pending).is_ok_and(|f| f.is_empty()) {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        log.stamping.wake.notify_one();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
