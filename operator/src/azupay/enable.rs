//! The enable-once flow of DESIGN.md as an explicit state machine.
//!
//! The enable call (`POST {endpoint}/client/{clientId}/oauth2`) returns the OAuth 2.0 client
//! secret **once**. The operator therefore:
//! 1. takes the enable claim on the credentials Secret (the "enable pending" mark as a lock:
//!    created only if the Secret does not exist, otherwise patched with a resourceVersion
//!    precondition; see [`lock_step`]) before calling enable — of two writers (two replicas
//!    without a lease, an old leader draining) only one holds it, and only the holder calls;
//! 2. writes the returned secret at once; when that write is refused, keeps it in a recovery
//!    Secret in the operator's own namespace ([`super::recovery`]) — or, when even that fails,
//!    retries while it holds it only in memory; an enable call without a usable answer that
//!    may still have taken effect (a timeout, a connection closed without an answer, a 5xx, a
//!    body it cannot read) is followed at once by a details call: enabled → the secret was
//!    issued and lost with the answer, `CredentialsLost`;
//! 3. on every reconcile without a stored secret, first looks for its recovery Secret: found,
//!    its secret is written to the credentials Secret (and the recovery Secret deleted after
//!    that write); otherwise, after a restart with the mark, asks the details endpoint: not
//!    enabled → enabling is safe; enabled → `CredentialsLost`, and a person must contact Azupay.
//!
//! It asks the details endpoint before the *first* enable call too (one extra `GET`): a client
//! that was enabled elsewhere — by hand, by another OAuthClient, or before its credentials
//! Secret was deleted — is reported as `CredentialsLost` instead of being enabled a second time.
//!
//! [`next_step`] and [`after_details`] are the pure decisions; [`resolve`] runs the machine
//! ([`State`]), one transition per step, until it ends with credentials or a reason to wait.
//!
//! ```
//! use clientcreds_operator::azupay::enable::{next_step, EnableStep};
//!
//! // nothing stored, no mark: mark first, then ask the details endpoint, then enable
//! assert_eq!(next_step(None, false, false), EnableStep::MarkPending);
//! ```

use std::time::Duration;

use clientcreds::AzupayConnectionDetails;
use futures::future::BoxFuture;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::events::EventType;
use secrecy::SecretString;
use tracing::{info, warn};

use super::client::{AzupayClient, AzupayError, ENABLE_TIMEOUT};
use super::recovery::{recovered_credentials, recovery_secret, recovery_secret_name};
use super::stored::{StoredCredentials, stored_credentials};
use crate::context::{Context, get_secret, kube_message};
use crate::crd::{AzupaySpec, CredentialsStore, OAuthClient, OAuthClientStatus};
use crate::credentials::{CredentialsState, Outcome, Resolved};
use crate::secrets::{
    self, ENABLE_STATE_ANNOTATION, FIELD_MANAGER, MARK_FIELD_MANAGER, secret_string,
};
use crate::{Error, EventAction, Reason};

/// Whether the credentials Secret carries the "enable pending" mark.
pub fn is_pending(secret: &Secret) -> bool {
    secret
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ENABLE_STATE_ANNOTATION))
        .is_some_and(|v| v == "pending")
}

/// The next step of the enable-once flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnableStep {
    /// The secret is stored: use it, never enable.
    UseStored,
    /// No secret and no mark: write the pending mark, then ask the details endpoint and call
    /// enable once only if OAuth 2.0 is not enabled yet.
    MarkPending,
    /// A mark but no secret (an earlier attempt did not finish, or this process already called
    /// enable): ask the details endpoint before anything else.
    CheckDetails,
    /// A Secret of that name exists without a stored secret and was not made by the operator
    /// for this OAuthClient: it is never marked, written or adopted (`SecretConflict`).
    Conflict,
}

/// Decides the next step from the credentials Secret (if it exists), whether that Secret is the
/// operator's own for this OAuthClient ([`secrets::is_managed`]; ignored without a Secret) and
/// whether this process has already called enable for this OAuthClient.
///
/// A Secret someone else made is only ever read: when it holds `client_id` and `client_secret`
/// (stored by an admin) they are used; otherwise it is a conflict, whatever its annotations say.
pub fn next_step(
    credentials: Option<&Secret>,
    managed: bool,
    called_enable_in_this_process: bool,
) -> EnableStep {
    match credentials {
        Some(s) if stored_credentials(s).is_some() => EnableStep::UseStored,
        Some(_) if !managed => EnableStep::Conflict,
        Some(s) if is_pending(s) => EnableStep::CheckDetails,
        _ if called_enable_in_this_process => EnableStep::CheckDetails,
        _ => EnableStep::MarkPending,
    }
}

/// How long an enable claim held by another instance is respected beyond the enable call's
/// timeout (its details call and the first write of the answer).
pub const CLAIM_MARGIN: Duration = Duration::from_secs(30);

/// How long an enable claim holds: the enable call's timeout (`enable_timeout`) plus
/// [`CLAIM_MARGIN`]. A younger claim of another instance means its call may be in flight.
pub fn claim_hold(enable_timeout: Duration) -> Duration {
    enable_timeout + CLAIM_MARGIN
}

/// How to take the enable claim (the pending mark as a lock) before asking the details
/// endpoint and calling enable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LockStep {
    /// No credentials Secret: create it with the claim (create-only: `AlreadyExists` means
    /// another writer was first).
    Create,
    /// The Secret exists without a live claim of another instance: claim it with this
    /// resourceVersion as precondition (`Conflict` means another writer was first).
    Claim {
        /// The resourceVersion the Secret was read at.
        resource_version: String,
    },
    /// Another instance holds a live claim (its enable call may be in flight): never call;
    /// look again after this long at most.
    Wait(Duration),
}

