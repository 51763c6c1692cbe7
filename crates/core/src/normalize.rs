//! Normalization: stabilization windows, rate limits and the [min, max] clamp
//! (`horizontal.go` `normalizeDesiredReplicas` for HPAs without `behavior`,
//! `normalizeDesiredReplicasWithBehaviors` for those with it).
use jiff::{SignedDuration, Timestamp};

use crate::api::HorizontalPodAutoscalerCondition;
use crate::api::{HpaScalingPolicy, policy_type, select_policy};
use crate::conditions::{self, reasons};
use crate::defaults::{Behavior, ScalingRules};
use crate::history::{Direction, History, Recommendation, ScaleEvent};
use crate::settings::ControllerSettings;

/// What normalization decided and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalized {
    pub stabilized: i32,
    pub desired: i32,
    /// `AbleToScale` (stabilization outcome).
    pub able_to_scale: HorizontalPodAutoscalerCondition,
    /// `ScalingLimited` (clamp / rate-limit outcome).
    pub scaling_limited: HorizontalPodAutoscalerCondition,
    /// The rate limit in force in the direction of the change, if any.
    pub limit: Option<i32>,
}

/// Inputs to normalization.
#[derive(Debug, Clone, Copy)]
pub struct NormalizeArgs<'a> {
    pub behavior: Option<&'a Behavior>,
    pub settings: &'a ControllerSettings,
    pub min_replicas: i32,
    pub max_replicas: i32,
    pub current_replicas: i32,
    pub prenormalized: i32,
    pub now: Timestamp,
}

fn secs(s: i64) -> SignedDuration {
    SignedDuration::from_secs(s)
}

fn cutoff(now: Timestamp, seconds: i64) -> Timestamp {
    now.checked_sub(secs(seconds)).unwrap_or(Timestamp::MIN)
}

/// The stabilization step alone; updates the stored recommendations.
/// Returns (stabilized, AbleToScale condition).
pub fn stabilize(
    args: &NormalizeArgs<'_>,
    recommendations: &mut Vec<Recommendation>,
) -> (i32, HorizontalPodAutoscalerCondition) {
    let stabilized = match args.behavior {
        None => stabilize_legacy(args, recommendations),
        Some(b) => stabilize_with_behavior(args, b, recommendations),
    };
    let cond = if stabilized != args.prenormalized {
        if args.behavior.is_some() && args.prenormalized >= args.current_replicas {
            conditions::new(
                conditions::ABLE_TO_SCALE,
                true,
                reasons::SCALE_UP_STABILIZED,
                "recent recommendations were lower than current one, applying the lowest recent recommendation",
            )
        } else {
            conditions::new(
                conditions::ABLE_TO_SCALE,
                true,
                reasons::SCALE_DOWN_STABILIZED,
                "recent recommendations were higher than current one, applying the highest recent recommendation",
            )
        }
    } else {
        conditions::new(
            conditions::ABLE_TO_SCALE,
            true,
            reasons::READY_FOR_NEW_SCALE,
            "recommended size matches current size",
        )
    };
    (stabilized, cond)
}

/// `stabilizeRecommendation`: the max over the downscale window (entries after the
/// cutoff count), then the new value overwrites the last entry older than the
/// cutoff, or is appended.
fn stabilize_legacy(args: &NormalizeArgs<'_>, recs: &mut Vec<Recommendation>) -> i32 {
    let cut = cutoff(
        args.now,
        args.settings.downscale_stabilization_window_seconds,
    );
    let mut max = args.prenormalized;
    let mut old = None;
    for (i, r) in recs.iter().enumerate() {
        // Upstream reads the clock here, a moment after it stamped every stored entry
        // (the initial recommendation of this sync included), so in scenario time an
        // entry at exactly the cutoff is already `Before(cutoff)`: outside the window,
        // and a slot to overwrite (`hpa-algorithm.md` section 13).
        if r.time <= cut {
            old = Some(i);
        } else if r.replicas > max {
            max = r.replicas;
        }
    }
    store(
        recs,
        old,
        Recommendation {
            time: args.now,
            replicas: args.prenormalized,
        },
    );
    max
}

