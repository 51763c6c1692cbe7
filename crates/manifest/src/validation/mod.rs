//! Validation of `autoscaling/v2` HorizontalPodAutoscalers, as the API server does it.
//!
//! The rules mirror kubernetes/kubernetes `pkg/apis/autoscaling/validation/validation.go`
//! (`ValidateHorizontalPodAutoscaler` and the functions it calls; each function here
//! names the one it mirrors), with the messages of `field.Error`. They run on the JSON
//! value rather than on typed structs so that a value of the wrong type is one more
//! finding (`spec.maxReplicas: Invalid value: "ten": must be an integer`) instead of
//! the end of validation, and every problem is reported, ordered by position.
//!
//! ## Where this differs from the API server, and why
//!
//! * Decoding problems the API server reports before validating (wrong JSON types,
//!   fields not in the schema under kubectl's default strict field validation) are
//!   reported together with the validation errors.
//! * A field the schema requires but the server would silently zero (`maxReplicas`,
//!   a policy's `type`/`value`/`periodSeconds`) is reported as `Required value`
//!   rather than as the error its zero value would cause (`Invalid value: 0: ...`).
//! * Upstream's duplicate errors are collapsed: an unknown metric `type` is reported
//!   once (upstream reports it twice), and an empty required enum (metric or target
//!   `type`) gets only `Required value`, not also `Unsupported`/`Invalid value: ""`.
//! * Behavior `policies` may be omitted: the v2 defaulting that runs before
//!   validation fills them in; only an explicitly empty list is rejected.
//! * `minReplicas: 0` is rejected unless [`ValidationOptions::scale_to_zero`] stands
//!   for the `HPAScaleToZero` feature gate (alpha, off by default), and the message
//!   says so.
//! * With [`ValidationOptions::podscale_checks`] (on by default) a few problems the API
//!   server accepts but kube-controller-manager then fails on, or silently
//!   reinterprets, are reported too:
//!   - the target `type` must suit the source (`Resource`/`ContainerResource`:
//!     `Utilization` or `AverageValue`; `Pods`: `AverageValue`; `Object`/`External`:
//!     `Value` or `AverageValue`) and the field it names must be set (upstream only
//!     checks that *some* target field is set, and the controller picks by field);
//!   - metric `selector`s must be valid label selectors (`ValidateLabelSelector`; the
//!     controller fails the metric otherwise);
//!   - a `Resource` metric's `name` must be a container resource name, as for
//!     `ContainerResource` (`ValidateContainerResourceName`);
//!   - `scaleTargetRef.apiVersion` must be set and carry an API group (except for a
//!     `ReplicationController`): newer API servers check this, and without it the
//!     controller cannot find the target.
//! * Bad quantity values are shown as written, not in canonical form (`"0.5"`, not
//!   `"500m"`).

mod hpa;
mod meta;
pub mod names;

use std::cmp::Ordering;
use std::str::FromStr;

use podscale_core::Quantity;
use serde_json::{Map, Value};

use crate::diagnostic::{Diagnostic, FieldError};
use crate::parse::Document;
use crate::position;

/// What to accept beyond the API server's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidationOptions {
    /// The `HPAScaleToZero` feature gate: allows `minReplicas: 0` (with at least one
    /// `Object` or `External` metric). Off by default, as in Kubernetes.
    pub scale_to_zero: bool,
    /// Also report what the API server accepts but the HPA controller fails on or
    /// reinterprets (see the module docs). On by default.
    pub podscale_checks: bool,
}

impl Default for ValidationOptions {
    fn default() -> Self {
        Self {
            scale_to_zero: false,
            podscale_checks: true,
        }
    }
}

impl ValidationOptions {
    /// Exactly the API server's rules (with its default feature gates), nothing more.
    pub const fn upstream() -> Self {
        Self {
            scale_to_zero: false,
            podscale_checks: false,
        }
    }
}

/// Validates an `autoscaling/v2` HorizontalPodAutoscaler document with the default
/// [`ValidationOptions`]. Returns every problem found, ordered by position; an empty
/// list means the API server (and the controller) would accept it.
pub fn validate_hpa(doc: &Document, file: &str) -> Vec<Diagnostic> {
    validate_hpa_with(doc, file, &ValidationOptions::default())
}

/// [`validate_hpa`] with explicit options.
pub fn validate_hpa_with(
    doc: &Document,
    file: &str,
    options: &ValidationOptions,
) -> Vec<Diagnostic> {
    let mut cx = Ctx {
        options,
        errors: Vec::new(),
    };
    match &doc.value {
        Value::Object(root) => hpa::validate_horizontal_pod_autoscaler(&mut cx, root),
        other => cx.push(FieldError::invalid("", other, "must be an object")),
    }
    let mut diagnostics: Vec<Diagnostic> = cx
        .errors
        .into_iter()
        .map(|e| e.into_diagnostic(file, &doc.positions))
        .collect();
    diagnostics.sort_by_key(|d| (d.line, d.column));
    let mut seen = std::collections::HashSet::new();
    diagnostics.retain(|d| seen.insert(d.clone()));
    diagnostics
}

/// The state of one validation run: the options and the errors found so far.
pub(crate) struct Ctx<'o> {
    pub options: &'o ValidationOptions,
    errors: Vec<FieldError>,
}

