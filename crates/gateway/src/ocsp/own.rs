//! The server's own certificates' OCSP responses: the authentication certificate and the
//! signing certificate of every hosted member, with their intermediate CAs. Each is fetched
//! from the responders its issuing CA lists in the global configuration (`approvedCA/…/ocsp`),
//! in turn, every `fetch_interval_s` and at the latest halfway through its freshness, so a
//! healthy responder never lets one go stale; failures are retried with back-off. A response is
//! checked (X-Road's rules) before it replaces the one in use, kept in memory and, with
//! `[ocsp] cache_dir`, on disk, so a restart does not wait on a responder.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;

use super::{now, sha1, sha256};
use crate::proxy::Gateway;
use brama_sign::ocsp::{self, Verdict};
use brama_sign::verify::TrustStore;
use brama_xroad::error::ErrorCode;
use brama_xroad::globalconf::GlobalConf;
use brama_xroad::identifiers::ClientId;

/// One of the server's own certificates whose status its CA keeps.
#[derive(Debug)]
pub struct OwnCert {
    pub der: Vec<u8>,
    pub sha1: [u8; 20],
    pub issuer_der: Vec<u8>,
    /// The issuing CA's responders, in the global configuration's order.
    pub urls: Vec<String>,
    /// What it is: `authentication certificate`, `signing certificate of …`, `CA …`.
    pub label: String,
    pub subject: String,
}

/// The response in use for one certificate.
#[derive(Clone, Debug)]
pub struct Current {
    pub der: Bytes,
    pub verdict: Verdict,
    /// `None` while good; the refusal when the CA says revoked or unknown.
    pub refused: Option<String>,
    /// What the CA said.
    pub status: ocsp::CertStatus,
    /// Unix seconds.
    pub fetched_at: i64,
    pub responder: String,
}

/// Fetch state per certificate.
#[derive(Clone, Debug, Default)]
struct Attempts {
    failures: u32,
    last_error: Option<String>,
    /// Unix seconds of the next try after a failure.
    retry_at: i64,
    /// Fetch at `retry_at` even though the response in use is good (`refresh_now`).
    forced: bool,
}

pub struct OwnOcsp {
    /// What is tracked under the global configuration in force; replaced when it changes.
    tracked: RwLock<Arc<Tracked>>,
    /// The chains it is derived from: the authentication chain, each member's signing chain.
    auth_chain: Vec<Vec<u8>>,
    signing: Vec<(ClientId, Vec<Vec<u8>>)>,
    current: RwLock<HashMap<[u8; 20], Arc<Current>>>,
    attempts: Mutex<HashMap<[u8; 20], Attempts>>,
    cache_dir: Option<PathBuf>,
    pub(crate) interval: Duration,
    timeout: Duration,
    /// Wakes the refresh loop at once (a test, `brama ocsp refresh`, a new configuration).
    pub(crate) wake: tokio::sync::Notify,
    /// Fetches that found no usable response at any responder.
    pub fetch_failures: std::sync::atomic::AtomicU64,
}

/// The certificates whose CA names responders in one global configuration, and its rules.
#[derive(Debug, Default)]
pub struct Tracked {
    pub certs: Vec<OwnCert>,
    /// SHA-256 → SHA-1 of each certificate (peers ask by either).
    by_sha256: HashMap<[u8; 32], [u8; 20]>,
    /// The authentication certificate and its intermediates (those with a responder).
    auth_chain: Vec<[u8; 20]>,
    /// Each member's signing certificate and its intermediates.
    signing: Vec<(ClientId, Vec<[u8; 20]>)>,
    policy: ocsp::Policy,
}

