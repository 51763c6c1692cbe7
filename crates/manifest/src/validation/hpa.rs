//! The HorizontalPodAutoscaler rules, function by function as upstream has them
//! (kubernetes/kubernetes `pkg/apis/autoscaling/validation/validation.go`).

use std::cmp::Ordering;

use serde_json::{Map, Value};

use super::meta::{validate_label_selector, validate_object_meta};
use super::names::{
    is_dns1123_label, is_valid_path_segment_name, validate_container_resource_name,
};
use super::{Ctx, member};
use crate::diagnostic::FieldError;
use crate::position::{child, index};

/// The only `apiVersion` validated.
const API_VERSION: &str = "autoscaling/v2";
/// The only `kind` validated.
const KIND: &str = "HorizontalPodAutoscaler";
/// `MaxPeriodSeconds`.
const MAX_PERIOD_SECONDS: i32 = 1800;
/// `MaxStabilizationWindowSeconds`.
const MAX_STABILIZATION_WINDOW_SECONDS: i32 = 3600;
/// `validMetricSourceTypesList`: sorted, as `sets.List()` returns it.
const METRIC_SOURCE_TYPES: [&str; 5] = [
    "ContainerResource",
    "External",
    "Object",
    "Pods",
    "Resource",
];
/// `validSelectPolicyTypesList`, sorted.
const SELECT_POLICIES: [&str; 3] = ["Disabled", "Max", "Min"];
/// `validPolicyTypesList`, sorted.
const POLICY_TYPES: [&str; 2] = ["Percent", "Pods"];
/// The metric target types `validateMetricTarget` accepts.
const TARGET_TYPES: [&str; 3] = ["Utilization", "Value", "AverageValue"];

/// `ValidateHorizontalPodAutoscaler`: type and object metadata, then the spec.
pub(super) fn validate_horizontal_pod_autoscaler(cx: &mut Ctx<'_>, root: &Map<String, Value>) {
    cx.unknown_fields(
        root,
        "",
        &["apiVersion", "kind", "metadata", "spec", "status"],
    );
    let is_v2_hpa = validate_type_meta(cx, root);
    validate_object_meta(cx, member(Some(root), "metadata"), "metadata");
    // Another version or kind has another schema: checking its spec against this
    // one would only bury the real problem.
    if is_v2_hpa {
        validate_horizontal_pod_autoscaler_spec(cx, member(Some(root), "spec"), "spec");
    }
}

/// `apiVersion` and `kind` (checked by the API server's decoder, not by validation.go).
/// Returns whether the document is (or may be) an `autoscaling/v2` HPA.
fn validate_type_meta(cx: &mut Ctx<'_>, root: &Map<String, Value>) -> bool {
    let mut ok = true;
    for (field, wanted) in [("apiVersion", API_VERSION), ("kind", KIND)] {
        let raw = member(Some(root), field);
        match cx.string(raw, field) {
            Some(found) if found == wanted => {}
            Some(found) if !found.is_empty() => {
                cx.push(FieldError::not_supported(
                    field,
                    &Value::from(found),
                    &[wanted],
                ));
                ok = false;
            }
            None if raw.is_some() => ok = false, // Wrong type, already reported.
            _ => cx.push(FieldError::required(field, "")),
        }
    }
    ok
}

