//! The `clientcreds-operator` binary: thin — parse flags, set up logging, run.
use std::net::SocketAddr;

use clap::{Args, Parser, Subcommand};
use clientcreds_operator::egress::EgressPolicy;
use clientcreds_operator::run::{Config, LeaderElection, run};

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
    /// Print the RBAC the operator needs: `deploy/rbac.yaml` (its Namespace, ServiceAccount,
    /// ClusterRole and leader-election Role), or with `--rules` the Helm chart's
    /// `files/rbac-rules.yaml`.
    Rbac(RbacArgs),
    /// Run the operator (in-cluster config or KUBECONFIG).
    Run(RunArgs),
}

#[derive(Args, Debug)]
struct RbacArgs {
    /// Print only the rule lists the Helm chart renders.
    #[arg(long)]
    rules: bool,
    /// The operator's namespace.
    #[arg(long, default_value = "clientcreds-system")]
    namespace: String,
    /// The operator's ServiceAccount and role names.
    #[arg(long, default_value = "clientcreds-operator")]
    name: String,
    /// The namespaced variant: Roles only in these namespaces (comma-separated) instead of the
    /// ClusterRole; run the operator with the same `--watch-namespaces`.
    #[arg(long, value_delimiter = ',', value_name = "NAMESPACE,...")]
    watch_namespaces: Vec<String>,
}

#[derive(Args, Debug)]
struct RunArgs {
    /// Watch only these namespaces, comma-separated (default: all namespaces). The operator then
    /// needs its RBAC only there.
    #[arg(
        long,
        alias = "namespace",
        env = "WATCH_NAMESPACES",
        value_delimiter = ',',
        value_name = "NAMESPACE,..."
    )]
    watch_namespaces: Vec<String>,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "METRICS_ADDR", default_value = "0.0.0.0:8080")]
    metrics_addr: SocketAddr,
    /// Elect a leader on a Lease (needed with more than one replica).
    #[arg(long, env = "LEADER_ELECTION")]
    leader_election: bool,
    /// Name of the Lease.
    #[arg(long, env = "LEASE_NAME", default_value = "clientcreds-operator")]
    lease_name: String,
    /// The namespace the operator runs in (the chart sets it from the pod's): a one-time Azupay
    /// secret whose credentials Secret cannot be written is kept there in a recovery Secret.
    #[arg(long, env = "POD_NAMESPACE", default_value = clientcreds_operator::run::DEFAULT_OPERATOR_NAMESPACE)]
    operator_namespace: String,
    /// Namespace of the Lease (default: the operator's namespace).
    #[arg(long)]
    lease_namespace: Option<String>,
    /// This replica's identity (usually the pod name).
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// Reconcile at most this many OAuthClients at once (0: no limit).
    #[arg(long, env = "MAX_CONCURRENT_RECONCILES", default_value_t = clientcreds_operator::run::DEFAULT_MAX_CONCURRENT_RECONCILES)]
    max_concurrent_reconciles: u16,
    /// Log as JSON lines.
    #[arg(long, env = "LOG_JSON")]
    log_json: bool,
    /// The hosts the operator may send secrets to (Azupay enable/details calls, token requests,
    /// the token URL Azupay's details announce), comma-separated, `host` or `host:port`.
    /// `@presets` stands for the providers' documented public hosts. Any other host is refused
    /// with the reason EgressDenied and nothing is sent.
    #[arg(
        long,
        env = "EGRESS_ALLOW_HOSTS",
        value_delimiter = ',',
        value_name = "HOST[:PORT],...",
        default_value = clientcreds_operator::egress::PRESET_HOSTS
    )]
    egress_allow_hosts: Vec<String>,
    /// Also allow plain http:// to loopback hosts (127.0.0.0/8, ::1, localhost) on the allow-list:
    /// for local tests against a sandbox only. Otherwise only https:// is used.
    #[arg(long, env = "EGRESS_ALLOW_HTTP_LOOPBACK")]
    egress_allow_http_loopback: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd => print!("{}", clientcreds_operator::crd::crd_yaml()?),
        Command::Rbac(args) if args.rules => print!("{}", clientcreds_operator::rbac::rules_yaml()),
        Command::Rbac(args) => print!(
            "{}",
            clientcreds_operator::rbac::manifests_yaml_in(
                &args.namespace,
                &args.name,
                &args.watch_namespaces
            )
        ),
        Command::Run(args) => {
            clientcreds_operator::telemetry::init_tracing(args.log_json);
            let egress =
                EgressPolicy::new(&args.egress_allow_hosts, args.egress_allow_http_loopback)?;
            let client = kube::Client::try_default().await?;
            let identity = args
                .identity
                .clone()
                .unwrap_or_else(|| format!("clientcreds-operator-{}", std::process::id()));
            let config = Config {
                namespaces: args
                    .watch_namespaces
                    .into_iter()
                    .map(|ns| ns.trim().to_owned())
                    .filter(|ns| !ns.is_empty())
                    .collect(),
                leader_election: args.leader_election.then(|| LeaderElection {
                    lease_name: args.lease_name,
                    lease_namespace: args
                        .lease_namespace
                        .unwrap_or_else(|| args.operator_namespace.clone()),
                    identity: identity.clone(),
                    duration_seconds: 15,
                    grace_seconds: 5,
                }),
                metrics_addr: Some(args.metrics_addr),
                max_concurrent_reconciles: args.max_concurrent_reconciles,
                instance: Some(identity),
                egress,
                operator_namespace: args.operator_namespace,
                ..Config::default()
            };
            let shutdown = async {
                #[cfg(unix)]
                {
                    use tokio::signal::unix::{SignalKind, signal};
                    match signal(SignalKind::terminate()) {
                        Ok(mut term) => {
                            tokio::select! {
                                _ = term.recv() => {},
                                _ = tokio::signal::ctrl_c() => {},
                            }
                        }
                        Err(_) => {
                            let _ = tokio::signal::ctrl_c().await;
                        }
                    }
                }
                #[cfg(not(unix))]
                {
                    let _ = tokio::signal::ctrl_c().await;
                }
            };
            run(client, config, shutdown).await?;
        }
    }
    Ok(())
}
