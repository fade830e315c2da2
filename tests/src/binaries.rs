//! Where the control-plane binaries live: the cache directory `control-plane/build.sh` fills.

use std::path::PathBuf;

use crate::Error;

/// The build module; its `require` lines are the single source of the versions.
const GO_MOD: &str = include_str!("../control-plane/go.mod");

/// The binaries `control-plane/build.sh` builds.
pub const BINARIES: [&str; 6] = [
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kubectl",
    "helm",
    "hollow-node",
];

fn module_version(module: &str) -> &'static str {
    GO_MOD
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some(module))
                .then(|| words.next())
                .flatten()
        })
        .find(|version| version.starts_with('v'))
        .unwrap_or("unknown")
}

/// The Kubernetes release the binaries are built from, e.g. `v1.37.2`.
pub fn kubernetes_version() -> &'static str {
    module_version("k8s.io/kubernetes")
}

/// The etcd release the binaries are built from, e.g. `v3.7.0`.
pub fn etcd_version() -> &'static str {
    module_version("go.etcd.io/etcd/server/v3")
}

/// The command that builds the binaries, as a human would type it.
pub fn build_command() -> String {
    format!("{}/control-plane/build.sh", env!("CARGO_MANIFEST_DIR"))
}

/// The directory holding the binaries:
/// `${CLIENTCREDS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/clientcreds}/control-plane/<k8s>-<etcd>/bin`,
/// the same rule as `control-plane/build.sh`. It may not exist yet.
pub fn bin_dir() -> Result<PathBuf, Error> {
    let non_empty = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    let cache_root = if let Some(dir) = non_empty("CLIENTCREDS_CACHE_DIR") {
        PathBuf::from(dir)
    } else if let Some(xdg) = non_empty("XDG_CACHE_HOME") {
        PathBuf::from(xdg).join("clientcreds")
    } else if let Some(home) = non_empty("HOME") {
        PathBuf::from(home).join(".cache").join("clientcreds")
    } else {
        return Err(Error::NoCacheDir);
    };
    Ok(cache_root
        .join("control-plane")
        .join(format!("{}-{}", kubernetes_version(), etcd_version()))
        .join("bin"))
}

/// The path of one of the [`BINARIES`] (for example `bin_path("kubectl")`), checked to exist.
///
/// # Errors
///
/// [`Error::BinaryMissing`] (whose message says which command builds it) when it is not built.
///
/// ```no_run
/// let kubectl = clientcreds_e2e::bin_path("kubectl")?;
/// # Ok::<(), clientcreds_e2e::Error>(())
/// ```
pub fn bin_path(name: &str) -> Result<PathBuf, Error> {
    let path = bin_dir()?.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::BinaryMissing {
            path,
            build_command: build_command(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_come_from_the_build_module() {
        assert!(
            kubernetes_version().starts_with("v1."),
            "{}",
            kubernetes_version()
        );
        assert!(etcd_version().starts_with("v3."), "{}", etcd_version());
    }

    #[test]
    fn missing_binary_names_the_build_script() {
        let err = bin_path("no-such-binary").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("no-such-binary"), "{msg}");
        assert!(msg.contains("control-plane/build.sh"), "{msg}");
    }
}
