use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::AUTHORIZATION;
use http::{HeaderValue, Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use super::authorization::set_authorization;
use super::future::ResponseFuture;
use super::{BearerError, BearerLayer, HostAllowList, PassThrough, UnauthorizedPolicy};
use crate::Error;
use crate::cache::FreshAuthorization;
use crate::source::TokenSource;

/// A service that puts `Authorization: Bearer …` on every request. See the [module
/// documentation](super).
#[derive(Clone)]
pub struct Bearer<S, P = PassThrough> {
    pub(super) inner: S,
    pub(super) source: Arc<dyn TokenSource>,
    pub(super) hosts: Option<Arc<HostAllowList>>,
    pub(super) policy: P,
    /// The source's header with its clock-free freshness check, kept between requests.
    pub(super) fresh: Option<FreshAuthorization>,
}

impl<S> Bearer<S> {
    /// Wraps `inner` with tokens from `source` (all hosts, 401 passed through).
    pub fn new<T: TokenSource>(inner: S, source: T) -> Bearer<S> {
        BearerLayer::new(source).layer(inner)
    }

    /// Like [`Bearer::new`], for a source that is already shared.
    pub fn from_shared(inner: S, source: Arc<dyn TokenSource>) -> Bearer<S> {
        BearerLayer::from_shared(source).layer(inner)
    }

    /// A [`BearerLayer`] with tokens from `source`.
    pub fn layer<T: TokenSource>(source: T) -> BearerLayer {
        BearerLayer::new(source)
    }
}

impl<S, P> Bearer<S, P> {
    /// Attach tokens only to requests for these hosts; see [`BearerLayer::allow_hosts`].
    pub fn allow_hosts<I, H>(mut self, hosts: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = H>,
        H: AsRef<str>,
    {
        self.hosts = Some(Arc::new(HostAllowList::new(hosts)?));
        Ok(self)
    }

    /// What to do on a 401 answer; see [`BearerLayer::on_unauthorized`].
    pub fn on_unauthorized<Q>(self, policy: Q) -> Bearer<S, Q> {
        Bearer {
            inner: self.inner,
            source: self.source,
            hosts: self.hosts,
            policy,
            fresh: self.fresh,
        }
    }

    /// The header to attach without waiting: the kept [`FreshAuthorization`] while it holds,
    /// else a new one taken from the source when its token is in the fresh window, else the
    /// source's cached header (checked against the clock); `None` when there is no usable token.
    fn lookup_authorization(&mut self) -> Option<HeaderValue> {
        if let Some(value) = self.fresh.as_ref().and_then(FreshAuthorization::get) {
            return Some(value.clone());
        }
        self.fresh = self.source.fresh_authorization();
        match self.fresh.as_ref().and_then(FreshAuthorization::get) {
            Some(value) => Some(value.clone()),
            None => self.source.cached_authorization(),
        }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Consumes `self`, returning the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// The token source.
    pub fn source(&self) -> &Arc<dyn TokenSource> {
        &self.source
    }
}

impl<S: fmt::Debug, P: fmt::Debug> fmt::Debug for Bearer<S, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bearer")
            .field("inner", &self.inner)
            .field("source", &"dyn TokenSource")
            .field("hosts", &self.hosts)
            .field("policy", &self.policy)
            .finish()
    }
}

impl<S, P, B, ResB> Service<Request<B>> for Bearer<S, P>
where
    S: Service<Request<B>, Response = Response<ResB>> + Clone,
    P: UnauthorizedPolicy<B>,
{
    type Response = Response<ResB>;
    type Error = BearerError<S::Error>;
    type Future = ResponseFuture<S, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(BearerError::Service)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        // The hottest path, kept small so that the request is not copied on the way: every
        // host, nothing to remember for a 401, a token in its fresh window.
        if self.hosts.is_none()
            && !self.policy.invalidates()
            && let Some(value) = self.fresh.as_ref().and_then(FreshAuthorization::get)
        {
            request.headers_mut().insert(AUTHORIZATION, value.clone());
            return ResponseFuture::call(self.inner.call(request), None);
        }
        self.call_with_lookup(request)
    }
}

