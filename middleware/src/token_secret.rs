//! The token-Secret format: the one definition of what the clientcreds operator writes into a
//! token Secret and what [`MountedToken`](crate::source::MountedToken) reads back from its
//! volume.
//!
//! | key | content | required |
//! |---|---|---|
//! | [`ACCESS_TOKEN`] | the access token | yes |
//! | [`TOKEN_TYPE`] | `Bearer` | no (default [`DEFAULT_TOKEN_TYPE`]) |
//! | [`EXPIRES_AT`] | expiry, RFC 3339 in UTC ([`format_time`]), e.g. `2026-11-22T03:00:00Z` | yes |
//! | [`SCOPE`] | the granted (else requested) scopes, space-separated; may be empty | no |
//!
//! The operator also annotates the Secret ([`REFRESH_AT_ANNOTATION`], [`ISSUED_AT_ANNOTATION`],
//! [`CONFIG_HASH_ANNOTATION`], [`REFRESH_ANSWERED_ANNOTATION`]); readers need none of them.
//! Surrounding whitespace of every value is ignored when reading.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use clientcreds::{token_secret, Token};
//!
//! let token = Token::new("eyJraWQ", "Bearer", Duration::from_secs(600), None)?;
//! let data = token_secret::encode(&token, Some("RestAPI/GET:balance"))?;
//! let read = token_secret::decode(|key| {
//!     data.iter().find(|(k, _)| *k == key).map(|(_, v)| v.as_slice())
//! })?;
//! assert_eq!(read.authorization(), token.authorization());
//! assert_eq!(read.scope(), Some("RestAPI/GET:balance"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::time::SystemTime;

use secrecy::ExposeSecret;

use crate::Token;

/// Key (and mounted file) holding the access token.
pub const ACCESS_TOKEN: &str = "access_token";
/// Key holding the token type.
pub const TOKEN_TYPE: &str = "token_type";
/// Key holding the expiry, RFC 3339 in UTC.
pub const EXPIRES_AT: &str = "expires_at";
/// Key holding the space-separated scopes.
pub const SCOPE: &str = "scope";
/// Every key of a token Secret, in the order written.
pub const KEYS: [&str; 4] = [ACCESS_TOKEN, TOKEN_TYPE, EXPIRES_AT, SCOPE];
/// The token type assumed when [`TOKEN_TYPE`] is absent.
pub const DEFAULT_TOKEN_TYPE: &str = "Bearer";

/// Annotation: when the operator refreshes the token (RFC 3339).
pub const REFRESH_AT_ANNOTATION: &str = "clientcreds.dev/refresh-at";
/// Annotation: when the token was issued (RFC 3339).
pub const ISSUED_AT_ANNOTATION: &str = "clientcreds.dev/issued-at";
/// Annotation: a one-way digest of the configuration the token was requested with.
pub const CONFIG_HASH_ANNOTATION: &str = "clientcreds.dev/config-hash";
/// Annotation: the value of the OAuthClient's `clientcreds.dev/refresh` request that was in
/// force when the token was requested, so a request is answered once per token Secret.
pub const REFRESH_ANSWERED_ANNOTATION: &str = "clientcreds.dev/refresh-answered";

/// Why a token Secret cannot be written or read. Never contains the token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenSecretError {
    /// A required key is absent.
    #[error("the key `{key}` is missing (is it half written, or not a token Secret?)")]
    Missing {
        /// The key.
        key: &'static str,
    },
    /// A value is not UTF-8.
    #[error("the value of `{key}` is not UTF-8")]
    NotUtf8 {
        /// The key.
        key: &'static str,
    },
    /// A time is not RFC 3339, or cannot be represented.
    #[error("`{key}` is not an RFC 3339 timestamp such as 2026-11-22T03:00:00Z: {message}")]
    Time {
        /// The key (or annotation).
        key: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The stored values do not make a usable token (an empty token, another token type, …).
    #[error("the stored token cannot be used: {0}")]
    Unusable(#[source] crate::Error),
}

impl TokenSecretError {
    /// The key the problem is about, if it is about one.
    pub fn key(&self) -> Option<&'static str> {
        match self {
            Self::Missing { key } | Self::NotUtf8 { key } | Self::Time { key, .. } => Some(key),
            Self::Unusable(_) => None,
        }
    }
}

/// A time as the format writes it: RFC 3339 in UTC (`2026-11-22T03:00:00Z`, with a fraction
/// only when the time has one). Used for [`EXPIRES_AT`] and the time annotations.
pub fn format_time(at: SystemTime) -> Result<String, TokenSecretError> {
    jiff::Timestamp::try_from(at)
        .map(|t| t.to_string())
        .map_err(|e| TokenSecretError::Time {
            key: EXPIRES_AT,
            message: e.to_string(),
        })
}

/// Parses a time written by [`format_time`] (any RFC 3339 timestamp with an offset); `key`
/// names the value in the error.
pub fn parse_time(key: &'static str, text: &str) -> Result<SystemTime, TokenSecretError> {
    text.trim()
        .parse::<jiff::Timestamp>()
        .map(SystemTime::from)
        .map_err(|e| TokenSecretError::Time {
            key,
            message: e.to_string(),
        })
}

