//! A local emulator of the token endpoints of Azupay, Autopay, PayU, Pyng and Afterpay, written
//! from their documents alone, for tests and for development without credentials.
//!
//! One server on a loopback port serves every provider under its own path prefix, each with a
//! token endpoint and a protected endpoint that accepts only that provider's valid, unexpired,
//! unrevoked tokens — so a test can prove that a token *works*, not just that it exists.
//!
//! ```
//! use clientcreds_sandbox::{Sandbox, SandboxConfig};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let sandbox = Sandbox::start(SandboxConfig::default()).await?;
//! let payu = sandbox.payu();
//! assert_eq!(payu.token_url, format!("{}/payu/oauth/token", sandbox.base_url()));
//! assert_eq!(payu.resource_url, format!("{}/payu/resource", sandbox.base_url()));
//! assert_eq!(payu.client_id, clientcreds_sandbox::PAYU_CLIENT_ID);
//! // … point the client under test at `payu.token_url` and `payu.resource_url`; the example
//! // under "Test controls" shows what the handle then tells the test.
//! # Ok(())
//! # }
//! ```
//!
//! # Endpoints
//!
//! | provider | token endpoint | protected endpoint | other |
//! |---|---|---|---|
//! | Azupay | `POST /azupay/oauth2/token` | `GET /azupay/v1/balance` (scope `RestAPI/GET:balance`) | `POST`/`GET /azupay/v1/client/{clientId}/oauth2` |
//! | Autopay | `POST /autopay/oauth/token` | `GET /autopay/resource` | |
//! | PayU | `POST /payu/oauth/token` | `GET /payu/resource` | |
//! | Pyng | `POST /pyng/billing/oauth2/token` | `GET /pyng/resource` | |
//! | Afterpay | `POST /afterpay/oauth2/token` | `GET /afterpay/resource` | |
//!
//! The generic protected endpoints answer `{"provider", "client_id", "scope", "expires_at"}`.
//! Azupay's `{{ENDPOINT}}` is `{base_url}/azupay/v1`.
//!
//! # Default clients
//!
//! Taken from the seeds' own examples, so that each seed's example request works verbatim with
//! only the host changed: Azupay [`AZUPAY_CLIENT_ID`] / [`AZUPAY_API_KEY`] (enable returns
//! [`AZUPAY_OAUTH2_CLIENT_ID`] / [`AZUPAY_OAUTH2_CLIENT_SECRET`]); Autopay [`AUTOPAY_CLIENT_ID`] /
//! [`AUTOPAY_CLIENT_SECRET`]; PayU [`PAYU_CLIENT_ID`] / [`PAYU_CLIENT_SECRET`] (the seed has only
//! placeholders); Pyng [`PYNG_CLIENT_ID`] / [`PYNG_CLIENT_SECRET`] (the seed's Basic header);
//! Afterpay [`AFTERPAY_CLIENT_ID`] / [`AFTERPAY_CLIENT_SECRET`] and the curl sample's
//! [`AFTERPAY_SAMPLE_CLIENT_ID`] / [`AFTERPAY_SAMPLE_CLIENT_SECRET`].
//!
//! # How each provider answers
//!
//! Where a seed says how, the sandbox does exactly that. Where it is silent, the sandbox follows
//! RFC 6749 §5.2: errors are `{"error", "error_description"}` JSON; `invalid_request` (400) for a
//! missing or repeated parameter, a wrong or missing `Content-Type` or body format, or client
//! credentials sent both in `Authorization` and in the body (§2.3); `invalid_client` (401) for
//! unknown or missing client credentials or an unsupported authentication method;
//! `unsupported_grant_type` (400) for any `grant_type` but `client_credentials`; `invalid_scope`
//! (400). Token answers carry `Cache-Control: no-store`. `Content-Type` is judged by its media
//! type alone (case-insensitive), so parameters are accepted as real servers accept them:
//! `application/x-www-form-urlencoded; charset=UTF-8` for the form providers (Azupay's token
//! endpoint, PayU, Pyng, Afterpay) and `application/json; charset=utf-8` for Autopay. A correct
//! body under another type, or under none, is `invalid_request` (400) — for Autopay too.
//!
//! - **Azupay** (API gateway + Cognito). Enable/details are authorised by the API key sent as-is
//!   in `Authorization` (no scheme: `Bearer SECR_…` is a different, unknown key). Errors there are
//!   `{"message": …}`: missing or unknown key 401, a key of another `clientId` 403, a body that is
//!   not a JSON object 400, details before enable 404, and **a repeated enable 409** (the secret is
//!   never returned twice). HMAC-enabled API keys are *not* emulated: no signature is asked for or
//!   checked. The token endpoint takes `client_secret_post` only (Basic alone is
//!   `invalid_client`) and knows a client only once it is enabled; requested scopes outside
//!   `oauth2AllowedScopes` are left out of the token, as the seed says, and if none is left the
//!   answer is `invalid_scope`; no `scope` gives all allowed scopes. Tokens are HS256 JWTs with
//!   `exp`, `iat`, `scope`, `client_id`; the answer is `{access_token, token_type, expires_in}`.
//!   The API key can be rotated at run time ([`Sandbox::set_azupay_api_key`]).
//! - **Autopay** (Auth0-style). JSON body with `Content-Type: application/json` only; anything
//!   else is `invalid_request`, as is an `Authorization` header. Bad `client_id`/`client_secret`:
//!   401 `{"error":"access_denied","error_description":"Unauthorized"}` (the seed). An `audience`
//!   other than `https://api.autopay.io` is **403**
//!   `{"error":"access_denied","error_description":"Service not found: <audience>"}`. The seed
//!   says the audience must always be that value but shows no error for another one; its
//!   endpoint (`/oauth/token`, a JSON body with `audience`) and its 401 `access_denied` /
//!   `Unauthorized` are Auth0's, and this is Auth0's answer to an audience that names no API of
//!   the tenant. A client that takes that 403 for a configuration error — not bad credentials, not
//!   a retryable failure — behaves here as it would against Autopay. The audience is checked
//!   after `grant_type` and before the client credentials. Missing fields are 400
//!   `invalid_request` naming the field; a wrong `grant_type` 400 `unsupported_grant_type`. Tokens
//!   are JWTs with `scope` and `aud`; the answer has `scope`.
//! - **PayU**. Form body, `client_secret_post`; the five errors of the seed with its exact
//!   descriptions: `invalid_client` (401; also for Basic authentication, "unsupported
//!   authentication method"), `invalid_scope` (400; missing, unknown, not granted, or more than
//!   three scopes), `unauthorized_client` (400; a client configured with
//!   [`Client::client_credentials_allowed`]`(false)`), `rate_limit_exceeded` (429, `retry_after` in
//!   the body only, as in the seed) when [`SandboxConfig::payu_rate_limit`] is exceeded, and
//!   `server_error` (500; script it with [`Fault::json`] and [`PAYU_SERVER_ERROR`]). The rate limit
//!   counts every token request in a fixed window on the sandbox clock. Tokens are 64 hex
//!   characters; the answer carries `created_at`.
//! - **Pyng**. `Authorization: Basic` + form `grant_type` and a required `scope`; bad or missing
//!   client authentication is 401 `{"error":"invalid_client","error_description":"Client
//!   authentication failed"}` (the seed) with `WWW-Authenticate: Basic`; answers are
//!   `application/json;charset=UTF-8`. A missing `scope` is `invalid_request`, a scope not granted
//!   `invalid_scope`. Tokens are opaque.
//! - **Afterpay** (Cognito). `Authorization: Basic` + form `grant_type=client_credentials`;
//!   other form parameters are ignored (RFC 6749 §3.2). Credentials in the body as well as in
//!   `Authorization` are `invalid_request`; in the body only, or a failed authentication, 401
//!   `invalid_client` with `WWW-Authenticate: Basic`. `Accept` is not checked. JWT tokens, 3600 s,
//!   answer `{access_token, expires_in, token_type}`.
//!
//! Basic credentials (Pyng, Afterpay) match as sent or, failing that, form-decoded (RFC 6749
//! §2.3.1). Checks run in this order: scripted fault, rate limit (PayU), `Content-Type`, body
//! format, credentials sent twice, `grant_type`, client authentication, scope.
//!
//! A protected endpoint without a bearer token (no `Authorization`, or another scheme such as
//! `Basic`) answers 401 `{"error":"invalid_request", …}` with `WWW-Authenticate: Bearer
//! realm="<provider>"` and no error code (RFC 6750 §3.1); with a token that is forged, unknown, of
//! another provider, expired on the sandbox clock or revoked, 401 `{"error":"invalid_token", …}`
//! with `WWW-Authenticate: Bearer realm="<provider>", error="invalid_token",
//! error_description="…"`.
//! Azupay's balance answers a good token without `RestAPI/GET:balance` 403 `insufficient_scope`.
//!
//! # Test controls
//!
//! The [`Sandbox`] handle records every request ([`Sandbox::requests`]), counts tokens per client
//! ([`Sandbox::tokens_issued`]) and enable calls ([`Sandbox::enable_calls`]; every `POST` to the
//! enable path counts, refused or not), overrides token lifetimes, scripts [`Fault`]s for the
//! next token requests of a provider ([`Sandbox::fail_next`]) or Azupay's next enable calls
//! ([`Sandbox::fail_next_enable`]) or details calls ([`Sandbox::fail_next_details`]) — including [`Fault::after_processing`], where the request takes
//! effect and only its answer is lost — moves the sandbox clock forward ([`Sandbox::advance`]) and
//! revokes every issued token. The same controls are served as JSON under `/_sandbox/` for tests
//! in other languages (see [`admin`]).
//!
//! Here `payu_token` and `call` stand for the HTTP client under test (their code is hidden; it is
//! a plain `hyper` client): one asks PayU for a token the documented way and returns the status
//! and the `access_token`, the other calls a URL with `Authorization: Bearer` and returns the
//! status.
//!
//! ```
//! use std::time::Duration;
//! use clientcreds_sandbox::{Fault, Provider, Sandbox, SandboxConfig};
//! use clientcreds_sandbox::http::StatusCode;
//! # use bytes::Bytes;
//! # use clientcreds_sandbox::ProviderEndpoints;
//! # use clientcreds_sandbox::http::Request;
//! # use http_body_util::{BodyExt, Full};
//! # use hyper_util::client::legacy::Client;
//! # use hyper_util::rt::TokioExecutor;
//! # type Error = Box<dyn std::error::Error + Send + Sync>;
//! # async fn exchange(request: Request<Full<Bytes>>) -> Result<(u16, serde_json::Value), Error> {
//! #     let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
//! #     let response = client.request(request).await?;
//! #     let status = response.status().as_u16();
//! #     let body = response.into_body().collect().await?.to_bytes();
//! #     Ok((status, serde_json::from_slice(&body).unwrap_or_default()))
//! # }
//! # async fn payu_token(payu: &ProviderEndpoints) -> Result<(u16, String), Error> {
//! #     let body = format!(
//! #         "grant_type=client_credentials&scope=read_payment_links&client_id={}&client_secret={}",
//! #         payu.client_id, payu.client_secret
//! #     );
//! #     let request = Request::post(&payu.token_url)
//! #         .header("content-type", "application/x-www-form-urlencoded")
//! #         .body(Full::new(Bytes::from(body)))?;
//! #     let (status, answer) = exchange(request).await?;
//! #     Ok((status, answer["access_token"].as_str().unwrap_or_default().to_owned()))
//! # }
//! # async fn call(url: &str, token: &str) -> Result<u16, Error> {
//! #     let request = Request::get(url)
//! #         .header("authorization", format!("Bearer {token}"))
//! #         .body(Full::new(Bytes::new()))?;
//! #     Ok(exchange(request).await?.0)
//! # }
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Error> {
//! let sandbox = Sandbox::start(SandboxConfig::default()).await?;
//! let payu = sandbox.payu();
//!
//! // The next PayU token request fails as scripted; the one after is answered as documented.
//! sandbox.fail_next(Provider::Payu, 1, Fault::status(StatusCode::SERVICE_UNAVAILABLE));
//! assert_eq!(payu_token(&payu).await?.0, 503);
//! let (status, token) = payu_token(&payu).await?;
//! assert_eq!(status, 200);
//! assert_eq!(sandbox.tokens_issued(Provider::Payu, &payu.client_id), 1);
//! assert_eq!(sandbox.requests_for(Provider::Payu).len(), 2);
//!
//! // The token opens PayU's protected endpoint until it expires (7200 s) or is revoked.
//! assert_eq!(call(&payu.resource_url, &token).await?, 200);
//! sandbox.advance(Duration::from_secs(7200));
//! assert_eq!(call(&payu.resource_url, &token).await?, 401);
//! let (_, fresh) = payu_token(&payu).await?;
//! assert_eq!(call(&payu.resource_url, &fresh).await?, 200);
//! sandbox.revoke_all_tokens();
//! assert_eq!(call(&payu.resource_url, &fresh).await?, 401);
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![deny(unreachable_pub)]
// Handlers reject with a ready `Response`; boxing it would buy nothing in a test server.
#![allow(clippy::result_large_err)]

pub mod admin;
mod config;
mod control;
mod oauth;
mod providers;
mod server;
mod state;

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::*;
pub use control::{Fault, RecordedRequest};
pub use http;

use state::Shared;

/// The body PayU's seed shows for `server_error`, for scripting it with [`Fault::json`].
pub const PAYU_SERVER_ERROR: &str = r#"{"error":"server_error","error_description":"The authorization server encountered an unexpected condition that prevented it from fulfilling the request."}"#;

/// One of the five emulated providers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// Azupay: API-key enable flow, Cognito token endpoint.
    Azupay,
    /// Autopay: JSON token requests with an `audience`.
    Autopay,
    /// PayU: form token requests, `created_at`, rate limits.
    Payu,
    /// Pyng (B2B Receivables): Basic authentication, required `scope`.
    Pyng,
    /// Afterpay (IVR): Basic authentication, Cognito JWTs.
    Afterpay,
}

