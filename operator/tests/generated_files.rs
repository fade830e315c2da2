//! Every file generated from the operator's code must match it: the CRD (from the Rust types) in
//! `crds/` and in the Helm chart, and the RBAC (from `rbac.rs`) in `deploy/` and in the chart.
//! Regenerate them all with `scripts/generate`.

fn check(path: &str, generated: &str) {
    let full = format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"));
    let committed = std::fs::read_to_string(&full).unwrap_or_default();
    assert!(
        committed == generated,
        "{path} is out of date with the operator's code; regenerate it with:\n  scripts/generate"
    );
}

#[test]
fn committed_crds_match_rust_types() {
    let generated = clientcreds_operator::crd::crd_yaml().unwrap();
    check("crds/oauthclient.yaml", &generated);
    check(
        "charts/clientcreds-operator/files/oauthclient-crd.yaml",
        &generated,
    );
}

#[test]
fn committed_rbac_matches_the_code() {
    check(
        "deploy/rbac.yaml",
        &clientcreds_operator::rbac::manifests_yaml("clientcreds-system", "clientcreds-operator"),
    );
    check(
        "charts/clientcreds-operator/files/rbac-rules.yaml",
        &clientcreds_operator::rbac::rules_yaml(),
    );
}

#[test]
fn crd_has_shortname_printer_columns_and_cel_rules() {
    let yaml = clientcreds_operator::crd::crd_yaml().unwrap();
    for needle in [
        "- oac",
        "name: Provider",
        "name: Ready",
        "name: Next Expiry",
        "name: Age",
        "rule: self == oldSelf",
        "self > 0.0 && self < 1.0",
        "minItems: 1",
        "scope: Namespaced",
    ] {
        assert!(yaml.contains(needle), "CRD lacks {needle:?}");
    }
}

#[test]
fn no_printer_column_is_a_future_date() {
    // kube-apiserver prints a `date` column that lies in the future as `<invalid>`; only
    // creationTimestamp (always past) may be one.
    let crd: serde_json::Value =
        serde_yaml::from_str(&clientcreds_operator::crd::crd_yaml().unwrap()).unwrap();
    for version in crd["spec"]["versions"].as_array().unwrap() {
        for column in version["additionalPrinterColumns"].as_array().unwrap() {
            if column["type"] == "date" {
                assert_eq!(
                    column["jsonPath"], ".metadata.creationTimestamp",
                    "{column}"
                );
            }
        }
    }
}
