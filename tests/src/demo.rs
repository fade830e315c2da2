//! The whole product on this machine (`scripts/demo`, or `cargo run -p clientcreds-e2e -- demo`):
//! the control plane, a node with the kubelet's real volume code and the provider sandbox; the
//! operator installed with its Helm chart and its image run as the chart's pod; an OAuthClient
//! for each of the five providers; the token Secrets (never a token); a Pod's mounted token file
//! changing on a forced refresh; and the layer reading that mounted token to call an API.
//! Everything is removed on Ctrl-C (or at once with `--no-wait`).

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use clientcreds::bearer::BearerLayer;
use clientcreds::source::{MountedToken, TokenSource};
use clientcreds_sandbox::{Sandbox, SandboxConfig};
use http_body_util::Full;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Secret, ServiceAccount};
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use secrecy::ExposeSecret;
use serde_json::json;
use sha2::{Digest, Sha256};
use tower::{Layer, ServiceExt};

use crate::chart::{CHART_DIR, SANDBOX_EGRESS_SET, http_get, operator_image_archive};
use crate::container::{PodContainer, load_image};
use crate::five_providers::{self, oauthclient_resource};
use crate::{ControlPlane, Error, bin_path, free_port};

const RELEASE: &str = "clientcreds-operator";
const OPERATOR_NS: &str = "clientcreds-system";
const APP_NS: &str = "shop";
const WAIT: Duration = Duration::from_secs(120);

/// How the demo ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// Keep everything running until Ctrl-C, then clean up.
    WaitForCtrlC,
    /// Clean up as soon as the tour is done (for tests and CI).
    Immediately,
}

struct Progress {
    started: Instant,
    step: Instant,
}

impl Progress {
    fn new() -> Self {
        let now = Instant::now();
        Self {
            started: now,
            step: now,
        }
    }
    fn step(&mut self, what: &str) {
        self.step = Instant::now();
        println!("==> {what}");
    }
    fn done(&self, what: &str) {
        println!(
            "    {what} ({:.1}s; {:.0}s in all)",
            self.step.elapsed().as_secs_f64(),
            self.started.elapsed().as_secs_f64()
        );
    }
}

fn demo_error(what: impl Into<String>) -> Error {
    Error::Io {
        what: what.into(),
        source: std::io::Error::other("demo step failed"),
    }
}

/// A short, stable fingerprint of a token, so the output can show that it changed without ever
/// showing it.
pub fn fingerprint(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}…")
}

