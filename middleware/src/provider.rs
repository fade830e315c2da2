//! Presets for the five seed providers, as data.
//!
//! [`Provider::preset`] is the one place each provider's rules live: token endpoint (per
//! [`Env`] where the provider has several), client authentication, audience and scope limits.
//! The builders here, the `clientcreds` CLI, the operator's `OAuthClient` mapping and the docs
//! all read them from there.
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
//! | [`Provider::payu`] | test (the default, [`Env::DEFAULT`]): `https://uat-accounts.payu.in/oauth/token`; production: `https://accounts.payu.in/oauth/token` | `Post` | at most 3 scopes |
//! | [`Provider::pyng`] | `{base_url}/billing/oauth2/token` | `Basic` | a scope is required |
//! | [`Provider::afterpay`] | `{base_url}/oauth2/token` | `Basic` | — |
//!
//! **PayU's default environment is test** ([`Env::DEFAULT`]) everywhere — in
//! [`Provider::builder`], the CLI and the operator — so that a configuration that does not say
//! otherwise never sends credentials to, or requests tokens from, production. Choose production
//! explicitly: [`Provider::builder_in`] / [`Provider::payu`] with [`Env::Production`], the CLI's
//! `--environment production`, or an OAuthClient's `spec.environment: production`.
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
//! // The same from the preset's data.
//! let preset = Provider::PayU.preset();
//! assert_eq!(preset.max_scopes, Some(3));
//! assert_eq!(preset.token_url(Env::Production), Some("https://accounts.payu.in/oauth/token"));
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
/// Azupay's UAT API host (the enable and details endpoints), as its document shows.
pub const AZUPAY_UAT_API_HOST: &str = "api-uat.azupay.com.au";
/// The host of the `oauth2TokenUrl` Azupay's UAT details announce, as its document shows.
pub const AZUPAY_UAT_TOKEN_HOST: &str = "auth-uat.azupay.com.au";
/// The most scopes PayU accepts in one token request.
pub const PAYU_MAX_SCOPES: usize = 3;

/// A provider environment, for providers with one token host per environment (PayU).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Env {
    /// The test (sandbox, UAT) environment: the default ([`Env::DEFAULT`]).
    #[default]
    Test,
    /// The production environment.
    Production,
}

impl Env {
    /// The environment used when none is chosen: [`Env::Test`], so that nothing reaches
    /// production unless asked to.
    pub const DEFAULT: Env = Env::Test;
    /// Both environments.
    pub const ALL: [Env; 2] = [Env::Test, Env::Production];

    /// The lower-case name (`test`, `production`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Env::Test => "test",
            Env::Production => "production",
        }
    }
}

impl fmt::Display for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing an unknown environment name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown environment {0:?}; expected test or production")]
pub struct UnknownEnv(pub String);

impl FromStr for Env {
    type Err = UnknownEnv;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Env::ALL
            .into_iter()
            .find(|e| e.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownEnv(s.to_owned()))
    }
}

/// Where a preset's token endpoint is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenEndpoint {
    /// One documented URL.
    Fixed(&'static str),
    /// One documented URL per [`Env`].
    PerEnvironment {
        /// [`Env::Test`].
        test: &'static str,
        /// [`Env::Production`].
        production: &'static str,
    },
    /// `path` on the partner's or environment's own host, which the user supplies.
    OnHost {
        /// The path appended to the host's base URL.
        path: &'static str,
    },
    /// Announced by the provider per client (Azupay's `oauth2TokenUrl`).
    FromDetails,
}

