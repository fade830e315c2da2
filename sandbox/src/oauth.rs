//! Pieces every token endpoint shares: request parsing, error answers, token minting, and the
//! bearer check of the protected endpoints.

use std::collections::HashMap;

use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::prelude::{BASE64_STANDARD, BASE64_URL_SAFE_NO_PAD};
use hmac::{KeyInit, Mac};
use http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, PRAGMA, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::{Value, json};

use crate::Provider;
use crate::state::{IssuedToken, Shared};

/// `application/json`, the answer type of most providers.
pub(crate) const JSON: &str = "application/json";
/// `application/json;charset=UTF-8`, the answer type Pyng's seed shows.
pub(crate) const JSON_UTF8: &str = "application/json;charset=UTF-8";
pub(crate) const FORM: &str = "application/x-www-form-urlencoded";

/// A JSON answer with `Cache-Control: no-store` and `Pragma: no-cache` (RFC 6749 §5.1).
pub(crate) fn json_response(
    status: StatusCode,
    content_type: &'static str,
    body: &Value,
) -> Response {
    let mut response = (status, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// An RFC 6749 §5.2 error answer: `{"error", "error_description"}`.
pub(crate) fn oauth_error(
    status: StatusCode,
    content_type: &'static str,
    error: &str,
    description: &str,
) -> Response {
    json_response(
        status,
        content_type,
        &json!({ "error": error, "error_description": description }),
    )
}

/// Whether the media type of `Content-Type` (parameters ignored, case-insensitive) is `expected`.
pub(crate) fn content_type_is(headers: &HeaderMap, expected: &str) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case(expected))
}

/// A parsed `application/x-www-form-urlencoded` body.
pub(crate) type Form = HashMap<String, String>;

/// Parse a form body. `Err` names the problem: a parameter given twice (RFC 6749 §3.2) or a body
/// that is not UTF-8.
pub(crate) fn parse_form(body: &[u8]) -> Result<Form, String> {
    if std::str::from_utf8(body).is_err() {
        return Err("the request body is not UTF-8".to_owned());
    }
    let mut form = Form::new();
    for (key, value) in form_urlencoded::parse(body) {
        if form.insert(key.to_string(), value.to_string()).is_some() {
            return Err(format!("the parameter {key} is included more than once"));
        }
    }
    Ok(form)
}

/// What the `Authorization` header of a token request says about client authentication.
pub(crate) enum ClientAuth {
    /// No `Authorization` header.
    None,
    /// `Basic` with a client id and secret.
    Basic(String, String),
    /// Some other scheme, or a `Basic` value that does not decode.
    Malformed,
}

/// Read `Authorization: Basic base64(id:secret)`, as sent (see [`basic_client`] for matching).
pub(crate) fn client_auth(headers: &HeaderMap) -> ClientAuth {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return ClientAuth::None;
    };
    let Some(value) = value.to_str().ok() else {
        return ClientAuth::Malformed;
    };
    let Some((scheme, encoded)) = value.trim().split_once(' ') else {
        return ClientAuth::Malformed;
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return ClientAuth::Malformed;
    }
    let decoded = BASE64_STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok());
    let Some(decoded) = decoded else {
        return ClientAuth::Malformed;
    };
    let Some((id, secret)) = decoded.split_once(':') else {
        return ClientAuth::Malformed;
    };
    ClientAuth::Basic(id.to_owned(), secret.to_owned())
}

