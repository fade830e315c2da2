//! R2 through the layer (issue 13, item 6): token-endpoint faults against the provider emulator
//! in real time, with a `Bearer` layer over a [`ClientCredentialsSource`].
//!
//! Each fault is scripted for every token request after the first good token: 5xx, 429 with
//! `Retry-After`, an answer slower than the client timeout, a body that trickles in slower than
//! the timeout, a 300 KiB body, a redirect to another host, garbage bodies, and answers with
//! `expires_in` 1 and 1e12. Callers ask every 50 ms. While the first token is valid every caller
//! gets it, and the endpoint sees at most one request per step of the shared
//! [`RefreshPolicy`](clientcreds::RefreshPolicy) (computed from the policy itself, jitter off,
//! so a second request within a step fails the test).

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clientcreds::bearer::Bearer;
use clientcreds::cache::CacheConfig;
use clientcreds::source::ClientCredentialsSource;
use clientcreds::{ClientAuth, ClientCredentials, HttpClient, RefreshPolicy};
use clientcreds_sandbox::http::{HeaderName, HeaderValue, StatusCode};
use clientcreds_sandbox::{Fault, Provider, Sandbox, SandboxConfig};
use http::header::AUTHORIZATION;
use http::{Request, Response};
use http_body_util::Full;
use secrecy::SecretString;
use tower::{ServiceExt, service_fn};

/// The client timeout of every test here.
const TIMEOUT: Duration = Duration::from_millis(500);
/// How often a caller asks.
const CALLER_EVERY: Duration = Duration::from_millis(50);

/// The policy under test: the defaults, without jitter so that its steps are exact.
fn policy() -> RefreshPolicy {
    RefreshPolicy::default().jitter(0.0)
}

type Echo =
    fn(Request<Full<Bytes>>) -> std::future::Ready<Result<Response<HeaderValue>, Infallible>>;

/// A layer over Afterpay's token endpoint (tokens living `lifetime`) and the sandbox behind it.
struct Rig {
    sandbox: Sandbox,
    source: ClientCredentialsSource,
    layer: Bearer<tower::util::ServiceFn<Echo>>,
}

fn echo(
    request: Request<Full<Bytes>>,
) -> std::future::Ready<Result<Response<HeaderValue>, Infallible>> {
    let value = request.headers()[AUTHORIZATION].clone();
    std::future::ready(Ok(Response::new(value)))
}

impl Rig {
    async fn start(lifetime: Duration) -> Rig {
        Self::start_with(
            lifetime,
            HttpClient::builder().timeout(TIMEOUT).build().unwrap(),
        )
        .await
    }

    async fn start_with(lifetime: Duration, http: HttpClient) -> Rig {
        let config = SandboxConfig::default().token_lifetime(Provider::Afterpay, lifetime);
        let sandbox = Sandbox::start(config).await.unwrap();
        let afterpay = sandbox.afterpay();
        let credentials = ClientCredentials::builder(
            &afterpay.token_url,
            afterpay.client_id.clone(),
            SecretString::from(afterpay.client_secret.clone()),
        )
        .auth(ClientAuth::Basic)
        .build()
        .unwrap();
        let config = CacheConfig::default().policy(policy());
        let source = ClientCredentialsSource::with_config(credentials, http, config).unwrap();
        let echo: Echo = echo;
        Rig {
            sandbox,
            layer: Bearer::new(service_fn(echo), source.clone()),
            source,
        }
    }

    async fn send(&self) -> Result<HeaderValue, String> {
        let request = Request::get("http://api.test/")
            .body(Full::default())
            .unwrap();
        self.layer
            .clone()
            .oneshot(request)
            .await
            .map(Response::into_body)
            .map_err(|e| e.to_string())
    }

    fn token_requests(&self) -> usize {
        self.sandbox.requests_for(Provider::Afterpay).len()
    }

    /// A caller every 50 ms until `until` after `start`: how many got `expected`, and how many
    /// got something else or an error.
    async fn callers(
        &self,
        start: Instant,
        until: Duration,
        expected: &HeaderValue,
    ) -> (usize, Vec<String>) {
        let mut served = 0;
        let mut other = Vec::new();
        while start.elapsed() < until {
            match self.send().await {
                Ok(value) if value == *expected => served += 1,
                Ok(_) => other.push("another token".to_owned()),
                Err(e) => other.push(e),
            }
            tokio::time::sleep(CALLER_EVERY).await;
        }
        (served, other)
    }
}

