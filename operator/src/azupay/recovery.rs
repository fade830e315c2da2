//! The recovery Secret: where a received one-time secret goes when its credentials Secret
//! cannot be written.
//!
//! Azupay returns the OAuth 2.0 client secret once. When the write of the credentials Secret in
//! the OAuthClient's namespace is refused (an admission policy, a quota, a webhook, the API
//! server), the operator creates (create-only) a recovery Secret in **its own namespace** at
//! once, named after the OAuthClient's uid ([`recovery_secret_name`]), labelled
//! `app.kubernetes.io/managed-by=clientcreds-operator` and `clientcreds.dev/role=recovery`. It
//! holds `client_id`, `client_secret` and `token_url` (as the credentials Secret would) and, in
//! annotations, which OAuthClient (namespace, name, uid) and Azupay client (`clientId`,
//! endpoint) it belongs to — nothing secret in its name, labels or annotations.
//!
//! Every reconcile of that OAuthClient that finds no stored secret looks for its recovery
//! Secret before anything else (before the claim, the details call or `CredentialsLost`): the
//! secret is taken from it and written to the credentials Secret, and the recovery Secret is
//! deleted only after that write succeeded. A process killed at any point in between leaves
//! the secret in one of the two Secrets.
//!
//! ```
//! use clientcreds_operator::azupay::recovery::recovery_secret_name;
//!
//! assert_eq!(
//!     recovery_secret_name("0b7e4c2a-1d7f-4a43-9f43-3f5d1a0b2c3d"),
//!     "clientcreds-recovery-0b7e4c2a-1d7f-4a43-9f43-3f5d1a0b2c3d"
//! );
//! ```

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;
use secrecy::{ExposeSecret, SecretString};

use super::stored::{StoredCredentials, stored_credentials};
use crate::crd::OAuthClient;
use crate::secrets::{MANAGED_BY_LABEL, MANAGER, ROLE_LABEL, keys};

/// The [`ROLE_LABEL`] value of a recovery Secret.
pub const RECOVERY_ROLE: &str = "recovery";
/// Recovery Secret annotation: the OAuthClient's namespace.
pub const OAUTHCLIENT_NAMESPACE_ANNOTATION: &str = "clientcreds.dev/oauthclient-namespace";
/// Recovery Secret annotation: the OAuthClient's name.
pub const OAUTHCLIENT_NAME_ANNOTATION: &str = "clientcreds.dev/oauthclient-name";
/// Recovery Secret annotation: the OAuthClient's uid (its name is made from it too).
pub const OAUTHCLIENT_UID_ANNOTATION: &str = "clientcreds.dev/oauthclient-uid";
/// Recovery Secret annotation: the credentials Secret the secret is to be written to.
pub const CREDENTIALS_SECRET_ANNOTATION: &str = "clientcreds.dev/credentials-secret";
/// Recovery Secret annotation: the Azupay `clientId` (`spec.azupay.clientId`).
pub const AZUPAY_CLIENT_ID_ANNOTATION: &str = "clientcreds.dev/azupay-client-id";
/// Recovery Secret annotation: the Azupay endpoint (`spec.azupay.endpoint`).
pub const AZUPAY_ENDPOINT_ANNOTATION: &str = "clientcreds.dev/azupay-endpoint";

/// The name of the recovery Secret of the OAuthClient with `uid` (in the operator's namespace).
pub fn recovery_secret_name(uid: &str) -> String {
    format!("clientcreds-recovery-{uid}")
}

/// The recovery Secret of `oac` in `namespace` (the operator's), holding the secret Azupay
/// returned for it; `None` when `oac` has no uid or no Azupay and credentials spec.
pub fn recovery_secret(
    oac: &OAuthClient,
    namespace: &str,
    client_id: &str,
    client_secret: &SecretString,
    token_url: &str,
) -> Option<Secret> {
    let uid = oac.uid()?;
    let (az, store) = (oac.spec.azupay.as_ref()?, oac.spec.credentials.as_ref()?);
    let annotations = BTreeMap::from([
        (
            OAUTHCLIENT_NAMESPACE_ANNOTATION.to_owned(),
            oac.namespace().unwrap_or_default(),
        ),
        (OAUTHCLIENT_NAME_ANNOTATION.to_owned(), oac.name_any()),
        (OAUTHCLIENT_UID_ANNOTATION.to_owned(), uid.clone()),
        (
            CREDENTIALS_SECRET_ANNOTATION.to_owned(),
            store.secret_name.clone(),
        ),
        (AZUPAY_CLIENT_ID_ANNOTATION.to_owned(), az.client_id.clone()),
        (AZUPAY_ENDPOINT_ANNOTATION.to_owned(), az.endpoint.clone()),
    ]);
    let bytes = |s: &str| ByteString(s.as_bytes().to_vec());
    Some(Secret {
        metadata: ObjectMeta {
            name: Some(recovery_secret_name(&uid)),
            namespace: Some(namespace.to_owned()),
            labels: Some(BTreeMap::from([
                (MANAGED_BY_LABEL.to_owned(), MANAGER.to_owned()),
                (ROLE_LABEL.to_owned(), RECOVERY_ROLE.to_owned()),
            ])),
            annotations: Some(annotations),
            ..ObjectMeta::default()
        },
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
    })
}

