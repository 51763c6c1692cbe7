//! Where requests come from: a replayed per-request trace, or a rate (an envelope file or
//! a synthetic pattern) expanded into Poisson or Gamma arrivals with a seed. Either way
//! the result is a deterministic stream of [`Request`]s, generated lazily so memory does
//! not grow with the trace, and regenerated identically for every compared policy.
use std::sync::{Arc, OnceLock};

use rand::rngs::ChaCha8Rng;
use rand::{Rng as _, SeedableRng as _};
use rand_distr::{Distribution as _, Exp1, Gamma};

use crate::trace::{self, MAX_RATE, RequestReader, TraceError, TraceInfo, TraceKind, TraceSource};
use crate::units::{format_duration, group_thousands, parse_duration, show_number, trim_float};
use crate::{Error, Limits, Result};

/// Range of the Gamma process's coefficient of variation. Past 10 the shape
/// `1/CV²` is so small that most gaps underflow to 0 s and the mean rate is lost (and
/// at 1e150 the shape is 0, which is no distribution); below 0.01 the gaps are regular
/// to a part in 10⁴ already.
pub const GAMMA_CV: std::ops::RangeInclusive<f64> = 0.01..=10.0;

/// Range of `--time-scale`: a 14-day trace in 20 minutes, or an hour stretched to 6 weeks.
pub const TIME_SCALE: std::ops::RangeInclusive<f64> = 0.001..=1000.0;

/// Most times the traffic is played back to back.
pub const MAX_LOOPS: u32 = 100_000;

/// Most envelope windows walked in a run (rows × loops): a few seconds of work.
pub const MAX_WINDOWS_PLAYED: u64 = 1_000_000_000;

/// One request: when it arrives (seconds from the start) and its size in tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Request {
    pub t: f64,
    pub input: u32,
    pub output: u32,
}

/// How arrivals are drawn from a rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ArrivalProcess {
    /// Exponential gaps (coefficient of variation 1).
    Poisson,
    /// Gamma-distributed gaps with this coefficient of variation (> 1: burstier).
    Gamma { cv: f64 },
}

impl ArrivalProcess {
    /// `poisson`, `gamma:2` or `gamma:cv=2`.
    pub fn parse(s: &str) -> std::result::Result<Self, String> {
        let s = s.trim();
        if s == "poisson" {
            return Ok(Self::Poisson);
        }
        if let Some(rest) = s.strip_prefix("gamma:") {
            let v = rest.strip_prefix("cv=").unwrap_or(rest);
            let cv: f64 = v.parse().map_err(|_| {
                format!("gamma: the coefficient of variation `{v}` is not a number")
            })?;
            let process = Self::Gamma { cv };
            process.check()?;
            return Ok(process);
        }
        Err(format!(
            "unknown arrival process `{s}`: use `poisson` or `gamma:CV` (e.g. gamma:2)"
        ))
    }

    /// Checks the parameters (the variants are public, so a value can be built without
    /// [`ArrivalProcess::parse`]).
    ///
    /// # Errors
    /// A coefficient of variation outside [`GAMMA_CV`].
    pub fn check(self) -> std::result::Result<(), String> {
        match self {
            Self::Poisson => Ok(()),
            Self::Gamma { cv } if GAMMA_CV.contains(&cv) => Ok(()),
            Self::Gamma { cv } => Err(format!(
                "gamma: the coefficient of variation must be from {} to {}, found {}",
                GAMMA_CV.start(),
                GAMMA_CV.end(),
                show_number(cv)
            )),
        }
    }

    /// The distribution of the gaps between arrivals, in units of the mean gap.
    fn gaps(self) -> std::result::Result<Option<Gamma<f64>>, String> {
        self.check()?;
        match self {
            Self::Poisson => Ok(None),
            Self::Gamma { cv } => {
                let k = 1.0 / (cv * cv);
                Gamma::new(k, 1.0 / k)
                    .map(Some)
                    .map_err(|e| format!("gamma: CV {cv}: {e}"))
            }
        }
    }

    fn describe(self) -> String {
        match self {
            Self::Poisson => "Poisson arrivals".into(),
            Self::Gamma { cv } => format!("Gamma arrivals, CV {}", trim_float(cv, 2)),
        }
    }
}

/// A synthetic load shape (requests per second over time).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pattern {
    Constant {
        rate: f64,
    },
    Step {
        from: f64,
        to: f64,
        at: f64,
    },
    Ramp {
        from: f64,
        to: f64,
    },
    Spike {
        base: f64,
        peak: f64,
        at: f64,
        len: f64,
    },
    /// Diurnal: starts at the trough, `mean - amplitude`, peaks half a period later.
    Sine {
        mean: f64,
        amplitude: f64,
        period: f64,
    },
}

