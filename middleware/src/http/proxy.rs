//! [`Proxy`]: which forward proxy, if any, an [`HttpClient`](super::HttpClient) goes through.
//!
//! By default ([`Proxy::from_env`]) the variables curl, reqwest and Go read decide:
//! `HTTPS_PROXY` for `https://` endpoints, `HTTP_PROXY` for `http://` ones, `ALL_PROXY` for
//! both when the specific one is unset, and `NO_PROXY` for the hosts that are reached directly
//! (each also in lower case; the upper-case form wins when both are set). `https://` endpoints
//! are reached through an HTTP `CONNECT` tunnel, so TLS runs end to end and the proxy sees only
//! the host and port; `http://` endpoints are forwarded by the proxy (absolute-form requests).
//! Credentials in the proxy URL (`http://user:password@proxy:3128`) are sent as
//! `Proxy-Authorization: Basic …` and appear nowhere else: not in `Debug`, errors or traces.
//!
//! Parsing the variables and matching `NO_PROXY` is hyper-util's [`Matcher`] (curl's rules:
//! comma-separated domains that match their subdomains, IP addresses and CIDR ranges, `*` for
//! all hosts), and the tunnel is hyper-util's [`Tunnel`]. The proxy itself is spoken to in
//! plain HTTP: `https://` and SOCKS proxy URLs are refused.
//!
//! A proxy that cannot be reached, or refuses (`407 Proxy Authentication Required`, a
//! `CONNECT` it will not open), fails the request with [`Error::Proxy`], which names the proxy
//! (never its credentials) and the endpoint; nothing reaches the endpoint. A proxy that
//! forwards an `http://` request and answers it with an error of its own other than `407` cannot
//! be told from the endpoint: that answer is the endpoint's, as with curl.
//!
//! ```
//! use clientcreds::{HttpClient, Proxy};
//!
//! // Every request through one proxy, except to hosts under internal.example.com.
//! let proxy = Proxy::url("http://user:secret@proxy.example.com:3128")?
//!     .no_proxy("internal.example.com, 10.0.0.0/8");
//! assert_eq!(
//!     proxy.for_uri(&"https://auth.example.com/token".parse().unwrap()),
//!     Some("http://proxy.example.com:3128".to_owned()),
//! );
//! assert_eq!(proxy.for_uri(&"https://sso.internal.example.com/token".parse().unwrap()), None);
//! // The password is never shown.
//! assert!(!format!("{proxy:?}").contains("secret"));
//! let http = HttpClient::builder().proxy(proxy).build()?;
//!
//! // Straight to every endpoint, whatever the environment says.
//! let direct = HttpClient::builder().proxy(Proxy::none()).build()?;
//!
//! // The variables given here instead of the process environment's.
//! let proxy = Proxy::from_env_vars([("HTTPS_PROXY", "http://proxy:3128"), ("NO_PROXY", "localhost")]);
//! assert_eq!(proxy.for_uri(&"http://auth.example.com/token".parse().unwrap()), None);
//! # let _ = (http, direct);
//! # Ok::<(), clientcreds::Error>(())
//! ```

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderValue, StatusCode, Uri};
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::proxy::matcher::{Intercept, Matcher};
use hyper_util::rt::TokioIo;
use secrecy::{ExposeSecret, SecretString};
use tokio::net::TcpStream;
use tower_service::Service;

use crate::Error;

/// Which forward proxy an [`HttpClient`](super::HttpClient) uses, per endpoint.
///
/// [`Proxy::from_env`] (the default of [`HttpClient::new`](super::HttpClient::new) and
/// [`HttpClient::builder`](super::HttpClient::builder)), [`Proxy::from_env_vars`],
/// [`Proxy::url`] or [`Proxy::none`]; set with
/// [`HttpClientBuilder::proxy`](super::HttpClientBuilder::proxy), which overrides the
/// environment. Cheap to clone. `Debug` shows the proxies without their credentials.
#[derive(Clone)]
pub struct Proxy {
    inner: Arc<Inner>,
}