/// `stabilizeRecommendationWithBehaviors`: scale up only as far as the lowest recent
/// recommendation, down only as far as the highest (windows are strict: `t > now − W`).
fn stabilize_with_behavior(
    args: &NormalizeArgs<'_>,
    b: &Behavior,
    recs: &mut Vec<Recommendation>,
) -> i32 {
    let up_cut = cutoff(args.now, i64::from(b.scale_up.stabilization_window_seconds));
    let down_cut = cutoff(
        args.now,
        i64::from(b.scale_down.stabilization_window_seconds),
    );
    let mut up = args.prenormalized;
    let mut down = args.prenormalized;
    let mut old = None;
    for (i, r) in recs.iter().enumerate() {
        if r.time > up_cut {
            up = up.min(r.replicas);
        }
        if r.time > down_cut {
            down = down.max(r.replicas);
        }
        // Outside both windows (an entry at exactly a cutoff is outside it, as above):
        // the last such entry is overwritten.
        if r.time <= up_cut && r.time <= down_cut {
            old = Some(i);
        }
    }
    let mut stabilized = args.current_replicas;
    if stabilized < up {
        stabilized = up;
    }
    if stabilized > down {
        stabilized = down;
    }
    store(
        recs,
        old,
        Recommendation {
            time: args.now,
            replicas: args.prenormalized,
        },
    );
    stabilized
}

fn store(recs: &mut Vec<Recommendation>, slot: Option<usize>, rec: Recommendation) {
    match slot {
        Some(i) => recs[i] = rec,
        None => recs.push(rec),
    }
}

fn limited(reason: &str, message: &str, limited: bool) -> HorizontalPodAutoscalerCondition {
    conditions::new(conditions::SCALING_LIMITED, limited, reason, message)
}

const WITHIN_RANGE: &str = "the desired count is within the acceptable range";
const TOO_MANY: &str = "the desired replica count is more than the maximum replica count";
const TOO_FEW: &str = "the desired replica count is less than the minimum replica count";
const UP_LIMIT: &str = "the desired replica count is increasing faster than the maximum scale rate";
const DOWN_LIMIT: &str =
    "the desired replica count is decreasing faster than the maximum scale rate";

/// Full normalization: stabilization, then rate limits and clamp.
pub fn normalize(args: &NormalizeArgs<'_>, history: &mut History) -> Normalized {
    let recs = history.recommendations.get_or_insert_with(Vec::new);
    let (stabilized, able_to_scale) = stabilize(args, recs);
    let (desired, reason, message, limit) = match args.behavior {
        None => {
            let (d, r, m, l) = convert_legacy(args, stabilized);
            (d, r, m, Some(l))
        }
        Some(b) => convert_with_behavior(args, b, history, stabilized),
    };
    let scaling_limited = limited(reason, message, desired != stabilized);
    Normalized {
        stabilized,
        desired,
        able_to_scale,
        scaling_limited,
        limit,
    }
}

/// `convertDesiredReplicasWithRules` + `calculateScaleUpLimit` (legacy path).
fn convert_legacy(
    args: &NormalizeArgs<'_>,
    desired: i32,
) -> (i32, &'static str, &'static str, i32) {
    let s = args.settings;
    // int32(math.Max(scaleUpLimitFactor*float64(currentReplicas), scaleUpLimitMinimum))
    let up_limit = (s.legacy_scale_up_limit_factor * f64::from(args.current_replicas))
        .max(s.legacy_scale_up_limit_minimum) as i32;
    let (max_allowed, reason, message) = if args.max_replicas > up_limit {
        (up_limit, reasons::SCALE_UP_LIMIT, UP_LIMIT)
    } else {
        (args.max_replicas, reasons::TOO_MANY_REPLICAS, TOO_MANY)
    };
    if desired < args.min_replicas {
        (
            args.min_replicas,
            reasons::TOO_FEW_REPLICAS,
            TOO_FEW,
            up_limit,
        )
    } else if desired > max_allowed {
        (max_allowed, reason, message, up_limit)
    } else {
        (
            desired,
            reasons::DESIRED_WITHIN_RANGE,
            WITHIN_RANGE,
            up_limit,
        )
    }
}

/// `convertDesiredReplicasWithBehaviorRate`.
fn convert_with_behavior(
    args: &NormalizeArgs<'_>,
    b: &Behavior,
    history: &History,
    desired: i32,
) -> (i32, &'static str, &'static str, Option<i32>) {
    let c = args.current_replicas;
    if desired > c {
        let limit = scale_up_limit(c, history, &b.scale_up, args.now).max(c);
        let (max_allowed, reason, message) = if args.max_replicas > limit {
            (limit, reasons::SCALE_UP_LIMIT, UP_LIMIT)
        } else {
            (args.max_replicas, reasons::TOO_MANY_REPLICAS, TOO_MANY)
        };
        if desired > max_allowed {
            return (max_allowed, reason, message, Some(limit));
        }
        return (
            desired,
            reasons::DESIRED_WITHIN_RANGE,
            WITHIN_RANGE,
            Some(limit),
        );
    }
    if desired < c {
        let limit = scale_down_limit(c, history, &b.scale_down, args.now).min(c);
        let (min_allowed, reason, message) = if args.min_replicas < limit {
            (limit, reasons::SCALE_DOWN_LIMIT, DOWN_LIMIT)
        } else {
            (args.min_replicas, reasons::TOO_FEW_REPLICAS, TOO_FEW)
        };
        if desired < min_allowed {
            return (min_allowed, reason, message, Some(limit));
        }
        return (
            desired,
            reasons::DESIRED_WITHIN_RANGE,
            WITHIN_RANGE,
            Some(limit),
        );
    }
    (desired, reasons::DESIRED_WITHIN_RANGE, WITHIN_RANGE, None)
}

