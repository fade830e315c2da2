//! Prometheus metrics (`prometheus-client`) and tracing set-up.
//!
//! ```
//! let metrics = clientcreds_operator::telemetry::Metrics::default();
//! metrics.refresh("payu", "success");
//! metrics.expiry("payments", "token-balance", 1_800_000_000);
//! let text = metrics.encode();
//! assert!(text.contains("clientcreds_operator_token_refreshes_total"));
//! assert!(text.contains(r#"secret="token-balance""#));
//! metrics.forget_expiry("payments", "token-balance");
//! assert!(!metrics.encode().contains(r#"secret="token-balance""#));
//! metrics.ready("payments", "payu", false, "CredentialsLost");
//! metrics.ready("payments", "payu", true, "TokensIssued");
//! let text = metrics.encode();
//! assert!(text.contains(r#"clientcreds_operator_oauthclient_ready{namespace="payments",oauthclient="payu",reason="TokensIssued"} 1"#));
//! assert!(!text.contains(r#"reason="CredentialsLost""#));
//! metrics.forget_ready("payments", "payu");
//! assert!(!metrics.encode().contains(r#"oauthclient="payu""#));
//! let metrics = std::sync::Arc::new(metrics);
//! let held = metrics.hold_secret();
//! assert!(metrics.encode().contains("clientcreds_operator_secrets_held_in_memory 1"));
//! drop(held);
//! assert_eq!(metrics.secrets_held_in_memory(), 0);
//! ```

use std::collections::HashMap;
use std::sync::Mutex;

use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use prometheus_client::encoding::EncodeLabelSet;

type Labels = Vec<(String, String)>;

/// The labels of a series per token Secret: one per token Secret in the cluster, so a struct
/// (two strings) rather than a list of name/value pairs.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SecretLabels {
    namespace: String,
    secret: String,
}

/// The labels of a series per OAuthClient.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReadyLabels {
    namespace: String,
    oauthclient: String,
    reason: String,
}

/// The operator's metrics. Labels never carry a secret.
pub struct Metrics {
    registry: Mutex<Registry>,
    refreshes: Family<Labels, Counter>,
    enable_calls: Family<Labels, Counter>,
    expiry: Family<SecretLabels, Gauge>,
    reconcile_duration: Histogram,
    reconcile_errors: Family<Labels, Counter>,
    ready: Family<ReadyLabels, Gauge>,
    secrets_held: Gauge,
    /// The reason of each OAuthClient's current `ready` series, so a changed reason replaces it.
    ready_reasons: Mutex<HashMap<(String, String), String>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("clientcreds_operator");
        let refreshes = Family::<Labels, Counter>::default();
        let enable_calls = Family::<Labels, Counter>::default();
        let expiry = Family::<SecretLabels, Gauge>::default();
        let reconcile_duration = Histogram::new(exponential_buckets(0.005, 2.0, 14));
        let reconcile_errors = Family::<Labels, Counter>::default();
        let ready = Family::<ReadyLabels, Gauge>::default();
        let secrets_held = Gauge::default();
        registry.register(
            "token_refreshes",
            "Token requests made for token Secrets, by provider and result",
            refreshes.clone(),
        );
        registry.register(
            "azupay_enable_calls",
            "Calls to Azupay's enable OAuth 2.0 endpoint, by result",
            enable_calls.clone(),
        );
        registry.register(
            "token_expiry_timestamp_seconds",
            "Expiry of the token stored in each token Secret (Unix seconds)",
            expiry.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Duration of one OAuthClient reconcile",
            reconcile_duration.clone(),
        );
        registry.register(
            "reconcile_errors",
            "Reconciles that ended in an error, by reason",
            reconcile_errors.clone(),
        );
        registry.register(
            "oauthclient_ready",
            "1 when an OAuthClient is Ready, 0 when not; `reason` is its Ready condition's reason \
             (for example CredentialsLost, TokenRequestFailed)",
            ready.clone(),
        );
        registry.register(
            "secrets_held_in_memory",
            "One-time Azupay client secrets this process holds in memory only (returned by enable, \
             not written to their credentials Secret yet): a restart now loses them",
            secrets_held.clone(),
        );
        Self {
            registry: Mutex::new(registry),
            refreshes,
            enable_calls,
            expiry,
            reconcile_duration,
            reconcile_errors,
            ready,
            secrets_held,
            ready_reasons: Mutex::new(HashMap::new()),
        }
    }
}