struct Inner {
    origin: Origin,
    /// `None`: no proxy for any endpoint.
    matcher: Option<Matcher>,
    /// The proxy URLs as given (with credentials: never shown), to rebuild the matcher.
    http_url: SecretString,
    https_url: SecretString,
    /// What `Debug` shows: the proxies without credentials, and the `NO_PROXY` list.
    http: Option<String>,
    https: Option<String>,
    no_proxy: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Origin {
    None,
    Env,
    Url,
}

/// The variables read, in order of precedence for each setting.
const HTTP_VARS: [&str; 2] = ["HTTP_PROXY", "http_proxy"];
const HTTPS_VARS: [&str; 2] = ["HTTPS_PROXY", "https_proxy"];
const ALL_VARS: [&str; 2] = ["ALL_PROXY", "all_proxy"];
const NO_VARS: [&str; 2] = ["NO_PROXY", "no_proxy"];

impl Proxy {
    /// The proxies named by the process environment, read now: `HTTPS_PROXY`, `HTTP_PROXY`,
    /// `ALL_PROXY` and `NO_PROXY`, each also in lower case (upper case wins).
    ///
    /// No variable set means no proxy. A value that is not a URL is ignored (a warning names
    /// the variable, never its value). As hyper-util does (the "httpoxy" guard), no proxy is
    /// used when `REQUEST_METHOD` is set, i.e. in a CGI program, where `HTTP_PROXY` can come
    /// from a request header.
    pub fn from_env() -> Proxy {
        Proxy::from_env_vars(std::env::vars_os().filter_map(|(name, value)| {
            Some((name.into_string().ok()?, value.into_string().ok()?))
        }))
    }

    /// As [`Proxy::from_env`], reading the variables from `vars` instead of the process
    /// environment (names as in the environment; other names are ignored). For tests, and for
    /// programs that take these settings from their own configuration.
    pub fn from_env_vars<I, K, V>(vars: I) -> Proxy
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let vars: Vec<(K, V)> = vars.into_iter().collect();
        let get = |names: [&'static str; 2]| -> Option<(&'static str, String)> {
            names.into_iter().find_map(|wanted| {
                vars.iter()
                    .find(|(name, _)| name.as_ref() == wanted)
                    .map(|(_, value)| (wanted, value.as_ref().to_owned()))
            })
        };
        if vars
            .iter()
            .any(|(name, _)| name.as_ref() == "REQUEST_METHOD")
        {
            return Proxy::none();
        }
        let all = get(ALL_VARS);
        let http = get(HTTP_VARS).or_else(|| all.clone());
        let https = get(HTTPS_VARS).or(all);
        let no = get(NO_VARS).map(|(_, value)| value).unwrap_or_default();
        let mut shown = [None, None];
        for (slot, var) in shown.iter_mut().zip([&http, &https]) {
            if let Some((name, value)) = var.as_ref().filter(|(_, value)| !value.is_empty()) {
                *slot = proxy_uri(value);
                if slot.is_none() {
                    tracing::warn!(
                        variable = name,
                        "ignoring a proxy variable that is not a URL (expected http://host:port)"
                    );
                }
            }
        }
        let [http_shown, https_shown] = shown;
        Proxy::new(
            Origin::Env,
            [http, https].map(|var| SecretString::from(var.map(|(_, v)| v).unwrap_or_default())),
            [http_shown, https_shown],
            no,
        )
    }

    /// No proxy: every endpoint is reached directly, whatever the environment says.
    pub fn none() -> Proxy {
        Proxy::new(
            Origin::None,
            [SecretString::default(), SecretString::default()],
            [None, None],
            String::new(),
        )
    }

