//! What a run of failed fetches leaves behind: the backoff, the instant before which no new
//! fetch starts, and the error that callers without a token get meanwhile.

use std::time::Duration;

use std::hash::{BuildHasher, RandomState};

use tokio::time::Instant;

use super::config::CacheConfig;
use crate::Error;

/// How far ahead "never" is for a delay that does not fit the clock (`Duration::MAX` as a
/// configured backoff): about 30 years, as tokio's own timers do.
pub(super) const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);

/// `now + by` without overflow: a delay the clock cannot represent ends in the far future.
pub(super) fn later(now: Instant, by: Duration) -> Instant {
    now.checked_add(by)
        .or_else(|| now.checked_add(by.min(FAR_FUTURE)))
        .unwrap_or(now)
}

/// Jitter samples in `[0, 1)`: SplitMix64, seeded from [`CacheConfig::jitter_seed`] or from
/// the process's random hasher keys (jitter needs spread, not secrecy).
struct Jitter(u64);

impl Jitter {
    fn new(seed: Option<u64>) -> Jitter {
        Jitter(seed.unwrap_or_else(|| RandomState::new().hash_one(0x5eed_u64)))
    }

    fn sample(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The failures since the last successful fetch.
#[derive(Default)]
pub(super) struct Failures {
    /// Consecutive failed fetches.
    count: u32,
    /// The jitter source, made at the first failure.
    jitter: Option<Jitter>,
    /// No new fetch starts before this instant.
    not_before: Option<Instant>,
    /// The error of the last fetch, while a backoff runs.
    last_error: Option<Error>,
}

impl Failures {
    /// A fetch succeeded: the run of failures is over.
    pub(super) fn clear(&mut self) {
        *self = Failures::default();
    }

    /// Records a failed fetch at `now`, with `remaining` the lifetime left of the token in
    /// service (`None`: none is valid): returns the delay before the next attempt (by the
    /// [`RefreshPolicy`](crate::refresh::RefreshPolicy)) and the instant it is due.
    pub(super) fn record(
        &mut self,
        config: &CacheConfig,
        error: &Error,
        remaining: Option<Duration>,
        now: Instant,
    ) -> (Duration, Instant) {
        self.count = self.count.saturating_add(1);
        let sample = self
            .jitter
            .get_or_insert_with(|| Jitter::new(config.jitter_seed))
            .sample();
        let delay = config
            .policy
            .retry_delay_after(error, self.count, remaining, sample);
        let retry_at = later(now, delay);
        self.not_before = Some(retry_at);
        self.last_error = Some(error.clone());
        (delay, retry_at)
    }

    /// Whether a backoff runs at `now` (no fetch may start).
    pub(super) fn backing_off(&self, now: Instant) -> bool {
        self.not_before.is_some_and(|not_before| now < not_before)
    }

    /// The error to answer at once at `now`, while a backoff runs.
    pub(super) fn pending_error(&self, now: Instant) -> Option<&Error> {
        self.last_error.as_ref().filter(|_| self.backing_off(now))
    }

    /// The error of the last fetch while its backoff runs (`None` after a success).
    pub(super) fn last_error(&self) -> Option<&Error> {
        self.last_error.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn later_never_overflows() {
        let now = Instant::now();
        assert_eq!(
            later(now, Duration::from_secs(5)),
            now + Duration::from_secs(5)
        );
        assert!(later(now, Duration::MAX) >= now + FAR_FUTURE);
    }

    #[test]
    fn jitter_samples_are_in_range_and_seeded() {
        let mut a = Jitter::new(Some(7));
        let mut b = Jitter::new(Some(7));
        for _ in 0..1000 {
            let x = a.sample();
            assert!((0.0..1.0).contains(&x), "{x}");
            assert_eq!(x.to_bits(), b.sample().to_bits());
        }
    }
}
