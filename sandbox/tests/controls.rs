//! Test controls: recordings, counts, faults, the clock, revocation, lifetimes, the admin API.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use clientcreds_sandbox::http::{HeaderName, HeaderValue, StatusCode};
use clientcreds_sandbox::*;
use common::*;
use serde_json::json;

async fn sandbox() -> Sandbox {
    Sandbox::start(SandboxConfig::default()).await.unwrap()
}

fn payu_form() -> String {
    form(&[
        ("client_id", PAYU_CLIENT_ID),
        ("client_secret", PAYU_CLIENT_SECRET),
        ("grant_type", "client_credentials"),
        ("scope", "read_payment_links"),
    ])
}

async fn payu_token(sb: &Sandbox) -> Reply {
    send("POST", &sb.payu().token_url, &[FORM], &payu_form()).await
}

async fn resource_status(sb: &Sandbox, url: &str, token: &str) -> Reply {
    let _ = sb;
    send("GET", url, &[("authorization", &bearer(token))], "").await
}

#[tokio::test]
async fn requests_are_recorded_as_sent_and_debug_hides_secrets() {
    let sb = sandbox().await;
    assert_eq!(payu_token(&sb).await.status, 200);
    send(
        "GET",
        &format!("{}/_sandbox/counts", sb.base_url()),
        &[],
        "",
    )
    .await;
    let recorded = sb.requests();
    assert_eq!(recorded.len(), 1, "admin calls are not recorded");
    let r = &recorded[0];
    assert_eq!(r.provider, Some(Provider::Payu));
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/payu/oauth/token");
    assert_eq!(
        r.header("Content-Type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        r.form_param("client_secret").as_deref(),
        Some(PAYU_CLIENT_SECRET)
    );
    assert_eq!(r.body, payu_form());
    assert_eq!(sb.requests_for(Provider::Payu).len(), 1);
    assert!(sb.requests_for(Provider::Pyng).is_empty());

    let debug = format!(
        "{r:?} {:?} {:?} {:?}",
        sb.credentials(),
        SandboxConfig::default(),
        sb
    );
    for secret in [
        PAYU_CLIENT_SECRET,
        AZUPAY_API_KEY,
        AUTOPAY_CLIENT_SECRET,
        PYNG_CLIENT_SECRET,
        AFTERPAY_CLIENT_SECRET,
        AZUPAY_OAUTH2_CLIENT_SECRET,
    ] {
        assert!(!debug.contains(secret), "{secret} leaked into {debug}");
    }

    sb.clear_requests();
    assert!(sb.requests().is_empty());
}

#[tokio::test]
async fn scripted_faults_answer_the_next_token_requests_then_stop() {
    let sb = sandbox().await;
    let fault = Fault::status(StatusCode::SERVICE_UNAVAILABLE)
        .with_body("maintenance")
        .with_header(
            HeaderName::from_static("retry-after"),
            HeaderValue::from_static("7"),
        );
    sb.fail_next(Provider::Payu, 2, fault);
    for _ in 0..2 {
        let reply = payu_token(&sb).await;
        assert_eq!(reply.status, 503);
        assert_eq!(reply.body, "maintenance");
        assert_eq!(reply.header("retry-after"), Some("7"));
    }
    assert_eq!(payu_token(&sb).await.status, 200);
    assert_eq!(sb.tokens_issued(Provider::Payu, PAYU_CLIENT_ID), 1);
    // Faults are per provider.
    sb.fail_next(
        Provider::Afterpay,
        1,
        Fault::status(StatusCode::BAD_GATEWAY),
    );
    assert_eq!(payu_token(&sb).await.status, 200);
    sb.clear_faults();
    let afterpay = send(
        "POST",
        &sb.afterpay().token_url,
        &[
            FORM,
            (
                "authorization",
                &basic(AFTERPAY_CLIENT_ID, AFTERPAY_CLIENT_SECRET),
            ),
        ],
        "grant_type=client_credentials",
    )
    .await;
    assert_eq!(afterpay.status, 200);
}

#[tokio::test]
async fn a_close_fault_drops_the_connection_without_an_answer() {
    let sb = sandbox().await;
    sb.fail_next(Provider::Payu, 1, Fault::close_connection());
    let closed = try_send("POST", &sb.payu().token_url, &[FORM], &payu_form()).await;
    assert!(closed.is_err(), "{closed:?}");
    assert_eq!(payu_token(&sb).await.status, 200);
    // Recorded nonetheless: the request did reach the sandbox.
    assert_eq!(sb.requests_for(Provider::Payu).len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_delay_fault_holds_the_answer_back() {
    let sb = sandbox().await;
    sb.fail_next(Provider::Payu, 1, Fault::delay(Duration::from_secs(60)));
    let start = tokio::time::Instant::now();
    let reply = payu_token(&sb).await;
    assert_eq!(reply.status, 200);
    assert!(
        start.elapsed() >= Duration::from_secs(60),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn advancing_the_clock_expires_tokens_and_revoke_kills_them() {
    let sb = sandbox().await;
    let first = payu_token(&sb).await.json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let created = payu_token(&sb).await.json()["created_at"].as_u64().unwrap();
    assert_eq!(
        resource_status(&sb, &sb.payu().resource_url, &first)
            .await
            .status,
        200
    );
    sb.advance(Duration::from_secs(7199));
    assert_eq!(
        resource_status(&sb, &sb.payu().resource_url, &first)
            .await
            .status,
        200
    );
    sb.advance(Duration::from_secs(1));
    let expired = resource_status(&sb, &sb.payu().resource_url, &first).await;
    assert_eq!(expired.status, 401);
    assert!(
        expired
            .header("www-authenticate")
            .unwrap()
            .contains("invalid_token")
    );
    assert!(
        expired.json()["error_description"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
    // New tokens are issued on the moved clock.
    let later = payu_token(&sb).await.json();
    assert!(later["created_at"].as_u64().unwrap() >= created + 7200);
    let fresh = later["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        resource_status(&sb, &sb.payu().resource_url, &fresh)
            .await
            .status,
        200
    );

    sb.revoke_all_tokens();
    let revoked = resource_status(&sb, &sb.payu().resource_url, &fresh).await;
    assert_eq!(revoked.status, 401);
    assert!(
        revoked.json()["error_description"]
            .as_str()
            .unwrap()
            .contains("revoked")
    );
    let newer = payu_token(&sb).await.json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        resource_status(&sb, &sb.payu().resource_url, &newer)
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn lifetimes_can_be_configured_and_overridden() {
    let config =
        SandboxConfig::default().token_lifetime(Provider::Afterpay, Duration::from_secs(120));
    let sb = Sandbox::start(config).await.unwrap();
    let auth = basic(AFTERPAY_CLIENT_ID, AFTERPAY_CLIENT_SECRET);
    let url = sb.afterpay().token_url;
    let headers = [FORM, ("authorization", auth.as_str())];
    let get = || send("POST", &url, &headers, "grant_type=client_credentials");
    assert_eq!(get().await.json()["expires_in"], 120);
    sb.set_token_lifetime(Provider::Afterpay, Duration::from_secs(5));
    let short = get().await.json();
    assert_eq!(short["expires_in"], 5);
    let token = short["access_token"].as_str().unwrap().to_owned();
    sb.advance(Duration::from_secs(5));
    assert_eq!(
        resource_status(&sb, &sb.afterpay().resource_url, &token)
            .await
            .status,
        401
    );
}

#[tokio::test]
async fn the_admin_api_does_what_the_rust_api_does() {
    let sb = sandbox().await;
    let admin = |path: &str| format!("{}/_sandbox{path}", sb.base_url());

    let credentials = send("GET", &admin("/credentials"), &[], "").await.json();
    assert_eq!(credentials, serde_json::to_value(sb.credentials()).unwrap());
    assert_eq!(
        credentials["azupay"]["endpoint"],
        format!("{}/azupay/v1", sb.base_url())
    );

    // Azupay state and key rotation.
    assert_eq!(
        send("GET", &admin("/azupay/MYBUSINESSID"), &[], "")
            .await
            .json()["enabled"],
        false
    );
    let rotate = send(
        "PUT",
        &admin("/azupay/MYBUSINESSID/api-key"),
        &[JSON],
        r#"{"api_key":"SECR_MYBUSINESSID_new"}"#,
    )
    .await;
    assert_eq!(rotate.status, 204);
    let enable_url = format!("{}/client/MYBUSINESSID/oauth2", sb.azupay().endpoint);
    assert_eq!(
        send(
            "POST",
            &enable_url,
            &[("authorization", AZUPAY_API_KEY), JSON],
            "{}"
        )
        .await
        .status,
        401
    );
    assert_eq!(
        send(
            "POST",
            &enable_url,
            &[("authorization", "SECR_MYBUSINESSID_new"), JSON],
            "{}"
        )
        .await
        .status,
        200
    );
    assert_eq!(
        send("GET", &admin("/azupay/MYBUSINESSID"), &[], "")
            .await
            .json()["enabled"],
        true
    );
    assert_eq!(
        send("GET", &admin("/azupay/NOBODY"), &[], "").await.status,
        404
    );

    // Faults.
    let fault = json!({"provider": "payu", "times": 1, "status": 500, "body": PAYU_SERVER_ERROR, "headers": {"content-type": "application/json"}});
    assert_eq!(
        send("POST", &admin("/faults"), &[JSON], &fault.to_string())
            .await
            .status,
        204
    );
    let failed = payu_token(&sb).await;
    assert_eq!(failed.status, 500);
    assert_eq!(failed.json()["error"], "server_error");
    let close = json!({"provider": "payu", "close_connection": true});
    assert_eq!(
        send("POST", &admin("/faults"), &[JSON], &close.to_string())
            .await
            .status,
        204
    );
    assert!(
        try_send("POST", &sb.payu().token_url, &[FORM], &payu_form())
            .await
            .is_err()
    );
    let bad_fault = send(
        "POST",
        &admin("/faults"),
        &[JSON],
        r#"{"provider":"paypal"}"#,
    )
    .await;
    assert_eq!(bad_fault.status, 400);
    assert!(bad_fault.body.contains("paypal"));
    let bad_header = json!({"provider": "payu", "status": 503, "headers": {"bad header": "x"}});
    let bad_header = send("POST", &admin("/faults"), &[JSON], &bad_header.to_string()).await;
    assert_eq!(bad_header.status, 400);
    assert!(bad_header.body.contains("headers"));
    let unknown_field = send(
        "POST",
        &admin("/faults"),
        &[JSON],
        r#"{"provider":"payu","statu":500}"#,
    )
    .await;
    assert_eq!(unknown_field.status, 400);
    assert!(unknown_field.body.contains("statu"), "{unknown_field:?}");
    send(
        "POST",
        &admin("/faults"),
        &[JSON],
        r#"{"provider":"payu","status":502}"#,
    )
    .await;
    assert_eq!(send("DELETE", &admin("/faults"), &[], "").await.status, 204);

    // Lifetimes, clock and revocation.
    assert_eq!(
        send(
            "PUT",
            &admin("/lifetimes/payu"),
            &[JSON],
            r#"{"seconds":30}"#
        )
        .await
        .status,
        204
    );
    let token = payu_token(&sb).await.json();
    assert_eq!(token["expires_in"], 30);
    let token = token["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        send("POST", &admin("/advance"), &[JSON], r#"{"seconds":30}"#)
            .await
            .status,
        204
    );
    assert_eq!(
        resource_status(&sb, &sb.payu().resource_url, &token)
            .await
            .status,
        401
    );
    let token = payu_token(&sb).await.json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(send("POST", &admin("/revoke"), &[], "").await.status, 204);
    assert_eq!(
        resource_status(&sb, &sb.payu().resource_url, &token)
            .await
            .status,
        401
    );

    // Rate limit.
    let limit = send(
        "PUT",
        &admin("/payu/rate-limit"),
        &[JSON],
        r#"{"requests":1,"window_seconds":60}"#,
    )
    .await;
    assert_eq!(limit.status, 204);
    assert_eq!(payu_token(&sb).await.status, 200);
    assert_eq!(payu_token(&sb).await.status, 429);
    assert_eq!(
        send("PUT", &admin("/payu/rate-limit"), &[JSON], "null")
            .await
            .status,
        204
    );
    assert_eq!(payu_token(&sb).await.status, 200);

    // Counts and recordings.
    let counts = send("GET", &admin("/counts"), &[], "").await.json();
    assert_eq!(counts["tokens_issued"]["payu"][PAYU_CLIENT_ID], 4);
    assert_eq!(counts["enable_calls"]["MYBUSINESSID"], 2);
    let requests = send("GET", &admin("/requests"), &[], "").await.json();
    assert_eq!(requests.as_array().unwrap().len(), sb.requests().len());
    assert_eq!(requests[0]["provider"], "azupay");
    assert_eq!(requests[0]["method"], "POST");
    assert_eq!(
        send("DELETE", &admin("/requests"), &[], "").await.status,
        204
    );
    assert!(sb.requests().is_empty());
}

#[tokio::test]
async fn dropping_the_sandbox_stops_it() {
    let sb = sandbox().await;
    let url = sb.payu().token_url;
    assert_eq!(send("POST", &url, &[FORM], &payu_form()).await.status, 200);
    drop(sb);
    tokio::task::yield_now().await;
    // Refused, reset, or (if the kernel still queued the connection) never answered.
    let after = tokio::time::timeout(
        Duration::from_secs(5),
        try_send("POST", &url, &[FORM], &payu_form()),
    )
    .await;
    assert!(!matches!(after, Ok(Ok(_))), "{after:?}");
}

#[tokio::test]
async fn a_fixed_port_is_used() {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = probe.local_addr().unwrap().port();
    drop(probe);
    let sb = Sandbox::start(SandboxConfig::default().port(port))
        .await
        .unwrap();
    assert_eq!(sb.base_url(), format!("http://127.0.0.1:{port}"));
    assert_eq!(sb.local_addr().port(), port);
}

#[tokio::test]
async fn an_enable_whose_answer_is_lost_still_enables_once() {
    let sb = sandbox().await;
    let url = format!("{}/client/MYBUSINESSID/oauth2", sb.azupay().endpoint);
    let key = [("authorization", AZUPAY_API_KEY), JSON];

    sb.fail_next_enable(1, Fault::status(StatusCode::BAD_GATEWAY));
    assert_eq!(send("POST", &url, &key, "{}").await.status, 502);
    assert!(
        !sb.azupay_enabled("MYBUSINESSID"),
        "a fault before processing changes nothing"
    );

    sb.fail_next_enable(1, Fault::close_connection().after_processing());
    assert!(try_send("POST", &url, &key, "{}").await.is_err());
    assert!(sb.azupay_enabled("MYBUSINESSID"), "the enable took effect");
    let details = send("GET", &url, &key, "").await;
    assert_eq!(details.status, 200);
    assert!(details.json().get("oauth2ClientSecret").is_none());
    assert_eq!(send("POST", &url, &key, "{}").await.status, 409);
    assert_eq!(sb.enable_calls("MYBUSINESSID"), 3);

    // The admin API scripts the same, by endpoint.
    let admin = format!("{}/_sandbox/faults", sb.base_url());
    let fault = json!({"provider": "azupay", "endpoint": "enable", "status": 500});
    assert_eq!(
        send("POST", &admin, &[JSON], &fault.to_string())
            .await
            .status,
        204
    );
    assert_eq!(send("POST", &url, &key, "{}").await.status, 500);
    let wrong = json!({"provider": "payu", "endpoint": "enable", "status": 500});
    let wrong = send("POST", &admin, &[JSON], &wrong.to_string()).await;
    assert_eq!(wrong.status, 400);
    assert!(wrong.body.contains("endpoint"));
}

/// A delayed enable is processed after its delay (a call in flight that has not taken effect);
/// with `after_processing` at once, its answer after the delay (one that has).
#[tokio::test]
async fn a_delayed_enable_takes_effect_before_or_after_its_delay() {
    let sb = sandbox().await;
    let url = format!("{}/client/MYBUSINESSID/oauth2", sb.azupay().endpoint);
    let key = [("authorization", AZUPAY_API_KEY), JSON];

    // delayed, then processed: while the call waits, nothing is enabled
    sb.fail_next_enable(1, Fault::delay(Duration::from_secs(30)));
    let (send_url, send_key) = (url.clone(), key);
    let waiting = tokio::spawn(async move { try_send("POST", &send_url, &send_key, "{}").await });
    let arrived = || sb.enable_calls("MYBUSINESSID") == 1;
    while !arrived() {
        tokio::task::yield_now().await;
    }
    // the answer is not there yet, and the sandbox has not enabled the client
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiting.is_finished());
    assert!(!sb.azupay_enabled("MYBUSINESSID"));
    // a client that gives up drops the call: it never takes effect
    waiting.abort();
    sb.clear_faults();

    // processed at once, answered after the delay
    sb.fail_next_enable(
        1,
        Fault::delay(Duration::from_millis(500)).after_processing(),
    );
    let (send_url, send_key) = (url.clone(), key);
    let answered = tokio::spawn(async move { send("POST", &send_url, &send_key, "{}").await });
    while !sb.azupay_enabled("MYBUSINESSID") {
        tokio::task::yield_now().await;
    }
    assert!(!answered.is_finished(), "the answer waits for the delay");
    let answer = answered.await.unwrap();
    assert_eq!(answer.status, 200);
    assert!(answer.json()["oauth2ClientSecret"].is_string());
    assert!(!sb.azupay_enabled("NOBODY"));
    assert_eq!(send("POST", &url, &key, "{}").await.status, 409);

    // the admin API scripts the same
    let sb = sandbox().await;
    let url = format!("{}/client/MYBUSINESSID/oauth2", sb.azupay().endpoint);
    let admin = format!("{}/_sandbox/faults", sb.base_url());
    let fault = json!({"provider": "azupay", "endpoint": "enable", "delay_ms": 60000,
                       "after_processing": true});
    assert_eq!(
        send("POST", &admin, &[JSON], &fault.to_string())
            .await
            .status,
        204
    );
    let (send_url, send_key) = (url.clone(), key);
    let in_flight = tokio::spawn(async move { try_send("POST", &send_url, &send_key, "{}").await });
    while !sb.azupay_enabled("MYBUSINESSID") {
        tokio::task::yield_now().await;
    }
    assert!(!in_flight.is_finished());
    in_flight.abort();
}

/// Faults for Azupay's details call: scripted like enable's, by the handle or the admin API.
#[tokio::test]
async fn details_calls_take_faults() {
    let sb = sandbox().await;
    let url = format!("{}/client/MYBUSINESSID/oauth2", sb.azupay().endpoint);
    let key = [("authorization", AZUPAY_API_KEY)];
    sb.fail_next_details(1, Fault::status(StatusCode::SERVICE_UNAVAILABLE));
    assert_eq!(send("GET", &url, &key, "").await.status, 503);
    assert_eq!(send("GET", &url, &key, "").await.status, 404);
    sb.fail_next_details(1, Fault::close_connection());
    assert!(try_send("GET", &url, &key, "").await.is_err());
    // a details fault leaves enable alone
    sb.fail_next_details(1, Fault::status(StatusCode::BAD_GATEWAY));
    let enabled = send("POST", &url, &[key[0], JSON], "{}").await;
    assert_eq!(enabled.status, 200);
    assert_eq!(send("GET", &url, &key, "").await.status, 502);
    assert_eq!(send("GET", &url, &key, "").await.status, 200);

    let admin = format!("{}/_sandbox/faults", sb.base_url());
    let fault = json!({"provider": "azupay", "endpoint": "details", "status": 500});
    assert_eq!(
        send("POST", &admin, &[JSON], &fault.to_string())
            .await
            .status,
        204
    );
    assert_eq!(send("GET", &url, &key, "").await.status, 500);
    let wrong = json!({"provider": "azupay", "endpoint": "detail", "status": 500});
    let wrong = send("POST", &admin, &[JSON], &wrong.to_string()).await;
    assert_eq!(wrong.status, 400);
    let message = wrong.json()["error"].as_str().unwrap().to_owned();
    assert!(message.contains("\"details\""), "{message}");
}

#[tokio::test]
async fn a_token_whose_answer_is_lost_is_still_issued_and_counted() {
    let sb = sandbox().await;
    sb.fail_next(
        Provider::Payu,
        1,
        Fault::status(StatusCode::GATEWAY_TIMEOUT).after_processing(),
    );
    assert_eq!(payu_token(&sb).await.status, 504);
    assert_eq!(sb.tokens_issued(Provider::Payu, PAYU_CLIENT_ID), 1);
}

#[tokio::test]
async fn basic_credentials_match_as_sent_or_form_decoded() {
    let config = SandboxConfig::default()
        .afterpay_client(Client::new("merchant one", "p@ss:word+1"))
        .pyng_client(Client::new("raw", "a+b").scopes(["billing:batches:read"]));
    let sb = Sandbox::start(config).await.unwrap();
    let encoded = basic("merchant+one", "p%40ss%3Aword%2B1");
    let reply = send(
        "POST",
        &sb.afterpay().token_url,
        &[FORM, ("authorization", &encoded)],
        "grant_type=client_credentials",
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let raw = send(
        "POST",
        &sb.pyng().token_url,
        &[FORM, ("authorization", &basic("raw", "a+b"))],
        "grant_type=client_credentials&scope=billing:batches:read",
    )
    .await;
    assert_eq!(raw.status, 200, "{raw:?}");
}
