//! The operator's security boundaries on a real control plane with RBAC on (issue 13, R6): the
//! egress policy (a refused `http://` endpoint, a refused host outside the allow-list: nothing
//! reaches it), Secret ownership (a foreign Secret is never written, adopted or
//! garbage-collected), and the namespaced RBAC variant (a Role in one namespace is enough).
#![allow(clippy::unwrap_used)]

mod operator_support;

use clientcreds_operator::egress::{EgressPolicy, PRESET_HOSTS};
use clientcreds_operator::rbac::manifests_yaml_in;
use clientcreds_operator::run::Config;
use clientcreds_sandbox::{AZUPAY_OAUTH2_CLIENT_SECRET, PAYU_SCOPES, SandboxConfig};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, ListParams, PostParams};
use operator_support::*;
use serde_json::json;

/// A PayU OAuthClient `payu` against the sandbox, and its credentials Secret.
async fn create_payu(env: &Env) {
    let p = env.sandbox.payu();
    env.create_secret(
        "payu-credentials",
        &[
            ("client_id", &p.client_id),
            ("client_secret", &p.client_secret),
        ],
    )
    .await;
    env.create_oac(json!({
        "metadata": {"name": "payu"},
        "spec": {"provider": "payu", "credentialsSecretRef": {"name": "payu-credentials"},
                 "tokenUrl": p.token_url,
                 "tokens": [{"secretName": "payu-token", "scopes": [PAYU_SCOPES[0]]}]}
    }))
    .await;
}

