//! Client authentication against a real, independent authorization server: panva's
//! `oidc-provider` (Node.js, installed by `scripts/install-oidc-provider` into a cache outside
//! the clone), run on loopback over HTTPS by `tests/oidc-provider/server.mjs`.
//!
//! One client per method — `client_secret_basic`, `client_secret_post`, `private_key_jwt` (an
//! RS256, a PS256-capable RSA, an ES256 and an EdDSA key) and `tls_client_auth` — each
//! registered with that method only, so a token proves the server authenticated the client
//! the way it was registered. Wrong keys, certificates and secrets are refused with typed
//! errors.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clientcreds::source::{ClientCredentialsSource, TokenSource};
use clientcreds::{
    ClientAuth, ClientCredentials, ClientIdentity, Error, HttpClient, JwsAlgorithm, OAuthErrorCode,
    SigningKey,
};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use secrecy::SecretString;

/// The directory `scripts/install-oidc-provider` installed oidc-provider into (it installs it
/// when missing, and is instant once cached).
fn oidc_provider_dir() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let output = Command::new(root.join("scripts/install-oidc-provider"))
        .stderr(Stdio::inherit())
        .output()
        .expect("run scripts/install-oidc-provider (needs Node.js and npm)");
    assert!(
        output.status.success(),
        "scripts/install-oidc-provider failed"
    );
    PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
}