impl Provider {
    /// All five, in a fixed order.
    pub const ALL: [Provider; 5] = [
        Provider::Azupay,
        Provider::Autopay,
        Provider::Payu,
        Provider::Pyng,
        Provider::Afterpay,
    ];

    /// The lower-case name, which is also the path prefix.
    pub const fn as_str(self) -> &'static str {
        match self {
            Provider::Azupay => "azupay",
            Provider::Autopay => "autopay",
            Provider::Payu => "payu",
            Provider::Pyng => "pyng",
            Provider::Afterpay => "afterpay",
        }
    }

    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A provider name that is none of the five.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownProvider(pub String);

impl fmt::Display for UnknownProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown provider {:?}: expected azupay, autopay, payu, pyng or afterpay",
            self.0
        )
    }
}

impl std::error::Error for UnknownProvider {}

impl FromStr for Provider {
    type Err = UnknownProvider;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Provider::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownProvider(s.to_owned()))
    }
}

/// Where Azupay lives in a sandbox, and its default client's API-key credentials.
#[derive(Clone, Serialize)]
pub struct AzupayEndpoints {
    /// Azupay's `{{ENDPOINT}}`: `{base_url}/azupay/v1`.
    pub endpoint: String,
    /// The business `clientId`.
    pub client_id: String,
    /// The API key, sent as-is in `Authorization`.
    pub api_key: String,
    /// The token endpoint (also returned as `oauth2TokenUrl`).
    #[serde(skip)]
    pub token_url: String,
    /// The protected endpoint `GET {endpoint}/balance`.
    #[serde(skip)]
    pub resource_url: String,
}

