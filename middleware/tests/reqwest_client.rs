//! reqwest (feature `reqwest`) against the provider emulator: the `reqwest-middleware`
//! middleware, a `reqwest::Client` as the transport of token requests, and tower adapters of
//! reqwest (ours and the `tower-reqwest` crate's) under the `BearerLayer` — all on one cache.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::convert::Infallible;

use bytes::Bytes;
use clientcreds::reqwest::{BearerMiddleware, ReqwestService};
use clientcreds::source::{ClientCredentialsSource, TokenSource};
use clientcreds::{BearerLayer, ClientAuth, ClientCredentials, HttpClient};
use clientcreds_sandbox::{Provider, ProviderEndpoints, Sandbox, SandboxConfig};
use http::StatusCode;
use http_body_util::StreamBody;
use reqwest_middleware::ClientWithMiddleware;
use secrecy::SecretString;
use tower::{ServiceBuilder, ServiceExt};

fn afterpay_source(afterpay: &ProviderEndpoints, http: HttpClient) -> ClientCredentialsSource {
    let credentials = ClientCredentials::builder(
        &afterpay.token_url,
        afterpay.client_id.clone(),
        SecretString::from(afterpay.client_secret.clone()),
    )
    .auth(ClientAuth::Basic)
    .build()
    .unwrap();
    ClientCredentialsSource::new(credentials, http)
}

fn with_middleware(reqwest: reqwest::Client, middleware: BearerMiddleware) -> ClientWithMiddleware {
    reqwest_middleware::ClientBuilder::new(reqwest)
        .with(middleware)
        .build()
}

#[tokio::test]
async fn the_middleware_attaches_tokens_from_one_cache_shared_with_the_tower_layer() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let afterpay = sandbox.afterpay();
    let reqwest = reqwest::Client::new();
    // The token requests go through the same reqwest client.
    let source = afterpay_source(&afterpay, HttpClient::from_reqwest(reqwest.clone()));
    let client = with_middleware(reqwest.clone(), BearerMiddleware::new(source.clone()));

    for _ in 0..3 {
        let response = client.get(&afterpay.resource_url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    // The same source under the tower layer, over our reqwest adapter.
    let tower_client = ServiceBuilder::new()
        .layer(BearerLayer::new(source.clone()))
        .service(ReqwestService::new(reqwest));
    let request = http::Request::get(&afterpay.resource_url)
        .body(Bytes::new())
        .unwrap();
    let response = tower_client.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    assert_eq!(
        sandbox.tokens_issued(Provider::Afterpay, &afterpay.client_id),
        1,
        "four API calls, one token request"
    );
    let (token_requests, api_calls): (Vec<_>, Vec<_>) = sandbox
        .requests_for(Provider::Afterpay)
        .into_iter()
        .partition(|r| r.path.ends_with("/oauth2/token"));
    assert_eq!(token_requests.len(), 1);
    assert_eq!(api_calls.len(), 4);
    for call in api_calls {
        assert!(
            call.headers
                .iter()
                .any(|(name, value)| name == "authorization" && value.starts_with("Bearer ")),
            "{:?}",
            call.headers
        );
    }
}

#[tokio::test]
async fn a_401_drops_the_token_and_replays_the_request_once() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let afterpay = sandbox.afterpay();
    let reqwest = reqwest::Client::new();
    let source = afterpay_source(&afterpay, HttpClient::from_reqwest(reqwest.clone()));
    let client = with_middleware(reqwest, BearerMiddleware::new(source.clone()));

    let response = client.get(&afterpay.resource_url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let first = source.cached().unwrap();

    sandbox.revoke_all_tokens();
    // No body: the request can be cloned, so the 401 is not what the caller sees.
    let response = client.get(&afterpay.resource_url).send().await.unwrap();
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "replayed with a new token"
    );
    assert_eq!(
        sandbox.tokens_issued(Provider::Afterpay, &afterpay.client_id),
        2
    );
    assert_ne!(
        source.cached().unwrap().authorization(),
        first.authorization()
    );
}

