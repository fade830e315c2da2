//! [`ClientCredentials`]: one OAuth 2.0 client at one token endpoint.
//!
//! ```
//! use clientcreds::{ClientAuth, ClientCredentials};
//! use secrecy::SecretString;
//!
//! let credentials = ClientCredentials::builder(
//!     "https://sample.pyng.com.au/billing/oauth2/token",
//!     "s6BhdRkqt3",
//!     SecretString::from("gX1fBat3bV"),
//! )
//! .auth(ClientAuth::Basic)
//! .scope("billing:customers:read")
//! .build()?;
//! assert_eq!(credentials.cache_key().scopes(), ["billing:customers:read"]);
//! // Debug never shows the secret.
//! assert!(!format!("{credentials:?}").contains("gX1fBat3bV"));
//! # Ok::<(), clientcreds::Error>(())
//! ```

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use http::header::{HeaderMap, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::Error;
#[cfg(feature = "private-key-jwt")]
use crate::assertion::{DEFAULT_ASSERTION_LIFETIME, SigningKey};

/// How the client authenticates to the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum ClientAuth {
    /// `Authorization: Basic base64(id:secret)` with a form body (RFC 6749 §2.3.1,
    /// `client_secret_basic`). Pyng, Afterpay.
    #[default]
    Basic,
    /// `client_id` and `client_secret` in the form body (`client_secret_post`). Azupay, PayU.
    Post,
    /// A JSON body with `client_id`, `client_secret` and the other parameters,
    /// `Content-Type: application/json`. Autopay.
    Json,
    /// `private_key_jwt` (RFC 7523 §2.2): a JWT signed with the client's private key, new for
    /// every request, as `client_assertion` in the form body. Build such a client with
    /// [`ClientCredentials::private_key_jwt`]; see [`assertion`](crate::assertion).
    #[cfg(feature = "private-key-jwt")]
    #[cfg_attr(docsrs, doc(cfg(feature = "private-key-jwt")))]
    PrivateKeyJwt,
    /// `tls_client_auth` (RFC 8705 §2.1): the client certificate on the TLS connection
    /// authenticates the client; the form body carries `client_id`. The [`HttpClient`](crate::HttpClient) must
    /// present the certificate ([`HttpClientBuilder::client_identity`](crate::HttpClientBuilder::client_identity)).
    /// Build such a client with [`ClientCredentials::tls_client_auth`].
    TlsClientAuth,
}

/// How the client id and secret are encoded before base64 in [`ClientAuth::Basic`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum BasicEncoding {
    /// Percent-encode both as RFC 6749 §2.3.1 requires; a space becomes `%20` (which every
    /// server's decoder reads back, where `+` is misread by some). Unreserved characters
    /// (`A-Z a-z 0-9 - . _ ~`) stay as they are, so ordinary ids and secrets are unchanged.
    #[default]
    FormUrlEncoded,
    /// Use both as they are (RFC 7617 style), for servers that do not decode them. The client
    /// id must then not contain `:`.
    Raw,
}

/// What distinguishes one token from another for the same client: the requested scopes
/// (sorted, deduplicated), audience and resource.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CacheKey {
    scopes: Vec<String>,
    audience: Option<String>,
    resource: Option<String>,
}

impl CacheKey {
    /// The requested scopes, sorted and deduplicated.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// The requested audience.
    pub fn audience(&self) -> Option<&str> {
        self.audience.as_deref()
    }

    /// The requested resource (RFC 8707).
    pub fn resource(&self) -> Option<&str> {
        self.resource.as_deref()
    }
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "scope={:?}", self.scopes.join(" "))?;
        if let Some(audience) = &self.audience {
            write!(f, " audience={audience:?}")?;
        }
        if let Some(resource) = &self.resource {
            write!(f, " resource={resource:?}")?;
        }
        Ok(())
    }
}

/// Provider-specific rules checked by [`ClientCredentialsBuilder::build`].
#[derive(Debug, Clone, Default)]
pub(crate) struct Rules {
    pub(crate) provider: Option<&'static str>,
    pub(crate) require_scope: bool,
    pub(crate) max_scopes: Option<usize>,
    pub(crate) allowed_scopes: Option<Vec<String>>,
    pub(crate) required_audience: Option<&'static str>,
    pub(crate) grant_type_error: Option<String>,
}

