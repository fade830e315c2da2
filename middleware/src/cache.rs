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
//!   refresh point, not even a clock read (a timer task clears a `fresh` flag then; up to five
//!   seconds before expiry at the latest).
//! - **Refresh ahead of expiry.** At a token's refresh point (see [`RefreshAt`]) a background
//!   fetch starts — from a timer, or from the first read after that point — and the current token
//!   keeps being served until the new one arrives. An idle cache keeps its token fresh; the timer
//!   holds only a weak reference, so dropping the cache stops it.
//! - **Failures.** A failed refresh keeps the still-valid token in service and schedules the next
//!   attempt with exponential backoff and jitter ([`backon`]); a server's `retry_after` is a lower
//!   bound for that delay, itself capped at [`MAX_RETRY_AFTER`](crate::error::MAX_RETRY_AFTER)
//!   (one hour). An error that repeats until a person changes something
//!   ([`Error::is_retryable`] is `false`, e.g. `invalid_client`) waits
//!   [`CacheConfig::rejected_backoff`] (five minutes by default) instead. While a backoff runs,
//!   callers that have no valid token get the last error at once instead of a new token request.
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

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use tokio::time::Instant;
use tracing::Instrument;

use crate::telemetry::CacheMetrics;
use crate::{Error, Token};

/// How far ahead "never" is for a delay that does not fit the clock (`Duration::MAX` as a
/// configured backoff): about 30 years, as tokio's own timers do.
const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);

/// `now + by` without overflow: a delay the clock cannot represent ends in the far future.
fn later(now: Instant, by: Duration) -> Instant {
    now.checked_add(by)
        .or_else(|| now.checked_add(by.min(FAR_FUTURE)))
        .unwrap_or(now)
}

/// The function a [`TokenCache`] calls to get a new token.
type FetchFn = dyn Fn() -> BoxFuture<'static, Result<Token, Error>> + Send + Sync;

/// The result of one fetch, shared by every caller that waited for it.
type Flight = Shared<BoxFuture<'static, Result<Arc<Token>, Error>>>;

/// When a cached token is refreshed, relative to its remaining lifetime at the time it arrived.
///
/// Whatever is configured, a token is refreshed no earlier than half-way through its lifetime
/// for [`RefreshAt::BeforeExpiry`] (the margin is capped at half the lifetime, so a margin
/// larger than the lifetime cannot cause a refresh loop), and never after it expires.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum RefreshAt {
    /// Refresh when this much of the lifetime is left (capped at half the lifetime).
    /// The default is 60 seconds.
    BeforeExpiry(Duration),
    /// Refresh after this fraction of the lifetime, in `(0, 1]`.
    LifetimeFraction(f64),
    /// Fetch again after this interval (or at expiry, when that is sooner). Used for sources
    /// that are cheap to re-read, such as a mounted token directory.
    Interval(Duration),
}

impl Default for RefreshAt {
    fn default() -> Self {
        RefreshAt::BeforeExpiry(Duration::from_secs(60))
    }
}

impl RefreshAt {
    /// The instant at which a token that is valid until `valid_until` should be refreshed:
    /// never before `now`, never after `valid_until`.
    ///
    /// Total for any value: a lifetime fraction outside `(0, 1]` is clamped to `[0, 1]`, and NaN
    /// counts as 1 (caches refuse such a configuration: see [`CacheConfig`]).
    pub fn refresh_point(&self, now: Instant, valid_until: Instant) -> Instant {
        let remaining = valid_until.saturating_duration_since(now);
        let after = match *self {
            RefreshAt::BeforeExpiry(margin) => remaining - margin.min(remaining / 2),
            RefreshAt::LifetimeFraction(fraction) => {
                let fraction = if fraction.is_nan() {
                    1.0
                } else {
                    fraction.clamp(0.0, 1.0)
                };
                Duration::try_from_secs_f64(remaining.as_secs_f64() * fraction)
                    .map_or(remaining, |after| after.min(remaining))
            }
            RefreshAt::Interval(interval) => interval.min(remaining),
        };
        now.checked_add(after).unwrap_or(valid_until).max(now)
    }

