//! Tokens from a token endpoint, cached: one cache per cache key.

use std::fmt;
use std::sync::Arc;

use super::{TokenFuture, TokenSource};
use crate::cache::registry::Registry;
use crate::cache::{CacheConfig, FreshAuthorization, TokenCache};
use crate::{CacheKey, ClientCredentials, Error, HttpClient, Token};

/// Tokens requested with [`ClientCredentials`] over an [`HttpClient`], held in a
/// [`TokenCache`]: one request in flight at most, refreshed ahead of expiry, backoff after
/// failures.
///
/// A source serves one [cache key](crate::CacheKey) — the scopes, audience and resource of its
/// credentials. For another key of the same client, derive a source with
/// [`for_scopes`](Self::for_scopes), [`for_audience`](Self::for_audience) or
/// [`for_resource`](Self::for_resource): the sources derived from one source (and from each
/// other) share one cache **per key**, so that however many handles ask for the same key there
/// is at most one token request in flight and one cached token for it, while different keys
/// never share a token. Clones share everything.
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
    /// Resolved once, when the source is made: the hot path never looks at `family`.
    cache: TokenCache,
    family: Arc<Family>,
}

/// What a source and every source derived from it share: the transport, the cache
/// configuration and the caches by key.
struct Family {
    http: HttpClient,
    config: CacheConfig,
    caches: Registry<CacheKey, Arc<ClientCredentials>>,
}

