//! The operator's scale harness: the real `clientcreds-operator` binary, as its own process with
//! only its own RBAC, against a real control plane and the sandbox, with N OAuthClients.
//!
//! ```text
//! cargo build --release -p clientcreds-operator
//! cargo bench -p clientcreds-e2e --bench operator_scale -- --clients 1000
//! ```
//!
//! It measures, for N OAuthClients spread over Autopay, PayU, Pyng and Afterpay (one token
//! Secret each; Azupay's one-time enable allows one OAuthClient per business client, so it is
//! left out):
//! 1. **create**: time from the first create until all N are `Ready` with a token Secret, the
//!    token requests made (exactly N), the reconciles (at most 1.2 per OAuthClient: the
//!    operator's own writes must not come back as reconciles), the operator's CPU time and
//!    resident memory;
//! 2. **idle**: a quiet period: CPU time used and token requests made (none);
//! 3. **refresh all**: every OAuthClient gets the refresh-on-demand annotation; time until every
//!    token Secret holds a new token, and the token requests made (exactly N);
//! 4. **restart**: the operator is stopped and started again; time until the new process has
//!    reconciled all N (its reconcile counter on `/metrics`), token requests made (none: the
//!    stored tokens are still good), its memory.
//!
//! At the end, the operators' logs, the events and every status are checked for the client
//! secrets and the tokens.
//!
//! Under `cargo test` (no `--bench` argument) it runs the same steps with 8 OAuthClients as a
//! test of the steps' assertions; the figures of that run mean nothing. The operator binary is
//! the one next to this harness in the target directory (`target/release` for `cargo bench`,
//! `target/debug` under `cargo test --workspace --all-targets`), or `CLIENTCREDS_OPERATOR_BIN`.
#![allow(clippy::unwrap_used)]

#[path = "../tests/operator_support/mod.rs"]
mod operator_support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use clientcreds_operator::crd::OAuthClient;
use clientcreds_sandbox::{PAYU_SCOPES, PYNG_SCOPES, Provider, SandboxConfig};
use futures::{StreamExt, stream};
use k8s_openapi::api::core::v1::Secret;
use kube::api::ListParams;
use operator_support::{Env, OPERATOR_NS, OPERATOR_SA, data, setup};
use serde_json::json;
use tokio::process::{Child, Command};

/// The four providers the OAuthClients are spread over: name, sandbox provider.
const PROVIDERS: [(&str, Provider); 4] = [
    ("autopay", Provider::Autopay),
    ("payu", Provider::Payu),
    ("pyng", Provider::Pyng),
    ("afterpay", Provider::Afterpay),
];

/// The most reconciles one OAuthClient may take to be brought up (create → Ready).
const MAX_RECONCILES_PER_CLIENT: f64 = 1.2;

/// How long any one step may take before the harness gives up.
const STEP_LIMIT: Duration = Duration::from_secs(900);

struct Options {
    clients: usize,
    idle: Duration,
    bench: bool,
}

fn options() -> Options {
    let args: Vec<String> = std::env::args().collect();
    let bench = args.iter().any(|a| a == "--bench");
    let mut clients = if bench { 1000 } else { 8 };
    let mut idle = if bench { 30 } else { 3 };
    let mut it = args.iter().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| -> usize {
            let v = it
                .next()
                .unwrap_or_else(|| panic!("{name} needs a number, e.g. {name} 100"));
            v.parse()
                .unwrap_or_else(|_| panic!("{name} takes a whole number, not {v:?}"))
        };
        match arg.as_str() {
            "--clients" => clients = value("--clients"),
            "--idle-seconds" => idle = value("--idle-seconds") as u64,
            // cargo's and libtest's own flags
            _ => {}
        }
    }
    assert!(clients > 0, "--clients must be at least 1");
    Options {
        clients,
        idle: Duration::from_secs(idle),
        bench,
    }
}

/// The `clientcreds-operator` binary of the same build profile as this harness.
fn operator_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("CLIENTCREDS_OPERATOR_BIN") {
        return PathBuf::from(path);
    }
    // this harness is <target>/<profile>/deps/operator_scale-<hash>
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let bin = profile_dir.join("clientcreds-operator");
    assert!(
        bin.exists(),
        "{} does not exist: build it first with `cargo build --release -p clientcreds-operator` \
         (or set CLIENTCREDS_OPERATOR_BIN to the binary)",
        bin.display()
    );
    bin
}