/// The most token requests the policy allows in the first `window` of a token living
/// `lifetime` when every refresh attempt fails (`retryable`, `retry_after`): the refresh point,
/// then one attempt per backoff step, each step as short as the policy makes it (attempts that
/// take time only push the next one later).
fn allowed_attempts(
    lifetime: Duration,
    window: Duration,
    retryable: bool,
    retry_after: Option<Duration>,
) -> usize {
    let policy = policy();
    let mut at = policy.refresh_delay(lifetime, 0.0);
    let mut attempts = 0;
    while at < window {
        attempts += 1;
        let remaining = lifetime.checked_sub(at);
        at += policy.retry_delay(attempts as u32, remaining, retryable, retry_after, 0.0);
    }
    attempts
}

/// Gets a good token, scripts `fault` for every later token request, and has callers ask until
/// shortly before the token expires. Returns the token requests made under the fault.
async fn served_through(fault: Fault, lifetime: Duration) -> (Rig, usize) {
    let rig = Rig::start(lifetime).await;
    let start = Instant::now();
    let first = rig.send().await.unwrap();
    assert_eq!(rig.token_requests(), 1);
    rig.sandbox.fail_next(Provider::Afterpay, 1000, fault);
    let window = lifetime - Duration::from_millis(300);
    let (served, other) = rig.callers(start, window, &first).await;
    assert!(
        other.is_empty(),
        "callers got {other:?} while a token was valid"
    );
    assert!(served >= 10, "only {served} callers served");
    let under_fault = rig.token_requests() - 1;
    (rig, under_fault)
}

