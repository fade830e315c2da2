//! A fixed token.

use std::fmt;
use std::sync::{Arc, OnceLock};

use tokio::time::Instant;

use super::{TokenFuture, TokenSource};
use crate::cache::{Current, FreshAuthorization};
use crate::telemetry::Counter;
use crate::{Error, Token};

/// One fixed token, served until it expires; then every call fails with an error that says so.
///
/// [`invalidate`](TokenSource::invalidate) does nothing: there is no other token to get.
///
/// On the layer's hot path it costs what a cached token of a
/// [`TokenCache`](crate::cache::TokenCache) costs: one atomic load, no clock read
/// ([`fresh_authorization`](TokenSource::fresh_authorization)), until `valid_until −
/// min(remaining lifetime / 10, 5 s)`; after that every request checks the clock, so the
/// token is never sent after its expiry.
///
/// ```
/// use std::time::Duration;
/// use clientcreds::source::{StaticToken, TokenSource};
/// use clientcreds::Token;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), clientcreds::Error> {
/// let source = StaticToken::new(Token::new("a-token", "Bearer", Duration::from_secs(3600), None)?);
/// let fresh = source.fresh_authorization().expect("fresh for most of its lifetime");
/// assert_eq!(fresh.get().unwrap(), "Bearer a-token");
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct StaticToken {
    token: Arc<Token>,
    /// The token with its fresh window, set up by the first
    /// [`fresh_authorization`](TokenSource::fresh_authorization) inside a tokio runtime: a timer
    /// task on that runtime ends the window.
    fresh: Arc<OnceLock<Current>>,
}

impl StaticToken {
    /// A source that always serves `token` (while it is valid).
    pub fn new(token: Token) -> StaticToken {
        StaticToken {
            token: Arc::new(token),
            fresh: Arc::new(OnceLock::new()),
        }
    }

    fn expired() -> Error {
        Error::Config {
            field: "static_token",
            message: "the static token has expired; configure a new one or use a \
                      ClientCredentialsSource that refreshes tokens"
                .into(),
        }
    }
}

impl fmt::Debug for StaticToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticToken")
            .field("token", &self.token)
            .finish()
    }
}

impl TokenSource for StaticToken {
    fn cached(&self) -> Option<Arc<Token>> {
        self.token
            .is_valid_at(Instant::now())
            .then(|| Arc::clone(&self.token))
    }

    /// The token's header with a clock-free check while it is fresh. Its window is set up once,
    /// on the first call inside a tokio runtime (outside one: `None`); when that runtime shuts
    /// down the window ends, and the layer reads the clock per request from then on.
    fn fresh_authorization(&self) -> Option<FreshAuthorization> {
        let current = match self.fresh.get() {
            Some(current) => current,
            None => {
                tokio::runtime::Handle::try_current().ok()?;
                self.fresh.get_or_init(|| {
                    let current = Current::new();
                    // No refresh point: a static token is never replaced.
                    let valid_until = self.token.valid_until();
                    current.publish(Arc::clone(&self.token), valid_until, Instant::now(), || {});
                    current
                })
            }
        };
        current.fresh_authorization(&Counter::noop())
    }

    fn token(&self) -> TokenFuture {
        let result = self.cached().ok_or_else(StaticToken::expired);
        Box::pin(std::future::ready(result))
    }

    fn invalidate(&self, _token: &Token) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn serves_until_expiry_then_errors() {
        let source = StaticToken::new(
            Token::new("static-secret", "Bearer", Duration::from_secs(10), None).unwrap(),
        );
        assert!(source.cached().is_some());
        assert!(!source.invalidate(&source.token().await.unwrap()));
        assert!(
            source.cached().is_some(),
            "invalidate must not drop a static token"
        );
        tokio::time::advance(Duration::from_secs(11)).await;
        assert!(source.cached().is_none());
        let err = source.token().await.unwrap_err();
        assert!(
            err.to_string().contains("static token has expired"),
            "{err}"
        );
        assert!(!format!("{source:?} {err:?}").contains("static-secret"));
    }

    #[tokio::test(start_paused = true)]
    async fn fresh_without_the_clock_until_the_guard_before_expiry() {
        let source = StaticToken::new(
            Token::new("static-secret", "Bearer", Duration::from_secs(100), None).unwrap(),
        );
        let fresh = source
            .fresh_authorization()
            .expect("a new static token is fresh");
        assert_eq!(fresh.get().unwrap(), "Bearer static-secret");
        assert!(
            source.clone().fresh_authorization().is_some(),
            "clones share the window"
        );
        // the window ends min(100 s / 10, 5 s) = 5 s before expiry
        tokio::time::advance(Duration::from_secs(94)).await;
        tokio::task::yield_now().await;
        assert!(fresh.get().is_some(), "still fresh 6 s before expiry");
        tokio::time::advance(Duration::from_secs(2)).await;
        tokio::task::yield_now().await;
        assert_eq!(fresh.get(), None, "not fresh 4 s before expiry");
        assert!(source.fresh_authorization().is_none());
        assert!(
            source.cached_authorization().is_some(),
            "still valid, by the clock"
        );
        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(source.cached_authorization().is_none(), "expired");
    }

    #[test]
    fn no_fresh_window_outside_a_runtime() {
        let source = StaticToken::new(
            Token::new("static-secret", "Bearer", Duration::from_secs(100), None).unwrap(),
        );
        assert!(source.fresh_authorization().is_none());
        assert!(source.cached_authorization().is_some());
        // a later call inside a runtime still sets the window up
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        runtime.block_on(async { assert!(source.fresh_authorization().is_some()) });
    }
}