/// The credentials a recovery Secret holds for `oac`: `None` unless it is the operator's
/// recovery Secret (its labels) for this very OAuthClient (its uid annotation) and holds a
/// client id and secret.
pub fn recovered_credentials(secret: &Secret, oac: &OAuthClient) -> Option<StoredCredentials> {
    let labels = secret.metadata.labels.as_ref()?;
    if labels.get(MANAGED_BY_LABEL).map(String::as_str) != Some(MANAGER)
        || labels.get(ROLE_LABEL).map(String::as_str) != Some(RECOVERY_ROLE)
    {
        return None;
    }
    let uid = secret
        .metadata
        .annotations
        .as_ref()?
        .get(OAUTHCLIENT_UID_ANNOTATION)?;
    if oac.uid().as_deref() != Some(uid.as_str()) {
        return None;
    }
    stored_credentials(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oac(uid: &str) -> OAuthClient {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "clientcreds.dev/v1alpha1",
            "kind": "OAuthClient",
            "metadata": {"name": "payments", "namespace": "shop", "uid": uid},
            "spec": {"provider": "azupay",
                     "azupay": {"endpoint": "https://api-uat.azupay.com.au/v1", "clientId": "BIZ",
                                "apiKeySecretRef": {"name": "k", "key": "apiKey"}},
                     "credentials": {"secretName": "creds"},
                     "tokens": [{"secretName": "t"}]}
        }))
        .unwrap()
    }

    #[test]
    fn the_recovery_secret_identifies_its_oauthclient_and_hides_nothing_else() {
        let o = oac("u-1");
        let secret = SecretString::from("one-time-s3cret");
        let r = recovery_secret(&o, "ops", "CID", &secret, "https://t/").unwrap();
        assert_eq!(r.metadata.name.as_deref(), Some("clientcreds-recovery-u-1"));
        assert_eq!(r.metadata.namespace.as_deref(), Some("ops"));
        let a = r.metadata.annotations.as_ref().unwrap();
        assert_eq!(a[OAUTHCLIENT_NAMESPACE_ANNOTATION], "shop");
        assert_eq!(a[OAUTHCLIENT_NAME_ANNOTATION], "payments");
        assert_eq!(a[OAUTHCLIENT_UID_ANNOTATION], "u-1");
        assert_eq!(a[AZUPAY_CLIENT_ID_ANNOTATION], "BIZ");
        assert_eq!(a[CREDENTIALS_SECRET_ANNOTATION], "creds");
        // the secret only in data: not in the name, labels or annotations
        let meta = serde_json::to_string(&r.metadata).unwrap();
        assert!(!meta.contains("one-time-s3cret"), "{meta}");
        // read back for the same OAuthClient only
        let c = recovered_credentials(&r, &o).unwrap();
        assert_eq!(c.client_id, "CID");
        assert_eq!(c.client_secret.expose_secret(), "one-time-s3cret");
        assert_eq!(c.token_url.as_deref(), Some("https://t/"));
        assert!(recovered_credentials(&r, &oac("u-2")).is_none());
        // a Secret of that name that is not a recovery Secret is not read
        let mut foreign = r.clone();
        foreign.metadata.labels = None;
        assert!(recovered_credentials(&foreign, &o).is_none());
        // no uid (not created yet): no recovery Secret
        let mut no_uid = o.clone();
        no_uid.metadata.uid = None;
        assert!(recovery_secret(&no_uid, "ops", "CID", &secret, "https://t/").is_none());
    }
}
