//! Model time: the replica model runs on a clock that follows the wall clock, except
//! that it stands still during a `stall` fault and runs slow during a `slow-start`.
//! Everything the model schedules is in model time; the server sleeps until the wall
//! time at which the model clock reaches it.
use std::time::{Duration, Instant};

/// A window during which the server stops answering (`stall=1s@5s`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stall {
    /// Seconds after start.
    pub at: f64,
    pub length: f64,
}

/// `slow-start`: the first `window` seconds after the model is loaded run at `speed`
/// times normal speed at first, back to normal linearly by the end of the window (caches
/// and compiled graphs warming up).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SlowStart {
    pub window: f64,
    pub speed: f64,
}

/// The map from wall time to model time.
#[derive(Debug, Clone)]
pub struct Clock {
    start: Instant,
    /// Sorted, non-overlapping.
    stalls: Vec<Stall>,
    slow: Option<(f64, SlowStart)>,
}

impl Clock {
    /// `ready` is when slow start begins (seconds after `start`).
    pub fn new(
        start: Instant,
        mut stalls: Vec<Stall>,
        slow: Option<SlowStart>,
        ready: f64,
    ) -> Self {
        stalls.sort_by(|a, b| a.at.total_cmp(&b.at));
        Self {
            start,
            stalls,
            slow: slow.map(|s| (ready, s)),
        }
    }

    pub fn start(&self) -> Instant {
        self.start
    }

    /// Wall seconds since start.
    pub fn real_now(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// Model time now.
    pub fn now(&self) -> f64 {
        self.model_at(self.real_now())
    }

    /// The wall instant a stall running now ends, if one is.
    pub fn stalled_until(&self) -> Option<Instant> {
        let t = self.real_now();
        self.stalls
            .iter()
            .find(|s| s.at <= t && t < s.at + s.length)
            .map(|s| self.start + Duration::from_secs_f64(s.at + s.length))
    }

    /// ∫ speed over [0, t] without the stalls.
    fn running(&self, t: f64) -> f64 {
        let Some((ready, s)) = self.slow else {
            return t;
        };
        if t <= ready {
            return t;
        }
        let w = s.window.max(1e-9);
        let x = (t - ready).min(w);
        // speed(x) = s0 + (1 - s0) x / w over the window, 1 after it.
        let ramp = s.speed * x + (1.0 - s.speed) * x * x / (2.0 * w);
        ready + ramp + (t - ready - x)
    }

    /// Model time at wall time `t` (seconds after start).
    pub fn model_at(&self, t: f64) -> f64 {
        let mut m = self.running(t);
        for s in &self.stalls {
            if s.at >= t {
                break;
            }
            let end = (s.at + s.length).min(t);
            m -= self.running(end) - self.running(s.at);
        }
        m
    }

    /// The wall time (seconds after start) at which model time reaches `m`: the
    /// earliest, found by bisection (the map is continuous and non-decreasing).
    pub fn real_at(&self, m: f64) -> f64 {
        if !m.is_finite() {
            return f64::INFINITY;
        }
        let mut lo = 0.0;
        let mut hi = self.real_now().max(1.0);
        let mut guard = 0;
        while self.model_at(hi) < m && guard < 200 {
            lo = hi;
            hi *= 2.0;
            guard += 1;
        }
        for _ in 0..64 {
            let mid = 0.5 * (lo + hi);
            if self.model_at(mid) < m {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        hi
    }

    /// The instant for a model time (`None` for never).
    pub fn instant_at(&self, m: f64) -> Option<Instant> {
        let t = self.real_at(m);
        (t.is_finite() && t < 1e9).then(|| self.start + Duration::from_secs_f64(t.max(0.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_time_stands_still_in_a_stall_and_runs_slow_at_start() {
        let c = Clock::new(
            Instant::now(),
            vec![Stall {
                at: 5.0,
                length: 1.0,
            }],
            None,
            0.0,
        );
        assert_eq!(c.model_at(4.0), 4.0);
        assert_eq!(c.model_at(5.5), 5.0);
        assert_eq!(c.model_at(7.0), 6.0);
        assert!((c.real_at(5.0) - 5.0).abs() < 1e-6);
        assert!((c.real_at(5.5) - 6.5).abs() < 1e-6);

        let slow = SlowStart {
            window: 10.0,
            speed: 0.5,
        };
        let c = Clock::new(Instant::now(), vec![], Some(slow), 2.0);
        assert_eq!(c.model_at(2.0), 2.0);
        // Over the window the mean speed is 0.75.
        assert!((c.model_at(12.0) - 9.5).abs() < 1e-9);
        assert!((c.model_at(13.0) - 10.5).abs() < 1e-9);
        assert!((c.real_at(c.model_at(7.0)) - 7.0).abs() < 1e-6);
    }
}
