//! The Bearer layer: hot and slow paths, token errors, the 401 policy, the host allow-list,
//! and no token in Debug or errors.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use clientcreds::bearer::{Bearer, BearerError, BearerLayer, InvalidateToken, ReplayOnce};
use clientcreds::cache::TokenCache;
use clientcreds::{Error, OAuthErrorCode, Token};
use futures::FutureExt;
use http::header::AUTHORIZATION;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tokio::sync::Semaphore;
use tower::{Service, ServiceBuilder, ServiceExt, service_fn};

/// A cache whose n-th token request returns `secret-token-n`, counting requests.
fn counting_cache() -> (TokenCache, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let cache = TokenCache::new(move || {
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        async move {
            Token::new(
                format!("secret-token-{n}"),
                "Bearer",
                Duration::from_secs(3600),
                None,
            )
        }
    });
    (cache, calls)
}

type Seen = Arc<Mutex<Vec<Option<String>>>>;

/// An inner service that records the Authorization header it got and answers 401 when
/// `reject(header)` says so. The response body echoes the request body.
fn recording(
    reject: fn(Option<&str>) -> bool,
) -> (
    impl Service<
        Request<Full<Bytes>>,
        Response = Response<Full<Bytes>>,
        Error = Infallible,
        Future: Send,
    > + Clone
    + Send,
    Seen,
) {
    let seen: Seen = Arc::default();
    let log = Arc::clone(&seen);
    let svc = service_fn(move |req: Request<Full<Bytes>>| {
        let log = Arc::clone(&log);
        async move {
            let auth = req.headers().get(AUTHORIZATION).map(|v| {
                assert!(
                    v.is_sensitive(),
                    "the Authorization header must be marked sensitive"
                );
                v.to_str().unwrap().to_owned()
            });
            log.lock().unwrap().push(auth.clone());
            let body = req.into_body().collect().await.unwrap().to_bytes();
            let mut response = Response::new(Full::new(body));
            if reject(auth.as_deref()) {
                *response.status_mut() = StatusCode::UNAUTHORIZED;
            }
            Ok::<_, Infallible>(response)
        }
    });
    (svc, seen)
}

fn get(uri: &str) -> Request<Full<Bytes>> {
    Request::get(uri)
        .body(Full::new(Bytes::from_static(b"payload")))
        .unwrap()
}

fn never(_: Option<&str>) -> bool {
    false
}

