//! Shared set-up of the operator e2e tests: a real control plane with the CRD and the operator's
//! RBAC (deploy/rbac.yaml) installed, the sandbox as every provider, and the operator running
//! in-process as the `clientcreds-system/clientcreds-operator` service account.
#![allow(clippy::unwrap_used, dead_code, unreachable_pub)]

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use clientcreds_e2e::ControlPlane;
use clientcreds_operator::crd::OAuthClient;
use clientcreds_operator::egress::EgressPolicy;
use clientcreds_operator::run::{Config, LeaderElection};
use clientcreds_sandbox::{Sandbox, SandboxConfig};
use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams};
use kube::{Client, CustomResourceExt};
use serde::Serialize;
use serde_json::json;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const EVENTUALLY: Duration = Duration::from_secs(120);
pub const OPERATOR_NS: &str = "clientcreds-system";
pub const OPERATOR_SA: &str = "clientcreds-operator";

pub mod capture;

/// Everything the operator logs in this test binary (all tests), for the "no secret in logs"
/// checks. Also written, as text and as JSON lines, to the leak-scan capture ([`capture`]),
/// which records panic messages too.
pub fn logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        let buf = Arc::new(Mutex::new(Vec::new()));
        let text = LogWriter {
            buf: Some(buf.clone()),
            file: capture::log_file("operator.log"),
        };
        let json = LogWriter {
            buf: None,
            file: capture::log_file("operator.json.log"),
        };
        capture::capture_panics();
        let _ = tracing_subscriber::registry()
            .with(tracing_subscriber::EnvFilter::new(
                "clientcreds_operator=debug,clientcreds=debug,kube=info,kube_lease_manager=info,info",
            ))
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(move || text.clone())
                    .with_ansi(false),
            )
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(move || json.clone()),
            )
            .try_init();
        buf
    })
    .clone()
}

/// Where the operator's log lines go: the leak-scan capture file, and for the text format also
/// the in-memory buffer of [`captured_logs`] and stderr (so a failing test shows what happened).
#[derive(Clone)]
pub struct LogWriter {
    buf: Option<Arc<Mutex<Vec<u8>>>>,
    file: Arc<Mutex<std::fs::File>>,
}

