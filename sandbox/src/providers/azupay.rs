//! Azupay: enable OAuth 2.0 with the API key, read the details, get a JWT from its
//! Cognito-style token endpoint, call `GET /v1/balance`.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use crate::Provider;
use crate::control::FaultPoint;
use crate::oauth::{self, ClientAuth, JSON};
use crate::state::faulted;
use crate::state::{AzupayAccount, IssuedToken, Shared};

/// The scope `GET /v1/balance` needs.
pub(crate) const BALANCE_SCOPE: &str = "RestAPI/GET:balance";

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/azupay/v1/client/{client_id}/oauth2",
            post(
                |state: State<Arc<Shared>>, path: Path<String>, headers: HeaderMap, body: Bytes| {
                    let shared = state.0.clone();
                    *shared
                        .lock()
                        .enable_calls
                        .entry(path.0.clone())
                        .or_default() += 1;
                    faulted(
                        shared,
                        FaultPoint::AzupayEnable,
                        enable(state, path, headers, body),
                    )
                },
            )
            .get(
                |state: State<Arc<Shared>>, path: Path<String>, headers: HeaderMap| {
                    let shared = state.0.clone();
                    faulted(
                        shared,
                        FaultPoint::AzupayDetails,
                        details(state, path, headers),
                    )
                },
            ),
        )
        .merge(super::token_endpoint(
            Provider::Azupay,
            "/azupay/oauth2/token",
            token,
        ))
        .route("/azupay/v1/balance", get(balance))
}

/// An Azupay API error, in the `{"message": …}` form of its API gateway.
fn api_error(status: StatusCode, message: &str) -> Response {
    oauth::json_response(status, JSON, &json!({ "message": message }))
}

/// Check the API key of `Authorization` (sent as-is, no scheme) against the client of the path.
fn check_api_key(shared: &Shared, headers: &HeaderMap, client_id: &str) -> Result<(), Response> {
    let key = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
    let Some(key) = key else {
        return Err(api_error(StatusCode::UNAUTHORIZED, "Unauthorized"));
    };
    let state = shared.lock();
    match state.azupay.iter().find(|a| a.api_key == key) {
        None => Err(api_error(StatusCode::UNAUTHORIZED, "Unauthorized")),
        Some(account) if account.client_id != client_id => Err(api_error(
            StatusCode::FORBIDDEN,
            "Forbidden: the API key does not belong to this clientId",
        )),
        Some(_) => Ok(()),
    }
}

fn details_body(shared: &Shared, account: &AzupayAccount, ttl: u64, with_secret: bool) -> Value {
    let mut body = json!({
        "oauth2ClientId": account.oauth2_client_id,
        "oauth2TokenUrl": format!("{}/oauth2/token", shared.prefix_url(Provider::Azupay)),
        "oauth2GrantType": "client_credentials",
        "oauth2TtlInSecs": ttl,
        "oauth2AllowedScopes": account.allowed_scopes,
    });
    if with_secret {
        body["oauth2ClientSecret"] = Value::from(account.oauth2_client_secret.clone());
    }
    body
}

/// `POST {ENDPOINT}/client/{clientId}/oauth2`: enable OAuth 2.0 once; the answer is the only one
/// that carries `oauth2ClientSecret`.
async fn enable(
    State(shared): State<Arc<Shared>>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(response) = check_api_key(&shared, &headers, &client_id) {
        return response;
    }
    if !body.iter().all(u8::is_ascii_whitespace) {
        let is_object = oauth::content_type_is(&headers, JSON)
            && serde_json::from_slice::<Value>(&body).is_ok_and(|v| v.is_object());
        if !is_object {
            return api_error(
                StatusCode::BAD_REQUEST,
                "the request body must be a JSON object such as {} with Content-Type: application/json",
            );
        }
    }
    let mut state = shared.lock();
    let ttl = state.lifetime(Provider::Azupay);
    let Some(account) = state.azupay.iter_mut().find(|a| a.client_id == client_id) else {
        return api_error(StatusCode::NOT_FOUND, "unknown clientId");
    };
    if account.enabled {
        return api_error(
            StatusCode::CONFLICT,
            "OAuth 2.0 is already enabled for this client; oauth2ClientSecret is returned only once. Retrieve the connection details with GET, or contact Azupay if the secret was lost",
        );
    }
    account.enabled = true;
    let account = account.clone();
    drop(state);
    oauth::json_response(
        StatusCode::OK,
        JSON,
        &details_body(&shared, &account, ttl, true),
    )
}

