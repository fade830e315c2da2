//! Phase 5, status: the status built from what the reconcile found (pure), and written with
//! one server-side apply.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use crate::context::Context;
use crate::crd::{OAuthClient, OAuthClientStatus, ProviderKind, TokenSecretSpec, TokenStatus};
pub use crate::credentials::CredentialsState;
use crate::secrets::FIELD_MANAGER;
use crate::{ConditionType, Error, Reason};

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
        /// Why.
        reason: Reason,
        /// Message (no secrets).
        message: String,
        /// The stored token's expiry, if one remains valid.
        expires_at: Option<Timestamp>,
        /// When the operator tries again.
        retry_at: Timestamp,
    },
    /// Not requested: PascalCase reason and message (scopes not allowed, no credentials, …).
    NotIssued {
        /// Why.
        reason: Reason,
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
    type_: ConditionType,
    ok: bool,
    reason: Reason,
    message: String,
    generation: Option<i64>,
    now: Timestamp,
) -> Condition {
    let status = if ok { "True" } else { "False" };
    let last_transition_time = prev
        .iter()
        .find(|c| c.type_ == type_.as_str() && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or(Time(now));
    Condition {
        type_: type_.as_str().to_owned(),
        status: status.to_owned(),
        reason: reason.as_str().to_owned(),
        message,
        observed_generation: generation,
        last_transition_time,
    }
}

/// Builds the status: `Ready`, `CredentialsStored`, `TokensIssued` and `TokensRefreshed`
/// conditions (keeping `lastTransitionTime` when a condition's status did not change),
/// per-token times, and the earliest expiry.
pub fn build_status(
    prev: Option<&OAuthClientStatus>,
    input: StatusInput,
    now: Timestamp,
) -> OAuthClientStatus {
    let prev_conditions = prev.map(|p| p.conditions.as_slice()).unwrap_or_default();
    let g = input.generation;
    let (cred_ok, cred_reason, cred_message) = match (&input.invalid, &input.credentials) {
        (Some(problems), _) => (false, Reason::InvalidSpec, problems.join("; ")),
        (None, None) => (false, Reason::Unknown, "not reconciled yet".to_owned()),
        (None, Some(c)) => match c {
            CredentialsState::Stored => (
                true,
                Reason::Stored,
                "the OAuth 2.0 client secret is stored in the credentials Secret".to_owned(),
            ),
            CredentialsState::Referenced => (
                true,
                Reason::Referenced,
                "the referenced Secret holds a client id and secret".to_owned(),
            ),
            CredentialsState::EnablePending => (
                false,
                Reason::EnablePending,
                "OAuth 2.0 is being enabled at the provider; the client secret is not stored yet"
                    .to_owned(),
            ),
            CredentialsState::Lost(m) => (false, Reason::CredentialsLost, m.clone()),
            CredentialsState::Failed { reason, message } => (false, *reason, message.clone()),
        },
    };
    let mut token_statuses = Vec::new();
    let mut failing: Vec<String> = Vec::new();
    let mut failing_reason: Option<Reason> = None;
    let mut expiries = Vec::new();
    // Failed refreshes, including those whose previous token still serves.
    let mut refresh_failing: Vec<String> = Vec::new();
    let mut refresh_reason: Option<Reason> = None;
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
                refresh_failing.push(format!("{}: {message}", spec.secret_name));
                refresh_reason.get_or_insert(*reason);
                if let Some(e) = expires_at.filter(|e| *e > now) {
                    expiries.push(e);
                } else {
                    failing.push(format!("{}: {message}", spec.secret_name));
                    failing_reason.get_or_insert(*reason);
                }
            }
            TokenOutcome::NotIssued { reason, message } => {
                st.last_error = Some(message.clone());
                failing.push(format!("{}: {message}", spec.secret_name));
                failing_reason.get_or_insert(*reason);
            }
        }
        token_statuses.push(st);
    }
    let (tok_ok, tok_reason, tok_message) = if input.invalid.is_some() {
        (
            false,
            Reason::InvalidSpec,
            "the spec is invalid; see CredentialsStored".to_owned(),
        )
    } else if input.tokens.is_empty() {
        (
            false,
            Reason::WaitingForCredentials,
            "no token requested yet".to_owned(),
        )
    } else if let Some(reason) = failing_reason {
        (false, reason, failing.join("; "))
    } else {
        (
            true,
            Reason::Issued,
            format!("{} token Secret(s) hold a valid token", input.tokens.len()),
        )
    };
    let (refreshed_ok, refreshed_reason, refreshed_message) = match refresh_reason {
        Some(reason) => (false, reason, refresh_failing.join("; ")),
        None if !tok_ok => (false, tok_reason, tok_message.clone()),
        None => (
            true,
            Reason::Refreshed,
            "the last refresh of every token Secret succeeded".to_owned(),
        ),
    };
    let ready = cred_ok && tok_ok;
    let (ready_reason, ready_message) = if ready {
        (
            Reason::Ready,
            "credentials stored and every token Secret is valid".to_owned(),
        )
    } else if !cred_ok {
        (cred_reason, cred_message.clone())
    } else {
        (tok_reason, tok_message.clone())
    };
    let conditions = vec![
        condition(
            prev_conditions,
            ConditionType::Ready,
            ready,
            ready_reason,
            ready_message,
            g,
            now,
        ),
        condition(
            prev_conditions,
            ConditionType::CredentialsStored,
            cred_ok,
            cred_reason,
            cred_message,
            g,
            now,
        ),
        condition(
            prev_conditions,
            ConditionType::TokensIssued,
            tok_ok,
            tok_reason,
            tok_message,
            g,
            now,
        ),
        condition(
            prev_conditions,
            ConditionType::TokensRefreshed,
            refreshed_ok,
            refreshed_reason,
            refreshed_message,
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
        // whole seconds, rounded down: the printer column reads `2026-12-02T15:07:58Z`
        next_expiry: expiries.into_iter().min().map(|e| {
            Timestamp::from_second(e.as_second())
                .unwrap_or(e)
                .to_string()
        }),
        last_refresh_request: input.last_refresh_request,
        cached_digest: None,
    }
}

