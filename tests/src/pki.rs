//! The control plane's certificates: one CA for serving and client certificates, one for the
//! authenticating front proxy, and the service-account signing key.
//!
//! Client certificates are assembled here in DER rather than with rcgen's `CertificateParams`,
//! because Kubernetes reads every `O=` of the subject as a group and rcgen's distinguished name
//! holds one value per attribute type. The CA and serving certificates come from rcgen.

use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PublicKeyData, SigningKey,
};

/// A PEM certificate and its PKCS#8 PEM private key.
pub(crate) struct CertAndKey {
    pub(crate) cert_pem: String,
    pub(crate) key_pem: String,
}

/// The certificate authority of one control plane.
pub(crate) struct Ca {
    common_name: String,
    cert_pem: String,
    cert_der: Vec<u8>,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    /// A fresh self-signed CA.
    pub(crate) fn new(common_name: &str) -> Result<Self, rcgen::Error> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        Ok(Self {
            common_name: common_name.to_owned(),
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            issuer: Issuer::new(params, key),
        })
    }

    /// The CA certificate, PEM.
    pub(crate) fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate, DER.
    pub(crate) fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// A TLS serving certificate for loopback.
    pub(crate) fn serving_cert(&self) -> Result<CertAndKey, rcgen::Error> {
        let mut params = CertificateParams::new(vec![
            "127.0.0.1".to_owned(),
            "localhost".to_owned(),
            "kubernetes".to_owned(),
            "kubernetes.default".to_owned(),
            "kubernetes.default.svc".to_owned(),
        ])?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(CertAndKey {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// A client certificate with `CN=user` and one `O=` per group: the identity Kubernetes
    /// authenticates (groups in order; `system:authenticated` is added by the server).
    ///
    /// The issuer name is re-encoded the way rcgen encoded the CA's subject in [`Ca::new`]: one
    /// CN as a UTF8String (checked by a unit test).
    pub(crate) fn client_cert(
        &self,
        user: &str,
        groups: &[&str],
    ) -> Result<CertAndKey, rcgen::Error> {
        let key = KeyPair::generate()?;
        let mut subject = vec![];
        for group in groups {
            subject.push(rdn(OID_ORGANIZATION, group));
        }
        subject.push(rdn(OID_COMMON_NAME, user));

        let extensions = der::explicit(
            3,
            &der::sequence(&[der::sequence(&[
                der::tlv(der::OID, OID_EXT_KEY_USAGE),
                der::tlv(
                    der::OCTET_STRING,
                    &der::sequence(&[der::tlv(der::OID, OID_CLIENT_AUTH)]),
                ),
            ])]),
        );
        let tbs = der::sequence(&[
            der::explicit(0, &der::integer(&[2])),
            der::integer(&serial_number()),
            ecdsa_with_sha256(),
            der::sequence(&[rdn(OID_COMMON_NAME, &self.common_name)]),
            der::sequence(&[
                der::tlv(der::UTC_TIME, b"000101000000Z"),
                der::tlv(der::GENERALIZED_TIME, b"99991231235959Z"),
            ]),
            der::sequence(&subject),
            key.subject_public_key_info(),
            extensions,
        ]);
        let signature = self.issuer.key().sign(&tbs)?;
        let mut bits = vec![0u8]; // no unused bits
        bits.extend_from_slice(&signature);
        let cert = der::sequence(&[tbs, ecdsa_with_sha256(), der::tlv(der::BIT_STRING, &bits)]);
        Ok(CertAndKey {
            cert_pem: pem("CERTIFICATE", &cert),
            key_pem: key.serialize_pem(),
        })
    }
}

/// A fresh key pair for signing service-account tokens: (private PEM, public PEM).
pub(crate) fn service_account_key() -> Result<(String, String), rcgen::Error> {
    let key = KeyPair::generate()?;
    Ok((key.serialize_pem(), key.public_key_pem()))
}

const OID_COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03]; // 2.5.4.3
const OID_ORGANIZATION: &[u8] = &[0x55, 0x04, 0x0a]; // 2.5.4.10
const OID_EXT_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x25]; // 2.5.29.37
const OID_CLIENT_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02]; // 1.3.6.1.5.5.7.3.2
const OID_ECDSA_WITH_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]; // 1.2.840.10045.4.3.2

