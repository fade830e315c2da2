//! The response future of [`Bearer`](super::Bearer).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::header::AUTHORIZATION;
use http::{Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower_service::Service;

use super::BearerError;
use crate::Token;
use crate::source::{TokenFuture, TokenSource};

/// What to do on a 401: which token to invalidate, and a copy of the request to replay.
pub(super) struct Retry<S, B> {
    source: Arc<dyn TokenSource>,
    used: Option<Arc<Token>>,
    replay: Option<(S, Request<B>)>,
}

impl<S, B> Retry<S, B> {
    pub(super) fn new(source: Arc<dyn TokenSource>, replay: Option<(S, Request<B>)>) -> Self {
        Retry {
            source,
            used: None,
            replay,
        }
    }

    pub(super) fn used(mut self, token: Arc<Token>) -> Self {
        self.used = Some(token);
        self
    }
}

/// Everything but the inner future, for the paths that are not the hottest: the service and
/// request waiting for a token, and what to do on a 401. Boxed, so that the future of the
/// hottest path (a token at hand, nothing to do on a 401) is the inner future and one pointer.
struct Slow<S, B> {
    pending: Option<(S, Request<B>)>,
    retry: Option<Retry<S, B>>,
}

pin_project! {
    /// Response future of [`Bearer`](super::Bearer).
    pub struct ResponseFuture<S, B>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        state: State<S::Future>,
        // `None` on the hottest path; else the service (and request) waiting for a token, and
        // what to do on a 401.
        slow: Option<Box<Slow<S, B>>>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        // Waiting for a token; `ready`: the pending service is ready already.
        Token { fut: TokenFuture, ready: bool },
        // Got a token; driving the pending service (a clone, for a replay) to readiness.
        PollReady { token: Arc<Token> },
        // The inner service is handling the request.
        Call { #[pin] fut: F },
        Done,
    }
}

impl<S, B> ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    #[inline]
    pub(super) fn call(fut: S::Future, retry: Option<Retry<S, B>>) -> Self {
        ResponseFuture {
            state: State::Call { fut },
            slow: retry.map(|retry| {
                Box::new(Slow {
                    pending: None,
                    retry: Some(retry),
                })
            }),
        }
    }

    pub(super) fn wait(
        token: TokenFuture,
        ready_service: S,
        request: Request<B>,
        retry: Option<Retry<S, B>>,
    ) -> Self {
        ResponseFuture {
            state: State::Token {
                fut: token,
                ready: true,
            },
            slow: Some(Box::new(Slow {
                pending: Some((ready_service, request)),
                retry,
            })),
        }
    }
}

impl<S, B> std::fmt::Debug for ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            State::Token { .. } => "waiting for a token",
            State::PollReady { .. } => "waiting for the service",
            State::Call { .. } => "calling",
            State::Done => "done",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

impl<S, B, ResB> Future for ResponseFuture<S, B>
where
    S: Service<Request<B>, Response = Response<ResB>>,
{
    type Output = Result<Response<ResB>, BearerError<S::Error>>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        // The hot path (a token was at hand, nothing to do on a 401): the inner future's
        // answer as it is; its state never changes. Polling it again after it completed is the
        // inner future's business.
        let Some(slow) = this.slow.as_deref_mut() else {
            return match this.state.as_mut().project() {
                StateProj::Call { fut } => fut.poll(cx).map_err(BearerError::Service),
                _ => Poll::Ready(Err(missing())),
            };
        };
        loop {
            let token = match this.state.as_mut().project() {
                StateProj::Token { fut, ready } => match ready!(fut.as_mut().poll(cx)) {
                    Err(error) => {
                        this.state.set(State::Done);
                        return Poll::Ready(Err(BearerError::Token(error)));
                    }
                    Ok(token) if *ready => token,
                    Ok(token) => {
                        this.state.set(State::PollReady { token });
                        continue;
                    }
                },
                StateProj::PollReady { token } => {
                    let Some((service, _)) = slow.pending.as_mut() else {
                        this.state.set(State::Done);
                        return Poll::Ready(Err(missing()));
                    };
                    if let Err(error) = ready!(service.poll_ready(cx)) {
                        this.state.set(State::Done);
                        return Poll::Ready(Err(BearerError::Service(error)));
                    }
                    Arc::clone(token)
                }
                StateProj::Call { fut } => {
                    let response = match ready!(fut.poll(cx)) {
                        Ok(response) => response,
                        Err(error) => {
                            this.state.set(State::Done);
                            return Poll::Ready(Err(BearerError::Service(error)));
                        }
                    };
                    if response.status() == StatusCode::UNAUTHORIZED
                        && let Some(retry) = slow.retry.take()
                    {
                        // Replay unless the source kept the very token that was refused (a
                        // static token, or an invalidation cooldown): that would only get
                        // another 401.
                        let mut replay = true;
                        if let Some(used) = &retry.used {
                            tracing::debug!("401 answer: invalidating the token that was sent");
                            let dropped = retry.source.invalidate(used);
                            replay = dropped
                                || retry.source.cached_authorization().as_ref()
                                    != Some(used.authorization());
                        }
                        if let Some(pending) = retry.replay.filter(|_| replay) {
                            tracing::debug!("401 answer: replaying the request with a new token");
                            slow.pending = Some(pending);
                            this.state.set(State::Token {
                                fut: retry.source.token(),
                                ready: false,
                            });
                            continue;
                        }
                    }
                    this.state.set(State::Done);
                    return Poll::Ready(Ok(response));
                }
                StateProj::Done => panic!("ResponseFuture polled after completion"),
            };
            // A token and a ready service: send the request.
            let Some((mut service, mut request)) = slow.pending.take() else {
                this.state.set(State::Done);
                return Poll::Ready(Err(missing()));
            };
            request
                .headers_mut()
                .insert(AUTHORIZATION, token.authorization().clone());
            if let Some(retry) = slow.retry.as_mut() {
                retry.used = Some(token);
            }
            this.state.set(State::Call {
                fut: service.call(request),
            });
        }
    }
}

fn missing<E>() -> BearerError<E> {
    BearerError::Token(crate::Error::Internal(
        "the request was lost inside the bearer layer".into(),
    ))
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::future::Ready;

    use super::*;

    #[derive(Clone)]
    struct Inner;

    impl Service<Request<()>> for Inner {
        type Response = Response<()>;
        type Error = Infallible;
        type Future = Ready<Result<Response<()>, Infallible>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: Request<()>) -> Self::Future {
            std::future::ready(Ok(Response::new(())))
        }
    }

    /// Every request's future is moved a few times (returned, pinned by the caller): on the
    /// hottest path it is the inner future and one pointer, as small as it can be made without
    /// giving up the other paths (it was the inner future and 40 bytes, ~10% slower per
    /// request in `benches/bearer.rs`).
    #[test]
    fn the_hot_path_future_is_the_inner_future_and_one_pointer() {
        assert_eq!(
            std::mem::size_of::<ResponseFuture<Inner, ()>>(),
            std::mem::size_of::<Ready<Result<Response<()>, Infallible>>>()
                + std::mem::size_of::<usize>()
        );
    }
}
