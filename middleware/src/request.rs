//! Encoding a token request, and sending it with tracing and metrics.
//!
//! | [`ClientAuth`] | credentials | body |
//! |---|---|---|
//! | `Basic` | `Authorization: Basic base64(enc(id):enc(secret))` | form: `grant_type`, `scope`, `audience`, `resource`, extras |
//! | `Post` | in the body | form: `grant_type`, `client_id`, `client_secret`, then as above |
//! | `Json` | in the body | JSON: `client_id`, `client_secret`, `audience`, `grant_type`, `scope`, `resource`, extras |
//! | `PrivateKeyJwt` | a new signed assertion in the body | form: `grant_type`, `client_id`, `client_assertion_type`, `client_assertion`, then as for `Basic` |
//! | `TlsClientAuth` | the TLS client certificate | form: `grant_type`, `client_id`, then as for `Basic` |
//!
//! Form values are percent-encoded with a space as `%20` (never `+`); the unreserved characters
//! and `:` and `/` stay as they are, so `scope=billing:customers:invite%20billing:customers:read`
//! goes on the wire exactly as Pyng's document shows it. Every request carries
//! `Accept: application/json`.

use std::time::{Instant, SystemTime};

use base64::Engine;
use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue, USER_AGENT};
use http_body_util::Full;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use secrecy::{ExposeSecret, SecretString};
use tracing::Instrument;

#[cfg(feature = "private-key-jwt")]
use crate::assertion::JWT_BEARER_ASSERTION_TYPE;
use crate::credentials::{BasicEncoding, ClientAuth};
use crate::{ClientCredentials, Error, HttpClient, Token};

/// Name of the counter of token requests, labelled `result` (`success` or the error kind).
pub const TOKEN_REQUESTS: &str = "clientcreds_token_requests_total";
/// Name of the histogram of token request durations in seconds, labelled `result`.
pub const TOKEN_REQUEST_DURATION: &str = "clientcreds_token_request_duration_seconds";

/// Form values: everything but unreserved characters, `:` and `/` is percent-encoded.
const FORM: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b':')
    .remove(b'/');
/// Basic credentials (RFC 6749 §2.3.1): everything but unreserved characters is encoded.
const BASIC: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

const USER_AGENT_VALUE: &str = concat!("clientcreds/", env!("CARGO_PKG_VERSION"));

/// The value of an `Authorization: Basic` header for this id and secret.
///
/// ```
/// use clientcreds::{basic_authorization, BasicEncoding};
/// use secrecy::ExposeSecret;
///
/// // Afterpay's example.
/// let value = basic_authorization("afterpay", "merchantABC", BasicEncoding::FormUrlEncoded);
/// assert_eq!(value.expose_secret(), "Basic YWZ0ZXJwYXk6bWVyY2hhbnRBQkM=");
/// ```
pub fn basic_authorization(
    client_id: &str,
    client_secret: &str,
    encoding: BasicEncoding,
) -> SecretString {
    let pair = match encoding {
        BasicEncoding::FormUrlEncoded => format!(
            "{}:{}",
            utf8_percent_encode(client_id, BASIC),
            utf8_percent_encode(client_secret, BASIC)
        ),
        BasicEncoding::Raw => format!("{client_id}:{client_secret}"),
    };
    let encoded = base64::engine::general_purpose::STANDARD.encode(pair.as_bytes());
    SecretString::from(format!("Basic {encoded}"))
}

fn form_pair(body: &mut String, name: &str, value: &str) {
    if !body.is_empty() {
        body.push('&');
    }
    body.extend(utf8_percent_encode(name, FORM));
    body.push('=');
    body.extend(utf8_percent_encode(value, FORM));
}

