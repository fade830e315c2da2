//! Per-request cost of attaching a token, around a no-op service:
//! no layer, tower-http's static `AddAuthorization`, and `Bearer` with a cached token
//! (from a `TokenCache` and from a `StaticToken`).
//!
//! Run: `cargo bench -p clientcreds --bench bearer`

#![allow(missing_docs, clippy::unwrap_used)]

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::hint::black_box;
use std::task::{Context, Poll};
use std::time::Duration;

use clientcreds::Token;
use clientcreds::bearer::Bearer;
use clientcreds::cache::TokenCache;
use clientcreds::source::{StaticToken, TokenSource};
use criterion::{Criterion, criterion_group, criterion_main};
use futures::FutureExt;
use http::{Request, Response};
use tower::Service;
use tower_http::auth::AddAuthorization;

/// A service that answers at once.
#[derive(Clone, Copy)]
struct Noop;

impl Service<Request<()>> for Noop {
    type Response = Response<()>;
    type Error = Infallible;
    type Future = Ready<Result<Response<()>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<()>) -> Self::Future {
        black_box(&request);
        ready(Ok(Response::new(())))
    }
}

fn one<S>(svc: &mut S)
where
    S: Service<Request<()>, Response = Response<()>>,
    S::Error: std::fmt::Debug,
{
    let mut cx = Context::from_waker(futures::task::noop_waker_ref());
    assert!(svc.poll_ready(&mut cx).is_ready());
    let response = svc.call(Request::new(())).now_or_never();
    black_box(response);
}

fn bench(c: &mut Criterion) {
    const TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJiZW5jaCJ9.c2lnbmF0dXJlLXNpZ25hdHVyZQ";
    let token = || Token::new(TOKEN, "Bearer", Duration::from_secs(3600), None).unwrap();

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let cache = TokenCache::new(move || {
        std::future::ready(Token::new(TOKEN, "Bearer", Duration::from_secs(3600), None))
    });
    runtime.block_on(cache.token()).unwrap();

    let mut group = c.benchmark_group("attach_token");
    let mut none = Noop;
    group.bench_function("no_layer", |b| b.iter(|| one(&mut none)));
    let mut add = AddAuthorization::bearer(Noop, TOKEN).as_sensitive(true);
    group.bench_function("tower_http_add_authorization", |b| b.iter(|| one(&mut add)));
    // In a service the first request runs inside the runtime, which sets up the static token's
    // fresh window (its timer task lives there); here that first call is made by hand.
    let static_token = StaticToken::new(token());
    runtime.block_on(async { static_token.fresh_authorization() });
    let mut bearer_static = Bearer::new(Noop, static_token);
    group.bench_function("bearer_static_token", |b| {
        b.iter(|| one(&mut bearer_static))
    });
    let mut bearer_cached = Bearer::new(Noop, cache.clone());
    // Outside the runtime context on purpose: with the dev-dependency `tokio/test-util`
    // enabled, `tokio::time::Instant::now()` inside a runtime reads the mockable clock under a
    // mutex, which production builds (no `test-util`) never do.
    group.bench_function("bearer_cached_token", |b| {
        b.iter(|| one(&mut bearer_cached))
    });
    group.finish();

    // The parts of the hot path, for reading the numbers above.
    let mut parts = c.benchmark_group("hot_path_parts");
    parts.bench_function("cache_cached_authorization", |b| {
        b.iter(|| black_box(cache.cached_authorization()))
    });
    let fresh = cache.fresh_authorization().unwrap();
    parts.bench_function("fresh_authorization_get", |b| {
        b.iter(|| black_box(fresh.get().cloned()))
    });
    let header = cache.cached_authorization().unwrap();
    parts.bench_function("header_value_clone", |b| {
        b.iter(|| black_box(header.clone()))
    });
    parts.bench_function("tokio_instant_now", |b| {
        b.iter(|| black_box(tokio::time::Instant::now()))
    });
    parts.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
