//! Delegated authentication and authorization over HTTPS, against a fake API server
//! that answers TokenReview and SubjectAccessReview: requests without credentials, with
//! a token the API server rejects, or from a user RBAC does not allow are refused; an
//! authorized ServiceAccount token and the front proxy (a client certificate from the
//! `requestheader` CA naming the user in `X-Remote-User`) are served.
mod support;

use std::collections::BTreeMap;

use podscale_adapter::auth::AuthConfig;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use serde_json::json;
use support::{
    FakeApi, READER_TOKEN, STRANGER, STRANGER_TOKEN, by_pod, client, config, get, start_adapter,
};

/// The metric needs no Prometheus: its source is down and `onError: emptyAs` answers.
const CONFIG: &str = "prometheus:\n  url: http://127.0.0.1:1\n  retries: 0\n  timeout: 2s\n\
metrics:\n  - name: inference_queue_depth\n    type: pods\n    query: sum by (pod) (q)\n    emptyAs: 3\n    onError: emptyAs\n";

const PODS: &str = "/apis/custom.metrics.k8s.io/v1beta1/namespaces/ai-inference/pods/*/inference_queue_depth?labelSelector=app%3Dinference-server";

struct FrontProxy {
    ca_pem: String,
    /// Certificate and key, PEM, of `front-proxy-client` and of `intruder`.
    client: String,
    intruder: String,
}