    /// Every endpoint through this proxy, whatever the environment says (add exceptions with
    /// [`no_proxy`](Proxy::no_proxy)).
    ///
    /// `url` is `http://[user:password@]host:port` (a missing scheme means `http`); user and
    /// password are percent-decoded and sent as `Proxy-Authorization: Basic`. Fails for a
    /// value that is not such a URL, or a proxy reached over TLS (`https://`) or SOCKS, which
    /// this client does not support; the error never contains the credentials.
    pub fn url(url: &str) -> Result<Proxy, Error> {
        let Some(shown) = proxy_uri(url) else {
            return Err(Error::config(
                "proxy",
                "is not a proxy URL (expected http://[user:password@]host:port)",
            ));
        };
        if !shown.starts_with("http://") {
            return Err(Error::config(
                "proxy",
                format!(
                    "{shown} is not supported: only http:// proxies are (https:// endpoints are \
                     reached through them with CONNECT)"
                ),
            ));
        }
        Ok(Proxy::new(
            Origin::Url,
            [SecretString::from(url), SecretString::from(url)],
            [Some(shown.clone()), Some(shown)],
            String::new(),
        ))
    }

    /// Reach these hosts directly (the `NO_PROXY` syntax: comma-separated domains, each also
    /// matching its subdomains, IP addresses, CIDR ranges, or `*` for all), replacing the
    /// list this proxy had.
    pub fn no_proxy(self, hosts: &str) -> Proxy {
        if self.inner.origin == Origin::None {
            return self;
        }
        Proxy::new(
            self.inner.origin,
            [self.inner.http_url.clone(), self.inner.https_url.clone()],
            [self.inner.http.clone(), self.inner.https.clone()],
            hosts.to_owned(),
        )
    }

    fn new(
        origin: Origin,
        [http_url, https_url]: [SecretString; 2],
        [http, https]: [Option<String>; 2],
        no_proxy: String,
    ) -> Proxy {
        let matcher = (origin != Origin::None).then(|| {
            Matcher::builder()
                .http(http_url.expose_secret().to_owned())
                .https(https_url.expose_secret().to_owned())
                .no(no_proxy.clone())
                .build()
        });
        Proxy {
            inner: Arc::new(Inner {
                origin,
                matcher,
                http_url,
                https_url,
                http,
                https,
                no_proxy,
            }),
        }
    }

    /// The proxy a request to `uri` goes through (scheme, host and port, never credentials),
    /// or `None` when it goes directly.
    pub fn for_uri(&self, uri: &Uri) -> Option<String> {
        self.intercept(uri)
            .map(|intercept| shown_uri(intercept.uri()))
    }

    /// Whether the proxies come from the environment ([`Proxy::from_env`] or
    /// [`Proxy::from_env_vars`]).
    pub fn is_from_env(&self) -> bool {
        self.inner.origin == Origin::Env
    }

    pub(crate) fn intercept(&self, uri: &Uri) -> Option<Intercept> {
        self.inner.matcher.as_ref()?.intercept(uri)
    }
}

impl Default for Proxy {
    /// [`Proxy::from_env`].
    fn default() -> Self {
        Proxy::from_env()
    }
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Proxy");
        s.field("origin", &self.inner.origin);
        if let Some(http) = &self.inner.http {
            s.field("http", http);
        }
        if let Some(https) = &self.inner.https {
            s.field("https", https);
        }
        if !self.inner.no_proxy.is_empty() {
            s.field("no_proxy", &self.inner.no_proxy);
        }
        s.finish()
    }
}

/// The proxy a URL names, as shown (scheme://host:port, no credentials), as hyper-util
/// parses it; `None` when it parses no proxy.
fn proxy_uri(url: &str) -> Option<String> {
    let matcher = Matcher::builder().all(url.to_owned()).build();
    let probe = Uri::from_static("http://proxy-probe.invalid/");
    matcher
        .intercept(&probe)
        .map(|intercept| shown_uri(intercept.uri()))
}