impl fmt::Debug for AzupayEndpoints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzupayEndpoints")
            .field("endpoint", &self.endpoint)
            .field("client_id", &self.client_id)
            .field("api_key", &"[redacted]")
            .field("token_url", &self.token_url)
            .field("resource_url", &self.resource_url)
            .finish()
    }
}

/// Where a client-credentials provider lives in a sandbox, and its default client.
#[derive(Clone, Serialize)]
pub struct ProviderEndpoints {
    /// The token endpoint.
    pub token_url: String,
    /// The default client's id.
    pub client_id: String,
    /// The default client's secret.
    pub client_secret: String,
    /// The protected endpoint that accepts this provider's tokens.
    pub resource_url: String,
}

impl fmt::Debug for ProviderEndpoints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderEndpoints")
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("resource_url", &self.resource_url)
            .finish()
    }
}

/// Every provider's endpoints and default credentials; serialises to the JSON line of
/// `clientcreds sandbox --json`.
#[derive(Clone, Debug, Serialize)]
pub struct SandboxCredentials {
    /// Azupay.
    pub azupay: AzupayEndpoints,
    /// Autopay.
    pub autopay: ProviderEndpoints,
    /// PayU.
    pub payu: ProviderEndpoints,
    /// Pyng.
    pub pyng: ProviderEndpoints,
    /// Afterpay.
    pub afterpay: ProviderEndpoints,
}

