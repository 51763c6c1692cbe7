//! End to end against a real API server (issue 7 item 11): a custom metrics adapter
//! registered through the aggregation layer that serves `custom.metrics.k8s.io` at
//! `v1beta1` only. `podscale metrics --scenario` reads it, `podscale explain` decides,
//! and the built-in HPA controller of the same API server decides on the same state:
//! the two must agree.
//!
//! Needs a cluster with the built-in HPA controller on and no other custom metrics
//! APIService; the kube-lab (`/work/shared/kube-lab/`, README) is one:
//!
//!     LAB_HPA=1 $KUBE_LAB/up.sh
//!     KUBECONFIG=$KUBE_LAB/kubeconfig cargo test -p podscale --test kube_lab -- --ignored --nocapture
//!
//! `PODSCALE_BIN=path` runs another podscale build instead of this one. Also `python3`
//! (the adapter, `crates/metrics/tests/e2e/adapter.py`), `openssl` (its
//! certificate) and `kubectl`. Everything the test creates (a namespace, an
//! APIService) is deleted at the end, the APIService first, so the namespace's
//! deletion does not wait on an adapter that is gone.
use std::io::{BufRead as _, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const APISERVICE: &str = "v1beta1.custom.metrics.k8s.io";

fn kubectl(args: &[&str]) -> Result<String, String> {
    let out = Command::new("kubectl")
        .args(args)
        .output()
        .map_err(|e| format!("kubectl: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "kubectl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn kubectl_apply(manifest: &str) {
    let mut child = Command::new("kubectl")
        .args(["apply", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("kubectl");
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), manifest.as_bytes())
        .expect("write manifest");
    assert!(
        child.wait().expect("kubectl").success(),
        "kubectl apply:\n{manifest}"
    );
}

/// Polls `f` every half second, at most `tries` times.
fn poll<T>(what: &str, tries: u32, mut f: impl FnMut() -> Option<T>) -> T {
    for _ in 0..tries {
        if let Some(v) = f() {
            return v;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("{what}: not within {} s", tries / 2);
}

/// What the test started and created, undone on drop (also when it fails).
struct Cleanup {
    adapter: Option<Child>,
    namespace: String,
    dir: PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = kubectl(&[
            "delete",
            "apiservice",
            APISERVICE,
            "--ignore-not-found",
            "--wait=false",
        ]);
        let _ = kubectl(&[
            "delete",
            "namespace",
            &self.namespace,
            "--ignore-not-found",
            "--wait=false",
        ]);
        if let Some(mut a) = self.adapter.take() {
            let _ = a.kill();
            let _ = a.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn podscale(args: &[&str], dir: &Path) -> std::process::Output {
    // PODSCALE_BIN: another build to compare (e.g. one from before the fix).
    let bin = std::env::var_os("PODSCALE_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_podscale")),
        PathBuf::from,
    );
    Command::new(bin)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("runs podscale")
}

#[test]
#[ignore = "needs KUBECONFIG (a cluster with the HPA controller on: LAB_HPA=1 kube-lab), python3, openssl"]
fn a_v1beta1_only_adapter_is_read_and_podscale_agrees_with_the_builtin_hpa() {
    assert!(
        std::env::var_os("KUBECONFIG").is_some(),
        "set KUBECONFIG (e.g. $KUBE_LAB/kubeconfig)"
    );
    assert!(
        kubectl(&["get", "apiservice", APISERVICE]).is_err(),
        "{APISERVICE} is already registered: this test registers its own adapter"
    );
    let dir = std::env::temp_dir().join(format!("podscale-kube-lab-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let namespace = format!("podscale-e2e-{}", std::process::id());
    let mut cleanup = Cleanup {
        adapter: None,
        namespace: namespace.clone(),
        dir: dir.clone(),
    };

    // The adapter: HTTPS on loopback with a throwaway self-signed certificate.
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let ok = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ])
        .args([
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .expect("openssl");
    assert!(ok.success(), "openssl req");
    let values = dir.join("values.json");
    std::fs::write(&values, "{}").expect("values");
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../metrics/tests/e2e/adapter.py");
    let mut adapter = Command::new("python3")
        .arg(&script)
        .arg(port.to_string())
        .args([&cert, &key, &values, &dir.join("requests.log")])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 adapter.py");
    let mut banner = String::new();
    BufReader::new(adapter.stdout.take().expect("stdout"))
        .read_line(&mut banner)
        .expect("adapter banner");
    assert!(banner.contains("serving"), "{banner}");
    cleanup.adapter = Some(adapter);

    // Registered as the cluster's custom metrics API, v1beta1 only.
    kubectl(&["create", "namespace", &namespace]).expect("namespace");
    kubectl_apply(&format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: custom-metrics, namespace: {namespace}}}\n\
         spec: {{type: ExternalName, externalName: localhost}}\n---\n\
         apiVersion: apiregistration.k8s.io/v1\nkind: APIService\nmetadata: {{name: {APISERVICE}}}\n\
         spec:\n  group: custom.metrics.k8s.io\n  version: v1beta1\n  insecureSkipTLSVerify: true\n  \
         groupPriorityMinimum: 100\n  versionPriority: 100\n  \
         service: {{namespace: {namespace}, name: custom-metrics, port: {port}}}\n"
    ));
    kubectl(&[
        "wait",
        "--for=condition=Available",
        &format!("apiservice/{APISERVICE}"),
        "--timeout=90s",
    ])
    .expect("the APIService becomes Available");

    // Two Running, Ready pods of a Deployment (no kubelet: the test writes their status).
    kubectl_apply(&format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: test-app, namespace: {namespace}}}\n\
         spec:\n  replicas: 2\n  selector: {{matchLabels: {{app: test-app}}}}\n  template:\n    \
         metadata: {{labels: {{app: test-app}}}}\n    spec:\n      containers:\n      \
         - {{name: app, image: registry.k8s.io/pause:3.10, resources: {{requests: {{cpu: 100m}}}}}}\n"
    ));
    let pods: Vec<String> = poll("two pods", 120, || {
        let out = kubectl(&[
            "-n",
            &namespace,
            "get",
            "pods",
            "-l",
            "app=test-app",
            "-o",
            "name",
        ])
        .ok()?;
        let pods: Vec<String> = out
            .lines()
            .map(|l| l.trim_start_matches("pod/").to_owned())
            .collect();
        (pods.len() == 2).then_some(pods)
    });
    let since = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(600);
    for pod in &pods {
        kubectl(&[
            "-n", &namespace, "patch", "pod", pod, "--subresource=status", "--type=merge", "-p",
            &format!(
                r#"{{"status":{{"phase":"Running","startTime":"{since:.0}","conditions":[{{"type":"Ready","status":"True","lastTransitionTime":"{since:.0}"}}]}}}}"#
            ),
        ])
        .expect("pod status");
    }
    // 200 per pod against a target of 100 per pod: ceil(2 × 200/100) = 4.
    let per_pod: serde_json::Map<String, serde_json::Value> =
        pods.iter().map(|p| (p.clone(), "200".into())).collect();
    std::fs::write(
        &values,
        serde_json::json!({"test_metric": per_pod}).to_string(),
    )
    .expect("values");

    let hpa = format!(
        "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\n\
         metadata: {{name: test-app, namespace: {namespace}}}\n\
         spec:\n  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: test-app}}\n  \
         minReplicas: 1\n  maxReplicas: 10\n  metrics:\n  - type: Pods\n    pods:\n      \
         metric: {{name: test_metric}}\n      target: {{type: AverageValue, averageValue: '100'}}\n"
    );
    std::fs::write(dir.join("hpa.yaml"), &hpa).expect("hpa.yaml");
    std::fs::write(dir.join("podscale.yaml"), "kubernetes:\n  timeout: 10s\n").expect("config");

    // podscale first, on the state before any rescale.
    let out = podscale(
        &[
            "metrics",
            "hpa.yaml",
            "--config",
            "podscale.yaml",
            "--scenario",
            "scenario.yaml",
        ],
        &dir,
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!(
        "podscale metrics:\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Observed now, asserted at the end, so a failing run still shows the comparison.
    let metrics_ok = out.status.success();
    // It asked the adapter for v1beta1, through the aggregation layer.
    let requests = std::fs::read_to_string(dir.join("requests.log")).unwrap_or_default();
    let asked_v1beta1 = requests.lines().any(|l| {
        !l.starts_with("system:")
            && l.contains(&format!(
                " /apis/custom.metrics.k8s.io/v1beta1/namespaces/{namespace}/pods/%2A/test_metric?"
            ))
    });
    let out = podscale(&["explain", "scenario.yaml", "-o", "json"], &dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let explained: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let ours = explained["desiredReplicas"]
        .as_i64()
        .expect("desiredReplicas");
    let text = podscale(&["explain", "scenario.yaml"], &dir);
    eprintln!(
        "podscale explain:\n{}",
        String::from_utf8_lossy(&text.stdout)
    );

    // Then the built-in HPA on the same state: its first rescale event.
    kubectl_apply(&hpa);
    let event = poll(
        "the HPA's first rescale (is the HPA controller on? LAB_HPA=1)",
        240,
        || {
            let out = kubectl(&[
                "-n",
                &namespace,
                "get",
                "events",
                "--field-selector",
                "involvedObject.kind=HorizontalPodAutoscaler,reason=SuccessfulRescale",
                "-o",
                "jsonpath={.items[*].message}",
            ])
            .ok()?;
            (!out.trim().is_empty()).then(|| out.trim().to_owned())
        },
    );
    eprintln!("built-in HPA: {event}");
    eprintln!(
        "adapter requests:\n{}",
        std::fs::read_to_string(dir.join("requests.log")).unwrap_or_default()
    );
    eprintln!("podscale: desiredReplicas {ours}");
    let theirs: i64 = event
        .strip_prefix("New size: ")
        .and_then(|r| r.split(';').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected event: {event}"));
    assert!(metrics_ok, "podscale metrics reported errors (see above)");
    assert!(
        asked_v1beta1,
        "podscale did not ask the adapter for v1beta1"
    );
    assert!(
        event.contains("pods metric test_metric above target"),
        "{event}"
    );
    assert_eq!(ours, theirs, "podscale {ours}, built-in HPA {theirs}");
    assert_eq!(ours, 4);
    drop(cleanup);
}
