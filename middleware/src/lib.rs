//! # clientcreds
//!
//! OAuth 2.0 client-credentials tokens (RFC 6749 §4.4) for Rust services: a protocol core that
//! requests tokens the way each provider expects, a cache that keeps them fresh, and a tower
//! layer that puts a valid `Authorization: Bearer …` on every request of any tower-based client
//! — hyper-util, tonic, kube, reqwest (through `reqwest-middleware` or a tower adapter).
//!
//! This page is a guide; every example on it runs (`cargo test --doc`) against the local
//! provider emulator `clientcreds-sandbox`, except where it would need a real network.
//!
//! ## Cargo features
//!
//! | feature | adds | dependencies it brings |
//! |---|---|---|
//! | *(always)* | the layer ([`BearerLayer`]), [`ClientCredentials`] (`client_secret_basic`, `client_secret_post`, JSON, `tls_client_auth`), [`Provider`] presets, the [`TokenCache`], [`StaticToken`], the built-in [`HttpClient`] (hyper, rustls with `ring`, Mozilla's webpki roots, proxies) and [`HttpClient::from_service`] | |
//! | `mounted` | [`MountedToken`]: a token Secret mounted by the clientcreds operator | none |
//! | `metrics` | counters and a histogram through the `metrics` facade ([`telemetry`]) | `metrics` |
//! | `private-key-jwt` | `private_key_jwt` (RFC 7523): `SigningKey`, `ClientCredentials::private_key_jwt` | `ring` (already linked by rustls) |
//! | `native-roots` | `HttpClientBuilder::native_roots`: the system's root certificates | `rustls-native-certs` |
//! | `reqwest` | `clientcreds::reqwest`: `BearerMiddleware` for `reqwest-middleware`, `HttpClient::from_reqwest`, `ReqwestService` | `reqwest` (no TLS of its own), `reqwest-middleware` |
//!
//! Nothing is on by default beyond the core; on docs.rs every feature is shown, each item
//! labelled with the feature it needs.
//!
//! ## Quick start: a client behind the layer
//!
//! Describe the client ([`ClientCredentials`], or a [`Provider`] preset), give it a token
//! source ([`ClientCredentialsSource`]: the cache in front of the token endpoint), and wrap any
//! tower HTTP client in [`BearerLayer`]:
//!
//! ```
//! use bytes::Bytes;
//! use clientcreds::bearer::ReplayOnce;
//! use clientcreds::{BearerLayer, ClientAuth, ClientCredentials, ClientCredentialsSource, HttpClient};
//! use http_body_util::Full;
//! use hyper_util::client::legacy::Client;
//! use hyper_util::rt::TokioExecutor;
//! use secrecy::SecretString;
//! use tower::{Service, ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! # let sandbox = clientcreds_sandbox::Sandbox::start(Default::default()).await?;
//! # let afterpay = sandbox.afterpay();
//! # let (token_url, client_id, secret, api_url) = (afterpay.token_url, afterpay.client_id,
//! #     afterpay.client_secret, afterpay.resource_url);
//! let credentials = ClientCredentials::builder(token_url, client_id, SecretString::from(secret))
//!     .auth(ClientAuth::Basic)
//!     .build()?;
//! let source = ClientCredentialsSource::new(credentials, HttpClient::new());
//!
//! let hyper = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
//! let mut api = ServiceBuilder::new()
//!     .layer(BearerLayer::new(source).on_unauthorized(ReplayOnce))
//!     .service(hyper);
//! let request = http::Request::get(api_url).body(Full::default())?;
//! let response = api.ready().await?.call(request).await?;
//! assert_eq!(response.status(), 200);
//! # Ok(())
//! # }
//! ```
//!
//! The first request waits for a token; later ones take it from the cache (one atomic load on
//! the hot path). [`bearer`] explains the 401 policies ([`ReplayOnce`](bearer::ReplayOnce),
//! [`InvalidateToken`](bearer::InvalidateToken)) and the host allow-list; [`cache`] the
//! single flight, the refresh ahead of expiry and the backoff. The examples `hyper_client`,
//! `tonic_client`, `kube_client` and `reqwest_middleware` (`cargo run -p clientcreds --example
//! …`) do the same through a hyper client, a tonic channel, a `kube::Client` and reqwest.
//!
//! ## Clients and providers
//!
//! [`ClientCredentials`] describes one client at one token endpoint: client authentication
//! ([`ClientAuth`]: `Basic`, `Post`, `Json`, `PrivateKeyJwt`, `TlsClientAuth`), scopes, audience,
//! resource, extra parameters and headers. Every check happens in
//! [`build`](ClientCredentialsBuilder::build), and a bad value is an [`Error::Config`] naming
//! the field and the fix. [`Provider`] presets know Azupay, Autopay, PayU, Pyng and Afterpay
//! (their token URLs, body formats and scope rules).
//!
//! [`ClientCredentials::request_token`] makes one uncached request and returns a [`Token`] or a
//! typed [`Error`] (the OAuth error code, the HTTP status, `retry_after`). Derive sources for
//! other scopes of the same client with
//! [`for_scopes`](ClientCredentialsSource::for_scopes) (and `for_audience`, `for_resource`):
//! sources for the same key share one cache.
//!
//! ```
//! use clientcreds::{ClientCredentialsSource, Env, HttpClient, Provider, TokenSource};
//! use secrecy::SecretString;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let sandbox = clientcreds_sandbox::Sandbox::start(Default::default()).await?;
//! # let payu = sandbox.payu();
//! # let (token_url, client_id, secret) = (payu.token_url, payu.client_id, payu.client_secret);
//! let credentials = Provider::payu(Env::Test, client_id, SecretString::from(secret))
//!     .token_url(token_url) // the sandbox instead of PayU's test host
//!     .scope("read_payment_links")
//!     .build()?;
//! let source = ClientCredentialsSource::new(credentials, HttpClient::new());
//! let token = source.token().await?;
//! assert_eq!(token.scope(), Some("read_payment_links"));
//! # Ok(())
//! # }
//! ```
//!
//! ## Token sources
//!
//! A [`TokenSource`] is what the layer (and the reqwest middleware) takes tokens from:
//! [`ClientCredentialsSource`] (requested and cached), [`StaticToken`] (one fixed token), and
//! with the `mounted` feature [`MountedToken`], which reads a token directory written by the
//! clientcreds operator into a Kubernetes Secret and re-reads it when kubelet swaps the volume —
//! one token request per refresh period for a whole cluster instead of one per pod:
//!
//! ```
//! # #[cfg(feature = "mounted")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use clientcreds::{MountedToken, TokenSource};
//!
//! # let dir = tempfile::tempdir()?;
//! # std::fs::write(dir.path().join("access_token"), "eyJhbGciOi...")?;
//! # std::fs::write(dir.path().join("expires_at"), "2099-01-01T00:00:00Z")?;
//! # let dir = dir.path().to_owned();
//! // let dir = "/var/run/secrets/clientcreds/payments";
//! let source = MountedToken::new(dir)?;
//! let token = source.token().await?;
//! assert_eq!(token.authorization(), "Bearer eyJhbGciOi...");
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "mounted"))]
//! # fn main() {}
//! ```
//!
//! ## Authenticating with a key or a certificate
//!
//! With the `private-key-jwt` feature, `ClientCredentials::private_key_jwt` signs a new
//! RFC 7523 assertion (RS256, PS256, ES256 or EdDSA; a key from PEM) for every token request;
//! see the `assertion` module. [`ClientCredentials::tls_client_auth`] (RFC 8705) relies on the
//! TLS client certificate of the [`HttpClient`]
//! ([`HttpClientBuilder::client_identity`] with a [`ClientIdentity`]):
//!
//! ```
//! use clientcreds::{ClientCredentials, ClientIdentity, HttpClient};
//!
//! # let key = rcgen::KeyPair::generate()?;
//! # let cert = rcgen::CertificateParams::new(vec!["client".into()])?.self_signed(&key)?;
//! # let (cert_pem, key_pem) = (cert.pem(), key.serialize_pem());
//! // let (cert_pem, key_pem) = (std::fs::read("client.pem")?, std::fs::read("client-key.pem")?);
//! let identity = ClientIdentity::from_pem(cert_pem.as_bytes(), key_pem.as_bytes())?;
//! let http = HttpClient::builder().client_identity(identity).build()?;
//! let credentials =
//!     ClientCredentials::tls_client_auth("https://mtls.auth.example.com/token", "my-client").build()?;
//! # let _ = (http, credentials);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## The HTTP client of token requests
//!
//! The built-in [`HttpClient`] is a hyper client with rustls and Mozilla's webpki roots (the
//! system's with `native-roots`), a timeout and a response size limit. It honours
//! `HTTPS_PROXY`, `HTTP_PROXY` and `NO_PROXY` (`CONNECT` tunnels for `https://`, credentials
//! from the proxy URL); [`HttpClientBuilder::proxy`] sets a [`Proxy`] of its own or
//! [`Proxy::none`].
//!
//! Or bring your own: [`HttpClient::from_service`] takes any tower service from
//! `http::Request<B>` to `http::Response<impl Body>` — a hyper client you configured, a stack
//! with your own layers, or (feature `reqwest`) a `reqwest::Client` through
//! `HttpClient::from_reqwest`. The token and Azupay requests then go through it, with its TLS
//! roots, proxies and timeouts.
//!
//! ```
//! use bytes::Bytes;
//! use clientcreds::{ClientCredentials, HttpClient};
//! use http_body_util::Full;
//! use hyper_util::client::legacy::Client;
//! use hyper_util::rt::TokioExecutor;
//! use secrecy::SecretString;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let sandbox = clientcreds_sandbox::Sandbox::start(Default::default()).await?;
//! # let pyng = sandbox.pyng();
//! # let (token_url, client_id, secret) = (pyng.token_url, pyng.client_id, pyng.client_secret);
//! let hyper = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
//! let http = HttpClient::from_service(hyper);
//! let credentials = ClientCredentials::builder(token_url, client_id, SecretString::from(secret))
//!     .scope("billing:customers:read")
//!     .build()?;
//! let token = credentials.request_token(&http).await?;
//! assert_eq!(token.token_type(), "Bearer");
//! # Ok(())
//! # }
//! ```
//!
//! ## reqwest
//!
//! With the `reqwest` feature, `clientcreds::reqwest::BearerMiddleware` puts the tokens on a
//! `reqwest-middleware` client's requests (a 401 drops the token and replays the request once
//! when it can be cloned), and `ReqwestService` adapts a `reqwest::Client` to tower so the
//! [`BearerLayer`] (or the `tower-reqwest` crate's adapter) can sit on top of it. The module
//! documentation has a runnable example; this crate brings no TLS for reqwest, your own
//! `reqwest` dependency chooses it.
//!
//! ```no_run
//! # #[cfg(feature = "reqwest")]
//! # async fn run(source: clientcreds::ClientCredentialsSource) -> Result<(), Box<dyn std::error::Error>> {
//! use clientcreds::reqwest::BearerMiddleware;
//!
//! let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
//!     .with(BearerMiddleware::new(source).allow_hosts(["api.example.com"])?)
//!     .build();
//! let response = client.get("https://api.example.com/v1/balance").send().await?;
//! # let _ = response;
//! # Ok(())
//! # }
//! ```
//!
//! ## Observability and secrets
//!
//! Each token request is a `tracing` span (`clientcreds.token_request`: endpoint host, status,
//! duration, error code). With the `metrics` feature the caches and token requests are
//! counted through the `metrics` facade ([`telemetry`] lists the names and labels).
//!
//! Secrets, tokens, signing keys and proxy credentials never appear in `Debug`, `Display`,
//! errors, tracing fields or metric labels; the `Authorization` header the layer sets is marked
//! sensitive.
//!
//! ```
//! use std::time::Duration;
//! use clientcreds::Token;
//!
//! let token = Token::new("eyJraWQiOiJ...", "Bearer", Duration::from_secs(3600), None)?;
//! assert_eq!(token.authorization(), "Bearer eyJraWQiOiJ...");
//! assert!(!format!("{token:?}").contains("eyJraWQiOiJ"));
//! # Ok::<(), clientcreds::Error>(())
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![deny(unreachable_pub)]

