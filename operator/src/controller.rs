//! What triggers a reconcile, and one controller per watched namespace (or one for the
//! cluster): thin wiring of [`crate::reconcile`].
//!
//! What costs what:
//! - OAuthClients are watched (full objects: the reconciler reads them from the store) through
//!   a reflector whose delete events and re-lists prune the per-object state of [`Context`],
//!   and whose store keeps each status slimmed to what the reconciler reads
//!   ([`crate::reconcile::status::slim_for_cache`]);
//!   only a new generation, labels or annotations trigger a reconcile, so the operator's own
//!   status writes do not.
//! - Secrets are watched as metadata only (no data is listed or streamed): a referenced
//!   Secret's changes trigger the OAuthClients that reference it ([`secret_triggers`]); the
//!   operator's own token Secrets trigger only when deleted, so its own writes do not.

use std::sync::Arc;

use std::sync::atomic::{AtomicBool, Ordering};

use futures::{FutureExt, StreamExt, TryStreamExt, stream};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PartialObjectMeta};
use kube::runtime::controller::Controller;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{Predicate, WatchStreamExt, predicates, watcher};
use kube::{Client, ResourceExt};

use crate::context::{Context, ObjectKey};
use crate::crd::OAuthClient;
use crate::reconcile::{error_policy, reconcile};
use crate::secrets::{MANAGED_BY_LABEL, MANAGER, ROLE_LABEL, TOKEN_ROLE};

/// The OAuthClients a change of a Secret concerns (`deleted`: the Secret is gone), from its
/// metadata only.
///
/// - The operator's own token Secrets (its labels): only their deletion matters, to their
///   owner; its own writes to them trigger nothing.
/// - Any other Secret: the OAuthClients of its namespace that reference it
///   (`credentialsSecretRef`, Azupay's API key and credentials Secret); when it is deleted,
///   also its OAuthClient owners and those whose `spec.tokens` name it (a conflicting Secret
///   gone frees the name).
pub fn secret_triggers(
    store: &Store<OAuthClient>,
    secret: &ObjectMeta,
    deleted: bool,
) -> Vec<ObjectRef<OAuthClient>> {
    let ns = secret.namespace.clone().unwrap_or_default();
    let name = secret.name.as_deref().unwrap_or_default();
    let owners = || {
        secret
            .owner_references
            .iter()
            .flatten()
            .filter(|o| o.kind == "OAuthClient" && o.api_version.starts_with(crate::crd::GROUP))
            .map(|o| ObjectRef::new(&o.name).within(&ns))
    };
    let labels = secret.labels.as_ref();
    let label = |k: &str| labels.and_then(|l| l.get(k)).map(String::as_str);
    if label(MANAGED_BY_LABEL) == Some(MANAGER) && label(ROLE_LABEL) == Some(TOKEN_ROLE) {
        return if deleted {
            owners().collect()
        } else {
            Vec::new()
        };
    }
    let mut out: Vec<ObjectRef<OAuthClient>> = if deleted {
        owners().collect()
    } else {
        Vec::new()
    };
    for oac in store.state() {
        if oac.namespace().as_deref() != Some(ns.as_str()) {
            continue;
        }
        let s = &oac.spec;
        let refs = s.credentials_secret_ref.as_ref().map(|r| r.name.as_str()) == Some(name)
            || s.azupay
                .as_ref()
                .map(|a| a.api_key_secret_ref.name.as_str())
                == Some(name)
            || s.credentials.as_ref().map(|c| c.secret_name.as_str()) == Some(name)
            || (deleted && s.tokens.iter().any(|t| t.secret_name == name));
        if refs {
            let r = ObjectRef::from_obj(&*oac);
            if !out.contains(&r) {
                out.push(r);
            }
        }
    }
    out
}

