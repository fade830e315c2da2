//! Desired objects and status: pure functions of the OAuthClient, what was observed, and a clock.
//!
//! ```
//! use clientcreds_operator::build::{plan_token, StoredToken, TokenPlan};
//! use jiff::{SignedDuration, Timestamp};
//!
//! let now: Timestamp = "2026-01-01T00:10:00Z".parse().unwrap();
//! let stored = StoredToken {
//!     expires_at: now + SignedDuration::from_secs(600),
//!     refresh_at: Some(now + SignedDuration::from_secs(60)),
//!     config_hash: Some("h".into()),
//!     refresh_answered: None,
//! };
//! // still good: no token request (also right after an operator restart)
//! assert!(matches!(plan_token(Some(&stored), "h", now, false), TokenPlan::Keep { .. }));
//! // the configuration changed: request a new one
//! assert!(matches!(plan_token(Some(&stored), "other", now, false), TokenPlan::Issue));
//! ```

use std::collections::BTreeMap;

use clientcreds::Token;
use clientcreds::token_secret::{self, TokenSecretError};
use jiff::Timestamp;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta, Time};
use kube::Resource;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::crd::{
    CredentialsStore, DeletionPolicy, OAuthClient, OAuthClientStatus, TokenSecretSpec, TokenStatus,
};

/// `app.kubernetes.io/managed-by` on every Secret the operator writes.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// The value of [`MANAGED_BY_LABEL`].
pub const MANAGER: &str = "clientcreds-operator";
/// Label naming the OAuthClient a Secret belongs to.
pub const OAUTHCLIENT_LABEL: &str = "clientcreds.dev/oauthclient";
/// Label telling what a Secret holds: `token` or `credentials`.
pub const ROLE_LABEL: &str = "clientcreds.dev/role";
pub use clientcreds::token_secret::{
    CONFIG_HASH_ANNOTATION, ISSUED_AT_ANNOTATION, REFRESH_ANSWERED_ANNOTATION,
    REFRESH_AT_ANNOTATION,
};
/// OAuthClient annotation: set or change its value to refresh all tokens now.
pub const REFRESH_REQUEST_ANNOTATION: &str = "clientcreds.dev/refresh";
/// Credentials Secret annotation: `pending` before the Azupay enable call, `enabled` after.
pub const ENABLE_STATE_ANNOTATION: &str = "clientcreds.dev/enable-state";

/// Keys of the operator's Secrets. A token Secret's keys are the middleware's
/// [`token_secret`] format, re-exported here.
pub mod keys {
    pub use clientcreds::token_secret::{ACCESS_TOKEN, EXPIRES_AT, SCOPE, TOKEN_TYPE};
    /// Credentials Secret: the OAuth 2.0 client id.
    pub const CLIENT_ID: &str = "client_id";
    /// Credentials Secret: the OAuth 2.0 client secret.
    pub const CLIENT_SECRET: &str = "client_secret";
    /// Credentials Secret: the token URL.
    pub const TOKEN_URL: &str = "token_url";
}

