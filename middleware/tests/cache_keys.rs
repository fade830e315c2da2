//! One cache per cache key (scopes + audience + resource), against the provider emulator:
//! different keys of one client get their own token requests and tokens; handles for the same
//! key share one cache, so however many callers ask there is one token request.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use clientcreds::bearer::{Bearer, BearerLayer};
use clientcreds::source::{ClientCredentialsSource, TokenSource};
use clientcreds::{Env, HttpClient, Provider};
use clientcreds_sandbox::{self as sandbox, Fault, Sandbox, SandboxConfig};
use http::header::AUTHORIZATION;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use secrecy::SecretString;
use tower::{Service, ServiceBuilder, ServiceExt, service_fn};

fn payu_source(sb: &Sandbox, scope: &str) -> ClientCredentialsSource {
    let payu = sb.payu();
    let credentials = Provider::payu(
        Env::Test,
        &payu.client_id,
        SecretString::from(payu.client_secret.clone()),
    )
    .token_url(&payu.token_url)
    .scope(scope)
    .build()
    .unwrap();
    ClientCredentialsSource::new(credentials, HttpClient::new())
}

/// GET the protected endpoint through the layer; the `scope` the sandbox saw in the token.
async fn protected_scope(source: ClientCredentialsSource, url: &str) -> String {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut api = ServiceBuilder::new()
        .layer(BearerLayer::new(source))
        .service(client);
    let request = Request::get(url).body(Full::default()).unwrap();
    let response = api.ready().await.unwrap().call(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    json["scope"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn two_keys_make_two_token_requests_each_with_its_own_scopes() {
    let sb = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let payu = sb.payu();
    let read = payu_source(&sb, "read_payment_links");
    let write = read
        .for_scopes(["create_payment_links", "update_payment_links"])
        .unwrap();

    let read_token = read.token().await.unwrap();
    let write_token = write.token().await.unwrap();
    assert_eq!(read_token.scope(), Some("read_payment_links"));
    assert_eq!(
        write_token.scope(),
        Some("create_payment_links update_payment_links")
    );
    assert_ne!(read_token.authorization(), write_token.authorization());

    // On the wire: two token requests, one per key, each with its scope parameter and the same
    // client authentication.
    let requests = sb.requests_for(sandbox::Provider::Payu);
    assert_eq!(requests.len(), 2, "{requests:?}");
    let scopes: Vec<String> = requests
        .iter()
        .map(|r| r.form_param("scope").unwrap())
        .collect();
    assert_eq!(
        scopes,
        [
            "read_payment_links",
            "create_payment_links update_payment_links"
        ]
    );
    for request in &requests {
        assert_eq!(request.path, "/payu/oauth/token");
        assert_eq!(
            request.form_param("client_id").as_deref(),
            Some(sandbox::PAYU_CLIENT_ID)
        );
    }

    // Each token works, with its own scope, and both stay cached: no more token requests.
    assert_eq!(
        protected_scope(read.clone(), &payu.resource_url).await,
        "read_payment_links"
    );
    assert_eq!(
        protected_scope(write.clone(), &payu.resource_url).await,
        "create_payment_links update_payment_links"
    );
    assert_eq!(
        read.token().await.unwrap().authorization(),
        read_token.authorization()
    );
    assert_eq!(
        write.token().await.unwrap().authorization(),
        write_token.authorization()
    );
    assert_eq!(
        sb.tokens_issued(sandbox::Provider::Payu, &payu.client_id),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_key_from_two_derived_handles_makes_one_token_request() {
    let sb = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let pyng = sb.pyng();
    let credentials = Provider::pyng(
        "https://sample.pyng.com.au",
        &pyng.client_id,
        SecretString::from(pyng.client_secret.clone()),
    )
    .token_url(&pyng.token_url)
    .scope("billing:customers:read")
    .build()
    .unwrap();
    let root = ClientCredentialsSource::new(credentials, HttpClient::new());
    // The same key, spelt two ways, derived independently.
    let a = root
        .for_scopes(["billing:batches:read billing:batches:submit"])
        .unwrap();
    let b = root
        .for_scopes([
            "billing:batches:submit",
            "billing:batches:read",
            "billing:batches:read",
        ])
        .unwrap();
    assert_eq!(a.cache_key(), b.cache_key());

    // Hold the token request for a moment so that every caller asks while it is in flight.
    sb.fail_next(
        sandbox::Provider::Pyng,
        1,
        Fault::delay(Duration::from_millis(300)),
    );
    let inner = service_fn(|req: Request<Full<Bytes>>| {
        let authorization = req.headers().get(AUTHORIZATION).cloned();
        async move {
            assert!(authorization.is_some(), "a request without a token");
            Ok::<_, Infallible>(Response::new(Full::<Bytes>::default()))
        }
    });
    let via_a = Bearer::new(inner, a.clone());
    let via_b = Bearer::new(inner, b.clone());
    let tasks: Vec<_> = (0..1000)
        .map(|i| {
            let request = Request::get("http://api.test/")
                .body(Full::default())
                .unwrap();
            if i % 2 == 0 {
                tokio::spawn(via_a.clone().oneshot(request))
            } else {
                tokio::spawn(via_b.clone().oneshot(request))
            }
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap().status(), StatusCode::OK);
    }

    let requests = sb.requests_for(sandbox::Provider::Pyng);
    assert_eq!(requests.len(), 1, "exactly one token request: {requests:?}");
    assert_eq!(
        requests[0].form_param("scope").as_deref(),
        Some("billing:batches:read billing:batches:submit")
    );
    assert_eq!(
        sb.tokens_issued(sandbox::Provider::Pyng, &pyng.client_id),
        1
    );
    let token = a.cached().unwrap();
    assert_eq!(
        b.cached().unwrap().authorization(),
        token.authorization(),
        "both handles serve the one token"
    );
    assert_eq!(
        token.scope(),
        Some("billing:batches:read billing:batches:submit")
    );
    // The root's own key was never asked for.
    assert!(root.cached().is_none());
}
