//! A token cache: one token request in flight at most, a lock-free read path, refresh ahead of
//! expiry, backoff with jitter after failures.
//!
//! [`TokenCache`] holds the token for **one cache key** (one client, one set of scopes /
//! audience / resource — see [`ClientCredentials::cache_key`](crate::ClientCredentials)). It is
//! cheap to clone; clones share the token. It is given a *fetch* function that makes one token
//! request, and it decides when to call it:
//!
//! - **Single flight.** However many callers ask at once, at most one fetch runs. The fetch runs
//!   on its own task, so a caller that gives up (a timeout, a dropped request) does not cancel
//!   the fetch the others wait for.
//! - **Lock-free hot path.** [`TokenCache::cached`] reads the current token through an
//!   [`arc_swap::ArcSwapOption`]: no lock, no allocation — and, until shortly before the
//!   refresh point, not even a clock read (a timer task ends the token's *fresh window* then;
//!   up to five seconds before expiry at the latest). A service can keep a
//!   [`FreshAuthorization`] instead: its check is one atomic load (the [`Bearer`](crate::Bearer)
//!   layer does this). The margin is documented on [`TokenCache`].
//! - **Refresh ahead of expiry.** At a token's refresh point (see [`RefreshAt`]) a background
//!   fetch starts — from a timer, or from the first read after that point — and the current token
//!   keeps being served until the new one arrives. An idle cache keeps its token fresh; the timer
//!   holds only a weak reference, so dropping the cache stops it.
//! - **Failures.** A failed refresh keeps the still-valid token in service and schedules the next
//!   attempt by the shared [`RefreshPolicy`] (exponential backoff with jitter, below half the
//!   remaining lifetime, at most 5 s apart once no valid token is left, at least 1 s apart); a
//!   server's `retry_after` is a lower bound for that delay, itself capped at
//!   [`MAX_RETRY_AFTER`](crate::error::MAX_RETRY_AFTER) (one hour). An error that repeats until
//!   a person changes something ([`Error::is_retryable`] is `false`, e.g. `invalid_client`)
//!   waits [`CacheConfig::rejected_backoff`] (five minutes by default) instead. While a backoff
//!   runs, callers that have no valid token get the last error at once instead of a new token
//!   request.
//!
//! ```
//! use std::time::Duration;
//! use clientcreds::{Token, cache::TokenCache};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), clientcreds::Error> {
//! let cache = TokenCache::new(|| async {
//!     // Normally `credentials.request_token(&http).await`.
//!     Token::new("an-access-token", "Bearer", Duration::from_secs(3600), None)
//! });
//! let token = cache.token().await?; // one request
//! let again = cache.token().await?; // served from the cache
//! assert_eq!(token.authorization(), again.authorization());
//! assert!(cache.cached().is_some());
//! # Ok(())
//! # }
//! ```
//!
//! The module is split by concept, with dependencies in one direction (`mod.rs` wires them):
//! `config` (what is configured) ← `backoff` (failures); `fresh` (the token in service and its
//! fresh window); `flight` (single flight, reporting to the cache through a trait);
//! `registry` (one cache per key, used by
//! [`ClientCredentialsSource`](crate::ClientCredentialsSource); it uses the cache, the cache
//! does not use it).

mod backoff;
mod config;
mod flight;
mod fresh;
pub(crate) mod registry;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures::FutureExt;
use tokio::time::Instant;

use self::backoff::Failures;
use self::flight::{Flight, Recorder, SingleFlight};
use crate::telemetry::CacheMetrics;
use crate::{Error, Token};

pub use self::config::CacheConfig;
pub(crate) use self::fresh::Current;
pub use self::fresh::FreshAuthorization;
pub use crate::refresh::{RefreshAt, RefreshPolicy};

/// The function a [`TokenCache`] calls to get a new token.
type FetchFn = dyn Fn() -> futures::future::BoxFuture<'static, Result<Token, Error>> + Send + Sync;

#[derive(Default)]
struct State {
    flight: SingleFlight,
    failures: Failures,
    /// When a token was last dropped by `invalidate`.
    last_invalidation: Option<Instant>,
}

