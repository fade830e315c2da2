//! Phase 3, plan: what to do about each token Secret and when to come back. Pure functions of
//! what was read, the per-object state and a clock.
//!
//! ```
//! use clientcreds_operator::reconcile::plan::{plan_token, StoredToken, TokenPlan};
//! use jiff::{SignedDuration, Timestamp};
//!
//! let now: Timestamp = "2026-01-01T00:10:00Z".parse().unwrap();
//! let stored = StoredToken {
//!     expires_at: now + SignedDuration::from_secs(600),
//!     refresh_at: Some(now + SignedDuration::from_secs(60)),
//!     config_hash: Some("h".into()),
//!     refresh_answered: None,
//! };
//! // still good: no token request (also right after an operator restart)
//! assert!(matches!(plan_token(Some(&stored), "h", now, false), TokenPlan::Keep { .. }));
//! // the configuration changed: request a new one
//! assert!(matches!(plan_token(Some(&stored), "other", now, false), TokenPlan::Issue));
//! ```

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::Reason;
use crate::context::{Backoff, PendingToken};
use crate::crd::{OAuthClient, TokenSecretSpec};
use crate::reconcile::status::TokenOutcome;
use crate::refresh;
use crate::secrets;

pub use crate::secrets::{StoredToken, read_stored_token};

/// Whether a refresh request forces a new token for this token Secret: a request is set, the
/// status does not record it as acted on, and the stored token was not requested under it.
///
/// The last check makes a request answered exactly once even when the reconcile sees an
/// OAuthClient from a cache that does not have the status update yet (the token Secret is read
/// from the API server, so it is never stale).
///
/// ```
/// use clientcreds_operator::reconcile::plan::refresh_forced;
///
/// assert!(refresh_forced(Some("now"), None, None));
/// assert!(!refresh_forced(Some("now"), Some("now"), None)); // status: acted on
/// assert!(!refresh_forced(Some("now"), None, Some("now"))); // token already answers it
/// assert!(refresh_forced(Some("again"), Some("now"), Some("now")));
/// assert!(!refresh_forced(None, None, None));
/// ```
pub fn refresh_forced(
    request: Option<&str>,
    acted_on_in_status: Option<&str>,
    answered_by_stored_token: Option<&str>,
) -> bool {
    request.is_some() && request != acted_on_in_status && request != answered_by_stored_token
}

/// What to do about one token Secret.
#[derive(Clone, Debug, PartialEq)]
pub enum TokenPlan {
    /// The stored token is still good: keep it, come back at `refresh_at`.
    Keep {
        /// Its expiry.
        expires_at: Timestamp,
        /// When to refresh it.
        refresh_at: Timestamp,
    },
    /// Request a new token.
    Issue,
}

/// Decides whether a token Secret needs a new token: when there is none, it was requested with
/// another configuration, its refresh time has come, or a refresh was requested (`forced`).
pub fn plan_token(
    stored: Option<&StoredToken>,
    config_hash: &str,
    now: Timestamp,
    forced: bool,
) -> TokenPlan {
    let Some(stored) = stored else {
        return TokenPlan::Issue;
    };
    if forced || stored.config_hash.as_deref() != Some(config_hash) || stored.expires_at <= now {
        return TokenPlan::Issue;
    }
    let refresh_at = stored
        .refresh_at
        .unwrap_or(stored.expires_at)
        .min(stored.expires_at);
    if refresh_at <= now {
        TokenPlan::Issue
    } else {
        TokenPlan::Keep {
            expires_at: stored.expires_at,
            refresh_at,
        }
    }
}

