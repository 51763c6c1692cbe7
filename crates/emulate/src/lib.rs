//! # podscale-emulate
//!
//! `podscale emulate`: an OpenAI-compatible inference server without a GPU. Requests are
//! timed by the same replica model as `podscale simulate` ([`podscale_model::Replica`],
//! driven here by the wall clock): continuous batching with a slot limit, prefill, decode
//! steps that slow down as the batch grows, KV-cache admission and a waiting queue. It
//! exports vLLM's metric names, burns CPU in proportion to its work, and injects faults
//! for tests (a stall, an error rate, a slow start).
//!
//! - [`Config`] and [`Faults`]: what to serve and how to misbehave.
//! - [`Emulator`]: a running server ([`Emulator::start`], [`Emulator::drain`]).
#![forbid(unsafe_code)]

pub mod clock;
mod engine;
mod http;
mod metrics;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use podscale_model::Model;
use podscale_model::units::parse_duration;

pub use engine::Emulator;

/// Why the emulator cannot start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid --fault {spec:?}: {message}")]
    Fault { spec: String, message: String },
}

/// Injected misbehaviour.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    /// Windows (seconds after start) during which the server answers nothing.
    pub stalls: Vec<clock::Stall>,
    /// The share of requests answered with HTTP 500 at once.
    pub error_rate: f64,
    /// A slow first minute after the model is loaded.
    pub slow_start: Option<clock::SlowStart>,
}

/// At most this many `--fault` stalls (each is checked on every request).
pub const MAX_STALLS: usize = 64;

impl Faults {
    /// Adds one `--fault` spec: `stall=1s@5s` (silent for 1 s from 5 s after start),
    /// `error-rate=0.01`, `slow-start` or `slow-start=30s` (a third of normal speed at
    /// first, normal after the window; 60 s by default).
    ///
    /// # Errors
    /// [`Error::Fault`] naming the spec and what is wrong with it.
    pub fn add(&mut self, spec: &str) -> Result<(), Error> {
        let err = |message: &str| Error::Fault {
            spec: spec.into(),
            message: message.into(),
        };
        let (name, value) = match spec.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim())),
            None => (spec.trim(), None),
        };
        match name {
            "stall" => {
                let v = value.ok_or_else(|| err("write stall=LENGTH@START, e.g. stall=1s@5s"))?;
                let (len, at) = v
                    .split_once('@')
                    .ok_or_else(|| err("write stall=LENGTH@START, e.g. stall=1s@5s"))?;
                let length = parse_duration(len).map_err(|e| err(&e))?;
                let at = parse_duration(at).map_err(|e| err(&e))?;
                if length <= 0.0 {
                    return Err(err("the stall's length must be positive"));
                }
                if self.stalls.len() >= MAX_STALLS {
                    return Err(err(&format!("at most {MAX_STALLS} stalls")));
                }
                if self
                    .stalls
                    .iter()
                    .any(|s| at < s.at + s.length && s.at < at + length)
                {
                    return Err(err("stalls must not overlap"));
                }
                self.stalls.push(clock::Stall { at, length });
            }
            "error-rate" => {
                let v = value.ok_or_else(|| err("write error-rate=P with P from 0 to 1"))?;
                let p: f64 = v
                    .parse()
                    .map_err(|_| err("write error-rate=P with P from 0 to 1"))?;
                if !(0.0..=1.0).contains(&p) {
                    return Err(err("the error rate is a probability, from 0 to 1"));
                }
                self.error_rate = p;
            }
            "slow-start" => {
                let window = match value {
                    Some(v) => parse_duration(v).map_err(|e| err(&e))?,
                    None => 60.0,
                };
                if window <= 0.0 {
                    return Err(err("the slow-start window must be positive"));
                }
                self.slow_start = Some(clock::SlowStart {
                    window,
                    speed: 1.0 / 3.0,
                });
            }
            _ => {
                return Err(err(
                    "unknown fault; use stall=1s@5s, error-rate=0.01 or slow-start[=60s]",
                ));
            }
        }
        Ok(())
    }
}

/// What to serve.
#[derive(Debug, Clone)]
pub struct Config {
    pub addr: SocketAddr,
    pub model: Model,
    /// The name `/v1/models` lists and requests may ask for.
    pub served_model_name: String,
    /// `/health` answers 503 (and completions are refused) until this long after start.
    pub startup_delay: Duration,
    pub faults: Faults,
    /// Answer at once, without the model's timing (a benchmark of the HTTP path).
    pub instant: bool,
    /// Multiplies the CPU the model's `usage.cpu` says the work costs (0: burn none).
    pub cpu_scale: f64,
    /// Threads that burn that CPU (the most cores the emulator can use for it).
    pub cpu_threads: usize,
    /// Requests held at once (queued and running); more get 503.
    pub max_outstanding: usize,
    /// Connections served at once.
    pub max_connections: usize,
}

impl Config {
    pub fn new(addr: SocketAddr, model: Model) -> Self {
        Self {
            addr,
            model,
            served_model_name: "podscale-emulator".into(),
            startup_delay: Duration::ZERO,
            faults: Faults::default(),
            instant: false,
            cpu_scale: 1.0,
            cpu_threads: 2,
            max_outstanding: 100_000,
            max_connections: 20_000,
        }
    }
}

/// Shared between the engine and the HTTP side.
pub(crate) type Shared = Arc<engine::Inner>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_parse_and_bad_ones_are_refused_with_the_spec() {
        let mut f = Faults::default();
        f.add("stall=1s@5s").expect("stall");
        f.add("error-rate=0.01").expect("error rate");
        f.add("slow-start").expect("slow start");
        assert_eq!(
            f.stalls,
            vec![clock::Stall {
                at: 5.0,
                length: 1.0
            }]
        );
        assert_eq!(f.error_rate, 0.01);
        assert_eq!(f.slow_start.map(|s| s.window), Some(60.0));
        for bad in [
            "stall=1s",
            "stall=0s@1s",
            "error-rate=2",
            "wobble",
            "stall=1s@5.5s",
        ] {
            let e = f.add(bad).expect_err(bad).to_string();
            assert!(e.contains(bad), "{e}");
        }
    }
}
