//! R2 through the operator (issue 13, item 6): token-endpoint faults against the token endpoint
//! of an OAuthClient, on a real control plane.
//!
//! One operator, one OAuthClient (Pyng, 20 s tokens, refreshed half-way) per fault, each against
//! its own sandbox so that every fault has its own queue: 5xx, 429 + `Retry-After`, an answer
//! slower than the operator's client timeout, a body trickled in slower than that timeout, a
//! 300 KiB body, a redirect to another host, a garbage body. The fault is scripted for every
//! token request after the first good token. Until shortly before that token expires, its
//! Secret keeps it, the status shows the failure, and the endpoint sees at most as many requests
//! as the operator's refresh policy allows (computed from the policy, with the most jitter it can
//! draw); the redirect target sees no connection at all. Tokens that live one second are asked
//! for at most once a second.
#![allow(clippy::unwrap_used)]

mod operator_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use clientcreds_operator::refresh::policy;
use clientcreds_operator::run::Config;
use clientcreds_sandbox::http::{HeaderName, HeaderValue, StatusCode};
use clientcreds_sandbox::{Fault, PYNG_SCOPES, Provider, Sandbox, SandboxConfig};
use jiff::Timestamp;
use operator_support::*;
use serde_json::json;

/// The lifetime of the sandbox's Pyng tokens here.
const LIFETIME: Duration = Duration::from_secs(20);
/// The refresh point, as a fraction of the lifetime.
const FRACTION: f64 = 0.5;
/// The operator's timeout for one token request in these tests.
const TIMEOUT: Duration = Duration::from_secs(2);

/// The most token requests the operator's policy allows in the first `window` after a token
/// living `lifetime` was issued, when every refresh fails: the earliest refresh point, then one
/// attempt per backoff step, each as short as the policy can make it (the most jitter drawn;
/// attempts that take time only push the next one later).
fn allowed_attempts(
    lifetime: Duration,
    window: Duration,
    retryable: bool,
    retry_after: Option<Duration>,
) -> usize {
    let policy = policy(FRACTION);
    let most_jitter = 1.0 - f64::EPSILON;
    let mut at = policy.refresh_delay(lifetime, most_jitter);
    let mut attempts = 0;
    while at <= window {
        attempts += 1;
        let remaining = lifetime.checked_sub(at);
        at += policy.retry_delay(
            attempts as u32,
            remaining,
            retryable,
            retry_after,
            most_jitter,
        );
    }
    attempts
}

/// A listener on another loopback address that counts the connections it gets.
async fn counting_listener() -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.2:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    (address, connections)
}

/// One OAuthClient under one fault.
struct Case {
    name: &'static str,
    sandbox: Sandbox,
    fault: Fault,
    retryable: bool,
    retry_after: Option<Duration>,
}

impl Case {
    async fn new(
        name: &'static str,
        fault: Fault,
        retryable: bool,
        retry_after: Option<Duration>,
    ) -> Case {
        let config = SandboxConfig::default().token_lifetime(Provider::Pyng, LIFETIME);
        Case {
            name,
            sandbox: Sandbox::start(config).await.unwrap(),
            fault,
            retryable,
            retry_after,
        }
    }

    fn secret(&self) -> String {
        format!("{}-token", self.name)
    }

    async fn create(&self, env: &Env) {
        env.create_oac(json!({
            "metadata": {"name": self.name},
            "spec": {"provider": "pyng", "credentialsSecretRef": {"name": "pyng-credentials"},
                     "tokenUrl": self.sandbox.pyng().token_url,
                     "tokens": [{"secretName": self.secret(), "scopes": [PYNG_SCOPES[0]]}],
                     "refresh": {"atLifetimeFraction": FRACTION}}
        }))
        .await;
    }

