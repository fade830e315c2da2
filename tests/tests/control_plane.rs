//! The harness against the real control plane: each test starts its own `ControlPlane`, so they
//! run in parallel.

// Test helpers, not only `#[test]` functions, may unwrap (the workspace rule for tests).
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use clientcreds_e2e::ControlPlane;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Resource;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams,
    PostParams, WatchEvent, WatchParams,
};
use serde_json::json;

/// Generous bounds for things the server does asynchronously (RBAC cache, garbage collection),
/// polled, never slept on.
const EVENTUALLY: Duration = Duration::from_secs(120);

async fn start() -> ControlPlane {
    match ControlPlane::start().await {
        Ok(cp) => cp,
        Err(err) => panic!("cannot start the control plane: {err}"),
    }
}

fn status_code(err: &kube::Error) -> Option<u16> {
    match err {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

async fn eventually<T, Fut>(what: &str, check: impl FnMut() -> Fut) -> T
where
    Fut: Future<Output = Option<T>>,
{
    clientcreds_e2e::eventually(what, EVENTUALLY, check).await
}

#[tokio::test]
async fn creates_a_namespace_and_a_secret() {
    let cp = start().await;
    let admin = cp.admin_client();
    cp.create_namespace("app").await.unwrap();

    let secrets: Api<Secret> = Api::namespaced(admin.clone(), "app");
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "creds"},
        "stringData": {"client-id": "abc"}
    }))
    .unwrap();
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();

    let read = secrets.get("creds").await.unwrap();
    let data = read.data.unwrap();
    assert_eq!(data["client-id"].0, b"abc");
    let ns = Api::<Namespace>::all(admin).get("app").await.unwrap();
    assert_eq!(ns.status.unwrap().phase.as_deref(), Some("Active"));

    // Stopping on request can keep the directory, with the servers' logs.
    let dir = cp.stop(true);
    let log = std::fs::read_to_string(dir.join("logs").join("etcd.log"));
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(log.unwrap().contains("ready to serve client requests"));
}

#[tokio::test]
async fn rbac_denies_what_it_does_not_grant_and_allows_what_it_does() {
    let cp = start().await;
    let admin = cp.admin_client();
    cp.create_namespace("team").await.unwrap();
    cp.create_namespace("other").await.unwrap();

    // The identity is exactly what the certificate says, several groups included.
    let bob = cp.client_for("bob", &["team-a", "readers"]).unwrap();
    let review = Api::<SelfSubjectReview>::all(bob.clone())
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .unwrap();
    let user = review.status.unwrap().user_info.unwrap();
    assert_eq!(user.username.as_deref(), Some("bob"));
    let groups = user.groups.unwrap();
    for group in ["team-a", "readers", "system:authenticated"] {
        assert!(
            groups.iter().any(|g| g == group),
            "{group} missing from {groups:?}"
        );
    }

    let alice = cp.client_for("alice", &[]).unwrap();
    let alice_cms: Api<ConfigMap> = Api::namespaced(alice.clone(), "team");
    let err = alice_cms.list(&Default::default()).await.unwrap_err();
    assert_eq!(status_code(&err), Some(403), "{err}");

    // Alice may read and write ConfigMaps in `team`; the `readers` group may read them.
    let role: Role = serde_json::from_value(json!({
        "metadata": {"name": "configmaps", "namespace": "team"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"],
                   "verbs": ["get", "list", "create"]}]
    }))
    .unwrap();
    Api::<Role>::namespaced(admin.clone(), "team")
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    let reader_role: Role = serde_json::from_value(json!({
        "metadata": {"name": "configmap-reader", "namespace": "team"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}]
    }))
    .unwrap();
    Api::<Role>::namespaced(admin.clone(), "team")
        .create(&PostParams::default(), &reader_role)
        .await
        .unwrap();
    for (name, role, subject) in [
        (
            "alice",
            "configmaps",
            json!({"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"}),
        ),
        (
            "readers",
            "configmap-reader",
            json!({"kind": "Group", "name": "readers", "apiGroup": "rbac.authorization.k8s.io"}),
        ),
    ] {
        let binding: RoleBinding = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "team"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
            "subjects": [subject]
        }))
        .unwrap();
        Api::<RoleBinding>::namespaced(admin.clone(), "team")
            .create(&PostParams::default(), &binding)
            .await
            .unwrap();
    }

    // The authorizer reads bindings from a cache: wait until the grant is visible.
    eventually("alice's grant to take effect", || async {
        alice_cms.list(&Default::default()).await.ok()
    })
    .await;
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "settings"}, "data": {"a": "1"}}))
            .unwrap();
    alice_cms.create(&PostParams::default(), &cm).await.unwrap();
    eventually("the readers group's grant to take effect", || async {
        Api::<ConfigMap>::namespaced(bob.clone(), "team")
            .list(&Default::default())
            .await
            .ok()
    })
    .await;

    // Still denied: verbs, resources and namespaces outside the grants.
    let err = alice_cms
        .delete("settings", &DeleteParams::default())
        .await
        .unwrap_err();
    assert_eq!(status_code(&err), Some(403), "{err}");
    let err = Api::<Secret>::namespaced(alice.clone(), "team")
        .list(&Default::default())
        .await
        .unwrap_err();
    assert_eq!(status_code(&err), Some(403), "{err}");
    let err = Api::<ConfigMap>::namespaced(alice, "other")
        .list(&Default::default())
        .await
        .unwrap_err();
    assert_eq!(status_code(&err), Some(403), "{err}");
    let err = Api::<ConfigMap>::namespaced(bob, "team")
        .create(&PostParams::default(), &cm)
        .await
        .unwrap_err();
    assert_eq!(status_code(&err), Some(403), "{err}");
}

