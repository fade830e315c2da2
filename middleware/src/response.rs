//! Parsing token endpoint responses (RFC 6749 §5.1 and §5.2, and the seed providers' variants).
//!
//! Lifetime of a token, first rule that applies:
//! 1. `expires_in` (a number, or a numeric string), shortened by the time since `created_at`
//!    when the response has it (PayU);
//! 2. the `exp` claim of a JWT access token (read, not verified: the client only needs to know
//!    when to refresh);
//! 3. the configured [`default_lifetime`](crate::ClientCredentialsBuilder::default_lifetime);
//! 4. otherwise the response is an error — a token is never assumed to live forever.
//!
//! Whichever applies, a lifetime longer than [`MAX_LIFETIME`](crate::refresh::MAX_LIFETIME)
//! (one year) counts as one year: `expires_in: 1e12` is neither an error nor "now".

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use http::{HeaderMap, StatusCode, header};
use serde_json::{Map, Value};

use crate::error::MAX_RETRY_AFTER;
use crate::refresh::RefreshPolicy;
use crate::{Error, OAuthErrorCode, Token};

/// The longest description kept from an error body.
const MAX_DESCRIPTION: usize = 300;

/// Parses a token endpoint response into a token or a typed error.
pub(crate) fn parse(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    requested_scope: Option<&str>,
    default_lifetime: Option<Duration>,
    now: SystemTime,
) -> Result<Token, Error> {
    if !status.is_success() {
        return Err(parse_error(status, headers, body, now));
    }
    let object = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => object,
        Ok(_) => {
            return Err(Error::InvalidResponse(format!(
                "HTTP {status}: the body is JSON but not an object"
            )));
        }
        Err(_) => {
            return Err(Error::InvalidResponse(format!(
                "HTTP {status}: {}",
                describe_non_json(headers, body)
            )));
        }
    };
    // Some servers answer 200 with an error body.
    if object.get("access_token").is_none() && object.get("error").is_some_and(Value::is_string) {
        return Err(error_from_object(status, &object, headers, now));
    }
    let access_token = match object.get("access_token") {
        Some(Value::String(token)) if !token.is_empty() => token.clone(),
        Some(Value::String(_)) => {
            return Err(Error::InvalidResponse("`access_token` is empty".into()));
        }
        Some(_) => {
            return Err(Error::InvalidResponse(
                "`access_token` is not a string".into(),
            ));
        }
        None => {
            return Err(Error::InvalidResponse(
                "the response has no `access_token`".into(),
            ));
        }
    };
    let token_type = match object.get("token_type") {
        Some(Value::String(t)) if t.eq_ignore_ascii_case("bearer") => "Bearer",
        Some(Value::String(t)) => {
            return Err(Error::InvalidResponse(format!(
                "`token_type` is {:?}; only Bearer tokens are supported (RFC 6750)",
                sanitize(t, 40)
            )));
        }
        Some(_) => {
            return Err(Error::InvalidResponse(
                "`token_type` is not a string".into(),
            ));
        }
        // RFC 6749 requires token_type; a server that leaves it out issues bearer tokens.
        None => "Bearer",
    };
    let lifetime =
        RefreshPolicy::clamp_lifetime(lifetime(&object, &access_token, default_lifetime, now)?);
    let scope = match object.get("scope") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" "),
        ),
        Some(Value::Null) | None => requested_scope.map(str::to_owned),
        Some(_) => return Err(Error::InvalidResponse("`scope` is not a string".into())),
    };
    Token::new(access_token, token_type, lifetime, scope)
}

