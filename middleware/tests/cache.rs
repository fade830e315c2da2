//! TokenCache behaviour: single flight, refresh ahead, backoff, retry_after, invalidation,
//! metrics, and no token in Debug or tracing output. Time is paused; nothing sleeps for real.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use clientcreds::cache::{CacheConfig, RefreshAt, TokenCache};
use clientcreds::{Error, OAuthErrorCode, Token};
use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::Semaphore;

type Script = dyn Fn(usize) -> BoxFuture<'static, Result<Token, Error>> + Send + Sync;

/// A cache whose fetch counts its calls and runs `script(call_number)` (1-based).
fn counting(config: CacheConfig, script: Arc<Script>) -> (TokenCache, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let cache = TokenCache::with_config(
        move || {
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            script(n)
        },
        config,
    )
    .unwrap();
    (cache, calls)
}

fn token(n: usize, lifetime_secs: u64) -> Result<Token, Error> {
    Token::new(
        format!("secret-token-{n}"),
        "Bearer",
        Duration::from_secs(lifetime_secs),
        None,
    )
}

fn server_error() -> Error {
    Error::TokenEndpoint {
        status: http::StatusCode::SERVICE_UNAVAILABLE,
        code: Some(OAuthErrorCode::TemporarilyUnavailable),
        description: None,
        retry_after: None,
    }
}

fn value(token: &Token) -> String {
    token.authorization().to_str().unwrap().to_owned()
}

/// Moves the paused clock forward and lets the tasks woken by it run (the cache's timers).
async fn advance(by: Duration) {
    tokio::time::advance(by).await;
    settle().await;
}

/// Lets spawned tasks run (the fetch task, then the waiters).
async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_concurrent_first_requests_make_one_token_request() {
    let gate = Arc::new(Semaphore::new(0));
    let fetch_gate = Arc::clone(&gate);
    let (cache, calls) = counting(
        CacheConfig::default(),
        Arc::new(move |n| {
            let gate = Arc::clone(&fetch_gate);
            async move {
                let _permit = gate.acquire().await.unwrap();
                token(n, 3600)
            }
            .boxed()
        }),
    );
    let waiting = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..10_000 {
        let cache = cache.clone();
        let waiting = Arc::clone(&waiting);
        tasks.push(tokio::spawn(async move {
            let fut = cache.token();
            waiting.fetch_add(1, Ordering::SeqCst);
            fut.await
        }));
    }
    // All 10,000 callers have asked before the one token request is allowed to finish.
    while waiting.load(Ordering::SeqCst) < 10_000 {
        tokio::task::yield_now().await;
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    gate.add_permits(1);
    for task in tasks {
        let token = task.await.unwrap().unwrap();
        assert_eq!(value(&token), "Bearer secret-token-1");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1, "exactly one token request");
}

#[tokio::test(start_paused = true)]
async fn a_caller_that_gives_up_does_not_cancel_the_request() {
    let (cache, calls) = counting(
        CacheConfig::default(),
        Arc::new(|n| {
            async move {
                tokio::time::sleep(Duration::from_secs(5)).await;
                token(n, 3600)
            }
            .boxed()
        }),
    );
    let gave_up = tokio::time::timeout(Duration::from_secs(1), cache.token()).await;
    assert!(gave_up.is_err(), "the first caller times out");
    // The fetch keeps running; the next caller joins it instead of starting another.
    let token = cache.token().await.unwrap();
    assert_eq!(value(&token), "Bearer secret-token-1");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// A current-thread runtime with paused time, for tests that must run whole inside
/// `metrics::with_local_recorder` (a failure counter is registered when the failure happens).
fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap()
}

#[test]
fn proactive_refresh_serves_the_old_token_meanwhile() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        paused_runtime().block_on(proactive_refresh_then_a_failure());
    });

    let snapshot = snapshotter.snapshot().into_vec();
    let mut counters = std::collections::HashMap::new();
    for (key, _, _, value) in &snapshot {
        let key = key.key();
        // No label ever holds a token (they are all "secret-token-N" here).
        for label in key.labels() {
            assert!(
                !label.value().contains("secret-token"),
                "a token in a metrics label: {key:?}"
            );
        }
        let mut labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        labels.sort();
        if let DebugValue::Counter(n) = value {
            counters.insert(format!("{}{{{}}}", key.name(), labels.join(",")), *n);
        }
    }
    let counter = |name: &str| counters.get(name).copied().unwrap_or_default();
    assert_eq!(
        counter("clientcreds_token_fetches_total{cache=refresh-test}"),
        3,
        "{counters:#?}"
    );
    assert_eq!(
        counter("clientcreds_token_refreshes_total{cache=refresh-test}"),
        1
    );
    assert!(counter("clientcreds_cache_hits_total{cache=refresh-test}") >= 200);
    assert_eq!(
        counter("clientcreds_token_invalidations_total{cache=refresh-test}"),
        1
    );
    // The failed fetch, counted once under its cache and its error kind, nothing else.
    assert_eq!(
        counter(&format!(
            "{}{{cache=refresh-test,kind=temporarily_unavailable}}",
            clientcreds::telemetry::TOKEN_FAILURES
        )),
        1,
        "{counters:#?}"
    );
    let failures: Vec<&String> = counters
        .keys()
        .filter(|k| k.starts_with(clientcreds::telemetry::TOKEN_FAILURES))
        .collect();
    assert_eq!(failures.len(), 1, "{failures:?}");
}

