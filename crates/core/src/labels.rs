//! Label selectors: the string form a scale subresource reports
//! (`k8s.io/apimachinery/pkg/labels.Parse`) and the structured `metav1.LabelSelector`
//! of a metric (`metav1.LabelSelectorAsSelector`), with matching, and the Go
//! formatting of a `*LabelSelector` that kube-controller-manager prints into metric
//! names such as `external metric qps(&LabelSelector{...})`.
use std::collections::BTreeMap;
use std::fmt;

use crate::api::LabelSelector;

/// A selector operator (`selection.Operator`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Exists,
    DoesNotExist,
    Equals,
    NotEquals,
    In,
    NotIn,
    GreaterThan,
    LessThan,
}

/// One requirement of a selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub key: String,
    pub operator: Operator,
    pub values: Vec<String>,
}

impl Requirement {
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        match self.operator {
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::Equals | Operator::In => value.is_some_and(|v| self.values.contains(v)),
            Operator::NotEquals | Operator::NotIn => value.is_none_or(|v| !self.values.contains(v)),
            Operator::GreaterThan | Operator::LessThan => {
                let (Some(v), Some(bound)) = (value, self.values.first()) else {
                    return false;
                };
                match (v.parse::<i64>(), bound.parse::<i64>()) {
                    (Ok(v), Ok(bound)) if self.operator == Operator::GreaterThan => v > bound,
                    (Ok(v), Ok(bound)) => v < bound,
                    _ => false,
                }
            }
        }
    }
}

/// A parsed selector. `Nothing` matches no object (a nil `*LabelSelector`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    Requirements(Vec<Requirement>),
    Nothing,
}

impl Selector {
    /// The selector that matches everything.
    pub fn everything() -> Self {
        Self::Requirements(Vec::new())
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Self::Nothing => false,
            Self::Requirements(reqs) => reqs.iter().all(|r| r.matches(labels)),
        }
    }
}

/// Why a selector could not be parsed or converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SelectorError(pub String);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Ident(String),
    Not,
    NotEquals,
    Equals,
    DoubleEquals,
    Comma,
    Open,
    Close,
    In,
    NotIn,
    Gt,
    Lt,
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Token::Ident(s) => s.as_str(),
            Token::Not => "!",
            Token::NotEquals => "!=",
            Token::Equals => "=",
            Token::DoubleEquals => "==",
            Token::Comma => ",",
            Token::Open => "(",
            Token::Close => ")",
            Token::In => "in",
            Token::NotIn => "notin",
            Token::Gt => ">",
            Token::Lt => "<",
        };
        f.write_str(s)
    }
}

fn is_special(c: char) -> bool {
    matches!(c, '!' | '=' | ',' | '(' | ')' | '<' | '>')
}

fn lex(input: &str) -> Vec<Token> {
    let chars: Vec<char> = input.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if is_special(c) {
            let next = chars.get(i + 1).copied();
            let (tok, len) = match (c, next) {
                ('!', Some('=')) => (Token::NotEquals, 2),
                ('!', _) => (Token::Not, 1),
                ('=', Some('=')) => (Token::DoubleEquals, 2),
                ('=', _) => (Token::Equals, 1),
                (',', _) => (Token::Comma, 1),
                ('(', _) => (Token::Open, 1),
                (')', _) => (Token::Close, 1),
                ('<', _) => (Token::Lt, 1),
                _ => (Token::Gt, 1),
            };
            out.push(tok);
            i += len;
            continue;
        }
        let start = i;
        while i < chars.len() && !chars[i].is_whitespace() && !is_special(chars[i]) {
            i += 1;
        }
        let word: String = chars[start..i].iter().collect();
        out.push(match word.as_str() {
            "in" => Token::In,
            "notin" => Token::NotIn,
            _ => Token::Ident(word),
        });
    }
    out
}

