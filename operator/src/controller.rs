//! The reconciler: dereference → validate → build → apply → status.
//!
//! Token Secrets are owned by their OAuthClient (garbage-collected with it). The Azupay
//! credentials Secret carries an owner reference only with `deletionPolicy: Delete`, so no
//! finalizer is needed: deletion never needs the operator to act.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clientcreds::{AzupayConnectionDetails, ClientAuth, ClientCredentials, HttpClient, Provider};
use futures::{FutureExt, StreamExt};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use secrecy::SecretString;
use serde_json::json;
use tracing::{info, warn};

use crate::azupay::{self, AfterDetails, AzupayClient, EnableStep, StoredCredentials};
use crate::build::{
    self, CredentialsState, IssuedToken, REFRESH_REQUEST_ANNOTATION, StatusInput, TokenOutcome,
    TokenPlan,
};
use crate::crd::{
    AzupaySpec, CredentialsStore, OAuthClient, OAuthClientSpec, OAuthClientStatus, ProviderKind,
    TokenSecretSpec,
};
use crate::refresh;
use crate::telemetry::Metrics;
use crate::validate;

/// The field manager of everything the operator applies.
pub const FIELD_MANAGER: &str = "clientcreds-operator";
/// The field manager of the "enable pending" mark (kept apart so it can never remove data).
pub const MARK_FIELD_MANAGER: &str = "clientcreds-operator-enable-mark";

/// Failures that end a reconcile early (and are retried by the error policy).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A Kubernetes API call failed.
    #[error("Kubernetes API call failed: {context}: {source}")]
    Kube {
        /// What was being done.
        context: String,
        /// The error.
        #[source]
        source: kube::Error,
    },
    /// The object has no namespace (it is namespaced).
    #[error("the OAuthClient has no namespace")]
    NoNamespace,
}

impl Error {
    /// A short label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Kube { .. } => "kube",
            Self::NoNamespace => "no_namespace",
        }
    }
}

fn kube_err(context: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let context = context.into();
    move |source| Error::Kube { context, source }
}

#[derive(Clone, Debug)]
struct Backoff {
    failures: u32,
    retry_at: Timestamp,
    reason: String,
    message: String,
}

/// Shared state of the reconciler.
pub struct Context {
    client: Client,
    recorder: Recorder,
    http: HttpClient,
    azupay: AzupayClient,
    metrics: Arc<Metrics>,
    backoff: Mutex<HashMap<String, Backoff>>,
    enable_called: Mutex<HashSet<String>>,
    api_key_versions: Mutex<HashMap<String, String>>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").finish_non_exhaustive()
    }
}

impl Context {
    /// A context for `client`, publishing events as `reporter`.
    pub fn new(
        client: Client,
        reporter: Reporter,
        http: HttpClient,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            azupay: AzupayClient::new(http.clone()),
            http,
            metrics,
            backoff: Mutex::new(HashMap::new()),
            enable_called: Mutex::new(HashSet::new()),
            api_key_versions: Mutex::new(HashMap::new()),
        }
    }

    async fn event(
        &self,
        oac: &OAuthClient,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let ev = Event {
            type_,
            reason: reason.into(),
            note: Some(truncate(note, 1000)),
            action: action.into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&ev, &oac.object_ref(&())).await {
            warn!(error = %e, reason, "could not publish event");
        }
    }
}

/// Event notes are limited to 1 kB by the API server.
fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max.saturating_sub(3);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push_str("...");
    }
    s
}

/// A short description of a Kubernetes API error (the server's message, not the whole Status).
fn kube_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => format!("{} (HTTP {})", status.message, status.code),
        other => other.to_string(),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// Resolved client credentials for token requests.
struct Resolved {
    client_id: String,
    client_secret: SecretString,
    token_url: Option<String>,
    details: Option<AzupayConnectionDetails>,
}

enum Deref {
    Ok(Resolved),
    NotReady(CredentialsState, Option<Duration>),
}

async fn get_secret(api: &Api<Secret>, name: &str) -> Result<Option<Secret>, Error> {
    api.get_opt(name)
        .await
        .map_err(kube_err(format!("reading Secret {name}")))
}

fn failed(reason: &str, message: impl Into<String>) -> CredentialsState {
    CredentialsState::Failed {
        reason: reason.into(),
        message: message.into(),
    }
}

