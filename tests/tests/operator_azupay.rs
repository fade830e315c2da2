//! Azupay through the operator on a real control plane: enable exactly once across restarts,
//! the one-time secret surviving a failed write, a restart between the enable call and the
//! write (DESIGN.md step 3), API key rotation, and out-of-scope token Secrets.
#![allow(clippy::unwrap_used)]

mod operator_support;
/// The operator as its own process (the scale harness's), for the SIGKILL test.
#[allow(dead_code)]
#[path = "../benches/scale_support/process.rs"]
mod process;

use clientcreds_sandbox::{AZUPAY_OAUTH2_CLIENT_SECRET, Provider, SandboxConfig};
use kube::api::{Patch, PatchParams};
use operator_support::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enable_is_called_once_across_restarts_and_out_of_scope_tokens_are_reported() {
    let env = setup(SandboxConfig::default()).await;
    let az = env.sandbox.azupay();
    env.create_azupay(
        "payments",
        json!([
            {"secretName": "token-balance", "scopes": ["RestAPI/GET:balance"]},
            {"secretName": "token-forbidden", "scopes": ["RestAPI/GET:balance", "RestAPI/POST:notAllowed"]}
        ]),
    )
    .await;
    let op = env.start_operator(None);

    let oac = env
        .wait_condition("payments", "TokensIssued", "False")
        .await;
    let oac = if oac
        .status
        .as_ref()
        .unwrap()
        .tokens
        .iter()
        .any(|t| t.expires_at.is_some())
    {
        oac
    } else {
        // wait until the allowed token is written too
        clientcreds_e2e::eventually("token-balance written", EVENTUALLY, || {
            let api = env.oacs();
            async move {
                let o = api.get("payments").await.ok()?;
                o.status
                    .as_ref()?
                    .tokens
                    .iter()
                    .any(|t| t.expires_at.is_some())
                    .then_some(o)
            }
        })
        .await
    };
    let status = oac.status.unwrap();
    let cond = |t: &str| {
        status
            .conditions
            .iter()
            .find(|c| c.type_ == t)
            .unwrap()
            .clone()
    };
    assert_eq!(cond("CredentialsStored").status, "True");
    assert_eq!(cond("TokensIssued").reason, "ScopesNotAllowed");
    assert!(
        cond("TokensIssued")
            .message
            .contains("RestAPI/POST:notAllowed")
    );
    assert_eq!(cond("Ready").status, "False");
    assert_eq!(
        status.allowed_scopes.as_deref().unwrap(),
        clientcreds_sandbox::AZUPAY_DEFAULT_SCOPES
    );
    assert!(status.ttl_seconds.unwrap() > 0);
    assert_eq!(
        status.oauth2_client_id.as_deref(),
        Some(clientcreds_sandbox::AZUPAY_OAUTH2_CLIENT_ID)
    );
    assert!(
        env.wait_event("ScopesNotAllowed")
            .await
            .contains("RestAPI/POST:notAllowed")
    );
    // the out-of-scope Secret is not issued; the allowed one is and works
    assert!(
        env.secrets()
            .get_opt("token-forbidden")
            .await
            .unwrap()
            .is_none()
    );
    let token = data(&env.token_secret("token-balance").await, "access_token");
    assert_eq!(call_protected(&az.resource_url, &token).await, 200);
    assert_eq!(env.sandbox.enable_calls(&az.client_id), 1);

    // graceful restart: no second enable; refresh on demand still works
    op.stop().await;
    let op = env.start_operator(None);
    env.request_refresh("payments", "1").await;
    let token2 = env.wait_new_token("token-balance", &token).await;
    assert_eq!(call_protected(&az.resource_url, &token2).await, 200);
    // crash and restart: still no second enable
    op.kill().await;
    let op = env.start_operator(None);
    env.request_refresh("payments", "2").await;
    let token3 = env.wait_new_token("token-balance", &token2).await;
    assert_eq!(
        env.sandbox.enable_calls(&az.client_id),
        1,
        "enable called again after a restart"
    );

    // API key rotation: the old key stops working, the new one is read from the Secret
    assert!(
        env.sandbox
            .set_azupay_api_key(&az.client_id, "SECR_ROTATED_key_2")
    );
    env.sandbox.clear_requests();
    env.create_secret("azupay-api-key", &[("apiKey", "SECR_ROTATED_key_2")])
        .await;
    clientcreds_e2e::eventually("a details call with the rotated key", EVENTUALLY, || {
        let sb = &env.sandbox;
        async move {
            sb.requests_for(Provider::Azupay)
                .iter()
                .any(|r| {
                    r.method == "GET"
                        && r.path.ends_with("/oauth2")
                        && r.header("authorization") == Some("SECR_ROTATED_key_2")
                })
                .then_some(())
        }
    })
    .await;
    assert_eq!(env.sandbox.enable_calls(&az.client_id), 1);

    op.stop().await;
    env.assert_no_secret_anywhere(&[
        az.api_key.clone(),
        "SECR_ROTATED_key_2".into(),
        AZUPAY_OAUTH2_CLIENT_SECRET.into(),
        token,
        token2,
        token3,
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_secret_survives_a_failed_first_write() {
    let env = setup(SandboxConfig::default()).await;
    let az = env.sandbox.azupay();
    // refused in the operator's namespace too: no recovery Secret, the secret is in memory only
    env.deny_client_secret_writes_everywhere().await;
    env.create_azupay(
        "payments",
        json!([{"secretName": "token-balance", "scopes": ["RestAPI/GET:balance"]}]),
    )
    .await;
    let (config, base) = config_with_metrics();
    let op = env.start_operator_with(config);
    let held = |text: &str| {
        text.lines()
            .find(|l| l.starts_with("clientcreds_operator_secrets_held_in_memory "))
            .map(str::to_owned)
    };

    // the credentials Secret was prepared (with the pending mark) before the call …
    let note = env.wait_event("CredentialsWriteFailed").await;
    assert!(!note.contains(AZUPAY_OAUTH2_CLIENT_SECRET));
    assert_eq!(env.sandbox.enable_calls(&az.client_id), 1);
    // … while the secret is held in memory only, the gauge says 1 and /readyz fails …
    let (_, metrics) = http_get(&format!("{base}/metrics")).await;
    assert_eq!(
        held(&metrics).as_deref(),
        Some("clientcreds_operator_secrets_held_in_memory 1")
    );
    assert!(!metrics.contains(AZUPAY_OAUTH2_CLIENT_SECRET));
    let (code, body) = http_get(&format!("{base}/readyz")).await;
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("in memory"), "{body}");
    assert_eq!(http_get(&format!("{base}/healthz")).await.0, 200);
    // … the status says so while the secret waits in memory …
    let (_, cond) = env
        .wait_condition_reason("payments", "CredentialsStored", "CredentialsWriteFailed")
        .await;
    assert_eq!(cond.status, "False");
    assert!(
        cond.message.contains("do not restart the operator"),
        "{}",
        cond.message
    );
    let creds = env
        .secrets()
        .get("azupay-oauth2-credentials")
        .await
        .unwrap();
    assert_eq!(
        creds.metadata.annotations.as_ref().unwrap()["clientcreds.dev/enable-state"],
        "pending"
    );
    // … and once writes pass again, the secret held in memory is stored
    env.allow_client_secret_writes().await;
    env.wait_ready("payments").await;
    let creds = env
        .secrets()
        .get("azupay-oauth2-credentials")
        .await
        .unwrap();
    assert_eq!(data(&creds, "client_secret"), AZUPAY_OAUTH2_CLIENT_SECRET);
    assert_eq!(env.sandbox.enable_calls(&az.client_id), 1);
    // … and once it is written, the gauge is back to 0 and the operator ready again
    let (_, metrics) = http_get(&format!("{base}/metrics")).await;
    assert_eq!(
        held(&metrics).as_deref(),
        Some("clientcreds_operator_secrets_held_in_memory 0")
    );
    assert_eq!(http_get(&format!("{base}/readyz")).await.0, 200);
    let token = data(&env.token_secret("token-balance").await, "access_token");
    assert_eq!(call_protected(&az.resource_url, &token).await, 200);
    op.stop().await;
    env.assert_no_secret_anywhere(&[
        az.api_key.clone(),
        AZUPAY_OAUTH2_CLIENT_SECRET.into(),
        token,
    ])
    .await;
}

/// Issue 13, R1 `answer-received`: the credentials Secret's write is refused (an admission
/// policy in the app namespace) → the one-time secret is kept at once in a recovery Secret in
/// the operator's namespace (not in the app namespace, not in memory only: the operator stays
/// ready); once writes pass, it is written to the credentials Secret, the recovery Secret is
/// deleted, and enable was called once. Nothing secret in logs, events or status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_secret_is_kept_in_a_recovery_secret_until_delivered() {
    use clientcreds_operator::azupay::recovery::{
        AZUPAY_CLIENT_ID_ANNOTATION, OAUTHCLIENT_NAME_ANNOTATION, OAUTHCLIENT_UID_ANNOTATION,
        recovery_secret_name,
    };
    use k8s_openapi::api::core::v1::Secret;
    use kube::ResourceExt;
    let env = setup(SandboxConfig::default()).await;
    let az = env.sandbox.azupay();
    env.deny_client_secret_writes().await;
    env.create_azupay(
        "payments",
        json!([{"secretName": "token-balance", "scopes": ["RestAPI/GET:balance"]}]),
    )
    .await;
    let (config, base) = config_with_metrics();
    let op = env.start_operator_with(config);
    let uid = env.oacs().get("payments").await.unwrap().uid().unwrap();
    let recovery_name = recovery_secret_name(&uid);
    let recovery_api: kube::Api<Secret> = kube::Api::namespaced(env.admin.clone(), OPERATOR_NS);

    // refused: the status names the recovery Secret …
    let (_, cond) = env
        .wait_condition_reason("payments", "CredentialsStored", "CredentialsWriteFailed")
        .await;
    assert_eq!(cond.status, "False");
    assert!(
        cond.message.contains(&recovery_name) && cond.message.contains(OPERATOR_NS),
        "{}",
        cond.message
    );
    // … which holds the secret Azupay issued, and says whose it is (no secret outside data)
    let kept = recovery_api.get(&recovery_name).await.unwrap();
    assert_eq!(data(&kept, "client_secret"), AZUPAY_OAUTH2_CLIENT_SECRET);
    assert_eq!(kept.labels()["clientcreds.dev/role"], "recovery");
    assert_eq!(
        kept.labels()["app.kubernetes.io/managed-by"],
        "clientcreds-operator"
    );
    let a = kept.annotations();
    assert_eq!(a[OAUTHCLIENT_UID_ANNOTATION], uid);
    assert_eq!(a[OAUTHCLIENT_NAME_ANNOTATION], "payments");
    assert_eq!(a[AZUPAY_CLIENT_ID_ANNOTATION], az.client_id);
    let meta = serde_json::to_string(&kept.metadata).unwrap();
    assert!(!meta.contains(AZUPAY_OAUTH2_CLIENT_SECRET));
    // not in the app namespace
    for s in env.secrets().list(&Default::default()).await.unwrap() {
        assert!(
            !s.data
                .as_ref()
                .is_some_and(|d| d.contains_key("client_secret")),
            "{:?} holds a client_secret",
            s.metadata.name
        );
    }
    // not held in memory only: the gauge says 0, /readyz 200 (a restart loses nothing)
    let (_, metrics) = http_get(&format!("{base}/metrics")).await;
    assert!(
        metrics
            .lines()
            .any(|l| l == "clientcreds_operator_secrets_held_in_memory 0"),
        "{metrics}"
    );
    assert!(!metrics.contains(AZUPAY_OAUTH2_CLIENT_SECRET));
    assert_eq!(http_get(&format!("{base}/readyz")).await.0, 200);
    assert_eq!(env.sandbox.enable_calls(&az.client_id), 1);

    // writes pass again: delivered, the recovery Secret deleted, enable not called again
    env.allow_client_secret_writes().await;
    env.wait_ready("payments").await;
    let creds = env
        .secrets()
        .get("azupay-oauth2-credentials")
        .await
        .unwrap();
    assert_eq!(data(&creds, "client_secret"), AZUPAY_OAUTH2_CLIENT_SECRET);
    assert!(
        recovery_api
            .get_opt(&recovery_name)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(env.sandbox.enable_calls(&az.client_id), 1);
    let token = data(&env.token_secret("token-balance").await, "access_token");
    assert_eq!(call_protected(&az.resource_url, &token).await, 200);
    op.stop().await;
    env.assert_no_secret_anywhere(&[
        az.api_key.clone(),
        AZUPAY_OAUTH2_CLIENT_SECRET.into(),
        token,
    ])
    .await;
}

/// A process killed between delivering a recovered secret and deleting its recovery Secret
/// leaves the recovery Secret behind: the next process, finding the same secret stored in the
/// credentials Secret, deletes it (once per process), and enables nothing. A recovery Secret
/// holding another secret than the stored one is kept for an admin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovery_secret_left_after_delivery_is_deleted_by_the_next_process() {
    use clientcreds_operator::azupay::recovery::recovery_secret;
    use k8s_openapi::api::core::v1::Secret;
    let env = setup(SandboxConfig::default()).await;
    let az = env.sandbox.azupay();
    env.create_azupay(
        "payments",
        json!([{"secretName": "token-balance", "scopes": ["RestAPI/GET:balance"]}]),
    )
    .await;
    let op = env.start_operator(None);
    env.wait_ready("payments").await;
    op.stop().await;
    let oac = env.oacs().get("payments").await.unwrap();
    let creds = env
        .secrets()
        .get("azupay-oauth2-credentials")
        .await
        .unwrap();
    let recovery_api: kube::Api<Secret> = kube::Api::namespaced(env.admin.clone(), OPERATOR_NS);
    let leftover = |secret: &str| {
        recovery_secret(
            &oac,
            OPERATOR_NS,
            &data(&creds, "client_id"),
            &secrecy::SecretString::from(secret.to_owned()),
            &data(&creds, "token_url"),
        )
        .unwrap()
    };
    let name = leftover(AZUPAY_OAUTH2_CLIENT_SECRET).metadata.name.unwrap();

    // another secret than the stored one: kept
    recovery_api
        .create(&Default::default(), &leftover("another-secret-value"))
        .await
        .unwrap();
    let op = env.start_operator(None);
    clientcreds_e2e::eventually("the other secret seen and kept", EVENTUALLY, || {
        let seen = captured_logs().contains("a recovery Secret holds another client secret");
        async move { seen.then_some(()) }
    })
    .await;
    op.stop().await;
    assert!(recovery_api.get_opt(&name).await.unwrap().is_some());
    recovery_api
        .delete(&name, &Default::default())
        .await
        .unwrap();
    clientcreds_e2e::eventually("the recovery Secret gone", EVENTUALLY, || {
        let api = recovery_api.clone();
        let name = name.clone();
        async move { api.get_opt(&name).await.unwrap().is_none().then_some(()) }
    })
    .await;

    // the stored secret: deleted by the next process
    recovery_api
        .create(&Default::default(), &leftover(AZUPAY_OAUTH2_CLIENT_SECRET))
        .await
        .unwrap();
    let op = env.start_operator(None);
    clientcreds_e2e::eventually("the delivered recovery Secret deleted", EVENTUALLY, || {
        let api = recovery_api.clone();
        let name = name.clone();
        async move { api.get_opt(&name).await.unwrap().is_none().then_some(()) }
    })
    .await;
    env.wait_ready("payments").await;
    assert_eq!(env.sandbox.enable_calls(&az.client_id), 1);
    op.stop().await;
    env.assert_no_secret_anywhere(&[az.api_key.clone(), AZUPAY_OAUTH2_CLIENT_SECRET.into()])
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_between_enable_and_write_reports_credentials_lost() {
    let env = setup(SandboxConfig::default()).await;
    let az = env.sandbox.azupay();
    // the recovery Secret refused too: the secret lives in the process's memory only
    env.deny_client_secret_writes_everywhere().await;
    env.create_azupay(
        "payments",
        json!([{"secretName": "token-balance", "scopes": ["RestAPI/GET:balance"]}]),
    )
    .await;
    // the same instance name across the restart: a container restarted in its pod, which
    // takes its own enable claim up again at once (another instance would wait for the claim
    // to expire, as the old one might still be calling)
    let config = || clientcreds_operator::run::Config {
        instance: Some("operator-pod-1".into()),
        ..test_config()
    };
    let op = env.start_operator_with(config());
    env.wait_event("CredentialsWriteFailed").await;
    assert_eq!(env.sandbox.enable_calls(&az.client_id), 1);
    // the process dies while it holds the secret only in memory
    op.kill().await;
    env.allow_client_secret_writes().await;

    let op = env.start_operator_with(config());
    let (oac, _) = env
        .wait_condition_reason("payments", "CredentialsStored", "CredentialsLost")
        .await;
    let status = oac.status.unwrap();
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "CredentialsLost")
    );
    let note = env.wait_event("CredentialsLost").await;
    assert!(note.contains("Contact Azupay"), "{note}");
    // never enabled again on its own
    assert_eq!(env.sandbox.enable_calls(&az.client_id), 1);
    assert!(
        env.secrets()
            .get_opt("token-balance")
            .await
            .unwrap()
            .is_none()
    );
    op.stop().await;
    env.assert_no_secret_anywhere(&[az.api_key.clone(), AZUPAY_OAUTH2_CLIENT_SECRET.into()])
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_mark_without_an_enabled_client_enables_safely() {
    let env = setup(SandboxConfig::default()).await;
    let az = env.sandbox.azupay();
    env.create_azupay(
        "payments",
        json!([{"secretName": "token-balance", "scopes": ["RestAPI/GET:balance"]}]),
    )
    .await;
    // an earlier run of the operator marked "enable pending" (the operator's own Secret, with
    // its labels) but its call never reached Azupay
    let oac = env.oacs().get("payments").await.unwrap();
    let mark = clientcreds_operator::secrets::credentials_pending_secret(
        &oac,
        oac.spec.credentials.as_ref().unwrap(),
    );
    env.secrets()
        .patch(
            "azupay-oauth2-credentials",
            &PatchParams::apply("earlier-run"),
            &Patch::Apply(&mark),
        )
        .await
        .unwrap();
    let op = env.start_operator(None);
    env.wait_ready("payments").await;
    assert_eq!(env.sandbox.enable_calls(&az.client_id), 1);
    // it asked the details endpoint before enabling
    let azupay = env.sandbox.requests_for(Provider::Azupay);
    let first_get = azupay
        .iter()
        .position(|r| r.method == "GET" && r.path.ends_with("/oauth2"))
        .unwrap();
    let first_post = azupay
        .iter()
        .position(|r| r.method == "POST" && r.path.ends_with("/oauth2"))
        .unwrap();
    assert!(first_get < first_post);
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_enabled_elsewhere_is_never_enabled_again() {
    // OAuth 2.0 was enabled for this Azupay client before the operator saw it (by hand, by
    // another OAuthClient, or before its credentials Secret was deleted): no mark, no Secret.
    let config = SandboxConfig::default().azupay_client(
        clientcreds_sandbox::AzupayClient::new(
            clientcreds_sandbox::AZUPAY_CLIENT_ID,
            clientcreds_sandbox::AZUPAY_API_KEY,
        )
        .enabled(true),
    );
    let env = setup(config).await;
    let az = env.sandbox.azupay();
    assert!(env.sandbox.azupay_enabled(&az.client_id));
    env.create_azupay(
        "payments",
        json!([{"secretName": "token-balance", "scopes": ["RestAPI/GET:balance"]}]),
    )
    .await;
    let op = env.start_operator(None);

    let note = env.wait_event("CredentialsLost").await;
    assert!(note.contains("Contact Azupay"), "{note}");
    let (oac, _) = env
        .wait_condition_reason("payments", "CredentialsStored", "CredentialsLost")
        .await;
    let ready = oac
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(ready.status, "False");
    // the details endpoint was asked, and enable was never called
    assert_eq!(env.sandbox.enable_calls(&az.client_id), 0);
    assert!(
        env.sandbox
            .requests_for(Provider::Azupay)
            .iter()
            .any(|r| r.method == "GET" && r.path.ends_with("/oauth2"))
    );
    assert!(
        env.secrets()
            .get_opt("token-balance")
            .await
            .unwrap()
            .is_none()
    );
    op.stop().await;
    env.assert_no_secret_anywhere(std::slice::from_ref(&az.api_key))
        .await;
}

/// A token request's timeout must not cut off the enable call: a slow enable that succeeds has
/// issued the one-time secret (issue 13, enable-once (d)).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_enable_is_waited_for_and_its_secret_stored() {
    let env = setup(SandboxConfig::default()).await;
    let az = env.sandbox.azupay();
    env.sandbox.fail_next_enable(
        1,
        clientcreds_sandbox::Fault::delay(std::time::Duration::from_secs(3)),
    );
    env.create_azupay(
        "slow",
        json!([{"secretName": "slow-token", "scopes": ["RestAPI/GET:balance"]}]),
    )
    .await;
    // token requests (and details calls) time out after 1 s; enable has its own, longer timeout
    let http = clientcreds::HttpClient::builder()
        .timeout(std::time::Duration::from_secs(1))
        .build()
        .unwrap();
    let op = env.start_operator_with(clientcreds_operator::run::Config {
        http,
        ..test_config()
    });
    env.wait_ready("slow").await;
    let creds = env
        .secrets()
        .get("azupay-oauth2-credentials")
        .await
        .unwrap();
    assert_eq!(data(&creds, "client_secret"), AZUPAY_OAUTH2_CLIENT_SECRET);
    assert_eq!(env.sandbox.enable_calls(&az.client_id), 1);
    op.stop().await;
}

/// An enable answer with a null scope list, a string TTL and no token URL still yields its
/// one-time secret, stored; the missing parts come from the details call (issue 13,
/// enable-once (a)).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_odd_enable_answer_never_loses_its_secret() {
    let env = setup(SandboxConfig::default()).await;
    let az = env.sandbox.azupay();
    let odd = json!({
        "oauth2ClientId": clientcreds_sandbox::AZUPAY_OAUTH2_CLIENT_ID,
        "oauth2ClientSecret": AZUPAY_OAUTH2_CLIENT_SECRET,
        "oauth2GrantType": "client_credentials",
        "oauth2TtlInSecs": "3600",
        "oauth2AllowedScopes": null,
    });
    // Azupay enables (and issues the secret) but answers with the odd body
    env.sandbox.fail_next_enable(
        1,
        clientcreds_sandbox::Fault::json(
            clientcreds_sandbox::http::StatusCode::OK,
            odd.to_string(),
        )
        .after_processing(),
    );
    env.create_azupay(
        "odd",
        json!([{"secretName": "odd-token", "scopes": ["RestAPI/GET:balance"]}]),
    )
    .await;
    let op = env.start_operator(None);
    let oac = env.wait_ready("odd").await;
    let creds = env
        .secrets()
        .get("azupay-oauth2-credentials")
        .await
        .unwrap();
    assert_eq!(data(&creds, "client_secret"), AZUPAY_OAUTH2_CLIENT_SECRET);
    assert_eq!(data(&creds, "token_url"), az.token_url);
    let status = oac.status.unwrap();
    assert_eq!(
        status.allowed_scopes.as_deref().unwrap(),
        clientcreds_sandbox::AZUPAY_DEFAULT_SCOPES
    );
    assert_eq!(status.ttl_seconds, Some(3600));
    let token = data(&env.token_secret("odd-token").await, "access_token");
    assert_eq!(call_protected(&az.resource_url, &token).await, 200);
    assert_eq!(env.sandbox.enable_calls(&az.client_id), 1);
    op.stop().await;
    env.assert_no_secret_anywhere(&[AZUPAY_OAUTH2_CLIENT_SECRET.to_owned(), token])
        .await;
}

