//! The decision told to a person: each metric's reading against its target and its
//! proposal, then which rule (tolerance, readiness, missing pods, stabilization window,
//! policy, bounds) shaped the final count, in order. This is `podscale explain`'s
//! default output.
use std::fmt::Write as _;

use jiff::{SignedDuration, Timestamp};

use crate::api::MetricValueStatus;
use crate::calculator::{Detail, Rule};
use crate::conditions::{EventType, reasons};
use crate::defaults;
use crate::history::Recommendation;
use crate::metrics::MetricEvaluation;
use crate::normalize::Normalized;
use crate::reconcile::Path;
use crate::scenario::{Evaluation, Scenario, Stage};

/// Renders an evaluation as text.
pub fn render(s: &Scenario, e: &Evaluation) -> String {
    let mut out = String::new();
    let hpa = &s.hpa;
    let name = format!(
        "{}/{}",
        hpa.metadata.namespace.as_deref().unwrap_or("default"),
        hpa.metadata.name.as_deref().unwrap_or("(unnamed)")
    );
    let target = &hpa.spec.scale_target_ref;
    let stage = match s.stage {
        Stage::Reconcile => "reconcile",
        Stage::ReplicaCalculation => "replica calculation",
        Stage::Normalization => "normalization",
        Stage::Stabilization => "stabilization",
    };
    let id =
        s.id.as_deref()
            .map(|i| format!(" [{i}]"))
            .unwrap_or_default();
    let _ = writeln!(
        out,
        "HorizontalPodAutoscaler {name}{id} — {stage} at {}",
        s.now
    );
    // A manifest without `scaleTargetRef` (or with an empty kind or name) would be
    // refused by the API server; say so instead of printing "target /".
    let target_text = if target.kind.is_empty() || target.name.is_empty() {
        let missing = match (target.kind.is_empty(), target.name.is_empty()) {
            (true, true) => "spec.scaleTargetRef is missing",
            (true, false) => "spec.scaleTargetRef.kind is missing",
            _ => "spec.scaleTargetRef.name is missing",
        };
        format!("({missing}: the API server would reject this autoscaler)")
    } else {
        format!("{}/{}", target.kind, target.name)
    };
    let _ = writeln!(
        out,
        "  target {target_text}: {} replicas now (min {}, max {}){}",
        s.current_replicas,
        defaults::min_replicas(hpa),
        hpa.spec.max_replicas,
        if hpa.spec.behavior.is_some() {
            ", with behavior"
        } else {
            ", legacy rules (no behavior)"
        }
    );

    if let Some(d) = &e.decision {
        match d.path {
            Path::ScalingDisabled => {
                let _ = writeln!(
                    out,
                    "\nThe target has 0 replicas and minReplicas is {}: autoscaling is disabled, metrics are not read.",
                    defaults::min_replicas(hpa)
                );
            }
            Path::AboveMax | Path::BelowMin => {
                let _ = writeln!(
                    out,
                    "\n{}: set to {} without reading metrics (no stabilization or rate limit applies).",
                    d.reason, d.desired_replicas
                );
            }
            _ => {}
        }
    }

    if let Some(metrics) = &e.metrics {
        let _ = writeln!(out, "\nMetrics");
        if metrics.is_empty()
            && let Some(err) = &e.output.error
        {
            let _ = writeln!(out, "  not evaluated: {err}");
        }
        for (i, m) in metrics.iter().enumerate() {
            render_metric(&mut out, i, m, s.current_replicas);
        }
    }

    match &e.output.recommendation {
        Some(r) if e.metrics.is_some() => {
            let from = e
                .decision
                .as_ref()
                .map(|d| d.reason.clone())
                .filter(|r| !r.is_empty())
                .map(|r| format!(" ({r})"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "\nRecommendation: {r} replicas, the largest proposal{from}"
            );
        }
        _ => {}
    }
    if let Some(err) = &e.output.error
        && e.metrics.as_ref().is_some_and(|m| !m.is_empty())
    {
        if e.output.recommendation.is_some() {
            let _ = writeln!(
                out,
                "\nSome metrics failed, but the valid ones propose no scale-down, so the decision uses them; the controller still returns the error and retries with backoff, as kube-controller-manager does:\n  {err}"
            );
        } else {
            let _ = writeln!(
                out,
                "\nThe metric stage failed, so the scale is left alone (a metric that cannot be read never causes a scale-down):\n  {err}"
            );
        }
    }

    if let Some(n) = &e.normalized {
        render_normalization(&mut out, s, n);
    } else if s.stage == Stage::Stabilization
        && let Some(st) = e.output.stabilized_recommendation
    {
        let input = s
            .input
            .map_or(String::from("?"), |i| i.recommendation.to_string());
        let _ = writeln!(out, "\nStabilization: raw recommendation {input} → {st}");
    }

    if let Some(d) = e.output.desired_replicas {
        let verdict = match &e.decision {
            Some(dec) if dec.rescale => format!(
                "scale {}/{} from {} to {d} ({})",
                target.kind, target.name, s.current_replicas, dec.reason
            ),
            Some(_) => format!("keep {d} replicas"),
            None => format!("{d} replicas"),
        };
        let _ = writeln!(out, "\nDecision: {verdict}");
    }

    if let Some(st) = &e.output.status
        && let Some(conds) = &st.conditions
        && !conds.is_empty()
    {
        let _ = writeln!(out, "\nConditions");
        for c in conds {
            let _ = writeln!(
                out,
                "  {:<15} {:<6} {:<26} {}",
                c.type_, c.status, c.reason, c.message
            );
        }
    }
    if !e.output.events.is_empty() {
        let _ = writeln!(out, "\nEvents");
        for ev in &e.output.events {
            let t = match ev.type_ {
                EventType::Normal => "Normal",
                EventType::Warning => "Warning",
            };
            let _ = writeln!(out, "  {t:<8} {:<30} {}", ev.reason, ev.message);
        }
    }
    out
}

/// Bytes in binary units for a person (`5.6Gi`), for memory readings.
fn human_bytes(milli: i64) -> Option<String> {
    let bytes = milli as f64 / 1000.0;
    let (unit, div) = [
        ("Ti", 2f64.powi(40)),
        ("Gi", 2f64.powi(30)),
        ("Mi", 2f64.powi(20)),
    ]
    .into_iter()
    .find(|(_, d)| bytes >= *d)?;
    Some(format!("{:.1}{unit}", bytes / div))
}

fn current_text(c: &MetricValueStatus, memory: bool) -> String {
    let mut parts = Vec::new();
    if let Some(u) = c.average_utilization {
        parts.push(format!("{u}% of request"));
    }
    if let Some(v) = &c.average_value {
        match human_bytes(v.milli_value()).filter(|_| memory) {
            Some(h) => parts.push(format!("{h} average")),
            None => parts.push(format!("{v} average")),
        }
    }
    if let Some(v) = &c.value {
        parts.push(format!("{v} total"));
    }
    parts.join(", ")
}

fn render_metric(out: &mut String, i: usize, m: &MetricEvaluation, current: i32) {
    let title = m
        .name
        .clone()
        .unwrap_or_else(|| format!("{} metric", m.type_));
    let _ = writeln!(out, "  {}. {title}", i + 1);
    if let Some(err) = &m.error {
        let _ = writeln!(out, "     FAILED ({}): {err}", m.error_reason.unwrap_or(""));
        return;
    }
    let memory = title.starts_with("memory ");
    let reading = m
        .status
        .current()
        .map(|c| current_text(c, memory))
        .unwrap_or_default();
    let target = m.target.clone().unwrap_or_default();
    let _ = writeln!(out, "     reading {reading}; target {target}");
    let Some(d) = &m.detail else { return };
    if let Some(g) = &d.groups {
        let _ = writeln!(
            out,
            "     pods: {} ready, {} unready, {} missing a sample, {} ignored (deleted or Failed)",
            g.ready_count,
            g.unready.len(),
            g.missing.len(),
            g.ignored.len()
        );
    }
    for a in &d.assumed {
        let _ = writeln!(out, "     {a}");
    }
    let _ = writeln!(
        out,
        "     usage ratio {:.3}; {}",
        d.usage_ratio,
        rule_text(d, current)
    );
    if let Some(c) = m.status.current()
        && m.type_ != "Resource"
        && m.type_ != "ContainerResource"
        && [&c.average_value, &c.value]
            .into_iter()
            .flatten()
            .any(|q| q.milli_value() == 0)
    {
        let _ = writeln!(
            out,
            "     note: the reading is 0; metrics adapters (and podscale metrics) truncate values to milli-units, so anything below 0.001 reads as 0"
        );
    }
    if let Some(p) = m.proposal {
        if p < 0 || d.usage_ratio.is_nan() || d.usage_ratio < 0.0 {
            let _ = writeln!(
                out,
                "     warning: the arithmetic overflowed (a quantity or sum beyond ±9.2e15 milli-units); kube-controller-manager wraps or saturates exactly as here, so the proposal is meaningless: check the metric's values and target"
            );
        }
        let _ = writeln!(out, "     proposal: {p} replicas");
    }
}

fn rule_text(d: &Detail, current: i32) -> String {
    let new = d.new_usage_ratio.unwrap_or(d.usage_ratio);
    match d.rule {
        Rule::WithinTolerance => format!("within tolerance, keep {current}"),
        Rule::Scaled => match d.ready_pods {
            Some(n) => format!("ceil({:.3} × {n} ready pods)", d.usage_ratio),
            None => format!(
                "ceil({:.3} × {} ready pods)",
                d.usage_ratio,
                d.groups.as_ref().map_or(0, |g| g.ready_count)
            ),
        },
        Rule::FilledWithinTolerance => {
            format!(
                "with those assumptions the ratio is {new:.3}: within tolerance, keep {current}"
            )
        }
        Rule::DirectionFlipped => format!(
            "with those assumptions the ratio is {new:.3}, which reverses the direction: keep {current}"
        ),
        Rule::RecountFlipped => format!(
            "with those assumptions ceil({new:.3} × {}) would move against the ratio: keep {current}",
            d.samples
        ),
        Rule::FilledScaled => format!(
            "with those assumptions: ceil({new:.3} × {} pods)",
            d.samples
        ),
        Rule::PerPodScaled => "outside tolerance: ceil(total / per-pod target)".into(),
        Rule::FromZero => "scaling from zero: ceil(ratio), no tolerance".into(),
    }
}

fn render_normalization(out: &mut String, s: &Scenario, n: &Normalized) {
    let _ = writeln!(out, "\nNormalization");
    let recs: Vec<Recommendation> = match s.history.as_ref().and_then(|h| h.recommendations.clone())
    {
        Some(r) => r,
        // A never-seen autoscaler starts with {currentReplicas, now} (recordInitialRecommendation).
        None if s.stage == Stage::Reconcile => {
            vec![Recommendation {
                time: s.now,
                replicas: s.current_replicas,
            }]
        }
        None => Vec::new(),
    };
    // Windows are strict in both paths: an entry at exactly the cutoff is outside
    // (`normalize::stabilize`).
    let in_window = |w: i64| -> Vec<i32> {
        let cut = s
            .now
            .checked_sub(SignedDuration::from_secs(w))
            .unwrap_or(Timestamp::MIN);
        recs.iter()
            .filter(|r| r.time > cut)
            .map(|r| r.replicas)
            .collect()
    };
    let list = |v: &[i32]| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    match defaults::behavior(&s.hpa, &s.controller) {
        None => {
            let w = s.controller.downscale_stabilization_window_seconds;
            let _ = writeln!(
                out,
                "  stabilization: scale-down only, over the last {w}s (recommendations in window: {}) → {}",
                list(&in_window(w)),
                n.stabilized
            );
        }
        Some(b) => {
            let up = i64::from(b.scale_up.stabilization_window_seconds);
            let down = i64::from(b.scale_down.stabilization_window_seconds);
            let _ = writeln!(
                out,
                "  stabilization: scale up no further than the lowest recommendation of the last {up}s ({}), down no further than the highest of the last {down}s ({}) → {}",
                list(&in_window(up)),
                list(&in_window(down)),
                n.stabilized
            );
        }
    }
    if n.able_to_scale.reason != reasons::READY_FOR_NEW_SCALE {
        let _ = writeln!(
            out,
            "    {}: {}",
            n.able_to_scale.reason, n.able_to_scale.message
        );
    }
    let limit = match (n.limit, s.hpa.spec.behavior.is_none()) {
        (Some(l), true) => format!(
            "; legacy scale-up limit max({}×{}, {}) = {l}",
            s.controller.legacy_scale_up_limit_factor,
            s.current_replicas,
            s.controller.legacy_scale_up_limit_minimum
        ),
        (Some(l), false) if n.stabilized > s.current_replicas => {
            format!("; scale-up policies allow at most {l}")
        }
        (Some(l), false) if n.stabilized < s.current_replicas => {
            format!("; scale-down policies allow no fewer than {l}")
        }
        _ => String::new(),
    };
    let _ = writeln!(
        out,
        "  limits: [{}, {}]{limit} → {} ({}: {})",
        defaults::min_replicas(&s.hpa),
        s.hpa.spec.max_replicas,
        n.desired,
        n.scaling_limited.reason,
        n.scaling_limited.message
    );
}
