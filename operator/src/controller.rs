//! What triggers a reconcile, and one controller per watched namespace (or one for the
//! cluster): thin wiring of [`crate::reconcile`].
//!
//! OAuthClients are watched through a reflector whose delete events (and re-lists) prune the
//! per-object state of [`Context`]; Secrets trigger the OAuthClients that own or reference them.

use std::sync::Arc;

use futures::{FutureExt, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::runtime::controller::Controller;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};

use crate::context::{Context, ObjectKey};
use crate::crd::OAuthClient;
use crate::reconcile::{error_policy, reconcile};

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

/// Forgets the state of a deleted OAuthClient; after a re-list, of every OAuthClient that is
/// gone (a deletion missed while disconnected).
fn prune(ctx: &Context, store: &Store<OAuthClient>, event: &watcher::Event<OAuthClient>) {
    match event {
        watcher::Event::Delete(oac) => ctx.forget(oac),
        watcher::Event::InitDone => {
            let live: std::collections::HashSet<ObjectKey> = store
                .state()
                .iter()
                .filter_map(|o| ObjectKey::of(o))
                .collect();
            ctx.retain(|key| live.contains(key));
        }
        _ => {}
    }
}

async fn run_one(
    (oacs, secrets): (Api<OAuthClient>, Api<Secret>),
    ctx: Arc<Context>,
    concurrency: u16,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let (store, writer) = reflector::store();
    let pruning = ctx.clone();
    let pruning_store = store.clone();
    let oauthclients = watcher(oacs, watcher::Config::default().any_semantic())
        .default_backoff()
        .reflect(writer)
        .inspect_ok(move |event| prune(&pruning, &pruning_store, event))
        .applied_objects();
    let controller = Controller::for_stream(oauthclients, store.clone())
        .with_config(kube::runtime::controller::Config::default().concurrency(concurrency));
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
    use crate::crd::{
        AzupaySpec, CredentialsSecretRef, CredentialsStore, OAuthClientSpec, ProviderKind,
        SecretKeyRef, TokenSecretSpec,
    };
    use kube::Resource;

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
}
