//! The `clientcreds-operator` binary.
use clap::{Parser, Subcommand};

/// Kubernetes operator for OAuth 2.0 client-credentials tokens.
#[derive(Parser, Debug)]
#[command(name = "clientcreds-operator", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print the OAuthClient CustomResourceDefinition as YAML.
    Crd,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd => {
            print!("{}", clientcreds_operator::crd::crd_yaml()?);
        }
    }
    Ok(())
}