fn lifetime(
    object: &Map<String, Value>,
    access_token: &str,
    default_lifetime: Option<Duration>,
    now: SystemTime,
) -> Result<Duration, Error> {
    let now_secs = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    if let Some(value) = object.get("expires_in").filter(|v| !v.is_null()) {
        let expires_in = seconds(value).ok_or_else(|| {
            Error::InvalidResponse("`expires_in` is not a non-negative number of seconds".into())
        })?;
        if expires_in <= 0.0 {
            return Err(Error::InvalidResponse(
                "`expires_in` is 0: the token is already expired".into(),
            ));
        }
        let mut remaining = expires_in;
        if let Some(value) = object.get("created_at").filter(|v| !v.is_null()) {
            let created_at = seconds(value).ok_or_else(|| {
                Error::InvalidResponse("`created_at` is not a UNIX timestamp in seconds".into())
            })?;
            // A `created_at` in the future (clock skew) does not lengthen the lifetime.
            let elapsed = (now_secs - created_at).max(0.0);
            remaining = expires_in - elapsed;
            if remaining <= 0.0 {
                return Err(Error::InvalidResponse(format!(
                    "the token expired before it arrived: created_at {created_at} + expires_in \
                     {expires_in} is {:.0} s in the past (check this machine's clock)",
                    -remaining
                )));
            }
        }
        return duration(remaining);
    }
    if let Some(exp) = jwt_exp(access_token) {
        let remaining = exp - now_secs;
        if remaining <= 0.0 {
            return Err(Error::InvalidResponse(format!(
                "no `expires_in`, and the JWT `exp` claim is {:.0} s in the past",
                -remaining
            )));
        }
        return duration(remaining);
    }
    default_lifetime.ok_or_else(|| {
        Error::InvalidResponse(
            "the response has no `expires_in` and the token is not a JWT with `exp`; set \
             ClientCredentialsBuilder::default_lifetime to say how long such tokens live"
                .into(),
        )
    })
}

/// `secs` as a lifetime, at most [`MAX_LIFETIME`](crate::refresh::MAX_LIFETIME).
fn duration(secs: f64) -> Result<Duration, Error> {
    let max = crate::refresh::MAX_LIFETIME.as_secs_f64();
    Duration::try_from_secs_f64(secs.min(max)).map_err(|_| {
        Error::InvalidResponse(format!("the token lifetime {secs} s cannot be represented"))
    })
}

/// A number of seconds as a JSON number or numeric string.
fn seconds(value: &Value) -> Option<f64> {
    let secs = match value {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    (secs.is_finite() && secs >= 0.0).then_some(secs)
}

/// The `exp` claim of a JWT, read without verifying the signature.
pub(crate) fn jwt_exp(token: &str) -> Option<f64> {
    let mut parts = token.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let payload = payload.trim_end_matches('=');
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    seconds(claims.get("exp")?)
}

/// Maps an error response (any body) to [`Error::TokenEndpoint`].
pub(crate) fn parse_error(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    now: SystemTime,
) -> Error {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) if object.get("error").is_some_and(Value::is_string) => {
            error_from_object(status, &object, headers, now)
        }
        Ok(_) => Error::TokenEndpoint {
            status,
            code: None,
            description: Some("the JSON body has no `error` field".into()),
            retry_after: retry_after_header(headers, now),
        },
        Err(_) => Error::TokenEndpoint {
            status,
            code: None,
            description: Some(describe_non_json(headers, body)),
            retry_after: retry_after_header(headers, now),
        },
    }
}

fn error_from_object(
    status: StatusCode,
    object: &Map<String, Value>,
    headers: &HeaderMap,
    now: SystemTime,
) -> Error {
    let code = object
        .get("error")
        .and_then(Value::as_str)
        .map(|c| OAuthErrorCode::parse(&sanitize(c, 64)));
    let description = object
        .get("error_description")
        .and_then(Value::as_str)
        .map(|d| sanitize(d, MAX_DESCRIPTION))
        .filter(|d| !d.is_empty());
    let retry_after = object
        .get("retry_after")
        .and_then(retry_after_field)
        .or_else(|| retry_after_header(headers, now));
    Error::TokenEndpoint {
        status,
        code,
        description,
        retry_after,
    }
}

/// The body's `retry_after` (seconds, a number or a numeric string), at most
/// [`MAX_RETRY_AFTER`]. Negative or not a number: ignored. Never panics, whatever the value
/// (`1e19`, `"1e400"`, `"NaN"`, `-5`).
fn retry_after_field(value: &Value) -> Option<Duration> {
    let secs = match value {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    if secs.is_nan() || secs < 0.0 {
        return None;
    }
    // Clamped first, so the conversion cannot fail; +inf becomes the maximum.
    let secs = secs.min(MAX_RETRY_AFTER.as_secs_f64());
    Some(Duration::try_from_secs_f64(secs).unwrap_or(MAX_RETRY_AFTER))
}

/// `Retry-After`: delay in seconds or an HTTP date (RFC 9110 §10.2.3), at most
/// [`MAX_RETRY_AFTER`] (a number of seconds too large for a `u64` counts as the maximum).
fn retry_after_header(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        let wait = value
            .parse::<u64>()
            .map_or(MAX_RETRY_AFTER, Duration::from_secs);
        return Some(wait.min(MAX_RETRY_AFTER));
    }
    let at = jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(value)
        .ok()?;
    let at = SystemTime::from(at);
    Some(
        at.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(MAX_RETRY_AFTER),
    )
}

