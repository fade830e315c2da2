//! Every seed provider, end to end against the sandbox: the exact token request on the wire, the
//! parsed token, a call to the provider's protected endpoint with it, and the provider's error
//! answers mapped to the typed error. Also: no secret or token in `Debug`, `Display`, errors or
//! captured tracing output.

#![allow(clippy::unwrap_used)] // tests may unwrap (helpers outside #[test] too)

use std::time::Duration;

use bytes::Bytes;
use clientcreds::source::{ClientCredentialsSource, TokenSource};
use clientcreds::{
    AzupayConnectionDetails, ClientCredentials, Env, Error, HttpClient, OAuthErrorCode, Provider,
    Token,
};
use clientcreds_sandbox::{self as sandbox, Fault, RecordedRequest, Sandbox, SandboxConfig};
use http::{HeaderName, HeaderValue, StatusCode};
use http_body_util::Full;
use secrecy::{ExposeSecret, SecretString};

async fn start() -> Sandbox {
    Sandbox::start(SandboxConfig::default()).await.unwrap()
}

/// The only request the sandbox recorded for `provider`.
fn only_request(sb: &Sandbox, provider: sandbox::Provider) -> RecordedRequest {
    let requests = sb.requests_for(provider);
    assert_eq!(requests.len(), 1, "{requests:?}");
    requests.into_iter().next().unwrap()
}

/// GET the protected endpoint with the token; the status.
async fn call_protected(http: &HttpClient, url: &str, token: &Token) -> StatusCode {
    let request = http::Request::get(url)
        .header(http::header::AUTHORIZATION, token.authorization().clone())
        .body(Full::new(Bytes::new()))
        .unwrap();
    http.send(request).await.unwrap().status()
}

