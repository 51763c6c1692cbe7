//! The replica calculator: one metric's proposal from pods and samples
//! (`pkg/controller/podautoscaler/replica_calculator.go` and `metrics/utilization.go`).
//!
//! Everything here is integer milli-unit arithmetic until the usage ratio, which is a
//! float64 division of integers, as upstream. Integer overflow wraps where Go's int64
//! arithmetic wraps, and saturates where upstream added explicit guards.
//!
//! Out-of-range float → integer conversions (`int32(math.Ceil(x))`, `int64(x)` with `x`
//! beyond the type's range or NaN) are implementation-defined in Go: on amd64 they give
//! the type's minimum value (`0x8000…`), on arm64 they saturate. podscale saturates (Rust's
//! `as`), i.e. it matches kube-controller-manager on arm64; on amd64 such a decision can
//! differ, but only for quantities beyond ±9.2e15 milli-units, where upstream's answer is
//! meaningless anyway (`explain` warns when a proposal comes out of overflowed arithmetic).
use std::collections::HashMap;

use jiff::{SignedDuration, Timestamp};

use crate::defaults::Tolerances;
use crate::observed::Pod;

/// Measures samples: the usage ratio plus what the status reports.
type Measure<'a, M> = dyn FnMut(&PodSamples) -> Result<(f64, M), String> + 'a;

/// One pod's sample (`metricsclient.PodMetric`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    pub value: i64,
    pub timestamp: Option<Timestamp>,
    /// Nanoseconds.
    pub window: i64,
}

/// One metric's samples (`metricsclient.PodMetricsInfo`): a slot per listed pod, in
/// the calculator's pod order, plus the samples of pods the selector did not list
/// (superfluous metrics, which upstream's name-keyed map also holds). Indexing by pod
/// rather than by name keeps a decision free of per-pod string allocations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodSamples {
    pub by_pod: Vec<Option<Sample>>,
    pub superfluous: Vec<(String, Sample)>,
}

impl PodSamples {
    /// No samples, for `pods` listed pods.
    pub fn new(pods: usize) -> Self {
        Self {
            by_pod: vec![None; pods],
            superfluous: Vec::new(),
        }
    }

    /// Number of samples (`len(metrics)`).
    pub fn len(&self) -> usize {
        self.by_pod.iter().flatten().count() + self.superfluous.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every sample, listed pods first.
    pub fn values(&self) -> impl Iterator<Item = &Sample> {
        self.by_pod
            .iter()
            .flatten()
            .chain(self.superfluous.iter().map(|(_, s)| s))
    }

    /// Records the sample of the pod called `name`; a later sample for the same pod
    /// replaces an earlier one, as in upstream's map.
    pub fn insert(&mut self, index: &PodIndex<'_>, name: &str, sample: Sample) {
        if let Some(&i) = index.get(name) {
            self.by_pod[i] = Some(sample);
        } else if let Some(slot) = self.superfluous.iter_mut().find(|(n, _)| n == name) {
            slot.1 = sample;
        } else {
            self.superfluous.push((name.to_string(), sample));
        }
    }
}

/// Pod names to their index in the calculator's pod list (first occurrence wins).
pub type PodIndex<'a> = HashMap<&'a str, usize>;

/// Builds the [`PodIndex`] of a pod list.
pub fn pod_index<'a>(pods: &[&'a Pod]) -> PodIndex<'a> {
    let mut index = HashMap::with_capacity(pods.len());
    for (i, p) in pods.iter().enumerate() {
        index.entry(p.name.as_str()).or_insert(i);
    }
    index
}

/// How the pods fell into groups (`groupPods`), as indexes into the pod list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodGroups {
    pub ready_count: usize,
    pub unready: Vec<usize>,
    pub missing: Vec<usize>,
    pub ignored: Vec<usize>,
}