/// Phase 1 (dereference) for providers other than Azupay: the referenced Secret.
async fn deref_referenced(spec: &OAuthClientSpec, secrets: &Api<Secret>) -> Result<Deref, Error> {
    let Some(r) = &spec.credentials_secret_ref else {
        return Ok(Deref::NotReady(
            failed("InvalidSpec", "spec.credentialsSecretRef is missing"),
            None,
        ));
    };
    let Some(secret) = get_secret(secrets, &r.name).await? else {
        return Ok(Deref::NotReady(
            failed(
                "SecretMissing",
                format!(
                    "Secret {} (spec.credentialsSecretRef.name) does not exist: create it",
                    r.name
                ),
            ),
            None,
        ));
    };
    let (Some(id), Some(sec)) = (
        build::secret_string(&secret, r.client_id_key()),
        build::secret_string(&secret, r.client_secret_key()),
    ) else {
        return Ok(Deref::NotReady(
            failed(
                "SecretIncomplete",
                format!(
                    "Secret {} must hold keys {} and {}: add them",
                    r.name,
                    r.client_id_key(),
                    r.client_secret_key()
                ),
            ),
            None,
        ));
    };
    Ok(Deref::Ok(Resolved {
        client_id: id,
        client_secret: SecretString::from(sec),
        token_url: None,
        details: None,
    }))
}

/// Phase 1 for Azupay: the API key, the credentials Secret, and the enable-once flow.
async fn deref_azupay(
    oac: &OAuthClient,
    ctx: &Context,
    secrets: &Api<Secret>,
) -> Result<Deref, Error> {
    let spec = &oac.spec;
    let (Some(az), Some(store)) = (&spec.azupay, &spec.credentials) else {
        return Ok(Deref::NotReady(
            failed(
                "InvalidSpec",
                "spec.azupay and spec.credentials are required",
            ),
            None,
        ));
    };
    let uid = oac.uid().unwrap_or_default();
    let key_ref = &az.api_key_secret_ref;
    let Some(key_secret) = get_secret(secrets, &key_ref.name).await? else {
        return Ok(Deref::NotReady(
            failed(
                "ApiKeyMissing",
                format!(
                    "Secret {} (spec.azupay.apiKeySecretRef) does not exist: create it",
                    key_ref.name
                ),
            ),
            None,
        ));
    };
    let Some(api_key) = build::secret_string(&key_secret, &key_ref.key).map(SecretString::from)
    else {
        return Ok(Deref::NotReady(
            failed(
                "ApiKeyMissing",
                format!(
                    "Secret {} has no key {}: add the Azupay API key",
                    key_ref.name, key_ref.key
                ),
            ),
            None,
        ));
    };
    let key_version = key_secret.resource_version().unwrap_or_default();
    let creds_secret = get_secret(secrets, &store.secret_name).await?;
    let called = lock(&ctx.enable_called).contains(&uid);
    let status = oac.status.clone().unwrap_or_default();

    match azupay::next_step(creds_secret.as_ref(), called) {
        EnableStep::UseStored => {
            let Some(stored) = creds_secret.as_ref().and_then(azupay::stored_credentials) else {
                return Ok(Deref::NotReady(
                    failed("CredentialsMissing", "the credentials Secret has no secret"),
                    None,
                ));
            };
            // Ask the details endpoint when we have no details yet or the API key changed.
            let known = lock(&ctx.api_key_versions).get(&uid).cloned();
            let mut details = details_from_status(&stored, &status);
            if known.as_deref() != Some(key_version.as_str()) || status.allowed_scopes.is_none() {
                match ctx
                    .azupay
                    .details(&az.endpoint, &az.client_id, &api_key)
                    .await
                {
                    Ok(Some(d)) => {
                        lock(&ctx.api_key_versions).insert(uid.clone(), key_version.clone());
                        details = Some(d);
                    }
                    Ok(None) => {
                        warn!(oauthclient = %oac.name_any(), "Azupay details say OAuth 2.0 is not enabled although a secret is stored");
                    }
                    Err(e) => {
                        ctx.event(
                            oac,
                            EventType::Warning,
                            e.reason(),
                            "ReadDetails",
                            format!("reading Azupay connection details failed: {e}"),
                        )
                        .await;
                        if details.is_none() {
                            return Ok(Deref::NotReady(
                                failed(e.reason(), e.to_string()),
                                Some(Duration::from_secs(30)),
                            ));
                        }
                    }
                }
            }
            let token_url = details
                .as_ref()
                .map(|d| d.oauth2_token_url.clone())
                .or(stored.token_url.clone());
            Ok(Deref::Ok(Resolved {
                client_id: stored.client_id,
                client_secret: stored.client_secret,
                token_url,
                details,
            }))
        }
        EnableStep::CheckDetails => {
            details_then_enable(oac, ctx, secrets, az, store, &api_key, &uid).await
        }
        EnableStep::MarkPending => {
            let mark = build::credentials_pending_secret(oac, store);
            if let Err(e) = secrets
                .patch(
                    &store.secret_name,
                    &PatchParams::apply(MARK_FIELD_MANAGER).force(),
                    &Patch::Apply(&mark),
                )
                .await
            {
                let msg = format!(
                    "cannot create credentials Secret {} before enabling OAuth 2.0 (nothing was enabled): {}",
                    store.secret_name,
                    kube_message(&e)
                );
                ctx.event(
                    oac,
                    EventType::Warning,
                    "CredentialsSecretNotWritable",
                    "PrepareEnable",
                    msg.clone(),
                )
                .await;
                return Ok(Deref::NotReady(
                    failed("CredentialsSecretNotWritable", msg),
                    Some(Duration::from_secs(30)),
                ));
            }
            note_credentials(ctx, oac, CredentialsState::EnablePending).await;
            details_then_enable(oac, ctx, secrets, az, store, &api_key, &uid).await
        }
    }
}