/// The pattern syntax, for help and errors.
pub const PATTERN_HELP: &str = "constant:rate=R | step:from=R,to=R[,at=T] | \
ramp:from=R,to=R | spike:base=R,peak=R[,at=T][,for=T] | sine:mean=R,amplitude=R[,period=T] \
(R in requests/s, T a duration such as 30m)";

impl Pattern {
    /// Parses `kind:key=value,…`; returns the pattern and its natural duration.
    ///
    /// # Errors
    /// Unknown kinds or keys, missing keys, and values that are not numbers or durations.
    pub fn parse(spec: &str, duration: Option<f64>) -> std::result::Result<(Self, f64), String> {
        let (kind, args) = spec.split_once(':').unwrap_or((spec, ""));
        let mut kv = Vec::new();
        for part in args.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("pattern `{spec}`: expected key=value, found `{part}`"))?;
            kv.push((k.trim(), v.trim()));
        }
        let allowed: &[&str] = match kind {
            "constant" => &["rate"],
            "step" => &["from", "to", "at"],
            "ramp" => &["from", "to"],
            "spike" => &["base", "peak", "at", "for"],
            "sine" => &["mean", "amplitude", "period"],
            _ => return Err(format!("unknown pattern `{kind}`: {PATTERN_HELP}")),
        };
        if let Some((k, _)) = kv.iter().find(|(k, _)| !allowed.contains(k)) {
            return Err(format!(
                "pattern `{kind}` has no key `{k}` (keys: {})",
                allowed.join(", ")
            ));
        }
        let get = |k: &str| kv.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
        let rate = |k: &str| -> std::result::Result<f64, String> {
            let v = get(k)
                .ok_or_else(|| format!("pattern `{kind}` needs `{k}=` (requests per second)"))?;
            let r: f64 = v.parse().map_err(|_| {
                format!("pattern `{kind}`: {k}=`{v}` is not a number of requests per second")
            })?;
            if r.is_finite() && (0.0..=MAX_RATE).contains(&r) {
                Ok(r)
            } else {
                Err(format!(
                    "pattern `{kind}`: {k} must be from 0 to {} requests per second, found {v}",
                    group_thousands(MAX_RATE as u64)
                ))
            }
        };
        let time = |k: &str, default: f64| -> std::result::Result<f64, String> {
            get(k).map_or(Ok(default), |v| {
                parse_duration(v).map_err(|e| format!("pattern `{kind}`: {k}: {e}"))
            })
        };
        let default_duration = 3600.0;
        Ok(match kind {
            "constant" => (
                Self::Constant {
                    rate: rate("rate")?,
                },
                duration.unwrap_or(default_duration),
            ),
            "step" => {
                let d = duration.unwrap_or(default_duration);
                (
                    Self::Step {
                        from: rate("from")?,
                        to: rate("to")?,
                        at: time("at", d / 2.0)?,
                    },
                    d,
                )
            }
            "ramp" => (
                Self::Ramp {
                    from: rate("from")?,
                    to: rate("to")?,
                },
                duration.unwrap_or(default_duration),
            ),
            "spike" => {
                let d = duration.unwrap_or(default_duration);
                (
                    Self::Spike {
                        base: rate("base")?,
                        peak: rate("peak")?,
                        at: time("at", d / 2.0)?,
                        len: time("for", 300.0)?,
                    },
                    d,
                )
            }
            _ => {
                let period = time("period", 86_400.0)?;
                if period <= 0.0 {
                    return Err("pattern `sine`: period must be positive".into());
                }
                let mean = rate("mean")?;
                let amplitude = get("amplitude").map_or(Ok(mean / 2.0), |_| rate("amplitude"))?;
                (
                    Self::Sine {
                        mean,
                        amplitude: amplitude.min(mean),
                        period,
                    },
                    duration.unwrap_or(period),
                )
            }
        })
    }

    /// The rate at time `t`.
    pub fn rate_at(&self, t: f64) -> f64 {
        match *self {
            Self::Constant { rate } => rate,
            Self::Step { from, to, at } => {
                if t < at {
                    from
                } else {
                    to
                }
            }
            Self::Ramp { .. } => unreachable!("ramps are windowed"),
            Self::Spike {
                base,
                peak,
                at,
                len,
            } => {
                if t >= at && t < at + len {
                    peak
                } else {
                    base
                }
            }
            Self::Sine {
                mean,
                amplitude,
                period,
            } => mean - amplitude * (std::f64::consts::TAU * t / period).cos(),
        }
    }

    fn describe(&self) -> String {
        let r = |x: f64| trim_float(x, 2);
        match *self {
            Self::Constant { rate } => format!("constant {} req/s", r(rate)),
            Self::Step { from, to, at } => {
                format!(
                    "step {} → {} req/s at {}",
                    r(from),
                    r(to),
                    format_duration(at)
                )
            }
            Self::Ramp { from, to } => format!("ramp {} → {} req/s", r(from), r(to)),
            Self::Spike {
                base,
                peak,
                at,
                len,
            } => format!(
                "spike {} → {} req/s at {} for {}",
                r(base),
                r(peak),
                format_duration(at),
                format_duration(len)
            ),
            Self::Sine {
                mean,
                amplitude,
                period,
            } => format!(
                "sine {} ± {} req/s, period {}",
                r(mean),
                r(amplitude),
                format_duration(period)
            ),
        }
    }
}