async fn wait_for<T, F, Fut>(what: &str, mut probe: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(v) = probe().await {
            return Ok(v);
        }
        if started.elapsed() > WAIT {
            return Err(demo_error(format!(
                "timed out after {WAIT:?} waiting for {what}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn kubectl(cp: &ControlPlane, args: &[&str]) -> Result<String, Error> {
    let out = cp
        .tool("kubectl")?
        .args(args)
        .output()
        .await
        .map_err(|source| Error::Io {
            what: "cannot run kubectl".into(),
            source,
        })?;
    if !out.status.success() {
        return Err(demo_error(format!(
            "kubectl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}\n")).collect()
}

fn secret_value(s: &Secret, key: &str) -> String {
    s.data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|v| String::from_utf8_lossy(&v.0).into_owned())
        .unwrap_or_default()
}

/// Runs the cluster demo, printing each step; see the module docs.
///
/// # Errors
///
/// The first step that fails, with what it was doing (the control plane's logs are kept).
pub async fn run(ending: Ending) -> Result<(), Error> {
    let mut p = Progress::new();

    p.step("starting etcd, kube-apiserver and kube-controller-manager on loopback");
    let mut cp = ControlPlane::start().await?;
    p.done(&format!("API server at {}", cp.server_url()));

    p.step("starting a node that runs the kubelet's real volume code (kubemark's hollow kubelet)");
    let node = cp.start_node("node-1", Duration::from_secs(1)).await?;
    p.done(&format!("node {} Ready", node.name()));

    p.step("starting the provider sandbox (Azupay, Autopay, PayU, Pyng, Afterpay)");
    let sandbox = Sandbox::start(SandboxConfig::default())
        .await
        .map_err(|e| demo_error(format!("cannot start the sandbox: {e}")))?;
    p.done(&format!("sandbox at {}", sandbox.base_url()));

    p.step("loading the operator image and installing the Helm chart");
    let image = load_image(&operator_image_archive()?).await?;
    let port = free_port()?;
    let port_value = format!("metrics.port={port}");
    println!(
        "    helm install {RELEASE} charts/clientcreds-operator -n {OPERATOR_NS} --create-namespace --set {port_value} {}",
        SANDBOX_EGRESS_SET.join(" ")
    );
    cp.helm(
        &[
            &[
                "install",
                RELEASE,
                CHART_DIR,
                "--namespace",
                OPERATOR_NS,
                "--create-namespace",
                "--set",
                &port_value,
            ][..],
            &SANDBOX_EGRESS_SET[..],
        ]
        .concat(),
    )
    .await?;
    let admin = cp.admin_client();
    let deployment = Api::<Deployment>::namespaced(admin.clone(), OPERATOR_NS)
        .get(RELEASE)
        .await?;
    p.done(&format!("installed; the Deployment runs {image}"));

    p.step("running the operator image as the chart's pod would run (podman + runc)");
    let pod = PodContainer::start(&cp, &deployment, "clientcreds-operator-5d8f7c9b4-demo1").await?;
    wait_for("the operator's /readyz", || async move {
        matches!(http_get(port, "/readyz").await, Some((200, _))).then_some(())
    })
    .await?;
    p.done(&format!(
        "operator ready: http://127.0.0.1:{port}/metrics (container {})",
        pod.name()
    ));

    p.step(&format!(
        "applying an OAuthClient for each provider in namespace {APP_NS}"
    ));
    cp.create_namespace(APP_NS).await?;
    let clients = five_providers::apply(&admin, APP_NS, &sandbox).await?;
    let oacs: Api<DynamicObject> =
        Api::namespaced_with(admin.clone(), APP_NS, &oauthclient_resource());
    for c in &clients {
        let oacs = oacs.clone();
        wait_for(&format!("{} Ready", c.name), move || {
            let oacs = oacs.clone();
            async move {
                let o = oacs.get(c.name).await.ok()?;
                o.data["status"]["conditions"]
                    .as_array()?
                    .iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
                    .then_some(())
            }
        })
        .await?;
    }
    p.done("all five Ready (Azupay enabled once, its one-time secret stored)");
    println!("\n$ kubectl get oac -n {APP_NS}");
    print!(
        "{}",
        indent(&kubectl(&cp, &["get", "oac", "-n", APP_NS]).await?)
    );

    println!("\n$ kubectl get secrets -n {APP_NS}   (token Secrets; values never printed)");
    print!(
        "{}",
        indent(&kubectl(&cp, &["get", "secrets", "-n", APP_NS]).await?)
    );
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), APP_NS);
    println!("    token fingerprints (sha256 of the token, not the token):");
    for c in &clients {
        let s = secrets.get(&c.token_secret).await?;
        println!(
            "      {:<15} {}  expires {}",
            c.token_secret,
            fingerprint(&secret_value(&s, "access_token")),
            secret_value(&s, "expires_at")
        );
    }

    p.step("a Pod on the node mounts the PayU token Secret");
    let sas: Api<ServiceAccount> = Api::namespaced(admin.clone(), APP_NS);
    wait_for("the namespace's default ServiceAccount", || {
        let sas = sas.clone();
        async move { sas.get("default").await.ok() }
    })
    .await?;
    let pods: Api<Pod> = Api::namespaced(admin.clone(), APP_NS);
    let app = node.pod_mounting_secret("app", "payu-token", "payu-token");
    let uid = pods
        .create(&PostParams::default(), &app)
        .await?
        .metadata
        .uid
        .unwrap_or_default();
    let dir: PathBuf = node.secret_volume_dir(&uid, "payu-token");
    {
        let dir = dir.clone();
        wait_for("the kubelet to write the token volume", move || {
            let dir = dir.clone();
            async move { dir.join("access_token").exists().then_some(()) }
        })
        .await?;
    }
    let mounted = MountedToken::new(&dir)
        .and_then(|m| m.check_interval(Duration::from_millis(50)))
        .map_err(|e| demo_error(format!("MountedToken: {e}")))?;
    let token = mounted
        .token()
        .await
        .map_err(|e| demo_error(format!("reading the mounted token: {e}")))?;
    let old = token.secret().expose_secret().to_owned();
    p.done(&format!(
        "the kubelet wrote {} (token {}, expires in {}s)",
        dir.display(),
        fingerprint(&old),
        token
            .expires_at()
            .duration_since(SystemTime::now())
            .unwrap_or_default()
            .as_secs()
    ));

    p.step("forcing a refresh: kubectl annotate oac payu clientcreds.dev/refresh=demo");
    let asked = Instant::now();
    oacs.patch(
        "payu",
        &PatchParams::default(),
        &Patch::Merge(&json!({"metadata": {"annotations": {"clientcreds.dev/refresh": "demo"}}})),
    )
    .await?;
    let new = wait_for("the new token in the pod's volume", || {
        let mounted = mounted.clone();
        let old = old.clone();
        async move {
            let t = mounted.token().await.ok()?;
            let s = t.secret().expose_secret().to_owned();
            (s != old).then_some(s)
        }
    })
    .await?;
    p.done(&format!(
        "the pod's mounted token changed {} → {} after {:.1}s (operator write + kubelet ..data swap)",
        fingerprint(&old),
        fingerprint(&new),
        asked.elapsed().as_secs_f64()
    ));

    p.step("the layer: BearerLayer over the pod's mounted token calls PayU's API");
    let payu = sandbox.payu();
    let http = clientcreds::HttpClient::new();
    let api = BearerLayer::new(mounted.clone()).layer(tower::service_fn(
        move |request: http::Request<Full<Bytes>>| {
            let http = http.clone();
            async move { http.send(request).await }
        },
    ));
    let request = http::Request::get(&payu.resource_url)
        .body(Full::default())
        .map_err(|e| demo_error(format!("the request: {e}")))?;
    let response = api
        .oneshot(request)
        .await
        .map_err(|e| demo_error(format!("the call through the layer: {e}")))?;
    p.done(&format!(
        "GET {} → {}",
        payu.resource_url,
        response.status()
    ));
    if !response.status().is_success() {
        return Err(demo_error(format!("PayU answered {}", response.status())));
    }

    let kubectl_path = bin_path("kubectl")
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "kubectl".into());
    println!(
        "\nEverything is running. Try:\n\
         \x20 export KUBECONFIG={kubeconfig}\n\
         \x20 {kubectl_path} get oac -A                # provider, ready, next expiry\n\
         \x20 {kubectl_path} -n {APP_NS} annotate oac payu clientcreds.dev/refresh=$(date +%s) --overwrite\n\
         \x20 cat {dir}/expires_at          # the pod's volume, as the kubelet wrote it\n\
         \x20 curl -s http://127.0.0.1:{port}/metrics | grep clientcreds_operator_\n\
         \x20 podman --storage-driver vfs logs {container}\n\
         \x20 {kubectl_path} -n {APP_NS} describe oac azupay   # conditions and events",
        kubeconfig = cp.kubeconfig_path().display(),
        dir = dir.display(),
        container = pod.name(),
    );
    if ending == Ending::WaitForCtrlC {
        println!("\nCtrl-C stops the operator, the node and the control plane and removes them.");
        let _ = tokio::signal::ctrl_c().await;
    }
    println!("cleaning up…");
    drop(pod);
    drop(cp);
    println!("done");
    Ok(())
}