#[derive(Clone)]
pub(crate) struct Inner {
    pub(crate) token_url: Url,
    pub(crate) client_id: String,
    pub(crate) client_secret: SecretString,
    pub(crate) auth: ClientAuth,
    pub(crate) basic_encoding: BasicEncoding,
    /// The key of [`ClientAuth::PrivateKeyJwt`].
    #[cfg(feature = "private-key-jwt")]
    pub(crate) signing_key: Option<SigningKey>,
    /// The `aud` of client assertions; the token URL when `None`.
    #[cfg(feature = "private-key-jwt")]
    pub(crate) assertion_audience: Option<String>,
    #[cfg(feature = "private-key-jwt")]
    pub(crate) assertion_lifetime: Duration,
    /// The scopes in the order they were given (deduplicated).
    pub(crate) scopes: Vec<String>,
    pub(crate) params: Vec<(String, String)>,
    pub(crate) headers: HeaderMap,
    pub(crate) default_lifetime: Option<Duration>,
    pub(crate) cache_key: CacheKey,
    pub(crate) provider: Option<&'static str>,
    /// The preset's rules, checked again when the cache key is changed.
    pub(crate) rules: Rules,
}

/// One OAuth 2.0 client at one token endpoint (RFC 6749 §4.4).
///
/// Cheap to clone. `Debug` shows everything but the secret. Build it with
/// [`ClientCredentials::builder`] or a [`Provider`](crate::Provider) preset.
#[derive(Clone)]
pub struct ClientCredentials {
    pub(crate) inner: Arc<Inner>,
}

impl ClientCredentials {
    /// Starts a builder for a client at `token_url`.
    ///
    /// The URL is checked by [`ClientCredentialsBuilder::build`]: `https://`, or `http://` only
    /// for a loopback host or after [`allow_insecure_http`](ClientCredentialsBuilder::allow_insecure_http).
    pub fn builder(
        token_url: impl AsRef<str>,
        client_id: impl Into<String>,
        client_secret: SecretString,
    ) -> ClientCredentialsBuilder {
        ClientCredentialsBuilder {
            token_url: token_url.as_ref().to_owned(),
            client_id: client_id.into(),
            client_secret,
            auth: ClientAuth::default(),
            basic_encoding: BasicEncoding::default(),
            #[cfg(feature = "private-key-jwt")]
            signing_key: None,
            #[cfg(feature = "private-key-jwt")]
            assertion_audience: None,
            #[cfg(feature = "private-key-jwt")]
            assertion_lifetime: DEFAULT_ASSERTION_LIFETIME,
            scopes: Vec::new(),
            audience: None,
            resource: None,
            params: Vec::new(),
            headers: Vec::new(),
            allow_insecure_http: false,
            default_lifetime: None,
            rules: Rules::default(),
        }
    }

    /// Starts a builder for a client that authenticates with `private_key_jwt`
    /// ([`ClientAuth::PrivateKeyJwt`]): every token request carries a new assertion signed
    /// with `key`, for the audience `token_url` unless
    /// [`assertion_audience`](ClientCredentialsBuilder::assertion_audience) says otherwise.
    ///
    /// ```
    /// use clientcreds::ClientCredentials;
    /// use clientcreds::assertion::{JwsAlgorithm, SigningKey};
    ///
    /// # let pem = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap().serialize_pem();
    /// // let pem = std::fs::read("client-key.pem")?;
    /// let key = SigningKey::from_pem(pem.as_bytes())?;
    /// let credentials = ClientCredentials::private_key_jwt(
    ///     "https://auth.example.com/oauth2/token",
    ///     "my-client",
    ///     key,
    /// )
    /// .assertion_audience("https://auth.example.com")
    /// .assertion_lifetime(std::time::Duration::from_secs(30))
    /// .build()?;
    /// assert_eq!(credentials.client_id(), "my-client");
    /// # Ok::<(), clientcreds::Error>(())
    /// ```
    #[cfg(feature = "private-key-jwt")]
    #[cfg_attr(docsrs, doc(cfg(feature = "private-key-jwt")))]
    pub fn private_key_jwt(
        token_url: impl AsRef<str>,
        client_id: impl Into<String>,
        key: SigningKey,
    ) -> ClientCredentialsBuilder {
        let mut builder = Self::builder(token_url, client_id, SecretString::from(""));
        builder.auth = ClientAuth::PrivateKeyJwt;
        builder.signing_key = Some(key);
        builder
    }