/// Azupay answers an enable call with an error whose `message` echoes the API key: the event,
/// the status and the logs show the error with the key cut out; the next attempt enables.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_echoed_api_key_is_not_shown_in_status_events_or_logs() {
    let env = setup(SandboxConfig::default()).await;
    let az = env.sandbox.azupay();
    let body = json!({"message": format!("upstream rejected API key {}", az.api_key)});
    env.sandbox.fail_next_enable(
        1,
        clientcreds_sandbox::Fault::json(
            clientcreds_sandbox::http::StatusCode::BAD_GATEWAY,
            body.to_string(),
        ),
    );
    env.create_azupay(
        "echo",
        json!([{"secretName": "echo-token", "scopes": ["RestAPI/GET:balance"]}]),
    )
    .await;
    let op = env.start_operator(None);
    let note = env.wait_event("AzupayUnavailable").await;
    assert!(
        note.contains("upstream rejected API key [redacted]"),
        "{note}"
    );
    env.wait_ready("echo").await;
    op.stop().await;
    env.assert_no_secret_anywhere(std::slice::from_ref(&az.api_key))
        .await;
}

/// The Azupay clients of the race tests: business `clientId`, API key, OAuth 2.0 client id and
/// secret, one per round.
fn race_clients(prefix: &str, rounds: usize) -> (SandboxConfig, Vec<[String; 4]>) {
    let mut config = SandboxConfig::default();
    let mut clients = Vec::new();
    for i in 0..rounds {
        let c = [
            format!("BIZ-{prefix}-{i}"),
            // unlike any object name, so the leak scan can tell it
            format!("SECR_{prefix}-{i}_apikey"),
            format!("oauth2-{prefix}-{i}"),
            format!("one-time-secret-{prefix}-{i}"),
        ];
        config = config.azupay_client(
            clientcreds_sandbox::AzupayClient::new(&c[0], &c[1]).oauth2_credentials(&c[2], &c[3]),
        );
        clients.push(c);
    }
    (config, clients)
}

