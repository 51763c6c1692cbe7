//! The clock the loop reads and sleeps on. The engine never reads a clock: the loop
//! passes [`Clock::now`] into every decision, so a test (or the simulator) controls time.
use std::future::Future;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

/// Time as the loop sees it.
pub trait Clock: Send + Sync + 'static {
    /// The instant a decision is made at.
    fn now(&self) -> Timestamp;
    /// Waits `d`.
    fn sleep(&self, d: Duration) -> impl Future<Output = ()> + Send;
}

/// Tokio's clock, anchored to the wall clock at creation: under
/// `tokio::time::pause()` (tests) both `now` and `sleep` follow tokio's virtual time, so a
/// test of a 5-minute stabilization window finishes at once.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    base: Timestamp,
    start: tokio::time::Instant,
}

impl TokioClock {
    /// A clock reading the wall clock now.
    pub fn new() -> Self {
        Self::starting_at(Timestamp::now())
    }

    /// A clock that reads `base` now (tests: a fixed, readable start).
    pub fn starting_at(base: Timestamp) -> Self {
        Self {
            base,
            start: tokio::time::Instant::now(),
        }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Timestamp {
        let elapsed = SignedDuration::try_from(self.start.elapsed()).unwrap_or(SignedDuration::MAX);
        self.base.checked_add(elapsed).unwrap_or(Timestamp::MAX)
    }

    fn sleep(&self, d: Duration) -> impl Future<Output = ()> + Send {
        tokio::time::sleep(d)
    }
}

/// The call took longer than its timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("timed out after {0:?}")]
pub struct Elapsed(pub Duration);

/// Runs `f` with a timeout measured on `clock`.
pub async fn timeout<C: Clock, F: Future>(
    clock: &C,
    d: Duration,
    f: F,
) -> Result<F::Output, Elapsed> {
    tokio::select! {
        biased;
        out = f => Ok(out),
        () = clock.sleep(d) => Err(Elapsed(d)),
    }
}
