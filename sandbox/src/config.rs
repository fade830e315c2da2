//! Configuration of a sandbox: clients, secrets, token lifetimes, rate limits.

use std::fmt;
use std::time::Duration;

use crate::Provider;

/// Azupay's business `clientId` of the default Azupay client (the seed's `MYBUSINESSID`).
pub const AZUPAY_CLIENT_ID: &str = "MYBUSINESSID";
/// The API key of the default Azupay client, sent as-is in `Authorization` (as in the seed).
pub const AZUPAY_API_KEY: &str = "SECR_MYBUSINESSID_myapikey";
/// The `oauth2ClientId` the default Azupay client receives when OAuth 2.0 is enabled (the seed's).
pub const AZUPAY_OAUTH2_CLIENT_ID: &str = "3n8q9p1k2l4m5o6p7q8r9s0t1u";
/// The `oauth2ClientSecret` the default Azupay client receives when OAuth 2.0 is enabled (the
/// seed's).
pub const AZUPAY_OAUTH2_CLIENT_SECRET: &str =
    "abcdef1234567890abcdef1234567890abcdef1234567890abcdef12";
/// Azupay's default endpoint access set, as `oauth2AllowedScopes` lists it in the seed.
pub const AZUPAY_DEFAULT_SCOPES: &[&str] = &[
    "RestAPI/POST:paymentRequest",
    "RestAPI/POST:paymentRequest:refund",
    "RestAPI/POST:accountEnquiry",
    "RestAPI/POST:payIDEnquiry",
    "RestAPI/POST:payment",
    "RestAPI/GET:payment",
    "RestAPI/POST:payment:search",
    "RestAPI/GET:paymentRequest",
    "RestAPI/DELETE:paymentRequest",
    "RestAPI/POST:paymentRequest:search",
    "RestAPI/GET:report",
    "RestAPI/GET:report:download",
    "RestAPI/GET:balance",
];

/// The default Autopay client id (the seed's example request).
pub const AUTOPAY_CLIENT_ID: &str = "kWmliLIrb79QfsF9r3vJE4xrKMcdcrrA";
/// The default Autopay client secret (the seed's example request, placeholder included).
pub const AUTOPAY_CLIENT_SECRET: &str = "7xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxg";
/// The scope Autopay tokens of the default client carry (the seed's example response).
pub const AUTOPAY_SCOPE: &str = "customer_club";
/// The `audience` every Autopay token request must carry.
pub const AUTOPAY_AUDIENCE: &str = "https://api.autopay.io";

/// The default PayU client id (the seed only shows `{{client_id}}`).
pub const PAYU_CLIENT_ID: &str = "payu-sandbox-client";
/// The default PayU client secret (the seed only shows `{{client_secret}}`).
pub const PAYU_CLIENT_SECRET: &str = "payu-sandbox-secret";
/// The scopes granted to the default PayU client (all scopes the seed names).
pub const PAYU_SCOPES: &[&str] = &[
    "create_payment_links",
    "update_payment_links",
    "read_payment_links",
    "send_sign_in_otp",
];

/// The default Pyng client id: the user name in the seed's `Basic czZCaGRSa3F0MzpnWDFmQmF0M2JW`.
pub const PYNG_CLIENT_ID: &str = "s6BhdRkqt3";
/// The default Pyng client secret: the password in the seed's Basic header.
pub const PYNG_CLIENT_SECRET: &str = "gX1fBat3bV";
/// The scopes granted to the default Pyng client (the four the seed lists).
pub const PYNG_SCOPES: &[&str] = &[
    "billing:customers:invite",
    "billing:customers:read",
    "billing:batches:submit",
    "billing:batches:read",
];

/// The default Afterpay client id (the seed's `afterpay:merchantABC` example).
pub const AFTERPAY_CLIENT_ID: &str = "afterpay";
/// The default Afterpay client secret (the seed's `afterpay:merchantABC` example).
pub const AFTERPAY_CLIENT_SECRET: &str = "merchantABC";
/// A second Afterpay client: the seed's curl sample sends `Basic Z29tbzpwYXNzd29yZDEyMw==`.
pub const AFTERPAY_SAMPLE_CLIENT_ID: &str = "gomo";
/// The secret of [`AFTERPAY_SAMPLE_CLIENT_ID`].
pub const AFTERPAY_SAMPLE_CLIENT_SECRET: &str = "password123";
/// The scopes inside Afterpay JWTs (from the seed's sample token).
pub const AFTERPAY_SCOPES: &[&str] = &["ivr/v1/actionStart", "ivr/v1/actionConfirm"];

