//! The crate's one error type.
//!
//! Every failure — a rejected client, an unreachable token endpoint, a response that cannot be
//! used, bad configuration — is an [`Error`]. No variant ever holds a client secret or an access
//! token, so an `Error` is safe to log, display and send to metrics.
//!
//! ```
//! use std::time::Duration;
//! use clientcreds::{Error, OAuthErrorCode};
//!
//! let err = Error::TokenEndpoint {
//!     status: http::StatusCode::TOO_MANY_REQUESTS,
//!     code: Some(OAuthErrorCode::RateLimitExceeded),
//!     description: Some("Too many requests. Please retry after some time.".into()),
//!     retry_after: Some(Duration::from_secs(60)),
//! };
//! assert!(err.is_retryable());
//! assert_eq!(err.retry_after(), Some(Duration::from_secs(60)));
//! assert_eq!(err.oauth_code(), Some(&OAuthErrorCode::RateLimitExceeded));
//! ```

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;

/// The longest wait a server's `retry_after` can impose: one hour.
///
/// A token endpoint that asks for more (`Retry-After: 18446744073709551615`, a body
/// `"retry_after": 1e19`) gets this instead: [`Error::retry_after`] never returns more, and a
/// [`TokenCache`](crate::cache::TokenCache) tries again after at most this long (or its own,
/// longer backoff). A misbehaving server can then not silence a client for years, nor make it
/// overflow a clock.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// A boxed error shared between clones of an [`Error`].
pub type BoxError = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong while getting or using a token.
///
/// `Error` is `Clone` (inner sources are reference-counted) so that one failed token request can
/// be handed to every caller that waited for it.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The token endpoint answered with an error: an RFC 6749 §5.2 error body, or a non-JSON or
    /// empty body (then `code` is `None` and `description` says what the body was).
    #[error("token endpoint answered HTTP {status}{}{}{}",
        code.as_ref().map(|c| format!(": {c}")).unwrap_or_default(),
        description.as_ref().map(|d| format!(" ({d})")).unwrap_or_default(),
        retry_after.map(|d| format!("; retry after {}s", d.min(MAX_RETRY_AFTER).as_secs())).unwrap_or_default())]
    TokenEndpoint {
        /// The HTTP status of the error response.
        status: StatusCode,
        /// The OAuth 2.0 `error` code, when the body carried one.
        code: Option<OAuthErrorCode>,
        /// The `error_description` of the body, or what was wrong with the body.
        description: Option<String>,
        /// How long to wait before asking again: the body's `retry_after` field or the
        /// `Retry-After` header, at most [`MAX_RETRY_AFTER`] when parsed from a response.
        retry_after: Option<Duration>,
    },

    /// The token endpoint could not be reached (connection, TLS, timeout, broken response).
    #[error("could not reach the token endpoint {endpoint}: {message}")]
    Transport {
        /// The endpoint (scheme, host, port and path; never a query string).
        endpoint: String,
        /// What failed, in words.
        message: String,
        /// The underlying error, when there is one.
        #[source]
        source: Option<BoxError>,
    },

    /// The endpoint could not be reached through its proxy: the proxy could not be reached,
    /// wanted credentials, or refused to tunnel or forward the request.
    #[error("could not reach {endpoint} through the proxy {proxy}: {message}")]
    Proxy {
        /// The proxy (scheme, host and port; never its credentials).
        proxy: String,
        /// The endpoint (scheme, host, port and path; never a query string).
        endpoint: String,
        /// The proxy's answer, when it gave one that tells (`407 Proxy Authentication
        /// Required`).
        status: Option<StatusCode>,
        /// What failed, in words.
        message: String,
        /// The underlying error, when there is one.
        #[source]
        source: Option<BoxError>,
    },

    /// The token endpoint answered with a success status, but the response cannot be used
    /// (missing `access_token`, a `token_type` other than Bearer, no expiry and no default, …).
    #[error("unusable token response: {0}")]
    InvalidResponse(String),

    /// Bad configuration. Names the field and how to fix it.
    #[error("invalid configuration of `{field}`: {message}")]
    Config {
        /// The configuration field (builder method, file or option) that is wrong.
        field: &'static str,
        /// What is wrong and how to fix it.
        message: String,
    },

    /// An access token that cannot be used in an `Authorization` header (the reason never
    /// includes the token itself).
    #[error("invalid access token: {0}")]
    InvalidToken(String),

    /// A mounted token directory could not be read or holds invalid files.
    #[error("mounted token at {}: {message}", path.display())]
    Mounted {
        /// The file or directory concerned.
        path: PathBuf,
        /// What is wrong.
        message: String,
        /// The underlying I/O or parse error, when there is one.
        #[source]
        source: Option<BoxError>,
    },

    /// An internal failure, e.g. a background token request that ended without a result.
    #[error("internal error: {0}")]
    Internal(String),

    /// A caller waited for the token request in flight longer than the cache's
    /// [`wait_timeout`](crate::cache::CacheConfig::wait_timeout); the request goes on for the
    /// others.
    #[error("no token within {} ms: the token request in flight is still running", waited.as_millis())]
    WaitTimedOut {
        /// How long the caller waited.
        waited: Duration,
    },
}