/// A proxy's URI without its path: `http://proxy.example.com:3128`.
pub(crate) fn shown_uri(uri: &Uri) -> String {
    format!(
        "{}://{}",
        uri.scheme_str().unwrap_or("http"),
        uri.authority().map(|a| a.as_str()).unwrap_or("")
    )
}

/// How one request reaches its endpoint.
pub(crate) enum Route {
    /// Straight to the endpoint.
    Direct,
    /// `http://` endpoints: the request goes to the proxy, in absolute form.
    Forward(Intercept),
    /// `https://` endpoints: a `CONNECT` tunnel through the proxy.
    Tunnel(Intercept),
}

impl Proxy {
    pub(crate) fn route(&self, uri: &Uri) -> Route {
        match self.intercept(uri) {
            None => Route::Direct,
            Some(intercept) if uri.scheme_str() == Some("https") => Route::Tunnel(intercept),
            Some(intercept) => Route::Forward(intercept),
        }
    }
}

/// A failure to reach an endpoint through its proxy: the proxy (never its credentials), what
/// happened, and the proxy's status when it answered with one. Found in the source chain of a
/// hyper client error and turned into [`Error::Proxy`].
#[derive(Debug)]
pub(crate) struct ProxyError {
    pub(crate) proxy: String,
    pub(crate) status: Option<StatusCode>,
    pub(crate) message: String,
    pub(crate) source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "proxy {}: {}", self.proxy, self.message)
    }
}

impl std::error::Error for ProxyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// What the message of a proxy that wants credentials says.
pub(crate) const AUTH_REQUIRED: &str = "the proxy requires credentials (HTTP 407 Proxy \
    Authentication Required): give them in the proxy URL, http://user:password@host:port";
/// What the message of a proxy that refused credentials says.
pub(crate) const AUTH_REFUSED: &str = "the proxy refused the credentials of the proxy URL \
    (HTTP 407 Proxy Authentication Required)";

impl ProxyError {
    fn unsupported(intercept: &Intercept) -> Self {
        ProxyError {
            proxy: shown_uri(intercept.uri()),
            status: None,
            message: "is not supported: only http:// proxies are (https:// endpoints are \
                      reached through them with CONNECT)"
                .to_owned(),
            source: None,
        }
    }

    /// hyper-util's `TunnelError` is not exported, so its kinds are told apart by their
    /// (pinned) messages and sources; the tests with a real proxy cover each.
    fn from_tunnel(intercept: &Intercept, err: Box<dyn std::error::Error + Send + Sync>) -> Self {
        let text = err.to_string();
        let proxy = shown_uri(intercept.uri());
        let (status, message) = if text.contains("proxy authorization required") {
            let message = if intercept.basic_auth().is_some() {
                AUTH_REFUSED
            } else {
                AUTH_REQUIRED
            };
            (
                Some(StatusCode::PROXY_AUTHENTICATION_REQUIRED),
                message.to_owned(),
            )
        } else if text.contains("unsuccessful") {
            let mut message = "the proxy refused to open a CONNECT tunnel to the endpoint (it \
                answered with a status other than 200: an access rule, a port it does not tunnel \
                to, or an endpoint it cannot reach)"
                .to_owned();
            if intercept.basic_auth().is_some() {
                message.push_str(
                    "; some proxies refuse wrong credentials so: check those of the proxy URL",
                );
            }
            (None, message)
        } else if text.contains("failed to create underlying connection") {
            (None, "could not connect to the proxy".to_owned())
        } else {
            (None, format!("the CONNECT tunnel failed ({text})"))
        };
        ProxyError {
            proxy,
            status,
            message,
            source: Some(err),
        }
    }
}

/// The connector under hyper-rustls: straight to the endpoint, to the proxy (forwarding), or
/// through a `CONNECT` tunnel, as the [`Proxy`] says for each endpoint.
#[derive(Clone)]
pub(crate) struct ProxyConnector {
    http: HttpConnector,
    proxy: Proxy,
}