impl Tracked {
    fn derive(
        gc: &GlobalConf,
        policy: ocsp::Policy,
        auth_chain: &[Vec<u8>],
        signing: &[(ClientId, Vec<Vec<u8>>)],
    ) -> Tracked {
        let mut certs: Vec<OwnCert> = Vec::new();
        let mut track = |chain: &[Vec<u8>], what: &str| -> Vec<[u8; 20]> {
            let mut ids = Vec::new();
            for (i, der) in chain.iter().enumerate() {
                let label = match i {
                    0 => what.to_string(),
                    _ => "intermediate CA".to_string(),
                };
                let Some(c) = own_cert(gc, der, chain.get(i + 1), label) else {
                    continue;
                };
                ids.push(c.sha1);
                if !certs.iter().any(|x| x.sha1 == c.sha1) {
                    certs.push(c);
                }
            }
            ids
        };
        let auth = track(auth_chain, "authentication certificate");
        let signing = signing
            .iter()
            .map(|(member, chain)| {
                let ids = track(chain, &format!("signing certificate of {member}"));
                (member.clone(), ids)
            })
            .collect();
        let by_sha256 = certs.iter().map(|c| (sha256(&c.der), c.sha1)).collect();
        Tracked {
            certs,
            by_sha256,
            auth_chain: auth,
            signing,
            policy,
        }
    }
}

/// The status one certificate's response is in, for `brama ocsp status`, `/health` and metrics.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CertStatus {
    pub label: String,
    pub subject: String,
    pub sha1: String,
    pub responders: Vec<String>,
    /// `good`, `revoked`, `unknown` (to the CA), `missing` or `stale`.
    pub state: &'static str,
    pub responder: Option<String>,
    pub this_update: Option<i64>,
    pub next_update: Option<i64>,
    /// Seconds since `thisUpdate`.
    pub age_s: Option<i64>,
    /// Seconds until the response stops being fresh (negative when it has).
    pub fresh_for_s: Option<i64>,
    /// Seconds until the next fetch.
    pub next_fetch_in_s: i64,
    pub last_error: Option<String>,
}

impl OwnOcsp {
    /// The certificates of `gc`'s CAs that name a responder: the auth chain and each signing
    /// key's chain. Cached responses in `cache_dir` that still verify are used at once.
    pub fn new(
        gc: &GlobalConf,
        trust: &TrustStore,
        auth_chain: &[Vec<u8>],
        signing: &[(ClientId, Vec<Vec<u8>>)],
        section: &crate::config::file::OcspSection,
        cache_dir: Option<PathBuf>,
    ) -> OwnOcsp {
        let tracked = Tracked::derive(gc, trust.ocsp_policy, auth_chain, signing);
        let own = OwnOcsp {
            tracked: RwLock::new(Arc::new(tracked)),
            auth_chain: auth_chain.to_vec(),
            signing: signing.to_vec(),
            current: RwLock::default(),
            attempts: Mutex::default(),
            cache_dir,
            interval: Duration::from_secs(section.fetch_interval_s.max(1)),
            timeout: Duration::from_millis(section.fetch_timeout_ms.max(1)),
            wake: tokio::sync::Notify::new(),
            fetch_failures: Default::default(),
        };
        own.load_cache(trust);
        own
    }

    /// A new global configuration is in force: the responders, their certificates, which CAs
    /// check status and the freshness rules are taken from it. A response that no longer
    /// checks under it is dropped, and every certificate is fetched from its new responders
    /// straight away, so a moved or re-keyed responder is used without a restart.
    pub(crate) fn reconfigure(&self, gw: &Gateway, gc: &GlobalConf, trust: &TrustStore) {
        let tracked = Tracked::derive(gc, trust.ocsp_policy, &self.auth_chain, &self.signing);
        {
            let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
            current.retain(|sha1, c| {
                tracked
                    .certs
                    .iter()
                    .any(|cert| &cert.sha1 == sha1 && self.check(trust, cert, &c.der).is_ok())
            });
        }
        *self.tracked.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(tracked);
        self.push_to_signer(gw);
        self.refresh_now();
    }

    /// What is tracked now.
    pub fn tracked(&self) -> Arc<Tracked> {
        self.tracked
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Fetches every response again now (a responder has just come up; `brama ocsp`).
    pub fn refresh_now(&self) {
        let tracked = self.tracked();
        let mut attempts = self.attempts.lock().unwrap_or_else(|p| p.into_inner());
        for cert in &tracked.certs {
            let a = attempts.entry(cert.sha1).or_default();
            a.retry_at = 0;
            a.forced = true;
        }
        drop(attempts);
        self.wake.notify_one();
    }

    /// The response in use for the certificate with this SHA-1.
    pub fn current(&self, sha1: &[u8; 20]) -> Option<Arc<Current>> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(sha1)
            .cloned()
    }

