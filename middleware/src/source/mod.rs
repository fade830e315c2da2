//! Where tokens come from: the [`TokenSource`] trait and its implementations.
//!
//! - [`ClientCredentialsSource`]: requests tokens from a token endpoint with
//!   [`ClientCredentials`](crate::ClientCredentials), through a [`TokenCache`](crate::cache::TokenCache)
//!   (single flight, refresh ahead of expiry, backoff).
//! - [`MountedToken`]: reads a token directory written by the `clientcreds` operator and mounted
//!   into the pod as a Kubernetes Secret volume, and re-reads it when kubelet swaps it.
//! - [`StaticToken`]: one fixed token (tests, development, long-lived API keys).
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use clientcreds::Token;
//! use clientcreds::source::{StaticToken, TokenSource};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), clientcreds::Error> {
//! let source: Arc<dyn TokenSource> = Arc::new(StaticToken::new(Token::new(
//!     "an-access-token",
//!     "Bearer",
//!     Duration::from_secs(3600),
//!     None,
//! )?));
//! // The hot path: a valid token without waiting.
//! assert!(source.cached().is_some());
//! // The slow path: wait for one.
//! let token = source.token().await?;
//! assert_eq!(token.authorization(), "Bearer an-access-token");
//! # Ok(())
//! # }
//! ```

use std::sync::Arc;

use http::HeaderValue;

use crate::Token;
use crate::cache::FreshAuthorization;
pub use crate::cache::TokenFuture;

mod client_credentials;
#[cfg(feature = "mounted")]
mod mounted;
mod static_token;

pub use client_credentials::ClientCredentialsSource;
#[cfg(feature = "mounted")]
#[cfg_attr(docsrs, doc(cfg(feature = "mounted")))]
pub use mounted::{ACCESS_TOKEN_FILE, EXPIRES_AT_FILE, MountedToken, SCOPE_FILE, TOKEN_TYPE_FILE};
pub use static_token::StaticToken;

/// A source of access tokens, shaped for a request path.
///
/// The trait is object-safe: the layer holds an `Arc<dyn TokenSource>`, so `Bearer<S>` has one
/// type whatever the source. [`cached`](TokenSource::cached) is the synchronous fast path
/// (no lock, no allocation, no await in the implementations of this crate);
/// [`token`](TokenSource::token) is the slow path, boxed, taken only when no valid token is
/// cached.
pub trait TokenSource: Send + Sync + 'static {
    /// A token that is valid now, if one is at hand without waiting. May start a background
    /// refresh.
    fn cached(&self) -> Option<Arc<Token>>;

    /// The `Authorization` header value of [`cached`](TokenSource::cached) — what the layer
    /// needs on its hot path when it does not have to remember the token. Implementations may
    /// override it to skip the `Arc` clone.
    fn cached_authorization(&self) -> Option<HeaderValue> {
        self.cached().map(|token| token.authorization().clone())
    }

    /// The `Authorization` header value of the current token with a freshness check that a
    /// service can keep and repeat for one atomic load per request (no clock read, no lock, no
    /// call into the source): the layer's hottest path. `None` (the default) when the source
    /// has no such check or the token is not in its fresh window; callers then use
    /// [`cached_authorization`](TokenSource::cached_authorization). See
    /// [`TokenCache`](crate::cache::TokenCache) for how exact the window is.
    fn fresh_authorization(&self) -> Option<FreshAuthorization> {
        None
    }

    /// A valid token, waiting for a token request or a re-read when needed. The future does
    /// not borrow the source; dropping it does not cancel work other callers wait for.
    fn token(&self) -> TokenFuture;

    /// Reports that the server rejected `token` (a 401): the source drops it, if it is still
    /// the current one, so the next call gets a new token. A newer token is left alone.
    ///
    /// Returns whether the token was dropped. `false` when it is no longer the current token,
    /// when the source cannot get another one (a static token), or when the source refuses
    /// because it dropped a token very recently (a cache's invalidation cooldown: an API that
    /// answers 401 to every token must not cause a token request per API request).
    fn invalidate(&self, token: &Token) -> bool;
}

impl<T: TokenSource + ?Sized> TokenSource for Arc<T> {
    fn cached(&self) -> Option<Arc<Token>> {
        (**self).cached()
    }

    fn cached_authorization(&self) -> Option<HeaderValue> {
        (**self).cached_authorization()
    }

    fn fresh_authorization(&self) -> Option<FreshAuthorization> {
        (**self).fresh_authorization()
    }

    fn token(&self) -> TokenFuture {
        (**self).token()
    }

    fn invalidate(&self, token: &Token) -> bool {
        (**self).invalidate(token)
    }
}

impl TokenSource for crate::cache::TokenCache {
    fn cached(&self) -> Option<Arc<Token>> {
        crate::cache::TokenCache::cached(self)
    }

    fn cached_authorization(&self) -> Option<HeaderValue> {
        crate::cache::TokenCache::cached_authorization(self)
    }

    fn fresh_authorization(&self) -> Option<FreshAuthorization> {
        crate::cache::TokenCache::fresh_authorization(self)
    }

    fn token(&self) -> TokenFuture {
        Box::pin(crate::cache::TokenCache::token(self))
    }

    fn invalidate(&self, token: &Token) -> bool {
        crate::cache::TokenCache::invalidate(self, token)
    }
}
