//! What the operator tests leave for the leak scan (R5 of RELIABILITY.md,
//! [`clientcreds_e2e::leak_scan`]): under `<target>/leak-scan/<binary>/` the operator's logs in
//! text and JSON (`operator.log`, `operator.json.log`, every test of the binary), the panic
//! messages (`panics.txt`), and per test (`<test>/`) the events, OAuthClients and Secret
//! metadata at its end, its operators' `/metrics` and the logs of its operator processes;
//! under `<target>/leak-scan-secrets/<binary>/<test>.json` the secrets to look for.
//! `scripts/test` clears both and scans after the tests.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use std::time::Duration;

use clientcreds_e2e::leak_scan::{self, SecretList};
use clientcreds_operator::crd::OAuthClient;
use clientcreds_sandbox::Sandbox;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams};

use super::Env;

/// This test binary's name without cargo's hash (`operator_refresh`).
fn binary() -> String {
    let exe = std::env::current_exe().unwrap_or_default();
    let stem = exe
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "unknown".into());
    match stem.rsplit_once('-') {
        Some((name, hash)) if hash.chars().all(|c| c.is_ascii_hexdigit()) => name.to_owned(),
        _ => stem,
    }
}

/// The running test's name (libtest names each test's thread after it; `main` outside
/// libtest), safe as a file name.
fn test_name() -> String {
    let thread = std::thread::current();
    thread
        .name()
        .unwrap_or("unnamed")
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn target() -> PathBuf {
    static TARGET: OnceLock<PathBuf> = OnceLock::new();
    TARGET
        .get_or_init(|| {
            leak_scan::target_dir().unwrap_or_else(|e| panic!("the leak-scan capture: {e}"))
        })
        .clone()
}

fn created(dir: PathBuf) -> PathBuf {
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

/// `<target>/leak-scan/<binary>/`.
pub fn binary_dir() -> PathBuf {
    created(target().join(leak_scan::CAPTURE_DIR).join(binary()))
}

/// `<target>/leak-scan/<binary>/<test>/`.
pub fn test_dir() -> PathBuf {
    created(binary_dir().join(test_name()))
}

/// Writes `contents` to `name` in this test's capture directory.
pub fn write(name: &str, contents: &[u8]) {
    let path = test_dir().join(name);
    std::fs::write(&path, contents)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

/// A file name not used before in this process: `<prefix>-<n>.<ext>`.
pub fn unique(prefix: &str, ext: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("{prefix}-{}.{ext}", N.fetch_add(1, Ordering::Relaxed))
}

/// Copies the file at `path` (an operator process's log) into this test's capture directory.
pub fn copy(path: &Path) {
    if let (Ok(bytes), Some(name)) = (std::fs::read(path), path.file_name()) {
        write(&name.to_string_lossy(), &bytes);
    }
}

/// Adds `list` to this test's secret list (`<target>/leak-scan-secrets/<binary>/<test>.json`).
pub fn add_secrets(list: SecretList) {
    let dir = created(target().join(leak_scan::SECRETS_DIR).join(binary()));
    let path = dir.join(format!("{}.json", test_name()));
    let mut all = std::fs::read_to_string(&path)
        .ok()
        .and_then(|text| SecretList::from_json(&text).ok())
        .unwrap_or_default();
    all.extend(list);
    std::fs::write(&path, all.to_json())
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

/// A log file of this binary's capture directory, opened once (truncated) for appending.
pub fn log_file(name: &str) -> Arc<Mutex<File>> {
    let path = binary_dir().join(name);
    let file =
        File::create(&path).unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
    Arc::new(Mutex::new(file))
}

/// Appends every panic's message (thread, location, message) to `panics.txt` of this binary's
/// capture directory, then reports it as before.
pub fn capture_panics() {
    let file = log_file("panics.txt");
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if let Ok(mut f) = file.lock() {
            let thread = std::thread::current();
            let _ = writeln!(f, "thread {:?}: {info}", thread.name().unwrap_or("unnamed"));
        }
        previous(info);
    }));
}

/// Scrapes the `/metrics` at `url` into this test's capture directory (`metrics-<n>.txt`), or
/// notes there why it could not.
pub async fn metrics(url: &str) {
    let scrape = async {
        // one expiry series per token Secret: more than a token response's size limit
        let http = clientcreds::HttpClient::builder()
            .max_response_bytes(64 << 20)
            .build()
            .map_err(|e| e.to_string())?;
        let request = http::Request::get(url)
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .map_err(|e| e.to_string())?;
        let response = http.send(request).await.map_err(|e| e.to_string())?;
        Ok::<_, String>(response.into_body().to_vec())
    };
    let body = match tokio::time::timeout(Duration::from_secs(10), scrape).await {
        Ok(Ok(body)) => body,
        Ok(Err(e)) => format!("# scrape of {url} failed: {e}\n").into_bytes(),
        Err(_) => format!("# scrape of {url} timed out\n").into_bytes(),
    };
    write(&unique("metrics", "txt"), &body);
}

/// The secrets every test's sandbox knows: its default clients' secrets and API key, and the
/// fixed secrets of its other clients, with their client ids (listed at set-up, so that they
/// are looked for even when the test fails before its end).
pub fn sandbox_secrets(sandbox: &Sandbox) -> SecretList {
    use clientcreds_sandbox as sb;
    let creds = sandbox.credentials();
    let mut list = SecretList::default();
    list.client_ids.extend([
        creds.azupay.client_id.clone(),
        sb::AZUPAY_OAUTH2_CLIENT_ID.to_owned(),
        sb::AFTERPAY_SAMPLE_CLIENT_ID.to_owned(),
    ]);
    list.add("sandbox azupay api key", creds.azupay.api_key);
    list.add(
        "sandbox azupay oauth2 client secret",
        sb::AZUPAY_OAUTH2_CLIENT_SECRET,
    );
    list.add(
        "sandbox afterpay sample client secret",
        sb::AFTERPAY_SAMPLE_CLIENT_SECRET,
    );
    for (name, p) in [
        ("autopay", creds.autopay),
        ("payu", creds.payu),
        ("pyng", creds.pyng),
        ("afterpay", creds.afterpay),
    ] {
        list.client_ids.push(p.client_id);
        list.add(format!("sandbox {name} client secret"), p.client_secret);
    }
    list
}

/// Secret data keys that hold no secret; a key ending in `id` holds a client id.
const NOT_SECRET: &[&str] = &[
    "token_url",
    "tokenUrl",
    "expires_at",
    "scope",
    "scopes",
    "token_type",
    "audience",
];

/// Longer Secret values are data, not credentials (e.g. the scale bench's unrelated Secrets).
const MAX_SECRET_LEN: usize = 4096;

impl Env {
    /// Writes what the cluster holds at the end of a test for the leak scan: every event,
    /// every OAuthClient and the metadata (labels, annotations, owners) of every Secret, in all
    /// namespaces; and as secrets to look for, every value of every Secret (but client ids,
    /// token URLs, expiry and scope).
    pub async fn capture_for_leak_scan(&self) {
        let lp = ListParams::default();
        let limit = Duration::from_secs(30);
        let (events, oacs, secrets) = (
            Api::<Event>::all(self.admin.clone()),
            Api::<OAuthClient>::all(self.admin.clone()),
            Api::<Secret>::all(self.admin.clone()),
        );
        let events = tokio::time::timeout(limit, events.list(&lp));
        let oacs = tokio::time::timeout(limit, oacs.list(&lp));
        let secrets = tokio::time::timeout(limit, secrets.list(&lp));
        let (events, oacs, secrets) = tokio::join!(events, oacs, secrets);
        // a capture that cannot be made is a gap in the scan: the test fails
        fn items<T: Clone>(
            what: &str,
            list: Result<
                Result<kube::api::ObjectList<T>, kube::Error>,
                tokio::time::error::Elapsed,
            >,
        ) -> Vec<T> {
            match list {
                Ok(Ok(list)) => list.items,
                Ok(Err(e)) => panic!("the leak-scan capture cannot list {what}: {e}"),
                Err(_) => panic!("the leak-scan capture cannot list {what}: timed out"),
            }
        }
        write(
            "events.json",
            &serde_json::to_vec_pretty(&items("events", events)).unwrap_or_default(),
        );
        write(
            "oauthclients.json",
            &serde_json::to_vec_pretty(&items("OAuthClients", oacs)).unwrap_or_default(),
        );
        let secrets = items("Secrets", secrets);
        let metadata: Vec<_> = secrets.iter().map(|s| &s.metadata).collect();
        write(
            "secrets-metadata.json",
            &serde_json::to_vec_pretty(&metadata).unwrap_or_default(),
        );
        let mut list = SecretList::default();
        for secret in secrets {
            let ns = secret.metadata.namespace.clone().unwrap_or_default();
            let name = secret.metadata.name.clone().unwrap_or_default();
            for (key, value) in secret.data.unwrap_or_default() {
                let Ok(value) = String::from_utf8(value.0) else {
                    continue;
                };
                if key.to_ascii_lowercase().ends_with("id") {
                    list.client_ids.push(value);
                } else if !NOT_SECRET.contains(&key.as_str()) && value.len() <= MAX_SECRET_LEN {
                    list.add(format!("Secret {ns}/{name} {key}"), value);
                }
            }
        }
        add_secrets(list);
    }
}

impl Drop for Env {
    /// The leak-scan capture of the test's end state (not when the test already failed).
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
            return;
        }
        tokio::task::block_in_place(|| handle.block_on(self.capture_for_leak_scan()));
    }
}