/// Builds the HTTP request for one token request.
pub(crate) fn encode(credentials: &ClientCredentials) -> Result<http::Request<Full<Bytes>>, Error> {
    let inner = &credentials.inner;
    let scope = credentials.scope_string();
    let key = &inner.cache_key;
    let mut builder = http::Request::post(inner.token_url.as_str())
        .header(ACCEPT, HeaderValue::from_static("application/json"))
        .header(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
    let (content_type, body) = if inner.auth == ClientAuth::Json {
        // Members in the order of Autopay's example; extras after.
        let mut object = Vec::<(&str, &str)>::new();
        object.push(("client_id", &inner.client_id));
        object.push(("client_secret", credentials.secret()));
        if let Some(audience) = key.audience() {
            object.push(("audience", audience));
        }
        object.push(("grant_type", "client_credentials"));
        if let Some(scope) = &scope {
            object.push(("scope", scope));
        }
        if let Some(resource) = key.resource() {
            object.push(("resource", resource));
        }
        for (name, value) in &inner.params {
            object.push((name, value));
        }
        let mut body = String::from("{");
        for (i, (name, value)) in object.into_iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            // Serialising a &str cannot fail.
            body.push_str(&serde_json::to_string(name).unwrap_or_default());
            body.push(':');
            body.push_str(&serde_json::to_string(value).unwrap_or_default());
        }
        body.push('}');
        ("application/json", body)
    } else {
        let mut body = String::new();
        form_pair(&mut body, "grant_type", "client_credentials");
        match inner.auth {
            ClientAuth::Post => {
                form_pair(&mut body, "client_id", &inner.client_id);
                form_pair(&mut body, "client_secret", credentials.secret());
            }
            ClientAuth::TlsClientAuth => {
                form_pair(&mut body, "client_id", &inner.client_id);
            }
            #[cfg(feature = "private-key-jwt")]
            ClientAuth::PrivateKeyJwt => {
                let key = inner.signing_key.as_ref().ok_or_else(|| {
                    Error::config("private_key", "is not set for private_key_jwt")
                })?;
                let audience = inner
                    .assertion_audience
                    .as_deref()
                    .unwrap_or(inner.token_url.as_str());
                // A new assertion (new jti, iat, exp) for every request, retries included.
                let assertion = key.assertion(
                    &inner.client_id,
                    audience,
                    inner.assertion_lifetime,
                    SystemTime::now(),
                )?;
                form_pair(&mut body, "client_id", &inner.client_id);
                form_pair(
                    &mut body,
                    "client_assertion_type",
                    JWT_BEARER_ASSERTION_TYPE,
                );
                form_pair(&mut body, "client_assertion", &assertion);
            }
            // Basic (and Json, handled above).
            _ => {
                let value = basic_authorization(
                    &inner.client_id,
                    credentials.secret(),
                    inner.basic_encoding,
                );
                let mut value = HeaderValue::try_from(value.expose_secret()).map_err(|_| {
                    Error::config(
                        "client_id",
                        "cannot be sent in a Basic Authorization header",
                    )
                })?;
                value.set_sensitive(true);
                builder = builder.header(AUTHORIZATION, value);
            }
        }
        if let Some(scope) = &scope {
            form_pair(&mut body, "scope", scope);
        }
        if let Some(audience) = key.audience() {
            form_pair(&mut body, "audience", audience);
        }
        if let Some(resource) = key.resource() {
            form_pair(&mut body, "resource", resource);
        }
        for (name, value) in &inner.params {
            form_pair(&mut body, name, value);
        }
        ("application/x-www-form-urlencoded", body)
    };
    builder = builder.header(CONTENT_TYPE, HeaderValue::from_static(content_type));
    let mut request = builder
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| Error::config("token_url", format!("cannot be used in a request: {e}")))?;
    for (name, value) in &inner.headers {
        request.headers_mut().append(name, value.clone());
    }
    Ok(request)
}

// `ClientCredentials::request_token` lives here, next to the encoding it uses, so that the
// data (`credentials`) does not depend on the protocol (`request`): one direction only.
impl ClientCredentials {
    /// Requests one token, without caching. `http` is the transport to use.
    ///
    /// Each call is one request to the token endpoint: use a cache (a token source) in front
    /// of it for anything that runs more than once per token lifetime.
    pub async fn request_token(&self, http: &HttpClient) -> Result<Token, Error> {
        request_token(self, http).await
    }
}

#[cfg(feature = "metrics")]
/// Describes [`TOKEN_REQUESTS`] and [`TOKEN_REQUEST_DURATION`] to the recorder installed at the
/// first token request (once per process).
fn describe_request_metrics() {
    static DESCRIBED: std::sync::Once = std::sync::Once::new();
    DESCRIBED.call_once(|| {
        metrics::describe_counter!(
            TOKEN_REQUESTS,
            "Token requests made, by result (success, an OAuth error code, or an error category)."
        );
        metrics::describe_histogram!(
            TOKEN_REQUEST_DURATION,
            metrics::Unit::Seconds,
            "Duration of token requests, by result."
        );
    });
}

