//! Tokens from a token endpoint, cached.

use std::fmt;
use std::sync::Arc;

use super::{TokenFuture, TokenSource};
use crate::cache::{CacheConfig, TokenCache};
use crate::{ClientCredentials, Error, HttpClient, Token};

/// Tokens requested with [`ClientCredentials`] over an [`HttpClient`], held in a
/// [`TokenCache`]: one request in flight at most, refreshed ahead of expiry, backoff after
/// failures.
///
/// One source serves one cache key (the scopes, audience and resource of its credentials); use
/// one source per scope set. Clones share the cache.
///
/// ```no_run
/// use clientcreds::{ClientCredentials, HttpClient};
/// use clientcreds::source::{ClientCredentialsSource, TokenSource};
/// use secrecy::SecretString;
///
/// # async fn run() -> Result<(), clientcreds::Error> {
/// let credentials = ClientCredentials::builder(
///     "https://auth.example.com/oauth2/token",
///     "my-client",
///     SecretString::from("my-secret"),
/// )
/// .scope("payments:read")
/// .build()?;
/// let source = ClientCredentialsSource::new(credentials, HttpClient::new());
/// let token = source.token().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct ClientCredentialsSource {
    credentials: Arc<ClientCredentials>,
    cache: TokenCache,
}

impl ClientCredentialsSource {
    /// A source with the default [`CacheConfig`] (refresh 60 s before expiry, at most half-way;
    /// backoff 1 s to 60 s with jitter; five minutes after a rejected client). Its metrics and
    /// tracing name is the token endpoint's host.
    pub fn new(credentials: ClientCredentials, http: HttpClient) -> ClientCredentialsSource {
        let name = credentials
            .token_url()
            .host_str()
            .unwrap_or("token-endpoint")
            .to_owned();
        // The default configuration is valid: no validation needed.
        Self::build(credentials, http, CacheConfig::default().name(name))
    }

    /// A source with the given cache configuration (fails on an invalid configuration).
    pub fn with_config(
        credentials: ClientCredentials,
        http: HttpClient,
        config: CacheConfig,
    ) -> Result<ClientCredentialsSource, Error> {
        config.validate()?;
        Ok(Self::build(credentials, http, config))
    }

    fn build(credentials: ClientCredentials, http: HttpClient, config: CacheConfig) -> Self {
        let credentials = Arc::new(credentials);
        let fetch_credentials = Arc::clone(&credentials);
        let fetch = move || {
            let credentials = Arc::clone(&fetch_credentials);
            let http = http.clone();
            async move { credentials.request_token(&http).await }
        };
        ClientCredentialsSource {
            credentials,
            cache: TokenCache::build(fetch, config),
        }
    }

    /// The credentials tokens are requested with.
    pub fn credentials(&self) -> &ClientCredentials {
        &self.credentials
    }

    /// The cache (for [`TokenCache::last_error`] and such).
    pub fn cache(&self) -> &TokenCache {
        &self.cache
    }
}

impl fmt::Debug for ClientCredentialsSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentialsSource")
            .field("credentials", &self.credentials)
            .field("cache", &self.cache)
            .finish()
    }
}

impl TokenSource for ClientCredentialsSource {
    fn cached(&self) -> Option<Arc<Token>> {
        self.cache.cached()
    }

    fn cached_authorization(&self) -> Option<http::HeaderValue> {
        self.cache.cached_authorization()
    }

    fn token(&self) -> TokenFuture {
        Box::pin(self.cache.token())
    }

    fn invalidate(&self, token: &Token) -> bool {
        self.cache.invalidate(token)
    }
}