/// The pending mark is a lock (issue 13, enable-once (c)): two operators without a lease see
/// the same new OAuthClient at once; only the one holding the claim calls enable, the other
/// waits and then uses the stored secret. Several rounds (fresh Azupay clients, the enable
/// answer delayed to widen the window) make the race likely.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_operators_without_a_lease_enable_once() {
    const ROUNDS: usize = 5;
    let (config, clients) = race_clients("race", ROUNDS);
    let env = setup(config).await;
    let az = env.sandbox.azupay();
    let a = env.start_operator_with(test_config());
    let b = env.start_operator_with(test_config());
    for (i, [client_id, api_key, oauth2_id, oauth2_secret]) in clients.iter().enumerate() {
        env.sandbox.fail_next_enable(
            1,
            clientcreds_sandbox::Fault::delay(std::time::Duration::from_millis(500)),
        );
        let key_secret = format!("key-{i}");
        env.create_secret(&key_secret, &[("apiKey", api_key)]).await;
        let name = format!("race-{i}");
        let creds = format!("creds-{i}");
        env.create_oac(json!({
            "metadata": {"name": name},
            "spec": {
                "provider": "azupay",
                "azupay": {"endpoint": az.endpoint, "clientId": client_id,
                           "apiKeySecretRef": {"name": key_secret, "key": "apiKey"}},
                "credentials": {"secretName": creds},
                "tokens": [{"secretName": format!("token-{i}"), "scopes": ["RestAPI/GET:balance"]}],
            }
        }))
        .await;
        env.wait_ready(&name).await;
        assert_eq!(env.sandbox.enable_calls(client_id), 1, "round {i}");
        let stored = env.secrets().get(&creds).await.unwrap();
        assert_eq!(data(&stored, "client_id"), *oauth2_id, "round {i}");
        assert_eq!(data(&stored, "client_secret"), *oauth2_secret, "round {i}");
        let annotations = stored.metadata.annotations.unwrap();
        assert_eq!(annotations["clientcreds.dev/enable-state"], "enabled");
        assert!(annotations.contains_key("clientcreds.dev/enable-holder"));
    }
    // nobody reported the secret lost (the loser of a race never asked Azupay a second time)
    assert!(
        env.events()
            .await
            .iter()
            .all(|e| e.reason.as_deref() != Some("CredentialsLost"))
    );
    a.stop().await;
    b.stop().await;
    for [client_id, ..] in &clients {
        assert_eq!(env.sandbox.enable_calls(client_id), 1);
    }
}