    /// By SHA-256 of the certificate, as X-Road 8 peers ask.
    pub fn current_by_sha256(&self, sha256: &[u8; 32]) -> Option<Arc<Current>> {
        let sha1 = *self.tracked().by_sha256.get(sha256)?;
        self.current(&sha1)
    }

    fn responses(&self, ids: &[[u8; 20]]) -> Vec<Bytes> {
        let current = self.current.read().unwrap_or_else(|p| p.into_inner());
        ids.iter()
            .filter_map(|id| current.get(id).map(|c| c.der.clone()))
            .collect()
    }

    /// When the response for `cert` should be fetched again (Unix seconds).
    fn due(&self, policy: ocsp::Policy, cert: &OwnCert, now: i64) -> i64 {
        let attempts = self.attempts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(a) = attempts
            .get(&cert.sha1)
            .filter(|a| a.failures > 0 || a.forced)
        {
            return a.retry_at;
        }
        drop(attempts);
        match self.current(&cert.sha1) {
            None => now,
            Some(c) => {
                let fresh_until = c.verdict.fresh_until(policy);
                let halfway = c.verdict.this_update + (fresh_until - c.verdict.this_update) / 2;
                (c.fetched_at + self.interval.as_secs() as i64).min(halfway)
            }
        }
    }

    /// Per-certificate state, for the CLI, `/health` and metrics.
    pub fn status(&self) -> Vec<CertStatus> {
        let now = now();
        let tracked = self.tracked();
        tracked
            .certs
            .iter()
            .map(|c| {
                let cur = self.current(&c.sha1);
                let attempts = self
                    .attempts
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(&c.sha1)
                    .cloned()
                    .unwrap_or_default();
                let fresh_until = cur.as_ref().map(|x| x.verdict.fresh_until(tracked.policy));
                let state = match (&cur, fresh_until) {
                    (None, _) => "missing",
                    (Some(x), _) if matches!(x.status, ocsp::CertStatus::Revoked { .. }) => {
                        "revoked"
                    }
                    (Some(x), _) if x.status == ocsp::CertStatus::Unknown => "unknown",
                    (Some(_), Some(until)) if until < now => "stale",
                    _ => "good",
                };
                CertStatus {
                    label: c.label.clone(),
                    subject: c.subject.clone(),
                    sha1: hex::encode(c.sha1),
                    responders: c.urls.clone(),
                    state,
                    responder: cur.as_ref().map(|x| x.responder.clone()),
                    this_update: cur.as_ref().map(|x| x.verdict.this_update),
                    next_update: cur.as_ref().and_then(|x| x.verdict.next_update),
                    age_s: cur.as_ref().map(|x| now - x.verdict.this_update),
                    fresh_for_s: fresh_until.map(|u| u - now),
                    next_fetch_in_s: (self.due(tracked.policy, c, now) - now).max(0),
                    last_error: attempts.last_error,
                }
            })
            .collect()
    }

    /// Why the server cannot prove its certificates good right now (for `/health`), if so.
    pub fn problem(&self) -> Option<String> {
        let bad: Vec<String> = self
            .status()
            .into_iter()
            .filter(|s| s.state != "good")
            .map(|s| {
                let why = s.last_error.map(|e| format!(": {e}")).unwrap_or_default();
                format!("OCSP response for the {} is {}{why}", s.label, s.state)
            })
            .collect();
        (!bad.is_empty()).then(|| bad.join("; "))
    }

    /// Fetches every response that is due; returns when the next one will be.
    pub async fn refresh_due(&self, gw: &Gateway) -> Duration {
        let tracked = self.tracked();
        let now = now();
        for cert in &tracked.certs {
            if self.due(tracked.policy, cert, now) <= now {
                self.fetch(gw, cert).await;
            }
        }
        let now = super::now();
        let next = tracked
            .certs
            .iter()
            .map(|c| self.due(tracked.policy, c, now))
            .min();
        Duration::from_secs(next.map_or(self.interval.as_secs(), |n| (n - now).max(1) as u64))
    }

