//! [`ClientIdentity`]: the certificate and key the [`HttpClient`](super::HttpClient) presents
//! on TLS connections, for `tls_client_auth` (RFC 8705 §2.1).
//!
//! ```
//! use clientcreds::{ClientIdentity, HttpClient};
//!
//! # let key = rcgen::KeyPair::generate().unwrap();
//! # let cert = rcgen::CertificateParams::new(vec!["client".into()]).unwrap().self_signed(&key).unwrap();
//! # let dir = tempfile::tempdir().unwrap();
//! # let (cert_file, key_file) = (dir.path().join("client.pem"), dir.path().join("client-key.pem"));
//! # std::fs::write(&cert_file, cert.pem()).unwrap();
//! # std::fs::write(&key_file, key.serialize_pem()).unwrap();
//! let identity = ClientIdentity::from_pem_files(&cert_file, &key_file)?;
//! let http = HttpClient::builder().client_identity(identity).build()?;
//! assert!(http.has_client_identity());
//! # Ok::<(), clientcreds::Error>(())
//! ```

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::SignatureScheme;
use rustls::client::ResolvesClientCert;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use secrecy::{ExposeSecret, SecretSlice};

use crate::Error;

/// A client certificate chain (end-entity first) with its private key, presented to every
/// server that asks for one. Cheap to clone; `Debug` shows no key material.
#[derive(Clone)]
pub struct ClientIdentity {
    certified: Arc<CertifiedKey>,
}

impl ClientIdentity {
    /// Reads the certificate chain (one or more `BEGIN CERTIFICATE` blocks, the client's own
    /// first) and its private key (PKCS#8, PKCS#1 or SEC1 PEM), and checks that they belong
    /// together.
    pub fn from_pem(cert_chain_pem: &[u8], key_pem: &[u8]) -> Result<ClientIdentity, Error> {
        let chain = CertificateDer::pem_slice_iter(cert_chain_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| Error::config("client_certificate", "is not valid PEM"))?;
        if chain.is_empty() {
            return Err(Error::config(
                "client_certificate",
                "holds no certificate (BEGIN CERTIFICATE)",
            ));
        }
        // The PEM parser's errors may quote the input: never show them.
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|_| {
            Error::config(
                "client_key",
                "holds no PEM private key (BEGIN PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)",
            )
        })?;
        let certified =
            CertifiedKey::from_der(chain, key, &rustls::crypto::ring::default_provider()).map_err(
                |e| match e {
                    rustls::Error::InconsistentKeys(_) => {
                        Error::config("client_key", "does not belong to the client certificate")
                    }
                    _ => Error::config("client_key", "is of a kind rustls cannot sign with"),
                },
            )?;
        Ok(ClientIdentity {
            certified: Arc::new(certified),
        })
    }

    /// Reads the certificate chain and the private key from PEM files (see
    /// [`from_pem`](Self::from_pem)). Errors name the files, never their contents.
    pub fn from_pem_files(
        cert_chain: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<ClientIdentity, Error> {
        let (cert_chain, key) = (cert_chain.as_ref(), key.as_ref());
        let read = |field: &'static str, path: &Path| {
            std::fs::read(path)
                .map_err(|e| Error::config(field, format!("cannot read {}: {e}", path.display())))
        };
        let cert_pem = read("client_certificate", cert_chain)?;
        // Wiped from memory when dropped.
        let key_pem = SecretSlice::from(read("client_key", key)?);
        ClientIdentity::from_pem(&cert_pem, key_pem.expose_secret()).map_err(|err| match err {
            Error::Config { field, message } => {
                let path = if field == "client_key" {
                    key
                } else {
                    cert_chain
                };
                Error::Config {
                    field,
                    message: format!("{}: {message}", path.display()),
                }
            }
            other => other,
        })
    }

    /// The certificate chain, end-entity first.
    pub fn certificates(&self) -> &[CertificateDer<'static>] {
        &self.certified.cert
    }

    pub(crate) fn resolver(&self) -> Arc<dyn ResolvesClientCert> {
        Arc::new(Resolver(Arc::clone(&self.certified)))
    }
}

impl fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientIdentity")
            .field("certificates", &self.certified.cert.len())
            .finish_non_exhaustive()
    }
}

/// Always offers the one identity.
struct Resolver(Arc<CertifiedKey>);

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientIdentityResolver")
    }
}

impl ResolvesClientCert for Resolver {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.0
            .key
            .choose_scheme(sigschemes)
            .is_some()
            .then(|| Arc::clone(&self.0))
    }

    fn has_certs(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mismatched_key_and_garbage_are_config_errors() {
        let key = rcgen::KeyPair::generate().unwrap();
        let other = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["client".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let ok = ClientIdentity::from_pem(cert.pem().as_bytes(), key.serialize_pem().as_bytes());
        assert_eq!(ok.unwrap().certificates().len(), 1);
        let err = ClientIdentity::from_pem(cert.pem().as_bytes(), other.serialize_pem().as_bytes())
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::Config {
                    field: "client_key",
                    ..
                }
            ),
            "{err}"
        );
        let err = ClientIdentity::from_pem(b"nothing", key.serialize_pem().as_bytes()).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Config {
                    field: "client_certificate",
                    ..
                }
            ),
            "{err}"
        );
        let secret = key.serialize_pem();
        let err =
            ClientIdentity::from_pem(cert.pem().as_bytes(), &secret.as_bytes()[..60]).unwrap_err();
        assert!(
            !format!("{err} {err:?}").contains(&secret[30..50]),
            "{err:?}"
        );
    }
}