/// Waits until `name`'s condition `type_` says `EgressDenied` and returns its message.
async fn denied(env: &Env, name: &str, type_: &str) -> String {
    let (_, c) = env.wait_condition_reason(name, type_, "EgressDenied").await;
    assert_eq!(c.status, "False");
    c.message
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_is_refused_without_the_loopback_opt_in_and_nothing_is_sent() {
    let env = setup(SandboxConfig::default()).await;
    // the sandbox's host is allowed, plain http to it is not
    let op = env.start_operator_with(Config {
        egress: EgressPolicy::new(["127.0.0.1"], false).unwrap(),
        ..test_config()
    });
    create_payu(&env).await;
    env.create_azupay(
        "payments",
        json!([{"secretName": "token-balance", "scopes": ["RestAPI/GET:balance"]}]),
    )
    .await;
    let m = denied(&env, "payu", "TokensIssued").await;
    assert!(
        m.contains("spec.tokenUrl") && m.contains("--egress-allow-http-loopback"),
        "{m}"
    );
    let m = denied(&env, "payments", "CredentialsStored").await;
    assert!(
        m.contains("spec.azupay.endpoint") && m.contains("127.0.0.1"),
        "{m}"
    );
    let note = env.wait_event("EgressDenied").await;
    assert!(
        note.contains("127.0.0.1") && note.contains("nothing was sent"),
        "{note}"
    );
    assert_eq!(
        env.sandbox.requests().len(),
        0,
        "a request reached the sandbox"
    );
    // nothing was written either: no credentials Secret, no token Secret
    for name in ["azupay-oauth2-credentials", "token-balance", "payu-token"] {
        assert!(
            env.secrets().get_opt(name).await.unwrap().is_none(),
            "{name}"
        );
    }
    op.stop().await;

    // the CRD refuses plain http to any host that is not loopback, naming the field
    let err = env
        .oacs()
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "clientcreds.dev/v1alpha1", "kind": "OAuthClient",
                "metadata": {"name": "plain", "namespace": env.ns},
                "spec": {"provider": "generic", "credentialsSecretRef": {"name": "c"},
                         "tokenUrl": "http://collector.example/token",
                         "tokens": [{"secretName": "t"}]}
            }))
            .unwrap(),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("spec.tokenUrl must be an https:// URL"),
        "{err}"
    );
    let az = env.sandbox.azupay();
    let err = env
        .oacs()
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "clientcreds.dev/v1alpha1", "kind": "OAuthClient",
                "metadata": {"name": "plain-azupay", "namespace": env.ns},
                "spec": {"provider": "azupay",
                         "azupay": {"endpoint": "http://collector.example/v1",
                                    "clientId": az.client_id,
                                    "apiKeySecretRef": {"name": "azupay-api-key", "key": "apiKey"}},
                         "credentials": {"secretName": "c"},
                         "tokens": [{"secretName": "t"}]}
            }))
            .unwrap(),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("spec.azupay.endpoint must be an https:// URL"),
        "{err}"
    );
    // the refusals name hosts, never a secret
    let p = env.sandbox.payu();
    env.assert_no_secret_anywhere(&[az.api_key, p.client_secret])
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_outside_the_allow_list_receives_nothing() {
    let env = setup(SandboxConfig::default()).await;
    // plain http to loopback is allowed, but the sandbox's host is not on the list
    let op = env.start_operator_with(Config {
        egress: EgressPolicy::new([PRESET_HOSTS], true).unwrap(),
        ..test_config()
    });
    create_payu(&env).await;
    env.create_azupay(
        "payments",
        json!([{"secretName": "token-balance", "scopes": ["RestAPI/GET:balance"]}]),
    )
    .await;
    let m = denied(&env, "payu", "TokensIssued").await;
    assert!(
        m.contains("127.0.0.1") && m.contains("--egress-allow-hosts"),
        "{m}"
    );
    let m = denied(&env, "payments", "CredentialsStored").await;
    assert!(m.contains("egress.allowHosts"), "{m}");
    // Ready says so too
    let (_, ready) = env
        .wait_condition_reason("payu", "Ready", "EgressDenied")
        .await;
    assert_eq!(ready.status, "False");
    assert_eq!(
        env.sandbox.requests().len(),
        0,
        "a request reached a host outside the allow-list"
    );
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_secret_is_never_written_adopted_or_garbage_collected() {
    let env = setup(SandboxConfig::default()).await;
    let az = env.sandbox.azupay();
    // someone else's Secret under the credentials Secret's name, without client_secret, even
    // with the operator's "enable pending" mark copied onto it
    let foreign: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "azupay-oauth2-credentials", "namespace": env.ns,
                     "annotations": {"clientcreds.dev/enable-state": "pending"}},
        "stringData": {"owner": "another team"}
    }))
    .unwrap();
    let foreign = env
        .secrets()
        .create(&PostParams::default(), &foreign)
        .await
        .unwrap();
    env.create_secret("azupay-api-key", &[("apiKey", &az.api_key)])
        .await;
    let oac = env
        .create_oac(json!({
            "metadata": {"name": "payments"},
            "spec": {
                "provider": "azupay",
                "azupay": {"endpoint": az.endpoint, "clientId": az.client_id,
                           "apiKeySecretRef": {"name": "azupay-api-key", "key": "apiKey"}},
                "credentials": {"secretName": "azupay-oauth2-credentials",
                                "deletionPolicy": "Delete"},
                "tokens": [{"secretName": "token-balance", "scopes": ["RestAPI/GET:balance"]}],
            }
        }))
        .await;
    let op = env.start_operator(None);
    let (_, c) = env
        .wait_condition_reason("payments", "CredentialsStored", "SecretConflict")
        .await;
    assert_eq!(c.status, "False");
    assert!(
        c.message.contains("azupay-oauth2-credentials")
            && c.message.contains("spec.credentials.secretName"),
        "{}",
        c.message
    );
    let note = env.wait_event("SecretConflict").await;
    assert!(note.contains("azupay-oauth2-credentials"), "{note}");
    // nothing was enabled, nothing was sent, the Secret is untouched
    assert_eq!(env.sandbox.enable_calls(&az.client_id), 0);
    assert_eq!(env.sandbox.requests().len(), 0);
    let now = env
        .secrets()
        .get("azupay-oauth2-credentials")
        .await
        .unwrap();
    assert_eq!(
        now.metadata.resource_version,
        foreign.metadata.resource_version
    );
    assert!(now.metadata.owner_references.is_none());
    op.stop().await;

    // the OAuthClient goes: the garbage collector removes what it owns (a canary), never the
    // foreign Secret
    let canary: ConfigMap = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "canary", "namespace": env.ns, "ownerReferences": [{
            "apiVersion": "clientcreds.dev/v1alpha1", "kind": "OAuthClient",
            "name": "payments", "uid": oac.metadata.uid.clone().unwrap()}]}
    }))
    .unwrap();
    let config_maps: Api<ConfigMap> = Api::namespaced(env.admin.clone(), &env.ns);
    config_maps
        .create(&PostParams::default(), &canary)
        .await
        .unwrap();
    env.oacs()
        .delete("payments", &Default::default())
        .await
        .unwrap();
    clientcreds_e2e::eventually("the owned canary collected", EVENTUALLY, || {
        let config_maps = config_maps.clone();
        async move {
            config_maps
                .get_opt("canary")
                .await
                .ok()
                .and_then(|c| c.is_none().then_some(()))
        }
    })
    .await;
    let after = env
        .secrets()
        .get("azupay-oauth2-credentials")
        .await
        .unwrap();
    assert_eq!(
        after.metadata.resource_version,
        foreign.metadata.resource_version
    );
    assert_eq!(data(&after, "owner"), "another team");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_in_one_namespace_is_enough_for_the_namespaced_variant() {
    let env = setup(SandboxConfig::default()).await;
    // another service account with the namespaced variant of the operator's RBAC, as
    // `clientcreds-operator rbac --watch-namespaces app` prints it (the Helm chart renders the
    // same rules with rbac.scope=namespace): a Role in the app namespace, no ClusterRole
    let sa = "clientcreds-operator-namespaced";
    let yaml = manifests_yaml_in(OPERATOR_NS, sa, std::slice::from_ref(&env.ns));
    assert!(!yaml.contains("ClusterRole"));
    install_rbac_yaml(&env.admin, &yaml).await;
    let client = env.cp.service_account_client(OPERATOR_NS, sa).unwrap();
    // that identity cannot read Secrets anywhere else
    let elsewhere: Api<Secret> = Api::namespaced(client.clone(), OPERATOR_NS);
    let err = elsewhere.list(&ListParams::default()).await.unwrap_err();
    assert!(err.to_string().contains("forbidden"), "{err}");

    let op = env.start_operator_as(
        client,
        Config {
            namespaces: vec![env.ns.clone()],
            ..test_config()
        },
    );
    create_payu(&env).await;
    env.wait_ready("payu").await;
    let token = data(&env.token_secret("payu-token").await, "access_token");
    assert_eq!(
        call_protected(&env.sandbox.payu().resource_url, &token).await,
        200
    );
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_url_azupay_announces_is_checked_too() {
    let env = setup(SandboxConfig::default()).await;
    let az = env.sandbox.azupay();
    // the Azupay endpoint is reached as `localhost`, which is allowed; the token URL its details
    // announce is on `127.0.0.1`, which is not
    let op = env.start_operator_with(Config {
        egress: EgressPolicy::new(["localhost"], true).unwrap(),
        ..test_config()
    });
    env.create_secret("azupay-api-key", &[("apiKey", &az.api_key)])
        .await;
    env.create_oac(json!({
        "metadata": {"name": "payments"},
        "spec": {
            "provider": "azupay",
            "azupay": {"endpoint": az.endpoint.replace("127.0.0.1", "localhost"),
                       "clientId": az.client_id,
                       "apiKeySecretRef": {"name": "azupay-api-key", "key": "apiKey"}},
            "credentials": {"secretName": "azupay-oauth2-credentials"},
            "tokens": [{"secretName": "token-balance", "scopes": ["RestAPI/GET:balance"]}],
        }
    }))
    .await;
    let m = denied(&env, "payments", "TokensIssued").await;
    assert!(
        m.contains("oauth2TokenUrl") && m.contains("127.0.0.1"),
        "{m}"
    );
    // enabled once and the one-time secret stored; no token request left the operator
    env.wait_condition("payments", "CredentialsStored", "True")
        .await;
    assert_eq!(env.sandbox.enable_calls(&az.client_id), 1);
    let token_requests = env
        .sandbox
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/token"))
        .count();
    assert_eq!(token_requests, 0, "a token request reached a refused host");
    assert!(
        env.secrets()
            .get_opt("token-balance")
            .await
            .unwrap()
            .is_none()
    );
    env.assert_no_secret_anywhere(&[az.api_key.clone(), AZUPAY_OAUTH2_CLIENT_SECRET.to_owned()])
        .await;
    op.stop().await;
}

/// A Secret someone else made under a token Secret's name, there before the OAuthClient: the
/// operator's first write is create-only, so it is found, never written, adopted or
/// garbage-collected; the OAuthClient says `SecretConflict` naming it, and once it is deleted
/// the operator creates its own. A token issued for the refused create is never stored; after
/// the conflict the name is read before any further token request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_secret_under_a_token_secret_name_is_never_overwritten() {
    let env = setup(SandboxConfig::default()).await;
    let foreign: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "payu-token", "namespace": env.ns},
        "stringData": {"owner": "another team"}
    }))
    .unwrap();
    let foreign = env
        .secrets()
        .create(&PostParams::default(), &foreign)
        .await
        .unwrap();
    create_payu(&env).await;
    let op = env.start_operator(None);
    let (_, c) = env
        .wait_condition_reason("payu", "TokensIssued", "SecretConflict")
        .await;
    assert_eq!(c.status, "False");
    assert!(c.message.contains("payu-token"), "{}", c.message);
    let now = env.secrets().get("payu-token").await.unwrap();
    assert_eq!(
        now.metadata.resource_version,
        foreign.metadata.resource_version
    );
    assert!(now.metadata.owner_references.is_none());
    assert!(now.metadata.labels.is_none());
    let token_requests = || {
        env.sandbox
            .requests_for(clientcreds_sandbox::Provider::Payu)
            .len()
    };
    assert!(token_requests() <= 1, "{} token requests", token_requests());
    // a refresh request reconciles it again: the name is read, no token is requested
    let before = token_requests();
    env.request_refresh("payu", "after-conflict").await;
    clientcreds_e2e::eventually("the refresh request seen", EVENTUALLY, || {
        let api = env.oacs();
        async move {
            let o = api.get("payu").await.ok()?;
            (o.status?.last_refresh_request.as_deref() == Some("after-conflict")).then_some(())
        }
    })
    .await;
    assert_eq!(
        token_requests(),
        before,
        "a token requested for a conflicting name"
    );
    // the foreign Secret goes: the operator writes its own
    env.secrets()
        .delete("payu-token", &Default::default())
        .await
        .unwrap();
    env.wait_ready("payu").await;
    let own = env.secrets().get("payu-token").await.unwrap();
    assert!(own.metadata.owner_references.is_some());
    assert_eq!(token_requests(), before + 1);
    op.stop().await;
}

