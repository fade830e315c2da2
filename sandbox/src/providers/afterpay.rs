//! Afterpay (IVR): Basic authentication, form `grant_type=client_credentials`, Cognito JWTs.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde_json::json;

use crate::Provider;
use crate::oauth::{self, ClientAuth, JSON};
use crate::state::Shared;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    super::token_and_resource(
        Provider::Afterpay,
        "/afterpay/oauth2/token",
        "/afterpay/resource",
        token,
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
