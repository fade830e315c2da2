//! Every seed provider through the layer: its preset, a `ClientCredentialsSource`, `BearerLayer`
//! over a hyper-util client, two calls to the provider's protected endpoint in the sandbox —
//! both 200, one token request between them, and that token request exactly as the provider's
//! document asks (method, path, content type, where the client authenticates, parameters).

#![allow(clippy::unwrap_used)] // tests may unwrap (helpers outside #[test] too)

use bytes::Bytes;
use clientcreds::bearer::BearerLayer;
use clientcreds::source::{ClientCredentialsSource, TokenSource};
use clientcreds::{AzupayConnectionDetails, ClientCredentials, Env, HttpClient, Provider};
use clientcreds_sandbox::{self as sandbox, RecordedRequest, Sandbox, SandboxConfig};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use secrecy::SecretString;
use tower::{Service, ServiceBuilder, ServiceExt};

/// Azupay's enable call with the API key, as the operator makes it; the details with the
/// one-time secret.
async fn azupay_enable(sb: &Sandbox) -> AzupayConnectionDetails {
    let azupay = sb.azupay();
    let mut api_key = http::HeaderValue::try_from(azupay.api_key.as_str()).unwrap();
    api_key.set_sensitive(true);
    let request = Request::post(format!(
        "{}/client/{}/oauth2",
        azupay.endpoint, azupay.client_id
    ))
    .header(http::header::AUTHORIZATION, api_key)
    .header(http::header::CONTENT_TYPE, "application/json")
    .body(Full::new(Bytes::from_static(b"{}")))
    .unwrap();
    let response = HttpClient::new().send(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    serde_json::from_slice(response.body()).unwrap()
}

/// The preset for `provider` pointed at the sandbox, and its protected endpoint.
async fn preset(sb: &Sandbox, provider: Provider) -> (ClientCredentials, String) {
    let secret = |s: &str| SecretString::from(s.to_owned());
    match provider {
        Provider::Azupay => {
            let mut details = azupay_enable(sb).await;
            let client_secret = details.take_client_secret().unwrap();
            let credentials = Provider::azupay(&details, client_secret)
                .scope("RestAPI/GET:balance")
                .build()
                .unwrap();
            (credentials, sb.azupay().resource_url)
        }
        Provider::Autopay => {
            let p = sb.autopay();
            let credentials = Provider::autopay(&p.client_id, secret(&p.client_secret))
                .token_url(&p.token_url)
                .build()
                .unwrap();
            (credentials, p.resource_url)
        }
        Provider::PayU => {
            let p = sb.payu();
            let credentials = Provider::payu(Env::Test, &p.client_id, secret(&p.client_secret))
                .token_url(&p.token_url)
                .scope("read_payment_links")
                .build()
                .unwrap();
            (credentials, p.resource_url)
        }
        Provider::Pyng => {
            let p = sb.pyng();
            let base = p.token_url.strip_suffix("/billing/oauth2/token").unwrap();
            let credentials = Provider::pyng(base, &p.client_id, secret(&p.client_secret))
                .scope("billing:customers:read")
                .build()
                .unwrap();
            (credentials, p.resource_url)
        }
        Provider::Afterpay => {
            let p = sb.afterpay();
            let base = p.token_url.strip_suffix("/oauth2/token").unwrap();
            let credentials = Provider::afterpay(base, &p.client_id, secret(&p.client_secret))
                .build()
                .unwrap();
            (credentials, p.resource_url)
        }
        other => panic!("no sandbox for {other}"),
    }
}

fn sandbox_provider(provider: Provider) -> sandbox::Provider {
    match provider {
        Provider::Azupay => sandbox::Provider::Azupay,
        Provider::Autopay => sandbox::Provider::Autopay,
        Provider::PayU => sandbox::Provider::Payu,
        Provider::Pyng => sandbox::Provider::Pyng,
        Provider::Afterpay => sandbox::Provider::Afterpay,
        other => panic!("no sandbox for {other}"),
    }
}

/// The exact token request each provider's document asks for.
fn assert_token_request(provider: Provider, request: &RecordedRequest) {
    assert_eq!(request.method, "POST", "{provider}");
    assert_eq!(request.header("accept"), Some("application/json"));
    let form = |content_type: &str| {
        assert_eq!(
            request.header("content-type"),
            Some(content_type),
            "{provider}"
        );
        request.form()
    };
    let pairs = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    match provider {
        Provider::Azupay => {
            assert_eq!(request.path, "/azupay/oauth2/token");
            // client_secret_post: the credentials in the form body, no Authorization header.
            assert_eq!(request.header("authorization"), None);
            assert_eq!(
                form("application/x-www-form-urlencoded"),
                pairs(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", sandbox::AZUPAY_OAUTH2_CLIENT_ID),
                    ("client_secret", sandbox::AZUPAY_OAUTH2_CLIENT_SECRET),
                    ("scope", "RestAPI/GET:balance"),
                ])
            );
        }
        Provider::Autopay => {
            assert_eq!(request.path, "/autopay/oauth/token");
            assert_eq!(request.header("authorization"), None);
            assert_eq!(request.header("content-type"), Some("application/json"));
            // A JSON body with the credentials and the audience, no scope.
            let body: serde_json::Value = serde_json::from_str(&request.body).unwrap();
            assert_eq!(
                body,
                serde_json::json!({
                    "client_id": sandbox::AUTOPAY_CLIENT_ID,
                    "client_secret": sandbox::AUTOPAY_CLIENT_SECRET,
                    "audience": "https://api.autopay.io",
                    "grant_type": "client_credentials",
                })
            );
        }
        Provider::PayU => {
            assert_eq!(request.path, "/payu/oauth/token");
            assert_eq!(request.header("authorization"), None);
            assert_eq!(
                form("application/x-www-form-urlencoded"),
                pairs(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", sandbox::PAYU_CLIENT_ID),
                    ("client_secret", sandbox::PAYU_CLIENT_SECRET),
                    ("scope", "read_payment_links"),
                ])
            );
        }
        Provider::Pyng => {
            assert_eq!(request.path, "/pyng/billing/oauth2/token");
            // client_secret_basic: the seed's header, byte for byte; no secret in the body.
            assert_eq!(
                request.header("authorization"),
                Some("Basic czZCaGRSa3F0MzpnWDFmQmF0M2JW")
            );
            assert_eq!(
                form("application/x-www-form-urlencoded"),
                pairs(&[
                    ("grant_type", "client_credentials"),
                    ("scope", "billing:customers:read"),
                ])
            );
        }
        Provider::Afterpay => {
            assert_eq!(request.path, "/afterpay/oauth2/token");
            assert_eq!(
                request.header("authorization"),
                Some("Basic YWZ0ZXJwYXk6bWVyY2hhbnRBQkM=")
            );
            assert_eq!(
                request.header("content-type"),
                Some("application/x-www-form-urlencoded")
            );
            assert_eq!(request.body, "grant_type=client_credentials");
        }
        other => panic!("no sandbox for {other}"),
    }
}

