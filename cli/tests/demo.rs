//! `clientcreds demo`: the README's first command runs the five providers end to end on the
//! embedded sandbox and prints no token.
#![allow(clippy::unwrap_used)]

use std::process::Command;

#[test]
fn demo_reaches_every_provider_and_prints_no_token() {
    let output = Command::new(env!("CARGO_BIN_EXE_clientcreds"))
        .arg("demo")
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(output.status.success(), "{stdout}\n{stderr}");
    for provider in ["azupay", "autopay", "payu", "pyng", "afterpay"] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(provider))
            .unwrap_or_else(|| panic!("no line for {provider}:\n{stdout}"));
        assert!(line.contains(" OK "), "{line}");
        assert!(line.contains("status: 200 OK"), "{line}");
        // Two protected calls, one token request: the second call was served from the cache.
        assert!(line.ends_with("token requests: 1"), "{line}");
    }
    assert!(stdout.contains("all 5 providers OK"), "{stdout}");
    // Tokens are JWTs (eyJ…) or opaque strings; neither the JWT prefix nor an Authorization header is
    // printed, and nothing of the sandbox's secrets.
    let all = format!("{stdout}{stderr}");
    assert!(!all.contains("eyJ"), "{all}");
    assert!(!all.contains("Authorization"), "{all}");
    for secret in [
        clientcreds_sandbox::AZUPAY_API_KEY,
        clientcreds_sandbox::AZUPAY_OAUTH2_CLIENT_SECRET,
        clientcreds_sandbox::AUTOPAY_CLIENT_SECRET,
        clientcreds_sandbox::PAYU_CLIENT_SECRET,
        clientcreds_sandbox::PYNG_CLIENT_SECRET,
        clientcreds_sandbox::AFTERPAY_CLIENT_SECRET,
    ] {
        assert!(!all.contains(secret), "a secret in the output:\n{all}");
    }
}