/// One token request: encode, send, parse — inside a tracing span, counted in metrics.
async fn request_token(credentials: &ClientCredentials, http: &HttpClient) -> Result<Token, Error> {
    let url = credentials.token_url();
    let span = tracing::info_span!(
        "clientcreds.token_request",
        endpoint.host = url.host_str().unwrap_or(""),
        endpoint.path = url.path(),
        provider = credentials.provider().unwrap_or("generic"),
        client_id = credentials.client_id(),
        http.status = tracing::field::Empty,
        duration_ms = tracing::field::Empty,
        error.code = tracing::field::Empty,
    );
    async move {
        let started = Instant::now();
        let (status, result) = exchange(credentials, http).await;
        let elapsed = started.elapsed();
        let span = tracing::Span::current();
        if let Some(status) = status {
            span.record("http.status", status.as_u16());
        }
        span.record("duration_ms", elapsed.as_millis() as u64);
        #[cfg(feature = "metrics")]
        {
            let result_label = match &result {
                Ok(_) => "success",
                Err(err) => err.kind(),
            };
            describe_request_metrics();
            metrics::counter!(TOKEN_REQUESTS, "result" => result_label).increment(1);
            metrics::histogram!(TOKEN_REQUEST_DURATION, "result" => result_label)
                .record(elapsed.as_secs_f64());
        }
        match &result {
            Ok(token) => tracing::debug!(
                lifetime_s = token.lifetime().as_secs(),
                scope = token.scope().unwrap_or(""),
                "token issued"
            ),
            Err(err) => {
                span.record("error.code", err.kind());
                tracing::warn!(error = %err, retryable = err.is_retryable(), "token request failed");
            }
        }
        result
    }
    .instrument(span)
    .await
}

async fn exchange(
    credentials: &ClientCredentials,
    http: &HttpClient,
) -> (Option<http::StatusCode>, Result<Token, Error>) {
    if credentials.auth() == ClientAuth::TlsClientAuth && !http.has_client_identity() {
        let err = Error::config(
            "client_identity",
            "tls_client_auth needs an HttpClient that presents the client certificate; build \
             it with HttpClient::builder().client_identity(..)",
        );
        return (None, Err(err));
    }
    let request = match encode(credentials) {
        Ok(request) => request,
        Err(err) => return (None, Err(err)),
    };
    let response = match http.send(request).await {
        Ok(response) => response,
        Err(err) => return (None, Err(err)),
    };
    let status = response.status();
    let result = crate::response::parse(
        status,
        response.headers(),
        response.body(),
        credentials.scope_string().as_deref(),
        credentials.default_lifetime(),
        SystemTime::now(),
    )
    .map_err(|error| without_secret(error, credentials));
    (Some(status), result)
}

