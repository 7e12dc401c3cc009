//! The batch signer (reference §4.6) over a pool of token sessions.
//!
//! One queue per signing key. Each session runs on its own thread: it waits for work, takes
//! everything queued (up to `max_batch`) and signs it with one token call — a plain signature for
//! a lone single-part message, one hash-chain signature otherwise. The slower the token, the
//! bigger the batches. A session that fails is reopened in the background with backoff while the
//! others carry on; its batch goes back to the front of the queue once, for another session.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::oneshot;

use super::digest::DigestAlgorithm;
use super::error::SignError;
use super::hashchain;
use super::token::{KeySession, KeySource, SignatureAlgorithm};
use super::xades::{self, SignatureInput, SignerCert};
use super::SignatureParts;
use brama_xroad::error::ErrorCode;

/// One message waiting for its signature.
struct Pending {
    /// Digests of `/message.xml`, `/attachment1`, ... with the key's digest algorithm.
    parts: Vec<Vec<u8>>,
    /// Use the hash-chain form even for a lone single-part message (REST always does).
    force_chain: bool,
    enqueued: Instant,
    /// Failures on freshly opened sessions: a session that had been signing and then broke
    /// (a token reset, a dropped network HSM link) does not count against the request.
    fresh_failures: u8,
    /// Times the request went back to the queue, whatever the cause (bounded).
    requeues: u8,
    reply: oneshot::Sender<Result<SignatureParts, SignError>>,
}

type Reply = oneshot::Receiver<Result<SignatureParts, SignError>>;

fn push(q: &mut Queue, parts: Vec<Vec<u8>>, force_chain: bool) -> Reply {
    let (tx, rx) = oneshot::channel();
    let now = Instant::now();
    if let Some(last) = q.last_arrival {
        // Exponentially weighted (1/8). A gap counts at most `gap_cap`, so after an idle spell
        // a burst shows within about 16 messages, while one idle gap alone still lifts the
        // mean above `batch_wait` (cap / 8 > batch_wait): a lone request is not held back.
        let gap = now.saturating_duration_since(last).min(q.gap_cap);
        q.mean_gap = (q.mean_gap * 7 + gap) / 8;
    }
    q.last_arrival = Some(now);
    q.items.push_back(Pending {
        parts,
        force_chain,
        enqueued: now,
        fresh_failures: 0,
        requeues: 0,
        reply: tx,
    });
    rx
}

/// Counters for `/metrics` and `/health`.
#[derive(Default)]
pub struct KeyStats {
    /// Token signing calls (`C_Sign` on PKCS#11).
    pub sign_calls: AtomicU64,
    pub messages: AtomicU64,
    pub failures: AtomicU64,
    pub reopens: AtomicU64,
    pub sessions_ready: AtomicUsize,
    pub sessions_total: AtomicUsize,
    pub largest_batch: AtomicUsize,
}

struct Queue {
    items: VecDeque<Pending>,
    stopped: bool,
    last_arrival: Option<Instant>,
    /// Mean time between messages: a session waits for a fuller batch only when more are
    /// expected within `batch_wait`, so a lone request is never held back.
    mean_gap: Duration,
    /// Nine times `batch_wait`; see `push`.
    gap_cap: Duration,
}

/// A signing key with its queue and sessions.
pub struct KeyWorker {
    pub member: brama_xroad::identifiers::ClientId,
    pub source_name: String,
    pub stats: KeyStats,
    queue: Mutex<Queue>,
    ready: Condvar,
    cert: SignerCert,
    alg: SignatureAlgorithm,
    digest: DigestAlgorithm,
    max_batch: usize,
    batch_wait: Duration,
    timeout: Duration,
    /// Test and chaos hook: sessions whose index is listed here are killed before their next
    /// signature, as a token reset would.
    kill_requests: Mutex<Vec<usize>>,
    /// The signing chain's current OCSP responses, put into every signature's
    /// `RevocationValues`; kept fresh by the gateway.
    ocsp: Mutex<Arc<[Bytes]>>,
    /// Until when they prove the chain good (Unix seconds); `i64::MAX` when its CA checks no
    /// status. Past it the key signs nothing: a peer would refuse the signature.
    ocsp_valid_until: std::sync::atomic::AtomicI64,
}