/// What to replay or generate.
#[derive(Debug, Clone)]
pub enum TrafficSpec {
    /// A traffic file (per-request trace or rate envelope, told apart by its header).
    Trace(TraceSource),
    /// A synthetic pattern (`step:from=10,to=40`).
    Pattern(String),
}

/// How to play the traffic.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrafficOptions {
    /// Multiplies every time (0.5 plays twice as fast, at twice the rate).
    pub time_scale: f64,
    /// Plays the traffic this many times back to back.
    pub loops: u32,
    /// For rates: how arrivals are drawn.
    pub arrivals: ArrivalProcess,
    pub seed: u64,
    /// Stops the traffic here (seconds after scaling); patterns run this long.
    pub duration: Option<f64>,
    /// Bounds on the traffic's length and requests.
    pub limits: Limits,
}

impl Default for TrafficOptions {
    fn default() -> Self {
        Self {
            time_scale: 1.0,
            loops: 1,
            arrivals: ArrivalProcess::Poisson,
            seed: 1,
            duration: None,
            limits: Limits::DEFAULT,
        }
    }
}

/// Request sizes to draw from when the traffic has none.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenMix {
    pub pairs: Vec<(u32, u32)>,
    /// Where the pairs come from.
    pub origin: String,
}

impl TokenMix {
    /// The (input, output) pairs of the embedded Azure conversation trace.
    pub fn embedded() -> Arc<TokenMix> {
        static MIX: OnceLock<Arc<TokenMix>> = OnceLock::new();
        MIX.get_or_init(|| {
            let info =
                trace::scan(&TraceSource::Embedded, u64::MAX).expect("the embedded trace is valid");
            Arc::new(TokenMix {
                pairs: info.token_sample,
                origin: "token sizes of the embedded Azure conversation trace".into(),
            })
        })
        .clone()
    }

    #[inline]
    fn draw(&self, rng: &mut ChaCha8Rng) -> (u32, u32) {
        // Multiply-shift: an index uniform over the pairs without a division.
        let i = ((u128::from(rng.next_u64()) * self.pairs.len() as u128) >> 64) as usize;
        self.pairs[i]
    }

    /// Mean (input, output) tokens.
    pub fn means(&self) -> (f64, f64) {
        let n = self.pairs.len().max(1) as f64;
        let (a, b) = self.pairs.iter().fold((0.0, 0.0), |(a, b), &(i, o)| {
            (a + f64::from(i), b + f64::from(o))
        });
        (a / n, b / n)
    }
}

#[derive(Debug, Clone)]
enum Source {
    Replay {
        info: TraceInfo,
        period: f64,
    },
    Envelope {
        windows: Arc<Vec<(f64, f64, f64)>>,
        span: f64,
    },
    Pattern {
        pattern: Pattern,
        span: f64,
    },
}

/// Traffic, checked and ready to generate arrivals any number of times.
#[derive(Debug, Clone)]
pub struct Traffic {
    /// One line for people: what is played and how.
    pub description: String,
    /// Where the traffic stops (seconds).
    pub horizon: f64,
    /// Requests expected (exact for a replayed trace, the mean for a rate).
    pub expected_requests: f64,
    /// Request sizes for rates and for traces without tokens.
    pub mix: Arc<TokenMix>,
    source: Source,
    options: TrafficOptions,
}