/// `validateHorizontalPodAutoscalerSpec`.
fn validate_horizontal_pod_autoscaler_spec(cx: &mut Ctx<'_>, value: Option<&Value>, path: &str) {
    let spec = cx.object(value, path);
    if let Some(spec) = spec {
        cx.unknown_fields(
            spec,
            path,
            &[
                "scaleTargetRef",
                "minReplicas",
                "maxReplicas",
                "metrics",
                "behavior",
            ],
        );
    }

    // The lower bound is 0 only with the HPAScaleToZero feature gate.
    let min_path = child(path, "minReplicas");
    let min_replicas = cx.int32(member(spec, "minReplicas"), &min_path);
    let lower_bound = i32::from(!cx.options.scale_to_zero);
    if let Some(min) = min_replicas
        && min < lower_bound
    {
        let mut detail = format!("must be greater than or equal to {lower_bound}");
        if min == 0 {
            detail.push_str(" (0 is allowed only with the HPAScaleToZero feature gate)");
        }
        cx.push(FieldError::invalid(&min_path, &Value::from(min), &detail));
    }

    let max_path = child(path, "maxReplicas");
    let max_value = member(spec, "maxReplicas");
    let max_replicas = cx.int32(max_value, &max_path);
    match max_replicas {
        None if max_value.is_none() => cx.push(FieldError::required(&max_path, "")),
        Some(max) if max < 1 => {
            cx.push(FieldError::invalid(
                &max_path,
                &Value::from(max),
                "must be greater than 0",
            ));
        }
        _ => {}
    }
    if let (Some(min), Some(max)) = (min_replicas, max_replicas)
        && max < min
    {
        cx.push(FieldError::invalid(
            &max_path,
            &Value::from(max),
            "must be greater than or equal to `minReplicas`",
        ));
    }

    validate_cross_version_object_reference(
        cx,
        member(spec, "scaleTargetRef"),
        &child(path, "scaleTargetRef"),
        true,
    );
    validate_metrics(
        cx,
        member(spec, "metrics"),
        &child(path, "metrics"),
        min_replicas,
    );
    validate_behavior(cx, member(spec, "behavior"), &child(path, "behavior"));
}

/// `ValidateCrossVersionObjectReference`: `kind` and `name` set and usable as path
/// segments. For the scale target, podscale also wants an `apiVersion` with a group.
fn validate_cross_version_object_reference(
    cx: &mut Ctx<'_>,
    value: Option<&Value>,
    path: &str,
    scale_target: bool,
) {
    let reference = cx.object(value, path);
    if let Some(reference) = reference {
        cx.unknown_fields(reference, path, &["apiVersion", "kind", "name"]);
    }
    let mut kind = None;
    for field in ["kind", "name"] {
        let field_path = child(path, field);
        let raw = member(reference, field);
        match cx.string(raw, &field_path) {
            Some(text) if !text.is_empty() => {
                for msg in is_valid_path_segment_name(text) {
                    cx.push(FieldError::invalid(&field_path, &Value::from(text), &msg));
                }
                if field == "kind" {
                    kind = Some(text);
                }
            }
            None if raw.is_some() => {}
            _ => cx.push(FieldError::required(&field_path, "")),
        }
    }
    let version_path = child(path, "apiVersion");
    let version = cx.string(member(reference, "apiVersion"), &version_path);
    if !(scale_target && cx.options.podscale_checks) || kind == Some("ReplicationController") {
        return;
    }
    match version {
        None if member(reference, "apiVersion").is_some() => {}
        None | Some("") => cx.push(FieldError::required(
            &version_path,
            "must specify the target's API group and version, such as apps/v1",
        )),
        Some(version) if version.matches('/').count() != 1 || version.starts_with('/') => {
            cx.push(FieldError::invalid(
                &version_path,
                &Value::from(version),
                "must be an API group and version, such as apps/v1",
            ));
        }
        Some(_) => {}
    }
}

/// `validateMetrics`: each metric, then the scale-to-zero rule.
fn validate_metrics(
    cx: &mut Ctx<'_>,
    value: Option<&Value>,
    path: &str,
    min_replicas: Option<i32>,
) {
    let mut has_object_or_external = false;
    if let Some(metrics) = cx.array(value, path) {
        for (i, metric) in metrics.iter().enumerate() {
            let source = validate_metric_spec(cx, metric, &index(path, i));
            has_object_or_external |= matches!(source, Some("Object" | "External"));
        }
    }
    if min_replicas == Some(0) && !has_object_or_external {
        cx.push(FieldError::forbidden(
            path,
            "must specify at least one Object or External metric to support scaling to zero replicas",
        ));
    }
}

/// Metric source types and the member each one is described in, in the order
/// `validateMetricSpec` looks at the members.
const SOURCES: [(&str, &str); 5] = [
    ("Object", "object"),
    ("External", "external"),
    ("Pods", "pods"),
    ("Resource", "resource"),
    ("ContainerResource", "containerResource"),
];