/// Asks Azupay's details endpoint, then enables only when OAuth 2.0 is not enabled yet. Run
/// before every enable call, the first one included: a client enabled elsewhere (by hand, by
/// another OAuthClient, or before its credentials Secret was deleted) is never enabled again.
async fn details_then_enable(
    oac: &OAuthClient,
    ctx: &Context,
    secrets: &Api<Secret>,
    az: &AzupaySpec,
    store: &CredentialsStore,
    api_key: &SecretString,
    uid: &str,
) -> Result<Deref, Error> {
    match ctx
        .azupay
        .details(&az.endpoint, &az.client_id, api_key)
        .await
    {
        Ok(d) => match azupay::after_details(d.as_ref()) {
            AfterDetails::Enable => enable(oac, ctx, secrets, az, store, api_key, uid).await,
            AfterDetails::CredentialsLost => {
                Ok(credentials_lost(oac, ctx, az, store, "CheckEnabled").await)
            }
        },
        Err(e) => Ok(Deref::NotReady(
            failed(e.reason(), e.to_string()),
            azupay_retry(&e),
        )),
    }
}

/// Shows a credentials state in the status while the enable flow is under way (before the call,
/// and while the returned secret waits to be written). Best effort: a failure is logged, and the
/// reconcile's own status write follows.
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
    let status = build::build_status(prev, input, Timestamp::now());
    if let Err(e) = apply_status(ctx, oac, status).await {
        warn!(oauthclient = %oac.name_any(), error = %e, "could not show the enable progress in the status");
    }
}

/// When to look again after a failed Azupay call: soon when it may pass by itself; otherwise
/// only after a change (a rotated API key Secret or an edited spec triggers a reconcile), with a
/// slow safety net.
fn azupay_retry(e: &azupay::AzupayError) -> Option<Duration> {
    if e.is_retryable() {
        Some(Duration::from_secs(30))
    } else {
        Some(Duration::from_secs(600))
    }
}

fn details_from_status(
    stored: &StoredCredentials,
    status: &OAuthClientStatus,
) -> Option<AzupayConnectionDetails> {
    let token_url = stored.token_url.clone().or(status.token_url.clone())?;
    Some(AzupayConnectionDetails {
        oauth2_client_id: stored.client_id.clone(),
        oauth2_client_secret: None,
        oauth2_token_url: token_url,
        oauth2_grant_type: "client_credentials".into(),
        oauth2_ttl_in_secs: status.ttl_seconds.and_then(|t| u64::try_from(t).ok()),
        oauth2_allowed_scopes: status.allowed_scopes.clone()?,
    })
}

/// OAuth 2.0 is enabled at Azupay but its secret is not stored here: a warning event (from
/// `action`), and `CredentialsLost` in the status.
async fn credentials_lost(
    oac: &OAuthClient,
    ctx: &Context,
    az: &AzupaySpec,
    store: &CredentialsStore,
    action: &str,
) -> Deref {
    let msg = azupay::credentials_lost_message(&az.client_id, &store.secret_name);
    ctx.event(
        oac,
        EventType::Warning,
        "CredentialsLost",
        action,
        msg.clone(),
    )
    .await;
    Deref::NotReady(CredentialsState::Lost(msg), None)
}

