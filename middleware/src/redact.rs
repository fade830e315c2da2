//! Provider text made safe to show: one line, with every secret the provider was sent cut out
//! in case it echoed one (an `error_description` that repeats the request, an Azupay `message`
//! that quotes the API key).
//!
//! The one function for it, used by the token request (the `error_description` of
//! [`Error::TokenEndpoint`](crate::Error::TokenEndpoint) never holds the client secret), the
//! CLI, and the operator (status, events, logs).
//!
//! ```
//! use clientcreds::redact::scrub;
//!
//! let text = "invalid client_secret 's3cr+t/1'\n(got client_secret=s3cr%2Bt%2F1)";
//! assert_eq!(
//!     scrub(text, &["s3cr+t/1"]),
//!     "invalid client_secret '[redacted]' (got client_secret=[redacted])"
//! );
//! ```

use std::borrow::Cow;

use base64::Engine;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

/// What a secret is replaced with.
pub const REDACTED: &str = "[redacted]";

/// `text` on one line (control characters become spaces) with each of `secrets` cut out: as
/// sent (raw), percent-encoded (as in a form body or a URL, `+` or `%20` for a space) and
/// base64-encoded (as in a `Basic` header). Empty secrets are ignored.
pub fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        for form in forms(secret) {
            if line.contains(form.as_ref()) {
                line = line.replace(form.as_ref(), REDACTED);
            }
        }
    }
    line
}

/// The ways a secret may come back: raw, percent-encoded (upper and lower case hex, `+` for a
/// space), base64.
fn forms(secret: &str) -> Vec<Cow<'_, str>> {
    let encoded = utf8_percent_encode(secret, NON_ALPHANUMERIC).to_string();
    let mut forms: Vec<Cow<'_, str>> = vec![Cow::Borrowed(secret)];
    for form in [
        encoded.replace("%20", "+"),
        encoded.to_ascii_lowercase(),
        encoded.clone(),
        base64::engine::general_purpose::STANDARD.encode(secret),
    ] {
        if !forms.iter().any(|f| f.as_ref() == form) {
            forms.push(Cow::Owned(form));
        }
    }
    // The longest first, so that a form containing another is cut out whole.
    forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
    forms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_table() {
        let cases: &[(&str, &[&str], &str)] = &[
            ("a\nb s3cret c", &["s3cret"], "a b [redacted] c"),
            ("nothing here", &["s3cret"], "nothing here"),
            ("empty secret", &[""], "empty secret"),
            ("form: a+b%26c", &["a b&c"], "form: [redacted]"),
            ("url: a%20b%26c", &["a b&c"], "url: [redacted]"),
            ("lower: a%2fb", &["a/b"], "lower: [redacted]"),
            ("basic: czNjcmV0", &["s3cret"], "basic: [redacted]"),
            (
                "two: key-1 sec-2",
                &["key-1", "sec-2"],
                "two: [redacted] [redacted]",
            ),
            ("tabs\tand\r\nnewlines", &[], "tabs and  newlines"),
        ];
        for (text, secrets, want) in cases {
            assert_eq!(scrub(text, secrets), *want, "{text}");
        }
    }
}
