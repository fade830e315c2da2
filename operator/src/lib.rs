//! The clientcreds operator: `OAuthClient` resources, Azupay enable-once, and fresh OAuth 2.0
//! client-credentials tokens in Secrets that pods mount.
//!
//! Layout (after kube-rs controller-rs and the Stackable operators):
//! - this file: the [`Error`] of a reconcile and the [`Reason`] of every condition and event;
//! - [`crd`]: the `OAuthClient` custom resource;
//! - [`context`]: clients, recorder, metrics and the typed per-object state (pruned on delete);
//! - [`reconcile`]: dereference (reads) → validate (pure) → plan (pure) → apply (writes) →
//!   status (pure build + one apply);
//! - [`azupay`]: the enable/details client and the enable-once flow as a state machine;
//! - [`secrets`]: what the Secrets the operator writes look like, and which are its own;
//! - [`egress`]: the hosts the operator may send secrets to;
//! - [`refresh`]: refresh and retry times, pure functions of a clock;
//! - [`controller`]: what triggers a reconcile, one controller per watched namespace;
//! - [`telemetry`], [`server`]: metrics and the `/metrics`, `/healthz`, `/readyz` endpoints;
//!   [`metrics_bridge`] puts the middleware's own metrics (token requests) there too;
//! - [`rbac`]: the permissions it needs, the one source of `deploy/rbac.yaml` and the chart's RBAC;
//! - [`run`]: runs it all, with optional leader election on a `Lease` (kube-lease-manager).
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![deny(unreachable_pub)]

pub mod azupay;
pub mod context;
pub mod controller;
pub mod crd;
pub mod credentials;
pub mod egress;
pub mod metrics_bridge;
pub mod rbac;
pub mod reconcile;
pub mod refresh;
pub mod run;
pub mod secrets;
pub mod server;
pub mod telemetry;

use std::fmt;

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

    /// A closure turning a [`kube::Error`] into [`Error::Kube`] with `context`.
    pub fn kube(context: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
        let context = context.into();
        move |source| Error::Kube { context, source }
    }
}

/// Declares a PascalCase enum whose variant names are also its wire strings.
macro_rules! pascal_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident,)+ }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every value.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The PascalCase string written to the API.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => stringify!($variant),)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pascal_enum! {
    /// The reason of every condition and event the operator writes (PascalCase on the wire).
    Reason {
        /// The referenced Azupay API key Secret or key does not exist.
        ApiKeyMissing,
        /// Azupay refused the API key.
        ApiKeyRejected,
        /// Azupay could not be reached or answered unexpectedly.
        AzupayUnavailable,
        /// OAuth 2.0 is enabled at Azupay but the one-time secret is not stored: a person must act.
        CredentialsLost,
        /// The credentials Secret holds no client secret.
        CredentialsMissing,
        /// The credentials Secret could not be written before the enable call.
        CredentialsSecretNotWritable,
        /// The one-time client secret is stored (event).
        CredentialsStored,
        /// The one-time client secret could not be written yet: kept in the recovery Secret in
        /// the operator's namespace (or, when that fails too, held in memory), retrying.
        CredentialsWriteFailed,
        /// The enable call is pending or in flight.
        EnablePending,
        /// The spec is invalid; the object waits for a change.
        InvalidSpec,
        /// Every token Secret holds a valid token.
        Issued,
        /// Credentials stored and every token Secret valid.
        Ready,
        /// The referenced credentials Secret holds a client id and secret.
        Referenced,
        /// Scopes outside Azupay's `oauth2AllowedScopes`.
        ScopesNotAllowed,
        /// A Secret of that name exists and is not the OAuthClient's.
        SecretConflict,
        /// The referenced credentials Secret lacks a key.
        SecretIncomplete,
        /// The referenced credentials Secret does not exist.
        SecretMissing,
        /// The one-time client secret is stored in the credentials Secret.
        Stored,
        /// The token request could not be built from the spec.
        TokenConfigInvalid,
        /// A token Secret was written for the first time (event).
        TokenIssued,
        /// A token request failed.
        TokenRequestFailed,
        /// A token Secret dropped from the spec was deleted (event).
        TokenSecretDeleted,
        /// Not reconciled yet.
        Unknown,
        /// No token requested yet.
        WaitingForCredentials,
        /// A token was issued but its Secret could not be written (kept; written on retry).
        TokenWriteFailed,
        /// Every token Secret's last refresh succeeded.
        Refreshed,
        /// A URL the operator would send a secret to is refused by its egress policy (nothing
        /// was sent).
        EgressDenied,
        /// Another OAuthClient already uses this Azupay `clientId` (at the same endpoint): its
        /// one-time secret is issued once, so only one OAuthClient per cluster may enable it.
        AzupayClientInUse,
    }
}

pascal_enum! {
    /// The condition types of an OAuthClient's status.
    ConditionType {
        /// Credentials stored and every token Secret valid.
        Ready,
        /// The client credentials are available.
        CredentialsStored,
        /// Every token Secret holds a valid token.
        TokensIssued,
        /// The last refresh of every token Secret succeeded (`False` while one fails, even
        /// when its previous token still serves).
        TokensRefreshed,
    }
}

pascal_enum! {
    /// The action of an event: what the operator was doing.
    EventAction {
        /// Validating the spec.
        Validate,
        /// Reading Azupay's connection details.
        ReadDetails,
        /// Preparing the credentials Secret before the enable call.
        PrepareEnable,
        /// Asking Azupay whether OAuth 2.0 is enabled.
        CheckEnabled,
        /// Calling Azupay's enable endpoint.
        Enable,
        /// Writing the one-time client secret.
        StoreCredentials,
        /// Requesting and writing a token.
        IssueToken,
        /// Removing what the spec no longer lists.
        Cleanup,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_pascal_case_and_unique() {
        let mut seen = std::collections::HashSet::new();
        for r in Reason::ALL {
            let s = r.as_str();
            assert!(s.starts_with(|c: char| c.is_ascii_uppercase()), "{s}");
            assert!(s.chars().all(|c| c.is_ascii_alphanumeric()), "{s}");
            assert!(seen.insert(s), "{s}");
            assert_eq!(r.to_string(), s);
        }
        assert_eq!(ConditionType::TokensIssued.as_str(), "TokensIssued");
        assert_eq!(EventAction::IssueToken.as_str(), "IssueToken");
    }
}
