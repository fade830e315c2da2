//! How a cache refreshes and backs off: [`CacheConfig`] around the shared
//! [`RefreshPolicy`], validated once.

use std::sync::Arc;
use std::time::Duration;

use crate::Error;
use crate::refresh::{RefreshAt, RefreshPolicy};

/// How a [`TokenCache`](super::TokenCache) refreshes and backs off: the shared
/// [`RefreshPolicy`] (its builder methods are mirrored here), plus what only a cache has.
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
    pub(super) policy: RefreshPolicy,
    pub(super) invalidate_cooldown: Duration,
    pub(super) wait_timeout: Option<Duration>,
    pub(super) jitter_seed: Option<u64>,
    pub(super) name: Arc<str>,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            policy: RefreshPolicy::default(),
            invalidate_cooldown: Duration::from_secs(10),
            wait_timeout: None,
            jitter_seed: None,
            name: Arc::from("default"),
        }
    }
}

impl CacheConfig {
    /// The whole refresh and backoff policy (replaces what the methods below set).
    pub fn policy(mut self, policy: RefreshPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The refresh and backoff policy in force.
    pub fn refresh_policy(&self) -> &RefreshPolicy {
        &self.policy
    }

    /// When tokens are refreshed (default: 60 s before expiry, at most half the lifetime).
    pub fn refresh_at(mut self, refresh: RefreshAt) -> Self {
        self.policy = self.policy.refresh_at(refresh);
        self
    }

    /// The configured refresh point.
    pub fn refresh(&self) -> RefreshAt {
        self.policy.refresh()
    }

    /// The first and the largest delay of the exponential backoff after retryable failures
    /// (default 1 s and 60 s); see [`RefreshPolicy`] for the jitter and the bounds.
    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        self.policy = self.policy.backoff(min, max);
        self
    }

    /// The shortest time between two fetches (default 1 s): see
    /// [`RefreshPolicy::min_interval`].
    pub fn min_interval(mut self, interval: Duration) -> Self {
        self.policy = self.policy.min_interval(interval);
        self
    }

    /// The longest delay between retryable attempts once no valid token is cached (default
    /// 5 s): see [`RefreshPolicy::expired_backoff`].
    pub fn expired_backoff(mut self, delay: Duration) -> Self {
        self.policy = self.policy.expired_backoff(delay);
        self
    }

    /// The delay after a failure that will not go away by asking again (`invalid_client`,
    /// `access_denied`, bad configuration …; see [`Error::is_retryable`]). Default five minutes.
    pub fn rejected_backoff(mut self, delay: Duration) -> Self {
        self.policy = self.policy.rejected_backoff(delay);
        self
    }

    /// The minimum time between two honoured [`invalidate`](super::TokenCache::invalidate) calls
    /// (default 10 s). An API that answers 401 to every token (a missing permission, a wrong
    /// audience) then causes at most one extra token request per cooldown, not one per API
    /// request — some providers terminate clients that request too many tokens.
    pub fn invalidate_cooldown(mut self, cooldown: Duration) -> Self {
        self.invalidate_cooldown = cooldown;
        self
    }

    /// The longest a caller without a valid token waits for the token request in flight
    /// (default: no deadline of its own — as long as the request, which the
    /// [`HttpClient`](crate::HttpClient)'s timeout bounds). A caller that waits longer gets
    /// [`Error::WaitTimedOut`]; the request goes on, and its token serves the next callers.
    pub fn wait_timeout(mut self, deadline: Duration) -> Self {
        self.wait_timeout = Some(deadline);
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
        if self.wait_timeout.is_some_and(|d| d.is_zero()) {
            return Err(Error::Config {
                field: "wait_timeout",
                message: "a zero deadline would fail every caller that has to wait for a \
                          token; use e.g. 5 s"
                    .into(),
            });
        }
        self.policy.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

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
}