/// A running sandbox. Dropping it stops the server and closes its connections.
pub struct Sandbox {
    shared: Arc<Shared>,
    addr: SocketAddr,
    _shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sandbox")
            .field("base_url", &self.shared.base_url)
            .finish_non_exhaustive()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Sandbox {
    /// Bind `127.0.0.1` (on the configured port, an ephemeral one by default) and serve on a
    /// spawned task of the current tokio runtime.
    pub async fn start(config: SandboxConfig) -> io::Result<Sandbox> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, config.port)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(config, format!("http://{addr}")));
        let router = providers::routes()
            .merge(admin::routes())
            .with_state(shared.clone());
        let (shutdown, receiver) = watch::channel(false);
        let task = tokio::spawn(server::serve(listener, router, shared.clone(), receiver));
        Ok(Sandbox {
            shared,
            addr,
            _shutdown: shutdown,
            task,
        })
    }

    /// `http://127.0.0.1:{port}`.
    pub fn base_url(&self) -> &str {
        &self.shared.base_url
    }

    /// The socket address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Azupay's endpoint and the default (first configured) Azupay client.
    pub fn azupay(&self) -> AzupayEndpoints {
        azupay_endpoints(&self.shared)
    }

    /// Autopay's endpoints and default client.
    pub fn autopay(&self) -> ProviderEndpoints {
        endpoints(&self.shared, Provider::Autopay)
    }

    /// PayU's endpoints and default client.
    pub fn payu(&self) -> ProviderEndpoints {
        endpoints(&self.shared, Provider::Payu)
    }

    /// Pyng's endpoints and default client.
    pub fn pyng(&self) -> ProviderEndpoints {
        endpoints(&self.shared, Provider::Pyng)
    }

    /// Afterpay's endpoints and default client.
    pub fn afterpay(&self) -> ProviderEndpoints {
        endpoints(&self.shared, Provider::Afterpay)
    }

    /// All of the above, serialisable as the `clientcreds sandbox --json` line.
    pub fn credentials(&self) -> SandboxCredentials {
        credentials_of(&self.shared)
    }

    /// Every request received so far (admin paths excluded), oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// The requests received under `provider`'s prefix.
    pub fn requests_for(&self, provider: Provider) -> Vec<RecordedRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.provider == Some(provider))
            .collect()
    }

    /// Forget the recorded requests.
    pub fn clear_requests(&self) {
        self.shared.lock().requests.clear();
    }

    /// How many tokens `provider` issued to `client_id` (for Azupay: the `oauth2ClientId`).
    pub fn tokens_issued(&self, provider: Provider, client_id: &str) -> u64 {
        self.shared
            .lock()
            .tokens_issued
            .get(&(provider, client_id.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    /// How many `POST …/client/{client_id}/oauth2` (enable) calls Azupay received for this
    /// business `clientId`, refused ones included.
    pub fn enable_calls(&self, client_id: &str) -> u64 {
        self.shared
            .lock()
            .enable_calls
            .get(client_id)
            .copied()
            .unwrap_or(0)
    }

    /// The lifetime of tokens `provider` issues from now on.
    pub fn set_token_lifetime(&self, provider: Provider, lifetime: Duration) {
        self.shared.lock().lifetimes[provider.index()] = lifetime;
    }

    /// Apply `fault` to each of the next `times` token requests of `provider` (after any faults
    /// already queued). For Azupay this is the token endpoint, not enable.
    pub fn fail_next(&self, provider: Provider, times: usize, fault: Fault) {
        let mut state = self.shared.lock();
        for _ in 0..times {
            state.faults[provider.index()].push_back(fault.clone());
        }
    }

    /// Apply `fault` to each of the next `times` Azupay enable calls
    /// (`POST …/client/{clientId}/oauth2`). With [`Fault::after_processing`] the client is enabled
    /// and only the answer (the one-time secret) is lost.
    pub fn fail_next_enable(&self, times: usize, fault: Fault) {
        let mut state = self.shared.lock();
        for _ in 0..times {
            state.faults[control::ENABLE_QUEUE].push_back(fault.clone());
        }
    }

    /// Apply `fault` to each of the next `times` Azupay details calls
    /// (`GET …/client/{clientId}/oauth2`), e.g. a [`Fault::delay`] that holds a client between
    /// its "enable pending" mark and its enable call.
    pub fn fail_next_details(&self, times: usize, fault: Fault) {
        let mut state = self.shared.lock();
        for _ in 0..times {
            state.faults[control::DETAILS_QUEUE].push_back(fault.clone());
        }
    }

    /// Drop the faults not yet used.
    pub fn clear_faults(&self) {
        for queue in &mut self.shared.lock().faults {
            queue.clear();
        }
    }

    /// Move the sandbox clock forward: tokens issued before look older (and expire), and new
    /// tokens are issued at the new time. The clock only moves forward.
    pub fn advance(&self, by: Duration) {
        self.shared.lock().clock_offset += by;
    }

    /// Revoke every token issued so far; the protected endpoints refuse them from now on.
    pub fn revoke_all_tokens(&self) {
        for token in self.shared.lock().tokens.values_mut() {
            token.revoked = true;
        }
    }

    /// Replace the API key of an Azupay client; the old key stops working at once. `false` if no
    /// client has this `clientId`.
    pub fn set_azupay_api_key(&self, client_id: &str, api_key: impl Into<String>) -> bool {
        let mut state = self.shared.lock();
        match state.azupay.iter_mut().find(|a| a.client_id == client_id) {
            Some(account) => {
                account.api_key = api_key.into();
                true
            }
            None => false,
        }
    }

    /// Whether OAuth 2.0 is enabled for this Azupay business `clientId`.
    pub fn azupay_enabled(&self, client_id: &str) -> bool {
        self.shared
            .lock()
            .azupay
            .iter()
            .any(|a| a.client_id == client_id && a.enabled)
    }

    /// Set (or with `None` remove) PayU's rate limit; the current window starts afresh.
    pub fn set_payu_rate_limit(&self, limit: Option<RateLimit>) {
        let mut state = self.shared.lock();
        state.payu_rate_limit = limit;
        state.payu_window = None;
    }
}

fn azupay_endpoints(shared: &Shared) -> AzupayEndpoints {
    let prefix = shared.prefix_url(Provider::Azupay);
    let state = shared.lock();
    let (client_id, api_key) = state
        .azupay
        .first()
        .map(|a| (a.client_id.clone(), a.api_key.clone()))
        .unwrap_or_default();
    AzupayEndpoints {
        endpoint: format!("{prefix}/v1"),
        client_id,
        api_key,
        token_url: format!("{prefix}/oauth2/token"),
        resource_url: format!("{prefix}/v1/balance"),
    }
}

fn endpoints(shared: &Shared, provider: Provider) -> ProviderEndpoints {
    let token_path = match provider {
        Provider::Autopay | Provider::Payu => "/oauth/token",
        Provider::Pyng => "/billing/oauth2/token",
        Provider::Azupay | Provider::Afterpay => "/oauth2/token",
    };
    let prefix = shared.prefix_url(provider);
    let state = shared.lock();
    let (client_id, client_secret) = state.clients[provider.index()]
        .first()
        .map(|c| (c.id.clone(), c.secret.clone()))
        .unwrap_or_default();
    ProviderEndpoints {
        token_url: format!("{prefix}{token_path}"),
        client_id,
        client_secret,
        resource_url: format!("{prefix}/resource"),
    }
}

pub(crate) fn credentials_of(shared: &Shared) -> SandboxCredentials {
    SandboxCredentials {
        azupay: azupay_endpoints(shared),
        autopay: endpoints(shared, Provider::Autopay),
        payu: endpoints(shared, Provider::Payu),
        pyng: endpoints(shared, Provider::Pyng),
        afterpay: endpoints(shared, Provider::Afterpay),
    }
}
