//! The shared refresh policy through the layer, against the provider emulator in real time: a
//! token endpoint that is down until after the token has expired is asked again at most a few
//! seconds apart, so the layer has a valid token again within seconds of the provider's return.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::convert::Infallible;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clientcreds::bearer::Bearer;
use clientcreds::source::ClientCredentialsSource;
use clientcreds::{ClientAuth, ClientCredentials, HttpClient};
use clientcreds_sandbox::http::StatusCode as SandboxStatus;
use clientcreds_sandbox::{Fault, Provider, Sandbox, SandboxConfig};
use http::header::AUTHORIZATION;
use http::{Request, Response};
use http_body_util::Full;
use secrecy::SecretString;
use tower::{ServiceExt, service_fn};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_an_outage_past_expiry_the_layer_has_a_token_within_seconds() {
    let lifetime = Duration::from_secs(4);
    let config = SandboxConfig::default().token_lifetime(Provider::Afterpay, lifetime);
    let sandbox = Sandbox::start(config).await.unwrap();
    let afterpay = sandbox.afterpay();
    let credentials = ClientCredentials::builder(
        &afterpay.token_url,
        afterpay.client_id.clone(),
        SecretString::from(afterpay.client_secret.clone()),
    )
    .auth(ClientAuth::Basic)
    .build()
    .unwrap();
    let source = ClientCredentialsSource::new(credentials, HttpClient::new());
    let echo = service_fn(|request: Request<Full<Bytes>>| async move {
        let value = request.headers()[AUTHORIZATION].clone();
        Ok::<_, Infallible>(Response::new(value))
    });
    let layer = Bearer::new(echo, source);
    let send = || {
        let layer = layer.clone();
        async move {
            let request = Request::get("http://api.test/")
                .body(Full::default())
                .unwrap();
            layer.oneshot(request).await.map(Response::into_body)
        }
    };
    let token_requests = || {
        sandbox
            .requests_for(Provider::Afterpay)
            .iter()
            .filter(|r| afterpay.token_url.ends_with(&r.path))
            .count()
    };

    let first = send().await.unwrap();
    let issued = Instant::now();
    sandbox.fail_next(
        Provider::Afterpay,
        1000,
        Fault::json(
            SandboxStatus::SERVICE_UNAVAILABLE,
            r#"{"error":"temporarily_unavailable"}"#,
        ),
    );
    // A caller every 100 ms until 8 s after the token expired.
    let mut failures = 0;
    while issued.elapsed() < lifetime + Duration::from_secs(8) {
        if send().await.is_err() {
            failures += 1;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(failures > 0, "the token expired during the outage");
    let during = token_requests() - 1;
    // 12 s of outage from the refresh point (2 s): 1 s, 2 s, then at most 5 s apart; at least
    // 1 s apart whatever the callers do.
    assert!(
        (2..=10).contains(&during),
        "{during} token requests during the outage"
    );

    sandbox.clear_faults();
    let back = Instant::now();
    let renewed = loop {
        if let Ok(value) = send().await {
            break value;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let took = back.elapsed();
    eprintln!(
        "LAYER-RECOVERY: a token {took:?} after the provider came back ({during} requests during the outage)"
    );
    assert!(
        took <= Duration::from_secs(6),
        "a token only {took:?} after the provider came back"
    );
    assert_ne!(renewed, first);
}
