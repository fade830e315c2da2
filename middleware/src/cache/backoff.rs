//! What a run of failed fetches leaves behind: the backoff, the instant before which no new
//! fetch starts, and the error that callers without a token get meanwhile.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff};
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

/// The failures since the last successful fetch.
#[derive(Default)]
pub(super) struct Failures {
    /// The backoff of the current run of failures.
    backoff: Option<ExponentialBackoff>,
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

    /// Records a failed fetch at `now`: returns the delay before the next attempt and the
    /// instant it is due.
    pub(super) fn record(
        &mut self,
        config: &CacheConfig,
        error: &Error,
        now: Instant,
    ) -> (Duration, Instant) {
        let delay = self.delay_after(config, error);
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

    /// The delay before the next attempt after `error`.
    fn delay_after(&mut self, config: &CacheConfig, error: &Error) -> Duration {
        let base = if error.is_retryable() {
            self.backoff
                .get_or_insert_with(|| config.backoff_builder().build())
                .next()
                .unwrap_or(config.max_backoff)
        } else {
            config.rejected_backoff
        };
        // `retry_after` is capped at MAX_RETRY_AFTER by `Error::retry_after`.
        base.max(error.retry_after().unwrap_or_default())
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
}
