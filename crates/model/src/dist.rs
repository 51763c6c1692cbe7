//! Random durations for the pod lifecycle (scheduling, container start, model load),
//! written in the model file as `{constant: 60s}`, `{uniform: [30s, 90s]}` or
//! `{lognormal: {median: 60s, p90: 90s}}`.
use rand::RngExt as _;
use rand::rngs::ChaCha8Rng;
use rand_distr::{Distribution as _, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::units::Seconds;

/// z-score of the 90th percentile of the standard normal distribution.
const Z90: f64 = 1.281_551_565_545;

/// A distribution of durations.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum Dist {
    /// Always the same value.
    Constant(Seconds),
    /// Uniform between two values.
    Uniform([Seconds; 2]),
    /// Log-normal, given by its median and 90th percentile (p90 ≥ median). Start-up
    /// times are right-skewed: most pods load in about the median, a few take much longer.
    Lognormal { median: Seconds, p90: Seconds },
}

impl Default for Dist {
    fn default() -> Self {
        Self::Constant(Seconds::ZERO)
    }
}

impl Dist {
    pub const fn constant(secs: f64) -> Self {
        Self::Constant(Seconds(secs))
    }

    /// Draws one value (seconds).
    pub fn sample(&self, rng: &mut ChaCha8Rng) -> f64 {
        match *self {
            Self::Constant(v) => v.0,
            Self::Uniform([a, b]) => {
                let (lo, hi) = if a.0 <= b.0 { (a.0, b.0) } else { (b.0, a.0) };
                lo + (hi - lo) * rng.random::<f64>()
            }
            Self::Lognormal { median, p90 } => {
                if median.0 <= 0.0 {
                    return 0.0;
                }
                let sigma = (p90.0.max(median.0) / median.0).ln() / Z90;
                let z: f64 = StandardNormal.sample(rng);
                median.0 * (sigma * z).exp()
            }
        }
    }

    /// The median, for documentation and summaries.
    pub fn median(&self) -> f64 {
        match *self {
            Self::Constant(v) => v.0,
            Self::Uniform([a, b]) => (a.0 + b.0) / 2.0,
            Self::Lognormal { median, .. } => median.0,
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        match *self {
            Self::Lognormal { median, p90 } if p90.0 < median.0 => Err(format!(
                "lognormal p90 ({p90}) is below its median ({median})"
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng as _;

    use super::*;

    #[test]
    fn lognormal_has_the_requested_median_and_p90() {
        let d = Dist::Lognormal {
            median: Seconds(60.0),
            p90: Seconds(90.0),
        };
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut xs: Vec<f64> = (0..20_000).map(|_| d.sample(&mut rng)).collect();
        xs.sort_by(f64::total_cmp);
        let median = xs[10_000];
        let p90 = xs[18_000];
        assert!((median - 60.0).abs() < 1.5, "median {median}");
        assert!((p90 - 90.0).abs() < 3.0, "p90 {p90}");
    }

    #[test]
    fn constant_and_uniform_stay_in_range() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        assert_eq!(Dist::constant(5.0).sample(&mut rng), 5.0);
        let u = Dist::Uniform([Seconds(10.0), Seconds(20.0)]);
        for _ in 0..1000 {
            let x = u.sample(&mut rng);
            assert!((10.0..=20.0).contains(&x));
        }
    }
}