/// `obj[key]`, treating an explicit `null` as absent (as Go's JSON decoding does for
/// pointers, slices and maps).
pub(crate) fn member<'v>(obj: Option<&'v Map<String, Value>>, key: &str) -> Option<&'v Value> {
    obj.and_then(|o| o.get(key)).filter(|v| !v.is_null())
}

/// A quantity field: as written, plus its sign (`resource.Quantity.Sign()`).
pub(crate) struct QuantityValue<'v> {
    pub raw: &'v Value,
    pub sign: Ordering,
}

impl Ctx<'_> {
    pub fn push(&mut self, error: FieldError) {
        self.errors.push(error);
    }

    /// Whether an error was already reported for exactly this field.
    pub fn has_error_at(&self, field: &str) -> bool {
        self.errors.iter().any(|e| e.field == field)
    }

    /// The value as an object; `None` (reporting a type error) when it is something else.
    pub fn object<'v>(
        &mut self,
        value: Option<&'v Value>,
        path: &str,
    ) -> Option<&'v Map<String, Value>> {
        match value? {
            Value::Object(map) => Some(map),
            Value::Null => None,
            other => {
                self.push(FieldError::invalid(path, other, "must be an object"));
                None
            }
        }
    }

    /// The value as an array; `None` (reporting a type error) when it is something else.
    pub fn array<'v>(&mut self, value: Option<&'v Value>, path: &str) -> Option<&'v Vec<Value>> {
        match value? {
            Value::Array(items) => Some(items),
            Value::Null => None,
            other => {
                self.push(FieldError::invalid(path, other, "must be an array"));
                None
            }
        }
    }

    /// The value as a string; `None` (reporting a type error) when it is something else.
    pub fn string<'v>(&mut self, value: Option<&'v Value>, path: &str) -> Option<&'v str> {
        match value? {
            Value::String(s) => Some(s),
            Value::Null => None,
            other => {
                self.push(FieldError::invalid(path, other, "must be a string"));
                None
            }
        }
    }

    /// The value as an `int32`; `None` (reporting why) when it is not a whole number in
    /// range. A whole float (`2.0`) counts: YAML `2.0` reaches the API server as JSON `2`.
    pub fn int32(&mut self, value: Option<&Value>, path: &str) -> Option<i32> {
        let value = value?;
        let whole = match value {
            Value::Null => return None,
            Value::Number(n) => n
                .as_i64()
                .map(i128::from)
                .or_else(|| n.as_u64().map(i128::from))
                .or_else(|| {
                    n.as_f64()
                        .filter(|f| f.fract() == 0.0 && f.abs() < 1e30)
                        .map(|f| {
                            #[allow(clippy::cast_possible_truncation)] // Bounded just above.
                            let whole = f as i128;
                            whole
                        })
                }),
            _ => None,
        };
        let Some(whole) = whole else {
            self.push(FieldError::invalid(path, value, "must be an integer"));
            return None;
        };
        if let Ok(small) = i32::try_from(whole) {
            Some(small)
        } else {
            self.push(FieldError::invalid(
                path,
                value,
                "must be an integer between -2147483648 and 2147483647",
            ));
            None
        }
    }

    /// The value as a `resource.Quantity` (a string, or a bare number as JSON allows);
    /// `None`, reporting the parser's complaint, when it is not one.
    pub fn quantity<'v>(
        &mut self,
        value: Option<&'v Value>,
        path: &str,
    ) -> Option<QuantityValue<'v>> {
        let raw = value?;
        let text = match raw {
            Value::Null => return None,
            Value::String(s) => s.clone(),
            // `Quantity.UnmarshalJSON` parses anything unquoted as its JSON text.
            other => other.to_string(),
        };
        match Quantity::from_str(text.trim()) {
            Ok(q) => Some(QuantityValue {
                raw,
                sign: sign(q.milli_value(), &text),
            }),
            Err(e) => {
                self.push(FieldError::invalid(path, raw, &e.to_string()));
                None
            }
        }
    }

    /// Reports each member of `obj` not in `known`, as strict field validation does.
    pub fn unknown_fields(&mut self, obj: &Map<String, Value>, path: &str, known: &[&str]) {
        for key in obj.keys() {
            if !known.contains(&key.as_str()) {
                self.push(FieldError::unknown(&position::child(path, key)));
            }
        }
    }
}

/// The sign of a quantity. `MilliValue()` rounds up, so a tiny negative quantity
/// (`-1n`) has milli-value 0; the written digits decide then.
fn sign(milli: i64, text: &str) -> Ordering {
    match milli.cmp(&0) {
        Ordering::Equal => {
            let text = text.trim();
            let mantissa = text.trim_start_matches(['+', '-']);
            let nonzero = mantissa
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .any(|c| c.is_ascii_digit() && c != '0');
            match (nonzero, text.starts_with('-')) {
                (false, _) => Ordering::Equal,
                (true, true) => Ordering::Less,
                (true, false) => Ordering::Greater,
            }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantity_sign_uses_milli_value_then_the_digits() {
        assert_eq!(sign(1000, "1"), Ordering::Greater);
        assert_eq!(sign(-1000, "-1"), Ordering::Less);
        assert_eq!(sign(0, "0"), Ordering::Equal);
        assert_eq!(sign(0, "-0.0"), Ordering::Equal);
        assert_eq!(sign(0, "-1n"), Ordering::Less);
        assert_eq!(sign(0, "1n"), Ordering::Greater);
    }
}
