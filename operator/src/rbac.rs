//! The permissions the operator needs, written once.
//!
//! Everything that grants the operator access is generated from [`OPERATOR_RULES`],
//! [`RECOVERY_RULES`] and [`LEADER_ELECTION_RULES`]: `deploy/rbac.yaml` (the raw-YAML install) and the Helm chart's
//! `files/rbac-rules.yaml` (which its ClusterRole or per-namespace Roles render), both printed by
//! `clientcreds-operator rbac` and checked against this module by a test.

use std::fmt::Write;

use k8s_openapi::api::rbac::v1::PolicyRule;

/// One RBAC rule, with the reason it is needed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Why the operator needs it (a comment in the generated YAML).
    pub why: &'static str,
    /// API groups (`""` is the core group).
    pub api_groups: &'static [&'static str],
    /// Resources (or subresources, `oauthclients/status`).
    pub resources: &'static [&'static str],
    /// Verbs.
    pub verbs: &'static [&'static str],
}

/// What the operator needs in every namespace it watches (a ClusterRole in cluster-wide mode, a
/// Role in each of the chart's `watchNamespaces` in namespaced mode).
pub const OPERATOR_RULES: &[Rule] = &[
    Rule {
        why: "the custom resource",
        api_groups: &["clientcreds.dev"],
        resources: &["oauthclients"],
        verbs: &["get", "list", "watch"],
    },
    Rule {
        why: "its status: server-side apply, nothing else",
        api_groups: &["clientcreds.dev"],
        resources: &["oauthclients/status"],
        verbs: &["patch"],
    },
    Rule {
        why: "owner references with blockOwnerDeletion on the Secrets it writes (needed where the \
              OwnerReferencesPermissionEnforcement admission plugin is on, e.g. OpenShift)",
        api_groups: &["clientcreds.dev"],
        resources: &["oauthclients/finalizers"],
        verbs: &["update"],
    },
    Rule {
        why: "token Secrets and the Azupay credentials Secret (server-side apply; delete only for \
              token Secrets dropped from spec.tokens), and the referenced API key / client \
              credentials Secrets (read and watch, to react to rotation)",
        api_groups: &[""],
        resources: &["secrets"],
        verbs: &["get", "list", "watch", "create", "patch", "delete"],
    },
    Rule {
        why: "events through the Recorder (it creates and then patches a series)",
        api_groups: &["events.k8s.io"],
        resources: &["events"],
        verbs: &["create", "patch"],
    },
];

/// What the recovery Secrets need, only in the operator's own namespace: a one-time Azupay secret
/// whose credentials Secret cannot be written is kept there ([`crate::azupay::recovery`]),
/// read back on every reconcile that finds no stored secret, and deleted once delivered.
pub const RECOVERY_RULES: &[Rule] = &[Rule {
    why: "recovery Secrets: a one-time Azupay secret whose credentials Secret write was refused \
          (create-only), read back and deleted once delivered",
    api_groups: &[""],
    resources: &["secrets"],
    verbs: &["get", "create", "delete"],
}];

/// What leader election needs, only in the operator's own namespace.
pub const LEADER_ELECTION_RULES: &[Rule] = &[Rule {
    why: "leader election on a Lease: what kube-lease-manager calls",
    api_groups: &["coordination.k8s.io"],
    resources: &["leases"],
    verbs: &["get", "create", "patch"],
}];

/// The rules as Kubernetes `PolicyRule`s.
pub fn policy_rules(rules: &[Rule]) -> Vec<PolicyRule> {
    let strings = |v: &[&str]| Some(v.iter().map(|s| (*s).to_owned()).collect());
    rules
        .iter()
        .map(|r| PolicyRule {
            api_groups: strings(r.api_groups),
            resources: strings(r.resources),
            verbs: r.verbs.iter().map(|s| (*s).to_owned()).collect(),
            ..PolicyRule::default()
        })
        .collect()
}

const GENERATED: &str = "# Generated from operator/src/rbac.rs by `clientcreds-operator rbac`; do not edit \
                         (a test fails when it differs).\n";

