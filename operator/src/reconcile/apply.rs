//! Phase 4, apply: the writes the plan decided — token requests and token Secrets, deletion of
//! token Secrets dropped from the spec — with their events, metrics and per-object state.

use clientcreds::ClientCredentials;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::events::EventType;
use tracing::{info, warn};

use crate::context::{Context, PendingToken, WrittenToken, kube_message};
use crate::crd::{OAuthClient, TokenSecretSpec};
use crate::reconcile::plan::{self, Failure, StoredToken, TokenStep};
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
    /// Whether the token Secret is created (create-only: a Secret that exists under its name
    /// is found, never overwritten) rather than updated.
    pub create: bool,
}

/// Carries out one token Secret's step and says how it ended.
pub async fn token(
    oac: &OAuthClient,
    ctx: &Context,
    secrets: &Api<Secret>,
    work: TokenWork<'_>,
    refresh_request: Option<&str>,
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
            ctx.with_existing_state(oac, |s| {
                s.backoff.remove(name);
                s.pending.remove(name);
            });
            Ok(TokenOutcome::Valid {
                expires_at,
                refresh_at,
            })
        }
        TokenStep::Wait(outcome) => Ok(outcome),
        TokenStep::Write { stored, pending } => {
            write(oac, ctx, secrets, work.spec, stored, *pending).await
        }
        TokenStep::Issue { stored, forced } => match work.credentials {
            Some(credentials) => {
                let request = refresh_request.filter(|_| forced);
                issue(
                    oac,
                    ctx,
                    secrets,
                    work.spec,
                    &credentials,
                    &work.config_hash,
                    stored,
                    work.create,
                    request,
                    refresh_request,
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

/// Requests a token, then writes its Secret in one server-side apply ([`write`]). A token
/// whose write fails is kept in the per-object state and written on the next attempt, so a
/// failing write never causes more token requests.
#[allow(clippy::too_many_arguments)]
async fn issue(
    oac: &OAuthClient,
    ctx: &Context,
    secrets: &Api<Secret>,
    spec: &TokenSecretSpec,
    credentials: &ClientCredentials,
    config_hash: &str,
    stored: Option<StoredToken>,
    create: bool,
    forced_by: Option<&str>,
    refresh_request: Option<&str>,
) -> Result<TokenOutcome, Error> {
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
            let expires_at = issued.expires_at;
            let refresh_at = refresh::refresh_at(
                &refresh::policy(oac.spec.lifetime_fraction()),
                issued_at,
                expires_at,
                rand::random::<f64>(),
            );
            let pending = PendingToken {
                secret: secrets::token_secret(
                    oac,
                    spec,
                    &issued,
                    refresh_at,
                    config_hash,
                    refresh_request,
                ),
                expires_at,
                refresh_at,
                config_hash: config_hash.to_owned(),
                request: refresh_request.map(str::to_owned),
                create,
            };
            write(oac, ctx, secrets, spec, stored, pending).await
        }
        Err(e) => {
            ctx.metrics.refresh(provider, "failure");
            let failure = Failure {
                reason: Reason::TokenRequestFailed,
                // The middleware already cuts the secret out of error_description; this
                // covers any other text a provider may have put it in.
                message: credentials.scrub(&format!("token request failed: {e}")),
                retryable: e.is_retryable(),
                retry_after: e.retry_after(),
                request: forced_by.map(str::to_owned),
            };
            Ok(failed(oac, ctx, spec, stored.as_ref(), failure).await)
        }
    }
}

/// How a token Secret write ended.
enum Written {
    /// Written; the Secret's resourceVersion after it.
    Done(Option<String>),
    /// A create found a Secret under the name that the operator did not make for this
    /// OAuthClient: nothing written.
    Conflict,
}

/// Writes a token Secret: a create when it is new (create-only, so a Secret someone else made
/// in the meantime is never overwritten), else one server-side apply. A create that finds the
/// Secret existing reads it: the operator's own (a write whose answer was lost, a status that
/// lagged) is updated; any other is a conflict.
async fn put(
    oac: &OAuthClient,
    secrets: &Api<Secret>,
    pending: &PendingToken,
) -> Result<Written, kube::Error> {
    let name = pending.secret.name_any();
    let apply = || async {
        secrets
            .patch(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&pending.secret),
            )
            .await
    };
    if !pending.create {
        return Ok(Written::Done(apply().await?.resource_version()));
    }
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PostParams::default()
    };
    match secrets.create(&params, &pending.secret).await {
        Ok(created) => Ok(Written::Done(created.resource_version())),
        Err(kube::Error::Api(status)) if status.code == 409 => {
            match secrets.get_opt(&name).await? {
                Some(existing) if plan::owned_token_secret(&existing, oac) => {
                    Ok(Written::Done(apply().await?.resource_version()))
                }
                Some(_) => Ok(Written::Conflict),
                // deleted in between: the next attempt creates it
                None => Err(kube::Error::Api(status)),
            }
        }
        Err(e) => Err(e),
    }
}