#[tokio::test]
async fn garbage_collector_deletes_a_secret_whose_owner_is_deleted() {
    let mut cp = start().await;
    let admin = cp.admin_client();
    cp.create_namespace("gc").await.unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(admin.clone(), "gc");
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), "gc");

    let mut owners = Vec::new();
    for name in ["owner", "survivor"] {
        let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
        let cm = cms.create(&PostParams::default(), &cm).await.unwrap();
        owners.push(cm.meta().uid.clone().unwrap());
    }
    for (name, owner, uid) in [
        ("owned", "owner", &owners[0]),
        ("kept", "survivor", &owners[1]),
    ] {
        let secret: Secret = serde_json::from_value(json!({
            "metadata": {"name": name, "ownerReferences": [
                {"apiVersion": "v1", "kind": "ConfigMap", "name": owner, "uid": uid}
            ]},
            "stringData": {"k": "v"}
        }))
        .unwrap();
        secrets
            .create(&PostParams::default(), &secret)
            .await
            .unwrap();
    }

    cms.delete("owner", &DeleteParams::default()).await.unwrap();
    eventually(
        "the garbage collector to delete the owned Secret",
        || async {
            match secrets.get_opt("owned").await.unwrap() {
                None => Some(()),
                Some(_) => None,
            }
        },
    )
    .await;
    assert!(
        secrets.get_opt("kept").await.unwrap().is_some(),
        "a Secret whose owner exists was collected"
    );
    cp.check_running().unwrap();
}

fn widget_crd() -> CustomResourceDefinition {
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.e2e.clientcreds.test"},
        "spec": {
            "group": "e2e.clientcreds.test",
            "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
            "scope": "Namespaced",
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {"spec": {
                        "type": "object",
                        "required": ["color"],
                        "properties": {
                            "color": {"type": "string", "enum": ["red", "blue"]},
                            "size": {"type": "integer", "minimum": 1}
                        },
                        "x-kubernetes-validations": [{
                            "rule": "!has(self.size) || self.size <= 10",
                            "message": "size must be at most 10"
                        }]
                    }}
                }}
            }]
        }
    }))
    .unwrap()
}

#[tokio::test]
async fn crd_installs_and_the_server_rejects_resources_that_violate_its_schema() {
    let cp = start().await;
    cp.install_crds(&[widget_crd()]).await.unwrap();
    // Installing again is a no-op, not a conflict.
    cp.install_crds(&[widget_crd()]).await.unwrap();

    let gvk = GroupVersionKind::gvk("e2e.clientcreds.test", "v1", "Widget");
    let widgets: Api<DynamicObject> =
        Api::namespaced_with(cp.admin_client(), "default", &ApiResource::from_gvk(&gvk));
    let widget = |name: &str, spec: serde_json::Value| -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "e2e.clientcreds.test/v1", "kind": "Widget",
            "metadata": {"name": name}, "spec": spec
        }))
        .unwrap()
    };

    let created = widgets
        .create(
            &PostParams::default(),
            &widget("ok", json!({"color": "red", "size": 3})),
        )
        .await
        .unwrap();
    assert_eq!(created.data["spec"]["color"], "red");

    for (name, spec, field) in [
        ("no-color", json!({"size": 3}), "spec.color"),
        ("green", json!({"color": "green"}), "spec.color"),
        ("zero", json!({"color": "red", "size": 0}), "spec.size"),
        (
            "text-size",
            json!({"color": "red", "size": "big"}),
            "spec.size",
        ),
        (
            "huge",
            json!({"color": "blue", "size": 11}),
            "size must be at most 10",
        ),
    ] {
        let err = widgets
            .create(&PostParams::default(), &widget(name, spec))
            .await
            .unwrap_err();
        assert_eq!(status_code(&err), Some(422), "{name}: {err}");
        assert!(err.to_string().contains(field), "{name}: {err}");
    }
    let names: Vec<String> = widgets
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|w| w.metadata.name)
        .collect();
    assert_eq!(names, ["ok"]);
}

