//! The `OAuthClient` custom resource (`clientcreds.dev/v1alpha1`).
//!
//! ```
//! use clientcreds_operator::crd::OAuthClient;
//! use kube::CustomResourceExt;
//!
//! let crd = OAuthClient::crd();
//! assert_eq!(crd.spec.group, "clientcreds.dev");
//! assert_eq!(crd.spec.names.short_names.as_deref(), Some(&["oac".to_owned()][..]));
//! ```

// KubeSchema re-emits each struct inside a private helper module, which trips this lint on
// types that are in fact exported from here.
#![allow(unreachable_pub)]
// Several `printcolumn(type_ = ...)` entries with equal values look duplicated to clippy.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, CustomResourceExt, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The API group of [`OAuthClient`].
pub const GROUP: &str = "clientcreds.dev";

/// Default fraction of a token's lifetime after which it is refreshed.
pub const DEFAULT_LIFETIME_FRACTION: f64 = 0.5;

/// Desired state of an `OAuthClient`: which provider to get OAuth 2.0 client-credentials tokens
/// from, with which credentials, and into which Secrets to write the tokens.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "clientcreds.dev",
    version = "v1alpha1",
    kind = "OAuthClient",
    namespaced,
    shortname = "oac",
    status = "OAuthClientStatus",
    doc = "OAuth 2.0 client-credentials tokens kept fresh in Secrets. For Azupay the operator also \
           enables OAuth 2.0 once and stores the one-time client secret.",
    printcolumn(name = "Provider", type_ = "string", json_path = ".spec.provider"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    // A `date` column renders a future time as `<invalid>` (kube-apiserver's human-readable
    // duration only goes backwards), so the next expiry is shown as its RFC 3339 string.
    printcolumn(
        name = "Next Expiry",
        type_ = "string",
        json_path = ".status.nextExpiry",
        description = "When the token that expires first expires (RFC 3339, UTC)"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.provider == 'azupay' ? has(self.azupay) : !has(self.azupay)")
        .message("spec.azupay is required when provider is azupay, and not allowed for other providers"),
    validation = Rule::new("self.provider == 'azupay' ? has(self.credentials) : true")
        .message("spec.credentials (where to store the one-time client secret) is required when provider is azupay"),
    validation = Rule::new("self.provider == 'azupay' ? !has(self.credentialsSecretRef) : has(self.credentialsSecretRef)")
        .message("spec.credentialsSecretRef is required for providers other than azupay (azupay issues its own credentials)"),
    validation = Rule::new("self.provider in ['pyng', 'afterpay', 'generic'] ? has(self.tokenUrl) : true")
        .message("spec.tokenUrl is required for providers pyng, afterpay and generic (their token host is per partner)"),
    validation = Rule::new("self.provider == 'azupay' ? !has(self.tokenUrl) : true")
        .message("spec.tokenUrl is not allowed for azupay: the token URL comes from the enable/details response"),
    validation = Rule::new("!has(self.environment) || self.provider == 'payu'")
        .message("spec.environment is only for provider payu (the only provider with a token host per environment); set spec.tokenUrl for the others"),
    validation = Rule::new("self.tokens.all(t, self.tokens.exists_one(u, u.secretName == t.secretName))")
        .message("spec.tokens[].secretName must be unique"),
    validation = Rule::new("!has(self.credentials) || self.tokens.all(t, t.secretName != self.credentials.secretName)")
        .message("spec.tokens[].secretName must differ from spec.credentials.secretName"),
)]
pub struct OAuthClientSpec {
    /// The token provider: azupay, autopay, payu, pyng, afterpay or generic. It selects the
    /// token-request dialect (client authentication, body encoding). Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.provider is immutable; create a new OAuthClient instead"))]
    pub provider: ProviderKind,

    /// Azupay only: where and how to enable OAuth 2.0 for the Azupay client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azupay: Option<AzupaySpec>,

    /// Providers other than azupay: an existing Secret in this namespace holding the client id and
    /// client secret issued by the provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<CredentialsSecretRef>,

    /// PayU only: which of the provider's environments to use, `test` (the default:
    /// `https://uat-accounts.payu.in/oauth/token`) or `production`
    /// (`https://accounts.payu.in/oauth/token`). Ignored when spec.tokenUrl is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<Environment>,

    /// The token endpoint URL. Overrides the provider's default (autopay:
    /// `https://api-auth.autopay.io/oauth/token`; payu: the host of spec.environment, test
    /// unless production is chosen). Required for pyng, afterpay and generic; not allowed for
    /// azupay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new(HTTPS_URL_RULE).message("spec.tokenUrl must be an https:// URL (plain http:// only to localhost or 127.x.x.x, for local tests, and only when the operator allows it)"))]
    pub token_url: Option<String>,

    /// The `audience` sent with the token request. For autopay it defaults to
    /// `https://api.autopay.io`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub audience: Option<String>,

    /// Azupay only: the Secret in this namespace into which the operator writes the client id
    /// and the one-time client secret returned by the enable call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<CredentialsStore>,

