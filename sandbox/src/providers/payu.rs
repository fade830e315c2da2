//! PayU: form body, `client_secret_post`, up to three scopes, `created_at`, the seed's five errors.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use crate::Provider;
use crate::oauth::{self, ClientAuth, JSON};
use crate::state::Shared;

const INVALID_CLIENT: &str = "Client authentication failed due to unknown client, no client authentication included, or unsupported authentication method.";
const INVALID_SCOPE: &str = "The requested scope is invalid, unknown, or malformed.";
const UNAUTHORIZED_CLIENT: &str =
    "The authenticated client is not authorized to use this authorization grant type.";
const RATE_LIMITED: &str = "Too many requests. Please retry after some time.";

pub(crate) fn routes() -> Router<Arc<Shared>> {
    super::token_and_resource(Provider::Payu, "/payu/oauth/token", "/payu/resource", token)
}

/// Count this request against the rate limit; `Some(seconds)` to wait when it is over.
fn rate_limited(shared: &Shared) -> Option<u64> {
    let mut state = shared.lock();
    let limit = state.payu_rate_limit?;
    let now = state.now();
    let window = limit.window.as_secs().max(1);
    let (start, count) = match state.payu_window {
        Some((start, count)) if now < start + window => (start, count + 1),
        _ => (now, 1),
    };
    state.payu_window = Some((start, count));
    (count > limit.requests).then(|| (start + window - now).max(1))
}

/// `POST /oauth/token`.
async fn token(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(retry_after) = rate_limited(&shared) {
        return oauth::json_response(
            StatusCode::TOO_MANY_REQUESTS,
            JSON,
            &json!({
                "error": "rate_limit_exceeded",
                "error_description": RATE_LIMITED,
                "retry_after": retry_after,
            }),
        );
    }
    let (form, auth) = match oauth::form_prelude(&headers, &body, JSON) {
        Ok(parsed) => parsed,
        Err(response) => return response,
    };
    let invalid_client = || {
        oauth::oauth_error(
            StatusCode::UNAUTHORIZED,
            JSON,
            "invalid_client",
            INVALID_CLIENT,
        )
    };
    if !matches!(auth, ClientAuth::None) {
        return invalid_client();
    }
    let (Some(client_id), Some(secret)) = (form.get("client_id"), form.get("client_secret")) else {
        return invalid_client();
    };
    let mut state = shared.lock();
    let client = state
        .client(Provider::Payu, client_id)
        .filter(|c| &c.secret == secret)
        .cloned();
    let Some(client) = client else {
        return invalid_client();
    };
    if !client.client_credentials_allowed {
        return oauth::oauth_error(
            StatusCode::BAD_REQUEST,
            JSON,
            "unauthorized_client",
            UNAUTHORIZED_CLIENT,
        );
    }
    let scopes = oauth::split_scope(form.get("scope").map_or("", String::as_str));
    let scopes_ok =
        !scopes.is_empty() && scopes.len() <= 3 && scopes.iter().all(|s| client.scopes.contains(s));
    if !scopes_ok {
        return oauth::oauth_error(
            StatusCode::BAD_REQUEST,
            JSON,
            "invalid_scope",
            INVALID_SCOPE,
        );
    }
    let (access_token, created_at, lifetime) = oauth::mint(
        &shared,
        &mut state,
        Provider::Payu,
        &client.id,
        scopes.clone(),
        Value::Null,
    );
    drop(state);
    oauth::json_response(
        StatusCode::OK,
        JSON,
        &json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": lifetime,
            "scope": scopes.join(" "),
            "created_at": created_at,
        }),
    )
}
