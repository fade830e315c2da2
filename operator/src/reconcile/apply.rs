//! Phase 4, apply: the writes the plan decided — token requests and token Secrets, deletion of
//! token Secrets dropped from the spec — with their events, metrics and per-object state.

use clientcreds::ClientCredentials;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::events::EventType;
use tracing::{info, warn};

use crate::context::Context;
use crate::crd::{OAuthClient, TokenSecretSpec};
use crate::reconcile::plan::{self, StoredToken, TokenStep};
use crate::reconcile::status::TokenOutcome;
use crate::refresh;
use crate::secrets::{self, FIELD_MANAGER, IssuedToken};
use crate::{Error, EventAction, Reason};

/// One token Secret's planned step and what carrying it out needs.
#[derive(Debug)]
pub struct TokenWork<'a> {
    /// The token Secret's spec.
    pub spec: &'a TokenSecretSpec,
    /// What the plan decided.
    pub step: TokenStep,
    /// The token request (present unless the step is a refusal).
    pub credentials: Option<ClientCredentials>,
    /// The configuration digest the token is requested with.
    pub config_hash: String,
}

/// Carries out one token Secret's step and says how it ended.
pub async fn token(
    oac: &OAuthClient,
    ctx: &Context,
    secrets: &Api<Secret>,
    work: TokenWork<'_>,
    refresh_request: Option<&str>,
    now: Timestamp,
) -> Result<TokenOutcome, Error> {
    let name = &work.spec.secret_name;
    match work.step {
        TokenStep::Refuse { reason, message } => {
            if matches!(reason, Reason::ScopesNotAllowed | Reason::EgressDenied) {
                ctx.event(
                    oac,
                    EventType::Warning,
                    reason,
                    EventAction::IssueToken,
                    format!("{name}: {message}"),
                )
                .await;
            }
            Ok(TokenOutcome::NotIssued { reason, message })
        }
        TokenStep::Keep {
            expires_at,
            refresh_at,
        } => {
            ctx.metrics.expiry(
                &oac.namespace().unwrap_or_default(),
                name,
                expires_at.as_second(),
            );
            ctx.with_state(oac, |s| s.backoff.remove(name));
            Ok(TokenOutcome::Valid {
                expires_at,
                refresh_at,
            })
        }
        TokenStep::Wait(outcome) => Ok(outcome),
        TokenStep::Issue { stored, .. } => match work.credentials {
            Some(credentials) => {
                issue(
                    oac,
                    ctx,
                    secrets,
                    work.spec,
                    &credentials,
                    &work.config_hash,
                    stored,
                    refresh_request,
                    now,
                )
                .await
            }
            None => Ok(TokenOutcome::NotIssued {
                reason: Reason::TokenConfigInvalid,
                message: "no token request could be built".into(),
            }),
        },
    }
}

/// Requests a token and writes its Secret in one server-side apply.
#[allow(clippy::too_many_arguments)]
async fn issue(
    oac: &OAuthClient,
    ctx: &Context,
    secrets: &Api<Secret>,
    spec: &TokenSecretSpec,
    credentials: &ClientCredentials,
    config_hash: &str,
    stored: Option<StoredToken>,
    refresh_request: Option<&str>,
    now: Timestamp,
) -> Result<TokenOutcome, Error> {
    let ns = oac.namespace().unwrap_or_default();
    let provider = oac.spec.provider.as_str();
    let issued_at = Timestamp::now();
    // A token whose expiry cannot be written in the token-Secret format counts as a failed
    // request (nothing is written).
    let result = credentials
        .request_token(&ctx.http)
        .await
        .and_then(|token| {
            IssuedToken::new(&token, spec, issued_at)
                .map_err(|e| clientcreds::Error::InvalidToken(e.to_string()))
        });
    match result {
        Ok(issued) => {
            ctx.metrics.refresh(provider, "success");
            ctx.with_state(oac, |s| s.backoff.remove(&spec.secret_name));
            let expires_at = issued.expires_at;
            let refresh_at = refresh::refresh_at(
                issued_at,
                expires_at,
                oac.spec.lifetime_fraction(),
                rand::random::<f64>(),
            );
            let desired =
                secrets::token_secret(oac, spec, &issued, refresh_at, config_hash, refresh_request);
            secrets
                .patch(
                    &spec.secret_name,
                    &PatchParams::apply(FIELD_MANAGER).force(),
                    &Patch::Apply(&desired),
                )
                .await
                .map_err(Error::kube(format!(
                    "writing token Secret {}",
                    spec.secret_name
                )))?;
            ctx.metrics
                .expiry(&ns, &spec.secret_name, expires_at.as_second());
            info!(oauthclient = %oac.name_any(), secret = %spec.secret_name, %expires_at, %refresh_at, "token refreshed");
            if stored.is_none() {
                ctx.event(
                    oac,
                    EventType::Normal,
                    Reason::TokenIssued,
                    EventAction::IssueToken,
                    format!(
                        "token Secret {} written; expires at {expires_at}",
                        spec.secret_name
                    ),
                )
                .await;
            }
            Ok(TokenOutcome::Valid {
                expires_at,
                refresh_at,
            })
        }
        Err(e) => {
            ctx.metrics.refresh(provider, "failure");
            let failures = ctx
                .state(oac)
                .backoff
                .get(&spec.secret_name)
                .map_or(0, |b| b.failures)
                + 1;
            let expires_at = stored.as_ref().map(|s| s.expires_at).filter(|e| *e > now);
            let message = format!("token request failed: {e}");
            let backoff = plan::backoff_after_failure(
                now,
                failures,
                expires_at,
                e.is_retryable(),
                e.retry_after(),
                message.clone(),
                rand::random::<f64>(),
            );
            warn!(oauthclient = %oac.name_any(), secret = %spec.secret_name, error = %e, failures, retry_at = %backoff.retry_at, "token request failed");
            ctx.event(
                oac,
                EventType::Warning,
                Reason::TokenRequestFailed,
                EventAction::IssueToken,
                format!("{}: {message}", spec.secret_name),
            )
            .await;
            let outcome = TokenOutcome::Failed {
                reason: backoff.reason,
                message,
                expires_at,
                retry_at: backoff.retry_at,
            };
            ctx.with_state(oac, |s| s.backoff.insert(spec.secret_name.clone(), backoff));
            Ok(outcome)
        }
    }
}

/// Deletes the token Secrets the plan found stale.
pub async fn delete_token_secrets(
    oac: &OAuthClient,
    ctx: &Context,
    secrets: &Api<Secret>,
    stale: Vec<String>,
) -> Result<(), Error> {
    for name in stale {
        secrets
            .delete(&name, &DeleteParams::default())
            .await
            .map_err(Error::kube(format!("deleting token Secret {name}")))?;
        ctx.metrics
            .forget_expiry(&oac.namespace().unwrap_or_default(), &name);
        ctx.with_state(oac, |s| s.backoff.remove(&name));
        ctx.event(
            oac,
            EventType::Normal,
            Reason::TokenSecretDeleted,
            EventAction::Cleanup,
            format!("token Secret {name} is no longer in spec.tokens and was deleted"),
        )
        .await;
    }
    Ok(())
}
