//! Message bodies: the one body type every listener answers with and every pooled connection
//! sends (whole or streamed), and receiving request bodies within their limits: a size refused at
//! once when the declared length exceeds it, a total time, a minimum rate, and a memory budget
//! shared by every request in the process, so a flood of stalled uploads cannot grow memory
//! without bound.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::FutureExt;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use brama_xroad::error::{ErrorCode, Fault, Prefix, ToFault};

/// A body that is either whole in memory or streamed (a spooled REST body, a signed multipart
/// written while a large body passes through).
pub type Body = BoxBody<Bytes, std::io::Error>;

/// A body of bytes already in memory.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

/// Bytes of request bodies held in memory across all connections: every request reserves what it
/// buffers before it buffers it, waiting at most `wait` for others to finish. An eighth of the
/// budget is kept for the first `SMALL_BODY` bytes of each request, so uploads that stall after
/// sending much (the way to exhaust a budget) cannot starve ordinary small requests.
#[derive(Debug)]
pub struct MemoryBudget {
    all: Arc<Semaphore>,
    /// What bytes past each request's first [`SMALL_BODY`] may take.
    large: Arc<Semaphore>,
    total: usize,
    wait: Duration,
}

/// The part of every request counted only against the whole budget.
pub(crate) const SMALL_BODY: usize = 64 * 1024;

/// Memory reserved from a [`MemoryBudget`], given back when dropped.
#[derive(Debug, Default)]
pub struct Reservation {
    all: Option<OwnedSemaphorePermit>,
    large: Option<OwnedSemaphorePermit>,
}

impl Reservation {
    pub fn bytes(&self) -> usize {
        self.all.as_ref().map_or(0, |p| p.num_permits())
    }

    fn large_bytes(&self) -> usize {
        self.large.as_ref().map_or(0, |p| p.num_permits())
    }
}

fn add(slot: &mut Option<OwnedSemaphorePermit>, more: OwnedSemaphorePermit) {
    match slot {
        Some(p) => p.merge(more),
        None => *slot = Some(more),
    }
}

/// Reservations grow in steps of this many bytes, so a body of small chunks costs few semaphore
/// operations.
const RESERVE_STEP: usize = 64 * 1024;

impl MemoryBudget {
    pub fn new(total: usize, wait: Duration) -> Arc<MemoryBudget> {
        let total = total.min(Semaphore::MAX_PERMITS);
        Arc::new(MemoryBudget {
            all: Arc::new(Semaphore::new(total)),
            large: Arc::new(Semaphore::new(total - total / 8)),
            total,
            wait,
        })
    }

    /// Bytes reserved now.
    pub fn in_use(&self) -> usize {
        self.total - self.all.available_permits()
    }

    pub fn total(&self) -> usize {
        self.total
    }

    /// Grows `r` to at least `bytes`; an error when the budget cannot give it within its wait.
    pub async fn grow(&self, r: &mut Reservation, bytes: usize) -> Result<(), BudgetExhausted> {
        let have = r.bytes();
        if bytes <= have {
            return Ok(());
        }
        let target = bytes.max(have + RESERVE_STEP).min(self.total.max(bytes));
        if target > self.total {
            return Err(BudgetExhausted(self.total));
        }
        let deadline = tokio::time::Instant::now() + self.wait;
        // The large pool first, always in this order, so two growing requests cannot each hold
        // what the other waits for.
        let large_need = target
            .saturating_sub(SMALL_BODY)
            .saturating_sub(r.large_bytes());
        if large_need > 0 {
            let p = acquire(&self.large, large_need, deadline).await;
            add(&mut r.large, p.ok_or(BudgetExhausted(self.total))?);
        }
        let p = acquire(&self.all, target - have, deadline).await;
        add(&mut r.all, p.ok_or(BudgetExhausted(self.total))?);
        Ok(())
    }
}

async fn acquire(
    sem: &Arc<Semaphore>,
    n: usize,
    deadline: tokio::time::Instant,
) -> Option<OwnedSemaphorePermit> {
    let n = u32::try_from(n).ok()?;
    if let Ok(p) = sem.clone().try_acquire_many_owned(n) {
        return Some(p);
    }
    tokio::time::timeout_at(deadline, sem.clone().acquire_many_owned(n))
        .await
        .ok()?
        .ok()
}

#[derive(Debug)]
pub struct BudgetExhausted(pub usize);

/// How request bodies are received (from `[limits]`).
#[derive(Clone, Debug)]
pub struct Intake {
    /// Time for a whole body.
    pub timeout: Duration,
    /// Least bytes per second over every `rate_window` (0: no minimum). A body that ends within
    /// a window is never cut by it.
    pub min_rate: u64,
    pub rate_window: Duration,
    pub budget: Arc<MemoryBudget>,
}