/// Which rule produced a proposal: what `explain` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// The ratio was within tolerance: keep the current count.
    WithinTolerance,
    /// `ceil(ratio × ready pods)`.
    Scaled,
    /// Missing/unready pods were filled in, and the new ratio is within tolerance.
    FilledWithinTolerance,
    /// Filling in missing/unready pods flipped the scale direction: keep the current count.
    DirectionFlipped,
    /// The filled-in count would move against the ratio's direction: keep the current count.
    RecountFlipped,
    /// `ceil(newRatio × samples)` after filling in missing/unready pods.
    FilledScaled,
    /// `ceil(usage / target)` for per-pod object/external targets.
    PerPodScaled,
    /// Scale from zero: `ceil(ratio)`, no tolerance.
    FromZero,
}

/// The working of one metric's proposal.
#[derive(Debug, Clone, PartialEq)]
pub struct Detail {
    pub rule: Rule,
    pub usage_ratio: f64,
    pub new_usage_ratio: Option<f64>,
    pub groups: Option<PodGroups>,
    /// Samples counted in the final step (including filled-in and superfluous ones).
    pub samples: usize,
    /// Ready pods counted (value targets: Running and Ready pods).
    pub ready_pods: Option<i64>,
    /// What was assumed for pods without a usable sample, for a person.
    pub assumed: Vec<String>,
}

impl Detail {
    fn new(rule: Rule, usage_ratio: f64) -> Self {
        Self {
            rule,
            usage_ratio,
            new_usage_ratio: None,
            groups: None,
            samples: 0,
            ready_pods: None,
            assumed: Vec::new(),
        }
    }
}

/// Result of a utilization calculation.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceProposal {
    pub replicas: i32,
    pub utilization: i32,
    pub raw_average: i64,
    pub detail: Detail,
}

/// Result of a plain-value calculation.
#[derive(Debug, Clone, PartialEq)]
pub struct PlainProposal {
    pub replicas: i32,
    pub usage: i64,
    pub detail: Detail,
}

/// The inputs every calculation shares.
#[derive(Debug, Clone, Copy)]
pub struct ReplicaCalculator<'a> {
    pub pods: &'a [&'a Pod],
    /// `pods` by name, to place samples.
    pub index: &'a PodIndex<'a>,
    pub tolerances: Tolerances,
    pub now: Timestamp,
    pub cpu_initialization_period: SignedDuration,
    pub initial_readiness_delay: SignedDuration,
}

const NO_PODS: &str = "no pods returned by selector while calculating replica count";
const NO_READY_METRICS: &str = "did not receive metrics for targeted pods (pods might be unready)";

fn add(t: Timestamp, d: SignedDuration) -> Timestamp {
    t.checked_add(d).unwrap_or(if d.is_negative() {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    })
}

/// `int32(math.Ceil(x))`, saturating where Go would overflow.
pub fn ceil_i32(x: f64) -> i32 {
    // `as` saturates at the i32 bounds and maps NaN to 0.
    x.ceil() as i32
}

