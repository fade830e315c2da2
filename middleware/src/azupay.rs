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
    /// The OAuth 2.0 client id (not the Azupay `clientId`).
    pub oauth2_client_id: String,
    /// The client secret: only in the answer of the enable call.
    #[serde(default, skip_serializing)]
    pub oauth2_client_secret: Option<SecretString>,
    /// The token endpoint.
    pub oauth2_token_url: String,
    /// The grant type to use (`client_credentials`).
    #[serde(default = "client_credentials")]
    pub oauth2_grant_type: String,
    /// The lifetime of issued tokens in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth2_ttl_in_secs: Option<u64>,
    /// The scopes the client may request.
    #[serde(default)]
    pub oauth2_allowed_scopes: Vec<String>,
}

fn client_credentials() -> String {
    "client_credentials".to_owned()
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
