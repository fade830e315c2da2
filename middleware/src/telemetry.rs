//! Metric names and labels.
//!
//! With the `metrics` feature, the crate records through the [`metrics`](https://docs.rs/metrics)
//! facade (without it, nothing is recorded and the counters below cost nothing): install any recorder (Prometheus exporter,
//! `metrics-util`'s debugging recorder, …) **before** building token sources — each cache
//! registers its counters once, when it is created, so the hot path only adds to an atomic.
//! (The failure counter, one per error kind, is looked up when a failure happens.) The caches
//! of the sources derived from one [`ClientCredentialsSource`](crate::ClientCredentialsSource)
//! (one per cache key) share its name, so their counts add up under one `cache` label.
//!
//! | name | labels | counts |
//! |------|--------|--------|
//! | [`CACHE_HITS`] | `cache` | requests served from the cache |
//! | [`CACHE_MISSES`] | `cache` | requests that found no valid token and waited |
//! | [`TOKEN_FETCHES`] | `cache` | token requests started (initial, expired, invalidated, proactive) |
//! | [`TOKEN_REFRESHES`] | `cache` | proactive refreshes started while the old token was still valid |
//! | [`TOKEN_FAILURES`] | `cache`, `kind` | failed token requests, by [`Error::kind`](crate::Error::kind) |
//! | [`TOKEN_INVALIDATIONS`] | `cache` | tokens dropped after a 401 |
//!
//! Labels never hold a secret or a token: `cache` is the name given with
//! [`CacheConfig::name`](crate::cache::CacheConfig::name), `kind` an OAuth error code or an error
//! category.

use crate::Error;

/// A counter of the `metrics` facade.
#[cfg(feature = "metrics")]
pub(crate) type Counter = metrics::Counter;

/// Without the `metrics` feature: a counter that counts nothing.
#[cfg(not(feature = "metrics"))]
#[derive(Clone, Debug, Default)]
pub(crate) struct Counter;

#[cfg(not(feature = "metrics"))]
impl Counter {
    #[inline(always)]
    pub(crate) fn increment(&self, _value: u64) {}

    /// A counter that counts nothing (as `metrics::Counter::noop`).
    pub(crate) const fn noop() -> Counter {
        Counter
    }
}

/// Requests served from the cache.
pub const CACHE_HITS: &str = "clientcreds_cache_hits_total";
/// Requests that found no valid token.
pub const CACHE_MISSES: &str = "clientcreds_cache_misses_total";
/// Token requests started.
pub const TOKEN_FETCHES: &str = "clientcreds_token_fetches_total";
/// Proactive refreshes started.
pub const TOKEN_REFRESHES: &str = "clientcreds_token_refreshes_total";
/// Failed token requests.
pub const TOKEN_FAILURES: &str = "clientcreds_token_failures_total";
/// Tokens invalidated (after a 401).
pub const TOKEN_INVALIDATIONS: &str = "clientcreds_token_invalidations_total";

/// The counters of one cache, registered once.
pub(crate) struct CacheMetrics {
    name: String,
    pub(crate) hits: Counter,
    pub(crate) misses: Counter,
    pub(crate) fetches: Counter,
    pub(crate) refreshes: Counter,
    pub(crate) invalidations: Counter,
}

impl CacheMetrics {
    #[cfg(not(feature = "metrics"))]
    pub(crate) fn new(name: &str) -> CacheMetrics {
        CacheMetrics {
            name: name.to_owned(),
            hits: Counter,
            misses: Counter,
            fetches: Counter,
            refreshes: Counter,
            invalidations: Counter,
        }
    }

    #[cfg(feature = "metrics")]
    pub(crate) fn new(name: &str) -> CacheMetrics {
        describe();
        let name = name.to_owned();
        CacheMetrics {
            hits: metrics::counter!(CACHE_HITS, "cache" => name.clone()),
            misses: metrics::counter!(CACHE_MISSES, "cache" => name.clone()),
            fetches: metrics::counter!(TOKEN_FETCHES, "cache" => name.clone()),
            refreshes: metrics::counter!(TOKEN_REFRESHES, "cache" => name.clone()),
            invalidations: metrics::counter!(TOKEN_INVALIDATIONS, "cache" => name.clone()),
            name,
        }
    }

    #[cfg(not(feature = "metrics"))]
    pub(crate) fn failure(&self, error: &Error) {
        let _ = (&self.name, error);
    }

    #[cfg(feature = "metrics")]
    pub(crate) fn failure(&self, error: &Error) {
        metrics::counter!(
            TOKEN_FAILURES,
            "cache" => self.name.clone(),
            "kind" => error.kind().to_owned(),
        )
        .increment(1);
    }
}

#[cfg(feature = "metrics")]
fn describe() {
    metrics::describe_counter!(CACHE_HITS, "Requests served with a cached token.");
    metrics::describe_counter!(CACHE_MISSES, "Requests that found no valid cached token.");
    metrics::describe_counter!(TOKEN_FETCHES, "Token requests started.");
    metrics::describe_counter!(
        TOKEN_REFRESHES,
        "Proactive token refreshes started while the previous token was still valid."
    );
    metrics::describe_counter!(TOKEN_FAILURES, "Failed token requests, by error kind.");
    metrics::describe_counter!(TOKEN_INVALIDATIONS, "Tokens dropped after a 401 answer.");
}