    /// Starts a builder for a client that authenticates with its TLS client certificate
    /// ([`ClientAuth::TlsClientAuth`], RFC 8705 §2.1). The certificate is the
    /// [`HttpClient`](crate::HttpClient)'s: give it one with
    /// [`HttpClientBuilder::client_identity`](crate::HttpClientBuilder::client_identity).
    /// A token request over a client without one fails with [`Error::Config`].
    ///
    /// ```
    /// use clientcreds::{ClientAuth, ClientCredentials, ClientIdentity, HttpClient};
    ///
    /// # let key = rcgen::KeyPair::generate().unwrap();
    /// # let cert = rcgen::CertificateParams::new(vec!["client".into()]).unwrap().self_signed(&key).unwrap();
    /// # let (cert_pem, key_pem) = (cert.pem(), key.serialize_pem());
    /// // let (cert_pem, key_pem) = (std::fs::read("client.pem")?, std::fs::read("client-key.pem")?);
    /// let identity = ClientIdentity::from_pem(cert_pem.as_bytes(), key_pem.as_bytes())?;
    /// let http = HttpClient::builder().client_identity(identity).build()?;
    /// let credentials = ClientCredentials::tls_client_auth(
    ///     "https://mtls.auth.example.com/oauth2/token",
    ///     "my-client",
    /// )
    /// .build()?;
    /// assert_eq!(credentials.auth(), ClientAuth::TlsClientAuth);
    /// # let _ = http;
    /// # Ok::<(), clientcreds::Error>(())
    /// ```
    pub fn tls_client_auth(
        token_url: impl AsRef<str>,
        client_id: impl Into<String>,
    ) -> ClientCredentialsBuilder {
        Self::builder(token_url, client_id, SecretString::from("")).auth(ClientAuth::TlsClientAuth)
    }

    /// What distinguishes tokens: scopes (sorted, deduplicated), audience, resource.
    pub fn cache_key(&self) -> &CacheKey {
        &self.inner.cache_key
    }

    /// The token endpoint.
    pub fn token_url(&self) -> &Url {
        &self.inner.token_url
    }

    /// The client id.
    pub fn client_id(&self) -> &str {
        &self.inner.client_id
    }

    /// How the client authenticates.
    pub fn auth(&self) -> ClientAuth {
        self.inner.auth
    }

    /// The requested scopes, in the order given.
    pub fn scopes(&self) -> &[String] {
        &self.inner.scopes
    }

    /// The lifetime used when a response has neither `expires_in` nor a JWT `exp` claim.
    pub fn default_lifetime(&self) -> Option<Duration> {
        self.inner.default_lifetime
    }

