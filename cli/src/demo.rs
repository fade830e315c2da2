//! `clientcreds demo`: the whole product on an embedded default, with nothing to set up.
//!
//! Starts the provider sandbox on a free loopback port and, for each of the five providers,
//! builds the middleware preset, puts [`BearerLayer`] over a hyper-util client, calls the
//! provider's protected endpoint twice through it and prints one line: the HTTP status, the
//! token type, expiry and scope, and how many token requests the sandbox saw (1 for the two
//! calls: the second call is served from the cache). The token itself is never printed.

use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use clientcreds::bearer::BearerLayer;
use clientcreds::source::ClientCredentialsSource;
use clientcreds::{AzupayConnectionDetails, ClientCredentials, HttpClient, Provider};
use clientcreds_sandbox::{Sandbox, SandboxConfig};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use secrecy::SecretString;
use tower::{Service, ServiceBuilder, ServiceExt};

/// How long one provider's calls may take in all.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(30);

/// Options of `clientcreds demo` (none yet: everything is embedded).
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

/// What one provider's run found.
struct Outcome {
    status: StatusCode,
    token_type: String,
    expires_at: String,
    expires_in: u64,
    scope: String,
    token_requests: u64,
}

/// Run the demo against an embedded sandbox; fails when any provider fails.
pub(crate) async fn run(_args: Args) -> anyhow::Result<()> {
    let sandbox = Sandbox::start(SandboxConfig::default())
        .await
        .context("cannot start the embedded sandbox on a loopback port")?;
    println!(
        "clientcreds demo: sandbox on {}; each provider: token through the Bearer layer, two calls to its protected endpoint",
        sandbox.base_url()
    );
    let mut failed = Vec::new();
    for provider in Provider::ALL {
        let outcome = tokio::time::timeout(PROVIDER_TIMEOUT, run_provider(&sandbox, provider))
            .await
            .unwrap_or_else(|_| Err(anyhow::anyhow!("no answer within {PROVIDER_TIMEOUT:?}")));
        match outcome {
            Ok(o) if o.status == StatusCode::OK && o.token_requests == 1 => println!(
                "{:<9} OK    status: {}  token type: {}  expires: {} (in {} s)  scope: {}  token requests: {}",
                provider.as_str(),
                o.status,
                o.token_type,
                o.expires_at,
                o.expires_in,
                o.scope,
                o.token_requests
            ),
            Ok(o) => {
                println!(
                    "{:<9} FAIL  status: {}  token requests: {} (expected 200 OK and 1 token request for 2 calls)",
                    provider.as_str(),
                    o.status,
                    o.token_requests
                );
                failed.push(provider.as_str());
            }
            Err(error) => {
                println!("{:<9} FAIL  {error:#}", provider.as_str());
                failed.push(provider.as_str());
            }
        }
    }
    if failed.is_empty() {
        println!("all 5 providers OK");
        Ok(())
    } else {
        anyhow::bail!("demo failed for {}", failed.join(", "))
    }
}

/// The preset, the protected endpoint and the sandbox's client id for one provider.
async fn credentials(
    sandbox: &Sandbox,
    http: &HttpClient,
    provider: Provider,
) -> anyhow::Result<(ClientCredentials, String)> {
    let secret = |s: &str| SecretString::from(s.to_owned());
    let built = match provider {
        Provider::Azupay => {
            let azupay = sandbox.azupay();
            let mut details = enable_azupay(http, &azupay).await?;
            let client_secret = details
                .take_client_secret()
                .context("Azupay's enable call returned no oauth2ClientSecret")?;
            (
                Provider::azupay(&details, client_secret)
                    .scope("RestAPI/GET:balance")
                    .build()?,
                azupay.resource_url,
            )
        }
        Provider::Autopay => {
            let p = sandbox.autopay();
            (
                Provider::autopay(p.client_id.clone(), secret(&p.client_secret))
                    .token_url(&p.token_url)
                    .build()?,
                p.resource_url,
            )
        }
        Provider::PayU => {
            let p = sandbox.payu();
            (
                Provider::payu(
                    clientcreds::Env::Test,
                    p.client_id.clone(),
                    secret(&p.client_secret),
                )
                .token_url(&p.token_url)
                .scope("read_payment_links")
                .build()?,
                p.resource_url,
            )
        }
        Provider::Pyng => {
            let p = sandbox.pyng();
            let base = p
                .token_url
                .strip_suffix("/billing/oauth2/token")
                .context("unexpected Pyng token URL in the sandbox")?;
            (
                Provider::pyng(base, p.client_id.clone(), secret(&p.client_secret))
                    .scope("billing:customers:read")
                    .build()?,
                p.resource_url,
            )
        }
        Provider::Afterpay => {
            let p = sandbox.afterpay();
            let base = p
                .token_url
                .strip_suffix("/oauth2/token")
                .context("unexpected Afterpay token URL in the sandbox")?;
            (
                Provider::afterpay(base, p.client_id.clone(), secret(&p.client_secret)).build()?,
                p.resource_url,
            )
        }
        other => anyhow::bail!("the demo does not know provider {other}"),
    };
    Ok(built)
}