/// The digest of a status: equal digests mean equal statuses (SHA-256 of its JSON; a
/// struct's fields serialize in a fixed order).
pub fn digest(status: &OAuthClientStatus) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    // serializing a struct of strings, numbers and lists cannot fail
    let json = serde_json::to_vec(status).unwrap_or_default();
    Sha256::digest(&json).into()
}

/// Slims the status of an OAuthClient kept in the operator's cache to what the reconciler
/// reads, and records the digest of the full status so that [`apply_status`] still skips a
/// write exactly when nothing changed.
///
/// Kept: each condition's type, status and `lastTransitionTime` (carried over while a
/// condition does not change), `observedGeneration`, the names of the token Secrets listed
/// (whether one must be read), the last refresh request acted on and, for Azupay, the
/// connection details (client id, token URL, allowed scopes, TTL). Dropped: messages, reasons,
/// per-token times and errors, `nextExpiry` — about half the memory of the cache at scale
/// (BENCHMARKS.md, the operator at scale).
pub fn slim_for_cache(oac: &mut OAuthClient) {
    let azupay = oac.spec.provider == ProviderKind::Azupay;
    let Some(status) = oac.status.as_mut() else {
        return;
    };
    if status.cached_digest.is_some() {
        return; // already slimmed
    }
    status.cached_digest = Some(digest(status));
    for c in &mut status.conditions {
        c.reason = String::new();
        c.message = String::new();
        c.observed_generation = None;
    }
    for t in &mut status.tokens {
        *t = TokenStatus {
            secret_name: std::mem::take(&mut t.secret_name),
            ..TokenStatus::default()
        };
    }
    status.next_expiry = None;
    if !azupay {
        status.oauth2_client_id = None;
        status.token_url = None;
        status.allowed_scopes = None;
        status.ttl_seconds = None;
    }
}

/// Whether `status` is what the object already shows: by digest for a slimmed cached copy,
/// else by value.
pub fn unchanged(shown: Option<&OAuthClientStatus>, status: &OAuthClientStatus) -> bool {
    match shown {
        None => false,
        Some(shown) => match shown.cached_digest {
            Some(d) => d == digest(status),
            None => shown == status,
        },
    }
}