/// A token just received from the provider, already encoded in the [`token_secret`] format
/// (so a token whose expiry cannot be written is refused before anything is written).
#[derive(Clone)]
pub struct IssuedToken {
    data: Vec<(&'static str, Vec<u8>)>,
    /// When it was received.
    pub issued_at: Timestamp,
    /// When it expires.
    pub expires_at: Timestamp,
}

impl IssuedToken {
    /// Encodes `token`, received at `issued_at`, for the token Secret of `spec` (whose scopes
    /// are written when the provider did not say which it granted).
    pub fn new(
        token: &Token,
        spec: &TokenSecretSpec,
        issued_at: Timestamp,
    ) -> Result<IssuedToken, TokenSecretError> {
        let data = token_secret::encode(token, Some(&spec.scopes.join(" ")))?;
        let expires_at =
            Timestamp::try_from(token.expires_at()).map_err(|e| TokenSecretError::Time {
                key: keys::EXPIRES_AT,
                message: e.to_string(),
            })?;
        Ok(IssuedToken {
            data,
            issued_at,
            expires_at,
        })
    }
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("data", &"[redacted]")
            .field("issued_at", &self.issued_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// What the operator reads back from an existing token Secret.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredToken {
    /// The stored token's expiry.
    pub expires_at: Timestamp,
    /// When it was scheduled for refresh.
    pub refresh_at: Option<Timestamp>,
    /// The configuration digest it was requested with.
    pub config_hash: Option<String>,
    /// The refresh request (value of the OAuthClient's `clientcreds.dev/refresh`) in force when
    /// it was requested.
    pub refresh_answered: Option<String>,
}

/// Reads a token Secret written by the operator; `None` when it holds no usable token.
pub fn read_stored_token(secret: &Secret) -> Option<StoredToken> {
    let data = secret.data.as_ref()?;
    let token = token_secret::decode(|key| data.get(key).map(|v| v.0.as_slice())).ok()?;
    let expires_at = Timestamp::try_from(token.expires_at()).ok()?;
    let annotations = secret.metadata.annotations.as_ref();
    let annotation = |k: &str| annotations.and_then(|a| a.get(k));
    Some(StoredToken {
        expires_at,
        refresh_at: annotation(REFRESH_AT_ANNOTATION).and_then(|v| v.parse().ok()),
        config_hash: annotation(CONFIG_HASH_ANNOTATION).cloned(),
        refresh_answered: annotation(REFRESH_ANSWERED_ANNOTATION).cloned(),
    })
}

/// Whether a refresh request forces a new token for this token Secret: a request is set, the
/// status does not record it as acted on, and the stored token was not requested under it.
///
/// The last check makes a request answered exactly once even when the reconcile sees an
/// OAuthClient from a cache that does not have the status update yet (the token Secret is read
/// from the API server, so it is never stale).
///
/// ```
/// use clientcreds_operator::build::refresh_forced;
///
/// assert!(refresh_forced(Some("now"), None, None));
/// assert!(!refresh_forced(Some("now"), Some("now"), None)); // status: acted on
/// assert!(!refresh_forced(Some("now"), None, Some("now"))); // token already answers it
/// assert!(refresh_forced(Some("again"), Some("now"), Some("now")));
/// assert!(!refresh_forced(None, None, None));
/// ```
pub fn refresh_forced(
    request: Option<&str>,
    acted_on_in_status: Option<&str>,
    answered_by_stored_token: Option<&str>,
) -> bool {
    request.is_some() && request != acted_on_in_status && request != answered_by_stored_token
}

/// What to do about one token Secret.
#[derive(Clone, Debug, PartialEq)]
pub enum TokenPlan {
    /// The stored token is still good: keep it, come back at `refresh_at`.
    Keep {
        /// Its expiry.
        expires_at: Timestamp,
        /// When to refresh it.
        refresh_at: Timestamp,
    },
    /// Request a new token.
    Issue,
}

/// Decides whether a token Secret needs a new token: when there is none, it was requested with
/// another configuration, its refresh time has come, or a refresh was requested (`forced`).
pub fn plan_token(
    stored: Option<&StoredToken>,
    config_hash: &str,
    now: Timestamp,
    forced: bool,
) -> TokenPlan {
    let Some(stored) = stored else {
        return TokenPlan::Issue;
    };
    if forced || stored.config_hash.as_deref() != Some(config_hash) || stored.expires_at <= now {
        return TokenPlan::Issue;
    }
    let refresh_at = stored
        .refresh_at
        .unwrap_or(stored.expires_at)
        .min(stored.expires_at);
    if refresh_at <= now {
        TokenPlan::Issue
    } else {
        TokenPlan::Keep {
            expires_at: stored.expires_at,
            refresh_at,
        }
    }
}

/// A digest of everything a token depends on, so that a change (credentials rotated, scopes
/// edited, another token URL) gets a new token. It is a one-way SHA-256 digest, truncated.
pub fn config_hash(
    token_url: &str,
    client_id: &str,
    client_secret: &SecretString,
    scopes: &[String],
    audience: Option<&str>,
) -> String {
    let mut h = Sha256::new();
    for part in [
        token_url,
        client_id,
        client_secret.expose_secret(),
        audience.unwrap_or(""),
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    for s in scopes {
        h.update((s.len() as u64).to_be_bytes());
        h.update(s.as_bytes());
    }
    let digest = h.finalize();
    digest.iter().take(12).map(|b| format!("{b:02x}")).collect()
}

fn labels(oac: &OAuthClient, role: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED_BY_LABEL.to_owned(), MANAGER.to_owned()),
        (
            OAUTHCLIENT_LABEL.to_owned(),
            oac.metadata.name.clone().unwrap_or_default(),
        ),
        (ROLE_LABEL.to_owned(), role.to_owned()),
    ])
}

