//! Token and Azupay requests through a real forward proxy (tinyproxy): forwarded for `http://`
//! endpoints, tunnelled with `CONNECT` for `https://` ones, bypassed for `NO_PROXY` hosts,
//! refused with a typed error that names the proxy, and with the proxy's credentials taken
//! from its URL. The last test reads the real process environment, in a child process.
//!
//! Needs tinyproxy (`apt-get install -y tinyproxy-bin`; `scripts/install-tinyproxy`, run by `./scripts/test`, installs it).

#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use std::time::Duration;

use bytes::Bytes;
use clientcreds::{ClientCredentials, Error, HttpClient, Provider, Proxy};
use clientcreds_sandbox::{self as sandbox, Sandbox, SandboxConfig};
use http_body_util::Full;
use secrecy::SecretString;
use support::{Tinyproxy, TlsFront};

async fn start() -> Sandbox {
    Sandbox::start(SandboxConfig::default()).await.unwrap()
}

/// The sandbox's Pyng client, at `token_url` (the sandbox's own, or the TLS front's).
fn pyng(sb: &Sandbox, token_url: &str) -> ClientCredentials {
    let pyng = sb.pyng();
    Provider::pyng(
        sb.base_url(),
        &pyng.client_id,
        SecretString::from(pyng.client_secret.clone()),
    )
    .token_url(token_url)
    .scope(sandbox::PYNG_SCOPES[0])
    .build()
    .unwrap()
}

fn client(proxy: Proxy, front: Option<&TlsFront>) -> HttpClient {
    let mut builder = HttpClient::builder()
        .proxy(proxy)
        .timeout(Duration::from_secs(20));
    if let Some(front) = front {
        builder = builder.tls_config(front.client_config());
    }
    builder.build().unwrap()
}

