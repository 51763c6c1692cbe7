//! Exponential backoff with a cap, per autoscaler (client-go's
//! `ItemExponentialFailureRateLimiter`: base × 2^(failures−1), capped).
use std::time::Duration;

/// Consecutive failures of one autoscaler and the delay they earn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Self {
        Self {
            base,
            max: max.max(base),
            failures: 0,
        }
    }

    /// Records a failure and returns the delay before the next try, never more than
    /// `cap` (the caller's, e.g. the sync period for metric errors) nor the maximum.
    pub fn fail(&mut self, cap: Duration) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let exp = self.failures.saturating_sub(1).min(31);
        let delay = self.base.saturating_mul(1u32 << exp);
        delay.min(self.max).min(cap)
    }

    pub fn reset(&mut self) {
        self.failures = 0;
    }

    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_the_base_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        let got: Vec<u64> = (0..8).map(|_| b.fail(Duration::MAX).as_secs()).collect();
        assert_eq!(got, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(b.fail(Duration::from_secs(15)).as_secs(), 15);
        b.reset();
        assert_eq!(b.fail(Duration::MAX).as_secs(), 1);
    }

    #[test]
    fn many_failures_never_overflow() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(300));
        for _ in 0..10_000 {
            assert!(b.fail(Duration::MAX) <= Duration::from_secs(300));
        }
    }
}
