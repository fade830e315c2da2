//! Azupay's enable and details endpoints (`{endpoint}/client/{clientId}/oauth2`).

use std::time::Duration;

use bytes::Bytes;
use clientcreds::{AzupayConnectionDetails, HttpClient};
use http::{Method, Request, StatusCode, header};
use http_body_util::Full;
use secrecy::{ExposeSecret, SecretString};

use crate::Reason;

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

    /// Whether an enable call that failed this way may still have enabled OAuth 2.0 at Azupay —
    /// and issued the one-time secret — although no usable answer arrived: the request may have
    /// reached Azupay (a timeout, a connection closed without an answer), a gateway answered 5xx
    /// for a backend that went on, or a success answer could not be used. Then the flow asks
    /// the details endpoint at once instead of waiting to retry. Never for a call that was not
    /// sent (a bad URL or API key) or that Azupay refused.
    pub fn may_have_taken_effect(&self) -> bool {
        match self {
            Self::Transport(_) | Self::InvalidResponse(_) => true,
            Self::Status { status, .. } => status.is_server_error(),
            Self::Url(_) | Self::InvalidApiKey | Self::Unauthorized(_) | Self::AlreadyEnabled => {
                false
            }
        }
    }

    /// This error with `api_key` cut out of Azupay's message, in case it echoed it (see
    /// [`clientcreds::redact`]).
    fn without(self, api_key: &SecretString) -> Self {
        match self {
            Self::Status { status, message } => Self::Status {
                status,
                message: clientcreds::redact::scrub(&message, &[api_key.expose_secret()]),
            },
            other => other,
        }
    }

    /// The reason of the conditions and events about it.
    pub fn reason(&self) -> Reason {
        match self {
            Self::Url(_) | Self::InvalidApiKey => Reason::InvalidSpec,
            Self::Transport(_) | Self::Status { .. } | Self::InvalidResponse(_) => {
                Reason::AzupayUnavailable
            }
            Self::Unauthorized(_) => Reason::ApiKeyRejected,
            Self::AlreadyEnabled => Reason::CredentialsLost,
        }
    }
}

/// Calls Azupay's enable and details endpoints with the API key in `Authorization`, as the seed
/// shows (`Authorization: SECR_MYBUSINESSID_myapikey`).
#[derive(Clone, Debug)]
pub struct AzupayClient {
    http: HttpClient,
    enable_timeout: Duration,
}

/// How long the enable call may take (at least; a longer request timeout of the HTTP client
/// wins). Longer than a token request's: a slow enable that succeeds has issued the one-time
/// secret, and giving up on its answer would lose it.
pub const ENABLE_TIMEOUT: Duration = Duration::from_secs(120);

/// What Azupay's details call answers when OAuth 2.0 is not enabled for the client: HTTP 404
/// with this in its JSON `message`. Any other 404 (an unknown `clientId`, a wrong endpoint
/// path, a proxy's page) is an error, never "not enabled": enable is called only on this answer.
pub const NOT_ENABLED_MESSAGE: &str = "not enabled";

impl AzupayClient {
    /// A client over `http`; the enable call gets [`ENABLE_TIMEOUT`] (or `http`'s timeout if
    /// longer).
    pub fn new(http: HttpClient) -> Self {
        let enable_timeout = ENABLE_TIMEOUT.max(http.timeout());
        Self {
            http,
            enable_timeout,
        }
    }

    /// Sets the enable call's timeout.
    pub fn enable_timeout(mut self, timeout: Duration) -> Self {
        self.enable_timeout = timeout;
        self
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
        http: &HttpClient,
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
        let response = http.send(request).await.map_err(AzupayError::Transport)?;
        Ok((response.status(), response.into_body()))
    }

    fn error(status: StatusCode, body: &[u8]) -> AzupayError {
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return AzupayError::Unauthorized(status);
        }
        let message = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| {
                v.get("message").and_then(|m| m.as_str()).map(|m| {
                    // marked as cut short, so that a secret cut in half is still cut out
                    let mut shown: String = m.chars().take(300).collect();
                    if shown.len() < m.len() {
                        shown.push('…');
                    }
                    shown
                })
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
        let http = self.http.with_timeout(self.enable_timeout);
        let (status, body) = self
            .call(&http, Method::POST, endpoint, client_id, api_key)
            .await?;
        if status == StatusCode::CONFLICT {
            return Err(AzupayError::AlreadyEnabled);
        }
        if !status.is_success() {
            return Err(Self::error(status, &body).without(api_key));
        }
        // The secret first: whatever else the answer lacks, it is never dropped for it.
        let (mut details, secret) = Self::enable_answer(&body)?;
        let secret = secret.ok_or_else(|| {
            AzupayError::InvalidResponse("the enable answer has no oauth2ClientSecret".into())
        })?;
        // What the answer lacked, the details call may know (it never returns the secret).
        if (details.oauth2_client_id.is_empty()
            || details.oauth2_token_url.is_empty()
            || details.oauth2_allowed_scopes.is_empty())
            && let Ok(Some(known)) = self.details(endpoint, client_id, api_key).await
        {
            fill_in(&mut details, known);
        }
        Ok((details, secret))
    }

