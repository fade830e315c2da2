//! [`HttpClient`]: the transport used to reach token endpoints.
//!
//! A hyper-util client with rustls (the `ring` provider; Mozilla's webpki roots by default,
//! or the system's native roots with the `native-roots` feature), HTTP/1.1, a request timeout that covers connecting, sending
//! and reading the whole response, and a limit on the response size.
//!
//! It honours `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY` (and their lower-case
//! forms) by default, tunnelling to `https://` endpoints with `CONNECT`;
//! [`HttpClientBuilder::proxy`] overrides them with a [`Proxy`] of its own, or
//! [`Proxy::none`]. See [`proxy`] for the rules.
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
use hyper_util::rt::TokioExecutor;

use crate::Error;

pub mod identity;
pub mod proxy;
pub mod service;

pub use identity::ClientIdentity;
pub use proxy::Proxy;
use proxy::{ProxyConnector, ProxyError, Route};
use service::{BodyError, ServiceBody, ServiceError, UserService};

/// The default timeout of one token request.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The default limit on a response body.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// The HTTP client used for token requests. Cheap to clone (clones share connections).
///
/// Built in: a hyper client ([`HttpClient::new`], [`HttpClient::builder`]). Or any tower
/// service of your own, from `http::Request<B>` to `http::Response<impl Body>`
/// ([`HttpClient::from_service`]): a hyper client you configured, a `reqwest::Client`, a stack
/// with your own layers.
#[derive(Clone)]
pub struct HttpClient {
    transport: Transport,
    proxy: Proxy,
    timeout: Duration,
    max_response_bytes: usize,
    has_identity: bool,
}

impl HttpClient {
    /// A client with Mozilla's webpki roots, the default timeout, and the proxies of the
    /// environment ([`Proxy::from_env`], read now).
    pub fn new() -> HttpClient {
        let builder = HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
            .expect("the ring provider supports the default TLS versions");
        HttpClient::from_parts(
            builder,
            Proxy::from_env(),
            DEFAULT_TIMEOUT,
            DEFAULT_MAX_RESPONSE_BYTES,
            false,
        )
    }

    /// A builder for the timeout, the root certificates, the proxy and the response size limit.
    pub fn builder() -> HttpClientBuilder {
        HttpClientBuilder {
            timeout: DEFAULT_TIMEOUT,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            roots: Roots::Webpki,
            proxy: None,
            identity: None,
            service: None,
        }
    }

    /// Token requests (and Azupay's calls) through an HTTP client of your own: any tower
    /// service from `http::Request<B>` (`B` built from the body's [`Bytes`]: `Full<Bytes>`,
    /// `reqwest::Body`, …) to `http::Response` of a body with [`Bytes`] chunks, with the
    /// default timeout and response size limit ([`HttpClientBuilder::service`] sets them).
    ///
    /// Each request goes to a clone of the service, driven to readiness first. Its TLS roots,
    /// proxies and client certificate are its own: [`proxy`](Self::proxy) is
    /// [`Proxy::none`], and [`has_client_identity`](Self::has_client_identity) is `true`
    /// (a `tls_client_auth` client trusts the service to present the certificate). Its errors
    /// become [`Error::Transport`], naming the endpoint.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use clientcreds::{ClientCredentials, ClientCredentialsSource, HttpClient};
    /// use http_body_util::Full;
    /// use hyper_util::client::legacy::Client;
    /// use hyper_util::rt::TokioExecutor;
    /// # use secrecy::SecretString;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let sandbox = clientcreds_sandbox::Sandbox::start(Default::default()).await?;
    /// # let afterpay = sandbox.afterpay();
    /// # let (token_url, client_id, secret) =
    /// #     (afterpay.token_url, afterpay.client_id, SecretString::from(afterpay.client_secret));
    /// // A hyper client of your own (here plain HTTP, for the local sandbox).
    /// let hyper = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    /// let http = HttpClient::from_service(hyper);
    /// let credentials = ClientCredentials::builder(token_url, client_id, secret).build()?;
    /// let token = credentials.request_token(&http).await?;
    /// assert_eq!(token.token_type(), "Bearer");
    /// // Or cached: ClientCredentialsSource::new(credentials, http)
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_service<S, B, RB>(service: S) -> HttpClient
    where
        S: tower_service::Service<http::Request<B>, Response = http::Response<RB>>
            + Clone
            + Send
            + 'static,
        S::Future: Send + 'static,
        S::Error: Into<ServiceError>,
        B: From<Bytes> + Send + 'static,
        RB: http_body::Body<Data = Bytes> + Send + 'static,
        RB::Error: Into<ServiceError>,
    {
        HttpClient::from_user_service(
            UserService::new(service),
            DEFAULT_TIMEOUT,
            DEFAULT_MAX_RESPONSE_BYTES,
        )
    }

