//! The tower layer that puts `Authorization: Bearer …` on every request.
//!
//! [`BearerLayer`] wraps any `Service<http::Request<B>>` (a hyper-util client, a tonic channel,
//! a kube client, `tower::service_fn`) into a [`Bearer`] that takes a token from a
//! [`TokenSource`](crate::source::TokenSource) for each request:
//!
//! - **Hot path**: the source has a valid cached token → the header is inserted (one clone of a
//!   reference-counted, *sensitive* `HeaderValue`) and the inner service is called directly.
//!   The service keeps the source's [`FreshAuthorization`](crate::cache::FreshAuthorization):
//!   while the token is in its fresh window, a request costs one atomic load more than a static
//!   header — no clock read, no call into the source (see
//!   [`TokenCache`](crate::cache::TokenCache) for how exact the window is).
//! - **Slow path**: no valid token → the request waits for one; the inner service that was
//!   driven to readiness moves into the [`future::ResponseFuture`] (`mem::replace` with a clone,
//!   as tower-http's `AsyncRequireAuthorization` does).
//! - A token error reaches the caller as [`BearerError::Token`]; a request is never sent
//!   without its token. Errors of the inner service are [`BearerError::Service`].
//! - **Host allow-list** (optional, [`BearerLayer::allow_hosts`]): a request to a host that is
//!   not on the list, or that would carry the token in clear text (`http://` to a host not
//!   listed as such and not loopback), is passed through **unchanged, without a token** (so
//!   one client can also talk to other hosts); the token never goes there.
//! - **401 policy** (optional, [`BearerLayer::on_unauthorized`]): [`PassThrough`] (default)
//!   returns a 401 as it is; [`InvalidateToken`] drops the token that was used (not a newer
//!   one) so that the next request gets a new one; [`ReplayOnce`] also sends the request again,
//!   once, with a new token, when its body can be replayed (`B: Clone`, e.g.
//!   `http_body_util::Full<Bytes>` or `Empty<Bytes>`). Implement [`UnauthorizedPolicy`] for other
//!   bodies; `clone_request` returning `None` means "cannot replay". A request is not replayed
//!   when the source kept the refused token (a static token, or a cache within its
//!   [invalidation cooldown](crate::cache::CacheConfig::invalidate_cooldown)), so an API that
//!   refuses every token does not cause a token request per API request.
//!
//! ```
//! use std::time::Duration;
//! use bytes::Bytes;
//! use http::{Request, Response, header::AUTHORIZATION};
//! use http_body_util::Full;
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//! use clientcreds::Token;
//! use clientcreds::bearer::{BearerLayer, ReplayOnce};
//! use clientcreds::source::StaticToken;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let token = Token::new("an-access-token", "Bearer", Duration::from_secs(3600), None)?;
//! let client = ServiceBuilder::new()
//!     .layer(BearerLayer::new(StaticToken::new(token)).on_unauthorized(ReplayOnce))
//!     .service(service_fn(|req: Request<Full<Bytes>>| async move {
//!         let auth = req.headers()[AUTHORIZATION].clone();
//!         assert!(auth.is_sensitive());
//!         Ok::<_, std::convert::Infallible>(Response::new(auth))
//!     }));
//! let response = client.oneshot(Request::new(Full::default())).await?;
//! assert_eq!(response.body(), "Bearer an-access-token");
//! # Ok(())
//! # }
//! ```

use std::fmt;

use http::Request;

mod authorization;
pub mod future;
mod hosts;
mod layer;
mod service;

pub use hosts::HostAllowList;
pub use layer::BearerLayer;
pub use service::Bearer;

/// The error of a [`Bearer`] service: no token could be had, or the inner service failed.
///
/// Neither variant ever holds a token.
#[derive(Debug)]
pub enum BearerError<E> {
    /// The token source failed; the request was not sent.
    Token(crate::Error),
    /// The inner service failed.
    Service(E),
}

impl<E: fmt::Display> fmt::Display for BearerError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BearerError::Token(e) => write!(f, "no access token, request not sent: {e}"),
            BearerError::Service(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for BearerError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BearerError::Token(e) => Some(e),
            BearerError::Service(e) => e.source(),
        }
    }
}

impl<E> BearerError<E> {
    /// The token error, if this is one.
    pub fn token_error(&self) -> Option<&crate::Error> {
        match self {
            BearerError::Token(e) => Some(e),
            BearerError::Service(_) => None,
        }
    }
}

/// What a [`Bearer`] service does when the server answers `401 Unauthorized`.
pub trait UnauthorizedPolicy<B>: Clone {
    /// Whether a 401 invalidates the token that was sent (see
    /// [`TokenSource::invalidate`](crate::source::TokenSource::invalidate)).
    fn invalidates(&self) -> bool;

    /// A copy of the request to send again after a 401, made before the request is sent; `None`
    /// when it cannot be replayed (a streaming body) or should not be.
    fn clone_request(&self, request: &Request<B>) -> Option<Request<B>>;
}

/// The default: a 401 is returned as it is, and nothing is invalidated.
#[derive(Debug, Clone, Copy, Default)]
pub struct PassThrough;

impl<B> UnauthorizedPolicy<B> for PassThrough {
    fn invalidates(&self) -> bool {
        false
    }

    fn clone_request(&self, _request: &Request<B>) -> Option<Request<B>> {
        None
    }
}

/// On a 401, drop the token that was sent so the next request gets a new one; return the 401.
/// For bodies that cannot be replayed (streams, tonic).
#[derive(Debug, Clone, Copy, Default)]
pub struct InvalidateToken;

impl<B> UnauthorizedPolicy<B> for InvalidateToken {
    fn invalidates(&self) -> bool {
        true
    }

    fn clone_request(&self, _request: &Request<B>) -> Option<Request<B>> {
        None
    }
}

/// On a 401, drop the token that was sent, get a new one and send the request again — once.
/// For bodies that are `Clone` (`Full<Bytes>`, `Empty<Bytes>`, `String`, …).
#[derive(Debug, Clone, Copy, Default)]
pub struct ReplayOnce;

impl<B: Clone> UnauthorizedPolicy<B> for ReplayOnce {
    fn invalidates(&self) -> bool {
        true
    }

    fn clone_request(&self, request: &Request<B>) -> Option<Request<B>> {
        Some(request.clone())
    }
}
