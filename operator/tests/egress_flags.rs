//! The operator binary's egress flags: a bad allow-list stops it at start with a message naming
//! the flag, before it talks to any cluster.
#![allow(clippy::unwrap_used)]

use std::process::Command;

fn run(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clientcreds-operator"));
    cmd.arg("run")
        .args(["--metrics-addr", "127.0.0.1:0"])
        .args(args)
        // no cluster: a run that got past the flags would fail on the kubeconfig instead
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("EGRESS_ALLOW_HOSTS");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_bad_allow_list_is_refused_naming_the_flag() {
    let (ok, err) = run(&["--egress-allow-hosts", "https://collector.example/"], &[]);
    assert!(!ok);
    assert!(
        err.contains("--egress-allow-hosts") && err.contains("host:port"),
        "{err}"
    );
    // the same from the environment
    let (ok, err) = run(&[], &[("EGRESS_ALLOW_HOSTS", "a b")]);
    assert!(!ok);
    assert!(err.contains("--egress-allow-hosts"), "{err}");
    // a good list gets past the flags (and fails later, on the missing cluster)
    let (ok, err) = run(
        &[
            "--egress-allow-hosts",
            "127.0.0.1,@presets",
            "--egress-allow-http-loopback",
        ],
        &[],
    );
    assert!(!ok);
    assert!(!err.contains("--egress-allow-hosts"), "{err}");
}