/// A test CA that signs server and client certificates.
struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().unwrap();
        let pem = params.self_signed(&key).unwrap().pem();
        Ca {
            pem,
            issuer: Issuer::new(params, key),
        }
    }

    /// A certificate (PEM) and its key (PKCS#8 PEM) with `CN=common_name`.
    fn issue(&self, common_name: &str, names: &[&str]) -> (String, String) {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

/// An RSA key pair from Node's crypto (ring, rcgen's backend here, cannot generate RSA keys):
/// (PKCS#8 private PEM, PKCS#1 private PEM, SPKI public PEM).
fn rsa_key() -> (String, String, String) {
    let script = "const c=require('crypto');\
        const {privateKey:k,publicKey:p}=c.generateKeyPairSync('rsa',{modulusLength:2048});\
        console.log(JSON.stringify([k.export({type:'pkcs8',format:'pem'}),\
        k.export({type:'pkcs1',format:'pem'}),p.export({type:'spki',format:'pem'})]))";
    let output = Command::new("node").args(["-e", script]).output().unwrap();
    assert!(output.status.success());
    let [pkcs8, pkcs1, public]: [String; 3] = serde_json::from_slice(&output.stdout).unwrap();
    (pkcs8, pkcs1, public)
}

/// An rcgen key pair: (PKCS#8 private PEM, SPKI public PEM).
fn rcgen_key(alg: &'static rcgen::SignatureAlgorithm) -> (String, String) {
    let key = KeyPair::generate_for(alg).unwrap();
    (key.serialize_pem(), key.public_key_pem())
}

/// A running oidc-provider; killed on drop.
struct OidcProvider {
    child: Child,
    port: u16,
    events: Arc<Mutex<Vec<serde_json::Value>>>,
    _config: tempfile::TempDir,
}

impl OidcProvider {
    fn start(config: serde_json::Value) -> OidcProvider {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, config.to_string()).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc-provider/server.mjs");
        let mut child = Command::new("node")
            .arg(script)
            .arg(&path)
            .env("OIDC_PROVIDER_DIR", oidc_provider_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start node");
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let events = Arc::new(Mutex::new(Vec::new()));
        let (port_tx, port_rx) = mpsc::channel();
        let sink = Arc::clone(&events);
        std::thread::spawn(move || {
            for line in stdout.lines() {
                let Ok(line) = line else { return };
                if let Some(port) = line.strip_prefix("listening ") {
                    let _ = port_tx.send(port.trim().parse::<u16>().unwrap());
                } else if let Ok(event) = serde_json::from_str(&line) {
                    sink.lock().unwrap().push(event);
                }
            }
        });
        let port = port_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("oidc-provider printed its port");
        OidcProvider {
            child,
            port,
            events,
            _config: dir,
        }
    }

    fn token_url(&self) -> String {
        format!("https://127.0.0.1:{}/token", self.port)
    }

    fn issuer(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// The `grant.success` / `grant.error` events printed so far.
    fn events(&self) -> Vec<serde_json::Value> {
        self.events.lock().unwrap().clone()
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP client trusting `ca`, optionally presenting `identity`, connecting directly.
fn http(ca: &Ca, identity: Option<ClientIdentity>) -> HttpClient {
    http_via(ca, identity, clientcreds::Proxy::none())
}

/// An HTTP client trusting `ca`, optionally presenting `identity`, through `proxy`.
fn http_via(ca: &Ca, identity: Option<ClientIdentity>, proxy: clientcreds::Proxy) -> HttpClient {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca.pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut builder = HttpClient::builder()
        .tls_config(tls)
        .proxy(proxy)
        .timeout(Duration::from_secs(20));
    if let Some(identity) = identity {
        builder = builder.client_identity(identity);
    }
    builder.build().unwrap()
}

use rustls::pki_types::pem::PemObject;

fn assert_invalid_client(err: &Error) {
    assert!(
        matches!(
            err,
            Error::TokenEndpoint {
                code: Some(OAuthErrorCode::InvalidClient),
                ..
            }
        ),
        "expected invalid_client, got {err:?}"
    );
    assert!(!err.is_retryable());
}

struct Keys {
    rsa_pkcs8: String,
    rsa_pkcs1: String,
    rsa_public: String,
    es256: (String, String),
    eddsa: (String, String),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_client_authentication_method_against_oidc_provider() {
    let ca = Ca::new("clientcreds test CA");
    let (server_cert, server_key) = ca.issue("127.0.0.1", &["127.0.0.1", "localhost"]);
    let client_ca = Ca::new("clientcreds client CA");
    let (rsa_pkcs8, rsa_pkcs1, rsa_public) = rsa_key();
    let keys = Keys {
        rsa_pkcs8,
        rsa_pkcs1,
        rsa_public,
        es256: rcgen_key(&rcgen::PKCS_ECDSA_P256_SHA256),
        eddsa: rcgen_key(&rcgen::PKCS_ED25519),
    };
    let server = OidcProvider::start(serde_json::json!({
        "tls": { "cert": server_cert, "key": server_key, "clientCa": client_ca.pem },
        "clients": [
            { "client_id": "basic-client", "client_secret": "basic-secret-0123456789abcdef",
              "token_endpoint_auth_method": "client_secret_basic" },
            { "client_id": "post-client", "client_secret": "post-secret-0123456789abcdef",
              "token_endpoint_auth_method": "client_secret_post" },
            { "client_id": "rsa-client", "token_endpoint_auth_method": "private_key_jwt",
              "public_keys": [keys.rsa_public] },
            { "client_id": "ec-client", "token_endpoint_auth_method": "private_key_jwt",
              "token_endpoint_auth_signing_alg": "ES256",
              "public_keys": [keys.es256.1] },
            { "client_id": "ed-client", "token_endpoint_auth_method": "private_key_jwt",
              "public_keys": [keys.eddsa.1] },
            { "client_id": "mtls-client", "token_endpoint_auth_method": "tls_client_auth",
              "tls_client_auth_subject_dn": "CN=mtls-client" },
        ],
    }));
    let plain = http(&ca, None);

    // client_secret_basic and client_secret_post, as before.
    for (id, secret, auth) in [
        (
            "basic-client",
            "basic-secret-0123456789abcdef",
            ClientAuth::Basic,
        ),
        (
            "post-client",
            "post-secret-0123456789abcdef",
            ClientAuth::Post,
        ),
    ] {
        let credentials = ClientCredentials::builder(server.token_url(), id, secret.into())
            .auth(auth)
            .scope("api:read")
            .build()
            .unwrap();
        let token = credentials.request_token(&plain).await.unwrap();
        assert_eq!(token.scope(), Some("api:read"), "{id}");
        let wrong = ClientCredentials::builder(server.token_url(), id, SecretString::from("nope"))
            .auth(auth)
            .build()
            .unwrap();
        assert_invalid_client(&wrong.request_token(&plain).await.unwrap_err());
    }

    // private_key_jwt with RS256 (PKCS#8 and PKCS#1 PEM of one key), PS256, ES256 and EdDSA.
    let rsa = SigningKey::from_pem(keys.rsa_pkcs8.as_bytes()).unwrap();
    assert_eq!(rsa.algorithm(), JwsAlgorithm::Rs256);
    let rsa_pkcs1 = SigningKey::from_pem(keys.rsa_pkcs1.as_bytes()).unwrap();
    let ps256 = rsa
        .clone()
        .with_algorithm(JwsAlgorithm::Ps256)
        .unwrap()
        .with_key_id("key-0");
    let es256 = SigningKey::from_pem(keys.es256.0.as_bytes()).unwrap();
    let eddsa = SigningKey::from_pem(keys.eddsa.0.as_bytes()).unwrap();
    for (id, key) in [
        ("rsa-client", rsa.clone()),
        ("rsa-client", rsa_pkcs1),
        ("rsa-client", ps256),
        ("ec-client", es256.clone()),
        ("ed-client", eddsa),
    ] {
        let alg = key.algorithm();
        let credentials = ClientCredentials::private_key_jwt(server.token_url(), id, key)
            .scope("api:write")
            .build()
            .unwrap();
        // Through the cached source, then twice more without it: oidc-provider refuses a
        // replayed jti, so these pass only because every request signs a new assertion.
        let source = ClientCredentialsSource::new(credentials.clone(), plain.clone());
        let token = source
            .token()
            .await
            .unwrap_or_else(|e| panic!("{id} {alg}: {e}"));
        assert_eq!(token.scope(), Some("api:write"));
        credentials.request_token(&plain).await.unwrap();
        credentials.request_token(&plain).await.unwrap();
    }

    // The issuer as audience works too (assertion_audience); a foreign audience does not.
    let credentials =
        ClientCredentials::private_key_jwt(server.token_url(), "ec-client", es256.clone())
            .assertion_audience(server.issuer())
            .build()
            .unwrap();
    credentials.request_token(&plain).await.unwrap();
    let credentials =
        ClientCredentials::private_key_jwt(server.token_url(), "ec-client", es256.clone())
            .assertion_audience("https://someone-else.example")
            .build()
            .unwrap();
    assert_invalid_client(&credentials.request_token(&plain).await.unwrap_err());

    // A key the client did not register, and an algorithm the client did not register.
    let stranger =
        SigningKey::from_pem(rcgen_key(&rcgen::PKCS_ECDSA_P256_SHA256).0.as_bytes()).unwrap();
    let credentials = ClientCredentials::private_key_jwt(server.token_url(), "ec-client", stranger)
        .build()
        .unwrap();
    let err = credentials.request_token(&plain).await.unwrap_err();
    assert_invalid_client(&err);
    let credentials = ClientCredentials::private_key_jwt(server.token_url(), "ec-client", rsa)
        .build()
        .unwrap();
    assert_invalid_client(&credentials.request_token(&plain).await.unwrap_err());

    // tls_client_auth: a certificate of the client CA with the registered subject.
    let (cert, key) = client_ca.issue("mtls-client", &["mtls-client"]);
    let identity = ClientIdentity::from_pem(cert.as_bytes(), key.as_bytes()).unwrap();
    let mtls = http(&ca, Some(identity));
    let credentials = ClientCredentials::tls_client_auth(server.token_url(), "mtls-client")
        .scope("api:read")
        .build()
        .unwrap();
    let source = ClientCredentialsSource::new(credentials.clone(), mtls.clone());
    let token = source.token().await.unwrap();
    assert_eq!(token.scope(), Some("api:read"));

    // The certificate may also come in a rustls configuration of the caller's.
    let (cert, key) = client_ca.issue("mtls-client", &["mtls-client"]);
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from_pem_slice(ca.pem.as_bytes()).unwrap())
        .unwrap();
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_client_auth_cert(
        vec![rustls::pki_types::CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()],
        rustls::pki_types::PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
    )
    .unwrap();
    let own = HttpClient::builder()
        .tls_config(tls)
        .proxy(clientcreds::Proxy::none())
        .build()
        .unwrap();
    assert!(own.has_client_identity());
    credentials.request_token(&own).await.unwrap();

    // Without a client certificate: refused before any request.
    let err = credentials.request_token(&plain).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Config {
                field: "client_identity",
                ..
            }
        ),
        "{err:?}"
    );
    // A certificate of another CA: the server cannot verify it.
    let (cert, key) = Ca::new("stranger CA").issue("mtls-client", &["mtls-client"]);
    let stranger = http(
        &ca,
        Some(ClientIdentity::from_pem(cert.as_bytes(), key.as_bytes()).unwrap()),
    );
    assert_invalid_client(&credentials.request_token(&stranger).await.unwrap_err());
    // A certificate of the right CA for another subject.
    let (cert, key) = client_ca.issue("someone-else", &["someone-else"]);
    let other = http(
        &ca,
        Some(ClientIdentity::from_pem(cert.as_bytes(), key.as_bytes()).unwrap()),
    );
    assert_invalid_client(&credentials.request_token(&other).await.unwrap_err());
    // The certificate does not authenticate a client registered for another method.
    let credentials = ClientCredentials::tls_client_auth(server.token_url(), "ec-client")
        .build()
        .unwrap();
    assert_invalid_client(&credentials.request_token(&mtls).await.unwrap_err());

    // Both through a real forward proxy: the certificate is presented inside the CONNECT
    // tunnel, and the assertion travels in the tunnelled body.
    let proxy = support::Tinyproxy::start("");
    let (cert, key) = client_ca.issue("mtls-client", &["mtls-client"]);
    let identity = ClientIdentity::from_pem(cert.as_bytes(), key.as_bytes()).unwrap();
    let proxied = http_via(
        &ca,
        Some(identity),
        clientcreds::Proxy::url(&proxy.url()).unwrap(),
    );
    let credentials = ClientCredentials::tls_client_auth(server.token_url(), "mtls-client")
        .build()
        .unwrap();
    credentials.request_token(&proxied).await.unwrap();
    let credentials =
        ClientCredentials::private_key_jwt(server.token_url(), "ec-client", es256.clone())
            .build()
            .unwrap();
    credentials.request_token(&proxied).await.unwrap();
    // Every request went through a tunnel to the server (one or two: whether the second
    // request reuses the pooled connection depends on when the first one is returned to the
    // pool, which the client does not promise).
    let tunnels: Vec<_> = proxy
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("CONNECT "))
        .collect();
    let to_server = format!("CONNECT 127.0.0.1:{} HTTP/1.1", server.port);
    assert!(
        (1..=2).contains(&tunnels.len()) && tunnels.iter().all(|t| *t == to_server),
        "{tunnels:?}\n{}",
        proxy.log()
    );

    // The server's own account: every success was authenticated with the registered method.
    let events = server.events();
    let successes: Vec<_> = events
        .iter()
        .filter(|e| e["event"] == "grant.success")
        .map(|e| {
            (
                e["client_id"].as_str().unwrap(),
                e["auth_method"].as_str().unwrap(),
            )
        })
        .collect();
    for (id, method) in [
        ("basic-client", "client_secret_basic"),
        ("post-client", "client_secret_post"),
        ("rsa-client", "private_key_jwt"),
        ("ec-client", "private_key_jwt"),
        ("ed-client", "private_key_jwt"),
        ("mtls-client", "tls_client_auth"),
    ] {
        assert!(
            successes.contains(&(id, method)),
            "{id} {method}: {events:?}"
        );
    }
    // rsa-client: RS256 (PKCS#8 and PKCS#1) and PS256 × 3 requests each.
    assert_eq!(
        successes
            .iter()
            .filter(|(id, _)| *id == "rsa-client")
            .count(),
        9
    );
}
