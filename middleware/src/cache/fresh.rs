//! Freshness: the token in service, and how the hot path knows, without reading the clock,
//! that it is still well before its refresh point.
//!
//! A stored token is *fresh* from the moment it is stored until `fresh_until`, the earlier of
//! its refresh point and `valid_until − min(remaining lifetime / 10, 5 s)`. A timer task on the
//! runtime that stored it ends the fresh window (and then, at the refresh point, starts the
//! background refresh). While a token is fresh, readers need no clock: a flag in the entry,
//! or — for a [`FreshAuthorization`] kept by a service — one atomic load of the cache's
//! *epoch*, a counter that moves whenever the token in service changes or stops being fresh.
//! After the window, every read checks the clock as usual, so the refresh point and the expiry
//! are as exact as the clock (see [`TokenCache`](super::TokenCache) for the margin).

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::telemetry::Counter;
use arc_swap::{ArcSwapOption, Guard};
use http::HeaderValue;
use tokio::time::Instant;

use crate::Token;

/// The most a fresh window stops short of expiry: `min(remaining lifetime / 10, this)`.
const EXPIRY_GUARD: Duration = Duration::from_secs(5);

/// A cached token and the instant its refresh (or the next attempt after a failure) is due.
pub(super) struct Entry {
    pub(super) token: Arc<Token>,
    pub(super) refresh_at: Instant,
    /// Set while the token is fresh (see the module documentation).
    fresh: AtomicBool,
}

impl Entry {
    /// Whether the token is fresh: valid and before its refresh point, no clock needed.
    pub(super) fn is_fresh(&self) -> bool {
        self.fresh.load(Ordering::Acquire)
    }
}

/// The token in service and its epoch.
pub(crate) struct Current {
    entry: ArcSwapOption<Entry>,
    /// Moves (after the change is visible) whenever `entry` is replaced or stops being fresh.
    epoch: Arc<AtomicU64>,
}

impl Current {
    pub(crate) fn new() -> Current {
        Current {
            entry: ArcSwapOption::empty(),
            epoch: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The entry in service.
    pub(super) fn load(&self) -> Guard<Option<Arc<Entry>>> {
        self.entry.load()
    }

    /// The entry in service, as an `Arc`.
    pub(super) fn load_full(&self) -> Option<Arc<Entry>> {
        self.entry.load_full()
    }

    /// Takes the token out of service.
    pub(super) fn clear(&self) {
        self.entry.store(None);
        self.epoch.fetch_add(1, Ordering::Release);
    }

    /// Puts `token` in service with its refresh point. Inside a tokio runtime, and when the
    /// fresh window is not empty, it starts fresh and a timer task on that runtime ends the
    /// window, then calls `at_refresh_point` at `refresh_at` (an idle client keeps a fresh
    /// token). The task holds only what `at_refresh_point` holds: make that weak.
    pub(crate) fn publish<F>(
        &self,
        token: Arc<Token>,
        refresh_at: Instant,
        now: Instant,
        at_refresh_point: F,
    ) where
        F: FnOnce() + Send + 'static,
    {
        let fresh_until = fresh_until(&token, refresh_at, now);
        let entry = Arc::new(Entry {
            token,
            refresh_at,
            fresh: AtomicBool::new(false),
        });
        if now < fresh_until
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            entry.fresh.store(true, Ordering::Release);
            let guard = EndFresh {
                entry: Arc::downgrade(&entry),
                epoch: Arc::clone(&self.epoch),
            };
            runtime.spawn(async move {
                tokio::time::sleep_until(fresh_until).await;
                drop(guard);
                tokio::time::sleep_until(refresh_at).await;
                at_refresh_point();
            });
        }
        self.entry.store(Some(entry));
        self.epoch.fetch_add(1, Ordering::Release);
    }

    /// The header of the token in service with a clock-free freshness check, if it is fresh.
    pub(crate) fn fresh_authorization(&self, hits: &Counter) -> Option<FreshAuthorization> {
        // The epoch first: a change after this load moves it past `generation`; a change
        // before it is visible to the loads below (release/acquire on the epoch).
        let generation = self.epoch.load(Ordering::Acquire);
        let guard = self.entry.load();
        let entry = guard.as_ref().filter(|entry| entry.is_fresh())?;
        Some(FreshAuthorization {
            epoch: Arc::clone(&self.epoch),
            generation,
            value: entry.token.authorization().clone(),
            hits: hits.clone(),
        })
    }
}

/// The end of a token's fresh window: the earlier of its refresh point and
/// `valid_until − min(remaining / 10, EXPIRY_GUARD)`.
fn fresh_until(token: &Token, refresh_at: Instant, now: Instant) -> Instant {
    let guard = (token.remaining_at(now) / 10).min(EXPIRY_GUARD);
    refresh_at.min(token.valid_until().checked_sub(guard).unwrap_or(now))
}

/// Ends an entry's fresh window when the timer fires or its task is dropped (its runtime shut
/// down).
struct EndFresh {
    entry: Weak<Entry>,
    epoch: Arc<AtomicU64>,
}

impl Drop for EndFresh {
    fn drop(&mut self) {
        if let Some(entry) = self.entry.upgrade() {
            entry.fresh.store(false, Ordering::Release);
            self.epoch.fetch_add(1, Ordering::Release);
        }
    }
}

/// The `Authorization` value of a cache's token, with a freshness check that costs one atomic
/// load: no clock read, no lock, no reference count. A service keeps one and asks its
/// [`TokenSource`](crate::source::TokenSource) for a new one when [`get`](Self::get) says
/// `None` (see [`TokenSource::fresh_authorization`](crate::source::TokenSource::fresh_authorization)).
///
/// It is valid while the token it was taken from is still the cache's token and still in its
/// fresh window: until the earlier of the token's refresh point and `valid_until −
/// min(remaining lifetime / 10, 5 s)`, ended by the cache's timer (see
/// [`TokenCache`](super::TokenCache) for the margin), or until the token is replaced or
/// invalidated.
#[derive(Clone)]
pub struct FreshAuthorization {
    epoch: Arc<AtomicU64>,
    generation: u64,
    value: HeaderValue,
    hits: Counter,
}

impl FreshAuthorization {
    /// The header value while it is fresh (counted as a cache hit), `None` after.
    #[inline]
    pub fn get(&self) -> Option<&HeaderValue> {
        if self.epoch.load(Ordering::Acquire) == self.generation {
            self.hits.increment(1);
            Some(&self.value)
        } else {
            None
        }
    }
}

impl fmt::Debug for FreshAuthorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FreshAuthorization")
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}
