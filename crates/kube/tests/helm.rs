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

// ---- The metrics adapter (`adapter.enabled`): deploy/adapter/'s objects. ----

/// `helm template RELEASE` of the chart into podscale-system with raw `helm` arguments
/// (`--set`, `--set-file`): the command's output, or its error output when it fails.
fn render(release: &str, extra: &[&str]) -> Result<String, String> {
    let chart = chart();
    let mut args = vec![
        "template",
        release,
        chart.to_str().expect("utf-8 path"),
        "--namespace",
        "podscale-system",
    ];
    args.extend(extra);
    let out = Command::new(helm())
        .args(&args)
        .output()
        .expect("helm runs");
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).expect("utf-8"))
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The rendered objects of [`render`], which must succeed.
fn objects(release: &str, extra: &[&str]) -> Vec<Value> {
    let out = render(release, extra).unwrap_or_else(|e| panic!("helm template {extra:?}: {e}"));
    podscale_manifest::parse_documents(&out, "helm template")
        .expect("helm renders YAML")
        .into_iter()
        .map(|d| d.value)
        .filter(|v| !v.is_null())
        .collect()
}

/// The objects of one file of deploy/adapter/.
fn plain_adapter(file: &str) -> Vec<Value> {
    let path = root().join("deploy/adapter").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    podscale_manifest::parse_documents(&text, file)
        .expect("yaml")
        .into_iter()
        .map(|d| d.value)
        .collect()
}

fn get<'a>(objs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    find(objs, kind, name).unwrap_or_else(|| panic!("no {kind}/{name} in {:?}", kinds(objs)))
}

fn strs(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .filter_map(Value::as_str)
        .collect()
}

/// A file under the test's scratch directory holding `text`.
fn scratch_file(name: &str, text: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("helm-{name}"));
    std::fs::write(&path, text).expect("write scratch file");
    path
}

/// A PEM certificate as `--set-file` passes it; the chart only checks its shape.
const CA_PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIBdzCCAR2gAwIBAgIUcG9kc2NhbGUtdGVzdC1jYQ==\n-----END CERTIFICATE-----\n";

#[test]
fn by_default_no_adapter_object_is_rendered() {
    for sets in [&[][..], &["--set", "adapter.enabled=false"][..]] {
        let objs = objects("podscale", sets);
        assert!(!objs.is_empty());
        let adapter: Vec<String> = objs
            .iter()
            .filter(|o| {
                o["kind"] == "APIService"
                    || o["metadata"]["name"]
                        .as_str()
                        .is_some_and(|n| n.contains("adapter"))
                    || o["metadata"]["labels"]["app.kubernetes.io/name"] == "podscale-adapter"
            })
            .map(|o| format!("{}/{}", o["kind"], o["metadata"]["name"]))
            .collect();
        assert!(adapter.is_empty(), "{sets:?}: {adapter:?}");
    }
}