    fn requests(&self) -> usize {
        self.sandbox.requests_for(Provider::Pyng).len()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_endpoint_faults_keep_the_stored_token_and_bound_the_requests() {
    let env = setup(SandboxConfig::default()).await;
    let (elsewhere, connections) = counting_listener().await;
    let location =
        HeaderValue::from_str(&format!("http://{elsewhere}/pyng/billing/oauth2/token")).unwrap();
    let good = r#"{"access_token":"trickled-token","token_type":"bearer","expires_in":900}"#;
    let padding = "x".repeat(300 * 1024);
    let huge = format!(r#"{{"access_token":"huge","expires_in":900,"pad":"{padding}"}}"#);
    let cases = vec![
        Case::new(
            "unavailable",
            Fault::json(
                StatusCode::SERVICE_UNAVAILABLE,
                r#"{"error":"temporarily_unavailable"}"#,
            ),
            true,
            None,
        )
        .await,
        Case::new(
            "limited",
            Fault::status(StatusCode::TOO_MANY_REQUESTS).with_header(
                HeaderName::from_static("retry-after"),
                HeaderValue::from_static("8"),
            ),
            true,
            Some(Duration::from_secs(8)),
        )
        .await,
        Case::new("slow", Fault::delay(TIMEOUT * 3), true, None).await,
        Case::new(
            "trickle",
            Fault::json(StatusCode::OK, good).trickle(4, Duration::from_millis(500)),
            true,
            None,
        )
        .await,
        Case::new("huge", Fault::json(StatusCode::OK, huge), true, None).await,
        Case::new(
            "redirect",
            Fault::redirect(StatusCode::TEMPORARY_REDIRECT, location),
            true,
            None,
        )
        .await,
        Case::new(
            "garbage",
            Fault::json(StatusCode::OK, "<html>not a token</html>"),
            false,
            None,
        )
        .await,
    ];
    let pyng = cases[0].sandbox.pyng();
    env.create_secret(
        "pyng-credentials",
        &[
            ("client_id", &pyng.client_id),
            ("client_secret", &pyng.client_secret),
        ],
    )
    .await;
    let config = Config {
        http: clientcreds::HttpClient::builder()
            .timeout(TIMEOUT)
            .build()
            .unwrap(),
        ..test_config()
    };
    let op = env.start_operator_with(config);
    for case in &cases {
        case.create(&env).await;
    }
    // The first token of each, then its fault for every later request.
    let mut firsts = Vec::new();
    for case in &cases {
        env.wait_ready(case.name).await;
        case.sandbox
            .fail_next(Provider::Pyng, 1000, case.fault.clone());
        assert_eq!(
            case.requests(),
            1,
            "{}: refreshed before its fault",
            case.name
        );
        let secret = env.token_secret(&case.secret()).await;
        let issued: Timestamp =
            secret.metadata.annotations.as_ref().unwrap()["clientcreds.dev/issued-at"]
                .parse()
                .unwrap();
        let expires: Timestamp = data(&secret, "expires_at").parse().unwrap();
        firsts.push((data(&secret, "access_token"), issued, expires));
    }

    let mut figures = Vec::new();
    for (case, (first, issued, expires)) in cases.iter().zip(&firsts) {
        // Shortly before this token expires (the cases expire in the order they were created).
        let check_at = *expires - jiff::SignedDuration::from_millis(1500);
        let wait =
            Duration::try_from(check_at.duration_since(Timestamp::now())).unwrap_or(Duration::ZERO);
        tokio::time::sleep(wait).await;
        let under_fault = case.requests() - 1;
        let window = Duration::try_from(Timestamp::now().duration_since(*issued)).unwrap();
        let secret = env.token_secret(&case.secret()).await;
        assert_eq!(
            &data(&secret, "access_token"),
            first,
            "{}: the stored token was replaced",
            case.name
        );
        let status = env.oacs().get(case.name).await.unwrap().status.unwrap();
        let error = status.tokens[0].last_error.clone();
        assert!(error.is_some(), "{}: no error in the status", case.name);
        let allowed = allowed_attempts(LIFETIME, window, case.retryable, case.retry_after);
        assert!(
            under_fault >= 1,
            "{}: the refresh was never tried",
            case.name
        );
        assert!(
            under_fault <= allowed,
            "{}: {under_fault} token requests in {window:?}, the policy allows {allowed}",
            case.name
        );
        figures.push(format!(
            "{}: {under_fault} requests in {:.1} s (policy allows {allowed}); status: {}",
            case.name,
            window.as_secs_f64(),
            error.unwrap()
        ));
    }
    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "a token request followed the redirect"
    );
    for figure in &figures {
        eprintln!("R2-OPERATOR: {figure}");
    }
    op.stop().await;
    env.assert_no_secret_anywhere(&[pyng.client_secret.clone(), padding[..64].to_owned()])
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_that_live_one_second_are_asked_for_at_most_once_a_second() {
    let env = setup(SandboxConfig::default()).await;
    let pyng = env.sandbox.pyng();
    env.create_secret(
        "pyng-credentials",
        &[
            ("client_id", &pyng.client_id),
            ("client_secret", &pyng.client_secret),
        ],
    )
    .await;
    env.sandbox.fail_next(
        Provider::Pyng,
        1000,
        Fault::json(
            StatusCode::OK,
            r#"{"access_token":"one-second-token","token_type":"bearer","expires_in":1}"#,
        ),
    );
    let op = env.start_operator(None);
    env.create_oac(json!({
        "metadata": {"name": "second"},
        "spec": {"provider": "pyng", "credentialsSecretRef": {"name": "pyng-credentials"},
                 "tokenUrl": pyng.token_url,
                 "tokens": [{"secretName": "second-token", "scopes": [PYNG_SCOPES[0]]}]}
    }))
    .await;
    env.wait_condition("second", "TokensIssued", "True").await;
    let start = std::time::Instant::now();
    let before = env.sandbox.requests_for(Provider::Pyng).len();
    let window = Duration::from_secs(10);
    tokio::time::sleep(window).await;
    let requests = env.sandbox.requests_for(Provider::Pyng).len() - before;
    let elapsed = start.elapsed();
    let allowed = elapsed.as_secs() as usize + 1;
    eprintln!("R2-OPERATOR: expires_in 1: {requests} requests in {elapsed:?} (at most {allowed})");
    assert!(requests >= 2, "a one-second token was never refreshed");
    assert!(
        requests <= allowed,
        "{requests} token requests in {elapsed:?}"
    );
    op.stop().await;
}

/// Which server R3 restarts.
#[derive(Clone, Copy, Debug)]
enum Restart {
    ApiServer,
    Etcd,
}

/// The lifetime of the tokens in the R3 runs: long enough that the first token outlives a
/// restart that begins just before its refresh point.
const R3_LIFETIME: Duration = Duration::from_secs(40);
/// How long the restarted server stays down (its start-up comes on top).
const R3_DOWN: Duration = Duration::from_secs(5);

fn annotation(secret: &k8s_openapi::api::core::v1::Secret, key: &str) -> Timestamp {
    secret.metadata.annotations.as_ref().unwrap()[key]
        .parse()
        .unwrap()
}

/// The two token Secrets of the R3 runs: Pyng's and Azupay's.
const R3_SECRETS: [&str; 2] = ["pyng-token", "azupay-token"];

/// The first token of a token Secret and its refresh time.
type FirstToken = (String, Timestamp);

/// The R3 set-up: a Pyng and an Azupay OAuthClient (enabled once) with tokens living
/// `lifetime`, refreshed half-way, one token Secret each ([`R3_SECRETS`]); returns once both
/// are Ready, with the first token of each.
async fn two_clients_ready(lifetime: Duration) -> (Env, Operator, Vec<FirstToken>) {
    let config = SandboxConfig::default()
        .token_lifetime(Provider::Pyng, lifetime)
        .token_lifetime(Provider::Azupay, lifetime);
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
        "metadata": {"name": "pyng"},
        "spec": {"provider": "pyng", "credentialsSecretRef": {"name": "pyng-credentials"},
                 "tokenUrl": pyng.token_url,
                 "tokens": [{"secretName": "pyng-token", "scopes": [PYNG_SCOPES[0]]}],
                 "refresh": {"atLifetimeFraction": FRACTION}}
    }))
    .await;
    env.create_azupay(
        "payments",
        json!([{"secretName": "azupay-token", "scopes": ["RestAPI/GET:balance"]}]),
    )
    .await;
    let op = env.start_operator(None);
    env.wait_ready("pyng").await;
    env.wait_ready("payments").await;
    let mut firsts = Vec::new();
    for name in R3_SECRETS {
        let secret = env.token_secret(name).await;
        firsts.push((
            data(&secret, "access_token"),
            annotation(&secret, "clientcreds.dev/refresh-at"),
        ));
    }
    (env, op, firsts)
}

