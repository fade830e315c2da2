//! What every reconcile shares: the Kubernetes client, the event recorder, the HTTP client,
//! metrics, and the typed per-object state, which is removed when its OAuthClient goes.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use clientcreds::HttpClient;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource, ResourceExt};
use tracing::warn;

use crate::crd::OAuthClient;
use crate::egress::EgressPolicy;
use crate::secrets::StoredToken;
use crate::telemetry::Metrics;
use crate::{Error, EventAction, Reason};

/// The key of an OAuthClient's state: its uid, so that an object deleted and created again
/// under the same name starts afresh.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey(String);

impl ObjectKey {
    /// The key of `oac` (`None` before the API server gave it a uid).
    pub fn of(oac: &OAuthClient) -> Option<ObjectKey> {
        oac.uid().map(ObjectKey)
    }
}

/// A failed token request (or token Secret write) remembered until the next attempt.
#[derive(Clone, Debug, PartialEq)]
pub struct Backoff {
    /// Consecutive failures.
    pub failures: u32,
    /// When to try again.
    pub retry_at: Timestamp,
    /// Why it failed.
    pub reason: Reason,
    /// What failed (no secrets).
    pub message: String,
    /// The refresh request (`clientcreds.dev/refresh`) the failed attempt answered, if it was
    /// forced by one: that request waits for this backoff too.
    pub request: Option<String>,
}

/// A token that was issued but whose Secret could not be written yet: written on the next
/// attempt instead of requesting another token.
#[derive(Clone, PartialEq)]
pub struct PendingToken {
    /// The whole token Secret, as it is to be applied.
    pub secret: Secret,
    /// The token's expiry.
    pub expires_at: Timestamp,
    /// When it is to be refreshed.
    pub refresh_at: Timestamp,
    /// The configuration digest it was requested with.
    pub config_hash: String,
    /// The refresh request it answers, if any.
    pub request: Option<String>,
    /// Whether its Secret is to be created (it was not known to exist when the token was
    /// requested): written create-only, and a `TokenIssued` event is due.
    pub create: bool,
}

impl std::fmt::Debug for PendingToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingToken")
            .field("secret", &self.secret.metadata.name)
            .field("expires_at", &self.expires_at)
            .field("refresh_at", &self.refresh_at)
            .field("request", &self.request)
            .finish_non_exhaustive()
    }
}

/// What the operator remembers about one OAuthClient between reconciles.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ObjectState {
    /// This process called Azupay's enable endpoint for it.
    pub enable_called: bool,
    /// This process reported a failed write of the secret kept in its recovery Secret (one
    /// event, not one per retry).
    pub recovery_write_failed: bool,
    /// The resourceVersion of the API key Secret whose connection details are known.
    pub api_key_version: Option<String>,
    /// Per token Secret name: the backoff after failed token requests or writes.
    pub backoff: HashMap<String, Backoff>,
    /// Per token Secret name: a token issued but not written yet.
    pub pending: HashMap<String, PendingToken>,
    /// Per token Secret name: what this process last wrote there. It answers the next
    /// reconcile without reading the Secret, until the Secret watch shows another version of
    /// it (or its deletion).
    pub written: HashMap<String, WrittenToken>,
    /// Token Secret names a create found taken by a Secret the operator did not make for this
    /// OAuthClient: read before every attempt from now on, so no token is requested for them.
    pub conflicts: HashSet<String>,
}

/// A token Secret as this process wrote it.
#[derive(Clone, Debug, PartialEq)]
pub struct WrittenToken {
    /// What the planner reads from a token Secret.
    pub stored: StoredToken,
    /// The Secret's resourceVersion after the write.
    pub resource_version: String,
}

/// Shared state of the reconciler.
pub struct Context {
    /// The Kubernetes client.
    pub client: Client,
    /// Publishes warnings: its cache turns a repeated warning into one event with a count.
    recorder: Recorder,
    reporter: Reporter,
    /// The HTTP client for token requests and Azupay calls.
    pub http: HttpClient,
    /// Where the operator may send secrets: checked before every Azupay call and token request.
    pub egress: EgressPolicy,
    /// The operator's metrics.
    pub metrics: Arc<Metrics>,
    /// This instance's identity as holder of an enable claim: the reporter's instance (the pod
    /// name, so a container restarted in its pod takes its own claim up again at once), or
    /// without one an id unique to this [`Context`] (two operators never share it).
    pub instance_id: String,
    /// The operator's own namespace: where a one-time secret whose credentials Secret cannot be
    /// written is kept ([`crate::azupay::recovery`]).
    pub operator_namespace: String,
    // boxed: the map's table holds a pointer per OAuthClient, not the whole state
    state: Mutex<HashMap<ObjectKey, Box<ObjectState>>>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").finish_non_exhaustive()
    }
}

