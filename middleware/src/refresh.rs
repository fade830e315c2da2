//! The one refresh and backoff policy, shared by [`TokenCache`](crate::TokenCache) and the
//! Kubernetes operator: when a token is refreshed, how long to wait after a failed attempt, and
//! how long a provider may say a token lives.
//!
//! [`RefreshPolicy`] is pure: every method is a function of durations and a jitter sample in
//! `[0, 1)`, with no clock and no random source of its own, so the cache (monotonic
//! [`Instant`](tokio::time::Instant)s) and the operator (wall-clock timestamps written to
//! Secrets) apply the same rules to their own clocks.
//!
//! The rules:
//! - **Refresh point**: at [`RefreshAt`] of the token's lifetime, moved earlier by up to
//!   [`jitter`](RefreshPolicy::jitter) of that delay, never later than expiry and never sooner
//!   than [`min_interval`](RefreshPolicy::min_interval) after it arrived (unless it expires
//!   sooner): a provider that issues one-second tokens gets at most one request per interval.
//! - **Backoff** after `n` consecutive failures: `min_backoff · 2ⁿ⁻¹` up to `max_backoff`,
//!   less up to `jitter` of it; [`rejected_backoff`](RefreshPolicy::rejected_backoff) (no
//!   jitter) for an error that asking again will not fix (`invalid_client`, …).
//!   - while a valid token remains, the delay stays below half its remaining lifetime, so
//!     there are several more attempts before it expires — but never below
//!     [`expired_backoff`](RefreshPolicy::expired_backoff): no once-a-second bursts near expiry;
//!   - once no valid token remains (callers are failing), a retryable failure is retried after
//!     at most [`expired_backoff`](RefreshPolicy::expired_backoff) (default 5 s), so a provider
//!     that comes back is used within seconds, not minutes;
//!   - never sooner than [`min_interval`](RefreshPolicy::min_interval), and never sooner than
//!     the server's `retry_after` (itself capped at [`MAX_RETRY_AFTER`](crate::MAX_RETRY_AFTER)).
//! - **Lifetimes** are clamped to at most [`MAX_LIFETIME`] (one year): an `expires_in` of
//!   `1e12` is a one-year token, not an error and not "now" (see
//!   [`clamp_lifetime`](RefreshPolicy::clamp_lifetime)). Lifetimes are never lengthened: a
//!   token that lives less than `min_interval` is refreshed at its expiry.
//!
//! ```
//! use std::time::Duration;
//! use clientcreds::refresh::{RefreshAt, RefreshPolicy};
//!
//! let policy = RefreshPolicy::default().refresh_at(RefreshAt::LifetimeFraction(0.5));
//! let hour = Duration::from_secs(3600);
//! // half the lifetime, no jitter drawn:
//! assert_eq!(policy.refresh_delay(hour, 0.0), Duration::from_secs(1800));
//! // a third failure, 40 s of a valid token left: 4 s, below half of what is left
//! assert_eq!(
//!     policy.retry_delay(3, Some(Duration::from_secs(40)), true, None, 0.0),
//!     Duration::from_secs(4)
//! );
//! // the tenth failure and the token has expired: retried within seconds
//! assert_eq!(policy.retry_delay(10, None, true, None, 0.0), Duration::from_secs(5));
//! ```

use std::time::Duration;

use crate::Error;

/// The longest token lifetime believed: one year. A provider that says more (an `expires_in`
/// of `1e12`) gets a token refreshed as if it lived a year.
pub const MAX_LIFETIME: Duration = Duration::from_secs(365 * 86_400);

