//! A small HTTP client for the sandbox tests.
#![allow(dead_code, unreachable_pub)]

use base64::Engine as _;
use base64::prelude::{BASE64_STANDARD, BASE64_URL_SAFE_NO_PAD};
use bytes::Bytes;
use http::{HeaderMap, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// An answer: status, headers, body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub async fn try_send(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<Reply, hyper_util::client::legacy::Error> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut request = Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    let response = client.request(request).await?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Ok(Reply {
        status,
        headers,
        body: String::from_utf8(body.to_vec()).unwrap(),
    })
}

pub async fn send(method: &str, url: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    try_send(method, url, headers, body).await.unwrap()
}

pub const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");
pub const JSON: (&str, &str) = ("content-type", "application/json");

pub fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", BASE64_STANDARD.encode(format!("{id}:{secret}")))
}

pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// The claims of a JWT (no signature check).
pub fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("a JWT has three parts");
    serde_json::from_slice(&BASE64_URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// A form body from pairs.
pub fn form(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// Assert an RFC 6749 error answer.
#[track_caller]
pub fn assert_oauth_error(reply: &Reply, status: u16, error: &str) {
    assert_eq!(reply.status, status, "{reply:?}");
    assert_eq!(reply.json()["error"], error, "{reply:?}");
    assert!(reply.json()["error_description"].is_string(), "{reply:?}");
}

/// A token the sandbox never issued, of the same shape as `token`: a JWT with its payload
/// changed (a later `exp`) under the original signature, or an opaque token with its last
/// character changed.
pub fn forge(token: &str) -> String {
    if let [header, _, signature] = token.split('.').collect::<Vec<_>>()[..] {
        let mut payload = claims(token);
        payload["exp"] = Value::from(payload["exp"].as_u64().unwrap() + 86_400);
        let payload = BASE64_URL_SAFE_NO_PAD.encode(payload.to_string());
        return format!("{header}.{payload}.{signature}");
    }
    let mut forged = token.to_owned();
    let last = forged.pop().expect("a token is not empty");
    forged.push(if last == '0' { '1' } else { '0' });
    forged
}
