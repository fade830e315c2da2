//! The layer against the provider emulator: real token requests over HTTP.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use clientcreds::bearer::{Bearer, BearerLayer, ReplayOnce};
use clientcreds::source::{ClientCredentialsSource, TokenSource};
use clientcreds::{ClientAuth, ClientCredentials, HttpClient};
use clientcreds_sandbox::{Provider, ProviderEndpoints, Sandbox, SandboxConfig};
use http::header::AUTHORIZATION;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use secrecy::SecretString;
use tower::{Service, ServiceBuilder, ServiceExt, service_fn};

fn afterpay_source(afterpay: &ProviderEndpoints) -> ClientCredentialsSource {
    let credentials = ClientCredentials::builder(
        &afterpay.token_url,
        afterpay.client_id.clone(),
        SecretString::from(afterpay.client_secret.clone()),
    )
    .auth(ClientAuth::Basic)
    .build()
    .unwrap();
    ClientCredentialsSource::new(credentials, HttpClient::new())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_concurrent_first_requests_make_one_request_to_the_sandbox() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let afterpay = sandbox.afterpay();
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&sent);
    let inner = service_fn(move |req: Request<Full<Bytes>>| {
        assert!(req.headers().contains_key(AUTHORIZATION));
        counter.fetch_add(1, Ordering::SeqCst);
        async { Ok::<_, Infallible>(Response::new(Full::<Bytes>::default())) }
    });
    let svc = Bearer::new(inner, afterpay_source(&afterpay));
    let tasks: Vec<_> = (0..10_000)
        .map(|_| {
            let svc = svc.clone();
            tokio::spawn(
                svc.oneshot(
                    Request::get("http://api.test/")
                        .body(Full::default())
                        .unwrap(),
                ),
            )
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap().status(), StatusCode::OK);
    }
    assert_eq!(sent.load(Ordering::SeqCst), 10_000);
    assert_eq!(
        sandbox.tokens_issued(Provider::Afterpay, &afterpay.client_id),
        1
    );
    assert_eq!(
        sandbox.requests_for(Provider::Afterpay).len(),
        1,
        "one token request on the wire"
    );
}

#[tokio::test]
async fn a_revoked_token_is_invalidated_and_the_call_replayed_once() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let afterpay = sandbox.afterpay();
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut api = ServiceBuilder::new()
        .layer(BearerLayer::new(afterpay_source(&afterpay)).on_unauthorized(ReplayOnce))
        .service(client);
    let get = || {
        Request::get(&afterpay.resource_url)
            .body(Full::default())
            .unwrap()
    };

    let first = api.ready().await.unwrap().call(get()).await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let body = first.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&body).contains("afterpay"));

    sandbox.revoke_all_tokens();
    let second = api.ready().await.unwrap().call(get()).await.unwrap();
    assert_eq!(second.status(), StatusCode::OK, "replayed with a new token");
    assert_eq!(
        sandbox.tokens_issued(Provider::Afterpay, &afterpay.client_id),
        2
    );

    // Without a replay policy the 401 would have reached the caller: check the sandbox did
    // refuse the old token (two protected calls for the second request).
    let protected = sandbox
        .requests_for(Provider::Afterpay)
        .iter()
        .filter(|r| !r.path.contains("token"))
        .count();
    assert_eq!(protected, 3);
}

