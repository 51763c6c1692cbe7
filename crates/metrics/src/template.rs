//! Query templates: `{{namespace}}`, `{{pods}}`, `{{selector}}`, `{{name}}`,
//! `{{maxAge}}`, `{{window}}`, `{{objectKind}}`, `{{objectName}}`, filled in per metric
//! at each read.
//!
//! Values land inside PromQL, so each is rendered for where it goes: `{{pods}}` is a
//! regular expression of the pods' names (each name regex-escaped, then the whole
//! escaped for a double-quoted PromQL string), `{{selector}}` is a list of label
//! matchers, and the others are escaped for a double-quoted string.
use std::collections::BTreeMap;
use std::time::Duration;

use podscale_core::api::LabelSelector;

/// Every placeholder a query may use.
pub const PLACEHOLDERS: &[&str] = &[
    "namespace",
    "pods",
    "selector",
    "name",
    "maxAge",
    "window",
    "objectKind",
    "objectName",
];

/// What the placeholders stand for at one read.
#[derive(Debug, Clone, Default)]
pub struct Context<'a> {
    pub namespace: &'a str,
    /// The selected pods' names; `None` when podscale was not told which pods exist
    /// (then `{{pods}}` matches any non-empty name).
    pub pods: Option<&'a [String]>,
    /// The HPA metric's `selector`.
    pub selector: Option<&'a LabelSelector>,
    /// The metric's name, as the HPA spells it.
    pub name: &'a str,
    pub max_age: Option<Duration>,
    pub window: Option<Duration>,
    pub object_kind: &'a str,
    pub object_name: &'a str,
}

/// Why a template cannot be filled in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error(
        "unknown placeholder {{{{{0}}}}}; known: {{{{namespace}}}}, {{{{pods}}}}, {{{{selector}}}}, {{{{name}}}}, {{{{maxAge}}}}, {{{{window}}}}, {{{{objectKind}}}}, {{{{objectName}}}}"
    )]
    Unknown(String),
    #[error("{{{{maxAge}}}} is used but the metric sets no maxAge")]
    NoMaxAge,
    #[error("invalid selector: {0}")]
    Selector(String),
}

/// The placeholders a template uses, in order (with repeats).
pub fn placeholders(template: &str) -> Vec<&str> {
    let mut out = Vec::new();
    scan(template, |piece| {
        if let Piece::Placeholder(p) = piece {
            out.push(p);
        }
    });
    out
}

/// Checks that a template only uses known placeholders.
///
/// # Errors
/// [`TemplateError::Unknown`] for the first unknown one.
pub fn check(template: &str) -> Result<(), TemplateError> {
    match placeholders(template)
        .into_iter()
        .find(|p| !PLACEHOLDERS.contains(p))
    {
        Some(p) => Err(TemplateError::Unknown(p.to_owned())),
        None => Ok(()),
    }
}

