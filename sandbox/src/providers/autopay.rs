//! Autopay: a JSON token request with `audience`, 401 `access_denied` on bad credentials, 403
//! `access_denied` (Auth0's `Service not found: …`) on an unknown audience.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use crate::Provider;
use crate::config::AUTOPAY_AUDIENCE;
use crate::oauth::{self, JSON};
use crate::state::Shared;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    super::token_and_resource(
        Provider::Autopay,
        "/autopay/oauth/token",
        "/autopay/resource",
        token,
    )
}

fn bad_request(error: &str, description: &str) -> Response {
    oauth::oauth_error(StatusCode::BAD_REQUEST, JSON, error, description)
}

/// `POST /oauth/token` with `{client_id, client_secret, audience, grant_type}`.
async fn token(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    if !oauth::content_type_is(&headers, JSON) {
        return bad_request(
            "invalid_request",
            "the request body must be JSON with Content-Type: application/json",
        );
    }
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(&body) else {
        return bad_request("invalid_request", "the request body must be a JSON object");
    };
    let mut values = Vec::new();
    for name in ["client_id", "client_secret", "audience", "grant_type"] {
        match fields.get(name) {
            Some(Value::String(value)) => values.push(value.as_str()),
            Some(_) => {
                return bad_request("invalid_request", &format!("{name} must be a string"));
            }
            None => {
                return bad_request("invalid_request", &format!("{name} is required"));
            }
        }
    }
    let [client_id, client_secret, audience, grant_type] = values[..] else {
        return bad_request("invalid_request", "malformed request");
    };
    if let Err(response) = oauth::check_grant_type(Some(grant_type), JSON) {
        return response;
    }
    if audience != AUTOPAY_AUDIENCE {
        // Auth0's answer to an audience that names no API of the tenant (the seed is silent).
        return oauth::oauth_error(
            StatusCode::FORBIDDEN,
            JSON,
            "access_denied",
            &format!("Service not found: {audience}"),
        );
    }
    if headers.contains_key(AUTHORIZATION) {
        return bad_request(
            "invalid_request",
            "the client authenticated with more than one method: send client_id and client_secret in the JSON body only",
        );
    }
    let mut state = shared.lock();
    let client = state
        .client(Provider::Autopay, client_id)
        .filter(|c| c.secret == client_secret)
        .cloned();
    let Some(client) = client else {
        return oauth::oauth_error(
            StatusCode::UNAUTHORIZED,
            JSON,
            "access_denied",
            "Unauthorized",
        );
    };
    let extra = json!({
        "sub": format!("{}@clients", client.id),
        "aud": AUTOPAY_AUDIENCE,
        "azp": client.id,
        "gty": "client-credentials",
    });
    let (access_token, _, lifetime) = oauth::mint(
        &shared,
        &mut state,
        Provider::Autopay,
        &client.id,
        client.scopes.clone(),
        extra,
    );
    drop(state);
    oauth::json_response(
        StatusCode::OK,
        JSON,
        &json!({
            "access_token": access_token,
            "scope": client.scopes.join(" "),
            "expires_in": lifetime,
            "token_type": "Bearer",
        }),
    )
}