struct Inner {
    current: Current,
    /// Set while a fetch runs: lets the hot path skip the lock.
    in_flight: AtomicBool,
    state: Mutex<State>,
    fetch: Box<FetchFn>,
    config: CacheConfig,
    metrics: CacheMetrics,
}

/// Why a fetch was started (a tracing field and a metrics label).
#[derive(Debug, Clone, Copy)]
enum Reason {
    /// No valid token (first request, expiry, or after an invalidation).
    Missing,
    /// The token passed its refresh point and is still valid.
    Proactive,
}

impl Reason {
    fn as_str(self) -> &'static str {
        match self {
            Reason::Missing => "missing",
            Reason::Proactive => "proactive",
        }
    }
}

/// A single-flight, refresh-ahead token cache for one cache key. See the [module
/// documentation](self).
///
/// Cloning is cheap; clones share the token, the fetch in flight and the backoff.
///
/// # How exact the refresh point and the expiry are
///
/// A stored token is *fresh* until `fresh_until`, the earlier of its refresh point and
/// `valid_until − min(remaining lifetime / 10, 5 s)`; during that window the hot path reads no
/// clock ([`cached`](Self::cached) checks a flag, a [`FreshAuthorization`] one atomic
/// counter). A timer task on the tokio runtime that stored the token ends the window and, at
/// the refresh point, starts the background refresh. After the window, every read compares
/// with the clock, as before. Hence, while that runtime runs its timers:
///
/// - the background refresh starts **at the refresh point, never earlier, and no later than
///   the timer's lateness** after it (tokio timers have a 1 ms resolution; add however long
///   the runtime takes to get to the timer task);
/// - a token is **never served after it expires**, unless the timer is late by more than
///   `min(remaining lifetime / 10, 5 s)` (the *expiry guard*): the fresh window ends that long
///   before expiry at the latest, and from then on each read checks the clock.
///
/// A runtime that shuts down ends the windows of the tokens it timed. A runtime that stays
/// alive but stops running (a `current_thread` runtime no longer driven by `block_on`) does
/// not: use the cache from a runtime that runs. A token stored outside any runtime is never
/// fresh (every read checks the clock).
#[derive(Clone)]
pub struct TokenCache {
    inner: Arc<Inner>,
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let current = self.inner.current.load();
        f.debug_struct("TokenCache")
            .field("name", &self.inner.config.name)
            .field("token", &current.as_ref().map(|e| &e.token))
            .field("refresh", &self.inner.config.policy.refresh())
            .field("in_flight", &self.inner.in_flight.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl TokenCache {
    /// A cache with the default [`CacheConfig`] around `fetch`, which makes one token request.
    pub fn new<F, Fut>(fetch: F) -> TokenCache
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Token, Error>> + Send + 'static,
    {
        Self::build(fetch, CacheConfig::default())
    }

    /// A cache with the given configuration. Fails with [`Error::Config`] when the
    /// configuration is invalid (a lifetime fraction outside `(0, 1]`, a zero backoff, …).
    pub fn with_config<F, Fut>(fetch: F, config: CacheConfig) -> Result<TokenCache, Error>
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Token, Error>> + Send + 'static,
    {
        config.validate()?;
        Ok(Self::build(fetch, config))
    }

    pub(crate) fn build<F, Fut>(fetch: F, config: CacheConfig) -> TokenCache
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Token, Error>> + Send + 'static,
    {
        let metrics = CacheMetrics::new(&config.name);
        TokenCache {
            inner: Arc::new(Inner {
                current: Current::new(),
                in_flight: AtomicBool::new(false),
                state: Mutex::new(State::default()),
                fetch: Box::new(move || fetch().boxed()),
                config,
                metrics,
            }),
        }
    }

    /// The configuration of this cache.
    pub fn config(&self) -> &CacheConfig {
        &self.inner.config
    }

    /// Whether both handles are the same cache.
    #[cfg(test)]
    pub(crate) fn ptr_eq(&self, other: &TokenCache) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// A handle that does not keep this cache (nor its refresh timer) alive.
    pub(crate) fn downgrade(&self) -> WeakTokenCache {
        WeakTokenCache(Arc::downgrade(&self.inner))
    }

    /// The current token if it is valid now — the hot path: no lock, no waiting.
    ///
    /// When the token has passed its refresh point, this starts a background refresh (at most
    /// one, and only inside a tokio runtime) and still returns the current token.
    pub fn cached(&self) -> Option<Arc<Token>> {
        let guard = self.inner.current.load();
        let entry = guard.as_ref()?;
        if entry.is_fresh() {
            self.inner.metrics.hits.increment(1);
            return Some(Arc::clone(&entry.token));
        }
        let now = Instant::now();
        if !entry.token.is_valid_at(now) {
            return None;
        }
        if now >= entry.refresh_at && !self.inner.in_flight.load(Ordering::Acquire) {
            self.inner.refresh_in_background(now);
        }
        self.inner.metrics.hits.increment(1);
        Some(Arc::clone(&entry.token))
    }

    /// The `Authorization` header value of the current token if it is valid now: like
    /// [`cached`](TokenCache::cached) without cloning the `Arc<Token>`.
    pub fn cached_authorization(&self) -> Option<http::HeaderValue> {
        {
            let guard = self.inner.current.load();
            let entry = guard.as_ref()?;
            if entry.is_fresh() {
                self.inner.metrics.hits.increment(1);
                return Some(entry.token.authorization().clone());
            }
        }
        self.cached().map(|token| token.authorization().clone())
    }

    /// The `Authorization` header value of the current token with a freshness check that costs
    /// one atomic load, while the token is in its fresh window (see the [margin](TokenCache));
    /// `None` outside it — then use [`cached_authorization`](Self::cached_authorization).
    ///
    /// ```
    /// use std::time::Duration;
    /// use clientcreds::{Token, cache::TokenCache};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), clientcreds::Error> {
    /// let cache = TokenCache::new(|| async {
    ///     Token::new("an-access-token", "Bearer", Duration::from_secs(3600), None)
    /// });
    /// let first = cache.token().await?;
    /// let fresh = cache.fresh_authorization().expect("a new token is fresh");
    /// assert_eq!(fresh.get(), Some(first.authorization()));
    /// cache.invalidate(&first);
    /// assert_eq!(fresh.get(), None, "no longer the cache's token");
    /// # Ok(())
    /// # }
    /// ```
    pub fn fresh_authorization(&self) -> Option<FreshAuthorization> {
        self.inner
            .current
            .fresh_authorization(&self.inner.metrics.hits)
    }

    /// A valid token: the cached one, or the result of the fetch in flight, or of a new fetch.
    ///
    /// The returned future owns everything it needs (`'static`). Dropping it does not cancel
    /// the fetch, which other callers may be waiting for. While a backoff after a failed fetch
    /// runs and no valid token is cached, it resolves at once to the last error. A caller that
    /// waits for a fetch longer than [`CacheConfig::wait_timeout`] gets
    /// [`Error::WaitTimedOut`] (the fetch goes on).
    pub fn token(&self) -> impl Future<Output = Result<Arc<Token>, Error>> + Send + 'static {
        // Inside a runtime, join or start the fetch now, so that the caller is counted as
        // waiting from this call on; outside one (`runtime.block_on(cache.token())`), on the
        // first poll.
        let early = tokio::runtime::Handle::try_current()
            .is_ok()
            .then(|| self.step());
        let this = self.clone();
        let deadline = self.inner.config.wait_timeout;
        async move {
            match early.unwrap_or_else(|| this.step()) {
                Ok(token) => Ok(token),
                Err(Step::Failed(error)) => Err(error),
                Err(Step::Wait(flight)) => flight::wait(flight, deadline).await,
            }
        }
    }

    fn step(&self) -> Result<Arc<Token>, Step> {
        match self.cached() {
            Some(token) => Ok(token),
            None => self.inner.acquire(),
        }
    }

    /// Drops `token` from the cache if it is still the current token (compared by value), so
    /// that the next caller fetches a new one. A newer token is left alone, and within
    /// [`CacheConfig::invalidate_cooldown`] of the last honoured call nothing is dropped.
    /// Returns whether the token was dropped.
    pub fn invalidate(&self, token: &Token) -> bool {
        let mut state = self.inner.lock();
        let now = Instant::now();
        if let Some(last) = state.last_invalidation
            && now.saturating_duration_since(last) < self.inner.config.invalidate_cooldown
        {
            tracing::debug!(
                cache = %self.inner.config.name,
                "token not invalidated: another one was invalidated moments ago"
            );
            return false;
        }
        let current = self.inner.current.load();
        match current.as_ref() {
            Some(entry) if entry.token.authorization() == token.authorization() => {
                self.inner.current.clear();
                state.last_invalidation = Some(now);
                self.inner.metrics.invalidations.increment(1);
                tracing::debug!(cache = %self.inner.config.name, "token invalidated");
                true
            }
            _ => false,
        }
    }

    /// The error of the last fetch while its backoff runs (`None` after a success).
    pub fn last_error(&self) -> Option<Error> {
        self.inner.lock().failures.last_error().cloned()
    }
}

/// A [`TokenCache`] that may have been dropped (see [`TokenCache::downgrade`]).
pub(crate) struct WeakTokenCache(std::sync::Weak<Inner>);

impl WeakTokenCache {
    /// The cache, if some handle still holds it.
    pub(crate) fn upgrade(&self) -> Option<TokenCache> {
        self.0.upgrade().map(|inner| TokenCache { inner })
    }

