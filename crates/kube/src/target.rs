//! [`KubeTarget`]: the runtime's [`ScaleTarget`] over the API server — the `/scale`
//! subresource of any kind that has one (resolved through discovery, as upstream's
//! RESTMapper does: Deployments, StatefulSets, ReplicaSets, custom resources with a
//! scale subresource) and the pods its selector lists.
//!
//! The scale update is an `Update` of the Scale object last read, carrying its
//! `resourceVersion`, exactly as kube-controller-manager's `scaleNamespacer.Update`:
//! a change in between answers 409 Conflict and the runtime re-syncs on fresh reads.
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use k8s_openapi::api::autoscaling::v1::Scale as KScale;
use k8s_openapi::api::core::v1::Pod as KPod;
use kube::api::{Api, DynamicObject, ListParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::reflector::Store;
use podscale_core::api::HorizontalPodAutoscaler;
use podscale_core::observed::{Container, Pod, ResourceRequirements};
use podscale_core::quantity::Quantity;
use podscale_runtime::{Key, Scale, ScaleTarget, TargetError};

/// Pods asked for per list request.
const POD_PAGE: u32 = 500;
/// Most pods one target may list (the metric sources' default `maxItems`).
const MAX_PODS: usize = 20_000;

/// Pod addresses from the last listing, by autoscaler: direct scrapes need them and
/// the engine's [`Pod`] does not carry them.
#[derive(Debug, Clone, Default)]
pub struct PodAddresses(Arc<Mutex<HashMap<Key, HashMap<String, String>>>>);

impl PodAddresses {
    pub fn get(&self, key: &Key, pod: &str) -> Option<String> {
        self.lock().get(key).and_then(|m| m.get(pod).cloned())
    }
    fn set(&self, key: Key, addresses: HashMap<String, String>) {
        self.lock().insert(key, addresses);
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, HashMap<String, String>>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The standard HPAs of the cluster (a reflector's store), to refuse a workload that
/// one of them already scales.
pub type HpaStore = Store<k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler>;

/// Any workload with a scale subresource, through the API server.
#[derive(Clone)]
pub struct KubeTarget {
    client: kube::Client,
    /// `apiVersion` + `kind` → the resource, once discovery found it with a scale
    /// subresource. Failures are not cached: a CRD installed later is found then.
    resources: Arc<Mutex<HashMap<(String, String), ApiResource>>>,
    /// The Scale last read per autoscaler, updated in place by `set_replicas`.
    scales: Arc<Mutex<HashMap<Key, KScale>>>,
    addresses: PodAddresses,
    hpas: Option<HpaStore>,
}

impl std::fmt::Debug for KubeTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeTarget").finish_non_exhaustive()
    }
}

/// Maps a client error to what the loop does next: 409 retries at once on fresh reads;
/// 429, 5xx, timeouts and connection failures back off; 403, 404 and other refusals
/// wait for something to change.
pub fn target_error(e: &kube::Error) -> TargetError {
    match e {
        kube::Error::Api(s) => {
            let msg = if s.message.is_empty() {
                format!("HTTP {}", s.code)
            } else {
                s.message.clone()
            };
            match s.code {
                409 => TargetError::Conflict(msg),
                429 | 500..=599 => TargetError::Transient(msg),
                _ => TargetError::Permanent(msg),
            }
        }
        kube::Error::Discovery(d) => TargetError::Permanent(d.to_string()),
        other => TargetError::Transient(error_chain(other)),
    }
}

/// An error and its causes on one line (`a: b: c`).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = c.source();
    }
    s
}

impl KubeTarget {
    pub fn new(client: kube::Client) -> Self {
        Self {
            client,
            resources: Arc::default(),
            scales: Arc::default(),
            addresses: PodAddresses::default(),
            hpas: None,
        }
    }

    /// Refuse targets that a standard HPA in `store` already scales.
    #[must_use]
    pub fn refusing_hpa_targets(mut self, store: HpaStore) -> Self {
        self.hpas = Some(store);
        self
    }

