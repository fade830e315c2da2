//! Single flight: at most one fetch at a time, on a task of its own, joined by every caller
//! that needs a token meanwhile.
//!
//! The fetch runs on its own task, so a caller that gives up (a timeout, a dropped request)
//! does not cancel the fetch the others wait for. The task reports its outcome to a
//! [`Recorder`] (the cache), which this module knows only through that trait.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use tokio::time::Instant;
use tracing::Instrument;

use crate::{Error, Token};

/// The result of one fetch, shared by every caller that waited for it.
pub(super) type Flight = Shared<BoxFuture<'static, Result<Arc<Token>, Error>>>;

/// Waits for `flight`, at most `deadline` (`None`: until it ends; it is bounded by the token
/// request's own timeout). A caller that gives up gets [`Error::WaitTimedOut`]; the fetch goes
/// on for the others.
pub(super) async fn wait(flight: Flight, deadline: Option<Duration>) -> Result<Arc<Token>, Error> {
    match deadline {
        None => flight.await,
        Some(waited) => tokio::time::timeout(waited, flight)
            .await
            .unwrap_or(Err(Error::WaitTimedOut { waited })),
    }
}

/// Where a fetch task reports to.
pub(super) trait Recorder: Send + Sync + 'static {
    /// Records the outcome of a fetch (on the fetch task) and returns what its waiters get.
    fn complete(
        self: Arc<Self>,
        result: Result<Token, Error>,
        took: Duration,
    ) -> Result<Arc<Token>, Error>;

    /// The fetch task was dropped before it recorded its result (its runtime shut down).
    /// Must not lock: a runtime that is shutting down drops a new task inside `spawn`, while
    /// the spawner holds the cache's lock.
    fn abandon(&self);
}

/// The fetch in flight, if any. Lives under the cache's lock.
#[derive(Default)]
pub(super) struct SingleFlight {
    current: Option<InFlight>,
}

/// A fetch as the state records it.
struct InFlight {
    flight: Flight,
    /// Set when the fetch task was dropped before it recorded its result: nobody can wait for
    /// it any more.
    abandoned: Arc<AtomicBool>,
}

impl InFlight {
    /// Whether callers can still join this fetch.
    fn is_live(&self) -> bool {
        self.flight.peek().is_none() && !self.abandoned.load(Ordering::Acquire)
    }
}

impl SingleFlight {
    /// Whether a fetch runs that callers can join.
    pub(super) fn is_live(&self) -> bool {
        self.current.as_ref().is_some_and(InFlight::is_live)
    }

    /// The fetch to join, if one runs. A flight that ended without recording its result (its
    /// task was dropped when its runtime shut down) is stale and forgotten.
    pub(super) fn join(&mut self) -> Option<Flight> {
        match &self.current {
            Some(current) if current.is_live() => Some(current.flight.clone()),
            Some(_) => {
                self.current = None;
                None
            }
            None => None,
        }
    }

    /// The fetch has recorded its result.
    pub(super) fn finish(&mut self) {
        self.current = None;
    }

    /// Spawns `fetch` on `runtime` inside `span`, reporting to `recorder`, and records it as
    /// the flight in progress.
    pub(super) fn start<R: Recorder>(
        &mut self,
        runtime: &tokio::runtime::Handle,
        recorder: Arc<R>,
        fetch: BoxFuture<'static, Result<Token, Error>>,
        span: tracing::Span,
    ) -> Flight {
        let abandoned = Arc::new(AtomicBool::new(false));
        let mut guard = FetchTask {
            recorder: Some(recorder),
            abandoned: Arc::clone(&abandoned),
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
        self.current = Some(InFlight {
            flight: flight.clone(),
            abandoned,
        });
        flight
    }
}

/// Lives in a fetch task until the task has recorded its result. Dropped earlier (the task was
/// dropped with its runtime), it marks the fetch abandoned and tells the recorder, so that the
/// next caller starts a new fetch and background refreshes are not blocked forever.
struct FetchTask<R: Recorder> {
    /// `None` once the result is recorded.
    recorder: Option<Arc<R>>,
    abandoned: Arc<AtomicBool>,
}

impl<R: Recorder> FetchTask<R> {
    /// Records the outcome of the fetch and disarms the guard.
    fn complete(
        &mut self,
        result: Result<Token, Error>,
        took: Duration,
    ) -> Result<Arc<Token>, Error> {
        match self.recorder.take() {
            Some(recorder) => recorder.complete(result, took),
            None => Err(Error::Internal("a token request was recorded twice".into())),
        }
    }
}

impl<R: Recorder> Drop for FetchTask<R> {
    fn drop(&mut self) {
        if let Some(recorder) = self.recorder.take() {
            self.abandoned.store(true, Ordering::Release);
            recorder.abandon();
        }
    }
}