fn bytes(s: &str) -> ByteString {
    ByteString(s.as_bytes().to_vec())
}

/// The whole desired token Secret, applied in one server-side apply, owned (controller) by the
/// OAuthClient so that it goes with it.
pub fn token_secret(
    oac: &OAuthClient,
    spec: &TokenSecretSpec,
    token: &IssuedToken,
    refresh_at: Timestamp,
    config_hash: &str,
    refresh_request: Option<&str>,
) -> Secret {
    let mut annotations = BTreeMap::from([
        (REFRESH_AT_ANNOTATION.to_owned(), refresh_at.to_string()),
        (ISSUED_AT_ANNOTATION.to_owned(), token.issued_at.to_string()),
        (CONFIG_HASH_ANNOTATION.to_owned(), config_hash.to_owned()),
    ]);
    if let Some(request) = refresh_request {
        annotations.insert(REFRESH_ANSWERED_ANNOTATION.to_owned(), request.to_owned());
    }
    Secret {
        metadata: ObjectMeta {
            name: Some(spec.secret_name.clone()),
            namespace: oac.metadata.namespace.clone(),
            labels: Some(labels(oac, "token")),
            annotations: Some(annotations),
            owner_references: oac.controller_owner_ref(&()).map(|o| vec![o]),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".into()),
        data: Some(
            token
                .data
                .iter()
                .map(|(k, v)| ((*k).to_owned(), ByteString(v.clone())))
                .collect(),
        ),
        ..Secret::default()
    }
}

/// The credentials Secret's metadata: labels, and an owner reference only when its deletion
/// policy is `Delete` (then the garbage collector removes it with the OAuthClient; `Retain`
/// keeps it, so no finalizer is needed either way).
fn credentials_meta(oac: &OAuthClient, store: &CredentialsStore, state: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(store.secret_name.clone()),
        namespace: oac.metadata.namespace.clone(),
        labels: Some(labels(oac, "credentials")),
        annotations: Some(BTreeMap::from([(
            ENABLE_STATE_ANNOTATION.to_owned(),
            state.to_owned(),
        )])),
        owner_references: match store.deletion_policy {
            DeletionPolicy::Delete => oac.owner_ref(&()).map(|o| vec![o]),
            DeletionPolicy::Retain => None,
        },
        ..ObjectMeta::default()
    }
}

/// Step 1 of the enable-once flow: the credentials Secret with no data and the "enable pending"
/// mark, applied under its own field manager so it can never remove stored data.
pub fn credentials_pending_secret(oac: &OAuthClient, store: &CredentialsStore) -> Secret {
    Secret {
        metadata: credentials_meta(oac, store, "pending"),
        type_: Some("Opaque".into()),
        ..Secret::default()
    }
}