    /// The preset this client was built from, if any (`"azupay"`, `"payu"`, …).
    pub fn provider(&self) -> Option<&'static str> {
        self.inner.provider
    }

    /// The same client with another cache key: `scopes` replaces the scopes when given,
    /// `audience` and `resource` replace theirs when given (`Some(None)` removes one). The
    /// result is checked like [`ClientCredentialsBuilder::build`] checks it, preset rules
    /// included.
    pub(crate) fn with_key(
        &self,
        scopes: Option<Vec<String>>,
        audience: Option<Option<String>>,
        resource: Option<Option<String>>,
    ) -> Result<ClientCredentials, Error> {
        let inner = &self.inner;
        let (scopes, cache_key) = key_parts(
            &inner.rules,
            scopes.unwrap_or_else(|| inner.scopes.clone()),
            audience.unwrap_or_else(|| inner.cache_key.audience.clone()),
            resource.unwrap_or_else(|| inner.cache_key.resource.clone()),
        )?;
        let mut derived = Inner::clone(inner);
        derived.scopes = scopes;
        derived.cache_key = cache_key;
        Ok(ClientCredentials {
            inner: Arc::new(derived),
        })
    }

    /// The requested scopes joined by spaces, or `None`.
    pub(crate) fn scope_string(&self) -> Option<String> {
        (!self.inner.scopes.is_empty()).then(|| self.inner.scopes.join(" "))
    }

    /// The secret, for encoding the request only.
    pub(crate) fn secret(&self) -> &str {
        self.inner.client_secret.expose_secret()
    }

    /// `text` (an error, a provider's message) on one line with this client's secret cut out,
    /// raw or encoded, also inside an echoed `Basic` header: see
    /// [`redact::scrub`](crate::redact::scrub) and
    /// [`redact::client_secrets`](crate::redact::client_secrets).
    pub fn scrub(&self, text: &str) -> String {
        let secrets = crate::redact::client_secrets(self.client_id(), self.secret());
        let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
        crate::redact::scrub(text, &secrets)
    }
}

impl fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        let mut f = f.debug_struct("ClientCredentials");
        f.field("token_url", &inner.token_url.as_str())
            .field("client_id", &inner.client_id)
            .field("client_secret", &"[redacted]")
            .field("auth", &inner.auth);
        #[cfg(feature = "private-key-jwt")]
        f.field("signing_key", &inner.signing_key);
        f.field("scopes", &inner.scopes)
            .field("audience", &inner.cache_key.audience)
            .field("resource", &inner.cache_key.resource)
            .field(
                "params",
                &inner.params.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field("headers", &inner.headers.keys().collect::<Vec<_>>())
            .field("default_lifetime", &inner.default_lifetime)
            .finish_non_exhaustive()
    }
}

/// Builder of [`ClientCredentials`]; every check happens in [`build`](Self::build).
#[must_use]
pub struct ClientCredentialsBuilder {
    token_url: String,
    client_id: String,
    client_secret: SecretString,
    auth: ClientAuth,
    basic_encoding: BasicEncoding,
    #[cfg(feature = "private-key-jwt")]
    signing_key: Option<SigningKey>,
    #[cfg(feature = "private-key-jwt")]
    assertion_audience: Option<String>,
    #[cfg(feature = "private-key-jwt")]
    assertion_lifetime: Duration,
    scopes: Vec<String>,
    audience: Option<String>,
    resource: Option<String>,
    params: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    allow_insecure_http: bool,
    default_lifetime: Option<Duration>,
    pub(crate) rules: Rules,
}

impl fmt::Debug for ClientCredentialsBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut f = f.debug_struct("ClientCredentialsBuilder");
        f.field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("auth", &self.auth);
        #[cfg(feature = "private-key-jwt")]
        f.field("signing_key", &self.signing_key);
        f.field("scopes", &self.scopes)
            .field("audience", &self.audience)
            .field("resource", &self.resource)
            .finish_non_exhaustive()
    }
}

/// Parameters with their own builder method (or fixed by the protocol).
const RESERVED_PARAMS: &[&str] = &[
    "grant_type",
    "client_id",
    "client_secret",
    "client_assertion",
    "client_assertion_type",
    "scope",
    "audience",
    "resource",
];
/// Headers the request sets itself.
const RESERVED_HEADERS: &[&str] = &["authorization", "content-type", "content-length", "host"];

impl ClientCredentialsBuilder {
    /// Replaces the token URL (e.g. to point a preset at a sandbox).
    pub fn token_url(mut self, token_url: impl AsRef<str>) -> Self {
        self.token_url = token_url.as_ref().to_owned();
        self
    }

    /// How the client authenticates (default [`ClientAuth::Basic`]).
    pub fn auth(mut self, auth: ClientAuth) -> Self {
        self.auth = auth;
        self
    }

    /// The key that signs the client assertions of [`ClientAuth::PrivateKeyJwt`] (set by
    /// [`ClientCredentials::private_key_jwt`]).
    #[cfg(feature = "private-key-jwt")]
    #[cfg_attr(docsrs, doc(cfg(feature = "private-key-jwt")))]
    pub fn signing_key(mut self, key: SigningKey) -> Self {
        self.signing_key = Some(key);
        self
    }