#[test]
fn the_adapter_registers_the_three_metrics_apis_on_its_service() {
    let objs = objects("podscale", &["--set", "adapter.enabled=true"]);
    let mut names: Vec<&str> = objs
        .iter()
        .filter(|o| o["kind"] == "APIService")
        .filter_map(|o| o["metadata"]["name"].as_str())
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "v1beta1.custom.metrics.k8s.io",
            "v1beta1.external.metrics.k8s.io",
            "v1beta2.custom.metrics.k8s.io"
        ]
    );
    // With the release named as the plain manifests' objects, the specs are theirs.
    for plain in plain_adapter("apiservice.yaml") {
        let name = plain["metadata"]["name"].as_str().expect("name");
        let rendered = get(&objs, "APIService", name);
        assert_eq!(rendered["spec"], plain["spec"], "{name}");
        assert_eq!(rendered["spec"]["insecureSkipTLSVerify"], true, "{name}");
    }
    // They point at the rendered Service, 443 to the adapter pods' https port 6443.
    let svc = get(&objs, "Service", "podscale-adapter");
    assert_eq!(svc["metadata"]["namespace"], "podscale-system");
    assert_eq!(svc["spec"]["ports"][0]["port"], 443);
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], "https");
    let adapter = get(&objs, "Deployment", "podscale-adapter");
    let pod_labels = &adapter["spec"]["template"]["metadata"]["labels"];
    let port = &adapter["spec"]["template"]["spec"]["containers"][0]["ports"][0];
    assert_eq!(
        (&port["name"], &port["containerPort"]),
        (&"https".into(), &6443.into())
    );
    let selects = |selector: &Value, labels: &Value| {
        selector
            .as_object()
            .expect("selector")
            .iter()
            .all(|(k, v)| &labels[k] == v)
    };
    assert!(
        selects(&svc["spec"]["selector"], pod_labels),
        "{pod_labels}"
    );
    // ... and only them: neither the controller's Deployment nor its metrics Service
    // select the adapter's pods, nor the adapter's Service the controller's.
    let controller = get(&objs, "Deployment", "podscale");
    let controller_labels = &controller["spec"]["template"]["metadata"]["labels"];
    assert!(!selects(
        &controller["spec"]["selector"]["matchLabels"],
        pod_labels
    ));
    assert!(!selects(
        &get(&objs, "Service", "podscale-metrics")["spec"]["selector"],
        pod_labels
    ));
    assert!(!selects(&svc["spec"]["selector"], controller_labels));

    // Another release, in the same namespace: the names follow the release.
    let objs = objects("ml", &["--set", "adapter.enabled=true"]);
    let svc = get(&objs, "Service", "ml-podscale-adapter");
    for o in objs.iter().filter(|o| o["kind"] == "APIService") {
        assert_eq!(o["spec"]["service"]["name"], svc["metadata"]["name"]);
        assert_eq!(o["spec"]["service"]["namespace"], "podscale-system");
        assert_eq!(o["spec"]["service"]["port"], 443);
    }
}

#[test]
fn the_adapters_rbac_is_deploy_adapter_rbac() {
    let objs = objects("podscale", &["--set", "adapter.enabled=true"]);
    let plain = plain_adapter("rbac.yaml");
    assert_eq!(
        plain.len(),
        7,
        "deploy/adapter/rbac.yaml changed: update this test"
    );
    for p in &plain {
        let kind = p["kind"].as_str().expect("kind");
        let name = p["metadata"]["name"].as_str().expect("name");
        let r = get(&objs, kind, name);
        assert_eq!(
            r["metadata"]["namespace"], p["metadata"]["namespace"],
            "{kind}/{name}"
        );
        for field in ["rules", "roleRef", "subjects"] {
            assert_eq!(r.get(field), p.get(field), "{kind}/{name}: {field}");
        }
    }
    // The rules by name, as the issue asks.
    let rules = |objs: &[Value], name: &str| get(objs, "ClusterRole", name)["rules"].clone();
    for role in [
        "podscale-adapter-resource-reader",
        "podscale-adapter-metrics-reader",
    ] {
        assert_eq!(rules(&objs, role), rules(&plain, role), "{role}");
    }
    let reader = get(&objs, "RoleBinding", "podscale-adapter-auth-reader");
    assert_eq!(reader["metadata"]["namespace"], "kube-system");
    assert_eq!(
        reader["roleRef"]["name"],
        "extension-apiserver-authentication-reader"
    );
    let hpa = get(
        &objs,
        "ClusterRoleBinding",
        "podscale-adapter-hpa-controller",
    );
    assert_eq!(hpa["subjects"][0]["name"], "horizontal-pod-autoscaler");
    assert_eq!(hpa["subjects"][0]["namespace"], "kube-system");
    assert_eq!(
        get(&objs, "Deployment", "podscale-adapter")["spec"]["template"]["spec"]["serviceAccountName"],
        "podscale-adapter"
    );

    // More readers of the metrics APIs get their own binding to the same ClusterRole.
    let objs = objects(
        "podscale",
        &[
            "--set",
            "adapter.enabled=true",
            "--set",
            "adapter.metricsReaders[0].name=keda-operator",
            "--set",
            "adapter.metricsReaders[0].namespace=keda",
        ],
    );
    let readers = get(
        &objs,
        "ClusterRoleBinding",
        "podscale-adapter-metrics-readers",
    );
    assert_eq!(
        readers["roleRef"]["name"],
        "podscale-adapter-metrics-reader"
    );
    assert_eq!(
        readers["subjects"],
        serde_json::json!([{"kind": "ServiceAccount", "name": "keda-operator", "namespace": "keda"}])
    );

    // rbac.create=false and adapter.serviceAccount.create=false: none of them.
    let objs = objects(
        "podscale",
        &[
            "--set",
            "adapter.enabled=true",
            "--set",
            "rbac.create=false",
            "--set",
            "adapter.serviceAccount.create=false",
            "--set",
            "adapter.serviceAccount.name=mine",
        ],
    );
    for p in &plain {
        let (kind, name) = (
            p["kind"].as_str().unwrap_or_default(),
            &p["metadata"]["name"],
        );
        assert!(
            !objs
                .iter()
                .any(|o| o["kind"] == kind && &o["metadata"]["name"] == name),
            "{kind}/{name}"
        );
    }
    assert_eq!(
        get(&objs, "Deployment", "podscale-adapter")["spec"]["template"]["spec"]["serviceAccountName"],
        "mine"
    );
}