/// "empty response body" or "response body is not JSON (text/html, 157 bytes)". The body
/// itself is never quoted: it is server-controlled and may echo the request.
fn describe_non_json(headers: &HeaderMap, body: &[u8]) -> String {
    if body.iter().all(u8::is_ascii_whitespace) {
        return "empty response body".into();
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| sanitize(v, 60))
        .unwrap_or_else(|| "no content-type".into());
    format!(
        "response body is not JSON ({content_type}, {} bytes)",
        body.len()
    )
}

/// Drops control characters and truncates on a character boundary.
fn sanitize(text: &str, max_chars: usize) -> String {
    let mut out: String = text
        .chars()
        .filter(|c| !c.is_control())
        .take(max_chars)
        .collect();
    if text.chars().filter(|c| !c.is_control()).count() > max_chars {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn ok(body: &str, now: SystemTime) -> Result<Token, Error> {
        parse(
            StatusCode::OK,
            &HeaderMap::new(),
            body.as_bytes(),
            Some("requested"),
            None,
            now,
        )
    }

    fn err(status: u16, headers: &[(&str, &str)], body: &str) -> Error {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        parse(
            StatusCode::from_u16(status).unwrap(),
            &map,
            body.as_bytes(),
            None,
            None,
            at(1_700_000_000),
        )
        .unwrap_err()
    }

    fn jwt(claims: &str) -> String {
        let enc = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!("{}.{}.c2ln", enc(r#"{"alg":"RS256"}"#), enc(claims))
    }

    #[test]
    fn azupay_example() {
        let t = ok(
            r#"{"access_token": "eyJraWQiOiJ...", "token_type": "Bearer", "expires_in": 3600}"#,
            SystemTime::now(),
        )
        .unwrap();
        assert_eq!(t.secret().expose_secret(), "eyJraWQiOiJ...");
        assert_eq!(t.lifetime(), Duration::from_secs(3600));
        assert_eq!(
            t.scope(),
            Some("requested"),
            "absent scope → what was requested"
        );
    }

    #[test]
    fn autopay_example() {
        let t = ok(
            r#"{"access_token":"exxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxQ","scope":"customer_club","expires_in":86400,"token_type":"Bearer"}"#,
            SystemTime::now(),
        )
        .unwrap();
        assert_eq!(t.lifetime(), Duration::from_secs(86400));
        assert_eq!(t.scope(), Some("customer_club"));
    }

    #[test]
    fn payu_example_created_at_shortens_lifetime() {
        let body = r#"{ "access_token": "ea4ed864b4d2a04b90c1e987a5d25a5da1d43fa5f7d123be6814a1e973f196c4", "token_type": "Bearer", "expires_in": 7011, "scope": "create_payment_links", "created_at": 1763036368 }"#;
        let t = ok(body, at(1763036368 + 11)).unwrap();
        assert_eq!(t.lifetime(), Duration::from_secs(7000));
        assert_eq!(t.scope(), Some("create_payment_links"));
        // created_at in the future (skew) never lengthens the lifetime.
        let t = ok(body, at(1763036368 - 100)).unwrap();
        assert_eq!(t.lifetime(), Duration::from_secs(7011));
        // Expired before arrival: a clear error, not a zero-lifetime token.
        let e = ok(body, at(1763036368 + 8000)).unwrap_err();
        assert!(
            matches!(e, Error::InvalidResponse(ref m) if m.contains("clock")),
            "{e}"
        );
    }

    #[test]
    fn pyng_example() {
        let t = ok(
            r#"{"access_token": "access_token_example","token_type": "Bearer","expires_in": 900,"scope": "billing:customers:invite billing:customers:read billing:batches:submit billing:batches:read"}"#,
            SystemTime::now(),
        )
        .unwrap();
        assert_eq!(t.lifetime(), Duration::from_secs(900));
        assert_eq!(
            t.scope(),
            Some(
                "billing:customers:invite billing:customers:read billing:batches:submit billing:batches:read"
            )
        );
    }

    #[test]
    fn afterpay_example_jwt() {
        let token = "eyJraWQiOiJSWTJ5VFwvRkVtNhjkFhXM21RcElZWnZ0VWVWaFl4XC8rYytCWG5aRTMrMG5aa2M9IiwiYWxnIjoiUlMyNTYifQ.eyJzdWIiOiI2bDE1cjEyY3F1dnUxa25yam85cW1kZmtiaCIsInRva2VuX3VzZSI6ImFjY2VzcyIsInNjb3BlIjoiYXBpLXFhLml2ci5wYXlub3cuYWZ0ZXJwYXl0b3VjaC5kZXZcL2l2clwvdjFcL2FjdGlvbkNvbmZpcm0gYXBpLXFhLml2ci5wYXlub3cuYWZ0ZXJwYXl0b3VjaC5kZXZcL2l2clwvdjFcL2FjdGlvblN0YXJ0IiwiYXV0aF90aW1lIjoxNjg4Nzc4MjMwLCJpc3MiOiJodHRwczpcL1wvY29nbml0by1pZHAuYXAtc291dGhlYXN0LTIuYW1hem9uYXdzLmNvbVwvYXAtc291dGhlYXN0LTJfb2F6VDN3MHNFIiwiZXhwIjoxNjg4NzgxODMwLCJpYXQiOjE2ODg3NzgyMzAsInZlcnNpb24iOjIsImp0aSI6IjQ2YTNkM2EzLTk5NTAtNDQzNy05YjI1LTRlM2UxMjhiODI1ZSIsImNsaWVudF9pZCI6IjZsMTVyMTJjcXV2dTFrbnJqbzlxbWRma2JoIn0.LOGNH-uBFIvLMaIzCBFfkJqNyrQmpvOAy0pVYrQx1mMDUbSwYDPm85LUwLjq1Ru2LNd3xZSCh1aNOfvg2mtNws2dMmv24WixqG-tsX4wqHUqZxVt4gsCZ07vdNnTwX2A8od0hsa_dfz6W7_2sJwWRug7CuGtPnL_tNDu_Z6RRVu93l7tFgsReelKGeHtBdcyHABF8utlXLMkxX54X2gpiOkfVyStHxozcCXk3hMFZ4pNt-n0wb3fu0k8PN9ro_boLsNV0tLRf92JGWSMOERWbDGGL74J7GNrEy4O9DAEmxvosiyOPTYh-juc5feZduMRyU7IoB5im2WVLKdUgSLx7g";
        let body =
            format!(r#"{{"access_token": "{token}", "expires_in": 3600, "token_type": "Bearer"}}"#);
        let t = ok(&body, SystemTime::now()).unwrap();
        assert_eq!(t.lifetime(), Duration::from_secs(3600));
        // The seed's JWT has exp 1688781830 (iat + 3600): used when expires_in is absent.
        assert_eq!(jwt_exp(token), Some(1688781830.0));
        let body = format!(r#"{{"access_token": "{token}", "token_type": "Bearer"}}"#);
        let t = ok(&body, at(1688781830 - 600)).unwrap();
        assert_eq!(t.lifetime(), Duration::from_secs(600));
    }

    #[test]
    fn expires_in_as_numeric_string_and_case_insensitive_bearer() {
        let t = ok(
            r#"{"access_token":"a","token_type":"bearer","expires_in":"120"}"#,
            SystemTime::now(),
        )
        .unwrap();
        assert_eq!(t.lifetime(), Duration::from_secs(120));
        assert_eq!(t.token_type(), "Bearer");
        let t = ok(
            r#"{"access_token":"a","token_type":"BEARER","expires_in":59.5}"#,
            SystemTime::now(),
        )
        .unwrap();
        assert_eq!(t.lifetime(), Duration::from_millis(59_500));
        for bad in [r#""soon""#, "-5", "true"] {
            let body =
                format!(r#"{{"access_token":"a","token_type":"Bearer","expires_in":{bad}}}"#);
            let e = ok(&body, SystemTime::now()).unwrap_err();
            assert!(
                matches!(e, Error::InvalidResponse(ref m) if m.contains("expires_in")),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn absurd_lifetimes_are_clamped_to_a_year() {
        for huge in ["1e12", "1e300", r#""1e12""#, "31536001"] {
            let t = ok(
                &format!(r#"{{"access_token":"a","token_type":"Bearer","expires_in":{huge}}}"#),
                at(1_700_000_000),
            )
            .unwrap();
            assert_eq!(t.lifetime(), crate::refresh::MAX_LIFETIME, "{huge}");
        }
        let t = ok(
            r#"{"access_token":"a","token_type":"Bearer","expires_in":1}"#,
            at(1_700_000_000),
        )
        .unwrap();
        assert_eq!(t.lifetime(), Duration::from_secs(1), "never lengthened");
    }

    #[test]
    fn other_token_types_are_rejected_clearly() {
        let e = ok(
            r#"{"access_token":"a","token_type":"mac","expires_in":60}"#,
            SystemTime::now(),
        )
        .unwrap_err();
        assert!(
            matches!(e, Error::InvalidResponse(ref m) if m.contains("\"mac\"") && m.contains("Bearer")),
            "{e}"
        );
    }

    #[test]
    fn expiry_fallbacks_jwt_then_default_never_forever() {
        let now = at(1_700_000_000);
        let token = jwt(r#"{"exp":1700000300}"#);
        let t = ok(
            &format!(r#"{{"access_token":"{token}","token_type":"Bearer"}}"#),
            now,
        )
        .unwrap();
        assert_eq!(t.lifetime(), Duration::from_secs(300));
        // Expired JWT without expires_in.
        let token = jwt(r#"{"exp":1600000000}"#);
        let e = ok(
            &format!(r#"{{"access_token":"{token}","token_type":"Bearer"}}"#),
            now,
        )
        .unwrap_err();
        assert!(
            matches!(e, Error::InvalidResponse(ref m) if m.contains("exp")),
            "{e}"
        );
        // Opaque token, no expires_in, no default: an error that names the fix.
        let e = ok(r#"{"access_token":"opaque","token_type":"Bearer"}"#, now).unwrap_err();
        assert!(
            matches!(e, Error::InvalidResponse(ref m) if m.contains("default_lifetime")),
            "{e}"
        );
        // With a default.
        let t = parse(
            StatusCode::OK,
            &HeaderMap::new(),
            br#"{"access_token":"opaque","token_type":"Bearer"}"#,
            None,
            Some(Duration::from_secs(42)),
            now,
        )
        .unwrap();
        assert_eq!(t.lifetime(), Duration::from_secs(42));
        assert_eq!(t.scope(), None);
    }

    #[test]
    fn missing_or_bad_access_token() {
        for body in [
            r#"{"token_type":"Bearer","expires_in":1}"#,
            r#"{"access_token":"","expires_in":1}"#,
            r#"{"access_token":5,"expires_in":1}"#,
            "[]",
            "<html>ok</html>",
        ] {
            let e = ok(body, SystemTime::now()).unwrap_err();
            assert!(matches!(e, Error::InvalidResponse(_)), "{body}: {e}");
        }
        let e = ok(
            r#"{"access_token":"has space","expires_in":1}"#,
            SystemTime::now(),
        )
        .unwrap_err();
        assert!(matches!(e, Error::InvalidToken(_)), "{e}");
        assert!(!e.to_string().contains("has space"));
    }

    #[test]
    fn autopay_access_denied() {
        let e = err(
            401,
            &[],
            r#"{"error":"access_denied","error_description": "Unauthorized"}"#,
        );
        let Error::TokenEndpoint {
            status,
            code,
            description,
            retry_after,
        } = &e
        else {
            panic!("{e:?}")
        };
        assert_eq!(*status, StatusCode::UNAUTHORIZED);
        assert_eq!(code, &Some(OAuthErrorCode::AccessDenied));
        assert_eq!(description.as_deref(), Some("Unauthorized"));
        assert_eq!(*retry_after, None);
        assert!(!e.is_retryable());
    }

    #[test]
    fn payu_errors() {
        let cases = [
            (
                r#"{"error": "invalid_client","error_description": "Client authentication failed due to unknown client, no client authentication included, or unsupported authentication method."}"#,
                OAuthErrorCode::InvalidClient,
                401,
            ),
            (
                r#"{"error": "invalid_scope","error_description": "The requested scope is invalid, unknown, or malformed."}"#,
                OAuthErrorCode::InvalidScope,
                400,
            ),
            (
                r#"{"error": "unauthorized_client","error_description": "The authenticated client is not authorized to use this authorization grant type."}"#,
                OAuthErrorCode::UnauthorizedClient,
                400,
            ),
            (
                r#"{"error": "server_error","error_description": "The authorization server encountered an unexpected condition that prevented it from fulfilling the request."}"#,
                OAuthErrorCode::ServerError,
                500,
            ),
        ];
        for (body, expected, status) in cases {
            let e = err(status, &[], body);
            assert_eq!(e.oauth_code(), Some(&expected), "{body}");
            assert_eq!(e.status(), Some(StatusCode::from_u16(status).unwrap()));
        }
        let e = err(
            429,
            &[],
            r#"{"error": "rate_limit_exceeded","error_description": "Too many requests. Please retry after some time.","retry_after": 60}"#,
        );
        assert_eq!(e.oauth_code(), Some(&OAuthErrorCode::RateLimitExceeded));
        assert_eq!(e.retry_after(), Some(Duration::from_secs(60)));
        assert!(e.is_retryable());
        // The body field wins over the header.
        let e = err(
            429,
            &[("retry-after", "5")],
            r#"{"error":"rate_limit_exceeded","retry_after":"60"}"#,
        );
        assert_eq!(e.retry_after(), Some(Duration::from_secs(60)));
    }

    #[test]
    fn retry_after_header_used_when_the_body_has_none() {
        let e = err(
            429,
            &[("retry-after", "5")],
            r#"{"error":"rate_limit_exceeded"}"#,
        );
        assert_eq!(e.retry_after(), Some(Duration::from_secs(5)));
        let e = err(503, &[("retry-after", "9")], r#"{"message":"busy"}"#);
        assert_eq!(e.retry_after(), Some(Duration::from_secs(9)));
    }

    #[test]
    fn pyng_invalid_client() {
        let e = err(
            401,
            &[("content-type", "application/json;charset=UTF-8")],
            r#"{"error": "invalid_client","error_description": "Client authentication failed"}"#,
        );
        assert_eq!(e.oauth_code(), Some(&OAuthErrorCode::InvalidClient));
        assert_eq!(
            e.to_string(),
            "token endpoint answered HTTP 401 Unauthorized: invalid_client (Client authentication failed)"
        );
    }

    #[test]
    fn retry_after_header_seconds_and_http_date() {
        let e = err(503, &[("retry-after", "120")], "");
        assert_eq!(e.retry_after(), Some(Duration::from_secs(120)));
        // now = 1_700_000_000 = Tue, 14 Nov 2023 22:13:20 GMT
        let e = err(429, &[("retry-after", "Tue, 14 Nov 2023 22:14:20 GMT")], "");
        assert_eq!(e.retry_after(), Some(Duration::from_secs(60)));
        let e = err(429, &[("retry-after", "Tue, 14 Nov 2023 22:00:00 GMT")], "");
        assert_eq!(e.retry_after(), Some(Duration::ZERO));
        let e = err(429, &[("retry-after", "later")], "");
        assert_eq!(e.retry_after(), None);
    }

    #[test]
    fn huge_negative_and_odd_retry_after_values_never_panic() {
        // Header: u64::MAX seconds, and more than a u64 holds.
        for value in ["18446744073709551615", "99999999999999999999999999", "3601"] {
            let e = err(429, &[("retry-after", value)], "");
            assert_eq!(e.retry_after(), Some(MAX_RETRY_AFTER), "{value}");
        }
        // A date centuries ahead.
        let e = err(429, &[("retry-after", "Wed, 01 Jan 9000 00:00:00 GMT")], "");
        assert_eq!(e.retry_after(), Some(MAX_RETRY_AFTER));
        // Body: huge numbers and strings are clamped; fractions kept; negative, NaN and
        // non-numbers ignored (then the header, if any, counts).
        let body = |v: &str| format!(r#"{{"error":"rate_limit_exceeded","retry_after":{v}}}"#);
        for huge in ["1e19", "1e308", r#""1e19""#, r#""1e400""#, r#""inf""#] {
            let e = err(429, &[], &body(huge));
            assert_eq!(e.retry_after(), Some(MAX_RETRY_AFTER), "{huge}");
            let Error::TokenEndpoint { retry_after, .. } = &e else {
                panic!("{e:?}")
            };
            assert_eq!(
                *retry_after,
                Some(MAX_RETRY_AFTER),
                "the field itself: {huge}"
            );
        }
        let e = err(429, &[], &body("1.5"));
        assert_eq!(e.retry_after(), Some(Duration::from_millis(1500)));
        for ignored in [
            "-5",
            "-1e19",
            r#""NaN""#,
            r#""-inf""#,
            "null",
            "[]",
            r#""soon""#,
        ] {
            let e = err(429, &[], &body(ignored));
            assert_eq!(e.retry_after(), None, "{ignored}");
            let e = err(429, &[("retry-after", "7")], &body(ignored));
            assert_eq!(e.retry_after(), Some(Duration::from_secs(7)), "{ignored}");
        }
    }

    #[test]
    fn huge_lifetimes_are_a_year_not_panics() {
        for expires_in in ["1e19", "1e300", "18446744073709551615", r#""1e19""#] {
            let body = format!(
                r#"{{"access_token":"a","token_type":"Bearer","expires_in":{expires_in}}}"#
            );
            let t = ok(&body, SystemTime::now()).unwrap();
            assert_eq!(t.lifetime(), crate::refresh::MAX_LIFETIME, "{expires_in}");
        }
        let token = jwt(r#"{"exp":1e300}"#);
        let t = ok(
            &format!(r#"{{"access_token":"{token}","token_type":"Bearer"}}"#),
            SystemTime::now(),
        )
        .unwrap();
        assert_eq!(t.lifetime(), crate::refresh::MAX_LIFETIME);
        // created_at far in the past or the future does not panic either.
        for created_at in ["-1e300", "1e300"] {
            let body = format!(
                r#"{{"access_token":"a","token_type":"Bearer","expires_in":60,"created_at":{created_at}}}"#
            );
            let _ = ok(&body, SystemTime::now());
        }
    }

    #[test]
    fn empty_and_html_bodies_are_clear_errors() {
        let e = err(403, &[], "");
        assert_eq!(
            e.to_string(),
            "token endpoint answered HTTP 403 Forbidden (empty response body)"
        );
        let e = err(
            502,
            &[("content-type", "text/html")],
            "<html><body>Bad gateway secret-echo</body></html>",
        );
        assert_eq!(e.status(), Some(StatusCode::BAD_GATEWAY));
        assert_eq!(e.oauth_code(), None);
        let text = e.to_string();
        assert!(text.contains("not JSON (text/html, 49 bytes)"), "{text}");
        assert!(!text.contains("secret-echo"), "{text}");
        assert!(e.is_retryable());
        let e = err(500, &[], r#"{"message":"boom"}"#);
        assert!(e.to_string().contains("no `error` field"), "{e}");
    }

    #[test]
    fn error_in_a_200_body_is_an_endpoint_error() {
        let e = ok(r#"{"error":"invalid_client"}"#, SystemTime::now()).unwrap_err();
        assert_eq!(e.oauth_code(), Some(&OAuthErrorCode::InvalidClient));
        assert_eq!(e.status(), Some(StatusCode::OK));
    }

    #[test]
    fn descriptions_are_sanitized_and_bounded() {
        let long = "x".repeat(1000);
        let e = err(
            400,
            &[],
            &format!(r#"{{"error":"invalid_request","error_description":"a\nb{long}"}}"#),
        );
        let Error::TokenEndpoint {
            description: Some(d),
            ..
        } = &e
        else {
            panic!()
        };
        assert!(d.starts_with("ab"));
        assert!(d.chars().count() <= MAX_DESCRIPTION + 1);
    }
}
