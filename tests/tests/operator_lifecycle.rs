//! Deletion, same-namespace references, CRD validation and two-replica leader election of the
//! operator on a real control plane (with kube-controller-manager's garbage collector).
#![allow(clippy::unwrap_used)]

mod operator_support;

use clientcreds_sandbox::{AzupayClient, PAYU_SCOPES, Provider, SandboxConfig};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use operator_support::*;
use serde_json::json;

async fn gone(api: &Api<Secret>, name: &str) {
    clientcreds_e2e::eventually(&format!("Secret {name} deleted"), EVENTUALLY, || {
        let api = api.clone();
        async move { api.get_opt(name).await.unwrap().is_none().then_some(()) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_removes_token_secrets_and_honours_the_credentials_deletion_policy() {
    let config = SandboxConfig::default().azupay_client(
        AzupayClient::new("SECONDBIZ", "SECR_SECONDBIZ_key")
            .oauth2_credentials("second-oauth2-id", "second-oauth2-secret-value"),
    );
    let env = setup(config).await;
    let az = env.sandbox.azupay();
    env.create_azupay(
        "retained",
        json!([{"secretName": "retained-token", "scopes": ["RestAPI/GET:balance"]}]),
    )
    .await;
    env.create_secret("second-api-key", &[("apiKey", "SECR_SECONDBIZ_key")])
        .await;
    env.create_oac(json!({
        "metadata": {"name": "deleted"},
        "spec": {
            "provider": "azupay",
            "azupay": {"endpoint": az.endpoint, "clientId": "SECONDBIZ",
                       "apiKeySecretRef": {"name": "second-api-key", "key": "apiKey"}},
            "credentials": {"secretName": "second-credentials", "deletionPolicy": "Delete"},
            "tokens": [{"secretName": "deleted-token", "scopes": ["RestAPI/GET:balance"]}]
        }
    }))
    .await;
    let op = env.start_operator(None);
    env.wait_ready("retained").await;
    env.wait_ready("deleted").await;

    let secrets = env.secrets();
    // a token Secret dropped from spec.tokens is deleted; a new one is written
    let patch = json!({"spec": {"tokens": [{"secretName": "retained-token-2", "scopes": ["RestAPI/GET:balance"]}]}});
    env.oacs()
        .patch("retained", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    gone(&secrets, "retained-token").await;
    clientcreds_e2e::eventually("retained-token-2 written", EVENTUALLY, || {
        let secrets = secrets.clone();
        async move { secrets.get_opt("retained-token-2").await.unwrap() }
    })
    .await;
    assert!(
        env.wait_event("TokenSecretDeleted")
            .await
            .contains("retained-token")
    );

    env.oacs()
        .delete("retained", &DeleteParams::default())
        .await
        .unwrap();
    env.oacs()
        .delete("deleted", &DeleteParams::default())
        .await
        .unwrap();
    gone(&secrets, "retained-token-2").await;
    gone(&secrets, "deleted-token").await;
    gone(&secrets, "second-credentials").await;
    // Retain: the one-time secret survives its OAuthClient …
    let kept = secrets.get("azupay-oauth2-credentials").await.unwrap();
    assert_eq!(
        data(&kept, "client_secret"),
        clientcreds_sandbox::AZUPAY_OAUTH2_CLIENT_SECRET
    );
    assert!(
        kept.metadata
            .owner_references
            .unwrap_or_default()
            .is_empty()
    );

    // … and a new OAuthClient for the same Azupay client uses it without enabling again
    env.create_azupay(
        "retained",
        json!([{"secretName": "retained-token", "scopes": ["RestAPI/GET:balance"]}]),
    )
    .await;
    env.wait_ready("retained").await;
    assert_eq!(env.sandbox.enable_calls(&az.client_id), 1);
    assert_eq!(env.sandbox.enable_calls("SECONDBIZ"), 1);
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn references_stay_in_the_namespace_and_the_crd_rejects_invalid_specs() {
    let env = setup(SandboxConfig::default()).await;
    let p = env.sandbox.payu();
    env.cp.create_namespace("other").await.unwrap();
    let other: Api<Secret> = Api::namespaced(env.admin.clone(), "other");
    let creds: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "payu-credentials"},
        "stringData": {"client_id": p.client_id, "client_secret": p.client_secret}
    }))
    .unwrap();
    other
        .patch(
            "payu-credentials",
            &PatchParams::apply("e2e"),
            &Patch::Apply(&creds),
        )
        .await
        .unwrap();
    env.create_oac(json!({
        "metadata": {"name": "sneaky"},
        "spec": {"provider": "payu", "tokenUrl": p.token_url,
                 "credentialsSecretRef": {"name": "payu-credentials", "namespace": "other"},
                 "tokens": [{"secretName": "sneaky-token", "scopes": [PAYU_SCOPES[0]]}]}
    }))
    .await;
    let op = env.start_operator(None);
    let oac = env
        .wait_condition("sneaky", "CredentialsStored", "False")
        .await;
    let cond = oac
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "CredentialsStored")
        .unwrap();
    assert_eq!(cond.reason, "InvalidSpec");
    assert!(
        cond.message.contains("spec.credentialsSecretRef.namespace"),
        "{}",
        cond.message
    );
    assert!(
        env.wait_event("InvalidSpec")
            .await
            .contains("spec.credentialsSecretRef.namespace")
    );
    assert!(
        env.secrets()
            .get_opt("sneaky-token")
            .await
            .unwrap()
            .is_none()
    );
    assert!(env.sandbox.requests_for(Provider::Payu).is_empty());

    // the CRD's schema and CEL rules refuse invalid objects at admission
    let base = json!({"provider": "payu", "tokenUrl": p.token_url, "credentialsSecretRef": {"name": "c"},
                      "tokens": [{"secretName": "t"}]});
    let refused = |name: &str, patch: serde_json::Value| {
        let mut spec = base.clone();
        for (k, v) in patch.as_object().unwrap() {
            spec[k] = v.clone();
        }
        let env = &env;
        let name = name.to_owned();
        async move {
            let mut value = json!({"apiVersion": "clientcreds.dev/v1alpha1", "kind": "OAuthClient",
                                   "metadata": {"name": name, "namespace": env.ns}, "spec": spec});
            value["metadata"]["name"] = json!(name);
            let oac: clientcreds_operator::crd::OAuthClient =
                serde_json::from_value(value).unwrap();
            match env.oacs().create(&Default::default(), &oac).await {
                Err(kube::Error::Api(s)) => s.message,
                other => panic!("{name} was not refused: {other:?}"),
            }
        }
    };
    assert!(
        refused("no-tokens", json!({"tokens": []}))
            .await
            .contains("tokens")
    );
    assert!(
        refused(
            "bad-fraction",
            json!({"refresh": {"atLifetimeFraction": 1.0}})
        )
        .await
        .contains("atLifetimeFraction")
    );
    assert!(
        refused(
            "bad-name",
            json!({"tokens": [{"secretName": "Not_A_Name"}]})
        )
        .await
        .contains("valid Secret name")
    );
    assert!(
        refused(
            "dup",
            json!({"tokens": [{"secretName": "t"}, {"secretName": "t"}]})
        )
        .await
        .contains("unique")
    );
    assert!(
        refused("no-azupay", json!({"provider": "azupay"}))
            .await
            .contains("spec.azupay is required")
    );
    assert!(
        refused("pyng-no-url", json!({"provider": "pyng", "tokenUrl": null}))
            .await
            .contains("spec.tokenUrl")
    );
    // spec.environment is PayU's choice of host only
    assert!(
        refused(
            "env-not-payu",
            json!({"provider": "autopay", "environment": "production"})
        )
        .await
        .contains("spec.environment is only for provider payu")
    );
    // the Azupay client id is immutable
    env.create_azupay(
        "az",
        json!([{"secretName": "az-token", "scopes": ["RestAPI/GET:balance"]}]),
    )
    .await;
    let patch = json!({"spec": {"azupay": {"clientId": "ANOTHER"}}});
    let err = env
        .oacs()
        .patch("az", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("immutable"), "{err}");
    op.stop().await;
}

async fn holder(env: &Env) -> Option<String> {
    Api::<Lease>::namespaced(env.admin.clone(), OPERATOR_NS)
        .get_opt("clientcreds-operator")
        .await
        .unwrap()
        .and_then(|l| l.spec?.holder_identity)
        .filter(|h| !h.is_empty())
}

async fn issued_by(env: &Env, oac: &str) -> Vec<String> {
    env.events()
        .await
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("TokenIssued"))
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(oac))
        .map(|e| e.reporting_instance.unwrap_or_default())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_one_leader_and_failover() {
    let env = setup(SandboxConfig::default()).await;
    let p = env.sandbox.payu();
    env.create_secret(
        "payu-credentials",
        &[
            ("client_id", &p.client_id),
            ("client_secret", &p.client_secret),
        ],
    )
    .await;
    let a = env.start_operator(Some("replica-a"));
    let b = env.start_operator(Some("replica-b"));
    let first = clientcreds_e2e::eventually("a Lease holder", EVENTUALLY, || holder(&env)).await;

    let create = |name: &'static str| {
        let env = &env;
        let p = p.clone();
        async move {
            env.create_oac(json!({
                "metadata": {"name": name},
                "spec": {"provider": "payu", "credentialsSecretRef": {"name": "payu-credentials"},
                         "tokenUrl": p.token_url, "tokens": [{"secretName": format!("{name}-token"), "scopes": [PAYU_SCOPES[0]]}]}
            }))
            .await;
        }
    };
    create("one").await;
    env.wait_ready("one").await;
    let reporters = clientcreds_e2e::eventually("TokenIssued event", EVENTUALLY, || {
        let env = &env;
        async move { Some(issued_by(env, "one").await).filter(|r| !r.is_empty()) }
    })
    .await;
    assert_eq!(reporters, vec![first.clone()], "only the leader reconciles");
    assert_eq!(env.sandbox.tokens_issued(Provider::Payu, &p.client_id), 1);

    // the leader crashes (no release): the other takes over when the Lease expires
    let (leader, standby, standby_name) = if first == "replica-a" {
        (a, b, "replica-b")
    } else {
        (b, a, "replica-a")
    };
    leader.kill().await;
    clientcreds_e2e::eventually("the standby leads", EVENTUALLY, || {
        let env = &env;
        async move { (holder(env).await.as_deref() == Some(standby_name)).then_some(()) }
    })
    .await;
    create("two").await;
    env.wait_ready("two").await;
    let reporters = clientcreds_e2e::eventually("TokenIssued event", EVENTUALLY, || {
        let env = &env;
        async move { Some(issued_by(env, "two").await).filter(|r| !r.is_empty()) }
    })
    .await;
    assert_eq!(reporters, vec![standby_name.to_owned()]);
    // the first object's stored token was kept by the new leader
    assert_eq!(env.sandbox.tokens_issued(Provider::Payu, &p.client_id), 2);
    standby.stop().await;
    // a graceful stop releases the Lease
    clientcreds_e2e::eventually("the Lease released", EVENTUALLY, || {
        let env = &env;
        async move { holder(env).await.is_none().then_some(()) }
    })
    .await;
}