impl Metrics {
    /// Counts one token request (`result`: `success` or `failure`).
    pub fn refresh(&self, provider: &str, result: &str) {
        self.refreshes
            .get_or_create(&vec![
                ("provider".into(), provider.into()),
                ("result".into(), result.into()),
            ])
            .inc();
    }
    /// Counts a one-time secret as held in memory only until the returned guard is dropped
    /// (when it is written, or the flow holding it ends in any way).
    pub fn hold_secret(self: &std::sync::Arc<Self>) -> HeldInMemory {
        self.secrets_held.inc();
        HeldInMemory(self.clone())
    }

    /// How many one-time secrets are held in memory only (`/readyz` fails while any is).
    pub fn secrets_held_in_memory(&self) -> i64 {
        self.secrets_held.get()
    }

    /// Counts one enable call.
    pub fn enable_call(&self, result: &str) {
        self.enable_calls
            .get_or_create(&vec![("result".into(), result.into())])
            .inc();
    }
    /// Sets the expiry of the token in `namespace/secret`.
    pub fn expiry(&self, namespace: &str, secret: &str, unix_seconds: i64) {
        self.expiry
            .get_or_create(&SecretLabels {
                namespace: namespace.into(),
                secret: secret.into(),
            })
            .set(unix_seconds);
    }
    /// Drops the expiry series of `namespace/secret` (the token Secret is gone).
    pub fn forget_expiry(&self, namespace: &str, secret: &str) {
        self.expiry.remove(&SecretLabels {
            namespace: namespace.into(),
            secret: secret.into(),
        });
    }
    /// Records a reconcile's duration.
    pub fn reconcile_duration(&self, seconds: f64) {
        self.reconcile_duration.observe(seconds);
    }
    /// Counts a failed reconcile.
    pub fn reconcile_error(&self, reason: &str) {
        self.reconcile_errors
            .get_or_create(&vec![("reason".into(), reason.into())])
            .inc();
    }
    /// Sets whether `namespace/name` is Ready, and why (its Ready condition's reason).
    pub fn ready(&self, namespace: &str, name: &str, ready: bool, reason: &str) {
        let labels = |reason: String| ReadyLabels {
            namespace: namespace.into(),
            oauthclient: name.into(),
            reason,
        };
        let mut current = match self.ready_reasons.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        match current.get_mut(&(namespace.to_owned(), name.to_owned())) {
            Some(old) if old == reason => {}
            Some(old) => {
                self.ready
                    .remove(&labels(std::mem::replace(old, reason.into())));
            }
            None => {
                current.insert((namespace.into(), name.into()), reason.into());
            }
        }
        self.ready
            .get_or_create(&labels(reason.into()))
            .set(i64::from(ready));
    }
    /// Drops the `oauthclient_ready` series of `namespace/name` (the OAuthClient is gone).
    pub fn forget_ready(&self, namespace: &str, name: &str) {
        let mut current = match self.ready_reasons.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(old) = current.remove(&(namespace.to_owned(), name.to_owned())) {
            self.ready.remove(&ReadyLabels {
                namespace: namespace.into(),
                oauthclient: name.into(),
                reason: old,
            });
        }
    }
    /// The OpenMetrics text exposition: the operator's metrics, then the middleware's
    /// (bridged from the `metrics` facade, see [`crate::metrics_bridge`]).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let registry = match self.registry.lock() {
            Ok(r) => r,
            Err(poisoned) => poisoned.into_inner(),
        };
        if encode_registry(&mut out, &registry)
            .and_then(|()| crate::metrics_bridge::encode(&mut out))
            .and_then(|()| encode_eof(&mut out))
            .is_err()
        {
            out.clear();
        }
        out
    }
}

/// A one-time secret counted in `clientcreds_operator_secrets_held_in_memory`
/// ([`Metrics::hold_secret`]); dropping it stops counting it.
#[derive(Debug)]
pub struct HeldInMemory(std::sync::Arc<Metrics>);

impl Drop for HeldInMemory {
    fn drop(&mut self) {
        self.0.secrets_held.dec();
    }
}

/// Installs a `tracing` subscriber (JSON or text) filtered by `RUST_LOG` (default `info`).
pub fn init_tracing(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