    /// The pod addresses this target records (for the metric source).
    pub fn addresses(&self) -> PodAddresses {
        self.addresses.clone()
    }

    fn namespace(hpa: &HorizontalPodAutoscaler) -> &str {
        hpa.metadata.namespace.as_deref().unwrap_or("default")
    }

    /// The resource of the scale target, with a scale subresource.
    async fn resource(&self, hpa: &HorizontalPodAutoscaler) -> Result<ApiResource, TargetError> {
        let r = &hpa.spec.scale_target_ref;
        let api_version = r.api_version.clone().unwrap_or_default();
        let cache_key = (api_version.clone(), r.kind.clone());
        if let Some(ar) = lock(&self.resources).get(&cache_key) {
            return Ok(ar.clone());
        }
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g.to_owned(), v.to_owned()),
            None => (String::new(), api_version.clone()),
        };
        if version.is_empty() || r.kind.is_empty() {
            return Err(TargetError::Permanent(format!(
                "scaleTargetRef: apiVersion {api_version:?} and kind {:?} must both be set",
                r.kind
            )));
        }
        let gvk = GroupVersionKind::gvk(&group, &version, &r.kind);
        let (ar, caps) = kube::discovery::pinned_kind(&self.client, &gvk)
            .await
            .map_err(|e| match e {
                kube::Error::Discovery(_) => TargetError::Permanent(format!(
                    "no matches for kind {:?} in version {api_version:?}",
                    r.kind
                )),
                e => target_error(&e),
            })?;
        if !caps.subresources.iter().any(|(s, _)| s.plural == "scale") {
            return Err(TargetError::Permanent(format!(
                "{}.{} {:?} has no scale subresource",
                ar.plural, ar.group, r.name
            )));
        }
        lock(&self.resources).insert(cache_key, ar.clone());
        Ok(ar)
    }

    fn refuse_if_hpa_scales(&self, hpa: &HorizontalPodAutoscaler) -> Result<(), TargetError> {
        let Some(store) = &self.hpas else {
            return Ok(());
        };
        let ns = Self::namespace(hpa);
        let r = &hpa.spec.scale_target_ref;
        let group = |v: Option<&str>| v.and_then(|v| v.split_once('/')).map(|(g, _)| g.to_owned());
        for other in store.state() {
            let Some(spec) = &other.spec else { continue };
            let t = &spec.scale_target_ref;
            if other.metadata.namespace.as_deref() == Some(ns)
                && t.kind == r.kind
                && t.name == r.name
                && group(t.api_version.as_deref()) == group(r.api_version.as_deref())
            {
                return Err(TargetError::Permanent(format!(
                    "refusing to scale {}/{}: HorizontalPodAutoscaler {:?} already scales it, and two autoscalers would fight over its replicas (delete one of them)",
                    r.kind,
                    r.name,
                    other.metadata.name.as_deref().unwrap_or_default()
                )));
            }
        }
        Ok(())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ScaleTarget for KubeTarget {
    async fn get_scale(&self, hpa: &HorizontalPodAutoscaler) -> Result<Scale, TargetError> {
        self.refuse_if_hpa_scales(hpa)?;
        let ar = self.resource(hpa).await?;
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), Self::namespace(hpa), &ar);
        let s = api
            .get_scale(&hpa.spec.scale_target_ref.name)
            .await
            .map_err(|e| target_error(&e))?;
        let out = Scale {
            spec_replicas: s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0),
            status_replicas: s.status.as_ref().map_or(0, |s| s.replicas),
            selector: s.status.as_ref().and_then(|s| s.selector.clone()),
        };
        lock(&self.scales).insert(Key::of(hpa), s);
        Ok(out)
    }

    async fn list_pods(
        &self,
        hpa: &HorizontalPodAutoscaler,
        selector: Option<&str>,
    ) -> Result<Vec<Pod>, TargetError> {
        // Upstream requires a selector; the engine reports its absence itself.
        let Some(selector) = selector else {
            return Ok(Vec::new());
        };
        let api: Api<KPod> = Api::namespaced(self.client.clone(), Self::namespace(hpa));
        // Read in pages, and refuse a target with more pods than any autoscaler can
        // use: a server (or a selector matching half the cluster) must not make one
        // sync hold an unbounded list.
        let mut items = Vec::new();
        let mut params = ListParams::default().labels(selector).limit(POD_PAGE);
        loop {
            let page = api.list(&params).await.map_err(|e| target_error(&e))?;
            items.extend(page.items);
            if items.len() > MAX_PODS {
                return Err(TargetError::Permanent(format!(
                    "the selector {selector:?} lists more than {MAX_PODS} pods: refusing to read them all"
                )));
            }
            match page.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(token) => params = params.continue_token(&token),
                None => break,
            }
        }
        let mut addresses = HashMap::new();
        let pods = items
            .iter()
            .map(|p| {
                let pod = engine_pod(p);
                if let Some(ip) = p.status.as_ref().and_then(|s| s.pod_ip.clone()) {
                    addresses.insert(pod.name.clone(), ip);
                }
                pod
            })
            .collect();
        self.addresses.set(Key::of(hpa), addresses);
        Ok(pods)
    }

    async fn set_replicas(
        &self,
        hpa: &HorizontalPodAutoscaler,
        replicas: i32,
    ) -> Result<(), TargetError> {
        let ar = self.resource(hpa).await?;
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), Self::namespace(hpa), &ar);
        let key = Key::of(hpa);
        let Some(mut scale) = lock(&self.scales).get(&key).cloned() else {
            return Err(TargetError::Conflict(
                "the scale was not read before the update".into(),
            ));
        };
        scale.spec.get_or_insert_with(Default::default).replicas = Some(replicas);
        let updated = api
            .replace_scale(
                &hpa.spec.scale_target_ref.name,
                &PostParams::default(),
                &scale,
            )
            .await
            .map_err(|e| target_error(&e))?;
        lock(&self.scales).insert(key, updated);
        Ok(())
    }
}