impl Family {
    /// The source for `credentials`' key: the cache already in use for that key, or a new one.
    fn source(self: &Arc<Self>, credentials: ClientCredentials) -> ClientCredentialsSource {
        let key = credentials.cache_key().clone();
        let (credentials, cache) = self.caches.get_or_insert_with(&key, || {
            let credentials = Arc::new(credentials);
            let fetch_credentials = Arc::clone(&credentials);
            let http = self.http.clone();
            let fetch = move || {
                let credentials = Arc::clone(&fetch_credentials);
                let http = http.clone();
                async move { credentials.request_token(&http).await }
            };
            (credentials, TokenCache::build(fetch, self.config.clone()))
        });
        ClientCredentialsSource {
            credentials,
            cache,
            family: Arc::clone(self),
        }
    }
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
        let family = Arc::new(Family {
            http,
            config,
            caches: Registry::default(),
        });
        family.source(credentials)
    }

    /// A source for the same client with these scopes instead of this source's (audience and
    /// resource stay), sharing the cache for that key with every source derived from the same
    /// family.
    ///
    /// As with [`ClientCredentialsBuilder::scope`](crate::ClientCredentialsBuilder::scope), a
    /// string with spaces holds several scopes; order and duplicates do not matter for the key.
    /// No scope at all asks for the client's default scopes. The scopes are checked as
    /// [`build`](crate::ClientCredentialsBuilder::build) checks them, preset rules included
    /// (Pyng requires a scope, PayU takes at most three, Azupay only allowed ones): a
    /// [`Error::Config`] names the field. Nothing is requested until the new source is used.
    ///
    /// Derive sources once, when the client is set up, and keep them: the cache is looked up
    /// here (under a lock), never per request. All caches of a family share its
    /// [`CacheConfig`], including the [name](CacheConfig::name) their metrics are counted under.
    ///
    /// ```
    /// use clientcreds::source::{ClientCredentialsSource, TokenSource};
    /// use clientcreds::{Env, HttpClient, Provider};
    /// use secrecy::SecretString;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let sandbox = clientcreds_sandbox::Sandbox::start(Default::default()).await?;
    /// # let payu = sandbox.payu();
    /// # let (token_url, client_id, secret) = (payu.token_url, payu.client_id, payu.client_secret);
    /// let credentials = Provider::payu(Env::Test, client_id, SecretString::from(secret))
    ///     .token_url(token_url)
    ///     .scope("read_payment_links")
    ///     .build()?;
    /// let read = ClientCredentialsSource::new(credentials, HttpClient::new());
    ///
    /// // Another scope set: a cache and a token of its own.
    /// let write = read.for_scopes(["create_payment_links", "update_payment_links"])?;
    /// let token = write.token().await?;
    /// assert_eq!(token.scope(), Some("create_payment_links update_payment_links"));
    /// assert!(read.cached().is_none(), "the other key has no token yet");
    ///
    /// // The same key again, in any order: the same cache — served without a token request.
    /// let same = read.for_scopes(["update_payment_links create_payment_links"])?;
    /// assert!(same.cached().is_some());
    ///
    /// // Preset rules still hold: PayU accepts at most three scopes per token.
    /// assert!(read.for_scopes(["a", "b", "c", "d"]).is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub fn for_scopes<I, S>(&self, scopes: I) -> Result<ClientCredentialsSource, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let scopes = scopes
            .into_iter()
            .flat_map(|scope| {
                scope
                    .as_ref()
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect();
        self.derive(Some(scopes), None, None)
    }

    /// A source for the same client with this `audience` instead of this source's (scopes and
    /// resource stay), sharing the cache for that key with every source of the same family.
    /// Checked like [`for_scopes`](Self::for_scopes) (Autopay, for one, accepts only its own
    /// audience).
    ///
    /// ```
    /// use clientcreds::source::ClientCredentialsSource;
    /// use clientcreds::{ClientCredentials, HttpClient};
    /// use secrecy::SecretString;
    ///
    /// # fn main() -> Result<(), clientcreds::Error> {
    /// let credentials = ClientCredentials::builder(
    ///     "https://auth.example.com/oauth/token",
    ///     "my-client",
    ///     SecretString::from("my-secret"),
    /// )
    /// .audience("https://orders.example.com")
    /// .build()?;
    /// let orders = ClientCredentialsSource::new(credentials, HttpClient::new());
    /// let billing = orders.for_audience("https://billing.example.com")?;
    /// assert_eq!(billing.cache_key().audience(), Some("https://billing.example.com"));
    /// assert_eq!(orders.cache_key().audience(), Some("https://orders.example.com"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn for_audience(
        &self,
        audience: impl Into<String>,
    ) -> Result<ClientCredentialsSource, Error> {
        self.derive(None, Some(Some(audience.into())), None)
    }

    /// A source for the same client with this `resource` (RFC 8707) instead of this source's
    /// (scopes and audience stay), sharing the cache for that key with every source of the
    /// same family. Checked like [`for_scopes`](Self::for_scopes).
    ///
    /// ```
    /// use clientcreds::source::ClientCredentialsSource;
    /// use clientcreds::{ClientCredentials, HttpClient};
    /// use secrecy::SecretString;
    ///
    /// # fn main() -> Result<(), clientcreds::Error> {
    /// let credentials = ClientCredentials::builder(
    ///     "https://auth.example.com/oauth/token",
    ///     "my-client",
    ///     SecretString::from("my-secret"),
    /// )
    /// .build()?;
    /// let source = ClientCredentialsSource::new(credentials, HttpClient::new());
    /// let ledger = source.for_resource("https://ledger.example.com/")?;
    /// assert_eq!(ledger.cache_key().resource(), Some("https://ledger.example.com/"));
    /// assert!(source.for_resource("").is_err(), "an empty resource is refused");
    /// # Ok(())
    /// # }
    /// ```
    pub fn for_resource(
        &self,
        resource: impl Into<String>,
    ) -> Result<ClientCredentialsSource, Error> {
        self.derive(None, None, Some(Some(resource.into())))
    }

    fn derive(
        &self,
        scopes: Option<Vec<String>>,
        audience: Option<Option<String>>,
        resource: Option<Option<String>>,
    ) -> Result<ClientCredentialsSource, Error> {
        let credentials = self.credentials.with_key(scopes, audience, resource)?;
        Ok(self.family.source(credentials))
    }

    /// The credentials tokens are requested with.
    pub fn credentials(&self) -> &ClientCredentials {
        &self.credentials
    }

    /// The key of this source's tokens: scopes, audience, resource.
    pub fn cache_key(&self) -> &CacheKey {
        self.credentials.cache_key()
    }

    /// The cache (for [`TokenCache::last_error`] and such). Sources for the same key of one
    /// family return the same cache.
    pub fn cache(&self) -> &TokenCache {
        &self.cache
    }
}