impl Write for LogWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if let Some(buf) = &self.buf {
            buf.lock().unwrap().extend_from_slice(b);
            let _ = std::io::stderr().write_all(b);
        }
        let _ = self.file.lock().unwrap().write_all(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub fn captured_logs() -> String {
    String::from_utf8_lossy(&logs().lock().unwrap()).into_owned()
}

pub struct Env {
    pub cp: ControlPlane,
    pub sandbox: Sandbox,
    pub admin: Client,
    pub ns: String,
}

async fn apply<K>(client: &Client, obj: K)
where
    K: kube::Resource<DynamicType = ()> + Serialize + std::fmt::Debug,
{
    let ar = ApiResource::erase::<K>(&());
    let name = obj.meta().name.clone().unwrap();
    let api: Api<DynamicObject> = match obj.meta().namespace.clone() {
        Some(ns) => Api::namespaced_with(client.clone(), &ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    };
    api.patch(
        &name,
        &PatchParams::apply("clientcreds-e2e").force(),
        &Patch::Apply(&obj),
    )
    .await
    .unwrap();
}

/// Applies every document of deploy/rbac.yaml as the admin.
pub async fn install_rbac(admin: &Client) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/rbac.yaml");
    install_rbac_yaml(admin, &std::fs::read_to_string(path).unwrap()).await;
}

/// Applies every document of `text` (RBAC manifests as `clientcreds-operator rbac` prints them)
/// as the admin.
pub async fn install_rbac_yaml(admin: &Client, text: &str) {
    for doc in serde_yaml::Deserializer::from_str(text) {
        let value = serde_json::Value::deserialize(doc).unwrap();
        if value.is_null() {
            continue;
        }
        match value["kind"].as_str().unwrap() {
            "Namespace" => apply::<Namespace>(admin, serde_json::from_value(value).unwrap()).await,
            "ServiceAccount" => {
                apply::<ServiceAccount>(admin, serde_json::from_value(value).unwrap()).await
            }
            "ClusterRole" => {
                apply::<ClusterRole>(admin, serde_json::from_value(value).unwrap()).await
            }
            "ClusterRoleBinding" => {
                apply::<ClusterRoleBinding>(admin, serde_json::from_value(value).unwrap()).await
            }
            "Role" => apply::<Role>(admin, serde_json::from_value(value).unwrap()).await,
            "RoleBinding" => {
                apply::<RoleBinding>(admin, serde_json::from_value(value).unwrap()).await
            }
            other => panic!("unexpected kind {other} in deploy/rbac.yaml"),
        }
    }
}

use serde::Deserialize;

/// Starts the control plane, installs the CRD and RBAC, creates the operator's and the app's
/// namespaces, and starts the sandbox.
pub async fn setup(config: SandboxConfig) -> Env {
    logs();
    let cp = match ControlPlane::start().await {
        Ok(cp) => cp,
        Err(err) => panic!("cannot start the control plane: {err}"),
    };
    let admin = cp.admin_client();
    cp.install_crds(&[OAuthClient::crd()]).await.unwrap();
    cp.create_namespace(OPERATOR_NS).await.unwrap();
    install_rbac(&admin).await;
    let ns = "app".to_owned();
    cp.create_namespace(&ns).await.unwrap();
    let sandbox = Sandbox::start(config).await.unwrap();
    capture::add_secrets(capture::sandbox_secrets(&sandbox));
    Env {
        cp,
        sandbox,
        admin,
        ns,
    }
}

/// The egress policy of the operator under test: the sandbox's host (`127.0.0.1`, plain http)
/// besides the providers' public hosts.
pub fn sandbox_egress() -> EgressPolicy {
    EgressPolicy::new(
        ["127.0.0.1", clientcreds_operator::egress::PRESET_HOSTS],
        true,
    )
    .unwrap()
}

/// The operator's configuration in these tests: the defaults, with [`sandbox_egress`].
pub fn test_config() -> Config {
    Config {
        egress: sandbox_egress(),
        ..Config::default()
    }
}

/// A running in-process operator.
pub struct Operator {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
    /// Its `/metrics`, scraped into the leak-scan capture when it stops or is killed.
    metrics: String,
}

impl Operator {
    /// Graceful stop (releases its Lease).
    pub async fn stop(mut self) {
        capture::metrics(&self.metrics).await;
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(30), &mut self.task).await;
        self.task.abort();
    }
    /// A crash: the task is aborted where it is.
    pub async fn kill(self) {
        capture::metrics(&self.metrics).await;
        self.task.abort();
        let _ = self.task.await;
    }
}

impl Env {
    /// A client with only the operator's RBAC.
    pub fn operator_client(&self) -> Client {
        self.cp
            .service_account_client(OPERATOR_NS, OPERATOR_SA)
            .unwrap()
    }

    pub fn start_operator(&self, leader: Option<&str>) -> Operator {
        let config = Config {
            leader_election: leader.map(|identity| LeaderElection {
                lease_name: "clientcreds-operator".into(),
                lease_namespace: OPERATOR_NS.into(),
                identity: identity.into(),
                duration_seconds: 6,
                grace_seconds: 2,
            }),
            instance: leader.map(str::to_owned),
            ..test_config()
        };
        self.start_operator_with(config)
    }

    pub fn start_operator_with(&self, config: Config) -> Operator {
        self.start_operator_as(self.operator_client(), config)
    }