/// Creates an OAuthClient `name` for the Azupay client `[clientId, apiKey, ..]`, with its own
/// API key Secret, credentials Secret `creds-{name}` and token Secret `token-{name}`.
async fn create_azupay_oac(env: &Env, name: &str, client: &[String; 4]) {
    let az = env.sandbox.azupay();
    let key_secret = format!("key-{name}");
    env.create_secret(&key_secret, &[("apiKey", &client[1])])
        .await;
    env.create_oac(json!({
        "metadata": {"name": name},
        "spec": {
            "provider": "azupay",
            "azupay": {"endpoint": az.endpoint, "clientId": client[0],
                       "apiKeySecretRef": {"name": key_secret, "key": "apiKey"}},
            "credentials": {"secretName": format!("creds-{name}")},
            "tokens": [{"secretName": format!("token-{name}"), "scopes": ["RestAPI/GET:balance"]}],
        }
    }))
    .await;
}

/// One Azupay client id per cluster (issue 13, enable-once (f)): a second OAuthClient naming
/// an Azupay client another one uses gets `AzupayClientInUse` naming it, and no enable call —
/// after the first stored its secret, and when both are created at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_oauthclient_for_the_same_azupay_client_is_refused() {
    let (config, clients) = race_clients("shared", 2);
    let env = setup(config).await;
    let op = env.start_operator_with(test_config());

    // one after the other
    create_azupay_oac(&env, "first", &clients[0]).await;
    env.wait_ready("first").await;
    create_azupay_oac(&env, "second", &clients[0]).await;
    let (_, cond) = env
        .wait_condition_reason("second", "CredentialsStored", "AzupayClientInUse")
        .await;
    assert_eq!(cond.status, "False");
    assert!(cond.message.contains("app/first"), "{}", cond.message);
    assert!(cond.message.contains(&clients[0][0]), "{}", cond.message);
    let note = env.wait_event("AzupayClientInUse").await;
    assert!(note.contains("app/first"), "{note}");
    assert_eq!(env.sandbox.enable_calls(&clients[0][0]), 1);
    assert!(
        env.secrets()
            .get_opt("token-second")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        env.secrets()
            .get_opt("creds-second")
            .await
            .unwrap()
            .is_none()
    );

    // both at once: exactly one enables, the other is refused
    env.sandbox.fail_next_enable(
        1,
        clientcreds_sandbox::Fault::delay(std::time::Duration::from_millis(500)),
    );
    tokio::join!(
        create_azupay_oac(&env, "third", &clients[1]),
        create_azupay_oac(&env, "fourth", &clients[1]),
    );
    let (winner, loser) = clientcreds_e2e::eventually("one Ready, one refused", EVENTUALLY, || {
        let api = env.oacs();
        async move {
            let reason = |name: &'static str| {
                let api = api.clone();
                async move {
                    let o = api.get(name).await.ok()?;
                    o.status?
                        .conditions
                        .into_iter()
                        .find(|c| c.type_ == "CredentialsStored")
                        .map(|c| c.reason)
                }
            };
            let (a, b) = (reason("third").await?, reason("fourth").await?);
            match (a.as_str(), b.as_str()) {
                ("Stored", "AzupayClientInUse") => Some(("third", "fourth")),
                ("AzupayClientInUse", "Stored") => Some(("fourth", "third")),
                _ => None,
            }
        }
    })
    .await;
    env.wait_ready(winner).await;
    let (_, cond) = env
        .wait_condition_reason(loser, "CredentialsStored", "AzupayClientInUse")
        .await;
    assert!(
        cond.message.contains(&format!("app/{winner}")),
        "{}",
        cond.message
    );
    assert_eq!(env.sandbox.enable_calls(&clients[1][0]), 1);
    op.stop().await;
    assert!(
        env.events()
            .await
            .iter()
            .all(|e| e.reason.as_deref() != Some("CredentialsLost"))
    );
}