    /// The `aud` claim of client assertions (default: the token URL). Some servers want their
    /// issuer identifier instead.
    #[cfg(feature = "private-key-jwt")]
    #[cfg_attr(docsrs, doc(cfg(feature = "private-key-jwt")))]
    pub fn assertion_audience(mut self, audience: impl Into<String>) -> Self {
        self.assertion_audience = Some(audience.into());
        self
    }

    /// How long a client assertion is valid (`exp` − `iat`; default 60 s, at most 10 min).
    /// Each token request signs a new one, so this only needs to cover the request itself and
    /// clock skew.
    #[cfg(feature = "private-key-jwt")]
    #[cfg_attr(docsrs, doc(cfg(feature = "private-key-jwt")))]
    pub fn assertion_lifetime(mut self, lifetime: Duration) -> Self {
        self.assertion_lifetime = lifetime;
        self
    }

    /// How the id and secret are encoded for [`ClientAuth::Basic`]
    /// (default [`BasicEncoding::FormUrlEncoded`]).
    pub fn basic_encoding(mut self, encoding: BasicEncoding) -> Self {
        self.basic_encoding = encoding;
        self
    }

    /// Adds a scope. A string with spaces adds each space-separated scope.
    pub fn scope(mut self, scope: impl AsRef<str>) -> Self {
        self.scopes
            .extend(scope.as_ref().split_whitespace().map(str::to_owned));
        self
    }