#[test]
fn the_adapter_deployment_runs_podscale_adapter_with_its_config_mounted() {
    let objs = objects("podscale", &["--set", "adapter.enabled=true"]);
    let plain = plain_adapter("deployment.yaml");
    let d = get(&objs, "Deployment", "podscale-adapter");
    let p = get(&plain, "Deployment", "podscale-adapter");
    assert_eq!(d["metadata"]["namespace"], "podscale-system");
    assert_eq!(d["spec"]["replicas"], 2);
    let (pod, plain_pod) = (
        &d["spec"]["template"]["spec"],
        &p["spec"]["template"]["spec"],
    );
    let (c, pc) = (&pod["containers"][0], &plain_pod["containers"][0]);
    // `podscale adapter --config=/etc/podscale/podscale.yaml --secure-port=6443
    // --tls-san=podscale-adapter.podscale-system.svc`, as the plain manifest.
    assert_eq!(strs(&c["args"]), strs(&pc["args"]));
    assert_eq!(
        strs(&c["args"])[..2],
        ["adapter", "--config=/etc/podscale/podscale.yaml"]
    );
    for field in [
        "ports",
        "livenessProbe",
        "readinessProbe",
        "resources",
        "securityContext",
        "volumeMounts",
    ] {
        assert_eq!(c[field], pc[field], "container {field}");
    }
    assert_eq!(pod["volumes"], plain_pod["volumes"]);
    assert_eq!(pod["securityContext"], plain_pod["securityContext"]);
    // The controller's image and security context.
    let controller = &get(&objs, "Deployment", "podscale")["spec"]["template"]["spec"];
    assert_eq!(c["image"], controller["containers"][0]["image"]);
    assert_eq!(
        c["securityContext"],
        controller["containers"][0]["securityContext"]
    );
    assert_eq!(pod["securityContext"], controller["securityContext"]);
    // The mounted ConfigMap holds podscale.yaml: by default the controller's `config`.
    let mounted = pod["volumes"][0]["configMap"]["name"]
        .as_str()
        .expect("configMap volume");
    let cm = get(&objs, "ConfigMap", mounted);
    assert_eq!(cm["metadata"]["namespace"], "podscale-system");
    assert_eq!(
        cm["data"],
        get(&objs, "ConfigMap", "podscale-config")["data"]
    );

    // adapter.config (here the plain manifest's podscale.yaml, as --set-file passes it)
    // overrides it, and rolls the pods.
    let plain_config = get(&plain, "ConfigMap", "podscale-adapter-config")["data"]["podscale.yaml"]
        .as_str()
        .expect("podscale.yaml")
        .to_owned();
    let file = scratch_file("adapter-podscale.yaml", &plain_config);
    let with_config = objects(
        "podscale",
        &[
            "--set",
            "adapter.enabled=true",
            "--set-file",
            &format!("adapter.config={}", file.display()),
        ],
    );
    let cm = get(&with_config, "ConfigMap", "podscale-adapter-config");
    assert_eq!(
        cm["data"]["podscale.yaml"].as_str(),
        Some(plain_config.as_str())
    );
    assert_eq!(
        get(&objs, "ConfigMap", "podscale-config")["data"],
        get(&with_config, "ConfigMap", "podscale-config")["data"],
        "the controller's config is its own"
    );
    let checksum = |objs: &[Value]| {
        get(objs, "Deployment", "podscale-adapter")["spec"]["template"]["metadata"]["annotations"]
            ["checksum/config"]
            .clone()
    };
    assert!(checksum(&objs).is_string());
    assert_ne!(checksum(&objs), checksum(&with_config));

    // As a map, and with extra flags and its own replicas and resources.
    let objs = objects(
        "podscale",
        &[
            "--set",
            "adapter.enabled=true",
            "--set",
            "adapter.config.prometheus.url=http://prometheus.monitoring:9090",
            "--set",
            "adapter.extraArgs={--request-timeout=10s}",
            "--set",
            "adapter.replicaCount=3",
            "--set",
            "adapter.resources.limits.memory=1Gi",
        ],
    );
    let cm = get(&objs, "ConfigMap", "podscale-adapter-config");
    let text = cm["data"]["podscale.yaml"].as_str().expect("podscale.yaml");
    assert!(
        text.contains("url: http://prometheus.monitoring:9090"),
        "{text}"
    );
    let d = get(&objs, "Deployment", "podscale-adapter");
    assert_eq!(d["spec"]["replicas"], 3);
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(strs(&c["args"]).last(), Some(&"--request-timeout=10s"));
    assert_eq!(c["resources"]["limits"]["memory"], "1Gi");
}

