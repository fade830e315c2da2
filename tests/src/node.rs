//! A node for the tests: the kubelet's real code (pod workers, volume manager, the Secret volume
//! plugin and its atomic writer) with a fake container runtime — kubemark's hollow kubelet,
//! built by `control-plane/build.sh` as `hollow-node`. A Pod bound to it (`spec.nodeName`) goes
//! Running, and its Secret volumes are written exactly as a real kubelet writes them, into a
//! directory the test can read.

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::Api;

use crate::{ControlPlane, Error, bin_path};

/// How long a node may take to register and report Ready.
const NODE_READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A running hollow node (stopped with its control plane, before the API server).
#[derive(Clone, Debug)]
pub struct HollowNode {
    name: String,
    root: PathBuf,
}

impl HollowNode {
    /// The Node's name (bind Pods to it with `spec.nodeName`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The kubelet's root directory.
    pub fn root_dir(&self) -> &Path {
        &self.root
    }

    /// A Pod named `name` bound to this node (there is no scheduler) that mounts the Secret
    /// `secret` as the volume `volume`; with no service-account token, so it needs nothing
    /// published in its namespace but the `default` ServiceAccount.
    pub fn pod_mounting_secret(&self, name: &str, secret: &str, volume: &str) -> Pod {
        let mut pod: Pod = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {
                "nodeName": self.name, "automountServiceAccountToken": false,
                "containers": [{"name": "app", "image": "registry.invalid/app:1",
                                "volumeMounts": [{"name": volume, "mountPath": format!("/var/run/secrets/{volume}"), "readOnly": true}]}],
                "volumes": [{"name": volume, "secret": {"secretName": secret}}]
            }
        }))
        .unwrap_or_default();
        pod.metadata.name = Some(name.to_owned());
        pod
    }

    /// Where the kubelet writes the Secret volume `volume` of the Pod with this UID:
    /// `<root>/pods/<uid>/volumes/kubernetes.io~secret/<volume>` (each key a symlink into
    /// `..data`, which the kubelet swaps atomically on an update).
    pub fn secret_volume_dir(&self, pod_uid: &str, volume: &str) -> PathBuf {
        self.root
            .join("pods")
            .join(pod_uid)
            .join("volumes")
            .join("kubernetes.io~secret")
            .join(volume)
    }
}

impl ControlPlane {
    /// Starts a hollow node named `name` that syncs its pods every `sync_frequency` (a real
    /// kubelet's default is 1 min; the floor is the kubelet's 1 s sync tick), authenticated as
    /// `system:node:<name>` in `system:nodes` (the API server's Node authorizer lets it read
    /// only its own pods' Secrets), and waits until the Node is Ready.
    ///
    /// # Errors
    ///
    /// [`Error::BinaryMissing`] when `hollow-node` is not built; [`Error::ServerExited`] when it
    /// exits; [`Error::NotReady`] when the Node is not Ready within a minute.
    pub async fn start_node(
        &mut self,
        name: &str,
        sync_frequency: Duration,
    ) -> Result<HollowNode, Error> {
        let bin = bin_path("hollow-node")?;
        let user = format!("system:node:{name}");
        let kubeconfig = self.kubeconfig_for(&user, &["system:nodes"])?;
        let root = self.servers.root.join("nodes").join(name);
        std::fs::create_dir_all(&root).map_err(|source| Error::Io {
            what: format!("cannot create {}", root.display()),
            source,
        })?;
        self.servers.spawn(
            "hollow-node",
            &bin,
            &[
                format!("--kubeconfig={}", kubeconfig.display()),
                format!("--name={name}"),
                format!("--root-dir={}", root.display()),
                format!("--sync-frequency={}ms", sync_frequency.as_millis()),
            ],
        )?;
        let nodes: Api<Node> = Api::all(self.admin_client());
        let started = std::time::Instant::now();
        let mut last = String::from("not registered");
        while started.elapsed() < NODE_READY_TIMEOUT {
            self.check_running()?;
            match nodes.get_opt(name).await {
                Ok(Some(node)) => {
                    let ready = node
                        .status
                        .and_then(|s| s.conditions)
                        .unwrap_or_default()
                        .into_iter()
                        .find(|c| c.type_ == "Ready");
                    match ready {
                        Some(c) if c.status == "True" => {
                            return Ok(HollowNode {
                                name: name.to_owned(),
                                root,
                            });
                        }
                        Some(c) => last = format!("Ready={} ({:?})", c.status, c.message),
                        None => last = "no Ready condition".into(),
                    }
                }
                Ok(None) => {}
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        self.servers.keep = true;
        Err(Error::NotReady {
            timeout: NODE_READY_TIMEOUT,
            last: format!("node {name}: {last}"),
            logs: self.servers.log_path("hollow-node"),
        })
    }
}