async fn get(url: String) -> (u16, String) {
    let http = clientcreds::HttpClient::new();
    let request = http::Request::get(url)
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let response = http.send(request).await.unwrap();
    (
        response.status().as_u16(),
        String::from_utf8(response.into_body().to_vec()).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_to_referenced_secrets_trigger_a_reconcile_and_metrics_show_it() {
    let env = setup(SandboxConfig::default()).await;
    let p = env.sandbox.payu();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let metrics_addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let op = env.start_operator_with(clientcreds_operator::run::Config {
        metrics_addr: Some(metrics_addr),
        ..test_config()
    });
    env.create_oac(json!({
        "metadata": {"name": "payu"},
        "spec": {"provider": "payu", "credentialsSecretRef": {"name": "payu-credentials"},
                 "tokenUrl": p.token_url, "tokens": [{"secretName": "payu-token", "scopes": [PAYU_SCOPES[0]]}]}
    }))
    .await;
    // the referenced Secret does not exist yet
    let waiting = env
        .wait_condition("payu", "CredentialsStored", "False")
        .await;
    let reason = waiting.status.unwrap().conditions[1].reason.clone();
    assert_eq!(reason, "SecretMissing");
    // creating it triggers a reconcile
    env.create_secret(
        "payu-credentials",
        &[
            ("client_id", &p.client_id),
            ("client_secret", &p.client_secret),
        ],
    )
    .await;
    env.wait_ready("payu").await;
    let token = data(&env.token_secret("payu-token").await, "access_token");

    // rotating the client secret triggers a reconcile and a token request with the new one
    env.create_secret(
        "payu-credentials",
        &[
            ("client_id", &p.client_id),
            ("client_secret", "rotated-but-wrong"),
        ],
    )
    .await;
    let failing = clientcreds_e2e::eventually(
        "a failed request with the rotated secret",
        EVENTUALLY,
        || {
            let api = env.oacs();
            async move {
                let o = api.get("payu").await.ok()?;
                let err = o.status.as_ref()?.tokens.first()?.last_error.clone()?;
                err.contains("invalid_client").then_some(o)
            }
        },
    )
    .await;
    // the old token is still valid, so the Secret still serves it
    assert_eq!(
        data(&env.token_secret("payu-token").await, "access_token"),
        token
    );
    assert!(
        failing
            .status
            .unwrap()
            .conditions
            .iter()
            .any(|c| c.type_ == "TokensIssued" && c.status == "True")
    );

    let (status, text) = get(format!("http://{metrics_addr}/metrics")).await;
    assert_eq!(status, 200);
    assert!(
        text.contains(
            r#"clientcreds_operator_token_refreshes_total{provider="payu",result="success"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(
            r#"clientcreds_operator_token_refreshes_total{provider="payu",result="failure"} 1"#
        ),
        "{text}"
    );
    assert!(text.contains(r#"clientcreds_operator_token_expiry_timestamp_seconds{namespace="app",secret="payu-token"}"#));
    assert!(text.contains("clientcreds_operator_reconcile_duration_seconds_count"));
    // the middleware's own metrics, bridged (process-wide: other tests of this process add to
    // them, so only their presence is checked)
    assert!(
        text.contains(r#"clientcreds_token_requests_total{result="success"}"#),
        "{text}"
    );
    assert!(
        text.contains(r#"clientcreds_token_requests_total{result="invalid_client"}"#),
        "{text}"
    );
    assert!(
        text.contains(r#"clientcreds_token_request_duration_seconds_count{result="success"}"#),
        "{text}"
    );
    assert!(text.trim_end().ends_with("# EOF"), "{text}");
    assert_eq!(get(format!("http://{metrics_addr}/readyz")).await.0, 200);
    assert_eq!(get(format!("http://{metrics_addr}/healthz")).await.0, 200);
    assert!(!text.contains(&token) && !text.contains(&p.client_secret));
    op.stop().await;
    env.assert_no_secret_anywhere(&[token, p.client_secret.clone(), "rotated-but-wrong".into()])
        .await;
}
