//! How a cache refreshes and backs off: [`RefreshAt`] and [`CacheConfig`], validated once.

use std::sync::Arc;
use std::time::Duration;

use backon::ExponentialBuilder;
use tokio::time::Instant;

use crate::Error;

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

/// How a [`TokenCache`](super::TokenCache) refreshes and backs off.
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
    pub(super) refresh: RefreshAt,
    pub(super) min_backoff: Duration,
    pub(super) max_backoff: Duration,
    pub(super) rejected_backoff: Duration,
    pub(super) invalidate_cooldown: Duration,
    pub(super) jitter_seed: Option<u64>,
    pub(super) name: Arc<str>,
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

    /// The minimum time between two honoured [`invalidate`](super::TokenCache::invalidate) calls
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

    pub(super) fn backoff_builder(&self) -> ExponentialBuilder {
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