    fn from_user_service(
        service: UserService,
        timeout: Duration,
        max_response_bytes: usize,
    ) -> HttpClient {
        HttpClient {
            transport: Transport::Service(service),
            proxy: Proxy::none(),
            timeout,
            max_response_bytes,
            has_identity: true,
        }
    }

    fn from_parts(
        builder: HttpsConnectorBuilder<WantsSchemes>,
        proxy: Proxy,
        timeout: Duration,
        max_response_bytes: usize,
        has_identity: bool,
    ) -> Self {
        let connector = builder
            .https_or_http()
            .enable_http1()
            .wrap_connector(ProxyConnector::new(proxy.clone()));
        let client = Client::builder(TokioExecutor::new()).build(connector);
        HttpClient {
            transport: Transport::Hyper(Arc::new(client)),
            proxy,
            timeout,
            max_response_bytes,
            has_identity,
        }
    }

    /// Whether this client presents a TLS client certificate
    /// ([`HttpClientBuilder::client_identity`], or one in the rustls configuration given to
    /// [`HttpClientBuilder::tls_config`]).
    pub fn has_client_identity(&self) -> bool {
        self.has_identity
    }

    /// The proxies this client uses.
    pub fn proxy(&self) -> &Proxy {
        &self.proxy
    }

    /// The timeout of one request.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The same client (connection pool, roots, proxies, size limit) with another timeout for
    /// one request: for a call that may legitimately take longer than a token request.
    ///
    /// ```
    /// use std::time::Duration;
    /// let http = clientcreds::HttpClient::new();
    /// let patient = http.with_timeout(Duration::from_secs(120));
    /// assert_eq!(patient.timeout(), Duration::from_secs(120));
    /// assert_ne!(http.timeout(), patient.timeout());
    /// ```
    pub fn with_timeout(&self, timeout: Duration) -> HttpClient {
        HttpClient {
            timeout,
            ..self.clone()
        }
    }

