//! The parsers of untrusted input, reachable from outside the crate for its fuzz targets
//! (`fuzz/`, cargo-fuzz) — not a stable API, hidden from the docs. Everything a token endpoint,
//! Azupay or a mounted Secret volume can hand the crate goes through one of these:
//!
//! | entry | parses | reached from |
//! |---|---|---|
//! | [`token_response`] | a token endpoint's answer: status, `Retry-After`, body (success and RFC 6749 §5.2 errors) | every token request |
//! | [`jwt_exp`] | the `exp` claim of a JWT access token (no signature check) | token responses without `expires_in` |
//! | [`retry_after`] | a `Retry-After` header value (seconds or HTTP date) | error responses |
//! | [`azupay_details`] | Azupay's enable/details answer | the operator's enable-once flow |
//! | [`token_secret`] | a token Secret's data (mounted volume or the operator's stored token) and its refresh-at annotation | `MountedToken`, the operator |
//!
//! Each must never panic, whatever the bytes, and never put a token or secret from its input
//! into an error's `Display` or `Debug`; a token read from an answer never lives longer than
//! [`MAX_LIFETIME`](crate::refresh::MAX_LIFETIME). The property tests below check both in `cargo test`;
//! the fuzz targets check them for millions of inputs.

use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderValue, StatusCode, header};

use crate::token_secret::{self, TokenSecretError};
use crate::{AzupayConnectionDetails, Error, Token};

/// The clock the entry points read (the wall clock, as a token's own lifetime does).
pub fn now() -> SystemTime {
    SystemTime::now()
}

/// Parses a token endpoint response: `status` (any number; not an HTTP status → 502),
/// an optional `Retry-After` value, the body.
pub fn token_response(
    status: u16,
    retry_after: Option<&[u8]>,
    body: &[u8],
) -> Result<Token, Error> {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(value) = retry_after.and_then(|v| HeaderValue::from_bytes(v).ok()) {
        headers.insert(header::RETRY_AFTER, value);
    }
    crate::response::parse(status, &headers, body, Some("a b"), None, now())
}

/// The `exp` claim of a JWT, read without verifying the signature.
pub fn jwt_exp(token: &str) -> Option<f64> {
    crate::response::jwt_exp(token)
}

/// The delay a `Retry-After` header value asks for (on a 503 answer).
pub fn retry_after(value: &[u8]) -> Option<Duration> {
    token_response(503, Some(value), b"").err()?.retry_after()
}

/// Azupay's enable/details answer.
pub fn azupay_details(body: &[u8]) -> Result<AzupayConnectionDetails, serde_json::Error> {
    serde_json::from_slice(body)
}

/// A token Secret's data (`access_token`, `token_type`, `expires_at`, `scope`; `None`: absent)
/// and its refresh-at annotation, read as `MountedToken` and the operator read them.
pub fn token_secret(
    values: [Option<&[u8]>; 4],
    refresh_at: &str,
) -> (Result<Token, TokenSecretError>, Option<SystemTime>) {
    let token = token_secret::decode(|key| {
        token_secret::KEYS
            .iter()
            .position(|k| *k == key)
            .and_then(|i| values[i])
    });
    let refresh_at = token_secret::parse_time(token_secret::REFRESH_AT_ANNOTATION, refresh_at).ok();
    (token, refresh_at)
}

