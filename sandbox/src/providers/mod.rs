//! The five providers, one module each.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use bytes::Bytes;
use http::HeaderMap;

use crate::Provider;
use crate::control::FaultPoint;
use crate::oauth;
use crate::state::{Shared, faulted};

mod afterpay;
mod autopay;
mod azupay;
mod payu;
mod pyng;

/// Every provider's routes, each under its own prefix.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .merge(azupay::routes())
        .merge(autopay::routes())
        .merge(payu::routes())
        .merge(pyng::routes())
        .merge(afterpay::routes())
}

/// `provider`'s token endpoint at `path`, answered by `token` unless a fault is queued for it
/// ([`faulted`]).
fn token_endpoint<H, Fut>(provider: Provider, path: &str, token: H) -> Router<Arc<Shared>>
where
    H: Fn(State<Arc<Shared>>, HeaderMap, Bytes) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response> + Send + 'static,
{
    Router::new().route(
        path,
        post(
            move |state: State<Arc<Shared>>, headers: HeaderMap, body: Bytes| {
                let shared = Arc::clone(&state.0);
                faulted(
                    shared,
                    FaultPoint::Token(provider),
                    token(state, headers, body),
                )
            },
        ),
    )
}

/// `provider`'s token endpoint at `token_path` ([`token_endpoint`]) and its protected resource
/// at `resource_path`, which accepts the tokens it issued while they are valid.
fn token_and_resource<H, Fut>(
    provider: Provider,
    token_path: &str,
    resource_path: &str,
    token: H,
) -> Router<Arc<Shared>>
where
    H: Fn(State<Arc<Shared>>, HeaderMap, Bytes) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response> + Send + 'static,
{
    token_endpoint(provider, token_path, token).route(
        resource_path,
        get(
            move |State(shared): State<Arc<Shared>>, headers: HeaderMap| {
                oauth::resource(shared, provider, headers)
            },
        ),
    )
}
