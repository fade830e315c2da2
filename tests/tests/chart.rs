//! The Helm chart: `helm lint --strict` for every value set, a schema that refuses wrong types
//! and unknown keys, a CRD and RBAC rendered from what the code generates (one source of truth),
//! and the manifests of every value set accepted by a real API server (server-side dry-run).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use clientcreds_e2e::chart::{CHART_DIR, ci_value_files};
use clientcreds_e2e::{ControlPlane, bin_path};
use clientcreds_operator::rbac::{
    LEADER_ELECTION_RULES, OPERATOR_RULES, RECOVERY_RULES, policy_rules,
};
use k8s_openapi::api::rbac::v1::PolicyRule;
use serde_json::Value;

const RELEASE: &str = "clientcreds-operator";
const NAMESPACE: &str = "clientcreds-system";

/// helm with its homes in a temporary directory (no cluster needed for lint and template).
fn helm(home: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(bin_path("helm").unwrap())
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .env_remove("KUBECONFIG")
        .args(args)
        .output()
        .unwrap()
}

fn render(home: &Path, values: Option<&Path>, set: &[&str]) -> Vec<Value> {
    let mut args = vec!["template", RELEASE, CHART_DIR, "--namespace", NAMESPACE];
    let values = values.map(|p| p.display().to_string());
    if let Some(v) = &values {
        args.extend(["-f", v.as_str()]);
    }
    for s in set {
        args.extend(["--set", s]);
    }
    let out = helm(home, &args);
    assert!(
        out.status.success(),
        "helm template {values:?} {set:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|v: &Value| !v.is_null())
        .collect()
}

fn find<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

/// The Roles of `docs` other than the recovery Role, after checking that there is exactly one
/// recovery Role, in the release namespace, with [`RECOVERY_RULES`].
fn roles_besides_recovery(docs: &[Value]) -> Vec<&Value> {
    let (recovery, others): (Vec<&Value>, Vec<&Value>) =
        find(docs, "Role").into_iter().partition(|r| {
            r["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n.ends_with("-recovery"))
        });
    assert_eq!(recovery.len(), 1, "one recovery Role");
    assert_eq!(recovery[0]["metadata"]["namespace"], NAMESPACE);
    assert_eq!(rules(recovery[0]), policy_rules(RECOVERY_RULES));
    others
}

fn rules(doc: &Value) -> Vec<PolicyRule> {
    serde_json::from_value(doc["rules"].clone()).unwrap()
}

fn args(docs: &[Value]) -> Vec<String> {
    let deployment = find(docs, "Deployment")[0];
    serde_json::from_value(deployment["spec"]["template"]["spec"]["containers"][0]["args"].clone())
        .unwrap()
}

fn ci_file(name: &str) -> PathBuf {
    PathBuf::from(CHART_DIR).join("ci").join(name)
}

#[test]
fn chart_lints_strict_with_every_value_set() {
    let home = tempfile::tempdir().unwrap();
    let files = ci_value_files();
    assert!(files.len() >= 4, "the chart's ci/ value sets: {files:?}");
    let mut sets: Vec<Option<PathBuf>> = vec![None];
    sets.extend(files.into_iter().map(Some));
    for values in sets {
        let mut args = vec!["lint", "--strict", CHART_DIR];
        let v = values.as_ref().map(|p| p.display().to_string());
        if let Some(v) = &v {
            args.extend(["-f", v.as_str()]);
        }
        let out = helm(home.path(), &args);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "helm lint --strict {v:?}:\n{text}");
        assert!(
            !text.contains("[WARNING]") && !text.contains("[ERROR]"),
            "{v:?}: {text}"
        );
    }
}

#[test]
fn schema_refuses_wrong_types_and_unknown_keys_naming_them() {
    let home = tempfile::tempdir().unwrap();
    for (set, needle) in [
        ("replicaCount=abc", "replicaCount"),
        ("unknownKey=1", "unknownKey"),
        ("metrics.servicemonitor.enabled=true", "servicemonitor"),
        ("watchNamespaces=Not_A_Namespace", "watchNamespaces"),
        ("metrics.port=70000", "port"),
    ] {
        let out = helm(home.path(), &["template", RELEASE, CHART_DIR, "--set", set]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "--set {set} was accepted");
        assert!(
            err.contains("schema") && err.contains(needle),
            "--set {set}: {err}"
        );
    }
}

#[test]
fn crd_and_rbac_are_rendered_from_what_the_code_generates() {
    let home = tempfile::tempdir().unwrap();
    let docs = render(home.path(), None, &[]);

    // the CRD: the generated one, kept on uninstall
    let generated: Value =
        serde_yaml::from_str(&clientcreds_operator::crd::crd_yaml().unwrap()).unwrap();
    let crds = find(&docs, "CustomResourceDefinition");
    assert_eq!(crds.len(), 1);
    assert_eq!(
        crds[0]["spec"], generated["spec"],
        "the chart's CRD differs from the code's"
    );
    assert_eq!(crds[0]["metadata"]["name"], generated["metadata"]["name"]);
    assert_eq!(
        crds[0]["metadata"]["annotations"]["helm.sh/resource-policy"],
        "keep"
    );

    // cluster-wide mode: one ClusterRole with exactly the operator's rules, no PDB, no Lease
    // role; the recovery Role in the release namespace (every mode has it)
    let cluster_roles = find(&docs, "ClusterRole");
    assert_eq!(cluster_roles.len(), 1);
    assert_eq!(rules(cluster_roles[0]), policy_rules(OPERATOR_RULES));
    assert!(roles_besides_recovery(&docs).is_empty());
    assert!(find(&docs, "PodDisruptionBudget").is_empty());
    let a = args(&docs);
    assert_eq!(a[0], "run");
    assert!(
        !a.iter().any(|x| x.starts_with("--leader-election")),
        "{a:?}"
    );
    assert!(
        !a.iter().any(|x| x.starts_with("--watch-namespaces")),
        "{a:?}"
    );
    let deployment = find(&docs, "Deployment")[0];
    let pod = &deployment["spec"]["template"]["spec"];
    let sc = &pod["containers"][0]["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["capabilities"]["drop"][0], "ALL");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["runAsUser"], 65532);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    assert_eq!(
        pod["containers"][0]["livenessProbe"]["httpGet"]["path"],
        "/healthz"
    );
    assert_eq!(
        pod["containers"][0]["readinessProbe"]["httpGet"]["path"],
        "/readyz"
    );
    // long enough for an enable call (120 s timeout) and the write of its one-time secret
    assert!(pod["terminationGracePeriodSeconds"].as_i64().unwrap() >= 150);
    // a PodDisruptionBudget on request with one replica too
    let docs = render(home.path(), None, &["podDisruptionBudget.enabled=true"]);
    let pdbs = find(&docs, "PodDisruptionBudget");
    assert_eq!(pdbs.len(), 1);
    assert_eq!(pdbs[0]["spec"]["minAvailable"], 1);

    // namespaced mode: a Role in each listed namespace, nothing cluster-wide
    let docs = render(home.path(), Some(&ci_file("namespaced-values.yaml")), &[]);
    assert!(find(&docs, "ClusterRole").is_empty());
    assert!(find(&docs, "ClusterRoleBinding").is_empty());
    let roles = roles_besides_recovery(&docs);
    let mut namespaces: Vec<&str> = roles
        .iter()
        .map(|r| r["metadata"]["namespace"].as_str().unwrap())
        .collect();
    namespaces.sort();
    assert_eq!(namespaces, ["team-a", "team-b"]);
    for r in roles {
        assert_eq!(rules(r), policy_rules(OPERATOR_RULES));
    }
    assert!(args(&docs).contains(&"--watch-namespaces=team-a,team-b".to_owned()));

    // two replicas: leader election with its own Role in the release namespace, and a PDB
    let docs = render(home.path(), Some(&ci_file("ha-values.yaml")), &[]);
    let a = args(&docs);
    assert!(a.contains(&"--leader-election".to_owned()), "{a:?}");
    let roles = roles_besides_recovery(&docs);
    assert_eq!(roles.len(), 1);
    assert_eq!(roles[0]["metadata"]["namespace"], NAMESPACE);
    assert_eq!(rules(roles[0]), policy_rules(LEADER_ELECTION_RULES));
    assert_eq!(find(&docs, "PodDisruptionBudget").len(), 1);

    // crds.install=false renders no CRD
    let docs = render(home.path(), None, &["crds.install=false"]);
    assert!(find(&docs, "CustomResourceDefinition").is_empty());
}

#[test]
fn rbac_scope_namespace_and_the_egress_policy_reach_the_operator() {
    let home = tempfile::tempdir().unwrap();
    // the defaults: a ClusterRole, the presets' hosts, https only
    let docs = render(home.path(), None, &[]);
    assert_eq!(find(&docs, "ClusterRole").len(), 1);
    let a = args(&docs);
    assert!(
        a.contains(&"--egress-allow-hosts=@presets".to_owned()),
        "{a:?}"
    );
    assert!(
        !a.iter()
            .any(|x| x.starts_with("--egress-allow-http-loopback")),
        "{a:?}"
    );
    assert!(
        !a.iter().any(|x| x.starts_with("--watch-namespaces")),
        "{a:?}"
    );

    // rbac.scope=namespace: a Role in the release namespace only, which is all it watches
    let docs = render(
        home.path(),
        None,
        &[
            "rbac.scope=namespace",
            "egress.allowHosts={127.0.0.1,@presets}",
            "egress.allowHttpLoopback=true",
        ],
    );
    assert!(find(&docs, "ClusterRole").is_empty());
    assert!(find(&docs, "ClusterRoleBinding").is_empty());
    let roles = roles_besides_recovery(&docs);
    assert_eq!(roles.len(), 1);
    assert_eq!(roles[0]["metadata"]["namespace"], NAMESPACE);
    assert_eq!(rules(roles[0]), policy_rules(OPERATOR_RULES));
    let a = args(&docs);
    for expected in [
        format!("--watch-namespaces={NAMESPACE}"),
        "--egress-allow-hosts=127.0.0.1,@presets".to_owned(),
        "--egress-allow-http-loopback".to_owned(),
    ] {
        assert!(a.contains(&expected), "{expected} not in {a:?}");
    }

    // the schema refuses a URL (or an unknown scope) where a host belongs, naming the key
    for (set, key) in [
        (
            "egress.allowHosts={https://x.example/}",
            "/egress/allowHosts/0",
        ),
        ("rbac.scope=cluster-wide", "/rbac/scope"),
    ] {
        let out = helm(home.path(), &["template", RELEASE, CHART_DIR, "--set", set]);
        assert!(!out.status.success(), "--set {set} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(key), "--set {set}: {err}");
    }
}

/// Prometheus Operator's kinds, as schema-less CRDs, so a dry-run can check the objects the
/// chart renders for them (names, namespaces, apiVersion) without that operator.
fn monitoring_crds()
-> Vec<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition>
{
    ["ServiceMonitor", "PrometheusRule"]
        .into_iter()
        .map(|kind| {
            let plural = format!("{}s", kind.to_lowercase());
            serde_json::from_value(serde_json::json!({
                "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                "metadata": {"name": format!("{plural}.monitoring.coreos.com")},
                "spec": {"group": "monitoring.coreos.com", "scope": "Namespaced",
                         "names": {"kind": kind, "plural": plural, "singular": kind.to_lowercase(),
                                   "listKind": format!("{kind}List")},
                         "versions": [{"name": "v1", "served": true, "storage": true,
                                       "schema": {"openAPIV3Schema": {"type": "object",
                                                  "x-kubernetes-preserve-unknown-fields": true}}}]}
            }))
            .unwrap()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_value_set_passes_a_server_side_dry_run() {
    let cp = ControlPlane::start().await.unwrap();
    cp.install_crds(&monitoring_crds()).await.unwrap();
    for ns in [NAMESPACE, "team-a", "team-b"] {
        cp.create_namespace(ns).await.unwrap();
    }
    let mut sets: Vec<Option<PathBuf>> = vec![None];
    sets.extend(ci_value_files().into_iter().map(Some));
    for values in sets {
        let mut args = vec!["template", RELEASE, CHART_DIR, "--namespace", NAMESPACE];
        let v = values.as_ref().map(|p| p.display().to_string());
        if let Some(v) = &v {
            args.extend(["-f", v.as_str()]);
        }
        let rendered = cp.helm(&args).await.unwrap();
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), &rendered).unwrap();
        let out = cp
            .tool("kubectl")
            .unwrap()
            .args(["apply", "--dry-run=server", "--server-side", "-f"])
            .arg(file.path())
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "server-side dry-run of {v:?}:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let applied = String::from_utf8_lossy(&out.stdout);
        assert!(
            applied.contains("deployment.apps/clientcreds-operator"),
            "{applied}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_yaml_install_applies_on_a_fresh_cluster() {
    // README's path without Helm: the CRD, then the namespace, ServiceAccount and RBAC.
    let cp = ControlPlane::start().await.unwrap();
    let root = PathBuf::from(clientcreds_e2e::chart::REPO_DIR);
    let out = cp
        .tool("kubectl")
        .unwrap()
        .arg("apply")
        .arg("-f")
        .arg(root.join("crds/oauthclient.yaml"))
        .arg("-f")
        .arg(root.join("deploy/rbac.yaml"))
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "kubectl apply on a fresh cluster:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sa: kube::Api<k8s_openapi::api::core::v1::ServiceAccount> =
        kube::Api::namespaced(cp.admin_client(), NAMESPACE);
    assert!(
        sa.get(RELEASE).await.is_ok(),
        "the operator's ServiceAccount"
    );
    // the identity it creates may do what the operator needs, and no more
    let operator = cp.service_account_client(NAMESPACE, RELEASE).unwrap();
    let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> = kube::Api::all(operator);
    assert!(secrets.list(&Default::default()).await.is_ok());
}
