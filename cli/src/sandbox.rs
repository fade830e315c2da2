//! `clientcreds sandbox`: serve the provider emulator until Ctrl-C.

use std::io::Write;

use anyhow::Context;
use clientcreds_sandbox::{Sandbox, SandboxConfig, SandboxCredentials};

/// The port `clientcreds sandbox` listens on unless told otherwise.
pub(crate) const DEFAULT_PORT: u16 = 8787;

/// Options of `clientcreds sandbox`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The loopback port to listen on (0 picks a free one).
    #[arg(long, default_value_t = DEFAULT_PORT)]
    port: u16,
    /// Print the endpoints and credentials as one JSON line first (for scripts), instead of the
    /// text for a person.
    #[arg(long)]
    json: bool,
}

/// Start the sandbox, print where it is, serve until Ctrl-C (or SIGTERM).
pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let sandbox = Sandbox::start(SandboxConfig::default().port(args.port))
        .await
        .with_context(|| {
            format!(
                "cannot listen on 127.0.0.1:{}; pick another port with --port (0 picks a free one)",
                args.port
            )
        })?;
    let credentials = sandbox.credentials();
    let text = if args.json {
        format!("{}\n", serde_json::to_string(&credentials)?)
    } else {
        human(sandbox.base_url(), &credentials)
    };
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    drop(stdout);
    shutdown_signal().await?;
    drop(sandbox);
    Ok(())
}

async fn shutdown_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("cannot listen for SIGTERM")?;
        tokio::select! {
            ctrl_c = tokio::signal::ctrl_c() => ctrl_c.context("cannot listen for Ctrl-C")?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c()
        .await
        .context("cannot listen for Ctrl-C")?;
    Ok(())
}

/// The text for a person: every provider's URLs, default test credentials and a curl example.
fn human(base_url: &str, c: &SandboxCredentials) -> String {
    let az = &c.azupay;
    let mut out = format!(
        "clientcreds sandbox on {base_url} (Ctrl-C to stop). These are test credentials only.\n\n"
    );
    out += &format!(
        "Azupay\n  endpoint      {}\n  clientId      {}\n  API key       {}\n  token URL     {}\n  resource      {}\n  enable (once; the answer holds oauth2ClientId and oauth2ClientSecret):\n    curl -X POST '{}/client/{}/oauth2' -H 'Authorization: {}' -H 'Content-Type: application/json' -d '{{}}'\n  then a token:\n    curl -X POST '{}' --data-urlencode grant_type=client_credentials --data-urlencode client_id=<oauth2ClientId> --data-urlencode client_secret=<oauth2ClientSecret>\n\n",
        az.endpoint,
        az.client_id,
        az.api_key,
        az.token_url,
        az.resource_url,
        az.endpoint,
        az.client_id,
        az.api_key,
        az.token_url,
    );
    let block = |name: &str, p: &clientcreds_sandbox::ProviderEndpoints, curl: String| {
        format!(
            "{name}\n  token URL     {}\n  client id     {}\n  client secret {}\n  resource      {}\n    {curl}\n\n",
            p.token_url, p.client_id, p.client_secret, p.resource_url
        )
    };
    out += &block(
        "Autopay",
        &c.autopay,
        format!(
            "curl -X POST '{}' -H 'Content-Type: application/json' -d '{{\"client_id\":\"{}\",\"client_secret\":\"{}\",\"audience\":\"https://api.autopay.io\",\"grant_type\":\"client_credentials\"}}'",
            c.autopay.token_url, c.autopay.client_id, c.autopay.client_secret
        ),
    );
    out += &block(
        "PayU",
        &c.payu,
        format!(
            "curl -X POST '{}' --data-urlencode client_id={} --data-urlencode client_secret={} --data-urlencode grant_type=client_credentials --data-urlencode scope=read_payment_links",
            c.payu.token_url, c.payu.client_id, c.payu.client_secret
        ),
    );
    out += &block(
        "Pyng",
        &c.pyng,
        format!(
            "curl -X POST '{}' -u '{}:{}' -d 'grant_type=client_credentials&scope=billing:customers:read'",
            c.pyng.token_url, c.pyng.client_id, c.pyng.client_secret
        ),
    );
    out += &block(
        "Afterpay",
        &c.afterpay,
        format!(
            "curl -X POST '{}' -u '{}:{}' -H 'Accept: application/json' -d grant_type=client_credentials",
            c.afterpay.token_url, c.afterpay.client_id, c.afterpay.client_secret
        ),
    );
    out += &format!(
        "Call a resource with: curl '<resource>' -H 'Authorization: Bearer <access_token>'\nTest controls (JSON): {base_url}/_sandbox/credentials, /_sandbox/requests, /_sandbox/counts, …\n"
    );
    out
}
