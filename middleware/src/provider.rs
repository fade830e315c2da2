//! Presets for the five seed providers.
//!
//! Each preset returns a [`ClientCredentialsBuilder`] with the provider's token URL (which
//! [`token_url`](ClientCredentialsBuilder::token_url) can still replace, e.g. with a sandbox),
//! client authentication, audience and scope rules; [`build`](ClientCredentialsBuilder::build)
//! enforces the rules.
//!
//! | preset | token URL | auth | rules |
//! |---|---|---|---|
//! | [`Provider::azupay`] | `oauth2TokenUrl` of the details | `Post` | scopes ⊆ `oauth2AllowedScopes`; `oauth2TtlInSecs` as default lifetime |
//! | [`Provider::autopay`] | `https://api-auth.autopay.io/oauth/token` | `Json` | audience `https://api.autopay.io` |
//! | [`Provider::payu`] | `https://uat-accounts.payu.in/oauth/token` / `https://accounts.payu.in/oauth/token` | `Post` | at most 3 scopes |
//! | [`Provider::pyng`] | `{base_url}/billing/oauth2/token` | `Basic` | a scope is required |
//! | [`Provider::afterpay`] | `{base_url}/oauth2/token` | `Basic` | — |
//!
//! ```
//! use clientcreds::{Env, Error, Provider};
//! use secrecy::SecretString;
//!
//! let payu = Provider::payu(Env::Test, "client-id", SecretString::from("secret"))
//!     .scope("create_payment_links")
//!     .build()?;
//! assert_eq!(payu.token_url().as_str(), "https://uat-accounts.payu.in/oauth/token");
//!
//! // Pyng requires a scope.
//! let err = Provider::pyng("https://sample.pyng.com.au", "id", SecretString::from("s")).build();
//! assert!(matches!(err, Err(Error::Config { field: "scope", .. })));
//! # Ok::<(), Error>(())
//! ```

use std::fmt;
use std::str::FromStr;

use secrecy::SecretString;

use crate::{AzupayConnectionDetails, ClientAuth, ClientCredentials, ClientCredentialsBuilder};

/// Autopay's token endpoint.
pub const AUTOPAY_TOKEN_URL: &str = "https://api-auth.autopay.io/oauth/token";
/// The audience every Autopay token request must carry.
pub const AUTOPAY_AUDIENCE: &str = "https://api.autopay.io";
/// PayU's test (UAT) token endpoint.
pub const PAYU_TEST_TOKEN_URL: &str = "https://uat-accounts.payu.in/oauth/token";
/// PayU's production token endpoint.
pub const PAYU_PRODUCTION_TOKEN_URL: &str = "https://accounts.payu.in/oauth/token";
/// The most scopes PayU accepts in one token request.
pub const PAYU_MAX_SCOPES: usize = 3;

/// A PayU environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Env {
    /// `https://uat-accounts.payu.in`.
    #[default]
    Test,
    /// `https://accounts.payu.in`.
    Production,
}

/// The seed providers. The associated functions build preconfigured clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Provider {
    /// Azupay (form body, `client_secret_post`, credentials from the enable call).
    Azupay,
    /// Autopay (JSON body with audience).
    Autopay,
    /// PayU (form body, `client_secret_post`, up to 3 scopes).
    PayU,
    /// Pyng B2B Receivables (Basic, required scope).
    Pyng,
    /// Afterpay IVR (Basic, `grant_type` only).
    Afterpay,
}

impl Provider {
    /// All providers.
    pub const ALL: [Provider; 5] = [
        Provider::Azupay,
        Provider::Autopay,
        Provider::PayU,
        Provider::Pyng,
        Provider::Afterpay,
    ];