    /// Starts the operator with `client`'s identity (e.g. one with a namespaced Role only).
    /// Without a `metrics_addr` it serves `/metrics` on a free loopback port anyway, for the
    /// leak-scan capture.
    pub fn start_operator_as(&self, client: Client, mut config: Config) -> Operator {
        let addr = *config
            .metrics_addr
            .get_or_insert_with(|| ([127, 0, 0, 1], clientcreds_e2e::free_port().unwrap()).into());
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = rx.await;
            };
            if let Err(e) = clientcreds_operator::run::run(client, config, shutdown).await {
                panic!("operator failed: {e}");
            }
        });
        Operator {
            stop: Some(tx),
            task,
            metrics: format!("http://{addr}/metrics"),
        }
    }

    pub fn oacs(&self) -> Api<OAuthClient> {
        Api::namespaced(self.admin.clone(), &self.ns)
    }

    pub fn secrets(&self) -> Api<Secret> {
        Api::namespaced(self.admin.clone(), &self.ns)
    }

    pub async fn create_secret(&self, name: &str, data: &[(&str, &str)]) {
        let string_data: serde_json::Map<String, serde_json::Value> = data
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        let secret: Secret = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": self.ns},
            "stringData": string_data,
        }))
        .unwrap();
        self.secrets()
            .patch(
                name,
                &PatchParams::apply("clientcreds-e2e").force(),
                &Patch::Apply(&secret),
            )
            .await
            .unwrap();
    }

    pub async fn create_oac(&self, value: serde_json::Value) -> OAuthClient {
        let mut value = value;
        value["apiVersion"] = json!("clientcreds.dev/v1alpha1");
        value["kind"] = json!("OAuthClient");
        value["metadata"]["namespace"] = json!(self.ns);
        let oac: OAuthClient = serde_json::from_value(value).unwrap();
        self.oacs().create(&Default::default(), &oac).await.unwrap()
    }

    /// Waits until condition `type_` has `status` and returns the object.
    pub async fn wait_condition(&self, name: &str, type_: &str, status: &str) -> OAuthClient {
        let api = self.oacs();
        clientcreds_e2e::eventually(&format!("{name} {type_}={status}"), EVENTUALLY, || {
            let api = api.clone();
            async move {
                let o = api.get(name).await.ok()?;
                let ok = o
                    .status
                    .as_ref()?
                    .conditions
                    .iter()
                    .any(|c| c.type_ == type_ && c.status == status);
                ok.then_some(o)
            }
        })
        .await
    }

    /// Waits until condition `type_` has `reason`; returns the object and that condition.
    pub async fn wait_condition_reason(
        &self,
        name: &str,
        type_: &str,
        reason: &str,
    ) -> (OAuthClient, Condition) {
        let api = self.oacs();
        clientcreds_e2e::eventually(&format!("{name} {type_} {reason}"), EVENTUALLY, || {
            let api = api.clone();
            async move {
                let o = api.get(name).await.ok()?;
                let c = o
                    .status
                    .as_ref()?
                    .conditions
                    .iter()
                    .find(|c| c.type_ == type_ && c.reason == reason)?
                    .clone();
                Some((o, c))
            }
        })
        .await
    }

    pub async fn wait_ready(&self, name: &str) -> OAuthClient {
        self.wait_condition(name, "Ready", "True").await
    }

    pub async fn token_secret(&self, name: &str) -> Secret {
        self.secrets().get(name).await.unwrap()
    }

    /// Events about objects in the app namespace.
    pub async fn events(&self) -> Vec<Event> {
        Api::<Event>::namespaced(self.admin.clone(), &self.ns)
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
    }

    /// Asserts that none of `secrets` appears in the captured logs, the events, or the status
    /// of any OAuthClient in the namespace.
    /// They are also looked for by the leak scan, in every form ([`capture`]).
    pub async fn assert_no_secret_anywhere(&self, secrets: &[String]) {
        let mut list = clientcreds_e2e::leak_scan::SecretList::default();
        for (n, s) in secrets.iter().enumerate() {
            list.add(format!("assert_no_secret_anywhere argument {n}"), s.clone());
        }
        capture::add_secrets(list);
        let logs = captured_logs();
        let events = serde_json::to_string(&self.events().await).unwrap();
        let statuses: Vec<_> = self
            .oacs()
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|o| serde_json::to_string(&o.status).unwrap())
            .collect();
        let statuses = statuses.join("\n");
        for s in secrets.iter().filter(|s| s.len() >= 6) {
            assert!(
                !logs.contains(s.as_str()),
                "a secret or token appears in the logs"
            );
            assert!(
                !events.contains(s.as_str()),
                "a secret or token appears in an event"
            );
            assert!(
                !statuses.contains(s.as_str()),
                "a secret or token appears in a status"
            );
        }
    }
}