    /// Reads the enable answer as leniently as it can, since it carries the one-time secret:
    /// the secret (a string `oauth2ClientSecret`) is taken out first, and any other field that
    /// does not read on its own (a `null` token URL, a numeric client id) is left out, to be
    /// filled in from the details call — never a reason to drop the secret. Only a body that is
    /// no JSON object is an error.
    fn enable_answer(
        body: &[u8],
    ) -> Result<(AzupayConnectionDetails, Option<SecretString>), AzupayError> {
        let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
            AzupayError::InvalidResponse(format!("enable answer: {}", e.classify_name()))
        })?;
        let serde_json::Value::Object(mut fields) = value else {
            return Err(AzupayError::InvalidResponse(
                "enable answer: not a JSON object".into(),
            ));
        };
        let secret = match fields.remove("oauth2ClientSecret") {
            Some(serde_json::Value::String(secret)) => Some(SecretString::from(secret)),
            _ => None,
        };
        fields.retain(|name, value| {
            let alone = serde_json::Map::from_iter([(name.clone(), value.clone())]);
            serde_json::from_value::<AzupayConnectionDetails>(alone.into()).is_ok()
        });
        let details = serde_json::from_value(fields.into()).map_err(|e| {
            AzupayError::InvalidResponse(format!("enable answer: {}", e.classify_name()))
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
        let (status, body) = self
            .call(&self.http, Method::GET, endpoint, client_id, api_key)
            .await?;
        if status == StatusCode::NOT_FOUND && Self::says_not_enabled(&body) {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(Self::error(status, &body).without(api_key));
        }
        let mut details: AzupayConnectionDetails = serde_json::from_slice(&body).map_err(|e| {
            AzupayError::InvalidResponse(format!("details answer: {}", e.classify_name()))
        })?;
        // never keep a secret the details call should not have returned
        drop(details.take_client_secret());
        Ok(Some(details))
    }
}

impl AzupayClient {
    /// Whether a 404 body is Azupay's "OAuth 2.0 is not enabled" answer.
    fn says_not_enabled(body: &[u8]) -> bool {
        serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.get("message")?.as_str().map(str::to_ascii_lowercase))
            .is_some_and(|m| m.contains(NOT_ENABLED_MESSAGE))
    }
}

