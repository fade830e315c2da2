//! Azupay's enable/details client and the enable-once decision of DESIGN.md.
//!
//! The enable call (`POST {endpoint}/client/{clientId}/oauth2`) returns the OAuth 2.0 client
//! secret **once**. The operator therefore:
//! 1. creates the credentials Secret with an "enable pending" mark before calling enable;
//! 2. writes the returned secret at once, retrying while it holds it only in memory;
//! 3. after a restart with the mark and no stored secret, asks the details endpoint: not enabled
//!    → enabling is safe; enabled → `CredentialsLost`, and a person must contact Azupay.
//!
//! It asks the details endpoint before the *first* enable call too (one extra `GET`): a client
//! that was enabled elsewhere — by hand, by another OAuthClient, or before its credentials
//! Secret was deleted — is reported as `CredentialsLost` instead of being enabled a second time.
//!
//! [`next_step`] is the pure decision; the controller performs it.
//!
//! ```
//! use clientcreds_operator::azupay::{next_step, EnableStep};
//!
//! // nothing stored, no mark: mark first, then ask the details endpoint, then enable
//! assert_eq!(next_step(None, false), EnableStep::MarkPending);
//! ```

use bytes::Bytes;
use clientcreds::{AzupayConnectionDetails, HttpClient};
use http::{Method, Request, StatusCode, header};
use http_body_util::Full;
use k8s_openapi::api::core::v1::Secret;
use secrecy::{ExposeSecret, SecretString};

use crate::build::{ENABLE_STATE_ANNOTATION, keys, secret_string};

/// Why an Azupay enable/details call failed. Never contains the API key or the client secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AzupayError {
    /// The endpoint or client id do not form a valid URL.
    #[error("spec.azupay.endpoint / clientId do not form a valid URL: {0}")]
    Url(String),
    /// The API key is not a valid header value.
    #[error("the Azupay API key is not a valid HTTP header value: check the apiKeySecretRef key")]
    InvalidApiKey,
    /// The call could not be made.
    #[error("could not reach Azupay: {0}")]
    Transport(#[source] clientcreds::Error),
    /// Azupay refused the API key (401/403).
    #[error(
        "Azupay refused the API key (HTTP {0}): check the Secret named by spec.azupay.apiKeySecretRef"
    )]
    Unauthorized(StatusCode),
    /// Enable answered 409: OAuth 2.0 was already enabled, the secret will not be returned again.
    #[error("Azupay says OAuth 2.0 is already enabled for this client (HTTP 409)")]
    AlreadyEnabled,
    /// Any other unexpected answer.
    #[error("Azupay answered HTTP {status}: {message}")]
    Status {
        /// The HTTP status.
        status: StatusCode,
        /// Azupay's `message`, if any.
        message: String,
    },
    /// The success body could not be parsed (or enable returned no secret).
    #[error("Azupay's answer could not be used: {0}")]
    InvalidResponse(String),
}

impl AzupayError {
    /// Whether trying again later may succeed without a person changing anything.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Transport(_) => true,
            Self::Status { status, .. } => {
                status.is_server_error() || *status == StatusCode::TOO_MANY_REQUESTS
            }
            _ => false,
        }
    }
    /// A PascalCase reason for conditions and events.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Url(_) | Self::InvalidApiKey => "InvalidSpec",
            Self::Transport(_) | Self::Status { .. } | Self::InvalidResponse(_) => {
                "AzupayUnavailable"
            }
            Self::Unauthorized(_) => "ApiKeyRejected",
            Self::AlreadyEnabled => "CredentialsLost",
        }
    }
}

/// Calls Azupay's enable and details endpoints with the API key in `Authorization`, as the seed
/// shows (`Authorization: SECR_MYBUSINESSID_myapikey`).
#[derive(Clone, Debug)]
pub struct AzupayClient {
    http: HttpClient,
}

impl AzupayClient {
    /// A client over `http`.
    pub fn new(http: HttpClient) -> Self {
        Self { http }
    }

    fn url(endpoint: &str, client_id: &str) -> Result<String, AzupayError> {
        let base = endpoint.trim_end_matches('/');
        let mut url = url::Url::parse(base).map_err(|e| AzupayError::Url(e.to_string()))?;
        url.path_segments_mut()
            .map_err(|()| AzupayError::Url("the endpoint cannot be a base URL".into()))?
            .extend(["client", client_id, "oauth2"]);
        Ok(url.to_string())
    }