    /// Runs until `stop`: fetching, then sleeping until the next response is due.
    pub async fn run(gw: Arc<Gateway>, mut stop: tokio::sync::watch::Receiver<bool>) {
        let own = gw.own_ocsp().clone();
        loop {
            let wait = own.refresh_due(&gw).await;
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = own.wake.notified() => {}
                _ = stop.changed() => return,
            }
            if *stop.borrow() {
                return;
            }
        }
    }

    /// One certificate: each responder in turn until one gives a response that checks.
    async fn fetch(&self, gw: &Gateway, cert: &OwnCert) {
        let trusted = gw.trusted();
        let trust = &trusted.verifier.trust;
        let (_, parsed) = match x509_parser::parse_x509_certificate(&cert.der) {
            Ok(p) => p,
            Err(e) => return self.failed(cert, format!("certificate does not parse: {e}")),
        };
        let (_, issuer) = match x509_parser::parse_x509_certificate(&cert.issuer_der) {
            Ok(p) => p,
            Err(e) => return self.failed(cert, format!("issuer does not parse: {e}")),
        };
        let request = Bytes::from(ocsp::request(&[ocsp::cert_id(&parsed, &issuer)]));
        let mut errors = Vec::new();
        for url in &cert.urls {
            match ask(&gw.pool, url, request.clone(), self.timeout).await {
                Ok(der) => match self.check(trust, cert, &der) {
                    Ok(current) => {
                        let current = Current {
                            responder: url.clone(),
                            ..current
                        };
                        self.store(gw, cert, current, true);
                        return;
                    }
                    Err(e) => errors.push(format!("{url}: {e}")),
                },
                Err(e) => errors.push(format!("{url}: {e}")),
            }
        }
        self.fetch_failures
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.failed(cert, errors.join("; "))
    }

    /// A response checked under X-Road's rules now: good, or signed and fresh but revoked.
    fn check(&self, trust: &TrustStore, cert: &OwnCert, der: &Bytes) -> Result<Current, String> {
        let at = now();
        let refused = match trust.ocsp_status(&cert.der, &cert.issuer_der, &[der], at) {
            Ok(_) => None,
            Err(e) if e.code == ErrorCode::CertValidation && answers(cert, der) => Some(e.message),
            Err(e) => return Err(e.to_string()),
        };
        let parsed = ocsp::parse(der).map_err(|e| e.to_string())?;
        Ok(Current {
            der: der.clone(),
            verdict: Verdict {
                produced_at: parsed.produced_at,
                this_update: parsed.this_update,
                next_update: parsed.next_update,
            },
            refused,
            status: parsed.status,
            fetched_at: at,
            responder: String::new(),
        })
    }

    fn store(&self, gw: &Gateway, cert: &OwnCert, current: Current, persist: bool) {
        if let Some(why) = &current.refused {
            tracing::error!(certificate = %cert.subject, reason = %why, "own certificate is not good");
        } else {
            tracing::debug!(certificate = %cert.subject, responder = %current.responder, "OCSP response fetched");
        }
        if persist {
            if let Some(dir) = &self.cache_dir {
                if let Err(e) = write_atomically(dir, &cache_name(&cert.sha1), &current.der) {
                    tracing::warn!(dir = %dir.display(), error = %e, "cannot keep the OCSP response on disk");
                }
            }
        }
        self.current
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(cert.sha1, Arc::new(current));
        self.attempts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&cert.sha1);
        self.push_to_signer(gw);
    }

    /// Gives each signing key its chain's current responses, for `RevocationValues`, and until
    /// when they prove the chain good.
    pub(crate) fn push_to_signer(&self, gw: &Gateway) {
        let tracked = self.tracked();
        for (member, ids) in &tracked.signing {
            if let Some(key) = gw.signer.key(member) {
                let until = (!ids.is_empty()).then(|| self.fresh_until(&tracked, ids, false));
                key.set_ocsp(self.responses(ids), until);
            }
        }
    }

    /// Until when every certificate of `ids` has a fresh response (0: one has none), a good one
    /// unless `refused_too`.
    fn fresh_until(&self, tracked: &Tracked, ids: &[[u8; 20]], refused_too: bool) -> i64 {
        let current = self.current.read().unwrap_or_else(|p| p.into_inner());
        ids.iter()
            .map(|id| match current.get(id) {
                Some(c) if refused_too || c.refused.is_none() => {
                    c.verdict.fresh_until(tracked.policy)
                }
                _ => 0,
            })
            .min()
            .unwrap_or(i64::MAX)
    }

    /// The authentication chain's responses, the transport's `application/ocsp-response`
    /// parts, when they are fresh enough to show a peer. Without them a request is not sent (a
    /// local, transient failure: the responder may answer in a moment); a revoked certificate's
    /// response is sent, and the peer refuses it.
    pub fn auth_parts(&self) -> Result<Vec<Bytes>, String> {
        let tracked = self.tracked();
        let chain = &tracked.auth_chain;
        if chain.is_empty() || now() <= self.fresh_until(&tracked, chain, true) {
            return Ok(self.responses(chain));
        }
        Err(
            "this server has no fresh OCSP response for its authentication certificate yet \
             (see brama ocsp status)"
                .into(),
        )
    }

    fn failed(&self, cert: &OwnCert, error: String) {
        tracing::warn!(certificate = %cert.subject, error = %error, "OCSP fetch failed");
        let mut attempts = self.attempts.lock().unwrap_or_else(|p| p.into_inner());
        let a = attempts.entry(cert.sha1).or_default();
        a.failures += 1;
        // 1, 2, 4 … s, at most a minute and at most the fetch interval: a responder back from an
        // outage is used within either.
        let backoff = (1i64 << (a.failures - 1).min(6))
            .min(60)
            .min(self.interval.as_secs() as i64);
        a.retry_at = now() + backoff.max(1);
        a.last_error = Some(error);
    }

    /// Responses kept by an earlier run that still check.
    fn load_cache(&self, trust: &TrustStore) {
        let Some(dir) = &self.cache_dir else {
            return;
        };
        let tracked = self.tracked();
        for cert in &tracked.certs {
            let path = dir.join(cache_name(&cert.sha1));
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            if bytes.len() > ocsp::MAX_RESPONSE_BYTES {
                continue;
            }
            match self.check(trust, cert, &Bytes::from(bytes)) {
                Ok(current) => {
                    let fetched_at = std::fs::metadata(&path)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                        .map_or(current.fetched_at, |d| d.as_secs() as i64);
                    self.current
                        .write()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(
                            cert.sha1,
                            Arc::new(Current {
                                fetched_at,
                                responder: format!("cache {}", path.display()),
                                ..current
                            }),
                        );
                }
                Err(e) => {
                    tracing::info!(file = %path.display(), reason = %e, "cached OCSP response not used")
                }
            }
        }
    }
}

