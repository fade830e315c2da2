//! The reconciler, in phases: [`dereference`] (reads) → [`validate`] (pure) → [`plan`] (pure:
//! what to write, when to come back) → [`apply`] (writes) → [`status`] (pure build, one
//! server-side apply). Azupay's credentials come from the enable-once state machine
//! ([`crate::azupay::enable`]).
//!
//! Token Secrets are owned by their OAuthClient (garbage-collected with it). The Azupay
//! credentials Secret carries an owner reference only with `deletionPolicy: Delete`, so no
//! finalizer is needed: deletion never needs the operator to act.

pub mod apply;
pub mod dereference;
pub mod plan;
pub mod status;
pub mod validate;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use tracing::warn;

use crate::azupay;
use crate::context::Context;
use crate::crd::{OAuthClient, ProviderKind};
use crate::credentials::{CredentialsState, Outcome};
use crate::secrets::REFRESH_REQUEST_ANNOTATION;
use crate::{Error, EventAction, Reason};
use apply::TokenWork;
use dereference::KnownToken;
use plan::{TokenFacts, TokenStep};
use status::StatusInput;

/// The shortest requeue delay, so that a token due now is not requested in a hot loop.
pub const REQUEUE_FLOOR: Duration = Duration::from_millis(200);

/// Reconciles one OAuthClient.
pub async fn reconcile(oac: Arc<OAuthClient>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let result = reconcile_inner(&oac, &ctx).await;
    ctx.metrics
        .reconcile_duration(started.elapsed().as_secs_f64());
    result
}

/// The error policy: back off and count by variant.
pub fn error_policy(oac: Arc<OAuthClient>, error: &Error, ctx: Arc<Context>) -> Action {
    warn!(oauthclient = %oac.name_any(), error = %error, "reconcile failed");
    ctx.metrics.reconcile_error(error.metric_label());
    Action::requeue(Duration::from_secs(5))
}

/// The status input with what every status carries.
fn status_input(oac: &OAuthClient, refresh_request: Option<&String>) -> StatusInput {
    let prev = oac.status.as_ref();
    StatusInput {
        generation: oac.metadata.generation,
        last_refresh_request: refresh_request
            .cloned()
            .or(prev.and_then(|s| s.last_refresh_request.clone())),
        ..StatusInput::default()
    }
}

/// Shows a credentials state while the Azupay flow runs (best effort: a failure is logged, and
/// the reconcile's own status write follows).
async fn note_credentials(ctx: &Context, oac: &OAuthClient, state: CredentialsState) {
    let prev = oac.status.as_ref();
    let input = StatusInput {
        generation: oac.metadata.generation,
        credentials: Some(state),
        oauth2_client_id: prev.and_then(|s| s.oauth2_client_id.clone()),
        token_url: prev.and_then(|s| s.token_url.clone()),
        allowed_scopes: prev.and_then(|s| s.allowed_scopes.clone()),
        ttl_seconds: prev.and_then(|s| s.ttl_seconds),
        last_refresh_request: prev.and_then(|s| s.last_refresh_request.clone()),
        ..StatusInput::default()
    };
    let status = status::build_status(prev, input, Timestamp::now());
    if let Err(e) = status::apply_status(ctx, oac, status).await {
        warn!(oauthclient = %oac.name_any(), error = %e, "could not show the enable progress in the status");
    }
}

