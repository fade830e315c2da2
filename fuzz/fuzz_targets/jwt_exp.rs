//! The `exp` claim of a JWT: any text, and any bytes as a base64url payload. Never panics;
//! a claim it returns is a finite, non-negative number.
#![no_main]

use base64::Engine;
use clientcreds::untrusted;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data);
    for jwt in [text.into_owned(), format!("e30.{payload}.sig")] {
        if let Some(exp) = untrusted::jwt_exp(&jwt) {
            assert!(exp.is_finite() && exp >= 0.0);
        }
    }
});