/// A digest of everything a token depends on, so that a change (credentials rotated, scopes
/// edited, another token URL) gets a new token. It is a one-way SHA-256 digest, truncated.
pub fn config_hash(
    token_url: &str,
    client_id: &str,
    client_secret: &SecretString,
    scopes: &[String],
    audience: Option<&str>,
) -> String {
    let mut h = Sha256::new();
    for part in [
        token_url,
        client_id,
        client_secret.expose_secret(),
        audience.unwrap_or(""),
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    for s in scopes {
        h.update((s.len() as u64).to_be_bytes());
        h.update(s.as_bytes());
    }
    let digest = h.finalize();
    digest.iter().take(12).map(|b| format!("{b:02x}")).collect()
}

/// Everything known about one token Secret before deciding.
#[derive(Clone, Debug)]
pub struct TokenFacts<'a> {
    /// Its spec.
    pub spec: &'a TokenSecretSpec,
    /// The Secret of that name, if it was read and exists.
    pub existing: Option<&'a Secret>,
    /// What this process wrote there last, when it was not read again.
    pub written: Option<&'a StoredToken>,
    /// The digest of the configuration a token would be requested with now.
    pub config_hash: &'a str,
    /// The failure remembered from an earlier attempt.
    pub backoff: Option<&'a Backoff>,
    /// A token issued earlier whose Secret write failed.
    pub pending: Option<&'a PendingToken>,
}

/// What to do about one token Secret.
#[derive(Clone, Debug, PartialEq)]
pub enum TokenStep {
    /// Nothing can be done until something changes: report it.
    Refuse {
        /// Why.
        reason: Reason,
        /// What to do about it.
        message: String,
    },
    /// The stored token is good; come back at `refresh_at`.
    Keep {
        /// Its expiry.
        expires_at: Timestamp,
        /// When to refresh it.
        refresh_at: Timestamp,
    },
    /// The last attempt failed and its retry time has not come: report that failure.
    Wait(TokenOutcome),
    /// Request a new token and write it.
    Issue {
        /// The stored token, if there is one.
        stored: Option<StoredToken>,
        /// Whether a refresh request forces it.
        forced: bool,
    },
    /// Write the token issued earlier whose write failed: no new token request.
    Write {
        /// The stored token, if there is one.
        stored: Option<StoredToken>,
        /// The token to write.
        pending: Box<PendingToken>,
    },
}

/// Whether `secret` is a token Secret the operator made for `oac` (its labels, and `oac` as
/// owner): only such a Secret is ever written.
pub fn owned_token_secret(secret: &Secret, oac: &OAuthClient) -> bool {
    secrets::is_managed(secret, oac, secrets::TOKEN_ROLE)
        && secret
            .owner_references()
            .iter()
            .any(|o| Some(o.uid.as_str()) == oac.metadata.uid.as_deref())
}

/// The message of a token Secret name held by a Secret the operator did not make.
pub fn token_conflict_message(secret_name: &str) -> String {
    format!(
        "Secret {secret_name} exists and is not owned by this OAuthClient: delete it or pick another secretName"
    )
}

/// Decides what to do about one token Secret of `oac`.
pub fn plan_token_step(
    oac: &OAuthClient,
    facts: &TokenFacts<'_>,
    refresh_request: Option<&str>,
    now: Timestamp,
) -> TokenStep {
    let stored = match facts.written {
        Some(written) => Some(written.clone()),
        None => facts.existing.and_then(read_stored_token),
    };
    // A Secret by that name that we did not make for this OAuthClient (labels and owner) is
    // never overwritten.
    if let Some(existing) = facts.existing
        && !owned_token_secret(existing, oac)
    {
        return TokenStep::Refuse {
            reason: Reason::SecretConflict,
            message: token_conflict_message(&facts.spec.secret_name),
        };
    }
    let forced = refresh_forced(
        refresh_request,
        oac.status
            .as_ref()
            .and_then(|s| s.last_refresh_request.as_deref()),
        stored.as_ref().and_then(|s| s.refresh_answered.as_deref()),
    );
    match plan_token(stored.as_ref(), facts.config_hash, now, forced) {
        TokenPlan::Keep {
            expires_at,
            refresh_at,
        } => TokenStep::Keep {
            expires_at,
            refresh_at,
        },
        TokenPlan::Issue => {
            // A backoff runs: wait. A refresh request skips a backoff it did not cause, but
            // once an attempt for it failed, it waits like any other.
            let waits = |b: &&Backoff| {
                b.retry_at > now && (!forced || b.request.as_deref() == refresh_request)
            };
            if let Some(b) = facts.backoff.filter(waits) {
                return TokenStep::Wait(TokenOutcome::Failed {
                    reason: b.reason,
                    message: b.message.clone(),
                    expires_at: stored.as_ref().map(|s| s.expires_at).filter(|e| *e > now),
                    retry_at: b.retry_at,
                });
            }
            // A token issued for this configuration and not written yet is written instead of
            // requesting another, while it is not due for refresh itself.
            let usable = |p: &&PendingToken| {
                p.config_hash == facts.config_hash
                    && p.refresh_at > now
                    && (!forced || p.request.as_deref() == refresh_request)
            };
            match facts.pending.filter(usable) {
                Some(pending) => TokenStep::Write {
                    stored,
                    pending: Box::new(pending.clone()),
                },
                None => TokenStep::Issue { stored, forced },
            }
        }
    }
}