/// Parses the string form of a selector, as `labels.Parse` does
/// (`name=test-pod`, `tier in (a,b)`, `!canary`, `app!=x`, `replicas>3`).
pub fn parse(input: &str) -> Result<Selector, SelectorError> {
    let tokens = lex(input);
    let mut pos = 0;
    let mut reqs = Vec::new();
    if tokens.is_empty() {
        return Ok(Selector::everything());
    }
    loop {
        let req = parse_requirement(&tokens, &mut pos)?;
        reqs.push(req);
        match tokens.get(pos) {
            None => break,
            Some(Token::Comma) => {
                pos += 1;
                if pos >= tokens.len() {
                    return Err(SelectorError(
                        "found '', expected: identifier after ','".into(),
                    ));
                }
            }
            Some(t) => {
                return Err(SelectorError(format!(
                    "found '{t}', expected: ',' or 'end of string'"
                )));
            }
        }
    }
    Ok(Selector::Requirements(reqs))
}

fn parse_requirement(tokens: &[Token], pos: &mut usize) -> Result<Requirement, SelectorError> {
    let mut negated = false;
    if tokens.get(*pos) == Some(&Token::Not) {
        negated = true;
        *pos += 1;
    }
    let key = match tokens.get(*pos) {
        Some(Token::Ident(k)) => k.clone(),
        Some(t) => {
            return Err(SelectorError(format!(
                "found '{t}', expected: !, identifier, or 'end of string'"
            )));
        }
        None => return Err(SelectorError("found '', expected: identifier".into())),
    };
    *pos += 1;
    validate_key(&key)?;
    if negated {
        return Ok(Requirement {
            key,
            operator: Operator::DoesNotExist,
            values: Vec::new(),
        });
    }
    let op = match tokens.get(*pos) {
        None | Some(Token::Comma) => {
            return Ok(Requirement {
                key,
                operator: Operator::Exists,
                values: Vec::new(),
            });
        }
        Some(Token::Equals) | Some(Token::DoubleEquals) => Operator::Equals,
        Some(Token::NotEquals) => Operator::NotEquals,
        Some(Token::In) => Operator::In,
        Some(Token::NotIn) => Operator::NotIn,
        Some(Token::Gt) => Operator::GreaterThan,
        Some(Token::Lt) => Operator::LessThan,
        Some(t) => {
            return Err(SelectorError(format!(
                "found '{t}', expected: in, notin, =, ==, !=, gt, lt"
            )));
        }
    };
    *pos += 1;
    let values = match op {
        Operator::In | Operator::NotIn => parse_values(tokens, pos)?,
        _ => match tokens.get(*pos) {
            Some(Token::Ident(v)) => {
                *pos += 1;
                vec![v.clone()]
            }
            Some(Token::In) | Some(Token::NotIn) => {
                let v = tokens[*pos].to_string();
                *pos += 1;
                vec![v]
            }
            None | Some(Token::Comma) => vec![String::new()],
            Some(t) => return Err(SelectorError(format!("found '{t}', expected: identifier"))),
        },
    };
    for v in &values {
        validate_value(v)?;
    }
    if matches!(op, Operator::GreaterThan | Operator::LessThan)
        && values.first().is_none_or(|v| v.parse::<i64>().is_err())
    {
        return Err(SelectorError(format!(
            "for 'Gt', 'Lt' operators, the value must be an integer: {:?}",
            values.first().cloned().unwrap_or_default()
        )));
    }
    Ok(Requirement {
        key,
        operator: op,
        values,
    })
}

