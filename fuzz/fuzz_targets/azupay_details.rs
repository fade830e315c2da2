//! Azupay's enable/details answer. Never panics; the one-time client secret never reaches a
//! `Debug` of the details or an error's `Display`.
#![no_main]

use clientcreds::untrusted;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let secret = serde_json::from_slice::<serde_json::Value>(data)
        .ok()
        .and_then(|v| v.get("oauth2ClientSecret")?.as_str().map(str::to_owned))
        .filter(|s| s.len() >= 8);
    match untrusted::azupay_details(data) {
        Ok(d) => {
            if let Some(secret) = &secret {
                assert!(!format!("{d:?}").contains(secret.as_str()));
            }
        }
        Err(e) => {
            if let Some(secret) = &secret {
                assert!(!e.to_string().contains(secret.as_str()));
            }
        }
    }
});
