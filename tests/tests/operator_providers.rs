//! The operator against a real control plane, with the sandbox as every provider: each of the
//! five providers reaches Ready, and its token Secret holds a token the provider's protected
//! endpoint accepts — directly, and through the middleware's mounted-token source.
#![allow(clippy::unwrap_used)]

mod operator_support;

use clientcreds::source::{MountedToken, TokenSource};
use clientcreds_sandbox::{PAYU_SCOPES, PYNG_SCOPES, SandboxConfig};
use operator_support::*;
use secrecy::ExposeSecret;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_provider_reaches_ready_and_its_token_works() {
    let env = setup(SandboxConfig::default()).await;
    let sb = &env.sandbox;
    let az = sb.azupay();
    let autopay = sb.autopay();
    let payu = sb.payu();
    let pyng = sb.pyng();
    let afterpay = sb.afterpay();

    env.create_secret("azupay-api-key", &[("apiKey", &az.api_key)])
        .await;
    for (name, p) in [
        ("autopay", &autopay),
        ("payu", &payu),
        ("pyng", &pyng),
        ("afterpay", &afterpay),
    ] {
        env.create_secret(
            &format!("{name}-credentials"),
            &[
                ("client_id", &p.client_id),
                ("client_secret", &p.client_secret),
            ],
        )
        .await;
    }
    env.create_oac(json!({
        "metadata": {"name": "azupay"},
        "spec": {
            "provider": "azupay",
            "azupay": {"endpoint": az.endpoint, "clientId": az.client_id,
                       "apiKeySecretRef": {"name": "azupay-api-key", "key": "apiKey"}},
            "credentials": {"secretName": "azupay-oauth2-credentials"},
            "tokens": [{"secretName": "azupay-token", "scopes": ["RestAPI/GET:balance"]}]
        }
    }))
    .await;
    env.create_oac(json!({
        "metadata": {"name": "autopay"},
        "spec": {"provider": "autopay", "credentialsSecretRef": {"name": "autopay-credentials"},
                 "tokenUrl": autopay.token_url, "tokens": [{"secretName": "autopay-token"}]}
    }))
    .await;
    env.create_oac(json!({
        "metadata": {"name": "payu"},
        "spec": {"provider": "payu", "credentialsSecretRef": {"name": "payu-credentials"},
                 "tokenUrl": payu.token_url, "tokens": [{"secretName": "payu-token", "scopes": [PAYU_SCOPES[0]]}]}
    }))
    .await;
    env.create_oac(json!({
        "metadata": {"name": "pyng"},
        "spec": {"provider": "pyng", "credentialsSecretRef": {"name": "pyng-credentials"},
                 "tokenUrl": pyng.token_url, "tokens": [{"secretName": "pyng-token", "scopes": [PYNG_SCOPES[0], PYNG_SCOPES[1]]}]}
    }))
    .await;
    env.create_oac(json!({
        "metadata": {"name": "afterpay"},
        "spec": {"provider": "afterpay", "credentialsSecretRef": {"name": "afterpay-credentials"},
                 "tokenUrl": afterpay.token_url, "tokens": [{"secretName": "afterpay-token"}]}
    }))
    .await;

    let operator = env.start_operator(None);

    let mut all_secrets = vec![
        az.api_key.clone(),
        autopay.client_secret.clone(),
        payu.client_secret.clone(),
        pyng.client_secret.clone(),
        afterpay.client_secret.clone(),
    ];
    let tmp = tempfile::tempdir().unwrap();
    for (name, resource) in [
        ("azupay", az.resource_url.clone()),
        ("autopay", autopay.resource_url.clone()),
        ("payu", payu.resource_url.clone()),
        ("pyng", pyng.resource_url.clone()),
        ("afterpay", afterpay.resource_url.clone()),
    ] {
        let oac = env.wait_ready(name).await;
        let status = oac.status.unwrap();
        assert_eq!(status.observed_generation, oac.metadata.generation);
        for t in ["CredentialsStored", "TokensIssued"] {
            assert!(
                status
                    .conditions
                    .iter()
                    .any(|c| c.type_ == t && c.status == "True"),
                "{name}: {t}"
            );
        }
        assert!(status.tokens[0].expires_at.is_some() && status.tokens[0].refresh_at.is_some());
        assert!(status.next_expiry.is_some());

        let secret = env.token_secret(&format!("{name}-token")).await;
        // owned by the OAuthClient
        let owner = &secret.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str()),
            ("OAuthClient", name)
        );
        let token = data(&secret, "access_token");
        assert_eq!(data(&secret, "token_type").to_ascii_lowercase(), "bearer");
        let expires_at: jiff::Timestamp = data(&secret, "expires_at").parse().unwrap();
        assert!(expires_at > jiff::Timestamp::now());
        assert!(secret.data.as_ref().unwrap().contains_key("scope"));
        assert_eq!(
            call_protected(&resource, &token).await,
            200,
            "{name}: the sandbox rejects the token"
        );

        // the Secret's data as a mounted directory, read by the middleware
        let dir = tmp.path().join(name);
        std::fs::create_dir(&dir).unwrap();
        for (k, v) in secret.data.as_ref().unwrap() {
            std::fs::write(dir.join(k), &v.0).unwrap();
        }
        let mounted = MountedToken::new(&dir).unwrap();
        let from_mount = mounted.token().await.unwrap();
        assert_eq!(from_mount.secret().expose_secret(), token);
        assert_eq!(
            call_protected(&resource, from_mount.secret().expose_secret()).await,
            200
        );
        all_secrets.push(token);
    }

    // the Azupay one-time secret is stored; it is a secret like the others
    let creds = env.token_secret("azupay-oauth2-credentials").await;
    let stored_secret = data(&creds, "client_secret");
    assert_eq!(
        stored_secret,
        clientcreds_sandbox::AZUPAY_OAUTH2_CLIENT_SECRET
    );
    assert_eq!(
        data(&creds, "client_id"),
        clientcreds_sandbox::AZUPAY_OAUTH2_CLIENT_ID
    );
    all_secrets.push(stored_secret);
    assert_eq!(sb.enable_calls(&az.client_id), 1);

    operator.stop().await;
    env.assert_no_secret_anywhere(&all_secrets).await;
}