/// The operator's CPU time and reconcile count at one moment, or used between two.
#[derive(Clone, Copy)]
struct Usage {
    cpu: Duration,
    reconciles: u64,
}

impl Usage {
    fn since(self, earlier: Usage) -> Usage {
        Usage {
            cpu: self.cpu.saturating_sub(earlier.cpu),
            reconciles: self.reconciles.saturating_sub(earlier.reconciles),
        }
    }
}

/// The operator as its own process.
struct OperatorProcess {
    child: Child,
    pid: u32,
    metrics: String,
    log: PathBuf,
}

impl OperatorProcess {
    async fn start(env: &Env, log: PathBuf) -> Self {
        let user = format!("system:serviceaccount:{OPERATOR_NS}:{OPERATOR_SA}");
        let ns_group = format!("system:serviceaccounts:{OPERATOR_NS}");
        let kubeconfig = env
            .cp
            .kubeconfig_for(&user, &["system:serviceaccounts", &ns_group])
            .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let child = Command::new(operator_binary())
            .args(["run", "--metrics-addr", &format!("127.0.0.1:{port}")])
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", "info")
            // the sandbox is on http://127.0.0.1
            .env("EGRESS_ALLOW_HOSTS", "127.0.0.1")
            .env("EGRESS_ALLOW_HTTP_LOOPBACK", "true")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let pid = child.id().unwrap();
        Self {
            child,
            pid,
            metrics: format!("http://127.0.0.1:{port}/metrics"),
            log,
        }
    }

    /// Graceful stop: SIGTERM, then wait.
    async fn stop(mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        match tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await {
            Ok(status) => assert!(
                status.unwrap().success(),
                "the operator did not exit cleanly on SIGTERM; see {}",
                self.log.display()
            ),
            Err(_) => panic!("the operator did not stop within 30 s of SIGTERM"),
        }
    }