/// Decides how to take the enable claim for the credentials Secret `current` (as read, without
/// a stored secret), as instance `me` at `now`, where a claim holds for `hold`
/// ([`claim_hold`]).
///
/// A claim of another instance younger than `hold` is waited for; an older one (its holder
/// died or gave up), an unreadable one, or our own is claimed again. A Secret read without a
/// resourceVersion is "created" (which fails, as it exists): no write without a precondition.
pub fn lock_step(current: Option<&Secret>, me: &str, now: Timestamp, hold: Duration) -> LockStep {
    let Some(secret) = current else {
        return LockStep::Create;
    };
    if let (Some(holder), Some(at)) = secrets::enable_claim(secret)
        && holder != me
    {
        let age = now.duration_since(at);
        let hold = jiff::SignedDuration::try_from(hold).unwrap_or(jiff::SignedDuration::MAX);
        if age < hold {
            let left = (hold - age.max(jiff::SignedDuration::ZERO))
                .try_into()
                .unwrap_or(Duration::ZERO);
            return LockStep::Wait(left);
        }
    }
    match secret.metadata.resource_version.clone() {
        Some(resource_version) => LockStep::Claim { resource_version },
        None => LockStep::Create,
    }
}

/// Which other OAuthClient (`namespace/name`) already uses the Azupay client, if any, from the
/// credentials Secrets carrying its [`secrets::AZUPAY_CLIENT_LABEL`] (`others`; the Secret
/// `mine` = `(namespace, name)` of this OAuthClient is skipped). One uses it when its Secret
/// holds the stored secret, or when it holds a live enable claim (younger than `hold` at `now`)
/// taken before `my_claim` — `(time, namespace, name)` order, so that of two OAuthClients
/// claiming at once both agree on the one that goes on. A stale claim without a secret (its
/// holder gave up) does not count.
pub fn client_in_use(
    others: &[Secret],
    mine: (&str, &str),
    my_claim: Timestamp,
    now: Timestamp,
    hold: Duration,
) -> Option<String> {
    let hold = jiff::SignedDuration::try_from(hold).unwrap_or(jiff::SignedDuration::MAX);
    others.iter().find_map(|other| {
        let ns = other.metadata.namespace.as_deref().unwrap_or_default();
        let name = other.metadata.name.as_deref().unwrap_or_default();
        if (ns, name) == mine {
            return None;
        }
        let user = other
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(secrets::OAUTHCLIENT_LABEL))
            .map_or_else(|| format!("{ns}/?"), |o| format!("{ns}/{o}"));
        if stored_credentials(other).is_some() {
            return Some(user);
        }
        let (Some(_), Some(at)) = secrets::enable_claim(other) else {
            return None;
        };
        let live = now.duration_since(at) < hold;
        (live && (at, ns, name) < (my_claim, mine.0, mine.1)).then_some(user)
    })
}

/// The message of the `AzupayClientInUse` condition and event.
pub fn client_in_use_message(client_id: &str, endpoint: &str, user: &str) -> String {
    format!(
        "Azupay clientId {client_id} (spec.azupay.clientId) at {endpoint} is already used by          OAuthClient {user}: its OAuth 2.0 client secret is issued once, so only one OAuthClient          per cluster may use an Azupay client. Nothing was enabled; use that OAuthClient's token          Secrets or another clientId"
    )
}

/// How long to wait before trying again to write a secret kept in the recovery Secret.
pub const RECOVERY_RETRY: Duration = Duration::from_secs(5);

/// How long to wait before looking again when another writer holds or just took the claim.
const CLAIM_RECHECK: Duration = Duration::from_secs(3);

/// What to do after asking the details endpoint in [`EnableStep::CheckDetails`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterDetails {
    /// Not enabled at Azupay: enabling is safe.
    Enable,
    /// Enabled at Azupay but the secret is not stored: stop, a person must act.
    CredentialsLost,
}

/// Step 3 of DESIGN.md: not enabled → enable; enabled → credentials lost.
pub fn after_details(details: Option<&AzupayConnectionDetails>) -> AfterDetails {
    match details {
        None => AfterDetails::Enable,
        Some(_) => AfterDetails::CredentialsLost,
    }
}

/// The message of the `CredentialsLost` condition and event.
pub fn credentials_lost_message(client_id: &str, secret_name: &str) -> String {
    format!(
        "OAuth 2.0 is enabled at Azupay for clientId {client_id} but its client secret is not stored in \
         Secret {secret_name} (it is returned only once). The operator will not call enable again. \
         Contact Azupay to rotate the OAuth 2.0 client secret, then store client_id, client_secret and \
         token_url in Secret {secret_name}."
    )
}

