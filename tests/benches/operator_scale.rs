//! The operator's scale harness: the real `clientcreds-operator` binary, as its own process with
//! only its own RBAC, against a real control plane and the sandbox, with N OAuthClients.
//!
//! ```text
//! cargo build --release -p clientcreds-operator
//! cargo bench -p clientcreds-e2e --bench operator_scale -- --clients 1000 --unrelated-secrets 10000
//! ```
//!
//! Before the operator starts, it creates K unrelated Secrets of 8 KiB in ten other namespaces
//! (`--unrelated-secrets K`, 10,000 by default): what a real cluster is full of, and what an
//! operator that watched every Secret would pay for. Then it measures, for N OAuthClients spread over Autopay, PayU, Pyng and Afterpay (one token
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
//! 5. **floor**: with the operator stopped, a plain client brings N more OAuthClients up in
//!    namespace `floor`, making the same sandbox token requests and the same API writes (one
//!    token-Secret apply and one status apply each, at the operator's concurrency, as the
//!    operator's service account); the operator's create→Ready time is reported as a ratio of
//!    the floor's.
//!
//! The waits are watches, not polled lists, so the harness adds little load of its own. The
//! figures are printed as a table with the issue's targets (floor ratio ≤ 1.5, RSS ≤ 96 MiB,
//! CPU ≤ 1.5 ms per OAuthClient brought up, ≤ 1.2 reconciles per OAuthClient).
//!
//! At the end, the operators' logs, the events and every status are checked for the client
//! secrets and the tokens.
//!
//! Under `cargo test` (no `--bench` argument) it runs the same steps with 8 OAuthClients and 16
//! unrelated Secrets as a
//! test of the steps' assertions; the figures of that run mean nothing. The operator binary is
//! the one next to this harness in the target directory (`target/release` for `cargo bench`,
//! `target/debug` under `cargo test --workspace --all-targets`), or `CLIENTCREDS_OPERATOR_BIN`.
#![allow(clippy::unwrap_used)]

#[path = "../tests/operator_support/mod.rs"]
mod operator_support;
mod scale_support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use clientcreds_operator::crd::OAuthClient;
use clientcreds_operator::run::DEFAULT_MAX_CONCURRENT_RECONCILES;
use clientcreds_sandbox::{PAYU_SCOPES, PYNG_SCOPES, Provider, ProviderEndpoints, SandboxConfig};
use futures::{StreamExt, stream};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use operator_support::{Env, OPERATOR_NS, OPERATOR_SA, setup};
use scale_support::process::OperatorProcess;
use scale_support::{floor, tally, unrelated};
use serde_json::json;

/// The four providers the OAuthClients are spread over: name, sandbox provider.
const PROVIDERS: [(&str, Provider); 4] = [
    ("autopay", Provider::Autopay),
    ("payu", Provider::Payu),
    ("pyng", Provider::Pyng),
    ("afterpay", Provider::Afterpay),
];

/// The most reconciles one OAuthClient may take to be brought up (create → Ready).
const MAX_RECONCILES_PER_CLIENT: f64 = 1.2;
/// The issue's targets, printed beside the figures (not asserted: figures of a shared machine).
const TARGET_FLOOR_RATIO: f64 = 1.5;
const TARGET_RSS_MIB: f64 = 96.0;
const TARGET_CPU_MS_PER_CLIENT: f64 = 1.5;

/// The namespace of the floor's OAuthClients.
const FLOOR_NS: &str = "floor";

struct Options {
    clients: usize,
    unrelated: usize,
    idle: Duration,
    bench: bool,
}

fn options() -> Options {
    let args: Vec<String> = std::env::args().collect();
    let bench = args.iter().any(|a| a == "--bench");
    let mut clients = if bench { 1000 } else { 8 };
    let mut unrelated = if bench { 10_000 } else { 16 };
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
            "--unrelated-secrets" => unrelated = value("--unrelated-secrets"),
            "--idle-seconds" => idle = value("--idle-seconds") as u64,
            // cargo's and libtest's own flags
            _ => {}
        }
    }
    assert!(clients > 0, "--clients must be at least 1");
    Options {
        clients,
        unrelated,
        idle: Duration::from_secs(idle),
        bench,
    }
}

/// The resourceVersion of every OAuthClient of the test namespace (metadata only): any write,
/// a status write too, changes it.
async fn versions(env: &Env) -> BTreeMap<String, String> {
    env.oacs()
        .list_metadata(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|m| {
            (
                m.metadata.name.unwrap_or_default(),
                m.metadata.resource_version.unwrap_or_default(),
            )
        })
        .collect()
}