#[tokio::test]
async fn a_request_with_a_streaming_body_is_not_replayed_but_its_token_is_dropped() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let afterpay = sandbox.afterpay();
    let reqwest = reqwest::Client::new();
    let source = afterpay_source(&afterpay, HttpClient::from_reqwest(reqwest.clone()));
    let client = with_middleware(reqwest, BearerMiddleware::new(source.clone()));
    let first = source.token().await.unwrap();

    sandbox.revoke_all_tokens();
    // A streaming body: reqwest::Request::try_clone cannot copy it.
    let stream = futures::stream::iter([Ok::<_, Infallible>(http_body::Frame::data(
        Bytes::from_static(b"once"),
    ))]);
    let response = client
        .get(&afterpay.resource_url)
        .body(reqwest::Body::wrap(StreamBody::new(stream)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "not replayed");
    assert!(source.cached().is_none(), "the refused token was dropped");
    assert_eq!(
        sandbox.tokens_issued(Provider::Afterpay, &afterpay.client_id),
        1
    );

    // The next request gets a new token.
    let response = client.get(&afterpay.resource_url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_ne!(
        source.cached().unwrap().authorization(),
        first.authorization()
    );
}

#[tokio::test]
async fn hosts_off_the_allow_list_get_no_token_and_cause_no_token_request() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let afterpay = sandbox.afterpay();
    let reqwest = reqwest::Client::new();
    let source = afterpay_source(&afterpay, HttpClient::from_reqwest(reqwest.clone()));
    let middleware = BearerMiddleware::new(source)
        .allow_hosts(["api.example.com"])
        .unwrap();
    let client = with_middleware(reqwest, middleware);

    let response = client.get(&afterpay.resource_url).send().await.unwrap();
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "sent without a token"
    );
    assert_eq!(
        sandbox.tokens_issued(Provider::Afterpay, &afterpay.client_id),
        0
    );
    assert!(
        BearerMiddleware::new(clientcreds::StaticToken::new(
            clientcreds::Token::new("t", "Bearer", std::time::Duration::from_secs(60), None)
                .unwrap()
        ))
        .allow_hosts(Vec::<String>::new())
        .is_err()
    );
}

#[tokio::test]
async fn a_token_error_is_a_middleware_error_without_the_secret() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let afterpay = sandbox.afterpay();
    let reqwest = reqwest::Client::new();
    let credentials = ClientCredentials::builder(
        &afterpay.token_url,
        afterpay.client_id.clone(),
        SecretString::from("not-the-s3cret"),
    )
    .build()
    .unwrap();
    let source =
        ClientCredentialsSource::new(credentials, HttpClient::from_reqwest(reqwest.clone()));
    let client = with_middleware(reqwest, BearerMiddleware::new(source));

    let err = client.get(&afterpay.resource_url).send().await.unwrap_err();
    assert!(
        matches!(err, reqwest_middleware::Error::Middleware(_)),
        "{err:?}"
    );
    let shown = format!("{err} {err:?}");
    assert!(shown.contains("invalid_client"), "{shown}");
    assert!(!shown.contains("not-the-s3cret"), "{shown}");
}

#[tokio::test]
async fn tower_reqwest_adapters_work_under_the_layer_and_as_the_token_transport() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let afterpay = sandbox.afterpay();
    let reqwest = reqwest::Client::new();
    // The tower-reqwest crate's adapter as the transport of token requests …
    let http = HttpClient::from_service(tower_reqwest::HttpClientService::new(reqwest.clone()));
    let source = afterpay_source(&afterpay, http);
    // … and under the layer.
    let client = ServiceBuilder::new()
        .layer(BearerLayer::new(source))
        .layer(tower_reqwest::HttpClientLayer)
        .service(reqwest);
    for _ in 0..2 {
        let request = http::Request::get(&afterpay.resource_url)
            .body(reqwest::Body::default())
            .unwrap();
        let response = client.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_eq!(
        sandbox.tokens_issued(Provider::Afterpay, &afterpay.client_id),
        1
    );
}