pub fn data(secret: &Secret, key: &str) -> String {
    String::from_utf8(secret.data.as_ref().unwrap()[key].0.clone()).unwrap()
}

/// Calls a sandbox protected endpoint with a bearer token; returns the HTTP status.
pub async fn call_protected(url: &str, token: &str) -> u16 {
    let http = clientcreds::HttpClient::new();
    let request = http::Request::builder()
        .uri(url)
        .header("authorization", format!("Bearer {token}"))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    http.send(request).await.unwrap().status().as_u16()
}

impl Env {
    /// Creates the Azupay API key Secret and an Azupay OAuthClient with these token Secrets.
    pub async fn create_azupay(&self, name: &str, tokens: serde_json::Value) {
        let az = self.sandbox.azupay();
        self.create_secret("azupay-api-key", &[("apiKey", &az.api_key)])
            .await;
        self.create_oac(json!({
            "metadata": {"name": name},
            "spec": {
                "provider": "azupay",
                "azupay": {"endpoint": az.endpoint, "clientId": az.client_id,
                           "apiKeySecretRef": {"name": "azupay-api-key", "key": "apiKey"}},
                "credentials": {"secretName": "azupay-oauth2-credentials"},
                "tokens": tokens,
            }
        }))
        .await;
    }

    /// Waits for an event with this reason and returns its note.
    pub async fn wait_event(&self, reason: &str) -> String {
        let api = Api::<Event>::namespaced(self.admin.clone(), &self.ns);
        clientcreds_e2e::eventually(&format!("event {reason}"), EVENTUALLY, || {
            let api = api.clone();
            async move {
                let list = api.list(&ListParams::default()).await.ok()?;
                list.items
                    .into_iter()
                    .find(|e| e.reason.as_deref() == Some(reason))
                    .map(|e| e.note.unwrap_or_default())
            }
        })
        .await
    }

    /// Sets the refresh-on-demand annotation.
    pub async fn request_refresh(&self, name: &str, value: &str) {
        let patch = json!({"metadata": {"annotations": {"clientcreds.dev/refresh": value}}});
        self.oacs()
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
    }

    /// Waits until the token Secret's access token differs from `old`; returns the new one.
    pub async fn wait_new_token(&self, secret: &str, old: &str) -> String {
        let api = self.secrets();
        clientcreds_e2e::eventually(&format!("a new token in {secret}"), EVENTUALLY, || {
            let api = api.clone();
            async move {
                let s = api.get(secret).await.ok()?;
                let t = data(&s, "access_token");
                (t != old).then_some(t)
            }
        })
        .await
    }

    /// A ValidatingAdmissionPolicy that refuses any Secret in the app namespace holding
    /// `client_secret` — a write failure of the Azupay credentials Secret. Returns once it is
    /// in force.
    pub async fn deny_client_secret_writes(&self) {
        self.deny_secret_writes(
            "deny-client-secret",
            "!has(object.data) || !('client_secret' in object.data)",
            json!({"metadata": {"name": "policy-probe"}, "stringData": {"client_secret": "x"}}),
        )
        .await;
    }

    /// [`Env::deny_client_secret_writes`] in the operator's namespace too: the recovery Secret
    /// (where the operator keeps a one-time secret whose write was refused) is refused as well,
    /// so the operator can hold the secret in memory only. Lifted by
    /// [`Env::allow_client_secret_writes`].
    pub async fn deny_client_secret_writes_everywhere(&self) {
        self.deny_secret_writes_in(
            "deny-client-secret",
            "!has(object.data) || !('client_secret' in object.data)",
            json!({"metadata": {"name": "policy-probe"}, "stringData": {"client_secret": "x"}}),
            &[&self.ns, OPERATOR_NS],
        )
        .await;
    }

    /// Removes that policy and waits until writes pass again.
    pub async fn allow_client_secret_writes(&self) {
        self.allow_secret_writes(
            "deny-client-secret",
            json!({"metadata": {"name": "policy-probe-2"}, "stringData": {"client_secret": "x"}}),
        )
        .await;
    }