    async fn call(
        &self,
        method: Method,
        endpoint: &str,
        client_id: &str,
        api_key: &SecretString,
    ) -> Result<(StatusCode, Bytes), AzupayError> {
        let url = Self::url(endpoint, client_id)?;
        let mut auth = http::HeaderValue::from_str(api_key.expose_secret())
            .map_err(|_| AzupayError::InvalidApiKey)?;
        auth.set_sensitive(true);
        let mut builder = Request::builder()
            .method(method.clone())
            .uri(&url)
            .header(header::AUTHORIZATION, auth)
            .header(header::ACCEPT, "application/json");
        let body = if method == Method::POST {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
            Bytes::from_static(b"{}")
        } else {
            Bytes::new()
        };
        let request = builder
            .body(Full::new(body))
            .map_err(|e| AzupayError::Url(e.to_string()))?;
        let response = self
            .http
            .send(request)
            .await
            .map_err(AzupayError::Transport)?;
        Ok((response.status(), response.into_body()))
    }

    fn error(status: StatusCode, body: &[u8]) -> AzupayError {
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return AzupayError::Unauthorized(status);
        }
        let message = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| {
                v.get("message")
                    .and_then(|m| m.as_str())
                    .map(|m| m.chars().take(300).collect())
            })
            .unwrap_or_default();
        AzupayError::Status { status, message }
    }

    /// `POST {endpoint}/client/{clientId}/oauth2`: enables OAuth 2.0 and returns the connection
    /// details **with** the one-time client secret.
    pub async fn enable(
        &self,
        endpoint: &str,
        client_id: &str,
        api_key: &SecretString,
    ) -> Result<(AzupayConnectionDetails, SecretString), AzupayError> {
        let (status, body) = self
            .call(Method::POST, endpoint, client_id, api_key)
            .await?;
        if status == StatusCode::CONFLICT {
            return Err(AzupayError::AlreadyEnabled);
        }
        if !status.is_success() {
            return Err(Self::error(status, &body));
        }
        let mut details: AzupayConnectionDetails = serde_json::from_slice(&body).map_err(|e| {
            AzupayError::InvalidResponse(format!("enable answer: {}", e.classify_name()))
        })?;
        let secret = details.take_client_secret().ok_or_else(|| {
            AzupayError::InvalidResponse("the enable answer has no oauth2ClientSecret".into())
        })?;
        Ok((details, secret))
    }

    /// `GET {endpoint}/client/{clientId}/oauth2`: the connection details, or `None` when OAuth 2.0
    /// is not enabled (HTTP 404).
    pub async fn details(
        &self,
        endpoint: &str,
        client_id: &str,
        api_key: &SecretString,
    ) -> Result<Option<AzupayConnectionDetails>, AzupayError> {
        let (status, body) = self.call(Method::GET, endpoint, client_id, api_key).await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(Self::error(status, &body));
        }
        let mut details: AzupayConnectionDetails = serde_json::from_slice(&body).map_err(|e| {
            AzupayError::InvalidResponse(format!("details answer: {}", e.classify_name()))
        })?;
        // never keep a secret the details call should not have returned
        drop(details.take_client_secret());
        Ok(Some(details))
    }
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "I/O error",
            serde_json::error::Category::Syntax => "not JSON",
            serde_json::error::Category::Data => "missing or mistyped fields",
            serde_json::error::Category::Eof => "truncated JSON",
        }
    }
}

/// The client credentials stored in a credentials Secret.
#[derive(Clone)]
pub struct StoredCredentials {
    /// `client_id`.
    pub client_id: String,
    /// `client_secret`.
    pub client_secret: SecretString,
    /// `token_url`, if stored.
    pub token_url: Option<String>,
}

impl std::fmt::Debug for StoredCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredCredentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("token_url", &self.token_url)
            .finish()
    }
}

/// Reads the stored credentials from a credentials Secret, if it holds a client secret.
pub fn stored_credentials(secret: &Secret) -> Option<StoredCredentials> {
    Some(StoredCredentials {
        client_id: secret_string(secret, keys::CLIENT_ID)?,
        client_secret: SecretString::from(secret_string(secret, keys::CLIENT_SECRET)?),
        token_url: secret_string(secret, keys::TOKEN_URL),
    })
}

/// Whether the credentials Secret carries the "enable pending" mark.
pub fn is_pending(secret: &Secret) -> bool {
    secret
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ENABLE_STATE_ANNOTATION))
        .is_some_and(|v| v == "pending")
}

/// The next step of the enable-once flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnableStep {
    /// The secret is stored: use it, never enable.
    UseStored,
    /// No secret and no mark: write the pending mark, then ask the details endpoint and call
    /// enable once only if OAuth 2.0 is not enabled yet.
    MarkPending,
    /// A mark but no secret (an earlier attempt did not finish, or this process already called
    /// enable): ask the details endpoint before anything else.
    CheckDetails,
}

