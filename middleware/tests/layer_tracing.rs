//! No token or secret in tracing, Debug or errors, end to end through the layer against the
//! sandbox. Alone in its binary: tracing's per-callsite interest cache makes capturing with a
//! thread-local subscriber racy when other tests run in parallel threads.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use clientcreds::bearer::{Bearer, BearerLayer, ReplayOnce};
use clientcreds::source::ClientCredentialsSource;
use clientcreds::{ClientAuth, ClientCredentials, HttpClient};
use clientcreds_sandbox::{ProviderEndpoints, Sandbox, SandboxConfig};
use http::{Request, Response};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use secrecy::SecretString;
use tower::{Service, ServiceBuilder, ServiceExt, service_fn};

fn afterpay_source(afterpay: &ProviderEndpoints) -> ClientCredentialsSource {
    let credentials = ClientCredentials::builder(
        &afterpay.token_url,
        afterpay.client_id.clone(),
        SecretString::from(afterpay.client_secret.clone()),
    )
    .auth(ClientAuth::Basic)
    .build()
    .unwrap();
    ClientCredentialsSource::new(credentials, HttpClient::new())
}

/// A `MakeWriter` that collects everything written.
#[derive(Clone, Default)]
struct Capture(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

#[tokio::test]
async fn no_secret_or_token_in_tracing_debug_or_errors_end_to_end() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(capture.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let afterpay = sandbox.afterpay();
    let source = afterpay_source(&afterpay);
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut api = ServiceBuilder::new()
        .layer(BearerLayer::new(source.clone()).on_unauthorized(ReplayOnce))
        .service(client);
    let get = || {
        Request::get(&afterpay.resource_url)
            .body(Full::default())
            .unwrap()
    };
    api.ready().await.unwrap().call(get()).await.unwrap();
    sandbox.revoke_all_tokens();
    api.ready().await.unwrap().call(get()).await.unwrap();
    let token = source.cache().cached().unwrap();
    let token_value = token
        .authorization()
        .to_str()
        .unwrap()
        .trim_start_matches("Bearer ")
        .to_owned();

    // A failing source: wrong secret.
    let wrong = ClientCredentials::builder(
        &afterpay.token_url,
        afterpay.client_id.clone(),
        SecretString::from("wrong-secret-value"),
    )
    .auth(ClientAuth::Basic)
    .build()
    .unwrap();
    let failing = ClientCredentialsSource::new(wrong, HttpClient::new());
    let error = Bearer::new(
        service_fn(|_: Request<Full<Bytes>>| async {
            Ok::<_, Infallible>(Response::new(Full::<Bytes>::default()))
        }),
        failing.clone(),
    )
    .oneshot(get())
    .await
    .unwrap_err();

    let everything = format!(
        "{} {source:?} {failing:?} {token:?} {error} {error:?} {api:?}",
        String::from_utf8_lossy(&capture.0.lock().unwrap())
    );
    assert!(
        everything.contains("invalid_client"),
        "the failure was logged: {everything}"
    );
    assert!(token_value.len() > 10);
    assert!(
        !everything.contains(&token_value),
        "a token leaked: {everything}"
    );
    assert!(
        !everything.contains(&afterpay.client_secret),
        "the secret leaked"
    );
    assert!(
        !everything.contains("wrong-secret-value"),
        "the secret leaked"
    );
}