    /// The token Secrets to keep fresh: one Secret per set of scopes. At least one.
    #[schemars(length(min = 1, max = 32))]
    pub tokens: Vec<TokenSecretSpec>,

    /// When tokens are refreshed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh: Option<RefreshSpec>,
}

/// The token provider (one of the supported dialects).
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// Azupay: OAuth 2.0 enabled through the API-key-authenticated enable endpoint;
    /// client_secret_post token requests with scopes from `oauth2AllowedScopes`.
    Azupay,
    /// Autopay: JSON token request body with `audience`.
    Autopay,
    /// PayU: client_secret_post, up to three scopes.
    Payu,
    /// Pyng (B2B Receivables): HTTP Basic client authentication, scope required.
    Pyng,
    /// Afterpay (IVR): HTTP Basic client authentication, no scope.
    Afterpay,
    /// Any RFC 6749 token endpoint: HTTP Basic client authentication (the RFC's default).
    Generic,
}

impl ProviderKind {
    /// The lowercase name used in the spec.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Azupay => "azupay",
            Self::Autopay => "autopay",
            Self::Payu => "payu",
            Self::Pyng => "pyng",
            Self::Afterpay => "afterpay",
            Self::Generic => "generic",
        }
    }
}

impl ProviderKind {
    /// The middleware's preset for this provider (`None` for generic, which has no preset).
    pub fn provider(self) -> Option<clientcreds::Provider> {
        use clientcreds::Provider;
        match self {
            Self::Azupay => Some(Provider::Azupay),
            Self::Autopay => Some(Provider::Autopay),
            Self::Payu => Some(Provider::PayU),
            Self::Pyng => Some(Provider::Pyng),
            Self::Afterpay => Some(Provider::Afterpay),
            Self::Generic => None,
        }
    }
}

/// A provider environment (PayU has one token host per environment).
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    /// The provider's test (UAT) environment: the default.
    #[default]
    Test,
    /// The provider's production environment.
    Production,
}

impl From<Environment> for clientcreds::Env {
    fn from(e: Environment) -> Self {
        match e {
            Environment::Test => clientcreds::Env::Test,
            Environment::Production => clientcreds::Env::Production,
        }
    }
}

/// How to reach Azupay's OAuth 2.0 enable/details endpoint.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AzupaySpec {
    /// The Azupay API base URL including the version, e.g. `https://api-uat.azupay.com.au/v1`.
    /// The operator calls `{endpoint}/client/{clientId}/oauth2`.
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new(HTTPS_URL_RULE).message("spec.azupay.endpoint must be an https:// URL (plain http:// only to localhost or 127.x.x.x, for local tests, and only when the operator allows it)"))]
    pub endpoint: String,

    /// Your Azupay client id (not the OAuth 2.0 client id). Immutable: OAuth 2.0 is enabled
    /// once per Azupay client.
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.azupay.clientId is immutable; create a new OAuthClient instead"))]
    pub client_id: String,

    /// The Secret key in this namespace that holds the Azupay API key, sent as the
    /// `Authorization` header of the enable and details calls.
    pub api_key_secret_ref: SecretKeyRef,
}

/// A key of a Secret in the OAuthClient's namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new(SECRET_NAME_RULE).message(SECRET_NAME_MESSAGE))]
    pub name: String,
    /// Key within the Secret's data.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
    /// Must be omitted or equal to the OAuthClient's namespace: references to other
    /// namespaces are refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub namespace: Option<String>,
}

/// An existing Secret in the OAuthClient's namespace with the client id and secret.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsSecretRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new(SECRET_NAME_RULE).message(SECRET_NAME_MESSAGE))]
    pub name: String,
    /// Key holding the client id. Default `client_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub client_id_key: Option<String>,
    /// Key holding the client secret. Default `client_secret`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub client_secret_key: Option<String>,
    /// Must be omitted or equal to the OAuthClient's namespace: references to other
    /// namespaces are refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub namespace: Option<String>,
}

impl CredentialsSecretRef {
    /// The key of the client id (default `client_id`).
    pub fn client_id_key(&self) -> &str {
        self.client_id_key.as_deref().unwrap_or("client_id")
    }
    /// The key of the client secret (default `client_secret`).
    pub fn client_secret_key(&self) -> &str {
        self.client_secret_key.as_deref().unwrap_or("client_secret")
    }
}

/// Where the Azupay one-time client secret is stored.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsStore {
    /// Name of the Secret (in this namespace) that receives `client_id`, `client_secret` and
    /// `token_url`. Created by the operator before the enable call.
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new(SECRET_NAME_RULE).message(SECRET_NAME_MESSAGE))]
    pub secret_name: String,
    /// What happens to that Secret when the OAuthClient is deleted: `Retain` (default) keeps
    /// it, because the client secret cannot be retrieved again; `Delete` removes it.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

/// What to do with the credentials Secret when the OAuthClient is deleted.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DeletionPolicy {
    /// Keep the Secret (the default).
    #[default]
    Retain,
    /// Delete the Secret with the OAuthClient.
    Delete,
}