/// A provider's preset as data: everything the builders, the CLI, the operator and the docs
/// need to know about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Preset {
    /// The provider.
    pub provider: Provider,
    /// Its name as written in prose (`PayU`).
    pub display_name: &'static str,
    /// How clients authenticate to its token endpoint.
    pub client_auth: ClientAuth,
    /// Where its token endpoint is.
    pub token_endpoint: TokenEndpoint,
    /// The audience every token request carries (set by default, and required).
    pub audience: Option<&'static str>,
    /// The most scopes one token request may carry.
    pub max_scopes: Option<usize>,
    /// Whether a token request must carry a scope.
    pub requires_scope: bool,
    /// Hosts the provider's documents name besides those of its token URLs (Azupay: its API
    /// host and the host of the `oauth2TokenUrl` its details announce). See
    /// [`Preset::public_hosts`].
    pub documented_hosts: &'static [&'static str],
}

impl Preset {
    /// The documented token URL in `env`; `None` when the host is the user's to give
    /// ([`TokenEndpoint::OnHost`], [`TokenEndpoint::FromDetails`]).
    pub const fn token_url(&self, env: Env) -> Option<&'static str> {
        match self.token_endpoint {
            TokenEndpoint::Fixed(url) => Some(url),
            TokenEndpoint::PerEnvironment { test, production } => match env {
                Env::Test => Some(test),
                Env::Production => Some(production),
            },
            TokenEndpoint::OnHost { .. } | TokenEndpoint::FromDetails => None,
        }
    }

    /// Whether the provider has one token host per [`Env`] (so choosing one means something).
    pub const fn has_environments(&self) -> bool {
        matches!(self.token_endpoint, TokenEndpoint::PerEnvironment { .. })
    }

    /// The public hosts the provider's documents name: the hosts of its token URLs in every
    /// [`Env`], then its [`documented_hosts`](Preset::documented_hosts), without repeats. The
    /// operator's default egress allow-list is made of these. Providers whose token host is the
    /// partner's own ([`TokenEndpoint::OnHost`]) have none.
    ///
    /// ```
    /// use clientcreds::Provider;
    ///
    /// assert_eq!(
    ///     Provider::PayU.preset().public_hosts(),
    ///     ["uat-accounts.payu.in", "accounts.payu.in"]
    /// );
    /// assert!(Provider::Pyng.preset().public_hosts().is_empty());
    /// ```
    pub fn public_hosts(&self) -> Vec<&'static str> {
        let mut hosts: Vec<&'static str> = Vec::new();
        let token_hosts = Env::ALL
            .into_iter()
            .filter_map(|env| self.token_url(env))
            .filter_map(url_host);
        for host in token_hosts.chain(self.documented_hosts.iter().copied()) {
            if !hosts.contains(&host) {
                hosts.push(host);
            }
        }
        hosts
    }
}

/// The host of an `https://host[:port]/path` URL written in this file.
fn url_host(url: &'static str) -> Option<&'static str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
    (!host.is_empty()).then_some(host)
}

