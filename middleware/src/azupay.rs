//! [`AzupayConnectionDetails`]: what Azupay's "enable OAuth 2.0" and "retrieve connection
//! details" calls (`POST`/`GET {endpoint}/client/{clientId}/oauth2`) return.
//!
//! The enable call returns `oauth2ClientSecret` **once**; the details call never does. The
//! secret is a [`SecretString`]: redacted in `Debug` and never serialised.
//!
//! ```
//! use clientcreds::{AzupayConnectionDetails, Provider};
//! use secrecy::ExposeSecret;
//!
//! let mut details: AzupayConnectionDetails = serde_json::from_str(r#"{
//!   "oauth2ClientId": "3n8q9p1k2l4m5o6p7q8r9s0t1u",
//!   "oauth2ClientSecret": "abcdef1234567890",
//!   "oauth2TokenUrl": "https://auth-uat.azupay.com.au/oauth2/token",
//!   "oauth2GrantType": "client_credentials",
//!   "oauth2TtlInSecs": 3600,
//!   "oauth2AllowedScopes": ["RestAPI/GET:balance", "RestAPI/GET:payment"]
//! }"#)?;
//! assert!(!format!("{details:?}").contains("abcdef1234567890"));
//! let secret = details.take_client_secret().expect("returned by the enable call");
//! let credentials = Provider::azupay(&details, secret).scope("RestAPI/GET:balance").build()?;
//! assert_eq!(credentials.client_id(), "3n8q9p1k2l4m5o6p7q8r9s0t1u");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::time::Duration;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// The OAuth 2.0 connection details of an Azupay client.
#[derive(Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AzupayConnectionDetails {
    /// The OAuth 2.0 client id (not the Azupay `clientId`; empty when the answer had none).
    #[serde(default)]
    pub oauth2_client_id: String,
    /// The client secret: only in the answer of the enable call.
    #[serde(default, skip_serializing)]
    pub oauth2_client_secret: Option<SecretString>,
    /// The token endpoint (empty when the answer had none).
    #[serde(default)]
    pub oauth2_token_url: String,
    /// The grant type to use (`client_credentials`).
    #[serde(default = "client_credentials")]
    pub oauth2_grant_type: String,
    /// The lifetime of issued tokens in seconds (a number, or a numeric string; anything else
    /// reads as unknown: the enable answer carries the one-time secret, so a field the crate
    /// can do without never makes it unreadable).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_seconds"
    )]
    pub oauth2_ttl_in_secs: Option<u64>,
    /// The scopes the client may request (`null` or absent: none known).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub oauth2_allowed_scopes: Vec<String>,
}

fn client_credentials() -> String {
    "client_credentials".to_owned()
}

/// `oauth2TtlInSecs`: a whole number of seconds as a JSON number or numeric string; anything
/// else (negative, fractional, `null`, text) is unknown rather than an error.
fn lenient_seconds<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

/// `oauth2AllowedScopes`: a list of strings; `null` is an empty list, and entries that are not
/// strings are skipped.
fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Array(items) => items
            .into_iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    })
}

impl AzupayConnectionDetails {
    /// The client secret, if this came from the enable call.
    pub fn client_secret(&self) -> Option<&SecretString> {
        self.oauth2_client_secret.as_ref()
    }

    /// Takes the client secret out, leaving `None`.
    pub fn take_client_secret(&mut self) -> Option<SecretString> {
        self.oauth2_client_secret.take()
    }

    /// The token lifetime Azupay announced.
    pub fn ttl(&self) -> Option<Duration> {
        self.oauth2_ttl_in_secs.map(Duration::from_secs)
    }
}

