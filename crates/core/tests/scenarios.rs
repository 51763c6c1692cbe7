//! Golden scenarios: every `*.json` under `tests/scenarios/` (`examples/`: the shared
//! examples; `upstream/`: ported from kube-controller-manager's unit tests) is evaluated and checked against its
//! `expect` block, mapped onto the output as `shared/examples/scenarios/README.md` says.
//! Adding a case is adding a file.
use std::path::{Path, PathBuf};

use podscale_core::{Quantity, Scenario};
use serde_json::Value;

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect(&p, out);
        } else if p.extension().is_some_and(|x| x == "json") {
            out.push(p);
        }
    }
}

fn milli(v: &Value) -> Option<i64> {
    v.as_str()
        .and_then(|s| s.parse::<Quantity>().ok())
        .map(|q| q.milli_value())
}

/// Checks one scenario; returns the mismatches.
fn check(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).expect("readable");
    let raw: Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => return vec![format!("invalid JSON: {e}")],
    };
    let cases: Vec<Value> = match raw {
        Value::Array(a) => a,
        v => vec![v],
    };
    let mut errs = Vec::new();
    for case in cases {
        let expect = case.get("expect").cloned().unwrap_or(Value::Null);
        let scenario: Scenario = match serde_json::from_value(case) {
            Ok(s) => s,
            Err(e) => {
                errs.push(format!("does not load: {e}"));
                continue;
            }
        };
        let out = match scenario.evaluate() {
            Ok(e) => serde_json::to_value(e.output).expect("serializable"),
            Err(e) => {
                errs.push(format!("does not evaluate: {e}"));
                continue;
            }
        };
        compare(&expect, &out, &mut errs);
    }
    errs
}

fn compare(expect: &Value, out: &Value, errs: &mut Vec<String>) {
    let mut want = |name: &str, exp: &Value, got: &Value| {
        if exp != got {
            errs.push(format!("{name}: expected {exp}, got {got}"));
        }
    };
    if let Some(v) = expect.get("desiredReplicas") {
        want("desiredReplicas", v, &out["desiredReplicas"]);
    }
    if let Some(v) = expect.get("rawRecommendation") {
        want("recommendation", v, &out["recommendation"]);
    }
    if let Some(v) = expect.get("stabilizedRecommendation") {
        want(
            "stabilizedRecommendation",
            v,
            &out["stabilizedRecommendation"],
        );
    }
    if let Some(v) = expect.get("statusUpdated") {
        want("statusChanged", v, &out["statusChanged"]);
    }
    if let Some(v) = expect.get("recommendationsAfter") {
        let got: Vec<Value> = out["history"]["recommendations"]
            .as_array()
            .map(|a| a.iter().map(|r| r["replicas"].clone()).collect())
            .unwrap_or_default();
        want("history.recommendations", v, &Value::Array(got));
    }
    if let Some(v) = expect.get("recommendationsAfterCount") {
        let n = out["history"]["recommendations"]
            .as_array()
            .map_or(0, Vec::len);
        want("history.recommendations.len", v, &Value::from(n));
    }
    let conditions = out["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if let Some(Value::Array(exp)) = expect.get("conditions") {
        let got: Vec<Value> = conditions
            .iter()
            .map(|c| serde_json::json!({"type": c["type"], "status": c["status"], "reason": c["reason"]}))
            .collect();
        let exp: Vec<Value> = exp
            .iter()
            .map(|c| serde_json::json!({"type": c["type"], "status": c["status"], "reason": c["reason"]}))
            .collect();
        want("conditions", &Value::Array(exp), &Value::Array(got));
    }
    if let Some(Value::Object(exp)) = expect.get("conditionReasons") {
        for (t, reason) in exp {
            let got = conditions
                .iter()
                .find(|c| c["type"] == *t)
                .map_or(Value::Null, |c| c["reason"].clone());
            want(&format!("condition {t}"), reason, &got);
        }
    }
    if let Some(Value::Array(exp)) = expect.get("events") {
        let got: Vec<Value> = out["events"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|e| e["type"] == "Normal")
                    .map(|e| serde_json::json!({"reason": e["reason"], "message": e["message"]}))
                    .collect()
            })
            .unwrap_or_default();
        let exp: Vec<Value> = exp
            .iter()
            .map(|e| serde_json::json!({"reason": e["reason"], "message": e["message"]}))
            .collect();
        want("events", &Value::Array(exp), &Value::Array(got));
    }
    if let Some(Value::Array(exp)) = expect.get("metrics") {
        for (i, m) in exp.iter().enumerate() {
            if m.is_null() {
                continue;
            }
            let o = &out["metrics"][i];
            if let Some(v) = m.get("replicas") {
                want(&format!("metrics[{i}].proposal"), v, &o["proposal"]);
            }
            if let Some(v) = m.get("currentAverageUtilization") {
                want(
                    &format!("metrics[{i}].current.averageUtilization"),
                    v,
                    &o["current"]["averageUtilization"],
                );
            }
            if let Some(v) = m.get("currentAverageValueMilli") {
                let got = milli(&o["current"]["averageValue"]).map_or(Value::Null, Value::from);
                want(
                    &format!("metrics[{i}].current.averageValue (milli)"),
                    v,
                    &got,
                );
            }
            if let Some(v) = m.get("currentValueMilli") {
                let got = milli(&o["current"]["value"]).map_or(Value::Null, Value::from);
                want(&format!("metrics[{i}].current.value (milli)"), v, &got);
            }
        }
    }
    if let Some(sub) = expect
        .get("error")
        .and_then(|e| e.get("messageContains"))
        .and_then(Value::as_str)
    {
        let got = out["error"].as_str().unwrap_or("");
        if !got.contains(sub) {
            errs.push(format!(
                "error: expected to contain {sub:?}, got {:?}",
                out["error"]
            ));
        }
    }
}

#[test]
fn every_golden_scenario_matches_kube_controller_manager() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    collect(&root.join("tests/scenarios"), &mut files);
    files.sort();
    assert!(
        files.len() > 12,
        "expected golden scenarios, found {}",
        files.len()
    );
    let mut failures = Vec::new();
    for f in &files {
        let errs = check(f);
        if !errs.is_empty() {
            failures.push(format!("{}:\n    {}", f.display(), errs.join("\n    ")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} scenarios disagree:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}