/// `SET { SEQUENCE { type, UTF8String value } }`: one relative distinguished name.
fn rdn(oid: &[u8], value: &str) -> Vec<u8> {
    der::tlv(
        der::SET,
        &der::sequence(&[
            der::tlv(der::OID, oid),
            der::tlv(der::UTF8_STRING, value.as_bytes()),
        ]),
    )
}

fn ecdsa_with_sha256() -> Vec<u8> {
    der::sequence(&[der::tlv(der::OID, OID_ECDSA_WITH_SHA256)])
}

/// A unique positive serial number: process id, a counter and the time.
fn serial_number() -> Vec<u8> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default();
    let mut serial = vec![0x01]; // leading byte keeps it positive and non-zero
    serial.extend_from_slice(&std::process::id().to_be_bytes());
    serial.extend_from_slice(&COUNTER.fetch_add(1, Ordering::Relaxed).to_be_bytes());
    serial.extend_from_slice(&nanos.to_be_bytes());
    serial
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Just enough DER to write a certificate.
mod der {
    pub(super) const INTEGER: u8 = 0x02;
    pub(super) const BIT_STRING: u8 = 0x03;
    pub(super) const OCTET_STRING: u8 = 0x04;
    pub(super) const OID: u8 = 0x06;
    pub(super) const UTF8_STRING: u8 = 0x0c;
    pub(super) const UTC_TIME: u8 = 0x17;
    pub(super) const GENERALIZED_TIME: u8 = 0x18;
    pub(super) const SEQUENCE: u8 = 0x30;
    pub(super) const SET: u8 = 0x31;

    pub(super) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = content.len();
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes = len.to_be_bytes();
            let skip = bytes.iter().take_while(|b| **b == 0).count();
            out.push(0x80 | (bytes.len() - skip) as u8);
            out.extend_from_slice(&bytes[skip..]);
        }
        out.extend_from_slice(content);
        out
    }

    pub(super) fn sequence(items: &[Vec<u8>]) -> Vec<u8> {
        tlv(SEQUENCE, &items.concat())
    }

    /// `[n] EXPLICIT`, context-specific and constructed.
    pub(super) fn explicit(n: u8, content: &[u8]) -> Vec<u8> {
        tlv(0xa0 | n, content)
    }

    /// A non-negative INTEGER from big-endian bytes.
    pub(super) fn integer(be: &[u8]) -> Vec<u8> {
        let skip = be
            .iter()
            .take_while(|b| **b == 0)
            .count()
            .min(be.len().saturating_sub(1));
        let mut content = be[skip..].to_vec();
        if content.first().is_some_and(|b| b & 0x80 != 0) {
            content.insert(0, 0);
        }
        if content.is_empty() {
            content.push(0);
        }
        tlv(INTEGER, &content)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_lengths_use_the_long_form_above_127_bytes() {
        assert_eq!(der::tlv(0x04, &[7; 3]), vec![0x04, 3, 7, 7, 7]);
        let long = der::tlv(0x04, &[0; 300]);
        assert_eq!(&long[..4], &[0x04, 0x82, 0x01, 0x2c]);
        assert_eq!(long.len(), 304);
    }

    #[test]
    fn der_integers_are_minimal_and_positive() {
        assert_eq!(der::integer(&[0, 0, 5]), vec![0x02, 1, 5]);
        assert_eq!(der::integer(&[0x80]), vec![0x02, 2, 0, 0x80]);
        assert_eq!(der::integer(&[0, 0]), vec![0x02, 1, 0]);
    }

    #[test]
    fn rdn_matches_rcgen_encoding_of_the_issuer() {
        // The client certificate's issuer must equal the CA's subject byte for byte.
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "clientcreds-e2e-ca");
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let name = der::sequence(&[rdn(OID_COMMON_NAME, "clientcreds-e2e-ca")]);
        let der = cert.der().to_vec();
        assert!(
            der.windows(name.len()).any(|w| w == name.as_slice()),
            "rcgen encodes the CA name differently"
        );
    }

    #[test]
    fn client_cert_is_pem_with_a_pkcs8_key() {
        let ca = Ca::new("clientcreds-e2e-ca").unwrap();
        let pair = ca.client_cert("alice", &["a", "b"]).unwrap();
        assert!(pair.cert_pem.starts_with("-----BEGIN CERTIFICATE-----\n"));
        assert!(pair.key_pem.contains("BEGIN PRIVATE KEY"));
    }
}