/// Why a body was not received.
#[derive(Debug)]
pub enum IntakeError {
    /// Its declared length exceeds the limit: refused before reading it.
    Declared {
        declared: u64,
        max: u64,
    },
    /// It grew past the limit.
    TooLarge(u64),
    TimedOut(Duration),
    TooSlow {
        rate: u64,
        window: Duration,
    },
    Budget(BudgetExhausted),
    Io(String),
}

/// The fault the caller gets, with the HTTP status that tells what happened.
impl ToFault for IntakeError {
    fn to_fault(&self, prefix: Prefix) -> Fault {
        let (code, status, msg) = match self {
            IntakeError::Declared { declared, max } => (
                ErrorCode::InvalidMessage,
                413,
                format!("Request body of {declared} bytes is larger than the limit of {max} bytes"),
            ),
            IntakeError::TooLarge(max) => (
                ErrorCode::InvalidMessage,
                413,
                format!("Request body is larger than the limit of {max} bytes"),
            ),
            IntakeError::TimedOut(t) => (
                ErrorCode::IoError,
                408,
                format!("Request body was not received within {} ms", t.as_millis()),
            ),
            IntakeError::TooSlow { rate, window } => (
                ErrorCode::IoError,
                408,
                format!(
                    "Request body arrived slower than {rate} bytes/s over {} ms",
                    window.as_millis()
                ),
            ),
            IntakeError::Budget(BudgetExhausted(total)) => (
                ErrorCode::IoError,
                503,
                format!(
                    "The server holds {total} bytes of request bodies, its limit; try again shortly"
                ),
            ),
            // The connection broke: whatever answers still reaches the client is a plain fault.
            IntakeError::Io(e) => {
                return Fault::new(
                    prefix,
                    ErrorCode::IoError,
                    format!("Reading the request failed: {e}"),
                )
            }
        };
        let prefix = match (self, prefix) {
            // Busy here is this server's trouble, not the client's mistake.
            (IntakeError::Budget(_), Prefix::Client) => Prefix::ClientProxy,
            (_, p) => p,
        };
        Fault::new(prefix, code, msg).with_status(status)
    }
}

impl From<BudgetExhausted> for IntakeError {
    fn from(e: BudgetExhausted) -> Self {
        IntakeError::Budget(e)
    }
}

/// Frames of a body within the time limit and the minimum rate.
pub(crate) struct Paced<B> {
    body: B,
    end: Instant,
    min_rate: u64,
    window: Duration,
    window_end: Instant,
    window_bytes: u64,
    timeout: Duration,
    /// Made on the first wait: a body whose data is already there never starts a timer.
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<B> Paced<B>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    pub fn new(body: B, intake: &Intake) -> Paced<B> {
        let now = Instant::now();
        Paced {
            body,
            end: now + intake.timeout,
            min_rate: intake.min_rate,
            window: intake.rate_window,
            window_end: now + intake.rate_window,
            window_bytes: 0,
            timeout: intake.timeout,
            timer: None,
        }
    }

    /// The declared length, when the body has one.
    pub fn declared(&self) -> Option<u64> {
        self.body.size_hint().exact()
    }

    /// The next chunk of data; `None` at the end.
    pub async fn next(&mut self) -> Result<Option<Bytes>, IntakeError> {
        loop {
            let frame = match self.body.frame().now_or_never() {
                Some(f) => f,
                None => {
                    let deadline = if self.min_rate > 0 {
                        self.end.min(self.window_end)
                    } else {
                        self.end
                    };
                    let timer = self
                        .timer
                        .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                    if timer.deadline() != deadline {
                        timer.as_mut().reset(deadline);
                    }
                    // `frame()` only polls the body, so dropping it at the deadline loses nothing.
                    tokio::select! {
                        biased;
                        f = self.body.frame() => f,
                        _ = timer.as_mut() => {
                            self.at_deadline()?;
                            continue;
                        }
                    }
                }
            };
            match frame {
                None => return Ok(None),
                Some(Err(e)) => return Err(IntakeError::Io(e.to_string())),
                Some(Ok(f)) => {
                    if let Ok(data) = f.into_data() {
                        self.window_bytes += data.len() as u64;
                        return Ok(Some(data));
                    }
                }
            }
        }
    }