impl Traffic {
    /// Checks the traffic (a file is read whole once) and works out its horizon.
    ///
    /// # Errors
    /// A bad traffic file (`file:line: message`), pattern or option.
    pub fn prepare(spec: &TrafficSpec, options: TrafficOptions) -> Result<Traffic> {
        if !TIME_SCALE.contains(&options.time_scale) {
            return Err(Error::Traffic(format!(
                "--time-scale must be from {} to {}, found {}",
                TIME_SCALE.start(),
                TIME_SCALE.end(),
                show_number(options.time_scale)
            )));
        }
        if !(1..=MAX_LOOPS).contains(&options.loops) {
            return Err(Error::Traffic(format!(
                "--loop must be from 1 to {}, found {}",
                group_thousands(u64::from(MAX_LOOPS)),
                options.loops
            )));
        }
        if let Some(d) = options.duration
            && !(d.is_finite() && d > 0.0)
        {
            return Err(Error::Traffic(format!(
                "--duration must be positive, found {}",
                format_duration(d)
            )));
        }
        options.arrivals.check().map_err(Error::Traffic)?;
        let limits = options.limits;
        let scale = options.time_scale;
        let loops = f64::from(options.loops);
        let (source, mut description, natural, expected, mix) = match spec {
            TrafficSpec::Trace(src) => {
                let info = trace::scan(src, limits.max_requests)?;
                match info.kind {
                    TraceKind::Requests { tokens } => {
                        let span = info.last_timestamp - info.first_timestamp;
                        let period = if span > 0.0 { span.ceil() } else { 1.0 };
                        let mix = if tokens {
                            Arc::new(TokenMix {
                                pairs: info.token_sample.clone(),
                                origin: format!("token sizes of {}", src.name()),
                            })
                        } else {
                            TokenMix::embedded()
                        };
                        let d = format!(
                            "trace {} ({} requests over {}{}{})",
                            src.name(),
                            group_thousands(info.rows),
                            format_duration(period),
                            if info.first_timestamp > 0.0 {
                                format!(
                                    "; times relative to the first row's {} s",
                                    trim_float(info.first_timestamp, 3)
                                )
                            } else {
                                String::new()
                            },
                            if tokens {
                                ""
                            } else {
                                "; sizes from the embedded Azure trace"
                            }
                        );
                        let expected = info.rows as f64 * loops;
                        (
                            Source::Replay { info, period },
                            d,
                            period * scale * loops,
                            expected,
                            mix,
                        )
                    }
                    TraceKind::Envelope => {
                        let w = &info.windows;
                        // Every window is walked once per loop, requests or not.
                        let played = (w.len() as u64).saturating_mul(u64::from(options.loops));
                        if played > MAX_WINDOWS_PLAYED {
                            return Err(Error::Traffic(format!(
                                "--loop {} plays {} windows of {} ({} per pass), more than {}: \
                                 play it fewer times",
                                options.loops,
                                group_thousands(played),
                                src.name(),
                                group_thousands(w.len() as u64),
                                group_thousands(MAX_WINDOWS_PLAYED)
                            )));
                        }
                        let step = if w.len() > 1 { w[1].0 - w[0].0 } else { 1.0 };
                        let windows: Vec<(f64, f64, f64)> = w
                            .iter()
                            .enumerate()
                            .map(|(i, &(start, rate))| {
                                let end = w.get(i + 1).map_or(start + step, |n| n.0);
                                (start - w[0].0, end - w[0].0, rate)
                            })
                            .collect();
                        let span = windows.last().map_or(1.0, |x| x.1);
                        let per_loop: f64 = windows.iter().map(|(a, b, r)| (b - a) * r).sum();
                        let d = format!(
                            "rate envelope {} ({}, mean {} req/s, {})",
                            src.name(),
                            format_duration(span),
                            trim_float(per_loop / span, 1),
                            options.arrivals.describe()
                        );
                        (
                            Source::Envelope {
                                windows: Arc::new(windows),
                                span,
                            },
                            d,
                            span * scale * loops,
                            per_loop * loops,
                            TokenMix::embedded(),
                        )
                    }
                }
            }
            TrafficSpec::Pattern(text) => {
                let (pattern, span) = Pattern::parse(text, options.duration.map(|d| d / scale))
                    .map_err(Error::Traffic)?;
                if !(span.is_finite() && span > 0.0) {
                    return Err(Error::Traffic("--duration must be positive".into()));
                }
                // Before anything walks the pattern's windows: its length bounds them.
                check_length(span * scale * loops, &limits)?;
                let d = format!(
                    "pattern {} for {} ({})",
                    pattern.describe(),
                    format_duration(span),
                    options.arrivals.describe()
                );
                let expected = integrate(&pattern, span) * loops;
                (
                    Source::Pattern { pattern, span },
                    d,
                    span * scale * loops,
                    expected,
                    TokenMix::embedded(),
                )
            }
        };
        let mut horizon = natural;
        let mut expected = expected;
        if let (Some(d), TrafficSpec::Trace(_)) = (options.duration, spec)
            && d < natural
        {
            expected *= d / natural;
            horizon = d;
            description.push_str(&format!(", first {}", format_duration(d)));
        }
        check_length(horizon, &limits)?;
        if expected > limits.max_requests as f64 {
            return Err(Error::Limit {
                what: "the traffic has about".into(),
                amount: format!("{} requests", group_thousands_f(expected)),
                limit: group_thousands(limits.max_requests),
                advice: "shorten it with --duration, ".into(),
                flag: "--max-requests",
            });
        }
        if scale != 1.0 {
            description.push_str(&format!(", time ×{}", trim_float(scale, 3)));
        }
        if options.loops > 1 {
            description.push_str(&format!(", played {} times", options.loops));
        }
        Ok(Traffic {
            description,
            horizon,
            expected_requests: expected,
            mix,
            source,
            options,
        })
    }

