//! Phase 1, dereference: everything the reconcile reads — the referenced credentials Secret
//! (Azupay's credentials come from the enable-once flow, [`crate::azupay::enable`]), the token
//! Secrets of the spec, and the token Secrets the OAuthClient owns.

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use secrecy::SecretString;

use crate::context::{ObjectState, get_secret};
use crate::crd::{OAuthClient, OAuthClientSpec};
use crate::credentials::{CredentialsState, Outcome, Resolved};
use crate::secrets::{OAUTHCLIENT_LABEL, ROLE_LABEL, StoredToken, secret_string};
use crate::{Error, Reason};

fn failed(reason: Reason, message: String) -> Outcome {
    Outcome::NotReady(CredentialsState::Failed { reason, message }, None)
}

/// The client id and secret of a provider other than Azupay, from `spec.credentialsSecretRef`.
pub async fn referenced_credentials(
    spec: &OAuthClientSpec,
    secrets: &Api<Secret>,
) -> Result<Outcome, Error> {
    let Some(r) = &spec.credentials_secret_ref else {
        return Ok(failed(
            Reason::InvalidSpec,
            "spec.credentialsSecretRef is missing".into(),
        ));
    };
    let Some(secret) = get_secret(secrets, &r.name).await? else {
        return Ok(failed(
            Reason::SecretMissing,
            format!(
                "Secret {} (spec.credentialsSecretRef.name) does not exist: create it",
                r.name
            ),
        ));
    };
    let (Some(id), Some(sec)) = (
        secret_string(&secret, r.client_id_key()),
        secret_string(&secret, r.client_secret_key()),
    ) else {
        return Ok(failed(
            Reason::SecretIncomplete,
            format!(
                "Secret {} must hold keys {} and {}: add them",
                r.name,
                r.client_id_key(),
                r.client_secret_key()
            ),
        ));
    };
    Ok(Outcome::Ready(Resolved {
        client_id: id,
        client_secret: SecretString::from(sec),
        token_url: None,
        details: None,
    }))
}

/// What is known about one token Secret before planning.
#[derive(Clone, Debug, PartialEq)]
pub enum KnownToken {
    /// This process wrote it, and the Secret watch has shown no other version since: what it
    /// wrote (not read again).
    Written(StoredToken),
    /// Read from the API server (`None`: it does not exist).
    Read(Option<Box<Secret>>),
    /// Never written for this OAuthClient as far as its status and this process know: not
    /// read. Its first write is create-only, so a Secret that does exist under that name is
    /// found then, and never overwritten.
    Unseen,
}

impl KnownToken {
    /// Whether the token Secret is to be created (create-only) rather than updated.
    pub fn to_create(&self) -> bool {
        matches!(self, KnownToken::Unseen | KnownToken::Read(None))
    }
}

/// Whether a token Secret must be read: what this process wrote is known; a name the status
/// has never listed is new (unless a create found it taken).
pub fn must_read(oac: &OAuthClient, state: &ObjectState, secret_name: &str) -> bool {
    let listed = oac
        .status
        .as_ref()
        .is_some_and(|s| s.tokens.iter().any(|t| t.secret_name == secret_name));
    !state.written.contains_key(secret_name) && (listed || state.conflicts.contains(secret_name))
}

/// What is known about the Secret of each `spec.tokens` entry, in order: one read per token
/// Secret this process has not written and the status lists (after a restart, or a conflict).
pub async fn token_secrets(
    oac: &OAuthClient,
    state: &ObjectState,
    secrets: &Api<Secret>,
) -> Result<Vec<KnownToken>, Error> {
    let mut out = Vec::with_capacity(oac.spec.tokens.len());
    for t in &oac.spec.tokens {
        let name = &t.secret_name;
        out.push(if let Some(w) = state.written.get(name) {
            KnownToken::Written(w.stored.clone())
        } else if must_read(oac, state, name) {
            KnownToken::Read(get_secret(secrets, name).await?.map(Box::new))
        } else {
            KnownToken::Unseen
        });
    }
    Ok(out)
}

/// The token Secrets labelled as this OAuthClient's (ownership is checked by the plan).
pub async fn labelled_token_secrets(
    oac: &OAuthClient,
    secrets: &Api<Secret>,
) -> Result<Vec<Secret>, Error> {
    let selector = format!("{OAUTHCLIENT_LABEL}={},{ROLE_LABEL}=token", oac.name_any());
    Ok(secrets
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(Error::kube("listing token Secrets"))?
        .items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::WrittenToken;
    use crate::crd::test_specs::payu;
    use crate::crd::{OAuthClientStatus, TokenStatus};
    use jiff::Timestamp;

    #[test]
    fn a_token_secret_is_read_only_when_nothing_closer_is_known() {
        let written = WrittenToken {
            stored: StoredToken {
                expires_at: Timestamp::UNIX_EPOCH,
                refresh_at: None,
                config_hash: None,
                refresh_answered: None,
            },
            resource_version: "7".into(),
        };
        let listed = OAuthClientStatus {
            tokens: vec![TokenStatus {
                secret_name: "tok".into(),
                scopes: vec![],
                expires_at: None,
                refresh_at: None,
                last_error: None,
            }],
            ..OAuthClientStatus::default()
        };
        // (case, status lists "tok", written by this process, a create found it taken, read?)
        let cases = [
            (
                "new: created create-only, not read",
                false,
                false,
                false,
                false,
            ),
            ("listed (a restart): read", true, false, false, true),
            (
                "written by this process: not read",
                true,
                true,
                false,
                false,
            ),
            ("taken by someone else: read", false, false, true, true),
            (
                "written after a conflict: not read",
                false,
                true,
                true,
                false,
            ),
        ];
        for (case, in_status, was_written, conflict, read) in cases {
            let mut oac = OAuthClient::new("a", payu("creds"));
            oac.status = in_status.then(|| listed.clone());
            let mut state = ObjectState::default();
            if was_written {
                state.written.insert("tok".into(), written.clone());
            }
            if conflict {
                state.conflicts.insert("tok".into());
            }
            assert_eq!(must_read(&oac, &state, "tok"), read, "{case}");
        }
        assert!(KnownToken::Unseen.to_create());
        assert!(KnownToken::Read(None).to_create());
        assert!(!KnownToken::Read(Some(Box::default())).to_create());
        assert!(!KnownToken::Written(written.stored).to_create());
    }
}
