//! Token requests over TLS: the `ring`-backed rustls transport verifies the server certificate
//! (a private CA through `HttpClientBuilder::tls_config`; Mozilla roots by default).

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use clientcreds::{ClientAuth, ClientCredentials, Error, HttpClient};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use secrecy::SecretString;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A one-thread HTTPS token endpoint on loopback that answers `connections` connections, each
/// with one token response; returns its port.
fn tls_token_endpoint(
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
    connections: usize,
) -> u16 {
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for _ in 0..connections {
            let Ok((tcp, _)) = listener.accept() else {
                return;
            };
            let connection = rustls::ServerConnection::new(config.clone()).unwrap();
            let mut tls = rustls::StreamOwned::new(connection, tcp);
            // Read the head, then the body by Content-Length.
            let mut reader = BufReader::new(&mut tls);
            let mut content_length = 0;
            let mut line = String::new();
            loop {
                line.clear();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    content_length = v.trim().parse().unwrap_or(0);
                }
                if line == "\r\n" {
                    break;
                }
            }
            if line != "\r\n" {
                continue; // the handshake failed (an untrusting client)
            }
            let mut body = vec![0; content_length];
            let _ = reader.read_exact(&mut body);
            let json = r#"{"access_token":"tls-token","token_type":"Bearer","expires_in":300}"#;
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                 connection: close\r\n\r\n{json}",
                json.len()
            );
            let _ = tls.write_all(response.as_bytes());
            let _ = tls.flush();
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    });
    port
}

fn credentials(port: u16) -> ClientCredentials {
    ClientCredentials::builder(
        format!("https://localhost:{port}/oauth2/token"),
        "client",
        SecretString::from("secret"),
    )
    .auth(ClientAuth::Basic)
    .build()
    .unwrap()
}

#[tokio::test]
async fn https_with_a_private_ca_and_refusal_of_an_untrusted_certificate() {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let port = tls_token_endpoint(cert.clone(), key, 2);

    // Mozilla's roots do not include this certificate: a transport error, no token.
    let err = credentials(port)
        .request_token(&HttpClient::new())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains(&format!("https://localhost:{port}/oauth2/token")),
        "{err}"
    );

    assert!(err.to_string().contains("certificate"), "{err}");

    // Trusting it through tls_config: the token arrives over TLS.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let http = HttpClient::builder()
        .tls_config(tls)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let token = credentials(port).request_token(&http).await.unwrap();
    assert_eq!(token.authorization(), "Bearer tls-token");
    assert_eq!(token.lifetime(), Duration::from_secs(300));
}