pub struct KeySettings {
    pub member: brama_xroad::identifiers::ClientId,
    pub cert: SignerCert,
    pub digest: DigestAlgorithm,
    /// The digest signed over (`signer.signature_digest`); `None`: by key type.
    pub signature_digest: Option<DigestAlgorithm>,
    pub max_batch: usize,
    /// How long a free session may wait for more messages before signing a partial batch, when
    /// messages arrive closer together than this (0: sign what is queued at once, as X-Road does).
    pub batch_wait: Duration,
    pub timeout: Duration,
    pub sessions: usize,
}

impl KeyWorker {
    /// Starts `sessions` session threads on `source`. Sessions that cannot open yet keep
    /// retrying in the background.
    pub fn start(source: Arc<dyn KeySource>, s: KeySettings) -> Arc<KeyWorker> {
        let alg = SignatureAlgorithm::for_key(source.key_type(), s.signature_digest);
        let w = Arc::new(KeyWorker {
            member: s.member,
            source_name: source.describe(),
            stats: KeyStats::default(),
            queue: Mutex::new(Queue {
                items: VecDeque::new(),
                stopped: false,
                last_arrival: None,
                mean_gap: s.batch_wait * 9,
                gap_cap: s.batch_wait * 9,
            }),
            ready: Condvar::new(),
            cert: s.cert,
            alg,
            digest: s.digest,
            max_batch: s.max_batch,
            batch_wait: s.batch_wait,
            timeout: s.timeout,
            kill_requests: Mutex::new(Vec::new()),
            ocsp: Mutex::new(Arc::from(Vec::new())),
            ocsp_valid_until: std::sync::atomic::AtomicI64::new(i64::MAX),
        });
        w.stats.sessions_total.store(s.sessions, Ordering::Relaxed);
        for i in 0..s.sessions {
            let w2 = w.clone();
            let src = source.clone();
            std::thread::Builder::new()
                .name(format!("sign-{}-{i}", w.member.member_code))
                .spawn(move || w2.session_loop(i, src))
                .expect("spawning a signer thread");
        }
        w
    }

    pub fn digest(&self) -> DigestAlgorithm {
        self.digest
    }

    pub fn algorithm(&self) -> SignatureAlgorithm {
        self.alg
    }

    /// The signing certificate (DER) and the intermediates the signature carries.
    pub fn cert(&self) -> &SignerCert {
        &self.cert
    }

    /// The OCSP responses later signatures carry (the signing certificate's, then its
    /// intermediates'), and until when they prove the chain good (Unix seconds; `None` when
    /// its CA checks no status).
    pub fn set_ocsp(&self, responses: Vec<Bytes>, valid_until: Option<i64>) {
        *self.ocsp.lock().unwrap_or_else(|p| p.into_inner()) = Arc::from(responses);
        self.ocsp_valid_until
            .store(valid_until.unwrap_or(i64::MAX), Ordering::Relaxed);
    }

    /// X-Road's signer refuses to sign without a fresh, good OCSP response for the signing
    /// chain (`CannotCreateSignature`, which clears once the responder answers).
    fn check_ocsp(&self) -> Result<(), SignError> {
        let until = self.ocsp_valid_until.load(Ordering::Relaxed);
        if until == i64::MAX {
            return Ok(());
        }
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        match now <= until {
            true => Ok(()),
            false => Err(SignError::new(
                ErrorCode::CannotCreateSignature,
                format!(
                    "no fresh, good OCSP response for the signing certificate of {}",
                    self.member
                ),
            )),
        }
    }

