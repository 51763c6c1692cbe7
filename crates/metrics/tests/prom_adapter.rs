//! Migration from prometheus-adapter on real-world configs (fixtures under
//! `fixtures/prometheus-adapter/`): the Helm chart's default rules and its documented
//! resource rules, vLLM production-stack's rules as the chart renders them into a
//! ConfigMap, and a per-pod vLLM rule; each conversion's queries are checked, and its
//! `podscale.yaml` read back by the config reader. Series discovery and the converted
//! queries then run against a real Prometheus (see `support`).
mod support;

use std::path::PathBuf;
use std::time::Duration;

use podscale_metrics::config::{Config, MetricKind, PrometheusConfig, ResourceSource};
use podscale_metrics::prom_adapter::{
    self, AdapterConfig, Conversion, DISCOVERY_LOOKBACK, Series, SeriesInfo, Severity,
};
use podscale_metrics::prometheus::{PrometheusClient, QueryResult};
use podscale_metrics::template::{self, Context};
use support::{Exporter, Prometheus, PrometheusOptions};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/prometheus-adapter")
        .join(name)
}

fn load(name: &str) -> AdapterConfig {
    AdapterConfig::load(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// (type, name, query) of every converted metric.
fn metrics(c: &Conversion) -> Vec<(MetricKind, String, String)> {
    c.config
        .metrics
        .iter()
        .map(|m| (m.kind, m.name.clone(), m.query.clone().unwrap_or_default()))
        .collect()
}

/// Notes without the fixture's directory, which differs between machines.
fn notes(c: &Conversion) -> Vec<String> {
    let file = fixture("x");
    let dir = format!("{}/", file.parent().expect("a directory").display());
    c.notes
        .iter()
        .map(|n| n.to_string().replace(&dir, ""))
        .collect()
}

/// The conversion's `podscale.yaml` is accepted by the config reader and reads back as
/// the same metrics and resources.
fn assert_round_trips(c: &Conversion) {
    let yaml = c.to_yaml();
    let back =
        Config::from_source(&yaml, "podscale.yaml").unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    assert_eq!(back.metrics, c.config.metrics, "{yaml}");
    assert_eq!(back.resources, c.config.resources, "{yaml}");
    assert_eq!(back.prometheus, c.config.prometheus, "{yaml}");
}

const CONTAINERS: &str = r#"{__name__=~"^container_.*",container!="POD",namespace!="",pod!=""}"#;
const NAMESPACED: &str = r#"{namespace!="",__name__!~"^container_.*"}"#;

fn series(name: &str, labels: &[&str]) -> Series {
    Series {
        name: name.into(),
        labels: labels.iter().map(|l| (*l).to_owned()).collect(),
    }
}

#[test]
fn the_helm_default_rules_need_prometheus_to_name_their_metrics() {
    let c = prom_adapter::convert(&load("helm-default-rules.yaml"), None);
    assert!(c.config.metrics.is_empty());
    let family = |line, q: &str| {
        format!(
            "not translated: helm-default-rules.yaml:{line}:16: rules[{}].seriesQuery: {q:?} matches a family of series: needs --prometheus to discover names",
            match line {
                6 => 0,
                19 => 1,
                33 => 2,
                46 => 3,
                55 => 4,
                _ => 5,
            }
        )
    };
    assert_eq!(
        notes(&c),
        vec![
            family(6, CONTAINERS),
            family(19, CONTAINERS),
            family(33, CONTAINERS),
            family(46, NAMESPACED),
            family(55, NAMESPACED),
            family(64, NAMESPACED),
        ]
    );
    assert!(c.incomplete());
    assert_round_trips(&c);
}

fn discovered() -> Vec<SeriesInfo> {
    vec![
        SeriesInfo {
            series_query: CONTAINERS.into(),
            unexamined: 0,
            series: vec![
                series(
                    "container_cpu_usage_seconds_total",
                    &["container", "cpu", "id", "namespace", "pod"],
                ),
                series(
                    "container_memory_working_set_bytes",
                    &["container", "id", "namespace", "pod"],
                ),
                series(
                    "container_network_receive_bytes_total",
                    &["interface", "namespace", "pod"],
                ),
            ],
        },
        SeriesInfo {
            series_query: NAMESPACED.into(),
            unexamined: 0,
            series: vec![
                series(
                    "vllm:num_requests_waiting",
                    &["instance", "job", "model_name", "namespace", "pod"],
                ),
                series(
                    "vllm:prompt_tokens_total",
                    &["model_name", "namespace", "pod"],
                ),
                series("process_cpu_seconds_total", &["namespace", "pod"]),
                series(
                    "kube_deployment_status_replicas",
                    &["deployment", "namespace"],
                ),
            ],
        },
    ]
}

#[test]
fn the_helm_default_rules_translate_the_discovered_series() {
    let found = discovered();
    let c = prom_adapter::convert(&load("helm-default-rules.yaml"), Some(&found));
    let pods = |name: &str, query: &str| (MetricKind::Pods, name.to_owned(), query.to_owned());
    assert_eq!(
        metrics(&c),
        vec![
            // Counters in seconds: rate over 5m, `container_` and `_seconds_total` cut.
            pods(
                "cpu_usage",
                r#"sum(rate(container_cpu_usage_seconds_total{namespace="{{namespace}}",pod=~"{{pods}}",container!="POD",{{selector}}}[5m])) by (pod)"#
            ),
            // Other counters: rate over 5m, `_total` cut.
            pods(
                "network_receive_bytes",
                r#"sum(rate(container_network_receive_bytes_total{namespace="{{namespace}}",pod=~"{{pods}}",container!="POD",{{selector}}}[5m])) by (pod)"#
            ),
            // Gauges: as they are.
            pods(
                "memory_working_set_bytes",
                r#"sum(container_memory_working_set_bytes{namespace="{{namespace}}",pod=~"{{pods}}",container!="POD",{{selector}}}) by (pod)"#
            ),
            // Any namespaced gauge, under its own name.
            pods(
                "vllm:num_requests_waiting",
                r#"sum(vllm:num_requests_waiting{namespace="{{namespace}}",pod=~"{{pods}}",{{selector}}}) by (pod)"#
            ),
            pods(
                "vllm:prompt_tokens",
                r#"sum(rate(vllm:prompt_tokens_total{namespace="{{namespace}}",pod=~"{{pods}}",{{selector}}}[5m])) by (pod)"#
            ),
            pods(
                "process_cpu",
                r#"sum(rate(process_cpu_seconds_total{namespace="{{namespace}}",pod=~"{{pods}}",{{selector}}}[5m])) by (pod)"#
            ),
        ]
    );
    assert_eq!(
        notes(&c),
        vec![
            "note: helm-default-rules.yaml:49:3: rules[3].resources: series \"kube_deployment_status_replicas\" carry none of the rule's pod or object labels: the adapter serves them for no pod or object either",
            "note: helm-default-rules.yaml:50:15: rules[3].resources.template: the template also makes any label named after a resource (service, deployment, …) an object: only the pod mapping is converted; write Object metrics by hand",
            "note: helm-default-rules.yaml:59:15: rules[4].resources.template: the template also makes any label named after a resource (service, deployment, …) an object: only the pod mapping is converted; write Object metrics by hand",
            "note: helm-default-rules.yaml:67:15: rules[5].resources.template: the template also makes any label named after a resource (service, deployment, …) an object: only the pod mapping is converted; write Object metrics by hand",
        ]
    );
    assert!(!c.incomplete());
    assert_eq!(c.origins[3].rule, "rules[3]");
    assert_eq!(c.origins[3].series, "vllm:num_requests_waiting");
    assert_round_trips(&c);
}

#[test]
fn the_vllm_production_stack_rules_become_namespace_object_metrics() {
    let c = prom_adapter::convert(&load("vllm-production-stack-configmap.yaml"), None);
    assert_eq!(
        metrics(&c),
        vec![
            (
                MetricKind::Object,
                "vllm_num_requests_waiting".to_owned(),
                r#"(sum by(namespace) (vllm:num_requests_waiting)) and on(namespace) label_replace(vector(1), "namespace", "{{objectName}}", "", "")"#.to_owned()
            ),
            (
                MetricKind::Object,
                "vllm_num_incoming_requests_total".to_owned(),
                r#"(sum by(namespace, model) (vllm:num_incoming_requests_total)) and on(namespace) label_replace(vector(1), "namespace", "{{objectName}}", "", "")"#.to_owned()
            ),
        ]
    );
    let n = notes(&c);
    // The chart's default rules, inside the ConfigMap's block: positions in the file.
    assert_eq!(
        n[0],
        format!(
            "not translated: vllm-production-stack-configmap.yaml:15:20: rules[0].seriesQuery: {CONTAINERS:?} matches a family of series: needs --prometheus to discover names"
        )
    );
    assert_eq!(
        n.iter()
            .filter(|n| n.contains("needs --prometheus"))
            .count(),
        6,
        "{n:#?}"
    );
    assert_eq!(
        n[6],
        "note: vllm-production-stack-configmap.yaml:86:9: rules[6].resources.overrides: its Object metrics answer for any described object's name; the adapter served them for namespace objects only"
    );
    assert_eq!(c.origins[0].rule, "rules[6]");
    assert_eq!(c.origins[0].at.line, 81);
    assert_round_trips(&c);
}

#[test]
fn the_vllm_pods_and_external_rules_convert_without_prometheus() {
    let c = prom_adapter::convert(&load("vllm-pods-rules.yaml"), None);
    assert_eq!(
        metrics(&c),
        vec![
            (
                MetricKind::Pods,
                "vllm_num_requests_waiting".to_owned(),
                r#"sum(vllm:num_requests_waiting{namespace="{{namespace}}",pod=~"{{pods}}",{{selector}}}) by (pod)"#.to_owned()
            ),
            (
                MetricKind::External,
                "vllm_requests_waiting_by_model".to_owned(),
                r#"sum(vllm:num_requests_waiting{namespace="{{namespace}}",{{selector}}}) by (model_name)"#.to_owned()
            ),
        ]
    );
    assert_eq!(notes(&c), Vec::<String>::new());
    assert_round_trips(&c);
}

#[test]
fn the_helm_resource_rules_become_prometheus_resources() {
    let c = prom_adapter::convert(&load("helm-resource-rules.yaml"), None);
    let r = &c.config.resources;
    assert_eq!(r.source, ResourceSource::Prometheus);
    assert_eq!(
        r.cpu_query.as_deref(),
        Some(
            "sum by (pod,container) (\n  rate(container_cpu_usage_seconds_total{container!=\"\",namespace=\"{{namespace}}\",pod=~\"{{pods}}\"}[3m])\n)\n"
        )
    );
    assert_eq!(
        r.memory_query.as_deref(),
        Some(
            "sum by (pod,container) (\n  avg_over_time(container_memory_working_set_bytes{container!=\"\",namespace=\"{{namespace}}\",pod=~\"{{pods}}\"}[3m])\n)\n"
        )
    );
    assert_eq!(r.window, Some(Duration::from_secs(180)));
    assert_eq!(
        notes(&c),
        vec![
            "note: helm-resource-rules.yaml:12:7: resourceRules.cpu.nodeQuery: node metrics (kubectl top node) are not read by podscale: an HPA reads pods only",
            "note: helm-resource-rules.yaml:30:7: resourceRules.memory.nodeQuery: node metrics (kubectl top node) are not read by podscale: an HPA reads pods only",
        ]
    );
    assert_round_trips(&c);
}

const EXPOSITION: &str = r#"# TYPE container_cpu_usage_seconds_total counter
container_cpu_usage_seconds_total{namespace="ai-inference",pod="vllm-0",container="vllm"} 1000
container_cpu_usage_seconds_total{namespace="ai-inference",pod="vllm-0",container="POD"} 1
# TYPE container_memory_working_set_bytes gauge
container_memory_working_set_bytes{namespace="ai-inference",pod="vllm-0",container="vllm"} 34359738368
container_memory_working_set_bytes{namespace="ai-inference",pod="vllm-1",container="vllm"} 17179869184
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{namespace="ai-inference",pod="vllm-0",model_name="llama"} 7
vllm:num_requests_waiting{namespace="ai-inference",pod="vllm-0",model_name="mistral"} 5
vllm:num_requests_waiting{namespace="ai-inference",pod="vllm-1",model_name="llama"} 3
vllm:num_requests_waiting{namespace="other",pod="vllm-9",model_name="llama"} 100
# TYPE kube_deployment_status_replicas gauge
kube_deployment_status_replicas{namespace="ai-inference",deployment="vllm"} 2
"#;

/// Runs a converted query template against Prometheus: (label value, value) pairs.
async fn run(
    client: &PrometheusClient,
    template_text: &str,
    ctx: &Context<'_>,
    label: &str,
) -> Vec<(String, f64)> {
    let query = template::render(template_text, ctx).expect("renders");
    let response = client
        .query(&query, None)
        .await
        .unwrap_or_else(|e| panic!("{query}: {e}"));
    let QueryResult::Vector(v) = response.result else {
        panic!("{query}: not a vector")
    };
    let mut out: Vec<(String, f64)> = v
        .into_iter()
        .map(|s| (s.labels.get(label).cloned().unwrap_or_default(), s.value))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_and_the_converted_queries_work_on_a_real_prometheus() {
    let exporter = Exporter::start(EXPOSITION);
    let Some(prom) = Prometheus::start(PrometheusOptions {
        targets: vec![exporter.address()],
        ..PrometheusOptions::default()
    }) else {
        return;
    };
    prom.wait_for("kube_deployment_status_replicas");
    // Two samples, so the 5m rate has a value.
    prom.wait_for("rate(container_cpu_usage_seconds_total[5m])");
    let client = PrometheusClient::new(&PrometheusConfig::new(&prom.url)).expect("client");

    // Discovery: one lookup per distinct seriesQuery, names and label names.
    let mut adapter = load("helm-default-rules.yaml");
    let vllm = load("vllm-pods-rules.yaml");
    adapter
        .rules
        .get_or_insert_default()
        .extend(vllm.rules.clone().unwrap_or_default());
    adapter.external_rules = vllm.external_rules.clone();
    let found = prom_adapter::discover(&client, &adapter, DISCOVERY_LOOKBACK)
        .await
        .expect("discovers");
    let names = |q: &str| -> Vec<String> {
        found
            .iter()
            .find(|s| s.series_query == q)
            .map(|s| s.series.iter().map(|s| s.name.clone()).collect())
            .unwrap_or_default()
    };
    assert_eq!(
        found.len(),
        4,
        "{:?}",
        found.iter().map(|f| &f.series_query).collect::<Vec<_>>()
    );
    assert_eq!(
        names(CONTAINERS),
        vec![
            "container_cpu_usage_seconds_total".to_owned(),
            "container_memory_working_set_bytes".to_owned()
        ]
    );
    assert_eq!(
        names(NAMESPACED),
        vec![
            "kube_deployment_status_replicas".to_owned(),
            "vllm:num_requests_waiting".to_owned()
        ]
    );
    let vllm_series = &found
        .iter()
        .find(|s| s.series_query == NAMESPACED)
        .expect("found")
        .series;
    assert!(
        vllm_series.contains(&series(
            "vllm:num_requests_waiting",
            &["instance", "job", "model_name", "namespace", "pod"]
        )),
        "{vllm_series:?}"
    );

    // The lookups discovery is built on, and their bound.
    let all = client.series(NAMESPACED, None, None).await.expect("series");
    assert_eq!(all.series.len(), 5, "{:?}", all.series);
    assert!(all.series.iter().all(|s| s.get("namespace").is_some()));
    let values = client
        .labels(Some("model_name"), NAMESPACED, None, None)
        .await
        .expect("label values");
    assert_eq!(
        values.values,
        vec!["llama".to_owned(), "mistral".to_owned()]
    );
    let small = PrometheusClient::new(&PrometheusConfig {
        max_series: 4,
        ..PrometheusConfig::new(&prom.url)
    })
    .expect("client");
    let e = small
        .series(NAMESPACED, None, None)
        .await
        .expect_err("5 series over a limit of 4");
    assert!(
        e.to_string()
            .ends_with("the series lookup returned more than 4 series (prometheus.maxSeries): narrow the series selector or raise the limit"),
        "{e}"
    );

    let mut c = prom_adapter::convert(&adapter, Some(&found));
    c.set_prometheus_url(&prom.url);
    assert_round_trips(&c);
    let query = |kind: MetricKind, name: &str| -> String {
        c.config
            .metric(kind, name)
            .and_then(|m| m.query.clone())
            .unwrap_or_else(|| panic!("no {kind:?} {name}: {:#?}", metrics(&c)))
    };
    let pods = vec!["vllm-0".to_owned(), "vllm-1".to_owned()];
    let ctx = Context {
        namespace: "ai-inference",
        pods: Some(&pods),
        name: "x",
        ..Context::default()
    };
    // The Helm rule's gauge per pod, with the HPA selector's slot left empty.
    assert_eq!(
        run(
            &client,
            &query(MetricKind::Pods, "vllm:num_requests_waiting"),
            &ctx,
            "pod"
        )
        .await,
        vec![("vllm-0".to_owned(), 12.0), ("vllm-1".to_owned(), 3.0)]
    );
    // The same with a selector, as the adapter adds it to the label matchers.
    let selector = podscale_core::api::LabelSelector {
        match_labels: Some([("model_name".to_owned(), "llama".to_owned())].into()),
        match_expressions: None,
    };
    let with_selector = Context {
        selector: Some(&selector),
        ..ctx.clone()
    };
    assert_eq!(
        run(
            &client,
            &query(MetricKind::Pods, "vllm_num_requests_waiting"),
            &with_selector,
            "pod"
        )
        .await,
        vec![("vllm-0".to_owned(), 7.0), ("vllm-1".to_owned(), 3.0)]
    );
    // The external rule: no pod matcher, grouped as its query says.
    assert_eq!(
        run(
            &client,
            &query(MetricKind::External, "vllm_requests_waiting_by_model"),
            &ctx,
            "model_name"
        )
        .await,
        vec![("llama".to_owned(), 10.0), ("mistral".to_owned(), 5.0)]
    );
    // The counter rule: a rate, of the non-POD container only.
    let cpu = run(&client, &query(MetricKind::Pods, "cpu_usage"), &ctx, "pod").await;
    assert_eq!(cpu.len(), 1, "{cpu:?}");
    assert_eq!(cpu[0], ("vllm-0".to_owned(), 0.0));
    assert_eq!(
        run(
            &client,
            &query(MetricKind::Pods, "memory_working_set_bytes"),
            &ctx,
            "pod"
        )
        .await,
        vec![
            ("vllm-0".to_owned(), 34_359_738_368.0),
            ("vllm-1".to_owned(), 17_179_869_184.0)
        ]
    );
    assert!(
        c.config
            .metric(MetricKind::Pods, "kube_deployment_status_replicas")
            .is_none()
    );

    // The chart's resource rules: per pod and container, as podscale reads them.
    let resources = prom_adapter::convert(&load("helm-resource-rules.yaml"), None);
    let memory = resources
        .config
        .resources
        .memory_query
        .clone()
        .expect("memory query");
    let rendered = template::render(&memory, &ctx).expect("renders");
    let QueryResult::Vector(v) = client.query(&rendered, None).await.expect("runs").result else {
        panic!("not a vector")
    };
    let mut per_container: Vec<(String, String, f64)> = v
        .iter()
        .map(|s| {
            (
                s.labels.get("pod").cloned().unwrap_or_default(),
                s.labels.get("container").cloned().unwrap_or_default(),
                s.value,
            )
        })
        .collect();
    per_container.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        per_container,
        vec![
            ("vllm-0".to_owned(), "vllm".to_owned(), 34_359_738_368.0),
            ("vllm-1".to_owned(), "vllm".to_owned(), 17_179_869_184.0)
        ]
    );

    // What `--adapter-config` runs: read, discover, convert.
    let from_file = prom_adapter::convert_file(&fixture("vllm-pods-rules.yaml"), Some(&client))
        .await
        .expect("converts");
    assert_eq!(
        metrics(&from_file),
        metrics(&prom_adapter::convert(&load("vllm-pods-rules.yaml"), None))
    );

    // vLLM production-stack's namespace rule: the described namespace's series only.
    let ps = prom_adapter::convert(&load("vllm-production-stack-configmap.yaml"), None);
    let object = ps
        .config
        .metric(MetricKind::Object, "vllm_num_requests_waiting")
        .and_then(|m| m.query.clone())
        .expect("object metric");
    let described = Context {
        object_kind: "Namespace",
        object_name: "ai-inference",
        ..ctx.clone()
    };
    assert_eq!(
        run(&client, &object, &described, "namespace").await,
        vec![("ai-inference".to_owned(), 15.0)]
    );
    assert!(
        ps.notes
            .iter()
            .any(|n| n.severity == Severity::NotTranslated)
    );
}
