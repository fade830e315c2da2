//! reqwest support (feature `reqwest`): the tokens of a [`TokenSource`] on a reqwest client's
//! requests, and a `reqwest::Client` as the transport of token requests.
//!
//! Three ways in, one token cache: every one of them takes any [`TokenSource`] (clones of a
//! [`ClientCredentialsSource`](crate::ClientCredentialsSource) share its cache), so a process
//! makes one token request per refresh, whichever client its requests go through.
//!
//! - [`BearerMiddleware`]: a [`reqwest_middleware::Middleware`]. It puts
//!   `Authorization: <token>` (marked sensitive) on each request; on a `401` it drops the token
//!   ([`TokenSource::invalidate`]) and sends the request again, once, with a new token, when
//!   the request can be cloned ([`reqwest::Request::try_clone`]: a streaming body cannot) and
//!   the source did drop it (not a static token, not within a cache's invalidation cooldown).
//!   [`allow_hosts`](BearerMiddleware::allow_hosts) keeps the token from other hosts.
//! - [`HttpClient::from_reqwest`]: token requests through a `reqwest::Client` you configured
//!   (its TLS roots, proxies, timeouts), instead of the built-in hyper client.
//! - tower adapters of reqwest (such as the `tower-reqwest` crate's `HttpClientLayer`, or the
//!   [`ReqwestService`] here) make a `reqwest::Client` a `tower::Service` from
//!   `http::Request`: the [`BearerLayer`](crate::BearerLayer) goes on top of them like on any
//!   other tower client, and they can be given to [`HttpClient::from_service`].
//!
//! This crate brings no TLS implementation for reqwest: enable the TLS feature you want on your
//! own `reqwest` dependency (e.g. `rustls`).
//!
//! ```
//! use clientcreds::reqwest::BearerMiddleware;
//! use clientcreds::{ClientCredentials, ClientCredentialsSource, HttpClient};
//! # use secrecy::SecretString;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let sandbox = clientcreds_sandbox::Sandbox::start(Default::default()).await?;
//! # let afterpay = sandbox.afterpay();
//! # let (token_url, client_id, secret) =
//! #     (afterpay.token_url, afterpay.client_id, SecretString::from(afterpay.client_secret));
//! # let api_url = afterpay.resource_url;
//! let reqwest = reqwest::Client::new();
//! let credentials = ClientCredentials::builder(token_url, client_id, secret).build()?;
//! // The token requests go through the same reqwest client.
//! let source = ClientCredentialsSource::new(credentials, HttpClient::from_reqwest(reqwest.clone()));
//! let client = reqwest_middleware::ClientBuilder::new(reqwest)
//!     .with(BearerMiddleware::new(source))
//!     .build();
//! let response = client.get(api_url).send().await?;
//! assert_eq!(response.status(), 200);
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::Extensions;
use http::header::AUTHORIZATION;
use reqwest_middleware::{Middleware, Next};
use tower_service::Service;

use crate::bearer::HostAllowList;
use crate::source::TokenSource;
use crate::{Error, HttpClient, Token};

/// A [`reqwest_middleware::Middleware`] that puts the tokens of a [`TokenSource`] on each
/// request, and on a `401` drops the token and replays the request once with a new one. See
/// the [module documentation](self).
#[derive(Clone)]
pub struct BearerMiddleware {
    source: Arc<dyn TokenSource>,
    hosts: Option<Arc<HostAllowList>>,
}

impl BearerMiddleware {
    /// A middleware that takes tokens from `source` and sends them to every host.
    pub fn new<T: TokenSource>(source: T) -> BearerMiddleware {
        Self::from_shared(Arc::new(source))
    }

    /// Like [`BearerMiddleware::new`], for a source that is already shared.
    pub fn from_shared(source: Arc<dyn TokenSource>) -> BearerMiddleware {
        BearerMiddleware {
            source,
            hosts: None,
        }
    }