fn list(v: &[&str]) -> String {
    let quoted: Vec<String> = v.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

fn write_rules(out: &mut String, indent: &str, rules: &[Rule]) {
    for r in rules {
        let _ = writeln!(out, "{indent}# {}", r.why);
        let _ = writeln!(out, "{indent}- apiGroups: {}", list(r.api_groups));
        let _ = writeln!(out, "{indent}  resources: {}", list(r.resources));
        let _ = writeln!(out, "{indent}  verbs: {}", list(r.verbs));
    }
}

/// The rules as the Helm chart reads them (`charts/clientcreds-operator/files/rbac-rules.yaml`):
/// a map with `operator`, `recovery` and `leaderElection` rule lists.
pub fn rules_yaml() -> String {
    let mut out = String::from(GENERATED);
    out.push_str("operator:\n");
    write_rules(&mut out, "  ", OPERATOR_RULES);
    out.push_str("recovery:\n");
    write_rules(&mut out, "  ", RECOVERY_RULES);
    out.push_str("leaderElection:\n");
    write_rules(&mut out, "  ", LEADER_ELECTION_RULES);
    out
}

/// The raw-YAML install of the operator's identity (`deploy/rbac.yaml`): its Namespace, its
/// ServiceAccount, a ClusterRole + binding with [`OPERATOR_RULES`], and in `namespace` a Role +
/// binding with [`RECOVERY_RULES`] and one with [`LEADER_ELECTION_RULES`].
pub fn manifests_yaml(namespace: &str, name: &str) -> String {
    manifests_yaml_in(namespace, name, &[])
}

/// [`manifests_yaml`], or with `watch_namespaces` the namespaced variant: instead of the
/// ClusterRole, a Role + RoleBinding with [`OPERATOR_RULES`] in each watched namespace only (run
/// the operator with the same `--watch-namespaces`); it can then read no Secret elsewhere.
pub fn manifests_yaml_in(namespace: &str, name: &str, watch_namespaces: &[String]) -> String {
    let mut out = String::from(GENERATED);
    let _ = write!(
        out,
        "# The operator's identity for the raw-YAML install (the Helm chart renders the same rules).\n\
         ---\n\
         apiVersion: v1\n\
         kind: Namespace\n\
         metadata:\n  name: {namespace}\n\
         ---\n\
         apiVersion: v1\n\
         kind: ServiceAccount\n\
         metadata:\n  name: {name}\n  namespace: {namespace}\n\
         ---\n"
    );
    let scopes: Vec<(&str, String)> = if watch_namespaces.is_empty() {
        vec![("Cluster", String::new())]
    } else {
        watch_namespaces
            .iter()
            .map(|ns| ("", format!("\n  namespace: {ns}")))
            .collect()
    };
    for (cluster, watched) in &scopes {
        let _ = write!(
            out,
            "apiVersion: rbac.authorization.k8s.io/v1\n\
             kind: {cluster}Role\n\
             metadata:\n  name: {name}{watched}\n\
             rules:\n"
        );
        write_rules(&mut out, "  ", OPERATOR_RULES);
        let _ = write!(
            out,
            "---\n\
             apiVersion: rbac.authorization.k8s.io/v1\n\
             kind: {cluster}RoleBinding\n\
             metadata:\n  name: {name}{watched}\n\
             roleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: {cluster}Role\n  name: {name}\n\
             subjects:\n  - kind: ServiceAccount\n    name: {name}\n    namespace: {namespace}\n\
             ---\n"
        );
    }
    let _ = write!(
        out,
        "apiVersion: rbac.authorization.k8s.io/v1\n\
         kind: Role\n\
         metadata:\n  name: {name}-recovery\n  namespace: {namespace}\n\
         rules:\n"
    );
    write_rules(&mut out, "  ", RECOVERY_RULES);
    let _ = write!(
        out,
        "---\n\
         apiVersion: rbac.authorization.k8s.io/v1\n\
         kind: RoleBinding\n\
         metadata:\n  name: {name}-recovery\n  namespace: {namespace}\n\
         roleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: Role\n  name: {name}-recovery\n\
         subjects:\n  - kind: ServiceAccount\n    name: {name}\n    namespace: {namespace}\n\
         ---\n"
    );
    let _ = write!(
        out,
        "apiVersion: rbac.authorization.k8s.io/v1\n\
         kind: Role\n\
         metadata:\n  name: {name}-leader-election\n  namespace: {namespace}\n\
         rules:\n"
    );
    write_rules(&mut out, "  ", LEADER_ELECTION_RULES);
    let _ = write!(
        out,
        "---\n\
         apiVersion: rbac.authorization.k8s.io/v1\n\
         kind: RoleBinding\n\
         metadata:\n  name: {name}-leader-election\n  namespace: {namespace}\n\
         roleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: Role\n  name: {name}-leader-election\n\
         subjects:\n  - kind: ServiceAccount\n    name: {name}\n    namespace: {namespace}\n"
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Files {
        operator: Vec<PolicyRule>,
        recovery: Vec<PolicyRule>,
        leader_election: Vec<PolicyRule>,
    }

    #[test]
    fn rules_yaml_parses_back_to_the_rules() {
        let files: Files = serde_yaml::from_str(&rules_yaml()).expect("valid YAML");
        assert_eq!(files.operator, policy_rules(OPERATOR_RULES));
        assert_eq!(files.recovery, policy_rules(RECOVERY_RULES));
        assert_eq!(files.leader_election, policy_rules(LEADER_ELECTION_RULES));
    }

    #[test]
    fn manifests_hold_namespace_identity_and_both_roles() {
        let yaml = manifests_yaml("ops", "op");
        let docs: Vec<serde_json::Value> = serde_yaml::Deserializer::from_str(&yaml)
            .map(|d| serde::Deserialize::deserialize(d).expect("valid YAML"))
            .filter(|v: &serde_json::Value| !v.is_null())
            .collect();
        let kinds: Vec<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
        assert_eq!(
            kinds,
            [
                "Namespace",
                "ServiceAccount",
                "ClusterRole",
                "ClusterRoleBinding",
                "Role",
                "RoleBinding",
                "Role",
                "RoleBinding"
            ]
        );
        let cluster_rules: Vec<PolicyRule> =
            serde_json::from_value(docs[2]["rules"].clone()).expect("rules");
        assert_eq!(cluster_rules, policy_rules(OPERATOR_RULES));
        let recovery_rules: Vec<PolicyRule> =
            serde_json::from_value(docs[4]["rules"].clone()).expect("rules");
        assert_eq!(recovery_rules, policy_rules(RECOVERY_RULES));
        assert_eq!(docs[4]["metadata"]["namespace"], "ops");
        assert_eq!(docs[5]["subjects"][0]["namespace"], "ops");
        assert_eq!(docs[7]["subjects"][0]["namespace"], "ops");

        // the namespaced variant: Roles in the watched namespaces, nothing cluster-wide
        let yaml = manifests_yaml_in("ops", "op", &["team-a".into(), "team-b".into()]);
        let docs: Vec<serde_json::Value> = serde_yaml::Deserializer::from_str(&yaml)
            .map(|d| serde::Deserialize::deserialize(d).expect("valid YAML"))
            .filter(|v: &serde_json::Value| !v.is_null())
            .collect();
        let kinds: Vec<(&str, &str)> = docs
            .iter()
            .map(|d| {
                (
                    d["kind"].as_str().unwrap_or_default(),
                    d["metadata"]["namespace"].as_str().unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(
            kinds,
            [
                ("Namespace", ""),
                ("ServiceAccount", "ops"),
                ("Role", "team-a"),
                ("RoleBinding", "team-a"),
                ("Role", "team-b"),
                ("RoleBinding", "team-b"),
                ("Role", "ops"),
                ("RoleBinding", "ops"),
                ("Role", "ops"),
                ("RoleBinding", "ops")
            ]
        );
        let rules: Vec<PolicyRule> =
            serde_json::from_value(docs[4]["rules"].clone()).expect("rules");
        assert_eq!(rules, policy_rules(OPERATOR_RULES));
        assert_eq!(docs[5]["roleRef"]["kind"], "Role");
        assert_eq!(docs[5]["subjects"][0]["namespace"], "ops");
    }

    #[test]
    fn secrets_are_never_granted_cluster_scoped_extras() {
        // No escalate/bind/impersonate and no wildcard anywhere.
        for r in OPERATOR_RULES
            .iter()
            .chain(RECOVERY_RULES)
            .chain(LEADER_ELECTION_RULES)
        {
            for v in r.verbs {
                assert!(
                    !["*", "escalate", "bind", "impersonate"].contains(v),
                    "{r:?}"
                );
            }
            assert!(!r.resources.contains(&"*"), "{r:?}");
        }
    }
}
