//! The operator's refresh and retry times: the middleware's one
//! [`RefreshPolicy`] with the operator's numbers, applied to wall-clock timestamps (what the
//! token Secrets and the status record). Pure functions of a clock and a jitter sample.
//!
//! ```
//! use clientcreds_operator::refresh::{policy, refresh_at};
//! use jiff::{SignedDuration, Timestamp};
//!
//! let issued: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
//! let expires = issued + SignedDuration::from_secs(900);
//! // half the lifetime, no jitter drawn:
//! assert_eq!(
//!     refresh_at(&policy(0.5), issued, expires, 0.0),
//!     issued + SignedDuration::from_secs(450)
//! );
//! ```

use std::time::Duration;

use clientcreds::refresh::{RefreshAt, RefreshPolicy};
use jiff::{SignedDuration, Timestamp};

/// At most this fraction of a refresh delay or a backoff is taken off as jitter, so that many
/// token Secrets created together do not refresh together.
pub const JITTER_FRACTION: f64 = 0.1;
/// First delay after a failed token request (or token Secret write).
pub const BACKOFF_MIN: Duration = Duration::from_secs(2);
/// Longest delay between attempts after failures while a valid token is stored.
pub const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// Longest delay between attempts once the stored token has expired (pods are failing).
pub const EXPIRED_BACKOFF: Duration = Duration::from_secs(5);
/// The delay after a failure that only a person can fix (`invalid_client`, …).
pub const REJECTED_BACKOFF: Duration = Duration::from_secs(60);
/// Shortest delay between two token requests for one token Secret.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// The operator's policy for tokens refreshed at `fraction` of their lifetime.
pub fn policy(fraction: f64) -> RefreshPolicy {
    RefreshPolicy::default()
        .refresh_at(RefreshAt::LifetimeFraction(fraction))
        .backoff(BACKOFF_MIN, BACKOFF_MAX)
        .expired_backoff(EXPIRED_BACKOFF)
        .rejected_backoff(REJECTED_BACKOFF)
        .min_interval(MIN_INTERVAL)
        .jitter(JITTER_FRACTION)
}

/// When to refresh a token issued at `issued_at` that expires at `expires_at`, by `policy`
/// (`jitter` is a sample in `[0, 1)`). Never before `issued_at` and never after `expires_at`.
pub fn refresh_at(
    policy: &RefreshPolicy,
    issued_at: Timestamp,
    expires_at: Timestamp,
    jitter: f64,
) -> Timestamp {
    let lifetime = until(issued_at, expires_at);
    (issued_at + signed(policy.refresh_delay(lifetime, jitter))).min(expires_at.max(issued_at))
}

/// When to try again at `now` after `failures` consecutive failures (this one included), by
/// `policy`: `valid_until` is the stored token's expiry, `retryable` whether asking again may
/// help and `retry_after` the server's wish. `jitter` is a sample in `[0, 1)`.
pub fn retry_at(
    policy: &RefreshPolicy,
    now: Timestamp,
    failures: u32,
    valid_until: Option<Timestamp>,
    retryable: bool,
    retry_after: Option<Duration>,
    jitter: f64,
) -> Timestamp {
    let remaining = valid_until.map(|v| until(now, v));
    now + signed(policy.retry_delay(failures, remaining, retryable, retry_after, jitter))
}

/// How long from `now` until `at` (zero when `at` has passed).
pub fn until(now: Timestamp, at: Timestamp) -> Duration {
    Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO)
}

/// The earliest of `times`, if any.
pub fn earliest(times: impl IntoIterator<Item = Timestamp>) -> Option<Timestamp> {
    times.into_iter().min()
}

/// `d` as a signed duration (saturating; the policy's delays are at most a year).
fn signed(d: Duration) -> SignedDuration {
    SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn refresh_is_a_fraction_of_the_real_lifetime_with_jitter_earlier() {
        let issued = t("2026-01-01T00:00:00Z");
        let at = |lifetime: i64, fraction: f64, jitter: f64| {
            let expires = issued + SignedDuration::from_secs(lifetime);
            refresh_at(&policy(fraction), issued, expires, jitter).duration_since(issued)
        };
        let s = SignedDuration::from_secs;
        // (lifetime, fraction, jitter sample, refresh after)
        for (lifetime, fraction, jitter, want) in [
            (3600, 0.5, 0.0, s(1800)),
            (3600, 0.75, 0.0, s(2700)),
            (1000, 0.5, 0.5, SignedDuration::from_millis(475_000)),
            (1000, 0.5, 1.0, s(450)),
            (10, 5.0, 0.0, s(10)),
            (0, 0.5, 0.0, s(0)),
            (-5, 0.5, 0.0, s(0)),
            (100, f64::NAN, f64::NAN, s(100)),
            // a 1 s token: the 1 s minimum interval, at its expiry
            (1, 0.5, 0.0, s(1)),
            // a lifetime of 1e9 s: refreshed as if it lived a year
            (1_000_000_000, 0.5, 0.0, s(365 * 86_400 / 2)),
        ] {
            assert_eq!(
                at(lifetime, fraction, jitter),
                want,
                "{lifetime} {fraction}"
            );
        }
    }

    #[test]
    fn retry_times() {
        let now = t("2026-01-01T00:00:00Z");
        let s = SignedDuration::from_secs;
        let p = policy(0.5);
        let at = |failures, valid: Option<i64>, retryable, retry_after: Option<u64>| {
            retry_at(
                &p,
                now,
                failures,
                valid.map(|v| now + s(v)),
                retryable,
                retry_after.map(Duration::from_secs),
                0.0,
            )
            .duration_since(now)
        };
        assert_eq!(at(1, None, true, None), s(2));
        assert_eq!(at(2, Some(6000), true, None), s(4));
        assert_eq!(at(30, Some(6000), true, None), s(300));
        assert_eq!(at(30, Some(60), true, None), s(30), "half the remaining");
        assert_eq!(at(30, Some(2), true, None), s(5), "no burst near expiry");
        assert_eq!(at(30, None, true, None), s(5), "expired: within seconds");
        assert_eq!(
            at(30, Some(-60), true, None),
            s(5),
            "expired: within seconds"
        );
        assert_eq!(at(1, Some(6000), false, None), s(60), "rejected");
        assert_eq!(at(1, None, true, Some(45)), s(45), "retry_after");
    }

    #[test]
    fn until_and_earliest() {
        let now = t("2026-01-01T00:00:00Z");
        assert_eq!(
            until(now, now + SignedDuration::from_secs(3)),
            Duration::from_secs(3)
        );
        assert_eq!(
            until(now, now - SignedDuration::from_secs(3)),
            Duration::ZERO
        );
        let a = now + SignedDuration::from_secs(9);
        let b = now + SignedDuration::from_secs(2);
        assert_eq!(earliest([a, b]), Some(b));
        assert_eq!(earliest([]), None);
    }
}