#[test]
fn adapter_tls_serves_the_secrets_certificate_and_the_apiservices_verify_it() {
    use k8s_openapi::ByteString;
    let pem = scratch_file("ca.pem", CA_PEM);
    let b64 = serde_json::to_value(ByteString(CA_PEM.as_bytes().to_vec())).expect("base64");
    let b64 = b64.as_str().expect("string");
    let as_pem = objects(
        "podscale",
        &[
            "--set",
            "adapter.enabled=true",
            "--set",
            "adapter.tls.secretName=adapter-tls",
            "--set-file",
            &format!("adapter.tls.caBundle={}", pem.display()),
        ],
    );
    let as_base64 = objects(
        "podscale",
        &[
            "--set",
            "adapter.enabled=true",
            "--set",
            "adapter.tls.secretName=adapter-tls",
            "--set",
            &format!("adapter.tls.caBundle={b64}"),
        ],
    );
    for objs in [&as_pem, &as_base64] {
        let apis: Vec<&Value> = objs.iter().filter(|o| o["kind"] == "APIService").collect();
        assert_eq!(apis.len(), 3);
        for api in apis {
            assert_eq!(api["spec"]["caBundle"], b64, "{}", api["metadata"]["name"]);
            assert!(api["spec"].get("insecureSkipTLSVerify").is_none(), "{api}");
        }
        let pod = &get(objs, "Deployment", "podscale-adapter")["spec"]["template"]["spec"];
        let args = strs(&pod["containers"][0]["args"]);
        assert!(
            args.contains(&"--tls-cert-file=/etc/podscale-tls/tls.crt"),
            "{args:?}"
        );
        assert!(
            args.contains(&"--tls-private-key-file=/etc/podscale-tls/tls.key"),
            "{args:?}"
        );
        assert!(!args.iter().any(|a| a.starts_with("--tls-san")), "{args:?}");
        let tls_volume = pod["volumes"]
            .as_array()
            .expect("volumes")
            .iter()
            .find(|v| v["secret"]["secretName"] == "adapter-tls")
            .expect("the Secret is a volume");
        let mount = pod["containers"][0]["volumeMounts"]
            .as_array()
            .expect("mounts")
            .iter()
            .find(|m| m["name"] == tls_volume["name"])
            .expect("and mounted");
        assert_eq!(mount["mountPath"], "/etc/podscale-tls");
        assert_eq!(mount["readOnly"], true);
    }
    // Without them: the self-signed certificate, no Secret.
    let objs = objects("podscale", &["--set", "adapter.enabled=true"]);
    let pod = &get(&objs, "Deployment", "podscale-adapter")["spec"]["template"]["spec"];
    assert!(
        !strs(&pod["containers"][0]["args"])
            .iter()
            .any(|a| a.starts_with("--tls-cert-file"))
    );
    assert_eq!(pod["volumes"].as_array().map(Vec::len), Some(1));
}