#[tokio::test]
async fn payu_rate_limit_retry_after_is_honoured_through_the_layer() {
    let config = SandboxConfig::default().payu_rate_limit(1, Duration::from_secs(60));
    let sandbox = Sandbox::start(config).await.unwrap();
    let payu = sandbox.payu();
    let credentials = ClientCredentials::builder(
        &payu.token_url,
        payu.client_id.clone(),
        SecretString::from(payu.client_secret.clone()),
    )
    .auth(ClientAuth::Post)
    .scope("read_payment_links")
    .build()
    .unwrap();
    let source = ClientCredentialsSource::new(credentials, HttpClient::new());
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut api = ServiceBuilder::new()
        .layer(BearerLayer::new(source.clone()).on_unauthorized(ReplayOnce))
        .service(client);
    let get = || {
        Request::get(&payu.resource_url)
            .body(Full::default())
            .unwrap()
    };
    let token_requests = || {
        sandbox
            .requests_for(Provider::Payu)
            .iter()
            .filter(|r| r.path.ends_with("/oauth/token"))
            .count()
    };

    let ok = api.ready().await.unwrap().call(get()).await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    // The token is revoked; the 401 invalidates it and the new token request hits the limit.
    sandbox.revoke_all_tokens();
    let error = api.ready().await.unwrap().call(get()).await.unwrap_err();
    let token_error = error
        .token_error()
        .expect("a typed token error, not a request without a token");
    assert_eq!(
        token_error.oauth_code(),
        Some(&clientcreds::OAuthErrorCode::RateLimitExceeded)
    );
    let retry_after = token_error.retry_after().expect("PayU's retry_after");
    assert!(retry_after >= Duration::from_secs(1), "{retry_after:?}");
    assert_eq!(token_requests(), 2);

    // Within retry_after, callers get the error at once: nothing more on the wire.
    for _ in 0..20 {
        let error = api.ready().await.unwrap().call(get()).await.unwrap_err();
        assert!(error.token_error().is_some());
    }
    assert_eq!(token_requests(), 2);
    assert!(source.cache().last_error().is_some());
}

/// One absurd `Retry-After` answer through a fresh source: the typed error with the wait capped
/// at an hour, nothing more on the wire within that hour (paused clock), a token after it.
async fn absurd_retry_after(
    sandbox: &Sandbox,
    fault: clientcreds_sandbox::Fault,
) -> clientcreds::Error {
    let afterpay = sandbox.afterpay();
    let token_requests = || sandbox.requests_for(Provider::Afterpay).len();
    sandbox.clear_requests();
    sandbox.fail_next(Provider::Afterpay, 1, fault);
    let source = afterpay_source(&afterpay);
    let error = source.token().await.unwrap_err();
    assert_eq!(
        error.status(),
        Some(StatusCode::TOO_MANY_REQUESTS),
        "{error}"
    );
    assert_eq!(
        error.retry_after(),
        Some(clientcreds::MAX_RETRY_AFTER),
        "{error}"
    );
    assert_eq!(token_requests(), 1);

    // Only the cache runs now (no I/O): pause the clock and move it close to the hour.
    tokio::time::pause();
    for _ in 0..59 {
        tokio::time::advance(Duration::from_secs(60)).await;
        let again = source.token().await.unwrap_err();
        assert_eq!(again.retry_after(), Some(clientcreds::MAX_RETRY_AFTER));
        assert!(source.cached().is_none());
    }
    tokio::time::advance(Duration::from_secs(59)).await;
    assert!(source.token().await.is_err());
    assert_eq!(
        token_requests(),
        1,
        "no token request before the clamped time"
    );
    tokio::time::advance(Duration::from_secs(2)).await;
    tokio::time::resume();
    source.token().await.unwrap();
    assert_eq!(token_requests(), 2);
    error
}

#[tokio::test]
async fn an_absurd_retry_after_header_or_body_is_clamped_through_the_cache() {
    use clientcreds_sandbox::Fault;
    use http::{HeaderName, HeaderValue};

    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    absurd_retry_after(
        &sandbox,
        Fault::status(StatusCode::TOO_MANY_REQUESTS).with_header(
            HeaderName::from_static("retry-after"),
            HeaderValue::from_static("18446744073709551615"),
        ),
    )
    .await;
    let error = absurd_retry_after(
        &sandbox,
        Fault::json(
            StatusCode::TOO_MANY_REQUESTS,
            r#"{"error":"rate_limit_exceeded","error_description":"slow down","retry_after":1e19}"#,
        ),
    )
    .await;
    assert_eq!(
        error.oauth_code(),
        Some(&clientcreds::OAuthErrorCode::RateLimitExceeded)
    );
}
