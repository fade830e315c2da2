//! [`Token`]: an access token with its type, expiry and scope.
//!
//! ```
//! use std::time::Duration;
//! use clientcreds::Token;
//!
//! let token = Token::new("abc.def", "bearer", Duration::from_secs(900), None)?;
//! assert_eq!(token.token_type(), "Bearer");
//! assert_eq!(token.authorization(), "Bearer abc.def");
//! assert!(token.authorization().is_sensitive());
//! assert!(token.is_valid_at(tokio::time::Instant::now()));
//! // Debug never shows the token.
//! assert!(!format!("{token:?}").contains("abc.def"));
//! # Ok::<(), clientcreds::Error>(())
//! ```

use std::fmt;
use std::time::{Duration, SystemTime};

use http::HeaderValue;
use secrecy::SecretString;
use tokio::time::Instant;

use crate::Error;

/// An access token with its type, expiry and scope.
///
/// Cheap to clone. `Debug` redacts the token; there is no `Display`.
#[derive(Clone)]
pub struct Token {
    access_token: SecretString,
    token_type: String,
    scope: Option<String>,
    expires_at: SystemTime,
    valid_until: Instant,
    lifetime: Duration,
    authorization: HeaderValue,
}

impl Token {
    /// A token that lives for `lifetime`, counted from now (both clocks are read once here).
    ///
    /// `token_type` must be `Bearer` (any case). Fails with [`Error::InvalidToken`] when the
    /// token is empty or holds characters that cannot go into an `Authorization` header.
    pub fn new(
        access_token: impl Into<String>,
        token_type: impl Into<String>,
        lifetime: Duration,
        scope: Option<String>,
    ) -> Result<Token, Error> {
        let expires_at = SystemTime::now()
            .checked_add(lifetime)
            .ok_or_else(too_long)?;
        Token::build(
            access_token.into(),
            token_type.into(),
            lifetime,
            expires_at,
            scope,
        )
    }

    /// A token that expires at the wall-clock time `expires_at` (mounted tokens). An
    /// `expires_at` in the past gives a token that is already invalid.
    pub fn with_expiry(
        access_token: impl Into<String>,
        token_type: impl Into<String>,
        expires_at: SystemTime,
        scope: Option<String>,
    ) -> Result<Token, Error> {
        let lifetime = expires_at
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        Token::build(
            access_token.into(),
            token_type.into(),
            lifetime,
            expires_at,
            scope,
        )
    }

    fn build(
        access_token: String,
        token_type: String,
        lifetime: Duration,
        expires_at: SystemTime,
        scope: Option<String>,
    ) -> Result<Token, Error> {
        if !token_type.eq_ignore_ascii_case("bearer") {
            return Err(Error::InvalidToken(format!(
                "token type {:?} is not supported; only Bearer tokens can be attached",
                truncate(&token_type)
            )));
        }
        if access_token.is_empty() {
            return Err(Error::InvalidToken("the access token is empty".into()));
        }
        if let Some(pos) = access_token.bytes().position(|b| !b.is_ascii_graphic()) {
            return Err(Error::InvalidToken(format!(
                "the access token ({} bytes) has a character at byte {pos} that is not visible \
                 ASCII, so it cannot be sent in an Authorization header",
                access_token.len()
            )));
        }
        let mut authorization = HeaderValue::try_from(format!("Bearer {access_token}"))
            .map_err(|_| Error::InvalidToken("not a valid header value".into()))?;
        authorization.set_sensitive(true);
        let valid_until = Instant::now().checked_add(lifetime).ok_or_else(too_long)?;
        Ok(Token {
            access_token: SecretString::from(access_token),
            token_type: "Bearer".to_owned(),
            scope: scope.filter(|s| !s.is_empty()),
            expires_at,
            valid_until,
            lifetime,
            authorization,
        })
    }

    /// The access token. Expose it only to send it.
    pub fn secret(&self) -> &SecretString {
        &self.access_token
    }