    /// Whether some handle still holds the cache.
    pub(crate) fn is_alive(&self) -> bool {
        self.0.strong_count() > 0
    }
}

/// What a caller without a valid token does.
enum Step {
    Wait(Flight),
    Failed(Error),
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Slow path of [`TokenCache::token`]: join the fetch in flight or start one.
    fn acquire(self: &Arc<Self>) -> Result<Arc<Token>, Step> {
        let mut state = self.lock();
        let now = Instant::now();
        // A fetch may have finished since the caller looked.
        if let Some(entry) = self.current.load().as_ref()
            && entry.token.is_valid_at(now)
        {
            return Ok(Arc::clone(&entry.token));
        }
        self.metrics.misses.increment(1);
        if let Some(flight) = state.flight.join() {
            return Err(Step::Wait(flight));
        }
        if let Some(error) = state.failures.pending_error(now) {
            return Err(Step::Failed(error.clone()));
        }
        Err(Step::Wait(self.start(&mut state, Reason::Missing)))
    }

    /// Starts a background refresh of a still-valid token, unless one runs or a backoff waits.
    fn refresh_in_background(self: &Arc<Self>, now: Instant) {
        let mut state = self.lock();
        if state.flight.is_live() || state.failures.backing_off(now) {
            return;
        }
        // Another caller may have refreshed the token meanwhile.
        if let Some(entry) = self.current.load().as_ref()
            && now < entry.refresh_at
        {
            return;
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        self.metrics.refreshes.increment(1);
        let _flight = self.start(&mut state, Reason::Proactive);
    }

    /// Spawns a fetch and records it as the flight in progress. Called with the state locked.
    fn start(self: &Arc<Self>, state: &mut State, reason: Reason) -> Flight {
        let runtime = match tokio::runtime::Handle::try_current() {
            Ok(runtime) => runtime,
            Err(_) => {
                let error = Error::Internal(
                    "the token cache needs a tokio runtime to request a token".into(),
                );
                return futures::future::ready(Err(error)).boxed().shared();
            }
        };
        self.metrics.fetches.increment(1);
        self.in_flight.store(true, Ordering::Release);
        let span = tracing::info_span!(
            "clientcreds.fetch",
            cache = %self.config.name,
            reason = reason.as_str(),
            outcome = tracing::field::Empty,
            error = tracing::field::Empty,
        );
        state
            .flight
            .start(&runtime, Arc::clone(self), (self.fetch)(), span)
    }

    /// Puts a token in service with its refresh point (see [`Current::publish`]).
    fn store(self: &Arc<Self>, token: Arc<Token>, refresh_at: Instant, now: Instant) {
        let cache = Arc::downgrade(self);
        self.current.publish(token, refresh_at, now, move || {
            // Refresh at the refresh point even when no request comes; a dropped cache ends
            // here.
            if let Some(cache) = cache.upgrade() {
                cache.refresh_in_background(Instant::now());
            }
        });
    }
}

impl Recorder for Inner {
    /// Records the outcome of a fetch. Runs on the fetch task.
    fn complete(
        self: Arc<Self>,
        result: Result<Token, Error>,
        took: Duration,
    ) -> Result<Arc<Token>, Error> {
        let mut state = self.lock();
        state.flight.finish();
        let now = Instant::now();
        let outcome = match result {
            Ok(token) => {
                let token = Arc::new(token);
                // No jitter: one cache is one key, there is no herd to spread.
                let delay = self
                    .config
                    .policy
                    .refresh_delay(token.remaining_at(now), 0.0);
                let refresh_at = backoff::later(now, delay).min(token.valid_until()).max(now);
                self.store(Arc::clone(&token), refresh_at, now);
                state.failures.clear();
                tracing::debug!(
                    cache = %self.config.name,
                    took_ms = took.as_millis() as u64,
                    refresh_in_s = refresh_at.saturating_duration_since(now).as_secs(),
                    "token stored"
                );
                Ok(token)
            }
            Err(error) => {
                self.metrics.failure(&error);
                let current = self.current.load_full();
                let remaining = current
                    .as_ref()
                    .map(|entry| entry.token.remaining_at(now))
                    .filter(|remaining| !remaining.is_zero());
                let (delay, retry_at) = state.failures.record(&self.config, &error, remaining, now);
                // Keep serving a still-valid token; its next refresh attempt waits for the backoff.
                if let Some(entry) = current
                    && entry.token.is_valid_at(now)
                {
                    self.store(Arc::clone(&entry.token), retry_at, now);
                }
                tracing::warn!(
                    cache = %self.config.name,
                    error = %error,
                    retryable = error.is_retryable(),
                    retry_in_ms = delay.as_millis() as u64,
                    "token request failed"
                );
                Err(error)
            }
        };
        self.in_flight.store(false, Ordering::Release);
        outcome
    }

