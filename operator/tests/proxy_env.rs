//! The operator's default HTTP client (`Config::default().http`, used for every token and
//! Azupay request) honours `HTTPS_PROXY`, `HTTP_PROXY` and `NO_PROXY` from the process
//! environment. The environment is process-global (and changing it is `unsafe`), so a child
//! process of this test binary is started with it.

#![allow(clippy::unwrap_used)] // tests may unwrap

use clientcreds_operator::run::Config;

/// The test that runs in the child process.
const CHILD: &str = "child_builds_the_default_config";
/// Set for the child only.
const CHILD_MARKER: &str = "CLIENTCREDS_OPERATOR_PROXY_TEST_CHILD";

#[test]
fn the_default_client_reads_the_proxy_variables() {
    let mut command = std::process::Command::new(std::env::current_exe().unwrap());
    for name in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
        "REQUEST_METHOD",
    ] {
        command.env_remove(name).env_remove(name.to_lowercase());
    }
    // As the chart's extraEnv sets them.
    let output = command
        .args([CHILD, "--exact", "--nocapture"])
        .env("HTTPS_PROXY", "http://ops:s3cret@proxy.corp.example:3128")
        .env(
            "NO_PROXY",
            "kubernetes.default.svc,.svc,.cluster.local,10.0.0.0/8",
        )
        .env(CHILD_MARKER, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs only as the child of `the_default_client_reads_the_proxy_variables` (passes trivially
/// otherwise).
#[test]
fn child_builds_the_default_config() {
    if std::env::var_os(CHILD_MARKER).is_none() {
        return;
    }
    let config = Config::default();
    let proxy = config.http.proxy();
    assert!(proxy.is_from_env());
    let via = |url: &str| proxy.for_uri(&url.parse().unwrap());
    // Azupay's enable call and a token endpoint: through the proxy (CONNECT).
    for url in [
        "https://api-uat.azupay.com.au/v1/client/MYBUSINESSID/oauth2",
        "https://secure.payu.com/pl/standard/user/oauth/authorize",
    ] {
        assert_eq!(
            via(url).as_deref(),
            Some("http://proxy.corp.example:3128"),
            "{url}"
        );
    }
    // In-cluster names and the service CIDR: directly.
    for url in [
        "https://kubernetes.default.svc/api",
        "http://token.auth.svc.cluster.local/token",
        "https://10.96.0.1/api",
    ] {
        assert_eq!(via(url), None, "{url}");
    }
    assert!(!format!("{:?}", config.http).contains("s3cret"));
}