impl<S, P> Bearer<S, P> {
    /// Every path of [`Service::call`] but the hottest.
    #[inline(never)]
    fn call_with_lookup<B, ResB>(&mut self, mut request: Request<B>) -> ResponseFuture<S, B>
    where
        S: Service<Request<B>, Response = Response<ResB>> + Clone,
        P: UnauthorizedPolicy<B>,
    {
        if let Some(hosts) = &self.hosts
            && !hosts.allows(&request)
        {
            // Not for this host: no token, and nothing to do on a 401.
            return ResponseFuture::call(self.inner.call(request), None);
        }
        if !self.policy.invalidates()
            && let Some(authorization) = self.lookup_authorization()
        {
            set_authorization(request.headers_mut(), authorization);
            return ResponseFuture::call(self.inner.call(request), None);
        }
        let retry = self.policy.invalidates().then(|| {
            let replay = self
                .policy
                .clone_request(&request)
                .map(|copy| (self.inner.clone(), copy));
            super::future::Retry::new(Arc::clone(&self.source), replay)
        });
        match self.source.cached() {
            Some(token) => {
                set_authorization(request.headers_mut(), token.authorization().clone());
                let retry = retry.map(|retry| retry.used(token));
                ResponseFuture::call(self.inner.call(request), retry)
            }
            None => {
                // Move the service that is ready into the future; keep a clone for later calls.
                let clone = self.inner.clone();
                let ready = std::mem::replace(&mut self.inner, clone);
                ResponseFuture::wait(self.source.token(), ready, request, retry)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::future::{Ready, ready};
    use std::time::Duration;

    use futures::FutureExt;
    use http::HeaderValue;

    use super::*;
    use crate::Token;
    use crate::cache::TokenCache;
    use crate::source::StaticToken;

    /// Answers with the request's `Authorization` values, joined by `|`.
    #[derive(Clone)]
    struct Echo;

    impl Service<Request<()>> for Echo {
        type Response = Response<String>;
        type Error = Infallible;
        type Future = Ready<Result<Response<String>, Infallible>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, request: Request<()>) -> Self::Future {
            let values: Vec<_> = request
                .headers()
                .get_all(AUTHORIZATION)
                .iter()
                .map(|v| v.to_str().unwrap_or("?").to_owned())
                .collect();
            ready(Ok(Response::new(values.join("|"))))
        }
    }

    fn with_two_authorizations() -> Request<()> {
        let mut request = Request::new(());
        request
            .headers_mut()
            .append(AUTHORIZATION, HeaderValue::from_static("Basic one"));
        request
            .headers_mut()
            .append(AUTHORIZATION, HeaderValue::from_static("Basic two"));
        request
    }

    async fn sent<S: Service<Request<()>, Response = Response<String>>>(svc: &mut S) -> String
    where
        S::Error: fmt::Debug,
    {
        let future = svc.call(with_two_authorizations());
        future.now_or_never().unwrap().unwrap().into_body()
    }

    /// Every path replaces whatever `Authorization` values the request had with the one token:
    /// the hottest (a fresh cached token, `HeaderMap::insert` inlined) and the others
    /// (`set_authorization`: the first call, a token past its fresh window read by the clock).
    #[tokio::test(start_paused = true)]
    async fn every_path_replaces_the_requests_authorization_values() {
        let token = || Token::new("tok-abc", "Bearer", Duration::from_secs(3600), None);
        let cache = TokenCache::new(move || std::future::ready(token()));
        cache.token().await.unwrap();
        let mut cached = Bearer::new(Echo, cache);
        // the first call takes the fresh header from the source, the second uses the kept one
        assert_eq!(sent(&mut cached).await, "Bearer tok-abc");
        assert!(cached.fresh.is_some(), "the fresh header is kept");
        assert_eq!(sent(&mut cached).await, "Bearer tok-abc");

        let mut fixed = Bearer::new(Echo, StaticToken::new(token().unwrap()));
        assert_eq!(sent(&mut fixed).await, "Bearer tok-abc");
        assert!(
            fixed.fresh.is_some(),
            "a static token has a fresh window too"
        );
        // past its window (5 s before expiry) the header is checked by the clock
        tokio::time::advance(Duration::from_secs(3597)).await;
        tokio::task::yield_now().await;
        assert_eq!(sent(&mut fixed).await, "Bearer tok-abc");
        assert!(fixed.fresh.is_none(), "no fresh window left");
    }
}