    fn validate(&self) -> Result<(), Error> {
        match *self {
            RefreshAt::LifetimeFraction(f) if !(f > 0.0 && f <= 1.0) => Err(Error::Config {
                field: "refresh_at",
                message: format!(
                    "the lifetime fraction must be greater than 0 and at most 1 (got {f}); \
                     use e.g. RefreshAt::LifetimeFraction(0.8)"
                ),
            }),
            RefreshAt::Interval(d) if d.is_zero() => Err(Error::Config {
                field: "refresh_at",
                message: "the refresh interval must be greater than zero".into(),
            }),
            _ => Ok(()),
        }
    }
}

/// How a [`TokenCache`] refreshes and backs off.
///
/// ```
/// use std::time::Duration;
/// use clientcreds::cache::{CacheConfig, RefreshAt};
///
/// let config = CacheConfig::default()
///     .refresh_at(RefreshAt::LifetimeFraction(0.75))
///     .backoff(Duration::from_millis(500), Duration::from_secs(30))
///     .name("payments");
/// assert_eq!(config.refresh(), RefreshAt::LifetimeFraction(0.75));
/// ```
#[derive(Debug, Clone)]
pub struct CacheConfig {
    refresh: RefreshAt,
    min_backoff: Duration,
    max_backoff: Duration,
    rejected_backoff: Duration,
    invalidate_cooldown: Duration,
    jitter_seed: Option<u64>,
    name: Arc<str>,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            refresh: RefreshAt::default(),
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            rejected_backoff: Duration::from_secs(300),
            invalidate_cooldown: Duration::from_secs(10),
            jitter_seed: None,
            name: Arc::from("default"),
        }
    }
}

impl CacheConfig {
    /// When tokens are refreshed (default: 60 s before expiry, at most half the lifetime).
    pub fn refresh_at(mut self, refresh: RefreshAt) -> Self {
        self.refresh = refresh;
        self
    }

    /// The configured refresh point.
    pub fn refresh(&self) -> RefreshAt {
        self.refresh
    }

    /// The first and the largest delay of the exponential backoff after retryable failures
    /// (default 1 s and 60 s). Each delay gets a random jitter of up to its own length.
    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        self.min_backoff = min;
        self.max_backoff = max;
        self
    }

    /// The delay after a failure that will not go away by asking again (`invalid_client`,
    /// `access_denied`, bad configuration …; see [`Error::is_retryable`]). Default five minutes.
    pub fn rejected_backoff(mut self, delay: Duration) -> Self {
        self.rejected_backoff = delay;
        self
    }

    /// The minimum time between two honoured [`invalidate`](TokenCache::invalidate) calls
    /// (default 10 s). An API that answers 401 to every token (a missing permission, a wrong
    /// audience) then causes at most one extra token request per cooldown, not one per API
    /// request — some providers terminate clients that request too many tokens.
    pub fn invalidate_cooldown(mut self, cooldown: Duration) -> Self {
        self.invalidate_cooldown = cooldown;
        self
    }

    /// A fixed seed for the backoff jitter (tests).
    pub fn jitter_seed(mut self, seed: u64) -> Self {
        self.jitter_seed = Some(seed);
        self
    }

    /// A name for this cache in metrics labels and tracing fields (default `"default"`). Not
    /// secret: use something like the provider or the API name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Arc::from(name.into());
        self
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        self.refresh.validate()?;
        if self.min_backoff.is_zero() || self.min_backoff > self.max_backoff {
            return Err(Error::Config {
                field: "backoff",
                message: format!(
                    "the minimum backoff must be greater than zero and at most the maximum \
                     (got {:?} and {:?})",
                    self.min_backoff, self.max_backoff
                ),
            });
        }
        Ok(())
    }

    fn backoff_builder(&self) -> ExponentialBuilder {
        let builder = ExponentialBuilder::default()
            .with_min_delay(self.min_backoff)
            .with_max_delay(self.max_backoff)
            .with_factor(2.0)
            .without_max_times()
            .with_jitter();
        match self.jitter_seed {
            Some(seed) => builder.with_jitter_seed(seed),
            None => builder,
        }
    }
}

