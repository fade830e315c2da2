//! Refresh-time arithmetic: pure functions of the token's times, the policy and a clock.
//!
//! ```
//! use clientcreds_operator::refresh::refresh_at;
//! use jiff::{SignedDuration, Timestamp};
//!
//! let issued: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
//! let expires = issued + SignedDuration::from_secs(900);
//! // half the lifetime, no jitter drawn:
//! assert_eq!(refresh_at(issued, expires, 0.5, 0.0), issued + SignedDuration::from_secs(450));
//! ```

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

/// At most this fraction of the refresh delay is taken off as jitter, so that many token Secrets
/// created together do not refresh together.
pub const JITTER_FRACTION: f64 = 0.1;
/// First delay after a failed token request.
pub const BACKOFF_MIN: Duration = Duration::from_secs(2);
/// Longest delay between attempts after failures (when the token does not expire sooner).
pub const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// Shortest delay between attempts.
pub const RETRY_FLOOR: Duration = Duration::from_secs(1);

/// When to refresh a token issued at `issued_at` that expires at `expires_at`: after `fraction`
/// of its real lifetime, minus up to [`JITTER_FRACTION`] of that delay (`jitter` is a sample in
/// `[0, 1)`). Never before `issued_at` and never after `expires_at`.
pub fn refresh_at(
    issued_at: Timestamp,
    expires_at: Timestamp,
    fraction: f64,
    jitter: f64,
) -> Timestamp {
    let lifetime = expires_at.duration_since(issued_at);
    if lifetime <= SignedDuration::ZERO {
        return issued_at;
    }
    let fraction = if fraction.is_finite() {
        fraction.clamp(0.0, 1.0)
    } else {
        0.5
    };
    let jitter = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let delay = lifetime.as_secs_f64() * fraction;
    let delay = delay - delay * JITTER_FRACTION * jitter;
    let delay = SignedDuration::try_from_secs_f64(delay.max(0.0)).unwrap_or(lifetime);
    (issued_at + delay).min(expires_at)
}

/// The delay before the next attempt after `failures` consecutive failed token requests
/// (`failures >= 1`).
///
/// Exponential from [`BACKOFF_MIN`] to [`BACKOFF_MAX`] with up to 20 % jitter taken off; while the
/// stored token is still valid the delay stays below half of its remaining lifetime, so there are
/// several more attempts before it expires. A server's `retry_after` is honoured: the delay is
/// never shorter than it.
pub fn retry_delay(
    now: Timestamp,
    failures: u32,
    expires_at: Option<Timestamp>,
    retry_after: Option<Duration>,
    jitter: f64,
) -> Duration {
    let exp = failures.saturating_sub(1).min(16);
    let backoff = BACKOFF_MIN.saturating_mul(1u32 << exp).min(BACKOFF_MAX);
    let jitter = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let mut delay = backoff.mul_f64(1.0 - 0.2 * jitter);
    if let Some(expires_at) = expires_at {
        let remaining = expires_at.duration_since(now);
        if remaining > SignedDuration::ZERO {
            let half = Duration::try_from(remaining / 2).unwrap_or(Duration::ZERO);
            delay = delay.min(half);
        }
    }
    delay = delay.max(RETRY_FLOOR);
    match retry_after {
        Some(retry_after) => delay.max(retry_after),
        None => delay,
    }
}

/// How long from `now` until `at` (zero when `at` has passed).
pub fn until(now: Timestamp, at: Timestamp) -> Duration {
    Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO)
}

/// The earliest of `times`, if any.
pub fn earliest(times: impl IntoIterator<Item = Timestamp>) -> Option<Timestamp> {
    times.into_iter().min()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn refresh_is_a_fraction_of_the_real_lifetime() {
        let issued = t("2026-01-01T00:00:00Z");
        let expires = issued + SignedDuration::from_secs(3600);
        assert_eq!(
            refresh_at(issued, expires, 0.5, 0.0),
            issued + SignedDuration::from_secs(1800)
        );
        assert_eq!(
            refresh_at(issued, expires, 0.75, 0.0),
            issued + SignedDuration::from_secs(2700)
        );
    }

    #[test]
    fn jitter_only_moves_refresh_earlier_and_by_at_most_ten_percent() {
        let issued = t("2026-01-01T00:00:00Z");
        let expires = issued + SignedDuration::from_secs(1000);
        let latest = refresh_at(issued, expires, 0.5, 0.0);
        let earliest = refresh_at(issued, expires, 0.5, 0.999_999);
        assert!(earliest < latest);
        assert!(earliest >= issued + SignedDuration::from_secs(450));
        let mid = refresh_at(issued, expires, 0.5, 0.5);
        assert_eq!(mid, issued + SignedDuration::from_millis(475_000));
    }

    #[test]
    fn refresh_never_after_expiry_nor_before_issue() {
        let issued = t("2026-01-01T00:00:00Z");
        let expires = issued + SignedDuration::from_secs(10);
        assert!(refresh_at(issued, expires, 5.0, 0.0) <= expires);
        assert_eq!(refresh_at(issued, issued, 0.5, 0.0), issued);
        assert_eq!(
            refresh_at(issued, issued - SignedDuration::from_secs(5), 0.5, 0.0),
            issued
        );
        assert!(refresh_at(issued, expires, f64::NAN, f64::NAN) >= issued);
    }

    #[test]
    fn backoff_grows_exponentially_up_to_the_cap() {
        let now = t("2026-01-01T00:00:00Z");
        assert_eq!(retry_delay(now, 1, None, None, 0.0), Duration::from_secs(2));
        assert_eq!(retry_delay(now, 2, None, None, 0.0), Duration::from_secs(4));
        assert_eq!(
            retry_delay(now, 5, None, None, 0.0),
            Duration::from_secs(32)
        );
        assert_eq!(retry_delay(now, 30, None, None, 0.0), BACKOFF_MAX);
        assert_eq!(
            retry_delay(now, 1, None, None, 1.0),
            Duration::from_millis(1600)
        );
    }

    #[test]
    fn backoff_stays_below_the_remaining_lifetime() {
        let now = t("2026-01-01T00:00:00Z");
        let expires = now + SignedDuration::from_secs(60);
        assert_eq!(
            retry_delay(now, 30, Some(expires), None, 0.0),
            Duration::from_secs(30)
        );
        // an expired token does not shorten the back-off
        let expired = now - SignedDuration::from_secs(60);
        assert_eq!(retry_delay(now, 30, Some(expired), None, 0.0), BACKOFF_MAX);
        // never a hot loop
        let almost = now + SignedDuration::from_millis(100);
        assert_eq!(retry_delay(now, 3, Some(almost), None, 0.0), RETRY_FLOOR);
    }

    #[test]
    fn retry_after_is_honoured() {
        let now = t("2026-01-01T00:00:00Z");
        let expires = now + SignedDuration::from_secs(60);
        let d = retry_delay(now, 1, Some(expires), Some(Duration::from_secs(45)), 0.0);
        assert_eq!(d, Duration::from_secs(45));
        let d = retry_delay(now, 6, None, Some(Duration::from_secs(5)), 0.0);
        assert_eq!(d, Duration::from_secs(64));
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
