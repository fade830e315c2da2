//! The five providers, one module each.

use std::sync::Arc;

use axum::Router;

use crate::state::Shared;

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