    fn current_ocsp(&self) -> Arc<[Bytes]> {
        self.ocsp.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Queues one message's part digests and waits for its signature.
    pub async fn sign(
        &self,
        parts: Vec<Vec<u8>>,
        force_chain: bool,
    ) -> Result<SignatureParts, SignError> {
        self.check_ocsp()?;
        let rx = {
            let mut q = self.open_queue()?;
            push(&mut q, parts, force_chain)
        };
        self.ready.notify_one();
        self.wait(rx).await
    }

    /// Queues several messages at once, so that one signature covers them all (up to
    /// `max_batch`); `brama sign` uses it for its batch form.
    pub(crate) async fn sign_many(
        &self,
        messages: Vec<Vec<Vec<u8>>>,
        force_chain: bool,
    ) -> Vec<Result<SignatureParts, SignError>> {
        if let Err(e) = self.check_ocsp() {
            return messages.iter().map(|_| Err(e.clone())).collect();
        }
        let waits: Vec<_> = match self.open_queue() {
            Ok(mut q) => messages
                .into_iter()
                .map(|parts| push(&mut q, parts, force_chain))
                .collect(),
            Err(e) => return messages.iter().map(|_| Err(e.clone())).collect(),
        };
        self.ready.notify_one();
        let mut out = Vec::with_capacity(waits.len());
        for rx in waits {
            out.push(self.wait(rx).await);
        }
        out
    }

    fn open_queue(&self) -> Result<std::sync::MutexGuard<'_, Queue>, SignError> {
        let q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        if q.stopped {
            return Err(SignError::new(
                ErrorCode::TokenNotActive,
                "the signer is stopped",
            ));
        }
        Ok(q)
    }

    async fn wait(&self, rx: Reply) -> Result<SignatureParts, SignError> {
        match tokio::time::timeout(self.timeout, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(SignError::new(
                ErrorCode::CannotCreateSignature,
                "the signer dropped the request",
            )),
            Err(_) => Err(SignError::new(
                ErrorCode::Timeout,
                format!(
                    "no signature within {:?} (is the token reachable?)",
                    self.timeout
                ),
            )),
        }
    }

    /// Kills session `i` before its next signature (fault injection).
    pub fn kill_session(&self, i: usize) {
        self.kill_requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(i);
    }

    /// Stops the session threads once the queue is empty.
    pub fn stop(&self) {
        self.queue.lock().unwrap_or_else(|p| p.into_inner()).stopped = true;
        self.ready.notify_all();
    }

    fn session_loop(&self, index: usize, source: Arc<dyn KeySource>) {
        let mut backoff = Duration::from_millis(50);
        loop {
            let mut session = match source.open() {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(key = %self.source_name, session = index, error = %e, retry_in = ?backoff, "signing session cannot open");
                    if self.sleep_or_stop(backoff) {
                        return;
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    continue;
                }
            };
            backoff = Duration::from_millis(50);
            self.stats.sessions_ready.fetch_add(1, Ordering::Relaxed);
            let broken = self.serve(index, session.as_mut());
            self.stats.sessions_ready.fetch_sub(1, Ordering::Relaxed);
            if !broken {
                return;
            }
            self.stats.reopens.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(key = %self.source_name, session = index, "signing session failed; reopening");
        }
    }

    /// Returns true if the session broke (reopen), false when the signer stops.
    fn sleep_or_stop(&self, d: Duration) -> bool {
        let q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        let (q, _) = self
            .ready
            .wait_timeout_while(q, d, |q| !q.stopped)
            .unwrap_or_else(|p| p.into_inner());
        q.stopped
    }

