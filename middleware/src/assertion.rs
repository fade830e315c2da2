//! `private_key_jwt` client authentication (RFC 7523 §2.2, OpenID Connect Core §9): a
//! [`SigningKey`] signs a fresh client assertion for every token request.
//!
//! The assertion is a compact JWS with the header `{"alg", "typ": "JWT", "kid"?}` and the
//! claims `iss` = `sub` = the client id, `aud` = the token endpoint URL (or
//! [`assertion_audience`](crate::ClientCredentialsBuilder::assertion_audience)), `jti` (128
//! random bits, new for every assertion), `iat` and `exp` (`iat` +
//! [`assertion_lifetime`](crate::ClientCredentialsBuilder::assertion_lifetime), 60 s by
//! default). It goes in the form body as `client_assertion`, with
//! `client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`. A retry
//! signs a new one: an assertion is never sent twice.
//!
//! Keys are read from PEM: PKCS#8 (`BEGIN PRIVATE KEY`) for RSA, P-256 and Ed25519, and PKCS#1
//! (`BEGIN RSA PRIVATE KEY`) for RSA. Signing uses `ring`, the crypto library rustls already
//! links. A key never appears in `Debug`, errors or tracing: only its algorithm and key id.
//!
//! ```
//! use clientcreds::assertion::{JwsAlgorithm, SigningKey};
//! use clientcreds::{ClientAuth, ClientCredentials};
//!
//! # let pem = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap().serialize_pem();
//! // let pem = std::fs::read("client-key.pem")?;
//! let key = SigningKey::from_pem(pem.as_bytes())?.with_key_id("2026-01");
//! assert_eq!(key.algorithm(), JwsAlgorithm::Es256);
//!
//! let credentials = ClientCredentials::private_key_jwt(
//!     "https://auth.example.com/oauth2/token",
//!     "my-client",
//!     key,
//! )
//! .scope("payments:read")
//! .build()?;
//! assert_eq!(credentials.auth(), ClientAuth::PrivateKeyJwt);
//! // Debug shows the algorithm and key id, never the key.
//! assert!(format!("{credentials:?}").contains("Es256"));
//! assert!(!format!("{credentials:?}").contains("PRIVATE KEY"));
//! # Ok::<(), clientcreds::Error>(())
//! ```

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;
use secrecy::{ExposeSecret, SecretSlice};

use crate::Error;

/// The `client_assertion_type` of a JWT client assertion (RFC 7523 §2.2).
pub const JWT_BEARER_ASSERTION_TYPE: &str =
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The default lifetime of a client assertion (`exp` − `iat`).
pub const DEFAULT_ASSERTION_LIFETIME: Duration = Duration::from_secs(60);

/// The JWS algorithm (RFC 7518 §3, RFC 8037) a [`SigningKey`] signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JwsAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (an RSA key of 2048 bits or more).
    Rs256,
    /// RSASSA-PSS with SHA-256 (an RSA key of 2048 bits or more).
    Ps256,
    /// ECDSA with P-256 and SHA-256.
    Es256,
    /// Ed25519 (`EdDSA`, RFC 8037).
    EdDsa,
}

impl JwsAlgorithm {
    /// The `alg` header value: `RS256`, `PS256`, `ES256` or `EdDSA`.
    pub fn as_str(self) -> &'static str {
        match self {
            JwsAlgorithm::Rs256 => "RS256",
            JwsAlgorithm::Ps256 => "PS256",
            JwsAlgorithm::Es256 => "ES256",
            JwsAlgorithm::EdDsa => "EdDSA",
        }
    }
}

impl fmt::Display for JwsAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for JwsAlgorithm {
    type Err = Error;

    /// Parses `RS256`, `PS256`, `ES256` or `EdDSA` (case-insensitive).
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.to_ascii_uppercase().as_str() {
            "RS256" => Ok(JwsAlgorithm::Rs256),
            "PS256" => Ok(JwsAlgorithm::Ps256),
            "ES256" => Ok(JwsAlgorithm::Es256),
            "EDDSA" => Ok(JwsAlgorithm::EdDsa),
            _ => Err(Error::config(
                "jwt_alg",
                format!("{s:?} is not supported; use RS256, PS256, ES256 or EdDSA"),
            )),
        }
    }
}

