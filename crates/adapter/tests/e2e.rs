//! End to end on a real cluster (`KUBECONFIG`, e.g. kube-lab started with `LAB_HPA=1`
//! so the built-in HPA controller runs): the adapter runs in-process as the
//! `podscale-adapter` ServiceAccount of `deploy/adapter/rbac.yaml` (so that RBAC is
//! what is tested), reads a real Prometheus, and is registered with the APIServices
//! through an `ExternalName` Service to localhost. Then:
//! - `kubectl get --raw` reads the seed's `inference_queue_depth` through the
//!   aggregator (front proxy certificate, `X-Remote-User`);
//! - a ServiceAccount token authorized by RBAC reads `inference_queue_depth` and
//!   `gpu_utilization_avg` with its selector from the adapter over HTTPS, with the
//!   values Prometheus holds; one without the binding is refused;
//! - the built-in HPA with the seed's custom-metrics manifest scales on them.
//!
//! Run: `LAB_HPA=1 $KUBE_LAB/up.sh; KUBECONFIG=$KUBE_LAB/kubeconfig cargo test -p
//! podscale-adapter --test e2e -- --ignored --nocapture`.
#[path = "../../metrics/tests/support/mod.rs"]
mod prom;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use podscale_adapter::run::{Options, TlsSource};
use podscale_adapter::server::Limits;
use prom::{Exporter, Prometheus, PrometheusOptions, TempDir};
use serde_json::Value;

const NS: &str = "ai-inference";
const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

fn kubectl(args: &[&str], stdin: Option<&str>) -> (bool, String) {
    use std::io::Write as _;
    let mut cmd = Command::new("kubectl");
    cmd.args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("kubectl on PATH");
    if let Some(s) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(s.as_bytes())
            .expect("write stdin");
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().expect("kubectl");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn must(args: &[&str], stdin: Option<&str>) -> String {
    let (ok, out) = kubectl(args, stdin);
    assert!(ok, "kubectl {}: {out}", args.join(" "));
    out
}

/// Polls `f` (at most `secs`): I/O waiting for the cluster.
fn wait_until<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn by_pod(list: &Value) -> BTreeMap<String, String> {
    list["items"]
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|i| {
            (
                i["describedObject"]["name"]
                    .as_str()
                    .expect("name")
                    .to_owned(),
                i["value"].as_str().expect("value").to_owned(),
            )
        })
        .collect()
}

const WORKLOAD: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: ai-inference}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: inference-server, namespace: ai-inference}
spec:
  replicas: 3
  selector: {matchLabels: {app: inference-server}}
  template:
    metadata: {labels: {app: inference-server}}
    spec:
      containers: [{name: vllm, image: vllm/vllm-openai:latest}]
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: metrics-reader, namespace: ai-inference}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: stranger, namespace: ai-inference}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: podscale-adapter-e2e-metrics-reader}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: podscale-adapter-metrics-reader}
subjects: [{kind: ServiceAccount, name: metrics-reader, namespace: ai-inference}]
"#;

fn registration(port: u16) -> String {
    let apiservices = std::fs::read_to_string(format!("{ROOT}/deploy/adapter/apiservice.yaml"))
        .expect("deploy/adapter/apiservice.yaml")
        .replace("port: 443}", &format!("port: {port}}}"));
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: podscale-adapter, namespace: podscale-system}}\n\
         spec: {{type: ExternalName, externalName: localhost}}\n---\n{apiservices}"
    )
}

fn cleanup() {
    for a in [
        "v1beta1.custom.metrics.k8s.io",
        "v1beta2.custom.metrics.k8s.io",
        "v1beta1.external.metrics.k8s.io",
    ] {
        let _ = kubectl(&["delete", "apiservice", a, "--ignore-not-found"], None);
    }
    let _ = kubectl(
        &[
            "delete",
            "service",
            "podscale-adapter",
            "-n",
            "podscale-system",
            "--ignore-not-found",
        ],
        None,
    );
    let _ = kubectl(
        &[
            "delete",
            "clusterrolebinding",
            "podscale-adapter-e2e-metrics-reader",
            "--ignore-not-found",
        ],
        None,
    );
    let _ = kubectl(
        &[
            "delete",
            "namespace",
            NS,
            "--ignore-not-found",
            "--wait=false",
        ],
        None,
    );
}