/// `validateMetricSpec`: a known `type`, the member for that type set, no other member
/// set. Only the first member present is validated further, as upstream does. Returns
/// the metric's `type`.
fn validate_metric_spec<'v>(cx: &mut Ctx<'_>, value: &'v Value, path: &str) -> Option<&'v str> {
    let metric = cx.object(Some(value), path);
    if metric.is_none() && !value.is_null() {
        return None; // Not an object: reported, nothing more to check.
    }
    if let Some(metric) = metric {
        let known: Vec<&str> = std::iter::once("type")
            .chain(SOURCES.iter().map(|s| s.1))
            .collect();
        cx.unknown_fields(metric, path, &known);
    }
    let type_path = child(path, "type");
    let raw_type = member(metric, "type");
    let source_type = cx.string(raw_type, &type_path);
    match source_type {
        Some(t) if METRIC_SOURCE_TYPES.contains(&t) => {}
        Some(t) if !t.is_empty() => {
            cx.push(FieldError::not_supported(
                &type_path,
                &Value::from(t),
                &METRIC_SOURCE_TYPES,
            ));
        }
        None if raw_type.is_some() => {}
        _ => cx.push(FieldError::required(
            &type_path,
            "must specify a metric source type",
        )),
    }

    let mut present = Vec::new();
    for (_, field) in SOURCES {
        let field_path = child(path, field);
        if let Some(source) = cx.object(member(metric, field), &field_path) {
            present.push((field, source, field_path));
        }
    }
    if let Some((field, source, field_path)) = present.first() {
        match *field {
            "object" => validate_object_source(cx, source, field_path),
            "external" => validate_external_source(cx, source, field_path),
            "pods" => validate_pods_source(cx, source, field_path),
            "resource" => validate_resource_source(cx, source, field_path),
            _ => validate_container_resource_source(cx, source, field_path),
        }
    }

    let expected = SOURCES
        .iter()
        .find(|(t, _)| Some(*t) == source_type)
        .map(|(_, f)| *f);
    if let Some(expected) = expected
        && !present.iter().any(|(field, ..)| *field == expected)
    {
        cx.push(FieldError::required(
            &child(path, expected),
            "must populate information for the given metric source",
        ));
    }
    if present.len() != 1 {
        for (field, _, field_path) in &present {
            if Some(*field) != expected {
                cx.push(FieldError::forbidden(
                    field_path,
                    "must populate the given metric source only",
                ));
            }
        }
    }
    source_type
}

/// `validateObjectSource`.
fn validate_object_source(cx: &mut Ctx<'_>, source: &Map<String, Value>, path: &str) {
    cx.unknown_fields(source, path, &["describedObject", "metric", "target"]);
    let source = Some(source);
    validate_cross_version_object_reference(
        cx,
        member(source, "describedObject"),
        &child(path, "describedObject"),
        false,
    );
    validate_metric_identifier(cx, member(source, "metric"), &child(path, "metric"));
    let target_path = child(path, "target");
    let target = validate_metric_target(cx, member(source, "target"), &target_path);
    if !target.value && !target.average_value {
        cx.push(FieldError::required(
            &child(&target_path, "averageValue"),
            "must set either a target value or averageValue",
        ));
    }
    check_target_suits_source(cx, &target, &target_path, &["AverageValue", "Value"]);
}

/// `validateExternalSource`.
fn validate_external_source(cx: &mut Ctx<'_>, source: &Map<String, Value>, path: &str) {
    cx.unknown_fields(source, path, &["metric", "target"]);
    let source = Some(source);
    validate_metric_identifier(cx, member(source, "metric"), &child(path, "metric"));
    let target_path = child(path, "target");
    let target = validate_metric_target(cx, member(source, "target"), &target_path);
    if !target.value && !target.average_value {
        cx.push(FieldError::required(
            &child(&target_path, "averageValue"),
            "must set either a target value for metric or a per-pod target",
        ));
    }
    if target.value && target.average_value {
        cx.push(FieldError::forbidden(
            &child(&target_path, "value"),
            "may not set both a target value for metric and a per-pod target",
        ));
    }
    check_target_suits_source(cx, &target, &target_path, &["AverageValue", "Value"]);
}