/// Split a space-separated `scope` parameter; empty parts are dropped.
pub(crate) fn split_scope(scope: &str) -> Vec<String> {
    scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// An HS256 JWT with these claims, signed with the sandbox's random key.
pub(crate) fn sign_jwt(key: &[u8], claims: &Value) -> String {
    let header = json!({ "alg": "HS256", "typ": "JWT", "kid": "clientcreds-sandbox" });
    let signing_input = format!(
        "{}.{}",
        BASE64_URL_SAFE_NO_PAD.encode(header.to_string()),
        BASE64_URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = hmac_sha256(key, signing_input.as_bytes());
    format!(
        "{signing_input}.{}",
        BASE64_URL_SAFE_NO_PAD.encode(signature)
    )
}

/// Whether a JWT's signature is the sandbox's (a token that was tampered with is refused even if
/// its text is somehow known).
pub(crate) fn jwt_signature_valid(key: &[u8], token: &str) -> bool {
    let Some((signing_input, signature)) = token.rsplit_once('.') else {
        return false;
    };
    let Ok(signature) = BASE64_URL_SAFE_NO_PAD.decode(signature) else {
        return false;
    };
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(key) else {
        return false;
    };
    mac.update(signing_input.as_bytes());
    mac.verify_slice(&signature).is_ok()
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail.
    match hmac::Hmac::<sha2::Sha256>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

/// A random JWT id.
pub(crate) fn jti() -> String {
    crate::state::random_hex(16)
}

/// Whether `provider` issues JWTs (else opaque tokens).
pub(crate) fn issues_jwt(provider: Provider) -> bool {
    matches!(
        provider,
        Provider::Azupay | Provider::Autopay | Provider::Afterpay
    )
}

/// The bearer check of a protected endpoint: the token must be one this sandbox issued for
/// `provider`, not expired on the sandbox clock, and not revoked. The error is the 401 answer
/// (RFC 6750 §3: `WWW-Authenticate: Bearer` alone when no token was sent, with
/// `error="invalid_token"` when a token was sent and is not good).
pub(crate) fn authorize(
    shared: &Shared,
    provider: Provider,
    headers: &HeaderMap,
) -> Result<IssuedToken, Response> {
    let realm = provider.as_str();
    let token = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned());
    let Some(token) = token else {
        let mut response = json_response(
            StatusCode::UNAUTHORIZED,
            JSON,
            &json!({ "error": "invalid_request", "error_description": "a bearer token is required: Authorization: Bearer <access_token>" }),
        );
        if let Ok(v) = HeaderValue::from_str(&format!("Bearer realm=\"{realm}\"")) {
            response.headers_mut().insert(WWW_AUTHENTICATE, v);
        }
        return Err(response);
    };
    let invalid = |description: &str| {
        let mut response = json_response(
            StatusCode::UNAUTHORIZED,
            JSON,
            &json!({ "error": "invalid_token", "error_description": description }),
        );
        let challenge = format!(
            "Bearer realm=\"{realm}\", error=\"invalid_token\", error_description=\"{description}\""
        );
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            response.headers_mut().insert(WWW_AUTHENTICATE, v);
        }
        response
    };
    if issues_jwt(provider) && !jwt_signature_valid(&shared.jwt_key, &token) {
        return Err(invalid(
            "the access token is malformed or not signed by this issuer",
        ));
    }
    let state = shared.lock();
    let Some(issued) = state.tokens.get(&token) else {
        return Err(invalid("the access token is unknown"));
    };
    if issued.provider != provider {
        return Err(invalid("the access token was not issued for this API"));
    }
    if issued.revoked {
        return Err(invalid("the access token has been revoked"));
    }
    if state.now() >= issued.expires_at {
        return Err(invalid("the access token expired"));
    }
    Ok(issued.clone())
}

/// 403 `insufficient_scope` (RFC 6750 §3.1) for a good token without `scope`.
pub(crate) fn insufficient_scope(provider: Provider, scope: &str) -> Response {
    let mut response = json_response(
        StatusCode::FORBIDDEN,
        JSON,
        &json!({ "error": "insufficient_scope", "error_description": format!("the access token lacks the scope {scope}") }),
    );
    let challenge = format!(
        "Bearer realm=\"{}\", error=\"insufficient_scope\", scope=\"{scope}\"",
        provider.as_str()
    );
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(WWW_AUTHENTICATE, v);
    }
    response
}

/// The answer of the generic protected endpoints: who the token belongs to.
pub(crate) fn resource_answer(provider: Provider, token: &IssuedToken) -> Response {
    json_response(
        StatusCode::OK,
        JSON,
        &json!({
            "provider": provider.as_str(),
            "client_id": token.client_id,
            "scope": token.scopes.join(" "),
            "expires_at": token.expires_at,
        }),
    )
}