/// Completes an enable answer's missing fields from a details answer.
fn fill_in(details: &mut AzupayConnectionDetails, known: AzupayConnectionDetails) {
    if details.oauth2_client_id.is_empty() {
        details.oauth2_client_id = known.oauth2_client_id;
    }
    if details.oauth2_token_url.is_empty() {
        details.oauth2_token_url = known.oauth2_token_url;
    }
    if details.oauth2_allowed_scopes.is_empty() {
        details.oauth2_allowed_scopes = known.oauth2_allowed_scopes;
    }
    if details.oauth2_ttl_in_secs.is_none() {
        details.oauth2_ttl_in_secs = known.oauth2_ttl_in_secs;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_and_debug() {
        assert_eq!(
            AzupayClient::url("https://api-uat.azupay.com.au/v1/", "MYBIZ").unwrap(),
            "https://api-uat.azupay.com.au/v1/client/MYBIZ/oauth2"
        );
        assert!(AzupayClient::url("not a url", "x").is_err());
    }

    #[test]
    fn only_azupays_not_enabled_answer_means_not_enabled() {
        let cases: [(&[u8], bool); 6] = [
            (
                br#"{"message":"OAuth 2.0 is not enabled for this client"}"#,
                true,
            ),
            (br#"{"message":"unknown clientId"}"#, false),
            (b"<html>404 Not Found</html>", false),
            (b"", false),
            (br#"{"error":"not enabled"}"#, false),
            (br#"{"message":5}"#, false),
        ];
        for (body, want) in cases {
            assert_eq!(
                AzupayClient::says_not_enabled(body),
                want,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn an_incomplete_enable_answer_keeps_its_secret_and_is_filled_in() {
        let (mut d, secret) = AzupayClient::enable_answer(
            br#"{"oauth2ClientSecret":"one-time-secret","oauth2AllowedScopes":null,"oauth2TtlInSecs":"60"}"#,
        )
        .unwrap();
        assert_eq!(secret.unwrap().expose_secret(), "one-time-secret");
        assert!(d.client_secret().is_none());
        let known: AzupayConnectionDetails = serde_json::from_str(
            r#"{"oauth2ClientId":"id","oauth2TokenUrl":"https://t","oauth2AllowedScopes":["a"],"oauth2TtlInSecs":3600}"#,
        )
        .unwrap();
        fill_in(&mut d, known);
        assert_eq!(d.oauth2_client_id, "id");
        assert_eq!(d.oauth2_token_url, "https://t");
        assert_eq!(d.oauth2_allowed_scopes, ["a"]);
        assert_eq!(
            d.oauth2_ttl_in_secs,
            Some(60),
            "the enable answer's own value stays"
        );
        assert!(AzupayClient::enable_answer(b"not json").is_err());
    }

    #[test]
    fn mistyped_fields_of_an_enable_answer_never_cost_its_secret() {
        let (d, secret) = AzupayClient::enable_answer(
            br#"{"oauth2ClientSecret":"one-time-secret","oauth2ClientId":42,"oauth2TokenUrl":null,
                "oauth2GrantType":["client_credentials"],"oauth2TtlInSecs":60,
                "oauth2AllowedScopes":["a"],"extra":{"x":1}}"#,
        )
        .unwrap();
        assert_eq!(secret.unwrap().expose_secret(), "one-time-secret");
        // the mistyped fields are left out (to be filled in), the good ones kept
        assert_eq!(d.oauth2_client_id, "");
        assert_eq!(d.oauth2_token_url, "");
        assert_eq!(d.oauth2_grant_type, "client_credentials");
        assert_eq!(d.oauth2_ttl_in_secs, Some(60));
        assert_eq!(d.oauth2_allowed_scopes, ["a"]);
        // a secret that is no string is no secret; a body that is no object is an error
        let (_, none) =
            AzupayClient::enable_answer(br#"{"oauth2ClientSecret":5,"oauth2ClientId":"id"}"#)
                .unwrap();
        assert!(none.is_none());
        for body in [
            &b"[1,2]"[..],
            b"\"s\"",
            b"null",
            b"{\"oauth2ClientSecret\":\"s\"",
        ] {
            let e = AzupayClient::enable_answer(body).unwrap_err();
            assert!(!e.to_string().contains("\"s\""), "{e}");
        }
    }

    #[test]
    fn an_enable_without_a_usable_answer_may_have_taken_effect() {
        let transport = AzupayError::Transport(clientcreds::Error::InvalidToken("x".into()));
        assert!(transport.may_have_taken_effect());
        assert!(AzupayError::InvalidResponse("not JSON".into()).may_have_taken_effect());
        let gateway = AzupayClient::error(StatusCode::GATEWAY_TIMEOUT, b"");
        assert!(gateway.may_have_taken_effect());
        // never sent, or refused: nothing happened at Azupay
        for e in [
            AzupayError::Url("x".into()),
            AzupayError::InvalidApiKey,
            AzupayError::Unauthorized(StatusCode::FORBIDDEN),
            AzupayError::AlreadyEnabled,
            AzupayClient::error(StatusCode::BAD_REQUEST, br#"{"message":"bad body"}"#),
            AzupayClient::error(StatusCode::TOO_MANY_REQUESTS, b""),
        ] {
            assert!(!e.may_have_taken_effect(), "{e}");
        }
    }

    #[test]
    fn the_enable_call_waits_longer_than_a_token_request() {
        let http = HttpClient::new();
        assert!(AzupayClient::new(http.clone()).enable_timeout > http.timeout());
        let long = http.with_timeout(Duration::from_secs(600));
        assert_eq!(
            AzupayClient::new(long).enable_timeout,
            Duration::from_secs(600)
        );
    }

    #[test]
    fn errors_classify_and_hide_nothing_secret() {
        let e = AzupayClient::error(StatusCode::UNAUTHORIZED, b"{}");
        assert_eq!(e.reason(), Reason::ApiKeyRejected);
        assert!(!e.is_retryable());
        let e = AzupayClient::error(StatusCode::BAD_GATEWAY, br#"{"message":"upstream"}"#);
        assert!(e.is_retryable());
        assert!(e.to_string().contains("upstream"));
        // an echoed API key is cut out of Azupay's message
        let key = SecretString::from("SECR_MYBUSINESSID_k3y");
        let e = AzupayClient::error(
            StatusCode::BAD_REQUEST,
            br#"{"message":"key SECR_MYBUSINESSID_k3y is not valid"}"#,
        )
        .without(&key);
        assert_eq!(
            e.to_string(),
            "Azupay answered HTTP 400 Bad Request: key [redacted] is not valid"
        );
        // a message cut short in the middle of the echoed key
        let body = serde_json::json!({"message": format!("{} key SECR_MYBUSINESSID_k3y", "x".repeat(285))});
        let e =
            AzupayClient::error(StatusCode::BAD_REQUEST, body.to_string().as_bytes()).without(&key);
        let shown = e.to_string();
        assert!(!shown.contains("SECR_MY"), "{shown}");
        assert!(shown.ends_with(" key [redacted]…"), "{shown}");
    }
}
