//! Running the operator: metrics/health server, optional leader election, the controller.
//!
//! The e2e tests call [`run`] in-process with a client that holds only the operator's RBAC.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clientcreds::HttpClient;
use kube::Client;
use kube::runtime::events::Reporter;
use kube_lease_manager::LeaseManagerBuilder;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::context::Context;
use crate::controller::run_controller;
use crate::egress::EgressPolicy;
use crate::server::{self, Health};
use crate::telemetry::Metrics;

/// Leader election on a `Lease`.
#[derive(Clone, Debug)]
pub struct LeaderElection {
    /// Name of the Lease.
    pub lease_name: String,
    /// Namespace of the Lease.
    pub lease_namespace: String,
    /// This replica's identity (e.g. the pod name).
    pub identity: String,
    /// Seconds a lease stays valid without renewal.
    pub duration_seconds: u64,
    /// Seconds before expiry at which the holder renews.
    pub grace_seconds: u64,
}

/// How to run the operator.
#[derive(Clone, Debug)]
pub struct Config {
    /// Watch only these namespaces (empty: all namespaces). With namespaces, the operator needs
    /// its RBAC only in them (the chart's `watchNamespaces` mode).
    pub namespaces: Vec<String>,
    /// Leader election; `None` runs the controller at once (one replica).
    pub leader_election: Option<LeaderElection>,
    /// Where to serve `/metrics`, `/healthz`, `/readyz` (`None`: not served).
    pub metrics_addr: Option<SocketAddr>,
    /// The event reporter's controller name.
    pub reporter: String,
    /// The event reporter's instance (pod name).
    pub instance: Option<String>,
    /// The HTTP client for token and Azupay requests. The default, `HttpClient::new()`, goes
    /// through the proxies of `HTTPS_PROXY`, `HTTP_PROXY` and `NO_PROXY` (and their lower-case
    /// forms) as read when the config is made; `tests/proxy_env.rs` proves it.
    pub http: HttpClient,
    /// Where secrets may be sent (Azupay calls, token requests). The default allows the
    /// providers' public hosts over https only; tests against a sandbox on `http://127.0.0.1`
    /// allow that host and plain http to loopback.
    pub egress: EgressPolicy,
    /// At most this many OAuthClients are reconciled at once (`0`: no limit). Bounds the
    /// operator's memory and its load on the API server and the providers when many
    /// OAuthClients need work at the same time, as after a restart.
    pub max_concurrent_reconciles: u16,
    /// The namespace the operator runs in (the pod's, `POD_NAMESPACE` from the chart's downward
    /// API): a one-time Azupay secret whose credentials Secret cannot be written is kept there
    /// in a recovery Secret until it is delivered ([`crate::azupay::recovery`]).
    pub operator_namespace: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            namespaces: Vec::new(),
            leader_election: None,
            metrics_addr: None,
            reporter: "clientcreds-operator".into(),
            instance: None,
            http: HttpClient::new(),
            egress: EgressPolicy::default(),
            max_concurrent_reconciles: DEFAULT_MAX_CONCURRENT_RECONCILES,
            operator_namespace: DEFAULT_OPERATOR_NAMESPACE.into(),
        }
    }
}

/// The default of [`Config::operator_namespace`] (the namespace of `deploy/rbac.yaml`), for runs
/// outside a pod.
pub const DEFAULT_OPERATOR_NAMESPACE: &str = "clientcreds-system";

/// The default of [`Config::max_concurrent_reconciles`]: at 10,000 OAuthClients, 64 keeps a
/// restart under 96 MiB (128 peaked at 90.7–98.4 MiB) and creation within 1.1× of the floor
/// (BENCHMARKS.md, 2026-12-05).
pub const DEFAULT_MAX_CONCURRENT_RECONCILES: u16 = 64;

/// Why the operator stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The health/metrics server could not bind.
    #[error("cannot serve metrics on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Leader election failed.
    #[error("leader election failed: {0}")]
    Lease(#[from] kube_lease_manager::LeaseManagerError),
}

/// Runs the operator until `shutdown` resolves. With leader election, the controller runs only
/// while this replica holds the Lease, and the Lease is released on shutdown.
pub async fn run(
    client: Client,
    config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    // the middleware's metrics (token requests by result) on the same /metrics
    if !crate::metrics_bridge::install() {
        warn!(
            "another `metrics` recorder is installed: the middleware's token-request metrics are not on /metrics"
        );
    }
    let metrics = Arc::new(Metrics::default());
    let ready = Arc::new(AtomicBool::new(false));
    let _server = match config.metrics_addr {
        Some(addr) => {
            let health = Health {
                metrics: metrics.clone(),
                ready: ready.clone(),
            };
            let (local, task) = server::serve(addr, health)
                .await
                .map_err(|source| RunError::Bind { addr, source })?;
            info!(%local, "serving /metrics, /healthz, /readyz");
            Some(AbortOnDrop(task))
        }
        None => None,
    };
    let reporter = Reporter {
        controller: config.reporter.clone(),
        instance: config.instance.clone(),
    };
    let ctx = Arc::new(Context::new(
        client.clone(),
        reporter,
        config.http.clone(),
        config.egress.clone(),
        metrics,
        config.operator_namespace.clone(),
    ));

    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        while !*rx.borrow_and_update() {
            if rx.changed().await.is_err() {
                break;
            }
        }
    };

    let Some(le) = config.leader_election else {
        ready.store(true, Ordering::Relaxed);
        run_controller(
            client,
            ctx,
            config.namespaces,
            config.max_concurrent_reconciles,
            stopped(stop_rx),
        )
        .await;
        return Ok(());
    };

    let manager = LeaseManagerBuilder::new(client.clone(), &le.lease_name)
        .with_namespace(&le.lease_namespace)
        .with_identity(&le.identity)
        .with_duration(le.duration_seconds)
        .with_grace(le.grace_seconds)
        .build()
        .await?;
    let (mut leader, lease_task) = manager.watch().await;
    ready.store(true, Ordering::Relaxed);
    let mut stop = stop_rx.clone();
    loop {
        // wait to lead
        while !*leader.borrow_and_update() {
            tokio::select! {
                r = leader.changed() => if r.is_err() { return finish(lease_task, leader).await },
                _ = stop.changed() => return finish(lease_task, leader).await,
            }
        }
        info!(identity = %le.identity, lease = %le.lease_name, "became leader; starting the controller");
        let mut lost = leader.clone();
        let stop_now = stopped(stop_rx.clone());
        let until = async move {
            let lost_leadership = async {
                while *lost.borrow_and_update() {
                    if lost.changed().await.is_err() {
                        break;
                    }
                }
            };
            tokio::select! {
                _ = lost_leadership => {},
                _ = stop_now => {},
            }
        };
        run_controller(
            client.clone(),
            ctx.clone(),
            config.namespaces.clone(),
            config.max_concurrent_reconciles,
            until,
        )
        .await;
        if *stop.borrow() {
            return finish(lease_task, leader).await;
        }
        info!(identity = %le.identity, "lost leadership; controller stopped");
    }
}

async fn finish(
    task: tokio::task::JoinHandle<
        Result<kube_lease_manager::LeaseManager, kube_lease_manager::LeaseManagerError>,
    >,
    leader: watch::Receiver<bool>,
) -> Result<(), RunError> {
    drop(leader); // closes the channel: the lease task releases the Lease and ends
    match task.await {
        Ok(Ok(_)) | Err(_) => Ok(()),
        Ok(Err(e)) => Err(RunError::Lease(e)),
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