/// The `Via` header of each token request the sandbox recorded for Pyng.
fn pyng_vias(sb: &Sandbox) -> Vec<Option<String>> {
    sb.requests_for(sandbox::Provider::Pyng)
        .iter()
        .map(|r| r.header("via").map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn http_token_and_azupay_requests_are_forwarded_by_the_proxy() {
    let sb = start().await;
    let proxy = Tinyproxy::start("");
    let http = client(Proxy::url(&proxy.url()).unwrap(), None);
    let token_url = sb.pyng().token_url;

    let token = pyng(&sb, &token_url).request_token(&http).await.unwrap();
    assert!(!token.authorization().is_empty());

    // The proxy received the request in absolute form, and the sandbox got it from the proxy.
    assert_eq!(
        proxy.requests(),
        [format!("POST {token_url} HTTP/1.1")],
        "{}",
        proxy.log()
    );
    let vias = pyng_vias(&sb);
    assert_eq!(vias.len(), 1);
    assert!(
        vias[0].as_deref().unwrap_or("").contains("tinyproxy"),
        "{vias:?}"
    );

    // Azupay's enable/details calls go through HttpClient::send: the same route.
    let azupay = sb.azupay();
    let details = format!("{}/client/{}/oauth2", azupay.endpoint, azupay.client_id);
    let request = http::Request::get(&details)
        .header(http::header::AUTHORIZATION, &azupay.api_key)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = http.send(request).await.unwrap();
    // Not enabled yet: the sandbox's own answer.
    assert_eq!(
        response.status(),
        http::StatusCode::NOT_FOUND,
        "{response:?}"
    );
    assert_eq!(
        proxy.requests().last().unwrap(),
        &format!("GET {details} HTTP/1.1")
    );
    let recorded = sb.requests_for(sandbox::Provider::Azupay);
    assert!(recorded[0].header("via").unwrap().contains("tinyproxy"));
}

#[tokio::test]
async fn https_token_request_is_tunnelled_with_connect() {
    let sb = start().await;
    let front = TlsFront::start(sb.local_addr()).await;
    let proxy = Tinyproxy::start("");
    let http = client(Proxy::url(&proxy.url()).unwrap(), Some(&front));
    let token_url = front.url_for(&sb.pyng().token_url);
    assert!(token_url.starts_with("https://localhost:"), "{token_url}");

    pyng(&sb, &token_url).request_token(&http).await.unwrap();

    // The proxy opened a tunnel and saw nothing else; the token request reached the sandbox
    // through it, untouched by the proxy (no Via: TLS ran end to end).
    assert_eq!(
        proxy.requests(),
        [format!("CONNECT localhost:{} HTTP/1.1", front.port)],
        "{}",
        proxy.log()
    );
    assert_eq!(pyng_vias(&sb), [None]);
}

#[tokio::test]
async fn no_proxy_hosts_are_reached_directly() {
    let sb = start().await;
    let front = TlsFront::start(sb.local_addr()).await;
    let proxy = Tinyproxy::start("");
    let http_url = sb.pyng().token_url;
    let https_url = front.url_for(&http_url);
    // Lower-case forms, as many tools write them.
    let vars = |no_proxy: &str| {
        Proxy::from_env_vars([
            ("http_proxy", proxy.url()),
            ("https_proxy", proxy.url()),
            ("no_proxy", no_proxy.to_owned()),
        ])
    };

    // Without an exception both go through the proxy: the variables are honoured…
    let through = client(vars(""), Some(&front));
    pyng(&sb, &http_url).request_token(&through).await.unwrap();
    pyng(&sb, &https_url).request_token(&through).await.unwrap();
    assert_eq!(proxy.requests().len(), 2, "{}", proxy.log());

    // …and NO_PROXY sends each host straight to the endpoint.
    let direct = client(vars("localhost, 127.0.0.1"), Some(&front));
    pyng(&sb, &http_url).request_token(&direct).await.unwrap();
    pyng(&sb, &https_url).request_token(&direct).await.unwrap();
    assert_eq!(proxy.requests().len(), 2, "{}", proxy.log());
    let vias = pyng_vias(&sb);
    assert_eq!(vias.len(), 4);
    assert!(vias[0].is_some() && vias[1].is_none(), "{vias:?}");
    assert_eq!(vias[2..], [None, None]);

    // Proxy::none() ignores the variables altogether.
    assert_eq!(Proxy::none().for_uri(&http_url.parse().unwrap()), None);
}

#[tokio::test]
async fn a_proxy_that_wants_credentials_gives_a_typed_error_and_nothing_reaches_the_endpoint() {
    let sb = start().await;
    let front = TlsFront::start(sb.local_addr()).await;
    let proxy = Tinyproxy::start("BasicAuth alice wonderland-9f3");
    let http = client(Proxy::url(&proxy.url()).unwrap(), Some(&front));
    let http_url = sb.pyng().token_url;
    let https_url = front.url_for(&http_url);

    for (url, how) in [(&http_url, "forwarded"), (&https_url, "CONNECT")] {
        let err = pyng(&sb, url).request_token(&http).await.unwrap_err();
        let Error::Proxy {
            proxy: named,
            endpoint,
            status,
            ..
        } = &err
        else {
            panic!("{how}: not a proxy error: {err:?}");
        };
        assert_eq!(named, &proxy.url(), "{how}");
        assert_eq!(endpoint, url, "{how}");
        assert_eq!(
            *status,
            Some(http::StatusCode::PROXY_AUTHENTICATION_REQUIRED),
            "{how}"
        );
        assert!(!err.is_retryable(), "{how}: a person must add credentials");
        assert_eq!(err.kind(), "proxy");
        let shown = err.to_string();
        assert!(
            shown.contains(&proxy.url()) && shown.contains("requires credentials"),
            "{how}: {shown}"
        );
    }
    assert_eq!(proxy.requests().len(), 2, "{}", proxy.log());
    assert!(sb.requests().is_empty(), "{:?}", sb.requests());
}

#[tokio::test]
async fn a_proxy_whose_rules_deny_us_gives_a_typed_error_and_nothing_reaches_the_endpoint() {
    let sb = start().await;
    let front = TlsFront::start(sb.local_addr()).await;
    // Only a client address that is not ours may use it.
    let proxy = Tinyproxy::start("Allow 10.255.255.1");
    let http = client(Proxy::url(&proxy.url()).unwrap(), Some(&front));
    let https_url = front.url_for(&sb.pyng().token_url);

    let err = pyng(&sb, &https_url)
        .request_token(&http)
        .await
        .unwrap_err();
    let Error::Proxy {
        proxy: named,
        endpoint,
        status,
        message,
        ..
    } = &err
    else {
        panic!("not a proxy error: {err:?}");
    };
    assert_eq!((named, endpoint, *status), (&proxy.url(), &https_url, None));
    assert!(
        message.contains("refused to open a CONNECT tunnel"),
        "{err}"
    );
    assert!(err.to_string().contains(&proxy.url()), "{err}");

    // An http:// endpoint is forwarded: the proxy's own 403 page comes back as the answer (a
    // forwarding proxy's refusal cannot be told from the endpoint's, except 407), still
    // without anything sent on.
    let err = pyng(&sb, &sb.pyng().token_url)
        .request_token(&http)
        .await
        .unwrap_err();
    // (tinyproxy closes with our request unread, so a reset can cut its 403 page short.)
    assert!(
        err.status() == Some(http::StatusCode::FORBIDDEN) || matches!(err, Error::Transport { .. }),
        "{err:?}"
    );
    assert!(sb.requests().is_empty(), "{:?}", sb.requests());
    // tinyproxy refused both before reading a request line.
    assert!(
        proxy.log().contains("Connect (file descriptor"),
        "{}",
        proxy.log()
    );
    assert!(proxy.requests().is_empty(), "{}", proxy.log());
}

#[tokio::test]
async fn an_unreachable_proxy_is_a_retryable_proxy_error() {
    let sb = start().await;
    let url = format!("http://127.0.0.1:{}", support::free_port());
    let http = client(Proxy::url(&url).unwrap(), None);
    let err = pyng(&sb, &sb.pyng().token_url)
        .request_token(&http)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Proxy { proxy, status: None, .. } if *proxy == url),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("could not connect to the proxy"),
        "{err}"
    );
    assert!(err.is_retryable());
}