/// A stand-in of `len` characters for a token or secret of `input`: one letter repeated, a
/// letter that occurs nowhere in `input` and in no escape a message could write (`\u{1c}`,
/// `\x1c`, `\n`, hex digits), so a message that shows the stand-in copied it — stripping or
/// escaping other characters cannot spell it. `None` when every such letter occurs in `input`.
pub fn canary(len: usize, input: &[u8]) -> Option<String> {
    "qzjkgvwymQZJKGVWYMHILOPRSTHI"
        .chars()
        .find(|c| !input.contains(&(*c as u8)))
        .map(|c| c.to_string().repeat(len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use proptest::prelude::*;
    use secrecy::ExposeSecret;

    /// A token value that cannot occur by chance in any message.
    fn secret_strategy() -> impl Strategy<Value = String> {
        "[A-Za-z0-9]{24,40}".prop_map(|s| format!("tok-{s}"))
    }

    /// A JSON value of any shape, small.
    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
                .map_or(serde_json::Value::Null, serde_json::Value::Number)),
            ".{0,12}".prop_map(serde_json::Value::from),
            Just(serde_json::Value::from("1e400")),
            Just(serde_json::Value::from("NaN")),
            Just(serde_json::Value::from(1e12)),
        ];
        leaf.prop_recursive(2, 8, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                prop::collection::btree_map(".{0,6}", inner, 0..4)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn field() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "token_type",
            "expires_in",
            "scope",
            "created_at",
            "error",
            "error_description",
            "retry_after",
            "refresh_token",
        ])
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn token_responses_never_panic(status in any::<u16>(), retry in proptest::option::of(prop::collection::vec(any::<u8>(), 0..40)), body in prop::collection::vec(any::<u8>(), 0..300)) {
            let _ = token_response(status, retry.as_deref(), &body);
        }

        #[test]
        fn a_token_in_the_answer_never_reaches_a_message(
            status in prop::sample::select(vec![200u16, 201, 400, 401, 429, 500, 503]),
            token in secret_strategy(),
            fields in prop::collection::vec((field(), json_value()), 0..6),
            echo in any::<bool>(),
        ) {
            let mut object = serde_json::Map::new();
            object.insert("access_token".into(), token.clone().into());
            for (k, v) in fields {
                object.insert(k.into(), v);
            }
            if echo {
                // the value again under a key the crate does not know: never copied anywhere
                object.insert("unexpected".into(), token.clone().into());
            }
            let body = serde_json::to_vec(&object).unwrap();
            match token_response(status, None, &body) {
                Ok(t) => {
                    let shown = format!("{t:?}");
                    prop_assert!(!shown.contains(&token));
                    prop_assert_eq!(t.secret().expose_secret(), token.as_str());
                    prop_assert!(t.lifetime() <= crate::refresh::MAX_LIFETIME);
                }
                Err(e) => {
                    let described = object.get("error_description").and_then(|d| d.as_str()).is_some_and(|d| d.contains(&token));
                    if !described {
                        let shown = format!("{e} {e:?}");
                        prop_assert!(!shown.contains(&token), "{}", shown);
                    }
                }
            }
        }

        #[test]
        fn jwt_exp_reads_any_payload_without_panicking(header in ".{0,20}", payload in prop::collection::vec(any::<u8>(), 0..80), sig in ".{0,20}") {
            let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&payload);
            let _ = jwt_exp(&format!("{header}.{encoded}.{sig}"));
            let _ = jwt_exp(&format!("{header}.{}.{sig}", String::from_utf8_lossy(&payload)));
        }

        #[test]
        fn jwt_exp_finds_the_claim(exp in 0u32..4_000_000_000u32) {
            let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(r#"{{"sub":"x","exp":{exp}}}"#));
            prop_assert_eq!(jwt_exp(&format!("e30.{payload}.sig")), Some(f64::from(exp)));
        }

        #[test]
        fn retry_after_is_bounded(value in prop::collection::vec(any::<u8>(), 0..40), secs in any::<u64>()) {
            if let Some(wait) = retry_after(&value) {
                prop_assert!(wait <= crate::MAX_RETRY_AFTER);
            }
            let wait = retry_after(secs.to_string().as_bytes());
            prop_assert_eq!(wait, Some(Duration::from_secs(secs).min(crate::MAX_RETRY_AFTER)));
        }

        #[test]
        fn azupay_details_never_panic_nor_show_the_secret(secret in secret_strategy(), fields in prop::collection::vec((prop::sample::select(vec!["oauth2ClientId", "oauth2TokenUrl", "oauth2TtlInSecs", "oauth2AllowedScopes", "oauth2GrantType"]), json_value()), 0..6), bytes in prop::collection::vec(any::<u8>(), 0..120)) {
            let _ = azupay_details(&bytes);
            let mut object = serde_json::Map::new();
            object.insert("oauth2ClientSecret".into(), secret.clone().into());
            for (k, v) in fields {
                object.insert(k.into(), v);
            }
            let body = serde_json::to_vec(&object).unwrap();
            match azupay_details(&body) {
                Ok(d) => {
                    let shown = format!("{d:?}");
                    prop_assert!(!shown.contains(&secret));
                }
                Err(e) => prop_assert!(!e.to_string().contains(&secret), "{}", e),
            }
        }

        #[test]
        fn token_secrets_never_panic_nor_show_the_token(
            token in secret_strategy(),
            values in prop::array::uniform3(proptest::option::of(prop::collection::vec(any::<u8>(), 0..40))),
            refresh_at in ".{0,30}",
        ) {
            let [token_type, expires_at, scope] = values;
            let (result, _) = token_secret(
                [Some(token.as_bytes()), token_type.as_deref(), expires_at.as_deref(), scope.as_deref()],
                &refresh_at,
            );
            match result {
                Ok(t) => {
                    let shown = format!("{t:?}");
                    prop_assert!(!shown.contains(&token));
                }
                Err(e) => {
                    let shown = format!("{e} {e:?}");
                    prop_assert!(!shown.contains(&token));
                }
            }
        }
    }

    #[test]
    fn a_canary_never_occurs_in_its_input() {
        assert_eq!(canary(3, b"abc").as_deref(), Some("qqq"));
        assert_eq!(canary(3, b"xxqyy").as_deref(), Some("zzz"));
        let every: Vec<u8> = "qzjkgvwymQZJKGVWYMHILOPRSTHI".bytes().collect();
        assert_eq!(canary(2, &every), None);
    }

    #[test]
    fn a_written_token_secret_reads_back() {
        let (token, refresh_at) = token_secret(
            [
                Some(b"abc"),
                Some(b"Bearer"),
                Some(b"2027-01-15T08:00:00Z"),
                Some(b"a b"),
            ],
            "2027-01-15T07:30:00Z",
        );
        let token = token.unwrap();
        assert_eq!(token.secret().expose_secret(), "abc");
        assert_eq!(token.scope(), Some("a b"));
        assert!(refresh_at.is_some());
    }
}