impl ReplicaCalculator<'_> {
    /// `groupPods`.
    pub fn group_pods(&self, samples: &PodSamples, resource: &str) -> PodGroups {
        let mut g = PodGroups::default();
        for (i, pod) in self.pods.iter().enumerate() {
            if pod.deletion_timestamp.is_some() || pod.phase == "Failed" {
                g.ignored.push(i);
                continue;
            }
            if pod.phase == "Pending" {
                g.unready.push(i);
                continue;
            }
            let Some(sample) = samples.by_pod.get(i).copied().flatten() else {
                g.missing.push(i);
                continue;
            };
            if resource == "cpu" {
                let unready = match (pod.ready, pod.start_time) {
                    (None, _) | (_, None) => true,
                    (Some(ready), Some(start)) => {
                        let transition = pod.ready_transition_time.unwrap_or(Timestamp::MIN);
                        if add(start, self.cpu_initialization_period) > self.now {
                            // Still initializing: distrust the sample unless the pod is
                            // ready and a full window was collected since it became ready.
                            let ts = sample.timestamp.unwrap_or(Timestamp::MIN);
                            !ready
                                || ts < add(transition, SignedDuration::from_nanos(sample.window))
                        } else {
                            // Initialized: ignore only a pod that never became ready.
                            !ready && add(start, self.initial_readiness_delay) > transition
                        }
                    }
                };
                if unready {
                    g.unready.push(i);
                    continue;
                }
            }
            g.ready_count += 1;
        }
        g
    }

    /// `calculateRequests`: each listed pod's request for the resource, in milli-units.
    pub fn requests(&self, resource: &str, container: &str) -> Result<Vec<i64>, String> {
        self.pods
            .iter()
            .map(|pod| pod_request(pod, resource, container))
            .collect()
    }

    /// `GetResourceReplicas`: a utilization target.
    pub fn resource_utilization(
        &self,
        current_replicas: i32,
        target_utilization: i32,
        resource: &str,
        container: &str,
        samples: PodSamples,
    ) -> Result<ResourceProposal, String> {
        // Requests are computed only once samples are known to remain, so a pod without
        // metrics reports "did not receive metrics" before "missing request", as upstream.
        let mut requests: Option<Vec<i64>> = None;
        let mut measure = |samples: &PodSamples| -> Result<(f64, (i32, i64)), String> {
            let requests = match &requests {
                Some(r) => r,
                None => requests.insert(self.requests(resource, container)?),
            };
            let (ratio, utilization, raw) =
                utilization_ratio(samples, requests, target_utilization)?;
            Ok((ratio, (utilization, raw)))
        };
        // kube-controller-manager assumes a missing pod runs at 100 % of its request on a
        // scale-down (or at the target, if the target is above 100 %), and at 0 on a
        // scale-up; at a ratio of exactly 1 nothing is filled in.
        let fallback = i64::from(target_utilization.max(100));
        let fill = |pod: usize, ratio: f64| -> i64 {
            if ratio < 1.0 {
                // Requests were computed (and succeeded) before any pod is filled in.
                let request = pod_request(self.pods[pod], resource, container).unwrap_or(0);
                request.wrapping_mul(fallback) / 100
            } else {
                0
            }
        };
        let (replicas, (utilization, raw_average), detail) = self.propose(
            current_replicas,
            resource,
            samples,
            &mut measure,
            fill,
            "100% of their request (or the target, if above 100%)",
        )?;
        Ok(ResourceProposal {
            replicas,
            utilization,
            raw_average,
            detail,
        })
    }

    /// `calcPlainMetricReplicas`: an average-value target over pods (Pods metrics and
    /// Resource `AverageValue` targets). `resource` is the resource name or "".
    pub fn plain(
        &self,
        current_replicas: i32,
        target_usage: i64,
        resource: &str,
        samples: PodSamples,
    ) -> Result<PlainProposal, String> {
        let mut measure = |samples: &PodSamples| -> Result<(f64, i64), String> {
            Ok(usage_ratio(samples, target_usage))
        };
        // Missing pods count as exactly the target on a scale-down and 0 on a scale-up;
        // at a ratio of exactly 1 nothing is filled in (upstream
        // `TestPlainMetricReplicaCalcMissingMetricsNoChangeEq`).
        let fill = |_: usize, ratio: f64| if ratio < 1.0 { target_usage } else { 0 };
        let (replicas, usage, detail) = self.propose(
            current_replicas,
            resource,
            samples,
            &mut measure,
            fill,
            "exactly the target",
        )?;
        Ok(PlainProposal {
            replicas,
            usage,
            detail,
        })
    }

    /// The shape shared by `GetResourceReplicas` and `calcPlainMetricReplicas`: classify
    /// pods, drop ignored and unready samples, take the fast path when nothing is
    /// missing or unready, otherwise fill in assumed samples conservatively and re-check.
    /// `measure` returns the usage ratio plus what the status reports (always the
    /// measured values, before filling in); `fill` gives a missing pod's assumed sample.
    fn propose<M>(
        &self,
        current_replicas: i32,
        resource: &str,
        mut samples: PodSamples,
        measure: &mut Measure<'_, M>,
        fill: impl Fn(usize, f64) -> i64,
        scale_down_fill: &str,
    ) -> Result<(i32, M, Detail), String> {
        if self.pods.is_empty() {
            return Err(NO_PODS.into());
        }
        let groups = self.group_pods(&samples, resource);
        for &i in groups.ignored.iter().chain(&groups.unready) {
            samples.by_pod[i] = None;
        }
        if samples.is_empty() {
            return Err(NO_READY_METRICS.into());
        }
        let (ratio, measured) = measure(&samples)?;
        let scale_up_with_unready = !groups.unready.is_empty() && ratio > 1.0;
        let mut detail = Detail::new(Rule::WithinTolerance, ratio);
        detail.samples = samples.len();
        if !scale_up_with_unready && groups.missing.is_empty() {
            let replicas = if self.tolerances.is_within(ratio) {
                current_replicas
            } else {
                detail.rule = Rule::Scaled;
                ceil_i32(ratio * groups.ready_count as f64)
            };
            detail.groups = Some(groups);
            return Ok((replicas, measured, detail));
        }
        if ratio != 1.0 && !groups.missing.is_empty() {
            for &i in &groups.missing {
                samples.by_pod[i] = Some(filled(fill(i, ratio)));
            }
            let at = if ratio < 1.0 {
                scale_down_fill
            } else {
                "0 (scale-up)"
            };
            detail.assumed.push(format!(
                "{} pod(s) without a sample assumed at {at}",
                groups.missing.len()
            ));
        }
        if scale_up_with_unready {
            for &i in &groups.unready {
                samples.by_pod[i] = Some(filled(0));
            }
            detail.assumed.push(format!(
                "{} unready pod(s) assumed at 0 (scale-up)",
                groups.unready.len()
            ));
        }
        let (new_ratio, _) = measure(&samples)?;
        detail.new_usage_ratio = Some(new_ratio);
        detail.samples = samples.len();
        detail.groups = Some(groups);
        let replicas = self.conservative(
            current_replicas,
            ratio,
            new_ratio,
            samples.len(),
            &mut detail,
        );
        Ok((replicas, measured, detail))
    }

    /// Steps 11–14 of the conservative path.
    fn conservative(
        &self,
        current_replicas: i32,
        ratio: f64,
        new_ratio: f64,
        samples: usize,
        detail: &mut Detail,
    ) -> i32 {
        if self.tolerances.is_within(new_ratio) {
            detail.rule = Rule::FilledWithinTolerance;
            return current_replicas;
        }
        if (ratio < 1.0 && new_ratio > 1.0) || (ratio > 1.0 && new_ratio < 1.0) {
            detail.rule = Rule::DirectionFlipped;
            return current_replicas;
        }
        let new_replicas = ceil_i32(new_ratio * samples as f64);
        if (new_ratio < 1.0 && new_replicas > current_replicas)
            || (new_ratio > 1.0 && new_replicas < current_replicas)
        {
            detail.rule = Rule::RecountFlipped;
            return current_replicas;
        }
        detail.rule = Rule::FilledScaled;
        new_replicas
    }

    /// `getReadyPodsCount`: Running pods whose Ready condition is True.
    fn ready_pods_count(&self) -> Result<i64, String> {
        if self.pods.is_empty() {
            return Err(format!("unable to calculate ready pods: {NO_PODS}"));
        }
        Ok(self
            .pods
            .iter()
            .filter(|p| p.is_running_and_ready())
            .count() as i64)
    }

    /// `getUsageRatioReplicaCount`: the Value-target path of Object and External metrics.
    pub fn usage_ratio_replicas(
        &self,
        current_replicas: i32,
        ratio: f64,
    ) -> Result<(i32, Detail), String> {
        if current_replicas == 0 {
            // Scale from zero: no tolerance, no pod count.
            return Ok((saturating_ceil(ratio), Detail::new(Rule::FromZero, ratio)));
        }
        let mut detail = Detail::new(Rule::WithinTolerance, ratio);
        if self.tolerances.is_within(ratio) {
            return Ok((current_replicas, detail));
        }
        let ready = self.ready_pods_count()?;
        detail.rule = Rule::Scaled;
        detail.ready_pods = Some(ready);
        Ok((saturating_ceil(ratio * ready as f64), detail))
    }

    /// `GetObjectPerPodMetricReplicas` / `GetExternalPerPodMetricReplicas`: per-pod
    /// average targets over `statusReplicas`. Returns (replicas, status average, detail).
    pub fn per_pod(&self, status_replicas: i32, target: i64, usage: i64) -> (i32, i64, Detail) {
        let ratio = usage as f64 / (target as f64 * f64::from(status_replicas));
        let mut detail = Detail::new(Rule::WithinTolerance, ratio);
        let mut replicas = status_replicas;
        if !self.tolerances.is_within(ratio) {
            detail.rule = Rule::PerPodScaled;
            replicas = saturating_ceil(usage as f64 / target as f64);
        }
        let average = if usage as f64 >= i64::MAX as f64 {
            i64::MAX
        } else {
            (usage as f64 / f64::from(status_replicas)).ceil() as i64
        };
        (replicas, average, detail)
    }
}