/// A kubeconfig for the cluster of `$KUBECONFIG` that authenticates with `token`.
fn token_kubeconfig(dir: &TempDir, token: &str) -> std::path::PathBuf {
    let server = must(
        &[
            "config",
            "view",
            "--raw",
            "--minify",
            "-o",
            "jsonpath={.clusters[0].cluster.server}",
        ],
        None,
    );
    let ca = must(
        &[
            "config",
            "view",
            "--raw",
            "--minify",
            "-o",
            "jsonpath={.clusters[0].cluster.certificate-authority-data}",
        ],
        None,
    );
    let path = dir.path().join("adapter.kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters: [{{name: c, cluster: {{server: {server}, certificate-authority-data: {ca}}}}}]\n\
             users: [{{name: u, user: {{token: {token}}}}}]\ncontexts: [{{name: c, context: {{cluster: c, user: u}}}}]\ncurrent-context: c\n"
        ),
    )
    .expect("write kubeconfig");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs KUBECONFIG"]
async fn the_hpa_scales_on_metrics_served_by_the_adapter() {
    cleanup();
    wait_until(120, "the old namespace to go", || {
        (!kubectl(&["get", "namespace", NS], None).0).then_some(())
    });
    must(
        &[
            "apply",
            "-f",
            &format!("{ROOT}/deploy/namespace.yaml"),
            "-f",
            &format!("{ROOT}/deploy/adapter/rbac.yaml"),
        ],
        None,
    );
    must(&["apply", "-f", "-"], Some(WORKLOAD));

    // The Deployment's pods (no kubelet: they are marked Running and Ready by hand).
    let pods: Vec<String> = wait_until(60, "3 pods", || {
        let (_, out) = kubectl(
            &[
                "get",
                "pods",
                "-n",
                NS,
                "-l",
                "app=inference-server",
                "-o",
                "jsonpath={.items[*].metadata.name}",
            ],
            None,
        );
        let names: Vec<String> = out.split_whitespace().map(str::to_owned).collect();
        (names.len() == 3).then_some(names)
    });
    for p in &pods {
        must(
            &[
                "patch",
                "pod",
                p,
                "-n",
                NS,
                "--subresource=status",
                "--type=merge",
                "-p",
                r#"{"status":{"phase":"Running","conditions":[{"type":"Ready","status":"True"}]}}"#,
            ],
            None,
        );
    }
    let queue = [120, 80, 100];
    let mut exposition = String::from("# TYPE vllm:num_requests_waiting gauge\n");
    for (p, q) in pods.iter().zip(queue) {
        exposition += &format!("vllm:num_requests_waiting{{namespace=\"{NS}\",pod=\"{p}\"}} {q}\n");
    }
    exposition += "DCGM_FI_DEV_GPU_UTIL{deployment=\"inference-server\",gpu=\"0\"} 90\n\
                   DCGM_FI_DEV_GPU_UTIL{deployment=\"inference-server\",gpu=\"1\"} 70\n\
                   DCGM_FI_DEV_GPU_UTIL{deployment=\"other\",gpu=\"0\"} 5\n";
    let exporter = Exporter::start(&exposition);
    let prometheus = Prometheus::start(PrometheusOptions {
        targets: vec![exporter.address()],
        ..Default::default()
    })
    .expect("prometheus");
    prometheus.wait_for("DCGM_FI_DEV_GPU_UTIL");

    // The adapter, as its own ServiceAccount.
    let dir = TempDir::new("adapter-e2e");
    let token = must(
        &[
            "create",
            "token",
            "podscale-adapter",
            "-n",
            "podscale-system",
        ],
        None,
    );
    let kubeconfig = token_kubeconfig(&dir, token.trim());
    let config = podscale_metrics::config::Config::from_source(
        &format!(
            "prometheus: {{url: {}, timeout: 5s}}\nmetrics:\n\
             - {{name: inference_queue_depth, type: pods, preset: vllm/requests-waiting}}\n\
             - {{name: gpu_utilization_avg, type: external, preset: dcgm/gpu-utilization, maxAge: 1m}}\n",
            prometheus.url
        ),
        "podscale.yaml",
    )
    .expect("config");
    let port = prom::free_port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let adapter = tokio::spawn(podscale_adapter::run::run(
        Options {
            config,
            kubeconfig: Some(kubeconfig),
            context: None,
            bind: ([127, 0, 0, 1], port).into(),
            tls: TlsSource::SelfSigned {
                names: vec!["localhost".into()],
            },
            limits: Limits::default(),
        },
        async move {
            let _ = stopped.await;
        },
    ));
    must(&["apply", "-f", "-"], Some(&registration(port)));
    for a in [
        "v1beta1.custom.metrics.k8s.io",
        "v1beta2.custom.metrics.k8s.io",
        "v1beta1.external.metrics.k8s.io",
    ] {
        let r = kubectl(
            &[
                "wait",
                "--for=condition=Available",
                &format!("apiservice/{a}"),
                "--timeout=90s",
            ],
            None,
        );
        assert!(r.0, "{a}: {}\nadapter: {:?}", r.1, adapter.is_finished());
    }
    let expected: BTreeMap<String, String> = pods
        .iter()
        .cloned()
        .zip(queue.map(|q| q.to_string()))
        .collect();

    // Through the aggregator (front proxy).
    let raw = |path: &str| -> Value {
        let out = must(&["get", "--raw", path], None);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{path}: {e}: {out}"))
    };
    let discovery = raw("/apis/custom.metrics.k8s.io/v1beta1");
    assert!(
        discovery.to_string().contains("pods/inference_queue_depth"),
        "{discovery}"
    );
    let pods_path = format!(
        "/apis/custom.metrics.k8s.io/v1beta1/namespaces/{NS}/pods/*/inference_queue_depth?labelSelector=app%3Dinference-server"
    );
    assert_eq!(by_pod(&raw(&pods_path)), expected);
    let ext_path = format!(
        "/apis/external.metrics.k8s.io/v1beta1/namespaces/{NS}/gpu_utilization_avg?labelSelector=deployment%3Dinference-server"
    );
    assert_eq!(raw(&ext_path)["items"][0]["value"], "80");

    // Straight to the adapter over HTTPS with ServiceAccount tokens.
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .expect("client");
    let reader = must(&["create", "token", "metrics-reader", "-n", NS], None);
    let stranger = must(&["create", "token", "stranger", "-n", NS], None);
    let get = |path: String, token: String| {
        let client = client.clone();
        async move {
            let resp = client
                .get(format!("https://127.0.0.1:{port}{path}"))
                .bearer_auth(token.trim())
                .send()
                .await
                .expect("request");
            let code = resp.status().as_u16();
            (code, resp.json::<Value>().await.expect("json"))
        }
    };
    let (code, list) = get(pods_path.clone(), reader.clone()).await;
    assert_eq!(code, 200, "{list}");
    assert_eq!(by_pod(&list), expected);
    let (code, ext) = get(ext_path.clone(), reader.clone()).await;
    assert_eq!(code, 200, "{ext}");
    assert_eq!(ext["items"][0]["value"], "80");
    let (code, status) = get(pods_path.clone(), stranger.clone()).await;
    assert_eq!(
        (code, status["reason"].as_str()),
        (403, Some("Forbidden")),
        "{status}"
    );
    let (code, _) = get(pods_path.clone(), "not-a-token".into()).await;
    assert_eq!(code, 401);

    // The built-in HPA: queue 100 per pod against 50 → 6 replicas (GPU: 80 against 70
    // → 2; the larger wins).
    must(
        &[
            "apply",
            "-f",
            &format!("{ROOT}/examples/manifests/inference-hpa-custom.yaml"),
        ],
        None,
    );
    let replicas = wait_until(180, "the HPA to scale the Deployment to 6", || {
        let (_, out) = kubectl(
            &[
                "get",
                "deployment",
                "inference-server",
                "-n",
                NS,
                "-o",
                "jsonpath={.spec.replicas}",
            ],
            None,
        );
        (out.trim() == "6").then_some(6)
    });
    assert_eq!(replicas, 6);
    let hpa = must(
        &["get", "hpa", "inference-server-hpa", "-n", NS, "-o", "json"],
        None,
    );
    let hpa: Value = serde_json::from_str(&hpa).expect("hpa json");
    let current: Vec<String> = hpa["status"]["currentMetrics"]
        .as_array()
        .expect("currentMetrics")
        .iter()
        .map(|m| m.to_string())
        .collect();
    assert!(
        current.iter().any(|m| m.contains("inference_queue_depth")),
        "{current:?}"
    );

    cleanup();
    let _ = stop.send(());
    let _ = adapter.await;
}