#[test]
fn bad_adapter_values_fail_the_render_with_what_is_expected() {
    let cases: [(&[&str], &str); 4] = [
        (
            &["--set", "adapter.tls.secretName=adapter-tls"],
            "adapter.tls.secretName needs adapter.tls.caBundle",
        ),
        (
            &["--set", "adapter.tls.caBundle=Zm9v"],
            "adapter.tls.caBundle needs adapter.tls.secretName",
        ),
        (
            &[
                "--set",
                "adapter.tls.secretName=s",
                "--set",
                "adapter.tls.caBundle=not-a-ca",
            ],
            "adapter.tls.caBundle: expected the PEM",
        ),
        (
            &["--set", "adapter.metricsReaders[0].name=keda-operator"],
            "adapter.metricsReaders: each entry needs a name and a namespace",
        ),
    ];
    for (sets, expected) in cases {
        let mut args = vec!["--set", "adapter.enabled=true"];
        args.extend(sets);
        match render("podscale", &args) {
            Ok(out) => panic!("{sets:?} rendered:\n{out}"),
            Err(e) => assert!(e.contains(expected), "{sets:?}: {e}"),
        }
        // The same values with the adapter off are not looked at.
        assert!(render("podscale", sets).is_ok(), "{sets:?}");
    }
}

#[test]
fn the_chart_lints_clean_with_the_adapter() {
    let chart = chart();
    let pem = scratch_file("lint-ca.pem", CA_PEM);
    let ca = format!("adapter.tls.caBundle={}", pem.display());
    for extra in [
        &["--set", "adapter.enabled=true"][..],
        &[
            "--set",
            "adapter.enabled=true",
            "--set",
            "adapter.tls.secretName=adapter-tls",
            "--set-file",
            &ca,
        ][..],
    ] {
        let mut args = vec!["lint", "--strict", chart.to_str().expect("utf-8 path")];
        args.extend(extra);
        let out = run(&args);
        assert!(out.contains("0 chart(s) failed"), "{extra:?}: {out}");
    }
}

#[test]
fn the_adapters_objects_are_well_typed_kubernetes_objects() {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
    use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, RoleBinding};
    use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
    fn typed<T: serde::de::DeserializeOwned>(o: &Value) {
        if let Err(e) = serde_json::from_value::<T>(o.clone()) {
            panic!("{}/{}: {e}", o["kind"], o["metadata"]["name"]);
        }
    }
    let pem = scratch_file("typed-ca.pem", CA_PEM);
    let objs = objects(
        "podscale",
        &[
            "--set",
            "adapter.enabled=true",
            "--set",
            "adapter.tls.secretName=adapter-tls",
            "--set-file",
            &format!("adapter.tls.caBundle={}", pem.display()),
        ],
    );
    let adapter: Vec<&Value> = objs
        .iter()
        .filter(|o| {
            o["kind"] == "APIService"
                || o["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.contains("adapter"))
        })
        .collect();
    assert_eq!(adapter.len(), 13, "{:?}", kinds(&objs));
    for o in adapter {
        match o["kind"].as_str().unwrap_or_default() {
            "APIService" => {
                typed::<APIService>(o);
                let api: APIService = serde_json::from_value(o.clone()).expect("typed");
                let ca = api.spec.and_then(|s| s.ca_bundle).expect("caBundle");
                assert_eq!(ca.0, CA_PEM.as_bytes(), "the CA, decoded");
            }
            "Deployment" => typed::<Deployment>(o),
            "Service" => typed::<Service>(o),
            "ConfigMap" => typed::<ConfigMap>(o),
            "ServiceAccount" => typed::<ServiceAccount>(o),
            "ClusterRole" => typed::<ClusterRole>(o),
            "ClusterRoleBinding" => typed::<ClusterRoleBinding>(o),
            "RoleBinding" => typed::<RoleBinding>(o),
            other => panic!("unexpected {other}"),
        }
    }
}