impl ProxyConnector {
    pub(crate) fn new(proxy: Proxy) -> Self {
        let mut http = HttpConnector::new();
        // hyper-rustls does TLS above this connector: let it connect to https:// endpoints.
        http.enforce_http(false);
        ProxyConnector { http, proxy }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl Service<Uri> for ProxyConnector {
    type Response = ProxyStream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<ProxyStream, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.http.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let mut http = self.http.clone();
        match self.proxy.route(&dst) {
            Route::Direct => Box::pin(async move {
                let io = http.call(dst).await?;
                Ok(ProxyStream { io, forward: false })
            }),
            Route::Forward(intercept) => Box::pin(async move {
                if intercept.uri().scheme_str() != Some("http") {
                    return Err(ProxyError::unsupported(&intercept).into());
                }
                let io = http
                    .call(intercept.uri().clone())
                    .await
                    .map_err(|e| ProxyError {
                        proxy: shown_uri(intercept.uri()),
                        status: None,
                        message: "could not connect to the proxy".to_owned(),
                        source: Some(e.into()),
                    })?;
                Ok(ProxyStream { io, forward: true })
            }),
            Route::Tunnel(intercept) => Box::pin(async move {
                if intercept.uri().scheme_str() != Some("http") {
                    return Err(ProxyError::unsupported(&intercept).into());
                }
                let mut tunnel = Tunnel::new(intercept.uri().clone(), http);
                if let Some(auth) = intercept.basic_auth() {
                    tunnel = tunnel.with_auth(auth.clone());
                }
                let io = tunnel
                    .call(dst)
                    .await
                    .map_err(|e| ProxyError::from_tunnel(&intercept, e.into()))?;
                Ok(ProxyStream { io, forward: false })
            }),
        }
    }
}

/// The value of `Proxy-Authorization` for requests forwarded through this proxy.
pub(crate) fn forward_authorization(intercept: &Intercept) -> Option<HeaderValue> {
    intercept.basic_auth().map(|value| {
        let mut value = value.clone();
        value.set_sensitive(true);
        value
    })
}

/// A connection made by [`ProxyConnector`]: tells hyper whether it goes to a forwarding proxy
/// (then requests are sent in absolute form).
pub(crate) struct ProxyStream {
    io: TokioIo<TcpStream>,
    forward: bool,
}

impl Connection for ProxyStream {
    fn connected(&self) -> Connected {
        self.io.connected().proxy(self.forward)
    }
}

impl Read for ProxyStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl Write for ProxyStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(s: &str) -> Uri {
        s.parse().unwrap()
    }

    #[test]
    fn env_vars_pick_a_proxy_per_scheme_upper_case_first() {
        let proxy = Proxy::from_env_vars([
            ("http_proxy", "http://lower:3128"),
            ("HTTP_PROXY", "http://upper:3128"),
            ("https_proxy", "http://secure:3129"),
        ]);
        assert!(proxy.is_from_env());
        assert_eq!(
            proxy
                .for_uri(&uri("http://auth.example.com/token"))
                .as_deref(),
            Some("http://upper:3128")
        );
        assert_eq!(
            proxy
                .for_uri(&uri("https://auth.example.com/token"))
                .as_deref(),
            Some("http://secure:3129")
        );
        // ALL_PROXY fills in for a scheme without its own; no scheme means http.
        let proxy = Proxy::from_env_vars([("all_proxy", "all:8080"), ("HTTPS_PROXY", "")]);
        assert_eq!(
            proxy.for_uri(&uri("http://auth.example.com/")).as_deref(),
            Some("http://all:8080")
        );
        assert_eq!(proxy.for_uri(&uri("https://auth.example.com/")), None);
        // Nothing set: direct.
        let proxy = Proxy::from_env_vars([("PATH", "/usr/bin")]);
        assert_eq!(proxy.for_uri(&uri("https://auth.example.com/")), None);
    }

