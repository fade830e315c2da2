//! Pyng (B2B Receivables): Basic authentication, form `grant_type` and a required `scope`.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use crate::Provider;
use crate::oauth::{self, ClientAuth, JSON_UTF8};
use crate::state::Shared;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    super::token_and_resource(
        Provider::Pyng,
        "/pyng/billing/oauth2/token",
        "/pyng/resource",
        token,
    )
}

/// `POST /billing/oauth2/token`.
async fn token(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let (form, auth) = match oauth::form_prelude(&headers, &body, JSON_UTF8) {
        Ok(parsed) => parsed,
        Err(response) => return response,
    };
    let failed =
        || oauth::basic_challenge(Provider::Pyng, JSON_UTF8, "Client authentication failed");
    let ClientAuth::Basic(client_id, secret) = auth else {
        return failed();
    };
    let mut state = shared.lock();
    let client = oauth::basic_client(&state, Provider::Pyng, &client_id, &secret);
    let Some(client) = client else {
        return failed();
    };
    let scopes = oauth::split_scope(form.get("scope").map_or("", String::as_str));
    if scopes.is_empty() {
        return oauth::oauth_error(
            StatusCode::BAD_REQUEST,
            JSON_UTF8,
            "invalid_request",
            "scope is required: a space-separated list of the scopes granted at onboarding",
        );
    }
    if let Some(missing) = scopes.iter().find(|s| !client.scopes.contains(s)) {
        return oauth::oauth_error(
            StatusCode::BAD_REQUEST,
            JSON_UTF8,
            "invalid_scope",
            &format!("the scope {missing} is unknown or not granted to this client"),
        );
    }
    let (access_token, _, lifetime) = oauth::mint(
        &shared,
        &mut state,
        Provider::Pyng,
        &client.id,
        scopes.clone(),
        Value::Null,
    );
    drop(state);
    oauth::json_response(
        StatusCode::OK,
        JSON_UTF8,
        &json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": lifetime,
            "scope": scopes.join(" "),
        }),
    )
}