    fn abandon(&self) {
        self.in_flight.store(false, Ordering::Release);
    }
}

/// A boxed future of a token, as returned by [`TokenSource::token`](crate::source::TokenSource).
pub type TokenFuture = Pin<Box<dyn Future<Output = Result<Arc<Token>, Error>> + Send + 'static>>;

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    /// A cache whose first fetch gives a token of `lifetime`, and whose later fetches give
    /// new tokens (`ok`) or fail; it records the instant of every fetch.
    fn counted(
        lifetime: Duration,
        refresh: RefreshAt,
        ok: bool,
    ) -> (TokenCache, Arc<Mutex<Vec<Instant>>>) {
        let fetches = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&fetches);
        let count = Arc::new(AtomicUsize::new(0));
        let cache = TokenCache::with_config(
            move || {
                seen.lock().unwrap().push(Instant::now());
                let n = count.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n > 0 && !ok {
                        return Err(Error::Internal("refresh refused".into()));
                    }
                    Token::new(format!("token-{n}"), "Bearer", lifetime, None)
                }
            },
            CacheConfig::default().refresh_at(refresh),
        )
        .unwrap();
        (cache, fetches)
    }

    /// Lets the timer and fetch tasks that are due run.
    async fn settle() {
        for _ in 0..16 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_fresh_window_ends_at_the_refresh_point_and_the_refresh_starts_then() {
        // 100 s tokens, refreshed 60 s before expiry, capped at half the lifetime: at 50 s.
        let (cache, fetches) = counted(Duration::from_secs(100), RefreshAt::default(), true);
        let start = Instant::now();
        let first = cache.token().await.unwrap();
        let fresh = cache.fresh_authorization().expect("fresh when stored");
        tokio::time::advance(Duration::from_millis(49_999)).await;
        settle().await;
        assert_eq!(
            fresh.get(),
            Some(first.authorization()),
            "fresh before the point"
        );
        assert_eq!(fetches.lock().unwrap().len(), 1);
        tokio::time::advance(Duration::from_millis(1)).await;
        settle().await;
        assert_eq!(fresh.get(), None, "the window ends at the refresh point");
        let at = fetches.lock().unwrap().clone();
        assert_eq!(at.len(), 2, "the refresh started without a request");
        let late = at[1] - (start + Duration::from_secs(50));
        assert!(
            late <= Duration::from_millis(1),
            "refresh {late:?} after its point"
        );
        let second = cache.fresh_authorization().expect("the new token is fresh");
        assert_eq!(second.get().unwrap(), "Bearer token-1");
    }

    #[tokio::test(start_paused = true)]
    async fn the_fresh_window_ends_before_expiry_by_the_expiry_guard() {
        // Refresh point at expiry, and every refresh fails: the window ends 5 s before expiry
        // (a 100 s token), 2 s before (a 20 s token: a tenth of its lifetime); after it, reads
        // check the clock, and an expired token is never served.
        for (lifetime, guard) in [(100, 5_000), (20, 2_000)] {
            let lifetime = Duration::from_secs(lifetime);
            let guard = Duration::from_millis(guard);
            let (cache, _) = counted(lifetime, RefreshAt::LifetimeFraction(1.0), false);
            cache.token().await.unwrap();
            let fresh = cache.fresh_authorization().unwrap();
            tokio::time::advance(lifetime - guard - Duration::from_millis(1)).await;
            settle().await;
            assert!(
                fresh.get().is_some(),
                "{lifetime:?}: fresh before the guard"
            );
            tokio::time::advance(Duration::from_millis(1)).await;
            settle().await;
            assert!(
                fresh.get().is_none(),
                "{lifetime:?}: the guard ends the window"
            );
            assert!(cache.fresh_authorization().is_none());
            assert!(
                cache.cached().is_some(),
                "still valid: served after a clock read"
            );
            tokio::time::advance(guard - Duration::from_millis(1)).await;
            assert!(
                cache.cached().is_some(),
                "{lifetime:?}: valid until its expiry"
            );
            tokio::time::advance(Duration::from_millis(1)).await;
            assert!(
                cache.cached().is_none(),
                "{lifetime:?}: never served once expired"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_layer_switches_to_the_refreshed_token_at_the_refresh_point() {
        use tower::{Service, ServiceExt};

        let (cache, _) = counted(Duration::from_secs(100), RefreshAt::default(), true);
        let echo = tower::service_fn(|request: http::Request<()>| async move {
            let value = request.headers()[http::header::AUTHORIZATION].clone();
            Ok::<_, std::convert::Infallible>(http::Response::new(value))
        });
        let mut layer = crate::Bearer::new(echo, cache.clone());
        let mut send = async || {
            let response = layer
                .ready()
                .await
                .unwrap()
                .call(http::Request::new(()))
                .await
                .unwrap();
            response.into_body()
        };
        assert_eq!(send().await, "Bearer token-0");
        tokio::time::advance(Duration::from_millis(49_999)).await;
        settle().await;
        assert_eq!(
            send().await,
            "Bearer token-0",
            "the kept header, before the point"
        );
        tokio::time::advance(Duration::from_millis(1)).await;
        settle().await;
        assert_eq!(
            send().await,
            "Bearer token-1",
            "the refreshed token from the point on"
        );
        let first = cache.cached().unwrap();
        assert!(cache.invalidate(&first));
        assert_eq!(send().await, "Bearer token-2", "not the invalidated one");
    }

    #[tokio::test(start_paused = true)]
    async fn invalidation_and_a_new_token_end_a_kept_fresh_authorization() {
        let (cache, _) = counted(Duration::from_secs(3600), RefreshAt::default(), true);
        let first = cache.token().await.unwrap();
        let kept = cache.fresh_authorization().unwrap();
        assert!(cache.invalidate(&first));
        assert!(kept.get().is_none());
        let second = cache.token().await.unwrap();
        let kept = cache.fresh_authorization().unwrap();
        assert_eq!(kept.get(), Some(second.authorization()));
        assert!(!format!("{kept:?}").contains("token-1"));
    }

    #[test]
    fn cached_outside_a_runtime_is_none_and_does_not_panic() {
        let cache = TokenCache::new(|| async { Err(Error::Internal("unused".into())) });
        assert!(cache.cached().is_none());
        assert!(cache.fresh_authorization().is_none());
    }

    #[test]
    fn a_token_future_made_outside_the_runtime_works_inside_it() {
        let cache = TokenCache::new(|| async {
            Token::new("outside-token", "Bearer", Duration::from_secs(60), None)
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let token = runtime.block_on(cache.token()).unwrap();
        assert_eq!(token.authorization(), "Bearer outside-token");
    }
}