impl Error {
    /// How long the server asked us to wait before the next token request, if it said —
    /// at most [`MAX_RETRY_AFTER`] (one hour), whatever the server or the field holds.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::TokenEndpoint { retry_after, .. } => {
                retry_after.map(|wait| wait.min(MAX_RETRY_AFTER))
            }
            _ => None,
        }
    }

    /// The HTTP status of a token endpoint error.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Error::TokenEndpoint { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The OAuth 2.0 error code of a token endpoint error.
    pub fn oauth_code(&self) -> Option<&OAuthErrorCode> {
        match self {
            Error::TokenEndpoint { code, .. } => code.as_ref(),
            _ => None,
        }
    }

    /// Whether asking again soon can succeed.
    ///
    /// `false` for failures that repeat until a person changes something: the error codes
    /// `invalid_client`, `unauthorized_client`, `invalid_scope`, `access_denied`,
    /// `invalid_grant`, `unsupported_grant_type` and `invalid_request`; other 4xx answers without
    /// a code (except 408 and 429); unusable token responses; configuration errors and invalid
    /// tokens; a proxy that wants credentials it was not given (or refused those it was). A
    /// cache backs off long after these instead of retrying fast.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::TokenEndpoint { status, code, .. } => match code {
                Some(code) if code.is_permanent() => false,
                Some(OAuthErrorCode::Other(_)) | None => {
                    !status.is_client_error()
                        || *status == StatusCode::REQUEST_TIMEOUT
                        || *status == StatusCode::TOO_MANY_REQUESTS
                }
                Some(_) => true,
            },
            Error::Proxy { status, .. } => {
                *status != Some(StatusCode::PROXY_AUTHENTICATION_REQUIRED)
            }
            Error::Transport { .. }
            | Error::Mounted { .. }
            | Error::Internal(_)
            | Error::WaitTimedOut { .. } => true,
            Error::InvalidResponse(_) | Error::Config { .. } | Error::InvalidToken(_) => false,
        }
    }

    /// A short, stable label for metrics and logs: the OAuth error code (`other_oauth_error`
    /// for codes outside [`OAuthErrorCode`]'s list, so a server cannot create unbounded label
    /// values), or the variant name.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::TokenEndpoint {
                code: Some(OAuthErrorCode::Other(_)),
                ..
            } => "other_oauth_error",
            Error::TokenEndpoint {
                code: Some(code), ..
            } => code.static_str(),
            Error::TokenEndpoint { code: None, .. } => "http_error",
            Error::Transport { .. } => "transport",
            Error::Proxy { .. } => "proxy",
            Error::InvalidResponse(_) => "invalid_response",
            Error::Config { .. } => "config",
            Error::InvalidToken(_) => "invalid_token",
            Error::Mounted { .. } => "mounted",
            Error::Internal(_) => "internal",
            Error::WaitTimedOut { .. } => "wait_timed_out",
        }
    }

    pub(crate) fn config(field: &'static str, message: impl Into<String>) -> Self {
        Error::Config {
            field,
            message: message.into(),
        }
    }
}

/// An OAuth 2.0 error code (RFC 6749 §5.2, plus codes the seed providers use).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OAuthErrorCode {
    /// `invalid_request`: the request is missing a parameter or is malformed.
    InvalidRequest,
    /// `invalid_client`: client authentication failed (unknown client, wrong secret, wrong method).
    InvalidClient,
    /// `invalid_grant`: the grant is invalid or expired.
    InvalidGrant,
    /// `unauthorized_client`: the client may not use this grant type.
    UnauthorizedClient,
    /// `unsupported_grant_type`: the server does not support this grant type.
    UnsupportedGrantType,
    /// `invalid_scope`: the requested scope is invalid, unknown or not allowed.
    InvalidScope,
    /// `access_denied`: the server refused the request (Autopay answers wrong credentials so).
    AccessDenied,
    /// `rate_limit_exceeded`: too many requests (PayU, with `retry_after` in the body).
    RateLimitExceeded,
    /// `server_error`: the server failed.
    ServerError,
    /// `temporarily_unavailable`: the server is overloaded or in maintenance.
    TemporarilyUnavailable,
    /// Any other code, as sent.
    Other(String),
}

impl OAuthErrorCode {
    /// Parses a code as it appears in the `error` field.
    pub fn parse(code: &str) -> Self {
        match code {
            "invalid_request" => Self::InvalidRequest,
            "invalid_client" => Self::InvalidClient,
            "invalid_grant" => Self::InvalidGrant,
            "unauthorized_client" => Self::UnauthorizedClient,
            "unsupported_grant_type" => Self::UnsupportedGrantType,
            "invalid_scope" => Self::InvalidScope,
            "access_denied" => Self::AccessDenied,
            "rate_limit_exceeded" => Self::RateLimitExceeded,
            "server_error" => Self::ServerError,
            "temporarily_unavailable" => Self::TemporarilyUnavailable,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The code as it appears in the `error` field.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Other(other) => other,
            known => known.static_str(),
        }
    }