    /// Sends one request and reads the whole response body, within the timeout and size limit.
    ///
    /// Any status is a successful result here; only transport failures are errors
    /// ([`Error::Transport`], naming the endpoint without its query string), and failures of
    /// the proxy on the way ([`Error::Proxy`], naming the proxy without its credentials; a
    /// `407` from a proxy that forwards `http://` requests is one too).
    pub async fn send(
        &self,
        mut request: http::Request<Full<Bytes>>,
    ) -> Result<http::Response<Bytes>, Error> {
        let endpoint = endpoint_of(request.uri());
        let limit = self.max_response_bytes;
        let route = self.proxy.route(request.uri());
        let (proxy, forwarded) = match &route {
            Route::Direct => (None, None),
            Route::Forward(intercept) => {
                // One connection per forwarded request: forward proxies commonly close the
                // client's connection after each response without saying so (tinyproxy does),
                // and a request written on such a connection as it closes fails with
                // "connection closed before message completed". Token requests are rare, so the
                // handshake saved by reusing it is worth nothing against that race.
                request.headers_mut().insert(
                    http::header::CONNECTION,
                    http::HeaderValue::from_static("close"),
                );
                if let Some(value) = proxy::forward_authorization(intercept) {
                    request
                        .headers_mut()
                        .insert(http::header::PROXY_AUTHORIZATION, value);
                }
                let shown = proxy::shown_uri(intercept.uri());
                (Some(shown), Some(intercept.basic_auth().is_some()))
            }
            Route::Tunnel(intercept) => (Some(proxy::shown_uri(intercept.uri())), None),
        };
        if let Some(proxy) = &proxy {
            tracing::debug!(proxy = %proxy, endpoint = %endpoint, "through a proxy");
        }
        // Transport errors after the proxy let the request through say which proxy it was.
        let via = proxy
            .as_deref()
            .map(|proxy| format!(" (through the proxy {proxy})"))
            .unwrap_or_default();
        let exchange = async {
            let response = match &self.transport {
                Transport::Hyper(client) => client
                    .request(request)
                    .await
                    .map(|response| response.map(box_body))
                    .map_err(|e| {
                        if let Some(err) = find_proxy_error(&e) {
                            return Error::Proxy {
                                proxy: err.proxy.clone(),
                                endpoint: endpoint.clone(),
                                status: err.status,
                                message: err.message.clone(),
                                source: Some(Arc::new(e)),
                            };
                        }
                        let message = if e.is_connect() {
                            format!("connection failed: {}", error_chain(&e))
                        } else {
                            format!("request failed: {}", error_chain(&e))
                        };
                        transport(&endpoint, message + &via, Some(Arc::new(e)))
                    }),
                Transport::Service(service) => {
                    let (parts, body) = request.into_parts();
                    let body = match body.collect().await {
                        Ok(body) => body.to_bytes(),
                        Err(never) => match never {},
                    };
                    service
                        .call(http::Request::from_parts(parts, body))
                        .await
                        .map_err(|e| {
                            let message = format!("request failed: {}", error_chain(&*e));
                            transport(&endpoint, message, Some(shared(e)))
                        })
                }
            }?;
            if let (Some(proxy), Some(sent_credentials)) = (&proxy, forwarded)
                && response.status() == http::StatusCode::PROXY_AUTHENTICATION_REQUIRED
            {
                return Err(Error::Proxy {
                    proxy: proxy.clone(),
                    endpoint: endpoint.clone(),
                    status: Some(response.status()),
                    message: if sent_credentials {
                        proxy::AUTH_REFUSED
                    } else {
                        proxy::AUTH_REQUIRED
                    }
                    .to_owned(),
                    source: None,
                });
            }
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, limit).collect().await.map_err(|e| {
                let message = if e.is::<http_body_util::LengthLimitError>() {
                    format!("the response body is larger than {limit} bytes")
                } else {
                    format!("reading the response body failed: {e}")
                };
                transport(&endpoint, message + &via, None)
            })?;
            Ok(http::Response::from_parts(parts, body.to_bytes()))
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(transport(
                &endpoint,
                format!("no complete response within {:?}{via}", self.timeout),
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

/// A service's error, shared.
fn shared(e: ServiceError) -> crate::error::BoxError {
    Arc::from(e)
}

/// The built-in client's response body, boxed as a service's is.
fn box_body(body: hyper::body::Incoming) -> ServiceBody {
    body.map_err(|e| BodyError(Box::new(e))).boxed_unsync()
}

/// How an [`HttpClient`] sends.
#[derive(Clone)]
enum Transport {
    /// The built-in hyper client (in an `Arc`: it is ten times the size of the other variant).
    Hyper(Arc<Client<HttpsConnector<ProxyConnector>, Full<Bytes>>>),
    /// A service of the user's.
    Service(UserService),
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field(
                "transport",
                &match self.transport {
                    Transport::Hyper(_) => "hyper",
                    Transport::Service(_) => "service",
                },
            )
            .field("timeout", &self.timeout)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("proxy", &self.proxy)
            .field("client_identity", &self.has_identity)
            .finish_non_exhaustive()
    }
}

enum Roots {
    Webpki,
    #[cfg(feature = "native-roots")]
    Native,
    Custom(Box<rustls::ClientConfig>),
}

/// Builder of [`HttpClient`].
#[must_use]
pub struct HttpClientBuilder {
    timeout: Duration,
    max_response_bytes: usize,
    roots: Roots,
    proxy: Option<Proxy>,
    identity: Option<ClientIdentity>,
    service: Option<UserService>,
}

impl fmt::Debug for HttpClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClientBuilder")
            .field("timeout", &self.timeout)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("proxy", &self.proxy)
            .field("client_identity", &self.identity)
            .field("service", &self.service.is_some())
            .finish_non_exhaustive()
    }
}

impl HttpClientBuilder {
    /// Send through this service instead of the built-in client, as
    /// [`HttpClient::from_service`] does, with this builder's
    /// [`timeout`](Self::timeout) and [`max_response_bytes`](Self::max_response_bytes). Roots,
    /// a TLS configuration, a proxy or a client identity cannot be combined with it (configure
    /// them on the service): [`build`](Self::build) refuses them.
    pub fn service<S, B, RB>(mut self, service: S) -> Self
    where
        S: tower_service::Service<http::Request<B>, Response = http::Response<RB>>
            + Clone
            + Send
            + 'static,
        S::Future: Send + 'static,
        S::Error: Into<ServiceError>,
        B: From<Bytes> + Send + 'static,
        RB: http_body::Body<Data = Bytes> + Send + 'static,
        RB::Error: Into<ServiceError>,
    {
        self.service = Some(UserService::new(service));
        self
    }

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
    #[cfg(feature = "native-roots")]
    #[cfg_attr(docsrs, doc(cfg(feature = "native-roots")))]
    pub fn native_roots(mut self) -> Self {
        self.roots = Roots::Native;
        self
    }

    /// Use this rustls configuration (e.g. a private CA). It should use the `ring` provider.
    pub fn tls_config(mut self, config: rustls::ClientConfig) -> Self {
        self.roots = Roots::Custom(Box::new(config));
        self
    }

    /// The proxies to use, instead of the environment's: [`Proxy::url`] for one proxy,
    /// [`Proxy::none`] to connect directly. Without this, [`Proxy::from_env`] is read when the
    /// client is built.
    pub fn proxy(mut self, proxy: Proxy) -> Self {
        self.proxy = Some(proxy);
        self
    }

