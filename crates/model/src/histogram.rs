//! Latency histograms with bounded memory: log-linear buckets over microseconds (the
//! HdrHistogram layout), so recording is a few integer operations and a percentile is
//! exact to within the bucket width (1/`SUB` of the value).

/// A log-linear histogram of durations in seconds, from 1 µs to about 35 years.
///
/// `SUB_BITS` sub-buckets per power of two: 6 → relative error ≤ 1.6 %, 4 → ≤ 6.3 %.
#[derive(Debug, Clone)]
pub struct Histogram<const SUB_BITS: u32> {
    counts: Vec<u64>,
    total: u64,
    sum: f64,
    max: f64,
}

/// The precise histogram used for run summaries (≤ 1.6 % error).
pub type Fine = Histogram<6>;
/// The small histogram used per series step (≤ 6.3 % error, 640 buckets).
pub type Coarse = Histogram<4>;

/// Powers of two covered above the linear range (2^50 µs ≈ 35 years).
const OCTAVES: u32 = 50;

impl<const SUB_BITS: u32> Default for Histogram<SUB_BITS> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const SUB_BITS: u32> Histogram<SUB_BITS> {
    const SUB: u64 = 1 << SUB_BITS;

    pub fn new() -> Self {
        Self {
            counts: vec![0; ((OCTAVES + 1) as usize) << SUB_BITS],
            total: 0,
            sum: 0.0,
            max: 0.0,
        }
    }

    fn index(micros: u64) -> usize {
        if micros < Self::SUB {
            return micros as usize;
        }
        let octave = 63 - micros.leading_zeros() - SUB_BITS; // ≥ 0
        let mantissa = (micros >> octave) - Self::SUB; // 0..SUB
        let i = (u64::from(octave + 1) << SUB_BITS) + mantissa;
        (i as usize).min(((OCTAVES + 1) << SUB_BITS) as usize - 1)
    }

    /// The midpoint of a bucket, in seconds.
    fn value_of(index: usize) -> f64 {
        let i = index as u64;
        if i < Self::SUB {
            return i as f64 * 1e-6;
        }
        let octave = (i >> SUB_BITS) - 1;
        let mantissa = (i & (Self::SUB - 1)) + Self::SUB;
        let low = (mantissa << octave) as f64;
        let width = (1u64 << octave) as f64;
        (low + width / 2.0) * 1e-6
    }

    /// Records one duration (seconds; negative values count as 0).
    #[inline]
    pub fn record(&mut self, secs: f64) {
        let micros = (secs * 1e6).max(0.0) as u64;
        self.counts[Self::index(micros)] += 1;
        self.total += 1;
        self.sum += secs;
        if secs > self.max {
            self.max = secs;
        }
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    pub fn mean(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.sum / self.total as f64
        }
    }

    pub fn max(&self) -> f64 {
        self.max
    }

    /// The `q`-quantile (0 ≤ q ≤ 1), or `None` when empty. The exact maximum is returned
    /// for q = 1.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.total == 0 {
            return None;
        }
        if q >= 1.0 {
            return Some(self.max);
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(Self::value_of(i).min(self.max));
            }
        }
        Some(self.max)
    }

    /// Empties the histogram, keeping its memory.
    pub fn clear(&mut self) {
        if self.total > 0 {
            self.counts.fill(0);
        }
        self.total = 0;
        self.sum = 0.0;
        self.max = 0.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_the_bucket_error() {
        let mut h = Fine::new();
        for i in 1..=10_000 {
            h.record(f64::from(i) * 0.001); // 1 ms .. 10 s
        }
        for (q, want) in [(0.5, 5.0), (0.95, 9.5), (0.99, 9.9)] {
            let got = h.quantile(q).expect("non-empty");
            assert!((got - want).abs() / want < 0.016, "q{q}: {got} vs {want}");
        }
        assert_eq!(h.quantile(1.0), Some(10.0));
        assert_eq!(h.count(), 10_000);
        assert!((h.mean() - 5.0005).abs() < 1e-9);
    }

    #[test]
    fn tiny_huge_and_empty_values_are_handled() {
        let mut h = Coarse::new();
        assert_eq!(h.quantile(0.5), None);
        h.record(0.0);
        h.record(-1.0);
        h.record(1e12);
        assert_eq!(h.count(), 3);
        assert_eq!(h.quantile(0.1), Some(0.0));
        h.clear();
        assert_eq!(h.count(), 0);
    }
}
