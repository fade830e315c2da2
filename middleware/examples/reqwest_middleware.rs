//! A reqwest client (through `reqwest-middleware`) that calls a protected endpoint with the
//! tokens of a `ClientCredentialsSource` — requested through the same reqwest client.
//!
//! It starts the provider emulator (`clientcreds-sandbox`) on a loopback port, then calls
//! Afterpay's protected endpoint three times: the first call fetches a token, the second reuses
//! it, and after the sandbox revokes every token the third call is answered 401 once; the
//! middleware drops the token, fetches a new one and replays the request (it has no body, so
//! `reqwest::Request::try_clone` can copy it). A `BearerLayer` over a reqwest tower adapter
//! shares the same cache.
//!
//! Needs the `reqwest` feature. Run:
//! `cargo run -p clientcreds --features reqwest --example reqwest_middleware`
//! (also run by `cargo test`).

use std::process::ExitCode;

use clientcreds::reqwest::{BearerMiddleware, ReqwestService};
use clientcreds::source::ClientCredentialsSource;
use clientcreds::{BearerLayer, ClientAuth, ClientCredentials, HttpClient};
use clientcreds_sandbox::{Provider, Sandbox, SandboxConfig};
use http::StatusCode;
use secrecy::SecretString;
use tower::ServiceExt;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("reqwest_middleware example failed: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), BoxError> {
    let sandbox = Sandbox::start(SandboxConfig::default()).await?;
    let afterpay = sandbox.afterpay();
    let api_host = reqwest::Url::parse(&afterpay.resource_url)?
        .host_str()
        .unwrap_or_default()
        .to_owned();

    // One reqwest client (configure its TLS, proxies and timeouts as usual) for everything.
    let reqwest = reqwest::Client::new();

    // The token source: Afterpay wants HTTP Basic client authentication. Its token requests
    // go through the same reqwest client.
    let credentials = ClientCredentials::builder(
        &afterpay.token_url,
        afterpay.client_id.clone(),
        SecretString::from(afterpay.client_secret.clone()),
    )
    .auth(ClientAuth::Basic)
    .build()?;
    let source =
        ClientCredentialsSource::new(credentials, HttpClient::from_reqwest(reqwest.clone()));

    // The API client: reqwest-middleware with the bearer middleware, for the API host only.
    let api = reqwest_middleware::ClientBuilder::new(reqwest.clone())
        .with(BearerMiddleware::new(source.clone()).allow_hosts([api_host.as_str()])?)
        .build();

    for round in 1..=3 {
        if round == 3 {
            // The provider forgets every token: the next call is answered 401 once.
            sandbox.revoke_all_tokens();
        }
        let response = api.get(&afterpay.resource_url).send().await?;
        let status = response.status();
        let body = response.text().await?;
        println!("reqwest-middleware call {round}: {status} {body}");
        if status != StatusCode::OK {
            return Err(format!("call {round}: expected 200 OK, got {status}").into());
        }
    }

    // The tower way: the BearerLayer over a reqwest adapter, on the same cache.
    let tower_api = tower::ServiceBuilder::new()
        .layer(BearerLayer::new(source))
        .service(ReqwestService::new(reqwest));
    let request = http::Request::get(&afterpay.resource_url).body(reqwest::Body::default())?;
    let response = tower_api.oneshot(request).await?;
    println!("tower call: {}", response.status());
    if response.status() != StatusCode::OK {
        return Err(format!("tower call: expected 200 OK, got {}", response.status()).into());
    }

    let issued = sandbox.tokens_issued(Provider::Afterpay, &afterpay.client_id);
    println!("tokens issued: {issued}");
    if issued != 2 {
        return Err(
            format!("expected 2 token requests (initial + after the 401), got {issued}").into(),
        );
    }
    Ok(())
}