    pub fn options(&self) -> TrafficOptions {
        self.options
    }

    /// A fresh arrival stream; every call yields the same requests.
    ///
    /// # Errors
    /// When a trace file cannot be reopened.
    pub fn arrivals(&self) -> Result<Arrivals> {
        let seed = self.options.seed;
        let scale = self.options.time_scale;
        let kind = match &self.source {
            Source::Replay { info, period } => ArrivalsKind::Replay {
                reader: RequestReader::open(&info.source, info.first_timestamp)?,
                origin: info.first_timestamp,
                source: info.source.clone(),
                loop_index: 0,
                period: *period,
            },
            Source::Envelope { windows, span } => ArrivalsKind::Rate(RateGen::new(
                Shape::Windows(windows.clone()),
                *span,
                self.options.arrivals,
            )?),
            Source::Pattern { pattern, span } => ArrivalsKind::Rate(RateGen::new(
                Shape::Pattern(*pattern),
                *span,
                self.options.arrivals,
            )?),
        };
        Ok(Arrivals {
            kind,
            rng: ChaCha8Rng::seed_from_u64(seed),
            mix: self.mix.clone(),
            scale,
            loops: self.options.loops,
            horizon: self.horizon,
            error: None,
        })
    }
}

/// Refuses traffic longer than the limit (`horizon`: seconds after scaling, loops
/// included).
fn check_length(horizon: f64, limits: &Limits) -> Result<()> {
    if horizon > limits.max_seconds {
        return Err(Error::Limit {
            what: "the traffic lasts".into(),
            amount: format_duration(horizon),
            limit: format_duration(limits.max_seconds),
            advice: "shorten it with --duration, --loop or --time-scale, ".into(),
            flag: "--max-simulated-time",
        });
    }
    Ok(())
}

/// A count for messages: grouped digits, or `1.2e15` past what a u64 holds.
fn group_thousands_f(x: f64) -> String {
    if x < 1e18 {
        group_thousands(x.round() as u64)
    } else {
        format!("{x:.1e}")
    }
}

/// ∫ rate over one pass of a pattern, in closed form (no walk over its windows, whatever
/// its length).
fn integrate(p: &Pattern, span: f64) -> f64 {
    match *p {
        Pattern::Constant { rate } => rate * span,
        Pattern::Step { from, to, at } => {
            let at = at.clamp(0.0, span);
            from * at + to * (span - at)
        }
        Pattern::Ramp { from, to } => (from + to) / 2.0 * span,
        Pattern::Spike {
            base,
            peak,
            at,
            len,
        } => {
            let overlap = (at + len).clamp(0.0, span) - at.clamp(0.0, span);
            base * span + (peak - base) * overlap
        }
        Pattern::Sine {
            mean,
            amplitude,
            period,
        } => {
            let w = std::f64::consts::TAU / period;
            mean * span - amplitude * (w * span).sin() / w
        }
    }
}

/// A rate over time, as windows of constant rate.
#[derive(Debug, Clone)]
enum Shape {
    Windows(Arc<Vec<(f64, f64, f64)>>),
    Pattern(Pattern),
}

/// Width of the windows a smoothly varying pattern is cut into.
const PATTERN_RESOLUTION: f64 = 1.0;

