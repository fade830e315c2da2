//! Azupay's enable/details answer. Never panics; the one-time client secret never reaches a
//! `Debug` of the details or an error's `Display`.
#![no_main]

use clientcreds::untrusted;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let json = serde_json::from_slice::<serde_json::Value>(data).ok();
    let secret = json
        .as_ref()
        .and_then(|v| v.get("oauth2ClientSecret")?.as_str().map(str::to_owned))
        .filter(|s| s.len() >= 8);
    let _ = untrusted::azupay_details(data);
    // details or an error that show the secret copy it: with a same-length canary instead,
    // they show the canary (a secret that merely spells part of a field name is no leak)
    if let (Some(secret), Some(mut json)) = (secret, json) {
        let Some(canary) = untrusted::canary(secret.len(), data) else {
            return;
        };
        json["oauth2ClientSecret"] = canary.clone().into();
        let body = serde_json::to_vec(&json).unwrap();
        match untrusted::azupay_details(&body) {
            Ok(d) => assert!(!format!("{d:?}").contains(canary.as_str())),
            Err(e) => assert!(!e.to_string().contains(canary.as_str())),
        }
    }
});