    #[test]
    fn no_proxy_follows_curl_rules() {
        let proxy = Proxy::from_env_vars([
            ("HTTPS_PROXY", "http://proxy:3128"),
            ("no_proxy", "internal.example.com, 10.0.0.0/8,localhost"),
        ]);
        let through = |u: &str| proxy.for_uri(&uri(u)).is_some();
        assert!(!through("https://internal.example.com/token"));
        assert!(!through("https://sso.internal.example.com/token"));
        assert!(through("https://notinternal.example.com/token"));
        assert!(!through("https://10.1.2.3:8443/token"));
        assert!(through("https://11.1.2.3/token"));
        assert!(!through("https://localhost:8443/token"));
        let all = Proxy::from_env_vars([("HTTPS_PROXY", "http://proxy:3128"), ("NO_PROXY", "*")]);
        assert_eq!(all.for_uri(&uri("https://auth.example.com/")), None);
    }

    #[test]
    fn cgi_programs_ignore_proxy_variables() {
        let proxy = Proxy::from_env_vars([
            ("REQUEST_METHOD", "GET"),
            ("HTTP_PROXY", "http://attacker:3128"),
        ]);
        assert_eq!(proxy.for_uri(&uri("http://auth.example.com/")), None);
    }

    #[test]
    fn url_proxies_everything_but_its_exceptions() {
        let proxy = Proxy::url("http://user:p%40ss@proxy.example.com:3128").unwrap();
        assert!(!proxy.is_from_env());
        for endpoint in ["http://a.example.com/", "https://b.example.com/"] {
            assert_eq!(
                proxy.for_uri(&uri(endpoint)).as_deref(),
                Some("http://proxy.example.com:3128")
            );
        }
        let intercept = proxy.intercept(&uri("https://a.example.com/")).unwrap();
        // "user:p@ss", percent-decoded, in Basic.
        assert_eq!(intercept.basic_auth().unwrap(), "Basic dXNlcjpwQHNz");
        let proxy = proxy.no_proxy(".example.com");
        assert_eq!(proxy.for_uri(&uri("https://a.example.com/")), None);
        assert!(proxy.for_uri(&uri("https://example.org/")).is_some());
        // The credentials survive the rebuild.
        let intercept = proxy.intercept(&uri("https://example.org/")).unwrap();
        assert_eq!(intercept.basic_auth().unwrap(), "Basic dXNlcjpwQHNz");
    }

    #[test]
    fn none_is_direct() {
        let proxy = Proxy::none().no_proxy("example.com");
        assert_eq!(proxy.for_uri(&uri("https://auth.example.com/")), None);
        assert_eq!(format!("{proxy:?}"), "Proxy { origin: None }");
    }

    #[test]
    fn bad_and_unsupported_urls_are_config_errors_without_credentials() {
        for url in ["", "http://user:hunter2@", "not a url at all"] {
            let err = Proxy::url(url).unwrap_err();
            assert!(
                matches!(err, Error::Config { field: "proxy", .. }),
                "{url}: {err:?}"
            );
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
        for url in [
            "https://user:hunter2@proxy:3128",
            "socks5://user:hunter2@proxy:1080",
        ] {
            let err = Proxy::url(url).unwrap_err();
            assert!(err.to_string().contains("not supported"), "{err}");
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
    }

    #[test]
    fn debug_shows_proxies_without_credentials() {
        let proxy = Proxy::from_env_vars([
            ("HTTPS_PROXY", "http://alice:hunter2@proxy.example.com:3128"),
            ("NO_PROXY", "localhost"),
        ]);
        let shown = format!("{proxy:?}");
        assert_eq!(
            shown,
            "Proxy { origin: Env, https: \"http://proxy.example.com:3128\", no_proxy: \"localhost\" }"
        );
        let url = Proxy::url("http://alice:hunter2@proxy.example.com:3128").unwrap();
        let shown = format!("{url:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("alice"),
            "{shown}"
        );
    }
}