impl Shape {
    /// Window `i` of one pass: (start, end, rate), or `None` past the end.
    fn window(&self, i: u64, span: f64) -> Option<(f64, f64, f64)> {
        match self {
            Self::Windows(w) => w.get(i as usize).copied(),
            Self::Pattern(p) => {
                let edges: &[f64] = &match *p {
                    Pattern::Constant { .. } => vec![0.0, span],
                    Pattern::Step { at, .. } => vec![0.0, at.clamp(0.0, span), span],
                    Pattern::Spike { at, len, .. } => {
                        vec![0.0, at.clamp(0.0, span), (at + len).clamp(0.0, span), span]
                    }
                    Pattern::Ramp { from, to } => {
                        let start = i as f64 * PATTERN_RESOLUTION;
                        if start >= span {
                            return None;
                        }
                        let end = (start + PATTERN_RESOLUTION).min(span);
                        let mid = (start + end) / 2.0;
                        return Some((start, end, from + (to - from) * mid / span));
                    }
                    Pattern::Sine { .. } => {
                        let start = i as f64 * PATTERN_RESOLUTION;
                        if start >= span {
                            return None;
                        }
                        let end = (start + PATTERN_RESOLUTION).min(span);
                        return Some((start, end, p.rate_at((start + end) / 2.0)));
                    }
                };
                let i = i as usize;
                if i + 1 >= edges.len() {
                    return None;
                }
                let (a, b) = (edges[i], edges[i + 1]);
                Some((a, b, p.rate_at(a)))
            }
        }
    }
}

/// Arrivals from a rate by time change: unit-mean renewal gaps accumulate in
/// "operational time" Λ(t) = ∫rate, and each is mapped back through Λ⁻¹. With
/// exponential gaps this is an exact non-homogeneous Poisson process; with Gamma gaps a
/// renewal process of the chosen burstiness that follows the rate.
#[derive(Debug)]
struct RateGen {
    shape: Shape,
    span: f64,
    gamma: Option<Gamma<f64>>,
    /// Window index over all loops.
    index: u64,
    windows_per_loop: u64,
    start: f64,
    end: f64,
    rate: f64,
    /// Λ at the window's start.
    lam_start: f64,
    /// Λ of the next arrival.
    u: f64,
    done: bool,
}

impl RateGen {
    fn new(shape: Shape, span: f64, process: ArrivalProcess) -> Result<Self> {
        let gamma = process.gaps().map_err(Error::Traffic)?;
        let mut g = Self {
            shape,
            span,
            gamma,
            index: 0,
            windows_per_loop: 0,
            start: 0.0,
            end: 0.0,
            rate: 0.0,
            lam_start: 0.0,
            u: 0.0,
            done: false,
        };
        g.windows_per_loop = g.pattern_windows().max(1);
        g.done = !g.load(0, u32::MAX);
        Ok(g)
    }

    /// Loads window `index` (over all loops); false past the last loop.
    fn load(&mut self, index: u64, loops: u32) -> bool {
        let (pass, i) = (index / self.windows_per_loop, index % self.windows_per_loop);
        if pass >= u64::from(loops) {
            return false;
        }
        let Some((a, b, r)) = self.shape.window(i, self.span) else {
            return false;
        };
        let offset = pass as f64 * self.span;
        self.index = index;
        self.start = a + offset;
        self.end = b + offset;
        self.rate = r;
        true
    }

    fn pattern_windows(&self) -> u64 {
        match &self.shape {
            Shape::Windows(w) => w.len() as u64,
            Shape::Pattern(p) => match p {
                Pattern::Constant { .. } => 1,
                Pattern::Step { .. } => 2,
                Pattern::Spike { .. } => 3,
                Pattern::Ramp { .. } | Pattern::Sine { .. } => {
                    (self.span / PATTERN_RESOLUTION).ceil().max(1.0) as u64
                }
            },
        }
    }

    /// The next arrival time (unscaled), or `None` when the rate has ended.
    #[inline]
    fn next(&mut self, rng: &mut ChaCha8Rng, loops: u32) -> Option<f64> {
        if self.done {
            return None;
        }
        let gap: f64 = match &self.gamma {
            None => Exp1.sample(rng),
            Some(g) => g.sample(rng),
        };
        self.u += gap;
        loop {
            let lam_end = self.lam_start + self.rate * (self.end - self.start);
            if self.u <= lam_end && self.rate > 0.0 {
                let t = self.start + (self.u - self.lam_start) / self.rate;
                return Some(t.min(self.end));
            }
            self.lam_start = lam_end;
            if !self.load(self.index + 1, loops) {
                self.done = true;
                return None;
            }
        }
    }
}

