//! What the harness waits for, kept up to date by watches instead of polled lists: a list of
//! 10,000 OAuthClients or token Secrets every 200 ms would load the API server the operator is
//! measured against.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clientcreds_operator::crd::OAuthClient;
use clientcreds_operator::secrets::{ROLE_LABEL, TOKEN_ROLE};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Resource, ResourceExt};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long any one step may take before the harness gives up.
pub(crate) const STEP_LIMIT: Duration = Duration::from_secs(1800);

/// A map from object name to a value, kept by one watch; waiters are woken on every change.
pub(crate) struct Tally<V> {
    map: Arc<Mutex<BTreeMap<String, V>>>,
    changed: watch::Receiver<u64>,
    task: JoinHandle<()>,
}

impl<V: Clone + Send + 'static> Tally<V> {
    fn start<K, F>(api: Api<K>, config: watcher::Config, value: F) -> Self
    where
        K: Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
        K::DynamicType: Default + Eq + std::hash::Hash + Clone,
        F: Fn(&K) -> Option<V> + Send + 'static,
    {
        let map = Arc::new(Mutex::new(BTreeMap::new()));
        let (tx, changed) = watch::channel(0u64);
        let task = tokio::spawn({
            let map = map.clone();
            async move {
                let mut events = watcher::watcher(api, config).boxed();
                let mut fresh: Option<BTreeMap<String, V>> = None;
                while let Some(event) = events.next().await {
                    let Ok(event) = event else { continue };
                    {
                        let mut map = map.lock().unwrap();
                        match event {
                            Event::Apply(o) => set(&mut map, &o, value(&o)),
                            Event::Delete(o) => {
                                map.remove(&o.name_any());
                            }
                            Event::Init => fresh = Some(BTreeMap::new()),
                            Event::InitApply(o) => {
                                if let Some(f) = fresh.as_mut() {
                                    set(f, &o, value(&o));
                                }
                            }
                            Event::InitDone => {
                                if let Some(f) = fresh.take() {
                                    *map = f;
                                }
                            }
                        }
                    }
                    tx.send_modify(|n| *n += 1);
                }
            }
        });
        Tally { map, changed, task }
    }

    /// Waits until `done` holds for the map; returns the time it took.
    pub(crate) async fn until(
        &mut self,
        what: &str,
        mut done: impl FnMut(&BTreeMap<String, V>) -> bool,
    ) -> Duration {
        let start = Instant::now();
        loop {
            if done(&self.map.lock().unwrap()) {
                return start.elapsed();
            }
            let left = STEP_LIMIT.saturating_sub(start.elapsed());
            match tokio::time::timeout(left, self.changed.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => panic!("{what}: the watch ended"),
                Err(_) => panic!("{what}: not done after {STEP_LIMIT:?}"),
            }
        }
    }

    /// A copy of the map now.
    pub(crate) fn snapshot(&self) -> BTreeMap<String, V> {
        self.map.lock().unwrap().clone()
    }
}

impl<V> Drop for Tally<V> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn set<K: Resource, V>(map: &mut BTreeMap<String, V>, o: &K, value: Option<V>) {
    let name = o.meta().name.clone().unwrap_or_default();
    match value {
        Some(v) => {
            map.insert(name, v);
        }
        None => {
            map.remove(&name);
        }
    }
}

/// The OAuthClients of a namespace that are `Ready` at their current generation.
pub(crate) fn ready(api: Api<OAuthClient>) -> Tally<()> {
    Tally::start(api, watcher::Config::default(), |o: &OAuthClient| {
        o.status
            .as_ref()
            .is_some_and(|s| {
                s.observed_generation == o.metadata.generation
                    && s.conditions
                        .iter()
                        .any(|c| c.type_ == "Ready" && c.status == "True")
            })
            .then_some(())
    })
}

/// The access token of every token Secret of a namespace (those with the operator's token role
/// label).
pub(crate) fn tokens(api: Api<Secret>) -> Tally<String> {
    Tally::start(
        api,
        watcher::Config::default().labels(&format!("{ROLE_LABEL}={TOKEN_ROLE}")),
        |s: &Secret| {
            s.data
                .as_ref()
                .and_then(|d| d.get("access_token"))
                .map(|v| String::from_utf8_lossy(&v.0).into_owned())
        },
    )
}