async fn assert_bounded(
    fault: Fault,
    lifetime: Duration,
    retryable: bool,
    retry_after: Option<Duration>,
) -> Rig {
    let window = lifetime - Duration::from_millis(300);
    let (rig, under_fault) = served_through(fault, lifetime).await;
    let allowed = allowed_attempts(lifetime, window, retryable, retry_after);
    assert!(
        under_fault >= 1,
        "the refresh under the fault was never tried"
    );
    assert!(
        under_fault <= allowed,
        "{under_fault} token requests under the fault, the policy allows {allowed}"
    );
    eprintln!(
        "R2-LAYER: {under_fault} requests under the fault in {window:?} (policy allows {allowed})"
    );
    rig
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_5xx_keeps_the_token_and_retries_once_per_backoff_step() {
    let fault = Fault::json(
        StatusCode::SERVICE_UNAVAILABLE,
        r#"{"error":"temporarily_unavailable"}"#,
    );
    assert_bounded(fault, Duration::from_secs(6), true, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_500_without_a_body_keeps_the_token() {
    assert_bounded(
        Fault::status(StatusCode::INTERNAL_SERVER_ERROR),
        Duration::from_secs(6),
        true,
        None,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_with_retry_after_waits_as_long_as_the_server_says() {
    // Refresh at 5 s; with the 5 s Retry-After the next attempt is at 10 s (expiry): one request
    // in the window. Without it the backoff would ask at 6 s and 8 s as well.
    let retry_after = Duration::from_secs(5);
    let fault = Fault::status(StatusCode::TOO_MANY_REQUESTS).with_header(
        HeaderName::from_static("retry-after"),
        HeaderValue::from_static("5"),
    );
    let lifetime = Duration::from_secs(10);
    let window = lifetime - Duration::from_millis(300);
    assert_eq!(
        allowed_attempts(lifetime, window, true, Some(retry_after)),
        1
    );
    assert!(allowed_attempts(lifetime, window, true, None) > 1);
    assert_bounded(fault, lifetime, true, Some(retry_after)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_slower_than_the_timeout_keeps_the_token() {
    assert_bounded(
        Fault::delay(TIMEOUT * 4),
        Duration::from_secs(6),
        true,
        None,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_trickles_in_slower_than_the_timeout_is_cut_off() {
    // A good answer, 4 bytes every 100 ms: about 2 s for the whole body, four times the timeout.
    let body = r#"{"access_token":"trickled","token_type":"Bearer","expires_in":3600}"#;
    let fault = Fault::json(StatusCode::OK, body).trickle(4, Duration::from_millis(100));
    let rig = assert_bounded(fault, Duration::from_secs(6), true, None).await;
    // The timeout cut the body: the trickled token was never served (checked by the callers),
    // and the failure is a timeout.
    let error = rig.source.cache().last_error().unwrap();
    assert!(
        error.to_string().contains("no complete response"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_300_kib_body_is_refused_by_the_size_limit() {
    let padding = "x".repeat(300 * 1024);
    let body = format!(
        r#"{{"access_token":"huge","token_type":"Bearer","expires_in":3600,"pad":"{padding}"}}"#
    );
    let rig = assert_bounded(
        Fault::json(StatusCode::OK, body),
        Duration::from_secs(6),
        true,
        None,
    )
    .await;
    let error = rig.source.cache().last_error().unwrap().to_string();
    assert!(error.contains("larger than 262144 bytes"), "{error}");
    assert!(
        !error.contains(&padding[..64]),
        "the body is echoed: {error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_to_another_host_is_not_followed() {
    // A second listener on another loopback address counts every connection it gets.
    let elsewhere = tokio::net::TcpListener::bind("127.0.0.2:0").await.unwrap();
    let address = elsewhere.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = elsewhere.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    let runs: Vec<_> = [
        StatusCode::MOVED_PERMANENTLY,
        StatusCode::FOUND,
        StatusCode::SEE_OTHER,
        StatusCode::TEMPORARY_REDIRECT,
        StatusCode::PERMANENT_REDIRECT,
    ]
    .into_iter()
    .map(|status| {
        let location =
            HeaderValue::from_str(&format!("http://{address}/afterpay/oauth2/token")).unwrap();
        let fault = Fault::redirect(status, location);
        tokio::spawn(assert_bounded(fault, Duration::from_secs(6), true, None))
    })
    .collect();
    for run in runs {
        run.await.unwrap();
    }
    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "a token request followed the redirect"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_bodies_keep_the_token_and_wait_as_for_a_rejection() {
    // A garbage answer is not retryable: the next attempt waits the rejected backoff, brought
    // down to the expired backoff (5 s) while the token is valid.
    let runs: Vec<_> = [
        "not json at all",
        "<html><body>502 Bad Gateway</body></html>",
        r#"{"access_token":5,"expires_in":"soon"}"#,
        r#"{"token_type":"Bearer"}"#,
        "\u{0}\u{ff}{{{{",
        "",
    ]
    .into_iter()
    .map(|body| {
        let fault = Fault::json(StatusCode::OK, body);
        tokio::spawn(assert_bounded(fault, Duration::from_secs(6), false, None))
    })
    .collect();
    for run in runs {
        run.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_that_live_one_second_are_asked_for_at_most_once_a_second() {
    let rig = Rig::start(Duration::from_secs(3600)).await;
    let body = r#"{"access_token":"one-second","token_type":"Bearer","expires_in":1}"#;
    rig.sandbox
        .fail_next(Provider::Afterpay, 1000, Fault::json(StatusCode::OK, body));
    let start = Instant::now();
    let window = Duration::from_secs(5);
    let expected = HeaderValue::from_static("Bearer one-second");
    let (served, other) = rig.callers(start, window, &expected).await;
    assert!(other.is_empty(), "callers got {other:?}");
    assert!(served >= 10, "only {served} callers served");
    let requests = rig.token_requests();
    let min_interval = Duration::from_secs(1);
    let allowed = (window.as_millis() / min_interval.as_millis()) as usize + 1;
    eprintln!("R2-LAYER: expires_in 1: {requests} requests in {window:?} (at most {allowed})");
    assert!(requests >= 2, "a one-second token was never refreshed");
    assert!(
        requests <= allowed,
        "{requests} token requests in {window:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lifetime_of_1e12_seconds_is_one_request_and_a_token_served() {
    let rig = Rig::start(Duration::from_secs(3600)).await;
    let body = r#"{"access_token":"forever","token_type":"Bearer","expires_in":1000000000000}"#;
    rig.sandbox
        .fail_next(Provider::Afterpay, 1000, Fault::json(StatusCode::OK, body));
    let start = Instant::now();
    let expected = HeaderValue::from_static("Bearer forever");
    let (served, other) = rig.callers(start, Duration::from_secs(3), &expected).await;
    assert!(other.is_empty(), "callers got {other:?}");
    assert!(served >= 10, "only {served} callers served");
    assert_eq!(rig.token_requests(), 1);
    let token = rig.source.cache().cached().unwrap();
    let lives = token
        .valid_until()
        .saturating_duration_since(Instant::now().into());
    assert!(
        lives <= clientcreds::refresh::MAX_LIFETIME,
        "a token believed to live {lives:?}"
    );
}