#[derive(Debug)]
enum ArrivalsKind {
    Replay {
        reader: RequestReader,
        /// The first row's timestamp, subtracted from every row's.
        origin: f64,
        source: TraceSource,
        loop_index: u32,
        period: f64,
    },
    Rate(RateGen),
}

/// A deterministic stream of requests.
#[derive(Debug)]
pub struct Arrivals {
    kind: ArrivalsKind,
    rng: ChaCha8Rng,
    mix: Arc<TokenMix>,
    scale: f64,
    loops: u32,
    horizon: f64,
    error: Option<TraceError>,
}

impl Arrivals {
    /// The next request, or `None` at the end (check [`Arrivals::take_error`] then).
    #[inline]
    pub fn next_request(&mut self) -> Option<Request> {
        let req = match &mut self.kind {
            ArrivalsKind::Rate(g) => {
                let t = g.next(&mut self.rng, self.loops)? * self.scale;
                let (input, output) = self.mix.draw(&mut self.rng);
                Request { t, input, output }
            }
            ArrivalsKind::Replay {
                reader,
                origin,
                source,
                loop_index,
                period,
            } => loop {
                match reader.next_request() {
                    Ok(Some((t, tokens))) => {
                        let (input, output) = match tokens {
                            Some(p) => p,
                            None => self.mix.draw(&mut self.rng),
                        };
                        let t = (t + f64::from(*loop_index) * *period) * self.scale;
                        break Request { t, input, output };
                    }
                    Ok(None) => {
                        *loop_index += 1;
                        if *loop_index >= self.loops {
                            return None;
                        }
                        match RequestReader::open(source, *origin) {
                            Ok(r) => *reader = r,
                            Err(e) => {
                                self.error = Some(e);
                                return None;
                            }
                        }
                    }
                    Err(e) => {
                        self.error = Some(e);
                        return None;
                    }
                }
            },
        };
        if req.t > self.horizon {
            return None;
        }
        Some(req)
    }