/// `int32(math.Ceil(x))` with upstream's explicit guard at `MaxInt32`.
fn saturating_ceil(x: f64) -> i32 {
    let c = x.ceil();
    if c >= f64::from(i32::MAX) {
        i32::MAX
    } else {
        c as i32
    }
}

fn filled(value: i64) -> Sample {
    Sample {
        value,
        timestamp: None,
        window: 0,
    }
}

/// `GetResourceUtilizationRatio`: (ratio, utilization %, raw average), skipping samples
/// of pods with no request entry (superfluous metrics).
pub fn utilization_ratio(
    samples: &PodSamples,
    requests: &[i64],
    target_utilization: i32,
) -> Result<(f64, i32, i64), String> {
    let mut total: i64 = 0;
    let mut requests_total: i64 = 0;
    let mut n: i64 = 0;
    // Superfluous samples have no request entry and are skipped.
    for (s, request) in samples.by_pod.iter().zip(requests) {
        let Some(s) = s else { continue };
        total = total.wrapping_add(s.value);
        requests_total = requests_total.wrapping_add(*request);
        n += 1;
    }
    if requests_total == 0 {
        return Err("no metrics returned matched known pods".into());
    }
    // Truncating integer division stored as int32, exactly as upstream.
    let utilization = total.wrapping_mul(100).wrapping_div(requests_total) as i32;
    let ratio = f64::from(utilization) / f64::from(target_utilization);
    Ok((ratio, utilization, total.wrapping_div(n)))
}

