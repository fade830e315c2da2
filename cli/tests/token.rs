//! `clientcreds token` against the sandbox: the request on the wire, the three outputs, the three
//! secret sources, and failures that name the fix without showing the secret.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

use std::time::Duration;

use clientcreds_sandbox::{Provider, Sandbox, SandboxConfig};
use http::StatusCode;
use serde_json::Value;

/// Runs `clientcreds token ARGS` off the runtime's threads (the sandbox runs on them), with the
/// given environment and standard input.
async fn token(args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
    let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let stdin = stdin.map(str::to_owned);
    tokio::task::spawn_blocking(move || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_clientcreds"));
        command
            .arg("token")
            .args(&args)
            .envs(env)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            });
        let mut child = command.spawn().unwrap();
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        }
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

/// GET `url` with `Authorization: Bearer token`; the status.
async fn protected(url: &str, token: &str) -> StatusCode {
    let url = url.to_owned();
    let token = token.to_owned();
    tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let rest = url.strip_prefix("http://").unwrap();
        let (authority, path) = rest.split_at(rest.find('/').unwrap());
        let mut stream = std::net::TcpStream::connect(authority).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {authority}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        StatusCode::from_u16(response[9..12].parse().unwrap()).unwrap()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn payu_preset_json_output_from_env_secret() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let payu = sandbox.payu();
    let output = token(
        &[
            "--provider",
            "payu",
            "--token-url",
            &payu.token_url,
            "--client-id",
            &payu.client_id,
            "--client-secret-env",
            "PAYU_SECRET",
            "--scope",
            "read_payment_links",
        ],
        &[("PAYU_SECRET", &payu.client_secret)],
        None,
    )
    .await;
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert_eq!(text.lines().count(), 1, "{text}");
    let printed: Value = serde_json::from_str(&text).unwrap();
    let object = printed.as_object().unwrap();
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "access_token",
            "expires_at",
            "expires_in",
            "scope",
            "token_type"
        ]
    );
    assert_eq!(printed["token_type"], "Bearer");
    assert_eq!(printed["scope"], "read_payment_links");
    let expires_in = printed["expires_in"].as_u64().unwrap();
    assert!(expires_in > 0, "{text}");
    let expires_at: jiff::Timestamp = printed["expires_at"].as_str().unwrap().parse().unwrap();
    let until = expires_at.as_second() - jiff::Timestamp::now().as_second();
    assert!(
        until > 0 && until.unsigned_abs() <= expires_in + 5,
        "expires_at {expires_at} vs expires_in {expires_in}"
    );

    let access_token = printed["access_token"].as_str().unwrap();
    assert_eq!(
        protected(&payu.resource_url, access_token).await,
        StatusCode::OK
    );

    // The request on the wire: PayU's form body with the secret in it (client_secret_post).
    let requests = sandbox.requests_for(Provider::Payu);
    assert_eq!(requests.len(), 2, "one token request, one protected call");
    let sent = &requests[0];
    assert_eq!(sent.method, "POST");
    assert_eq!(
        sent.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        sent.form_param("grant_type").as_deref(),
        Some("client_credentials")
    );
    assert_eq!(
        sent.form_param("client_id").as_deref(),
        Some(payu.client_id.as_str())
    );
    assert_eq!(
        sent.form_param("client_secret").as_deref(),
        Some(payu.client_secret.as_str())
    );
    assert_eq!(
        sent.form_param("scope").as_deref(),
        Some("read_payment_links")
    );
    assert!(sent.header("authorization").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn autopay_preset_sends_json_with_audience_and_prints_the_header() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let autopay = sandbox.autopay();
    let secret_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret_file.path(), format!("{}\n", autopay.client_secret)).unwrap();
    let output = token(
        &[
            "--provider",
            "autopay",
            "--token-url",
            &autopay.token_url,
            "--client-id",
            &autopay.client_id,
            "--client-secret-file",
            secret_file.path().to_str().unwrap(),
            "--output",
            "header",
        ],
        &[],
        None,
    )
    .await;
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let access_token = text
        .trim_end()
        .strip_prefix("Authorization: Bearer ")
        .unwrap_or_else(|| panic!("not a header line: {text}"));
    assert_eq!(
        protected(&autopay.resource_url, access_token).await,
        StatusCode::OK
    );

    let sent = &sandbox.requests_for(Provider::Autopay)[0];
    assert_eq!(sent.header("content-type"), Some("application/json"));
    let body: Value = serde_json::from_str(&sent.body).unwrap();
    assert_eq!(body["audience"], "https://api.autopay.io");
    assert_eq!(body["grant_type"], "client_credentials");
    assert_eq!(body["client_id"], autopay.client_id.as_str());
    assert_eq!(
        body["client_secret"],
        autopay.client_secret.as_str(),
        "the trailing newline of the file is not part of the secret"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn generic_basic_auth_from_stdin_prints_the_bare_token() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let pyng = sandbox.pyng();
    let output = token(
        &[
            "--token-url",
            &pyng.token_url,
            "--client-id",
            &pyng.client_id,
            "--auth",
            "basic",
            "--scope",
            "billing:customers:read",
            "--output",
            "token",
        ],
        &[],
        Some(&format!("{}\n", pyng.client_secret)),
    )
    .await;
    assert!(output.status.success(), "{}", stderr(&output));
    let access_token = stdout(&output).trim_end().to_owned();
    assert!(!access_token.contains(' '), "{access_token}");
    assert_eq!(
        protected(&pyng.resource_url, &access_token).await,
        StatusCode::OK
    );

    let sent = &sandbox.requests_for(Provider::Pyng)[0];
    assert!(
        sent.header("authorization").unwrap().starts_with("Basic "),
        "client_secret_basic"
    );
    assert_eq!(sent.form_param("client_secret"), None);
    assert_eq!(
        sent.form_param("scope").as_deref(),
        Some("billing:customers:read")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rejected_client_is_one_line_with_status_and_code_and_no_secret() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let payu = sandbox.payu();
    let wrong = "wr0ng-s3cret-value";
    let output = token(
        &[
            "--provider",
            "payu",
            "--token-url",
            &payu.token_url,
            "--client-id",
            &payu.client_id,
            "--client-secret-env",
            "PAYU_SECRET",
            "--scope",
            "read_payment_links",
        ],
        &[("PAYU_SECRET", wrong)],
        None,
    )
    .await;
    assert!(!output.status.success());
    assert!(stdout(&output).is_empty(), "{}", stdout(&output));
    let err = stderr(&output);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("401"), "{err}");
    assert!(err.contains("invalid_client"), "{err}");
    assert!(!err.contains(wrong), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limit_names_retry_after() {
    // PayU's own rate limit: one token request per hour, so the second one is refused.
    let config = SandboxConfig::default().payu_rate_limit(1, Duration::from_secs(3600));
    let sandbox = Sandbox::start(config).await.unwrap();
    let payu = sandbox.payu();
    let args = [
        "--provider",
        "payu",
        "--token-url",
        &payu.token_url,
        "--client-id",
        &payu.client_id,
        "--client-secret-env",
        "PAYU_SECRET",
        "--scope",
        "read_payment_links",
    ];
    let env = [("PAYU_SECRET", payu.client_secret.as_str())];
    let first = token(&args, &env, None).await;
    assert!(first.status.success(), "{}", stderr(&first));
    let output = token(&args, &env, None).await;
    assert!(!output.status.success());
    let err = stderr(&output);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("429"), "{err}");
    assert!(err.contains("rate_limit_exceeded"), "{err}");
    assert!(err.contains("retry after"), "{err}");
    assert!(!err.contains(&payu.client_secret), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn secret_as_an_argument_is_refused_and_not_echoed() {
    let secret = "do-not-echo-this-s3cret";
    let output = token(
        &[
            "--token-url",
            "http://127.0.0.1:9/token",
            "--client-id",
            "app",
            "--client-secret",
            secret,
        ],
        &[],
        None,
    )
    .await;
    assert!(!output.status.success());
    let err = stderr(&output);
    assert!(err.contains("--client-secret-env"), "{err}");
    assert!(!err.contains(secret), "{err}");
    assert!(!stdout(&output).contains(secret));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_names_the_flag_and_the_fix() {
    // No token URL and no preset.
    let output = token(
        &["--client-id", "app", "--client-secret-env", "S"],
        &[("S", "x")],
        None,
    )
    .await;
    assert!(!output.status.success());
    let err = stderr(&output);
    assert!(err.contains("--token-url"), "{err}");

    // Plain http to a host that is not loopback.
    let output = token(
        &[
            "--token-url",
            "http://auth.example.com/token",
            "--client-id",
            "app",
            "--client-secret-env",
            "S",
        ],
        &[("S", "x")],
        None,
    )
    .await;
    assert!(!output.status.success());
    let err = stderr(&output);
    assert!(err.contains("--token-url"), "{err}");
    assert!(err.contains("--allow-insecure-http"), "{err}");

    // The variable is not set.
    let output = token(
        &[
            "--token-url",
            "http://127.0.0.1:9/token",
            "--client-id",
            "app",
            "--client-secret-env",
            "CLIENTCREDS_TEST_UNSET_VARIABLE",
        ],
        &[],
        None,
    )
    .await;
    assert!(!output.status.success());
    let err = stderr(&output);
    assert!(err.contains("CLIENTCREDS_TEST_UNSET_VARIABLE"), "{err}");
    assert!(err.contains("not set"), "{err}");

    // Neither a variable nor a file, and nothing on standard input.
    let output = token(
        &[
            "--token-url",
            "http://127.0.0.1:9/token",
            "--client-id",
            "app",
        ],
        &[],
        Some(""),
    )
    .await;
    assert!(!output.status.success());
    let err = stderr(&output);
    assert!(err.contains("empty"), "{err}");

    // An unknown provider lists the known ones.
    let output = token(
        &[
            "--provider",
            "paypal",
            "--client-id",
            "app",
            "--client-secret-env",
            "S",
        ],
        &[("S", "x")],
        None,
    )
    .await;
    assert!(!output.status.success());
    let err = stderr(&output);
    assert!(err.contains("afterpay"), "{err}");

    // A malformed --param.
    let output = token(
        &[
            "--token-url",
            "http://127.0.0.1:9/token",
            "--client-id",
            "app",
            "--param",
            "tenant",
        ],
        &[],
        Some("x"),
    )
    .await;
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("NAME=VALUE"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_token_endpoint_is_a_clear_error() {
    // A port nothing listens on: bind, read the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/oauth2/token");
    let output = token(
        &[
            "--token-url",
            &url,
            "--client-id",
            "app",
            "--client-secret-env",
            "S",
        ],
        &[("S", "unreachable-s3cret")],
        None,
    )
    .await;
    assert!(!output.status.success());
    let err = stderr(&output);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!err.contains("unreachable-s3cret"), "{err}");
    assert!(err.contains("127.0.0.1"), "{err}");
}
