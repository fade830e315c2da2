//! Token requests through an HTTP client of the user's ([`HttpClient::from_service`]), against
//! the provider emulator.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use clientcreds::source::{ClientCredentialsSource, TokenSource};
use clientcreds::{ClientAuth, ClientCredentials, Error, HttpClient, Proxy};
use clientcreds_sandbox::{Provider, ProviderEndpoints, Sandbox, SandboxConfig};
use http::{Request, Response};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use secrecy::SecretString;
use tower::{Service, service_fn};

/// A hyper client that counts the requests it is given (and the times it is asked to be ready).
#[derive(Clone)]
struct Counting<S> {
    inner: S,
    calls: Arc<AtomicUsize>,
    readies: Arc<AtomicUsize>,
}

impl<S, B> Service<Request<B>> for Counting<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.readies.fetch_add(1, Ordering::SeqCst);
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.call(request)
    }
}

fn afterpay_credentials(afterpay: &ProviderEndpoints) -> ClientCredentials {
    ClientCredentials::builder(
        &afterpay.token_url,
        afterpay.client_id.clone(),
        SecretString::from(afterpay.client_secret.clone()),
    )
    .auth(ClientAuth::Basic)
    .build()
    .unwrap()
}

#[tokio::test]
async fn token_requests_go_through_the_users_client_and_are_cached() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let afterpay = sandbox.afterpay();
    let calls = Arc::new(AtomicUsize::new(0));
    let readies = Arc::new(AtomicUsize::new(0));
    let client = Counting {
        inner: Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>(),
        calls: Arc::clone(&calls),
        readies: Arc::clone(&readies),
    };
    let http = HttpClient::from_service(client);
    assert!(format!("{http:?}").contains("service"), "{http:?}");
    let source = ClientCredentialsSource::new(afterpay_credentials(&afterpay), http.clone());

    let first = source.token().await.unwrap();
    let second = source.token().await.unwrap();
    assert_eq!(first.authorization(), second.authorization(), "cached");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "one request, through the user's client"
    );
    assert!(
        readies.load(Ordering::SeqCst) >= 1,
        "driven to readiness first"
    );
    let on_the_wire = sandbox.requests_for(Provider::Afterpay);
    assert_eq!(on_the_wire.len(), 1);

    // Uncached, the same client again: the sandbox issued what the client carried.
    let direct = afterpay_credentials(&afterpay)
        .request_token(&http)
        .await
        .unwrap();
    assert_ne!(direct.authorization(), first.authorization(), "a new token");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(sandbox.requests_for(Provider::Afterpay).len(), 2);
    assert_eq!(
        sandbox.tokens_issued(Provider::Afterpay, &afterpay.client_id),
        2
    );
}

#[tokio::test]
async fn a_failing_user_client_is_a_transport_error_naming_the_endpoint_not_the_secret() {
    let client = service_fn(|_request: Request<Full<Bytes>>| async {
        Err::<Response<Full<Bytes>>, _>(std::io::Error::other("the user's client is down"))
    });
    let http = HttpClient::from_service(client);
    let credentials = ClientCredentials::builder(
        "https://auth.example.com/oauth2/token?tenant=1",
        "id",
        SecretString::from("hunter2-secret"),
    )
    .build()
    .unwrap();
    let err = credentials.request_token(&http).await.unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
    let shown = err.to_string();
    assert!(
        shown.contains("https://auth.example.com/oauth2/token"),
        "{shown}"
    );
    assert!(shown.contains("the user's client is down"), "{shown}");
    assert!(!shown.contains("tenant=1"), "no query string: {shown}");
    assert!(!format!("{shown} {err:?}").contains("hunter2"));
    assert!(err.is_retryable());
}

#[tokio::test(start_paused = true)]
async fn the_timeout_covers_a_user_client_that_never_answers() {
    let client = service_fn(|_request: Request<Full<Bytes>>| async {
        std::future::pending::<Result<Response<Full<Bytes>>, std::io::Error>>().await
    });
    let http = HttpClient::builder()
        .service(client)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let credentials = ClientCredentials::builder(
        "https://auth.example.com/oauth2/token",
        "id",
        SecretString::from("s"),
    )
    .build()
    .unwrap();
    let err = credentials.request_token(&http).await.unwrap_err();
    assert!(
        err.to_string().contains("no complete response within 5s"),
        "{err}"
    );
}

#[tokio::test]
async fn the_response_size_limit_covers_a_user_client() {
    let client = service_fn(|_request: Request<Full<Bytes>>| async {
        Ok::<_, std::io::Error>(Response::new(Full::new(Bytes::from(vec![b'x'; 2048]))))
    });
    let http = HttpClient::builder()
        .service(client)
        .max_response_bytes(1024)
        .build()
        .unwrap();
    let credentials = ClientCredentials::builder(
        "https://auth.example.com/oauth2/token",
        "id",
        SecretString::from("s"),
    )
    .build()
    .unwrap();
    let err = credentials.request_token(&http).await.unwrap_err();
    assert!(err.to_string().contains("larger than 1024 bytes"), "{err}");
}

#[test]
fn settings_of_the_built_in_client_are_refused_with_a_service() {
    let client = service_fn(|_request: Request<Full<Bytes>>| async {
        Ok::<_, std::io::Error>(Response::new(Full::<Bytes>::default()))
    });
    let err = HttpClient::builder()
        .service(client)
        .proxy(Proxy::none())
        .build()
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Config {
                field: "service",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("configure it on the service"),
        "{err}"
    );
}