/// The checks every form-encoded token endpoint starts with, in this order: `Content-Type`,
/// the form itself, client credentials in both `Authorization` and the body (`invalid_request`,
/// RFC 6749 §2.3), then `grant_type` (`invalid_request` when missing, `unsupported_grant_type`
/// when not `client_credentials`). Returns the form and what `Authorization` says.
pub(crate) fn form_prelude(
    headers: &HeaderMap,
    body: &[u8],
    content_type: &'static str,
) -> Result<(Form, ClientAuth), Response> {
    let bad = |error: &str, description: &str| {
        oauth_error(StatusCode::BAD_REQUEST, content_type, error, description)
    };
    if !content_type_is(headers, FORM) {
        return Err(bad(
            "invalid_request",
            "the request body must be form-encoded with Content-Type: application/x-www-form-urlencoded",
        ));
    }
    let form = parse_form(body).map_err(|problem| bad("invalid_request", &problem))?;
    let auth = client_auth(headers);
    let body_credentials = form.contains_key("client_id") || form.contains_key("client_secret");
    if !matches!(auth, ClientAuth::None) && body_credentials {
        return Err(bad(
            "invalid_request",
            "the client authenticated with more than one method: use either Authorization or client_id/client_secret in the body",
        ));
    }
    check_grant_type(form.get("grant_type").map(String::as_str), content_type)?;
    Ok((form, auth))
}

/// `grant_type` must be present and `client_credentials`.
pub(crate) fn check_grant_type(
    grant_type: Option<&str>,
    content_type: &'static str,
) -> Result<(), Response> {
    match grant_type {
        None => Err(oauth_error(
            StatusCode::BAD_REQUEST,
            content_type,
            "invalid_request",
            "grant_type is required: grant_type=client_credentials",
        )),
        Some("client_credentials") => Ok(()),
        Some(_) => Err(oauth_error(
            StatusCode::BAD_REQUEST,
            content_type,
            "unsupported_grant_type",
            "grant_type must be client_credentials",
        )),
    }
}

/// A new token for `client_id` of `provider`: an HS256 JWT for JWT providers (with `extra`
/// claims merged in), else an opaque random string. Stored and counted; returns the token, the
/// issue time and the lifetime in seconds.
pub(crate) fn mint(
    shared: &Shared,
    state: &mut crate::state::State,
    provider: Provider,
    client_id: &str,
    scopes: Vec<String>,
    extra: Value,
) -> (String, u64, u64) {
    let now = state.now();
    let lifetime = state.lifetime(provider);
    let token = if issues_jwt(provider) {
        let mut claims = json!({
            "iss": shared.prefix_url(provider),
            "sub": client_id,
            "client_id": client_id,
            "scope": scopes.join(" "),
            "token_use": "access",
            "iat": now,
            "exp": now + lifetime,
            "jti": jti(),
        });
        if let (Some(claims), Value::Object(extra)) = (claims.as_object_mut(), extra) {
            claims.extend(extra);
        }
        sign_jwt(&shared.jwt_key, &claims)
    } else if provider == Provider::Payu {
        crate::state::random_hex(32)
    } else {
        crate::state::random_alnum(40)
    };
    state.issue(
        token.clone(),
        IssuedToken {
            provider,
            client_id: client_id.to_owned(),
            scopes,
            expires_at: now + lifetime,
            revoked: false,
        },
    );
    (token, now, lifetime)
}

/// 401 `invalid_client` with a `WWW-Authenticate: Basic` challenge (RFC 6749 §5.2).
pub(crate) fn basic_challenge(
    provider: Provider,
    content_type: &'static str,
    description: &str,
) -> Response {
    let mut response = oauth_error(
        StatusCode::UNAUTHORIZED,
        content_type,
        "invalid_client",
        description,
    );
    if let Ok(v) = HeaderValue::from_str(&format!("Basic realm=\"{}\"", provider.as_str())) {
        response.headers_mut().insert(WWW_AUTHENTICATE, v);
    }
    response
}

/// `GET {prefix}/resource`: any good token of `provider`.
pub(crate) async fn resource(
    shared: std::sync::Arc<Shared>,
    provider: Provider,
    headers: HeaderMap,
) -> Response {
    match authorize(&shared, provider, &headers) {
        Ok(token) => resource_answer(provider, &token),
        Err(response) => response,
    }
}

/// The client of `provider` that Basic credentials name. They are matched as sent and, failing
/// that, form-decoded, since RFC 6749 §2.3.1 has clients form-encode them first and many do not.
pub(crate) fn basic_client(
    state: &crate::state::State,
    provider: Provider,
    id: &str,
    secret: &str,
) -> Option<crate::config::Client> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8()
            .map_or_else(|_| s.to_owned(), |c| c.into_owned())
    };
    let matching = |id: &str, secret: &str| {
        state
            .client(provider, id)
            .filter(|c| c.secret == secret)
            .cloned()
    };
    matching(id, secret).or_else(|| matching(&decode(id), &decode(secret)))
}