    /// The lower-case name (`azupay`, `autopay`, `payu`, `pyng`, `afterpay`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Provider::Azupay => "azupay",
            Provider::Autopay => "autopay",
            Provider::PayU => "payu",
            Provider::Pyng => "pyng",
            Provider::Afterpay => "afterpay",
        }
    }

    /// How this provider authenticates clients.
    pub const fn client_auth(self) -> ClientAuth {
        match self {
            Provider::Azupay | Provider::PayU => ClientAuth::Post,
            Provider::Autopay => ClientAuth::Json,
            Provider::Pyng | Provider::Afterpay => ClientAuth::Basic,
        }
    }

    /// This provider's preset by name, for tools that pick the provider at run time (a CLI
    /// flag, a custom resource). Autopay and PayU get their documented token URL (PayU:
    /// [`Env::Test`]); Azupay, Pyng and Afterpay have per-client or per-environment hosts, so
    /// their token URL must be set with [`token_url`](ClientCredentialsBuilder::token_url) —
    /// [`build`](ClientCredentialsBuilder::build) says so otherwise. Azupay built this way
    /// does not know `oauth2AllowedScopes`; prefer [`Provider::azupay`] when the connection
    /// details are at hand.
    ///
    /// ```
    /// use clientcreds::{ClientAuth, Provider};
    /// use secrecy::SecretString;
    ///
    /// let provider: Provider = "pyng".parse()?;
    /// let credentials = provider
    ///     .builder("s6BhdRkqt3", SecretString::from("gX1fBat3bV"))
    ///     .token_url("https://sample.pyng.com.au/billing/oauth2/token")
    ///     .scope("billing:customers:read")
    ///     .build()?;
    /// assert_eq!(credentials.auth(), ClientAuth::Basic);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builder(
        self,
        client_id: impl Into<String>,
        client_secret: SecretString,
    ) -> ClientCredentialsBuilder {
        let client_id = client_id.into();
        match self {
            Provider::Autopay => Provider::autopay(client_id, client_secret),
            Provider::PayU => Provider::payu(Env::Test, client_id, client_secret),
            Provider::Pyng => {
                let mut builder = preset(self, "", client_id, client_secret);
                builder.rules.require_scope = true;
                builder
            }
            Provider::Azupay | Provider::Afterpay => preset(self, "", client_id, client_secret),
        }
    }

    /// Azupay, from the connection details of its enable/details call and the client secret
    /// that the enable call returned once. Uses `oauth2ClientId` (not the Azupay `clientId`),
    /// `oauth2TokenUrl`, a form body with the secret in it, `oauth2TtlInSecs` as the default
    /// lifetime, and allows only scopes in `oauth2AllowedScopes`.
    pub fn azupay(
        details: &AzupayConnectionDetails,
        client_secret: SecretString,
    ) -> ClientCredentialsBuilder {
        let mut builder = preset(
            Provider::Azupay,
            &details.oauth2_token_url,
            details.oauth2_client_id.clone(),
            client_secret,
        );
        if let Some(ttl) = details.ttl().filter(|t| !t.is_zero()) {
            builder = builder.default_lifetime(ttl);
        }
        builder.rules.allowed_scopes = Some(details.oauth2_allowed_scopes.clone());
        if details.oauth2_grant_type != "client_credentials" {
            builder.rules.grant_type_error = Some(format!(
                "Azupay announced grant type {:?}; only client_credentials is supported",
                details.oauth2_grant_type
            ));
        }
        builder
    }

    /// Autopay: JSON body, audience `https://api.autopay.io`.
    pub fn autopay(
        client_id: impl Into<String>,
        client_secret: SecretString,
    ) -> ClientCredentialsBuilder {
        let mut builder = preset(
            Provider::Autopay,
            AUTOPAY_TOKEN_URL,
            client_id.into(),
            client_secret,
        )
        .audience(AUTOPAY_AUDIENCE);
        builder.rules.required_audience = Some(AUTOPAY_AUDIENCE);
        builder
    }

    /// PayU in the test or production environment: form body with the secret, at most three
    /// scopes.
    pub fn payu(
        env: Env,
        client_id: impl Into<String>,
        client_secret: SecretString,
    ) -> ClientCredentialsBuilder {
        let url = match env {
            Env::Test => PAYU_TEST_TOKEN_URL,
            Env::Production => PAYU_PRODUCTION_TOKEN_URL,
        };
        let mut builder = preset(Provider::PayU, url, client_id.into(), client_secret);
        builder.rules.max_scopes = Some(PAYU_MAX_SCOPES);
        builder
    }

    /// Pyng B2B Receivables at `base_url` (the partner host, e.g.
    /// `https://sample.pyng.com.au`): Basic authentication, a scope is required.
    pub fn pyng(
        base_url: impl AsRef<str>,
        client_id: impl Into<String>,
        client_secret: SecretString,
    ) -> ClientCredentialsBuilder {
        let url = join(base_url.as_ref(), "/billing/oauth2/token");
        let mut builder = preset(Provider::Pyng, &url, client_id.into(), client_secret);
        builder.rules.require_scope = true;
        builder
    }

    /// Afterpay IVR at `base_url` (the environment's host): Basic authentication, a body with
    /// `grant_type` only.
    pub fn afterpay(
        base_url: impl AsRef<str>,
        client_id: impl Into<String>,
        client_secret: SecretString,
    ) -> ClientCredentialsBuilder {
        let url = join(base_url.as_ref(), "/oauth2/token");
        preset(Provider::Afterpay, &url, client_id.into(), client_secret)
    }
}

fn preset(
    provider: Provider,
    url: &str,
    client_id: String,
    secret: SecretString,
) -> ClientCredentialsBuilder {
    let mut builder =
        ClientCredentials::builder(url, client_id, secret).auth(provider.client_auth());
    builder.rules.provider = Some(provider.as_str());
    builder
}