/// One token Secret and the scopes its token is requested with.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TokenSecretSpec {
    /// Name of the Secret (in this namespace) the operator writes with keys `access_token`,
    /// `token_type`, `expires_at` (RFC 3339) and `scope`.
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new(SECRET_NAME_RULE).message(SECRET_NAME_MESSAGE))]
    pub secret_name: String,
    /// Scopes requested for this token (sent space-separated). Empty: no `scope` parameter.
    /// For azupay they must be within the client's `oauth2AllowedScopes`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(min = 1, max = 256)))]
    pub scopes: Vec<String>,
}

/// When tokens are refreshed.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RefreshSpec {
    /// Refresh after this fraction of the token's real lifetime (exclusive 0..1, default 0.5),
    /// minus a small random jitter. The rest of the lifetime is left for kubelet to propagate
    /// the Secret to pods and for retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self > 0.0 && self < 1.0").message("spec.refresh.atLifetimeFraction must be greater than 0 and less than 1"))]
    pub at_lifetime_fraction: Option<f64>,
}

/// Observed state of an `OAuthClient`.
// (schemars' own derive: it has no CEL rules, and kube's would copy the field the cache alone
// uses into a schema-only struct where it is never read)
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OAuthClientStatus {
    /// `Ready`, `CredentialsStored`, `TokensIssued` and `TokensRefreshed` conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The OAuth 2.0 client id used for token requests (Azupay: `oauth2ClientId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth2_client_id: Option<String>,
    /// The token endpoint in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_url: Option<String>,
    /// Azupay: the scopes the client may request (`oauth2AllowedScopes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_scopes: Option<Vec<String>>,
    /// Azupay: the token lifetime announced by the details endpoint (`oauth2TtlInSecs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<i64>,
    /// One entry per token Secret.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tokens: Vec<TokenStatus>,
    /// When the token that expires first expires (RFC 3339, UTC, whole seconds rounded down).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_expiry: Option<String>,
    /// The last value of the `clientcreds.dev/refresh` annotation that was acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_refresh_request: Option<String>,
    /// Not part of the resource (never serialized): in the operator's cache, the digest of the
    /// full status the API server showed, set when the cached copy is slimmed to what the
    /// reconciler reads (`reconcile::status::slim_for_cache`).
    #[serde(skip)]
    pub cached_digest: Option<[u8; 32]>,
}

/// The state of one token Secret.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TokenStatus {
    /// Name of the token Secret.
    pub secret_name: String,
    /// Scopes requested.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// When the stored token expires (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// When the operator will refresh it (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_at: Option<String>,
    /// Why the last attempt failed, if it did (never contains a secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// The CEL rule of the URLs the operator sends secrets to: https, or plain http to
/// `localhost` / `127.x.x.x` only (a sandbox in local tests). The operator's egress policy
/// (`crate::egress`) then decides: plain http only with its loopback opt-in, and only to hosts on
/// its allow-list.
const HTTPS_URL_RULE: &str = "self.startsWith('https://') || self.matches('^http://(localhost|127[.][0-9]{1,3}[.][0-9]{1,3}[.][0-9]{1,3})(:[0-9]{1,5})?(/.*)?$')";
const SECRET_NAME_RULE: &str =
    "self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')";
const SECRET_NAME_MESSAGE: &str = "must be a valid Secret name: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit";

impl OAuthClientSpec {
    /// The provider environment in effect: spec.environment, else the middleware's default
    /// ([`clientcreds::Env::DEFAULT`], test).
    pub fn environment(&self) -> clientcreds::Env {
        self.environment
            .map(Into::into)
            .unwrap_or(clientcreds::Env::DEFAULT)
    }

    /// The refresh fraction in effect (default [`DEFAULT_LIFETIME_FRACTION`]).
    pub fn lifetime_fraction(&self) -> f64 {
        self.refresh
            .as_ref()
            .and_then(|r| r.at_lifetime_fraction)
            .unwrap_or(DEFAULT_LIFETIME_FRACTION)
    }
}

/// The CRD as YAML, as committed in `crds/oauthclient.yaml`.
pub fn crd_yaml() -> Result<String, serde_yaml::Error> {
    serde_yaml::to_string(&OAuthClient::crd())
}

/// Specs shared by the unit tests.
#[cfg(test)]
pub(crate) mod test_specs {
    use super::*;

    /// A PayU OAuthClient spec reading `creds`, with one token Secret `tok`.
    pub(crate) fn payu(creds: &str) -> OAuthClientSpec {
        OAuthClientSpec {
            provider: ProviderKind::Payu,
            azupay: None,
            credentials_secret_ref: Some(CredentialsSecretRef {
                name: creds.into(),
                client_id_key: None,
                client_secret_key: None,
                namespace: None,
            }),
            environment: None,
            token_url: None,
            audience: None,
            credentials: None,
            tokens: vec![TokenSecretSpec {
                secret_name: "tok".into(),
                scopes: vec![],
            }],
            refresh: None,
        }
    }
}