/// The steps of the R1 kill matrix, in the order of the enable flow: where the operator binary
/// is SIGKILLed, how the test holds it there, and what must follow.
const KILL_STEPS: [&str; 7] = [
    // its details call (after the claim, before enable) held by the sandbox: before the call
    "before-call",
    // as soon as the claim (the credentials Secret) exists: anywhere from before the call to
    // the write of the answer, as the 100 ms poll falls
    "mark-written",
    // the enable call has reached Azupay, which processes it only after 5 s: not yet effective
    "call-in-flight",
    // Azupay has enabled and issued the secret; its answer is held back (60 s)
    "call-took-effect",
    // the operator has the answer: the secret's write is refused by an admission policy, so
    // the operator keeps it in its recovery Secret (CredentialsStored=False
    // CredentialsWriteFailed); the policy is lifted after the kill
    "answer-received",
    // the credentials Secret holds client_secret
    "secret-written",
    // the OAuthClient's status shows CredentialsStored=True Stored
    "status-written",
];

/// The R1 kill matrix (issue 13): the operator binary SIGKILLed at each step of the enable flow
/// ([`KILL_STEPS`]), then started again as the same instance (a container restarted in its
/// pod), 2 runs per step with fresh Azupay clients (`CLIENTCREDS_KILL_RUNS=20` for the full
/// matrix of RELIABILITY.md). Never a second effective enable call; a secret the operator
/// received survives the kill (written, or kept in the recovery Secret when the write was
/// refused) and the restarted operator gets tokens with it; a secret lost with the process
/// (the answer not received) is reported as `CredentialsLost`, never enabled over. No secret
/// in the binary's log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkilled_operator_never_enables_twice_nor_loses_a_stored_secret() {
    use clientcreds_sandbox::Fault;
    use std::time::Duration;
    let runs: usize = std::env::var("CLIENTCREDS_KILL_RUNS")
        .ok()
        .map(|v| {
            v.parse()
                .expect("CLIENTCREDS_KILL_RUNS takes a whole number of runs per step, e.g. 20")
        })
        .unwrap_or(2);
    let (config, clients) = race_clients("kill", KILL_STEPS.len() * runs);
    let env = setup(config).await;
    let az = env.sandbox.azupay();
    let log = std::env::temp_dir().join(format!("clientcreds-kill-{}.log", std::process::id()));
    let instance = [("POD_NAME", "clientcreds-operator-0")];
    let restart = [instance[0], ("LOG_JSON", "true")];
    let mut outcomes = std::collections::BTreeMap::<(usize, String), usize>::new();
    for (n, client) in clients.iter().enumerate() {
        let step_index = n / runs;
        let step = KILL_STEPS[step_index];
        let name = format!("kill-{n}");
        let creds = format!("creds-{name}");
        match step {
            "before-call" => env
                .sandbox
                .fail_next_details(1, Fault::delay(Duration::from_secs(60))),
            "call-in-flight" => env
                .sandbox
                .fail_next_enable(1, Fault::delay(Duration::from_secs(5))),
            "call-took-effect" => env
                .sandbox
                .fail_next_enable(1, Fault::delay(Duration::from_secs(60)).after_processing()),
            "answer-received" => env.deny_client_secret_writes().await,
            _ => {}
        }
        let op = process::OperatorProcess::start_with(&env, log.clone(), &instance).await;
        create_azupay_oac(&env, &name, client).await;
        let env = &env;
        let details_path = format!("/client/{}/oauth2", client[0]);
        clientcreds_e2e::eventually(&format!("{name}: {step}"), EVENTUALLY, || {
            let (secrets, oacs) = (env.secrets(), env.oacs());
            let (creds, name, details_path) = (&creds, &name, &details_path);
            async move {
                let has_secret = |s: &k8s_openapi::api::core::v1::Secret| {
                    s.data
                        .as_ref()
                        .is_some_and(|d| d.contains_key("client_secret"))
                };
                let condition = |reason: &str| {
                    let reason = reason.to_owned();
                    let oacs = oacs.clone();
                    async move {
                        let o = oacs.get(name).await.ok()?;
                        o.status?
                            .conditions
                            .iter()
                            .any(|c| c.type_ == "CredentialsStored" && c.reason == reason)
                            .then_some(())
                    }
                };
                let reached = match step {
                    "before-call" => env
                        .sandbox
                        .requests_for(Provider::Azupay)
                        .iter()
                        .any(|r| r.method == "GET" && r.path.ends_with(details_path.as_str())),
                    "mark-written" => secrets.get_opt(creds).await.ok()?.is_some(),
                    "call-in-flight" => env.sandbox.enable_calls(&client[0]) >= 1,
                    "call-took-effect" => env.sandbox.azupay_enabled(&client[0]),
                    "answer-received" => condition("CredentialsWriteFailed").await.is_some(),
                    "secret-written" => secrets
                        .get_opt(creds)
                        .await
                        .ok()?
                        .is_some_and(|s| has_secret(&s)),
                    _ => condition("Stored").await.is_some(),
                };
                reached.then_some(())
            }
        })
        .await;
        op.kill().await;
        if step == "answer-received" {
            env.allow_client_secret_writes().await;
        }
        // restarted logging JSON lines (the chart's default), for the leak scan of both formats
        let op = process::OperatorProcess::start_with(env, log.clone(), &restart).await;
        let (oac, cond) =
            clientcreds_e2e::eventually(&format!("{name} settled"), EVENTUALLY, || {
                let api = env.oacs();
                let name = name.clone();
                async move {
                    let o = api.get(&name).await.ok()?;
                    let c = o
                        .status
                        .as_ref()?
                        .conditions
                        .iter()
                        .find(|c| {
                            c.type_ == "CredentialsStored"
                                && (c.reason == "Stored" || c.reason == "CredentialsLost")
                        })?
                        .clone();
                    Some((o, c))
                }
            })
            .await;
        if step == "answer-received" {
            // delivered from the recovery Secret, which is gone
            let uid = kube::ResourceExt::uid(&oac).unwrap();
            let recovery: kube::Api<k8s_openapi::api::core::v1::Secret> =
                kube::Api::namespaced(env.admin.clone(), OPERATOR_NS);
            let name_of = clientcreds_operator::azupay::recovery::recovery_secret_name(&uid);
            assert!(
                recovery.get_opt(&name_of).await.unwrap().is_none(),
                "{name}: recovery Secret left"
            );
        }
        if cond.reason == "Stored" {
            // the secret stored is the one Azupay issued (a second effective enable would
            // have been refused with 409 and reported as CredentialsLost) …
            let stored = env.secrets().get(&creds).await.unwrap();
            assert_eq!(data(&stored, "client_secret"), client[3], "{name}");
            // … and the restarted operator gets working tokens with it
            let token_secret = format!("token-{name}");
            let old = env
                .secrets()
                .get_opt(&token_secret)
                .await
                .unwrap()
                .map(|s| data(&s, "access_token"))
                .unwrap_or_default();
            env.request_refresh(&name, "after-restart").await;
            let token = env.wait_new_token(&token_secret, &old).await;
            assert_eq!(
                call_protected(&az.resource_url, &token).await,
                200,
                "{name}"
            );
        }
        op.capture_metrics().await;
        op.kill().await;
        // each run alone: the next operator must not reconcile this OAuthClient (a restarted
        // operator asks the details of every stored client, which would take the next run's
        // details fault); nothing needs the operator on deletion
        env.oacs().delete(&name, &Default::default()).await.unwrap();
        let calls = env.sandbox.enable_calls(&client[0]);
        *outcomes
            .entry((
                step_index,
                format!("{calls} enable call(s), {}", cond.reason),
            ))
            .or_default() += 1;
        match step {
            // killed while Azupay held the call unprocessed: the dropped call never took
            // effect, so the restarted operator (details: not enabled) called once more —
            // 2 calls counted, 1 effective
            "call-in-flight" => {
                assert_eq!(calls, 2, "{name} ({step})");
                assert_eq!(cond.reason, "Stored", "{name} ({step})");
            }
            _ => assert_eq!(calls, 1, "{name} ({step}): a second enable call"),
        }
        match step {
            // the secret existed only in the lost answer
            "call-took-effect" => {
                assert_eq!(cond.reason, "CredentialsLost", "{name} ({step})")
            }
            // killed before the call, after the write, or with the received secret in the
            // recovery Secret (its write refused): stored
            "before-call" | "answer-received" | "secret-written" | "status-written" => {
                assert_eq!(cond.reason, "Stored", "{name} ({step})")
            }
            // the mark-written kill lands anywhere up to the write: stored, or — answer lost
            // with the process — reported, never enabled over
            _ => {}
        }
    }
    // no one-time secret in the binary's log (the API keys here double as Secret names, so
    // the other tests check those)
    let logged = std::fs::read_to_string(&log).unwrap();
    for [.., secret] in &clients {
        assert!(
            !logged.contains(secret.as_str()),
            "a client secret in {}",
            log.display()
        );
    }
    println!("kill matrix outcomes ({runs} runs per step):");
    for ((step, outcome), count) in &outcomes {
        println!("  {:<17} {count:>3} × {outcome}", KILL_STEPS[*step]);
    }
}

