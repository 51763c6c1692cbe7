//! Black-box tests of HPA validation: one table row per rule, each with the exact
//! `file:line:col: field: message` lines expected.

use podscale_manifest::{ValidationOptions, parse_documents, validate_hpa, validate_hpa_with};

const FILE: &str = "hpa.yaml";

/// The valid head of an HPA; a case's `spec` body starts on line 10.
const HEAD: &str = "\
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: web
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: web
";

/// The head plus `body` (lines from 10 on), with a valid `maxReplicas` appended
/// unless the body sets its own.
fn hpa(body: &str) -> String {
    let mut source = format!("{HEAD}{body}");
    if !body.contains("maxReplicas") {
        source.push_str("  maxReplicas: 5\n");
    }
    source
}

fn diagnostics_with(source: &str, options: &ValidationOptions) -> Vec<String> {
    let docs = parse_documents(source, FILE).expect("test manifests parse");
    assert_eq!(docs.len(), 1, "one document expected");
    validate_hpa_with(&docs[0], FILE, options)
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn diagnostics(source: &str) -> Vec<String> {
    diagnostics_with(source, &ValidationOptions::default())
}

/// Runs every case and reports all mismatches at once.
fn check(cases: &[(&str, String, &[&str])]) {
    let mut failures = Vec::new();
    for (name, source, expected) in cases {
        let got = diagnostics(source);
        if got != *expected {
            failures.push(format!(
                "{name}:\n  expected {expected:#?}\n  got      {got:#?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_shared_example_manifests_are_valid() {
    for (name, source) in [
        ("resource", include_str!("data/inference-hpa-resource.yaml")),
        ("custom", include_str!("data/inference-hpa-custom.yaml")),
    ] {
        assert_eq!(diagnostics(source), Vec::<String>::new(), "{name}");
        assert_eq!(
            diagnostics_with(source, &ValidationOptions::upstream()),
            Vec::<String>::new(),
            "{name}"
        );
    }
}

#[test]
fn a_minimal_hpa_is_valid() {
    assert_eq!(diagnostics(&hpa("")), Vec::<String>::new());
}

#[test]
fn type_meta_rules() {
    check(&[
        (
            "wrong apiVersion stops before the spec",
            "apiVersion: autoscaling/v1\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: web\nspec:\n  targetCPUUtilizationPercentage: 80\n".into(),
            &[
                "hpa.yaml:1:13: apiVersion: Unsupported value: \"autoscaling/v1\": supported values: \"autoscaling/v2\"",
            ],
        ),
        (
            "wrong kind",
            "apiVersion: autoscaling/v2\nkind: Deployment\nmetadata:\n  name: web\n".into(),
            &[
                "hpa.yaml:2:7: kind: Unsupported value: \"Deployment\": supported values: \"HorizontalPodAutoscaler\"",
            ],
        ),
        (
            "missing apiVersion, kind and metadata",
            "spec:\n  maxReplicas: 1\n  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}\n".into(),
            &[
                "hpa.yaml:1:1: apiVersion: Required value",
                "hpa.yaml:1:1: kind: Required value",
                "hpa.yaml:1:1: metadata.name: Required value: name or generateName is required",
            ],
        ),
        (
            "unknown top-level field",
            format!("{}replicas: 3\n", hpa("")),
            &["hpa.yaml:11:11: replicas: field not declared in schema"],
        ),
    ]);
}

#[test]
fn object_meta_rules() {
    let meta = |m: &str| {
        format!(
            "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n{m}spec:\n  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: web}}\n  maxReplicas: 5\n"
        )
    };
    check(&[
        (
            "name must be a DNS subdomain",
            meta("  name: Web_Server\n"),
            &[
                "hpa.yaml:4:9: metadata.name: Invalid value: \"Web_Server\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
            ],
        ),
        (
            "empty name",
            meta("  name: \"\"\n"),
            &["hpa.yaml:4:9: metadata.name: Required value: name or generateName is required"],
        ),
        (
            "generateName stands in for name",
            meta("  generateName: web-\n"),
            &[],
        ),
        (
            "namespace must be a DNS label",
            meta("  name: web\n  namespace: ai.inference\n"),
            &[
                "hpa.yaml:5:14: metadata.namespace: Invalid value: \"ai.inference\": must not contain dots",
            ],
        ),
        (
            "label keys and values",
            meta("  name: web\n  labels:\n    -bad: ok\n    good: \"not ok\"\n"),
            &[
                "hpa.yaml:6:5: metadata.labels: Invalid value: \"-bad\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
                "hpa.yaml:7:11: metadata.labels: Invalid value: \"not ok\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
            ],
        ),
        (
            "annotation keys",
            meta("  name: web\n  annotations:\n    a/b/c: x\n"),
            &[
                "hpa.yaml:6:5: metadata.annotations: Invalid value: \"a/b/c\": a valid label key must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
            ],
        ),
        (
            "unknown metadata field",
            meta("  name: web\n  nmespace: x\n"),
            &["hpa.yaml:5:13: metadata.nmespace: field not declared in schema"],
        ),
    ]);
}

#[test]
fn replica_bounds() {
    check(&[
        (
            "minReplicas 0 needs the HPAScaleToZero gate",
            hpa(
                "  minReplicas: 0\n  metrics:\n  - type: External\n    external:\n      metric: {name: queue}\n      target: {type: Value, value: 10}\n",
            ),
            &[
                "hpa.yaml:10:16: spec.minReplicas: Invalid value: 0: must be greater than or equal to 1 (0 is allowed only with the HPAScaleToZero feature gate)",
            ],
        ),
        (
            "negative minReplicas",
            hpa("  minReplicas: -1\n"),
            &[
                "hpa.yaml:10:16: spec.minReplicas: Invalid value: -1: must be greater than or equal to 1",
            ],
        ),
        (
            "maxReplicas below 1",
            hpa("  maxReplicas: 0\n"),
            &["hpa.yaml:10:16: spec.maxReplicas: Invalid value: 0: must be greater than 0"],
        ),
        (
            "maxReplicas below minReplicas",
            hpa("  minReplicas: 7\n  maxReplicas: 5\n"),
            &[
                "hpa.yaml:11:16: spec.maxReplicas: Invalid value: 5: must be greater than or equal to `minReplicas`",
            ],
        ),
        (
            "maxReplicas missing",
            hpa("  minReplicas: 1\n  # no maxReplicas\n").replace("  maxReplicas: 5\n", ""),
            &["hpa.yaml:5:1: spec.maxReplicas: Required value"],
        ),
        (
            "maxReplicas of the wrong type",
            hpa("  maxReplicas: \"ten\"\n"),
            &["hpa.yaml:10:16: spec.maxReplicas: Invalid value: \"ten\": must be an integer"],
        ),
        (
            "maxReplicas not whole",
            hpa("  maxReplicas: 2.5\n"),
            &["hpa.yaml:10:16: spec.maxReplicas: Invalid value: 2.5: must be an integer"],
        ),
        (
            "a whole float is an integer",
            hpa("  maxReplicas: 2.0\n"),
            &[],
        ),
        (
            "maxReplicas beyond int32",
            hpa("  maxReplicas: 3000000000\n"),
            &[
                "hpa.yaml:10:16: spec.maxReplicas: Invalid value: 3000000000: must be an integer between -2147483648 and 2147483647",
            ],
        ),
        (
            "unknown spec field",
            hpa("  replicas: 3\n"),
            &["hpa.yaml:10:13: spec.replicas: field not declared in schema"],
        ),
    ]);
}

#[test]
fn scale_to_zero_with_the_gate() {
    let options = ValidationOptions {
        scale_to_zero: true,
        ..ValidationOptions::default()
    };
    let external = hpa(
        "  minReplicas: 0\n  metrics:\n  - type: External\n    external:\n      metric: {name: queue}\n      target: {type: Value, value: 10}\n",
    );
    assert_eq!(diagnostics_with(&external, &options), Vec::<String>::new());
    let cpu = hpa(
        "  minReplicas: 0\n  metrics:\n  - type: Resource\n    resource:\n      name: cpu\n      target: {type: Utilization, averageUtilization: 50}\n",
    );
    assert_eq!(
        diagnostics_with(&cpu, &options),
        vec![
            "hpa.yaml:11:3: spec.metrics: Forbidden: must specify at least one Object or External metric to support scaling to zero replicas"
        ]
    );
}

#[test]
fn scale_target_ref_rules() {
    let target = |t: &str| {
        format!(
            "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: web\nspec:\n  maxReplicas: 5\n  scaleTargetRef:\n{t}"
        )
    };
    check(&[
        (
            "kind and name required",
            target("    apiVersion: apps/v1\n"),
            &[
                "hpa.yaml:7:3: spec.scaleTargetRef.kind: Required value",
                "hpa.yaml:7:3: spec.scaleTargetRef.name: Required value",
            ],
        ),
        (
            "kind and name must be path segments",
            target("    apiVersion: apps/v1\n    kind: ..\n    name: a/b%c\n"),
            &[
                "hpa.yaml:9:11: spec.scaleTargetRef.kind: Invalid value: \"..\": may not be '..'",
                "hpa.yaml:10:11: spec.scaleTargetRef.name: Invalid value: \"a/b%c\": may not contain '/'",
                "hpa.yaml:10:11: spec.scaleTargetRef.name: Invalid value: \"a/b%c\": may not contain '%'",
            ],
        ),
        (
            "apiVersion needed (podscale check)",
            target("    kind: Deployment\n    name: web\n"),
            &[
                "hpa.yaml:7:3: spec.scaleTargetRef.apiVersion: Required value: must specify the target's API group and version, such as apps/v1",
            ],
        ),
        (
            "apiVersion needs a group (podscale check)",
            target("    apiVersion: v1\n    kind: Deployment\n    name: web\n"),
            &[
                "hpa.yaml:8:17: spec.scaleTargetRef.apiVersion: Invalid value: \"v1\": must be an API group and version, such as apps/v1",
            ],
        ),
        (
            "a ReplicationController lives in the core group",
            target("    apiVersion: v1\n    kind: ReplicationController\n    name: web\n"),
            &[],
        ),
        (
            "scaleTargetRef missing altogether",
            "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: web\nspec:\n  maxReplicas: 5\n".into(),
            &[
                "hpa.yaml:5:1: spec.scaleTargetRef.kind: Required value",
                "hpa.yaml:5:1: spec.scaleTargetRef.name: Required value",
                "hpa.yaml:5:1: spec.scaleTargetRef.apiVersion: Required value: must specify the target's API group and version, such as apps/v1",
            ],
        ),
    ]);
}

#[test]
fn metric_source_rules() {
    check(&[
        (
            "unknown metric type",
            hpa("  metrics:\n  - type: Foo\n"),
            &[
                "hpa.yaml:11:11: spec.metrics[0].type: Unsupported value: \"Foo\": supported values: \"ContainerResource\", \"External\", \"Object\", \"Pods\", \"Resource\"",
            ],
        ),
        (
            "missing metric type",
            hpa(
                "  metrics:\n  - pods:\n      metric: {name: q}\n      target: {type: AverageValue, averageValue: 5}\n",
            ),
            &[
                "hpa.yaml:11:5: spec.metrics[0].type: Required value: must specify a metric source type",
            ],
        ),
        (
            "source for the type missing",
            hpa("  metrics:\n  - type: Pods\n"),
            &[
                "hpa.yaml:11:5: spec.metrics[0].pods: Required value: must populate information for the given metric source",
            ],
        ),
        (
            "two sources set",
            hpa(
                "  metrics:\n  - type: Pods\n    pods:\n      metric: {name: q}\n      target: {type: AverageValue, averageValue: 5}\n    resource:\n      name: cpu\n      target: {type: Utilization, averageUtilization: 50}\n",
            ),
            &[
                "hpa.yaml:15:5: spec.metrics[0].resource: Forbidden: must populate the given metric source only",
            ],
        ),
        (
            "metric item of the wrong type",
            hpa("  metrics:\n  - Pods\n"),
            &["hpa.yaml:11:5: spec.metrics[0]: Invalid value: \"Pods\": must be an object"],
        ),
        (
            "metrics not a list",
            hpa("  metrics: {type: Pods}\n"),
            &["hpa.yaml:10:3: spec.metrics: Invalid value: {\"type\":\"Pods\"}: must be an array"],
        ),
    ]);
}

#[test]
fn resource_metric_rules() {
    let resource = |r: &str| {
        hpa(&format!(
            "  metrics:\n  - type: Resource\n    resource:\n{r}"
        ))
    };
    check(&[
        (
            "name required",
            resource("      target: {type: Utilization, averageUtilization: 50}\n"),
            &[
                "hpa.yaml:12:5: spec.metrics[0].resource.name: Required value: must specify a resource name",
            ],
        ),
        (
            "name must be a container resource (podscale check)",
            resource(
                "      name: CPU\n      target: {type: Utilization, averageUtilization: 50}\n",
            ),
            &[
                "hpa.yaml:13:13: spec.metrics[0].resource.name: Invalid value: \"CPU\": must be a standard resource type or fully qualified",
                "hpa.yaml:13:13: spec.metrics[0].resource.name: Invalid value: \"CPU\": must be a standard resource for containers",
            ],
        ),
        (
            "utilization must be above 0",
            resource(
                "      name: cpu\n      target:\n        type: Utilization\n        averageUtilization: 0\n",
            ),
            &[
                "hpa.yaml:16:29: spec.metrics[0].resource.target.averageUtilization: Invalid value: 0: must be greater than 0",
            ],
        ),
        (
            "no target value",
            resource("      name: cpu\n      target:\n        type: Utilization\n"),
            &[
                "hpa.yaml:14:7: spec.metrics[0].resource.target.averageUtilization: Required value: must set either a target raw value or a target utilization",
            ],
        ),
        (
            "both target values",
            resource(
                "      name: cpu\n      target:\n        type: Utilization\n        averageUtilization: 50\n        averageValue: 500\n",
            ),
            &[
                "hpa.yaml:17:23: spec.metrics[0].resource.target.averageValue: Forbidden: may not set both a target raw value and a target utilization",
            ],
        ),
        (
            "target type unknown",
            resource(
                "      name: cpu\n      target:\n        type: Percent\n        averageUtilization: 50\n",
            ),
            &[
                "hpa.yaml:15:15: spec.metrics[0].resource.target.type: Invalid value: \"Percent\": must be either Utilization, Value, or AverageValue",
            ],
        ),
        (
            "target type missing",
            resource("      name: cpu\n      target:\n        averageUtilization: 50\n"),
            &[
                "hpa.yaml:14:7: spec.metrics[0].resource.target.type: Required value: must specify a metric target type",
            ],
        ),
        (
            "target type not for a resource (podscale check)",
            resource(
                "      name: cpu\n      target:\n        type: Value\n        averageValue: 500\n",
            ),
            &[
                "hpa.yaml:15:15: spec.metrics[0].resource.target.type: Unsupported value: \"Value\": supported values: \"AverageValue\", \"Utilization\"",
            ],
        ),
        (
            "target type and field disagree (podscale check)",
            resource(
                "      name: cpu\n      target:\n        type: AverageValue\n        averageUtilization: 50\n",
            ),
            &[
                "hpa.yaml:14:7: spec.metrics[0].resource.target.averageValue: Required value: must be set when the target type is AverageValue",
            ],
        ),
        (
            "quantity not positive",
            resource(
                "      name: memory\n      target:\n        type: AverageValue\n        averageValue: \"-1\"\n",
            ),
            &[
                "hpa.yaml:16:23: spec.metrics[0].resource.target.averageValue: Invalid value: \"-1\": must be positive",
            ],
        ),
        (
            "unknown target field",
            resource(
                "      name: cpu\n      target:\n        type: Utilization\n        averageUtilization: 50\n        utilization: 50\n",
            ),
            &[
                "hpa.yaml:17:22: spec.metrics[0].resource.target.utilization: field not declared in schema",
            ],
        ),
    ]);
}

#[test]
fn a_bad_quantity_is_reported_with_the_quantity_error() {
    let source = hpa(
        "  metrics:\n  - type: Pods\n    pods:\n      metric: {name: q}\n      target: {type: AverageValue, averageValue: lots}\n",
    );
    let error = "lots"
        .parse::<podscale_core::Quantity>()
        .expect_err("must fail");
    assert_eq!(
        diagnostics(&source),
        vec![format!(
            "hpa.yaml:14:50: spec.metrics[0].pods.target.averageValue: Invalid value: \"lots\": {error}"
        )]
    );
}

#[test]
fn container_resource_metric_rules() {
    let container = |c: &str| {
        hpa(&format!(
            "  metrics:\n  - type: ContainerResource\n    containerResource:\n{c}"
        ))
    };
    check(&[
        (
            "container required",
            container(
                "      name: cpu\n      target: {type: Utilization, averageUtilization: 60}\n",
            ),
            &[
                "hpa.yaml:12:5: spec.metrics[0].containerResource.container: Required value: must specify a container",
            ],
        ),
        (
            "container must be a DNS label",
            container(
                "      name: cpu\n      container: \"---***\"\n      target: {type: Utilization, averageUtilization: 60}\n",
            ),
            &[
                "hpa.yaml:14:18: spec.metrics[0].containerResource.container: Invalid value: \"---***\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
            ],
        ),
        (
            "resource name must be one containers request",
            container(
                "      name: InvalidResource\n      container: app\n      target: {type: Utilization, averageUtilization: 60}\n",
            ),
            &[
                "hpa.yaml:13:13: spec.metrics[0].containerResource.name: Invalid value: \"InvalidResource\": must be a standard resource type or fully qualified",
                "hpa.yaml:13:13: spec.metrics[0].containerResource.name: Invalid value: \"InvalidResource\": must be a standard resource for containers",
            ],
        ),
        (
            "a valid container metric",
            container(
                "      name: nvidia.com/gpu\n      container: app\n      target: {type: AverageValue, averageValue: 1}\n",
            ),
            &[],
        ),
    ]);
}

#[test]
fn pods_metric_rules() {
    let pods = |p: &str| hpa(&format!("  metrics:\n  - type: Pods\n    pods:\n{p}"));
    check(&[
        (
            "metric name required",
            pods("      metric: {}\n      target: {type: AverageValue, averageValue: 5}\n"),
            &[
                "hpa.yaml:13:7: spec.metrics[0].pods.metric.name: Required value: must specify a metric name",
            ],
        ),
        (
            "metric name must be a path segment",
            pods(
                "      metric: {name: \"queue/depth\"}\n      target: {type: AverageValue, averageValue: 5}\n",
            ),
            &[
                "hpa.yaml:13:22: spec.metrics[0].pods.metric.name: Invalid value: \"queue/depth\": may not contain '/'",
            ],
        ),
        (
            "averageValue required",
            pods("      metric: {name: q}\n      target: {type: AverageValue}\n"),
            &[
                "hpa.yaml:14:7: spec.metrics[0].pods.target.averageValue: Required value: must specify a positive target averageValue",
            ],
        ),
        (
            "Value is not a pods target (podscale check)",
            pods("      metric: {name: q}\n      target: {type: Value, averageValue: 5}\n"),
            &[
                "hpa.yaml:14:22: spec.metrics[0].pods.target.type: Unsupported value: \"Value\": supported values: \"AverageValue\"",
            ],
        ),
        (
            "selector operator (podscale check)",
            pods(
                "      metric:\n        name: q\n        selector:\n          matchExpressions:\n          - {key: app, operator: Has}\n      target: {type: AverageValue, averageValue: 5}\n",
            ),
            &[
                "hpa.yaml:17:34: spec.metrics[0].pods.metric.selector.matchExpressions[0].operator: Invalid value: \"Has\": not a valid selector operator",
            ],
        ),
        (
            "selector values with In (podscale check)",
            pods(
                "      metric:\n        name: q\n        selector:\n          matchExpressions:\n          - {key: app, operator: In}\n      target: {type: AverageValue, averageValue: 5}\n",
            ),
            &[
                "hpa.yaml:17:13: spec.metrics[0].pods.metric.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
            ],
        ),
        (
            "selector values with Exists (podscale check)",
            pods(
                "      metric:\n        name: q\n        selector:\n          matchExpressions:\n          - {key: app, operator: Exists, values: [a]}\n      target: {type: AverageValue, averageValue: 5}\n",
            ),
            &[
                "hpa.yaml:17:42: spec.metrics[0].pods.metric.selector.matchExpressions[0].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            ],
        ),
    ]);
}

#[test]
fn object_metric_rules() {
    let object = |o: &str| hpa(&format!("  metrics:\n  - type: Object\n    object:\n{o}"));
    check(&[
        (
            "describedObject kind and name required",
            object(
                "      describedObject: {apiVersion: v1}\n      metric: {name: rps}\n      target: {type: Value, value: 100}\n",
            ),
            &[
                "hpa.yaml:13:7: spec.metrics[0].object.describedObject.kind: Required value",
                "hpa.yaml:13:7: spec.metrics[0].object.describedObject.name: Required value",
            ],
        ),
        (
            "a value or averageValue required",
            object(
                "      describedObject: {apiVersion: v1, kind: Service, name: web}\n      metric: {name: rps}\n      target: {type: Value}\n",
            ),
            &[
                "hpa.yaml:15:7: spec.metrics[0].object.target.averageValue: Required value: must set either a target value or averageValue",
            ],
        ),
        (
            "type Value needs value (podscale check)",
            object(
                "      describedObject: {apiVersion: v1, kind: Service, name: web}\n      metric: {name: rps}\n      target: {type: Value, averageValue: 100}\n",
            ),
            &[
                "hpa.yaml:15:7: spec.metrics[0].object.target.value: Required value: must be set when the target type is Value",
            ],
        ),
        (
            "a valid object metric",
            object(
                "      describedObject: {apiVersion: networking.k8s.io/v1, kind: Ingress, name: web}\n      metric: {name: rps}\n      target: {type: AverageValue, averageValue: 100}\n",
            ),
            &[],
        ),
    ]);
}

#[test]
fn external_metric_rules() {
    let external = |e: &str| {
        hpa(&format!(
            "  metrics:\n  - type: External\n    external:\n{e}"
        ))
    };
    check(&[
        (
            "value or averageValue required",
            external("      metric: {name: queue}\n      target: {type: AverageValue}\n"),
            &[
                "hpa.yaml:14:7: spec.metrics[0].external.target.averageValue: Required value: must set either a target value for metric or a per-pod target",
            ],
        ),
        (
            "not both",
            external(
                "      metric: {name: queue}\n      target: {type: Value, value: 10, averageValue: 1}\n",
            ),
            &[
                "hpa.yaml:14:36: spec.metrics[0].external.target.value: Forbidden: may not set both a target value for metric and a per-pod target",
            ],
        ),
        (
            "value must be positive",
            external("      metric: {name: queue}\n      target: {type: Value, value: 0}\n"),
            &[
                "hpa.yaml:14:36: spec.metrics[0].external.target.value: Invalid value: 0: must be positive",
            ],
        ),
        (
            "matchLabels value (podscale check)",
            external(
                "      metric:\n        name: queue\n        selector:\n          matchLabels: {queue: \"a b\"}\n      target: {type: Value, value: 10}\n",
            ),
            &[
                "hpa.yaml:16:32: spec.metrics[0].external.metric.selector.matchLabels: Invalid value: \"a b\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
            ],
        ),
    ]);
}

#[test]
fn behavior_rules() {
    let behavior = |b: &str| hpa(&format!("  behavior:\n{b}"));
    check(&[
        (
            "stabilization window too long",
            behavior("    scaleUp:\n      stabilizationWindowSeconds: 3601\n"),
            &[
                "hpa.yaml:12:35: spec.behavior.scaleUp.stabilizationWindowSeconds: Invalid value: 3601: must be less than or equal to 3600",
            ],
        ),
        (
            "stabilization window negative",
            behavior("    scaleDown:\n      stabilizationWindowSeconds: -1\n"),
            &[
                "hpa.yaml:12:35: spec.behavior.scaleDown.stabilizationWindowSeconds: Invalid value: -1: must be greater than or equal to zero",
            ],
        ),
        (
            "unknown selectPolicy",
            behavior("    scaleUp:\n      selectPolicy: Foo\n"),
            &[
                "hpa.yaml:12:21: spec.behavior.scaleUp.selectPolicy: Unsupported value: \"Foo\": supported values: \"Disabled\", \"Max\", \"Min\"",
            ],
        ),
        (
            "omitted policies are defaulted",
            behavior("    scaleUp:\n      selectPolicy: Min\n"),
            &[],
        ),
        (
            "an empty policy list",
            behavior("    scaleDown:\n      policies: []\n"),
            &[
                "hpa.yaml:12:7: spec.behavior.scaleDown.policies: Required value: must specify at least one Policy",
            ],
        ),
        (
            "bad policy",
            behavior(
                "    scaleUp:\n      policies:\n      - type: hm\n        value: 0\n        periodSeconds: 1801\n",
            ),
            &[
                "hpa.yaml:13:15: spec.behavior.scaleUp.policies[0].type: Unsupported value: \"hm\": supported values: \"Percent\", \"Pods\"",
                "hpa.yaml:14:16: spec.behavior.scaleUp.policies[0].value: Invalid value: 0: must be greater than zero",
                "hpa.yaml:15:24: spec.behavior.scaleUp.policies[0].periodSeconds: Invalid value: 1801: must be less than or equal to 1800",
            ],
        ),
        (
            "policy fields required",
            behavior("    scaleUp:\n      policies:\n      - {}\n"),
            &[
                "hpa.yaml:13:9: spec.behavior.scaleUp.policies[0].type: Required value",
                "hpa.yaml:13:9: spec.behavior.scaleUp.policies[0].value: Required value",
                "hpa.yaml:13:9: spec.behavior.scaleUp.policies[0].periodSeconds: Required value",
            ],
        ),
        (
            "period not positive",
            behavior(
                "    scaleDown:\n      policies:\n      - {type: Pods, value: 1, periodSeconds: -1}\n",
            ),
            &[
                "hpa.yaml:13:47: spec.behavior.scaleDown.policies[0].periodSeconds: Invalid value: -1: must be greater than zero",
            ],
        ),
        (
            "negative tolerance",
            behavior("    scaleUp:\n      tolerance: \"-1\"\n"),
            &[
                "hpa.yaml:12:18: spec.behavior.scaleUp.tolerance: Invalid value: \"-1\": must be greater or equal to zero",
            ],
        ),
        (
            "zero tolerance",
            behavior("    scaleUp:\n      tolerance: 0\n"),
            &[],
        ),
        (
            "fractional tolerance",
            behavior("    scaleDown:\n      tolerance: 50m\n"),
            &[],
        ),
        (
            "negative fractional tolerance, as a YAML number",
            behavior("    scaleDown:\n      tolerance: -0.05\n"),
            &[
                "hpa.yaml:12:18: spec.behavior.scaleDown.tolerance: Invalid value: -0.05: must be greater or equal to zero",
            ],
        ),
        (
            "unknown rules field",
            behavior("    scaleUp:\n      window: 3\n"),
            &["hpa.yaml:12:15: spec.behavior.scaleUp.window: field not declared in schema"],
        ),
    ]);
}

#[test]
fn every_problem_is_reported_in_position_order() {
    let source = "\
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: Web
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    name: web
  minReplicas: 0
  maxReplicas: \"ten\"
  metrics:
  - type: Resource
    resource:
      name: cpu
      target:
        type: Utilization
        averageUtilization: -5
  behavior:
    scaleDown:
      selectPolicy: Fastest
";
    let got = diagnostics(source);
    assert_eq!(
        got,
        vec![
            "hpa.yaml:4:9: metadata.name: Invalid value: \"Web\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
            "hpa.yaml:6:3: spec.scaleTargetRef.kind: Required value",
            "hpa.yaml:9:16: spec.minReplicas: Invalid value: 0: must be greater than or equal to 1 (0 is allowed only with the HPAScaleToZero feature gate)",
            "hpa.yaml:10:16: spec.maxReplicas: Invalid value: \"ten\": must be an integer",
            "hpa.yaml:11:3: spec.metrics: Forbidden: must specify at least one Object or External metric to support scaling to zero replicas",
            "hpa.yaml:17:29: spec.metrics[0].resource.target.averageUtilization: Invalid value: -5: must be greater than 0",
            "hpa.yaml:20:21: spec.behavior.scaleDown.selectPolicy: Unsupported value: \"Fastest\": supported values: \"Disabled\", \"Max\", \"Min\"",
        ]
    );
}

#[test]
fn json_manifests_are_validated_with_positions() {
    let source = r#"{
  "apiVersion": "autoscaling/v2",
  "kind": "HorizontalPodAutoscaler",
  "metadata": {"name": "web"},
  "spec": {
    "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
    "maxReplicas": 0
  }
}
"#;
    assert_eq!(
        diagnostics(source),
        vec!["hpa.yaml:7:20: spec.maxReplicas: Invalid value: 0: must be greater than 0"]
    );
}

#[test]
fn a_document_that_is_not_an_object() {
    let docs = parse_documents("- a\n- b\n", FILE).expect("must succeed");
    let shown: Vec<String> = validate_hpa(&docs[0], FILE)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        shown,
        vec!["hpa.yaml:1:1: Invalid value: [\"a\",\"b\"]: must be an object"]
    );
}

#[test]
fn upstream_only_options_drop_the_podscale_checks() {
    let source = hpa(
        "  metrics:\n  - type: Pods\n    pods:\n      metric: {name: q}\n      target: {type: Value, averageValue: 5}\n",
    );
    assert_eq!(
        diagnostics_with(&source, &ValidationOptions::upstream()),
        Vec::<String>::new()
    );
    assert_eq!(diagnostics(&source).len(), 1);
}