#[tokio::test]
async fn hot_path_inserts_a_sensitive_header() {
    let (cache, calls) = counting_cache();
    cache.token().await.unwrap();
    let (inner, seen) = recording(never);
    let svc = ServiceBuilder::new()
        .layer(BearerLayer::new(cache))
        .service(inner);
    for _ in 0..3 {
        let response = svc.clone().oneshot(get("http://api.test/x")).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_eq!(
        *seen.lock().unwrap(),
        vec![Some("Bearer secret-token-1".to_owned()); 3]
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn slow_path_sends_the_request_only_once_the_token_is_there() {
    let gate = Arc::new(Semaphore::new(0));
    let fetch_gate = Arc::clone(&gate);
    let cache = TokenCache::new(move || {
        let gate = Arc::clone(&fetch_gate);
        async move {
            let _permit = gate.acquire().await.unwrap();
            Token::new(
                "secret-token-slow",
                "Bearer",
                Duration::from_secs(3600),
                None,
            )
        }
    });
    let (mock, mut handle) =
        tower_test::mock::pair::<Request<Full<Bytes>>, Response<Full<Bytes>>>();
    let mut svc = Bearer::new(mock, cache);
    handle.allow(1);
    let call = svc.ready().await.unwrap().call(get("http://api.test/x"));
    let response = tokio::spawn(call);
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert!(
        handle.next_request().now_or_never().is_none(),
        "no request before the token"
    );
    gate.add_permits(1);
    let (request, respond) = handle.next_request().await.unwrap();
    assert_eq!(request.headers()[AUTHORIZATION], "Bearer secret-token-slow");
    respond.send_response(Response::new(Full::default()));
    assert_eq!(response.await.unwrap().unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn a_token_error_is_typed_and_no_request_is_sent() {
    let cache = TokenCache::new(|| async {
        Err(Error::TokenEndpoint {
            status: StatusCode::UNAUTHORIZED,
            code: Some(OAuthErrorCode::InvalidClient),
            description: Some("Bad client credentials".into()),
            retry_after: None,
        })
    });
    let (mock, mut handle) =
        tower_test::mock::pair::<Request<Full<Bytes>>, Response<Full<Bytes>>>();
    handle.allow(10);
    let svc = Bearer::new(mock, cache);
    let error = svc.oneshot(get("http://api.test/x")).await.unwrap_err();
    match &error {
        BearerError::Token(e) => assert_eq!(e.oauth_code(), Some(&OAuthErrorCode::InvalidClient)),
        BearerError::Service(e) => panic!("expected a token error, got {e}"),
    }
    assert!(error.to_string().contains("request not sent"), "{error}");
    let next = handle.next_request().now_or_never();
    assert!(
        matches!(next, None | Some(None)),
        "nothing reached the inner service"
    );
}

#[tokio::test]
async fn a_401_invalidates_the_token_and_replays_once() {
    let (cache, calls) = counting_cache();
    let (inner, seen) = recording(|auth| auth == Some("Bearer secret-token-1"));
    let svc = ServiceBuilder::new()
        .layer(BearerLayer::new(cache.clone()).on_unauthorized(ReplayOnce))
        .service(inner);
    let response = svc.clone().oneshot(get("http://api.test/x")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.into_body().collect().await.unwrap().to_bytes(),
        "payload",
        "same body replayed"
    );
    assert_eq!(
        *seen.lock().unwrap(),
        vec![
            Some("Bearer secret-token-1".to_owned()),
            Some("Bearer secret-token-2".to_owned())
        ]
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    // The new token stays.
    svc.oneshot(get("http://api.test/x")).await.unwrap();
    assert_eq!(
        seen.lock().unwrap()[2].as_deref(),
        Some("Bearer secret-token-2")
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_request_is_replayed_at_most_once() {
    let (cache, calls) = counting_cache();
    let (inner, seen) = recording(|_| true);
    let svc = Bearer::new(inner, cache).on_unauthorized(ReplayOnce);
    let response = svc.clone().oneshot(get("http://api.test/x")).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(seen.lock().unwrap().len(), 2);
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    // An API that refuses every token: within the invalidation cooldown the next 401 neither
    // drops the new token nor replays with it — no token request per API request.
    for _ in 0..5 {
        let response = svc.clone().oneshot(get("http://api.test/x")).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(seen.lock().unwrap().len(), 7);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn invalidate_without_replay_returns_the_401_and_the_next_request_gets_a_new_token() {
    let (cache, calls) = counting_cache();
    let (inner, seen) = recording(|auth| auth == Some("Bearer secret-token-1"));
    let svc = Bearer::new(inner, cache).on_unauthorized(InvalidateToken);
    let first = svc.clone().oneshot(get("http://api.test/x")).await.unwrap();
    assert_eq!(first.status(), StatusCode::UNAUTHORIZED);
    let second = svc.oneshot(get("http://api.test/x")).await.unwrap();
    assert_eq!(second.status(), StatusCode::OK);
    assert_eq!(
        seen.lock().unwrap()[1].as_deref(),
        Some("Bearer secret-token-2")
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn by_default_a_401_passes_through_and_keeps_the_token() {
    let (cache, calls) = counting_cache();
    let (inner, seen) = recording(|_| true);
    let svc = Bearer::new(inner, cache);
    for _ in 0..2 {
        let response = svc.clone().oneshot(get("http://api.test/x")).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(seen.lock().unwrap().len(), 2);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn the_token_only_goes_to_allowed_hosts() {
    let (cache, calls) = counting_cache();
    let (inner, seen) = recording(never);
    let layer = BearerLayer::new(cache)
        .allow_hosts(["http://api.test", "localhost:8443", "secure.test"])
        .unwrap();
    let svc = ServiceBuilder::new().layer(layer).service(inner);
    svc.clone()
        .oneshot(get("http://elsewhere.test/x"))
        .await
        .unwrap();
    svc.clone()
        .oneshot(get("https://localhost:9999/x"))
        .await
        .unwrap();
    // https only, unless the entry says http:// (or the host is loopback)
    svc.clone()
        .oneshot(get("http://secure.test/x"))
        .await
        .unwrap();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "no token requested for other hosts"
    );
    svc.clone().oneshot(get("http://API.test/x")).await.unwrap();
    svc.clone()
        .oneshot(get("https://localhost:8443/x"))
        .await
        .unwrap();
    let relative = Request::get("/x")
        .header("host", "api.test")
        .body(Full::default())
        .unwrap();
    svc.oneshot(relative).await.unwrap();
    let token = Some("Bearer secret-token-1".to_owned());
    assert_eq!(
        *seen.lock().unwrap(),
        vec![None, None, None, token.clone(), token.clone(), token]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_concurrent_first_requests_through_the_layer_make_one_token_request() {
    let gate = Arc::new(Semaphore::new(0));
    let fetch_gate = Arc::clone(&gate);
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let cache = TokenCache::new(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        let gate = Arc::clone(&fetch_gate);
        async move {
            let _permit = gate.acquire().await.unwrap();
            Token::new(
                "secret-token-once",
                "Bearer",
                Duration::from_secs(3600),
                None,
            )
        }
    });
    let (inner, seen) = recording(never);
    let svc = Bearer::new(inner, cache);
    let started = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..10_000 {
        let mut svc = svc.clone();
        let started = Arc::clone(&started);
        tasks.push(tokio::spawn(async move {
            let fut = svc.ready().await.unwrap().call(get("http://api.test/x"));
            started.fetch_add(1, Ordering::SeqCst);
            fut.await
        }));
    }
    while started.load(Ordering::SeqCst) < 10_000 {
        tokio::task::yield_now().await;
    }
    gate.add_permits(1);
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap().status(), StatusCode::OK);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 10_000);
    assert!(
        seen.iter()
            .all(|s| s.as_deref() == Some("Bearer secret-token-once"))
    );
}

#[tokio::test]
async fn no_token_in_debug_or_errors() {
    let (cache, _) = counting_cache();
    cache.token().await.unwrap();
    let layer = BearerLayer::new(cache.clone()).on_unauthorized(ReplayOnce);
    let mut svc = Bearer::new(
        service_fn(|_: Request<Full<Bytes>>| async {
            Ok::<Response<Full<Bytes>>, Infallible>(Response::new(Full::default()))
        }),
        cache.clone(),
    )
    .on_unauthorized(ReplayOnce);
    let future = svc.ready().await.unwrap().call(get("http://api.test/x"));
    let error: BearerError<Infallible> = BearerError::Token(Error::InvalidToken("bad".into()));
    let text = format!("{layer:?} {svc:?} {future:?} {error} {error:?} {cache:?}");
    assert!(
        text.contains("BearerLayer") && text.contains("Bearer {"),
        "{text}"
    );
    assert!(!text.contains("secret-token"), "{text}");
    future.await.unwrap();
}
