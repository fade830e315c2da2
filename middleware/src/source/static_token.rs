//! A fixed token.

use std::fmt;
use std::sync::Arc;

use tokio::time::Instant;

use super::{TokenFuture, TokenSource};
use crate::{Error, Token};

/// One fixed token, served until it expires; then every call fails with an error that says so.
///
/// [`invalidate`](TokenSource::invalidate) does nothing: there is no other token to get.
#[derive(Clone)]
pub struct StaticToken {
    token: Arc<Token>,
}

impl StaticToken {
    /// A source that always serves `token` (while it is valid).
    pub fn new(token: Token) -> StaticToken {
        StaticToken {
            token: Arc::new(token),
        }
    }

    fn expired() -> Error {
        Error::Config {
            field: "static_token",
            message: "the static token has expired; configure a new one or use a \
                      ClientCredentialsSource that refreshes tokens"
                .into(),
        }
    }
}

impl fmt::Debug for StaticToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticToken")
            .field("token", &self.token)
            .finish()
    }
}

impl TokenSource for StaticToken {
    fn cached(&self) -> Option<Arc<Token>> {
        self.token
            .is_valid_at(Instant::now())
            .then(|| Arc::clone(&self.token))
    }

    fn token(&self) -> TokenFuture {
        let result = self.cached().ok_or_else(StaticToken::expired);
        Box::pin(std::future::ready(result))
    }

    fn invalidate(&self, _token: &Token) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn serves_until_expiry_then_errors() {
        let source = StaticToken::new(
            Token::new("static-secret", "Bearer", Duration::from_secs(10), None).unwrap(),
        );
        assert!(source.cached().is_some());
        assert!(!source.invalidate(&source.token().await.unwrap()));
        assert!(
            source.cached().is_some(),
            "invalidate must not drop a static token"
        );
        tokio::time::advance(Duration::from_secs(11)).await;
        assert!(source.cached().is_none());
        let err = source.token().await.unwrap_err();
        assert!(
            err.to_string().contains("static token has expired"),
            "{err}"
        );
        assert!(!format!("{source:?} {err:?}").contains("static-secret"));
    }
}