/// Default token lifetime of each provider, from its seed.
pub const fn default_lifetime(provider: Provider) -> Duration {
    Duration::from_secs(match provider {
        Provider::Azupay => 3600,
        Provider::Autopay => 86_400,
        Provider::Payu => 7200,
        Provider::Pyng => 900,
        Provider::Afterpay => 3600,
    })
}

/// A client of Autopay, PayU, Pyng or Afterpay: an id, a secret and the scopes it was granted.
#[derive(Clone)]
pub struct Client {
    pub(crate) id: String,
    pub(crate) secret: String,
    pub(crate) scopes: Vec<String>,
    pub(crate) client_credentials_allowed: bool,
}

impl Client {
    /// A client with this id and secret and no scopes.
    pub fn new(id: impl Into<String>, secret: impl Into<String>) -> Self {
        Client {
            id: id.into(),
            secret: secret.into(),
            scopes: Vec::new(),
            client_credentials_allowed: true,
        }
    }

    /// The scopes granted to the client (Autopay: the scopes every token carries).
    pub fn scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Whether the client may use the `client_credentials` grant (default `true`). PayU answers
    /// `unauthorized_client` to a client that may not.
    pub fn client_credentials_allowed(mut self, allowed: bool) -> Self {
        self.client_credentials_allowed = allowed;
        self
    }

    /// The client id.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("id", &self.id)
            .field("secret", &"[redacted]")
            .field("scopes", &self.scopes)
            .field(
                "client_credentials_allowed",
                &self.client_credentials_allowed,
            )
            .finish()
    }
}

/// An Azupay client: its business `clientId`, its API key, and what OAuth 2.0 enable gives it.
#[derive(Clone)]
pub struct AzupayClient {
    pub(crate) client_id: String,
    pub(crate) api_key: String,
    pub(crate) allowed_scopes: Vec<String>,
    pub(crate) oauth2_client_id: Option<String>,
    pub(crate) oauth2_client_secret: Option<String>,
    pub(crate) enabled: bool,
}

impl AzupayClient {
    /// A client with this business `clientId` and API key, Azupay's default scope set, and a
    /// random `oauth2ClientId`/`oauth2ClientSecret` generated when it is enabled.
    pub fn new(client_id: impl Into<String>, api_key: impl Into<String>) -> Self {
        AzupayClient {
            client_id: client_id.into(),
            api_key: api_key.into(),
            allowed_scopes: AZUPAY_DEFAULT_SCOPES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            oauth2_client_id: None,
            oauth2_client_secret: None,
            enabled: false,
        }
    }

    /// The `oauth2AllowedScopes` of this client (default: Azupay's default endpoint access set).
    pub fn allowed_scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed_scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Fixed OAuth 2.0 credentials, returned by enable instead of random ones.
    pub fn oauth2_credentials(
        mut self,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Self {
        self.oauth2_client_id = Some(client_id.into());
        self.oauth2_client_secret = Some(client_secret.into());
        self
    }

    /// Start with OAuth 2.0 already enabled (a later enable call is refused, as after a real one).
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    /// The business `clientId`.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }
}

impl fmt::Debug for AzupayClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzupayClient")
            .field("client_id", &self.client_id)
            .field("api_key", &"[redacted]")
            .field("allowed_scopes", &self.allowed_scopes)
            .field("oauth2_client_id", &self.oauth2_client_id)
            .field("oauth2_client_secret", &"[redacted]")
            .field("enabled", &self.enabled)
            .finish()
    }
}

/// A fixed-window rate limit: at most `requests` token requests per `window`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Token requests allowed per window.
    pub requests: u32,
    /// The window length.
    pub window: Duration,
}

/// How to start a [`Sandbox`](crate::Sandbox): the clients of each provider (the documented
/// defaults, plus any added), token lifetimes, and PayU's rate limit.
///
/// ```
/// use std::time::Duration;
/// use clientcreds_sandbox::{Client, Provider, SandboxConfig};
///
/// let config = SandboxConfig::default()
///     .payu_client(Client::new("shop", "s3cret").scopes(["read_payment_links"]))
///     .token_lifetime(Provider::Pyng, Duration::from_secs(60))
///     .payu_rate_limit(5, Duration::from_secs(60));
/// # let _ = config;
/// ```
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    pub(crate) port: u16,
    pub(crate) azupay: Vec<AzupayClient>,
    pub(crate) autopay: Vec<Client>,
    pub(crate) payu: Vec<Client>,
    pub(crate) pyng: Vec<Client>,
    pub(crate) afterpay: Vec<Client>,
    pub(crate) lifetimes: [Duration; 5],
    pub(crate) payu_rate_limit: Option<RateLimit>,
}

