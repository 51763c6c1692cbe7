//! What the adapter serves, from `podscale.yaml`: every configured metric by API, and
//! the discovery documents that list them the way prometheus-adapter does
//! (`custom.metrics.k8s.io`: `pods/<metric>` for Pods metrics, `namespaces/<metric>`
//! and `<resource>.<group>/<metric>` for Object metrics; `external.metrics.k8s.io`:
//! `<metric>`), each with kind `MetricValueList` / `ExternalMetricValueList` and verb
//! `get`.
//!
//! An Object metric's query names its object through `{{objectKind}}` and
//! `{{objectName}}`, so it can describe any kind: the adapter lists it for the
//! well-known kinds of [`OBJECT_RESOURCES`] (prometheus-adapter lists the resources its
//! series are labelled with; podscale's config has no such labels).
use std::collections::BTreeSet;

use podscale_metrics::config::{Config, MetricKind};

use crate::api::{self, ApiResource};

/// A resource an Object metric may describe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectResource {
    /// The plural resource name (`deployments`).
    pub resource: &'static str,
    /// The API group, empty for the core group.
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
}

impl ObjectResource {
    /// `deployments.apps`, `services`: the name in paths and discovery
    /// (`schema.GroupResource.String()`).
    pub fn group_resource(&self) -> String {
        if self.group.is_empty() {
            self.resource.to_owned()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }

    /// `apps/v1`, `v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_owned()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

const fn res(
    resource: &'static str,
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    namespaced: bool,
) -> ObjectResource {
    ObjectResource {
        resource,
        group,
        version,
        kind,
        namespaced,
    }
}

/// The kinds an Object metric is served for (an HPA's `describedObject` is almost
/// always one of these).
pub const OBJECT_RESOURCES: &[ObjectResource] = &[
    res("namespaces", "", "v1", "Namespace", false),
    res("services", "", "v1", "Service", true),
    res("pods", "", "v1", "Pod", true),
    res("deployments", "apps", "v1", "Deployment", true),
    res("statefulsets", "apps", "v1", "StatefulSet", true),
    res("replicasets", "apps", "v1", "ReplicaSet", true),
    res("daemonsets", "apps", "v1", "DaemonSet", true),
    res("jobs", "batch", "v1", "Job", true),
    res("ingresses", "networking.k8s.io", "v1", "Ingress", true),
    res("nodes", "", "v1", "Node", false),
];

/// The resource a path segment names (`deployments.apps`, `deployments`, `pods`), as
/// the API server's RESTMapper would resolve a group-less name to the core or only
/// group.
pub fn object_resource(segment: &str) -> Option<&'static ObjectResource> {
    let (resource, group) = segment.split_once('.').unwrap_or((segment, ""));
    OBJECT_RESOURCES
        .iter()
        .find(|r| r.resource == resource && r.group == group)
        .or_else(|| {
            // A bare plural of a non-core resource (`deployments`): unambiguous here.
            if group.is_empty() {
                OBJECT_RESOURCES.iter().find(|r| r.resource == resource)
            } else {
                None
            }
        })
}

/// The configured metrics by API.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalogue {
    pub pods: BTreeSet<String>,
    pub objects: BTreeSet<String>,
    pub external: BTreeSet<String>,
}

impl Catalogue {
    pub fn new(config: &Config) -> Self {
        let mut c = Self::default();
        for m in &config.metrics {
            let set = match m.kind {
                MetricKind::Pods => &mut c.pods,
                MetricKind::Object => &mut c.objects,
                MetricKind::External => &mut c.external,
            };
            set.insert(m.name.clone());
        }
        c
    }

    /// `APIResourceList` of `custom.metrics.k8s.io/{version}`.
    pub fn custom_resources(&self, version: &str) -> serde_json::Value {
        let entry = |name: String, namespaced: bool| ApiResource {
            name,
            singular_name: String::new(),
            namespaced,
            kind: "MetricValueList".into(),
            verbs: vec!["get".into()],
        };
        let mut out = Vec::new();
        for m in &self.pods {
            out.push(entry(format!("pods/{m}"), true));
        }
        for m in &self.objects {
            for r in OBJECT_RESOURCES.iter().filter(|r| r.resource != "pods") {
                // Namespace metrics are read under /namespaces/{name}/metrics/, which
                // custom-metrics-apiserver lists as a namespaced `namespaces/` resource.
                let namespaced = r.namespaced || r.resource == "namespaces";
                out.push(entry(format!("{}/{m}", r.group_resource()), namespaced));
            }
        }
        api::resource_list(&format!("{}/{version}", api::CUSTOM_GROUP), out)
    }

    /// `APIResourceList` of `external.metrics.k8s.io/v1beta1`.
    pub fn external_resources(&self) -> serde_json::Value {
        let out = self
            .external
            .iter()
            .map(|m| ApiResource {
                name: m.clone(),
                singular_name: String::new(),
                namespaced: true,
                kind: "ExternalMetricValueList".into(),
                verbs: vec!["get".into()],
            })
            .collect();
        api::resource_list(
            &format!("{}/{}", api::EXTERNAL_GROUP, api::EXTERNAL_VERSION),
            out,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::from_source(
            "prometheus: {url: http://p:9090}\nmetrics:\n\
             - {name: q, type: pods, query: 'sum by (pod) (x)'}\n\
             - {name: rps, type: object, query: 'sum(y{ingress=\"{{objectName}}\"})'}\n\
             - {name: gpu, type: external, query: 'avg(z{ {{selector}} })'}\n",
            "podscale.yaml",
        )
        .expect("valid config")
    }

    #[test]
    fn discovery_lists_pods_object_and_external_metrics_as_prometheus_adapter() {
        let c = Catalogue::new(&config());
        let custom = c.custom_resources("v1beta1");
        assert_eq!(custom["groupVersion"], "custom.metrics.k8s.io/v1beta1");
        let names: Vec<&str> = custom["resources"]
            .as_array()
            .expect("resources")
            .iter()
            .map(|r| r["name"].as_str().expect("name"))
            .collect();
        assert!(names.contains(&"pods/q"));
        assert!(names.contains(&"namespaces/rps"));
        assert!(names.contains(&"deployments.apps/rps"));
        assert!(names.contains(&"ingresses.networking.k8s.io/rps"));
        assert!(!names.iter().any(|n| n.ends_with("/gpu")));
        assert_eq!(custom["resources"][0]["kind"], "MetricValueList");
        assert_eq!(custom["resources"][0]["verbs"], serde_json::json!(["get"]));
        let external = c.external_resources();
        assert_eq!(
            external["resources"],
            serde_json::json!([{"name": "gpu", "singularName": "", "namespaced": true, "kind": "ExternalMetricValueList", "verbs": ["get"]}])
        );
    }

    #[test]
    fn resources_resolve_with_or_without_their_group() {
        assert_eq!(
            object_resource("deployments.apps").map(|r| r.kind),
            Some("Deployment")
        );
        assert_eq!(
            object_resource("deployments").map(|r| r.kind),
            Some("Deployment")
        );
        assert_eq!(
            object_resource("services").map(|r| r.api_version()),
            Some("v1".into())
        );
        assert_eq!(object_resource("deployments.extensions"), None);
        assert_eq!(object_resource("widgets"), None);
    }
}
