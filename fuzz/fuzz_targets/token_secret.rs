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
    let (result, _) = untrusted::token_secret(values, &refresh_at);
    if let Some(token) = token {
        match result {
            Ok(t) => assert!(!format!("{t:?}").contains(token.as_str())),
            Err(e) => {
                assert!(!e.to_string().contains(token.as_str()));
                assert!(!format!("{e:?}").contains(token.as_str()));
            }
        }
    }
});
