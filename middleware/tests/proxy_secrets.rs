//! A proxy's credentials (from its URL) never appear in `Debug`, `Display`, errors (and their
//! sources), tracing output at TRACE level (ours, hyper's and hyper-util's) or metrics labels —
//! through a real tinyproxy that demands them, for accepted and refused requests, forwarded and
//! tunnelled.
//!
//! Alone in its binary: the tracing subscriber and the metrics recorder are thread-local, and
//! another test running in parallel without them could cache callsite interest as "never".
//! Needs tinyproxy (`apt-get install -y tinyproxy-bin`; `scripts/install-tinyproxy`, run by `./scripts/test`, installs it).

#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use clientcreds::{ClientCredentials, HttpClient, Provider, Proxy};
use clientcreds_sandbox::{self as sandbox, Sandbox, SandboxConfig};
use metrics_util::debugging::DebuggingRecorder;
use secrecy::SecretString;
use support::{Tinyproxy, TlsFront};

const USER: &str = "proxyuser-7c1";
const PASSWORD: &str = "proxypass-e29b41d4";
const WRONG: &str = "wrongpass-a716446655";

/// A `MakeWriter` into a shared buffer.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl io::Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Buffer {
    type Writer = Buffer;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

fn pyng(sb: &Sandbox, token_url: &str) -> ClientCredentials {
    let pyng = sb.pyng();
    Provider::pyng(
        sb.base_url(),
        &pyng.client_id,
        SecretString::from(pyng.client_secret.clone()),
    )
    .token_url(token_url)
    .scope(sandbox::PYNG_SCOPES[0])
    .build()
    .unwrap()
}

/// An error, its `Debug`, and every source in its chain.
fn error_texts(err: &clientcreds::Error) -> Vec<String> {
    let mut texts = vec![err.to_string(), format!("{err:?}")];
    let mut source = std::error::Error::source(err);
    while let Some(inner) = source {
        texts.push(inner.to_string());
        texts.push(format!("{inner:?}"));
        source = inner.source();
    }
    texts
}

/// Everything shown while using a proxy with credentials, accepted and refused.
async fn exercise(shown: &mut Vec<String>) {
    let sb = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let front = TlsFront::start(sb.local_addr()).await;
    let proxy = Tinyproxy::start(&format!("BasicAuth {USER} {PASSWORD}"));
    let http_url = sb.pyng().token_url;
    let https_url = front.url_for(&http_url);

    let good = Proxy::url(&proxy.url_with(USER, PASSWORD)).unwrap();
    let builder = HttpClient::builder()
        .proxy(good.clone())
        .tls_config(front.client_config())
        .timeout(Duration::from_secs(20));
    shown.push(format!("{builder:?}"));
    let http = builder.build().unwrap();
    shown.push(format!(
        "{good:?} {http:?} {:?}",
        good.clone().no_proxy("x")
    ));
    // Accepted: the credentials went to the proxy, forwarded and tunnelled.
    for url in [&http_url, &https_url] {
        let token = pyng(&sb, url).request_token(&http).await.unwrap();
        shown.push(format!("{token:?}"));
    }
    assert_eq!(sb.requests().len(), 2);
    for request in sb.requests() {
        shown.push(format!("{request:?}"));
    }

    // Refused: wrong credentials, forwarded and tunnelled.
    let wrong = Proxy::url(&proxy.url_with(USER, WRONG)).unwrap();
    let http = HttpClient::builder()
        .proxy(wrong)
        .tls_config(front.client_config())
        .build()
        .unwrap();
    for url in [&http_url, &https_url] {
        let err = pyng(&sb, url).request_token(&http).await.unwrap_err();
        shown.extend(error_texts(&err));
    }
    // Unreachable, and unsupported.
    let gone = format!(
        "http://{USER}:{PASSWORD}@127.0.0.1:{}",
        support::free_port()
    );
    let http = HttpClient::builder()
        .proxy(Proxy::url(&gone).unwrap())
        .build()
        .unwrap();
    let err = pyng(&sb, &http_url).request_token(&http).await.unwrap_err();
    assert_eq!(err.kind(), "proxy");
    shown.extend(error_texts(&err));
    let err = Proxy::url(&format!("socks5://{USER}:{PASSWORD}@127.0.0.1:1080")).unwrap_err();
    shown.extend(error_texts(&err));
    // From variables.
    let env = Proxy::from_env_vars([("HTTPS_PROXY", proxy.url_with(USER, PASSWORD))]);
    shown.push(format!("{env:?}"));
}

#[test]
fn proxy_credentials_never_leak() {
    let buffer = Buffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(buffer.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::FULL)
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();

    let mut shown = Vec::new();
    metrics::with_local_recorder(&recorder, || {
        // One thread: the subscriber and the recorder see every task.
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(exercise(&mut shown));
    });

    let traces = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    assert!(
        traces.contains("clientcreds.token_request") && traces.contains("through a proxy"),
        "the capture saw nothing: {traces}"
    );
    shown.push(traces);
    let snapshot = snapshotter.snapshot().into_vec();
    assert!(!snapshot.is_empty());
    let mut results = Vec::new();
    for (key, _, _, _) in &snapshot {
        for label in key.key().labels() {
            shown.push(format!("{}={}", label.key(), label.value()));
            if label.key() == "result" {
                results.push(label.value().to_owned());
            }
        }
    }
    assert!(results.iter().any(|r| r == "proxy"), "{results:?}");

    let base64 = base64::engine::general_purpose::STANDARD;
    let forbidden = [
        PASSWORD.to_owned(),
        WRONG.to_owned(),
        format!("{USER}:"),
        base64.encode(format!("{USER}:{PASSWORD}")),
        base64.encode(format!("{USER}:{WRONG}")),
    ];
    for text in &shown {
        for secret in &forbidden {
            assert!(!text.contains(secret), "{secret:?} leaked into: {text}");
        }
    }
}
