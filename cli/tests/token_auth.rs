//! `clientcreds token` with a private key (`--private-key-file`, private_key_jwt) and a client
//! certificate (`--client-cert-file`/`--client-key-file`, tls_client_auth) against panva's
//! oidc-provider (installed by `scripts/install-oidc-provider`, run by
//! `middleware/tests/oidc-provider/server.mjs`), over HTTPS with a test CA (`--ca-file`).
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

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

/// oidc-provider on loopback; killed on drop.
struct OidcProvider {
    child: Child,
    port: u16,
}

impl OidcProvider {
    fn start(dir: &Path, config: Value) -> OidcProvider {
        let install = Command::new(repo().join("scripts/install-oidc-provider"))
            .stderr(Stdio::inherit())
            .output()
            .expect("run scripts/install-oidc-provider (needs Node.js and npm)");
        assert!(
            install.status.success(),
            "scripts/install-oidc-provider failed"
        );
        let installed = String::from_utf8(install.stdout).unwrap().trim().to_owned();
        let path = dir.join("oidc-provider.json");
        std::fs::write(&path, config.to_string()).unwrap();
        let mut child = Command::new("node")
            .arg(repo().join("middleware/tests/oidc-provider/server.mjs"))
            .arg(&path)
            .env("OIDC_PROVIDER_DIR", installed)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start node");
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if let Some(port) = line.strip_prefix("listening ") {
                    let _ = tx.send(port.trim().parse::<u16>().unwrap());
                }
            }
        });
        let port = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("oidc-provider's port");
        OidcProvider { child, port }
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn token(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_clientcreds"))
        .arg("token")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[test]
fn private_key_jwt_and_tls_client_auth_from_files() {
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, contents: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let ca = Ca::new("cli test CA");
    let (server_cert, server_key) = ca.issue("127.0.0.1", &["127.0.0.1"]);
    let client_ca = Ca::new("cli client CA");
    let ec = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let (client_cert, client_key) = client_ca.issue("cli-mtls", &["cli-mtls"]);
    let server = OidcProvider::start(
        dir.path(),
        serde_json::json!({
            "tls": { "cert": server_cert, "key": server_key, "clientCa": client_ca.pem },
            "clients": [
                { "client_id": "cli-jwt", "token_endpoint_auth_method": "private_key_jwt",
                  "public_keys": [ec.public_key_pem()] },
                { "client_id": "cli-mtls", "token_endpoint_auth_method": "tls_client_auth",
                  "tls_client_auth_subject_dn": "CN=cli-mtls" },
            ],
        }),
    );
    let url = format!("https://127.0.0.1:{}/token", server.port);
    let ca_file = file("ca.pem", &ca.pem);
    let key_pem = ec.serialize_pem();
    let key_file = file("client-key.pem", &key_pem);

    // private_key_jwt, with a key id and the issuer as audience; no secret is read.
    let issuer = format!("https://127.0.0.1:{}", server.port);
    let output = token(&[
        "--token-url",
        &url,
        "--client-id",
        "cli-jwt",
        "--ca-file",
        &ca_file,
        "--private-key-file",
        &key_file,
        "--key-id",
        "key-0",
        "--jwt-alg",
        "ES256",
        "--assertion-audience",
        &issuer,
        "--scope",
        "api:read",
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let printed: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(printed["token_type"], "Bearer");
    assert_eq!(printed["scope"], "api:read");

    // Another client's key: refused, and the key never shows.
    let stranger = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .unwrap()
        .serialize_pem();
    let stranger_file = file("stranger.pem", &stranger);
    let output = token(&[
        "--token-url",
        &url,
        "--client-id",
        "cli-jwt",
        "--ca-file",
        &ca_file,
        "--private-key-file",
        &stranger_file,
    ]);
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(stderr.contains("invalid_client"), "{stderr}");
    let body = stranger.lines().nth(1).unwrap();
    assert!(
        !stderr.contains(body) && !text(&output.stdout).contains(body),
        "{stderr}"
    );

    // A key file that is not a key names the file and the flag, not its contents.
    let bogus = file(
        "bogus.pem",
        "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n",
    );
    let output = token(&[
        "--token-url",
        &url,
        "--client-id",
        "cli-jwt",
        "--private-key-file",
        &bogus,
    ]);
    let stderr = text(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("--private-key-file") && stderr.contains("bogus.pem"),
        "{stderr}"
    );
    assert!(!stderr.contains("c2VjcmV0"), "{stderr}");
    // An RSA algorithm for an EC key.
    let output = token(&[
        "--token-url",
        &url,
        "--client-id",
        "cli-jwt",
        "--private-key-file",
        &key_file,
        "--jwt-alg",
        "RS256",
    ]);
    assert!(
        text(&output.stderr).contains("--jwt-alg"),
        "{}",
        text(&output.stderr)
    );
    // A secret with a key is a mistake, said before anything is sent.
    let output = token(&[
        "--token-url",
        &url,
        "--client-id",
        "cli-jwt",
        "--private-key-file",
        &key_file,
        "--client-secret-env",
        "X",
    ]);
    assert!(
        text(&output.stderr).contains("without one"),
        "{}",
        text(&output.stderr)
    );

    // tls_client_auth: the certificate and key from files.
    let cert_file = file("client.pem", &client_cert);
    let client_key_file = file("client.key", &client_key);
    let output = token(&[
        "--token-url",
        &url,
        "--client-id",
        "cli-mtls",
        "--ca-file",
        &ca_file,
        "--client-cert-file",
        &cert_file,
        "--client-key-file",
        &client_key_file,
        "--output",
        "header",
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).starts_with("Authorization: Bearer "));

    // A certificate the server's CA did not issue: refused.
    let (other_cert, other_key) = Ca::new("stranger").issue("cli-mtls", &["cli-mtls"]);
    let output = token(&[
        "--token-url",
        &url,
        "--client-id",
        "cli-mtls",
        "--ca-file",
        &ca_file,
        "--client-cert-file",
        &file("other.pem", &other_cert),
        "--client-key-file",
        &file("other.key", &other_key),
    ]);
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("invalid_client"),
        "{}",
        text(&output.stderr)
    );
    // A certificate without its key is a usage error.
    let output = token(&[
        "--token-url",
        &url,
        "--client-id",
        "cli-mtls",
        "--client-cert-file",
        &cert_file,
    ]);
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("--client-key-file"),
        "{}",
        text(&output.stderr)
    );
}
