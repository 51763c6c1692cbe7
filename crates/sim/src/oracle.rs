//! The oracle: how many replicas a controller that knew the future and started pods
//! instantly would have run to meet the SLO.
//!
//! One replica's capacity at the SLO is calibrated first: the highest Poisson arrival
//! rate at which one replica, fed the traffic's request sizes, still serves the SLO's
//! goal share of the requests that can meet the SLO at all (a request whose service
//! time alone exceeds the SLO counts for no one). Then each minute of traffic needs
//! `ceil(arrivals / (60 s × capacity))` replicas, at least one. Replicas scale linearly
//! here; pooling across replicas only makes the real need smaller, so the oracle is a
//! fair, slightly generous bar.
use rand::SeedableRng as _;
use rand::rngs::ChaCha8Rng;
use rand_distr::{Distribution as _, Exp1};

use crate::replica::{Queued, Replica, ServerParams};
use crate::stats::{Recorder, Slo};
use crate::traffic::TokenMix;

/// The oracle's window (seconds).
pub const WINDOW: f64 = 60.0;

/// Requests simulated per calibration point.
const CALIBRATION_REQUESTS: usize = 4000;

/// The calibrated capacity of one replica.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Oracle {
    /// Requests per second one replica serves within the SLO.
    pub capacity: f64,
}

impl Oracle {
    /// Calibrates one replica's capacity for this request mix and SLO.
    pub fn calibrate(params: &ServerParams, mix: &TokenMix, slo: &Slo, seed: u64) -> Oracle {
        let feasible = mix
            .pairs
            .iter()
            .filter(|&&(i, o)| {
                let (ttft, e2e) = params.service_time(i, o);
                params.fits(i, o) && ttft <= slo.ttft && e2e <= slo.e2e
            })
            .count() as f64
            / mix.pairs.len().max(1) as f64;
        let need = slo.goal * feasible;
        let (mean_in, _) = mix.means();
        // Prefill alone bounds the throughput from above.
        let mut hi = 1.0 / (mean_in.max(1.0) * params.prefill_seconds_per_token);
        let mut lo = 0.0;
        if attainment(params, mix, slo, hi, seed) >= need {
            return Oracle { capacity: hi };
        }
        for _ in 0..16 {
            let mid = (lo + hi) / 2.0;
            if attainment(params, mix, slo, mid, seed) >= need {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        Oracle {
            capacity: lo.max(1e-6),
        }
    }

    /// Replicas needed for `arrivals` requests in a window of `len` seconds.
    pub fn replicas_for(&self, arrivals: u64, len: f64) -> f64 {
        if len <= 0.0 {
            return 0.0;
        }
        (arrivals as f64 / (len * self.capacity)).ceil().max(1.0)
    }
}

/// The share of requests meeting the SLO on one replica at `rate` (same seed for every
/// rate, so the comparison between rates is not noise).
fn attainment(params: &ServerParams, mix: &TokenMix, slo: &Slo, rate: f64, seed: u64) -> f64 {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x0_7ac1e);
    let mut rec = Recorder::new(*slo);
    let mut r = Replica::new(0.0);
    let mut t = 0.0;
    let mut sent = 0usize;
    let mut next_arrival = {
        let g: f64 = Exp1.sample(&mut rng);
        g / rate
    };
    loop {
        let next_event = r.next_event(params);
        if sent < CALIBRATION_REQUESTS && next_arrival <= next_event {
            t = next_arrival;
            let i = ((u128::from(rand::Rng::next_u64(&mut rng)) * mix.pairs.len() as u128) >> 64)
                as usize;
            let (input, output) = mix.pairs[i];
            sent += 1;
            if params.fits(input, output) {
                r.arrive(
                    Queued {
                        arrival: t,
                        input,
                        output,
                        tag: (),
                    },
                    t,
                    params,
                    &mut rec,
                );
            }
            let g: f64 = Exp1.sample(&mut rng);
            next_arrival = t + g / rate;
        } else if next_event.is_finite() {
            t = next_event;
            r.on_event(t, params, &mut rec);
        } else {
            break;
        }
    }
    let _ = t;
    rec.met_slo as f64 / sent.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> ServerParams {
        ServerParams {
            max_batch: 8,
            prefill_seconds_per_token: 0.001,
            step: vec![0.01; 9],
            rate: vec![100.0; 9],
            kv_capacity: 10_000,
            queue_timeout: 60.0,
        }
    }

    #[test]
    fn capacity_falls_as_the_slo_tightens() {
        let mix = TokenMix {
            pairs: vec![(100, 50)],
            origin: "test".into(),
        };
        let loose = Slo {
            ttft: 5.0,
            e2e: 10.0,
            goal: 0.9,
        };
        let tight = Slo {
            ttft: 0.15,
            e2e: 1.0,
            goal: 0.9,
        };
        let a = Oracle::calibrate(&params(), &mix, &loose, 1).capacity;
        let b = Oracle::calibrate(&params(), &mix, &tight, 1).capacity;
        // Per request: 0.1 s of prefill, and decode shared by up to 8: under 10 req/s.
        assert!(a > 3.0 && a <= 10.0, "{a}");
        assert!(b < a, "{b} vs {a}");
        let o = Oracle { capacity: a };
        assert_eq!(o.replicas_for(0, 60.0), 1.0);
        assert_eq!(o.replicas_for((a * 60.0 * 3.0) as u64, 60.0), 3.0);
    }
}