/// A cached token and the instant its refresh (or the next attempt after a failure) is due.
///
/// `fresh` lets the hot path skip reading the clock (≈ 40 ns on a VM, most of the layer's
/// cost): it is set when the entry is stored and cleared by a timer task shortly before the
/// refresh point (and up to five seconds before expiry), or when that task is dropped (its
/// runtime shut down). While it is clear, every read checks the clock as usual.
struct Entry {
    token: Arc<Token>,
    refresh_at: Instant,
    fresh: AtomicBool,
}

/// Clears `fresh` when the timer fires or its task is dropped.
struct ClearFresh(std::sync::Weak<Entry>);

impl Drop for ClearFresh {
    fn drop(&mut self) {
        if let Some(entry) = self.0.upgrade() {
            entry.fresh.store(false, Ordering::Release);
        }
    }
}

/// A fetch as the state records it.
struct InFlight {
    flight: Flight,
    /// Set when the fetch task was dropped before it recorded its result (its runtime shut
    /// down): nobody can wait for it any more.
    abandoned: Arc<AtomicBool>,
}

impl InFlight {
    /// Whether callers can still join this fetch.
    fn is_live(&self) -> bool {
        self.flight.peek().is_none() && !self.abandoned.load(Ordering::Acquire)
    }
}

/// Lives in a fetch task until the task has recorded its result. Dropped earlier (the task was
/// dropped with its runtime), it marks the fetch abandoned and clears `in_flight`, so that the
/// next caller starts a new fetch and background refreshes are not blocked forever. It takes no
/// lock: a runtime that is shutting down drops a new task inside `spawn`, while the spawner
/// holds the state lock.
struct FetchTask {
    inner: Arc<Inner>,
    abandoned: Arc<AtomicBool>,
    recorded: bool,
}

impl FetchTask {
    /// Records the outcome of the fetch (see [`Inner::complete`]) and disarms the guard.
    fn complete(
        &mut self,
        result: Result<Token, Error>,
        took: Duration,
    ) -> Result<Arc<Token>, Error> {
        let outcome = self.inner.complete(result, took);
        self.recorded = true;
        outcome
    }
}

impl Drop for FetchTask {
    fn drop(&mut self) {
        if !self.recorded {
            self.abandoned.store(true, Ordering::Release);
            self.inner.in_flight.store(false, Ordering::Release);
        }
    }
}

#[derive(Default)]
struct State {
    /// The fetch in flight, if any.
    flight: Option<InFlight>,
    /// The backoff of the current run of failures.
    backoff: Option<ExponentialBackoff>,
    /// No new fetch starts before this instant (after a failure).
    not_before: Option<Instant>,
    /// The error of the last fetch, while a backoff runs.
    last_error: Option<Error>,
    /// When a token was last dropped by `invalidate`.
    last_invalidation: Option<Instant>,
}

