//! A real Kubernetes control plane on loopback for tests — etcd, kube-apiserver and
//! kube-controller-manager built from their Go modules — and the end-to-end tests of clientcreds.
//!
//! Build the binaries once with `tests/control-plane/build.sh` (cached outside the clone; see
//! `tests/README.md`), then in a test:
//!
//! ```no_run
//! use clientcreds_e2e::ControlPlane;
//! use k8s_openapi::api::core::v1::Namespace;
//! use kube::api::{Api, PostParams};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let cp = ControlPlane::start().await?; // stops (and cleans up) on drop
//! let namespaces: Api<Namespace> = Api::all(cp.admin_client());
//! let ns = serde_json::from_value(serde_json::json!({"metadata": {"name": "demo"}}))?;
//! namespaces.create(&PostParams::default(), &ns).await?;
//!
//! // Someone with only the permissions RBAC grants them:
//! let alice = cp.client_for("alice", &["team-a"])?;
//! # let _ = alice;
//! # Ok(())
//! # }
//! ```
//!
//! Each test starts its own [`ControlPlane`] (a few seconds); they run in parallel on separate
//! ports and directories. The servers' logs are kept when the test panics.

mod binaries;
pub mod chart;
pub mod container;
mod control_plane;
pub mod demo;
mod eventually;
pub mod five_providers;
pub mod leak_scan;
mod node;
mod pki;

pub use binaries::{BINARIES, bin_dir, bin_path, build_command, etcd_version, kubernetes_version};
pub use control_plane::{ControlPlane, free_port};
pub use eventually::eventually;
pub use node::HollowNode;

use std::path::PathBuf;
use std::time::Duration;

/// Why the control plane could not start or do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A control-plane binary is not built.
    #[error(
        "{} is not built: run `{build_command}` (it builds etcd, kube-apiserver, \
         kube-controller-manager, kubectl, helm and hollow-node into a cache outside the \
         repository; the first build takes a while)",
        path.display()
    )]
    BinaryMissing {
        /// Where the binary was looked for.
        path: PathBuf,
        /// The command that builds it.
        build_command: String,
    },
    /// Neither `CLIENTCREDS_CACHE_DIR`, `XDG_CACHE_HOME` nor `HOME` is set.
    #[error(
        "cannot find the control-plane cache: set CLIENTCREDS_CACHE_DIR (or XDG_CACHE_HOME or HOME)"
    )]
    NoCacheDir,
    /// A file-system or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Making a certificate or key failed.
    #[error("cannot make the control plane's certificates: {0}")]
    Certificate(#[from] rcgen::Error),
    /// A server process exited while it should be running.
    #[error("{name} exited ({status}); its log is {}", log.display())]
    ServerExited {
        /// `etcd`, `kube-apiserver` or `kube-controller-manager`.
        name: &'static str,
        /// How it exited.
        status: String,
        /// Its log file (kept).
        log: PathBuf,
    },
    /// The API server (or a node) did not become ready in time.
    #[error("kube-apiserver was not ready after {timeout:?} (last answer: {last}); logs are in {}", logs.display())]
    NotReady {
        /// How long the harness waited.
        timeout: Duration,
        /// The last answer or error of `/readyz`.
        last: String,
        /// The log directory (kept).
        logs: PathBuf,
    },
    /// A CustomResourceDefinition did not become established in time.
    #[error("CustomResourceDefinition {name} was not established after {timeout:?}")]
    CrdNotEstablished {
        /// The CRD's name.
        name: String,
        /// How long the harness waited.
        timeout: Duration,
    },
    /// A user name or group the API server cannot take.
    #[error("invalid {field} {value:?}: {reason}")]
    InvalidIdentity {
        /// `user` or `group`.
        field: &'static str,
        /// The value given.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Building a client from a kubeconfig failed.
    /// A Kubernetes API call failed.
    #[error("Kubernetes API call failed: {0}")]
    Kube(#[from] kube::Error),
}