/// Decides the next step from the credentials Secret (if it exists) and whether this process
/// has already called enable for this OAuthClient.
pub fn next_step(credentials: Option<&Secret>, called_enable_in_this_process: bool) -> EnableStep {
    match credentials {
        Some(s) if stored_credentials(s).is_some() => EnableStep::UseStored,
        Some(s) if is_pending(s) => EnableStep::CheckDetails,
        _ if called_enable_in_this_process => EnableStep::CheckDetails,
        _ => EnableStep::MarkPending,
    }
}

/// What to do after asking the details endpoint in [`EnableStep::CheckDetails`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterDetails {
    /// Not enabled at Azupay: enabling is safe.
    Enable,
    /// Enabled at Azupay but the secret is not stored: stop, a person must act.
    CredentialsLost,
}

/// Step 3 of DESIGN.md: not enabled → enable; enabled → credentials lost.
pub fn after_details(details: Option<&AzupayConnectionDetails>) -> AfterDetails {
    match details {
        None => AfterDetails::Enable,
        Some(_) => AfterDetails::CredentialsLost,
    }
}

/// The message of the `CredentialsLost` condition and event.
pub fn credentials_lost_message(client_id: &str, secret_name: &str) -> String {
    format!(
        "OAuth 2.0 is enabled at Azupay for clientId {client_id} but its client secret is not stored in \
         Secret {secret_name} (it is returned only once). The operator will not call enable again. \
         Contact Azupay to rotate the OAuth 2.0 client secret, then store client_id, client_secret and \
         token_url in Secret {secret_name}."
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use std::collections::BTreeMap;

    fn secret(data: &[(&str, &str)], state: Option<&str>) -> Secret {
        let mut s = Secret::default();
        if !data.is_empty() {
            s.data = Some(
                data.iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                    .collect(),
            );
        }
        if let Some(state) = state {
            s.metadata.annotations = Some(BTreeMap::from([(
                ENABLE_STATE_ANNOTATION.to_owned(),
                state.to_owned(),
            )]));
        }
        s
    }

    #[test]
    fn enable_once_decisions() {
        assert_eq!(next_step(None, false), EnableStep::MarkPending);
        assert_eq!(next_step(None, true), EnableStep::CheckDetails);
        let pending = secret(&[], Some("pending"));
        assert_eq!(next_step(Some(&pending), false), EnableStep::CheckDetails);
        let stored = secret(
            &[("client_id", "c"), ("client_secret", "s")],
            Some("enabled"),
        );
        assert_eq!(next_step(Some(&stored), true), EnableStep::UseStored);
        // an admin-provided Secret without our annotation is used too
        let admin = secret(&[("client_id", "c"), ("client_secret", "s")], None);
        assert_eq!(next_step(Some(&admin), false), EnableStep::UseStored);
        // an existing Secret without a secret and without the mark: mark, then enable
        let empty = secret(&[("client_id", "c")], None);
        assert_eq!(next_step(Some(&empty), false), EnableStep::MarkPending);
    }

    #[test]
    fn details_decide_between_enable_and_lost() {
        assert_eq!(after_details(None), AfterDetails::Enable);
        let d: AzupayConnectionDetails =
            serde_json::from_str(r#"{"oauth2ClientId":"x","oauth2TokenUrl":"https://t/"}"#)
                .unwrap();
        assert_eq!(after_details(Some(&d)), AfterDetails::CredentialsLost);
        let m = credentials_lost_message("BIZ", "creds");
        assert!(m.contains("Contact Azupay") && m.contains("creds"));
    }

    #[test]
    fn url_and_debug() {
        assert_eq!(
            AzupayClient::url("https://api-uat.azupay.com.au/v1/", "MYBIZ").unwrap(),
            "https://api-uat.azupay.com.au/v1/client/MYBIZ/oauth2"
        );
        assert!(AzupayClient::url("not a url", "x").is_err());
        let c = stored_credentials(&secret(
            &[("client_id", "c"), ("client_secret", "topsecret")],
            None,
        ))
        .unwrap();
        assert!(!format!("{c:?}").contains("topsecret"));
    }

    #[test]
    fn errors_classify_and_hide_nothing_secret() {
        let e = AzupayClient::error(StatusCode::UNAUTHORIZED, b"{}");
        assert_eq!(e.reason(), "ApiKeyRejected");
        assert!(!e.is_retryable());
        let e = AzupayClient::error(StatusCode::BAD_GATEWAY, br#"{"message":"upstream"}"#);
        assert!(e.is_retryable());
        assert!(e.to_string().contains("upstream"));
    }
}
