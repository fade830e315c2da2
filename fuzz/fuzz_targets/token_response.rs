//! A token endpoint's answer: status, `Retry-After`, body. Never panics; the access token in the
//! body is never copied into a `Debug` of the token, nor into an error's `Display`/`Debug`
//! (unless the provider itself put it in `error_description`, which is quoted, sanitised and
//! bounded); a token never lives longer than `MAX_LIFETIME`.
#![no_main]

use clientcreds::untrusted;
use libfuzzer_sys::fuzz_target;
use secrecy::ExposeSecret;

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let status = u16::from_le_bytes([data[0], data[1]]);
    let retry_len = usize::from(data[2] % 32).min(data.len() - 3);
    let (retry, body) = data[3..].split_at(retry_len);
    let retry = (!retry.is_empty()).then_some(retry);
    let json = serde_json::from_slice::<serde_json::Value>(body).ok();
    let token = json
        .as_ref()
        .and_then(|v| v.get("access_token")?.as_str().map(str::to_owned))
        .filter(|t| t.len() >= 8);
    let result = untrusted::token_response(status, retry, body);
    if let Ok(t) = &result {
        assert!(t.lifetime() <= clientcreds::refresh::MAX_LIFETIME);
        if let Some(token) = &token {
            assert_eq!(t.secret().expose_secret(), token);
        }
    }
    if let Err(e) = &result {
        let _ = e.retry_after();
    }
    // A message that shows the token copies it: the same answer with a canary of the same
    // length as access_token shows the canary. (A token that merely spells a word of a fixed
    // message is not a leak; an error_description the provider wrote is its own text.)
    if let (Some(token), Some(mut json)) = (token, json) {
        let Some(canary) = untrusted::canary(token.len(), body) else {
            return;
        };
        json["access_token"] = canary.clone().into();
        if json
            .get("error_description")
            .and_then(|d| d.as_str())
            .is_some_and(|d| d.contains(token.as_str()))
        {
            return;
        }
        let body = serde_json::to_vec(&json).unwrap();
        let shown = match untrusted::token_response(status, retry, &body) {
            Ok(t) => format!("{t:?}"),
            Err(e) => format!("{e} {e:?}"),
        };
        assert!(!shown.contains(canary.as_str()));
    }
});