const PRESETS: [Preset; 5] = [
    Preset {
        provider: Provider::Azupay,
        display_name: "Azupay",
        client_auth: ClientAuth::Post,
        token_endpoint: TokenEndpoint::FromDetails,
        audience: None,
        max_scopes: None,
        requires_scope: false,
        documented_hosts: &[AZUPAY_UAT_API_HOST, AZUPAY_UAT_TOKEN_HOST],
    },
    Preset {
        provider: Provider::Autopay,
        display_name: "Autopay",
        client_auth: ClientAuth::Json,
        token_endpoint: TokenEndpoint::Fixed(AUTOPAY_TOKEN_URL),
        audience: Some(AUTOPAY_AUDIENCE),
        max_scopes: None,
        requires_scope: false,
        documented_hosts: &[],
    },
    Preset {
        provider: Provider::PayU,
        display_name: "PayU",
        client_auth: ClientAuth::Post,
        token_endpoint: TokenEndpoint::PerEnvironment {
            test: PAYU_TEST_TOKEN_URL,
            production: PAYU_PRODUCTION_TOKEN_URL,
        },
        audience: None,
        max_scopes: Some(PAYU_MAX_SCOPES),
        requires_scope: false,
        documented_hosts: &[],
    },
    Preset {
        provider: Provider::Pyng,
        display_name: "Pyng",
        client_auth: ClientAuth::Basic,
        token_endpoint: TokenEndpoint::OnHost {
            path: "/billing/oauth2/token",
        },
        audience: None,
        max_scopes: None,
        requires_scope: true,
        documented_hosts: &[],
    },
    Preset {
        provider: Provider::Afterpay,
        display_name: "Afterpay",
        client_auth: ClientAuth::Basic,
        token_endpoint: TokenEndpoint::OnHost {
            path: "/oauth2/token",
        },
        audience: None,
        max_scopes: None,
        requires_scope: false,
        documented_hosts: &[],
    },
];

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

    /// This provider's preset: its rules as data.
    pub const fn preset(self) -> &'static Preset {
        match self {
            Provider::Azupay => &PRESETS[0],
            Provider::Autopay => &PRESETS[1],
            Provider::PayU => &PRESETS[2],
            Provider::Pyng => &PRESETS[3],
            Provider::Afterpay => &PRESETS[4],
        }
    }

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
        self.preset().client_auth
    }

    /// This provider's preset by name in the default environment ([`Env::DEFAULT`], test):
    /// see [`Provider::builder_in`].
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
        self.builder_in(Env::DEFAULT, client_id, client_secret)
    }

    /// This provider's preset by name in `env`, for tools that pick the provider at run time (a
    /// CLI flag, a custom resource). Autopay and PayU get their documented token URL (PayU's
    /// for `env`; providers with one host ignore `env`); Azupay, Pyng and Afterpay have
    /// per-client or per-environment hosts, so their token URL must be set with
    /// [`token_url`](ClientCredentialsBuilder::token_url) —
    /// [`build`](ClientCredentialsBuilder::build) says so otherwise. Azupay built this way does
    /// not know `oauth2AllowedScopes`; prefer [`Provider::azupay`] when the connection details
    /// are at hand.
    ///
    /// ```
    /// use clientcreds::{Env, Provider};
    /// use secrecy::SecretString;
    ///
    /// let live = Provider::PayU
    ///     .builder_in(Env::Production, "id", SecretString::from("s"))
    ///     .build()?;
    /// assert_eq!(live.token_url().as_str(), "https://accounts.payu.in/oauth/token");
    /// # Ok::<(), clientcreds::Error>(())
    /// ```
    pub fn builder_in(
        self,
        env: Env,
        client_id: impl Into<String>,
        client_secret: SecretString,
    ) -> ClientCredentialsBuilder {
        let preset = self.preset();
        let mut builder = ClientCredentials::builder(
            preset.token_url(env).unwrap_or(""),
            client_id.into(),
            client_secret,
        )
        .auth(preset.client_auth);
        builder.rules.provider = Some(self.as_str());
        builder.rules.require_scope = preset.requires_scope;
        builder.rules.max_scopes = preset.max_scopes;
        if let Some(audience) = preset.audience {
            builder = builder.audience(audience);
            builder.rules.required_audience = Some(audience);
        }
        builder
    }

    /// Azupay, from the connection details of its enable/details call and the client secret
    /// that the enable call returned once. Uses `oauth2ClientId` (not the Azupay `clientId`),
    /// `oauth2TokenUrl`, a form body with the secret in it, `oauth2TtlInSecs` as the default
    /// lifetime, and allows only scopes in `oauth2AllowedScopes`.
    pub fn azupay(
        details: &AzupayConnectionDetails,
        client_secret: SecretString,
    ) -> ClientCredentialsBuilder {
        let mut builder = Provider::Azupay
            .builder(details.oauth2_client_id.clone(), client_secret)
            .token_url(&details.oauth2_token_url);
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
        Provider::Autopay.builder(client_id, client_secret)
    }

    /// PayU in the test or production environment: form body with the secret, at most three
    /// scopes.
    pub fn payu(
        env: Env,
        client_id: impl Into<String>,
        client_secret: SecretString,
    ) -> ClientCredentialsBuilder {
        Provider::PayU.builder_in(env, client_id, client_secret)
    }

    /// Pyng B2B Receivables at `base_url` (the partner host, e.g.
    /// `https://sample.pyng.com.au`): Basic authentication, a scope is required.
    pub fn pyng(
        base_url: impl AsRef<str>,
        client_id: impl Into<String>,
        client_secret: SecretString,
    ) -> ClientCredentialsBuilder {
        Provider::Pyng.on_host(base_url.as_ref(), client_id, client_secret)
    }

    /// Afterpay IVR at `base_url` (the environment's host): Basic authentication, a body with
    /// `grant_type` only.
    pub fn afterpay(
        base_url: impl AsRef<str>,
        client_id: impl Into<String>,
        client_secret: SecretString,
    ) -> ClientCredentialsBuilder {
        Provider::Afterpay.on_host(base_url.as_ref(), client_id, client_secret)
    }

    fn on_host(
        self,
        base_url: &str,
        client_id: impl Into<String>,
        client_secret: SecretString,
    ) -> ClientCredentialsBuilder {
        let path = match self.preset().token_endpoint {
            TokenEndpoint::OnHost { path } => path,
            _ => "",
        };
        self.builder(client_id, client_secret)
            .token_url(join(base_url, path))
    }
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
    fn public_hosts_come_from_the_documents() {
        assert_eq!(
            Provider::Azupay.preset().public_hosts(),
            ["api-uat.azupay.com.au", "auth-uat.azupay.com.au"]
        );
        assert_eq!(
            Provider::Autopay.preset().public_hosts(),
            ["api-auth.autopay.io"]
        );
        assert!(Provider::Afterpay.preset().public_hosts().is_empty());
        assert_eq!(url_host("https://h.example:8443/x"), Some("h.example"));
        assert_eq!(url_host("nothing"), None);
    }

    #[test]
    fn names_round_trip() {
        for p in Provider::ALL {
            assert_eq!(p.as_str().parse::<Provider>().unwrap(), p);
        }
        assert!("stripe".parse::<Provider>().is_err());
    }

    #[test]
    fn presets_are_data_and_builders_follow_them() {
        for p in Provider::ALL {
            let preset = p.preset();
            assert_eq!(preset.provider, p);
            assert_eq!(p.client_auth(), preset.client_auth);
            for env in Env::ALL {
                let built = p
                    .builder_in(env, "id", secret())
                    .scope("x")
                    .token_url(preset.token_url(env).unwrap_or("https://h/token"))
                    .build()
                    .unwrap();
                assert_eq!(built.auth(), preset.client_auth);
                assert_eq!(built.cache_key().audience(), preset.audience);
            }
        }
        assert_eq!(
            Provider::PayU.preset().token_url(Env::DEFAULT),
            Some(PAYU_TEST_TOKEN_URL)
        );
        assert!(Provider::PayU.preset().has_environments());
        assert!(!Provider::Autopay.preset().has_environments());
        assert_eq!(
            Provider::Autopay.preset().token_url(Env::Production),
            Provider::Autopay.preset().token_url(Env::Test)
        );
        assert_eq!(Provider::Pyng.preset().token_url(Env::Test), None);
    }

    #[test]
    fn environments_parse_and_default_to_test() {
        assert_eq!(Env::default(), Env::DEFAULT);
        assert_eq!(Env::DEFAULT, Env::Test);
        for e in Env::ALL {
            assert_eq!(e.as_str().parse::<Env>().unwrap(), e);
            assert_eq!(e.to_string(), e.as_str());
        }
        assert_eq!("PRODUCTION".parse::<Env>().unwrap(), Env::Production);
        assert!("staging".parse::<Env>().is_err());
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