/// The race the create-only write closes: a Secret made under the token Secret's name while
/// the first token is being requested (after any read could have found the name free) is
/// found by the write, which never overwrites it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_secret_made_while_the_first_token_is_requested_is_not_overwritten() {
    let env = setup(SandboxConfig::default()).await;
    env.sandbox.fail_next(
        clientcreds_sandbox::Provider::Payu,
        1,
        clientcreds_sandbox::Fault::delay(std::time::Duration::from_secs(3)),
    );
    create_payu(&env).await;
    let op = env.start_operator(None);
    clientcreds_e2e::eventually("the first token request", EVENTUALLY, || {
        let n = env
            .sandbox
            .requests_for(clientcreds_sandbox::Provider::Payu)
            .len();
        async move { (n >= 1).then_some(()) }
    })
    .await;
    let foreign: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "payu-token", "namespace": env.ns},
        "stringData": {"owner": "another team"}
    }))
    .unwrap();
    let foreign = env
        .secrets()
        .create(&PostParams::default(), &foreign)
        .await
        .unwrap();
    let (_, c) = env
        .wait_condition_reason("payu", "TokensIssued", "SecretConflict")
        .await;
    assert!(c.message.contains("payu-token"), "{}", c.message);
    let now = env.secrets().get("payu-token").await.unwrap();
    assert_eq!(
        now.metadata.resource_version,
        foreign.metadata.resource_version
    );
    assert!(now.metadata.owner_references.is_none());
    op.stop().await;
}
