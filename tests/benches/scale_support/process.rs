//! The operator under measurement as its own process: started with only its own RBAC, read
//! through `/proc` (CPU time, memory) and its `/metrics` (reconciles).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::operator_support::{Env, OPERATOR_NS, OPERATOR_SA, capture};

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
pub(crate) struct Usage {
    pub(crate) cpu: Duration,
    pub(crate) reconciles: u64,
}

impl Usage {
    pub(crate) fn since(self, earlier: Usage) -> Usage {
        Usage {
            cpu: self.cpu.saturating_sub(earlier.cpu),
            reconciles: self.reconciles.saturating_sub(earlier.reconciles),
        }
    }
}

/// The operator as its own process.
pub(crate) struct OperatorProcess {
    child: Child,
    pid: u32,
    metrics: String,
    log: PathBuf,
}

impl OperatorProcess {
    pub(crate) async fn start(env: &Env, log: PathBuf) -> Self {
        Self::start_with(env, log, &[]).await
    }

    /// Starts it with these environment variables besides (e.g. `POD_NAME`, its instance).
    pub(crate) async fn start_with(env: &Env, log: PathBuf, vars: &[(&str, &str)]) -> Self {
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
            .envs(vars.iter().copied())
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

    /// Graceful stop: SIGTERM, then wait. Its `/metrics` (before) and its log (after) go to the
    /// leak-scan capture.
    pub(crate) async fn stop(mut self) {
        capture::metrics(&self.metrics).await;
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        let exited = tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await;
        capture::copy(&self.log);
        match exited {
            Ok(status) => assert!(
                status.unwrap().success(),
                "the operator did not exit cleanly on SIGTERM; see {}",
                self.log.display()
            ),
            Err(_) => panic!("the operator did not stop within 30 s of SIGTERM"),
        }
    }

    /// A crash: SIGKILL, then wait for the exit (used by the kill matrix in
    /// tests/tests/operator_azupay.rs, not by the scale bench).
    #[allow(dead_code)]
    /// Its log goes to the leak-scan capture; its `/metrics` not (scraping would move the
    /// moment of the kill): see [`OperatorProcess::capture_metrics`].
    pub(crate) async fn kill(mut self) {
        self.child.kill().await.unwrap();
        capture::copy(&self.log);
    }

    /// Scrapes its `/metrics` into the leak-scan capture.
    #[allow(dead_code)]
    pub(crate) async fn capture_metrics(&self) {
        capture::metrics(&self.metrics).await;
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

    pub(crate) async fn usage(&self) -> Usage {
        Usage {
            cpu: self.cpu(),
            reconciles: self.reconciles().await.unwrap(),
        }
    }

    /// (resident now, peak resident) in MiB.
    pub(crate) fn memory(&self) -> (f64, f64) {
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
    pub(crate) async fn reconciles(&self) -> Result<u64, String> {
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
