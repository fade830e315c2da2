//! Afterpay (IVR): Basic authentication, form `grant_type=client_credentials`, Cognito JWTs.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde_json::json;

use crate::Provider;
use crate::control::FaultPoint;
use crate::oauth::{self, ClientAuth, JSON};
use crate::state::Shared;
use crate::state::faulted;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/afterpay/oauth2/token",
            post(
                |state: State<Arc<Shared>>, headers: HeaderMap, body: Bytes| {
                    let shared = state.0.clone();
                    faulted(
                        shared,
                        FaultPoint::Token(Provider::Afterpay),
                        token(state, headers, body),
                    )
                },
            ),
        )
        .route(
            "/afterpay/resource",
            get(|State(shared): State<Arc<Shared>>, headers: HeaderMap| {
                oauth::resource(shared, Provider::Afterpay, headers)
            }),
        )
}

/// `POST /oauth2/token`.
async fn token(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let auth = match oauth::form_prelude(&headers, &body, JSON) {
        Ok((_, auth)) => auth,
        Err(response) => return response,
    };
    let failed =
        || oauth::basic_challenge(Provider::Afterpay, JSON, "Client authentication failed");
    let ClientAuth::Basic(client_id, secret) = auth else {
        return failed();
    };
    let mut state = shared.lock();
    let client = oauth::basic_client(&state, Provider::Afterpay, &client_id, &secret);
    let Some(client) = client else {
        return failed();
    };
    let (access_token, _, lifetime) = oauth::mint(
        &shared,
        &mut state,
        Provider::Afterpay,
        &client.id,
        client.scopes.clone(),
        json!({ "version": 2 }),
    );
    drop(state);
    oauth::json_response(
        StatusCode::OK,
        JSON,
        &json!({ "access_token": access_token, "expires_in": lifetime, "token_type": "Bearer" }),
    )
}
