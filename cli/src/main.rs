//! `clientcreds`: fetch a token, run the provider sandbox, run the demo.
//!
//! `main` only parses the command line and dispatches; each subcommand lives in its own module
//! with an `Args` struct (clap derive) and an `async fn run(Args) -> anyhow::Result<()>`.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod sandbox;

/// OAuth 2.0 client-credentials tokens for Rust services and Kubernetes.
#[derive(Debug, Parser)]
#[command(name = "clientcreds", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve a local emulator of the Azupay, Autopay, PayU, Pyng and Afterpay token endpoints.
    Sandbox(sandbox::Args),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
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
