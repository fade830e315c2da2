//! Secrets that have nothing to do with the operator: what a real cluster is full of. They are
//! created before the operator starts, so that what it lists and watches at start-up and what
//! it keeps in memory show whether it pays for them.

use std::collections::BTreeMap;
use std::time::Instant;

use futures::{StreamExt, stream};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};

use crate::operator_support::Env;

/// The size of each unrelated Secret's value.
const SIZE: usize = 8 << 10;
/// How many namespaces they are spread over.
const NAMESPACES: usize = 10;

/// Creates `count` Secrets of 8 KiB spread over namespaces `unrelated-00`…; prints progress.
pub(crate) async fn create(env: &Env, count: usize) {
    if count == 0 {
        return;
    }
    let start = Instant::now();
    for ns in 0..NAMESPACES.min(count) {
        env.cp.create_namespace(&namespace(ns)).await.unwrap();
    }
    let admin: &Client = &env.admin;
    let done = std::sync::atomic::AtomicUsize::new(0);
    stream::iter(0..count)
        .for_each_concurrent(32, |i| {
            let done = &done;
            async move {
                let ns = namespace(i % NAMESPACES.min(count));
                let api: Api<Secret> = Api::namespaced(admin.clone(), &ns);
                // different bytes per Secret, so nothing compresses them away
                let value: Vec<u8> = (0..SIZE).map(|b| (b * 31 + i * 7) as u8).collect();
                let secret = Secret {
                    metadata: ObjectMeta {
                        name: Some(format!("unrelated-{i:05}")),
                        ..ObjectMeta::default()
                    },
                    data: Some(BTreeMap::from([("blob".to_owned(), ByteString(value))])),
                    ..Secret::default()
                };
                api.create(&PostParams::default(), &secret).await.unwrap();
                let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                if n.is_multiple_of(1000) || n == count {
                    eprintln!(
                        "  unrelated Secrets: {n}/{count} ({:.0} s)",
                        start.elapsed().as_secs_f64()
                    );
                }
            }
        })
        .await;
}

fn namespace(i: usize) -> String {
    format!("unrelated-{i:02}")
}