    fn at_deadline(&mut self) -> Result<(), IntakeError> {
        let now = Instant::now();
        if now >= self.end {
            return Err(IntakeError::TimedOut(self.timeout));
        }
        if now >= self.window_end {
            let needed = self.min_rate * self.window.as_millis() as u64 / 1000;
            if self.window_bytes < needed {
                return Err(IntakeError::TooSlow {
                    rate: self.min_rate,
                    window: self.window,
                });
            }
            self.window_bytes = 0;
            self.window_end = now + self.window;
        }
        Ok(())
    }
}

/// A declared body is given a buffer of its size up to this; larger ones grow as they arrive.
const PRESIZE: usize = 1024 * 1024;

/// A request body received whole, and the memory it holds in the budget.
#[derive(Debug)]
pub struct Received {
    pub bytes: Bytes,
    pub reservation: Reservation,
}

/// Receives a whole body of at most `max` bytes within `intake`'s limits.
pub async fn receive<B>(body: B, max: usize, intake: &Intake) -> Result<Received, IntakeError>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let mut paced = Paced::new(body, intake);
    let mut reservation = Reservation::default();
    let mut presize = 0;
    if let Some(declared) = paced.declared() {
        if declared > max as u64 {
            return Err(IntakeError::Declared {
                declared,
                max: max as u64,
            });
        }
        // Memory is reserved as the bytes arrive, so a stalled upload holds only what it sent.
        presize = (declared as usize).min(PRESIZE);
    }
    // A body that arrives as one chunk (most messages) is kept as it came, without a copy.
    let mut first: Option<Bytes> = None;
    let mut buf = BytesMut::new();
    let mut len = 0;
    while let Some(data) = paced.next().await? {
        len += data.len();
        if len > max {
            return Err(IntakeError::TooLarge(max as u64));
        }
        intake.budget.grow(&mut reservation, len).await?;
        match first.take() {
            None if buf.is_empty() => first = Some(data),
            held => {
                if let Some(held) = held {
                    buf.reserve(presize.max(len));
                    buf.extend_from_slice(&held);
                }
                buf.extend_from_slice(&data);
            }
        }
    }
    Ok(Received {
        bytes: first.unwrap_or_else(|| buf.freeze()),
        reservation,
    })
}

/// Reads the whole body; too large, too slow or over budget becomes a fault with `prefix`.
pub async fn read<B>(
    body: B,
    max: usize,
    intake: &Intake,
    prefix: Prefix,
) -> Result<Received, Fault>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    receive(body, max, intake)
        .await
        .map_err(|e| e.to_fault(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_budget_is_shared_and_given_back() {
        let b = MemoryBudget::new(800 * 1024, Duration::from_millis(20));
        let mut one = Reservation::default();
        b.grow(&mut one, 600 * 1024).await.unwrap();
        assert_eq!(b.in_use(), 600 * 1024);
        let mut two = Reservation::default();
        assert!(b.grow(&mut two, 300 * 1024).await.is_err());
        drop(two);
        drop(one);
        assert_eq!(b.in_use(), 0);
        let mut three = Reservation::default();
        b.grow(&mut three, 300 * 1024).await.unwrap();
        // More than the whole budget is refused at once.
        assert!(b.grow(&mut three, 900 * 1024).await.is_err());
    }

    #[tokio::test]
    async fn large_bodies_cannot_take_what_small_ones_need() {
        let b = MemoryBudget::new(8 * 1024 * 1024, Duration::from_millis(20));
        let mut large = Vec::new();
        loop {
            let mut r = Reservation::default();
            if b.grow(&mut r, 1024 * 1024).await.is_err() {
                break;
            }
            large.push(r);
        }
        assert!(b.in_use() <= 7 * 1024 * 1024, "{}", b.in_use());
        // A few small requests still fit beside them.
        let mut small = Vec::new();
        for _ in 0..8 {
            let mut r = Reservation::default();
            b.grow(&mut r, SMALL_BODY).await.unwrap();
            small.push(r);
        }
        assert!(b.in_use() <= b.total());
    }

    #[tokio::test]
    async fn declared_oversize_is_refused_before_reading() {
        let intake = Intake {
            timeout: Duration::from_secs(5),
            min_rate: 0,
            rate_window: Duration::from_secs(1),
            budget: MemoryBudget::new(1 << 20, Duration::ZERO),
        };
        let body = Full::new(Bytes::from(vec![b'x'; 100]));
        match receive(body, 10, &intake).await {
            Err(IntakeError::Declared {
                declared: 100,
                max: 10,
            }) => {}
            other => panic!("{other:?}"),
        }
        let fault = IntakeError::Declared {
            declared: 100,
            max: 10,
        }
        .to_fault(Prefix::Client);
        assert_eq!(fault.code, "Client.InvalidMessage");
        assert_eq!(fault.http_status, Some(413));
    }
}
