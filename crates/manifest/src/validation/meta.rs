//! Object metadata, labels and label selectors.
//!
//! Mirrors `ValidateObjectMeta` (k8s.io/apimachinery `api/validation/objectmeta.go`)
//! as `ValidateHorizontalPodAutoscaler` calls it (namespace-scoped, names validated
//! with `ValidateHorizontalPodAutoscalerName`, i.e. `NameIsDNSSubdomain`), and
//! `ValidateLabels` / `ValidateLabelSelector` (`apis/meta/v1/validation`).

use serde_json::{Map, Value};

use super::names::{
    is_dns1123_label, is_qualified_name, is_valid_label_value, name_is_dns_subdomain,
};
use super::{Ctx, member};
use crate::diagnostic::{Anchor, FieldError};
use crate::position::{child, index};

/// `ObjectMeta` fields a manifest may carry.
const OBJECT_META_FIELDS: [&str; 15] = [
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

/// `ValidateObjectMeta(meta, requiresNamespace=true, NameIsDNSSubdomain, "metadata")`.
///
/// The namespace is not required: in a manifest it is usually left to kubectl's
/// context, which fills it in before the API server validates.
pub(super) fn validate_object_meta(cx: &mut Ctx<'_>, value: Option<&Value>, path: &str) {
    let meta = cx.object(value, path);
    if let Some(meta) = meta {
        cx.unknown_fields(meta, path, &OBJECT_META_FIELDS);
    }

    let generate_path = child(path, "generateName");
    let generate_name = cx
        .string(member(meta, "generateName"), &generate_path)
        .unwrap_or("");
    if !generate_name.is_empty() {
        for msg in name_is_dns_subdomain(generate_name, true) {
            cx.push(FieldError::invalid(
                &generate_path,
                &Value::from(generate_name),
                &msg,
            ));
        }
    }

    let name_path = child(path, "name");
    let name_value = member(meta, "name");
    match cx.string(name_value, &name_path) {
        Some(name) if !name.is_empty() => {
            for msg in name_is_dns_subdomain(name, false) {
                cx.push(FieldError::invalid(&name_path, &Value::from(name), &msg));
            }
        }
        None if name_value.is_some() => {} // Wrong type, already reported.
        _ if generate_name.is_empty() => {
            cx.push(FieldError::required(
                &name_path,
                "name or generateName is required",
            ));
        }
        _ => {}
    }

    let namespace_path = child(path, "namespace");
    if let Some(namespace) = cx.string(member(meta, "namespace"), &namespace_path)
        && !namespace.is_empty()
    {
        // ValidateNamespaceName = NameIsDNSLabel.
        for msg in is_dns1123_label(namespace) {
            cx.push(FieldError::invalid(
                &namespace_path,
                &Value::from(namespace),
                &msg,
            ));
        }
    }

    validate_labels(cx, member(meta, "labels"), &child(path, "labels"), true);

    // ValidateAnnotations: keys are qualified names once lowercased.
    let annotations_path = child(path, "annotations");
    if let Some(annotations) = cx.object(member(meta, "annotations"), &annotations_path) {
        for (key, value) in annotations {
            let key_path = child(&annotations_path, key);
            cx.string(Some(value), &key_path);
            for msg in is_qualified_name(&key.to_lowercase()) {
                cx.push(
                    FieldError::invalid(&annotations_path, &Value::from(key.as_str()), &msg)
                        .anchored(Anchor::Key(key_path.clone())),
                );
            }
        }
    }
}

/// `ValidateLabels`: every key a qualified name, every value a label value. The errors
/// name the map (`metadata.labels`) and point at the offending key or value.
/// `check_content: false` only checks JSON types.
pub(super) fn validate_labels(
    cx: &mut Ctx<'_>,
    value: Option<&Value>,
    path: &str,
    check_content: bool,
) {
    let Some(labels) = cx.object(value, path) else {
        return;
    };
    for (key, value) in labels {
        let key_path = child(path, key);
        let text = cx.string(Some(value), &key_path);
        if !check_content {
            continue;
        }
        for msg in is_qualified_name(key) {
            cx.push(
                FieldError::invalid(path, &Value::from(key.as_str()), &msg)
                    .anchored(Anchor::Key(key_path.clone())),
            );
        }
        if let Some(text) = text {
            for msg in is_valid_label_value(text) {
                cx.push(
                    FieldError::invalid(path, &Value::from(text), &msg)
                        .anchored(Anchor::Node(key_path.clone())),
                );
            }
        }
    }
}

/// `ValidateLabelSelector` (with `ValidateLabelSelectorRequirement`). With
/// `check_content: false` only the JSON shape is checked.
pub(super) fn validate_label_selector(
    cx: &mut Ctx<'_>,
    value: Option<&Value>,
    path: &str,
    check_content: bool,
) {
    let Some(selector) = cx.object(value, path) else {
        return;
    };
    cx.unknown_fields(selector, path, &["matchLabels", "matchExpressions"]);
    validate_labels(
        cx,
        member(Some(selector), "matchLabels"),
        &child(path, "matchLabels"),
        check_content,
    );
    let expressions_path = child(path, "matchExpressions");
    let Some(expressions) = cx.array(
        member(Some(selector), "matchExpressions"),
        &expressions_path,
    ) else {
        return;
    };
    for (i, expression) in expressions.iter().enumerate() {
        let item_path = index(&expressions_path, i);
        let requirement = cx.object(Some(expression), &item_path);
        if requirement.is_none() && !expression.is_null() {
            continue; // Not an object: reported.
        }
        validate_requirement(cx, requirement, &item_path, check_content);
    }
}

/// `ValidateLabelSelectorRequirement`.
fn validate_requirement(
    cx: &mut Ctx<'_>,
    requirement: Option<&Map<String, Value>>,
    path: &str,
    check_content: bool,
) {
    if let Some(requirement) = requirement {
        cx.unknown_fields(requirement, path, &["key", "operator", "values"]);
    }
    let key_path = child(path, "key");
    let key = cx.string(member(requirement, "key"), &key_path);
    let operator_path = child(path, "operator");
    let operator = cx.string(member(requirement, "operator"), &operator_path);
    let values_path = child(path, "values");
    let values: Vec<(usize, &str)> = cx
        .array(member(requirement, "values"), &values_path)
        .map(|values| values.iter().enumerate().collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(j, v)| cx.string(Some(v), &index(&values_path, j)).map(|s| (j, s)))
        .collect();
    if !check_content {
        return;
    }
    match operator {
        Some("In" | "NotIn") if values.is_empty() => cx.push(FieldError::required(
            &values_path,
            "must be specified when `operator` is 'In' or 'NotIn'",
        )),
        Some("Exists" | "DoesNotExist") if !values.is_empty() => cx.push(FieldError::forbidden(
            &values_path,
            "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
        )),
        Some("In" | "NotIn" | "Exists" | "DoesNotExist") => {}
        Some(other) => cx.push(FieldError::invalid(
            &operator_path,
            &Value::from(other),
            "not a valid selector operator",
        )),
        None if member(requirement, "operator").is_none() => {
            cx.push(FieldError::required(&operator_path, ""));
        }
        None => {}
    }
    match key {
        Some(key) => {
            for msg in is_qualified_name(key) {
                cx.push(FieldError::invalid(&key_path, &Value::from(key), &msg));
            }
        }
        None if member(requirement, "key").is_none() => {
            cx.push(FieldError::required(&key_path, ""))
        }
        None => {}
    }
    for (j, value) in values {
        for msg in is_valid_label_value(value) {
            cx.push(FieldError::invalid(
                &index(&values_path, j),
                &Value::from(value),
                &msg,
            ));
        }
    }
}