impl Context {
    /// A context for `client`, publishing events as `reporter`, sending secrets only where
    /// `egress` allows, running in `operator_namespace`.
    pub fn new(
        client: Client,
        reporter: Reporter,
        http: HttpClient,
        egress: EgressPolicy,
        metrics: Arc<Metrics>,
        operator_namespace: String,
    ) -> Self {
        let instance_id = reporter.instance.clone().unwrap_or_else(unique_instance_id);
        Self {
            recorder: Recorder::new(client.clone(), reporter.clone()),
            reporter,
            instance_id,
            client,
            http,
            egress,
            metrics,
            operator_namespace,
            state: Mutex::new(HashMap::new()),
        }
    }

    fn states(&self) -> MutexGuard<'_, HashMap<ObjectKey, Box<ObjectState>>> {
        match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Runs `f` on the state of `oac` (created empty on first use; an object without a uid gets
    /// a throw-away state).
    pub fn with_state<R>(&self, oac: &OAuthClient, f: impl FnOnce(&mut ObjectState) -> R) -> R {
        match ObjectKey::of(oac) {
            Some(key) => f(self.states().entry(key).or_default()),
            None => f(&mut ObjectState::default()),
        }
    }

    /// Runs `f` on the state of `oac` only if it has one (nothing is created: an OAuthClient
    /// whose tokens need nothing costs no memory here).
    pub fn with_existing_state(&self, oac: &OAuthClient, f: impl FnOnce(&mut ObjectState)) {
        if let Some(key) = ObjectKey::of(oac)
            && let Some(state) = self.states().get_mut(&key)
        {
            f(state);
        }
    }

    /// A copy of the state of `oac`.
    pub fn state(&self, oac: &OAuthClient) -> ObjectState {
        ObjectKey::of(oac)
            .and_then(|key| self.states().get(&key).map(|s| (**s).clone()))
            .unwrap_or_default()
    }

    /// Forgets everything about a deleted OAuthClient (its state and its metric series).
    pub fn forget(&self, oac: &OAuthClient) {
        if let Some(key) = ObjectKey::of(oac) {
            self.states().remove(&key);
        }
        let ns = oac.namespace().unwrap_or_default();
        for t in &oac.spec.tokens {
            self.metrics.forget_expiry(&ns, &t.secret_name);
        }
        self.metrics.forget_ready(&ns, &oac.name_any());
    }

    /// Keeps only the state of the objects `live` says exist (after a re-list, when deletions
    /// may have been missed).
    pub fn retain(&self, live: impl Fn(&ObjectKey) -> bool) {
        self.states().retain(|key, _| live(key));
    }

    /// Forgets what was written to token Secret `secret` of the OAuthClient with uid
    /// `owner_uid`, unless the Secret is still at `version` (a watch event of the write itself).
    pub fn forget_written(&self, owner_uid: &str, secret: &str, version: Option<&str>) {
        let key = ObjectKey(owner_uid.to_owned());
        if let Some(state) = self.states().get_mut(&key)
            && state
                .written
                .get(secret)
                .is_some_and(|w| Some(w.resource_version.as_str()) != version)
        {
            state.written.remove(secret);
        }
    }

    /// How many OAuthClients have state.
    pub fn tracked(&self) -> usize {
        self.states().len()
    }

    /// Publishes an event about `oac` (best effort: a failure is logged).
    pub async fn event(
        &self,
        oac: &OAuthClient,
        type_: EventType,
        reason: Reason,
        action: EventAction,
        note: String,
    ) {
        let ev = Event {
            type_,
            reason: reason.as_str().into(),
            note: Some(truncate(note, 1000)),
            action: action.as_str().into(),
            secondary: None,
        };
        // A normal event says once that something happened (a token Secret written, one
        // deleted): published without the shared cache, which would keep each of them for six
        // minutes and scan them all on every publish (memory and CPU that grow with the number
        // of OAuthClients brought up; BENCHMARKS.md, the operator at scale).
        let published = if type_ == EventType::Normal {
            Recorder::new(self.client.clone(), self.reporter.clone())
                .publish(&ev, &oac.object_ref(&()))
                .await
        } else {
            self.recorder.publish(&ev, &oac.object_ref(&())).await
        };
        if let Err(e) = published {
            warn!(error = %e, reason = reason.as_str(), "could not publish event");
        }
    }
}

/// `operator-` followed by the process id, the time in nanoseconds and a per-process counter:
/// unique per [`Context`], so two operators in one process differ too.
fn unique_instance_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "operator-{}-{nanos}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Reads a Secret; `None` when it does not exist.
pub async fn get_secret(api: &Api<Secret>, name: &str) -> Result<Option<Secret>, Error> {
    api.get_opt(name)
        .await
        .map_err(Error::kube(format!("reading Secret {name}")))
}

/// A short description of a Kubernetes API error (the server's message, not the whole Status).
pub fn kube_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => format!("{} (HTTP {})", status.message, status.code),
        other => other.to_string(),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn oac(name: &str, uid: &str) -> OAuthClient {
        let mut o: OAuthClient = serde_json::from_value(serde_json::json!({
            "apiVersion": "clientcreds.dev/v1alpha1",
            "kind": "OAuthClient",
            "metadata": {"name": name, "namespace": "shop", "uid": uid},
            "spec": {"provider": "payu", "credentialsSecretRef": {"name": "c"},
                     "tokens": [{"secretName": "t"}]}
        }))
        .unwrap();
        o.metadata.generation = Some(1);
        o
    }

