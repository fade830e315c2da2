//! The test controls over HTTP, as JSON under `/_sandbox/`.

use std::sync::Arc;

use axum::Router;

use crate::state::Shared;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
}
