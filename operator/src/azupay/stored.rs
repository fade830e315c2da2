//! The client credentials a credentials Secret (or a recovery Secret) holds: what the
//! enable-once flow reads back instead of calling enable again.

use k8s_openapi::api::core::v1::Secret;
use secrecy::SecretString;

use crate::secrets::{keys, secret_string};

/// The client credentials stored in a credentials Secret.
#[derive(Clone)]
pub struct StoredCredentials {
    /// `client_id`.
    pub client_id: String,
    /// `client_secret`.
    pub client_secret: SecretString,
    /// `token_url`, if stored.
    pub token_url: Option<String>,
}

impl std::fmt::Debug for StoredCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredCredentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("token_url", &self.token_url)
            .finish()
    }
}

/// Reads the stored credentials from a credentials Secret, if it holds a client secret.
pub fn stored_credentials(secret: &Secret) -> Option<StoredCredentials> {
    Some(StoredCredentials {
        client_id: secret_string(secret, keys::CLIENT_ID)?,
        client_secret: SecretString::from(secret_string(secret, keys::CLIENT_SECRET)?),
        token_url: secret_string(secret, keys::TOKEN_URL),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::ByteString;

    use super::*;

    #[test]
    fn stored_credentials_hide_the_secret() {
        let secret = Secret {
            data: Some(BTreeMap::from([
                ("client_id".to_owned(), ByteString(b"c".to_vec())),
                (
                    "client_secret".to_owned(),
                    ByteString(b"topsecret".to_vec()),
                ),
            ])),
            ..Secret::default()
        };
        let c = stored_credentials(&secret).unwrap();
        assert_eq!(c.client_id, "c");
        assert_eq!(c.token_url, None);
        assert!(!format!("{c:?}").contains("topsecret"));
    }
}