/// `GET {ENDPOINT}/client/{clientId}/oauth2`: the details, never the secret; 404 before enable.
async fn details(
    State(shared): State<Arc<Shared>>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = check_api_key(&shared, &headers, &client_id) {
        return response;
    }
    let state = shared.lock();
    let ttl = state.lifetime(Provider::Azupay);
    let account = state
        .azupay
        .iter()
        .find(|a| a.client_id == client_id && a.enabled)
        .cloned();
    drop(state);
    match account {
        None => api_error(
            StatusCode::NOT_FOUND,
            "OAuth 2.0 is not enabled for this client",
        ),
        Some(account) => oauth::json_response(
            StatusCode::OK,
            JSON,
            &details_body(&shared, &account, ttl, false),
        ),
    }
}

fn token_error(status: StatusCode, error: &str, description: &str) -> Response {
    oauth::oauth_error(status, JSON, error, description)
}

/// `POST {oauth2TokenUrl}`: form body, `client_id` + `client_secret` in the body, optional
/// `scope`.
async fn token(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    if !oauth::content_type_is(&headers, oauth::FORM) {
        return token_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the request body must be form-encoded with Content-Type: application/x-www-form-urlencoded",
        );
    }
    let form = match oauth::parse_form(&body) {
        Ok(form) => form,
        Err(problem) => return token_error(StatusCode::BAD_REQUEST, "invalid_request", &problem),
    };
    let body_credentials = form.contains_key("client_id") || form.contains_key("client_secret");
    match oauth::client_auth(&headers) {
        ClientAuth::None => {}
        _ if body_credentials => {
            return token_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "the client authenticated with more than one method: send client_id and client_secret in the form body only",
            );
        }
        _ => {
            return token_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "unsupported client authentication method: send client_id and client_secret in the form body",
            );
        }
    }
    match form.get("grant_type").map(String::as_str) {
        None => {
            return token_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "grant_type is required: grant_type=client_credentials",
            );
        }
        Some("client_credentials") => {}
        Some(_) => {
            return token_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "grant_type must be client_credentials",
            );
        }
    }
    let (Some(client_id), Some(secret)) = (form.get("client_id"), form.get("client_secret")) else {
        return token_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed: client_id and client_secret are required",
        );
    };
    let mut state = shared.lock();
    let account = state
        .azupay
        .iter()
        .find(|a| {
            a.enabled && &a.oauth2_client_id == client_id && &a.oauth2_client_secret == secret
        })
        .cloned();
    let Some(account) = account else {
        return token_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed",
        );
    };
    let scopes: Vec<String> = match form.get("scope") {
        None => account.allowed_scopes.clone(),
        Some(requested) => oauth::split_scope(requested)
            .into_iter()
            .filter(|s| account.allowed_scopes.contains(s))
            .collect(),
    };
    if scopes.is_empty() {
        return token_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "none of the requested scopes is in oauth2AllowedScopes",
        );
    }
    let now = state.now();
    let lifetime = state.lifetime(Provider::Azupay);
    let claims = json!({
        "sub": account.oauth2_client_id,
        "token_use": "access",
        "scope": scopes.join(" "),
        "auth_time": now,
        "iss": shared.prefix_url(Provider::Azupay),
        "exp": now + lifetime,
        "iat": now,
        "version": 2,
        "jti": oauth::jti(),
        "client_id": account.oauth2_client_id,
        "azupay_client_id": account.client_id,
    });
    let access_token = oauth::sign_jwt(&shared.jwt_key, &claims);
    state.issue(
        access_token.clone(),
        IssuedToken {
            provider: Provider::Azupay,
            client_id: account.oauth2_client_id.clone(),
            scopes,
            expires_at: now + lifetime,
            revoked: false,
        },
    );
    drop(state);
    oauth::json_response(
        StatusCode::OK,
        JSON,
        &json!({ "access_token": access_token, "token_type": "Bearer", "expires_in": lifetime }),
    )
}

/// `GET /v1/balance`: needs a good token with `RestAPI/GET:balance`.
async fn balance(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let token = match oauth::authorize(&shared, Provider::Azupay, &headers) {
        Ok(token) => token,
        Err(response) => return response,
    };
    if !token.scopes.iter().any(|s| s == BALANCE_SCOPE) {
        return oauth::insufficient_scope(Provider::Azupay, BALANCE_SCOPE);
    }
    oauth::json_response(
        StatusCode::OK,
        JSON,
        &json!({ "balance": { "currency": "AUD", "availableBalance": "1000.00" } }),
    )
}