#[tokio::test]
async fn a_watch_sees_an_update() {
    let cp = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(cp.admin_client(), "default");
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "watched"}, "data": {"n": "1"}}))
            .unwrap();
    let created = cms.create(&PostParams::default(), &cm).await.unwrap();
    let version = created.metadata.resource_version.unwrap();

    let wp = WatchParams::default().fields("metadata.name=watched");
    let mut events = cms.watch(&wp, &version).await.unwrap().boxed();
    cms.patch(
        "watched",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"n": "2"}})),
    )
    .await
    .unwrap();

    let seen = tokio::time::timeout(EVENTUALLY, async {
        while let Some(event) = events.try_next().await.unwrap() {
            if let WatchEvent::Modified(cm) = event {
                return cm;
            }
        }
        panic!("the watch ended without an update");
    })
    .await
    .expect("no update seen by the watch");
    assert_eq!(seen.data.unwrap()["n"], "2");
}

#[tokio::test]
async fn kubectl_and_helm_talk_to_it_and_restricted_kubeconfigs_are_restricted() {
    let cp = start().await;
    let out = cp
        .tool("kubectl")
        .unwrap()
        .args(["get", "namespaces", "-o", "name"])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("namespace/kube-system"));

    let out = cp
        .tool("helm")
        .unwrap()
        .args(["list", "--all-namespaces"])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let carol = cp.kubeconfig_for("carol", &["nobody"]).unwrap();
    let out = cp
        .tool("kubectl")
        .unwrap()
        .args(["--kubeconfig"])
        .arg(&carol)
        .args(["get", "secrets", "-n", "default"])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Forbidden") && stderr.contains(r#"User "carol""#),
        "{stderr}"
    );
}

#[tokio::test]
async fn dropping_stops_the_servers_and_removes_the_directory() {
    let cp = start().await;
    let dir = cp.dir().to_path_buf();
    let port = cp.server_url().rsplit(':').next().unwrap().to_owned();
    assert!(dir.join("logs").join("kube-apiserver.log").is_file());
    drop(cp);
    assert!(!dir.exists(), "{} is left behind", dir.display());
    assert!(
        tokio::net::TcpStream::connect(format!("127.0.0.1:{port}"))
            .await
            .is_err(),
        "the API server still listens"
    );
}

#[test]
fn a_panicking_test_keeps_the_logs() {
    let (tx, rx) = std::sync::mpsc::channel();
    let outcome = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let cp = start().await;
            tx.send(cp.dir().to_path_buf()).unwrap();
            panic!("on purpose: the control plane's logs must survive this");
        })
    })
    .join();
    assert!(outcome.is_err(), "the thread was meant to panic");
    let dir = rx.recv().unwrap();
    let log = dir.join("logs").join("kube-apiserver.log");
    let kept = std::fs::read_to_string(&log);
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        kept.unwrap().contains("Serving securely"),
        "{}",
        log.display()
    );
}

#[tokio::test]
async fn a_service_account_has_what_its_bindings_grant() {
    let cp = start().await;
    let admin = cp.admin_client();
    cp.create_namespace("ops").await.unwrap();
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "operator-view", "namespace": "ops"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "ServiceAccount", "name": "operator", "namespace": "ops"}]
    }))
    .unwrap();
    Api::<RoleBinding>::namespaced(admin, "ops")
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();

    let sa = cp.service_account_client("ops", "operator").unwrap();
    eventually("the service account's grant to take effect", || async {
        Api::<ConfigMap>::namespaced(sa.clone(), "ops")
            .list(&Default::default())
            .await
            .ok()
    })
    .await;
    // `view` does not include Secrets, and the binding is only in `ops`.
    let err = Api::<Secret>::namespaced(sa.clone(), "ops")
        .list(&Default::default())
        .await
        .unwrap_err();
    assert_eq!(status_code(&err), Some(403), "{err}");
    let err = Api::<ConfigMap>::namespaced(sa, "default")
        .list(&Default::default())
        .await
        .unwrap_err();
    assert_eq!(status_code(&err), Some(403), "{err}");
    assert!(cp.service_account_client("", "operator").is_err());
}
