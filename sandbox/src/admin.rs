//! The test controls over HTTP, as JSON under `/_sandbox/`, for tests that are not written in
//! Rust. Requests to these paths are not recorded.
//!
//! | method and path | body | effect |
//! |---|---|---|
//! | `GET /_sandbox/credentials` | | the `clientcreds sandbox --json` document |
//! | `GET /_sandbox/requests` | | recorded requests: `[{provider, method, path, headers: [[name, value]], body}]` |
//! | `DELETE /_sandbox/requests` | | forget them |
//! | `GET /_sandbox/counts` | | `{"tokens_issued": {provider: {client_id: n}}, "enable_calls": {clientId: n}}` |
//! | `PUT /_sandbox/lifetimes/{provider}` | `{"seconds": 60}` | token lifetime from now on |
//! | `POST /_sandbox/faults` | `{"provider", "endpoint"?, "times"?, "status"?, "body"?, "headers"?: {name: value}, "delay_ms"?, "close_connection"?, "after_processing"?, "trickle"?: {"bytes", "every_ms"}}` | script faults for the next `times` (default 1) requests to `endpoint` (`"token"`, the default, or Azupay's `"enable"` or `"details"`); with neither `status` nor `close_connection` the request proceeds after the delay; `after_processing` lets the request take effect first, then applies the delay and the fault (the answer is late or lost, the effect is not) ([`Fault::after_processing`](crate::Fault::after_processing)); `trickle` sends the body `bytes` at a time, `every_ms` apart ([`Fault::trickle`](crate::Fault::trickle)); a redirect is a `status` 3xx with a `location` header |
//! | `DELETE /_sandbox/faults` | | drop unused faults |
//! | `POST /_sandbox/advance` | `{"seconds": 3600}` | move the sandbox clock forward |
//! | `POST /_sandbox/revoke` | | revoke every token issued so far |
//! | `GET /_sandbox/azupay/{clientId}` | | `{"client_id", "enabled"}` |
//! | `PUT /_sandbox/azupay/{clientId}/api-key` | `{"api_key": "…"}` | rotate the API key |
//! | `PUT /_sandbox/payu/rate-limit` | `{"requests": 5, "window_seconds": 60}` or `null` | set or remove PayU's rate limit |
//!
//! Changes answer `204 No Content`; a bad body answers 400 with a message naming the field.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use http::{HeaderName, HeaderValue, StatusCode};
use serde::Deserialize;
use serde_json::json;

use crate::Provider;
use crate::config::RateLimit;
use crate::control::{Fault, FaultPoint};
use crate::state::Shared;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/_sandbox/credentials", get(credentials))
        .route("/_sandbox/requests", get(requests).delete(clear_requests))
        .route("/_sandbox/counts", get(counts))
        .route("/_sandbox/lifetimes/{provider}", put(lifetime))
        .route("/_sandbox/faults", post(add_faults).delete(clear_faults))
        .route("/_sandbox/advance", post(advance))
        .route("/_sandbox/revoke", post(revoke))
        .route("/_sandbox/azupay/{client_id}", get(azupay_state))
        .route("/_sandbox/azupay/{client_id}/api-key", put(azupay_api_key))
        .route("/_sandbox/payu/rate-limit", put(payu_rate_limit))
}

fn bad_request(message: impl Into<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({ "error": message.into() })),
    )
        .into_response()
}

fn body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, Response> {
    body.map(|Json(v)| v)
        .map_err(|rejection| bad_request(rejection.body_text()))
}

fn provider(name: &str) -> Result<Provider, Response> {
    name.parse::<Provider>()
        .map_err(|e| bad_request(e.to_string()))
}

async fn credentials(State(shared): State<Arc<Shared>>) -> Response {
    Json(crate::credentials_of(&shared)).into_response()
}

async fn requests(State(shared): State<Arc<Shared>>) -> Response {
    let requests = shared.lock().requests.clone();
    Json(requests).into_response()
}

async fn clear_requests(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.lock().requests.clear();
    StatusCode::NO_CONTENT
}

