//! [`ControlPlane`]: etcd, kube-apiserver and kube-controller-manager on loopback.

use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::config::{
    AuthInfo, Cluster, Context, Kubeconfig, NamedAuthInfo, NamedCluster, NamedContext,
};
use kube::runtime::wait::{await_condition, conditions};
use secrecy::SecretString;
use tempfile::TempDir;
use tokio::process::{Child, Command};

use crate::Error;
use crate::binaries::bin_path;
use crate::pki::{Ca, CertAndKey};

/// How long the API server may take to answer `/readyz` with `ok` (a cold start on a busy
/// two-core machine takes seconds, not minutes).
const READY_TIMEOUT: Duration = Duration::from_secs(180);
/// How long a CRD may take to become established.
const CRD_TIMEOUT: Duration = Duration::from_secs(60);
/// The controllers kube-controller-manager runs: owner-reference garbage collection, namespace
/// deletion, each namespace's `default` ServiceAccount, and the rules of the aggregated
/// ClusterRoles (`admin`, `edit`, `view`).
const CONTROLLERS: &str = "garbage-collector-controller,namespace-controller,\
                           serviceaccount-controller,clusterrole-aggregation-controller";
/// The kubeconfig context, cluster and admin user name.
const CONTEXT: &str = "clientcreds-e2e";
/// The admin user (in `system:masters`, so not subject to RBAC).
const ADMIN_USER: &str = "clientcreds-e2e-admin";
/// Set to keep a control plane's directory (logs, kubeconfigs, certificates) even on success.
const KEEP_ENV: &str = "CLIENTCREDS_KEEP_CONTROL_PLANE";

/// A running Kubernetes control plane: etcd, kube-apiserver (RBAC on, client-certificate
/// authentication, service-account token signing) and kube-controller-manager (garbage
/// collector, namespace, service-account and ClusterRole-aggregation controllers), all on free loopback ports, with their
/// data, certificates, kubeconfigs and logs in a temporary directory.
///
/// Dropping it kills the servers and removes the directory — also when the test panics, in which
/// case the directory (with the servers' logs under `logs/`) is kept and its path printed.
/// Set `CLIENTCREDS_KEEP_CONTROL_PLANE=1` to keep it always. The servers also die with the thread
/// that started them (`setpriv --pdeathsig`), so a killed test run leaves no orphans behind; so
/// start one per test, from the test itself, rather than sharing one between tests (each
/// `#[tokio::test]` has its own runtime anyway, which a shared `kube::Client` would outlive).
///
/// ```no_run
/// # async fn demo() -> Result<(), clientcreds_e2e::Error> {
/// let cp = clientcreds_e2e::ControlPlane::start().await?;
/// let client = cp.admin_client();
/// println!("kubectl --kubeconfig {} get ns", cp.kubeconfig_path().display());
/// # let _ = client;
/// # Ok(())
/// # }
/// ```
pub struct ControlPlane {
    // Declared first so it drops (killing the servers) before anything else.
    pub(crate) servers: Servers,
    server_url: String,
    ca: Ca,
    admin: Client,
    kubeconfig: PathBuf,
}

impl std::fmt::Debug for ControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlane")
            .field("server_url", &self.server_url)
            .field("dir", &self.servers.root)
            .finish_non_exhaustive()
    }
}