struct Inner {
    current: ArcSwapOption<Entry>,
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
            .field("refresh", &self.inner.config.refresh)
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
                current: ArcSwapOption::empty(),
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
        if entry.fresh.load(Ordering::Acquire) {
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
            if entry.fresh.load(Ordering::Acquire) {
                self.inner.metrics.hits.increment(1);
                return Some(entry.token.authorization().clone());
            }
        }
        self.cached().map(|token| token.authorization().clone())
    }

    /// A valid token: the cached one, or the result of the fetch in flight, or of a new fetch.
    ///
    /// The returned future owns everything it needs (`'static`). Dropping it does not cancel
    /// the fetch, which other callers may be waiting for. While a backoff after a failed fetch
    /// runs and no valid token is cached, it resolves at once to the last error.
    pub fn token(&self) -> impl Future<Output = Result<Arc<Token>, Error>> + Send + 'static {
        // Inside a runtime, join or start the fetch now, so that the caller is counted as
        // waiting from this call on; outside one (`runtime.block_on(cache.token())`), on the
        // first poll.
        let early = tokio::runtime::Handle::try_current()
            .is_ok()
            .then(|| self.step());
        let this = self.clone();
        async move {
            match early.unwrap_or_else(|| this.step()) {
                Ok(token) => Ok(token),
                Err(Step::Failed(error)) => Err(error),
                Err(Step::Wait(flight)) => flight.await,
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
                self.inner.current.store(None);
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
        self.inner.lock().last_error.clone()
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
        if let Some(current) = &state.flight {
            // A flight that ended without recording its result (its task was dropped when its
            // runtime shut down) is stale: start a new one.
            if current.is_live() {
                return Err(Step::Wait(current.flight.clone()));
            }
            state.flight = None;
        }
        if let (Some(not_before), Some(error)) = (state.not_before, &state.last_error)
            && now < not_before
        {
            return Err(Step::Failed(error.clone()));
        }
        Err(Step::Wait(self.start(&mut state, Reason::Missing)))
    }

    /// Starts a background refresh of a still-valid token, unless one runs or a backoff waits.
    fn refresh_in_background(self: &Arc<Self>, now: Instant) {
        let mut state = self.lock();
        if state.flight.as_ref().is_some_and(InFlight::is_live)
            || state.not_before.is_some_and(|nb| now < nb)
        {
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
        let fetch = (self.fetch)();
        let abandoned = Arc::new(AtomicBool::new(false));
        let mut guard = FetchTask {
            inner: Arc::clone(self),
            abandoned: Arc::clone(&abandoned),
            recorded: false,
        };
        let task = runtime.spawn(
            async move {
                let started = Instant::now();
                // A panicking fetch is an error for the waiters, not a stuck cache.
                let result = std::panic::AssertUnwindSafe(fetch)
                    .catch_unwind()
                    .await
                    .unwrap_or_else(|_| Err(Error::Internal("the token request panicked".into())));
                let span = tracing::Span::current();
                match &result {
                    Ok(_) => {
                        span.record("outcome", "ok");
                    }
                    Err(error) => {
                        span.record("outcome", "error");
                        span.record("error", tracing::field::display(error));
                    }
                }
                guard.complete(result, started.elapsed())
            }
            .instrument(span),
        );
        let flight = async move {
            match task.await {
                Ok(result) => result,
                Err(join) => Err(Error::Internal(format!(
                    "the token request task failed: {join}"
                ))),
            }
        }
        .boxed()
        .shared();
        state.flight = Some(InFlight {
            flight: flight.clone(),
            abandoned,
        });
        flight
    }

    /// Publishes a token with its refresh point; arms the timer that ends its clock-free window.
    fn store(self: &Arc<Self>, token: Arc<Token>, refresh_at: Instant, now: Instant) {
        let remaining = token.remaining_at(now);
        let safety = (remaining / 10).min(Duration::from_secs(5));
        let fresh_until = refresh_at.min(token.valid_until().checked_sub(safety).unwrap_or(now));
        let entry = Arc::new(Entry {
            token,
            refresh_at,
            fresh: AtomicBool::new(false),
        });
        if now < fresh_until
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            entry.fresh.store(true, Ordering::Release);
            let guard = ClearFresh(Arc::downgrade(&entry));
            let cache = Arc::downgrade(self);
            runtime.spawn(async move {
                tokio::time::sleep_until(fresh_until).await;
                drop(guard);
                // Refresh at the refresh point even when no request comes (an idle client
                // keeps a fresh token); a dropped cache ends here.
                tokio::time::sleep_until(refresh_at).await;
                if let Some(cache) = cache.upgrade() {
                    cache.refresh_in_background(Instant::now());
                }
            });
        }
        self.current.store(Some(entry));
    }

    /// Records the outcome of a fetch. Runs on the fetch task.
    fn complete(
        self: &Arc<Self>,
        result: Result<Token, Error>,
        took: Duration,
    ) -> Result<Arc<Token>, Error> {
        let mut state = self.lock();
        state.flight = None;
        let now = Instant::now();
        let outcome = match result {
            Ok(token) => {
                let token = Arc::new(token);
                let refresh_at = self.config.refresh.refresh_point(now, token.valid_until());
                self.store(Arc::clone(&token), refresh_at, now);
                state.backoff = None;
                state.not_before = None;
                state.last_error = None;
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
                let delay = self.delay_after(&mut state, &error);
                let retry_at = later(now, delay);
                state.not_before = Some(retry_at);
                state.last_error = Some(error.clone());
                // Keep serving a still-valid token; its next refresh attempt waits for the backoff.
                let current = self.current.load_full();
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

    /// The delay before the next attempt after `error`.
    fn delay_after(&self, state: &mut State, error: &Error) -> Duration {
        let base = if error.is_retryable() {
            let config = &self.config;
            state
                .backoff
                .get_or_insert_with(|| config.backoff_builder().build())
                .next()
                .unwrap_or(config.max_backoff)
        } else {
            self.config.rejected_backoff
        };
        // `retry_after` is capped at MAX_RETRY_AFTER by `Error::retry_after`.
        base.max(error.retry_after().unwrap_or_default())
    }
}

/// A boxed future of a token, as returned by [`TokenSource::token`](crate::source::TokenSource).
pub type TokenFuture = Pin<Box<dyn Future<Output = Result<Arc<Token>, Error>> + Send + 'static>>;

#[cfg(test)]
mod tests {
    use super::*;

    fn at(base: Instant, secs: u64) -> Instant {
        base + Duration::from_secs(secs)
    }

    #[tokio::test(start_paused = true)]
    async fn refresh_points() {
        let now = Instant::now();
        let until = at(now, 100);
        assert_eq!(
            RefreshAt::BeforeExpiry(Duration::from_secs(10)).refresh_point(now, until),
            at(now, 90)
        );
        // A margin larger than the lifetime is capped at half of it.
        assert_eq!(
            RefreshAt::BeforeExpiry(Duration::from_secs(500)).refresh_point(now, until),
            at(now, 50)
        );
        assert_eq!(
            RefreshAt::LifetimeFraction(0.8).refresh_point(now, until),
            at(now, 80)
        );
        assert_eq!(
            RefreshAt::Interval(Duration::from_secs(5)).refresh_point(now, until),
            at(now, 5)
        );
        assert_eq!(
            RefreshAt::Interval(Duration::from_secs(500)).refresh_point(now, until),
            until
        );
        // An expired token is due now.
        assert_eq!(RefreshAt::default().refresh_point(until, now), until);
        // Total for any value (configurations are validated, the function is public): NaN
        // counts as 1, fractions are clamped, huge durations do not overflow.
        for (refresh, due) in [
            (RefreshAt::LifetimeFraction(f64::NAN), until),
            (RefreshAt::LifetimeFraction(f64::INFINITY), until),
            (RefreshAt::LifetimeFraction(f64::NEG_INFINITY), now),
            (RefreshAt::LifetimeFraction(-1.0), now),
            (RefreshAt::LifetimeFraction(f64::MIN_POSITIVE), now),
            (RefreshAt::BeforeExpiry(Duration::MAX), at(now, 50)),
            (RefreshAt::Interval(Duration::MAX), until),
        ] {
            assert_eq!(refresh.refresh_point(now, until), due, "{refresh:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn later_never_overflows() {
        let now = Instant::now();
        assert_eq!(later(now, Duration::from_secs(5)), at(now, 5));
        assert!(later(now, Duration::MAX) >= now + FAR_FUTURE);
    }

    #[test]
    fn invalid_config_names_the_field() {
        for bad in [0.0, -1.0, 1.5, f64::NAN] {
            let err = CacheConfig::default()
                .refresh_at(RefreshAt::LifetimeFraction(bad))
                .validate()
                .unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::Config {
                        field: "refresh_at",
                        ..
                    }
                ),
                "{err}"
            );
        }
        let err = CacheConfig::default()
            .backoff(Duration::from_secs(10), Duration::from_secs(1))
            .validate()
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::Config {
                    field: "backoff",
                    ..
                }
            ),
            "{err}"
        );
        assert!(CacheConfig::default().validate().is_ok());
    }

    #[test]
    fn cached_outside_a_runtime_is_none_and_does_not_panic() {
        let cache = TokenCache::new(|| async { Err(Error::Internal("unused".into())) });
        assert!(cache.cached().is_none());
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
