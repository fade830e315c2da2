//! `cargo run -p clientcreds-e2e -- up`: a local control plane for humans, until Ctrl-C;
//! `… -- demo`: the whole product on that control plane (what `scripts/demo` runs);
//! `… -- leak-scan`: the R5 leak scan over what the e2e tests captured (what `scripts/test`
//! runs after the tests).

use std::process::ExitCode;

use clientcreds_e2e::{ControlPlane, bin_path};

const USAGE: &str = "usage: clientcreds-e2e up | demo [--no-wait] | leak-scan [--clear]

  up    start etcd, kube-apiserver and kube-controller-manager on loopback, print the admin
        kubeconfig and a kubectl example, and run until Ctrl-C
  demo  the cluster demo: control plane, a hollow node, the provider sandbox, the operator
        installed with its Helm chart and run from its image, an OAuthClient per provider, a
        Pod's mounted token refreshed, the layer on that token; runs until Ctrl-C (--no-wait:
        cleans up at once). Needs scripts/build-image first (scripts/demo does it all).
  leak-scan  look for every secret the operator e2e tests used, in every form (raw, escaped,
        base64 incl. id:secret, percent-encoded), in everything they captured under
        TARGET_DIR/leak-scan (default: the target directory of this binary); exits 1 on a hit.
        Hits name the file, form and secret's label, never the secret.

The binaries come from tests/control-plane/build.sh (see tests/README.md).";

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["up"] => up().await,
        ["demo"] => demo(clientcreds_e2e::demo::Ending::WaitForCtrlC).await,
        ["demo", "--no-wait"] => demo(clientcreds_e2e::demo::Ending::Immediately).await,
        ["leak-scan"] => leak_scan(false),
        ["leak-scan", "--clear"] => leak_scan(true),
        ["-h" | "--help" | "help"] => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

async fn up() -> ExitCode {
    eprintln!("starting etcd, kube-apiserver and kube-controller-manager…");
    let cp = match ControlPlane::start().await {
        Ok(cp) => cp,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };
    let kubeconfig = cp.kubeconfig_path().display().to_string();
    let kubectl =
        bin_path("kubectl").map_or_else(|_| "kubectl".to_owned(), |p| p.display().to_string());
    println!("control plane ready at {}", cp.server_url());
    println!("kubeconfig: {kubeconfig}");
    println!("logs:       {}", cp.dir().join("logs").display());
    println!();
    println!("  export KUBECONFIG={kubeconfig}");
    println!("  {kubectl} get namespaces");
    println!();
    println!("Ctrl-C stops it and removes its directory.");
    let stopped = tokio::signal::ctrl_c().await;
    drop(cp);
    match stopped {
        Ok(()) => {
            eprintln!("stopped");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: cannot wait for Ctrl-C: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn demo(ending: clientcreds_e2e::demo::Ending) -> ExitCode {
    match clientcreds_e2e::demo::run(ending).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

fn leak_scan(clear: bool) -> ExitCode {
    use clientcreds_e2e::leak_scan;
    let target = match leak_scan::target_dir() {
        Ok(t) => t,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    if clear {
        return match leak_scan::clear(&target) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("error: {err}");
                ExitCode::from(2)
            }
        };
    }
    let started = std::time::Instant::now();
    match leak_scan::scan_target(&target) {
        Ok(report) => {
            for hit in &report.hits {
                println!("LEAK {hit}");
            }
            println!("{report} ({:.1} s)", started.elapsed().as_secs_f64());
            if report.hits.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(2)
        }
    }
}