    /// The token type, normalised to `Bearer`.
    pub fn token_type(&self) -> &str {
        &self.token_type
    }

    /// The granted scope (space-separated), if known.
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }

    /// When the token expires, by the wall clock (for display and for Secrets).
    pub fn expires_at(&self) -> SystemTime {
        self.expires_at
    }

    /// When the token expires, on the monotonic clock (honours paused tokio time).
    pub fn valid_until(&self) -> Instant {
        self.valid_until
    }

    /// The remaining lifetime of the token when it was received.
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// The precomputed `Bearer <token>` header value, marked sensitive.
    pub fn authorization(&self) -> &HeaderValue {
        &self.authorization
    }

    /// Whether the token is still valid at `now`.
    pub fn is_valid_at(&self, now: Instant) -> bool {
        now < self.valid_until
    }

    /// The lifetime left at `now` (zero once expired).
    pub fn remaining_at(&self, now: Instant) -> Duration {
        self.valid_until.saturating_duration_since(now)
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("access_token", &"[redacted]")
            .field("token_type", &self.token_type)
            .field("scope", &self.scope)
            .field("expires_at", &self.expires_at)
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

fn too_long() -> Error {
    Error::InvalidToken("the token lifetime is too long to represent".into())
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(32) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[tokio::test(start_paused = true)]
    async fn lifetime_counts_from_now_on_paused_clock() {
        let token = Token::new(
            "tok",
            "Bearer",
            Duration::from_secs(900),
            Some("a b".into()),
        )
        .unwrap();
        assert_eq!(token.lifetime(), Duration::from_secs(900));
        assert_eq!(token.scope(), Some("a b"));
        assert!(token.is_valid_at(Instant::now()));
        tokio::time::advance(Duration::from_secs(899)).await;
        assert!(token.is_valid_at(Instant::now()));
        assert_eq!(token.remaining_at(Instant::now()), Duration::from_secs(1));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(!token.is_valid_at(Instant::now()));
    }

    #[test]
    fn header_is_sensitive_and_type_normalised() {
        let token = Token::new("abc", "BEARER", Duration::from_secs(1), None).unwrap();
        assert_eq!(token.token_type(), "Bearer");
        assert_eq!(token.authorization().to_str().unwrap(), "Bearer abc");
        assert!(token.authorization().is_sensitive());
        assert_eq!(token.secret().expose_secret(), "abc");
    }

    #[test]
    fn rejects_non_bearer_and_unsafe_tokens() {
        let err = Token::new("abc", "mac", Duration::from_secs(1), None).unwrap_err();
        assert!(
            matches!(err, Error::InvalidToken(ref m) if m.contains("mac")),
            "{err}"
        );
        for bad in ["", "a b", "a\r\nX-Evil: 1", "tök"] {
            let err = Token::new(bad, "Bearer", Duration::from_secs(1), None).unwrap_err();
            assert!(matches!(err, Error::InvalidToken(_)), "{bad:?}: {err}");
            if !bad.is_empty() {
                assert!(!err.to_string().contains(bad));
            }
        }
    }

    #[test]
    fn with_expiry_in_past_is_invalid() {
        let past = SystemTime::now() - Duration::from_secs(10);
        let token = Token::with_expiry("abc", "Bearer", past, None).unwrap();
        assert_eq!(token.lifetime(), Duration::ZERO);
        assert!(!token.is_valid_at(Instant::now()));
        assert_eq!(token.expires_at(), past);
    }

    #[test]
    fn debug_redacts() {
        let token =
            Token::new("super-secret-token", "Bearer", Duration::from_secs(5), None).unwrap();
        let dbg = format!("{token:?}");
        assert!(!dbg.contains("super-secret-token"), "{dbg}");
        assert!(dbg.contains("[redacted]"));
    }

    #[test]
    fn absurd_lifetime_is_an_error_not_a_panic() {
        let err = Token::new("abc", "Bearer", Duration::MAX, None).unwrap_err();
        assert!(matches!(err, Error::InvalidToken(_)));
    }
}