async fn reconcile_inner(oac: &OAuthClient, ctx: &Context) -> Result<Action, Error> {
    let ns = oac.namespace().ok_or(Error::NoNamespace)?;
    let now = Timestamp::now();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let prev_status = oac.status.clone();
    let refresh_request = oac.annotations().get(REFRESH_REQUEST_ANNOTATION).cloned();
    let mut input = status_input(oac, refresh_request.as_ref());

    // validate the spec
    if let Err(problems) = validate::validate(&ns, &oac.spec) {
        if prev_status.as_ref().and_then(|s| s.observed_generation) != oac.metadata.generation {
            ctx.event(
                oac,
                EventType::Warning,
                Reason::InvalidSpec,
                EventAction::Validate,
                problems.join("; "),
            )
            .await;
        }
        input.invalid = Some(problems);
        status::apply_status(
            ctx,
            oac,
            status::build_status(prev_status.as_ref(), input, now),
        )
        .await?;
        return Ok(Action::await_change());
    }

    // dereference the credentials
    let credentials = match oac.spec.provider {
        ProviderKind::Azupay => {
            let report = |state: CredentialsState| note_credentials(ctx, oac, state).boxed();
            azupay::enable::resolve(oac, ctx, &secrets, &report).await?
        }
        _ => dereference::referenced_credentials(&oac.spec, &secrets).await?,
    };
    let resolved = match credentials {
        Outcome::Ready(r) => r,
        Outcome::NotReady(state, requeue) => {
            input.credentials = Some(state);
            status::apply_status(
                ctx,
                oac,
                status::build_status(prev_status.as_ref(), input, now),
            )
            .await?;
            return Ok(requeue
                .map(Action::requeue)
                .unwrap_or_else(Action::await_change));
        }
    };
    input.credentials = Some(if oac.spec.provider == ProviderKind::Azupay {
        CredentialsState::Stored
    } else {
        CredentialsState::Referenced
    });
    input.oauth2_client_id = Some(resolved.client_id.clone());
    if let Some(d) = &resolved.details {
        input.allowed_scopes = Some(d.oauth2_allowed_scopes.clone());
        input.ttl_seconds = d.oauth2_ttl_in_secs.and_then(|t| i64::try_from(t).ok());
    }

    // dereference the token Secrets, then validate → plan → apply each
    let state = ctx.state(oac);
    let known = dereference::token_secrets(oac, &state, &secrets).await?;
    let mut outcomes = Vec::with_capacity(oac.spec.tokens.len());
    let mut token_url = resolved.token_url.clone();
    for (spec, known) in oac.spec.tokens.iter().zip(&known) {
        let work = match validate::token_request(&oac.spec, &resolved, spec, &ctx.egress) {
            Err((reason, message)) => TokenWork {
                spec,
                step: TokenStep::Refuse { reason, message },
                credentials: None,
                config_hash: String::new(),
                create: false,
            },
            Ok(credentials) => {
                token_url.get_or_insert_with(|| credentials.token_url().to_string());
                let config_hash = plan::config_hash(
                    credentials.token_url().as_str(),
                    &resolved.client_id,
                    &resolved.client_secret,
                    &spec.scopes,
                    oac.spec.audience.as_deref(),
                );
                let facts = TokenFacts {
                    spec,
                    existing: match known {
                        KnownToken::Read(secret) => secret.as_deref(),
                        _ => None,
                    },
                    written: match known {
                        KnownToken::Written(stored) => Some(stored),
                        _ => None,
                    },
                    config_hash: &config_hash,
                    backoff: state.backoff.get(&spec.secret_name),
                    pending: state.pending.get(&spec.secret_name),
                };
                let step = plan::plan_token_step(oac, &facts, refresh_request.as_deref(), now);
                TokenWork {
                    spec,
                    step,
                    credentials: Some(credentials),
                    config_hash,
                    create: known.to_create(),
                }
            }
        };
        let outcome = apply::token(oac, ctx, &secrets, work, refresh_request.as_deref()).await?;
        outcomes.push(outcome.clone());
        input.tokens.push((spec.clone(), outcome));
    }
    input.token_url = token_url;
    // A refresh request counts as acted on once no token attempt for it failed: until then it
    // is retried with backoff, and the status shows the failure.
    if outcomes
        .iter()
        .any(|o| matches!(o, status::TokenOutcome::Failed { .. }))
    {
        input.last_refresh_request = prev_status
            .as_ref()
            .and_then(|s| s.last_refresh_request.clone());
    }

    // token Secrets removed from the spec go away (only a new generation can remove one)
    if plan::token_secrets_may_be_stale(oac) {
        let labelled = dereference::labelled_token_secrets(oac, &secrets).await?;
        let stale = plan::stale_token_secrets(oac, &labelled);
        apply::delete_token_secrets(oac, ctx, &secrets, stale).await?;
    }

    // status
    status::apply_status(
        ctx,
        oac,
        status::build_status(prev_status.as_ref(), input, now),
    )
    .await?;
    Ok(
        match plan::requeue_after(&outcomes, Timestamp::now(), REQUEUE_FLOOR) {
            Some(after) => Action::requeue(after),
            None => Action::await_change(),
        },
    )
}