/// `validatePodsSource`.
fn validate_pods_source(cx: &mut Ctx<'_>, source: &Map<String, Value>, path: &str) {
    cx.unknown_fields(source, path, &["metric", "target"]);
    let source = Some(source);
    validate_metric_identifier(cx, member(source, "metric"), &child(path, "metric"));
    let target_path = child(path, "target");
    let target = validate_metric_target(cx, member(source, "target"), &target_path);
    if !target.average_value {
        cx.push(FieldError::required(
            &child(&target_path, "averageValue"),
            "must specify a positive target averageValue",
        ));
    }
    check_target_suits_source(cx, &target, &target_path, &["AverageValue"]);
}

/// `validateContainerResourceSource`.
fn validate_container_resource_source(cx: &mut Ctx<'_>, source: &Map<String, Value>, path: &str) {
    cx.unknown_fields(source, path, &["name", "container", "target"]);
    let source = Some(source);
    validate_resource_name(cx, source, path, true);

    let container_path = child(path, "container");
    let raw = member(source, "container");
    match cx.string(raw, &container_path) {
        Some(container) if !container.is_empty() => {
            // ValidateDNS1123Label.
            for msg in is_dns1123_label(container) {
                cx.push(FieldError::invalid(
                    &container_path,
                    &Value::from(container),
                    &msg,
                ));
            }
        }
        None if raw.is_some() => {}
        _ => cx.push(FieldError::required(
            &container_path,
            "must specify a container",
        )),
    }

    validate_resource_target(cx, source, path);
}

/// `validateResourceSource`.
fn validate_resource_source(cx: &mut Ctx<'_>, source: &Map<String, Value>, path: &str) {
    cx.unknown_fields(source, path, &["name", "target"]);
    let source = Some(source);
    let check_name = cx.options.podscale_checks;
    validate_resource_name(cx, source, path, check_name);
    validate_resource_target(cx, source, path);
}

/// The `name` of a (container) resource source: required, and with `check` a valid
/// container resource name (`ValidateContainerResourceName`).
fn validate_resource_name(
    cx: &mut Ctx<'_>,
    source: Option<&Map<String, Value>>,
    path: &str,
    check: bool,
) {
    let name_path = child(path, "name");
    let raw = member(source, "name");
    match cx.string(raw, &name_path) {
        Some(name) if !name.is_empty() => {
            if check {
                for msg in validate_container_resource_name(name) {
                    cx.push(FieldError::invalid(&name_path, &Value::from(name), &msg));
                }
            }
        }
        None if raw.is_some() => {}
        _ => cx.push(FieldError::required(
            &name_path,
            "must specify a resource name",
        )),
    }
}

/// The target rules shared by `validateResourceSource` and
/// `validateContainerResourceSource`.
fn validate_resource_target(cx: &mut Ctx<'_>, source: Option<&Map<String, Value>>, path: &str) {
    let target_path = child(path, "target");
    let target = validate_metric_target(cx, member(source, "target"), &target_path);
    if !target.average_utilization && !target.average_value {
        cx.push(FieldError::required(
            &child(&target_path, "averageUtilization"),
            "must set either a target raw value or a target utilization",
        ));
    }
    if target.average_utilization && target.average_value {
        cx.push(FieldError::forbidden(
            &child(&target_path, "averageValue"),
            "may not set both a target raw value and a target utilization",
        ));
    }
    check_target_suits_source(cx, &target, &target_path, &["AverageValue", "Utilization"]);
}

/// What a metric target sets (present and not null).
struct Target<'v> {
    target_type: Option<&'v str>,
    value: bool,
    average_value: bool,
    average_utilization: bool,
}

