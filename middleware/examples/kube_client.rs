//! A `kube::Client` whose requests carry the tokens of a `ClientCredentialsSource`: the
//! `BearerLayer` in the client's own tower stack, under kube's base-URI layer.
//!
//! A Kubernetes API server authenticates with its own tokens, but a kube client also talks to
//! aggregated APIs, gateways and proxies that accept an OAuth 2.0 client-credentials token. To
//! stay runnable offline, the "API server" here is the provider emulator
//! (`clientcreds-sandbox`): `kube::Client::send` calls its protected Autopay endpoint, which
//! accepts only a valid token. The first call fetches a token, the second reuses it; after the
//! sandbox revokes every token the third call is answered 401 once: the layer drops the token,
//! gets a new one and replays the request, so kube sees a 200. kube's request body is not
//! `Clone`, so `ReplayOnce` does not apply; the example's `ReplayKubeRequests` is the
//! `UnauthorizedPolicy` for it (`kube::client::Body::try_clone` copies a buffered body, and
//! a streaming one is not replayed).
//!
//! Run: `cargo run -p clientcreds --example kube_client` (also run by `cargo test`).

use std::process::ExitCode;

use clientcreds::bearer::{BearerLayer, UnauthorizedPolicy};
use clientcreds::source::ClientCredentialsSource;
use clientcreds::{ClientCredentials, HttpClient, Provider as Preset};
use clientcreds_sandbox::{Provider, Sandbox, SandboxConfig};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use kube::client::middleware::BaseUriLayer;
use secrecy::SecretString;
use tower::{BoxError, ServiceBuilder};

/// On a 401: drop the token, and replay the request once when its body can be copied.
#[derive(Clone, Debug)]
struct ReplayKubeRequests;

impl UnauthorizedPolicy<kube::client::Body> for ReplayKubeRequests {
    fn invalidates(&self) -> bool {
        true
    }

    fn clone_request(
        &self,
        request: &http::Request<kube::client::Body>,
    ) -> Option<http::Request<kube::client::Body>> {
        let mut copy = http::Request::new(request.body().try_clone()?);
        *copy.method_mut() = request.method().clone();
        *copy.uri_mut() = request.uri().clone();
        *copy.version_mut() = request.version();
        *copy.headers_mut() = request.headers().clone();
        *copy.extensions_mut() = request.extensions().clone();
        Some(copy)
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("kube_client example failed: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), BoxError> {
    let sandbox = Sandbox::start(SandboxConfig::default()).await?;
    let autopay = sandbox.autopay();
    let base: http::Uri = sandbox.base_url().parse()?;
    let path = autopay
        .resource_url
        .strip_prefix(sandbox.base_url())
        .ok_or("the resource URL is under the sandbox's base URL")?
        .to_owned();

    // Autopay's preset (JSON body, its audience), pointed at the sandbox.
    let credentials: ClientCredentials = Preset::autopay(
        autopay.client_id.clone(),
        SecretString::from(autopay.client_secret.clone()),
    )
    .token_url(&autopay.token_url)
    .build()?;
    let source = ClientCredentialsSource::new(credentials, HttpClient::new());

    // kube's own stack: the base URI first, then the bearer token, then the connection.
    let service = ServiceBuilder::new()
        .layer(BaseUriLayer::new(base))
        .layer(BearerLayer::new(source).on_unauthorized(ReplayKubeRequests))
        .service(HyperClient::builder(TokioExecutor::new()).build_http::<kube::client::Body>());
    let client = kube::Client::new(service, "default");

    for round in 1..=4 {
        if round == 3 {
            sandbox.revoke_all_tokens();
        }
        let request = http::Request::get(path.as_str()).body(kube::client::Body::empty())?;
        let response = client.send(request).await?;
        let status = response.status();
        let body = response.into_body().collect_bytes().await?;
        println!(
            "kube call {round}: {status} {}",
            String::from_utf8_lossy(&body)
        );
        if status != 200 {
            return Err(format!("call {round}: expected 200, got {status}").into());
        }
        if round == 3 {
            println!("  (the tokens were revoked: the layer got a new one and replayed the call)");
        }
    }

    let issued = sandbox.tokens_issued(Provider::Autopay, &autopay.client_id);
    println!("tokens issued: {issued}");
    if issued != 2 {
        return Err(
            format!("expected 2 token requests (initial + after the 401), got {issued}").into(),
        );
    }
    Ok(())
}