    /// A ValidatingAdmissionPolicy `name` that refuses creating or updating Secrets of the app
    /// namespace for which the CEL `expression` is false. Returns once it is in force: once
    /// creating `probe` (a Secret the policy refuses) fails.
    pub async fn deny_secret_writes(&self, name: &str, expression: &str, probe: serde_json::Value) {
        self.deny_secret_writes_in(name, expression, probe, &[&self.ns])
            .await;
    }

    /// [`Env::deny_secret_writes`] in the given namespaces (`probe` is tried in the app
    /// namespace).
    pub async fn deny_secret_writes_in(
        &self,
        name: &str,
        expression: &str,
        probe: serde_json::Value,
        namespaces: &[&str],
    ) {
        use k8s_openapi::api::admissionregistration::v1::{
            ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
        };
        let policy: ValidatingAdmissionPolicy = serde_json::from_value(json!({
            "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": name},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
                    "operations": ["CREATE", "UPDATE"], "resources": ["secrets"]}]},
                "validations": [{"expression": expression,
                                 "message": format!("test: refused by {name}")}]
            }
        }))
        .unwrap();
        let binding: ValidatingAdmissionPolicyBinding = serde_json::from_value(json!({
            "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": name},
            "spec": {"policyName": name, "validationActions": ["Deny"],
                     "matchResources": {"namespaceSelector": {"matchExpressions": [{
                         "key": "kubernetes.io/metadata.name", "operator": "In", "values": namespaces}]}}}
        }))
        .unwrap();
        apply(&self.admin, policy).await;
        apply(&self.admin, binding).await;
        let secrets = self.secrets();
        let probe = probe_secret(probe);
        clientcreds_e2e::eventually("the admission policy in force", EVENTUALLY, || {
            let (secrets, probe) = (secrets.clone(), probe.clone());
            async move {
                match secrets.create(&Default::default(), &probe).await {
                    Ok(created) => {
                        let name = created.metadata.name.unwrap();
                        let _ = secrets.delete(&name, &Default::default()).await;
                        None
                    }
                    Err(_) => Some(()),
                }
            }
        })
        .await;
    }

    /// Removes the binding of policy `name` and waits until creating `probe` (which it
    /// refused) passes again.
    pub async fn allow_secret_writes(&self, name: &str, probe: serde_json::Value) {
        use k8s_openapi::api::admissionregistration::v1::ValidatingAdmissionPolicyBinding;
        Api::<ValidatingAdmissionPolicyBinding>::all(self.admin.clone())
            .delete(name, &Default::default())
            .await
            .unwrap();
        let secrets = self.secrets();
        let probe = probe_secret(probe);
        clientcreds_e2e::eventually("the admission policy lifted", EVENTUALLY, || {
            let (secrets, probe) = (secrets.clone(), probe.clone());
            async move {
                match secrets.create(&Default::default(), &probe).await {
                    Ok(created) => {
                        let name = created.metadata.name.unwrap();
                        let _ = secrets.delete(&name, &Default::default()).await;
                        Some(())
                    }
                    Err(_) => None,
                }
            }
        })
        .await;
    }
}

/// A Secret from a JSON sketch (`metadata.name`, `stringData`, …).
fn probe_secret(mut value: serde_json::Value) -> Secret {
    value["apiVersion"] = json!("v1");
    value["kind"] = json!("Secret");
    serde_json::from_value(value).unwrap()
}

/// A GET to the operator's `/metrics`, `/healthz` or `/readyz` (or any plain-http URL): the
/// status code and the body.
pub async fn http_get(url: &str) -> (u16, String) {
    let http = clientcreds::HttpClient::new();
    let request = http::Request::get(url)
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let response = http.send(request).await.unwrap();
    (
        response.status().as_u16(),
        String::from_utf8(response.into_body().to_vec()).unwrap(),
    )
}

/// The test config serving `/metrics` and `/readyz` on a free loopback port; returns it and the
/// base URL.
pub fn config_with_metrics() -> (Config, String) {
    let port = clientcreds_e2e::free_port().unwrap();
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    (
        Config {
            metrics_addr: Some(addr),
            ..test_config()
        },
        format!("http://{addr}"),
    )
}