impl fmt::Debug for ClientCredentialsSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentialsSource")
            .field("credentials", &self.credentials)
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl TokenSource for ClientCredentialsSource {
    fn cached(&self) -> Option<Arc<Token>> {
        self.cache.cached()
    }

    fn cached_authorization(&self) -> Option<http::HeaderValue> {
        self.cache.cached_authorization()
    }

    fn fresh_authorization(&self) -> Option<FreshAuthorization> {
        self.cache.fresh_authorization()
    }

    fn token(&self) -> TokenFuture {
        Box::pin(self.cache.token())
    }

    fn invalidate(&self, token: &Token) -> bool {
        self.cache.invalidate(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn source() -> ClientCredentialsSource {
        let credentials = ClientCredentials::builder(
            "https://auth.example.com/token",
            "id",
            SecretString::from("family-secret"),
        )
        .scope("a")
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
        ClientCredentialsSource::new(credentials, HttpClient::new())
    }

    fn same_cache(a: &ClientCredentialsSource, b: &ClientCredentialsSource) -> bool {
        a.cache.ptr_eq(&b.cache)
    }

    #[test]
    fn one_cache_per_key_in_a_family() -> Result<(), Error> {
        let root = source();
        let ab = root.for_scopes(["a", "b"])?;
        let ba = root.for_scopes(["b a", "a"])?;
        assert!(same_cache(&ab, &ba), "same key, same cache");
        assert!(
            same_cache(&root, &root.for_scopes(["a"])?),
            "the root's own key"
        );
        assert!(!same_cache(&root, &ab));
        // Derived from a derived source: still the same family.
        assert!(same_cache(&ab.for_scopes(["a"])?, &root));
        let aud = root.for_audience("x")?;
        assert!(!same_cache(&root, &aud));
        assert_eq!(aud.cache_key().scopes(), ["a"]);
        assert!(same_cache(&aud, &ab.for_scopes(["a"])?.for_audience("x")?));
        let res = aud.for_resource("https://r/")?;
        assert_eq!(res.cache_key().audience(), Some("x"));
        assert_eq!(res.cache_key().resource(), Some("https://r/"));
        // Another family (a new root) never shares.
        assert!(!same_cache(&root, &source()));
        Ok(())
    }

    #[test]
    fn a_key_nobody_uses_is_dropped() -> Result<(), Error> {
        let root = source();
        let derived = root.for_scopes(["z"])?;
        let weak = derived.cache.downgrade();
        drop(derived);
        assert!(!weak.is_alive(), "the family does not keep a cache alive");
        // A new handle for the key gets a new cache; the dead entry is replaced.
        let again = root.for_scopes(["z"])?;
        assert!(again.cache.downgrade().is_alive());
        assert_eq!(root.family.caches.len(), 2);
        Ok(())
    }

    #[test]
    fn derived_scopes_are_checked_and_errors_name_the_field() {
        let root = source();
        for bad in [
            root.for_scopes(["a\"b"]),
            root.for_audience(""),
            root.for_resource(""),
        ] {
            match bad {
                Err(Error::Config { field, .. }) => {
                    assert!(["scope", "audience", "resource"].contains(&field));
                }
                other => panic!("expected a config error, got {other:?}"),
            }
        }
        let pyng = crate::Provider::pyng("https://p.example", "id", SecretString::from("s"))
            .scope("billing:customers:read")
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        let pyng = ClientCredentialsSource::new(pyng, HttpClient::new());
        assert!(matches!(
            pyng.for_scopes(Vec::<String>::new()),
            Err(Error::Config { field: "scope", .. })
        ));
        let debug = format!("{root:?} {:?}", root.for_scopes(["q"]));
        assert!(!debug.contains("family-secret"), "{debug}");
    }
}
