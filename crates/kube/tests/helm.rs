//! The Helm chart (`deploy/helm/podscale`): `helm lint` passes, and `helm template`
//! renders the generated CRD, the same least-privilege RBAC as `deploy/rbac.yaml` (as
//! a ClusterRole, or a Role in the one watched namespace), and the controller
//! Deployment with leader election.
//!
//! These run the real `helm`: without it on PATH (or `$HELM`) they fail with how to
//! install it (`bash deploy/helm/install-helm.sh`, which `.ci/run` runs).
use std::path::PathBuf;
use std::process::Command;

use podscale_kube::schema::{crd, crd_yaml};
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn chart() -> PathBuf {
    root().join("deploy/helm/podscale")
}

fn helm() -> PathBuf {
    if let Some(h) = std::env::var_os("HELM") {
        return h.into();
    }
    std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("helm"))
                .find(|h| h.is_file())
        })
        .unwrap_or_else(|| {
            panic!(
                "helm is not on PATH: these tests lint and render the chart with it. Install \
                 it with `bash deploy/helm/install-helm.sh` (or run `bash .ci/run`, which does)."
            )
        })
}

fn run(args: &[&str]) -> String {
    let out = Command::new(helm()).args(args).output().expect("helm runs");
    assert!(
        out.status.success(),
        "helm {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// `helm template` of the chart with `--set` values: the rendered objects.
fn template(sets: &[&str]) -> Vec<Value> {
    let chart = chart();
    let mut args = vec![
        "template",
        "podscale",
        chart.to_str().expect("utf-8 path"),
        "--namespace",
        "podscale-system",
        "--include-crds",
    ];
    for s in sets {
        args.extend(["--set", s]);
    }
    let out = run(&args);
    podscale_manifest::parse_documents(&out, "helm template")
        .expect("helm renders YAML")
        .into_iter()
        .map(|d| d.value)
        .filter(|v| !v.is_null())
        .collect()
}

fn find<'a>(objs: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
    objs.iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
}

fn kinds(objs: &[Value]) -> Vec<String> {
    let mut k: Vec<String> = objs
        .iter()
        .map(|o| o["kind"].as_str().unwrap_or_default().to_owned())
        .collect();
    k.sort();
    k
}

/// deploy/rbac.yaml's objects.
fn plain_rbac() -> Vec<Value> {
    let text = std::fs::read_to_string(root().join("deploy/rbac.yaml")).expect("deploy/rbac.yaml");
    podscale_manifest::parse_documents(&text, "deploy/rbac.yaml")
        .expect("yaml")
        .into_iter()
        .map(|d| d.value)
        .collect()
}

#[test]
fn the_charts_crd_is_the_generated_one() {
    let checked_in = std::fs::read_to_string(chart().join("crds/autoscalers.podscale.dev.yaml"))
        .expect("the chart's crds/ holds the CRD");
    assert!(
        checked_in == crd_yaml().expect("serializes"),
        "deploy/helm/podscale/crds/ drifted from the generated CRD: run \
         `podscale crd > deploy/helm/podscale/crds/autoscalers.podscale.dev.yaml`"
    );
}

#[test]
fn the_chart_lints_clean() {
    let chart = chart();
    let out = run(&["lint", "--strict", chart.to_str().expect("utf-8 path")]);
    assert!(out.contains("0 chart(s) failed"), "{out}");
}

#[test]
fn by_default_it_renders_the_controller_with_the_plain_manifests_rbac() {
    let objs = template(&[]);
    assert_eq!(
        kinds(&objs),
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "ConfigMap",
            "CustomResourceDefinition",
            "Deployment",
            "Role",
            "RoleBinding",
            "Service",
            "ServiceAccount"
        ],
        "no ServiceMonitor and no adapter unless asked"
    );
    // The CRD, as generated.
    let c = find(
        &objs,
        "CustomResourceDefinition",
        "autoscalers.podscale.dev",
    )
    .expect("CRD");
    assert_eq!(c, &crd());
    // The same rules as deploy/rbac.yaml, for the Autoscalers and for the Lease.
    let plain = plain_rbac();
    let rules = |objs: &[Value], kind: &str, name: &str| {
        find(objs, kind, name)
            .unwrap_or_else(|| panic!("{kind}/{name}"))
            .get("rules")
            .cloned()
    };
    assert_eq!(
        rules(&objs, "ClusterRole", "podscale"),
        rules(&plain, "ClusterRole", "podscale")
    );
    assert_eq!(
        rules(&objs, "Role", "podscale-leader-election"),
        rules(&plain, "Role", "podscale-leader-election")
    );
    let binding = find(&objs, "ClusterRoleBinding", "podscale").expect("binding");
    assert_eq!(binding["roleRef"]["name"], "podscale");
    assert_eq!(binding["subjects"][0]["name"], "podscale");
    assert_eq!(binding["subjects"][0]["namespace"], "podscale-system");
    // Two replicas, one leader.
    let d = find(&objs, "Deployment", "podscale").expect("Deployment");
    assert_eq!(d["spec"]["replicas"], 2);
    let pod = &d["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "podscale");
    let args: Vec<&str> = pod["containers"][0]["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(args.contains(&"--leader-election"), "{args:?}");
    assert!(args.contains(&"--namespace=all"), "{args:?}");
    assert!(!args.contains(&"--shadow"), "{args:?}");
    assert_eq!(
        pod["containers"][0]["image"],
        "ghcr.io/podscale/podscale:0.1.0"
    );
    // The metrics Service selects the controller's pods.
    let s = find(&objs, "Service", "podscale-metrics").expect("Service");
    for (k, v) in s["spec"]["selector"].as_object().expect("selector") {
        assert_eq!(&d["spec"]["template"]["metadata"]["labels"][k], v);
    }
}

#[test]
fn a_watched_namespace_gets_a_role_there_and_nothing_cluster_wide() {
    let objs = template(&[
        "watchNamespace=ml",
        "metrics.serviceMonitor.enabled=true",
        "shadow=true",
    ]);
    assert!(
        !objs
            .iter()
            .any(|o| o["kind"] == "ClusterRole" || o["kind"] == "ClusterRoleBinding"),
        "{:?}",
        kinds(&objs)
    );
    let role = objs
        .iter()
        .find(|o| o["kind"] == "Role" && o["metadata"]["namespace"] == "ml")
        .expect("a Role in ml");
    let plain = plain_rbac();
    let cluster = find(&plain, "ClusterRole", "podscale").expect("ClusterRole");
    assert_eq!(role["rules"], cluster["rules"]);
    let binding = objs
        .iter()
        .find(|o| o["kind"] == "RoleBinding" && o["metadata"]["namespace"] == "ml")
        .expect("a RoleBinding in ml");
    assert_eq!(binding["roleRef"]["kind"], "Role");
    assert_eq!(binding["subjects"][0]["namespace"], "podscale-system");
    let d = find(&objs, "Deployment", "podscale").expect("Deployment");
    let args = &d["spec"]["template"]["spec"]["containers"][0]["args"];
    assert!(
        args.as_array()
            .is_some_and(|a| a.contains(&"--namespace=ml".into()) && a.contains(&"--shadow".into())),
        "{args}"
    );
    assert!(find(&objs, "ServiceMonitor", "podscale").is_some());
}
