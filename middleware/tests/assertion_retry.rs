//! private_key_jwt through the cached source: a failed token request is retried with a new
//! assertion, never the one already sent (servers such as oidc-provider refuse a replayed
//! `jti`, RFC 7523 §3 point 7).

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use clientcreds::cache::CacheConfig;
use clientcreds::source::{ClientCredentialsSource, TokenSource};
use clientcreds::{ClientCredentials, HttpClient, Proxy, SigningKey};

/// A loopback token endpoint that answers `503 temporarily_unavailable` to the first request
/// and a token after that; records every request body.
fn flaky_endpoint() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&bodies);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut content_length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    content_length = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; content_length];
            reader.read_exact(&mut body).unwrap();
            let mut bodies = seen.lock().unwrap();
            bodies.push(String::from_utf8(body).unwrap());
            let (status, json) = if bodies.len() == 1 {
                (
                    "503 Service Unavailable",
                    r#"{"error":"temporarily_unavailable"}"#,
                )
            } else {
                (
                    "200 OK",
                    r#"{"access_token":"t","token_type":"Bearer","expires_in":300}"#,
                )
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                 connection: close\r\n\r\n{json}",
                json.len()
            );
        }
    });
    (port, bodies)
}

fn assertion_of(body: &str) -> (String, serde_json::Value) {
    let assertion = form_urlencoded::parse(body.as_bytes())
        .find(|(name, _)| name == "client_assertion")
        .unwrap()
        .1
        .into_owned();
    let claims = assertion.split('.').nth(1).unwrap();
    let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(claims)
        .unwrap();
    (assertion, serde_json::from_slice(&claims).unwrap())
}

#[tokio::test]
async fn a_retry_signs_a_new_assertion() {
    let (port, bodies) = flaky_endpoint();
    let pem = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .unwrap()
        .serialize_pem();
    let key = SigningKey::from_pem(pem.as_bytes()).unwrap();
    let credentials =
        ClientCredentials::private_key_jwt(format!("http://127.0.0.1:{port}/token"), "c", key)
            .build()
            .unwrap();
    let http = HttpClient::builder().proxy(Proxy::none()).build().unwrap();
    let config =
        CacheConfig::default().backoff(Duration::from_millis(10), Duration::from_millis(20));
    let source = ClientCredentialsSource::with_config(credentials, http, config).unwrap();

    let err = source.token().await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    let mut token = None;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if let Ok(t) = source.token().await {
            token = Some(t);
            break;
        }
    }
    assert_eq!(token.unwrap().authorization(), "Bearer t");

    let bodies = bodies.lock().unwrap().clone();
    assert!(bodies.len() >= 2, "{bodies:?}");
    let assertions: Vec<_> = bodies.iter().map(|b| assertion_of(b)).collect();
    for (i, (a, claims)) in assertions.iter().enumerate() {
        assert_eq!(claims["aud"], format!("http://127.0.0.1:{port}/token"));
        for (b, other) in &assertions[i + 1..] {
            assert_ne!(a, b, "an assertion was sent twice");
            assert_ne!(claims["jti"], other["jti"]);
        }
    }
}
