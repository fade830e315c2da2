//! The client credentials of an OAuthClient once dereferenced, and the one mapping from an
//! OAuthClient to the middleware's [`ClientCredentials`].

use clientcreds::{AzupayConnectionDetails, ClientAuth, ClientCredentials, Provider};
use secrecy::SecretString;

use crate::Reason;
use crate::crd::{OAuthClientSpec, ProviderKind, TokenSecretSpec};

/// Client credentials ready for token requests.
#[derive(Clone)]
pub struct Resolved {
    /// The OAuth 2.0 client id.
    pub client_id: String,
    /// The client secret.
    pub client_secret: SecretString,
    /// The token URL, when it is known from the provider (Azupay) rather than the spec.
    pub token_url: Option<String>,
    /// Azupay's connection details, when known.
    pub details: Option<AzupayConnectionDetails>,
}

impl std::fmt::Debug for Resolved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolved")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("token_url", &self.token_url)
            .field("details", &self.details)
            .finish()
    }
}

/// The state of the client credentials, for the `CredentialsStored` condition.
#[derive(Clone, Debug, PartialEq)]
pub enum CredentialsState {
    /// Azupay: the one-time secret is stored in the credentials Secret.
    Stored,
    /// Other providers: the referenced Secret holds a client id and secret.
    Referenced,
    /// Azupay: the enable call is pending (or in flight).
    EnablePending,
    /// Azupay: enabled at Azupay, but the secret is not stored: a person must act.
    Lost(String),
    /// Something is missing or failing; the reason and a message.
    Failed {
        /// Why.
        reason: Reason,
        /// What is wrong and what to do.
        message: String,
    },
}

/// What dereferencing the credentials gave.
#[derive(Debug)]
pub enum Outcome {
    /// Credentials for token requests.
    Ready(Resolved),
    /// No credentials: why, and when to look again (`None`: after a change).
    NotReady(CredentialsState, Option<std::time::Duration>),
}

/// Builds the token request for one token Secret: the one mapping from an OAuthClient to
/// [`ClientCredentials`]. The provider's rules (token URL per environment, audience, client
/// authentication, scope limits) come from the middleware's presets
/// ([`clientcreds::Provider::preset`]); the spec only chooses and overrides.
pub fn credentials_for(
    spec: &OAuthClientSpec,
    resolved: &Resolved,
    token: &TokenSecretSpec,
) -> Result<ClientCredentials, String> {
    let id = resolved.client_id.clone();
    let secret = resolved.client_secret.clone();
    let mut builder = match spec.provider.provider() {
        Some(Provider::Azupay) => {
            let Some(details) = &resolved.details else {
                return Err("the Azupay connection details are not known yet".into());
            };
            Provider::azupay(details, secret)
        }
        Some(provider) => provider.builder_in(spec.environment(), id, secret),
        // generic: any RFC 6749 endpoint, with the RFC's default client authentication
        None => ClientCredentials::builder(spec.token_url.clone().unwrap_or_default(), id, secret)
            .auth(ClientAuth::Basic),
    };
    if spec.provider != ProviderKind::Azupay
        && let Some(url) = &spec.token_url
    {
        builder = builder.token_url(url);
    }
    if let Some(aud) = &spec.audience {
        builder = builder.audience(aud.clone());
    }
    builder = builder.scopes(token.scopes.iter().cloned());
    builder.build().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::crd::test_specs::payu;

    #[test]
    fn token_requests_follow_each_provider_dialect() {
        let resolved = Resolved {
            client_id: "id".into(),
            client_secret: SecretString::from("s"),
            token_url: None,
            details: None,
        };
        assert!(!format!("{resolved:?}").contains("\"s\""));
        let tok = TokenSecretSpec {
            secret_name: "t".into(),
            scopes: vec!["a".into()],
        };
        let mut spec = payu("c");
        let c = credentials_for(&spec, &resolved, &tok).unwrap();
        // PayU's default environment is test, as everywhere else
        assert_eq!(
            c.token_url().as_str(),
            clientcreds::provider::PAYU_TEST_TOKEN_URL
        );
        assert_eq!(c.auth(), ClientAuth::Post);
        spec.environment = Some(crate::crd::Environment::Production);
        let c = credentials_for(&spec, &resolved, &tok).unwrap();
        assert_eq!(
            c.token_url().as_str(),
            clientcreds::provider::PAYU_PRODUCTION_TOKEN_URL
        );
        spec.environment = None;
        spec.provider = ProviderKind::Pyng;
        spec.token_url = Some("https://pyng.test/billing/oauth2/token".into());
        let c = credentials_for(&spec, &resolved, &tok).unwrap();
        assert_eq!(
            c.token_url().as_str(),
            "https://pyng.test/billing/oauth2/token"
        );
        assert_eq!(c.auth(), ClientAuth::Basic);
        spec.provider = ProviderKind::Generic;
        assert_eq!(
            credentials_for(&spec, &resolved, &tok).unwrap().auth(),
            ClientAuth::Basic
        );
        spec.provider = ProviderKind::Autopay;
        spec.token_url = None;
        let c = credentials_for(&spec, &resolved, &tok).unwrap();
        assert_eq!(c.auth(), ClientAuth::Json);
        assert_eq!(c.cache_key().audience(), Some("https://api.autopay.io"));
        spec.provider = ProviderKind::Azupay;
        assert!(
            credentials_for(&spec, &resolved, &tok).is_err(),
            "no details yet"
        );
    }
}
