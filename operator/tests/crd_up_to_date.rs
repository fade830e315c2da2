//! The committed CRD YAML must match the Rust types.

#[test]
fn committed_crd_matches_rust_types() {
    let generated = clientcreds_operator::crd::crd_yaml().unwrap();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../crds/oauthclient.yaml");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == generated,
        "crds/oauthclient.yaml is out of date with operator/src/crd.rs; regenerate it with:\n  \
         cargo run -p clientcreds-operator -- crd > crds/oauthclient.yaml"
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