fn name(i: usize) -> String {
    format!("scale-{i:05}")
}

fn token_secret(i: usize) -> String {
    format!("scale-{i:05}-token")
}

fn endpoints(env: &Env) -> [ProviderEndpoints; 4] {
    let sb = &env.sandbox;
    [sb.autopay(), sb.payu(), sb.pyng(), sb.afterpay()]
}

/// Creates the providers' credentials Secrets and N OAuthClients in `ns`.
async fn create_clients(env: &Env, ns: &str, n: usize) {
    let endpoints = endpoints(env);
    let secrets: Api<Secret> = Api::namespaced(env.admin.clone(), ns);
    for ((provider, _), p) in PROVIDERS.iter().zip(&endpoints) {
        let secret: Secret = serde_json::from_value(json!({
            "metadata": {"name": format!("{provider}-credentials")},
            "stringData": {"client_id": p.client_id, "client_secret": p.client_secret},
        }))
        .unwrap();
        secrets.create(&Default::default(), &secret).await.unwrap();
    }
    let oacs: Api<OAuthClient> = Api::namespaced(env.admin.clone(), ns);
    let endpoints = &endpoints;
    stream::iter(0..n)
        .for_each_concurrent(16, |i| {
            let oacs = &oacs;
            let (provider, _) = PROVIDERS[i % PROVIDERS.len()];
            let token_url = endpoints[i % PROVIDERS.len()].token_url.clone();
            let scopes: Vec<&str> = match provider {
                "payu" => vec![PAYU_SCOPES[0]],
                "pyng" => vec![PYNG_SCOPES[0]],
                _ => vec![],
            };
            async move {
                let oac: OAuthClient = serde_json::from_value(json!({
                    "apiVersion": "clientcreds.dev/v1alpha1",
                    "kind": "OAuthClient",
                    "metadata": {"name": name(i), "namespace": ns},
                    "spec": {
                        "provider": provider,
                        "credentialsSecretRef": {"name": format!("{provider}-credentials")},
                        "tokenUrl": token_url,
                        "tokens": [{"secretName": token_secret(i), "scopes": scopes}],
                    }
                }))
                .unwrap();
                oacs.create(&Default::default(), &oac).await.unwrap();
            }
        })
        .await;
}

fn token_requests(env: &Env) -> u64 {
    PROVIDERS
        .iter()
        .zip(&endpoints(env))
        .map(|((_, p), e)| env.sandbox.tokens_issued(*p, &e.client_id))
        .sum()
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "FAIL" }
}