/// R3: `server` is killed while the first refresh of two token Secrets (an Azupay OAuthClient,
/// enabled once, and a Pyng one) is in flight, and started again after [`R3_DOWN`]: the token
/// arrives while the server is down. Afterwards every token Secret holds a new, unexpired token,
/// Azupay was enabled once, and each client got exactly one more token request (the refresh,
/// whose token is kept while writes fail). Prints how long after the control plane was back
/// every token Secret was valid and refreshed.
async fn restart_during_a_refresh(server: Restart) {
    let (mut env, op, firsts) = two_clients_ready(R3_LIFETIME).await;
    let pyng = env.sandbox.pyng();
    let secrets = R3_SECRETS;
    let azupay_client = clientcreds_sandbox::AZUPAY_OAUTH2_CLIENT_ID;
    let issued = || {
        (
            env.sandbox.tokens_issued(Provider::Pyng, &pyng.client_id),
            env.sandbox.tokens_issued(Provider::Azupay, azupay_client),
        )
    };
    assert_eq!(issued(), (1, 1));

    // The first refresh is answered 3 s late; the server goes down as soon as it reaches the
    // provider, so its answer arrives while the server is down.
    let token_requests = |provider: Provider| {
        env.sandbox
            .requests_for(provider)
            .iter()
            .filter(|r| r.path.ends_with("/token"))
            .count()
    };
    let refresh = firsts.iter().map(|(_, at)| *at).min().unwrap();
    let first_to_refresh = firsts.iter().position(|(_, at)| *at == refresh).unwrap();
    let provider = [Provider::Pyng, Provider::Azupay][first_to_refresh];
    env.sandbox
        .fail_next(provider, 1, Fault::delay(Duration::from_secs(3)));
    clientcreds_e2e::eventually("the first refresh in flight", EVENTUALLY, || {
        let in_flight = token_requests(provider) > 1;
        async move { in_flight.then_some(()) }
    })
    .await;
    let down = std::time::Instant::now();
    let down_at = Timestamp::now();
    match server {
        Restart::ApiServer => env.cp.restart_apiserver(R3_DOWN).await.unwrap(),
        Restart::Etcd => env.cp.restart_etcd(R3_DOWN).await.unwrap(),
    }
    let back = std::time::Instant::now();
    let back_at = Timestamp::now();
    let outage = back - down;
    let secrets_api = env.secrets();
    let tokens =
        clientcreds_e2e::eventually("every token Secret refreshed and valid", EVENTUALLY, || {
            let secrets_api = secrets_api.clone();
            let firsts = firsts.clone();
            async move {
                let mut tokens = Vec::new();
                for (name, (first, _)) in secrets.iter().zip(&firsts) {
                    let secret = secrets_api.get(name).await.ok()?;
                    let token = data(&secret, "access_token");
                    let expires: Timestamp = data(&secret, "expires_at").parse().ok()?;
                    if token == *first || expires <= Timestamp::now() {
                        return None;
                    }
                    tokens.push(token);
                }
                Some(tokens)
            }
        })
        .await;
    let recovered = back.elapsed();
    // The first refresh fell into the outage: sent before it (the token's issued-at is when the
    // request was sent), answered 3 s later while the server was down.
    let reissued = annotation(
        &env.token_secret(secrets[first_to_refresh]).await,
        "clientcreds.dev/issued-at",
    );
    let answered = reissued + jiff::SignedDuration::from_secs(3);
    assert!(
        reissued < down_at && down_at < answered && answered < back_at,
        "{}: asked at {reissued}, the server was down from {down_at} to {back_at}",
        secrets[first_to_refresh]
    );
    let (pyng_requests, azupay_requests) = issued();
    eprintln!(
        "R3 {server:?}: down {outage:?} (killed, {R3_DOWN:?}, start-up); every token Secret valid and \
         refreshed {recovered:?} after it was back; token requests pyng {} azupay {}; enable calls {}",
        pyng_requests - 1,
        azupay_requests - 1,
        env.sandbox
            .enable_calls(clientcreds_sandbox::AZUPAY_CLIENT_ID)
    );
    assert_eq!(
        env.sandbox
            .enable_calls(clientcreds_sandbox::AZUPAY_CLIENT_ID),
        1,
        "Azupay enabled twice"
    );
    let credentials = env.token_secret("azupay-oauth2-credentials").await;
    assert_eq!(
        data(&credentials, "client_secret"),
        clientcreds_sandbox::AZUPAY_OAUTH2_CLIENT_SECRET
    );
    // One refresh each: the token that arrived during the outage is kept and written, not
    // asked for again.
    assert_eq!(
        (pyng_requests, azupay_requests),
        (2, 2),
        "token requests (pyng, azupay), the first ones included"
    );
    assert_eq!(call_protected(&pyng.resource_url, &tokens[0]).await, 200);
    assert_eq!(
        call_protected(&env.sandbox.azupay().resource_url, &tokens[1]).await,
        200
    );
    op.stop().await;
    env.assert_no_secret_anywhere(&[
        firsts[0].0.clone(),
        firsts[1].0.clone(),
        tokens[0].clone(),
        tokens[1].clone(),
        pyng.client_secret.clone(),
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apiserver_restart_during_a_refresh_leaves_valid_tokens_and_one_enable() {
    restart_during_a_refresh(Restart::ApiServer).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_etcd_restart_during_a_refresh_leaves_valid_tokens_and_one_enable() {
    restart_during_a_refresh(Restart::Etcd).await;
}

/// The token lifetime of the combined R3 case: the token issued at the refresh point (half-way)
/// while writes are refused must not reach its own refresh point before the policy is lifted
/// (the refused refresh, the restart and 3 s more take about 15 s), or a second refresh
/// request is due — as the policy wants.
const R3_DENIED_LIFETIME: Duration = Duration::from_secs(60);

/// R3, the combined case: the token Secrets' writes are refused by a ValidatingAdmissionPolicy
/// from before their first refresh, the kube-apiserver is restarted ([`R3_DOWN`]) while they
/// are refused, and the policy is lifted a few seconds after it is back. Every token Secret
/// then holds a new, unexpired token (the old one never expired meanwhile); each client made
/// exactly one refresh request (the token issued while writes were refused is kept and written,
/// not asked for again, across the restart); Azupay was enabled once and its secret is intact.
/// Prints how long after the policy was lifted every token Secret was refreshed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_writes_denied_across_an_apiserver_restart_leave_valid_tokens_and_one_enable() {
    let (mut env, op, firsts) = two_clients_ready(R3_DENIED_LIFETIME).await;
    let pyng = env.sandbox.pyng();
    let azupay_client = clientcreds_sandbox::AZUPAY_OAUTH2_CLIENT_ID;
    let issued = || {
        (
            env.sandbox.tokens_issued(Provider::Pyng, &pyng.client_id),
            env.sandbox.tokens_issued(Provider::Azupay, azupay_client),
        )
    };
    assert_eq!(issued(), (1, 1));
    let probe = || json!({"metadata": {"name": "probe-token"}});
    env.deny_secret_writes(
        "deny-token-secrets",
        "!object.metadata.name.endsWith('-token')",
        probe(),
    )
    .await;
    // both refreshes happen (at about half of the lifetime) and their writes are refused; the
    // first tokens still serve
    for name in ["pyng", "payments"] {
        env.wait_condition_reason(name, "TokensRefreshed", "TokenWriteFailed")
            .await;
    }
    assert_eq!(issued(), (2, 2), "one refresh request each");
    let down = std::time::Instant::now();
    env.cp.restart_apiserver(R3_DOWN).await.unwrap();
    let outage = down.elapsed();
    // the policy is in force again after the restart (it lives in etcd): still refused
    let secrets_api = env.secrets();
    let probe_secret: k8s_openapi::api::core::v1::Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "probe-token"}
    }))
    .unwrap();
    clientcreds_e2e::eventually("the policy in force after the restart", EVENTUALLY, || {
        let (api, probe) = (secrets_api.clone(), probe_secret.clone());
        async move {
            match api.create(&Default::default(), &probe).await {
                Ok(_) => {
                    let _ = api.delete("probe-token", &Default::default()).await;
                    None
                }
                Err(kube::Error::Api(e)) if e.code == 422 || e.code == 403 => Some(()),
                Err(_) => None,
            }
        }
    })
    .await;
    // a few more refused retries after the restart, then the policy goes
    tokio::time::sleep(Duration::from_secs(3)).await;
    let lifted = std::time::Instant::now();
    env.allow_secret_writes("deny-token-secrets", probe()).await;
    let tokens =
        clientcreds_e2e::eventually("every token Secret refreshed and valid", EVENTUALLY, || {
            let secrets_api = secrets_api.clone();
            let firsts = firsts.clone();
            async move {
                let mut tokens = Vec::new();
                for (name, (first, _)) in R3_SECRETS.iter().zip(&firsts) {
                    let secret = secrets_api.get(name).await.ok()?;
                    let token = data(&secret, "access_token");
                    let expires: Timestamp = data(&secret, "expires_at").parse().ok()?;
                    assert!(expires > Timestamp::now(), "{name} holds an expired token");
                    if token == *first {
                        return None;
                    }
                    tokens.push(token);
                }
                Some(tokens)
            }
        })
        .await;
    let recovered = lifted.elapsed();
    let (pyng_requests, azupay_requests) = issued();
    let enables = env
        .sandbox
        .enable_calls(clientcreds_sandbox::AZUPAY_CLIENT_ID);
    eprintln!(
        "R3 denied+ApiServer: writes refused from before the refresh, apiserver down {outage:?}, \
         policy lifted 3 s after it was back; every token Secret valid and refreshed {recovered:?} \
         after the policy was lifted; token requests pyng {} azupay {}; enable calls {enables}",
        pyng_requests - 1,
        azupay_requests - 1,
    );
    assert_eq!(enables, 1, "Azupay enabled twice");
    let credentials = env.token_secret("azupay-oauth2-credentials").await;
    assert_eq!(
        data(&credentials, "client_secret"),
        clientcreds_sandbox::AZUPAY_OAUTH2_CLIENT_SECRET
    );
    // the token issued while writes were refused was kept across the restart and written
    assert_eq!(
        (pyng_requests, azupay_requests),
        (2, 2),
        "token requests (pyng, azupay), the first ones included"
    );
    assert_eq!(call_protected(&pyng.resource_url, &tokens[0]).await, 200);
    assert_eq!(
        call_protected(&env.sandbox.azupay().resource_url, &tokens[1]).await,
        200
    );
    op.stop().await;
    env.assert_no_secret_anywhere(&[
        firsts[0].0.clone(),
        firsts[1].0.clone(),
        tokens[0].clone(),
        tokens[1].clone(),
        pyng.client_secret.clone(),
    ])
    .await;
}
