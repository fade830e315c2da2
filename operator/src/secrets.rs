//! The Secrets the operator writes: labels, the Azupay credentials Secret, and the token Secret
//! (in the middleware's [`token_secret`] format). Pure functions of the OAuthClient and a token.

use std::collections::BTreeMap;

use clientcreds::Token;
use clientcreds::token_secret::{self, TokenSecretError};
use jiff::Timestamp;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use secrecy::{ExposeSecret, SecretString};

use crate::crd::{CredentialsStore, DeletionPolicy, OAuthClient, TokenSecretSpec};

/// The field manager of everything the operator applies.
pub const FIELD_MANAGER: &str = "clientcreds-operator";
/// The field manager of the "enable pending" mark (kept apart so it can never remove data).
pub const MARK_FIELD_MANAGER: &str = "clientcreds-operator-enable-mark";

/// `app.kubernetes.io/managed-by` on every Secret the operator writes.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// The value of [`MANAGED_BY_LABEL`].
pub const MANAGER: &str = "clientcreds-operator";
/// Label naming the OAuthClient a Secret belongs to.
pub const OAUTHCLIENT_LABEL: &str = "clientcreds.dev/oauthclient";
/// The [`ROLE_LABEL`] value of a token Secret.
pub const TOKEN_ROLE: &str = "token";
/// The [`ROLE_LABEL`] value of an Azupay credentials Secret.
pub const CREDENTIALS_ROLE: &str = "credentials";
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

/// Credentials Secret annotation: the operator instance holding the enable claim (only the
/// holder may call Azupay's enable endpoint).
pub const ENABLE_HOLDER_ANNOTATION: &str = "clientcreds.dev/enable-holder";
/// Credentials Secret annotation: when the enable claim was taken (RFC 3339).
pub const ENABLE_CLAIMED_AT_ANNOTATION: &str = "clientcreds.dev/enable-claimed-at";

/// Credentials Secret label: which Azupay client (endpoint and `clientId`,
/// [`azupay_client_key`]) it is for, so that a second OAuthClient naming the same client finds
/// the first with one label-selector list.
pub const AZUPAY_CLIENT_LABEL: &str = "clientcreds.dev/azupay-client";