/// `getReplicasChangePerPeriod`: the change of events strictly inside the period.
fn change_in_period(
    history: &History,
    direction: Direction,
    period_seconds: i32,
    now: Timestamp,
) -> i32 {
    let cut = cutoff(now, i64::from(period_seconds));
    history
        .events(direction)
        .filter(|e| e.time > cut)
        .fold(0i32, |acc, e| acc.wrapping_add(e.replica_change))
}

fn period_start(c: i32, history: &History, p: &HpaScalingPolicy, now: Timestamp) -> i32 {
    let added = change_in_period(history, Direction::Up, p.period_seconds, now);
    let removed = change_in_period(history, Direction::Down, p.period_seconds, now);
    c.wrapping_sub(added).wrapping_add(removed)
}

/// `calculateScaleUpLimitWithScalingRules`.
pub fn scale_up_limit(c: i32, history: &History, rules: &ScalingRules, now: Timestamp) -> i32 {
    let use_min = match rules.select_policy.as_str() {
        select_policy::DISABLED => return c,
        select_policy::MIN => true,
        _ => false,
    };
    let mut result = if use_min { i32::MAX } else { i32::MIN };
    // `proposed` keeps its value across policies, as upstream (an unknown policy type
    // re-uses the previous proposal).
    let mut proposed: i32 = 0;
    for p in &rules.policies {
        let start = period_start(c, history, p, now);
        match p.type_.as_str() {
            policy_type::PODS => proposed = start.wrapping_add(p.value),
            policy_type::PERCENT => {
                proposed = (f64::from(start) * (1.0 + f64::from(p.value) / 100.0)).ceil() as i32;
            }
            _ => {}
        }
        result = if use_min {
            result.min(proposed)
        } else {
            result.max(proposed)
        };
    }
    result
}

/// `calculateScaleDownLimitWithBehaviors`.
pub fn scale_down_limit(c: i32, history: &History, rules: &ScalingRules, now: Timestamp) -> i32 {
    let use_max = match rules.select_policy.as_str() {
        select_policy::DISABLED => return c,
        select_policy::MIN => true,
        _ => false,
    };
    let mut result = if use_max { i32::MIN } else { i32::MAX };
    let mut proposed: i32 = 0;
    for p in &rules.policies {
        let start = period_start(c, history, p, now);
        match p.type_.as_str() {
            policy_type::PODS => proposed = start.wrapping_sub(p.value),
            policy_type::PERCENT => {
                // Truncation toward zero, as Go's int32(float64) conversion.
                proposed = (f64::from(start) * (1.0 - f64::from(p.value) / 100.0)) as i32;
            }
            _ => {}
        }
        result = if use_max {
            result.max(proposed)
        } else {
            result.min(proposed)
        };
    }
    result
}

/// `storeScaleEvent` (only called when `behavior` is set): mark events older than the
/// direction's longest policy period outdated, overwrite the last outdated one or append.
pub fn store_scale_event(b: &Behavior, history: &mut History, prev: i32, new: i32, now: Timestamp) {
    let (direction, change, rules) = if new > prev {
        (Direction::Up, new.wrapping_sub(prev), &b.scale_up)
    } else {
        (Direction::Down, prev.wrapping_sub(new), &b.scale_down)
    };
    let longest = rules
        .policies
        .iter()
        .map(|p| p.period_seconds)
        .fold(0, i32::max);
    let cut = cutoff(now, i64::from(longest));
    let slot = history
        .scale_events
        .iter()
        .enumerate()
        .filter(|(_, e)| e.direction == direction && e.time < cut)
        .map(|(i, _)| i)
        .next_back();
    let event = ScaleEvent {
        time: now,
        replica_change: change,
        direction,
    };
    match slot {
        Some(i) => history.scale_events[i] = event,
        None => history.scale_events.push(event),
    }
}