/// An enable that takes effect while its answer is lost (issue 13, R1): Azupay enables OAuth 2.0
/// and issues the one-time secret, then closes the connection without answering, or answers
/// with a body cut off in the middle of the secret. The operator asks the details endpoint at
/// once, shows `CredentialsLost` with what to ask Azupay, never calls enable a second time (not
/// on a later reconcile either), keeps serving other OAuthClients, and the secret that passed
/// through it appears nowhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enable_whose_answer_is_lost_is_reported_and_never_repeated() {
    use clientcreds_sandbox::Fault;
    use clientcreds_sandbox::http::StatusCode;
    let (config, clients) = race_clients("lost", 2);
    let env = setup(config).await;
    let op = env.start_operator_with(test_config());
    let cut_off = |secret: &str| format!(r#"{{"oauth2ClientSecret":"{secret}","oauth2Cli"#);
    let faults = [
        ("closed", Fault::close_connection().after_processing()),
        (
            "cut-off",
            Fault::json(StatusCode::OK, cut_off(&clients[1][3])).after_processing(),
        ),
    ];
    for ((name, fault), client) in faults.into_iter().zip(&clients) {
        env.sandbox.fail_next_enable(1, fault);
        create_azupay_oac(&env, name, client).await;
        let (oac, cond) = env
            .wait_condition_reason(name, "CredentialsStored", "CredentialsLost")
            .await;
        assert_eq!(cond.status, "False", "{name}");
        assert!(cond.message.contains("Contact Azupay"), "{}", cond.message);
        assert!(
            cond.message.contains(&format!("creds-{name}")),
            "{}",
            cond.message
        );
        let ready = oac
            .status
            .unwrap()
            .conditions
            .into_iter()
            .find(|c| c.type_ == "Ready")
            .unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "CredentialsLost")
        );
        // Azupay did enable it; the operator called once
        assert!(env.sandbox.azupay_enabled(&client[0]), "{name}");
        assert_eq!(env.sandbox.enable_calls(&client[0]), 1, "{name}");
        assert!(
            env.secrets()
                .get_opt(&format!("token-{name}"))
                .await
                .unwrap()
                .is_none()
        );
        // no loop: another reconcile (an annotation change) asks the details endpoint again
        // and still does not call enable
        env.sandbox.clear_requests();
        env.request_refresh(name, "1").await;
        let path = format!("/client/{}/oauth2", client[0]);
        clientcreds_e2e::eventually(&format!("{name}: details asked again"), EVENTUALLY, || {
            let (sb, path) = (&env.sandbox, &path);
            async move {
                sb.requests_for(Provider::Azupay)
                    .iter()
                    .any(|r| r.method == "GET" && r.path.ends_with(path.as_str()))
                    .then_some(())
            }
        })
        .await;
        assert_eq!(env.sandbox.enable_calls(&client[0]), 1, "{name}");
    }
    let events = env.events().await;
    let lost = events
        .iter()
        .filter(|e| e.reason.as_deref() == Some("CredentialsLost"))
        .count();
    assert!(lost >= 2, "{lost} CredentialsLost events");
    let note = env.wait_event("CredentialsLost").await;
    assert!(note.contains("Contact Azupay"), "{note}");
    // found out in the same attempt, by asking at once (not by a later retry)
    let asked = events
        .iter()
        .filter(|e| {
            e.reason.as_deref() == Some("AzupayUnavailable")
                && e.note
                    .as_deref()
                    .is_some_and(|n| n.contains("asking Azupay whether it took effect"))
        })
        .count();
    assert_eq!(asked, 2, "{events:#?}");
    op.stop().await;
    let mut secrets: Vec<String> = clients.iter().map(|c| c[3].clone()).collect();
    secrets.extend(clients.iter().map(|c| c[1].clone()));
    env.assert_no_secret_anywhere(&secrets).await;
}