/// `validateMetricTarget`: a known `type`, positive quantities, utilization above 0.
fn validate_metric_target<'v>(
    cx: &mut Ctx<'_>,
    value: Option<&'v Value>,
    path: &str,
) -> Target<'v> {
    let target = cx.object(value, path);
    if let Some(target) = target {
        cx.unknown_fields(
            target,
            path,
            &["type", "value", "averageValue", "averageUtilization"],
        );
    }
    let type_path = child(path, "type");
    let raw_type = member(target, "type");
    let target_type = cx.string(raw_type, &type_path);
    match target_type {
        Some(t) if TARGET_TYPES.contains(&t) => {}
        Some(t) if !t.is_empty() => cx.push(FieldError::invalid(
            &type_path,
            &Value::from(t),
            "must be either Utilization, Value, or AverageValue",
        )),
        None if raw_type.is_some() => {}
        _ => cx.push(FieldError::required(
            &type_path,
            "must specify a metric target type",
        )),
    }
    for field in ["value", "averageValue"] {
        let field_path = child(path, field);
        if let Some(quantity) = cx.quantity(member(target, field), &field_path)
            && quantity.sign != Ordering::Greater
        {
            cx.push(FieldError::invalid(
                &field_path,
                quantity.raw,
                "must be positive",
            ));
        }
    }
    let utilization_path = child(path, "averageUtilization");
    if let Some(utilization) = cx.int32(member(target, "averageUtilization"), &utilization_path)
        && utilization < 1
    {
        cx.push(FieldError::invalid(
            &utilization_path,
            &Value::from(utilization),
            "must be greater than 0",
        ));
    }
    Target {
        target_type,
        value: member(target, "value").is_some(),
        average_value: member(target, "averageValue").is_some(),
        average_utilization: member(target, "averageUtilization").is_some(),
    }
}

/// podscale check: the target type suits the source and the field it names is set,
/// since kube-controller-manager picks the path by the field (and for `Object` needs
/// type and field to agree). Skipped when upstream already reported that field.
fn check_target_suits_source(cx: &mut Ctx<'_>, target: &Target<'_>, path: &str, allowed: &[&str]) {
    if !cx.options.podscale_checks {
        return;
    }
    let Some(target_type) = target.target_type.filter(|t| TARGET_TYPES.contains(t)) else {
        return;
    };
    if !allowed.contains(&target_type) {
        cx.push(FieldError::not_supported(
            &child(path, "type"),
            &Value::from(target_type),
            allowed,
        ));
        return;
    }
    let (field, set) = match target_type {
        "Utilization" => ("averageUtilization", target.average_utilization),
        "Value" => ("value", target.value),
        _ => ("averageValue", target.average_value),
    };
    // With no target field at all, upstream's "must set either" already says it.
    let any_set = target.value || target.average_value || target.average_utilization;
    let field_path = child(path, field);
    if !set && any_set && !cx.has_error_at(&field_path) {
        cx.push(FieldError::required(
            &field_path,
            &format!("must be set when the target type is {target_type}"),
        ));
    }
}

/// `validateMetricIdentifier`: a name usable as a path segment. podscale also checks
/// the `selector` (upstream does not; the controller fails the metric on a bad one).
fn validate_metric_identifier(cx: &mut Ctx<'_>, value: Option<&Value>, path: &str) {
    let identifier = cx.object(value, path);
    if let Some(identifier) = identifier {
        cx.unknown_fields(identifier, path, &["name", "selector"]);
    }
    let name_path = child(path, "name");
    let raw = member(identifier, "name");
    match cx.string(raw, &name_path) {
        Some(name) if !name.is_empty() => {
            for msg in is_valid_path_segment_name(name) {
                cx.push(FieldError::invalid(&name_path, &Value::from(name), &msg));
            }
        }
        None if raw.is_some() => {}
        _ => cx.push(FieldError::required(
            &name_path,
            "must specify a metric name",
        )),
    }
    let check_selector = cx.options.podscale_checks;
    validate_label_selector(
        cx,
        member(identifier, "selector"),
        &child(path, "selector"),
        check_selector,
    );
}

/// `validateBehavior`.
fn validate_behavior(cx: &mut Ctx<'_>, value: Option<&Value>, path: &str) {
    let Some(behavior) = cx.object(value, path) else {
        return;
    };
    cx.unknown_fields(behavior, path, &["scaleUp", "scaleDown"]);
    for direction in ["scaleUp", "scaleDown"] {
        validate_scaling_rules(
            cx,
            member(Some(behavior), direction),
            &child(path, direction),
        );
    }
}