    /// A read error that ended the stream early.
    pub fn take_error(&mut self) -> Option<TraceError> {
        self.error.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(traffic: &Traffic) -> Vec<Request> {
        let mut a = traffic.arrivals().expect("opens");
        std::iter::from_fn(|| a.next_request()).collect()
    }

    #[test]
    fn poisson_arrivals_follow_the_rate_and_repeat_for_a_seed() {
        let t = Traffic::prepare(
            &TrafficSpec::Pattern("step:from=10,to=40,at=30m".into()),
            TrafficOptions::default(),
        )
        .expect("valid");
        let reqs = all(&t);
        let first = reqs.iter().filter(|r| r.t < 1800.0).count() as f64;
        let second = reqs.iter().filter(|r| r.t >= 1800.0).count() as f64;
        assert!((first / 1800.0 - 10.0).abs() < 0.5, "{first}");
        assert!((second / 1800.0 - 40.0).abs() < 1.0, "{second}");
        assert!(reqs.windows(2).all(|w| w[0].t <= w[1].t));
        assert_eq!(reqs, all(&t), "same seed, same requests");
        assert!((t.expected_requests - 90_000.0).abs() < 1.0);
    }

    #[test]
    fn gamma_arrivals_are_burstier_but_keep_the_mean_rate() {
        let opts = TrafficOptions {
            arrivals: ArrivalProcess::Gamma { cv: 3.0 },
            ..TrafficOptions::default()
        };
        let t = Traffic::prepare(&TrafficSpec::Pattern("constant:rate=20".into()), opts)
            .expect("valid");
        let reqs = all(&t);
        let rate = reqs.len() as f64 / 3600.0;
        assert!((rate - 20.0).abs() < 2.0, "{rate}");
        let gaps: Vec<f64> = reqs.windows(2).map(|w| w[1].t - w[0].t).collect();
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64;
        let cv = var.sqrt() / mean;
        assert!((cv - 3.0).abs() < 0.4, "cv {cv}");
    }

    #[test]
    fn time_scale_and_loops_stretch_and_repeat_a_trace() {
        let base = Traffic::prepare(
            &TrafficSpec::Trace(TraceSource::Embedded),
            TrafficOptions::default(),
        )
        .expect("valid");
        let fast = Traffic::prepare(
            &TrafficSpec::Trace(TraceSource::Embedded),
            TrafficOptions {
                time_scale: 0.5,
                loops: 2,
                ..TrafficOptions::default()
            },
        )
        .expect("valid");
        assert_eq!(fast.horizon, base.horizon);
        let a = all(&base);
        let b = all(&fast);
        assert_eq!(b.len(), 2 * a.len());
        assert_eq!(b[1].t, a[1].t * 0.5);
        assert_eq!((b[1].input, b[1].output), (a[1].input, a[1].output));
    }

    #[test]
    fn gamma_parameters_out_of_range_are_errors_not_panics() {
        for cv in [1e-300, 1e300, 0.0, -1.0, f64::NAN, f64::INFINITY, 1e5] {
            let opts = TrafficOptions {
                arrivals: ArrivalProcess::Gamma { cv },
                ..TrafficOptions::default()
            };
            let e = Traffic::prepare(&TrafficSpec::Pattern("constant:rate=1".into()), opts)
                .expect_err("out of range");
            assert!(
                e.to_string().contains("must be from 0.01 to 10"),
                "{cv}: {e}"
            );
            assert!(
                ArrivalProcess::parse(&format!("gamma:{cv}")).is_err(),
                "{cv}"
            );
        }
        // The generator checks too, for a process built past `prepare`.
        let shape = Shape::Pattern(Pattern::Constant { rate: 1.0 });
        assert!(RateGen::new(shape, 10.0, ArrivalProcess::Gamma { cv: 1e300 }).is_err());
        assert!(ArrivalProcess::parse("gamma:10").is_ok());
    }

    #[test]
    fn the_closed_form_integral_matches_the_sum_over_windows() {
        for (spec, span) in [
            ("sine:mean=10,amplitude=4,period=17m", 3600.0),
            ("step:from=3,to=7,at=100", 1000.5),
            ("spike:base=1,peak=9,at=300,for=200", 400.0),
            ("constant:rate=2.5", 99.0),
        ] {
            let (p, _) = Pattern::parse(spec, Some(span)).expect("valid");
            let n = (span * 100.0).ceil() as u64;
            let dt = span / n as f64;
            let sum: f64 = (0..n).map(|i| p.rate_at((i as f64 + 0.5) * dt) * dt).sum();
            let exact = integrate(&p, span);
            assert!(
                (sum - exact).abs() < 1e-3 * exact,
                "{spec}: {sum} vs {exact}"
            );
        }
    }

    #[test]
    fn an_envelope_played_too_many_times_is_refused() {
        let rows: String = (0..20_000).map(|i| format!("{i}e-6,0\n")).collect();
        let source = TraceSource::Memory {
            name: "tiny-windows".into(),
            bytes: format!("timestamp_seconds,requests_per_second\n{rows}")
                .into_bytes()
                .into(),
        };
        let opts = TrafficOptions {
            loops: 100_000,
            ..TrafficOptions::default()
        };
        let e = Traffic::prepare(&TrafficSpec::Trace(source), opts).expect_err("too many");
        assert!(
            e.to_string()
                .contains("plays 2,000,000,000 windows of tiny-windows (20,000 per pass)"),
            "{e}"
        );
    }

    #[test]
    fn a_trace_of_unix_times_starts_at_its_first_row() {
        let text =
            "timestamp_seconds,input_tokens,output_tokens\n1700000000,10,5\n1700000030,10,5\n";
        let t = Traffic::prepare(
            &TrafficSpec::Trace(TraceSource::Memory {
                name: "epoch".into(),
                bytes: text.as_bytes().into(),
            }),
            TrafficOptions::default(),
        )
        .expect("valid");
        assert_eq!(t.horizon, 30.0);
        assert!(
            t.description
                .contains("relative to the first row's 1700000000 s")
        );
        let times: Vec<f64> = all(&t).iter().map(|r| r.t).collect();
        assert_eq!(times, vec![0.0, 30.0]);
    }

    #[test]
    fn patterns_reject_unknown_keys_and_kinds() {
        assert!(
            Pattern::parse("constant:rat=3", None)
                .expect_err("invalid")
                .contains("no key `rat`")
        );
        assert!(
            Pattern::parse("square:rate=3", None)
                .expect_err("invalid")
                .contains("unknown pattern")
        );
        assert!(
            Pattern::parse("step:from=3", None)
                .expect_err("invalid")
                .contains("needs `to=`")
        );
        let (p, d) = Pattern::parse("sine:mean=10,amplitude=5,period=1h", None).expect("valid");
        assert_eq!(d, 3600.0);
        assert!((p.rate_at(0.0) - 5.0).abs() < 1e-9);
        assert!((p.rate_at(1800.0) - 15.0).abs() < 1e-9);
    }
}