impl ControlPlane {
    /// Starts etcd, kube-apiserver and kube-controller-manager and waits until the API server
    /// answers `/readyz`. kube-controller-manager is started but not waited for: its controllers
    /// (garbage collection, namespace deletion, default service accounts) act within seconds, so
    /// tests that depend on them poll with a timeout.
    ///
    /// # Errors
    ///
    /// [`Error::BinaryMissing`] when the binaries are not built (the message has the command
    /// that builds them); [`Error::ServerExited`] or [`Error::NotReady`] with the path of the
    /// kept logs when a server fails.
    pub async fn start() -> Result<Self, Error> {
        // kube builds rustls configs with the process-wide default provider; pick one in case
        // several are compiled in. An error only means one was installed already.
        let _ = rustls::crypto::ring::default_provider().install_default();

        let bins = Binaries {
            etcd: bin_path("etcd")?,
            apiserver: bin_path("kube-apiserver")?,
            controller_manager: bin_path("kube-controller-manager")?,
        };
        // Free ports are found by binding port 0 and letting go, so another process can take one
        // before the server binds it: start again on fresh ports when that happens.
        let mut attempt = 1;
        loop {
            match Self::start_once(&bins).await {
                Err(Error::ServerExited { log, .. }) if attempt < 3 && port_was_taken(&log) => {
                    // The failed attempt's directory (`<dir>/logs/<server>.log`) is of no use.
                    if let Some(dir) = log.parent().and_then(Path::parent) {
                        let _ = std::fs::remove_dir_all(dir);
                    }
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    async fn start_once(bins: &Binaries) -> Result<Self, Error> {
        let dir = tempfile::Builder::new()
            .prefix("clientcreds-control-plane-")
            .tempdir()
            .map_err(io("cannot create a temporary directory"))?;
        let root = dir.path().to_path_buf();
        let mut servers = Servers {
            children: Vec::new(),
            commands: Vec::new(),
            dir: Some(dir),
            root: root.clone(),
            keep: false,
        };
        for sub in ["logs", "pki", "etcd", "kubeconfigs"] {
            create_dir(&root.join(sub))?;
        }

        let ca = Ca::new("clientcreds-e2e-ca")?;
        let serving = ca.serving_cert()?;
        let (sa_private, sa_public) = crate::pki::service_account_key()?;
        let pki = root.join("pki");
        write(&pki.join("ca.crt"), ca.cert_pem())?;
        write(&pki.join("apiserver.crt"), &serving.cert_pem)?;
        write(&pki.join("apiserver.key"), &serving.key_pem)?;
        write(&pki.join("sa.key"), &sa_private)?;
        write(&pki.join("sa.pub"), &sa_public)?;

        let etcd_client = free_port()?;
        let etcd_peer = free_port()?;
        let apiserver_port = free_port()?;
        let server_url = format!("https://127.0.0.1:{apiserver_port}");
        let p = |name: &str| pki.join(name).display().to_string();

        let etcd_client_url = format!("http://127.0.0.1:{etcd_client}");
        let etcd_peer_url = format!("http://127.0.0.1:{etcd_peer}");
        servers.spawn(
            "etcd",
            &bins.etcd,
            &[
                "--name=default".to_owned(),
                format!("--data-dir={}", root.join("etcd").join("data").display()),
                format!("--listen-client-urls={etcd_client_url}"),
                format!("--advertise-client-urls={etcd_client_url}"),
                format!("--listen-peer-urls={etcd_peer_url}"),
                format!("--initial-advertise-peer-urls={etcd_peer_url}"),
                format!("--initial-cluster=default={etcd_peer_url}"),
                "--unsafe-no-fsync".to_owned(),
            ],
        )?;
        servers.spawn(
            "kube-apiserver",
            &bins.apiserver,
            &[
                format!("--etcd-servers={etcd_client_url}"),
                "--bind-address=127.0.0.1".to_owned(),
                "--advertise-address=127.0.0.1".to_owned(),
                format!("--secure-port={apiserver_port}"),
                format!("--cert-dir={}", p("")),
                format!("--tls-cert-file={}", p("apiserver.crt")),
                format!("--tls-private-key-file={}", p("apiserver.key")),
                format!("--client-ca-file={}", p("ca.crt")),
                // Node: what a kubelet may read (its pods' Secrets only), as in a real cluster.
                "--authorization-mode=Node,RBAC".to_owned(),
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local".to_owned(),
                format!("--service-account-key-file={}", p("sa.pub")),
                format!("--service-account-signing-key-file={}", p("sa.key")),
                "--service-cluster-ip-range=10.0.0.0/24".to_owned(),
                // The `kubernetes` Service cannot have loopback endpoints.
                "--endpoint-reconciler-type=none".to_owned(),
                "--enable-priority-and-fairness=false".to_owned(),
                "--allow-privileged=true".to_owned(),
                "--profiling=false".to_owned(),
            ],
        )?;

        let admin_cert = ca.client_cert(ADMIN_USER, &["system:masters"])?;
        let admin = client(&server_url, &ca, &admin_cert)?;
        let kubeconfig = root.join("kubeconfig");
        write_kubeconfig(&kubeconfig, &server_url, &ca, ADMIN_USER, &admin_cert)?;

        if let Err(err) = wait_ready(&admin, &mut servers).await {
            servers.keep = true;
            return Err(err);
        }

        // Its own identity, in system:masters: the controllers need to see every resource.
        let kcm_cert = ca.client_cert("system:kube-controller-manager", &["system:masters"])?;
        let kcm_kubeconfig = root
            .join("kubeconfigs")
            .join("kube-controller-manager.yaml");
        write_kubeconfig(
            &kcm_kubeconfig,
            &server_url,
            &ca,
            "system:kube-controller-manager",
            &kcm_cert,
        )?;
        servers.spawn(
            "kube-controller-manager",
            &bins.controller_manager,
            &[
                format!("--kubeconfig={}", kcm_kubeconfig.display()),
                format!("--controllers={CONTROLLERS}"),
                "--leader-elect=false".to_owned(),
                // No serving port: nothing to collide on, nothing to authenticate.
                "--secure-port=0".to_owned(),
                "--use-service-account-credentials=false".to_owned(),
            ],
        )?;

        Ok(Self {
            servers,
            server_url,
            ca,
            admin,
            kubeconfig,
        })
    }

    /// A client authenticated as the admin (`system:masters`: allowed everything, RBAC or not),
    /// default namespace `default`.
    pub fn admin_client(&self) -> Client {
        self.admin.clone()
    }

    /// A client authenticated by a fresh client certificate with `CN=user` and one `O=` per
    /// group, so it has exactly the permissions RBAC grants that user and those groups (plus
    /// `system:authenticated`, which the server adds).
    ///
    /// To act as a service account, use `user = "system:serviceaccount:<ns>:<name>"` and groups
    /// `["system:serviceaccounts", "system:serviceaccounts:<ns>"]`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidIdentity`] for an empty user or group.
    pub fn client_for(&self, user: &str, groups: &[&str]) -> Result<Client, Error> {
        validate_identity(user, groups)?;
        let cert = self.ca.client_cert(user, groups)?;
        client(&self.server_url, &self.ca, &cert)
    }

    /// A client authenticated as the service account `namespace/name`: user
    /// `system:serviceaccount:<namespace>:<name>` in the groups `system:serviceaccounts` and
    /// `system:serviceaccounts:<namespace>`, so RoleBindings to that ServiceAccount (say, the
    /// ones a Helm chart installs) apply to it. The ServiceAccount object need not exist.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidIdentity`] for an empty namespace or name.
    pub fn service_account_client(&self, namespace: &str, name: &str) -> Result<Client, Error> {
        if namespace.is_empty() || name.is_empty() {
            return Err(Error::InvalidIdentity {
                field: "service account",
                value: format!("{namespace}/{name}"),
                reason: "namespace and name must not be empty",
            });
        }
        let user = format!("system:serviceaccount:{namespace}:{name}");
        let ns_group = format!("system:serviceaccounts:{namespace}");
        self.client_for(&user, &["system:serviceaccounts", &ns_group])
    }

    /// Writes a kubeconfig authenticating as `user` in `groups` (like [`Self::client_for`]) and
    /// returns its path: for a process under test (`KUBECONFIG=…`), kubectl or helm.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidIdentity`] for an empty user or group; [`Error::Io`] if it cannot be
    /// written.
    pub fn kubeconfig_for(&self, user: &str, groups: &[&str]) -> Result<PathBuf, Error> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        validate_identity(user, groups)?;
        let cert = self.ca.client_cert(user, groups)?;
        let safe: String = user
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = self
            .servers
            .root
            .join("kubeconfigs")
            .join(format!("{n}-{safe}.yaml"));
        write_kubeconfig(&path, &self.server_url, &self.ca, user, &cert)?;
        Ok(path)
    }

    /// The admin kubeconfig (for kubectl and helm; context `clientcreds-e2e`).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// The API server's URL, `https://127.0.0.1:<port>`.
    pub fn server_url(&self) -> &str {
        &self.server_url
    }

    /// The CA certificate (PEM) that signed the API server's serving certificate and every
    /// client certificate.
    pub fn ca_pem(&self) -> &str {
        self.ca.cert_pem()
    }

    /// The control plane's directory: `logs/` (one file per server), `pki/`, `kubeconfig`,
    /// `kubeconfigs/`, `etcd/`.
    pub fn dir(&self) -> &Path {
        &self.servers.root
    }

    /// A command running one of the built tools (`"kubectl"`, `"helm"`) against this control
    /// plane as the admin: `KUBECONFIG` is set, helm's cache, config and data live in the
    /// control plane's directory, and the process is killed if the command is dropped.
    ///
    /// ```no_run
    /// # async fn demo(cp: &clientcreds_e2e::ControlPlane) -> Result<(), Box<dyn std::error::Error>> {
    /// let out = cp.tool("kubectl")?.args(["get", "namespaces"]).output().await?;
    /// assert!(out.status.success());
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::BinaryMissing`] when the tool is not built.
    pub fn tool(&self, name: &str) -> Result<Command, Error> {
        let mut cmd = Command::new(bin_path(name)?);
        let helm = self.servers.root.join("helm");
        cmd.env("KUBECONFIG", &self.kubeconfig)
            .env("HELM_CACHE_HOME", helm.join("cache"))
            .env("HELM_CONFIG_HOME", helm.join("config"))
            .env("HELM_DATA_HOME", helm.join("data"))
            .kill_on_drop(true);
        Ok(cmd)
    }

    /// Creates a namespace (as the admin) and returns it.
    ///
    /// # Errors
    ///
    /// [`Error::Kube`] when the server refuses (it exists already, the name is invalid).
    pub async fn create_namespace(&self, name: &str) -> Result<Namespace, Error> {
        let mut ns = Namespace::default();
        ns.metadata.name = Some(name.to_owned());
        Ok(Api::<Namespace>::all(self.admin.clone())
            .create(&PostParams::default(), &ns)
            .await?)
    }

    /// Creates or updates (server-side apply, as the admin) each CustomResourceDefinition and
    /// waits until every one is established, so its resources can be used right away.
    ///
    /// # Errors
    ///
    /// [`Error::Kube`] when the server rejects one; [`Error::CrdNotEstablished`] after a minute.
    pub async fn install_crds(&self, crds: &[CustomResourceDefinition]) -> Result<(), Error> {
        let api: Api<CustomResourceDefinition> = Api::all(self.admin.clone());
        let params = PatchParams::apply("clientcreds-e2e").force();
        let mut names = Vec::with_capacity(crds.len());
        for crd in crds {
            let name = crd.metadata.name.clone().unwrap_or_default();
            let mut crd = crd.clone();
            crd.metadata.managed_fields = None;
            crd.metadata.resource_version = None;
            api.patch(&name, &params, &Patch::Apply(&crd)).await?;
            names.push(name);
        }
        for name in names {
            let established = await_condition(api.clone(), &name, conditions::is_crd_established());
            match tokio::time::timeout(CRD_TIMEOUT, established).await {
                Ok(Ok(_)) => {}
                Ok(Err(_)) | Err(_) => {
                    return Err(Error::CrdNotEstablished {
                        name,
                        timeout: CRD_TIMEOUT,
                    });
                }
            }
        }
        Ok(())
    }

    /// Checks that etcd, kube-apiserver and kube-controller-manager are all still running.
    ///
    /// # Errors
    ///
    /// [`Error::ServerExited`] naming the first that exited, with its log (the directory is then
    /// kept when the control plane is dropped).
    pub fn check_running(&mut self) -> Result<(), Error> {
        let result = self.servers.check_running();
        if result.is_err() {
            self.servers.keep = true;
        }
        result
    }

    /// Kills kube-apiserver (SIGKILL), leaves it down for `down`, starts it again on the same
    /// port with the same flags, and waits until it answers `/readyz` again. Clients made before
    /// keep working once it is back.
    ///
    /// # Errors
    ///
    /// [`Error::ServerExited`] or [`Error::NotReady`] when it does not come back.
    pub async fn restart_apiserver(&mut self, down: Duration) -> Result<(), Error> {
        self.restart_and_wait("kube-apiserver", down).await
    }

    /// Kills etcd (SIGKILL), leaves it down for `down`, starts it again on the same ports with
    /// the same data directory (every object kept), and waits until the API server answers
    /// `/readyz` again.
    ///
    /// # Errors
    ///
    /// [`Error::ServerExited`] or [`Error::NotReady`] when it does not come back.
    pub async fn restart_etcd(&mut self, down: Duration) -> Result<(), Error> {
        self.restart_and_wait("etcd", down).await
    }

    async fn restart_and_wait(&mut self, name: &str, down: Duration) -> Result<(), Error> {
        let result = match self.servers.restart(name, down).await {
            Ok(()) => wait_ready(&self.admin, &mut self.servers).await,
            Err(err) => Err(err),
        };
        if result.is_err() {
            self.servers.keep = true;
        }
        result
    }

    /// Stops the servers now (the same as dropping), keeping the directory if `keep` is true;
    /// returns the directory's path.
    pub fn stop(mut self, keep: bool) -> PathBuf {
        self.servers.keep |= keep;
        self.servers.root.clone()
    }
}

struct Binaries {
    etcd: PathBuf,
    apiserver: PathBuf,
    controller_manager: PathBuf,
}

/// The server processes and the directory; stopping them is its `Drop`.
pub(crate) struct Servers {
    children: Vec<(&'static str, Child)>,
    /// How each server was started (binary and arguments), to start it again the same way.
    commands: Vec<(&'static str, PathBuf, Vec<String>)>,
    dir: Option<TempDir>,
    pub(crate) root: PathBuf,
    pub(crate) keep: bool,
}

impl Servers {
    pub(crate) fn log_path(&self, name: &str) -> PathBuf {
        self.root.join("logs").join(format!("{name}.log"))
    }

    pub(crate) fn spawn(
        &mut self,
        name: &'static str,
        bin: &Path,
        args: &[String],
    ) -> Result<(), Error> {
        let log_path = self.log_path(name);
        let log =
            File::create(&log_path).map_err(io(format!("cannot create {}", log_path.display())))?;
        let child = self.start(bin, args, log)?;
        self.commands.push((name, bin.to_path_buf(), args.to_vec()));
        self.children.push((name, child));
        Ok(())
    }

    /// Starts `bin` with `args`, its output going to `log`.
    fn start(&self, bin: &Path, args: &[String], log: File) -> Result<Child, Error> {
        let log2 = log
            .try_clone()
            .map_err(io(format!("cannot open the log of {}", bin.display())))?;
        let mut cmd = match setpriv() {
            // Dies with this thread even if this process is killed without unwinding.
            Some(setpriv) => {
                let mut cmd = Command::new(setpriv);
                cmd.args(["--pdeathsig", "KILL", "--"]).arg(bin);
                cmd
            }
            None => Command::new(bin),
        };
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .kill_on_drop(true);
        cmd.spawn()
            .map_err(io(format!("cannot start {}", bin.display())))
    }

    /// Kills server `name` (SIGKILL: a crash, no graceful shutdown), waits until it has exited,
    /// then `down` more, and starts it again with the same arguments — the same ports, the same
    /// data directory — its output appended to its log.
    pub(crate) async fn restart(&mut self, name: &str, down: Duration) -> Result<(), Error> {
        let Some(index) = self.children.iter().position(|(n, _)| *n == name) else {
            return Err(Error::Io {
                what: format!("no server named {name}"),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            });
        };
        let child = &mut self.children[index].1;
        child
            .kill()
            .await
            .map_err(io(format!("cannot kill {name}")))?;
        tokio::time::sleep(down).await;
        let (name, bin, args) = self.commands[index].clone();
        let log_path = self.log_path(name);
        let log = std::fs::OpenOptions::new()
            .append(true)
            .open(&log_path)
            .map_err(io(format!("cannot open {}", log_path.display())))?;
        self.children[index].1 = self.start(&bin, &args, log)?;
        Ok(())
    }

    /// An error for the first server that has exited.
    fn check_running(&mut self) -> Result<(), Error> {
        for i in 0..self.children.len() {
            let (name, child) = &mut self.children[i];
            let name = *name;
            if let Ok(Some(status)) = child.try_wait() {
                return Err(Error::ServerExited {
                    name,
                    status: status.to_string(),
                    log: self.log_path(name),
                });
            }
        }
        Ok(())
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        // Reverse order: the controller manager and API server before etcd.
        for (_, child) in self.children.iter_mut().rev() {
            let _ = child.start_kill();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        for (_, child) in &mut self.children {
            while Instant::now() < deadline {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        }
        let asked = std::env::var_os(KEEP_ENV).is_some_and(|v| !v.is_empty() && v != "0");
        let keep = asked || self.keep || std::thread::panicking();
        // Otherwise dropping `dir` removes it.
        if let Some(dir) = self.dir.take()
            && keep
        {
            let path = dir.keep();
            if !asked {
                // The database is large and useless for reading what went wrong.
                let _ = std::fs::remove_dir_all(path.join("etcd").join("data"));
            }
            eprintln!(
                "control plane kept in {} (server logs in {})",
                path.display(),
                path.join("logs").display()
            );
        }
    }
}

async fn wait_ready(admin: &Client, servers: &mut Servers) -> Result<(), Error> {
    let start = Instant::now();
    loop {
        servers.check_running()?;
        let request = http_get("/readyz");
        let last = match admin.request_text(request).await {
            Ok(body) if body.trim() == "ok" => return Ok(()),
            Ok(body) => body,
            Err(err) => err.to_string(),
        };
        if start.elapsed() > READY_TIMEOUT {
            return Err(Error::NotReady {
                timeout: READY_TIMEOUT,
                last,
                logs: servers.root.join("logs"),
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn http_get(path: &'static str) -> http::Request<Vec<u8>> {
    let mut request = http::Request::new(Vec::new());
    *request.uri_mut() = http::Uri::from_static(path);
    request
}

fn client(server_url: &str, ca: &Ca, cert: &CertAndKey) -> Result<Client, Error> {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let url = http::Uri::try_from(server_url).map_err(|e| Error::Io {
        what: format!("invalid server URL {server_url}"),
        source: std::io::Error::other(e),
    })?;
    let mut config = kube::Config::new(url);
    config.root_cert = Some(vec![ca.cert_der().to_vec()]);
    config.auth_info = AuthInfo {
        client_certificate_data: Some(b64(&cert.cert_pem)),
        client_key_data: Some(SecretString::from(b64(&cert.key_pem))),
        ..AuthInfo::default()
    };
    Ok(Client::try_from(config)?)
}

fn kubeconfig(server_url: &str, ca: &Ca, user: &str, cert: &CertAndKey) -> Kubeconfig {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    Kubeconfig {
        clusters: vec![NamedCluster {
            name: CONTEXT.to_owned(),
            cluster: Some(Cluster {
                server: Some(server_url.to_owned()),
                certificate_authority_data: Some(b64(ca.cert_pem())),
                ..Cluster::default()
            }),
            ..NamedCluster::default()
        }],
        auth_infos: vec![NamedAuthInfo {
            name: user.to_owned(),
            auth_info: Some(AuthInfo {
                client_certificate_data: Some(b64(&cert.cert_pem)),
                client_key_data: Some(SecretString::from(b64(&cert.key_pem))),
                ..AuthInfo::default()
            }),
            ..NamedAuthInfo::default()
        }],
        contexts: vec![NamedContext {
            name: CONTEXT.to_owned(),
            context: Some(Context {
                cluster: CONTEXT.to_owned(),
                user: Some(user.to_owned()),
                namespace: Some("default".to_owned()),
                ..Context::default()
            }),
            ..NamedContext::default()
        }],
        current_context: Some(CONTEXT.to_owned()),
        kind: Some("Config".to_owned()),
        api_version: Some("v1".to_owned()),
        ..Kubeconfig::default()
    }
}

fn write_kubeconfig(
    path: &Path,
    server_url: &str,
    ca: &Ca,
    user: &str,
    cert: &CertAndKey,
) -> Result<(), Error> {
    let yaml =
        serde_yaml::to_string(&kubeconfig(server_url, ca, user, cert)).map_err(|e| Error::Io {
            what: format!("cannot serialize the kubeconfig {}", path.display()),
            source: std::io::Error::other(e.to_string()),
        })?;
    write(path, &yaml)
}

fn validate_identity(user: &str, groups: &[&str]) -> Result<(), Error> {
    let check = |field: &'static str, value: &str| {
        if value.is_empty() {
            Err(Error::InvalidIdentity {
                field,
                value: value.to_owned(),
                reason: "it must not be empty",
            })
        } else if value.chars().any(char::is_control) {
            Err(Error::InvalidIdentity {
                field,
                value: value.to_owned(),
                reason: "it must not contain control characters",
            })
        } else {
            Ok(())
        }
    };
    check("user", user)?;
    groups.iter().try_for_each(|g| check("group", g))
}

/// A loopback port nobody in this process has been given yet and nobody is listening on now.
///
/// # Errors
///
/// [`Error::Io`] when no port can be bound.
pub fn free_port() -> Result<u16, Error> {
    static GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    loop {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))
            .map_err(io("cannot find a free loopback port"))?;
        let port = listener
            .local_addr()
            .map_err(io("cannot find a free loopback port"))?
            .port();
        let mut given = GIVEN
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if given.get_or_insert_with(HashSet::new).insert(port) {
            return Ok(port);
        }
    }
}

fn port_was_taken(log: &Path) -> bool {
    std::fs::read_to_string(log).is_ok_and(|text| text.contains("address already in use"))
}

fn setpriv() -> Option<&'static Path> {
    static SETPRIV: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    SETPRIV
        .get_or_init(|| {
            let found = ["/usr/bin/setpriv", "/bin/setpriv", "/usr/sbin/setpriv"]
                .iter()
                .map(PathBuf::from)
                .find(|p| p.is_file());
            if found.is_none() {
                eprintln!(
                    "clientcreds-e2e: warning: setpriv (util-linux) not found; the control plane's \
                     servers are still stopped on drop, but a test process killed with SIGKILL \
                     would leave them running (install util-linux to get --pdeathsig)"
                );
            }
            found
        })
        .as_deref()
}

fn create_dir(path: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(path).map_err(io(format!("cannot create {}", path.display())))
}

fn write(path: &Path, contents: &str) -> Result<(), Error> {
    std::fs::write(path, contents).map_err(io(format!("cannot write {}", path.display())))
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_must_not_be_empty() {
        let err = validate_identity("", &[]).unwrap_err().to_string();
        assert!(err.contains("user"), "{err}");
        let err = validate_identity("alice", &["ok", ""])
            .unwrap_err()
            .to_string();
        assert!(err.contains("group"), "{err}");
        assert!(validate_identity("alice", &["a", "b"]).is_ok());
    }

    #[test]
    fn free_ports_are_not_handed_out_twice() {
        let ports: HashSet<u16> = (0..50).map(|_| free_port().unwrap()).collect();
        assert_eq!(ports.len(), 50);
    }
}