/// The [`AZUPAY_CLIENT_LABEL`] value of an Azupay client: a digest of its endpoint (without a
/// trailing `/`) and `clientId` (32 hex digits, a valid label value whatever the id holds).
pub fn azupay_client_key(endpoint: &str, client_id: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(endpoint.trim_end_matches('/').as_bytes());
    h.update([0]);
    h.update(client_id.as_bytes());
    h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

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
            labels: Some(labels(oac, TOKEN_ROLE)),
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

/// The credentials Secret's metadata: labels, and an owner reference only when its deletion
/// policy is `Delete` (then the garbage collector removes it with the OAuthClient; `Retain`
/// keeps it, so no finalizer is needed either way).
fn credentials_meta(oac: &OAuthClient, store: &CredentialsStore, state: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(store.secret_name.clone()),
        namespace: oac.metadata.namespace.clone(),
        labels: Some({
            let mut l = labels(oac, CREDENTIALS_ROLE);
            if let Some(az) = &oac.spec.azupay {
                l.insert(
                    AZUPAY_CLIENT_LABEL.to_owned(),
                    azupay_client_key(&az.endpoint, &az.client_id),
                );
            }
            l
        }),
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

/// Step 1 as a lock when no credentials Secret exists: the pending Secret
/// ([`credentials_pending_secret`]) claimed by `holder` at `at`, to be *created* (never
/// applied), so that of two writers only one succeeds and the other gets `AlreadyExists`.
pub fn credentials_claim_secret(
    oac: &OAuthClient,
    store: &CredentialsStore,
    holder: &str,
    at: Timestamp,
) -> Secret {
    let mut secret = credentials_pending_secret(oac, store);
    secret
        .metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .extend(claim_annotations(holder, at));
    secret
}

fn claim_annotations(holder: &str, at: Timestamp) -> [(String, String); 3] {
    [
        (ENABLE_STATE_ANNOTATION.to_owned(), "pending".to_owned()),
        (ENABLE_HOLDER_ANNOTATION.to_owned(), holder.to_owned()),
        (ENABLE_CLAIMED_AT_ANNOTATION.to_owned(), at.to_string()),
    ]
}

/// Step 1 as a lock when the credentials Secret exists: a JSON merge patch that sets the
/// pending mark and the claim (`holder`, `at`) and carries `resource_version` as a
/// precondition, so that it fails with `409 Conflict` when anyone wrote the Secret since it was
/// read. It touches annotations only, so it can never remove stored data.
/// `azupay_client` is the Secret's [`AZUPAY_CLIENT_LABEL`] value ([`azupay_client_key`]), set
/// too (a Secret marked before the label existed gets it with its claim).
pub fn claim_patch(
    resource_version: &str,
    holder: &str,
    at: Timestamp,
    azupay_client: &str,
) -> serde_json::Value {
    let annotations: serde_json::Map<String, serde_json::Value> = claim_annotations(holder, at)
        .into_iter()
        .map(|(k, v)| (k, serde_json::Value::String(v)))
        .collect();
    serde_json::json!({
        "metadata": {
            "resourceVersion": resource_version,
            "labels": {AZUPAY_CLIENT_LABEL: azupay_client},
            "annotations": annotations,
        }
    })
}

/// The enable claim recorded on a credentials Secret: its holder and when it was taken (`None`
/// when missing or unreadable).
pub fn enable_claim(secret: &Secret) -> (Option<&str>, Option<Timestamp>) {
    let annotations = secret.metadata.annotations.as_ref();
    let get = |key: &str| annotations.and_then(|a| a.get(key)).map(String::as_str);
    (
        get(ENABLE_HOLDER_ANNOTATION),
        get(ENABLE_CLAIMED_AT_ANNOTATION).and_then(|t| t.parse().ok()),
    )
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

/// Whether `secret` is one the operator made for `oac` in `role` ([`TOKEN_ROLE`] or
/// [`CREDENTIALS_ROLE`]): it carries the operator's labels ([`MANAGED_BY_LABEL`],
/// [`OAUTHCLIENT_LABEL`] naming `oac`, [`ROLE_LABEL`]) and no owner but `oac`. The operator
/// writes, marks or deletes only such Secrets; any other Secret of the name is a
/// `SecretConflict`, never adopted (so never given an owner reference or garbage-collected).
pub fn is_managed(secret: &Secret, oac: &OAuthClient, role: &str) -> bool {
    let labels = secret.metadata.labels.as_ref();
    let label = |key: &str| labels.and_then(|l| l.get(key)).map(String::as_str);
    let labelled = label(MANAGED_BY_LABEL) == Some(MANAGER)
        && label(OAUTHCLIENT_LABEL) == oac.metadata.name.as_deref()
        && label(ROLE_LABEL) == Some(role);
    let owners = secret
        .metadata
        .owner_references
        .as_deref()
        .unwrap_or_default();
    let only_oac = owners
        .iter()
        .all(|o| oac.metadata.uid.is_some() && Some(o.uid.as_str()) == oac.metadata.uid.as_deref());
    labelled && only_oac
}

/// The message of the `SecretConflict` condition and event about `secret_name`, named by
/// `field`.
pub fn conflict_message(secret_name: &str, field: &str, oac_name: &str) -> String {
    format!(
        "Secret {secret_name} ({field}) exists but was not created by the operator for this \
         OAuthClient (labels {MANAGED_BY_LABEL}={MANAGER}, {OAUTHCLIENT_LABEL}={oac_name}): it is \
         never written, marked or adopted; pick another {field} or delete that Secret"
    )
}

/// Reads a string key of a Secret.
pub fn secret_string(secret: &Secret, key: &str) -> Option<String> {
    let v = secret.data.as_ref()?.get(key)?;
    let s = String::from_utf8(v.0.clone()).ok()?;
    let s = s.trim().to_owned();
    (!s.is_empty()).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::OAuthClientSpec;
    use crate::crd::ProviderKind;
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
    fn only_the_operators_own_secrets_are_managed() {
        let o = oac();
        let store = CredentialsStore {
            secret_name: "creds".into(),
            deletion_policy: DeletionPolicy::Delete,
        };
        let ours = credentials_pending_secret(&o, &store);
        assert!(is_managed(&ours, &o, CREDENTIALS_ROLE));
        assert!(!is_managed(&ours, &o, TOKEN_ROLE), "another role");
        // without any owner (deletionPolicy Retain) it is still ours
        let mut retained = ours.clone();
        retained.metadata.owner_references = None;
        assert!(is_managed(&retained, &o, CREDENTIALS_ROLE));
        // a Secret someone else made: no labels
        let foreign = Secret {
            metadata: ObjectMeta {
                name: Some("creds".into()),
                ..ObjectMeta::default()
            },
            ..Secret::default()
        };
        assert!(!is_managed(&foreign, &o, CREDENTIALS_ROLE));
        // our labels copied onto it, but another owner (or another OAuthClient's name)
        let mut other_owner = ours.clone();
        other_owner.metadata.owner_references.as_mut().unwrap()[0].uid = "uid-other".into();
        assert!(!is_managed(&other_owner, &o, CREDENTIALS_ROLE));
        let mut other_name = ours.clone();
        other_name
            .metadata
            .labels
            .as_mut()
            .unwrap()
            .insert(OAUTHCLIENT_LABEL.into(), "other".into());
        assert!(!is_managed(&other_name, &o, CREDENTIALS_ROLE));
        let m = conflict_message("creds", "spec.credentials.secretName", "payments");
        assert!(
            m.contains("creds") && m.contains("spec.credentials.secretName"),
            "{m}"
        );
    }
}