fn front_proxy() -> FrontProxy {
    let ca_key = KeyPair::generate().expect("key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca.distinguished_name
        .push(DnType::CommonName, "front-proxy-ca");
    let ca_cert = ca.self_signed(&ca_key).expect("ca");
    let issuer = Issuer::new(ca, ca_key);
    let leaf = |cn: &str| {
        let key = KeyPair::generate().expect("key");
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
        p.distinguished_name.push(DnType::CommonName, cn);
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = p.signed_by(&key, &issuer).expect("signed");
        format!("{}{}", cert.pem(), key.serialize_pem())
    };
    FrontProxy {
        ca_pem: ca_cert.pem(),
        client: leaf("front-proxy-client"),
        intruder: leaf("intruder"),
    }
}

fn auth_config(fp: &FrontProxy) -> AuthConfig {
    let data: BTreeMap<String, String> = [
        ("requestheader-client-ca-file", fp.ca_pem.as_str()),
        ("requestheader-allowed-names", r#"["front-proxy-client"]"#),
        ("requestheader-username-headers", r#"["X-Remote-User"]"#),
        ("requestheader-group-headers", r#"["X-Remote-Group"]"#),
        (
            "requestheader-extra-headers-prefix",
            r#"["X-Remote-Extra-"]"#,
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    AuthConfig::from_data(&data).expect("the ConfigMap's data")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_authenticated_and_authorized_requests_are_served() {
    let api = FakeApi::start().await;
    let fp = front_proxy();
    let adapter = start_adapter(config(CONFIG), &api, Some(auth_config(&fp))).await;
    let c = client(&adapter, None);

    // No credentials.
    let (code, status) = get(&c, &adapter, PODS, None).await;
    assert_eq!(code, 401, "{status}");
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["reason"], "Unauthorized");
    // A token the API server rejects.
    let (code, status) = get(&c, &adapter, PODS, Some("forged")).await;
    assert_eq!(
        (code, status["reason"].as_str()),
        (401, Some("Unauthorized"))
    );
    // A user RBAC does not allow.
    let (code, status) = get(&c, &adapter, PODS, Some(STRANGER_TOKEN)).await;
    assert_eq!(code, 403, "{status}");
    assert_eq!(status["reason"], "Forbidden");
    let message = status["message"].as_str().expect("message");
    assert!(message.contains(STRANGER), "{message}");
    assert!(message.contains("custom.metrics.k8s.io"), "{message}");
    // The authorized ServiceAccount.
    let (code, list) = get(&c, &adapter, PODS, Some(READER_TOKEN)).await;
    assert_eq!(code, 200, "{list}");
    assert_eq!(
        by_pod(&list).values().collect::<Vec<_>>(),
        vec!["3", "3", "3"]
    );
    let (code, _) = get(
        &c,
        &adapter,
        "/apis/custom.metrics.k8s.io/v1beta1",
        Some(READER_TOKEN),
    )
    .await;
    assert_eq!(code, 200);
    // The SubjectAccessReview asked about the resource as the API server names it.
    let sar = api
        .requests
        .lock()
        .expect("lock")
        .iter()
        .find(|(line, body)| {
            line.starts_with("POST /apis/authorization") && body.contains("inference_queue_depth")
        })
        .map(|(_, body)| serde_json::from_str::<serde_json::Value>(body).expect("json"))
        .expect("a SubjectAccessReview");
    assert_eq!(
        sar["spec"]["resourceAttributes"],
        json!({"namespace": "ai-inference", "verb": "get", "group": "custom.metrics.k8s.io",
               "version": "v1beta1", "resource": "pods", "subresource": "inference_queue_depth", "name": "*"})
    );
    // Decisions are cached: three more requests with the same token, no more reviews.
    let reviews = api.count("POST /apis/authentication.k8s.io");
    for _ in 0..3 {
        let (code, _) = get(&c, &adapter, PODS, Some(READER_TOKEN)).await;
        assert_eq!(code, 200);
    }
    assert!(api.count("POST /apis/authentication.k8s.io") < reviews + 3);

    // Health checks are open; the adapter's /metrics is not.
    let (code, _) = get(&c, &adapter, "/healthz", None).await;
    assert_eq!(code, 200);
    let (code, _) = get(&c, &adapter, "/metrics", None).await;
    assert_eq!(code, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_front_proxy_is_trusted_only_with_its_certificate() {
    let api = FakeApi::start().await;
    let fp = front_proxy();
    let adapter = start_adapter(config(CONFIG), &api, Some(auth_config(&fp))).await;
    let proxy = client(
        &adapter,
        Some(reqwest::Identity::from_pem(fp.client.as_bytes()).expect("identity")),
    );
    let send = |c: &reqwest::Client, user: &str| {
        c.get(format!("{}{PODS}", adapter.url))
            .header("X-Remote-User", user)
            .header("X-Remote-Group", "system:authenticated")
            .send()
    };
    // The aggregator forwarding the HPA controller's request.
    let resp = send(&proxy, "system:kube-controller-manager")
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 200);
    // Forwarding a user RBAC does not allow.
    let resp = send(&proxy, STRANGER).await.expect("request");
    assert_eq!(resp.status().as_u16(), 403);
    // The same headers without the certificate are not believed.
    let plain = client(&adapter, None);
    let resp = send(&plain, "system:kube-controller-manager")
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 401);
    // A certificate of the CA whose name is not in requestheader-allowed-names.
    let intruder = client(
        &adapter,
        Some(reqwest::Identity::from_pem(fp.intruder.as_bytes()).expect("identity")),
    );
    let resp = send(&intruder, "system:kube-controller-manager")
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 401);
    let body: serde_json::Value = resp.json().await.expect("json");
    assert!(
        body["message"]
            .as_str()
            .expect("message")
            .contains("requestheader-allowed-names"),
        "{body}"
    );
    // The aggregator's own discovery requests carry no group: the user is still in
    // `system:authenticated`, which `system:discovery` is bound to.
    let resp = proxy
        .get(format!(
            "{}/apis/custom.metrics.k8s.io/v1beta1",
            adapter.url
        ))
        .header("X-Remote-User", "system:kube-aggregator")
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 200);
    // The front proxy's users are never sent to TokenReview.
    assert_eq!(api.count("POST /apis/authentication.k8s.io"), 0);
}

/// A rotated front-proxy CA (the ConfigMap re-read) is trusted from the reload on, and
/// the old one no longer is; the TLS layer asks for certificates only while a CA is known.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_front_proxy_ca_is_followed_after_a_reload() {
    use podscale_adapter::auth::{Credentials, Delegated};
    use podscale_adapter::tls::{ClientCas, certificates_from_pem};
    use rustls::server::danger::ClientCertVerifier as _;

    let api = FakeApi::start().await;
    let (old, new) = (front_proxy(), front_proxy());
    let auth = Delegated::new(
        api.client(),
        std::time::Duration::from_secs(10),
        auth_config(&old),
    )
    .expect("auth");
    let mut headers = http::HeaderMap::new();
    headers.insert(
        "x-remote-user",
        "system:kube-controller-manager".parse().expect("value"),
    );
    let user = |fp: &FrontProxy| certificates_from_pem(fp.client.as_bytes()).expect("cert");
    let (old_chain, new_chain) = (user(&old), user(&new));
    let creds = |chain| Credentials {
        peer_certificates: Some(chain),
        headers: Some(&headers),
    };
    assert!(auth.authenticate(&creds(&old_chain)).await.is_ok());
    assert_eq!(
        auth.authenticate(&creds(&new_chain))
            .await
            .map_err(|e| e.code),
        Err(401)
    );
    auth.reload(auth_config(&new)).expect("reload");
    let u = auth
        .authenticate(&creds(&new_chain))
        .await
        .expect("the new CA is trusted");
    assert_eq!(u.name, "system:kube-controller-manager");
    assert!(u.groups.contains(&"system:authenticated".to_owned()));
    assert_eq!(
        auth.authenticate(&creds(&old_chain))
            .await
            .map_err(|e| e.code),
        Err(401)
    );

    let cas = ClientCas::new(&[]).expect("no CA");
    assert!(!cas.offer_client_auth());
    cas.set(&certificates_from_pem(new.ca_pem.as_bytes()).expect("ca"))
        .expect("set");
    assert!(cas.offer_client_auth());
    assert!(!cas.client_auth_mandatory());
}