fn progress(what: &str) {
    eprintln!("[operator_scale] {what}");
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
        "operator scale harness: {n} OAuthClients, {} unrelated Secrets ({})",
        opts.unrelated,
        if opts.bench {
            "benchmark"
        } else {
            "test run; figures mean nothing"
        }
    );

    let env = setup(SandboxConfig::default()).await;
    env.sandbox.set_payu_rate_limit(None);
    let logs = tempfile::tempdir().unwrap();

    // 0. what a real cluster is full of, before the operator lists anything
    progress(&format!("creating {} unrelated Secrets", opts.unrelated));
    unrelated::create(&env, opts.unrelated).await;

    // 1. create N with the operator running
    progress("step 1: create → all Ready");
    let operator = OperatorProcess::start(&env, logs.path().join("operator-1.log")).await;
    let wait_metrics = Instant::now();
    while operator.reconciles().await.is_err() {
        assert!(
            wait_metrics.elapsed() < tally::STEP_LIMIT,
            "the operator does not serve /metrics"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut ready = tally::ready(env.oacs());
    let mut tokens = tally::tokens(env.secrets());
    let before = operator.usage().await;
    let start = Instant::now();
    create_clients(&env, &env.ns, n).await;
    let created_in = start.elapsed();
    ready.until("all Ready", |m| m.len() == n).await;
    let ready_in = start.elapsed();
    tokens
        .until("a token Secret per OAuthClient", |m| m.len() == n)
        .await;
    let first_tokens = tokens.snapshot();
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
    let cpu_per_client_ms = create.cpu.as_secs_f64() * 1000.0 / n as f64;

    // 2. idle
    progress("step 2: idle");
    let before = operator.usage().await;
    tokio::time::sleep(opts.idle).await;
    let idle = operator.usage().await.since(before);
    assert_eq!(
        token_requests(&env),
        create_requests,
        "no token request while idle"
    );

    // 3. refresh all on demand
    progress("step 3: refresh all on demand");
    let before = operator.usage().await;
    let start = Instant::now();
    stream::iter(0..n)
        .for_each_concurrent(16, |i| {
            let env = &env;
            async move { env.request_refresh(&name(i), "scale-1").await }
        })
        .await;
    tokens
        .until("every token refreshed", |now| {
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
    let second_tokens = tokens.snapshot();

    // 4. restart
    progress("step 4: restart");
    operator.stop().await;
    let requests_before = token_requests(&env);
    let versions_before = versions(&env).await;
    let operator = OperatorProcess::start(&env, logs.path().join("operator-2.log")).await;
    let start = Instant::now();
    loop {
        if operator.reconciles().await.unwrap_or(0) >= n as u64 {
            break;
        }
        assert!(
            start.elapsed() < tally::STEP_LIMIT,
            "the new operator has not reconciled all {n} after {:?}",
            tally::STEP_LIMIT
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let restart = start.elapsed();
    // let anything the first pass queued settle, then count
    tokio::time::sleep(Duration::from_secs(2)).await;
    let restart_requests = token_requests(&env) - requests_before;
    assert_eq!(
        restart_requests, 0,
        "a restart must not request tokens that are still good"
    );
    assert_eq!(
        tokens.snapshot(),
        second_tokens,
        "the restart kept every token"
    );
    assert!(
        versions(&env).await == versions_before,
        "a restart writes nothing to an OAuthClient whose status did not change"
    );
    let restart_usage = operator.usage().await; // since its start
    let (rss_restart, peak_2) = operator.memory();
    operator.stop().await;
    drop((ready, tokens));

    // 5. the floor: the same writes with no operator
    progress("step 5: the floor (no operator)");
    env.cp.create_namespace(FLOOR_NS).await.unwrap();
    let user = format!("system:serviceaccount:{OPERATOR_NS}:{OPERATOR_SA}");
    let ns_group = format!("system:serviceaccounts:{OPERATOR_NS}");
    let as_operator = env
        .cp
        .client_for(&user, &["system:serviceaccounts", &ns_group])
        .unwrap();
    let by_provider: BTreeMap<&'static str, (String, String)> = PROVIDERS
        .iter()
        .zip(endpoints(&env))
        .map(|((name, _), e)| (*name, (e.client_id, e.client_secret)))
        .collect();
    let floor = floor::start(
        as_operator,
        FLOOR_NS,
        usize::from(DEFAULT_MAX_CONCURRENT_RECONCILES),
        move |provider| by_provider[provider].clone(),
    );
    let mut floor_ready = tally::ready(Api::namespaced(env.admin.clone(), FLOOR_NS));
    let requests_before = token_requests(&env);
    let start = Instant::now();
    create_clients(&env, FLOOR_NS, n).await;
    floor_ready
        .until("the floor: all Ready", |m| m.len() == n)
        .await;
    let floor_in = start.elapsed();
    drop(floor);
    let floor_requests = token_requests(&env) - requests_before;
    assert_eq!(
        floor_requests, n as u64,
        "the floor makes one token request per OAuthClient, as the operator does"
    );
    let floor_ratio = ready_in.as_secs_f64() / floor_in.as_secs_f64();

    // nothing leaked
    let mut secrets: Vec<String> = endpoints(&env)
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
    println!(
        "| floor: create → all Ready, no operator | {n} | {} | {floor_requests} | — | — | — |",
        secs(floor_in),
    );
    println!();
    println!(
        "| target | figure | verdict |\n|---|---|---|\n\
         | create→Ready ≤ {TARGET_FLOOR_RATIO}× the floor | {floor_ratio:.2}× ({} vs {}) | {} |\n\
         | RSS ≤ {TARGET_RSS_MIB} MiB with {} unrelated Secrets | {:.1} MiB peak | {} |\n\
         | CPU ≤ {TARGET_CPU_MS_PER_CLIENT} ms per OAuthClient brought up | {cpu_per_client_ms:.2} ms | {} |\n\
         | reconciles ≤ {MAX_RECONCILES_PER_CLIENT} per OAuthClient brought up | {per_client:.2} | {} |",
        secs(ready_in),
        secs(floor_in),
        verdict(floor_ratio <= TARGET_FLOOR_RATIO),
        opts.unrelated,
        peak_1.max(peak_2),
        verdict(peak_1.max(peak_2) <= TARGET_RSS_MIB),
        verdict(cpu_per_client_ms <= TARGET_CPU_MS_PER_CLIENT),
        verdict(per_client <= MAX_RECONCILES_PER_CLIENT),
    );
}