    /// Adds scopes.
    pub fn scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        for scope in scopes {
            self = self.scope(scope);
        }
        self
    }

    /// Sets the `audience` parameter.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// Sets the `resource` parameter (RFC 8707).
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resource = Some(resource.into());
        self
    }

    /// Adds an extra request parameter (form field or JSON string member).
    pub fn param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.params.push((name.into(), value.into()));
        self
    }

    /// Adds an extra header to the token request.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Allows an `http://` token URL on a host that is not loopback (default `false`). The
    /// secret then crosses the network in clear text: only for trusted test networks.
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        self
    }

    /// The lifetime assumed when a response has neither `expires_in` nor a JWT `exp` claim.
    /// Without it such a response is an error: a token is never assumed to live forever.
    pub fn default_lifetime(mut self, lifetime: Duration) -> Self {
        self.default_lifetime = Some(lifetime);
        self
    }

    /// The checks of `private_key_jwt`'s settings.
    #[cfg(feature = "private-key-jwt")]
    fn check_assertion(&self) -> Result<(), Error> {
        if self.auth == ClientAuth::PrivateKeyJwt && self.signing_key.is_none() {
            return Err(Error::config(
                "private_key",
                "is not set; private_key_jwt needs the client's private key \
                 (ClientCredentials::private_key_jwt or .signing_key(..))",
            ));
        }
        if self.assertion_lifetime.is_zero() || self.assertion_lifetime > Duration::from_secs(600) {
            return Err(Error::config(
                "assertion_lifetime",
                "must be between 1 s and 10 min",
            ));
        }
        if self.assertion_audience.as_deref() == Some("") {
            return Err(Error::config(
                "assertion_audience",
                "is empty; leave it unset to use the token URL",
            ));
        }
        Ok(())
    }

    /// Checks everything and builds the client.
    pub fn build(self) -> Result<ClientCredentials, Error> {
        let provider = self.rules.provider;
        let preset = |msg: String| match provider {
            Some(p) => format!("{msg} (preset {p})"),
            None => msg,
        };
        if let Some(message) = self.rules.grant_type_error.clone() {
            return Err(Error::config("grant_type", message));
        }
        if self.token_url.trim().is_empty() {
            return Err(Error::config(
                "token_url",
                preset("is not set; set the token endpoint with .token_url(..)".into()),
            ));
        }
        let token_url = check_token_url(&self.token_url, self.allow_insecure_http)?;
        if self.client_id.is_empty() {
            return Err(Error::config(
                "client_id",
                "is empty; set the client id the provider issued",
            ));
        }
        if self.client_id.chars().any(char::is_control) {
            return Err(Error::config("client_id", "contains control characters"));
        }
        let uses_secret = matches!(
            self.auth,
            ClientAuth::Basic | ClientAuth::Post | ClientAuth::Json
        );
        if uses_secret && self.client_secret.expose_secret().is_empty() {
            return Err(Error::config(
                "client_secret",
                "is empty; pass the client secret the provider issued",
            ));
        }
        #[cfg(feature = "private-key-jwt")]
        self.check_assertion()?;
        if self.auth == ClientAuth::Basic
            && self.basic_encoding == BasicEncoding::Raw
            && self.client_id.contains(':')
        {
            return Err(Error::config(
                "client_id",
                "contains ':', which Basic authentication cannot carry raw; use \
                 BasicEncoding::FormUrlEncoded or ClientAuth::Post",
            ));
        }
        let (scopes, cache_key) =
            key_parts(&self.rules, self.scopes, self.audience, self.resource)?;
        for (name, _) in &self.params {
            if name.is_empty() {
                return Err(Error::config("param", "a parameter name is empty"));
            }
            if RESERVED_PARAMS.contains(&name.as_str()) {
                return Err(Error::config(
                    "param",
                    format!(
                        "{name:?} is set by the client itself; use the builder method of the \
                         same name"
                    ),
                ));
            }
        }
        let mut headers = HeaderMap::new();
        for (name, value) in &self.headers {
            let header_name = HeaderName::try_from(name.as_str()).map_err(|_| {
                Error::config("header", format!("{name:?} is not a valid header name"))
            })?;
            if RESERVED_HEADERS.contains(&header_name.as_str()) {
                return Err(Error::config(
                    "header",
                    format!("{name:?} is set by the client itself and cannot be overridden"),
                ));
            }
            let mut header_value = HeaderValue::try_from(value.as_str()).map_err(|_| {
                Error::config(
                    "header",
                    format!("the value of {name:?} is not a valid header value"),
                )
            })?;
            header_value.set_sensitive(true);
            headers.append(header_name, header_value);
        }
        if self.default_lifetime == Some(Duration::ZERO) {
            return Err(Error::config(
                "default_lifetime",
                "must be longer than zero",
            ));
        }
        Ok(ClientCredentials {
            inner: Arc::new(Inner {
                token_url,
                client_id: self.client_id,
                client_secret: self.client_secret,
                auth: self.auth,
                basic_encoding: self.basic_encoding,
                #[cfg(feature = "private-key-jwt")]
                signing_key: self.signing_key,
                #[cfg(feature = "private-key-jwt")]
                assertion_audience: self.assertion_audience,
                #[cfg(feature = "private-key-jwt")]
                assertion_lifetime: self.assertion_lifetime,
                scopes,
                params: self.params,
                headers,
                default_lifetime: self.default_lifetime,
                cache_key,
                provider,
                rules: self.rules,
            }),
        })
    }
}