/// Writes a token Secret ([`put`]). On success the backoff ends and the write is remembered
/// (the next reconcile reads nothing); on failure the token is kept for the next attempt, which
/// waits for the backoff like a failed token request.
async fn write(
    oac: &OAuthClient,
    ctx: &Context,
    secrets: &Api<Secret>,
    spec: &TokenSecretSpec,
    stored: Option<StoredToken>,
    pending: PendingToken,
) -> Result<TokenOutcome, Error> {
    let name = &spec.secret_name;
    let version = match put(oac, secrets, &pending).await {
        Ok(Written::Done(version)) => version,
        Ok(Written::Conflict) => {
            ctx.with_state(oac, |s| {
                s.pending.remove(name);
                s.backoff.remove(name);
                s.conflicts.insert(name.clone());
            });
            return Ok(TokenOutcome::NotIssued {
                reason: Reason::SecretConflict,
                message: plan::token_conflict_message(name),
            });
        }
        Err(e) => {
            let failure = Failure {
                reason: Reason::TokenWriteFailed,
                message: format!(
                    "writing token Secret {name} failed: {}; the token already issued is written on the next attempt",
                    kube_message(&e)
                ),
                retryable: true,
                retry_after: None,
                request: pending.request.clone(),
            };
            ctx.with_state(oac, |s| s.pending.insert(name.clone(), pending));
            return Ok(failed(oac, ctx, spec, stored.as_ref(), failure).await);
        }
    };
    let (expires_at, refresh_at) = (pending.expires_at, pending.refresh_at);
    ctx.with_state(oac, |s| {
        s.backoff.remove(name);
        s.pending.remove(name);
        s.conflicts.remove(name);
        match version {
            Some(resource_version) => s.written.insert(
                name.clone(),
                WrittenToken {
                    stored: StoredToken {
                        expires_at,
                        refresh_at: Some(refresh_at),
                        config_hash: Some(pending.config_hash.clone()),
                        refresh_answered: pending.request.clone(),
                    },
                    resource_version,
                },
            ),
            None => s.written.remove(name),
        };
    });
    ctx.metrics.expiry(
        &oac.namespace().unwrap_or_default(),
        name,
        expires_at.as_second(),
    );
    info!(oauthclient = %oac.name_any(), secret = %name, %expires_at, %refresh_at, "token refreshed");
    if pending.create {
        ctx.event(
            oac,
            EventType::Normal,
            Reason::TokenIssued,
            EventAction::IssueToken,
            format!("token Secret {name} written; expires at {expires_at}"),
        )
        .await;
    }
    Ok(TokenOutcome::Valid {
        expires_at,
        refresh_at,
    })
}

/// Records a failed attempt: the next backoff step, a warning event and log line, and the
/// outcome the status shows (with the stored token while it is still valid).
async fn failed(
    oac: &OAuthClient,
    ctx: &Context,
    spec: &TokenSecretSpec,
    stored: Option<&StoredToken>,
    failure: Failure,
) -> TokenOutcome {
    let name = &spec.secret_name;
    let now = Timestamp::now();
    let failures = ctx
        .state(oac)
        .backoff
        .get(name)
        .map_or(0, |b| b.failures)
        .saturating_add(1);
    let expires_at = stored.map(|s| s.expires_at).filter(|e| *e > now);
    let backoff = plan::backoff_after_failure(
        oac,
        now,
        failures,
        expires_at,
        failure,
        rand::random::<f64>(),
    );
    warn!(oauthclient = %oac.name_any(), secret = %name, error = %backoff.message, failures, retry_at = %backoff.retry_at, "token attempt failed");
    ctx.event(
        oac,
        EventType::Warning,
        backoff.reason,
        EventAction::IssueToken,
        format!("{name}: {}", backoff.message),
    )
    .await;
    let outcome = TokenOutcome::Failed {
        reason: backoff.reason,
        message: backoff.message.clone(),
        expires_at,
        retry_at: backoff.retry_at,
    };
    ctx.with_state(oac, |s| s.backoff.insert(name.clone(), backoff));
    outcome
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
        ctx.with_state(oac, |s| {
            s.backoff.remove(&name);
            s.pending.remove(&name);
            s.written.remove(&name);
            s.conflicts.remove(&name);
        });
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
