//! A Deployment's pod run as a container on this machine (podman + runc, no daemon): what a
//! kubelet would give the pod, taken from the Deployment as the API server stores it — the image,
//! the args, the env (with downward-API fields resolved), the user, the read-only root file
//! system, dropped capabilities, no privilege escalation, and the in-cluster identity (a
//! ServiceAccount token from the TokenRequest API, `ca.crt` and `namespace` under
//! `/var/run/secrets/kubernetes.io/serviceaccount`, `KUBERNETES_SERVICE_HOST/PORT`).
//!
//! The container shares the host's network (the API server and the sandbox listen on loopback).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, PostParams};
use tokio::process::Command;

use crate::{ControlPlane, Error};

const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

fn invalid(what: impl Into<String>) -> Error {
    Error::Io {
        what: what.into(),
        source: std::io::Error::other("unsupported pod spec"),
    }
}

/// `podman` with the storage and runtime that work on these machines (see
/// `shared/notes/containers.md`: vfs storage, runc; crun fails on cgroup v1 hybrid hosts).
pub fn podman() -> Command {
    let mut cmd = Command::new("podman");
    cmd.args(["--storage-driver", "vfs", "--runtime", "runc"]);
    cmd.kill_on_drop(true);
    cmd
}

async fn run(mut cmd: Command, what: &str) -> Result<String, Error> {
    let out = cmd
        .output()
        .await
        .map_err(io(format!("cannot run {what}")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(Error::Io {
            what: format!(
                "{what} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            source: std::io::Error::other(out.status.to_string()),
        })
    }
}

/// Loads an OCI archive (as `scripts/build-image` writes it) into podman's store; returns the
/// image name it carries (`localhost/clientcreds-operator:<version>`).
///
/// # Errors
///
/// [`Error::Io`] when podman is missing or the load fails.
pub async fn load_image(archive: &Path) -> Result<String, Error> {
    let mut cmd = podman();
    cmd.arg("load").arg("-i").arg(archive);
    let out = run(cmd, "podman load").await?;
    out.lines()
        .find_map(|l| {
            l.strip_prefix("Loaded image: ")
                .map(|s| s.trim().to_owned())
        })
        .ok_or_else(|| invalid(format!("podman load printed no image name: {out}")))
}

/// A running container of a Deployment's pod. Removed (killed) on drop; [`Self::stop`] stops it
/// the way a kubelet does (SIGTERM, then the grace period).
#[derive(Debug)]
pub struct PodContainer {
    name: String,
    grace: Duration,
    _dir: tempfile::TempDir,
    removed: bool,
}

impl PodContainer {
    /// Runs the first container of `deployment`'s pod template as the pod `pod_name` would run
    /// on a node of `cp`.
    ///
    /// # Errors
    ///
    /// [`Error::Kube`] when the token cannot be issued; [`Error::Io`] when the pod spec asks for
    /// something this runner does not do (named in the message) or podman fails.
    pub async fn start(
        cp: &ControlPlane,
        deployment: &Deployment,
        pod_name: &str,
    ) -> Result<Self, Error> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let namespace = deployment
            .metadata
            .namespace
            .clone()
            .ok_or_else(|| invalid("the Deployment has no namespace"))?;
        let pod = deployment
            .spec
            .template
            .spec
            .clone()
            .ok_or_else(|| invalid("the Deployment has no pod template"))?;
        let container = pod
            .containers
            .first()
            .ok_or_else(|| invalid("the pod template has no container"))?;
        let image = container
            .image
            .clone()
            .ok_or_else(|| invalid("the container has no image"))?;
        if container.command.is_some() {
            return Err(invalid(
                "container.command (the image's entrypoint is the binary)",
            ));
        }

        // The kubelet's projected service-account volume.
        let dir = tempfile::Builder::new()
            .prefix("clientcreds-pod-")
            .tempdir()
            .map_err(io("cannot create the pod directory"))?;
        let sa_dir = dir.path().join("serviceaccount");
        std::fs::create_dir(&sa_dir).map_err(io("cannot create the token directory"))?;
        let sa_name = pod
            .service_account_name
            .clone()
            .unwrap_or_else(|| "default".into());
        let request = TokenRequest {
            spec: Some(TokenRequestSpec {
                expiration_seconds: Some(3600),
                ..TokenRequestSpec::default()
            }),
            ..TokenRequest::default()
        };
        let token = Api::<ServiceAccount>::namespaced(cp.admin_client(), &namespace)
            .create_token_request(&sa_name, &PostParams::default(), &request)
            .await?
            .status
            .and_then(|s| s.token)
            .ok_or_else(|| invalid("the TokenRequest returned no token"))?;
        for (file, contents) in [
            ("token", token.as_str()),
            ("ca.crt", cp.ca_pem()),
            ("namespace", namespace.as_str()),
        ] {
            let path = sa_dir.join(file);
            std::fs::write(&path, contents).map_err(io(format!("cannot write {file}")))?;
        }
        // What the kubelet's volume gives uid 65532 (world-readable; the env file below stays
        // private to podman: its values may hold proxy credentials).
        make_world_readable(dir.path())?;

        // Env, with the downward API resolved; written to a file so no value is on a command line.
        let port = cp
            .server_url()
            .rsplit(':')
            .next()
            .unwrap_or("443")
            .to_owned();
        let mut env = vec![
            ("KUBERNETES_SERVICE_HOST".to_owned(), "127.0.0.1".to_owned()),
            ("KUBERNETES_SERVICE_PORT".to_owned(), port),
        ];
        for var in container.env.iter().flatten() {
            let value = match (&var.value, &var.value_from) {
                (Some(v), None) => v.clone(),
                (None, Some(from)) => {
                    match from.field_ref.as_ref().map(|f| f.field_path.as_str()) {
                        Some("metadata.name") => pod_name.to_owned(),
                        Some("metadata.namespace") => namespace.clone(),
                        other => return Err(invalid(format!("env {} from {other:?}", var.name))),
                    }
                }
                (None, None) => String::new(),
                (Some(_), Some(_)) => {
                    return Err(invalid(format!("env {}: value and valueFrom", var.name)));
                }
            };
            if value.contains('\n') {
                return Err(invalid(format!("env {}: a multi-line value", var.name)));
            }
            env.push((var.name.clone(), value));
        }
        let env_file = dir.path().join("env");
        let text: String = env.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&env_file)
                .map_err(io("cannot create the env file"))?;
            f.write_all(text.as_bytes())
                .map_err(io("cannot write the env file"))?;
        }

        // Security context: the container's over the pod's.
        let psc = pod.security_context.clone().unwrap_or_default();
        let csc = container.security_context.clone().unwrap_or_default();
        let uid = csc.run_as_user.or(psc.run_as_user);
        let gid = csc.run_as_group.or(psc.run_as_group);
        let name = format!(
            "clientcreds-e2e-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let nofile = nofile_limit();
        let mut cmd = podman();
        cmd.args(["run", "--detach", "--name", &name, "--network", "host"])
            .args(["--ulimit", &format!("nofile={nofile}:{nofile}")])
            .args(["--ulimit", "nproc=1024:1024"])
            .arg("--env-file")
            .arg(&env_file)
            .arg("--volume")
            .arg(format!("{}:{SERVICE_ACCOUNT_DIR}:ro", sa_dir.display()));
        if let Some(uid) = uid {
            cmd.arg("--user")
                .arg(gid.map_or(uid.to_string(), |g| format!("{uid}:{g}")));
        }
        if csc.read_only_root_filesystem == Some(true) {
            cmd.arg("--read-only");
        }
        if csc.allow_privilege_escalation == Some(false) {
            cmd.args(["--security-opt", "no-new-privileges"]);
        }
        for cap in csc
            .capabilities
            .iter()
            .flat_map(|c| c.drop.iter().flatten())
        {
            cmd.arg("--cap-drop").arg(cap.to_lowercase());
        }
        cmd.arg(&image).args(container.args.iter().flatten());
        run(cmd, "podman run").await?;
        let grace = pod.termination_grace_period_seconds.unwrap_or(30);
        Ok(Self {
            name,
            grace: Duration::from_secs(u64::try_from(grace).unwrap_or(30)),
            _dir: dir,
            removed: false,
        })
    }

    /// The container's name in podman.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Everything it printed so far (stdout and stderr).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when podman fails.
    pub async fn logs(&self) -> Result<String, Error> {
        let mut cmd = podman();
        cmd.args(["logs", &self.name]);
        let out = cmd.output().await.map_err(io("cannot run podman logs"))?;
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        Ok(text)
    }

    /// Whether the container is still running.
    pub async fn running(&self) -> bool {
        let mut cmd = podman();
        cmd.args(["inspect", "--format", "{{.State.Running}}", &self.name]);
        run(cmd, "podman inspect")
            .await
            .is_ok_and(|s| s.trim() == "true")
    }

    /// Stops it as a kubelet does (SIGTERM, SIGKILL after the pod's grace period) and returns
    /// its logs.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when podman fails.
    pub async fn stop(mut self) -> Result<String, Error> {
        let mut cmd = podman();
        cmd.args([
            "stop",
            "--time",
            &self.grace.as_secs().to_string(),
            &self.name,
        ]);
        run(cmd, "podman stop").await?;
        let logs = self.logs().await;
        self.remove();
        logs
    }

    fn remove(&mut self) {
        if !self.removed {
            self.removed = true;
            let _ = std::process::Command::new("podman")
                .args([
                    "--storage-driver",
                    "vfs",
                    "--runtime",
                    "runc",
                    "rm",
                    "--force",
                    "--time",
                    "0",
                ])
                .arg(&self.name)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

impl Drop for PodContainer {
    fn drop(&mut self) {
        self.remove();
    }
}

/// The hard limit on open files: both runtimes fail on setrlimit here without an explicit one.
fn nofile_limit() -> u64 {
    std::process::Command::new("sh")
        .args(["-c", "ulimit -Hn"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(1_048_576)
}

fn make_world_readable(dir: &Path) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    let mut stack: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta =
            std::fs::metadata(&path).map_err(io(format!("cannot stat {}", path.display())))?;
        let mode = if meta.is_dir() { 0o755 } else { 0o644 };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .map_err(io(format!("cannot chmod {}", path.display())))?;
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path).map_err(io("cannot list the pod directory"))? {
                stack.push(entry.map_err(io("cannot list the pod directory"))?.path());
            }
        }
    }
    Ok(())
}