impl Default for SandboxConfig {
    /// The documented default clients (see the constants of this crate), seed lifetimes, port 0
    /// (an ephemeral port) and no rate limit.
    fn default() -> Self {
        SandboxConfig {
            port: 0,
            azupay: vec![
                AzupayClient::new(AZUPAY_CLIENT_ID, AZUPAY_API_KEY)
                    .oauth2_credentials(AZUPAY_OAUTH2_CLIENT_ID, AZUPAY_OAUTH2_CLIENT_SECRET),
            ],
            autopay: vec![
                Client::new(AUTOPAY_CLIENT_ID, AUTOPAY_CLIENT_SECRET).scopes([AUTOPAY_SCOPE]),
            ],
            payu: vec![
                Client::new(PAYU_CLIENT_ID, PAYU_CLIENT_SECRET).scopes(PAYU_SCOPES.iter().copied()),
            ],
            pyng: vec![
                Client::new(PYNG_CLIENT_ID, PYNG_CLIENT_SECRET).scopes(PYNG_SCOPES.iter().copied()),
            ],
            afterpay: vec![
                Client::new(AFTERPAY_CLIENT_ID, AFTERPAY_CLIENT_SECRET)
                    .scopes(AFTERPAY_SCOPES.iter().copied()),
                Client::new(AFTERPAY_SAMPLE_CLIENT_ID, AFTERPAY_SAMPLE_CLIENT_SECRET)
                    .scopes(AFTERPAY_SCOPES.iter().copied()),
            ],
            lifetimes: Provider::ALL.map(default_lifetime),
            payu_rate_limit: None,
        }
    }
}

impl SandboxConfig {
    /// Listen on this loopback port (0, the default, picks a free one).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Add an Azupay client (the default one stays).
    pub fn azupay_client(mut self, client: AzupayClient) -> Self {
        self.azupay.retain(|c| c.client_id != client.client_id);
        self.azupay.push(client);
        self
    }

    /// Set the `oauth2AllowedScopes` of an Azupay client already configured (by business
    /// `clientId`); unknown ids are ignored.
    pub fn azupay_allowed_scopes<I, S>(mut self, client_id: &str, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let scopes: Vec<String> = scopes.into_iter().map(Into::into).collect();
        for c in self.azupay.iter_mut().filter(|c| c.client_id == client_id) {
            c.allowed_scopes = scopes.clone();
        }
        self
    }

    /// Add an Autopay client (a client with the same id is replaced).
    pub fn autopay_client(mut self, client: Client) -> Self {
        add(&mut self.autopay, client);
        self
    }

    /// Add a PayU client (a client with the same id is replaced).
    pub fn payu_client(mut self, client: Client) -> Self {
        add(&mut self.payu, client);
        self
    }

    /// Add a Pyng client (a client with the same id is replaced).
    pub fn pyng_client(mut self, client: Client) -> Self {
        add(&mut self.pyng, client);
        self
    }

    /// Add an Afterpay client (a client with the same id is replaced).
    pub fn afterpay_client(mut self, client: Client) -> Self {
        add(&mut self.afterpay, client);
        self
    }

    /// The lifetime of tokens issued by `provider` (`expires_in` and the expiry the protected
    /// endpoints check). Whole seconds; sub-second parts are dropped.
    pub fn token_lifetime(mut self, provider: Provider, lifetime: Duration) -> Self {
        self.lifetimes[provider.index()] = lifetime;
        self
    }

    /// Allow at most `requests` PayU token requests per `window`; beyond that PayU answers 429
    /// `rate_limit_exceeded` with `retry_after` (seconds left in the window) in the body.
    pub fn payu_rate_limit(mut self, requests: u32, window: Duration) -> Self {
        self.payu_rate_limit = Some(RateLimit { requests, window });
        self
    }
}

fn add(list: &mut Vec<Client>, client: Client) {
    list.retain(|c| c.id != client.id);
    list.push(client);
}