#[cfg(feature = "private-key-jwt")]
#[cfg_attr(docsrs, doc(cfg(feature = "private-key-jwt")))]
pub mod assertion;
pub mod azupay;
pub mod bearer;
pub mod cache;
pub mod credentials;
pub mod error;
pub mod http;
pub mod provider;
pub mod redact;
pub mod refresh;
mod request;
#[cfg(feature = "reqwest")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
pub mod reqwest;
mod response;
pub mod source;
pub mod telemetry;
pub mod token;
pub mod token_secret;
#[doc(hidden)]
pub mod untrusted;

#[cfg(feature = "private-key-jwt")]
#[cfg_attr(docsrs, doc(cfg(feature = "private-key-jwt")))]
pub use assertion::{JwsAlgorithm, SigningKey};
pub use azupay::AzupayConnectionDetails;
pub use bearer::{Bearer, BearerError, BearerLayer};
pub use cache::TokenCache;
pub use credentials::{
    BasicEncoding, CacheKey, ClientAuth, ClientCredentials, ClientCredentialsBuilder,
};
pub use error::{Error, MAX_RETRY_AFTER, OAuthErrorCode};
pub use http::{ClientIdentity, HttpClient, HttpClientBuilder, Proxy};
pub use provider::{Env, Preset, Provider, TokenEndpoint};
pub use refresh::{RefreshAt, RefreshPolicy};
pub use request::{TOKEN_REQUEST_DURATION, TOKEN_REQUESTS, basic_authorization};
#[cfg(feature = "mounted")]
#[cfg_attr(docsrs, doc(cfg(feature = "mounted")))]
pub use source::MountedToken;
pub use source::{ClientCredentialsSource, StaticToken, TokenSource};
pub use token::Token;