/// Checks the scopes, audience and resource against RFC 6749 and the preset's rules; the
/// scopes in the order given (deduplicated) and the cache key.
fn key_parts(
    rules: &Rules,
    requested: Vec<String>,
    audience: Option<String>,
    resource: Option<String>,
) -> Result<(Vec<String>, CacheKey), Error> {
    let preset = |msg: String| match rules.provider {
        Some(p) => format!("{msg} (preset {p})"),
        None => msg,
    };
    let mut scopes: Vec<String> = Vec::new();
    for scope in requested {
        if let Some(bad) = scope.chars().find(|c| !is_scope_char(*c)) {
            return Err(Error::config(
                "scope",
                format!(
                    "{scope:?} contains {bad:?}; a scope is printable ASCII without spaces, \
                     '\"' or '\\' (RFC 6749 §3.3)"
                ),
            ));
        }
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    if rules.require_scope && scopes.is_empty() {
        return Err(Error::config(
            "scope",
            preset("the provider requires at least one scope; add one with .scope(..)".into()),
        ));
    }
    if let Some(max) = rules.max_scopes
        && scopes.len() > max
    {
        return Err(Error::config(
            "scope",
            preset(format!(
                "{} scopes requested but the provider accepts at most {max}; request fewer \
                 scopes per token",
                scopes.len()
            )),
        ));
    }
    if let Some(allowed) = &rules.allowed_scopes
        && !allowed.is_empty()
        && let Some(bad) = scopes.iter().find(|s| !allowed.contains(s))
    {
        return Err(Error::config(
            "scope",
            preset(format!(
                "{bad:?} is not in the client's allowed scopes ({}); request only allowed \
                 scopes",
                allowed.join(" ")
            )),
        ));
    }
    if let Some(required) = rules.required_audience
        && audience.as_deref() != Some(required)
    {
        return Err(Error::config(
            "audience",
            preset(format!("must be {required:?}")),
        ));
    }
    for (name, value) in [("audience", &audience), ("resource", &resource)] {
        if value.as_deref() == Some("") {
            return Err(Error::config(name, "is empty; leave it unset instead"));
        }
    }
    let mut sorted = scopes.clone();
    sorted.sort();
    let cache_key = CacheKey {
        scopes: sorted,
        audience,
        resource,
    };
    Ok((scopes, cache_key))
}

/// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
fn is_scope_char(c: char) -> bool {
    matches!(c, '\x21' | '\x23'..='\x5B' | '\x5D'..='\x7E')
}

fn check_token_url(raw: &str, allow_insecure_http: bool) -> Result<Url, Error> {
    let url = Url::parse(raw).map_err(|e| {
        Error::config(
            "token_url",
            format!(
                "{raw:?} is not a valid URL ({e}); use e.g. https://auth.example.com/oauth2/token"
            ),
        )
    })?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::config(
            "token_url",
            "contains credentials; pass the client id and secret to the builder instead",
        ));
    }
    if url.fragment().is_some() {
        return Err(Error::config("token_url", "must not have a #fragment"));
    }
    match url.scheme() {
        "https" => {}
        "http" => {
            let loopback = match url.host() {
                Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
                Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
                None => false,
            };
            if !loopback && !allow_insecure_http {
                return Err(Error::config(
                    "token_url",
                    format!(
                        "{} uses http:// on a host that is not loopback, which would send the \
                         client secret in clear text; use https:// (or allow_insecure_http(true) \
                         on a trusted test network)",
                        url.as_str()
                    ),
                ));
            }
        }
        other => {
            return Err(Error::config(
                "token_url",
                format!("scheme {other:?} is not supported; use https://"),
            ));
        }
    }
    if url.host().is_none() {
        return Err(Error::config("token_url", "has no host"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builder(url: &str) -> ClientCredentialsBuilder {
        ClientCredentials::builder(url, "id", SecretString::from("s3cr3t-value"))
    }

    fn config_field(result: Result<ClientCredentials, Error>) -> &'static str {
        match result {
            Err(Error::Config { field, .. }) => field,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn http_refused_unless_loopback_or_opt_in() {
        assert_eq!(
            config_field(builder("http://auth.example.com/token").build()),
            "token_url"
        );
        assert!(
            builder("http://auth.example.com/token")
                .allow_insecure_http(true)
                .build()
                .is_ok()
        );
        assert!(builder("http://127.0.0.1:8080/token").build().is_ok());
        assert!(builder("http://127.1.2.3/token").build().is_ok());
        assert!(builder("http://[::1]:9/token").build().is_ok());
        assert!(builder("http://localhost/token").build().is_ok());
        assert!(builder("https://auth.example.com/token").build().is_ok());
        assert_eq!(config_field(builder("ftp://x/token").build()), "token_url");
        assert_eq!(config_field(builder("not a url").build()), "token_url");
        assert_eq!(
            config_field(builder("https://u:p@x/token").build()),
            "token_url"
        );
        let err = builder("http://10.0.0.1/token")
            .build()
            .unwrap_err()
            .to_string();
        assert!(err.contains("https://"), "{err}");
    }

    #[test]
    fn scopes_are_split_deduplicated_and_keyed_sorted() {
        let c = builder("https://x/t")
            .scope("b a")
            .scope("a")
            .scopes(["c"])
            .build()
            .unwrap();
        assert_eq!(c.scopes(), ["b", "a", "c"]);
        assert_eq!(c.cache_key().scopes(), ["a", "b", "c"]);
        assert_eq!(c.scope_string().as_deref(), Some("b a c"));
        let d = builder("https://x/t").scope("c a b").build().unwrap();
        assert_eq!(c.cache_key(), d.cache_key());
        let e = builder("https://x/t")
            .scope("c a b")
            .audience("x")
            .build()
            .unwrap();
        assert_ne!(d.cache_key(), e.cache_key());
        assert_eq!(
            config_field(builder("https://x/t").scope("a\"b").build()),
            "scope"
        );
    }

    #[test]
    fn bad_params_and_headers_name_the_field() {
        assert_eq!(
            config_field(builder("https://x/t").param("client_secret", "x").build()),
            "param"
        );
        assert_eq!(
            config_field(builder("https://x/t").header("Authorization", "x").build()),
            "header"
        );
        assert_eq!(
            config_field(builder("https://x/t").header("bad name", "x").build()),
            "header"
        );
        assert_eq!(
            config_field(builder("https://x/t").header("x-a", "\n").build()),
            "header"
        );
        assert!(
            builder("https://x/t")
                .param("foo", "bar")
                .header("x-a", "1")
                .build()
                .is_ok()
        );
        assert_eq!(
            config_field(ClientCredentials::builder("https://x/t", "", "s".into()).build()),
            "client_id"
        );
        assert_eq!(
            config_field(ClientCredentials::builder("https://x/t", "i", "".into()).build()),
            "client_secret"
        );
        assert_eq!(
            config_field(
                ClientCredentials::builder("https://x/t", "a:b", "s".into())
                    .basic_encoding(BasicEncoding::Raw)
                    .build()
            ),
            "client_id"
        );
        assert_eq!(
            config_field(
                builder("https://x/t")
                    .default_lifetime(Duration::ZERO)
                    .build()
            ),
            "default_lifetime"
        );
    }

    #[test]
    fn debug_redacts_secret() {
        let c = builder("https://x/t")
            .header("x-api-key", "header-secret")
            .build()
            .unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("s3cr3t-value"), "{dbg}");
        assert!(!dbg.contains("header-secret"), "{dbg}");
        assert!(dbg.contains("[redacted]"));
        let b = format!("{:?}", builder("https://x/t"));
        assert!(!b.contains("s3cr3t-value"), "{b}");
    }

    #[test]
    fn key_and_certificate_methods_need_no_secret_but_their_own_parts() {
        let pem = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519)
            .unwrap()
            .serialize_pem();
        let key = SigningKey::from_pem(pem.as_bytes()).unwrap();
        let c = ClientCredentials::private_key_jwt("https://x/t", "id", key.clone())
            .build()
            .unwrap();
        assert_eq!(c.auth(), ClientAuth::PrivateKeyJwt);
        assert!(!format!("{c:?}").contains(pem.lines().nth(1).unwrap()));
        assert_eq!(
            config_field(
                ClientCredentials::builder("https://x/t", "id", "".into())
                    .auth(ClientAuth::PrivateKeyJwt)
                    .build()
            ),
            "private_key"
        );
        assert_eq!(
            config_field(
                ClientCredentials::private_key_jwt("https://x/t", "id", key.clone())
                    .assertion_lifetime(Duration::from_secs(3600))
                    .build()
            ),
            "assertion_lifetime"
        );
        assert_eq!(
            config_field(
                ClientCredentials::private_key_jwt("https://x/t", "id", key)
                    .param("client_assertion", "x")
                    .build()
            ),
            "param"
        );
        assert!(
            ClientCredentials::tls_client_auth("https://x/t", "id")
                .build()
                .is_ok()
        );
        // A secret method still needs its secret.
        assert_eq!(
            config_field(
                ClientCredentials::tls_client_auth("https://x/t", "id")
                    .auth(ClientAuth::Post)
                    .build()
            ),
            "client_secret"
        );
    }
}