/// Shows a credentials state in the status while the flow runs (before the enable call, and
/// while the returned secret waits to be written). Best effort.
pub type Report<'a> = &'a (dyn Fn(CredentialsState) -> BoxFuture<'a, ()> + Send + Sync);

/// The states of the enable-once flow.
enum State {
    /// Read the API key and the credentials Secret, then decide ([`next_step`]).
    Start,
    /// The secret is stored: use it; refresh the connection details when the API key changed.
    UseStored {
        stored: StoredCredentials,
        api_key: SecretString,
        key_version: String,
    },
    /// Take the enable claim (the "enable pending" mark as a lock) before anything
    /// irreversible; `current` is the credentials Secret as read.
    Claim {
        api_key: SecretString,
        current: Option<Box<Secret>>,
    },
    /// Ask the details endpoint whether OAuth 2.0 is enabled ([`after_details`]).
    CheckDetails { api_key: SecretString },
    /// Call enable, once.
    Enable { api_key: SecretString },
    /// The enable call failed in a way that may have taken effect
    /// ([`AzupayError::may_have_taken_effect`]): ask the details endpoint now whether it did.
    Verify {
        api_key: SecretString,
        error: AzupayError,
    },
    /// The one-time secret is held in memory only: write it until that succeeds (or, when the
    /// write is refused, until it is kept in the recovery Secret).
    Store {
        details: AzupayConnectionDetails,
        secret: SecretString,
    },
    /// A recovery Secret holds the one-time secret: write it to the credentials Secret, then
    /// delete the recovery Secret.
    Deliver {
        recovered: StoredCredentials,
        api_key: SecretString,
        key_version: String,
    },
    /// Done.
    Done(Outcome),
}

fn failed(reason: Reason, message: impl Into<String>) -> Outcome {
    Outcome::NotReady(
        CredentialsState::Failed {
            reason,
            message: message.into(),
        },
        None,
    )
}

/// When to look again after a failed Azupay call: soon when it may pass by itself; otherwise
/// only after a change (a rotated API key Secret or an edited spec triggers a reconcile), with a
/// slow safety net.
pub fn azupay_retry(e: &AzupayError) -> Option<Duration> {
    if e.is_retryable() {
        Some(Duration::from_secs(30))
    } else {
        Some(Duration::from_secs(600))
    }
}

/// The connection details as far as the status and the stored Secret know them.
pub fn details_from_status(
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

/// The flow for one Azupay OAuthClient, with what it needs.
struct Flow<'a> {
    oac: &'a OAuthClient,
    ctx: &'a Context,
    secrets: &'a Api<Secret>,
    az: &'a AzupaySpec,
    store: &'a CredentialsStore,
    azupay: AzupayClient,
    report: Report<'a>,
}

/// Runs the enable-once flow for `oac` until it has credentials or must wait.
pub async fn resolve<'a>(
    oac: &'a OAuthClient,
    ctx: &'a Context,
    secrets: &'a Api<Secret>,
    report: Report<'a>,
) -> Result<Outcome, Error> {
    let (Some(az), Some(store)) = (&oac.spec.azupay, &oac.spec.credentials) else {
        return Ok(failed(
            Reason::InvalidSpec,
            "spec.azupay and spec.credentials are required",
        ));
    };
    let flow = Flow {
        oac,
        ctx,
        secrets,
        az,
        store,
        azupay: AzupayClient::new(ctx.http.clone()),
        report,
    };
    let mut state = State::Start;
    loop {
        state = match state {
            State::Done(outcome) => return Ok(outcome),
            State::Start => flow.start().await?,
            State::UseStored {
                stored,
                api_key,
                key_version,
            } => flow.use_stored(stored, &api_key, key_version).await,
            State::Claim { api_key, current } => flow.claim(api_key, current.as_deref()).await,
            State::CheckDetails { api_key } => flow.check_details(api_key).await,
            State::Enable { api_key } => flow.enable(api_key).await,
            State::Verify { api_key, error } => flow.verify(&api_key, error).await,
            State::Store { details, secret } => flow.store(details, secret).await,
            State::Deliver {
                recovered,
                api_key,
                key_version,
            } => flow.deliver(recovered, api_key, key_version).await,
        };
    }
}

