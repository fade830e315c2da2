//! Phase 1, dereference: everything the reconcile reads — the referenced credentials Secret
//! (Azupay's credentials come from the enable-once flow, [`crate::azupay::enable`]), the token
//! Secrets of the spec, and the token Secrets the OAuthClient owns.

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use secrecy::SecretString;

use crate::context::get_secret;
use crate::crd::{OAuthClient, OAuthClientSpec};
use crate::credentials::{CredentialsState, Outcome, Resolved};
use crate::secrets::{OAUTHCLIENT_LABEL, ROLE_LABEL, secret_string};
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

/// The Secret of each `spec.tokens` entry, in order (`None`: it does not exist).
pub async fn token_secrets(
    oac: &OAuthClient,
    secrets: &Api<Secret>,
) -> Result<Vec<Option<Secret>>, Error> {
    let mut out = Vec::with_capacity(oac.spec.tokens.len());
    for t in &oac.spec.tokens {
        out.push(get_secret(secrets, &t.secret_name).await?);
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