/// Azupay's "enable OAuth 2.0" call with the API key: the one answer that holds the secret.
async fn enable_azupay(
    http: &HttpClient,
    azupay: &clientcreds_sandbox::AzupayEndpoints,
) -> anyhow::Result<AzupayConnectionDetails> {
    let url = format!("{}/client/{}/oauth2", azupay.endpoint, azupay.client_id);
    let mut api_key = http::HeaderValue::try_from(azupay.api_key.as_str())
        .context("the sandbox's Azupay API key is not a valid header value")?;
    api_key.set_sensitive(true);
    let request = Request::builder()
        .method(Method::POST)
        .uri(&url)
        .header(http::header::AUTHORIZATION, api_key)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from_static(b"{}")))?;
    let response = http.send(request).await?;
    if response.status() != StatusCode::OK && response.status() != StatusCode::CREATED {
        anyhow::bail!(
            "Azupay enable call {url} answered HTTP {}",
            response.status()
        );
    }
    serde_json::from_slice(response.body())
        .context("Azupay's enable call answered with unexpected JSON")
}

/// One provider: preset, layer, two protected calls, what the sandbox counted.
async fn run_provider(sandbox: &Sandbox, provider: Provider) -> anyhow::Result<Outcome> {
    let http = HttpClient::new();
    let (credentials, resource_url) = credentials(sandbox, &http, provider).await?;
    let client_id = credentials.client_id().to_owned();
    let layer = BearerLayer::new(ClientCredentialsSource::new(credentials, http));
    let source = layer.source().clone();
    let hyper_client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut api = ServiceBuilder::new().layer(layer).service(hyper_client);

    let mut status = StatusCode::OK;
    for call in 1..=2 {
        let request = Request::get(&resource_url)
            .header(http::header::ACCEPT, "application/json")
            .body(Full::default())?;
        let response = api
            .ready()
            .await
            .map_err(|e| anyhow::anyhow!("call {call}: {e}"))?
            .call(request)
            .await
            .map_err(|e| anyhow::anyhow!("call {call}: {e}"))?;
        status = response.status();
        // Read the body so the connection can be reused; its content is not needed.
        response.into_body().collect().await?;
        if status != StatusCode::OK {
            break;
        }
    }
    let token = source
        .cached()
        .context("no valid token in the cache after the calls")?;
    let expires_at = jiff::Timestamp::try_from(token.expires_at())?;
    let expires_at = jiff::Timestamp::from_second(expires_at.as_second())?;
    let sandbox_provider = match provider {
        Provider::Azupay => clientcreds_sandbox::Provider::Azupay,
        Provider::Autopay => clientcreds_sandbox::Provider::Autopay,
        Provider::PayU => clientcreds_sandbox::Provider::Payu,
        Provider::Pyng => clientcreds_sandbox::Provider::Pyng,
        Provider::Afterpay => clientcreds_sandbox::Provider::Afterpay,
        other => anyhow::bail!("the sandbox does not emulate {other}"),
    };
    Ok(Outcome {
        status,
        token_type: token.token_type().to_owned(),
        expires_at: expires_at.to_string(),
        expires_in: token.lifetime().as_secs(),
        scope: token.scope().unwrap_or("-").to_owned(),
        token_requests: sandbox.tokens_issued(sandbox_provider, &client_id),
    })
}
