//! What the store keeps: applications, deliveries (one per application and service) and their
//! attempts, and support notifications waiting to be sent. Stored as JSON so `brama queue show`
//! and an operator with a hex dump can read them.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Milliseconds since the Unix epoch: times survive restarts and are shown to people.
pub(crate) type Millis = u64;

pub fn now_ms() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// An accepted application as the portal sent it (validated), and its plan.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AppRecord {
    pub id: String,
    pub received_at: Millis,
    /// The validated application JSON.
    pub application: Value,
    /// Services in plan order.
    pub services: Vec<String>,
    /// The subsystem whose information system submitted it: the only one shown its status.
    /// (Absent in records written before callers were authenticated: those are the router
    /// client's.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitter: Option<String>,
    /// The submission's `Idempotency-Key`, if it had one (removed with the application).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

/// A submission's `Idempotency-Key`, as its submitter sent it: the application it made, and the
/// digest of the body, so a repeat with a different body is told apart.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    pub application: String,
    pub body_sha256: String,
    pub at: Millis,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Not sent yet: waiting for the services in `waiting_for`, or for its first attempt.
    Pending,
    InFlight,
    /// Failed at least once, another attempt is due at `next_attempt_at`.
    Retrying,
    Delivered,
    Failed,
}

impl State {
    pub fn is_terminal(self) -> bool {
        matches!(self, State::Delivered | State::Failed)
    }
}

/// One service of one application.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Delivery {
    pub application: String,
    pub service: String,
    pub registry: String,
    pub state: State,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waiting_for: Vec<String>,
    /// Fixed when the delivery is created and reused by every attempt, so the registry can
    /// recognise a repeat.
    pub xroad_id: String,
    /// The X-Road SOAP request, built once its inputs are known and then sent unchanged. Kept
    /// under its own key (written once), so the state changes of a delivery rewrite a small
    /// record; loaded with the delivery by [`super::store::Store::delivery`].
    #[serde(skip)]
    pub request: Option<String>,
    /// Whether the request is stored.
    #[serde(default)]
    pub has_request: bool,
    /// A REST delivery: the `/r1/...` path it is POSTed to (the stored request is then its
    /// JSON body); SOAP when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rest_path: Option<String>,
    /// The request was just built and must be written with the next batch.
    #[serde(skip)]
    pub request_dirty: bool,
    /// Attempts counted against the registry's `max_attempts` (answers "not yet" are not).
    pub attempt_count: u32,
    /// Every attempt, the oldest first; only the last `MAX_KEPT_ATTEMPTS` are kept.
    #[serde(default)]
    pub attempts: Vec<Attempt>,
    #[serde(default)]
    pub attempts_dropped: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<Millis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<ErrorInfo>,
    /// The registry's answer as JSON (the typed response of the WSDL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<Value>,
    pub created_at: Millis,
    /// When its inputs were complete (the age limit counts from here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_at: Option<Millis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Millis>,
    /// In a shared store, the node that holds it (read from the store, which sets it on each
    /// write: the writer holds what it will send or schedule).
    #[serde(skip)]
    pub lease: Option<Lease>,
}

/// A delivery's lease in a shared store: the node sending it, or about to, and until when no
/// other node may take it over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub owner: String,
    pub until: Millis,
}

/// Attempts kept per delivery; polling an asynchronous registry for a day must not grow a record
/// without bound.
pub(crate) const MAX_KEPT_ATTEMPTS: usize = 32;

impl Delivery {
    /// An attempt in flight whose outcome is unknown (a restart, or a store that could not
    /// record it): marked interrupted, and due again at once under the same X-Road id.
    pub(crate) fn interrupt(&mut self, now: Millis, why: &str) {
        if let Some(a) = self.attempts.last_mut() {
            a.outcome = Outcome::Interrupted;
            a.message = Some(why.into());
        }
        self.state = State::Retrying;
        self.next_attempt_at = Some(now);
    }

    /// Whether another node than `me` holds it now (never, in the embedded store).
    pub fn held_by_other(&self, me: Option<&str>, now: Millis) -> bool {
        self.lease
            .as_ref()
            .is_some_and(|l| Some(l.owner.as_str()) != me && l.until > now)
    }

    pub fn push_attempt(&mut self, a: Attempt) {
        if self.attempts.len() >= MAX_KEPT_ATTEMPTS {
            self.attempts.remove(0);
            self.attempts_dropped += 1;
        }
        self.attempts.push(a);
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    pub number: u32,
    pub started_at: Millis,
    pub xroad_id: String,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Written before the request leaves; still so after a crash means "interrupted".
    Started,
    Delivered,
    /// The registry answered that the work is still in progress (asked again later).
    NotYet,
    Retryable,
    Final,
    /// The process stopped while this attempt was in flight.
    Interrupted,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorInfo {
    pub code: String,
    pub message: String,
}

/// A support notification (webhook POST) that has not landed yet.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Notification {
    pub id: String,
    pub created_at: Millis,
    pub attempts: u32,
    pub next_attempt_at: Millis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub body: Value,
}