enum Key {
    Rsa(RsaKeyPair),
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// A private key that signs client assertions, with its algorithm and optional key id (`kid`).
///
/// Cheap to clone. `Debug` shows the algorithm and key id only.
#[derive(Clone)]
pub struct SigningKey {
    key: Arc<Key>,
    algorithm: JwsAlgorithm,
    key_id: Option<String>,
}

impl SigningKey {
    /// Reads a PEM private key: PKCS#8 (RSA, P-256, Ed25519) or PKCS#1 (RSA). The algorithm
    /// follows from the key: `RS256` for RSA (see [`with_algorithm`](Self::with_algorithm) for
    /// `PS256`), `ES256` for P-256, `EdDSA` for Ed25519.
    pub fn from_pem(pem: &[u8]) -> Result<SigningKey, Error> {
        let der = PrivateKeyDer::from_pem_slice(pem).map_err(|_| {
            invalid(
                "holds no PEM private key (BEGIN PRIVATE KEY or BEGIN RSA PRIVATE KEY); \
                 an encrypted key must be decrypted first",
            )
        })?;
        let rng = SystemRandom::new();
        let (key, algorithm) = match &der {
            PrivateKeyDer::Pkcs1(der) => (
                Key::Rsa(RsaKeyPair::from_der(der.secret_pkcs1_der()).map_err(rsa_rejected)?),
                JwsAlgorithm::Rs256,
            ),
            PrivateKeyDer::Pkcs8(der) => {
                let der = der.secret_pkcs8_der();
                if let Ok(key) = RsaKeyPair::from_pkcs8(der) {
                    (Key::Rsa(key), JwsAlgorithm::Rs256)
                } else if let Ok(key) =
                    EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng)
                {
                    (Key::Ecdsa(key), JwsAlgorithm::Es256)
                } else if let Ok(key) = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der) {
                    (Key::Ed25519(key), JwsAlgorithm::EdDsa)
                } else {
                    return Err(invalid(
                        "is a PKCS#8 key of a kind that cannot sign client assertions; use an \
                         RSA key of 2048 bits or more, a P-256 key or an Ed25519 key",
                    ));
                }
            }
            PrivateKeyDer::Sec1(_) => {
                return Err(invalid(
                    "is a SEC1 EC key (BEGIN EC PRIVATE KEY); convert it to PKCS#8 with \
                     `openssl pkcs8 -topk8 -nocrypt -in key.pem -out key.p8.pem`",
                ));
            }
            _ => return Err(invalid("is of an unsupported kind")),
        };
        Ok(SigningKey {
            key: Arc::new(key),
            algorithm,
            key_id: None,
        })
    }

    /// Reads a PEM private key from a file (see [`from_pem`](Self::from_pem)). Errors name the
    /// file, never its contents.
    pub fn from_pem_file(path: impl AsRef<Path>) -> Result<SigningKey, Error> {
        let path = path.as_ref();
        // Wiped from memory when dropped.
        let pem = SecretSlice::from(std::fs::read(path).map_err(|e| {
            Error::config(
                "private_key",
                format!("cannot read {}: {e}", path.display()),
            )
        })?);
        SigningKey::from_pem(pem.expose_secret()).map_err(|err| match err {
            Error::Config { field, message } => Error::Config {
                field,
                message: format!("{}: {message}", path.display()),
            },
            other => other,
        })
    }

    /// The same key signing with `algorithm`: `RS256` or `PS256` for an RSA key; a P-256 key
    /// signs only `ES256` and an Ed25519 key only `EdDSA`.
    pub fn with_algorithm(mut self, algorithm: JwsAlgorithm) -> Result<SigningKey, Error> {
        let fits = matches!(
            (&*self.key, algorithm),
            (Key::Rsa(_), JwsAlgorithm::Rs256 | JwsAlgorithm::Ps256)
                | (Key::Ecdsa(_), JwsAlgorithm::Es256)
                | (Key::Ed25519(_), JwsAlgorithm::EdDsa)
        );
        if !fits {
            return Err(Error::config(
                "jwt_alg",
                format!(
                    "{algorithm} does not fit the key, which signs {}",
                    self.algorithm
                ),
            ));
        }
        self.algorithm = algorithm;
        Ok(self)
    }

    /// Sets the `kid` header, so the server picks the right key of the client's JWK set.
    pub fn with_key_id(mut self, key_id: impl Into<String>) -> SigningKey {
        self.key_id = Some(key_id.into());
        self
    }

    /// The algorithm the key signs with.
    pub fn algorithm(&self) -> JwsAlgorithm {
        self.algorithm
    }

    /// The `kid` header, if set.
    pub fn key_id(&self) -> Option<&str> {
        self.key_id.as_deref()
    }

    /// The public key: for RSA the DER `RSAPublicKey`, for P-256 the uncompressed point, for
    /// Ed25519 the 32 bytes. Useful to register or check the key with a provider.
    pub fn public_key(&self) -> &[u8] {
        match &*self.key {
            Key::Rsa(key) => key.public().as_ref(),
            Key::Ecdsa(key) => key.public_key().as_ref(),
            Key::Ed25519(key) => key.public_key().as_ref(),
        }
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        let rng = SystemRandom::new();
        let failed = |_| Error::Internal("signing the client assertion failed".into());
        match &*self.key {
            Key::Rsa(key) => {
                let padding: &'static dyn signature::RsaEncoding = match self.algorithm {
                    JwsAlgorithm::Ps256 => &signature::RSA_PSS_SHA256,
                    _ => &signature::RSA_PKCS1_SHA256,
                };
                let mut out = vec![0; key.public().modulus_len()];
                key.sign(padding, &rng, message, &mut out).map_err(failed)?;
                Ok(out)
            }
            Key::Ecdsa(key) => Ok(key.sign(&rng, message).map_err(failed)?.as_ref().to_vec()),
            Key::Ed25519(key) => Ok(key.sign(message).as_ref().to_vec()),
        }
    }

    /// A new signed client assertion for `client_id` at `audience`, issued at `now`.
    pub fn assertion(
        &self,
        client_id: &str,
        audience: &str,
        lifetime: Duration,
        now: SystemTime,
    ) -> Result<String, Error> {
        let iat = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_err(|_| Error::Internal("the system clock is before 1970".into()))?
            .as_secs();
        let exp = iat.saturating_add(lifetime.as_secs().max(1));
        let mut jti = [0u8; 16];
        SystemRandom::new()
            .fill(&mut jti)
            .map_err(|_| Error::Internal("no randomness for the assertion's jti".into()))?;
        let b64 = &base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut header = serde_json::json!({ "alg": self.algorithm.as_str(), "typ": "JWT" });
        if let Some(kid) = &self.key_id {
            header["kid"] = kid.as_str().into();
        }
        let claims = serde_json::json!({
            "iss": client_id,
            "sub": client_id,
            "aud": audience,
            "jti": b64.encode(jti),
            "iat": iat,
            "exp": exp,
        });
        let mut jws = b64.encode(header.to_string());
        jws.push('.');
        jws.push_str(&b64.encode(claims.to_string()));
        let signature = self.sign(jws.as_bytes())?;
        jws.push('.');
        jws.push_str(&b64.encode(signature));
        Ok(jws)
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("algorithm", &self.algorithm)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

fn invalid(message: &str) -> Error {
    Error::config("private_key", message)
}

fn rsa_rejected(_: ring::error::KeyRejected) -> Error {
    invalid("is an RSA key that cannot sign (it must have 2048 bits or more)")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(jws: &str) -> (serde_json::Value, serde_json::Value, Vec<u8>) {
        let b64 = &base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut it = jws.split('.');
        let header = serde_json::from_slice(&b64.decode(it.next().unwrap()).unwrap()).unwrap();
        let claims = serde_json::from_slice(&b64.decode(it.next().unwrap()).unwrap()).unwrap();
        let signature = b64.decode(it.next().unwrap()).unwrap();
        assert!(it.next().is_none());
        (header, claims, signature)
    }

    fn signed_part(jws: &str) -> &str {
        &jws[..jws.rfind('.').unwrap()]
    }

    #[test]
    fn es256_assertion_has_the_claims_and_verifies() {
        let pem = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .unwrap()
            .serialize_pem();
        let key = SigningKey::from_pem(pem.as_bytes())
            .unwrap()
            .with_key_id("k1");
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let jws = key
            .assertion("client-1", "https://as/token", Duration::from_secs(60), now)
            .unwrap();
        let (header, claims, sig) = parts(&jws);
        assert_eq!(
            header,
            serde_json::json!({"alg": "ES256", "typ": "JWT", "kid": "k1"})
        );
        assert_eq!(claims["iss"], "client-1");
        assert_eq!(claims["sub"], "client-1");
        assert_eq!(claims["aud"], "https://as/token");
        assert_eq!(claims["iat"], 1_700_000_000);
        assert_eq!(claims["exp"], 1_700_000_060);
        assert_eq!(claims["jti"].as_str().unwrap().len(), 22);
        assert_eq!(sig.len(), 64, "JWS ES256 signatures are r || s");
        signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, key.public_key())
            .verify(signed_part(&jws).as_bytes(), &sig)
            .unwrap();
        // Every assertion has its own jti.
        let again = key
            .assertion("client-1", "https://as/token", Duration::from_secs(60), now)
            .unwrap();
        assert_ne!(parts(&again).1["jti"], claims["jti"]);
    }

    #[test]
    fn ed25519_key_signs_eddsa() {
        let pem = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519)
            .unwrap()
            .serialize_pem();
        let key = SigningKey::from_pem(pem.as_bytes()).unwrap();
        assert_eq!(key.algorithm(), JwsAlgorithm::EdDsa);
        let jws = key
            .assertion("c", "a", Duration::from_secs(60), SystemTime::now())
            .unwrap();
        let (header, _, sig) = parts(&jws);
        assert_eq!(header["alg"], "EdDSA");
        assert!(header.get("kid").is_none());
        signature::UnparsedPublicKey::new(&signature::ED25519, key.public_key())
            .verify(signed_part(&jws).as_bytes(), &sig)
            .unwrap();
        let err = key.with_algorithm(JwsAlgorithm::Rs256).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Config {
                    field: "jwt_alg",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn bad_pem_is_a_config_error_without_the_input() {
        let garbage = b"-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWJ5dGVz\n-----END PRIVATE KEY-----\n";
        let err = SigningKey::from_pem(garbage).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Config {
                    field: "private_key",
                    ..
                }
            ),
            "{err}"
        );
        assert!(!format!("{err} {err:?}").contains("c2VjcmV0"), "{err:?}");
        let err = SigningKey::from_pem(b"not pem at all").unwrap_err();
        assert!(
            matches!(
                err,
                Error::Config {
                    field: "private_key",
                    ..
                }
            ),
            "{err}"
        );
        let err = SigningKey::from_pem_file("/nonexistent/key.pem").unwrap_err();
        assert!(err.to_string().contains("/nonexistent/key.pem"), "{err}");
    }

    #[test]
    fn algorithm_names_parse() {
        assert_eq!(
            "es256".parse::<JwsAlgorithm>().unwrap(),
            JwsAlgorithm::Es256
        );
        assert_eq!(
            "EdDSA".parse::<JwsAlgorithm>().unwrap(),
            JwsAlgorithm::EdDsa
        );
        assert_eq!(JwsAlgorithm::Ps256.to_string(), "PS256");
        assert!("HS256".parse::<JwsAlgorithm>().is_err());
    }
}