/// `parseValues` + `parseIdentifiersList`: `(a, b)`, `()`, `(,a)`, `(a,)`.
fn parse_values(tokens: &[Token], pos: &mut usize) -> Result<Vec<String>, SelectorError> {
    let found = |t: Option<&Token>| t.map(ToString::to_string).unwrap_or_default();
    if tokens.get(*pos) != Some(&Token::Open) {
        return Err(SelectorError(format!(
            "found '{}' expected: '('",
            found(tokens.get(*pos))
        )));
    }
    *pos += 1;
    // Inside parentheses, keywords are plain values.
    let ident = |t: Option<&Token>| match t {
        Some(Token::Ident(v)) => Some(v.clone()),
        Some(Token::In) => Some("in".to_string()),
        Some(Token::NotIn) => Some("notin".to_string()),
        _ => None,
    };
    let mut values: Vec<String> = Vec::new();
    let push = |values: &mut Vec<String>, v: String| {
        if !values.contains(&v) {
            values.push(v);
        }
    };
    if tokens.get(*pos) == Some(&Token::Close) {
        *pos += 1;
        return Ok(vec![String::new()]);
    }
    loop {
        let tok = tokens.get(*pos);
        *pos += 1;
        if let Some(v) = ident(tok) {
            push(&mut values, v);
            match tokens.get(*pos) {
                Some(Token::Comma) => continue,
                Some(Token::Close) => {
                    *pos += 1;
                    return Ok(values);
                }
                t => {
                    return Err(SelectorError(format!(
                        "found '{}', expected: ',' or ')'",
                        found(t)
                    )));
                }
            }
        }
        match tok {
            Some(Token::Comma) => {
                if values.is_empty() {
                    push(&mut values, String::new());
                }
                match tokens.get(*pos) {
                    Some(Token::Close) => {
                        *pos += 1;
                        push(&mut values, String::new());
                        return Ok(values);
                    }
                    Some(Token::Comma) => {
                        *pos += 1;
                        push(&mut values, String::new());
                    }
                    _ => {}
                }
            }
            t => {
                return Err(SelectorError(format!(
                    "found '{}', expected: ',', or identifier",
                    found(t)
                )));
            }
        }
    }
}

fn is_name_part(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.chars().last().is_some_and(|c| c.is_ascii_alphanumeric())
}

fn validate_key(key: &str) -> Result<(), SelectorError> {
    // validation.IsQualifiedName: [prefix/]name, prefix a DNS subdomain, name ≤ 63.
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|l| {
                !l.is_empty()
                    && l.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            })
    });
    if prefix_ok && is_name_part(name, 63) {
        Ok(())
    } else {
        Err(SelectorError(format!(
            "key: Invalid value: {key:?}: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
        )))
    }
}

fn validate_value(value: &str) -> Result<(), SelectorError> {
    if value.is_empty() || is_name_part(value, 63) {
        Ok(())
    } else {
        Err(SelectorError(format!(
            "values[0]: Invalid value: {value:?}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
        )))
    }
}

/// `metav1.LabelSelectorAsSelector`: `None` selects nothing, an empty selector everything.
pub fn from_label_selector(sel: Option<&LabelSelector>) -> Result<Selector, SelectorError> {
    let Some(sel) = sel else {
        return Ok(Selector::Nothing);
    };
    let mut reqs = Vec::new();
    for (k, v) in sel.match_labels.iter().flatten() {
        validate_key(k)?;
        validate_value(v)?;
        reqs.push(Requirement {
            key: k.clone(),
            operator: Operator::Equals,
            values: vec![v.clone()],
        });
    }
    for expr in sel.match_expressions.iter().flatten() {
        let values = expr.values.clone().unwrap_or_default();
        let op = match expr.operator.as_str() {
            "In" => Operator::In,
            "NotIn" => Operator::NotIn,
            "Exists" => Operator::Exists,
            "DoesNotExist" => Operator::DoesNotExist,
            other => {
                return Err(SelectorError(format!(
                    "{other:?} is not a valid label selector operator"
                )));
            }
        };
        match op {
            Operator::In | Operator::NotIn if values.is_empty() => {
                return Err(SelectorError(
                    "values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't be empty".into(),
                ));
            }
            Operator::Exists | Operator::DoesNotExist if !values.is_empty() => {
                return Err(SelectorError(
                    "values: Invalid value: values set must be empty for exists and does not exist"
                        .into(),
                ));
            }
            _ => {}
        }
        validate_key(&expr.key)?;
        for v in &values {
            validate_value(v)?;
        }
        reqs.push(Requirement {
            key: expr.key.clone(),
            operator: op,
            values,
        });
    }
    Ok(Selector::Requirements(reqs))
}