/// When a token is refreshed, relative to its remaining lifetime at the time it arrived.
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
    /// How long after its arrival a token that lives `remaining` is refreshed: never after
    /// `remaining`.
    ///
    /// Total for any value: a lifetime fraction outside `(0, 1]` is clamped to `[0, 1]`, and NaN
    /// counts as 1 (policies refuse such a configuration: see [`RefreshPolicy::validate`]).
    pub fn delay(&self, remaining: Duration) -> Duration {
        match *self {
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
        }
    }

    /// The instant at which a token that is valid until `valid_until` should be refreshed:
    /// never before `now`, never after `valid_until` (no jitter, no minimum interval: see
    /// [`RefreshPolicy::refresh_delay`] for those).
    pub fn refresh_point(
        &self,
        now: tokio::time::Instant,
        valid_until: tokio::time::Instant,
    ) -> tokio::time::Instant {
        let remaining = valid_until.saturating_duration_since(now);
        now.checked_add(self.delay(remaining))
            .unwrap_or(valid_until)
            .max(now)
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

/// When to refresh and how to back off; see the [module documentation](self).
///
/// ```
/// use std::time::Duration;
/// use clientcreds::refresh::RefreshPolicy;
///
/// let policy = RefreshPolicy::default()
///     .backoff(Duration::from_secs(2), Duration::from_secs(300))
///     .expired_backoff(Duration::from_secs(3));
/// assert!(policy.validate().is_ok());
/// // a server's retry_after wins over everything else
/// let wait = policy.retry_delay(1, None, true, Some(Duration::from_secs(30)), 0.0);
/// assert_eq!(wait, Duration::from_secs(30));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RefreshPolicy {
    refresh: RefreshAt,
    min_interval: Duration,
    min_backoff: Duration,
    max_backoff: Duration,
    expired_backoff: Duration,
    rejected_backoff: Duration,
    jitter: f64,
}

impl Default for RefreshPolicy {
    /// 60 s before expiry (at most half the lifetime), 1 s minimum interval, backoff 1 s to
    /// 60 s, 5 s once expired, 5 min after a rejection, 20 % jitter.
    fn default() -> Self {
        RefreshPolicy {
            refresh: RefreshAt::default(),
            min_interval: Duration::from_secs(1),
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            expired_backoff: Duration::from_secs(5),
            rejected_backoff: Duration::from_secs(300),
            jitter: 0.2,
        }
    }
}

impl RefreshPolicy {
    /// When tokens are refreshed (default: 60 s before expiry, at most half the lifetime).
    pub fn refresh_at(mut self, refresh: RefreshAt) -> Self {
        self.refresh = refresh;
        self
    }

    /// The configured refresh point.
    pub fn refresh(&self) -> RefreshAt {
        self.refresh
    }

    /// The shortest time between two token requests of one token, refresh or retry (default
    /// 1 s). A server's `retry_after` may ask for longer, never for less.
    pub fn min_interval(mut self, interval: Duration) -> Self {
        self.min_interval = interval;
        self
    }

