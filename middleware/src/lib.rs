//! # clientcreds
//!
//! OAuth 2.0 client-credentials tokens (RFC 6749 §4.4) for Rust services: a protocol core that
//! requests tokens the way each provider expects, and a tower layer that puts a valid
//! `Authorization: Bearer …` on every request of any tower-based client.
//!
//! - [`ClientCredentials`] describes one client at one token endpoint: client authentication
//!   (`Basic`, `Post` or `Json`), scopes, audience, resource, extra parameters and headers.
//!   [`Provider`] presets build it for Azupay, Autopay, PayU, Pyng and Afterpay. Clients
//!   that authenticate with a key or a certificate instead of a secret are built with
//!   [`ClientCredentials::private_key_jwt`] (RFC 7523, a new assertion signed by a
//!   [`SigningKey`] for every request) or [`ClientCredentials::tls_client_auth`] (RFC 8705,
//!   over an [`HttpClient`] with a [`ClientIdentity`]).
//! - [`ClientCredentials::request_token`] makes one token request over an [`HttpClient`] and
//!   returns a [`Token`] — or a typed [`Error`] carrying the OAuth error code, HTTP status and
//!   `retry_after`. Each request is a `tracing` span (`clientcreds.token_request`: endpoint
//!   host, status, duration, error code) and counted in [`TOKEN_REQUESTS`].
//! - [`ClientCredentialsSource`] keeps the tokens in a [`TokenCache`] (single flight, refresh
//!   ahead of expiry, backoff; a server's `retry_after` honoured up to [`MAX_RETRY_AFTER`]),
//!   one cache per [`CacheKey`]: [`for_scopes`](ClientCredentialsSource::for_scopes),
//!   [`for_audience`](ClientCredentialsSource::for_audience) and
//!   [`for_resource`](ClientCredentialsSource::for_resource) derive sources for other keys of
//!   the same client, and sources for the same key share one cache. [`BearerLayer`] puts the
//!   tokens of any [`TokenSource`] on the requests of a tower client.
//! - [`HttpClient`] goes through the proxies of `HTTPS_PROXY`, `HTTP_PROXY` and `NO_PROXY` by
//!   default (`CONNECT` tunnels for `https://` endpoints, credentials from the proxy URL);
//!   [`HttpClientBuilder::proxy`] sets a [`Proxy`] of its own or [`Proxy::none`]. A proxy
//!   that cannot be reached or refuses is an [`Error::Proxy`] naming it.
//! - Secrets, tokens and proxy credentials never appear in `Debug`, `Display`, errors or
//!   tracing fields.
//!
//! ```
//! use std::time::Duration;
//! use clientcreds::Token;
//!
//! let token = Token::new("eyJraWQiOiJ...", "Bearer", Duration::from_secs(3600), None)?;
//! assert_eq!(token.authorization(), "Bearer eyJraWQiOiJ...");
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
