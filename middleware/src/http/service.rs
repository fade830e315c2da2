//! Token requests through an HTTP client of your own: any tower service from
//! `http::Request<B>` to `http::Response<impl Body>`.
//!
//! [`HttpClient::from_service`](crate::HttpClient::from_service) (or
//! [`HttpClientBuilder::service`](crate::HttpClientBuilder::service)) wraps it: a hyper client
//! you configured, a `reqwest::Client` through
//! [`clientcreds::reqwest::ReqwestService`](https://docs.rs/clientcreds/latest/clientcreds/reqwest/struct.ReqwestService.html)
//! (feature `reqwest`), or a tower stack with your own timeouts, retries and tracing. Its TLS
//! roots, proxies and client certificate are its own; the [`HttpClient`](crate::HttpClient)
//! still applies its timeout and response size limit, and maps failures to
//! [`Error::Transport`](crate::Error::Transport).

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use futures::future::BoxFuture;
use http_body::Body;
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use tower_service::Service;

/// Any error of a user's service or body.
pub(crate) type ServiceError = Box<dyn std::error::Error + Send + Sync + 'static>;
/// The response body of a user's service, boxed.
pub(crate) type ServiceBody = UnsyncBoxBody<Bytes, BodyError>;

/// An error reading a response body. A type of its own, not a `Box<dyn Error>`: a boxed trait
/// object as a body's error type trips rustc's check that the request future is `Send`
/// (an "implementation of `From` is not general enough" error).
#[derive(Debug)]
pub(crate) struct BodyError(pub(crate) ServiceError);

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for BodyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

type CallFn = dyn Fn(
        http::Request<Bytes>,
    ) -> BoxFuture<'static, Result<http::Response<ServiceBody>, ServiceError>>
    + Send
    + Sync;

/// A user's HTTP service, type-erased. Each request goes to a clone of it, driven to readiness
/// first (as `tower::ServiceExt::oneshot` does), so clones of the [`HttpClient`](crate::HttpClient)
/// share nothing but what the service's own clones share (a connection pool, usually).
#[derive(Clone)]
pub(crate) struct UserService {
    call: Arc<CallFn>,
}

impl UserService {
    pub(crate) fn new<S, B, RB>(service: S) -> UserService
    where
        S: Service<http::Request<B>, Response = http::Response<RB>> + Clone + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<ServiceError>,
        B: From<Bytes> + Send + 'static,
        RB: Body<Data = Bytes> + Send + 'static,
        RB::Error: Into<ServiceError>,
    {
        // A Mutex only to clone under it: the service need not be `Sync`.
        let service = Mutex::new(service);
        let call = move |request: http::Request<Bytes>| {
            let mut service = service
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            let future: BoxFuture<'static, _> = Box::pin(async move {
                futures::future::poll_fn(|cx| service.poll_ready(cx))
                    .await
                    .map_err(Into::into)?;
                let response = service
                    .call(request.map(B::from))
                    .await
                    .map_err(Into::into)?;
                Ok(response.map(|body| body.map_err(|e| BodyError(e.into())).boxed_unsync()))
            });
            future
        };
        UserService {
            call: Arc::new(call),
        }
    }

    pub(crate) fn call(
        &self,
        request: http::Request<Bytes>,
    ) -> BoxFuture<'static, Result<http::Response<ServiceBody>, ServiceError>> {
        (self.call)(request)
    }
}

impl fmt::Debug for UserService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UserService")
    }
}
