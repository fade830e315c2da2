//! The operator as a cluster runs it: the Helm chart installed on the local control plane, the
//! operator image run as the chart's Deployment pod would be (podman + runc, with exactly the
//! args, env, user, read-only root and in-cluster identity taken from the Deployment the API
//! server stores), all five providers reconciled against the sandbox, and a Pod on a node that
//! runs the kubelet's real Secret-volume code reading its token with `MountedToken` across a
//! forced refresh. Then `helm upgrade`, `helm uninstall` (the CRD and the Azupay credentials stay)
//! and a reinstall that uses the stored credentials without calling enable again. A second test
//! installs in namespaced mode and lets the API server's RBAC prove what the operator cannot see.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime};

use clientcreds::source::{MountedToken, TokenSource};
use clientcreds_e2e::chart::{CHART_DIR, SANDBOX_EGRESS_SET, http_get, operator_image_archive};
use clientcreds_e2e::container::{PodContainer, load_image};
use clientcreds_e2e::five_providers::{self, oauthclient_resource};
use clientcreds_e2e::{ControlPlane, eventually, free_port};
use clientcreds_sandbox::{Sandbox, SandboxConfig};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Secret, ServiceAccount};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use secrecy::ExposeSecret;
use serde_json::json;

const RELEASE: &str = "clientcreds-operator";
const OPERATOR_NS: &str = "clientcreds-system";
const APP_NS: &str = "shop";
const EVENTUALLY: Duration = Duration::from_secs(120);

fn data(secret: &Secret, key: &str) -> String {
    String::from_utf8(secret.data.as_ref().unwrap()[key].0.clone()).unwrap()
}

async fn call_protected(url: &str, token: &str) -> u16 {
    let http = clientcreds::HttpClient::new();
    let request = http::Request::builder()
        .uri(url)
        .header("authorization", format!("Bearer {token}"))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    http.send(request).await.unwrap().status().as_u16()
}

/// The chart's Deployment as the API server stores it.
async fn deployment(cp: &ControlPlane) -> Deployment {
    Api::<Deployment>::namespaced(cp.admin_client(), OPERATOR_NS)
        .get(RELEASE)
        .await
        .unwrap()
}