/// Calls enable (once) and persists the returned secret, retrying while it is held in memory.
async fn enable(
    oac: &OAuthClient,
    ctx: &Context,
    secrets: &Api<Secret>,
    az: &AzupaySpec,
    store: &CredentialsStore,
    api_key: &SecretString,
    uid: &str,
) -> Result<Deref, Error> {
    lock(&ctx.enable_called).insert(uid.to_owned());
    info!(oauthclient = %oac.name_any(), client_id = %az.client_id, "enabling OAuth 2.0 at Azupay");
    let result = ctx
        .azupay
        .enable(&az.endpoint, &az.client_id, api_key)
        .await;
    let (details, secret) = match result {
        Ok(r) => {
            ctx.metrics.enable_call("success");
            r
        }
        Err(azupay::AzupayError::AlreadyEnabled) => {
            ctx.metrics.enable_call("already_enabled");
            return Ok(credentials_lost(oac, ctx, az, store, "Enable").await);
        }
        Err(e) => {
            ctx.metrics.enable_call("failure");
            ctx.event(
                oac,
                EventType::Warning,
                e.reason(),
                "Enable",
                format!("enabling OAuth 2.0 failed: {e}"),
            )
            .await;
            return Ok(Deref::NotReady(
                failed(e.reason(), e.to_string()),
                azupay_retry(&e),
            ));
        }
    };
    let desired = build::credentials_secret(
        oac,
        store,
        &details.oauth2_client_id,
        &secret,
        &details.oauth2_token_url,
    );
    let mut delay = Duration::from_millis(500);
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        match secrets
            .patch(
                &store.secret_name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&desired),
            )
            .await
        {
            Ok(_) => break,
            Err(e) => {
                warn!(oauthclient = %oac.name_any(), attempt, error = %kube_message(&e), "storing the Azupay client secret failed; retrying (held in memory only)");
                if attempt == 1 {
                    note_credentials(
                        ctx,
                        oac,
                        CredentialsState::Failed {
                            reason: "CredentialsWriteFailed".into(),
                            message: format!(
                                "OAuth 2.0 is enabled at Azupay but writing Secret {} failed: {}; \
                                 retrying with the secret held in memory only: fix the cause and \
                                 do not restart the operator until CredentialsStored is True",
                                store.secret_name,
                                kube_message(&e)
                            ),
                        },
                    )
                    .await;
                    ctx.event(
                        oac,
                        EventType::Warning,
                        "CredentialsWriteFailed",
                        "StoreCredentials",
                        format!(
                            "OAuth 2.0 is enabled but writing Secret {} failed: {}. Retrying; do not restart the operator until it succeeds",
                            store.secret_name,
                            kube_message(&e)
                        ),
                    )
                    .await;
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        }
    }
    ctx.event(
        oac,
        EventType::Normal,
        "CredentialsStored",
        "Enable",
        format!(
            "OAuth 2.0 enabled at Azupay; client secret stored in Secret {}",
            store.secret_name
        ),
    )
    .await;
    Ok(Deref::Ok(Resolved {
        client_id: details.oauth2_client_id.clone(),
        client_secret: secret,
        token_url: Some(details.oauth2_token_url.clone()),
        details: Some(details),
    }))
}

/// Builds the token request for one token Secret: the one mapping from an OAuthClient to
/// [`ClientCredentials`]. The provider's rules (token URL per environment, audience, client
/// authentication, scope limits) come from the middleware's presets
/// ([`clientcreds::Provider::preset`]); the spec only chooses and overrides.
fn credentials_for(
    spec: &OAuthClientSpec,
    resolved: &Resolved,
    token: &TokenSecretSpec,
) -> Result<ClientCredentials, String> {
    let id = resolved.client_id.clone();
    let secret = resolved.client_secret.clone();
    let mut builder = match spec.provider.provider() {
        Some(Provider::Azupay) => {
            let Some(details) = &resolved.details else {
                return Err("the Azupay connection details are not known yet".into());
            };
            Provider::azupay(details, secret)
        }
        Some(provider) => provider.builder_in(spec.environment(), id, secret),
        // generic: any RFC 6749 endpoint, with the RFC's default client authentication
        None => ClientCredentials::builder(spec.token_url.clone().unwrap_or_default(), id, secret)
            .auth(ClientAuth::Basic),
    };
    if spec.provider != ProviderKind::Azupay
        && let Some(url) = &spec.token_url
    {
        builder = builder.token_url(url);
    }
    if let Some(aud) = &spec.audience {
        builder = builder.audience(aud.clone());
    }
    builder = builder.scopes(token.scopes.iter().cloned());
    builder.build().map_err(|e| e.to_string())
}

/// The reconciler.
pub async fn reconcile(oac: Arc<OAuthClient>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let result = reconcile_inner(&oac, &ctx).await;
    ctx.metrics
        .reconcile_duration(started.elapsed().as_secs_f64());
    result
}