    /// CPU time used so far (user + system).
    fn cpu(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).unwrap();
        // fields after the command name, which is in parentheses
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = rest.split(' ').collect();
        // utime and stime are fields 14 and 15 of the whole line: 12 and 13 here
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        Duration::from_millis(ticks * 10) // USER_HZ is 100 on Linux
    }

    async fn usage(&self) -> Usage {
        Usage {
            cpu: self.cpu(),
            reconciles: self.reconciles().await.unwrap(),
        }
    }

    /// (resident now, peak resident) in MiB.
    fn memory(&self) -> (f64, f64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap();
        let kib = |key: &str| -> f64 {
            status
                .lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .unwrap()
                .parse::<f64>()
                .unwrap()
        };
        (kib("VmRSS:") / 1024.0, kib("VmHWM:") / 1024.0)
    }

    /// `clientcreds_operator_reconcile_duration_seconds_count` on its `/metrics` (0 before the
    /// first reconcile), or why it could not be read.
    async fn reconciles(&self) -> Result<u64, String> {
        // one expiry series per token Secret: far more than a token response's size limit
        let http = clientcreds::HttpClient::builder()
            .max_response_bytes(64 << 20)
            .build()
            .map_err(|e| e.to_string())?;
        let request = http::Request::get(&self.metrics)
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .map_err(|e| e.to_string())?;
        let response = http.send(request).await.map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(response.body());
        Ok(text
            .lines()
            .find(|l| l.starts_with("clientcreds_operator_reconcile_duration_seconds_count"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(0, |v| v as u64))
    }
}

fn name(i: usize) -> String {
    format!("scale-{i:05}")
}

fn token_secret(i: usize) -> String {
    format!("scale-{i:05}-token")
}

async fn create_clients(env: &Env, n: usize) {
    let sb = &env.sandbox;
    let endpoints = [sb.autopay(), sb.payu(), sb.pyng(), sb.afterpay()];
    for ((provider, _), p) in PROVIDERS.iter().zip(&endpoints) {
        env.create_secret(
            &format!("{provider}-credentials"),
            &[
                ("client_id", &p.client_id),
                ("client_secret", &p.client_secret),
            ],
        )
        .await;
    }
    stream::iter(0..n)
        .for_each_concurrent(16, |i| {
            let (provider, _) = PROVIDERS[i % PROVIDERS.len()];
            let token_url = endpoints[i % PROVIDERS.len()].token_url.clone();
            let scopes: Vec<&str> = match provider {
                "payu" => vec![PAYU_SCOPES[0]],
                "pyng" => vec![PYNG_SCOPES[0]],
                _ => vec![],
            };
            async move {
                env.create_oac(json!({
                    "metadata": {"name": name(i)},
                    "spec": {
                        "provider": provider,
                        "credentialsSecretRef": {"name": format!("{provider}-credentials")},
                        "tokenUrl": token_url,
                        "tokens": [{"secretName": token_secret(i), "scopes": scopes}],
                    }
                }))
                .await;
            }
        })
        .await;
}

fn token_requests(env: &Env) -> u64 {
    let sb = &env.sandbox;
    let ids = [
        sb.autopay().client_id,
        sb.payu().client_id,
        sb.pyng().client_id,
        sb.afterpay().client_id,
    ];
    PROVIDERS
        .iter()
        .zip(&ids)
        .map(|((_, p), id)| sb.tokens_issued(*p, id))
        .sum()
}

/// How many of the OAuthClients are Ready at their current generation.
async fn ready_count(env: &Env) -> usize {
    let Ok(list) = env.oacs().list(&ListParams::default()).await else {
        return 0;
    };
    list.items
        .iter()
        .filter(|o: &&OAuthClient| {
            o.status.as_ref().is_some_and(|s| {
                s.observed_generation == o.metadata.generation
                    && s.conditions
                        .iter()
                        .any(|c| c.type_ == "Ready" && c.status == "True")
            })
        })
        .count()
}

/// The access token of every token Secret of the harness.
async fn tokens(env: &Env) -> BTreeMap<String, String> {
    let list = env.secrets().list(&ListParams::default()).await.unwrap();
    list.items
        .iter()
        .filter(|s: &&Secret| {
            s.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.ends_with("-token"))
        })
        .map(|s| (s.metadata.name.clone().unwrap(), data(s, "access_token")))
        .collect()
}

