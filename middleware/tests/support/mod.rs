//! Test harness of the proxy tests: a real forward proxy (tinyproxy, from Debian's
//! `tinyproxy-bin`) on a free loopback port with its own configuration and log, and a TLS
//! endpoint in front of the sandbox (which speaks plain HTTP) for `CONNECT` tunnels.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)] // each test binary uses a part

use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// How to get tinyproxy when it is missing (`scripts/test` does this when run as root).
pub const INSTALL: &str = "apt-get install -y tinyproxy-bin";

/// The tinyproxy binary: on `PATH`, or where Debian puts it.
pub fn tinyproxy_binary() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin".into(), "/usr/sbin".into()])
        .map(|dir| dir.join("tinyproxy"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "the proxy tests need tinyproxy, a real forward proxy: `{INSTALL}` \
                 (scripts/install-tinyproxy, run by ./scripts/test, installs it as root)"
            )
        })
}

/// A tinyproxy process, stopped on drop.
pub struct Tinyproxy {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Tinyproxy {
    /// Starts tinyproxy on a free loopback port; `extra` is appended to its configuration
    /// (e.g. `BasicAuth user password`, `Allow 10.255.255.1`).
    pub fn start(extra: &str) -> Tinyproxy {
        let binary = tinyproxy_binary();
        // A port found free can be taken before tinyproxy binds it: try a few.
        let mut last_error = String::new();
        for _ in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let port = free_port();
            let config = dir.path().join("tinyproxy.conf");
            fs::write(
                &config,
                format!(
                    "Port {port}\nListen 127.0.0.1\nTimeout 30\nMaxClients 50\n\
                     LogFile \"{}\"\nLogLevel Info\n{extra}\n",
                    dir.path().join("tinyproxy.log").display()
                ),
            )
            .unwrap();
            let stderr = fs::File::create(dir.path().join("stderr")).unwrap();
            let mut child = Command::new(&binary)
                .arg("-d")
                .arg("-c")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(stderr)
                .spawn()
                .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Tinyproxy { child, port, dir };
                }
                if let Some(status) = child.try_wait().unwrap() {
                    last_error = format!(
                        "tinyproxy exited ({status}): {}{}",
                        fs::read_to_string(dir.path().join("stderr")).unwrap_or_default(),
                        fs::read_to_string(dir.path().join("tinyproxy.log")).unwrap_or_default()
                    );
                    break;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    last_error = "tinyproxy did not listen within 10 s".into();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("{last_error}");
    }

    /// `http://127.0.0.1:{port}`: how errors and `Debug` name this proxy.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `http://{user}:{password}@127.0.0.1:{port}`.
    pub fn url_with(&self, user: &str, password: &str) -> String {
        format!("http://{user}:{password}@127.0.0.1:{}", self.port)
    }

    /// Its whole log.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("tinyproxy.log")).unwrap_or_default()
    }

    /// The request lines it received, in order: `POST http://127.0.0.1:…/… HTTP/1.1`,
    /// `CONNECT localhost:… HTTP/1.1`.
    pub fn requests(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter_map(|line| line.split_once("]: Request (file descriptor "))
            .filter_map(|(_, rest)| rest.split_once("): "))
            .map(|(_, request)| request.trim().to_owned())
            .collect()
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port nobody listens on (just now).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A TLS endpoint for `localhost` on loopback that passes every connection's plaintext on to
/// `target` (the sandbox), so a token request over TLS lands in the sandbox's record.
pub struct TlsFront {
    /// The port it listens on.
    pub port: u16,
    root: CertificateDer<'static>,
    task: tokio::task::JoinHandle<()>,
}

impl TlsFront {
    /// Starts it (within a tokio runtime).
    pub async fn start(target: SocketAddr) -> TlsFront {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let root = certified.cert.der().clone();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            certified.signing_key.serialize_der(),
        ));
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![root.clone()], key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let Ok(mut upstream) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
                });
            }
        });
        TlsFront { port, root, task }
    }

    /// `https://localhost:{port}` + the path of `url` (a sandbox URL).
    pub fn url_for(&self, sandbox_url: &str) -> String {
        let path = sandbox_url
            .split_once("://")
            .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
            .unwrap_or("/");
        format!("https://localhost:{}{path}", self.port)
    }

    /// A client configuration that trusts this endpoint's certificate (and nothing else).
    pub fn client_config(&self) -> rustls::ClientConfig {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.root.clone()).unwrap();
        rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth()
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}