    fn static_str(&self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::AccessDenied => "access_denied",
            Self::RateLimitExceeded => "rate_limit_exceeded",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::Other(_) => "other_oauth_error",
        }
    }

    /// Codes that repeat until a person changes the client's configuration or registration.
    fn is_permanent(&self) -> bool {
        matches!(
            self,
            Self::InvalidRequest
                | Self::InvalidClient
                | Self::InvalidGrant
                | Self::UnauthorizedClient
                | Self::UnsupportedGrantType
                | Self::InvalidScope
                | Self::AccessDenied
        )
    }
}

impl fmt::Display for OAuthErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_can_be_shared_between_waiters() {
        fn shareable<T: Clone + Send + Sync + 'static + std::error::Error>() {}
        shareable::<Error>();
        assert_eq!(
            endpoint(400, Some("slow_down")).kind(),
            "other_oauth_error",
            "server-chosen codes never become metric labels"
        );
        assert_eq!(
            endpoint(401, Some("invalid_client")).kind(),
            "invalid_client"
        );
    }

    #[test]
    fn codes_round_trip() {
        for code in [
            "invalid_request",
            "invalid_client",
            "invalid_grant",
            "unauthorized_client",
            "unsupported_grant_type",
            "invalid_scope",
            "access_denied",
            "rate_limit_exceeded",
            "server_error",
            "temporarily_unavailable",
            "slow_down",
        ] {
            assert_eq!(OAuthErrorCode::parse(code).as_str(), code);
        }
        assert_eq!(
            OAuthErrorCode::parse("slow_down"),
            OAuthErrorCode::Other("slow_down".into())
        );
    }

    fn endpoint(status: u16, code: Option<&str>) -> Error {
        Error::TokenEndpoint {
            status: StatusCode::from_u16(status).unwrap(),
            code: code.map(OAuthErrorCode::parse),
            description: None,
            retry_after: None,
        }
    }

    #[test]
    fn retryable_classification() {
        assert!(!endpoint(401, Some("invalid_client")).is_retryable());
        assert!(!endpoint(401, Some("access_denied")).is_retryable());
        assert!(!endpoint(400, Some("invalid_scope")).is_retryable());
        assert!(!endpoint(400, Some("unauthorized_client")).is_retryable());
        assert!(endpoint(429, Some("rate_limit_exceeded")).is_retryable());
        assert!(endpoint(500, Some("server_error")).is_retryable());
        assert!(endpoint(503, Some("temporarily_unavailable")).is_retryable());
        assert!(endpoint(502, None).is_retryable());
        assert!(endpoint(429, None).is_retryable());
        assert!(!endpoint(403, None).is_retryable());
        assert!(!Error::config("token_url", "x").is_retryable());
        let proxy = |status: Option<u16>| Error::Proxy {
            proxy: "http://proxy.example.com:3128".into(),
            endpoint: "https://auth.example.com/token".into(),
            status: status.map(|s| StatusCode::from_u16(s).unwrap()),
            message: "the proxy requires credentials".into(),
            source: None,
        };
        assert!(
            !proxy(Some(407)).is_retryable(),
            "a person must add credentials"
        );
        assert!(proxy(None).is_retryable());
        assert_eq!(proxy(None).kind(), "proxy");
        assert_eq!(
            proxy(Some(407)).to_string(),
            "could not reach https://auth.example.com/token through the proxy \
             http://proxy.example.com:3128: the proxy requires credentials"
        );
        assert!(!Error::InvalidResponse("x".into()).is_retryable());
    }

    #[test]
    fn retry_after_is_capped_at_one_hour() {
        let err = Error::TokenEndpoint {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: None,
            description: None,
            retry_after: Some(Duration::MAX),
        };
        assert_eq!(err.retry_after(), Some(MAX_RETRY_AFTER));
        assert_eq!(MAX_RETRY_AFTER, Duration::from_secs(3600));
        assert!(err.to_string().ends_with("retry after 3600s"), "{err}");
    }

    #[test]
    fn display_names_status_code_and_retry() {
        let err = Error::TokenEndpoint {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: Some(OAuthErrorCode::RateLimitExceeded),
            description: Some("Too many requests.".into()),
            retry_after: Some(Duration::from_secs(60)),
        };
        assert_eq!(
            err.to_string(),
            "token endpoint answered HTTP 429 Too Many Requests: rate_limit_exceeded \
             (Too many requests.); retry after 60s"
        );
        assert_eq!(
            endpoint(502, None).to_string(),
            "token endpoint answered HTTP 502 Bad Gateway"
        );
        assert_eq!(
            Error::config("scope", "Pyng requires a scope").to_string(),
            "invalid configuration of `scope`: Pyng requires a scope"
        );
    }
}
