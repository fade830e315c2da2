//! The fault kinds added for the reliability suite: a body trickled in a few bytes at a time,
//! and a redirect — through the handle and through the admin API.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use clientcreds_sandbox::http::{HeaderValue, StatusCode};
use clientcreds_sandbox::*;
use common::*;
use serde_json::json;

fn payu_form() -> String {
    form(&[
        ("client_id", PAYU_CLIENT_ID),
        ("client_secret", PAYU_CLIENT_SECRET),
        ("grant_type", "client_credentials"),
        ("scope", "read_payment_links"),
    ])
}

const BODY: &str = r#"{"access_token":"trickled","expires_in":60}"#;

#[tokio::test]
async fn a_trickled_body_arrives_whole_and_no_sooner_than_its_pieces_allow() {
    let sb = Sandbox::start(SandboxConfig::default()).await.unwrap();
    // 44 bytes, 10 at a time: 5 pieces, each after a 100 ms pause.
    sb.fail_next(
        Provider::Payu,
        1,
        Fault::json(StatusCode::OK, BODY).trickle(10, Duration::from_millis(100)),
    );
    let start = Instant::now();
    let reply = send("POST", &sb.payu().token_url, &[FORM], &payu_form()).await;
    let took = start.elapsed();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, BODY);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert!(
        took >= Duration::from_millis(500),
        "the body came in {took:?}"
    );
    // The next request is answered as documented.
    let normal = send("POST", &sb.payu().token_url, &[FORM], &payu_form()).await;
    assert_eq!(normal.status, 200);
    assert_ne!(normal.json()["access_token"], "trickled");
}

#[tokio::test]
async fn a_redirect_names_its_location() {
    let sb = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let location = HeaderValue::from_static("http://127.0.0.2:9/payu/oauth/token");
    sb.fail_next(
        Provider::Payu,
        1,
        Fault::redirect(StatusCode::TEMPORARY_REDIRECT, location),
    );
    let reply = send("POST", &sb.payu().token_url, &[FORM], &payu_form()).await;
    assert_eq!(reply.status, 307);
    assert_eq!(
        reply.header("location"),
        Some("http://127.0.0.2:9/payu/oauth/token")
    );
    assert_eq!(sb.tokens_issued(Provider::Payu, PAYU_CLIENT_ID), 0);
}

#[tokio::test]
async fn the_admin_api_scripts_a_trickle_and_refuses_zero_bytes() {
    let sb = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let admin = format!("{}/_sandbox/faults", sb.base_url());
    let fault = json!({"provider": "payu", "status": 200, "body": BODY,
                       "trickle": {"bytes": 10, "every_ms": 100}});
    assert_eq!(
        send("POST", &admin, &[JSON], &fault.to_string())
            .await
            .status,
        204
    );
    let start = Instant::now();
    let reply = send("POST", &sb.payu().token_url, &[FORM], &payu_form()).await;
    assert_eq!(reply.body, BODY);
    assert!(start.elapsed() >= Duration::from_millis(500));
    let zero = json!({"provider": "payu", "status": 200, "trickle": {"bytes": 0, "every_ms": 1}});
    let refused = send("POST", &admin, &[JSON], &zero.to_string()).await;
    assert_eq!(refused.status, 400);
    assert!(refused.body.contains("trickle.bytes"), "{}", refused.body);
}
