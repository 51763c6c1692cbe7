//! `deploy/crd.yaml` is what `podscale crd` prints: this fails when they drift.
use podscale_kube::crd::Autoscaler;
use podscale_kube::schema::{crd, crd_yaml};

#[test]
fn the_checked_in_crd_is_the_generated_one() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/crd.yaml");
    let checked_in = std::fs::read_to_string(path).expect("deploy/crd.yaml exists");
    let generated = crd_yaml().expect("serializes");
    assert!(
        checked_in == generated,
        "deploy/crd.yaml drifted from the generated CRD: run `podscale crd > deploy/crd.yaml`"
    );
}

#[test]
fn the_crd_names_the_resource_type() {
    use kube::Resource as _;
    let c = crd();
    assert_eq!(c["metadata"]["name"], "autoscalers.podscale.dev");
    assert_eq!(c["spec"]["names"]["kind"], Autoscaler::kind(&()).as_ref());
    assert_eq!(c["spec"]["group"], Autoscaler::group(&()).as_ref());
    assert_eq!(c["spec"]["names"]["shortNames"][0], "psa");
    let v = &c["spec"]["versions"][0];
    assert_eq!(v["name"], Autoscaler::version(&()).as_ref());
    assert!(v["subresources"]["status"].is_object());
    assert!(v["subresources"].get("scale").is_none());
    let cols: Vec<&str> = v["additionalPrinterColumns"]
        .as_array()
        .expect("columns")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(
        cols,
        [
            "Reference",
            "Targets",
            "MinPods",
            "MaxPods",
            "Replicas",
            "Age"
        ]
    );
}

/// Every field the HPA spec has is in the schema (the API server prunes unknown
/// fields: a missing one would silently vanish from stored objects).
#[test]
fn the_schema_covers_every_field_of_a_full_hpa_spec() {
    let spec = serde_json::json!({
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "x"},
        "minReplicas": 1, "maxReplicas": 5,
        "metrics": [
            {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}},
            {"type": "ContainerResource", "containerResource": {"name": "cpu", "container": "c", "target": {"type": "AverageValue", "averageValue": "100m"}}},
            {"type": "Pods", "pods": {"metric": {"name": "q", "selector": {"matchLabels": {"a": "b"}, "matchExpressions": [{"key": "k", "operator": "In", "values": ["v"]}]}}, "target": {"type": "AverageValue", "averageValue": "2"}}},
            {"type": "Object", "object": {"describedObject": {"apiVersion": "v1", "kind": "Service", "name": "s"}, "metric": {"name": "rps"}, "target": {"type": "Value", "value": "10"}}},
            {"type": "External", "external": {"metric": {"name": "e"}, "target": {"type": "Value", "value": "1"}}}
        ],
        "behavior": {
            "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "tolerance": "0.05", "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15}]},
            "scaleDown": {"stabilizationWindowSeconds": 300}
        },
        "podscale": {"syncPeriod": "30s", "tolerance": "0.05", "metricFailurePolicy": "Hold"}
    });
    let c = crd();
    let schema = &c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
    fn check(value: &serde_json::Value, schema: &serde_json::Value, path: &str) {
        match value {
            serde_json::Value::Object(m) => {
                if schema.get("additionalProperties").is_some() {
                    return;
                }
                for (k, v) in m {
                    let sub = &schema["properties"][k];
                    assert!(sub.is_object(), "{path}.{k} is not in the schema");
                    check(v, sub, &format!("{path}.{k}"));
                }
            }
            serde_json::Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    check(v, &schema["items"], &format!("{path}[{i}]"));
                }
            }
            _ => {}
        }
    }
    check(&spec, schema, "spec");
    // And the typed resource reads it back with the podscale block.
    let a: Autoscaler =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "x"}, "spec": spec}))
            .expect("typed");
    assert_eq!(a.spec.hpa.max_replicas, 5);
    assert_eq!(
        a.spec.podscale.expect("podscale").sync_period.as_deref(),
        Some("30s")
    );
}
