//! Batch time-stamping of the message log (reference §6.3), X-Road's default mode: every
//! interval, the records waiting in the queue are stamped with one RFC 3161 request over their
//! time-stamp hash chain (leaf `/META-INF/signatures.xml`, result `/ts-hashchain.xml#STEP0`).
//! The global configuration's approved TSAs are asked in its order until one gives a reply that
//! checks (against the request and the TSA's certificate). The round then writes the token and
//! where its records are (`super::stamps`, one file per token); each record's container is
//! put together, stamped, when it is read (a streamed record, a file of its own, is stamped in
//! place). A round stamps whatever waits (`timestamp_records_per_token` records per token, to
//! bound the chains held at once), so stamping cannot fall behind the message rate.
//!
//! While stamping fails, records keep queueing on disk; the message log refuses new messages
//! once the oldest has waited longer than the acceptable period ([`super::MessageLog::refusal`]),
//! and the first successful stamp lifts that.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;

use super::stamps::{self, Stamped};
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

/// One round: every record waiting when it starts stamped, `[log] timestamp_records_per_token`
/// at a time (the oldest first; the chains held at once stay bounded whatever the backlog);
/// stops at the first failure.
pub async fn stamp_pending(gw: &Arc<Gateway>, log: &MessageLog) -> Result<usize, String> {
    if let Some(db) = &log.shared {
        return stamp_shared(gw, log, db).await;
    }
    // Appends go to a new segment, so that the one this round stamps can go once stamped.
    let g = gw.clone();
    tokio::task::spawn_blocking(move || match g.message_log.as_ref() {
        Some(log) => log.queue.roll(super::queue::ROLL_AT),
        None => Ok(()),
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())?;
    let total = log.queue.len();
    log.stamping.update(|s| s.backlog = total);
    if total == 0 {
        log.stamping.set_oldest(None);
        return Ok(0);
    }
    let mut done = 0;
    while done < total {
        let chunk = log.queue.first(
            log.settings.per_token.max(1).min(total - done),
            super::queue::MAX_BUNDLE_BYTES,
        );
        if chunk.is_empty() {
            break;
        }
        done += stamp_chunk(gw, log, chunk).await?;
    }
    Ok(done)
}

/// A round in the database the nodes share: whatever waits, from any node, `per_token` records
/// per token, claimed so that nodes stamping at once take different records.
async fn stamp_shared(
    gw: &Arc<Gateway>,
    log: &MessageLog,
    db: &super::shared::SharedRecords,
) -> Result<usize, String> {
    let (total, oldest) = db.backlog().await?;
    log.stamping.update(|s| {
        s.backlog = total;
        s.oldest = oldest;
    });
    let mut done = 0;
    let mut tsa = None;
    while done < total {
        let round = db
            .stamp_round(
                log.settings.per_token.max(1),
                log.settings.timeout,
                async |digests: &[Vec<u8>]| {
                    let tree = hashchain::timestamp_tree(ALG, digests);
                    token_for(gw, log, &tree.result).await
                },
            )
            .await?;
        let Some((n, by)) = round else { break };
        done += n;
        tsa = Some(by);
        log.stamping.stamped.fetch_add(n as u64, Ordering::Relaxed);
    }
    let (left, oldest) = db.backlog().await?;
    log.stamping.update(|s| {
        s.backlog = left;
        s.oldest = oldest;
        if done > 0 {
            s.last_success = Some(crate::ocsp::now());
            s.last_error = None;
            s.tsa = tsa;
        }
    });
    Ok(done)
}

/// Records stamped with one token: the round's file written and flushed, then the queue
/// forgets them.
async fn stamp_chunk(
    gw: &Arc<Gateway>,
    log: &MessageLog,
    waiting: Vec<super::queue::Frame>,
) -> Result<usize, String> {
    let digests: Vec<Vec<u8>> = waiting.iter().map(|f| f.digest.clone()).collect();
    let tree = hashchain::timestamp_tree(ALG, &digests);
    let (tsa, token) = token_for(gw, log, &tree.result).await?;
    // The records are on disk before a round's file names them, where they were found (a
    // failed write since moves the records after it: the round is done again).
    log.queue.commit().await.map_err(|e| e.to_string())?;
    if !log.queue.still_first(&waiting) {
        return Err("the queue changed under the round (a failed write); it is repeated".into());
    }
    let n = waiting.len();
    let g = gw.clone();
    tokio::task::spawn_blocking(move || -> Result<(), String> {
        let log = g.message_log.as_ref().ok_or("no message log")?;
        for (i, frame) in waiting.iter().enumerate().filter(|(_, f)| f.external) {
            // A streamed record: its container gets the time-stamp in place, then moves.
            let from = log.dir.join(super::INCOMING).join(&frame.name);
            if !from.exists() && log.dir.join(&frame.name).exists() {
                // Stamped and moved by a round that stopped before the queue forgot it.
                continue;
            }
            let mut f = std::fs::File::options()
                .read(true)
                .write(true)
                .open(&from)
                .map_err(|e| format!("{}: {e}", from.display()))?;
            asic::append_timestamp(&mut f, &tree.result, &tree.chain(i), &token)
                .and_then(|()| f.sync_data())
                .map_err(|e| format!("{}: {e}", frame.name))?;
            std::fs::rename(&from, log.dir.join(&frame.name))
                .map_err(|e| format!("{}: {e}", from.display()))?;
        }
        // The round's file: the token and where each record is, not the records again.
        let records: Vec<Stamped> = waiting
            .iter()
            .map(|f| Stamped {
                name: f.name.clone(),
                offset: f.offset,
                len: f.len,
                external: f.external,
                digest: f.digest.clone(),
            })
            .collect();
        let first = waiting.first().ok_or("an empty round")?;
        let name = stamps::file_name(first.segment, first.offset);
        stamps::encode(&token, &records)
            .and_then(|bytes| super::write_synced(&log.dir, &name, &bytes))
            .map_err(|e| format!("{}: {e}", log.dir.join(&name).display()))?;
        // Durable before the queue forgets the records: a crash before that has the round
        // written again, under the same name.
        std::fs::File::open(&log.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| format!("{}: {e}", log.dir.display()))
    })
    .await
    .map_err(|e| e.to_string())??;
    let g = gw.clone();
    tokio::task::spawn_blocking(move || match g.message_log.as_ref() {
        Some(log) => log.queue.remove_first(n).map_err(|e| e.to_string()),
        None => Ok(()),
    })
    .await
    .map_err(|e| e.to_string())??;
    log.stamping.stamped.fetch_add(n as u64, Ordering::Relaxed);
    let oldest = log.queue.oldest();
    log.stamping.update(|s| {
        s.oldest = oldest;
        s.backlog = s.backlog.saturating_sub(n);
        s.last_success = Some(crate::ocsp::now());
        s.last_error = None;
        s.tsa = Some(tsa);
    });
    Ok(n)
}

/// Single mode (X-Road's `timestamp-immediately`): a token over the decoded signature value,
/// from the approved TSAs in order, put into the signature as `xades:SignatureTimeStamp`;
/// returns the new signature document.
pub async fn stamp_single(
    gw: &Gateway,
    log: &MessageLog,
    signature: &[u8],
) -> Result<Vec<u8>, String> {
    let xml = gw.trusted().verifier.trust.xml;
    let parsed = brama_sign::xades::parse(signature, &xml).map_err(|e| e.to_string())?;
    let (_, token) = token_for(gw, log, &parsed.signature_value).await?;
    log.stamping.stamped.fetch_add(1, Ordering::Relaxed);
    brama_sign::xades::with_signature_time_stamp(signature, &token)
        .ok_or_else(|| "the signature has no place for a time-stamp".to_string())
}

/// A token over `stamped` from the approved TSAs, asked in the global configuration's order
/// until one gives a reply that checks (against the request and the approved certificates):
/// the TSA's URL and the token.
async fn token_for(
    gw: &Gateway,
    log: &MessageLog,
    stamped: &[u8],
) -> Result<(String, Vec<u8>), String> {
    let tsas = approved_tsas(&gw.trusted().gc);
    if tsas.is_empty() {
        return Err("the global configuration approves no time-stamping authority".into());
    }
    let certs: Vec<Vec<u8>> = tsas.iter().map(|(_, c)| c.clone()).collect();
    let imprint = ALG.digest(stamped);
    let nonce = uuid::Uuid::new_v4().as_u64_pair().0;
    let query = Query {
        request: Bytes::from(tsp::request(ALG, &imprint, Some(nonce), false)),
        imprint: &imprint,
        nonce,
        stamped,
        certs: &certs,
    };
    let mut errors = Vec::new();
    for (url, _) in &tsas {
        match ask(gw, log, url, &query).await {
            Ok(token) => return Ok((url.clone(), token)),
            Err(e) => errors.push(format!("{url}: {e}")),
        }
    }
    Err(errors.join("; "))
}

/// The approved TSAs of the own instance, in the global configuration's order: URL, certificate.
fn approved_tsas(gc: &brama_xroad::globalconf::GlobalConf) -> Vec<(String, Vec<u8>)> {
    gc.own_shared()
        .map(|s| {
            s.approved_tsas
                .iter()
                .map(|t| (t.url.clone(), t.cert_der.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// A request to the TSAs and what their answer is checked against.
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

/// Waits `d` at most for the time-stamper to have stamped everything written before the call
/// (tests, `brama` commands).
pub async fn until_stamped(log: &MessageLog, d: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + d;
    loop {
        let waiting = match &log.shared {
            Some(db) => db.backlog().await.map_or(usize::MAX, |(n, _)| n),
            None => log.queue.len(),
        };
        if waiting == 0 {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        log.stamping.wake.notify_one();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