/// Fills a template in.
///
/// # Errors
/// An unknown placeholder, `{{maxAge}}` without a max age, or a selector that cannot
/// become label matchers.
pub fn render(template: &str, ctx: &Context<'_>) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(template.len() + 64);
    let mut error = None;
    scan(template, |piece| match piece {
        Piece::Text(t) => out.push_str(t),
        Piece::Placeholder(p) => match value(p, ctx) {
            Ok(v) => out.push_str(&v),
            Err(e) => {
                error.get_or_insert(e);
            }
        },
    });
    match error {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

enum Piece<'a> {
    Text(&'a str),
    Placeholder(&'a str),
}

/// Splits a template into text and `{{ identifier }}` placeholders. A `{{` that does
/// not open a placeholder is text, so PromQL's own braces (`x{ {{selector}} }`,
/// `{{{selector}}}`) need no escaping.
fn scan<'a>(template: &'a str, mut f: impl FnMut(Piece<'a>)) {
    let b = template.as_bytes();
    let mut text_start = 0;
    let mut i = 0;
    while i + 1 < b.len() {
        if b[i] == b'{'
            && b[i + 1] == b'{'
            && let Some((ident, end)) = placeholder_at(template, i + 2)
        {
            if text_start < i {
                f(Piece::Text(&template[text_start..i]));
            }
            f(Piece::Placeholder(ident));
            i = end;
            text_start = end;
            continue;
        }
        i += 1;
    }
    if text_start < template.len() {
        f(Piece::Text(&template[text_start..]));
    }
}

/// `  ident  }}` from byte `i`: the identifier and the index after `}}`.
fn placeholder_at(s: &str, mut i: usize) -> Option<(&str, usize)> {
    let b = s.as_bytes();
    while i < b.len() && b[i] == b' ' {
        i += 1;
    }
    let start = i;
    while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
        i += 1;
    }
    if i == start || !b[start].is_ascii_alphabetic() {
        return None;
    }
    let ident = &s[start..i];
    while i < b.len() && b[i] == b' ' {
        i += 1;
    }
    (s[i..].starts_with("}}")).then_some((ident, i + 2))
}

fn value(p: &str, ctx: &Context<'_>) -> Result<String, TemplateError> {
    Ok(match p {
        "namespace" => escape_string(ctx.namespace),
        "name" => escape_string(ctx.name),
        "objectKind" => escape_string(ctx.object_kind),
        "objectName" => escape_string(ctx.object_name),
        "pods" => escape_string(&pods_regex(ctx.pods)),
        "selector" => selector_matchers(ctx.selector)?,
        "maxAge" => promql_duration(ctx.max_age.ok_or(TemplateError::NoMaxAge)?),
        "window" => promql_duration(ctx.window.unwrap_or(Duration::from_secs(60))),
        other => return Err(TemplateError::Unknown(other.to_owned())),
    })
}

/// A duration as PromQL writes it, in whole milliseconds (`30000ms`), which every
/// Prometheus version accepts.
pub fn promql_duration(d: Duration) -> String {
    format!("{}ms", d.as_millis().max(1))
}

/// Escapes text for the inside of a double-quoted PromQL string.
pub fn escape_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes RE2 metacharacters so `s` matches itself.
pub fn escape_regex(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `{{pods}}` before string escaping: `name1|name2`, or `.+` when the pods are not
/// known. With no pods at all, a regex that matches nothing.
pub fn pods_regex(pods: Option<&[String]>) -> String {
    match pods {
        None => ".+".into(),
        Some([]) => "$^".into(),
        Some(pods) => pods
            .iter()
            .map(|p| escape_regex(p))
            .collect::<Vec<_>>()
            .join("|"),
    }
}

/// A label selector as PromQL matchers: `matchLabels` become `k="v"`, and
/// `matchExpressions` `k=~"a|b"` (In), `k!~"a|b"` (NotIn), `k!=""` (Exists) and
/// `k=""` (DoesNotExist). A key that is not a valid Prometheus label name is quoted
/// (`"app.kubernetes.io/name"="x"`, Prometheus 3 syntax).
///
/// # Errors
/// An unknown operator, or In/NotIn without values.
pub fn selector_matchers(sel: Option<&LabelSelector>) -> Result<String, TemplateError> {
    let Some(sel) = sel else {
        return Ok(String::new());
    };
    let mut out: Vec<String> = Vec::new();
    let key = |k: &str| {
        if crate::exposition::is_legacy_label_name(k) {
            k.to_owned()
        } else {
            format!("\"{}\"", escape_string(k))
        }
    };
    let empty = BTreeMap::new();
    for (k, v) in sel.match_labels.as_ref().unwrap_or(&empty) {
        out.push(format!("{}=\"{}\"", key(k), escape_string(v)));
    }
    for req in sel.match_expressions.iter().flatten() {
        let values = req.values.as_deref().unwrap_or_default();
        let alternation = || {
            escape_string(
                &values
                    .iter()
                    .map(|v| escape_regex(v))
                    .collect::<Vec<_>>()
                    .join("|"),
            )
        };
        let k = key(&req.key);
        out.push(match req.operator.as_str() {
            "In" | "NotIn" if values.is_empty() => {
                return Err(TemplateError::Selector(format!(
                    "operator {} on {:?} needs values",
                    req.operator, req.key
                )));
            }
            "In" => format!("{k}=~\"{}\"", alternation()),
            "NotIn" => format!("{k}!~\"{}\"", alternation()),
            "Exists" => format!("{k}!=\"\""),
            "DoesNotExist" => format!("{k}=\"\""),
            other => {
                return Err(TemplateError::Selector(format!(
                    "unsupported operator {other:?} on {:?}",
                    req.key
                )));
            }
        });
    }
    Ok(out.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use podscale_core::api::LabelSelectorRequirement;

    fn ctx<'a>(pods: &'a [String], sel: Option<&'a LabelSelector>) -> Context<'a> {
        Context {
            namespace: "ai-inference",
            pods: Some(pods),
            selector: sel,
            name: "queue",
            max_age: Some(Duration::from_secs(30)),
            ..Context::default()
        }
    }

    #[test]
    fn the_issue_example_renders() {
        let pods = vec!["vllm-0".to_owned(), "vllm.1".to_owned()];
        let q = render(
            r#"sum by (pod) (vllm:num_requests_waiting{namespace="{{namespace}}", pod=~"{{pods}}"})"#,
            &ctx(&pods, None),
        )
        .expect("renders");
        assert_eq!(
            q,
            r#"sum by (pod) (vllm:num_requests_waiting{namespace="ai-inference", pod=~"vllm-0|vllm\\.1"})"#
        );
    }

    #[test]
    fn promql_braces_next_to_placeholders_stay_text() {
        let sel = LabelSelector {
            match_labels: Some([("deployment".to_owned(), "inference-server".to_owned())].into()),
            match_expressions: Some(vec![
                LabelSelectorRequirement {
                    key: "gpu".into(),
                    operator: "In".into(),
                    values: Some(vec!["a100".into(), "h100".into()]),
                },
                LabelSelectorRequirement {
                    key: "app.kubernetes.io/name".into(),
                    operator: "Exists".into(),
                    values: None,
                },
            ]),
        };
        let pods = vec![];
        let c = ctx(&pods, Some(&sel));
        assert_eq!(
            render("avg(DCGM_FI_DEV_GPU_UTIL{ {{selector}} })", &c).expect("renders"),
            r#"avg(DCGM_FI_DEV_GPU_UTIL{ deployment="inference-server",gpu=~"a100|h100","app.kubernetes.io/name"!="" })"#
        );
        assert_eq!(
            render("x{{{ selector }}}", &c).expect("renders"),
            r#"x{deployment="inference-server",gpu=~"a100|h100","app.kubernetes.io/name"!=""}"#
        );
        assert_eq!(
            render("x[{{maxAge}}] {{pods}}", &c).expect("renders"),
            "x[30000ms] $^"
        );
    }

    #[test]
    fn unknown_placeholders_are_reported() {
        assert_eq!(
            check("x{pod=~\"{{ podz }}\"}"),
            Err(TemplateError::Unknown("podz".into()))
        );
        assert_eq!(check("{{ 1 }} {{}}"), Ok(()));
    }

    #[test]
    fn values_are_escaped_for_promql_strings() {
        let pods = vec!["a\"b".to_owned()];
        let mut c = ctx(&pods, None);
        c.namespace = "x\\y";
        assert_eq!(
            render("{{namespace}} {{pods}}", &c).expect("renders"),
            r#"x\\y a\"b"#
        );
    }
}