/// An enable answer whose fields are of the wrong types (a numeric client id, a `null` token
/// URL, a list as grant type, a string as scope list) still yields its one-time secret, stored;
/// the parts that do not read come from the details call (issue 13, enable-once (a)).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enable_answer_with_mistyped_fields_keeps_its_secret() {
    let env = setup(SandboxConfig::default()).await;
    let az = env.sandbox.azupay();
    let mistyped = json!({
        "oauth2ClientId": 12345,
        "oauth2ClientSecret": AZUPAY_OAUTH2_CLIENT_SECRET,
        "oauth2TokenUrl": null,
        "oauth2GrantType": ["client_credentials"],
        "oauth2TtlInSecs": 3600,
        "oauth2AllowedScopes": "RestAPI/GET:balance",
    });
    // Azupay enables (and issues the secret) but answers with the mistyped body
    env.sandbox.fail_next_enable(
        1,
        clientcreds_sandbox::Fault::json(
            clientcreds_sandbox::http::StatusCode::OK,
            mistyped.to_string(),
        )
        .after_processing(),
    );
    env.create_azupay(
        "mistyped",
        json!([{"secretName": "mistyped-token", "scopes": ["RestAPI/GET:balance"]}]),
    )
    .await;
    let op = env.start_operator(None);
    let oac = env.wait_ready("mistyped").await;
    let creds = env
        .secrets()
        .get("azupay-oauth2-credentials")
        .await
        .unwrap();
    assert_eq!(data(&creds, "client_secret"), AZUPAY_OAUTH2_CLIENT_SECRET);
    assert_eq!(
        data(&creds, "client_id"),
        clientcreds_sandbox::AZUPAY_OAUTH2_CLIENT_ID
    );
    assert_eq!(data(&creds, "token_url"), az.token_url);
    let status = oac.status.unwrap();
    assert_eq!(
        status.allowed_scopes.as_deref().unwrap(),
        clientcreds_sandbox::AZUPAY_DEFAULT_SCOPES
    );
    let token = data(&env.token_secret("mistyped-token").await, "access_token");
    assert_eq!(call_protected(&az.resource_url, &token).await, 200);
    assert_eq!(env.sandbox.enable_calls(&az.client_id), 1);
    op.stop().await;
    env.assert_no_secret_anywhere(&[AZUPAY_OAUTH2_CLIENT_SECRET.to_owned(), token])
        .await;
}