    fn serve(&self, index: usize, session: &mut dyn KeySession) -> bool {
        let mut signed_here = 0u64;
        loop {
            let batch = {
                let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
                while q.items.is_empty() && !q.stopped {
                    q = self.ready.wait(q).unwrap_or_else(|p| p.into_inner());
                }
                if q.items.is_empty() {
                    return false;
                }
                if !self.batch_wait.is_zero()
                    && q.items.len() < self.max_batch
                    && q.mean_gap < self.batch_wait
                {
                    // Under load, trade a little latency for fewer token calls and, on the
                    // receiving side, fewer signatures to verify (one per batch).
                    let deadline = Instant::now() + self.batch_wait;
                    while q.items.len() < self.max_batch && !q.stopped {
                        let left = deadline.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            break;
                        }
                        q = self
                            .ready
                            .wait_timeout(q, left)
                            .unwrap_or_else(|p| p.into_inner())
                            .0;
                    }
                }
                let n = q.items.len().min(self.max_batch);
                q.items.drain(..n).collect::<Vec<_>>()
            };
            {
                let mut kills = self.kill_requests.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(pos) = kills.iter().position(|k| *k == index) {
                    kills.remove(pos);
                    session.kill();
                }
            }
            // Requests whose caller has given up are not signed.
            let batch: Vec<Pending> = batch
                .into_iter()
                .filter(|p| !p.reply.is_closed() && p.enqueued.elapsed() < self.timeout)
                .collect();
            if batch.is_empty() {
                continue;
            }
            match self.sign_batch(session, &batch) {
                Ok(results) => {
                    signed_here += 1;
                    self.stats.sign_calls.fetch_add(1, Ordering::Relaxed);
                    self.stats
                        .messages
                        .fetch_add(batch.len() as u64, Ordering::Relaxed);
                    self.stats
                        .largest_batch
                        .fetch_max(batch.len(), Ordering::Relaxed);
                    for (p, r) in batch.into_iter().zip(results) {
                        let _ = p.reply.send(Ok(r));
                    }
                }
                Err(e) if e.retry_elsewhere => {
                    self.stats.failures.fetch_add(1, Ordering::Relaxed);
                    self.requeue_or_fail(batch, &e.message, signed_here == 0);
                    return true;
                }
                Err(e) => {
                    self.stats.failures.fetch_add(1, Ordering::Relaxed);
                    for p in batch {
                        let _ = p.reply.send(Err(SignError::new(
                            ErrorCode::CannotCreateSignature,
                            format!("{}: {}", self.source_name, e.message),
                        )));
                    }
                }
            }
        }
    }

    /// A batch that failed on a broken session goes back to the front of the queue for another
    /// session. A request fails once a second freshly opened session has also failed on it (the
    /// token itself is broken), or after too many requeues.
    fn requeue_or_fail(&self, batch: Vec<Pending>, why: &str, fresh_session: bool) {
        const MAX_REQUEUES: u8 = 8;
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        for mut p in batch.into_iter().rev() {
            p.fresh_failures += u8::from(fresh_session);
            p.requeues += 1;
            if p.fresh_failures >= 2 || p.requeues > MAX_REQUEUES {
                let _ = p.reply.send(Err(SignError::new(
                    ErrorCode::CannotCreateSignature,
                    format!(
                        "{}: {why} (after {} attempts on other sessions)",
                        self.source_name, p.requeues
                    ),
                )));
            } else {
                q.items.push_front(p);
            }
        }
        drop(q);
        self.ready.notify_all();
    }

    fn sign_batch(
        &self,
        session: &mut dyn KeySession,
        batch: &[Pending],
    ) -> Result<Vec<SignatureParts>, super::token::TokenError> {
        let plain = batch.len() == 1 && batch[0].parts.len() == 1 && !batch[0].force_chain;
        let time = xades::signing_time_now();
        if plain {
            let prepared = xades::prepare(&SignatureInput {
                alg: self.alg,
                digest_alg: self.digest,
                reference_uri: hashchain::MESSAGE,
                reference_digest: &batch[0].parts[0],
                mime_type: "text/xml",
                signer: &self.cert,
                signing_time: &time,
            });
            let value = session.sign(self.alg, &prepared.to_sign)?;
            return Ok(vec![SignatureParts {
                hash_chain_result: None,
                hash_chain: None,
                signature: Some(Bytes::from(prepared.finish(
                    &self.cert,
                    &value,
                    &self.current_ocsp(),
                ))),
            }]);
        }
        let inputs: Vec<&[Vec<u8>]> = batch.iter().map(|p| p.parts.as_slice()).collect();
        let built = hashchain::build(self.digest, &inputs);
        let result_digest = self.digest.digest(&built.result);
        let prepared = xades::prepare(&SignatureInput {
            alg: self.alg,
            digest_alg: self.digest,
            reference_uri: xades::HASHCHAIN_RESULT,
            reference_digest: &result_digest,
            mime_type: "application/hash-chain-result",
            signer: &self.cert,
            signing_time: &time,
        });
        let value = session.sign(self.alg, &prepared.to_sign)?;
        let signature = Bytes::from(prepared.finish(&self.cert, &value, &self.current_ocsp()));
        let result = Bytes::from(built.result);
        Ok(built
            .chains
            .into_iter()
            .map(|c| SignatureParts {
                hash_chain_result: Some(result.clone()),
                hash_chain: Some(Bytes::from(c)),
                signature: Some(signature.clone()),
            })
            .collect())
    }
}

impl Drop for KeyWorker {
    fn drop(&mut self) {
        self.stop();
    }
}