async fn reconcile_inner(oac: &OAuthClient, ctx: &Context) -> Result<Action, Error> {
    let ns = oac.namespace().ok_or(Error::NoNamespace)?;
    let now = Timestamp::now();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let prev_status = oac.status.clone();
    let refresh_request = oac.annotations().get(REFRESH_REQUEST_ANNOTATION).cloned();
    let mut input = StatusInput {
        generation: oac.metadata.generation,
        last_refresh_request: refresh_request.clone().or(prev_status
            .as_ref()
            .and_then(|s| s.last_refresh_request.clone())),
        ..StatusInput::default()
    };

    // validate
    if let Err(problems) = validate::validate(&ns, &oac.spec) {
        if prev_status.as_ref().and_then(|s| s.observed_generation) != oac.metadata.generation {
            ctx.event(
                oac,
                EventType::Warning,
                "InvalidSpec",
                "Validate",
                problems.join("; "),
            )
            .await;
        }
        input.invalid = Some(problems);
        apply_status(
            ctx,
            oac,
            build::build_status(prev_status.as_ref(), input, now),
        )
        .await?;
        return Ok(Action::await_change());
    }

    // dereference
    let deref = match oac.spec.provider {
        ProviderKind::Azupay => deref_azupay(oac, ctx, &secrets).await?,
        _ => deref_referenced(&oac.spec, &secrets).await?,
    };
    let resolved = match deref {
        Deref::Ok(r) => r,
        Deref::NotReady(state, requeue) => {
            input.credentials = Some(state);
            apply_status(
                ctx,
                oac,
                build::build_status(prev_status.as_ref(), input, now),
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

    // build + apply, token by token
    let fraction = oac.spec.lifetime_fraction();
    let mut next: Option<Timestamp> = None;
    for token_spec in &oac.spec.tokens {
        let outcome = reconcile_token(
            oac,
            ctx,
            &secrets,
            &resolved,
            token_spec,
            fraction,
            refresh_request.as_deref(),
            now,
        )
        .await?;
        let wake = match &outcome {
            TokenOutcome::Valid { refresh_at, .. } => Some(*refresh_at),
            TokenOutcome::Failed { retry_at, .. } => Some(*retry_at),
            TokenOutcome::NotIssued { .. } => None,
        };
        next = match (next, wake) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        input.tokens.push((token_spec.clone(), outcome));
    }
    input.token_url = resolved.token_url.clone().or_else(|| {
        oac.spec
            .tokens
            .first()
            .and_then(|t| credentials_for(&oac.spec, &resolved, t).ok())
            .map(|c| c.token_url().to_string())
    });

    // token Secrets removed from the spec go away
    remove_stale_token_secrets(oac, ctx, &secrets).await?;

    // status
    apply_status(
        ctx,
        oac,
        build::build_status(prev_status.as_ref(), input, now),
    )
    .await?;
    Ok(match next {
        Some(at) => {
            Action::requeue(refresh::until(Timestamp::now(), at).max(Duration::from_millis(200)))
        }
        None => Action::await_change(),
    })
}

#[allow(clippy::too_many_arguments)]
async fn reconcile_token(
    oac: &OAuthClient,
    ctx: &Context,
    secrets: &Api<Secret>,
    resolved: &Resolved,
    token_spec: &TokenSecretSpec,
    fraction: f64,
    refresh_request: Option<&str>,
    now: Timestamp,
) -> Result<TokenOutcome, Error> {
    let ns = oac.namespace().unwrap_or_default();
    let key = format!(
        "{ns}/{}/{}",
        oac.uid().unwrap_or_default(),
        token_spec.secret_name
    );
    if let Some(details) = &resolved.details {
        let outside = validate::scopes_outside(&details.oauth2_allowed_scopes, &token_spec.scopes);
        if !outside.is_empty() {
            let message = format!(
                "scopes {} are not in Azupay's oauth2AllowedScopes for this client: remove them or ask Azupay to allow them",
                outside.join(", ")
            );
            ctx.event(
                oac,
                EventType::Warning,
                "ScopesNotAllowed",
                "IssueToken",
                format!("{}: {message}", token_spec.secret_name),
            )
            .await;
            return Ok(TokenOutcome::NotIssued {
                reason: "ScopesNotAllowed".into(),
                message,
            });
        }
    }
    let credentials = match credentials_for(&oac.spec, resolved, token_spec) {
        Ok(c) => c,
        Err(message) => {
            return Ok(TokenOutcome::NotIssued {
                reason: "TokenConfigInvalid".into(),
                message,
            });
        }
    };
    let hash = build::config_hash(
        credentials.token_url().as_str(),
        &resolved.client_id,
        &resolved.client_secret,
        &token_spec.scopes,
        oac.spec.audience.as_deref(),
    );
    let existing = get_secret(secrets, &token_spec.secret_name).await?;
    let stored = existing.as_ref().and_then(build::read_stored_token);
    // A Secret by that name that we do not own is never overwritten.
    if let Some(existing) = &existing {
        let ours = existing
            .owner_references()
            .iter()
            .any(|o| Some(o.uid.as_str()) == oac.meta().uid.as_deref());
        if !ours {
            return Ok(TokenOutcome::NotIssued {
                reason: "SecretConflict".into(),
                message: format!(
                    "Secret {} exists and is not owned by this OAuthClient: delete it or pick another secretName",
                    token_spec.secret_name
                ),
            });
        }
    }
    let forced = build::refresh_forced(
        refresh_request,
        oac.status
            .as_ref()
            .and_then(|s| s.last_refresh_request.as_deref()),
        stored.as_ref().and_then(|s| s.refresh_answered.as_deref()),
    );
    match build::plan_token(stored.as_ref(), &hash, now, forced) {
        TokenPlan::Keep {
            expires_at,
            refresh_at,
        } => {
            ctx.metrics
                .expiry(&ns, &token_spec.secret_name, expires_at.as_second());
            lock(&ctx.backoff).remove(&key);
            return Ok(TokenOutcome::Valid {
                expires_at,
                refresh_at,
            });
        }
        TokenPlan::Issue => {}
    }
    // in back-off?
    if !forced
        && let Some(b) = lock(&ctx.backoff)
            .get(&key)
            .cloned()
            .filter(|b| b.retry_at > now)
    {
        return Ok(TokenOutcome::Failed {
            reason: b.reason,
            message: b.message,
            expires_at: stored.as_ref().map(|s| s.expires_at).filter(|e| *e > now),
            retry_at: b.retry_at,
        });
    }
    let provider = oac.spec.provider.as_str();
    let issued_at = Timestamp::now();
    // A token whose expiry cannot be written in the token-Secret format counts as a failed
    // request (nothing is written).
    let result = credentials
        .request_token(&ctx.http)
        .await
        .and_then(|token| {
            IssuedToken::new(&token, token_spec, issued_at)
                .map_err(|e| clientcreds::Error::InvalidToken(e.to_string()))
        });
    match result {
        Ok(issued) => {
            ctx.metrics.refresh(provider, "success");
            lock(&ctx.backoff).remove(&key);
            let expires_at = issued.expires_at;
            let refresh_at =
                refresh::refresh_at(issued_at, expires_at, fraction, rand::random::<f64>());
            let desired =
                build::token_secret(oac, token_spec, &issued, refresh_at, &hash, refresh_request);
            secrets
                .patch(
                    &token_spec.secret_name,
                    &PatchParams::apply(FIELD_MANAGER).force(),
                    &Patch::Apply(&desired),
                )
                .await
                .map_err(kube_err(format!(
                    "writing token Secret {}",
                    token_spec.secret_name
                )))?;
            ctx.metrics
                .expiry(&ns, &token_spec.secret_name, expires_at.as_second());
            info!(oauthclient = %oac.name_any(), secret = %token_spec.secret_name, %expires_at, %refresh_at, "token refreshed");
            if stored.is_none() {
                ctx.event(
                    oac,
                    EventType::Normal,
                    "TokenIssued",
                    "IssueToken",
                    format!(
                        "token Secret {} written; expires at {expires_at}",
                        token_spec.secret_name
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
            let failures = lock(&ctx.backoff)
                .get(&key)
                .map(|b| b.failures)
                .unwrap_or(0)
                + 1;
            let expires_at = stored.as_ref().map(|s| s.expires_at).filter(|e| *e > now);
            let delay = if e.is_retryable() {
                refresh::retry_delay(
                    now,
                    failures,
                    expires_at,
                    e.retry_after(),
                    rand::random::<f64>(),
                )
            } else {
                // a person has to change something; still look again now and then
                refresh::retry_delay(
                    now,
                    failures.max(6),
                    expires_at,
                    e.retry_after(),
                    rand::random::<f64>(),
                )
            };
            let retry_at = now
                + jiff::SignedDuration::try_from(delay)
                    .unwrap_or(jiff::SignedDuration::from_secs(60));
            let message = format!("token request failed: {e}");
            warn!(oauthclient = %oac.name_any(), secret = %token_spec.secret_name, error = %e, failures, retry_in = ?delay, "token request failed");
            ctx.event(
                oac,
                EventType::Warning,
                "TokenRequestFailed",
                "IssueToken",
                format!("{}: {message}", token_spec.secret_name),
            )
            .await;
            let reason = "TokenRequestFailed".to_owned();
            lock(&ctx.backoff).insert(
                key,
                Backoff {
                    failures,
                    retry_at,
                    reason: reason.clone(),
                    message: message.clone(),
                },
            );
            Ok(TokenOutcome::Failed {
                reason,
                message,
                expires_at,
                retry_at,
            })
        }
    }
}

/// Deletes token Secrets this OAuthClient owns that its spec no longer lists.
async fn remove_stale_token_secrets(
    oac: &OAuthClient,
    ctx: &Context,
    secrets: &Api<Secret>,
) -> Result<(), Error> {
    let selector = format!(
        "{}={},{}=token",
        build::OAUTHCLIENT_LABEL,
        oac.name_any(),
        build::ROLE_LABEL
    );
    let owned = secrets
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(kube_err("listing token Secrets"))?;
    for s in owned.items {
        let name = s.name_any();
        let ours = s
            .owner_references()
            .iter()
            .any(|o| Some(o.uid.as_str()) == oac.meta().uid.as_deref());
        if ours && !oac.spec.tokens.iter().any(|t| t.secret_name == name) {
            secrets
                .delete(&name, &DeleteParams::default())
                .await
                .map_err(kube_err(format!("deleting token Secret {name}")))?;
            ctx.metrics
                .forget_expiry(&oac.namespace().unwrap_or_default(), &name);
            ctx.event(
                oac,
                EventType::Normal,
                "TokenSecretDeleted",
                "Cleanup",
                format!("token Secret {name} is no longer in spec.tokens and was deleted"),
            )
            .await;
        }
    }
    Ok(())
}

async fn apply_status(
    ctx: &Context,
    oac: &OAuthClient,
    status: OAuthClientStatus,
) -> Result<(), Error> {
    if let Some(ready) = status.conditions.iter().find(|c| c.type_ == "Ready") {
        ctx.metrics.ready(
            &oac.namespace().unwrap_or_default(),
            &oac.name_any(),
            ready.status == "True",
            &ready.reason,
        );
    }
    if oac.status.as_ref() == Some(&status) {
        return Ok(());
    }
    let api: Api<OAuthClient> =
        Api::namespaced(ctx.client.clone(), &oac.namespace().unwrap_or_default());
    let patch = json!({
        "apiVersion": "clientcreds.dev/v1alpha1",
        "kind": "OAuthClient",
        "status": status,
    });
    api.patch_status(
        &oac.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(kube_err("writing OAuthClient status"))?;
    Ok(())
}

/// The error policy: back off and count by variant.
pub fn error_policy(oac: Arc<OAuthClient>, error: &Error, ctx: Arc<Context>) -> Action {
    warn!(oauthclient = %oac.name_any(), error = %error, "reconcile failed");
    ctx.metrics.reconcile_error(error.metric_label());
    Action::requeue(Duration::from_secs(5))
}

/// Maps a Secret to the OAuthClients that own or reference it.
fn secret_to_oauthclients(
    store: &Store<OAuthClient>,
    secret: &Secret,
) -> Vec<ObjectRef<OAuthClient>> {
    let ns = secret.namespace().unwrap_or_default();
    let name = secret.name_any();
    let mut out: Vec<ObjectRef<OAuthClient>> = secret
        .owner_references()
        .iter()
        .filter(|o| o.kind == "OAuthClient" && o.api_version.starts_with(crate::crd::GROUP))
        .map(|o| ObjectRef::new(&o.name).within(&ns))
        .collect();
    for oac in store.state() {
        if oac.namespace().as_deref() != Some(ns.as_str()) {
            continue;
        }
        let s = &oac.spec;
        let refs = s.credentials_secret_ref.as_ref().map(|r| r.name.as_str())
            == Some(name.as_str())
            || s.azupay
                .as_ref()
                .map(|a| a.api_key_secret_ref.name.as_str())
                == Some(name.as_str())
            || s.credentials.as_ref().map(|c| c.secret_name.as_str()) == Some(name.as_str());
        if refs {
            out.push(ObjectRef::from_obj(&*oac));
        }
    }
    out
}

/// Runs the controller until `shutdown` resolves, reconciling at most `concurrency`
/// OAuthClients at once (`0`: no limit).
///
/// With no `namespaces` it watches OAuthClients and Secrets of the whole cluster; otherwise one
/// controller per namespace watches only there (each with its own store and the same
/// concurrency bound), so the operator needs no permission outside them.
pub async fn run_controller(
    client: Client,
    ctx: Arc<Context>,
    namespaces: Vec<String>,
    concurrency: u16,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    if namespaces.is_empty() {
        let apis = (Api::all(client.clone()), Api::all(client));
        return run_one(apis, ctx, concurrency, shutdown).await;
    }
    let shutdown = shutdown.shared();
    let mut namespaces = namespaces;
    namespaces.sort();
    namespaces.dedup();
    futures::future::join_all(namespaces.iter().map(|ns| {
        let apis = (
            Api::namespaced(client.clone(), ns),
            Api::namespaced(client.clone(), ns),
        );
        run_one(apis, ctx.clone(), concurrency, shutdown.clone())
    }))
    .await;
}

async fn run_one(
    (oacs, secrets): (Api<OAuthClient>, Api<Secret>),
    ctx: Arc<Context>,
    concurrency: u16,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let controller = Controller::new(oacs, watcher::Config::default().any_semantic())
        .with_config(kube::runtime::controller::Config::default().concurrency(concurrency));
    let store = controller.store();
    controller
        .watches(
            secrets,
            watcher::Config::default().any_semantic(),
            move |s: Secret| secret_to_oauthclients(&store, &s),
        )
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|res| async move {
            if let Err(e) = res {
                tracing::debug!(error = %e, "controller event");
            }
        })
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{AzupaySpec, CredentialsSecretRef, CredentialsStore, SecretKeyRef};
    use kube::runtime::reflector;

    fn oac(name: &str, ns: &str, spec: OAuthClientSpec) -> OAuthClient {
        let mut o = OAuthClient::new(name, spec);
        o.metadata.namespace = Some(ns.into());
        o.metadata.uid = Some(format!("uid-{name}"));
        o
    }

    fn payu(creds: &str) -> OAuthClientSpec {
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

    fn secret(name: &str, ns: &str) -> Secret {
        let mut s = Secret::default();
        s.metadata.name = Some(name.into());
        s.metadata.namespace = Some(ns.into());
        s
    }

    #[test]
    fn referenced_and_owned_secrets_map_to_their_oauthclients() {
        let (store, mut writer) = reflector::store::<OAuthClient>();
        let a = oac("a", "shop", payu("shared"));
        let b = oac("b", "shop", payu("other"));
        let c = oac("c", "elsewhere", payu("shared"));
        let mut az_spec = payu("x");
        az_spec.provider = ProviderKind::Azupay;
        az_spec.credentials_secret_ref = None;
        az_spec.azupay = Some(AzupaySpec {
            endpoint: "https://azupay.test/v1".into(),
            client_id: "BIZ".into(),
            api_key_secret_ref: SecretKeyRef {
                name: "api-key".into(),
                key: "k".into(),
                namespace: None,
            },
        });
        az_spec.credentials = Some(CredentialsStore {
            secret_name: "az-creds".into(),
            deletion_policy: Default::default(),
        });
        let az = oac("az", "shop", az_spec);
        for o in [&a, &b, &c, &az] {
            writer.apply_watcher_event(&watcher::Event::Apply(o.clone()));
        }
        let names = |s: &Secret| {
            let mut v: Vec<String> = secret_to_oauthclients(&store, s)
                .into_iter()
                .map(|r| r.name)
                .collect();
            v.sort();
            v
        };
        // referenced credentials: only in the same namespace
        assert_eq!(names(&secret("shared", "shop")), ["a"]);
        assert_eq!(names(&secret("shared", "elsewhere")), ["c"]);
        // API key and credentials Secret of an Azupay client
        assert_eq!(names(&secret("api-key", "shop")), ["az"]);
        assert_eq!(names(&secret("az-creds", "shop")), ["az"]);
        // unrelated
        assert!(names(&secret("nothing", "shop")).is_empty());
        // owned token Secret
        let mut owned = secret("tok", "shop");
        owned.metadata.owner_references = b.controller_owner_ref(&()).map(|o| vec![o]);
        assert_eq!(names(&owned), ["b"]);
    }

    #[test]
    fn event_notes_fit_the_api_limit() {
        let long = "é".repeat(2000);
        let t = truncate(long, 1000);
        assert!(t.len() <= 1000 && t.ends_with("..."));
        assert_eq!(truncate("short".into(), 1000), "short");
    }

    #[test]
    fn token_requests_follow_each_provider_dialect() {
        let resolved = Resolved {
            client_id: "id".into(),
            client_secret: SecretString::from("s"),
            token_url: None,
            details: None,
        };
        let tok = TokenSecretSpec {
            secret_name: "t".into(),
            scopes: vec!["a".into()],
        };
        let mut spec = payu("c");
        let c = credentials_for(&spec, &resolved, &tok).unwrap();
        // PayU's default environment is test, as everywhere else
        assert_eq!(
            c.token_url().as_str(),
            clientcreds::provider::PAYU_TEST_TOKEN_URL
        );
        assert_eq!(c.auth(), ClientAuth::Post);
        spec.environment = Some(crate::crd::Environment::Production);
        let c = credentials_for(&spec, &resolved, &tok).unwrap();
        assert_eq!(
            c.token_url().as_str(),
            clientcreds::provider::PAYU_PRODUCTION_TOKEN_URL
        );
        spec.environment = None;
        spec.provider = ProviderKind::Pyng;
        spec.token_url = Some("https://pyng.test/billing/oauth2/token".into());
        let c = credentials_for(&spec, &resolved, &tok).unwrap();
        assert_eq!(
            c.token_url().as_str(),
            "https://pyng.test/billing/oauth2/token"
        );
        assert_eq!(c.auth(), ClientAuth::Basic);
        spec.provider = ProviderKind::Autopay;
        spec.token_url = None;
        let c = credentials_for(&spec, &resolved, &tok).unwrap();
        assert_eq!(c.auth(), ClientAuth::Json);
        assert_eq!(c.cache_key().audience(), Some("https://api.autopay.io"));
        spec.provider = ProviderKind::Azupay;
        assert!(
            credentials_for(&spec, &resolved, &tok).is_err(),
            "no details yet"
        );
    }
}