/// POSTs an OCSP request to one responder and returns its answer's body.
pub(crate) async fn ask(
    pool: &brama_transport::Pool,
    url: &str,
    request: Bytes,
    timeout: Duration,
) -> Result<Bytes, String> {
    pool.post_for(
        url,
        ocsp::CT_REQUEST,
        ocsp::CT_RESPONSE,
        request,
        timeout,
        ocsp::MAX_RESPONSE_BYTES,
    )
    .await
}

/// Whether `der` is a response about `cert` (so a refusal in it is the CA's word on it).
fn answers(cert: &OwnCert, der: &[u8]) -> bool {
    let (Ok((_, c)), Ok((_, i))) = (
        x509_parser::parse_x509_certificate(&cert.der),
        x509_parser::parse_x509_certificate(&cert.issuer_der),
    ) else {
        return false;
    };
    ocsp::parse(der).is_ok_and(|r| r.cert_id == ocsp::cert_id(&c, &i).as_slice())
}

/// `der` as an own certificate when its CA (in `gc`, or `next` in its chain) names responders.
fn own_cert(gc: &GlobalConf, der: &[u8], next: Option<&Vec<u8>>, label: String) -> Option<OwnCert> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let issued_by = |ca: &[u8]| {
        x509_parser::parse_x509_certificate(ca).is_ok_and(|(_, ca)| {
            ca.subject() == cert.issuer() && cert.verify_signature(Some(ca.public_key())).is_ok()
        })
    };
    let infos = gc
        .approved_cas()
        .flat_map(|ca| std::iter::once(&ca.top_ca).chain(&ca.intermediate_cas));
    let mut issuer_der = None;
    let mut urls = Vec::new();
    for info in infos {
        if issued_by(&info.cert_der) {
            issuer_der = Some(info.cert_der.clone());
            urls = info.ocsp.iter().map(|o| o.url.clone()).collect();
            break;
        }
    }
    if issuer_der.is_none() {
        issuer_der = next.filter(|n| issued_by(n)).cloned();
    }
    let issuer_der = issuer_der?;
    if urls.is_empty() {
        return None;
    }
    Some(OwnCert {
        der: der.to_vec(),
        sha1: sha1(der),
        issuer_der,
        urls,
        label,
        subject: cert.subject().to_string(),
    })
}

