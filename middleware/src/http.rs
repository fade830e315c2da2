//! [`HttpClient`]: the transport used to reach token endpoints.
//!
//! A hyper-util client with rustls (the `ring` provider; Mozilla's webpki roots by default,
//! or the system's native roots), HTTP/1.1, a request timeout that covers connecting, sending
//! and reading the whole response, and a limit on the response size.
//!
//! ```
//! use std::time::Duration;
//! use clientcreds::HttpClient;
//!
//! let http = HttpClient::builder().timeout(Duration::from_secs(10)).build()?;
//! # let _ = http;
//! # Ok::<(), clientcreds::Error>(())
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::builderstates::WantsSchemes;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::Error;

/// The default timeout of one token request.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The default limit on a response body.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// The HTTP client used for token requests. Cheap to clone (clones share connections).
#[derive(Clone)]
pub struct HttpClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
    max_response_bytes: usize,
}

impl HttpClient {
    /// A client with Mozilla's webpki roots and the default timeout.
    pub fn new() -> HttpClient {
        let builder = HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
            .expect("the ring provider supports the default TLS versions");
        HttpClient::from_parts(builder, DEFAULT_TIMEOUT, DEFAULT_MAX_RESPONSE_BYTES)
    }

    /// A builder for the timeout, the root certificates and the response size limit.
    pub fn builder() -> HttpClientBuilder {
        HttpClientBuilder {
            timeout: DEFAULT_TIMEOUT,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            roots: Roots::Webpki,
        }
    }

    fn from_parts(
        builder: HttpsConnectorBuilder<WantsSchemes>,
        timeout: Duration,
        max_response_bytes: usize,
    ) -> Self {
        let connector = builder.https_or_http().enable_http1().build();
        let client = Client::builder(TokioExecutor::new()).build(connector);
        HttpClient {
            client,
            timeout,
            max_response_bytes,
        }
    }

    /// The timeout of one request.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends one request and reads the whole response body, within the timeout and size limit.
    ///
    /// Any status is a successful result here; only transport failures are errors
    /// ([`Error::Transport`], naming the endpoint without its query string).
    pub async fn send(
        &self,
        request: http::Request<Full<Bytes>>,
    ) -> Result<http::Response<Bytes>, Error> {
        let endpoint = endpoint_of(request.uri());
        let limit = self.max_response_bytes;
        let exchange = async {
            let response = self.client.request(request).await.map_err(|e| {
                let message = if e.is_connect() {
                    format!("connection failed: {}", error_chain(&e))
                } else {
                    format!("request failed: {}", error_chain(&e))
                };
                transport(&endpoint, message, Some(Arc::new(e)))
            })?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, limit).collect().await.map_err(|e| {
                let message = if e.is::<http_body_util::LengthLimitError>() {
                    format!("the response body is larger than {limit} bytes")
                } else {
                    format!("reading the response body failed: {e}")
                };
                transport(&endpoint, message, None)
            })?;
            Ok(http::Response::from_parts(parts, body.to_bytes()))
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(transport(
                &endpoint,
                format!("no complete response within {:?}", self.timeout),
                None,
            )),
        }
    }
}

impl Default for HttpClient {
    fn default() -> Self {
        HttpClient::new()
    }
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("timeout", &self.timeout)
            .field("max_response_bytes", &self.max_response_bytes)
            .finish_non_exhaustive()
    }
}

enum Roots {
    Webpki,
    Native,
    Custom(Box<rustls::ClientConfig>),
}

/// Builder of [`HttpClient`].
#[must_use]
pub struct HttpClientBuilder {
    timeout: Duration,
    max_response_bytes: usize,
    roots: Roots,
}

impl fmt::Debug for HttpClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClientBuilder")
            .field("timeout", &self.timeout)
            .field("max_response_bytes", &self.max_response_bytes)
            .finish_non_exhaustive()
    }
}

impl HttpClientBuilder {
    /// The timeout of one request, from connecting to the last byte of the response
    /// (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The largest response body accepted (default 256 KiB).
    pub fn max_response_bytes(mut self, max: usize) -> Self {
        self.max_response_bytes = max;
        self
    }

    /// Trust the operating system's root certificates instead of Mozilla's webpki roots.
    pub fn native_roots(mut self) -> Self {
        self.roots = Roots::Native;
        self
    }

    /// Use this rustls configuration (e.g. a private CA). It should use the `ring` provider.
    pub fn tls_config(mut self, config: rustls::ClientConfig) -> Self {
        self.roots = Roots::Custom(Box::new(config));
        self
    }

    /// Builds the client. Fails only when native roots were asked for and cannot be loaded,
    /// or the timeout is zero.
    pub fn build(self) -> Result<HttpClient, Error> {
        if self.timeout.is_zero() {
            return Err(Error::config("timeout", "must be longer than zero"));
        }
        let builder = HttpsConnectorBuilder::new();
        let builder = match self.roots {
            Roots::Webpki => builder
                .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
                .map_err(|e| Error::config("tls", e.to_string()))?,
            Roots::Custom(config) => builder.with_tls_config(*config),
            Roots::Native => builder
                .with_provider_and_native_roots(rustls::crypto::ring::default_provider())
                .map_err(|e| {
                    Error::config(
                        "native_roots",
                        format!(
                            "the system's root certificates cannot be loaded ({e}); install \
                             ca-certificates or use the webpki roots"
                        ),
                    )
                })?,
        };
        Ok(HttpClient::from_parts(
            builder,
            self.timeout,
            self.max_response_bytes,
        ))
    }
}

/// Scheme, authority and path of a URI: never the query string.
pub(crate) fn endpoint_of(uri: &http::Uri) -> String {
    format!(
        "{}://{}{}",
        uri.scheme_str().unwrap_or("http"),
        uri.authority().map(|a| a.as_str()).unwrap_or(""),
        uri.path()
    )
}

fn transport(endpoint: &str, message: String, source: Option<crate::error::BoxError>) -> Error {
    Error::Transport {
        endpoint: endpoint.to_owned(),
        message,
        source,
    }
}

/// The error and its sources, joined with ": ".
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        let next = inner.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_drops_query() {
        let uri: http::Uri = "https://auth.example.com:8443/oauth2/token?client_secret=x"
            .parse()
            .unwrap();
        assert_eq!(
            endpoint_of(&uri),
            "https://auth.example.com:8443/oauth2/token"
        );
    }

    #[tokio::test]
    async fn connection_refused_is_a_transport_error() {
        // Bind and drop a listener to find a port nobody listens on.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let http = HttpClient::new();
        let request = http::Request::post(format!("http://{addr}/token"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let err = http.send(request).await.unwrap_err();
        assert!(matches!(err, Error::Transport { .. }), "{err:?}");
        assert!(err.to_string().contains(&addr.to_string()), "{err}");
        assert!(err.is_retryable());
    }

    #[tokio::test(start_paused = true)]
    async fn timeout_is_a_transport_error() {
        // A server that accepts and never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (_socket, _) = listener.accept().await.unwrap();
            std::future::pending::<()>().await;
        });
        let http = HttpClient::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let request = http::Request::post(format!("http://{addr}/token"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let err = http.send(request).await.unwrap_err();
        assert!(
            err.to_string().contains("no complete response within"),
            "{err}"
        );
        server.abort();
    }

    #[test]
    fn zero_timeout_is_a_config_error() {
        let err = HttpClient::builder()
            .timeout(Duration::ZERO)
            .build()
            .unwrap_err();
        assert!(matches!(
            err,
            Error::Config {
                field: "timeout",
                ..
            }
        ));
    }
}