fn requirements(
    r: Option<&k8s_openapi::api::core::v1::ResourceRequirements>,
) -> Option<ResourceRequirements> {
    let r = r?;
    let map = |m: &Option<
        std::collections::BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
    >| {
        m.as_ref().map(|m| {
            m.iter()
                // The API server only stores valid quantities; skip what we cannot read
                // rather than fail the pod.
                .filter_map(|(k, v)| Quantity::parse(&v.0).ok().map(|q| (k.clone(), q)))
                .collect()
        })
    };
    Some(ResourceRequirements {
        requests: map(&r.requests),
        limits: map(&r.limits),
    })
}

/// A `v1.Pod` as the HPA reads it: phase, the Ready condition and its
/// `lastTransitionTime`, `startTime`, `deletionTimestamp`, containers' requests.
pub fn engine_pod(p: &KPod) -> Pod {
    let status = p.status.as_ref();
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"));
    let containers = |cs: Option<&Vec<k8s_openapi::api::core::v1::Container>>| -> Vec<Container> {
        cs.map(|cs| {
            cs.iter()
                .map(|c| Container {
                    name: c.name.clone(),
                    resources: requirements(c.resources.as_ref()),
                    restart_policy: c.restart_policy.clone(),
                })
                .collect()
        })
        .unwrap_or_default()
    };
    let spec = p.spec.as_ref();
    Pod {
        name: p.metadata.name.clone().unwrap_or_default(),
        labels: p.metadata.labels.clone().unwrap_or_default(),
        phase: status
            .and_then(|s| s.phase.clone())
            .unwrap_or_else(|| "Unknown".into()),
        ready: ready.map(|c| c.status == "True"),
        start_time: status.and_then(|s| s.start_time.as_ref()).map(|t| t.0),
        ready_transition_time: ready
            .and_then(|c| c.last_transition_time.as_ref())
            .map(|t| t.0),
        deletion_timestamp: p.metadata.deletion_timestamp.as_ref().map(|t| t.0),
        containers: containers(spec.map(|s| &s.containers)),
        init_containers: containers(spec.and_then(|s| s.init_containers.as_ref())),
        resources: requirements(spec.and_then(|s| s.resources.as_ref())),
    }
}