fn cache_name(sha1: &[u8; 20]) -> String {
    format!("{}.der", hex::encode(sha1))
}

/// Writes `name` in `dir` whole or not at all: a temporary file, synced, renamed over.
pub(crate) fn write_atomically(dir: &Path, name: &str, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(name))?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A responder that answers every request with `answer` (or never, when `None`).
    async fn hostile(answer: Option<Vec<u8>>) -> String {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = l.accept().await else {
                    return;
                };
                let answer = answer.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = s.read(&mut buf).await;
                    match answer {
                        Some(a) => {
                            let _ = s.write_all(&a).await;
                        }
                        None => tokio::time::sleep(Duration::from_secs(60)).await,
                    }
                });
            }
        });
        format!("http://{addr}/ocsp")
    }

    fn http(status: &str, ct: &str, body: &[u8]) -> Vec<u8> {
        let mut r = format!(
            "HTTP/1.1 {status}\r\nContent-Type: {ct}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        r.extend_from_slice(body);
        r
    }

    /// What a hostile or broken responder sends is refused, each within the timeout.
    #[tokio::test]
    async fn hostile_responders_are_refused_in_time() {
        let pool = brama_transport::Pool::new(4, Duration::from_secs(5), Duration::from_secs(2));
        let timeout = Duration::from_millis(500);
        let cases: Vec<(Option<Vec<u8>>, &str)> = vec![
            (
                Some(http("200 OK", "text/html", b"<html/>")),
                "Content-Type",
            ),
            (
                Some(http("302 Found", "application/ocsp-response", b"")),
                "HTTP 302",
            ),
            (
                Some(http(
                    "200 OK",
                    "application/ocsp-response",
                    &vec![0x30; ocsp::MAX_RESPONSE_BYTES + 1],
                )),
                "larger than",
            ),
            (None, "did not answer within"),
            (Some(b"garbage, not HTTP".to_vec()), "HTTP exchange"),
        ];
        for (answer, expected) in cases {
            let url = hostile(answer).await;
            let start = std::time::Instant::now();
            let err = ask(&pool, &url, Bytes::from_static(b"req"), timeout)
                .await
                .unwrap_err();
            assert!(err.contains(expected), "{expected}: {err}");
            assert!(
                start.elapsed() < Duration::from_secs(2),
                "{expected}: too slow"
            );
        }
        // A 200 answer of the right type but not a response: refused when read.
        let url = hostile(Some(http(
            "200 OK",
            "application/ocsp-response",
            b"\x30\x03junk",
        )))
        .await;
        let body = ask(&pool, &url, Bytes::from_static(b"req"), timeout)
            .await
            .unwrap();
        assert!(ocsp::parse(&body).is_err());
    }
}
