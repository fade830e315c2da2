//! A token Secret's data and refresh-at annotation, as a mounted volume or the operator reads
//! them: the input is split at 0xFF into access_token, token_type, expires_at, scope and the
//! annotation (an empty part is an absent key). Never panics; the access token never reaches a
//! `Debug` of the token or an error's `Display`/`Debug`.
#![no_main]

use clientcreds::untrusted;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|b| *b == 0xFF);
    let mut next = || parts.next().filter(|p| !p.is_empty());
    let values = [next(), next(), next(), next()];
    let refresh_at = String::from_utf8_lossy(next().unwrap_or_default()).into_owned();
    let token = values[0]
        .and_then(|v| std::str::from_utf8(v).ok())
        .map(str::trim)
        .filter(|t| t.len() >= 8)
        .map(str::to_owned);
    // never panics on the input as it is
    let _ = untrusted::token_secret(values, &refresh_at);
    let Some(token) = token else { return };
    // A message that shows the token copies it: the same input with a canary of the same
    // length instead shows the canary. (A token that merely spells part of a fixed message,
    // such as `key: "expires`, is not a leak.)
    let Some(canary) = untrusted::canary(token.len(), data) else {
        return;
    };
    let mut with_canary = values;
    with_canary[0] = Some(canary.as_bytes());
    let (canary_result, _) = untrusted::token_secret(with_canary, &refresh_at);
    let shown =
        |r: &Result<clientcreds::Token, clientcreds::token_secret::TokenSecretError>| match r {
            Ok(t) => format!("{t:?}"),
            Err(e) => format!("{e} {e:?}"),
        };
    // (so a scope that happens to contain the token is no leak either)
    assert!(!shown(&canary_result).contains(canary.as_str()));
});