/// `GetMetricUsageRatio`: (ratio, average) over every sample, superfluous ones included.
pub fn usage_ratio(samples: &PodSamples, target_usage: i64) -> (f64, i64) {
    let total = samples
        .values()
        .fold(0i64, |acc, s| acc.wrapping_add(s.value));
    let n = samples.len().max(1) as i64;
    let usage = total.wrapping_div(n);
    (usage as f64 / target_usage as f64, usage)
}

/// The request of one pod (`calculatePodRequestsFromContainers` / pod-level requests).
fn pod_request(pod: &Pod, resource: &str, container: &str) -> Result<i64, String> {
    if container.is_empty()
        && let Some(requests) = pod.resources.as_ref().and_then(|r| r.requests.as_ref())
    {
        return requests
            .get(resource)
            .map(|q| q.milli_value())
            .ok_or_else(|| {
                format!(
                    "missing pod-level request for {resource} in Pod {}",
                    pod.name
                )
            });
    }
    let sidecars = pod
        .init_containers
        .iter()
        .filter(|c| c.restart_policy.as_deref() == Some("Always"));
    let mut sum: i64 = 0;
    for c in pod.containers.iter().chain(sidecars) {
        if !container.is_empty() && c.name != container {
            continue;
        }
        let request = c
            .resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
            .and_then(|r| r.get(resource))
            .ok_or_else(|| {
                format!(
                    "missing request for {resource} in container {} of Pod {}",
                    c.name, pod.name
                )
            })?;
        sum = sum.wrapping_add(request.milli_value());
        if !container.is_empty() {
            return Ok(sum);
        }
    }
    if !container.is_empty() {
        return Err(format!(
            "container {container} not found in Pod {}",
            pod.name
        ));
    }
    Ok(sum)
}