async fn proactive_refresh_then_a_failure() {
    let gate = Arc::new(Semaphore::new(0));
    let fetch_gate = Arc::clone(&gate);
    let (cache, calls) = counting(
        CacheConfig::default()
            .refresh_at(RefreshAt::BeforeExpiry(Duration::from_secs(30)))
            .name("refresh-test"),
        Arc::new(move |n| {
            let gate = Arc::clone(&fetch_gate);
            async move {
                if n == 3 {
                    return Err(server_error());
                }
                if n > 1 {
                    let _permit = gate.acquire().await.unwrap();
                }
                token(n, 100)
            }
            .boxed()
        }),
    );
    assert_eq!(
        value(&cache.token().await.unwrap()),
        "Bearer secret-token-1"
    );

    // Before the refresh point: no refresh.
    advance(Duration::from_secs(69)).await;
    assert_eq!(value(&cache.cached().unwrap()), "Bearer secret-token-1");
    settle().await;
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // Past it (70 s of 100 s): the read starts one background refresh and gets the old token.
    advance(Duration::from_secs(2)).await;
    assert_eq!(value(&cache.cached().unwrap()), "Bearer secret-token-1");
    settle().await;
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    // While it runs, every caller is served the old token at once.
    for _ in 0..100 {
        assert_eq!(value(&cache.cached().unwrap()), "Bearer secret-token-1");
        assert_eq!(
            value(&cache.token().await.unwrap()),
            "Bearer secret-token-1"
        );
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "no second refresh while one runs"
    );

    gate.add_permits(1);
    settle().await;
    let second = cache.cached().unwrap();
    assert_eq!(value(&second), "Bearer secret-token-2");

    // The server refuses the new token; the next token request fails.
    assert!(cache.invalidate(&second));
    let error = cache.token().await.unwrap_err();
    assert_eq!(error.kind(), "temporarily_unavailable");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn a_failed_refresh_keeps_the_valid_token_and_backs_off() {
    let (cache, calls) = counting(
        CacheConfig::default()
            .refresh_at(RefreshAt::LifetimeFraction(0.5))
            .backoff(Duration::from_secs(1), Duration::from_secs(8))
            .jitter_seed(7),
        Arc::new(|n| {
            async move {
                if n == 1 {
                    token(n, 100)
                } else {
                    Err(server_error())
                }
            }
            .boxed()
        }),
    );
    cache.token().await.unwrap();
    advance(Duration::from_secs(51)).await;
    assert_eq!(value(&cache.cached().unwrap()), "Bearer secret-token-1");
    settle().await;
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert!(cache.last_error().is_some());

    // The token stays in service, and the failures are spaced out by a growing backoff
    // (1 s, 2 s, 4 s, 8 s, 8 s … each with up to 100 % jitter) instead of one per request.
    let mut attempts = vec![];
    for second in 0..48 {
        for _ in 0..10 {
            assert_eq!(value(&cache.cached().unwrap()), "Bearer secret-token-1");
        }
        settle().await;
        attempts.push(calls.load(Ordering::SeqCst));
        advance(Duration::from_secs(1)).await;
        let _ = second;
    }
    let total = *attempts.last().unwrap();
    assert!(
        (5..=12).contains(&total),
        "backoff spaced the attempts: {attempts:?}"
    );
    // Gaps grow: the first retry came within 2 s, the later ones are at least 8 s apart.
    let first_retry = attempts.iter().position(|&c| c == 3).unwrap();
    assert!(first_retry <= 2, "{attempts:?}");
    let late: Vec<usize> = attempts[30..].to_vec();
    assert!(
        late.last().unwrap() - late.first().unwrap() <= 3,
        "{attempts:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_honoured() {
    let (cache, calls) = counting(
        CacheConfig::default(),
        Arc::new(|n| {
            async move {
                if n == 1 {
                    Err(Error::TokenEndpoint {
                        status: http::StatusCode::TOO_MANY_REQUESTS,
                        code: Some(OAuthErrorCode::RateLimitExceeded),
                        description: Some("slow down".into()),
                        retry_after: Some(Duration::from_secs(30)),
                    })
                } else {
                    token(n, 3600)
                }
            }
            .boxed()
        }),
    );
    let err = cache.token().await.unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(30)));
    // Callers within the 30 s get the error at once; no new token request.
    for _ in 0..29 {
        let again = cache.token().await.unwrap_err();
        assert_eq!(again.oauth_code(), Some(&OAuthErrorCode::RateLimitExceeded));
        advance(Duration::from_secs(1)).await;
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    advance(Duration::from_secs(2)).await;
    assert_eq!(
        value(&cache.token().await.unwrap()),
        "Bearer secret-token-2"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn a_rejected_client_is_not_retried_in_a_tight_loop() {
    let (cache, calls) = counting(
        CacheConfig::default().rejected_backoff(Duration::from_secs(300)),
        Arc::new(|_| {
            async move {
                Err(Error::TokenEndpoint {
                    status: http::StatusCode::UNAUTHORIZED,
                    code: Some(OAuthErrorCode::InvalidClient),
                    description: None,
                    retry_after: None,
                })
            }
            .boxed()
        }),
    );
    for _ in 0..290 {
        let err = cache.token().await.unwrap_err();
        assert_eq!(err.oauth_code(), Some(&OAuthErrorCode::InvalidClient));
        advance(Duration::from_secs(1)).await;
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1, "one request in ~5 minutes");
    advance(Duration::from_secs(11)).await;
    let _ = cache.token().await.unwrap_err();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn invalidate_drops_exactly_that_token() {
    let (cache, calls) = counting(
        CacheConfig::default(),
        Arc::new(|n| async move { token(n, 3600) }.boxed()),
    );
    let first = cache.token().await.unwrap();
    assert!(cache.invalidate(&first));
    assert!(cache.cached().is_none());
    let second = cache.token().await.unwrap();
    assert_eq!(value(&second), "Bearer secret-token-2");
    // A late report about the old token leaves the newer one alone.
    assert!(!cache.invalidate(&first));
    assert_eq!(value(&cache.cached().unwrap()), "Bearer secret-token-2");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn invalidations_are_rate_limited_by_the_cooldown() {
    let (cache, calls) = counting(
        CacheConfig::default().invalidate_cooldown(Duration::from_secs(10)),
        Arc::new(|n| async move { token(n, 3600) }.boxed()),
    );
    let first = cache.token().await.unwrap();
    assert!(cache.invalidate(&first));
    let second = cache.token().await.unwrap();
    // Moments later, the new token is refused too: kept, within the cooldown.
    assert!(!cache.invalidate(&second));
    assert_eq!(value(&cache.cached().unwrap()), "Bearer secret-token-2");
    advance(Duration::from_secs(11)).await;
    assert!(cache.invalidate(&second));
    assert_eq!(
        value(&cache.token().await.unwrap()),
        "Bearer secret-token-3"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn an_expired_token_is_not_served() {
    let gate = Arc::new(Semaphore::new(0));
    let fetch_gate = Arc::clone(&gate);
    let (cache, calls) = counting(
        CacheConfig::default(),
        Arc::new(move |n| {
            let gate = Arc::clone(&fetch_gate);
            async move {
                if n > 1 {
                    let _permit = gate.acquire().await.unwrap();
                }
                token(n, 10)
            }
            .boxed()
        }),
    );
    cache.token().await.unwrap();
    // The refresh (due at 5 s) hangs; at 11 s the first token has expired.
    advance(Duration::from_secs(11)).await;
    assert!(cache.cached().is_none());
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let waiting = cache.token();
    gate.add_permits(1);
    assert_eq!(value(&waiting.await.unwrap()), "Bearer secret-token-2");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn an_idle_cache_refreshes_on_its_own_and_stops_when_dropped() {
    let (cache, calls) = counting(
        CacheConfig::default().refresh_at(RefreshAt::BeforeExpiry(Duration::from_secs(30))),
        Arc::new(|n| async move { token(n, 100) }.boxed()),
    );
    cache.token().await.unwrap();
    // No reads at all: the timer refreshes at 70 s, and again 70 s after that.
    advance(Duration::from_secs(71)).await;
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    advance(Duration::from_secs(70)).await;
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(value(&cache.cached().unwrap()), "Bearer secret-token-3");
    drop(cache);
    advance(Duration::from_secs(300)).await;
    assert_eq!(
        calls.load(Ordering::SeqCst),
        3,
        "a dropped cache refreshes no more"
    );
}

#[tokio::test(start_paused = true)]
async fn a_panicking_fetch_is_an_error_not_a_stuck_cache() {
    let (cache, calls) = counting(
        CacheConfig::default(),
        Arc::new(|n| {
            async move {
                assert!(n != 1, "the first token request panics");
                token(n, 3600)
            }
            .boxed()
        }),
    );
    let err = cache.token().await.unwrap_err();
    assert!(matches!(err, Error::Internal(_)), "{err}");
    advance(Duration::from_secs(3)).await;
    assert_eq!(
        value(&cache.token().await.unwrap()),
        "Bearer secret-token-2"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn an_absurd_retry_after_is_clamped_and_honoured() {
    let (cache, calls) = counting(
        CacheConfig::default(),
        Arc::new(|n| {
            async move {
                if n == 1 {
                    Err(Error::TokenEndpoint {
                        status: http::StatusCode::TOO_MANY_REQUESTS,
                        code: Some(OAuthErrorCode::RateLimitExceeded),
                        description: None,
                        retry_after: Some(Duration::MAX),
                    })
                } else {
                    token(n, 3600)
                }
            }
            .boxed()
        }),
    );
    // No panic in the fetch task (that would surface as an internal error): the typed error,
    // with the wait capped at an hour.
    let err = cache.token().await.unwrap_err();
    assert_eq!(err.oauth_code(), Some(&OAuthErrorCode::RateLimitExceeded));
    assert_eq!(err.retry_after(), Some(clientcreds::MAX_RETRY_AFTER));
    advance(clientcreds::MAX_RETRY_AFTER - Duration::from_secs(1)).await;
    let again = cache.token().await.unwrap_err();
    assert_eq!(again.oauth_code(), Some(&OAuthErrorCode::RateLimitExceeded));
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "nothing before the hour is up"
    );
    advance(Duration::from_secs(2)).await;
    assert_eq!(
        value(&cache.token().await.unwrap()),
        "Bearer secret-token-2"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn a_huge_configured_backoff_does_not_overflow_the_clock() {
    fn invalid_client() -> Error {
        Error::TokenEndpoint {
            status: http::StatusCode::UNAUTHORIZED,
            code: Some(OAuthErrorCode::InvalidClient),
            description: None,
            retry_after: None,
        }
    }
    // A rejected client, with a rejected backoff and an invalidation cooldown of "forever".
    let (cache, calls) = counting(
        CacheConfig::default()
            .rejected_backoff(Duration::MAX)
            .invalidate_cooldown(Duration::MAX),
        Arc::new(|n| {
            async move {
                if n == 1 {
                    token(n, 100)
                } else {
                    Err(invalid_client())
                }
            }
            .boxed()
        }),
    );
    let first = cache.token().await.unwrap();
    assert!(cache.invalidate(&first));
    assert!(!cache.invalidate(&first), "within the cooldown");
    // A panic in the fetch task would surface as an internal error.
    let err = cache.token().await.unwrap_err();
    assert_eq!(
        err.oauth_code(),
        Some(&OAuthErrorCode::InvalidClient),
        "{err}"
    );
    advance(Duration::from_secs(86_400)).await;
    let err = cache.token().await.unwrap_err();
    assert_eq!(
        err.oauth_code(),
        Some(&OAuthErrorCode::InvalidClient),
        "{err}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    // A failed refresh of a valid token with a retry backoff (and an expired-token backoff,
    // which also bounds how far the remaining lifetime shortens it) of Duration::MAX: the
    // token is served until it expires, then the last error; no second attempt.
    let (cache, calls) = counting(
        CacheConfig::default()
            .backoff(Duration::MAX, Duration::MAX)
            .expired_backoff(Duration::MAX),
        Arc::new(|n| {
            async move {
                if n == 1 {
                    token(n, 100)
                } else {
                    Err(server_error())
                }
            }
            .boxed()
        }),
    );
    cache.token().await.unwrap();
    advance(Duration::from_secs(51)).await;
    assert_eq!(value(&cache.cached().unwrap()), "Bearer secret-token-1");
    settle().await;
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(value(&cache.cached().unwrap()), "Bearer secret-token-1");
    advance(Duration::from_secs(50)).await;
    assert!(cache.cached().is_none());
    let err = cache.token().await.unwrap_err();
    assert_eq!(err.kind(), "temporarily_unavailable", "{err}");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[test]
fn a_token_cached_in_a_runtime_that_shut_down_is_not_served_after_expiry() {
    let (cache, calls) = counting(
        CacheConfig::default(),
        Arc::new(|n| async move { token(n, 100) }.boxed()),
    );
    let first = paused_runtime();
    first.block_on(async {
        cache.token().await.unwrap();
        assert!(cache.cached().is_some());
    });
    // Drops the timer task that would end the token's clock-free window.
    drop(first);

    let second = paused_runtime();
    second.block_on(async {
        tokio::time::advance(Duration::from_secs(200)).await;
        assert!(cache.cached().is_none(), "an expired token was served");
        assert!(cache.cached_authorization().is_none());
        assert_eq!(
            value(&cache.token().await.unwrap()),
            "Bearer secret-token-2"
        );
    });
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[test]
fn a_fetch_dropped_with_its_runtime_does_not_fail_or_block_the_next_caller() {
    let (cache, calls) = counting(
        CacheConfig::default(),
        Arc::new(|n| {
            async move {
                if n == 1 {
                    std::future::pending::<()>().await;
                }
                token(n, 3600)
            }
            .boxed()
        }),
    );
    let first = paused_runtime();
    first.block_on(async {
        let gave_up = tokio::time::timeout(Duration::from_secs(1), cache.token()).await;
        assert!(gave_up.is_err());
    });
    // The fetch task never finished; now it is gone.
    drop(first);

    let second = paused_runtime();
    second.block_on(async {
        assert_eq!(
            value(&cache.token().await.unwrap()),
            "Bearer secret-token-2",
            "the first caller after the shutdown gets a token, not the dead fetch's error"
        );
    });
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[test]
fn a_refresh_dropped_with_its_runtime_does_not_stop_later_refreshes() {
    let (cache, calls) = counting(
        CacheConfig::default().refresh_at(RefreshAt::LifetimeFraction(0.5)),
        Arc::new(|n| {
            async move {
                if n == 2 {
                    std::future::pending::<()>().await;
                }
                token(n, 100)
            }
            .boxed()
        }),
    );
    let first = paused_runtime();
    first.block_on(async {
        cache.token().await.unwrap();
        // The timer starts the refresh at 50 s; it hangs.
        advance(Duration::from_secs(60)).await;
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    });
    drop(first);

    let second = paused_runtime();
    second.block_on(async {
        // Past the refresh point, the first token still valid: a read starts a new refresh.
        advance(Duration::from_secs(60)).await;
        assert_eq!(value(&cache.cached().unwrap()), "Bearer secret-token-1");
        settle().await;
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(value(&cache.cached().unwrap()), "Bearer secret-token-3");
    });
}

/// The shared refresh policy in the cache: no bursts as the token nears expiry, then, once it
/// has expired and callers are failing, an attempt at least every 5 s, so a provider that is
/// back is used within seconds; never more than one attempt per second.
#[tokio::test(start_paused = true)]
async fn an_outage_past_expiry_is_retried_at_a_short_capped_interval() {
    let up = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let provider = Arc::clone(&up);
    let (cache, calls) = counting(
        CacheConfig::default().jitter_seed(3),
        Arc::new(move |n| {
            let up = provider.load(Ordering::SeqCst);
            async move {
                if up {
                    token(n, 120)
                } else {
                    Err(server_error())
                }
            }
            .boxed()
        }),
    );
    cache.token().await.unwrap();
    up.store(false, Ordering::SeqCst);
    // Refresh point 60 s (60 s before expiry); the outage lasts until 240 s.
    let mut attempts = Vec::new();
    let start = tokio::time::Instant::now();
    let mut seen = 1;
    for _ in 0..240 {
        advance(Duration::from_secs(1)).await;
        let _ = cache.token().await;
        let now = calls.load(Ordering::SeqCst);
        if now != seen {
            attempts.push((tokio::time::Instant::now() - start).as_secs());
            seen = now;
        }
    }
    let near_expiry = attempts.iter().filter(|t| (110..=120).contains(*t)).count();
    assert!(near_expiry <= 2, "a burst near expiry: {attempts:?}");
    let gaps: Vec<u64> = attempts.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.iter().all(|g| *g >= 1), "{attempts:?}");
    let after_expiry: Vec<u64> = attempts
        .windows(2)
        .filter(|w| w[0] >= 125)
        .map(|w| w[1] - w[0])
        .collect();
    assert!(!after_expiry.is_empty(), "{attempts:?}");
    assert!(
        after_expiry.iter().all(|g| *g <= 5),
        "attempts after expiry at most 5 s apart: {attempts:?}"
    );
    // Back: the next caller within 5 s gets a token.
    up.store(true, Ordering::SeqCst);
    let back = tokio::time::Instant::now();
    let got = loop {
        if let Ok(token) = cache.token().await {
            break token;
        }
        advance(Duration::from_secs(1)).await;
    };
    assert!(
        back.elapsed() <= Duration::from_secs(5),
        "{:?}",
        back.elapsed()
    );
    assert!(got.is_valid_at(tokio::time::Instant::now()));
}

/// A caller waiting for the fetch in flight gives up at the configured deadline with a typed
/// error; the fetch goes on and its token serves the next caller (one token request).
#[tokio::test(start_paused = true)]
async fn waiters_give_up_at_the_wait_timeout_and_the_fetch_goes_on() {
    let gate = Arc::new(Semaphore::new(0));
    let fetch_gate = Arc::clone(&gate);
    let (cache, calls) = counting(
        CacheConfig::default().wait_timeout(Duration::from_secs(2)),
        Arc::new(move |n| {
            let gate = Arc::clone(&fetch_gate);
            async move {
                let _permit = gate.acquire().await.unwrap();
                token(n, 3600)
            }
            .boxed()
        }),
    );
    let waiter = tokio::spawn(cache.token());
    settle().await;
    advance(Duration::from_millis(1999)).await;
    assert!(!waiter.is_finished(), "gave up before the deadline");
    advance(Duration::from_millis(1)).await;
    let err = waiter.await.unwrap().unwrap_err();
    assert!(
        matches!(err, Error::WaitTimedOut { waited } if waited == Duration::from_secs(2)),
        "{err}"
    );
    assert_eq!(err.kind(), "wait_timed_out");
    gate.add_permits(1);
    settle().await;
    let got = cache.token().await.unwrap();
    assert_eq!(value(&got), "Bearer secret-token-1");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "the fetch was not cancelled"
    );
    assert!(
        TokenCache::with_config(
            || async { token(1, 1) },
            CacheConfig::default().wait_timeout(Duration::ZERO)
        )
        .is_err()
    );
}
