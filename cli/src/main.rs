//! `clientcreds`: fetch a token, run the provider sandbox, run the demo.
//!
//! # Usage
//!
//! ```text
//! clientcreds demo        # embedded sandbox; each of the five providers through the layer
//! clientcreds sandbox     # serve the provider emulator on 127.0.0.1:8787 until Ctrl-C
//! clientcreds token --provider payu --client-id my-client \
//!     --client-secret-env PAYU_SECRET --scope read_payment_links       # one token as JSON
//! clientcreds token --token-url https://auth.example.com/oauth2/token --client-id app \
//!     --auth post --client-secret-file /run/secrets/app --output header
//! clientcreds token --token-url https://auth.example.com/oauth2/token --client-id app \
//!     --private-key-file app-key.pem --key-id 2026-01                  # private_key_jwt
//! clientcreds token --token-url https://mtls.example.com/oauth2/token --client-id app \
//!     --client-cert-file app.pem --client-key-file app-key.pem         # tls_client_auth
//! ```
//!
//! `token` reads the client secret from `--client-secret-env VAR`, `--client-secret-file PATH`
//! or standard input, never from an argument; keys and certificates only from files
//! (`--private-key-file`, `--client-cert-file`, `--client-key-file`, `--ca-file`). It prints
//! `{"access_token","token_type","expires_in","expires_at","scope"}` (`--output json`, the
//! default), `Authorization: Bearer …` (`--output header`) or the bare token (`--output token`).
//! On failure it exits non-zero with one line on stderr: the HTTP status and the OAuth error
//! code (and description) when the server sent one, never the secret.
//!
//! `main` only parses the command line and dispatches; each subcommand lives in its own module
//! with an `Args` struct (clap derive) and an `async fn run(Args) -> anyhow::Result<()>`.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod demo;
mod sandbox;
mod token;

/// OAuth 2.0 client-credentials tokens for Rust services and Kubernetes.
#[derive(Debug, Parser)]
#[command(name = "clientcreds", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Fetch one access token with the client-credentials grant and print it.
    Token(Box<token::Args>),
    /// Start the embedded sandbox and call each provider's protected endpoint through the layer.
    Demo(demo::Args),
    /// Serve a local emulator of the Azupay, Autopay, PayU, Pyng and Afterpay token endpoints.
    Sandbox(sandbox::Args),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Token(args) => token::run(*args).await,
        Command::Demo(args) => demo::run(args).await,
        Command::Sandbox(args) => sandbox::run(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("clientcreds: {error:#}");
            ExitCode::FAILURE
        }
    }
}