impl Flow<'_> {
    async fn event(&self, type_: EventType, reason: Reason, action: EventAction, note: String) {
        self.ctx.event(self.oac, type_, reason, action, note).await;
    }

    async fn start(&self) -> Result<State, Error> {
        // The API key goes to the endpoint with every call: refuse before reading or writing
        // anything when the egress policy does not allow it.
        if let Err(message) = self
            .ctx
            .egress
            .check("spec.azupay.endpoint", &self.az.endpoint)
        {
            self.event(
                EventType::Warning,
                Reason::EgressDenied,
                EventAction::Validate,
                message.clone(),
            )
            .await;
            return Ok(State::Done(failed(Reason::EgressDenied, message)));
        }
        let key_ref = &self.az.api_key_secret_ref;
        let Some(key_secret) = get_secret(self.secrets, &key_ref.name).await? else {
            return Ok(State::Done(failed(
                Reason::ApiKeyMissing,
                format!(
                    "Secret {} (spec.azupay.apiKeySecretRef) does not exist: create it",
                    key_ref.name
                ),
            )));
        };
        let Some(api_key) = secret_string(&key_secret, &key_ref.key).map(SecretString::from) else {
            return Ok(State::Done(failed(
                Reason::ApiKeyMissing,
                format!(
                    "Secret {} has no key {}: add the Azupay API key",
                    key_ref.name, key_ref.key
                ),
            )));
        };
        let key_version = key_secret.resource_version().unwrap_or_default();
        let creds_secret = get_secret(self.secrets, &self.store.secret_name).await?;
        let called = self.ctx.state(self.oac).enable_called;
        let managed = creds_secret
            .as_ref()
            .is_some_and(|s| secrets::is_managed(s, self.oac, secrets::CREDENTIALS_ROLE));
        Ok(match next_step(creds_secret.as_ref(), managed, called) {
            EnableStep::UseStored => match creds_secret.as_ref().and_then(stored_credentials) {
                Some(stored) => State::UseStored {
                    stored,
                    api_key,
                    key_version,
                },
                None => State::Done(failed(
                    Reason::CredentialsMissing,
                    "the credentials Secret has no secret",
                )),
            },
            // A secret kept in the recovery Secret is delivered before anything else: never a
            // claim, a details call or `CredentialsLost` over it.
            EnableStep::CheckDetails | EnableStep::MarkPending => match self.recovered().await? {
                Some((recovered, _)) => State::Deliver {
                    recovered,
                    api_key,
                    key_version,
                },
                // Both go through the claim: only its holder asks the details and calls enable.
                None => State::Claim {
                    api_key,
                    current: creds_secret.map(Box::new),
                },
            },
            EnableStep::Conflict => {
                let message = secrets::conflict_message(
                    &self.store.secret_name,
                    "spec.credentials.secretName",
                    &self.oac.name_any(),
                );
                self.event(
                    EventType::Warning,
                    Reason::SecretConflict,
                    EventAction::PrepareEnable,
                    message.clone(),
                )
                .await;
                State::Done(failed(Reason::SecretConflict, message))
            }
        })
    }

    async fn use_stored(
        &self,
        stored: StoredCredentials,
        api_key: &SecretString,
        key_version: String,
    ) -> State {
        let status = self.oac.status.clone().unwrap_or_default();
        // Ask the details endpoint when we have no details yet or the API key changed.
        let known = self.ctx.state(self.oac).api_key_version;
        let mut details = details_from_status(&stored, &status);
        if known.as_deref() != Some(key_version.as_str()) {
            // once per process (and API key): a recovery Secret left by a process killed between
            // the delivery and the deletion goes now
            self.remove_delivered_recovery(&stored).await;
        }
        if known.as_deref() != Some(key_version.as_str()) || status.allowed_scopes.is_none() {
            match self
                .azupay
                .details(&self.az.endpoint, &self.az.client_id, api_key)
                .await
            {
                Ok(Some(d)) => {
                    self.ctx
                        .with_state(self.oac, |s| s.api_key_version = Some(key_version));
                    details = Some(d);
                }
                Ok(None) => {
                    warn!(oauthclient = %self.oac.name_any(), "Azupay details say OAuth 2.0 is not enabled although a secret is stored");
                }
                Err(e) => {
                    self.event(
                        EventType::Warning,
                        e.reason(),
                        EventAction::ReadDetails,
                        format!("reading Azupay connection details failed: {e}"),
                    )
                    .await;
                    if details.is_none() {
                        return State::Done(Outcome::NotReady(
                            CredentialsState::Failed {
                                reason: e.reason(),
                                message: e.to_string(),
                            },
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
        State::Done(Outcome::Ready(Resolved {
            client_id: stored.client_id,
            client_secret: stored.client_secret,
            token_url,
            details,
        }))
    }

    /// Takes the enable claim ([`lock_step`]); on success asks the details endpoint next, and
    /// when another writer holds it or was first, waits without calling anything.
    async fn claim(&self, api_key: SecretString, current: Option<&Secret>) -> State {
        let me = self.ctx.instance_id.as_str();
        let now = Timestamp::now();
        let hold = claim_hold(ENABLE_TIMEOUT.max(self.ctx.http.timeout()));
        // one Azupay client per cluster: another OAuthClient using it means no claim, no call
        if let Some(state) = self.in_use_by_another(now, now, hold).await {
            return state;
        }
        let written = match lock_step(current, me, now, hold) {
            LockStep::Wait(left) => {
                info!(oauthclient = %self.oac.name_any(), "another operator instance holds the enable claim; waiting");
                return State::Done(Outcome::NotReady(
                    CredentialsState::EnablePending,
                    Some(left.min(CLAIM_RECHECK)),
                ));
            }
            LockStep::Create => {
                let secret = secrets::credentials_claim_secret(self.oac, self.store, me, now);
                let pp = PostParams {
                    field_manager: Some(MARK_FIELD_MANAGER.into()),
                    ..PostParams::default()
                };
                self.secrets.create(&pp, &secret).await.map(drop)
            }
            LockStep::Claim { resource_version } => {
                let patch = secrets::claim_patch(&resource_version, me, now, &self.client_key());
                self.secrets
                    .patch(
                        &self.store.secret_name,
                        &PatchParams {
                            field_manager: Some(MARK_FIELD_MANAGER.into()),
                            ..PatchParams::default()
                        },
                        &Patch::Merge(&patch),
                    )
                    .await
                    .map(drop)
            }
        };
        match written {
            Ok(()) => {
                // another OAuthClient may have claimed the same Azupay client at the same time:
                // the earlier claim goes on, the other stops here (before any Azupay call)
                if let Some(state) = self.in_use_by_another(now, Timestamp::now(), hold).await {
                    return state;
                }
                (self.report)(CredentialsState::EnablePending).await;
                State::CheckDetails { api_key }
            }
            // 409: AlreadyExists (create) or Conflict (resourceVersion): another writer was
            // first; look again soon (it holds the claim now, or it stored the secret).
            Err(kube::Error::Api(e)) if e.code == 409 => {
                info!(oauthclient = %self.oac.name_any(), "another writer took the enable claim first; waiting");
                State::Done(Outcome::NotReady(
                    CredentialsState::EnablePending,
                    Some(CLAIM_RECHECK),
                ))
            }
            Err(e) => {
                let msg = format!(
                    "cannot create credentials Secret {} before enabling OAuth 2.0 (nothing was enabled): {}",
                    self.store.secret_name,
                    kube_message(&e)
                );
                self.event(
                    EventType::Warning,
                    Reason::CredentialsSecretNotWritable,
                    EventAction::PrepareEnable,
                    msg.clone(),
                )
                .await;
                State::Done(Outcome::NotReady(
                    CredentialsState::Failed {
                        reason: Reason::CredentialsSecretNotWritable,
                        message: msg,
                    },
                    Some(Duration::from_secs(30)),
                ))
            }
        }
    }

    /// This OAuthClient's [`secrets::AZUPAY_CLIENT_LABEL`] value.
    fn client_key(&self) -> String {
        secrets::azupay_client_key(&self.az.endpoint, &self.az.client_id)
    }

    /// One label-selector list of the credentials Secrets of this Azupay client (cluster-wide;
    /// in this namespace only when the operator may not list Secrets cluster-wide), then
    /// [`client_in_use`]: `Some` ends the flow with `AzupayClientInUse` (or waits when the list
    /// fails).
    async fn in_use_by_another(
        &self,
        my_claim: Timestamp,
        now: Timestamp,
        hold: Duration,
    ) -> Option<State> {
        let lp = ListParams::default().labels(&format!(
            "{}={}",
            secrets::AZUPAY_CLIENT_LABEL,
            self.client_key()
        ));
        let listed = match Api::<Secret>::all(self.ctx.client.clone()).list(&lp).await {
            Err(kube::Error::Api(e)) if e.code == 403 => self.secrets.list(&lp).await,
            other => other,
        };
        let others = match listed {
            Ok(list) => list.items,
            Err(e) => {
                warn!(oauthclient = %self.oac.name_any(), error = %kube_message(&e), "cannot list the credentials Secrets of this Azupay client; not enabling yet");
                return Some(State::Done(Outcome::NotReady(
                    CredentialsState::EnablePending,
                    Some(Duration::from_secs(30)),
                )));
            }
        };
        let ns = self.oac.namespace().unwrap_or_default();
        let user = client_in_use(&others, (&ns, &self.store.secret_name), my_claim, now, hold)?;
        let message = client_in_use_message(&self.az.client_id, &self.az.endpoint, &user);
        self.event(
            EventType::Warning,
            Reason::AzupayClientInUse,
            EventAction::PrepareEnable,
            message.clone(),
        )
        .await;
        Some(State::Done(Outcome::NotReady(
            CredentialsState::Failed {
                reason: Reason::AzupayClientInUse,
                message,
            },
            Some(Duration::from_secs(60)),
        )))
    }

    /// Asks Azupay's details endpoint, then enables only when OAuth 2.0 is not enabled yet. Run
    /// before every enable call, the first one included: a client enabled elsewhere (by hand, by
    /// another OAuthClient, or before its credentials Secret was deleted) is never enabled again.
    async fn check_details(&self, api_key: SecretString) -> State {
        match self
            .azupay
            .details(&self.az.endpoint, &self.az.client_id, &api_key)
            .await
        {
            Ok(d) => match after_details(d.as_ref()) {
                AfterDetails::Enable => State::Enable { api_key },
                AfterDetails::CredentialsLost => {
                    State::Done(self.credentials_lost(EventAction::CheckEnabled).await)
                }
            },
            Err(e) => State::Done(Outcome::NotReady(
                CredentialsState::Failed {
                    reason: e.reason(),
                    message: e.to_string(),
                },
                azupay_retry(&e),
            )),
        }
    }

    /// OAuth 2.0 is enabled at Azupay but its secret is not stored here: a warning event (from
    /// `action`), and `CredentialsLost` in the status.
    async fn credentials_lost(&self, action: EventAction) -> Outcome {
        let msg = credentials_lost_message(&self.az.client_id, &self.store.secret_name);
        self.event(
            EventType::Warning,
            Reason::CredentialsLost,
            action,
            msg.clone(),
        )
        .await;
        Outcome::NotReady(CredentialsState::Lost(msg), None)
    }

    /// Calls enable (once).
    async fn enable(&self, api_key: SecretString) -> State {
        self.ctx.with_state(self.oac, |s| s.enable_called = true);
        info!(oauthclient = %self.oac.name_any(), client_id = %self.az.client_id, "enabling OAuth 2.0 at Azupay");
        match self
            .azupay
            .enable(&self.az.endpoint, &self.az.client_id, &api_key)
            .await
        {
            Ok((details, secret)) => {
                self.ctx.metrics.enable_call("success");
                State::Store { details, secret }
            }
            Err(AzupayError::AlreadyEnabled) => {
                self.ctx.metrics.enable_call("already_enabled");
                State::Done(self.credentials_lost(EventAction::Enable).await)
            }
            Err(e) => {
                self.ctx.metrics.enable_call("failure");
                let verify = e.may_have_taken_effect();
                self.event(
                    EventType::Warning,
                    e.reason(),
                    EventAction::Enable,
                    if verify {
                        format!(
                            "enabling OAuth 2.0 failed: {e}; asking Azupay whether it took effect"
                        )
                    } else {
                        format!("enabling OAuth 2.0 failed: {e}")
                    },
                )
                .await;
                if verify {
                    State::Verify { api_key, error: e }
                } else {
                    State::Done(Self::enable_failed(&e))
                }
            }
        }
    }

    /// The outcome of an enable call that failed without taking effect: shown, retried later
    /// (the retry asks the details endpoint first, as every attempt does).
    fn enable_failed(e: &AzupayError) -> Outcome {
        Outcome::NotReady(
            CredentialsState::Failed {
                reason: e.reason(),
                message: e.to_string(),
            },
            azupay_retry(e),
        )
    }

    /// After an enable call without a usable answer: enabled at Azupay means its one-time
    /// secret was issued and lost with the answer — `CredentialsLost` now, never a second
    /// call; not enabled (or no answer) means the failure is shown and retried later.
    async fn verify(&self, api_key: &SecretString, error: AzupayError) -> State {
        match self
            .azupay
            .details(&self.az.endpoint, &self.az.client_id, api_key)
            .await
        {
            Ok(d) if after_details(d.as_ref()) == AfterDetails::CredentialsLost => {
                warn!(oauthclient = %self.oac.name_any(), client_id = %self.az.client_id, error = %error, "the enable call took effect at Azupay but its answer was lost");
                State::Done(self.credentials_lost(EventAction::CheckEnabled).await)
            }
            Ok(_) => State::Done(Self::enable_failed(&error)),
            Err(e) => {
                warn!(oauthclient = %self.oac.name_any(), error = %e, "cannot ask Azupay whether the failed enable call took effect; the next attempt asks first");
                State::Done(Self::enable_failed(&error))
            }
        }
    }

    /// The operator's namespace, where recovery Secrets live.
    fn recovery_api(&self) -> Api<Secret> {
        Api::namespaced(self.ctx.client.clone(), &self.ctx.operator_namespace)
    }

    /// The name of this OAuthClient's recovery Secret (`None` without a uid).
    fn recovery_name(&self) -> Option<String> {
        self.oac.uid().map(|uid| recovery_secret_name(&uid))
    }

    /// This OAuthClient's recovery Secret and the credentials it holds, if there is one. An
    /// error (it may exist but cannot be read) fails the reconcile: deciding "not enabled" or
    /// "lost" without knowing would be wrong.
    async fn recovered(&self) -> Result<Option<(StoredCredentials, String)>, Error> {
        let Some(name) = self.recovery_name() else {
            return Ok(None);
        };
        let namespace = &self.ctx.operator_namespace;
        let found = self
            .recovery_api()
            .get_opt(&name)
            .await
            .map_err(|e| Error::kube(recovery_read_context(&name, namespace, &e))(e))?;
        Ok(found
            .as_ref()
            .and_then(|s| recovered_credentials(s, self.oac))
            .map(|c| (c, name)))
    }

    /// Deletes a recovery Secret whose secret is already in the credentials Secret (`stored`).
    /// Best effort: looked at again by the next process.
    async fn remove_delivered_recovery(&self, stored: &StoredCredentials) {
        use secrecy::ExposeSecret;
        let found = match self.recovered().await {
            Ok(found) => found,
            Err(e) => {
                warn!(oauthclient = %self.oac.name_any(), error = %e, "cannot look for a recovery Secret left behind");
                return;
            }
        };
        let Some((recovered, name)) = found else {
            return;
        };
        if recovered.client_secret.expose_secret() != stored.client_secret.expose_secret() {
            warn!(oauthclient = %self.oac.name_any(), namespace = %self.ctx.operator_namespace, recovery = %name, "a recovery Secret holds another client secret than the credentials Secret; kept for an admin to look at");
            return;
        }
        self.delete_recovery(&name).await;
    }

    /// Deletes the recovery Secret `name` (gone already counts as done).
    async fn delete_recovery(&self, name: &str) {
        match self.recovery_api().delete(name, &Default::default()).await {
            Ok(_) => {
                info!(oauthclient = %self.oac.name_any(), namespace = %self.ctx.operator_namespace, recovery = %name, "recovery Secret deleted: its secret is in the credentials Secret");
            }
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => {
                warn!(oauthclient = %self.oac.name_any(), recovery = %name, error = %kube_message(&e), "cannot delete the delivered recovery Secret; trying again after the next restart");
            }
        }
    }

    /// The message of `CredentialsWriteFailed` while the secret waits in the recovery Secret.
    fn recovery_message(&self, name: &str, e: &kube::Error) -> String {
        format!(
            "OAuth 2.0 is enabled at Azupay but writing Secret {} failed: {}; the client secret \
             is kept in Secret {}/{name} (the operator's namespace) and written to {} as soon as \
             that succeeds (restarting the operator is safe): fix the cause",
            self.store.secret_name,
            kube_message(e),
            self.ctx.operator_namespace,
            self.store.secret_name,
        )
    }

    /// After a refused write of the one-time secret: creates (create-only) the recovery Secret
    /// holding it. `Some` when the secret is kept there (created now, or found there already):
    /// the flow ends with `CredentialsWriteFailed` and a retry soon. `None` when it could not
    /// be kept: the caller keeps it in memory and retries.
    async fn keep_for_recovery(
        &self,
        details: &AzupayConnectionDetails,
        secret: &SecretString,
        write_error: &kube::Error,
    ) -> Option<Outcome> {
        use secrecy::ExposeSecret;
        let recovery = recovery_secret(
            self.oac,
            &self.ctx.operator_namespace,
            &details.oauth2_client_id,
            secret,
            &details.oauth2_token_url,
        )?;
        let name = recovery.metadata.name.clone()?;
        let pp = PostParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PostParams::default()
        };
        match self.recovery_api().create(&pp, &recovery).await {
            Ok(_) => {}
            // create-only: one there already must hold this very secret
            Err(kube::Error::Api(e)) if e.code == 409 => match self.recovered().await {
                Ok(Some((kept, _)))
                    if kept.client_secret.expose_secret() == secret.expose_secret() => {}
                _ => {
                    warn!(oauthclient = %self.oac.name_any(), recovery = %name, "a recovery Secret of another secret is in the way; holding the secret in memory");
                    return None;
                }
            },
            Err(e) => {
                warn!(oauthclient = %self.oac.name_any(), namespace = %self.ctx.operator_namespace, recovery = %name, error = %kube_message(&e), "cannot create the recovery Secret either; holding the secret in memory");
                return None;
            }
        }
        warn!(oauthclient = %self.oac.name_any(), namespace = %self.ctx.operator_namespace, recovery = %name, error = %kube_message(write_error), "storing the Azupay client secret failed; kept in the recovery Secret until it can be written");
        self.ctx
            .with_state(self.oac, |s| s.recovery_write_failed = true);
        let message = self.recovery_message(&name, write_error);
        self.event(
            EventType::Warning,
            Reason::CredentialsWriteFailed,
            EventAction::StoreCredentials,
            message.clone(),
        )
        .await;
        Some(Outcome::NotReady(
            CredentialsState::Failed {
                reason: Reason::CredentialsWriteFailed,
                message,
            },
            Some(RECOVERY_RETRY),
        ))
    }

    /// Writes the secret of the recovery Secret to the credentials Secret, then deletes the
    /// recovery Secret; never calls Azupay's enable endpoint.
    async fn deliver(
        &self,
        recovered: StoredCredentials,
        api_key: SecretString,
        key_version: String,
    ) -> State {
        let name = self.recovery_name().unwrap_or_default();
        let desired = secrets::credentials_secret(
            self.oac,
            self.store,
            &recovered.client_id,
            &recovered.client_secret,
            recovered.token_url.as_deref().unwrap_or_default(),
        );
        if let Err(e) = self
            .secrets
            .patch(
                &self.store.secret_name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&desired),
            )
            .await
        {
            let message = self.recovery_message(&name, &e);
            // one event per process, not one per retry
            let first = self.ctx.with_state(self.oac, |s| {
                !std::mem::replace(&mut s.recovery_write_failed, true)
            });
            warn!(oauthclient = %self.oac.name_any(), recovery = %name, error = %kube_message(&e), "writing the recovered Azupay client secret failed; it stays in the recovery Secret");
            if first {
                self.event(
                    EventType::Warning,
                    Reason::CredentialsWriteFailed,
                    EventAction::StoreCredentials,
                    message.clone(),
                )
                .await;
            }
            return State::Done(Outcome::NotReady(
                CredentialsState::Failed {
                    reason: Reason::CredentialsWriteFailed,
                    message,
                },
                Some(RECOVERY_RETRY),
            ));
        }
        self.ctx
            .with_existing_state(self.oac, |s| s.recovery_write_failed = false);
        self.delete_recovery(&name).await;
        self.event(
            EventType::Normal,
            Reason::CredentialsStored,
            EventAction::StoreCredentials,
            format!(
                "OAuth 2.0 client secret stored in Secret {} (taken from the recovery Secret {}/{name}, now deleted)",
                self.store.secret_name, self.ctx.operator_namespace
            ),
        )
        .await;
        State::UseStored {
            stored: recovered,
            api_key,
            key_version,
        }
    }

    /// Persists the returned secret, retrying while it is held in memory only.
    async fn store(&self, details: AzupayConnectionDetails, secret: SecretString) -> State {
        let store = self.store;
        let desired = secrets::credentials_secret(
            self.oac,
            store,
            &details.oauth2_client_id,
            &secret,
            &details.oauth2_token_url,
        );
        // counted (gauge, /readyz) until written, or until this flow ends in any way
        let held = self.ctx.metrics.hold_secret();
        let mut delay = Duration::from_millis(500);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            match self
                .secrets
                .patch(
                    &store.secret_name,
                    &PatchParams::apply(FIELD_MANAGER).force(),
                    &Patch::Apply(&desired),
                )
                .await
            {
                Ok(_) => {
                    drop(held);
                    break;
                }
                Err(e) => {
                    // kept in the recovery Secret: not held in memory only any more; the next
                    // reconcile (of this process or, after a restart, of the next) delivers it
                    if let Some(outcome) = self.keep_for_recovery(&details, &secret, &e).await {
                        drop(held);
                        return State::Done(outcome);
                    }
                    warn!(oauthclient = %self.oac.name_any(), attempt, error = %kube_message(&e), "storing the Azupay client secret failed; retrying (held in memory only)");
                    if attempt == 1 {
                        (self.report)(CredentialsState::Failed {
                            reason: Reason::CredentialsWriteFailed,
                            message: format!(
                                "OAuth 2.0 is enabled at Azupay but writing Secret {} failed: {}; \
                                 retrying with the secret held in memory only: fix the cause and \
                                 do not restart the operator until CredentialsStored is True",
                                store.secret_name,
                                kube_message(&e)
                            ),
                        })
                        .await;
                        self.event(
                            EventType::Warning,
                            Reason::CredentialsWriteFailed,
                            EventAction::StoreCredentials,
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
        self.event(
            EventType::Normal,
            Reason::CredentialsStored,
            EventAction::Enable,
            format!(
                "OAuth 2.0 enabled at Azupay; client secret stored in Secret {}",
                store.secret_name
            ),
        )
        .await;
        State::Done(Outcome::Ready(Resolved {
            client_id: details.oauth2_client_id.clone(),
            client_secret: secret,
            token_url: Some(details.oauth2_token_url.clone()),
            details: Some(details),
        }))
    }
}

/// The context of a failed read of the recovery Secret `name` in the operator's `namespace`.
/// A refusal names the fix: the operator's identity lacks the recovery Role there (an upgrade
/// that changed the image but not the RBAC, or `--operator-namespace`/`POD_NAMESPACE` naming
/// another namespace than the one the Role is in).
fn recovery_read_context(name: &str, namespace: &str, e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) if status.code == 403 => format!(
            "reading the recovery Secret {name} in the operator's namespace {namespace}: refused; \
             the operator needs get, create and delete on Secrets in {namespace} (the Role \
             <release>-recovery of the Helm chart, clientcreds-operator-recovery in deploy/rbac.yaml); \
             apply the RBAC of this version, or set --operator-namespace (POD_NAMESPACE) to the \
             namespace that Role is in"
        ),
        _ => format!("reading the recovery Secret {name} in the operator's namespace {namespace}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use std::collections::BTreeMap;

    fn api_error(code: u16, reason: &str) -> kube::Error {
        kube::Error::Api(Box::new(kube::core::Status {
            code,
            reason: reason.to_owned(),
            message: "secrets \"clientcreds-recovery-1\" is forbidden".to_owned(),
            ..Default::default()
        }))
    }

    #[test]
    fn a_refused_recovery_read_names_the_role_and_the_namespace_setting() {
        let refused = recovery_read_context(
            "clientcreds-recovery-1",
            "ops",
            &api_error(403, "Forbidden"),
        );
        for part in [
            "clientcreds-recovery-1",
            "ops",
            "get, create and delete",
            "-recovery",
            "--operator-namespace",
            "POD_NAMESPACE",
        ] {
            assert!(refused.contains(part), "{part:?} missing from: {refused}");
        }
        let other = recovery_read_context(
            "clientcreds-recovery-1",
            "ops",
            &api_error(500, "InternalError"),
        );
        assert!(other.contains("clientcreds-recovery-1") && other.contains("ops"));
        assert!(
            !other.contains("Role"),
            "only a refusal blames the RBAC: {other}"
        );
    }

    fn secret(data: &[(&str, &str)], state: Option<&str>) -> Secret {
        let mut s = Secret::default();
        if !data.is_empty() {
            s.data = Some(
                data.iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                    .collect(),
            );
        }
        if let Some(state) = state {
            s.metadata.annotations = Some(BTreeMap::from([(
                ENABLE_STATE_ANNOTATION.to_owned(),
                state.to_owned(),
            )]));
        }
        s
    }

    #[test]
    fn enable_once_decisions() {
        assert_eq!(next_step(None, false, false), EnableStep::MarkPending);
        assert_eq!(next_step(None, false, true), EnableStep::CheckDetails);
        let pending = secret(&[], Some("pending"));
        assert_eq!(
            next_step(Some(&pending), true, false),
            EnableStep::CheckDetails
        );
        let stored = secret(
            &[("client_id", "c"), ("client_secret", "s")],
            Some("enabled"),
        );
        assert_eq!(next_step(Some(&stored), true, true), EnableStep::UseStored);
        // an admin-provided Secret (not the operator's) is read and used, never written
        let admin = secret(&[("client_id", "c"), ("client_secret", "s")], None);
        assert_eq!(next_step(Some(&admin), false, false), EnableStep::UseStored);
        // the operator's own Secret without a secret and without the mark: mark, then enable
        let empty = secret(&[("client_id", "c")], None);
        assert_eq!(
            next_step(Some(&empty), true, false),
            EnableStep::MarkPending
        );
        // someone else's Secret without a secret is never marked or written, even with a mark
        // copied onto it, even after this process called enable
        for called in [false, true] {
            assert_eq!(next_step(Some(&empty), false, called), EnableStep::Conflict);
            assert_eq!(
                next_step(Some(&pending), false, called),
                EnableStep::Conflict
            );
        }
    }

    #[test]
    fn the_enable_claim_is_a_lock() {
        let now: Timestamp = "2026-01-01T00:10:00Z".parse().unwrap();
        let hold = claim_hold(Duration::from_secs(120));
        assert_eq!(hold, Duration::from_secs(150));
        let claimed = |holder: &str, at: &str, rv: Option<&str>| {
            let mut s = secret(&[], Some("pending"));
            let a = s.metadata.annotations.as_mut().unwrap();
            a.insert(secrets::ENABLE_HOLDER_ANNOTATION.into(), holder.into());
            a.insert(secrets::ENABLE_CLAIMED_AT_ANNOTATION.into(), at.into());
            s.metadata.resource_version = rv.map(str::to_owned);
            s
        };
        let claim = |rv: &str| LockStep::Claim {
            resource_version: rv.into(),
        };
        // no Secret: create-only
        assert_eq!(lock_step(None, "me", now, hold), LockStep::Create);
        // a Secret without a claim (an older mark, or ours without data): claim at its version
        let mut unclaimed = secret(&[], Some("pending"));
        unclaimed.metadata.resource_version = Some("7".into());
        assert_eq!(lock_step(Some(&unclaimed), "me", now, hold), claim("7"));
        // another instance's claim 60 s old: wait the 90 s left, never claim
        let live = claimed("other", "2026-01-01T00:09:00Z", Some("8"));
        assert_eq!(
            lock_step(Some(&live), "me", now, hold),
            LockStep::Wait(Duration::from_secs(90))
        );
        // a claim from the future (clock skew) is waited for, at most `hold`
        let future = claimed("other", "2026-01-01T00:20:00Z", Some("8"));
        assert!(
            matches!(lock_step(Some(&future), "me", now, hold), LockStep::Wait(d) if d <= hold)
        );
        // our own live claim: claim again (renews it, still with the precondition)
        let mine = claimed("me", "2026-01-01T00:09:00Z", Some("9"));
        assert_eq!(lock_step(Some(&mine), "me", now, hold), claim("9"));
        // another instance's claim older than the hold (it died): take it over
        let stale = claimed("other", "2026-01-01T00:07:29Z", Some("10"));
        assert_eq!(lock_step(Some(&stale), "me", now, hold), claim("10"));
        // an unreadable claim time counts as no claim
        let garbled = claimed("other", "yesterday", Some("11"));
        assert_eq!(lock_step(Some(&garbled), "me", now, hold), claim("11"));
        // never a write without a precondition: no resourceVersion → create (fails: it exists)
        let no_rv = claimed("other", "2026-01-01T00:00:00Z", None);
        assert_eq!(lock_step(Some(&no_rv), "me", now, hold), LockStep::Create);
        // the patch carries the precondition and touches annotations only
        let p = secrets::claim_patch("12", "me", now, "k");
        assert_eq!(p["metadata"]["resourceVersion"], "12");
        assert_eq!(
            p["metadata"]["annotations"][secrets::ENABLE_HOLDER_ANNOTATION],
            "me"
        );
        assert_eq!(p["metadata"]["labels"][secrets::AZUPAY_CLIENT_LABEL], "k");
        assert_eq!(p.as_object().unwrap().len(), 1);
    }

    #[test]
    fn one_azupay_client_per_cluster() {
        let now: Timestamp = "2026-01-01T00:10:00Z".parse().unwrap();
        let hold = Duration::from_secs(150);
        let labelled = |ns: &str, name: &str, oac: &str, mut s: Secret| {
            s.metadata.namespace = Some(ns.into());
            s.metadata.name = Some(name.into());
            s.metadata.labels = Some(BTreeMap::from([(
                secrets::OAUTHCLIENT_LABEL.to_owned(),
                oac.to_owned(),
            )]));
            s
        };
        let claim = |at: &str| {
            let mut s = secret(&[], Some("pending"));
            let a = s.metadata.annotations.as_mut().unwrap();
            a.insert(secrets::ENABLE_HOLDER_ANNOTATION.into(), "h".into());
            a.insert(secrets::ENABLE_CLAIMED_AT_ANNOTATION.into(), at.into());
            s
        };
        let mine = ("shop", "creds-b");
        let at_09 = "2026-01-01T00:09:00Z";
        // nobody else, or only our own Secret: free
        assert_eq!(client_in_use(&[], mine, now, now, hold), None);
        let own = labelled("shop", "creds-b", "b", claim(at_09));
        assert_eq!(client_in_use(&[own], mine, now, now, hold), None);
        // another OAuthClient stored its secret: in use, named
        let stored = labelled(
            "other",
            "creds-a",
            "a",
            secret(&[("client_id", "c"), ("client_secret", "s")], None),
        );
        assert_eq!(
            client_in_use(std::slice::from_ref(&stored), mine, now, now, hold).as_deref(),
            Some("other/a")
        );
        // another's live claim taken before ours: in use; taken after ours: we go on
        let live = labelled("other", "creds-a", "a", claim(at_09));
        assert_eq!(
            client_in_use(std::slice::from_ref(&live), mine, now, now, hold).as_deref(),
            Some("other/a")
        );
        let early: Timestamp = "2026-01-01T00:08:00Z".parse().unwrap();
        assert_eq!(
            client_in_use(std::slice::from_ref(&live), mine, early, now, hold),
            None
        );
        // the same claim time: namespace/name decides, the same way for both
        let same: Timestamp = at_09.parse().unwrap();
        assert_eq!(
            client_in_use(std::slice::from_ref(&live), mine, same, now, hold).as_deref(),
            Some("other/a")
        );
        let ours = labelled("shop", "creds-b", "b", claim(at_09));
        assert_eq!(
            client_in_use(&[ours], ("other", "creds-a"), same, now, hold),
            None
        );
        // a stale claim without a secret (its holder gave up) does not count
        let stale = labelled("other", "creds-a", "a", claim("2026-01-01T00:00:00Z"));
        assert_eq!(client_in_use(&[stale], mine, now, now, hold), None);
        let m = client_in_use_message("BIZ", "https://az/", "other/a");
        assert!(
            m.contains("spec.azupay.clientId") && m.contains("other/a"),
            "{m}"
        );
    }

    #[test]
    fn details_decide_between_enable_and_lost() {
        assert_eq!(after_details(None), AfterDetails::Enable);
        let d: AzupayConnectionDetails =
            serde_json::from_str(r#"{"oauth2ClientId":"x","oauth2TokenUrl":"https://t/"}"#)
                .unwrap();
        assert_eq!(after_details(Some(&d)), AfterDetails::CredentialsLost);
        let m = credentials_lost_message("BIZ", "creds");
        assert!(m.contains("Contact Azupay") && m.contains("creds"));
    }

    #[test]
    fn retry_soon_only_when_waiting_may_help() {
        assert_eq!(
            azupay_retry(&AzupayError::Transport(clientcreds::Error::InvalidToken(
                "x".into()
            ))),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            azupay_retry(&AzupayError::InvalidApiKey),
            Some(Duration::from_secs(600))
        );
    }
}