    /// The client certificate and key to present when a server asks for one (mutual TLS, as
    /// `tls_client_auth` needs). Works with every choice of roots, a
    /// [`tls_config`](Self::tls_config) of your own included (its client certificate, if any,
    /// is replaced), and through proxies (the certificate goes inside the tunnel).
    pub fn client_identity(mut self, identity: ClientIdentity) -> Self {
        self.identity = Some(identity);
        self
    }

    /// Builds the client. Fails only when native roots were asked for and cannot be loaded,
    /// or the timeout is zero.
    pub fn build(self) -> Result<HttpClient, Error> {
        if self.timeout.is_zero() {
            return Err(Error::config("timeout", "must be longer than zero"));
        }
        if let Some(service) = self.service {
            let own = [
                (!matches!(self.roots, Roots::Webpki)).then_some("root certificates"),
                self.proxy.is_some().then_some("a proxy"),
                self.identity.is_some().then_some("a client identity"),
            ];
            if let Some(what) = own.into_iter().flatten().next() {
                return Err(Error::config(
                    "service",
                    format!(
                        "an HTTP service of your own sends the token requests, so {what} set on \
                         HttpClientBuilder would not be used; configure it on the service"
                    ),
                ));
            }
            return Ok(HttpClient::from_user_service(
                service,
                self.timeout,
                self.max_response_bytes,
            ));
        }
        // A tls_config of the caller's may carry a client certificate of its own.
        let has_identity = self.identity.is_some()
            || matches!(&self.roots, Roots::Custom(config) if config.client_auth_cert_resolver.has_certs());
        let builder = HttpsConnectorBuilder::new();
        let builder = match (self.roots, self.identity) {
            (roots, Some(identity)) => {
                let mut config = match roots {
                    Roots::Custom(config) => *config,
                    Roots::Webpki => tls_config_with_roots(rustls::RootCertStore {
                        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
                    })?,
                    #[cfg(feature = "native-roots")]
                    Roots::Native => tls_config_with_roots(native_root_store()?)?,
                };
                config.client_auth_cert_resolver = identity.resolver();
                builder.with_tls_config(config)
            }
            (roots, None) => match roots {
                Roots::Webpki => builder
                    .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
                    .map_err(|e| Error::config("tls", e.to_string()))?,
                Roots::Custom(config) => builder.with_tls_config(*config),
                #[cfg(feature = "native-roots")]
                Roots::Native => builder
                    .with_provider_and_native_roots(rustls::crypto::ring::default_provider())
                    .map_err(|e| native_roots_error(&e))?,
            },
        };
        Ok(HttpClient::from_parts(
            builder,
            self.proxy.unwrap_or_else(Proxy::from_env),
            self.timeout,
            self.max_response_bytes,
            has_identity,
        ))
    }
}

/// A rustls configuration with the `ring` provider and these roots, no client certificate.
fn tls_config_with_roots(roots: rustls::RootCertStore) -> Result<rustls::ClientConfig, Error> {
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| Error::config("tls", e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth())
}

/// The system's root certificates, as hyper-rustls loads them.
#[cfg(feature = "native-roots")]
fn native_root_store() -> Result<rustls::RootCertStore, Error> {
    let loaded = rustls_native_certs::load_native_certs();
    let mut roots = rustls::RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(loaded.certs);
    if added == 0 {
        let reason = loaded
            .errors
            .first()
            .map(|e| e.to_string())
            .unwrap_or_else(|| "none found".into());
        return Err(native_roots_error(&reason));
    }
    Ok(roots)
}

#[cfg(feature = "native-roots")]
fn native_roots_error(reason: &dyn fmt::Display) -> Error {
    Error::config(
        "native_roots",
        format!(
            "the system's root certificates cannot be loaded ({reason}); install \
             ca-certificates or use the webpki roots"
        ),
    )
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

/// The proxy failure in an error's source chain, if any.
fn find_proxy_error<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a ProxyError> {
    let mut source = Some(err);
    while let Some(inner) = source {
        if let Some(found) = inner.downcast_ref::<ProxyError>() {
            return Some(found);
        }
        source = inner.source();
    }
    None
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

    #[tokio::test(start_paused = true)]
    async fn a_timeout_through_a_proxy_names_the_proxy_not_its_credentials() {
        // A proxy that accepts the connection and never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (_socket, _) = listener.accept().await.unwrap();
            std::future::pending::<()>().await;
        });
        let http = HttpClient::builder()
            .proxy(Proxy::url(&format!("http://u:hunter2@{addr}")).unwrap())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let request = http::Request::post("http://auth.example.com/token")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let err = http.send(request).await.unwrap_err();
        assert!(matches!(err, Error::Transport { .. }), "{err:?}");
        assert!(
            err.to_string().ends_with(&format!(
                "no complete response within 30s (through the proxy http://{addr})"
            )),
            "{err}"
        );
        assert!(!format!("{err} {err:?} {http:?}").contains("hunter2"));
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