/// Formats a `*metav1.LabelSelector` the way Go's `fmt` `%+v` does (through the
/// generated `String()` method), e.g.
/// `&LabelSelector{MatchLabels:map[string]string{app: web,},MatchExpressions:[]LabelSelectorRequirement{},}`;
/// `nil` when absent. kube-controller-manager puts this into external metric names.
pub fn go_format(sel: Option<&LabelSelector>) -> String {
    let Some(sel) = sel else {
        return "nil".into();
    };
    let mut exprs = String::from("[]LabelSelectorRequirement{");
    for e in sel.match_expressions.iter().flatten() {
        let values = e.values.as_deref().unwrap_or_default().join(" ");
        exprs.push_str(&format!(
            "LabelSelectorRequirement{{Key:{},Operator:{},Values:[{}],}},",
            e.key, e.operator, values
        ));
    }
    exprs.push('}');
    let mut labels = String::from("map[string]string{");
    for (k, v) in sel.match_labels.iter().flatten() {
        labels.push_str(&format!("{k}: {v},"));
    }
    labels.push('}');
    format!("&LabelSelector{{MatchLabels:{labels},MatchExpressions:{exprs},}}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn equality_selector_matches_its_label_only() {
        let s = parse("name=test-pod").expect("valid");
        assert!(s.matches(&labels(&[("name", "test-pod")])));
        assert!(!s.matches(&labels(&[("name", "other")])));
        assert!(!s.matches(&labels(&[])));
    }

    #[test]
    fn set_and_existence_selectors() {
        let s = parse("tier in (a, b),!canary,env!=prod").expect("valid");
        assert!(s.matches(&labels(&[("tier", "a"), ("env", "dev")])));
        assert!(!s.matches(&labels(&[("tier", "a"), ("canary", "1")])));
        assert!(!s.matches(&labels(&[("tier", "c")])));
        assert!(!s.matches(&labels(&[("tier", "b"), ("env", "prod")])));
        let gt = parse("replicas>3").expect("valid");
        assert!(gt.matches(&labels(&[("replicas", "4")])));
        assert!(!gt.matches(&labels(&[("replicas", "3")])));
    }

    #[test]
    fn empty_selector_matches_everything() {
        assert!(parse("").expect("valid").matches(&labels(&[])));
        assert!(parse("  ").expect("valid").matches(&labels(&[("a", "b")])));
    }

    #[test]
    fn malformed_selectors_are_errors_not_panics() {
        for bad in [
            "cheddar cheese",
            "a=b=c",
            "in (",
            "a in b",
            "=x",
            "a,",
            "a>b",
            "a in (x",
            "!",
        ] {
            assert!(parse(bad).is_err(), "{bad} should not parse");
        }
    }

    #[test]
    fn label_selector_conversion_and_go_format() {
        let sel = LabelSelector {
            match_labels: Some(labels(&[("b", "2"), ("a", "1")])),
            match_expressions: Some(vec![crate::api::LabelSelectorRequirement {
                key: "k".into(),
                operator: "In".into(),
                values: Some(vec!["x".into(), "y".into()]),
            }]),
        };
        let s = from_label_selector(Some(&sel)).expect("valid");
        assert!(s.matches(&labels(&[("a", "1"), ("b", "2"), ("k", "y")])));
        assert_eq!(
            go_format(Some(&sel)),
            "&LabelSelector{MatchLabels:map[string]string{a: 1,b: 2,},MatchExpressions:[]LabelSelectorRequirement{LabelSelectorRequirement{Key:k,Operator:In,Values:[x y],},},}"
        );
        assert_eq!(go_format(None), "nil");
        assert!(
            !from_label_selector(None)
                .expect("nil is valid")
                .matches(&labels(&[]))
        );
        let bad = LabelSelector {
            match_expressions: Some(vec![crate::api::LabelSelectorRequirement {
                key: "k".into(),
                operator: "Near".into(),
                values: None,
            }]),
            ..LabelSelector::default()
        };
        assert!(from_label_selector(Some(&bad)).is_err());
    }
}
