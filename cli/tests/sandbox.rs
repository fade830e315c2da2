//! `clientcreds sandbox --json --port 0`: the first line says where everything is, and it works.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

/// Kills the sandbox when the test ends, passed or not.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A minimal HTTP/1.1 exchange: returns the status code and the body.
fn http(method: &str, url: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let rest = url.strip_prefix("http://").expect("an http URL");
    let (authority, path) = rest.split_at(rest.find('/').expect("a path"));
    let mut stream = TcpStream::connect(authority).unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request += &format!("{name}: {value}\r\n");
    }
    request += "\r\n";
    request += body;
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Standard base64 with padding (RFC 4648 §4), for `Authorization: Basic`.
fn base64(input: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.as_bytes().chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `Authorization: Basic base64(id:secret)` from a provider object of the printed line.
fn basic(provider: &Value) -> String {
    format!(
        "Basic {}",
        base64(&format!(
            "{}:{}",
            provider["client_id"].as_str().unwrap(),
            provider["client_secret"].as_str().unwrap()
        ))
    )
}

/// The sorted keys of a JSON object.
fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

/// Call `resource_url` with the `access_token` of a token answer; the status.
fn call_with(resource_url: &Value, answer: &str) -> u16 {
    let answer: Value = serde_json::from_str(answer).unwrap();
    let token = answer["access_token"].as_str().unwrap();
    http(
        "GET",
        resource_url.as_str().unwrap(),
        &[("Authorization", &format!("Bearer {token}"))],
        "",
    )
    .0
}

#[test]
fn base64_matches_the_seeds_basic_headers() {
    // Pyng's and Afterpay's documents show these pairs and their encodings.
    assert_eq!(
        base64("s6BhdRkqt3:gX1fBat3bV"),
        "czZCaGRSa3F0MzpnWDFmQmF0M2JW"
    );
    assert_eq!(
        base64("afterpay:merchantABC"),
        "YWZ0ZXJwYXk6bWVyY2hhbnRBQkM="
    );
    assert_eq!(base64("gomo:password123"), "Z29tbzpwYXNzd29yZDEyMw==");
    assert_eq!(base64(""), "");
    assert_eq!(base64("ab"), "YWI=");
}

#[test]
fn json_line_gives_working_credentials() {
    let child = Command::new(env!("CARGO_BIN_EXE_clientcreds"))
        .args(["sandbox", "--json", "--port", "0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut running = Running(child);
    let stdout = running.0.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let printed: Value = serde_json::from_str(&line).unwrap();

    assert_eq!(
        keys(&printed),
        ["afterpay", "autopay", "azupay", "payu", "pyng"],
        "{line}"
    );
    for provider in ["autopay", "payu", "pyng", "afterpay"] {
        assert_eq!(
            keys(&printed[provider]),
            ["client_id", "client_secret", "resource_url", "token_url"],
            "{provider} in {line}"
        );
        for field in ["token_url", "client_id", "client_secret", "resource_url"] {
            assert!(
                printed[provider][field].is_string(),
                "{provider}.{field} in {line}"
            );
        }
    }
    let azupay = &printed["azupay"];
    assert_eq!(
        keys(azupay),
        ["api_key", "client_id", "endpoint"],
        "azupay in {line}"
    );
    assert!(azupay["endpoint"].as_str().unwrap().ends_with("/v1"));
    assert_eq!(azupay["client_id"], "MYBUSINESSID");
    assert_eq!(azupay["api_key"], "SECR_MYBUSINESSID_myapikey");

    let payu = &printed["payu"];
    let body = format!(
        "grant_type=client_credentials&scope=read_payment_links&client_id={}&client_secret={}",
        payu["client_id"].as_str().unwrap(),
        payu["client_secret"].as_str().unwrap()
    );
    let (status, answer) = http(
        "POST",
        payu["token_url"].as_str().unwrap(),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &body,
    );
    assert_eq!(status, 200, "{answer}");
    let answer: Value = serde_json::from_str(&answer).unwrap();
    let token = answer["access_token"].as_str().unwrap();
    let (status, _) = http(
        "GET",
        payu["resource_url"].as_str().unwrap(),
        &[("Authorization", &format!("Bearer {token}"))],
        "",
    );
    assert_eq!(status, 200);

    // Azupay's endpoint from the line enables OAuth 2.0 with the printed API key.
    let (status, enabled) = http(
        "POST",
        &format!(
            "{}/client/MYBUSINESSID/oauth2",
            azupay["endpoint"].as_str().unwrap()
        ),
        &[
            ("Authorization", azupay["api_key"].as_str().unwrap()),
            ("Content-Type", "application/json"),
        ],
        "{}",
    );
    assert_eq!(status, 200, "{enabled}");
    // … and the enable answer gets a token that opens `{endpoint}/balance`.
    let enabled: Value = serde_json::from_str(&enabled).unwrap();
    let body = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}",
        enabled["oauth2ClientId"].as_str().unwrap(),
        enabled["oauth2ClientSecret"].as_str().unwrap()
    );
    let (status, answer) = http(
        "POST",
        enabled["oauth2TokenUrl"].as_str().unwrap(),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &body,
    );
    assert_eq!(status, 200, "{answer}");
    let balance = Value::from(format!("{}/balance", azupay["endpoint"].as_str().unwrap()));
    assert_eq!(call_with(&balance, &answer), 200, "azupay");

    // Autopay: the JSON body of its document, with the audience, from the printed line.
    let autopay = &printed["autopay"];
    let body = serde_json::json!({
        "client_id": autopay["client_id"],
        "client_secret": autopay["client_secret"],
        "audience": "https://api.autopay.io",
        "grant_type": "client_credentials",
    });
    let (status, answer) = http(
        "POST",
        autopay["token_url"].as_str().unwrap(),
        &[("Content-Type", "application/json")],
        &body.to_string(),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(call_with(&autopay["resource_url"], &answer), 200, "autopay");

    // Pyng: Basic authentication and a scope.
    let pyng = &printed["pyng"];
    let (status, answer) = http(
        "POST",
        pyng["token_url"].as_str().unwrap(),
        &[
            ("Authorization", &basic(pyng)),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        "grant_type=client_credentials&scope=billing:customers:read",
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(call_with(&pyng["resource_url"], &answer), 200, "pyng");

    // Afterpay: Basic authentication, grant_type only.
    let afterpay = &printed["afterpay"];
    let (status, answer) = http(
        "POST",
        afterpay["token_url"].as_str().unwrap(),
        &[
            ("Authorization", &basic(afterpay)),
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Accept", "application/json"),
        ],
        "grant_type=client_credentials",
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        call_with(&afterpay["resource_url"], &answer),
        200,
        "afterpay"
    );

    // A token of one provider does not open another's endpoint.
    assert_eq!(call_with(&payu["resource_url"], &answer), 401);
}

#[test]
fn a_busy_port_is_a_clear_error() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let output = Command::new(env!("CARGO_BIN_EXE_clientcreds"))
        .args(["sandbox", "--port", &port])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--port"), "{stderr}");
}

#[test]
fn human_output_lists_every_provider_with_a_curl_example() {
    let child = Command::new(env!("CARGO_BIN_EXE_clientcreds"))
        .args(["sandbox", "--port", "0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut running = Running(child);
    let stdout = BufReader::new(running.0.stdout.take().unwrap());
    let mut text = String::new();
    for line in stdout.lines() {
        let line = line.unwrap();
        let last = line.starts_with("Test controls");
        text += &line;
        text += "\n";
        if last {
            break;
        }
    }
    for expected in [
        "Azupay",
        "SECR_MYBUSINESSID_myapikey",
        "/azupay/v1",
        "Autopay",
        "/autopay/oauth/token",
        "PayU",
        "/payu/oauth/token",
        "Pyng",
        "/pyng/billing/oauth2/token",
        "Afterpay",
        "/afterpay/oauth2/token",
        "merchantABC",
    ] {
        assert!(text.contains(expected), "{expected} missing from:\n{text}");
    }
    assert!(text.matches("curl -X POST").count() >= 6, "{text}");
}