/// Step 2: the credentials Secret with the one-time client secret.
pub fn credentials_secret(
    oac: &OAuthClient,
    store: &CredentialsStore,
    client_id: &str,
    client_secret: &SecretString,
    token_url: &str,
) -> Secret {
    Secret {
        metadata: credentials_meta(oac, store, "enabled"),
        type_: Some("Opaque".into()),
        data: Some(BTreeMap::from([
            (keys::CLIENT_ID.to_owned(), bytes(client_id)),
            (
                keys::CLIENT_SECRET.to_owned(),
                bytes(client_secret.expose_secret()),
            ),
            (keys::TOKEN_URL.to_owned(), bytes(token_url)),
        ])),
        ..Secret::default()
    }
}

/// Reads a string key of a Secret.
pub fn secret_string(secret: &Secret, key: &str) -> Option<String> {
    let v = secret.data.as_ref()?.get(key)?;
    let s = String::from_utf8(v.0.clone()).ok()?;
    let s = s.trim().to_owned();
    (!s.is_empty()).then_some(s)
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
    /// Something is missing or failing; the reason (PascalCase) and a message.
    Failed {
        /// PascalCase reason.
        reason: String,
        /// What is wrong and what to do.
        message: String,
    },
}

/// The outcome for one token Secret in this reconcile.
#[derive(Clone, Debug, PartialEq)]
pub enum TokenOutcome {
    /// A token is stored and valid.
    Valid {
        /// Its expiry.
        expires_at: Timestamp,
        /// When it is refreshed.
        refresh_at: Timestamp,
    },
    /// The last request failed; a still-valid older token may remain.
    Failed {
        /// PascalCase reason.
        reason: String,
        /// Message (no secrets).
        message: String,
        /// The stored token's expiry, if one remains valid.
        expires_at: Option<Timestamp>,
        /// When the operator tries again.
        retry_at: Timestamp,
    },
    /// Not requested: PascalCase reason and message (scopes not allowed, no credentials, …).
    NotIssued {
        /// PascalCase reason.
        reason: String,
        /// Message.
        message: String,
    },
}

/// Everything the status is built from.
#[derive(Clone, Debug, Default)]
pub struct StatusInput {
    /// The OAuthClient's generation.
    pub generation: Option<i64>,
    /// Validation problems (the object waits for a change).
    pub invalid: Option<Vec<String>>,
    /// Credentials state (None when validation failed).
    pub credentials: Option<CredentialsState>,
    /// Per token Secret: its spec and outcome.
    pub tokens: Vec<(TokenSecretSpec, TokenOutcome)>,
    /// The OAuth client id in use.
    pub oauth2_client_id: Option<String>,
    /// The token URL in use.
    pub token_url: Option<String>,
    /// Azupay allowed scopes.
    pub allowed_scopes: Option<Vec<String>>,
    /// Azupay TTL.
    pub ttl_seconds: Option<i64>,
    /// The refresh request acted on.
    pub last_refresh_request: Option<String>,
}

fn condition(
    prev: &[Condition],
    type_: &str,
    ok: bool,
    reason: &str,
    message: String,
    generation: Option<i64>,
    now: Timestamp,
) -> Condition {
    let status = if ok { "True" } else { "False" };
    let last_transition_time = prev
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or(Time(now));
    Condition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        message,
        observed_generation: generation,
        last_transition_time,
    }
}