    /// Attach tokens only to requests for these hosts (`host` or `host:port`, the port when the
    /// URL names one); requests to other hosts go out unchanged, without a token. Fails on an
    /// entry that is not a host, or on an empty list ([`Error::Config`], field `allow_hosts`).
    pub fn allow_hosts<I, H>(mut self, hosts: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = H>,
        H: AsRef<str>,
    {
        self.hosts = Some(Arc::new(HostAllowList::new(hosts)?));
        Ok(self)
    }

    /// The token source.
    pub fn source(&self) -> &Arc<dyn TokenSource> {
        &self.source
    }

    fn allows(&self, request: &reqwest::Request) -> bool {
        match (&self.hosts, request.url().host_str()) {
            (None, _) => true,
            (Some(hosts), Some(host)) => {
                hosts.allows_url(Some(request.url().scheme()), host, request.url().port())
            }
            (Some(_), None) => false,
        }
    }

    async fn token(&self) -> reqwest_middleware::Result<Arc<Token>> {
        match self.source.cached() {
            Some(token) => Ok(token),
            None => self
                .source
                .token()
                .await
                .map_err(reqwest_middleware::Error::middleware),
        }
    }

    async fn send(
        &self,
        mut request: reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        if !self.allows(&request) {
            return next.run(request, extensions).await;
        }
        let token = self.token().await?;
        // Cloned before the header goes on: a replay gets the new token's header instead.
        let replay = request.try_clone();
        request
            .headers_mut()
            .insert(AUTHORIZATION, token.authorization().clone());
        let response = next.clone().run(request, extensions).await?;
        if response.status() != http::StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        let dropped = self.source.invalidate(&token);
        let Some(mut replay) = replay.filter(|_| dropped) else {
            tracing::debug!(dropped, "401 answer returned as it is");
            return Ok(response);
        };
        tracing::debug!("401 answer: the token was dropped; replaying once with a new token");
        let token = self.token().await?;
        replay
            .headers_mut()
            .insert(AUTHORIZATION, token.authorization().clone());
        next.run(replay, extensions).await
    }
}

impl Middleware for BearerMiddleware {
    fn handle<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        request: reqwest::Request,
        extensions: &'life1 mut Extensions,
        next: Next<'life2>,
    ) -> Pin<
        Box<
            dyn Future<Output = reqwest_middleware::Result<reqwest::Response>>
                + Send
                + 'async_trait,
        >,
    >
    where
        Self: 'async_trait,
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
    {
        Box::pin(self.send(request, extensions, next))
    }
}

impl fmt::Debug for BearerMiddleware {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerMiddleware")
            .field("hosts", &self.hosts)
            .finish_non_exhaustive()
    }
}

/// A `reqwest::Client` as a `tower::Service` from `http::Request<B>` to
/// `http::Response<reqwest::Body>` (`B` into [`reqwest::Body`]: `reqwest::Body`, `Bytes`,
/// `String`, `Vec<u8>`, …) — the small adapter that
/// [`HttpClient::from_reqwest`] uses, and that a [`BearerLayer`](crate::BearerLayer) stack can
/// use too (as `tower-reqwest`'s `HttpClientLayer` does).
///
/// ```
/// use clientcreds::reqwest::ReqwestService;
/// use clientcreds::{BearerLayer, ClientCredentials, ClientCredentialsSource, HttpClient};
/// use tower::{ServiceBuilder, ServiceExt};
/// # use secrecy::SecretString;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
/// # let sandbox = clientcreds_sandbox::Sandbox::start(Default::default()).await?;
/// # let afterpay = sandbox.afterpay();
/// # let (token_url, client_id, secret, api_url) = (afterpay.token_url, afterpay.client_id,
/// #     SecretString::from(afterpay.client_secret), afterpay.resource_url);
/// let reqwest = reqwest::Client::new();
/// let credentials = ClientCredentials::builder(token_url, client_id, secret).build()?;
/// let source = ClientCredentialsSource::new(credentials, HttpClient::from_reqwest(reqwest.clone()));
/// let client = ServiceBuilder::new()
///     .layer(BearerLayer::new(source))
///     .service(ReqwestService::new(reqwest));
/// let request = http::Request::get(api_url).body(reqwest::Body::default())?;
/// let response = client.oneshot(request).await?;
/// assert_eq!(response.status(), 200);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct ReqwestService {
    client: reqwest::Client,
}

impl ReqwestService {
    /// Wraps `client`.
    pub fn new(client: reqwest::Client) -> ReqwestService {
        ReqwestService { client }
    }

    /// The client.
    pub fn get_ref(&self) -> &reqwest::Client {
        &self.client
    }

    /// The client, unwrapped.
    pub fn into_inner(self) -> reqwest::Client {
        self.client
    }
}

impl<B> Service<http::Request<B>> for ReqwestService
where
    B: Into<reqwest::Body>,
{
    type Response = http::Response<reqwest::Body>;
    type Error = reqwest::Error;
    type Future =
        Pin<Box<dyn Future<Output = Result<http::Response<reqwest::Body>, reqwest::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // reqwest's client is always ready: its pool queues requests itself.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let request = reqwest::Request::try_from(request);
        let client = self.client.clone();
        Box::pin(async move {
            let response = client.execute(request?).await?;
            Ok(http::Response::from(response))
        })
    }
}

impl HttpClient {
    /// Token requests (and Azupay's calls) through `client`, with its TLS roots, proxies and
    /// timeouts, and this crate's default timeout and response size limit (to set them:
    /// `HttpClient::builder().service::<_, reqwest::Body, _>(ReqwestService::new(client))`).
    /// See [`HttpClient::from_service`].
    #[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
    pub fn from_reqwest(client: reqwest::Client) -> HttpClient {
        HttpClient::from_service::<_, reqwest::Body, _>(ReqwestService::new(client))
    }
}