/// Azupay's enable call, as the operator makes it: the API key as-is in `Authorization`.
async fn azupay_enable(http: &HttpClient, sb: &Sandbox) -> AzupayConnectionDetails {
    let azupay = sb.azupay();
    let request = http::Request::post(format!(
        "{}/client/{}/oauth2",
        azupay.endpoint, azupay.client_id
    ))
    .header(http::header::AUTHORIZATION, azupay.api_key.as_str())
    .header(http::header::CONTENT_TYPE, "application/json")
    .body(Full::new(Bytes::from_static(b"{}")))
    .unwrap();
    let response = http.send(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    serde_json::from_slice(response.body()).unwrap()
}

fn assert_common_headers(request: &RecordedRequest, content_type: &str) {
    assert_eq!(request.method, "POST");
    assert_eq!(request.header("content-type"), Some(content_type));
    assert_eq!(request.header("accept"), Some("application/json"));
}

#[tokio::test]
async fn azupay_enable_then_token_then_balance() {
    let sb = start().await;
    let http = HttpClient::new();
    let mut details = azupay_enable(&http, &sb).await;
    assert_eq!(details.oauth2_client_id, sandbox::AZUPAY_OAUTH2_CLIENT_ID);
    assert_eq!(details.oauth2_token_url, sb.azupay().token_url);
    let secret = details
        .take_client_secret()
        .expect("the enable call returns the secret once");
    assert_eq!(secret.expose_secret(), sandbox::AZUPAY_OAUTH2_CLIENT_SECRET);
    sb.clear_requests();

    let credentials = Provider::azupay(&details, secret)
        .scope("RestAPI/GET:balance")
        .build()
        .unwrap();
    let token = credentials.request_token(&http).await.unwrap();

    let request = only_request(&sb, sandbox::Provider::Azupay);
    assert_eq!(request.path, "/azupay/oauth2/token");
    assert_common_headers(&request, "application/x-www-form-urlencoded");
    assert_eq!(
        request.header("authorization"),
        None,
        "client_secret_post only"
    );
    assert_eq!(
        request.body,
        format!(
            "grant_type=client_credentials&client_id={}&client_secret={}&scope=RestAPI/GET:balance",
            sandbox::AZUPAY_OAUTH2_CLIENT_ID,
            sandbox::AZUPAY_OAUTH2_CLIENT_SECRET
        )
    );
    assert_eq!(token.token_type(), "Bearer");
    assert!(
        token.lifetime() > Duration::from_secs(3590)
            && token.lifetime() <= Duration::from_secs(3600)
    );
    // The answer has no scope: the requested one is kept.
    assert_eq!(token.scope(), Some("RestAPI/GET:balance"));
    assert_eq!(
        call_protected(&http, &sb.azupay().resource_url, &token).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn autopay_json_body_with_audience() {
    let sb = start().await;
    let http = HttpClient::new();
    let autopay = sb.autopay();
    let credentials = Provider::autopay(
        &autopay.client_id,
        SecretString::from(autopay.client_secret.clone()),
    )
    .token_url(&autopay.token_url)
    .build()
    .unwrap();
    let token = credentials.request_token(&http).await.unwrap();

    let request = only_request(&sb, sandbox::Provider::Autopay);
    assert_eq!(request.path, "/autopay/oauth/token");
    assert_common_headers(&request, "application/json");
    assert_eq!(request.header("authorization"), None);
    assert_eq!(
        request.body,
        format!(
            r#"{{"client_id":"{}","client_secret":"{}","audience":"https://api.autopay.io","grant_type":"client_credentials"}}"#,
            sandbox::AUTOPAY_CLIENT_ID,
            sandbox::AUTOPAY_CLIENT_SECRET
        )
    );
    assert_eq!(token.scope(), Some(sandbox::AUTOPAY_SCOPE));
    assert_eq!(
        token.lifetime(),
        sandbox::default_lifetime(sandbox::Provider::Autopay)
    );
    assert_eq!(
        call_protected(&http, &autopay.resource_url, &token).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn payu_form_body_and_created_at() {
    let sb = start().await;
    let http = HttpClient::new();
    let payu = sb.payu();
    let credentials = Provider::payu(
        Env::Test,
        &payu.client_id,
        SecretString::from(payu.client_secret.clone()),
    )
    .token_url(&payu.token_url)
    .scope(sandbox::PAYU_SCOPES[0])
    .build()
    .unwrap();
    let token = credentials.request_token(&http).await.unwrap();

    let request = only_request(&sb, sandbox::Provider::Payu);
    assert_eq!(request.path, "/payu/oauth/token");
    assert_common_headers(&request, "application/x-www-form-urlencoded");
    assert_eq!(request.header("authorization"), None);
    assert_eq!(
        request.body,
        format!(
            "grant_type=client_credentials&client_id={}&client_secret={}&scope={}",
            sandbox::PAYU_CLIENT_ID,
            sandbox::PAYU_CLIENT_SECRET,
            sandbox::PAYU_SCOPES[0]
        )
    );
    assert_eq!(token.scope(), Some(sandbox::PAYU_SCOPES[0]));
    let full = sandbox::default_lifetime(sandbox::Provider::Payu);
    assert!(token.lifetime() <= full && token.lifetime() + Duration::from_secs(5) >= full);
    assert_eq!(
        call_protected(&http, &payu.resource_url, &token).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn payu_created_at_in_the_past_shortens_the_lifetime() {
    let sb = start().await;
    let http = HttpClient::new();
    let payu = sb.payu();
    let credentials = Provider::payu(
        Env::Test,
        &payu.client_id,
        SecretString::from(payu.client_secret.clone()),
    )
    .token_url(&payu.token_url)
    .scope(sandbox::PAYU_SCOPES[0])
    .build()
    .unwrap();
    // A response created 100 s ago, valid 7011 s: 6911 s are left.
    let created_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 100;
    let body = format!(
        r#"{{"access_token":"ea4ed864b4d2","token_type":"Bearer","expires_in":7011,"scope":"create_payment_links","created_at":{created_at}}}"#
    );
    sb.fail_next(
        sandbox::Provider::Payu,
        1,
        Fault::json(StatusCode::OK, body),
    );
    let token = credentials.request_token(&http).await.unwrap();
    let lifetime = token.lifetime().as_secs();
    assert!((6909..=6911).contains(&lifetime), "{lifetime}");
}

#[tokio::test]
async fn pyng_basic_and_required_scopes() {
    let sb = start().await;
    let http = HttpClient::new();
    let pyng = sb.pyng();
    let credentials = Provider::pyng(
        "https://sample.pyng.com.au",
        &pyng.client_id,
        SecretString::from(pyng.client_secret.clone()),
    )
    .token_url(&pyng.token_url)
    .scopes(sandbox::PYNG_SCOPES.iter().copied())
    .build()
    .unwrap();
    let token = credentials.request_token(&http).await.unwrap();

    let request = only_request(&sb, sandbox::Provider::Pyng);
    assert_eq!(request.path, "/pyng/billing/oauth2/token");
    assert_common_headers(&request, "application/x-www-form-urlencoded");
    // The seed's header, byte for byte.
    assert_eq!(
        request.header("authorization"),
        Some("Basic czZCaGRSa3F0MzpnWDFmQmF0M2JW")
    );
    assert_eq!(
        request.body,
        format!(
            "grant_type=client_credentials&scope={}",
            sandbox::PYNG_SCOPES.join("%20")
        )
    );
    assert!(!request.body.contains(sandbox::PYNG_CLIENT_SECRET));
    assert_eq!(token.lifetime(), Duration::from_secs(900));
    assert_eq!(token.scope(), Some(sandbox::PYNG_SCOPES.join(" ").as_str()));
    assert_eq!(
        call_protected(&http, &pyng.resource_url, &token).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn afterpay_basic_grant_type_only() {
    let sb = start().await;
    let http = HttpClient::new();
    let afterpay = sb.afterpay();
    let credentials = Provider::afterpay(
        "https://merchant.example",
        &afterpay.client_id,
        SecretString::from(afterpay.client_secret.clone()),
    )
    .token_url(&afterpay.token_url)
    .build()
    .unwrap();
    let token = credentials.request_token(&http).await.unwrap();

    let request = only_request(&sb, sandbox::Provider::Afterpay);
    assert_eq!(request.path, "/afterpay/oauth2/token");
    assert_common_headers(&request, "application/x-www-form-urlencoded");
    // The seed's example header for afterpay:merchantABC.
    assert_eq!(
        request.header("authorization"),
        Some("Basic YWZ0ZXJwYXk6bWVyY2hhbnRBQkM=")
    );
    assert_eq!(request.body, "grant_type=client_credentials");
    assert_eq!(token.lifetime(), Duration::from_secs(3600));
    assert_eq!(
        call_protected(&http, &afterpay.resource_url, &token).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn afterpay_curl_sample_credentials() {
    let sb = start().await;
    let http = HttpClient::new();
    let credentials = Provider::afterpay(
        sb.base_url(),
        sandbox::AFTERPAY_SAMPLE_CLIENT_ID,
        SecretString::from(sandbox::AFTERPAY_SAMPLE_CLIENT_SECRET),
    )
    .token_url(sb.afterpay().token_url)
    .build()
    .unwrap();
    credentials.request_token(&http).await.unwrap();
    let request = only_request(&sb, sandbox::Provider::Afterpay);
    assert_eq!(
        request.header("authorization"),
        Some("Basic Z29tbzpwYXNzd29yZDEyMw==")
    );
}

fn wrong_secret(builder: clientcreds::ClientCredentialsBuilder) -> ClientCredentials {
    builder.build().unwrap()
}

#[tokio::test]
async fn provider_errors_map_to_the_typed_error() {
    let sb = start().await;
    let http = HttpClient::new();
    let bad = || SecretString::from("wrong-secret-value");

    // Autopay: 401 access_denied.
    let autopay = sb.autopay();
    let err =
        wrong_secret(Provider::autopay(&autopay.client_id, bad()).token_url(&autopay.token_url))
            .request_token(&http)
            .await
            .unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::UNAUTHORIZED));
    assert_eq!(err.oauth_code(), Some(&OAuthErrorCode::AccessDenied));
    assert!(!err.is_retryable());

    // PayU: invalid_client.
    let payu = sb.payu();
    let payu_client = |secret: SecretString| {
        Provider::payu(Env::Test, &payu.client_id, secret)
            .token_url(&payu.token_url)
            .scope(sandbox::PAYU_SCOPES[0])
    };
    let err = wrong_secret(payu_client(bad()))
        .request_token(&http)
        .await
        .unwrap_err();
    assert_eq!(err.oauth_code(), Some(&OAuthErrorCode::InvalidClient));
    assert_eq!(err.status(), Some(StatusCode::UNAUTHORIZED));

    // PayU: invalid_scope for a scope the client was not granted.
    let err = Provider::payu(
        Env::Test,
        &payu.client_id,
        SecretString::from(payu.client_secret.clone()),
    )
    .token_url(&payu.token_url)
    .scope("no_such_scope")
    .build()
    .unwrap()
    .request_token(&http)
    .await
    .unwrap_err();
    assert_eq!(err.oauth_code(), Some(&OAuthErrorCode::InvalidScope));

    // PayU: rate_limit_exceeded with retry_after in the body.
    sb.set_payu_rate_limit(Some(sandbox::RateLimit {
        requests: 1,
        window: Duration::from_secs(60),
    }));
    let good = payu_client(SecretString::from(payu.client_secret.clone()))
        .build()
        .unwrap();
    good.request_token(&http).await.unwrap();
    let err = good.request_token(&http).await.unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::TOO_MANY_REQUESTS));
    assert_eq!(err.oauth_code(), Some(&OAuthErrorCode::RateLimitExceeded));
    let retry_after = err
        .retry_after()
        .expect("PayU sends retry_after in the body");
    assert!(
        retry_after > Duration::ZERO && retry_after <= Duration::from_secs(60),
        "{retry_after:?}"
    );
    assert!(err.is_retryable());
    sb.set_payu_rate_limit(None);

    // PayU: server_error.
    sb.fail_next(
        sandbox::Provider::Payu,
        1,
        Fault::json(
            StatusCode::INTERNAL_SERVER_ERROR,
            sandbox::PAYU_SERVER_ERROR,
        ),
    );
    let err = good.request_token(&http).await.unwrap_err();
    assert_eq!(err.oauth_code(), Some(&OAuthErrorCode::ServerError));
    assert!(err.is_retryable());

    // Pyng: 401 invalid_client with the seed's description.
    let pyng = sb.pyng();
    let err = wrong_secret(
        Provider::pyng(sb.base_url(), &pyng.client_id, bad())
            .token_url(&pyng.token_url)
            .scope(sandbox::PYNG_SCOPES[0]),
    )
    .request_token(&http)
    .await
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "token endpoint answered HTTP 401 Unauthorized: invalid_client (Client authentication failed)"
    );

    // Afterpay: invalid_client.
    let afterpay = sb.afterpay();
    let afterpay_good = Provider::afterpay(
        sb.base_url(),
        &afterpay.client_id,
        SecretString::from(afterpay.client_secret.clone()),
    )
    .token_url(&afterpay.token_url)
    .build()
    .unwrap();
    let err = wrong_secret(
        Provider::afterpay(sb.base_url(), &afterpay.client_id, bad())
            .token_url(&afterpay.token_url),
    )
    .request_token(&http)
    .await
    .unwrap_err();
    assert_eq!(err.oauth_code(), Some(&OAuthErrorCode::InvalidClient));

    // An HTML 503 with Retry-After in seconds: a clear error with the status.
    sb.fail_next(
        sandbox::Provider::Afterpay,
        1,
        Fault::status(StatusCode::SERVICE_UNAVAILABLE)
            .with_body("<html><body>down</body></html>")
            .with_header(
                HeaderName::from_static("content-type"),
                HeaderValue::from_static("text/html"),
            )
            .with_header(
                HeaderName::from_static("retry-after"),
                HeaderValue::from_static("7"),
            ),
    );
    let err = afterpay_good.request_token(&http).await.unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
    assert_eq!(err.oauth_code(), None);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
    assert!(err.to_string().contains("not JSON (text/html"), "{err}");

    // An empty 403.
    sb.fail_next(
        sandbox::Provider::Afterpay,
        1,
        Fault::status(StatusCode::FORBIDDEN),
    );
    let err = afterpay_good.request_token(&http).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "token endpoint answered HTTP 403 Forbidden (empty response body)"
    );
    assert!(!err.is_retryable());

    // A closed connection: a transport error naming the endpoint.
    sb.fail_next(sandbox::Provider::Afterpay, 1, Fault::close_connection());
    let err = afterpay_good.request_token(&http).await.unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
    assert!(err.to_string().contains("/afterpay/oauth2/token"), "{err}");

    // And it works again afterwards.
    afterpay_good.request_token(&http).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn http_client_timeout_against_a_slow_provider() {
    let sb = start().await;
    let http = HttpClient::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let afterpay = sb.afterpay();
    let credentials = Provider::afterpay(
        sb.base_url(),
        &afterpay.client_id,
        SecretString::from(afterpay.client_secret.clone()),
    )
    .token_url(&afterpay.token_url)
    .build()
    .unwrap();
    sb.fail_next(
        sandbox::Provider::Afterpay,
        1,
        Fault::delay(Duration::from_secs(60)),
    );
    // Paused time: the clock jumps to the client's 10 s deadline, before the 60 s delay ends.
    let started = tokio::time::Instant::now();
    let err = credentials.request_token(&http).await.unwrap_err();
    assert_eq!(started.elapsed(), Duration::from_secs(10));
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
    assert!(
        err.to_string().contains("no complete response within"),
        "{err}"
    );
}

#[test]
fn token_requests_are_counted_by_result() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let access_token = metrics::with_local_recorder(&recorder, || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let sb = start().await;
            let http = HttpClient::new();
            let afterpay = sb.afterpay();
            let good = Provider::afterpay(
                sb.base_url(),
                &afterpay.client_id,
                SecretString::from(afterpay.client_secret.clone()),
            )
            .token_url(&afterpay.token_url)
            .build()
            .unwrap();
            let bad = Provider::afterpay(
                sb.base_url(),
                &afterpay.client_id,
                SecretString::from("wrong-secret-value"),
            )
            .token_url(&afterpay.token_url)
            .build()
            .unwrap();
            good.request_token(&http).await.unwrap();
            good.request_token(&http).await.unwrap();
            bad.request_token(&http).await.unwrap_err();
            // Through caches: a failed fetch is counted by cache and error kind.
            let source = ClientCredentialsSource::new(bad, http.clone());
            let error = source.token().await.unwrap_err();
            assert_eq!(error.oauth_code(), Some(&OAuthErrorCode::InvalidClient));
            let source = ClientCredentialsSource::new(good, http);
            source
                .token()
                .await
                .unwrap()
                .secret()
                .expose_secret()
                .to_owned()
        })
    });
    let mut counts = std::collections::HashMap::new();
    let mut failures = std::collections::HashMap::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let key = key.key();
        // No label of any metric holds a secret or a token.
        for label in key.labels() {
            for secret in [
                "wrong-secret-value",
                sandbox::AFTERPAY_CLIENT_SECRET,
                access_token.as_str(),
            ] {
                assert!(
                    !label.value().contains(secret),
                    "a secret in a label: {key:?}"
                );
            }
        }
        if key.name() == clientcreds::telemetry::TOKEN_FAILURES {
            let mut labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            labels.sort();
            if let DebugValue::Counter(n) = value {
                failures.insert(labels.join(","), n);
            }
            continue;
        }
        if key.name() != clientcreds::TOKEN_REQUESTS {
            continue;
        }
        let result = key
            .labels()
            .find(|l| l.key() == "result")
            .map(|l| l.value().to_owned())
            .unwrap();
        if let DebugValue::Counter(n) = value {
            counts.insert(result, n);
        }
    }
    assert_eq!(counts.get("success"), Some(&3), "{counts:?}");
    assert_eq!(counts.get("invalid_client"), Some(&2), "{counts:?}");
    // The cache is named after the token endpoint's host.
    assert_eq!(
        failures,
        std::collections::HashMap::from([("cache=127.0.0.1,kind=invalid_client".to_owned(), 1)]),
        "one failed fetch, labelled with the cache and the error kind"
    );
}

#[tokio::test]
async fn basic_credentials_with_special_characters_are_percent_encoded() {
    let id = "partner id:1";
    let secret = "p@ss word+1/é";
    let config = SandboxConfig::default()
        .pyng_client(sandbox::Client::new(id, secret).scopes([sandbox::PYNG_SCOPES[0]]));
    let sb = Sandbox::start(config).await.unwrap();
    let http = HttpClient::new();
    let pyng = sb.pyng();
    let builder = |encoding| {
        Provider::pyng(sb.base_url(), id, SecretString::from(secret))
            .token_url(&pyng.token_url)
            .scope(sandbox::PYNG_SCOPES[0])
            .basic_encoding(encoding)
    };

    // RFC 6749 §2.3.1: form-encoded before base64, a space as %20.
    let token = builder(clientcreds::BasicEncoding::FormUrlEncoded)
        .build()
        .unwrap()
        .request_token(&http)
        .await
        .unwrap();
    let request = only_request(&sb, sandbox::Provider::Pyng);
    assert_eq!(
        call_protected(&http, &pyng.resource_url, &token).await,
        StatusCode::OK
    );
    let header = request.header("authorization").unwrap();
    assert_eq!(
        header,
        clientcreds::basic_authorization(id, secret, clientcreds::BasicEncoding::FormUrlEncoded)
            .expose_secret()
    );
    use base64::Engine;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(header.strip_prefix("Basic ").unwrap())
        .unwrap();
    assert_eq!(
        String::from_utf8(decoded).unwrap(),
        "partner%20id%3A1:p%40ss%20word%2B1%2F%C3%A9"
    );

    // Raw credentials cannot carry the ':' in this id: a Config error before any request.
    let err = builder(clientcreds::BasicEncoding::Raw)
        .build()
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Config {
                field: "client_id",
                ..
            }
        ),
        "{err}"
    );
}