/// A failed attempt for one token Secret: a token request, or the write of its Secret.
#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    /// Why it failed.
    pub reason: Reason,
    /// What failed (no secrets).
    pub message: String,
    /// Whether asking again may help.
    pub retryable: bool,
    /// How long the server asked to wait.
    pub retry_after: Option<Duration>,
    /// The refresh request the attempt answered, if it was forced by one.
    pub request: Option<String>,
}

/// The backoff after `failure`, the `failures`-th in a row, by the shared refresh policy
/// ([`refresh::policy`]): `valid_until` is the stored token's expiry while it is valid, and
/// `jitter` a sample in `[0, 1)`.
pub fn backoff_after_failure(
    oac: &OAuthClient,
    now: Timestamp,
    failures: u32,
    valid_until: Option<Timestamp>,
    failure: Failure,
    jitter: f64,
) -> Backoff {
    let retry_at = refresh::retry_at(
        &refresh::policy(oac.spec.lifetime_fraction()),
        now,
        failures,
        valid_until,
        failure.retryable,
        failure.retry_after,
        jitter,
    );
    Backoff {
        failures,
        retry_at,
        reason: failure.reason,
        message: failure.message,
        request: failure.request,
    }
}

/// When to reconcile again: the earliest refresh or retry time of the outcomes (`None`: wait
/// for a change), at least `floor` from `now`.
pub fn requeue_after(
    outcomes: &[TokenOutcome],
    now: Timestamp,
    floor: Duration,
) -> Option<Duration> {
    refresh::earliest(outcomes.iter().filter_map(|o| match o {
        TokenOutcome::Valid { refresh_at, .. } => Some(*refresh_at),
        TokenOutcome::Failed { retry_at, .. } => Some(*retry_at),
        TokenOutcome::NotIssued { .. } => None,
    }))
    .map(|at| refresh::until(now, at).max(floor))
}

/// Whether token Secrets may have been dropped from the spec since the status last showed it:
/// only a spec change (a new generation) can drop one. An OAuthClient never edited
/// (generation 1), or whose status already shows its generation, needs no list of its labelled
/// token Secrets — which spares one API call per reconcile when OAuthClients are brought up
/// and after a restart.
pub fn token_secrets_may_be_stale(oac: &OAuthClient) -> bool {
    let generation = oac.metadata.generation;
    let observed = oac.status.as_ref().and_then(|s| s.observed_generation);
    generation.is_some_and(|g| g > 1) && observed != generation
}

