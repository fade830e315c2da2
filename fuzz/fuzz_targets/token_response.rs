//! A token endpoint's answer: status, `Retry-After`, body. Never panics; a token in the body
//! never reaches a `Debug` of the token, nor an error's `Display`/`Debug` (unless the provider
//! itself put it in `error_description`, which is quoted, sanitised and bounded).
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
    let token = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("access_token")?.as_str().map(str::to_owned))
        .filter(|t| t.len() >= 8);
    let described = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("error_description")?.as_str().map(str::to_owned));
    match untrusted::token_response(status, retry, body) {
        Ok(t) => {
            assert!(t.expires_at() >= untrusted::now());
            if let Some(token) = &token {
                assert_eq!(t.secret().expose_secret(), token);
                assert!(!format!("{t:?}").contains(token.as_str()));
            }
        }
        Err(e) => {
            let _ = e.retry_after();
            if let Some(token) = &token
                && !described.is_some_and(|d| d.contains(token.as_str()))
            {
                assert!(!e.to_string().contains(token.as_str()));
                assert!(!format!("{e:?}").contains(token.as_str()));
            }
        }
    }
});