/// Writes `status` with one server-side apply (skipped when it is what the object already
/// shows, see [`unchanged`]), and updates the readiness metric.
pub async fn apply_status(
    ctx: &Context,
    oac: &OAuthClient,
    status: OAuthClientStatus,
) -> Result<(), Error> {
    if let Some(ready) = status
        .conditions
        .iter()
        .find(|c| c.type_ == ConditionType::Ready.as_str())
    {
        ctx.metrics.ready(
            &oac.namespace().unwrap_or_default(),
            &oac.name_any(),
            ready.status == "True",
            &ready.reason,
        );
    }
    if unchanged(oac.status.as_ref(), &status) {
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
    .map_err(Error::kube("writing OAuthClient status"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::SignedDuration;

    fn now() -> Timestamp {
        "2026-01-01T00:00:00Z".parse().unwrap()
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
        assert_eq!(by("TokensRefreshed").status, "True");
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
                            reason: Reason::ScopesNotAllowed,
                            message: "RestAPI/POST:x is not allowed".into(),
                        },
                    ),
                    (
                        spec("b"),
                        TokenOutcome::Failed {
                            reason: Reason::TokenRequestFailed,
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
        // b still has a valid token: not failing yet, but its error and retry time are shown,
        // and TokensRefreshed says its refresh fails
        assert_eq!(st.tokens[1].last_error.as_deref(), Some("server_error"));
        assert_eq!(by("TokensRefreshed").status, "False");
        assert!(by("TokensRefreshed").message.contains("b: server_error"));
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

    #[test]
    fn a_failed_refresh_of_a_valid_token_keeps_ready_and_shows_tokens_refreshed_false() {
        let n = now();
        let st = build_status(
            None,
            StatusInput {
                credentials: Some(CredentialsState::Referenced),
                tokens: vec![(
                    spec("a"),
                    TokenOutcome::Failed {
                        reason: Reason::TokenWriteFailed,
                        message: "writing token Secret a failed: denied".into(),
                        expires_at: Some(n + SignedDuration::from_secs(100)),
                        retry_at: n + SignedDuration::from_secs(2),
                    },
                )],
                ..StatusInput::default()
            },
            n,
        );
        let by = |t: &str| st.conditions.iter().find(|c| c.type_ == t).unwrap().clone();
        assert_eq!(by("Ready").status, "True", "the old token still serves");
        assert_eq!(by("TokensRefreshed").status, "False");
        assert_eq!(by("TokensRefreshed").reason, "TokenWriteFailed");
        assert!(
            st.tokens[0]
                .last_error
                .as_deref()
                .unwrap()
                .contains("denied")
        );
    }

    /// The cache keeps a slimmed status; a write is still skipped exactly when the status
    /// built is the one the API server shows.
    #[test]
    fn a_slimmed_cached_status_still_tells_unchanged_from_changed() {
        let n = now();
        let valid = |refresh_at| {
            vec![(
                spec("a"),
                TokenOutcome::Valid {
                    expires_at: n + SignedDuration::from_secs(900),
                    refresh_at,
                },
            )]
        };
        let input = |tokens| StatusInput {
            generation: Some(2),
            credentials: Some(CredentialsState::Referenced),
            tokens,
            oauth2_client_id: Some("client".into()),
            token_url: Some("https://payu.test/token".into()),
            last_refresh_request: Some("r1".into()),
            ..StatusInput::default()
        };
        let written = build_status(None, input(valid(n)), n);
        // what the API server shows: the JSON of what was written, read back
        let shown: OAuthClientStatus =
            serde_json::from_value(serde_json::to_value(&written).unwrap()).unwrap();
        let mut oac = OAuthClient::new("x", crate::crd::test_specs::payu("creds"));
        oac.status = Some(shown);
        slim_for_cache(&mut oac);
        let cached = oac.status.clone().unwrap();

        // slimmed: only what the reconciler reads
        assert!(cached.conditions.iter().all(|c| c.message.is_empty()));
        assert!(cached.conditions.iter().all(|c| c.reason.is_empty()));
        assert_eq!(cached.tokens[0].secret_name, "a");
        assert_eq!(cached.tokens[0].expires_at, None);
        assert_eq!(cached.next_expiry, None);
        assert_eq!(cached.token_url, None, "not Azupay: not read");
        assert_eq!(cached.observed_generation, Some(2));
        assert_eq!(cached.last_refresh_request.as_deref(), Some("r1"));
        assert_eq!(cached.conditions[0].last_transition_time, Time(n));
        // the digest is not part of the resource
        assert!(
            !serde_json::to_string(&cached)
                .unwrap()
                .contains("cachedDigest")
        );

        // the same status, built again from the slimmed one a minute later: unchanged
        let later = n + SignedDuration::from_secs(60);
        let again = build_status(Some(&cached), input(valid(n)), later);
        assert!(
            unchanged(Some(&cached), &again),
            "no write when nothing changed"
        );
        // slimming twice keeps the digest of the full status
        slim_for_cache(&mut oac);
        assert!(unchanged(oac.status.as_ref(), &again));

        // any change is a write: a new refresh time, a failure's message
        let moved = build_status(Some(&cached), input(valid(later)), later);
        assert!(!unchanged(Some(&cached), &moved));
        let failed = build_status(
            Some(&cached),
            input(vec![(
                spec("a"),
                TokenOutcome::NotIssued {
                    reason: Reason::ScopesNotAllowed,
                    message: "x".into(),
                },
            )]),
            later,
        );
        assert!(!unchanged(Some(&cached), &failed));
        assert!(!unchanged(None, &again));

        // not slimmed (no digest): compared by value, as before
        assert!(unchanged(Some(&written), &written.clone()));
        assert!(!unchanged(Some(&written), &moved));
    }

    #[test]
    fn an_azupay_cached_status_keeps_the_connection_details() {
        let mut spec_ = crate::crd::test_specs::payu("creds");
        spec_.provider = ProviderKind::Azupay;
        let mut oac = OAuthClient::new("x", spec_);
        oac.status = Some(OAuthClientStatus {
            oauth2_client_id: Some("id".into()),
            token_url: Some("https://azupay.test/token".into()),
            allowed_scopes: Some(vec!["RestAPI/GET:balance".into()]),
            ttl_seconds: Some(3600),
            ..OAuthClientStatus::default()
        });
        slim_for_cache(&mut oac);
        let cached = oac.status.unwrap();
        assert_eq!(cached.oauth2_client_id.as_deref(), Some("id"));
        assert_eq!(
            cached.token_url.as_deref(),
            Some("https://azupay.test/token")
        );
        assert_eq!(cached.allowed_scopes.map(|s| s.len()), Some(1));
        assert_eq!(cached.ttl_seconds, Some(3600));
        assert!(cached.cached_digest.is_some());
    }
}