impl fmt::Debug for AzupayConnectionDetails {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzupayConnectionDetails")
            .field("oauth2_client_id", &self.oauth2_client_id)
            .field(
                "oauth2_client_secret",
                &self.oauth2_client_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("oauth2_token_url", &self.oauth2_token_url)
            .field("oauth2_grant_type", &self.oauth2_grant_type)
            .field("oauth2_ttl_in_secs", &self.oauth2_ttl_in_secs)
            .field("oauth2_allowed_scopes", &self.oauth2_allowed_scopes)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    const ENABLE: &str = r#"{
  "oauth2ClientId": "3n8q9p1k2l4m5o6p7q8r9s0t1u",
  "oauth2ClientSecret": "abcdef1234567890abcdef1234567890abcdef1234567890abcdef12",
  "oauth2TokenUrl": "https://auth-uat.azupay.com.au/oauth2/token",
  "oauth2GrantType": "client_credentials",
  "oauth2TtlInSecs": 3600,
  "oauth2AllowedScopes": [
    "RestAPI/POST:paymentRequest",
    "RestAPI/POST:paymentRequest:refund",
    "RestAPI/POST:accountEnquiry",
    "RestAPI/POST:payIDEnquiry",
    "RestAPI/POST:payment",
    "RestAPI/GET:payment",
    "RestAPI/POST:payment:search",
    "RestAPI/GET:paymentRequest",
    "RestAPI/DELETE:paymentRequest",
    "RestAPI/POST:paymentRequest:search",
    "RestAPI/GET:report",
    "RestAPI/GET:report:download",
    "RestAPI/GET:balance"
  ]
}"#;

    #[test]
    fn enable_response_parses_and_redacts() {
        let d: AzupayConnectionDetails = serde_json::from_str(ENABLE).unwrap();
        assert_eq!(d.oauth2_client_id, "3n8q9p1k2l4m5o6p7q8r9s0t1u");
        assert_eq!(
            d.client_secret().unwrap().expose_secret(),
            "abcdef1234567890abcdef1234567890abcdef1234567890abcdef12"
        );
        assert_eq!(
            d.oauth2_token_url,
            "https://auth-uat.azupay.com.au/oauth2/token"
        );
        assert_eq!(d.ttl(), Some(Duration::from_secs(3600)));
        assert_eq!(d.oauth2_allowed_scopes.len(), 13);
        let dbg = format!("{d:?}");
        assert!(!dbg.contains("abcdef1234567890"), "{dbg}");
        assert!(dbg.contains("[redacted]"));
        let json = serde_json::to_string(&d).unwrap();
        assert!(!json.contains("abcdef1234567890"), "{json}");
        assert!(!json.contains("oauth2ClientSecret"), "{json}");
    }

    #[test]
    fn fields_the_crate_can_do_without_never_make_the_enable_answer_unreadable() {
        // the enable answer holds a secret Azupay returns once: a null list or a string TTL
        // must not lose it
        for (ttl, scopes, want_ttl, want_scopes) in [
            (r#""3600""#, "null", Some(3600), 0),
            ("null", r#"["a", 5, "b"]"#, None, 2),
            ("-1", "{}", None, 0),
            ("3600.5", r#""a b""#, None, 0),
            ("1e3", "[]", None, 0),
        ] {
            let body = format!(
                r#"{{"oauth2ClientId":"id","oauth2ClientSecret":"s3cr3t-value","oauth2TokenUrl":"https://t","oauth2TtlInSecs":{ttl},"oauth2AllowedScopes":{scopes}}}"#
            );
            let mut d: AzupayConnectionDetails = serde_json::from_str(&body).unwrap();
            assert_eq!(d.oauth2_ttl_in_secs, want_ttl, "{body}");
            assert_eq!(d.oauth2_allowed_scopes.len(), want_scopes, "{body}");
            assert_eq!(
                d.take_client_secret().unwrap().expose_secret(),
                "s3cr3t-value"
            );
        }
        let absent: AzupayConnectionDetails =
            serde_json::from_str(r#"{"oauth2ClientSecret":"s3cr3t-value"}"#).unwrap();
        assert!(absent.oauth2_allowed_scopes.is_empty() && absent.oauth2_ttl_in_secs.is_none());
        assert!(absent.oauth2_client_id.is_empty() && absent.oauth2_token_url.is_empty());
        assert!(absent.client_secret().is_some());
    }

    #[test]
    fn details_response_has_no_secret() {
        let without: String = ENABLE
            .lines()
            .filter(|l| !l.contains("oauth2ClientSecret"))
            .collect::<Vec<_>>()
            .join("\n");
        let mut d: AzupayConnectionDetails = serde_json::from_str(&without).unwrap();
        assert!(d.client_secret().is_none());
        assert!(d.take_client_secret().is_none());
        assert_eq!(d.oauth2_grant_type, "client_credentials");
    }
}