/// Forgets what this process wrote to one of its token Secrets once the watch shows another
/// version of it (someone else's change, or a re-list) or its deletion: the next reconcile
/// reads it again. The watch event of the operator's own write carries the version it
/// remembered and changes nothing.
fn forget_changed_token_secret(ctx: &Context, secret: &ObjectMeta, deleted: bool) {
    let labels = secret.labels.as_ref();
    let label = |k: &str| labels.and_then(|l| l.get(k)).map(String::as_str);
    if label(MANAGED_BY_LABEL) != Some(MANAGER) || label(ROLE_LABEL) != Some(TOKEN_ROLE) {
        return;
    }
    let name = secret.name.as_deref().unwrap_or_default();
    let version = secret.resource_version.as_deref().filter(|_| !deleted);
    for owner in secret.owner_references.iter().flatten() {
        if owner.kind == "OAuthClient" {
            ctx.forget_written(&owner.uid, name, version);
        }
    }
}

/// Turns the metadata watch of Secrets into reconcile triggers. The first list is skipped
/// (every OAuthClient is reconciled when its own watch lists it); later re-lists count as
/// changes, since a change may have been missed while disconnected.
fn secret_event_triggers(
    store: &Store<OAuthClient>,
    listed: &AtomicBool,
    event: watcher::Event<PartialObjectMeta<Secret>>,
) -> Vec<ObjectRef<OAuthClient>> {
    match event {
        watcher::Event::Apply(s) => secret_triggers(store, &s.metadata, false),
        watcher::Event::Delete(s) => secret_triggers(store, &s.metadata, true),
        watcher::Event::InitApply(s) if listed.load(Ordering::Relaxed) => {
            secret_triggers(store, &s.metadata, false)
        }
        watcher::Event::InitDone => {
            listed.store(true, Ordering::Relaxed);
            Vec::new()
        }
        watcher::Event::Init | watcher::Event::InitApply(_) => Vec::new(),
    }
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

/// How both watches list: in pages of [`LIST_PAGE_SIZE`], a consistent read the API server
/// serves from its watch cache page by page. A `resourceVersion=0` list ("any") is also served
/// from the cache, but the cacher ignores its limit (`computeListLimit` in k8s.io/apiserver, read
/// in the source, not traced on the wire), so a new operator at 10,000 OAuthClients would get
/// every OAuthClient (and every Secret's metadata) in one body, held whole while it is parsed.
/// Paging bounds that; its effect on the restart's peak was within the runs' noise
/// (BENCHMARKS.md, 2026-12-05).
fn list_config() -> watcher::Config {
    watcher::Config::default().page_size(LIST_PAGE_SIZE)
}

/// Objects per page of a watch's list.
const LIST_PAGE_SIZE: u32 = 500;

async fn run_one(
    (oacs, secrets): (Api<OAuthClient>, Api<PartialObjectMeta<Secret>>),
    ctx: Arc<Context>,
    concurrency: u16,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let (store, writer) = reflector::store();
    let pruning = ctx.clone();
    let pruning_store = store.clone();
    // Only changes the operator did not make itself: a new generation (spec), labels or
    // annotations (the refresh request); its own status writes pass none of them.
    let oauthclients = watcher(oacs, list_config())
        .default_backoff()
        // the store keeps every OAuthClient: without their managed fields (unused here) it
        // takes about half the memory; the status is slimmed to what the reconciler reads
        // (BENCHMARKS.md, the operator at scale)
        .modify(|oac| {
            oac.managed_fields_mut().clear();
            crate::reconcile::status::slim_for_cache(oac);
        })
        .reflect(writer)
        .inspect_ok(move |event| prune(&pruning, &pruning_store, event))
        .applied_objects()
        .predicate_filter(
            predicates::generation
                .combine(predicates::labels)
                .combine(predicates::annotations),
            Default::default(),
        );
    let controller = Controller::for_stream(oauthclients, store.clone())
        .with_config(kube::runtime::controller::Config::default().concurrency(concurrency));
    let listed = AtomicBool::new(false);
    let ctx_watch = ctx.clone();
    let secret_triggers = watcher(secrets, list_config())
        .default_backoff()
        .filter_map(move |event| {
            let refs = match event {
                Ok(event) => {
                    match &event {
                        watcher::Event::Apply(s) | watcher::Event::InitApply(s) => {
                            forget_changed_token_secret(&ctx_watch, &s.metadata, false)
                        }
                        watcher::Event::Delete(s) => {
                            forget_changed_token_secret(&ctx_watch, &s.metadata, true)
                        }
                        watcher::Event::Init | watcher::Event::InitDone => {}
                    }
                    secret_event_triggers(&store, &listed, event)
                }
                Err(e) => {
                    tracing::debug!(error = %e, "Secret watch");
                    Vec::new()
                }
            };
            futures::future::ready((!refs.is_empty()).then(|| stream::iter(refs)))
        })
        .flatten();
    controller
        .reconcile_on(secret_triggers)
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
    use crate::crd::{AzupaySpec, CredentialsStore, OAuthClientSpec, ProviderKind, SecretKeyRef};
    use k8s_openapi::api::core::v1::Secret;
    use kube::Resource;

    fn oac(name: &str, ns: &str, spec: OAuthClientSpec) -> OAuthClient {
        let mut o = OAuthClient::new(name, spec);
        o.metadata.namespace = Some(ns.into());
        o.metadata.uid = Some(format!("uid-{name}"));
        o
    }

    use crate::crd::test_specs::payu;

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
        let names = |s: &Secret, deleted: bool| {
            let mut v: Vec<String> = secret_triggers(&store, &s.metadata, deleted)
                .into_iter()
                .map(|r| r.name)
                .collect();
            v.sort();
            v
        };
        // the operator's own token Secret of b, as it writes it
        let mut own_token = secret("tok", "shop");
        own_token.metadata.owner_references = b.controller_owner_ref(&()).map(|o| vec![o]);
        own_token.metadata.labels = Some(
            [(MANAGED_BY_LABEL, MANAGER), (ROLE_LABEL, TOKEN_ROLE)]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        );
        // a Secret someone else owns, under the name of a's token Secret
        let mut foreign_owned = secret("tok", "shop");
        foreign_owned.metadata.owner_references = b.controller_owner_ref(&()).map(|o| vec![o]);
        // (name, Secret, deleted, expected OAuthClients)
        let cases: Vec<(&str, Secret, bool, Vec<&str>)> = vec![
            (
                "referenced, same namespace only",
                secret("shared", "shop"),
                false,
                vec!["a"],
            ),
            (
                "referenced elsewhere",
                secret("shared", "elsewhere"),
                false,
                vec!["c"],
            ),
            (
                "Azupay API key",
                secret("api-key", "shop"),
                false,
                vec!["az"],
            ),
            (
                "Azupay credentials Secret",
                secret("az-creds", "shop"),
                false,
                vec!["az"],
            ),
            (
                "referenced and deleted",
                secret("api-key", "shop"),
                true,
                vec!["az"],
            ),
            ("unrelated", secret("nothing", "shop"), false, vec![]),
            (
                "own token Secret written: nothing",
                own_token.clone(),
                false,
                vec![],
            ),
            (
                "own token Secret deleted: its owner",
                own_token,
                true,
                vec!["b"],
            ),
            (
                "a token name, changed: nothing",
                secret("tok", "shop"),
                false,
                vec![],
            ),
            // every OAuthClient of "shop" here names "tok" in spec.tokens
            (
                "a token name freed: who wants it",
                secret("tok", "shop"),
                true,
                vec!["a", "az", "b"],
            ),
            (
                "owned, not labelled, deleted",
                foreign_owned,
                true,
                vec!["a", "az", "b"],
            ),
        ];
        for (what, s, deleted, expected) in cases {
            assert_eq!(names(&s, deleted), expected, "{what}");
        }
    }
}