async fn two_calls_through_the_layer(provider: Provider) {
    let sb = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let (credentials, resource_url) = preset(&sb, provider).await;
    sb.clear_requests(); // Azupay's enable call
    let client_id = credentials.client_id().to_owned();
    let source = ClientCredentialsSource::new(credentials, HttpClient::new());
    let hyper_client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut api = ServiceBuilder::new()
        .layer(BearerLayer::new(source.clone()))
        .service(hyper_client);

    for call in 1..=2 {
        let request = Request::get(&resource_url).body(Full::default()).unwrap();
        let response = api.ready().await.unwrap().call(request).await.unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(
            status,
            StatusCode::OK,
            "{provider}, call {call}: {}",
            String::from_utf8_lossy(&body)
        );
    }

    let requests = sb.requests_for(sandbox_provider(provider));
    let (token_requests, protected): (Vec<_>, Vec<_>) = requests
        .iter()
        .partition(|r| r.method == "POST" && r.path.ends_with("/token"));
    assert_eq!(token_requests.len(), 1, "{provider}: {requests:?}");
    assert_token_request(provider, token_requests[0]);
    assert_eq!(
        sb.tokens_issued(sandbox_provider(provider), &client_id),
        1,
        "{provider}"
    );
    // Both protected calls carried the cached token.
    let token = source.cached().unwrap();
    let resource_path = resource_url.parse::<http::Uri>().unwrap().path().to_owned();
    assert_eq!(protected.len(), 2, "{provider}: {requests:?}");
    for request in protected {
        assert_eq!(request.path, resource_path, "{provider}");
        assert_eq!(
            request.header("authorization"),
            Some(token.authorization().to_str().unwrap()),
            "{provider}"
        );
    }
}

#[tokio::test]
async fn azupay_through_the_layer() {
    two_calls_through_the_layer(Provider::Azupay).await;
}

#[tokio::test]
async fn autopay_through_the_layer() {
    two_calls_through_the_layer(Provider::Autopay).await;
}

#[tokio::test]
async fn payu_through_the_layer() {
    two_calls_through_the_layer(Provider::PayU).await;
}

#[tokio::test]
async fn pyng_through_the_layer() {
    two_calls_through_the_layer(Provider::Pyng).await;
}

#[tokio::test]
async fn afterpay_through_the_layer() {
    two_calls_through_the_layer(Provider::Afterpay).await;
}