async fn counts(State(shared): State<Arc<Shared>>) -> Response {
    let state = shared.lock();
    let mut tokens: BTreeMap<&str, BTreeMap<String, u64>> = BTreeMap::new();
    for ((provider, client), n) in &state.tokens_issued {
        tokens
            .entry(provider.as_str())
            .or_default()
            .insert(client.clone(), *n);
    }
    let enables: BTreeMap<String, u64> = state
        .enable_calls
        .iter()
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    Json(json!({ "tokens_issued": tokens, "enable_calls": enables })).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Seconds {
    seconds: u64,
}

async fn lifetime(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    request: Result<Json<Seconds>, JsonRejection>,
) -> Response {
    let (provider, seconds) = match (provider(&name), body(request)) {
        (Ok(p), Ok(s)) => (p, s.seconds),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    shared.lock().lifetimes[provider.index()] = Duration::from_secs(seconds);
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultRequest {
    provider: String,
    #[serde(default = "one")]
    times: usize,
    status: Option<u16>,
    #[serde(default)]
    body: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    delay_ms: u64,
    #[serde(default)]
    close_connection: bool,
    #[serde(default)]
    after_processing: bool,
    #[serde(default)]
    endpoint: Option<String>,
    #[serde(default)]
    trickle: Option<TrickleRequest>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TrickleRequest {
    bytes: usize,
    every_ms: u64,
}

fn one() -> usize {
    1
}

fn fault_of(request: &FaultRequest) -> Result<Fault, Response> {
    let delay = Duration::from_millis(request.delay_ms);
    if request.close_connection {
        if request.status.is_some() {
            return Err(bad_request(
                "status and close_connection exclude each other: a closed connection has no status",
            ));
        }
        let fault = Fault::close_connection().after(delay);
        return Ok(if request.after_processing {
            fault.after_processing()
        } else {
            fault
        });
    }
    let Some(status) = request.status else {
        let fault = Fault::delay(delay);
        return Ok(if request.after_processing {
            fault.after_processing()
        } else {
            fault
        });
    };
    let status = StatusCode::from_u16(status)
        .map_err(|_| bad_request(format!("status {status} is not an HTTP status (100-999)")))?;
    let mut fault = Fault::status(status)
        .with_body(request.body.clone())
        .after(delay);
    if request.after_processing {
        fault = fault.after_processing();
    }
    if let Some(trickle) = &request.trickle {
        if trickle.bytes == 0 {
            return Err(bad_request(
                "trickle.bytes must be at least 1 (the bytes sent at a time)",
            ));
        }
        fault = fault.trickle(trickle.bytes, Duration::from_millis(trickle.every_ms));
    }
    for (name, value) in &request.headers {
        let name = HeaderName::try_from(name.as_str())
            .map_err(|_| bad_request(format!("headers: {name:?} is not a header name")))?;
        let value = HeaderValue::try_from(value.as_str()).map_err(|_| {
            bad_request(format!(
                "headers: the value of {name} is not a header value"
            ))
        })?;
        fault = fault.with_header(name, value);
    }
    Ok(fault)
}

async fn add_faults(
    State(shared): State<Arc<Shared>>,
    request: Result<Json<FaultRequest>, JsonRejection>,
) -> Response {
    let request = match body(request) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let (provider, fault) = match (provider(&request.provider), fault_of(&request)) {
        (Ok(p), Ok(f)) => (p, f),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    let point = match (request.endpoint.as_deref(), provider) {
        (None | Some("token"), provider) => FaultPoint::Token(provider),
        (Some("enable"), Provider::Azupay) => FaultPoint::AzupayEnable,
        (Some("details"), Provider::Azupay) => FaultPoint::AzupayDetails,
        (Some(other), _) => {
            return bad_request(format!(
                "endpoint {other:?} is not one of {provider}'s: use \"token\"{}",
                if provider == Provider::Azupay {
                    ", \"enable\" or \"details\""
                } else {
                    ""
                }
            ));
        }
    };
    let mut state = shared.lock();
    for _ in 0..request.times {
        state.faults[point.index()].push_back(fault.clone());
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn clear_faults(State(shared): State<Arc<Shared>>) -> StatusCode {
    for queue in &mut shared.lock().faults {
        queue.clear();
    }
    StatusCode::NO_CONTENT
}

async fn advance(
    State(shared): State<Arc<Shared>>,
    request: Result<Json<Seconds>, JsonRejection>,
) -> Response {
    match body(request) {
        Ok(s) => {
            shared.lock().clock_offset += Duration::from_secs(s.seconds);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => e,
    }
}

async fn revoke(State(shared): State<Arc<Shared>>) -> StatusCode {
    for token in shared.lock().tokens.values_mut() {
        token.revoked = true;
    }
    StatusCode::NO_CONTENT
}

async fn azupay_state(
    State(shared): State<Arc<Shared>>,
    Path(client_id): Path<String>,
) -> Response {
    let state = shared.lock();
    match state.azupay.iter().find(|a| a.client_id == client_id) {
        Some(a) => Json(json!({ "client_id": a.client_id, "enabled": a.enabled })).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({ "error": format!("no Azupay client {client_id}") })),
        )
            .into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApiKey {
    api_key: String,
}

async fn azupay_api_key(
    State(shared): State<Arc<Shared>>,
    Path(client_id): Path<String>,
    request: Result<Json<ApiKey>, JsonRejection>,
) -> Response {
    let key = match body(request) {
        Ok(k) => k.api_key,
        Err(e) => return e,
    };
    let mut state = shared.lock();
    match state.azupay.iter_mut().find(|a| a.client_id == client_id) {
        Some(account) => {
            account.api_key = key;
            StatusCode::NO_CONTENT.into_response()
        }
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({ "error": format!("no Azupay client {client_id}") })),
        )
            .into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RateLimitRequest {
    requests: u32,
    window_seconds: u64,
}

async fn payu_rate_limit(
    State(shared): State<Arc<Shared>>,
    request: Result<Json<Option<RateLimitRequest>>, JsonRejection>,
) -> Response {
    let limit = match body(request) {
        Ok(l) => l,
        Err(e) => return e,
    };
    let mut state = shared.lock();
    state.payu_rate_limit = limit.map(|l| RateLimit {
        requests: l.requests,
        window: Duration::from_secs(l.window_seconds),
    });
    state.payu_window = None;
    StatusCode::NO_CONTENT.into_response()
}
