//! A hyper-util client that calls a protected endpoint through the `Bearer` layer.
//!
//! It starts the provider emulator (`clientcreds-sandbox`) on a loopback port, then calls
//! Afterpay's protected endpoint three times through one client: the first call fetches a token,
//! the second reuses it, and after the sandbox revokes every token the third call gets a 401,
//! invalidates the token, fetches a new one and replays the request — all inside the layer.
//!
//! Run: `cargo run -p clientcreds --example hyper_client` (also run by `cargo test`).

use std::process::ExitCode;

use bytes::Bytes;
use clientcreds::bearer::{BearerLayer, ReplayOnce};
use clientcreds::source::ClientCredentialsSource;
use clientcreds::{ClientAuth, ClientCredentials, HttpClient};
use clientcreds_sandbox::{Provider, Sandbox, SandboxConfig};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use secrecy::SecretString;
use tower::{Service, ServiceBuilder, ServiceExt};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("hyper_client example failed: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), BoxError> {
    let sandbox = Sandbox::start(SandboxConfig::default()).await?;
    let afterpay = sandbox.afterpay();
    let api_host = afterpay
        .resource_url
        .parse::<http::Uri>()?
        .host()
        .unwrap_or_default()
        .to_owned();

    // The token source: Afterpay wants HTTP Basic client authentication.
    let credentials = ClientCredentials::builder(
        &afterpay.token_url,
        afterpay.client_id.clone(),
        SecretString::from(afterpay.client_secret.clone()),
    )
    .auth(ClientAuth::Basic)
    .build()?;
    let source = ClientCredentialsSource::new(credentials, HttpClient::new());

    // The client: a plain hyper-util client with the layer on top.
    let hyper_client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut api = ServiceBuilder::new()
        .layer(
            BearerLayer::new(source)
                .allow_hosts([api_host.as_str()])?
                .on_unauthorized(ReplayOnce),
        )
        .service(hyper_client);

    for round in 1..=3 {
        if round == 3 {
            // The provider forgets every token: the next call is answered 401 once.
            sandbox.revoke_all_tokens();
        }
        let request = Request::get(&afterpay.resource_url).body(Full::default())?;
        let response = api.ready().await?.call(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        println!("call {round}: {status} {}", String::from_utf8_lossy(&body));
        if status != StatusCode::OK {
            return Err(format!("call {round}: expected 200 OK, got {status}").into());
        }
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