/// The token Secrets among `owned` (listed by label) that the operator made for `oac` (labels
/// and owner reference) and are no longer in its spec: to be deleted.
pub fn stale_token_secrets(oac: &OAuthClient, owned: &[Secret]) -> Vec<String> {
    owned
        .iter()
        .filter(|s| {
            secrets::is_managed(s, oac, secrets::TOKEN_ROLE)
                && s.owner_references()
                    .iter()
                    .any(|o| Some(o.uid.as_str()) == oac.metadata.uid.as_deref())
        })
        .map(|s| s.name_any())
        .filter(|name| !oac.spec.tokens.iter().any(|t| &t.secret_name == name))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::test_specs::payu;
    use crate::secrets::{IssuedToken, token_secret};
    use jiff::SignedDuration;

    fn now() -> Timestamp {
        "2026-01-01T00:00:00Z".parse().unwrap()
    }

    fn oac() -> OAuthClient {
        let mut s = payu("c");
        s.tokens = vec![spec("a"), spec("b")];
        let mut o = OAuthClient::new("payments", s);
        o.metadata.namespace = Some("shop".into());
        o.metadata.uid = Some("uid-1".into());
        o
    }

    fn spec(name: &str) -> TokenSecretSpec {
        TokenSecretSpec {
            secret_name: name.into(),
            scopes: vec![],
        }
    }

    /// A token Secret of `oac` expiring `ttl` seconds after now(), refreshed at half of it.
    fn written(
        oac: &OAuthClient,
        name: &str,
        ttl: i64,
        hash: &str,
        answered: Option<&str>,
    ) -> Secret {
        let expires = now() + SignedDuration::from_secs(ttl);
        let token = clientcreds::Token::with_expiry(
            "tok",
            "Bearer",
            std::time::SystemTime::from(expires),
            None,
        )
        .unwrap();
        let issued = IssuedToken::new(&token, &spec(name), now()).unwrap();
        token_secret(
            oac,
            &spec(name),
            &issued,
            now() + SignedDuration::from_secs(ttl / 2),
            hash,
            answered,
        )
    }

    #[test]
    fn token_steps_table() {
        let o = oac();
        let n = now();
        let good = written(&o, "a", 600, "h", None);
        let answered = written(&o, "a", 600, "h", Some("r1"));
        let mut foreign = good.clone();
        foreign.metadata.owner_references = None;
        // our owner reference, but not made by the operator (no managed-by label)
        let mut unlabelled = good.clone();
        unlabelled.metadata.labels = None;
        let backoff = Backoff {
            failures: 2,
            retry_at: n + SignedDuration::from_secs(30),
            reason: Reason::TokenRequestFailed,
            message: "server_error".into(),
            request: None,
        };
        let past_backoff = Backoff {
            retry_at: n - SignedDuration::from_secs(1),
            ..backoff.clone()
        };
        type Case<'a> = (
            &'a str,
            Option<&'a Secret>,
            &'a str,
            Option<&'a Backoff>,
            Option<&'a str>,
            fn(&TokenStep) -> bool,
        );
        let cases: Vec<Case<'_>> = vec![
            ("no Secret: issue", None, "h", None, None, |s| {
                matches!(
                    s,
                    TokenStep::Issue {
                        stored: None,
                        forced: false
                    }
                )
            }),
            ("good token: keep", Some(&good), "h", None, None, |s| {
                matches!(s, TokenStep::Keep { .. })
            }),
            (
                "good token, backoff left over: keep",
                Some(&good),
                "h",
                Some(&backoff),
                None,
                |s| matches!(s, TokenStep::Keep { .. }),
            ),
            (
                "config changed: issue",
                Some(&good),
                "other",
                None,
                None,
                |s| {
                    matches!(
                        s,
                        TokenStep::Issue {
                            stored: Some(_),
                            forced: false
                        }
                    )
                },
            ),
            (
                "config changed in backoff: wait",
                Some(&good),
                "other",
                Some(&backoff),
                None,
                |s| {
                    matches!(
                        s,
                        TokenStep::Wait(TokenOutcome::Failed {
                            reason: Reason::TokenRequestFailed,
                            expires_at: Some(_),
                            ..
                        })
                    )
                },
            ),
            (
                "backoff over: issue",
                None,
                "h",
                Some(&past_backoff),
                None,
                |s| matches!(s, TokenStep::Issue { .. }),
            ),
            (
                "no Secret in backoff: wait",
                None,
                "h",
                Some(&backoff),
                None,
                |s| {
                    matches!(
                        s,
                        TokenStep::Wait(TokenOutcome::Failed {
                            expires_at: None,
                            ..
                        })
                    )
                },
            ),
            (
                "refresh request: issue, even in backoff",
                Some(&good),
                "h",
                Some(&backoff),
                Some("r1"),
                |s| matches!(s, TokenStep::Issue { forced: true, .. }),
            ),
            (
                "refresh request already answered: keep",
                Some(&answered),
                "h",
                None,
                Some("r1"),
                |s| matches!(s, TokenStep::Keep { .. }),
            ),
            (
                "foreign Secret: refuse",
                Some(&foreign),
                "h",
                None,
                None,
                |s| {
                    matches!(
                        s,
                        TokenStep::Refuse {
                            reason: Reason::SecretConflict,
                            ..
                        }
                    )
                },
            ),
            (
                "owned but unlabelled Secret: refuse",
                Some(&unlabelled),
                "h",
                None,
                None,
                |s| {
                    matches!(
                        s,
                        TokenStep::Refuse {
                            reason: Reason::SecretConflict,
                            ..
                        }
                    )
                },
            ),
        ];
        for (name, existing, hash, b, request, expected) in cases {
            let facts = TokenFacts {
                spec: &o.spec.tokens[0],
                existing,
                written: None,
                config_hash: hash,
                backoff: b,
                pending: None,
            };
            let step = plan_token_step(&o, &facts, request, n);
            assert!(expected(&step), "{name}: {step:?}");
        }
    }

    /// A token issued earlier (for the configuration `hash`, under `request`) whose write
    /// failed.
    fn pending(o: &OAuthClient, hash: &str, request: Option<&str>) -> PendingToken {
        let secret = written(o, "a", 600, hash, request);
        PendingToken {
            expires_at: now() + SignedDuration::from_secs(600),
            refresh_at: now() + SignedDuration::from_secs(300),
            config_hash: hash.into(),
            request: request.map(Into::into),
            create: true,
            secret,
        }
    }

    /// Token requests stay bounded whatever fails: a token whose write failed is written
    /// instead of requesting another, and a failed on-demand refresh waits for its backoff.
    #[test]
    fn pending_tokens_and_refresh_requests_in_backoff() {
        let o = oac();
        let n = now();
        let backoff = |request: Option<&str>, secs: i64| Backoff {
            failures: 1,
            retry_at: n + SignedDuration::from_secs(secs),
            reason: Reason::TokenWriteFailed,
            message: "denied".into(),
            request: request.map(Into::into),
        };
        let good = written(&o, "a", 600, "h", None);
        let (in_backoff, over) = (backoff(None, 30), backoff(None, -1));
        let r1_backoff = backoff(Some("r1"), 30);
        let p = pending(&o, "h", None);
        let p_r1 = pending(&o, "h", Some("r1"));
        let mut stale = pending(&o, "h", None);
        stale.refresh_at = n;
        type Case<'a> = (
            &'a str,
            Option<&'a Secret>,
            &'a str,
            Option<&'a Backoff>,
            Option<&'a PendingToken>,
            Option<&'a str>,
            fn(&TokenStep) -> bool,
        );
        let is_write = |s: &TokenStep| matches!(s, TokenStep::Write { .. });
        let is_issue = |s: &TokenStep| matches!(s, TokenStep::Issue { .. });
        let is_wait = |s: &TokenStep| matches!(s, TokenStep::Wait(TokenOutcome::Failed { .. }));
        let cases: Vec<Case<'_>> = vec![
            (
                "pending in backoff: wait",
                None,
                "h",
                Some(&in_backoff),
                Some(&p),
                None,
                is_wait,
            ),
            (
                "pending, backoff over: write, no request",
                None,
                "h",
                Some(&over),
                Some(&p),
                None,
                is_write,
            ),
            (
                "pending for another configuration: issue",
                None,
                "other",
                Some(&over),
                Some(&p),
                None,
                is_issue,
            ),
            (
                "pending due for refresh itself: issue",
                None,
                "h",
                Some(&over),
                Some(&stale),
                None,
                is_issue,
            ),
            (
                "refresh request skips a backoff it did not cause",
                Some(&good),
                "h",
                Some(&in_backoff),
                None,
                Some("r1"),
                is_issue,
            ),
            (
                "a failed refresh request waits for its backoff",
                Some(&good),
                "h",
                Some(&r1_backoff),
                None,
                Some("r1"),
                |s| {
                    matches!(
                        s,
                        TokenStep::Wait(TokenOutcome::Failed {
                            expires_at: Some(_),
                            ..
                        })
                    )
                },
            ),
            (
                "refresh request: a pending token of another request is not written",
                Some(&good),
                "h",
                Some(&over),
                Some(&p),
                Some("r1"),
                is_issue,
            ),
            (
                "refresh request: its own pending token is written",
                Some(&good),
                "h",
                Some(&over),
                Some(&p_r1),
                Some("r1"),
                is_write,
            ),
        ];
        for (name, existing, hash, b, pend, request, expected) in cases {
            let facts = TokenFacts {
                spec: &o.spec.tokens[0],
                existing,
                written: None,
                config_hash: hash,
                backoff: b,
                pending: pend,
            };
            let step = plan_token_step(&o, &facts, request, n);
            assert!(expected(&step), "{name}: {step:?}");
        }
    }

    fn failure(retryable: bool, retry_after: Option<u64>) -> Failure {
        Failure {
            reason: Reason::TokenRequestFailed,
            message: "x".into(),
            retryable,
            retry_after: retry_after.map(Duration::from_secs),
            request: None,
        }
    }

    #[test]
    fn backoff_grows_and_stays_below_the_remaining_lifetime() {
        let (o, n) = (oac(), now());
        let first = backoff_after_failure(&o, n, 1, None, failure(true, None), 0.0);
        let valid = Some(n + SignedDuration::from_secs(6000));
        let later = backoff_after_failure(&o, n, 5, valid, failure(true, None), 0.0);
        assert!(first.retry_at < later.retry_at);
        assert_eq!(first.reason, Reason::TokenRequestFailed);
        // not retryable: a longer wait, but never past half the valid lifetime
        let valid = n + SignedDuration::from_secs(40);
        let b = backoff_after_failure(&o, n, 1, Some(valid), failure(false, None), 0.0);
        assert!(b.retry_at <= n + SignedDuration::from_secs(20), "{b:?}");
        // expired: at most 5 s apart however many failures
        let b = backoff_after_failure(&o, n, 30, None, failure(true, None), 0.0);
        assert_eq!(b.retry_at, n + SignedDuration::from_secs(5));
        // the server's retry_after is honoured
        let b = backoff_after_failure(&o, n, 1, None, failure(true, Some(90)), 0.0);
        assert!(b.retry_at >= n + SignedDuration::from_secs(90));
    }

    #[test]
    fn requeue_at_the_earliest_time_with_a_floor() {
        let n = now();
        let outcomes = vec![
            TokenOutcome::Valid {
                expires_at: n + SignedDuration::from_secs(100),
                refresh_at: n + SignedDuration::from_secs(50),
            },
            TokenOutcome::Failed {
                reason: Reason::TokenRequestFailed,
                message: String::new(),
                expires_at: None,
                retry_at: n + SignedDuration::from_secs(10),
            },
            TokenOutcome::NotIssued {
                reason: Reason::ScopesNotAllowed,
                message: String::new(),
            },
        ];
        let floor = Duration::from_millis(200);
        assert_eq!(
            requeue_after(&outcomes, n, floor),
            Some(Duration::from_secs(10))
        );
        assert_eq!(requeue_after(&outcomes[2..], n, floor), None);
        let due = [TokenOutcome::Valid {
            expires_at: n,
            refresh_at: n - SignedDuration::from_secs(5),
        }];
        assert_eq!(requeue_after(&due, n, floor), Some(floor));
    }

    #[test]
    fn only_an_edited_spec_not_yet_observed_can_leave_stale_token_secrets() {
        use crate::crd::OAuthClientStatus;
        // (generation, observed generation in the status, list the labelled token Secrets?)
        let cases = [
            (Some(1), None, false),
            (Some(1), Some(1), false),
            (Some(2), None, true),
            (Some(2), Some(1), true),
            (Some(2), Some(2), false),
            (Some(7), Some(5), true),
            (None, None, false),
        ];
        for (generation, observed, want) in cases {
            let mut o = oac();
            o.metadata.generation = generation;
            o.status = observed.map(|g| OAuthClientStatus {
                observed_generation: Some(g),
                ..OAuthClientStatus::default()
            });
            assert_eq!(
                token_secrets_may_be_stale(&o),
                want,
                "generation {generation:?}, observed {observed:?}"
            );
        }
    }

    #[test]
    fn stale_token_secrets_are_ours_and_out_of_the_spec() {
        let o = oac();
        let mut other = oac();
        other.metadata.uid = Some("uid-2".into());
        // owned by `o` but not made by the operator (someone set the owner and the selector's
        // labels, not managed-by): never deleted
        let mut unmanaged = written(&o, "planted", 600, "h", None);
        unmanaged
            .metadata
            .labels
            .as_mut()
            .unwrap()
            .remove(crate::secrets::MANAGED_BY_LABEL);
        let owned = vec![
            written(&o, "a", 600, "h", None),
            written(&o, "gone", 600, "h", None),
            written(&other, "theirs", 600, "h", None),
            unmanaged,
        ];
        assert_eq!(stale_token_secrets(&o, &owned), ["gone"]);
    }

    #[test]
    fn plan_keeps_good_tokens_and_issues_otherwise() {
        let n = now();
        let stored = StoredToken {
            expires_at: n + SignedDuration::from_secs(100),
            refresh_at: Some(n + SignedDuration::from_secs(50)),
            config_hash: Some("h".into()),
            refresh_answered: None,
        };
        assert_eq!(
            plan_token(Some(&stored), "h", n, false),
            TokenPlan::Keep {
                expires_at: stored.expires_at,
                refresh_at: n + SignedDuration::from_secs(50)
            }
        );
        assert_eq!(plan_token(Some(&stored), "h", n, true), TokenPlan::Issue);
        assert_eq!(plan_token(Some(&stored), "x", n, false), TokenPlan::Issue);
        assert_eq!(
            plan_token(Some(&stored), "h", n + SignedDuration::from_secs(50), false),
            TokenPlan::Issue
        );
        assert_eq!(plan_token(None, "h", n, false), TokenPlan::Issue);
        let no_refresh = StoredToken {
            refresh_at: None,
            ..stored.clone()
        };
        assert_eq!(
            plan_token(Some(&no_refresh), "h", n, false),
            TokenPlan::Keep {
                expires_at: stored.expires_at,
                refresh_at: stored.expires_at
            }
        );
    }

    #[test]
    fn config_hash_changes_with_any_input_and_hides_the_secret() {
        let s = SecretString::from("very-secret");
        let base = config_hash("u", "id", &s, &["a".into()], None);
        assert_eq!(base.len(), 24);
        assert_ne!(
            base,
            config_hash("u", "id", &SecretString::from("other"), &["a".into()], None)
        );
        assert_ne!(base, config_hash("u", "id", &s, &["b".into()], None));
        assert_ne!(base, config_hash("u", "id", &s, &["a".into()], Some("aud")));
        assert_ne!(base, config_hash("v", "id", &s, &["a".into()], None));
        assert!(!base.contains("secret"));
    }

    #[test]
    fn unusable_secrets_are_not_stored_tokens() {
        assert_eq!(read_stored_token(&Secret::default()), None);
        let mut s = written(&oac(), "t", 600, "h", None);
        s.data.as_mut().unwrap().insert(
            clientcreds::token_secret::EXPIRES_AT.into(),
            k8s_openapi::ByteString(b"soon".to_vec()),
        );
        assert_eq!(read_stored_token(&s), None);
    }
}
