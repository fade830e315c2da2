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
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// What a secret is replaced with.
pub const REDACTED: &str = "[redacted]";

/// What `application/x-www-form-urlencoded` leaves as is: `*-._` and alphanumerics.
const FORM: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'*')
    .remove(b'-')
    .remove(b'.')
    .remove(b'_');
/// RFC 3986's unreserved characters: `-._~` and alphanumerics.
const RFC3986: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `text` on one line (control characters become spaces) with each of `secrets` cut out (also
/// the start of one at the end of a text cut short with `…`): as
/// sent (raw), escaped as in JSON, percent-encoded (as in a form body or a URL: every
/// non-alphanumeric byte, form-urlencoded or RFC 3986; `+` or `%20` for a space; either hex
/// case) and base64-encoded (standard or URL-safe, with or without padding). Empty secrets
/// are ignored. A client's `Basic` header is cut out when `secrets` holds the texts of
/// [`client_secrets`].
pub fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut all: Vec<Cow<'_, str>> = Vec::new();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        for form in forms(secret) {
            if !all.contains(&form) {
                all.push(form);
            }
        }
    }
    // The longest first, so that a form containing another is cut out whole.
    all.sort_by_key(|f| std::cmp::Reverse(f.len()));
    for form in &all {
        if line.contains(form.as_ref()) {
            line = line.replace(form.as_ref(), REDACTED);
        }
    }
    without_cut_secret(line, &all)
}

/// A text cut short (ending in `…`, as the layer shortens a long `error_description`) may end
/// in the first characters of a secret: those are cut out too, from [`MIN_CUT`] characters on.
fn without_cut_secret(line: String, forms: &[Cow<'_, str>]) -> String {
    let Some(head) = line.strip_suffix(ELLIPSIS) else {
        return line;
    };
    let longest = forms
        .iter()
        .filter_map(|form| {
            form.char_indices()
                .map(|(i, _)| &form[..i])
                .chain(std::iter::once(form.as_ref()))
                .filter(|prefix| prefix.chars().count() >= MIN_CUT && head.ends_with(prefix))
                .map(str::len)
                .max()
        })
        .max();
    match longest {
        Some(len) => format!("{}{REDACTED}{ELLIPSIS}", &head[..head.len() - len]),
        None => line,
    }
}

/// What marks a text cut short.
const ELLIPSIS: char = '…';
/// The shortest start of a secret cut out at the end of a text cut short.
const MIN_CUT: usize = 4;

/// The texts to [`scrub`] for a client: its secret, and `id:secret` as an HTTP `Basic` header
/// carries it (base64 of it as is, and of both form-urlencoded first as RFC 6749 §2.3.1 asks).
pub fn client_secrets(client_id: &str, secret: &str) -> [String; 3] {
    let form = |s: &str| utf8_percent_encode(s, FORM).to_string().replace("%20", "+");
    [
        secret.to_owned(),
        format!("{client_id}:{secret}"),
        format!("{}:{}", form(client_id), form(secret)),
    ]
}

/// The ways a secret may come back: raw, JSON-escaped, percent-encoded, base64.
fn forms(secret: &str) -> Vec<Cow<'_, str>> {
    let mut forms: Vec<Cow<'_, str>> = vec![Cow::Borrowed(secret)];
    let mut candidates = Vec::new();
    if let Ok(escaped) = serde_json::to_string(secret) {
        candidates.push(escaped.trim_matches('"').to_owned());
    }
    for set in [NON_ALPHANUMERIC, FORM, RFC3986] {
        let encoded = utf8_percent_encode(secret, set).to_string();
        for form in [encoded.replace("%20", "+"), encoded] {
            candidates.push(lower_hex(&form));
            candidates.push(form);
        }
    }
    for engine in [STANDARD, URL_SAFE] {
        let encoded = engine.encode(secret);
        candidates.push(encoded.trim_end_matches('=').to_owned());
        candidates.push(encoded);
    }
    for form in candidates {
        if !forms.iter().any(|f| f.as_ref() == form) {
            forms.push(Cow::Owned(form));
        }
    }
    forms
}

/// `text` with the hex digits of its percent escapes in lower case.
fn lower_hex(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut hex = 0;
    for c in text.chars() {
        if c == '%' {
            hex = 2;
            out.push(c);
        } else if hex > 0 {
            hex -= 1;
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
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
            ("json: a\\\"b", &["a\"b"], "json: [redacted]"),
            ("form: a-b.c_d*e~f", &["a-b.c_d*e~f"], "form: [redacted]"),
            ("form: a-b%7E", &["a-b~"], "form: [redacted]"),
            ("3986: a~b%2A", &["a~b*"], "3986: [redacted]"),
            ("url-safe: Pz8_", &["???"], "url-safe: [redacted]"),
            (
                "no padding: czNjcmV0MQ.",
                &["s3cret1"],
                "no padding: [redacted].",
            ),
        ];
        for (text, secrets, want) in cases {
            assert_eq!(scrub(text, secrets), *want, "{text}");
        }
    }

    /// A description the layer cut short in the middle of an echoed secret.
    #[test]
    fn the_start_of_a_secret_at_the_end_of_a_cut_text_is_cut_out() {
        let secret = "abcdef1234567890";
        for (text, want) in [
            ("wrong secret abcdef12…", "wrong secret [redacted]…"),
            ("wrong secret YWJjZGVm…", "wrong secret [redacted]…"),
            ("wrong secret abc…", "wrong secret abc…"),
            ("wrong secret abcdef12", "wrong secret abcdef12"),
            ("wrong secret …", "wrong secret …"),
        ] {
            assert_eq!(scrub(text, &[secret]), want, "{text}");
        }
    }

    /// A provider that echoes a client's `Authorization: Basic` header.
    #[test]
    fn an_echoed_basic_header_is_cut_out() {
        let (id, secret) = ("app 1", "s3cr+t");
        let secrets = client_secrets(id, secret);
        let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
        for header in [
            STANDARD.encode(format!("{id}:{secret}")),
            STANDARD.encode("app+1:s3cr%2Bt"),
        ] {
            let text = format!("invalid client (Authorization: Basic {header})");
            assert_eq!(
                scrub(&text, &secrets),
                "invalid client (Authorization: Basic [redacted])"
            );
        }
    }
}
