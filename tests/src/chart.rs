//! The operator as a cluster admin installs it: the Helm chart in `charts/clientcreds-operator`
//! and the image `scripts/build-image` builds from the root Containerfile.

use std::path::PathBuf;

use crate::{ControlPlane, Error};

/// The chart's directory in this repository.
pub const CHART_DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../charts/clientcreds-operator"
);

/// The `helm --set` arguments that let the operator reach the sandbox on `http://127.0.0.1`
/// (its egress policy allows only the providers' public hosts over https by default).
pub const SANDBOX_EGRESS_SET: [&str; 4] = [
    "--set",
    "egress.allowHosts={127.0.0.1}",
    "--set",
    "egress.allowHttpLoopback=true",
];

/// The repository's root.
pub const REPO_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// The value sets under the chart's `ci/` directory (Helm's convention), by file name.
pub fn ci_value_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(PathBuf::from(CHART_DIR).join("ci"))
        .map(|dir| {
            dir.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// The OCI archive of the operator image for the current sources, as built by
/// `scripts/build-image` (which `scripts/test` runs first).
///
/// # Errors
///
/// [`Error::Io`] saying to run `scripts/build-image` when it is not built for these sources.
pub fn operator_image_archive() -> Result<PathBuf, Error> {
    let out = std::process::Command::new(format!("{REPO_DIR}/scripts/build-image"))
        .arg("--check")
        .output()
        .map_err(|source| Error::Io {
            what: "cannot run scripts/build-image --check".into(),
            source,
        })?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    match stdout.lines().last() {
        Some(path) if out.status.success() => Ok(PathBuf::from(path.trim())),
        _ => Err(Error::Io {
            what: "the operator image is not built for these sources: run scripts/build-image \
                   (scripts/test does)"
                .into(),
            source: std::io::Error::other(String::from_utf8_lossy(&out.stderr).trim().to_owned()),
        }),
    }
}

impl ControlPlane {
    /// Runs `helm` against this control plane as the admin; returns its standard output.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] with helm's standard error when it fails.
    pub async fn helm(&self, args: &[&str]) -> Result<String, Error> {
        let out = self
            .tool("helm")?
            .args(args)
            .output()
            .await
            .map_err(|source| Error::Io {
                what: "cannot run helm".into(),
                source,
            })?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(Error::Io {
                what: format!(
                    "helm {} failed: {}",
                    args.first().copied().unwrap_or_default(),
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
                source: std::io::Error::other(out.status.to_string()),
            })
        }
    }
}

/// `GET http://127.0.0.1:<port><path>` of the operator's `/metrics`, `/healthz` or `/readyz`:
/// the status and the body, `None` when nothing answers.
pub async fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.ok()?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())?;
    Some((status, body))
}