/// Polls `done` every 200 ms until it is true; returns the time it took.
async fn until<F, Fut>(what: &str, mut done: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if done().await {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < STEP_LIMIT,
            "{what}: not done after {STEP_LIMIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // quiet: only warnings of the harness itself (the operator logs to its own file)
    let _ = tracing_subscriber::fmt()
        // (kube_client::client::builder: the control plane's start-up polls /readyz through it)
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "warn,kube_client::client::builder=off",
        ))
        .with_writer(std::io::stderr)
        .try_init();
    let opts = options();
    let n = opts.clients;
    println!(
        "operator scale harness: {n} OAuthClients ({})",
        if opts.bench {
            "benchmark"
        } else {
            "test run; figures mean nothing"
        }
    );

    let env = setup(SandboxConfig::default()).await;
    env.sandbox.set_payu_rate_limit(None);
    let logs = tempfile::tempdir().unwrap();

    // 1. create N with the operator running
    let operator = OperatorProcess::start(&env, logs.path().join("operator-1.log")).await;
    until("the operator serving /metrics", || async {
        operator.reconciles().await.is_ok()
    })
    .await;
    let before = operator.usage().await;
    let start = Instant::now();
    create_clients(&env, n).await;
    let created_in = start.elapsed();
    until("all Ready", || async { ready_count(&env).await == n }).await;
    let ready_in = start.elapsed();
    let first_tokens = tokens(&env).await;
    assert_eq!(first_tokens.len(), n, "one token Secret per OAuthClient");
    let create_requests = token_requests(&env);
    assert_eq!(
        create_requests, n as u64,
        "exactly one token request per token Secret"
    );
    let create = operator.usage().await.since(before);
    let (rss_ready, _) = operator.memory();
    // the operator's own writes (token Secret, status) must not come back as reconciles
    let per_client = create.reconciles as f64 / n as f64;
    assert!(
        per_client <= MAX_RECONCILES_PER_CLIENT,
        "{per_client:.2} reconciles per OAuthClient brought up ({} for {n}); at most {MAX_RECONCILES_PER_CLIENT}",
        create.reconciles
    );

    // 2. idle
    let before = operator.usage().await;
    tokio::time::sleep(opts.idle).await;
    let idle = operator.usage().await.since(before);
    assert_eq!(
        token_requests(&env),
        create_requests,
        "no token request while idle"
    );

    // 3. refresh all on demand
    let before = operator.usage().await;
    let start = Instant::now();
    stream::iter(0..n)
        .for_each_concurrent(16, |i| {
            let env = &env;
            async move { env.request_refresh(&name(i), "scale-1").await }
        })
        .await;
    until("every token refreshed", || async {
        let now = tokens(&env).await;
        now.len() == n && now.iter().all(|(k, v)| first_tokens.get(k) != Some(v))
    })
    .await;
    let refreshed_in = start.elapsed();
    let refresh_requests = token_requests(&env) - create_requests;
    assert_eq!(
        refresh_requests, n as u64,
        "exactly one token request per refresh request"
    );
    let refresh = operator.usage().await.since(before);
    let (_, peak_1) = operator.memory();
    let second_tokens = tokens(&env).await;

    // 4. restart
    operator.stop().await;
    let requests_before = token_requests(&env);
    let operator = OperatorProcess::start(&env, logs.path().join("operator-2.log")).await;
    let restart = until("the new operator has reconciled all", || async {
        operator.reconciles().await.unwrap_or(0) >= n as u64
    })
    .await;
    // let anything the first pass queued settle, then count
    tokio::time::sleep(Duration::from_secs(2)).await;
    let restart_requests = token_requests(&env) - requests_before;
    assert_eq!(
        restart_requests, 0,
        "a restart must not request tokens that are still good"
    );
    assert_eq!(
        tokens(&env).await,
        second_tokens,
        "the restart kept every token"
    );
    let restart_usage = operator.usage().await; // since its start
    let (rss_restart, peak_2) = operator.memory();
    operator.stop().await;

    // nothing leaked
    let mut secrets: Vec<String> = [
        env.sandbox.autopay(),
        env.sandbox.payu(),
        env.sandbox.pyng(),
        env.sandbox.afterpay(),
    ]
    .into_iter()
    .map(|p| p.client_secret)
    .collect();
    secrets.extend(first_tokens.into_values());
    secrets.extend(second_tokens.into_values());
    let mut operator_logs = String::new();
    for f in ["operator-1.log", "operator-2.log"] {
        operator_logs.push_str(&std::fs::read_to_string(logs.path().join(f)).unwrap());
    }
    assert!(
        operator_logs.contains("clientcreds"),
        "the operators logged nothing; the leak check would prove nothing"
    );
    for s in &secrets {
        assert!(
            !operator_logs.contains(s.as_str()),
            "a secret or token appears in the operator's log"
        );
    }
    env.assert_no_secret_anywhere(&secrets).await;

    let concurrency =
        std::env::var("MAX_CONCURRENT_RECONCILES").unwrap_or_else(|_| "default".into());
    println!();
    println!("max concurrent reconciles: {concurrency}");
    println!("reconciles per OAuthClient brought up: {per_client:.2}");
    println!(
        "| step | N | wall time | token requests | reconciles | operator CPU | operator memory |"
    );
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| create → all Ready | {n} | {} (creates took {}) | {create_requests} | {} | {} | RSS {rss_ready:.1} MiB |",
        secs(ready_in),
        secs(created_in),
        create.reconciles,
        secs(create.cpu),
    );
    println!(
        "| idle {} | {n} | — | 0 | {} | {} | — |",
        secs(opts.idle),
        idle.reconciles,
        secs(idle.cpu),
    );
    println!(
        "| refresh all on demand | {n} | {} | {refresh_requests} | {} | {} | peak RSS {peak_1:.1} MiB |",
        secs(refreshed_in),
        refresh.reconciles,
        secs(refresh.cpu),
    );
    println!(
        "| restart → all reconciled | {n} | {} | {restart_requests} | {} | {} (since start) | RSS {rss_restart:.1} MiB, peak {peak_2:.1} MiB |",
        secs(restart),
        restart_usage.reconciles,
        secs(restart_usage.cpu),
    );
}
