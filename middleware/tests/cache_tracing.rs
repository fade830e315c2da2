//! No token in the cache's Debug, errors or tracing output. Alone in its binary: tracing's
//! per-callsite interest cache makes capturing with a thread-local subscriber racy when other
//! tests run in parallel threads.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clientcreds::cache::{CacheConfig, RefreshAt, TokenCache};
use clientcreds::{Error, OAuthErrorCode, Token};

fn server_error() -> Error {
    Error::TokenEndpoint {
        status: http::StatusCode::SERVICE_UNAVAILABLE,
        code: Some(OAuthErrorCode::TemporarilyUnavailable),
        description: None,
        retry_after: None,
    }
}

fn token(n: usize, lifetime_secs: u64) -> Result<Token, Error> {
    Token::new(
        format!("secret-token-{n}"),
        "Bearer",
        Duration::from_secs(lifetime_secs),
        None,
    )
}

async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

/// A `MakeWriter` that collects everything written.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

#[tokio::test(start_paused = true)]
async fn no_token_in_debug_errors_or_tracing() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(capture.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let cache = TokenCache::with_config(
        move || {
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                if n == 1 {
                    token(n, 100)
                } else {
                    Err(server_error())
                }
            }
        },
        CacheConfig::default().refresh_at(RefreshAt::LifetimeFraction(0.5)),
    )
    .unwrap();
    let token = cache.token().await.unwrap();
    tokio::time::advance(Duration::from_secs(60)).await;
    settle().await;
    cache.cached();
    settle().await;
    let error = cache.last_error().unwrap();
    let everything = format!(
        "{cache:?} {token:?} {error} {error:?} {}",
        String::from_utf8_lossy(&capture.0.lock().unwrap())
    );
    assert!(
        everything.contains("clientcreds.fetch"),
        "spans were captured: {everything}"
    );
    assert!(everything.contains("token request failed"), "{everything}");
    assert!(
        !everything.contains("secret-token"),
        "a token leaked: {everything}"
    );
}