fn join(base: &str, path: &str) -> String {
    format!("{}{path}", base.trim_end_matches('/'))
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing an unknown provider name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown provider {0:?}; expected one of azupay, autopay, payu, pyng, afterpay")]
pub struct UnknownProvider(pub String);

impl FromStr for Provider {
    type Err = UnknownProvider;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Provider::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownProvider(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    fn secret() -> SecretString {
        SecretString::from("s")
    }

    fn field(result: Result<ClientCredentials, Error>) -> &'static str {
        match result {
            Err(Error::Config { field, .. }) => field,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn names_round_trip() {
        for p in Provider::ALL {
            assert_eq!(p.as_str().parse::<Provider>().unwrap(), p);
        }
        assert!("stripe".parse::<Provider>().is_err());
    }

    #[test]
    fn presets_by_name() {
        let c = Provider::Autopay.builder("id", secret()).build().unwrap();
        assert_eq!(c.token_url().as_str(), AUTOPAY_TOKEN_URL);
        let c = Provider::PayU.builder("id", secret()).build().unwrap();
        assert_eq!(c.token_url().as_str(), PAYU_TEST_TOKEN_URL);
        for p in [Provider::Azupay, Provider::Pyng, Provider::Afterpay] {
            let err = p.builder("id", secret()).scope("x").build().unwrap_err();
            assert!(
                matches!(err, Error::Config { field: "token_url", ref message } if message.contains(p.as_str())),
                "{err}"
            );
            let c = p
                .builder("id", secret())
                .scope("x")
                .token_url("https://h/token")
                .build()
                .unwrap();
            assert_eq!(c.auth(), p.client_auth());
            assert_eq!(c.provider(), Some(p.as_str()));
        }
        assert_eq!(
            field(
                Provider::Pyng
                    .builder("id", secret())
                    .token_url("https://h/t")
                    .build()
            ),
            "scope"
        );
    }

    #[test]
    fn autopay_preset() {
        let c = Provider::autopay("id", secret()).build().unwrap();
        assert_eq!(c.token_url().as_str(), AUTOPAY_TOKEN_URL);
        assert_eq!(c.auth(), ClientAuth::Json);
        assert_eq!(c.cache_key().audience(), Some(AUTOPAY_AUDIENCE));
        assert_eq!(c.provider(), Some("autopay"));
        assert_eq!(
            field(
                Provider::autopay("id", secret())
                    .audience("https://other")
                    .build()
            ),
            "audience"
        );
    }

    #[test]
    fn payu_preset_and_scope_limit() {
        let c = Provider::payu(Env::Production, "id", secret())
            .build()
            .unwrap();
        assert_eq!(c.token_url().as_str(), PAYU_PRODUCTION_TOKEN_URL);
        assert_eq!(c.auth(), ClientAuth::Post);
        let three = Provider::payu(Env::Test, "id", secret())
            .scope("create_payment_links update_payment_links read_payment_links")
            .build()
            .unwrap();
        assert_eq!(three.scopes().len(), 3);
        let err = Provider::payu(Env::Test, "id", secret())
            .scope("a b c d")
            .build()
            .unwrap_err();
        assert!(
            matches!(err, Error::Config { field: "scope", ref message } if message.contains("at most 3")),
            "{err}"
        );
    }

    #[test]
    fn pyng_preset_requires_scope() {
        assert_eq!(
            field(Provider::pyng("https://sample.pyng.com.au/", "id", secret()).build()),
            "scope"
        );
        let c = Provider::pyng("https://sample.pyng.com.au/", "id", secret())
            .scope("billing:customers:read")
            .build()
            .unwrap();
        assert_eq!(
            c.token_url().as_str(),
            "https://sample.pyng.com.au/billing/oauth2/token"
        );
        assert_eq!(c.auth(), ClientAuth::Basic);
    }

    #[test]
    fn afterpay_preset() {
        let c = Provider::afterpay("https://merchant.example", "afterpay", secret())
            .build()
            .unwrap();
        assert_eq!(
            c.token_url().as_str(),
            "https://merchant.example/oauth2/token"
        );
        assert_eq!(c.auth(), ClientAuth::Basic);
        // The URL can be replaced (a sandbox on loopback).
        let c = Provider::afterpay("https://merchant.example", "afterpay", secret())
            .token_url("http://127.0.0.1:9999/afterpay/oauth2/token")
            .build()
            .unwrap();
        assert_eq!(c.token_url().port(), Some(9999));
    }

    #[test]
    fn azupay_preset_from_details() {
        let details: AzupayConnectionDetails = serde_json::from_str(
            r#"{"oauth2ClientId":"oid","oauth2TokenUrl":"https://auth-uat.azupay.com.au/oauth2/token",
                "oauth2GrantType":"client_credentials","oauth2TtlInSecs":3600,
                "oauth2AllowedScopes":["RestAPI/GET:balance","RestAPI/GET:payment"]}"#,
        )
        .unwrap();
        let c = Provider::azupay(&details, secret())
            .scope("RestAPI/GET:balance")
            .build()
            .unwrap();
        assert_eq!(c.client_id(), "oid");
        assert_eq!(c.auth(), ClientAuth::Post);
        assert_eq!(
            c.default_lifetime(),
            Some(std::time::Duration::from_secs(3600))
        );
        assert_eq!(
            field(
                Provider::azupay(&details, secret())
                    .scope("RestAPI/POST:payment")
                    .build()
            ),
            "scope"
        );
        let mut odd = details.clone();
        odd.oauth2_grant_type = "password".into();
        assert_eq!(
            field(Provider::azupay(&odd, secret()).build()),
            "grant_type"
        );
    }
}