/// `validateScalingRules`. Omitted `policies` are filled in by defaulting before
/// validation runs (`SetDefaults_HorizontalPodAutoscalerBehavior`); only an explicitly
/// empty list is an error.
fn validate_scaling_rules(cx: &mut Ctx<'_>, value: Option<&Value>, path: &str) {
    let Some(rules) = cx.object(value, path) else {
        return;
    };
    cx.unknown_fields(
        rules,
        path,
        &[
            "stabilizationWindowSeconds",
            "selectPolicy",
            "policies",
            "tolerance",
        ],
    );
    let rules = Some(rules);

    let window_path = child(path, "stabilizationWindowSeconds");
    if let Some(window) = cx.int32(member(rules, "stabilizationWindowSeconds"), &window_path) {
        if window < 0 {
            cx.push(FieldError::invalid(
                &window_path,
                &Value::from(window),
                "must be greater than or equal to zero",
            ));
        }
        if window > MAX_STABILIZATION_WINDOW_SECONDS {
            cx.push(FieldError::invalid(
                &window_path,
                &Value::from(window),
                &format!("must be less than or equal to {MAX_STABILIZATION_WINDOW_SECONDS}"),
            ));
        }
    }

    let select_path = child(path, "selectPolicy");
    if let Some(select) = cx.string(member(rules, "selectPolicy"), &select_path)
        && !SELECT_POLICIES.contains(&select)
    {
        cx.push(FieldError::not_supported(
            &select_path,
            &Value::from(select),
            &SELECT_POLICIES,
        ));
    }

    let policies_path = child(path, "policies");
    if let Some(policies) = cx.array(member(rules, "policies"), &policies_path) {
        if policies.is_empty() {
            cx.push(FieldError::required(
                &policies_path,
                "must specify at least one Policy",
            ));
        }
        for (i, policy) in policies.iter().enumerate() {
            validate_scaling_policy(cx, policy, &index(&policies_path, i));
        }
    }

    // The tolerance field (HPAConfigurableTolerance) must not be negative.
    let tolerance_path = child(path, "tolerance");
    if let Some(tolerance) = cx.quantity(member(rules, "tolerance"), &tolerance_path)
        && tolerance.sign == Ordering::Less
    {
        cx.push(FieldError::invalid(
            &tolerance_path,
            tolerance.raw,
            "must be greater or equal to zero",
        ));
    }
}

/// `validateScalingPolicy`.
fn validate_scaling_policy(cx: &mut Ctx<'_>, value: &Value, path: &str) {
    let policy = cx.object(Some(value), path);
    if policy.is_none() && !value.is_null() {
        return; // Not an object: reported, nothing more to check.
    }
    if let Some(policy) = policy {
        cx.unknown_fields(policy, path, &["type", "value", "periodSeconds"]);
    }
    let type_path = child(path, "type");
    let raw = member(policy, "type");
    match cx.string(raw, &type_path) {
        Some(t) if POLICY_TYPES.contains(&t) => {}
        Some(t) => cx.push(FieldError::not_supported(
            &type_path,
            &Value::from(t),
            &POLICY_TYPES,
        )),
        None if raw.is_some() => {}
        None => cx.push(FieldError::required(&type_path, "")),
    }
    for field in ["value", "periodSeconds"] {
        let field_path = child(path, field);
        let raw = member(policy, field);
        match cx.int32(raw, &field_path) {
            None if raw.is_none() => cx.push(FieldError::required(&field_path, "")),
            Some(n) if n <= 0 => {
                cx.push(FieldError::invalid(
                    &field_path,
                    &Value::from(n),
                    "must be greater than zero",
                ));
            }
            Some(n) if field == "periodSeconds" && n > MAX_PERIOD_SECONDS => {
                cx.push(FieldError::invalid(
                    &field_path,
                    &Value::from(n),
                    &format!("must be less than or equal to {MAX_PERIOD_SECONDS}"),
                ));
            }
            _ => {}
        }
    }
}
