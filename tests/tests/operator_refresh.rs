//! Token refresh through the operator on a real control plane: refreshed before expiry, not
//! requested again after a restart while still good, refreshed on demand, and backed off
//! (honouring `retry_after`) while the provider fails.
#![allow(clippy::unwrap_used)]

mod operator_support;

use std::time::Duration;

use clientcreds_sandbox::http::StatusCode;
use clientcreds_sandbox::{
    Fault, PAYU_SCOPES, PAYU_SERVER_ERROR, PYNG_SCOPES, Provider, SandboxConfig,
};
use jiff::{SignedDuration, Timestamp};
use kube::api::Api;
use operator_support::*;
use serde_json::json;

async fn payu(env: &Env, name: &str, secret: &str) {
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
        "metadata": {"name": name},
        "spec": {"provider": "payu", "credentialsSecretRef": {"name": "payu-credentials"},
                 "tokenUrl": p.token_url, "tokens": [{"secretName": secret, "scopes": [PAYU_SCOPES[0]]}]}
    }))
    .await;
}

fn annotation(s: &k8s_openapi::api::core::v1::Secret, key: &str) -> Timestamp {
    s.metadata.annotations.as_ref().unwrap()[key]
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_refreshed_before_expiry_kept_across_restarts_and_refreshed_on_demand() {
    let config = SandboxConfig::default().token_lifetime(Provider::Pyng, Duration::from_secs(16));
    let env = setup(config).await;
    let pyng = env.sandbox.pyng();
    env.create_secret(
        "pyng-credentials",
        &[
            ("client_id", &pyng.client_id),
            ("client_secret", &pyng.client_secret),
        ],
    )
    .await;
    env.create_oac(json!({
        "metadata": {"name": "short"},
        "spec": {"provider": "pyng", "credentialsSecretRef": {"name": "pyng-credentials"},
                 "tokenUrl": pyng.token_url, "tokens": [{"secretName": "short-token", "scopes": [PYNG_SCOPES[0]]}],
                 "refresh": {"atLifetimeFraction": 0.5}}
    }))
    .await;
    payu(&env, "long", "long-token").await;
    let op = env.start_operator(None);

    // refreshed at about half of the 16 s lifetime, before the old token expires
    env.wait_ready("short").await;
    let first = env.token_secret("short-token").await;
    let first_token = data(&first, "access_token");
    let first_expiry: Timestamp = data(&first, "expires_at").parse().unwrap();
    let first_refresh = annotation(&first, "clientcreds.dev/refresh-at");
    let first_issued = annotation(&first, "clientcreds.dev/issued-at");
    let fraction = first_refresh.duration_since(first_issued).as_secs_f64()
        / first_expiry.duration_since(first_issued).as_secs_f64();
    assert!(
        (0.44..=0.51).contains(&fraction),
        "refresh at {fraction} of the lifetime"
    );
    env.wait_new_token("short-token", &first_token).await;
    let second = env.token_secret("short-token").await;
    let reissued = annotation(&second, "clientcreds.dev/issued-at");
    assert!(
        reissued >= first_refresh,
        "refreshed before its refresh time"
    );
    assert!(
        reissued < first_expiry,
        "refreshed only after the old token expired"
    );
    assert_eq!(
        call_protected(&pyng.resource_url, &data(&second, "access_token")).await,
        200
    );

    // restart: the stored long-lived token is still good, so no token request
    env.wait_ready("long").await;
    let long_before = data(&env.token_secret("long-token").await, "access_token");
    let payu_client = env.sandbox.payu().client_id;
    let issued_before = env.sandbox.tokens_issued(Provider::Payu, &payu_client);
    assert_eq!(issued_before, 1);
    op.stop().await;
    let op = env.start_operator(None);
    // a new object proves the restarted controller has listed and reconciled
    payu(&env, "probe", "probe-token").await;
    env.wait_ready("probe").await;
    // and an edit of "long" itself is reconciled too
    let patch = json!({"metadata": {"labels": {"touched": "yes"}}});
    env.oacs()
        .patch(
            "long",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
        .unwrap();
    env.wait_ready("long").await;
    assert_eq!(
        data(&env.token_secret("long-token").await, "access_token"),
        long_before
    );
    // one more for the probe, none for "long"
    assert_eq!(
        env.sandbox.tokens_issued(Provider::Payu, &payu_client),
        issued_before + 1
    );

    // refresh on demand: exactly one more token request
    env.request_refresh("long", "now").await;
    let long_after = env.wait_new_token("long-token", &long_before).await;
    assert_eq!(
        env.sandbox.tokens_issued(Provider::Payu, &payu_client),
        issued_before + 2
    );
    let status = env.oacs().get("long").await.unwrap().status.unwrap();
    assert_eq!(status.last_refresh_request.as_deref(), Some("now"));
    op.stop().await;
    env.assert_no_secret_anywhere(&[
        first_token,
        long_before,
        long_after,
        pyng.client_secret.clone(),
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_back_off_and_retry_after_is_honoured() {
    let env = setup(SandboxConfig::default()).await;
    let p = env.sandbox.payu();
    // rate limited once, with retry_after in the body as PayU's document shows
    env.sandbox.fail_next(
        Provider::Payu,
        1,
        Fault::json(
            StatusCode::TOO_MANY_REQUESTS,
            r#"{"error":"rate_limit_exceeded","error_description":"Too many requests. Please retry after some time.","retry_after":6}"#,
        ),
    );
    // The failure happens after this instant, so the retry is due at least retry_after (6 s)
    // later: a lower bound that needs no slack for how fast the test notices the failure
    // (minus 1 s, as status times are whole seconds).
    let before = Timestamp::now();
    let op = env.start_operator(None);
    payu(&env, "limited", "limited-token").await;
    let failed = env.wait_condition("limited", "TokensIssued", "False").await;
    let st = failed.status.unwrap();
    assert!(
        st.tokens[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("rate_limit_exceeded")
    );
    let retry_at: Timestamp = st.tokens[0].refresh_at.as_deref().unwrap().parse().unwrap();
    assert!(
        retry_at.duration_since(before) >= SignedDuration::from_secs(5),
        "retry_after ignored: retry at {retry_at}, operator started at {before}"
    );
    env.wait_ready("limited").await;
    let issued = annotation(
        &env.token_secret("limited-token").await,
        "clientcreds.dev/issued-at",
    );
    assert!(issued >= retry_at, "retried before retry_after");
    assert_eq!(
        env.sandbox.requests_for(Provider::Payu).len(),
        2,
        "one failure, one success"
    );
    op.stop().await;

    // server errors: exponential back-off, then success
    env.sandbox.clear_requests();
    env.sandbox.fail_next(
        Provider::Payu,
        3,
        Fault::json(StatusCode::INTERNAL_SERVER_ERROR, PAYU_SERVER_ERROR),
    );
    let op = env.start_operator(None);
    payu(&env, "flaky", "flaky-token").await;
    env.wait_condition("flaky", "TokensIssued", "False").await;
    let ready = env.wait_ready("flaky").await;
    assert_eq!(
        env.sandbox.requests_for(Provider::Payu).len(),
        4,
        "3 failures and one success, no hot loop"
    );
    let events = env.events().await;
    assert!(
        events
            .iter()
            .any(|e| e.reason.as_deref() == Some("TokenRequestFailed"))
    );
    assert!(ready.status.unwrap().tokens[0].last_error.is_none());
    op.stop().await;
    env.assert_no_secret_anywhere(std::slice::from_ref(&p.client_secret))
        .await;
}

/// The operator's own writes trigger nothing, but a token Secret someone deletes is written
/// again at once (its deletion is the one event of its own Secrets that the operator watches).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_token_secret_is_written_again() {
    let env = setup(SandboxConfig::default()).await;
    let op = env.start_operator(None);
    payu(&env, "gone", "gone-token").await;
    env.wait_ready("gone").await;
    let before = data(&env.token_secret("gone-token").await, "access_token");
    env.secrets()
        .delete("gone-token", &Default::default())
        .await
        .unwrap();
    let after = clientcreds_e2e::eventually("the token Secret written again", EVENTUALLY, || {
        let secrets = env.secrets();
        async move {
            let s = secrets.get_opt("gone-token").await.ok()??;
            Some(data(&s, "access_token"))
        }
    })
    .await;
    assert_ne!(after, before, "a new token for the new Secret");
    let payu_client = env.sandbox.payu().client_id;
    assert_eq!(env.sandbox.tokens_issued(Provider::Payu, &payu_client), 2);
    op.stop().await;
}

/// A token Secret whose writes are refused (an admission policy) for a while: the token issued
/// first is kept and written once writes pass again; no further token request meanwhile, and
/// the status shows the write failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_whose_secret_write_fails_is_written_on_retry_without_new_requests() {
    let env = setup(SandboxConfig::default()).await;
    let probe = || json!({"metadata": {"name": "denied-probe"}});
    env.deny_secret_writes(
        "deny-token-secrets",
        "!object.metadata.name.startsWith('denied-')",
        probe(),
    )
    .await;
    let op = env.start_operator(None);
    payu(&env, "denied", "denied-token").await;
    let (failing, condition) = env
        .wait_condition_reason("denied", "TokensIssued", "TokenWriteFailed")
        .await;
    assert!(condition.message.contains("denied-token"), "{condition:?}");
    let st = failing.status.unwrap();
    assert!(
        st.tokens[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("refused by deny-token-secrets")
    );
    // Let several backoff steps pass while the writes keep failing (2 s, 4 s, then at most
    // 5 s apart: no token is stored).
    let events = Api::<k8s_openapi::api::events::v1::Event>::namespaced(env.admin.clone(), &env.ns);
    clientcreds_e2e::eventually("three failed writes", EVENTUALLY, || {
        let events = events.clone();
        async move {
            let list = events.list(&Default::default()).await.ok()?;
            let count: i32 = list
                .items
                .iter()
                .filter(|e| e.reason.as_deref() == Some("TokenWriteFailed"))
                .map(|e| 1 + e.series.as_ref().map_or(0, |s| s.count.max(1) - 1))
                .sum();
            (count >= 3).then_some(())
        }
    })
    .await;
    let client = env.sandbox.payu().client_id;
    assert_eq!(
        env.sandbox.tokens_issued(Provider::Payu, &client),
        1,
        "one token request, whatever the writes do"
    );
    env.allow_secret_writes("deny-token-secrets", probe()).await;
    env.wait_ready("denied").await;
    assert_eq!(
        env.sandbox.tokens_issued(Provider::Payu, &client),
        1,
        "the kept token was written"
    );
    let secret = env.token_secret("denied-token").await;
    let expires: Timestamp = data(&secret, "expires_at").parse().unwrap();
    assert!(expires > Timestamp::now());
    let status = env.oacs().get("denied").await.unwrap().status.unwrap();
    assert!(status.tokens[0].last_error.is_none());
    op.stop().await;
    env.assert_no_secret_anywhere(&[
        data(&secret, "access_token"),
        env.sandbox.payu().client_secret,
    ])
    .await;
}

/// The token endpoint is down from before the refresh point until well after the token has
/// expired: no bursts near expiry, and once the provider is back the Secret holds a valid
/// token within seconds (the stored one expired, so attempts are at most 5 s apart).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_an_outage_that_outlasts_the_token_a_valid_token_is_back_within_seconds() {
    let config = SandboxConfig::default().token_lifetime(Provider::Pyng, Duration::from_secs(16));
    let env = setup(config).await;
    let pyng = env.sandbox.pyng();
    env.create_secret(
        "pyng-credentials",
        &[
            ("client_id", &pyng.client_id),
            ("client_secret", &pyng.client_secret),
        ],
    )
    .await;
    let op = env.start_operator(None);
    env.create_oac(json!({
        "metadata": {"name": "outage"},
        "spec": {"provider": "pyng", "credentialsSecretRef": {"name": "pyng-credentials"},
                 "tokenUrl": pyng.token_url, "tokens": [{"secretName": "outage-token", "scopes": [PYNG_SCOPES[0]]}],
                 "refresh": {"atLifetimeFraction": 0.5}}
    }))
    .await;
    env.wait_ready("outage").await;
    let first = env.token_secret("outage-token").await;
    let first_token = data(&first, "access_token");
    let expires: Timestamp = data(&first, "expires_at").parse().unwrap();
    // Down before the refresh point (8 s into the 16 s lifetime).
    env.sandbox.fail_next(
        Provider::Pyng,
        1000,
        Fault::json(
            StatusCode::SERVICE_UNAVAILABLE,
            r#"{"error":"temporarily_unavailable"}"#,
        ),
    );
    env.sandbox.clear_requests();
    // ... until 40 s after the token expired: with the old 5-minute cap the next attempt was
    // minutes away by then.
    let back_at = expires + SignedDuration::from_secs(40);
    let wait = Duration::try_from(back_at.duration_since(Timestamp::now())).unwrap();
    tokio::time::sleep(wait).await;
    let (_, condition) = env
        .wait_condition_reason("outage", "TokensIssued", "TokenRequestFailed")
        .await;
    assert_eq!(condition.status, "False");
    let during = env.sandbox.requests_for(Provider::Pyng).len();
    env.sandbox.clear_faults();
    let recovered = std::time::Instant::now();
    let new_token = env.wait_new_token("outage-token", &first_token).await;
    let took = recovered.elapsed();
    eprintln!(
        "FAST-RECOVERY: a valid token {took:?} after the provider came back ({during} requests during the outage)"
    );
    assert!(
        took <= Duration::from_secs(10),
        "the provider was back {took:?} before a new token was stored"
    );
    let secret = env.token_secret("outage-token").await;
    let new_expiry: Timestamp = data(&secret, "expires_at").parse().unwrap();
    assert!(new_expiry > Timestamp::now());
    assert_eq!(call_protected(&pyng.resource_url, &new_token).await, 200);
    // bounded: about 8 s + 40 s of outage, attempts 2, 4, then at most 5 s (and at least 1 s)
    // apart: never once a second
    assert!(
        (5..=30).contains(&during),
        "{during} token requests during a 48 s outage"
    );
    op.stop().await;
    env.assert_no_secret_anywhere(&[first_token, new_token, pyng.client_secret.clone()])
        .await;
}

/// A `clientcreds.dev/refresh` request that fails while the stored token is good: retried with
/// backoff (not dropped after one attempt), shown in the status (`lastError`,
/// `TokensRefreshed=False`) while the old token keeps serving, and answered once the provider
/// is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_refresh_request_is_retried_and_shown_while_the_old_token_serves() {
    let env = setup(SandboxConfig::default()).await;
    let op = env.start_operator(None);
    payu(&env, "ondemand", "ondemand-token").await;
    env.wait_ready("ondemand").await;
    let old = data(&env.token_secret("ondemand-token").await, "access_token");
    let client = env.sandbox.payu().client_id;
    assert_eq!(env.sandbox.tokens_issued(Provider::Payu, &client), 1);
    env.sandbox.clear_requests();
    env.sandbox.fail_next(
        Provider::Payu,
        2,
        Fault::json(StatusCode::INTERNAL_SERVER_ERROR, PAYU_SERVER_ERROR),
    );
    env.request_refresh("ondemand", "r1").await;
    let (failing, condition) = env
        .wait_condition_reason("ondemand", "TokensRefreshed", "TokenRequestFailed")
        .await;
    assert_eq!(condition.status, "False");
    let st = failing.status.unwrap();
    assert!(
        st.conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True"),
        "the old token still serves: {:?}",
        st.conditions
    );
    assert!(
        st.tokens[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("server_error")
    );
    assert_ne!(st.last_refresh_request.as_deref(), Some("r1"));
    // retried until it succeeds: two failures, then the new token
    let new = env.wait_new_token("ondemand-token", &old).await;
    assert_ne!(new, old);
    let ready = env
        .wait_condition("ondemand", "TokensRefreshed", "True")
        .await;
    assert_eq!(
        ready.status.unwrap().last_refresh_request.as_deref(),
        Some("r1")
    );
    assert_eq!(
        env.sandbox.requests_for(Provider::Payu).len(),
        3,
        "two failures, one success: retried with backoff, no more"
    );
    op.stop().await;
    env.assert_no_secret_anywhere(&[old, new, env.sandbox.payu().client_secret])
        .await;
}

/// A token endpoint that echoes the client secret in `error_description`: the status, the
/// events and the logs show the error without the secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_echoed_client_secret_is_not_shown_in_status_events_or_logs() {
    let env = setup(SandboxConfig::default()).await;
    let p = env.sandbox.payu();
    let body = json!({
        "error": "invalid_client",
        "error_description": format!("client_secret {} is wrong", p.client_secret),
    });
    env.sandbox.fail_next(
        Provider::Payu,
        1,
        Fault::json(StatusCode::UNAUTHORIZED, body.to_string()),
    );
    let op = env.start_operator(None);
    payu(&env, "echo", "echo-token").await;
    let (failing, _) = env
        .wait_condition_reason("echo", "TokensIssued", "TokenRequestFailed")
        .await;
    let error = failing.status.unwrap().tokens[0]
        .last_error
        .clone()
        .unwrap();
    assert!(
        error.contains("client_secret [redacted] is wrong"),
        "{error}"
    );
    env.wait_event("TokenRequestFailed").await;
    op.stop().await;
    env.assert_no_secret_anywhere(std::slice::from_ref(&p.client_secret))
        .await;
}

/// A provider that echoes the credentials it was sent in every encoding a request may carry
/// them in (raw, JSON-escaped, form-urlencoded, RFC 3986, the HTTP Basic header with and without
/// RFC 6749's form-encoding first), for a client whose id and secret need encoding: none of them
/// in the status (and, by `Env`'s leak-scan capture, in no log, event, annotation or metric).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_echoed_in_any_encoding_are_not_shown_in_status_events_or_logs() {
    use base64::Engine;
    use clientcreds_e2e::leak_scan;
    const ID: &str = "pyng app/1";
    const SECRET: &str = r#"s3+t/~*-._ &=%"ä"#;
    let config = SandboxConfig::default().pyng_client(
        clientcreds_sandbox::Client::new(ID, SECRET).scopes(PYNG_SCOPES.iter().copied()),
    );
    let env = setup(config).await;
    let forms = leak_scan::forms(SECRET, &[ID.to_owned()]);
    let form = |name: &str| {
        forms
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("no form {name}"))
            .text
            .clone()
    };
    let base64 = |s: String| base64::engine::general_purpose::STANDARD.encode(s);
    let echoed = [
        base64(format!("{ID}:{SECRET}")),
        base64(format!(
            "{}:{}",
            "pyng+app%2F1",
            form("percent-encoded (form-urlencoded)")
        )),
        SECRET.to_owned(),
        form("escaped (JSON, Debug)"),
        form("percent-encoded (form-urlencoded)"),
        form("percent-encoded (form-urlencoded), lower-case hex"),
        form("percent-encoded (RFC 3986)"),
    ];
    let description = echoed.join(" | ");
    // whole: the layer keeps the first 300 characters of a description
    assert!(description.chars().count() <= 300, "{}", description.len());
    let body = json!({"error": "invalid_client", "error_description": description});
    env.sandbox.fail_next(
        Provider::Pyng,
        1,
        Fault::json(StatusCode::UNAUTHORIZED, body.to_string()),
    );
    env.create_secret("pyng-echo", &[("client_id", ID), ("client_secret", SECRET)])
        .await;
    let op = env.start_operator(None);
    env.create_oac(json!({
        "metadata": {"name": "echo"},
        "spec": {"provider": "pyng", "credentialsSecretRef": {"name": "pyng-echo"},
                 "tokenUrl": env.sandbox.pyng().token_url,
                 "tokens": [{"secretName": "echo-token", "scopes": [PYNG_SCOPES[0]]}]}
    }))
    .await;
    let (failing, _) = env
        .wait_condition_reason("echo", "TokensIssued", "TokenRequestFailed")
        .await;
    let error = failing.status.unwrap().tokens[0]
        .last_error
        .clone()
        .unwrap();
    for form in &forms {
        assert!(
            !error.contains(&form.text),
            "the status shows the secret {}",
            form.name
        );
    }
    assert_eq!(error.matches("[redacted]").count(), echoed.len(), "{error}");
    env.wait_event("TokenRequestFailed").await;
    op.stop().await;
    env.assert_no_secret_anywhere(&[SECRET.to_owned()]).await;
}

/// A provider that says its token lives `1e12` seconds: the token counts as living one year
/// (stored, refreshed half-way), not as expiring now — no refetch loop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absurd_lifetime_is_clamped_to_a_year_and_not_refetched() {
    let env = setup(SandboxConfig::default()).await;
    env.sandbox.fail_next(
        Provider::Payu,
        1,
        Fault::json(
            StatusCode::OK,
            r#"{"access_token":"absurd-lifetime-token","token_type":"Bearer","expires_in":1e12}"#,
        ),
    );
    let op = env.start_operator(None);
    let before = Timestamp::now();
    payu(&env, "absurd", "absurd-token").await;
    env.wait_ready("absurd").await;
    let secret = env.token_secret("absurd-token").await;
    let expires: Timestamp = data(&secret, "expires_at").parse().unwrap();
    let year = SignedDuration::from_secs(365 * 86_400);
    assert!(
        expires >= before + year && expires <= Timestamp::now() + year,
        "expires at {expires}"
    );
    let refresh = annotation(&secret, "clientcreds.dev/refresh-at");
    assert!(refresh >= before + year / 3, "refresh at {refresh}");
    // A new object reconciled after it proves the controller has moved on; still one request
    // for "absurd".
    payu(&env, "after", "after-token").await;
    env.wait_ready("after").await;
    let absurd = env.sandbox.requests_for(Provider::Payu).len();
    assert_eq!(absurd, 2, "one request each for absurd and after");
    op.stop().await;
}
