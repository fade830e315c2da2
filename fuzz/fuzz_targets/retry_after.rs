//! A `Retry-After` header value (seconds or an HTTP date). Never panics; never asks for more
//! than the crate's maximum wait.
#![no_main]

use clientcreds::untrusted;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(wait) = untrusted::retry_after(data) {
        assert!(wait <= clientcreds::MAX_RETRY_AFTER);
    }
});