/// The data of a token Secret for `token`, as `(key, value)` pairs in [`KEYS`] order. The
/// scope is the one the provider granted, else `requested_scope`, else empty.
pub fn encode(
    token: &Token,
    requested_scope: Option<&str>,
) -> Result<Vec<(&'static str, Vec<u8>)>, TokenSecretError> {
    let scope = token.scope().or(requested_scope).unwrap_or("");
    Ok(vec![
        (
            ACCESS_TOKEN,
            token.secret().expose_secret().as_bytes().to_vec(),
        ),
        (TOKEN_TYPE, token.token_type().as_bytes().to_vec()),
        (EXPIRES_AT, format_time(token.expires_at())?.into_bytes()),
        (SCOPE, scope.as_bytes().to_vec()),
    ])
}

/// Reads a token from the values `get` returns per key (`None`: absent). An expired token is
/// returned as such (check [`Token::is_valid_at`]); a missing or malformed required value is an
/// error.
pub fn decode<'a>(
    get: impl Fn(&'static str) -> Option<&'a [u8]>,
) -> Result<Token, TokenSecretError> {
    let text = |key: &'static str| -> Result<Option<&'a str>, TokenSecretError> {
        get(key)
            .map(|v| {
                std::str::from_utf8(v)
                    .map(str::trim)
                    .map_err(|_| TokenSecretError::NotUtf8 { key })
            })
            .transpose()
    };
    let required = |key: &'static str| {
        text(key)?
            .filter(|v| !v.is_empty())
            .ok_or(TokenSecretError::Missing { key })
    };
    let access_token = required(ACCESS_TOKEN)?;
    let expires_at = parse_time(EXPIRES_AT, required(EXPIRES_AT)?)?;
    let token_type = text(TOKEN_TYPE)?
        .filter(|v| !v.is_empty())
        .unwrap_or(DEFAULT_TOKEN_TYPE);
    let scope = text(SCOPE)?.map(str::to_owned);
    Token::with_expiry(access_token, token_type, expires_at, scope)
        .map_err(TokenSecretError::Unusable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::time::Duration;

    fn map(pairs: &[(&'static str, &str)]) -> BTreeMap<&'static str, Vec<u8>> {
        pairs
            .iter()
            .map(|(k, v)| (*k, v.as_bytes().to_vec()))
            .collect()
    }

    fn read(m: &BTreeMap<&'static str, Vec<u8>>) -> Result<Token, TokenSecretError> {
        decode(|k| m.get(k).map(Vec::as_slice))
    }

    #[test]
    fn round_trip_and_scope_fallback() {
        let token = Token::new("tok-1", "bearer", Duration::from_secs(600), None).unwrap();
        let data: BTreeMap<_, _> = encode(&token, Some("a b")).unwrap().into_iter().collect();
        assert_eq!(data.keys().copied().collect::<Vec<_>>(), {
            let mut k = KEYS.to_vec();
            k.sort();
            k
        });
        assert_eq!(data[TOKEN_TYPE], b"Bearer");
        let back = read(&data).unwrap();
        assert_eq!(back.secret().expose_secret(), "tok-1");
        assert_eq!(back.scope(), Some("a b"));
        let secs = |t: SystemTime| t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
        assert_eq!(secs(back.expires_at()), secs(token.expires_at()));

        let granted = Token::new(
            "tok-1",
            "Bearer",
            Duration::from_secs(600),
            Some("a".into()),
        )
        .unwrap();
        let data: BTreeMap<_, _> = encode(&granted, Some("a b")).unwrap().into_iter().collect();
        assert_eq!(data[SCOPE], b"a");
        let none: BTreeMap<_, _> = encode(&token, None).unwrap().into_iter().collect();
        assert_eq!(read(&none).unwrap().scope(), None);
    }

    #[test]
    fn defaults_whitespace_and_errors_without_the_token() {
        let t = read(&map(&[
            (ACCESS_TOKEN, " plain-token\n"),
            (EXPIRES_AT, "2999-01-01T00:00:00Z\n"),
        ]))
        .unwrap();
        assert_eq!(t.authorization(), "Bearer plain-token");
        assert_eq!(t.scope(), None);

        let err = read(&map(&[(EXPIRES_AT, "2999-01-01T00:00:00Z")])).unwrap_err();
        assert_eq!(err.key(), Some(ACCESS_TOKEN));
        assert!(
            err.to_string().contains("`access_token` is missing"),
            "{err}"
        );

        let err = read(&map(&[
            (ACCESS_TOKEN, "tok-secret"),
            (EXPIRES_AT, "tomorrow"),
        ]))
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("expires_at") && text.contains("RFC 3339"),
            "{text}"
        );
        assert!(!text.contains("tok-secret"));

        let err = read(&map(&[
            (ACCESS_TOKEN, "tok-secret"),
            (EXPIRES_AT, "2999-01-01T00:00:00Z"),
            (TOKEN_TYPE, "MAC"),
        ]))
        .unwrap_err();
        assert!(matches!(err, TokenSecretError::Unusable(_)));
        assert!(!err.to_string().contains("tok-secret"));
    }

    #[test]
    fn expired_tokens_are_read_as_expired() {
        let t = read(&map(&[
            (ACCESS_TOKEN, "old"),
            (EXPIRES_AT, "2001-01-01T00:00:00Z"),
        ]))
        .unwrap();
        assert!(!t.is_valid_at(tokio::time::Instant::now()));
        assert_eq!(format_time(t.expires_at()).unwrap(), "2001-01-01T00:00:00Z");
    }
}