#[tokio::test]
async fn credentials_in_the_proxy_url_are_sent_as_proxy_authorization() {
    let sb = start().await;
    let front = TlsFront::start(sb.local_addr()).await;
    let proxy = Tinyproxy::start("BasicAuth alice wonderland-9f3");
    let http_url = sb.pyng().token_url;
    let https_url = front.url_for(&http_url);

    // Right credentials: the proxy lets both through.
    let http = client(
        Proxy::url(&proxy.url_with("alice", "wonderland-9f3")).unwrap(),
        Some(&front),
    );
    pyng(&sb, &http_url).request_token(&http).await.unwrap();
    pyng(&sb, &https_url).request_token(&http).await.unwrap();
    assert_eq!(sb.requests().len(), 2);
    // The proxy consumed them: the endpoint never sees the proxy's credentials.
    for request in sb.requests() {
        assert_eq!(request.header("proxy-authorization"), None, "{request:?}");
    }

    // Wrong ones: refused. tinyproxy answers them with 401 (not 407) and closes: through a
    // tunnel that is a proxy error naming the proxy; forwarded, the proxy's answer stands for
    // the endpoint's. Either way nothing reaches the endpoint.
    let http = client(
        Proxy::url(&proxy.url_with("alice", "not-the-password")).unwrap(),
        Some(&front),
    );
    let err = pyng(&sb, &https_url)
        .request_token(&http)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Proxy { proxy: named, .. } if *named == proxy.url()),
        "{err:?}"
    );
    assert!(!format!("{err} {err:?}").contains("not-the-password"));
    let err = pyng(&sb, &http_url).request_token(&http).await.unwrap_err();
    assert!(!format!("{err} {err:?}").contains("not-the-password"));
    assert_eq!(sb.requests().len(), 2);
}

/// The name of the test that runs in a child process with a real environment.
const CHILD: &str = "child_reads_the_real_environment";
/// Set for the child only: `{proxied URL} {direct URL}`.
const CHILD_MARKER: &str = "CLIENTCREDS_PROXY_TEST_CHILD";

/// `HttpClient::new()` and `HttpClient::builder().build()` read `HTTP_PROXY`/`NO_PROXY` from
/// the process environment. The environment is process-global (and changing it is `unsafe`),
/// so a child process of this test binary gets it instead.
#[tokio::test]
async fn the_real_environment_is_read_by_default() {
    let sb = start().await;
    let proxy = Tinyproxy::start("");
    let proxied = sb.pyng().resource_url;
    let direct = sb.payu().resource_url;
    let mut command = std::process::Command::new(std::env::current_exe().unwrap());
    for name in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
        "REQUEST_METHOD",
    ] {
        command.env_remove(name).env_remove(name.to_lowercase());
    }
    command
        .args([CHILD, "--exact", "--nocapture"])
        .env("HTTP_PROXY", proxy.url())
        .env("no_proxy", "localhost")
        .env(CHILD_MARKER, format!("{proxied} {direct}"));
    // Off the runtime's thread: the sandbox answers the child meanwhile.
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // HttpClient::new() and HttpClient::builder().build() went through the proxy;
    // .proxy(Proxy::none()) did not.
    assert_eq!(
        proxy.requests(),
        [
            format!("GET {proxied} HTTP/1.1"),
            format!("GET {proxied} HTTP/1.1")
        ],
        "{}",
        proxy.log()
    );
    let vias: Vec<_> = sb
        .requests()
        .iter()
        .map(|r| (r.path.clone(), r.header("via").is_some()))
        .collect();
    assert_eq!(vias.len(), 3, "{vias:?}");
    assert_eq!(vias.iter().filter(|(_, via)| *via).count(), 2, "{vias:?}");
    assert!(
        vias.iter()
            .any(|(path, via)| direct.ends_with(path) && !via)
    );
}

/// Runs only as the child of `the_real_environment_is_read_by_default` (passes trivially
/// otherwise).
#[tokio::test]
async fn child_reads_the_real_environment() {
    let Ok(urls) = std::env::var(CHILD_MARKER) else {
        return;
    };
    let (proxied, direct) = urls.split_once(' ').unwrap();
    let get = |url: &str| {
        http::Request::get(url)
            .body(Full::new(Bytes::new()))
            .unwrap()
    };
    let from_env = HttpClient::new();
    assert!(from_env.proxy().is_from_env());
    from_env.send(get(proxied)).await.unwrap();
    let built = HttpClient::builder().build().unwrap();
    built.send(get(proxied)).await.unwrap();
    let none = HttpClient::builder().proxy(Proxy::none()).build().unwrap();
    none.send(get(direct)).await.unwrap();
    assert_eq!(
        format!("{:?}", from_env.proxy()),
        format!(
            "Proxy {{ origin: Env, http: {:?}, no_proxy: \"localhost\" }}",
            std::env::var("HTTP_PROXY").unwrap()
        )
    );
}