/// Runs the Deployment's pod as a container and waits until it is ready.
async fn run_pod(cp: &ControlPlane, image: &str, pod_name: &str, port: u16) -> PodContainer {
    let d = deployment(cp).await;
    let container = &d.spec.template.spec.as_ref().unwrap().containers[0];
    assert_eq!(
        container.image.as_deref(),
        Some(image),
        "the chart's default image"
    );
    let pod = PodContainer::start(cp, &d, pod_name).await.unwrap();
    let started = Instant::now();
    loop {
        if matches!(http_get(port, "/readyz").await, Some((200, _))) {
            return pod;
        }
        if !pod.running().await || started.elapsed() > EVENTUALLY {
            panic!(
                "the operator container is not ready:\n{}",
                pod.logs().await.unwrap()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn oacs(client: &Client, ns: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), ns, &oauthclient_resource())
}

fn ready(o: &DynamicObject) -> bool {
    o.data["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

async fn wait_ready(client: &Client, ns: &str, name: &str) -> DynamicObject {
    let api = oacs(client, ns);
    eventually(&format!("{ns}/{name} Ready"), EVENTUALLY, || {
        let api = api.clone();
        async move { api.get(name).await.ok().filter(ready) }
    })
    .await
}

async fn wait_crd(cp: &ControlPlane) {
    let api: Api<CustomResourceDefinition> = Api::all(cp.admin_client());
    eventually("the OAuthClient CRD established", EVENTUALLY, || {
        let api = api.clone();
        async move {
            let crd = api.get("oauthclients.clientcreds.dev").await.ok()?;
            crd.status?
                .conditions?
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
                .then_some(())
        }
    })
    .await;
}

fn pair_of_secret(s: &Secret) -> (String, u64) {
    let at: jiff::Timestamp = data(s, "expires_at").parse().unwrap();
    (data(s, "access_token"), at.as_second().try_into().unwrap())
}

fn pair_of_token(t: &clientcreds::Token) -> (String, u64) {
    let secs = t
        .expires_at()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    (t.secret().expose_secret().to_owned(), secs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chart_installs_its_image_runs_as_the_pod_and_a_pod_reads_refreshed_tokens() {
    let archive = operator_image_archive().unwrap();
    let image = load_image(&archive).await.unwrap();
    let mut cp = ControlPlane::start().await.unwrap();
    let node = cp
        .start_node("node-1", Duration::from_secs(1))
        .await
        .unwrap();
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let admin = cp.admin_client();
    let port = free_port().unwrap();
    let port_value = format!("metrics.port={port}");
    let mut logs = String::new();

    // 1. helm install with default values (the metrics port moved off 8080: the container
    //    shares the host's network with other tests; the egress policy allows the sandbox)
    cp.helm(
        &[
            &[
                "install",
                RELEASE,
                CHART_DIR,
                "--namespace",
                OPERATOR_NS,
                "--create-namespace",
                "--set",
                &port_value,
            ][..],
            &SANDBOX_EGRESS_SET[..],
        ]
        .concat(),
    )
    .await
    .unwrap();
    wait_crd(&cp).await;
    cp.create_namespace(APP_NS).await.unwrap();
    let pod = run_pod(&cp, &image, "clientcreds-operator-5d8f7c9b4-x2k9q", port).await;

    // 2. all five providers reconciled by the container, Azupay through its enable call
    let clients = five_providers::apply(&admin, APP_NS, &sandbox)
        .await
        .unwrap();
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), APP_NS);
    let mut leak_check: Vec<String> = clients.iter().map(|c| c.secret.clone()).collect();
    for c in &clients {
        wait_ready(&admin, APP_NS, c.name).await;
        let token = data(&secrets.get(&c.token_secret).await.unwrap(), "access_token");
        assert_eq!(
            call_protected(&c.resource_url, &token).await,
            200,
            "{}",
            c.name
        );
        leak_check.push(token);
    }
    let az = sandbox.azupay();
    assert_eq!(sandbox.enable_calls(&az.client_id), 1);
    let creds = secrets.get("azupay-oauth2-credentials").await.unwrap();
    leak_check.push(data(&creds, "client_secret"));
    let (status, metrics) = http_get(port, "/metrics").await.unwrap();
    assert_eq!(status, 200);
    assert!(
        metrics.contains("clientcreds_operator_token_refreshes_total{"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"clientcreds_operator_oauthclient_ready{namespace="shop",oauthclient="payu",reason=""#
        ),
        "{metrics}"
    );

    // 3. a Pod on the node mounts the PayU token Secret; MountedToken reads the kubelet's volume
    let pods: Api<Pod> = Api::namespaced(admin.clone(), APP_NS);
    let app = node.pod_mounting_secret("app", "payu-token", "token");
    // the namespace's default ServiceAccount must exist before a Pod is admitted
    let sas: Api<ServiceAccount> = Api::namespaced(admin.clone(), APP_NS);
    eventually("the default ServiceAccount", EVENTUALLY, || {
        let sas = sas.clone();
        async move { sas.get("default").await.ok() }
    })
    .await;
    let uid = pods
        .create(&PostParams::default(), &app)
        .await
        .unwrap()
        .metadata
        .uid
        .unwrap();
    eventually("the app Pod Running", EVENTUALLY, || {
        let pods = pods.clone();
        async move {
            let p = pods.get("app").await.ok()?;
            (p.status?.phase.as_deref() == Some("Running")).then_some(())
        }
    })
    .await;
    let dir = node.secret_volume_dir(&uid, "token");
    eventually(
        "the token volume written by the kubelet",
        EVENTUALLY,
        || {
            let dir = dir.clone();
            async move { dir.join("access_token").exists().then_some(()) }
        },
    )
    .await;
    assert!(
        std::fs::symlink_metadata(dir.join("..data"))
            .unwrap()
            .file_type()
            .is_symlink(),
        "the kubelet publishes through ..data"
    );
    let mounted = MountedToken::new(&dir)
        .unwrap()
        .check_interval(Duration::from_millis(20))
        .unwrap();
    let old = pair_of_secret(&secrets.get("payu-token").await.unwrap());
    assert_eq!(pair_of_token(&mounted.token().await.unwrap()), old);
    assert_eq!(
        call_protected(&clients[2].resource_url, &old.0).await,
        200,
        "the mounted PayU token works"
    );

    // 4. a forced refresh reaches the pod's volume; never a mismatched token/expiry pair
    let requested = Instant::now();
    oacs(&admin, APP_NS)
        .patch(
            "payu",
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"annotations": {"clientcreds.dev/refresh": "1"}}})),
        )
        .await
        .unwrap();
    let mut seen = BTreeSet::new();
    let switched = loop {
        let pair = pair_of_token(&mounted.token().await.unwrap());
        let fresh = pair != old;
        seen.insert(pair);
        if fresh {
            break requested.elapsed();
        }
        assert!(
            requested.elapsed() < EVENTUALLY,
            "the new token never reached the pod"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let new = pair_of_secret(&secrets.get("payu-token").await.unwrap());
    for _ in 0..20 {
        seen.insert(pair_of_token(&mounted.token().await.unwrap()));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        seen,
        BTreeSet::from([old.clone(), new.clone()]),
        "only whole versions are read"
    );
    eprintln!("forced refresh → new token in the pod's volume, read by MountedToken: {switched:?}");
    leak_check.push(new.0.clone());

    // 5. helm upgrade with changed values: the new pod runs the new args; a restart with good
    //    tokens makes no token request
    logs.push_str(&pod.stop().await.unwrap());
    let tokens_before = sandbox.requests().len();
    cp.helm(&[
        "upgrade",
        RELEASE,
        CHART_DIR,
        "--namespace",
        OPERATOR_NS,
        "--reuse-values",
        "--set",
        "maxConcurrentReconciles=16",
        "--set",
        "log.level=debug",
    ])
    .await
    .unwrap();
    let args = deployment(&cp).await.spec.template.spec.unwrap().containers[0]
        .args
        .clone()
        .unwrap();
    assert!(
        args.contains(&"--max-concurrent-reconciles=16".to_owned()),
        "{args:?}"
    );
    let pod = run_pod(&cp, &image, "clientcreds-operator-6c9d8f5b7-p4m2z", port).await;
    for c in &clients {
        wait_ready(&admin, APP_NS, c.name).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    // (the restarted operator reads Azupay's client details once: a GET, no token, no enable)
    let posts: Vec<String> = sandbox.requests()[tokens_before..]
        .iter()
        .filter(|r| r.method != "GET")
        .map(|r| r.path.clone())
        .collect();
    assert!(
        posts.is_empty(),
        "token or enable requests after a restart with good tokens: {posts:?}"
    );
    logs.push_str(&pod.stop().await.unwrap());

    // 6. helm uninstall keeps the CRD (so the OAuthClients) and the Azupay credentials
    cp.helm(&["uninstall", RELEASE, "--namespace", OPERATOR_NS])
        .await
        .unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(admin.clone());
    assert!(
        crds.get("oauthclients.clientcreds.dev").await.is_ok(),
        "CRD kept"
    );
    assert!(
        secrets.get("azupay-oauth2-credentials").await.is_ok(),
        "credentials kept"
    );
    assert_eq!(
        oacs(&admin, APP_NS)
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        5
    );
    assert!(
        Api::<ServiceAccount>::namespaced(admin.clone(), OPERATOR_NS)
            .get(RELEASE)
            .await
            .is_err(),
        "the release's ServiceAccount is gone"
    );

    // 7. a reinstall uses the stored credentials: a forced Azupay refresh works, enable is
    //    never called again
    cp.helm(
        &[
            &[
                "install",
                RELEASE,
                CHART_DIR,
                "--namespace",
                OPERATOR_NS,
                "--set",
                &port_value,
            ][..],
            &SANDBOX_EGRESS_SET[..],
        ]
        .concat(),
    )
    .await
    .unwrap();
    let pod = run_pod(&cp, &image, "clientcreds-operator-5d8f7c9b4-r7t5w", port).await;
    let az_token = data(&secrets.get("azupay-token").await.unwrap(), "access_token");
    oacs(&admin, APP_NS)
        .patch(
            "azupay",
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"annotations": {"clientcreds.dev/refresh": "after-reinstall"}}})),
        )
        .await
        .unwrap();
    let fresh = eventually("a new Azupay token after the reinstall", EVENTUALLY, || {
        let secrets = secrets.clone();
        let az_token = az_token.clone();
        async move {
            let t = data(&secrets.get("azupay-token").await.ok()?, "access_token");
            (t != az_token).then_some(t)
        }
    })
    .await;
    assert_eq!(call_protected(&az.resource_url, &fresh).await, 200);
    assert_eq!(
        sandbox.enable_calls(&az.client_id),
        1,
        "enable called once in all"
    );
    leak_check.push(fresh);
    logs.push_str(&pod.stop().await.unwrap());

    // nothing secret in the container's logs (all three runs), events or statuses
    assert!(logs.contains("serving /metrics"), "{logs}");
    let events = serde_json::to_string(
        &Api::<k8s_openapi::api::events::v1::Event>::namespaced(admin.clone(), APP_NS)
            .list(&ListParams::default())
            .await
            .unwrap()
            .items,
    )
    .unwrap();
    let statuses = serde_json::to_string(
        &oacs(&admin, APP_NS)
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .iter()
            .map(|o| o.data["status"].clone())
            .collect::<Vec<_>>(),
    )
    .unwrap();
    for s in leak_check.iter().filter(|s| s.len() >= 6) {
        assert!(
            !logs.contains(s.as_str()),
            "a secret or token in the container's logs"
        );
        assert!(
            !events.contains(s.as_str()),
            "a secret or token in an event"
        );
        assert!(
            !statuses.contains(s.as_str()),
            "a secret or token in a status"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaced_mode_reconciles_only_its_namespaces_and_rbac_proves_it() {
    let archive = operator_image_archive().unwrap();
    let image = load_image(&archive).await.unwrap();
    let cp = ControlPlane::start().await.unwrap();
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let admin = cp.admin_client();
    for ns in ["team-a", "team-b"] {
        cp.create_namespace(ns).await.unwrap();
    }
    let port = free_port().unwrap();
    cp.helm(
        &[
            &[
                "install",
                RELEASE,
                CHART_DIR,
                "--namespace",
                OPERATOR_NS,
                "--create-namespace",
                "--set",
                &format!("metrics.port={port}"),
                "--set",
                "watchNamespaces={team-a}",
            ][..],
            &SANDBOX_EGRESS_SET[..],
        ]
        .concat(),
    )
    .await
    .unwrap();
    wait_crd(&cp).await;
    let pod = run_pod(&cp, &image, "clientcreds-operator-7f6b5c4d3-n8v2k", port).await;

    let payu = sandbox.payu();
    for ns in ["team-a", "team-b"] {
        let secrets: Api<Secret> = Api::namespaced(admin.clone(), ns);
        let s: Secret = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "payu-credentials"},
            "stringData": {"client_id": payu.client_id, "client_secret": payu.client_secret}
        }))
        .unwrap();
        secrets.create(&PostParams::default(), &s).await.unwrap();
        let o: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "clientcreds.dev/v1alpha1", "kind": "OAuthClient",
            "metadata": {"name": "payu"},
            "spec": {"provider": "payu", "credentialsSecretRef": {"name": "payu-credentials"},
                     "tokenUrl": payu.token_url,
                     "tokens": [{"secretName": "payu-token", "scopes": [clientcreds_sandbox::PAYU_SCOPES[0]]}]}
        }))
        .unwrap();
        oacs(&admin, ns)
            .create(&PostParams::default(), &o)
            .await
            .unwrap();
    }
    wait_ready(&admin, "team-a", "payu").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let other = oacs(&admin, "team-b").get("payu").await.unwrap();
    assert!(
        other.data.get("status").is_none_or(|s| s.is_null()),
        "team-b was touched: {other:?}"
    );
    assert!(
        Api::<Secret>::namespaced(admin.clone(), "team-b")
            .get_opt("payu-token")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(sandbox.requests().len(), 1, "one token request, for team-a");

    // the API server's RBAC: the operator's identity reads Secrets in team-a only
    let operator = cp.service_account_client(OPERATOR_NS, RELEASE).unwrap();
    let forbidden =
        |r: Result<_, kube::Error>| matches!(r, Err(kube::Error::Api(e)) if e.code == 403);
    assert!(
        Api::<Secret>::namespaced(operator.clone(), "team-a")
            .list(&ListParams::default())
            .await
            .is_ok()
    );
    assert!(forbidden(
        Api::<Secret>::namespaced(operator.clone(), "team-b")
            .list(&ListParams::default())
            .await
            .map(|_| ())
    ));
    assert!(forbidden(
        Api::<Secret>::all(operator.clone())
            .list(&ListParams::default())
            .await
            .map(|_| ())
    ));
    assert!(forbidden(
        oacs(&operator, "team-b")
            .list(&ListParams::default())
            .await
            .map(|_| ())
    ));
    let logs = pod.stop().await.unwrap();
    assert!(
        !logs.contains(&payu.client_secret),
        "the client secret in the logs"
    );
    // A refused API call reads "… is forbidden: User … cannot list …" with reason "Forbidden";
    // match the word, not "403", which a random metrics port (":40397") can contain.
    assert!(
        !logs.to_ascii_lowercase().contains("forbidden"),
        "the operator tried to reach outside its namespaces:\n{logs}"
    );
}