/// `error` with the client secret (and the `Basic` header that carries it) cut out of the
/// server's `error_description`, in case the server echoed it (see [`crate::redact`]).
fn without_secret(error: Error, credentials: &ClientCredentials) -> Error {
    match error {
        Error::TokenEndpoint {
            status,
            code,
            description: Some(description),
            retry_after,
        } => Error::TokenEndpoint {
            status,
            code,
            description: Some(credentials.scrub(&description)),
            retry_after,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn creds(auth: ClientAuth, id: &str, secret: &str) -> crate::ClientCredentialsBuilder {
        ClientCredentials::builder(
            "https://auth.example.com/oauth2/token",
            id,
            SecretString::from(secret),
        )
        .auth(auth)
    }

    async fn body_of(request: http::Request<Full<Bytes>>) -> String {
        let bytes = request.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[test]
    fn basic_matches_the_seed_examples() {
        // Afterpay: afterpay:merchantABC.
        assert_eq!(
            basic_authorization("afterpay", "merchantABC", BasicEncoding::FormUrlEncoded)
                .expose_secret(),
            "Basic YWZ0ZXJwYXk6bWVyY2hhbnRBQkM="
        );
        // Pyng (RFC 6749's example client): s6BhdRkqt3:gX1fBat3bV.
        assert_eq!(
            basic_authorization("s6BhdRkqt3", "gX1fBat3bV", BasicEncoding::FormUrlEncoded)
                .expose_secret(),
            "Basic czZCaGRSa3F0MzpnWDFmQmF0M2JW"
        );
    }

    #[test]
    fn basic_percent_encodes_with_space_as_percent_20() {
        let encoded = basic_authorization("my id", "p@ss:w+rd é", BasicEncoding::FormUrlEncoded);
        let b64 = encoded.expose_secret().strip_prefix("Basic ").unwrap();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        assert_eq!(
            String::from_utf8(decoded).unwrap(),
            "my%20id:p%40ss%3Aw%2Brd%20%C3%A9"
        );
        let raw = basic_authorization("my id", "p@ss:w+rd", BasicEncoding::Raw);
        let b64 = raw.expose_secret().strip_prefix("Basic ").unwrap();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        assert_eq!(String::from_utf8(decoded).unwrap(), "my id:p@ss:w+rd");
    }

    #[tokio::test]
    async fn basic_request_pyng_body_exactly_as_the_seed() {
        let c = creds(ClientAuth::Basic, "s6BhdRkqt3", "gX1fBat3bV")
            .scopes([
                "billing:customers:invite",
                "billing:customers:read",
                "billing:batches:submit",
                "billing:batches:read",
            ])
            .build()
            .unwrap();
        let request = encode(&c).unwrap();
        assert_eq!(request.method(), http::Method::POST);
        assert_eq!(request.uri(), "https://auth.example.com/oauth2/token");
        let h = request.headers();
        assert_eq!(h[AUTHORIZATION], "Basic czZCaGRSa3F0MzpnWDFmQmF0M2JW");
        assert!(h[AUTHORIZATION].is_sensitive());
        assert_eq!(h[CONTENT_TYPE], "application/x-www-form-urlencoded");
        assert_eq!(h[ACCEPT], "application/json");
        assert_eq!(
            body_of(request).await,
            "grant_type=client_credentials&scope=billing:customers:invite%20billing:customers:read\
             %20billing:batches:submit%20billing:batches:read"
        );
    }

    #[tokio::test]
    async fn basic_request_afterpay_has_only_grant_type() {
        let c = creds(ClientAuth::Basic, "afterpay", "merchantABC")
            .build()
            .unwrap();
        let request = encode(&c).unwrap();
        assert_eq!(
            request.headers()[AUTHORIZATION],
            "Basic YWZ0ZXJwYXk6bWVyY2hhbnRBQkM="
        );
        assert_eq!(body_of(request).await, "grant_type=client_credentials");
    }

    #[tokio::test]
    async fn post_request_azupay_and_payu() {
        let c = creds(ClientAuth::Post, "3n8q9p1k2l4m5o6p7q8r9s0t1u", "abcdef12")
            .scope("RestAPI/GET:balance RestAPI/GET:payment")
            .build()
            .unwrap();
        let request = encode(&c).unwrap();
        assert!(request.headers().get(AUTHORIZATION).is_none());
        assert_eq!(
            request.headers()[CONTENT_TYPE],
            "application/x-www-form-urlencoded"
        );
        assert_eq!(
            body_of(request).await,
            "grant_type=client_credentials&client_id=3n8q9p1k2l4m5o6p7q8r9s0t1u&client_secret=abcdef12\
             &scope=RestAPI/GET:balance%20RestAPI/GET:payment"
        );
        // Special characters in the secret are encoded, never `+` for a space.
        let c = creds(ClientAuth::Post, "id", "a b&c=d+e").build().unwrap();
        let body = body_of(encode(&c).unwrap()).await;
        assert_eq!(
            body,
            "grant_type=client_credentials&client_id=id&client_secret=a%20b%26c%3Dd%2Be"
        );
        let decoded: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes())
            .into_owned()
            .collect();
        assert_eq!(decoded[2], ("client_secret".into(), "a b&c=d+e".into()));
    }

    #[tokio::test]
    async fn json_request_autopay() {
        let c = creds(
            ClientAuth::Json,
            "kWmliLIrb79QfsF9r3vJE4xrKMcdcrrA",
            "7xxg\"q",
        )
        .audience("https://api.autopay.io")
        .build()
        .unwrap();
        let request = encode(&c).unwrap();
        assert!(request.headers().get(AUTHORIZATION).is_none());
        assert_eq!(request.headers()[CONTENT_TYPE], "application/json");
        let body = body_of(request).await;
        assert_eq!(
            body,
            r#"{"client_id":"kWmliLIrb79QfsF9r3vJE4xrKMcdcrrA","client_secret":"7xxg\"q","audience":"https://api.autopay.io","grant_type":"client_credentials"}"#
        );
        let value: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(value["client_secret"], "7xxg\"q");
    }

    #[tokio::test]
    async fn extras_resource_and_headers() {
        let c = creds(ClientAuth::Basic, "id", "secret")
            .resource("https://api.example.com/")
            .audience("aud")
            .param("tenant", "a b")
            .header("x-request-source", "tests")
            .build()
            .unwrap();
        let request = encode(&c).unwrap();
        assert_eq!(request.headers()["x-request-source"], "tests");
        assert_eq!(
            body_of(request).await,
            "grant_type=client_credentials&audience=aud&resource=https://api.example.com/&tenant=a%20b"
        );
    }

    #[cfg(feature = "private-key-jwt")]
    #[tokio::test]
    async fn private_key_jwt_sends_a_new_assertion_every_time() {
        let pem = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .unwrap()
            .serialize_pem();
        let key = crate::SigningKey::from_pem(pem.as_bytes()).unwrap();
        let c = ClientCredentials::private_key_jwt(
            "https://auth.example.com/oauth2/token",
            "client-7",
            key,
        )
        .scope("a b")
        .build()
        .unwrap();
        let mut assertions = Vec::new();
        for _ in 0..2 {
            let request = encode(&c).unwrap();
            assert!(request.headers().get(AUTHORIZATION).is_none());
            let body = body_of(request).await;
            let form: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes())
                .into_owned()
                .collect();
            let names: Vec<_> = form.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(
                names,
                [
                    "grant_type",
                    "client_id",
                    "client_assertion_type",
                    "client_assertion",
                    "scope"
                ]
            );
            assert_eq!(form[1].1, "client-7");
            assert_eq!(form[2].1, JWT_BEARER_ASSERTION_TYPE);
            let claims = form[3].1.split('.').nth(1).unwrap();
            let claims: serde_json::Value = serde_json::from_slice(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(claims)
                    .unwrap(),
            )
            .unwrap();
            assert_eq!(claims["aud"], "https://auth.example.com/oauth2/token");
            assert_eq!(claims["iss"], "client-7");
            assert_eq!(claims["sub"], "client-7");
            assert_eq!(
                claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
                60
            );
            assertions.push(form[3].1.clone());
        }
        assert_ne!(assertions[0], assertions[1], "an assertion is never reused");
    }

    #[tokio::test]
    async fn tls_client_auth_sends_the_client_id_only() {
        let c = ClientCredentials::tls_client_auth("https://auth.example.com/t", "client-9")
            .build()
            .unwrap();
        let request = encode(&c).unwrap();
        assert!(request.headers().get(AUTHORIZATION).is_none());
        assert_eq!(
            body_of(request).await,
            "grant_type=client_credentials&client_id=client-9"
        );
        // Over a client without a certificate: a configuration error, nothing sent.
        let err = c.request_token(&HttpClient::new()).await.unwrap_err();
        assert!(
            matches!(
                err,
                Error::Config {
                    field: "client_identity",
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn an_echoed_client_secret_is_cut_out_of_the_error_description() {
        let error = Error::TokenEndpoint {
            status: http::StatusCode::UNAUTHORIZED,
            code: Some(crate::OAuthErrorCode::InvalidClient),
            description: Some(
                "client_secret 'p4ss w0rd' (p4ss+w0rd) is wrong; got Basic YXBwOnA0c3MgdzByZA=="
                    .into(),
            ),
            retry_after: None,
        };
        let credentials = creds(ClientAuth::Basic, "app", "p4ss w0rd")
            .build()
            .unwrap();
        let shown = without_secret(error, &credentials).to_string();
        assert!(!shown.contains("p4ss"), "{shown}");
        assert!(!shown.contains("YXBwOnA0c3MgdzByZA"), "{shown}");
        assert!(
            shown
                .contains("client_secret '[redacted]' ([redacted]) is wrong; got Basic [redacted]")
        );
        // an answer cut short by the parser in the middle of the echoed secret
        let long = format!("{} client_secret=p4ss w0rd", "x".repeat(280));
        let body = serde_json::json!({"error": "invalid_client", "error_description": long});
        let error = crate::response::parse(
            http::StatusCode::UNAUTHORIZED,
            &http::HeaderMap::new(),
            body.to_string().as_bytes(),
            None,
            None,
            SystemTime::now(),
        )
        .unwrap_err();
        let shown = without_secret(error, &credentials).to_string();
        assert!(!shown.contains("p4ss"), "{shown}");
        assert!(shown.contains("client_secret=[redacted]…"), "{shown}");
    }
}