#[test]
fn the_adapters_pod_values_apply_to_its_pods_only() {
    let objs = objects(
        "podscale",
        &[
            "--set",
            "adapter.enabled=true",
            "--set",
            "adapter.podAnnotations.team=ml",
            "--set",
            "adapter.podLabels.tier=metrics",
            "--set",
            "adapter.nodeSelector.pool=system",
            "--set",
            "adapter.tolerations[0].key=dedicated",
            "--set",
            "adapter.tolerations[0].operator=Exists",
            "--set",
            "adapter.priorityClassName=system-cluster-critical",
            "--set",
            "imagePullSecrets[0].name=registry",
            "--set",
            "image.tag=0.2.0",
        ],
    );
    let adapter = &get(&objs, "Deployment", "podscale-adapter")["spec"]["template"];
    let controller = &get(&objs, "Deployment", "podscale")["spec"]["template"];
    assert_eq!(adapter["metadata"]["annotations"]["team"], "ml");
    assert_eq!(adapter["metadata"]["labels"]["tier"], "metrics");
    let pod = &adapter["spec"];
    assert_eq!(pod["nodeSelector"]["pool"], "system");
    assert_eq!(pod["tolerations"][0]["key"], "dedicated");
    assert_eq!(pod["priorityClassName"], "system-cluster-critical");
    // Shared with the controller: the image and where it is pulled from.
    assert_eq!(pod["imagePullSecrets"][0]["name"], "registry");
    assert_eq!(
        pod["containers"][0]["image"],
        "ghcr.io/podscale/podscale:0.2.0"
    );
    assert_eq!(
        pod["containers"][0]["image"],
        controller["spec"]["containers"][0]["image"]
    );
    // The adapter's values are not the controller's.
    assert!(controller["metadata"]["annotations"].get("team").is_none());
    assert!(controller["metadata"]["labels"].get("tier").is_none());
    assert!(controller["spec"].get("nodeSelector").is_none());
    assert!(controller["spec"].get("priorityClassName").is_none());
}

/// The HPA `patch` rule and the flag come only with `shadow` and `shadowAnnotate`
/// together: a chart that grants it without the flag (or the flag without the grant)
/// would be either over-privileged or broken.
#[test]
fn shadow_annotate_grants_hpa_patch_and_passes_the_flag_only_with_shadow() {
    fn hpa_patch(objs: &[Value]) -> bool {
        objs.iter()
            .filter(|o| o["kind"] == "ClusterRole" || o["kind"] == "Role")
            .flat_map(|o| o["rules"].as_array().cloned().unwrap_or_default())
            .any(|r| {
                let has = |field: &str, want: &str| {
                    r[field]
                        .as_array()
                        .is_some_and(|v| v.iter().any(|x| x == want))
                };
                has("resources", "horizontalpodautoscalers") && has("verbs", "patch")
            })
    }
    fn args(objs: &[Value]) -> Vec<String> {
        objs.iter()
            .filter(|o| o["kind"] == "Deployment")
            .flat_map(|o| {
                o["spec"]["template"]["spec"]["containers"][0]["args"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .filter_map(|a| a.as_str().map(str::to_owned))
            .collect()
    }
    for (sets, want) in [
        (vec![], false),
        (vec!["shadow=true"], false),
        (vec!["shadowAnnotate=true"], false),
        (vec!["shadow=true", "shadowAnnotate=true"], true),
    ] {
        let objs = template(&sets);
        assert_eq!(hpa_patch(&objs), want, "RBAC with {sets:?}");
        let a = args(&objs);
        assert_eq!(
            a.iter().any(|x| x == "--shadow-annotate"),
            want,
            "args with {sets:?}: {a:?}"
        );
    }
}
