//! No secret or token reaches `Debug`, `Display`, errors or captured tracing output, for a
//! successful and a refused token request and a protected call.
//!
//! This test is alone in its binary: a thread-local tracing subscriber only sees callsites whose
//! interest was not already cached as "never" by another test running in parallel without one.

#![allow(clippy::unwrap_used)]

use std::io;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use clientcreds::{HttpClient, Provider, Token};
use clientcreds_sandbox::{self as sandbox, Sandbox, SandboxConfig};
use http::StatusCode;
use http_body_util::Full;
use secrecy::{ExposeSecret, SecretString};

async fn start() -> Sandbox {
    Sandbox::start(SandboxConfig::default()).await.unwrap()
}

/// GET the protected endpoint with the token; the status.
async fn call_protected(http: &HttpClient, url: &str, token: &Token) -> StatusCode {
    let request = http::Request::get(url)
        .header(http::header::AUTHORIZATION, token.authorization().clone())
        .body(Full::new(Bytes::new()))
        .unwrap();
    http.send(request).await.unwrap().status()
}

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

impl Buffer {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

#[tokio::test]
async fn no_secret_or_token_in_debug_display_errors_or_traces() {
    let buffer = Buffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(buffer.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let sb = start().await;
    let http = HttpClient::new();
    let pyng = sb.pyng();
    let credentials = Provider::pyng(
        sb.base_url(),
        &pyng.client_id,
        SecretString::from(pyng.client_secret.clone()),
    )
    .token_url(&pyng.token_url)
    .scope(sandbox::PYNG_SCOPES[0])
    .build()
    .unwrap();
    let token = credentials.request_token(&http).await.unwrap();
    let token_value = token.secret().expose_secret().to_owned();
    let bad = Provider::pyng(
        sb.base_url(),
        &pyng.client_id,
        SecretString::from("wrong-secret-value"),
    )
    .token_url(&pyng.token_url)
    .scope(sandbox::PYNG_SCOPES[0])
    .build()
    .unwrap();
    let err = bad.request_token(&http).await.unwrap_err();
    // The protected call logs too (hyper), with the token in a header.
    assert_eq!(
        call_protected(&http, &pyng.resource_url, &token).await,
        StatusCode::OK
    );

    let basic = "czZCaGRSa3F0MzpnWDFmQmF0M2JW";
    let forbidden = [
        pyng.client_secret.as_str(),
        "wrong-secret-value",
        token_value.as_str(),
        basic,
    ];
    let shown = [
        format!("{credentials:?}"),
        format!("{bad:?}"),
        format!("{token:?}"),
        format!("{err:?}"),
        err.to_string(),
        format!("{:?}", token.authorization()),
        buffer.text(),
    ];
    for text in &shown {
        for secret in forbidden {
            assert!(!text.contains(secret), "{secret:?} leaked into: {text}");
        }
    }
    let traces = buffer.text();
    assert!(traces.contains("clientcreds.token_request"), "{traces}");
    assert!(
        traces.contains("endpoint.host=\"127.0.0.1\"")
            || traces.contains("endpoint.host=127.0.0.1"),
        "{traces}"
    );
    assert!(traces.contains("http.status=200"), "{traces}");
    assert!(traces.contains("http.status=401"), "{traces}");
    assert!(
        traces.contains("error.code=\"invalid_client\"")
            || traces.contains("error.code=invalid_client"),
        "{traces}"
    );
    assert!(traces.contains("duration_ms="), "{traces}");
}