    #[tokio::test]
    async fn per_object_state_is_typed_and_pruned() {
        let config = kube::Config::new("http://127.0.0.1:1".parse().unwrap());
        let client = Client::try_from(config).unwrap();
        let ctx = Context::new(
            client,
            Reporter {
                controller: "test".into(),
                instance: None,
            },
            HttpClient::new(),
            EgressPolicy::default(),
            Arc::new(Metrics::default()),
            "ops".into(),
        );
        let (a, b) = (oac("a", "uid-a"), oac("b", "uid-b"));
        ctx.with_state(&a, |s| s.enable_called = true);
        ctx.with_state(&b, |s| s.api_key_version = Some("7".into()));
        assert!(ctx.state(&a).enable_called);
        assert_eq!(ctx.tracked(), 2);
        // the same name with another uid is another object
        assert_eq!(ctx.state(&oac("a", "uid-a2")), ObjectState::default());
        // deleted: forgotten
        ctx.forget(&a);
        assert_eq!(ctx.tracked(), 1);
        assert!(!ctx.state(&a).enable_called);
        // after a re-list, only live objects keep state
        let live = ObjectKey::of(&a);
        ctx.retain(|k| Some(k) == live.as_ref());
        assert_eq!(ctx.tracked(), 0);
        // what was written is forgotten when the watch shows another version, or a deletion
        let written = WrittenToken {
            stored: StoredToken {
                expires_at: Timestamp::UNIX_EPOCH,
                refresh_at: None,
                config_hash: None,
                refresh_answered: None,
            },
            resource_version: "7".into(),
        };
        ctx.with_state(&b, |s| s.written.insert("tok".into(), written.clone()));
        ctx.forget_written("uid-b", "tok", Some("7"));
        assert!(ctx.state(&b).written.contains_key("tok"), "its own write");
        ctx.forget_written("uid-b", "tok", Some("8"));
        assert!(!ctx.state(&b).written.contains_key("tok"), "changed");
        ctx.with_state(&b, |s| s.written.insert("tok".into(), written));
        ctx.forget_written("uid-b", "tok", None);
        assert!(!ctx.state(&b).written.contains_key("tok"), "deleted");
        ctx.forget(&b);
        // an object without a uid never gets state
        let mut no_uid = oac("c", "x");
        no_uid.metadata.uid = None;
        ctx.with_state(&no_uid, |s| s.enable_called = true);
        ctx.with_existing_state(&no_uid, |s| s.enable_called = true);
        // only existing state is changed by with_existing_state
        ctx.with_existing_state(&a, |s| s.enable_called = true);
        assert_eq!(ctx.tracked(), 0);
    }

    #[test]
    fn a_pending_token_is_not_in_debug_output() {
        let secret: Secret = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "t"},
            "data": {"access_token": "dG9rLXNlY3JldC12YWx1ZQ=="}
        }))
        .unwrap();
        let now = Timestamp::now();
        let mut state = ObjectState::default();
        state.pending.insert(
            "t".into(),
            PendingToken {
                secret,
                expires_at: now,
                refresh_at: now,
                config_hash: "h".into(),
                request: None,
                create: true,
            },
        );
        let debug = format!("{state:?}");
        assert!(debug.contains("PendingToken"), "{debug}");
        assert!(!debug.contains("dG9rLXNlY3JldC12YWx1ZQ"), "{debug}");
        assert!(!debug.contains("tok-secret-value"), "{debug}");
    }

    #[test]
    fn event_notes_fit_the_api_limit() {
        let long = "é".repeat(2000);
        let t = truncate(long, 1000);
        assert!(t.len() <= 1000 && t.ends_with("..."));
        assert_eq!(truncate("short".into(), 1000), "short");
    }
}