/// Builds the status: `CredentialsStored`, `TokensIssued` and `Ready` conditions (keeping
/// `lastTransitionTime` when a condition's status did not change), per-token times, and the
/// earliest expiry.
pub fn build_status(
    prev: Option<&OAuthClientStatus>,
    input: StatusInput,
    now: Timestamp,
) -> OAuthClientStatus {
    let prev_conditions = prev.map(|p| p.conditions.as_slice()).unwrap_or_default();
    let g = input.generation;
    let (cred_ok, cred_reason, cred_message) = match (&input.invalid, &input.credentials) {
        (Some(problems), _) => (false, "InvalidSpec".to_owned(), problems.join("; ")),
        (None, None) => (false, "Unknown".to_owned(), "not reconciled yet".to_owned()),
        (None, Some(c)) => match c {
            CredentialsState::Stored => (
                true,
                "Stored".to_owned(),
                "the OAuth 2.0 client secret is stored in the credentials Secret".to_owned(),
            ),
            CredentialsState::Referenced => (
                true,
                "Referenced".to_owned(),
                "the referenced Secret holds a client id and secret".to_owned(),
            ),
            CredentialsState::EnablePending => (
                false,
                "EnablePending".to_owned(),
                "OAuth 2.0 is being enabled at the provider; the client secret is not stored yet"
                    .to_owned(),
            ),
            CredentialsState::Lost(m) => (false, "CredentialsLost".to_owned(), m.clone()),
            CredentialsState::Failed { reason, message } => {
                (false, reason.clone(), message.clone())
            }
        },
    };
    let mut token_statuses = Vec::new();
    let mut failing: Vec<String> = Vec::new();
    let mut failing_reason: Option<String> = None;
    let mut expiries = Vec::new();
    for (spec, outcome) in &input.tokens {
        let mut st = TokenStatus {
            secret_name: spec.secret_name.clone(),
            scopes: spec.scopes.clone(),
            ..TokenStatus::default()
        };
        match outcome {
            TokenOutcome::Valid {
                expires_at,
                refresh_at,
            } => {
                st.expires_at = Some(expires_at.to_string());
                st.refresh_at = Some(refresh_at.to_string());
                expiries.push(*expires_at);
            }
            TokenOutcome::Failed {
                reason,
                message,
                expires_at,
                retry_at,
            } => {
                st.expires_at = expires_at.map(|e| e.to_string());
                st.refresh_at = Some(retry_at.to_string());
                st.last_error = Some(message.clone());
                if let Some(e) = expires_at.filter(|e| *e > now) {
                    expiries.push(e);
                } else {
                    failing.push(format!("{}: {message}", spec.secret_name));
                    failing_reason.get_or_insert(reason.clone());
                }
            }
            TokenOutcome::NotIssued { reason, message } => {
                st.last_error = Some(message.clone());
                failing.push(format!("{}: {message}", spec.secret_name));
                failing_reason.get_or_insert(reason.clone());
            }
        }
        token_statuses.push(st);
    }
    let (tok_ok, tok_reason, tok_message) = if input.invalid.is_some() {
        (
            false,
            "InvalidSpec".to_owned(),
            "the spec is invalid; see CredentialsStored".to_owned(),
        )
    } else if input.tokens.is_empty() {
        (
            false,
            "WaitingForCredentials".to_owned(),
            "no token requested yet".to_owned(),
        )
    } else if let Some(reason) = failing_reason {
        (false, reason, failing.join("; "))
    } else {
        (
            true,
            "Issued".to_owned(),
            format!("{} token Secret(s) hold a valid token", input.tokens.len()),
        )
    };
    let ready = cred_ok && tok_ok;
    let (ready_reason, ready_message) = if ready {
        (
            "Ready".to_owned(),
            "credentials stored and every token Secret is valid".to_owned(),
        )
    } else if !cred_ok {
        (cred_reason.clone(), cred_message.clone())
    } else {
        (tok_reason.clone(), tok_message.clone())
    };
    let conditions = vec![
        condition(
            prev_conditions,
            "Ready",
            ready,
            &ready_reason,
            ready_message,
            g,
            now,
        ),
        condition(
            prev_conditions,
            "CredentialsStored",
            cred_ok,
            &cred_reason,
            cred_message,
            g,
            now,
        ),
        condition(
            prev_conditions,
            "TokensIssued",
            tok_ok,
            &tok_reason,
            tok_message,
            g,
            now,
        ),
    ];
    OAuthClientStatus {
        conditions,
        observed_generation: g,
        oauth2_client_id: input.oauth2_client_id,
        token_url: input.token_url,
        allowed_scopes: input.allowed_scopes,
        ttl_seconds: input.ttl_seconds,
        tokens: token_statuses,
        next_expiry: expiries.into_iter().min().map(|e| e.to_string()),
        last_refresh_request: input.last_refresh_request,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{OAuthClientSpec, ProviderKind};
    use jiff::SignedDuration;

    fn oac() -> OAuthClient {
        let mut o = OAuthClient::new(
            "payments",
            OAuthClientSpec {
                provider: ProviderKind::Payu,
                azupay: None,
                credentials_secret_ref: None,
                environment: None,
                token_url: None,
                audience: None,
                credentials: None,
                tokens: vec![],
                refresh: None,
            },
        );
        o.metadata.namespace = Some("shop".into());
        o.metadata.uid = Some("uid-1".into());
        o.metadata.generation = Some(3);
        o
    }

    fn now() -> Timestamp {
        "2026-01-01T00:00:00Z".parse().unwrap()
    }

    fn tok_with(scope: Option<&str>) -> IssuedToken {
        let expires = now() + SignedDuration::from_secs(900);
        let token = Token::with_expiry(
            "tok-123",
            "Bearer",
            std::time::SystemTime::from(expires),
            scope.map(str::to_owned),
        )
        .unwrap();
        IssuedToken::new(&token, &spec_ab(), now()).unwrap()
    }

    fn tok() -> IssuedToken {
        tok_with(None)
    }

    fn spec_ab() -> TokenSecretSpec {
        TokenSecretSpec {
            secret_name: "tok".into(),
            scopes: vec!["a".into(), "b".into()],
        }
    }

    #[test]
    fn token_secret_has_the_four_keys_owner_and_labels() {
        let spec = TokenSecretSpec {
            secret_name: "tok".into(),
            scopes: vec!["a".into(), "b".into()],
        };
        let refresh = now() + SignedDuration::from_secs(450);
        let s = token_secret(&oac(), &spec, &tok(), refresh, "h1", Some("now"));
        let data = s.data.as_ref().unwrap();
        assert_eq!(data["access_token"].0, b"tok-123");
        assert_eq!(data["token_type"].0, b"Bearer");
        assert_eq!(data["expires_at"].0, b"2026-01-01T00:15:00Z");
        assert_eq!(data["scope"].0, b"a b");
        assert_eq!(s.metadata.namespace.as_deref(), Some("shop"));
        let owner = &s.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(owner.kind, "OAuthClient");
        assert_eq!(owner.uid, "uid-1");
        assert_eq!(owner.controller, Some(true));
        let labels = s.metadata.labels.as_ref().unwrap();
        assert_eq!(labels[OAUTHCLIENT_LABEL], "payments");
        assert_eq!(labels[MANAGED_BY_LABEL], MANAGER);
        // it reads back as a stored token
        let stored = read_stored_token(&s).unwrap();
        assert_eq!(stored.expires_at, tok().expires_at);
        assert_eq!(stored.refresh_at, Some(refresh));
        assert_eq!(stored.config_hash.as_deref(), Some("h1"));
        assert_eq!(stored.refresh_answered.as_deref(), Some("now"));
        // without a refresh request, no answered mark
        let plain = token_secret(&oac(), &spec, &tok(), refresh, "h1", None);
        assert_eq!(read_stored_token(&plain).unwrap().refresh_answered, None);
        // the granted scope wins over the requested one
        let granted = tok_with(Some("a"));
        let s = token_secret(&oac(), &spec, &granted, refresh, "h1", None);
        assert_eq!(s.data.unwrap()["scope"].0, b"a");
        assert!(!format!("{granted:?}").contains("tok-123"));
    }

    #[test]
    fn credentials_secret_is_owned_only_with_delete_policy() {
        let mut store = CredentialsStore {
            secret_name: "creds".into(),
            deletion_policy: DeletionPolicy::Retain,
        };
        let s = credentials_pending_secret(&oac(), &store);
        assert!(s.metadata.owner_references.is_none());
        assert!(s.data.is_none());
        assert_eq!(
            s.metadata.annotations.unwrap()[ENABLE_STATE_ANNOTATION],
            "pending"
        );
        store.deletion_policy = DeletionPolicy::Delete;
        let s = credentials_secret(
            &oac(),
            &store,
            "cid",
            &SecretString::from("sec"),
            "https://t/",
        );
        assert_eq!(s.metadata.owner_references.unwrap()[0].controller, None);
        assert_eq!(
            secret_string(
                &Secret {
                    data: s.data.clone(),
                    ..Secret::default()
                },
                "client_secret"
            )
            .as_deref(),
            Some("sec")
        );
        assert_eq!(
            s.metadata.annotations.unwrap()[ENABLE_STATE_ANNOTATION],
            "enabled"
        );
    }

    #[test]
    fn unusable_secrets_are_not_stored_tokens() {
        assert_eq!(read_stored_token(&Secret::default()), None);
        let mut s = token_secret(
            &oac(),
            &TokenSecretSpec {
                secret_name: "t".into(),
                scopes: vec![],
            },
            &tok(),
            now(),
            "h",
            None,
        );
        s.data
            .as_mut()
            .unwrap()
            .insert("expires_at".into(), ByteString(b"soon".to_vec()));
        assert_eq!(read_stored_token(&s), None);
    }

    #[test]
    fn plan_keeps_good_tokens_and_issues_otherwise() {
        let n = now();
        let stored = StoredToken {
            expires_at: n + SignedDuration::from_secs(100),
            refresh_at: Some(n + SignedDuration::from_secs(50)),
            config_hash: Some("h".into()),
            refresh_answered: None,
        };
        assert_eq!(
            plan_token(Some(&stored), "h", n, false),
            TokenPlan::Keep {
                expires_at: stored.expires_at,
                refresh_at: n + SignedDuration::from_secs(50)
            }
        );
        assert_eq!(plan_token(Some(&stored), "h", n, true), TokenPlan::Issue);
        assert_eq!(plan_token(Some(&stored), "x", n, false), TokenPlan::Issue);
        assert_eq!(
            plan_token(Some(&stored), "h", n + SignedDuration::from_secs(50), false),
            TokenPlan::Issue
        );
        assert_eq!(plan_token(None, "h", n, false), TokenPlan::Issue);
        let no_refresh = StoredToken {
            refresh_at: None,
            ..stored.clone()
        };
        assert_eq!(
            plan_token(Some(&no_refresh), "h", n, false),
            TokenPlan::Keep {
                expires_at: stored.expires_at,
                refresh_at: stored.expires_at
            }
        );
    }

    #[test]
    fn config_hash_changes_with_any_input_and_hides_the_secret() {
        let s = SecretString::from("very-secret");
        let base = config_hash("u", "id", &s, &["a".into()], None);
        assert_eq!(base.len(), 24);
        assert_ne!(
            base,
            config_hash("u", "id", &SecretString::from("other"), &["a".into()], None)
        );
        assert_ne!(base, config_hash("u", "id", &s, &["b".into()], None));
        assert_ne!(base, config_hash("u", "id", &s, &["a".into()], Some("aud")));
        assert_ne!(base, config_hash("v", "id", &s, &["a".into()], None));
        assert!(!base.contains("secret"));
    }

    fn spec(name: &str) -> TokenSecretSpec {
        TokenSecretSpec {
            secret_name: name.into(),
            scopes: vec![],
        }
    }

    #[test]
    fn status_ready_when_credentials_and_all_tokens_are_good() {
        let n = now();
        let e = n + SignedDuration::from_secs(900);
        let input = StatusInput {
            generation: Some(3),
            credentials: Some(CredentialsState::Referenced),
            tokens: vec![
                (
                    spec("a"),
                    TokenOutcome::Valid {
                        expires_at: e,
                        refresh_at: n + SignedDuration::from_secs(450),
                    },
                ),
                (
                    spec("b"),
                    TokenOutcome::Valid {
                        expires_at: e - SignedDuration::from_secs(100),
                        refresh_at: n,
                    },
                ),
            ],
            ..StatusInput::default()
        };
        let st = build_status(None, input, n);
        let by = |t: &str| st.conditions.iter().find(|c| c.type_ == t).unwrap().clone();
        assert_eq!(by("Ready").status, "True");
        assert_eq!(by("Ready").observed_generation, Some(3));
        assert_eq!(by("CredentialsStored").reason, "Referenced");
        assert_eq!(by("TokensIssued").reason, "Issued");
        assert_eq!(st.observed_generation, Some(3));
        assert_eq!(st.next_expiry.as_deref(), Some("2026-01-01T00:13:20Z"));
        assert_eq!(
            st.tokens[0].expires_at.as_deref(),
            Some("2026-01-01T00:15:00Z")
        );
        assert_eq!(
            st.tokens[0].refresh_at.as_deref(),
            Some("2026-01-01T00:07:30Z")
        );

        // lastTransitionTime is kept while the status does not change
        let later = n + SignedDuration::from_secs(60);
        let again = build_status(
            Some(&st),
            StatusInput {
                generation: Some(3),
                credentials: Some(CredentialsState::Referenced),
                tokens: vec![(
                    spec("a"),
                    TokenOutcome::Valid {
                        expires_at: e,
                        refresh_at: e,
                    },
                )],
                ..StatusInput::default()
            },
            later,
        );
        assert_eq!(again.conditions[0].last_transition_time, Time(n));
    }

    #[test]
    fn status_reports_failures_with_reasons() {
        let n = now();
        let st = build_status(
            None,
            StatusInput {
                generation: Some(1),
                credentials: Some(CredentialsState::Stored),
                tokens: vec![
                    (
                        spec("a"),
                        TokenOutcome::NotIssued {
                            reason: "ScopesNotAllowed".into(),
                            message: "RestAPI/POST:x is not allowed".into(),
                        },
                    ),
                    (
                        spec("b"),
                        TokenOutcome::Failed {
                            reason: "TokenRequestFailed".into(),
                            message: "server_error".into(),
                            expires_at: Some(n + SignedDuration::from_secs(10)),
                            retry_at: n + SignedDuration::from_secs(5),
                        },
                    ),
                ],
                ..StatusInput::default()
            },
            n,
        );
        let by = |t: &str| st.conditions.iter().find(|c| c.type_ == t).unwrap().clone();
        assert_eq!(by("Ready").status, "False");
        assert_eq!(by("Ready").reason, "ScopesNotAllowed");
        assert_eq!(by("TokensIssued").reason, "ScopesNotAllowed");
        assert!(by("TokensIssued").message.contains("RestAPI/POST:x"));
        // b still has a valid token: not failing yet, but its error and retry time are shown
        assert_eq!(st.tokens[1].last_error.as_deref(), Some("server_error"));
        assert_eq!(
            st.tokens[1].refresh_at.as_deref(),
            Some("2026-01-01T00:00:05Z")
        );

        let lost = build_status(
            None,
            StatusInput {
                credentials: Some(CredentialsState::Lost("contact Azupay".into())),
                ..StatusInput::default()
            },
            n,
        );
        assert_eq!(lost.conditions[1].reason, "CredentialsLost");
        assert_eq!(lost.conditions[0].reason, "CredentialsLost");

        let invalid = build_status(
            None,
            StatusInput {
                invalid: Some(vec!["bad field".into()]),
                ..StatusInput::default()
            },
            n,
        );
        assert_eq!(invalid.conditions[0].reason, "InvalidSpec");
        assert!(invalid.conditions[0].message.contains("bad field"));
    }
}