    /// The first and the largest delay of the exponential backoff after retryable failures
    /// (default 1 s and 60 s).
    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        self.min_backoff = min;
        self.max_backoff = max;
        self
    }

    /// The longest delay between retryable attempts once no valid token remains (default 5 s),
    /// and the shortest one the remaining lifetime may bring the backoff down to before.
    pub fn expired_backoff(mut self, delay: Duration) -> Self {
        self.expired_backoff = delay;
        self
    }

    /// The delay after a failure that will not go away by asking again (`invalid_client`,
    /// `access_denied`, bad configuration …; see [`Error::is_retryable`]). Default five minutes
    /// (still below half of a valid token's remaining lifetime).
    pub fn rejected_backoff(mut self, delay: Duration) -> Self {
        self.rejected_backoff = delay;
        self
    }

    /// At most this fraction of a refresh delay or a backoff is taken off at random, so that
    /// many tokens do not refresh together (default 0.2; 0 to 1).
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.jitter = fraction;
        self
    }

    /// Checks the configuration; the error names the field and what to set.
    pub fn validate(&self) -> Result<(), Error> {
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
        if self.expired_backoff.is_zero() {
            return Err(Error::Config {
                field: "expired_backoff",
                message: "the delay between attempts once a token has expired must be greater \
                          than zero; use e.g. 5 s"
                    .into(),
            });
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(Error::Config {
                field: "jitter",
                message: format!(
                    "the jitter fraction must be between 0 and 1 (got {}); use e.g. 0.2",
                    self.jitter
                ),
            });
        }
        Ok(())
    }

    /// A provider's lifetime as believed: at most [`MAX_LIFETIME`].
    pub fn clamp_lifetime(lifetime: Duration) -> Duration {
        lifetime.min(MAX_LIFETIME)
    }

    /// How long after its arrival a token that lives `lifetime` is refreshed: at the
    /// [`RefreshAt`] point less up to `jitter` of it (`sample` in `[0, 1)`; 0 takes nothing
    /// off), at least [`min_interval`](Self::min_interval), never after `lifetime`.
    pub fn refresh_delay(&self, lifetime: Duration, sample: f64) -> Duration {
        let lifetime = Self::clamp_lifetime(lifetime);
        let delay = self.refresh.delay(lifetime);
        let delay = delay.saturating_sub(delay.mul_f64(self.jitter_of(sample)));
        delay.max(self.min_interval).min(lifetime)
    }

    /// The delay before the next attempt after `failures` consecutive failed attempts
    /// (`failures >= 1`; 0 counts as 1), with `remaining` the lifetime left of the token in
    /// service (`None` or zero: none is valid), whether asking again may help (`retryable`, see
    /// [`Error::is_retryable`]) and the server's `retry_after`. `sample` is a jitter sample in
    /// `[0, 1)`. See the [module documentation](self) for the rules.
    pub fn retry_delay(
        &self,
        failures: u32,
        remaining: Option<Duration>,
        retryable: bool,
        retry_after: Option<Duration>,
        sample: f64,
    ) -> Duration {
        let remaining = remaining.filter(|r| !r.is_zero());
        // A rejection waits exactly as configured (no jitter: a person has to act).
        let mut delay = if retryable {
            let steps = failures.saturating_sub(1).min(31);
            let delay = self
                .min_backoff
                .saturating_mul(1u32 << steps)
                .min(self.max_backoff);
            delay.saturating_sub(delay.mul_f64(self.jitter_of(sample)))
        } else {
            self.rejected_backoff
        };
        match remaining {
            // Several more attempts before expiry, but no bursts as it nears.
            Some(remaining) => delay = delay.min((remaining / 2).max(self.expired_backoff)),
            // Nothing valid to serve: come back soon (unless asking again cannot help).
            None if retryable => delay = delay.min(self.expired_backoff),
            None => {}
        }
        delay = delay.max(self.min_interval);
        match retry_after {
            Some(wait) => delay.max(wait.min(crate::MAX_RETRY_AFTER)),
            None => delay,
        }
    }

    /// [`retry_delay`](Self::retry_delay) for `error`.
    pub fn retry_delay_after(
        &self,
        error: &Error,
        failures: u32,
        remaining: Option<Duration>,
        sample: f64,
    ) -> Duration {
        self.retry_delay(
            failures,
            remaining,
            error.is_retryable(),
            error.retry_after(),
            sample,
        )
    }

    fn jitter_of(&self, sample: f64) -> f64 {
        let sample = if sample.is_finite() {
            sample.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let jitter = if self.jitter.is_finite() {
            self.jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        sample * jitter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    #[test]
    fn refresh_delays() {
        let half = RefreshPolicy::default().refresh_at(RefreshAt::LifetimeFraction(0.5));
        let tenth_jitter = half.jitter(0.1);
        let before = RefreshPolicy::default();
        let cases: &[(&str, RefreshPolicy, Duration, f64, Duration)] = &[
            ("half of an hour", half, s(3600), 0.0, s(1800)),
            ("jitter takes off", tenth_jitter, s(1000), 0.5, s(475)),
            (
                "jitter at most its fraction",
                tenth_jitter,
                s(1000),
                1.0,
                s(450),
            ),
            ("60 s before expiry", before, s(3600), 0.0, s(3540)),
            ("margin capped at half", before, s(100), 0.0, s(50)),
            ("a 1 s token: at expiry", half, s(1), 0.0, s(1)),
            (
                "a 3 s token: the 1 s floor",
                half.jitter(1.0),
                s(3),
                0.9,
                s(1),
            ),
            (
                "a 1e12 s token: a year",
                half,
                s(1_000_000_000_000),
                0.0,
                MAX_LIFETIME / 2,
            ),
            (
                "a zero lifetime: now",
                half,
                Duration::ZERO,
                0.0,
                Duration::ZERO,
            ),
            ("NaN jitter: none", half, s(100), f64::NAN, s(50)),
        ];
        for (name, policy, lifetime, sample, want) in cases {
            assert_eq!(policy.refresh_delay(*lifetime, *sample), *want, "{name}");
        }
    }

    #[test]
    fn retry_delays() {
        let p = RefreshPolicy::default().backoff(s(2), s(300)).jitter(0.2);
        let r = Some;
        // (name, failures, remaining, retryable, retry_after, sample, expected)
        type Case = (
            &'static str,
            u32,
            Option<Duration>,
            bool,
            Option<Duration>,
            f64,
            Duration,
        );
        let cases: &[Case] = &[
            ("first failure", 1, None, true, None, 0.0, s(2)),
            (
                "zero failures count as one",
                0,
                r(s(600)),
                true,
                None,
                0.0,
                s(2),
            ),
            ("exponential", 4, r(s(6000)), true, None, 0.0, s(16)),
            ("capped", 30, r(s(6000)), true, None, 0.0, s(300)),
            (
                "huge failure count",
                u32::MAX,
                r(s(6000)),
                true,
                None,
                0.0,
                s(300),
            ),
            ("jitter takes off", 30, r(s(6000)), true, None, 0.5, s(270)),
            (
                "below half the remaining",
                30,
                r(s(60)),
                true,
                None,
                0.0,
                s(30),
            ),
            ("no burst near expiry", 30, r(s(2)), true, None, 0.0, s(5)),
            ("expired: short cap", 30, None, true, None, 0.0, s(5)),
            (
                "expired (zero left): short cap",
                30,
                r(Duration::ZERO),
                true,
                None,
                0.0,
                s(5),
            ),
            ("expired, early: backoff", 1, None, true, None, 0.0, s(2)),
            ("rejected", 1, r(s(6000)), false, None, 0.0, s(300)),
            (
                "rejected, below half the remaining",
                1,
                r(s(100)),
                false,
                None,
                0.0,
                s(50),
            ),
            (
                "rejected and expired: no hammering",
                1,
                None,
                false,
                None,
                0.0,
                s(300),
            ),
            ("rejected: no jitter", 1, None, false, None, 0.9, s(300)),
            ("retry_after wins", 1, None, true, r(s(45)), 0.0, s(45)),
            (
                "retry_after below backoff",
                6,
                r(s(6000)),
                true,
                r(s(5)),
                0.0,
                s(64),
            ),
            (
                "retry_after capped",
                1,
                None,
                true,
                r(Duration::MAX),
                0.0,
                crate::MAX_RETRY_AFTER,
            ),
        ];
        for (name, failures, remaining, retryable, retry_after, sample, want) in cases {
            let got = p.retry_delay(*failures, *remaining, *retryable, *retry_after, *sample);
            assert_eq!(got, *want, "{name}");
        }
    }

    #[test]
    fn the_minimum_interval_is_a_floor_for_every_delay() {
        let p = RefreshPolicy::default()
            .backoff(Duration::from_millis(10), Duration::from_millis(20))
            .expired_backoff(Duration::from_millis(10))
            .min_interval(s(1));
        assert_eq!(p.retry_delay(1, None, true, None, 0.0), s(1));
        assert_eq!(
            p.retry_delay(9, Some(Duration::from_millis(1)), true, None, 0.9),
            s(1)
        );
        let p = p.refresh_at(RefreshAt::Interval(Duration::from_millis(1)));
        assert_eq!(p.refresh_delay(s(3600), 0.0), s(1));
    }

    #[test]
    fn lifetimes_are_clamped_to_a_year() {
        assert_eq!(RefreshPolicy::clamp_lifetime(Duration::MAX), MAX_LIFETIME);
        assert_eq!(RefreshPolicy::clamp_lifetime(s(900)), s(900));
    }

    #[test]
    fn invalid_policies_name_the_field() {
        let field = |p: RefreshPolicy| match p.validate() {
            Err(Error::Config { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            field(RefreshPolicy::default().refresh_at(RefreshAt::LifetimeFraction(1.5))),
            "refresh_at"
        );
        assert_eq!(
            field(RefreshPolicy::default().backoff(s(10), s(1))),
            "backoff"
        );
        assert_eq!(
            field(RefreshPolicy::default().backoff(Duration::ZERO, s(1))),
            "backoff"
        );
        assert_eq!(
            field(RefreshPolicy::default().expired_backoff(Duration::ZERO)),
            "expired_backoff"
        );
        assert_eq!(field(RefreshPolicy::default().jitter(f64::NAN)), "jitter");
        assert_eq!(field(RefreshPolicy::default().jitter(1.5)), "jitter");
        assert!(RefreshPolicy::default().validate().is_ok());
    }
}
