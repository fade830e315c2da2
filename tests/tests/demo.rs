//! The cluster demo of README.md (`scripts/demo`, whose last step is `clientcreds-e2e demo`)
//! keeps its promises: every step runs, `kubectl get oac` reads well, no token is printed, the
//! pod's mounted token changes on a forced refresh, the layer's call succeeds, and nothing is
//! left running afterwards.
#![allow(clippy::unwrap_used)]

use std::process::Command;

#[test]
fn the_cluster_demo_runs_end_to_end_and_cleans_up() {
    // the image the demo runs (scripts/test builds it first)
    clientcreds_e2e::chart::operator_image_archive().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_clientcreds-e2e"))
        .args(["demo", "--no-wait"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the demo failed:\n{stdout}\n{stderr}");

    // kubectl get oac: five Ready clients, the next expiry a readable timestamp
    let table: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.contains("$ kubectl get oac"))
        .skip(1)
        .take(6)
        .collect();
    assert!(
        table[0].contains("NAME") && table[0].contains("NEXT EXPIRY"),
        "{stdout}"
    );
    for (row, name) in table[1..]
        .iter()
        .zip(["afterpay", "autopay", "azupay", "payu", "pyng"])
    {
        let cols: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cols[0], name, "{row}");
        assert_eq!(cols[2], "True", "{row}");
        let expiry = cols[3];
        assert!(
            expiry.len() == 20
                && expiry.ends_with('Z')
                && expiry.parse::<jiff::Timestamp>().is_ok(),
            "NEXT EXPIRY reads {expiry:?}"
        );
    }
    assert!(!stdout.contains("<invalid>"), "{stdout}");

    // the refresh reached the pod, the layer's call succeeded, and it cleaned up
    assert!(
        stdout.contains("the pod's mounted token changed sha256:"),
        "{stdout}"
    );
    assert!(stdout.contains("→ 200 OK"), "{stdout}");
    assert!(stdout.trim_end().ends_with("done"), "{stdout}");

    // never a token: the sandbox's tokens are JWTs or long opaque strings; none is printed
    // (fingerprints are 12 hex digits), and no line carries a JWT
    assert!(
        !stdout.contains("eyJ") && !stderr.contains("eyJ"),
        "a JWT was printed"
    );

    // the operator's container is gone
    let name = stdout
        .split("(container ")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .unwrap()
        .to_owned();
    let ps = Command::new("podman")
        .args([
            "--storage-driver",
            "vfs",
            "ps",
            "-a",
            "--format",
            "{{.Names}}",
        ])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&ps.stdout)
            .lines()
            .any(|l| l == name),
        "container {name} left behind"
    );
}
