//! Each seed's own example requests (host swapped) and each documented or malformed request.
#![allow(clippy::unwrap_used)]

mod common;

use clientcreds_sandbox::*;
use common::*;
use serde_json::json;

async fn sandbox() -> Sandbox {
    Sandbox::start(SandboxConfig::default()).await.unwrap()
}

const SEED_SCOPES: [&str; 13] = [
    "RestAPI/POST:paymentRequest",
    "RestAPI/POST:paymentRequest:refund",
    "RestAPI/POST:accountEnquiry",
    "RestAPI/POST:payIDEnquiry",
    "RestAPI/POST:payment",
    "RestAPI/GET:payment",
    "RestAPI/POST:payment:search",
    "RestAPI/GET:paymentRequest",
    "RestAPI/DELETE:paymentRequest",
    "RestAPI/POST:paymentRequest:search",
    "RestAPI/GET:report",
    "RestAPI/GET:report:download",
    "RestAPI/GET:balance",
];

async fn azupay_enable(sb: &Sandbox) -> Reply {
    let az = sb.azupay();
    send(
        "POST",
        &format!("{}/client/MYBUSINESSID/oauth2", az.endpoint),
        &[("authorization", "SECR_MYBUSINESSID_myapikey"), JSON],
        "{}",
    )
    .await
}

/// The seed's first token request (no scope).
async fn azupay_token(sb: &Sandbox, extra: &[(&str, &str)]) -> Reply {
    let mut pairs = vec![
        ("grant_type", "client_credentials"),
        ("client_id", "3n8q9p1k2l4m5o6p7q8r9s0t1u"),
        (
            "client_secret",
            "abcdef1234567890abcdef1234567890abcdef1234567890abcdef12",
        ),
    ];
    pairs.extend_from_slice(extra);
    send("POST", &sb.azupay().token_url, &[FORM], &form(&pairs)).await
}

#[tokio::test]
async fn azupay_enable_returns_the_seed_details_with_the_secret_once() {
    let sb = sandbox().await;
    assert!(!sb.azupay_enabled("MYBUSINESSID"));
    let reply = azupay_enable(&sb).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let token_url = format!("{}/azupay/oauth2/token", sb.base_url());
    assert_eq!(
        reply.json(),
        json!({
            "oauth2ClientId": "3n8q9p1k2l4m5o6p7q8r9s0t1u",
            "oauth2ClientSecret": "abcdef1234567890abcdef1234567890abcdef1234567890abcdef12",
            "oauth2TokenUrl": token_url,
            "oauth2GrantType": "client_credentials",
            "oauth2TtlInSecs": 3600,
            "oauth2AllowedScopes": SEED_SCOPES,
        })
    );
    assert!(sb.azupay_enabled("MYBUSINESSID"));

    let again = azupay_enable(&sb).await;
    assert_eq!(again.status, 409, "{again:?}");
    assert!(
        again.json()["message"]
            .as_str()
            .unwrap()
            .contains("already enabled")
    );
    assert!(!again.body.contains("abcdef1234567890"));
    assert_eq!(sb.enable_calls("MYBUSINESSID"), 2);

    let details = send(
        "GET",
        &format!("{}/client/MYBUSINESSID/oauth2", sb.azupay().endpoint),
        &[("authorization", "SECR_MYBUSINESSID_myapikey")],
        "",
    )
    .await;
    assert_eq!(details.status, 200);
    assert_eq!(
        details.json(),
        json!({
            "oauth2ClientId": "3n8q9p1k2l4m5o6p7q8r9s0t1u",
            "oauth2TokenUrl": token_url,
            "oauth2GrantType": "client_credentials",
            "oauth2TtlInSecs": 3600,
            "oauth2AllowedScopes": SEED_SCOPES,
        })
    );
}

#[tokio::test]
async fn azupay_details_before_enable_is_404_and_keys_are_checked() {
    let config = SandboxConfig::default().azupay_client(
        AzupayClient::new("OTHER", "SECR_OTHER_key").allowed_scopes(["RestAPI/GET:balance"]),
    );
    let sb = Sandbox::start(config).await.unwrap();
    let url = format!("{}/client/MYBUSINESSID/oauth2", sb.azupay().endpoint);
    let details = send(
        "GET",
        &url,
        &[("authorization", "SECR_MYBUSINESSID_myapikey")],
        "",
    )
    .await;
    assert_eq!(details.status, 404, "{details:?}");
    assert!(details.json()["message"].is_string());

    let none = send("POST", &url, &[JSON], "{}").await;
    assert_eq!(none.status, 401);
    let wrong = send(
        "POST",
        &url,
        &[("authorization", "SECR_MYBUSINESSID_wrong"), JSON],
        "{}",
    )
    .await;
    assert_eq!(wrong.status, 401);
    let other = send(
        "POST",
        &url,
        &[("authorization", "SECR_OTHER_key"), JSON],
        "{}",
    )
    .await;
    assert_eq!(other.status, 403, "{other:?}");
    let not_json = send(
        "POST",
        &url,
        &[("authorization", "SECR_MYBUSINESSID_myapikey"), FORM],
        "a=b",
    )
    .await;
    assert_eq!(not_json.status, 400, "{not_json:?}");
    assert!(!sb.azupay_enabled("MYBUSINESSID"));
    assert_eq!(sb.enable_calls("MYBUSINESSID"), 4);

    // A client with its own scope set gets random credentials and its own scopes.
    let other_url = format!("{}/client/OTHER/oauth2", sb.azupay().endpoint);
    let enabled = send(
        "POST",
        &other_url,
        &[("authorization", "SECR_OTHER_key"), JSON],
        "{}",
    )
    .await;
    assert_eq!(enabled.status, 200);
    let body = enabled.json();
    assert_eq!(body["oauth2AllowedScopes"], json!(["RestAPI/GET:balance"]));
    assert_ne!(body["oauth2ClientId"], "3n8q9p1k2l4m5o6p7q8r9s0t1u");
    let token = send(
        "POST",
        body["oauth2TokenUrl"].as_str().unwrap(),
        &[FORM],
        &form(&[
            ("grant_type", "client_credentials"),
            ("client_id", body["oauth2ClientId"].as_str().unwrap()),
            (
                "client_secret",
                body["oauth2ClientSecret"].as_str().unwrap(),
            ),
        ]),
    )
    .await;
    assert_eq!(token.status, 200, "{token:?}");
    assert_eq!(
        claims(token.json()["access_token"].as_str().unwrap())["scope"],
        "RestAPI/GET:balance"
    );
}

#[tokio::test]
async fn azupay_tokens_follow_the_seed_and_open_the_balance() {
    let sb = sandbox().await;
    let before = azupay_token(&sb, &[]).await;
    assert_oauth_error(&before, 401, "invalid_client");

    assert_eq!(azupay_enable(&sb).await.status, 200);
    let reply = azupay_token(&sb, &[]).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let body = reply.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body.as_object().unwrap().len(), 3, "{body}");
    let token = body["access_token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("eyJ"));
    let c = claims(&token);
    assert_eq!(c["scope"], SEED_SCOPES.join(" "));
    assert_eq!(c["client_id"], "3n8q9p1k2l4m5o6p7q8r9s0t1u");
    assert_eq!(
        c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap(),
        3600
    );
    assert_eq!(
        sb.tokens_issued(Provider::Azupay, "3n8q9p1k2l4m5o6p7q8r9s0t1u"),
        1
    );

    // The seed's balance call.
    let balance = send(
        "GET",
        &sb.azupay().resource_url,
        &[
            ("authorization", &bearer(&token)),
            ("accept", "application/json"),
        ],
        "",
    )
    .await;
    assert_eq!(balance.status, 200, "{balance:?}");

    // A restricted-scope request with a scope outside the allowed list as well: that one is left
    // out of the token, as the seed says (the seed's own request is sent word for word in
    // `azupay_seed_restricted_scope_request_word_for_word`).
    let restricted = azupay_token(
        &sb,
        &[(
            "scope",
            "RestAPI/GET:balance RestAPI/GET:payment RestAPI/GET:secrets",
        )],
    )
    .await;
    assert_eq!(restricted.status, 200);
    let restricted = restricted.json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        claims(&restricted)["scope"],
        "RestAPI/GET:balance RestAPI/GET:payment"
    );

    let payment_only = azupay_token(&sb, &[("scope", "RestAPI/GET:payment")]).await;
    let payment_only = payment_only.json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let forbidden = send(
        "GET",
        &sb.azupay().resource_url,
        &[("authorization", &bearer(&payment_only))],
        "",
    )
    .await;
    assert_eq!(forbidden.status, 403);
    assert!(
        forbidden
            .header("www-authenticate")
            .unwrap()
            .contains("insufficient_scope")
    );

    let none_allowed = azupay_token(&sb, &[("scope", "RestAPI/GET:secrets")]).await;
    assert_oauth_error(&none_allowed, 400, "invalid_scope");

    // Not a token of Azupay's elsewhere, nor a made-up one here.
    let elsewhere = send(
        "GET",
        &sb.payu().resource_url,
        &[("authorization", &bearer(&token))],
        "",
    )
    .await;
    assert_eq!(elsewhere.status, 401);
    let forged = format!("{}x", &token);
    let forged = send(
        "GET",
        &sb.azupay().resource_url,
        &[("authorization", &bearer(&forged))],
        "",
    )
    .await;
    assert_eq!(forged.status, 401);
    assert!(
        forged
            .header("www-authenticate")
            .unwrap()
            .contains("error=\"invalid_token\"")
    );
    let missing = send("GET", &sb.azupay().resource_url, &[], "").await;
    assert_eq!(missing.status, 401);
    assert!(
        missing
            .header("www-authenticate")
            .unwrap()
            .starts_with("Bearer")
    );
}

#[tokio::test]
async fn azupay_token_endpoint_refuses_malformed_requests() {
    let sb = sandbox().await;
    assert_eq!(azupay_enable(&sb).await.status, 200);
    let url = sb.azupay().token_url;
    let id = AZUPAY_OAUTH2_CLIENT_ID;
    let secret = AZUPAY_OAUTH2_CLIENT_SECRET;
    let json_body =
        json!({"grant_type": "client_credentials", "client_id": id, "client_secret": secret})
            .to_string();
    assert_oauth_error(
        &send("POST", &url, &[JSON], &json_body).await,
        400,
        "invalid_request",
    );
    let good = form(&[
        ("grant_type", "client_credentials"),
        ("client_id", id),
        ("client_secret", secret),
    ]);
    assert_oauth_error(
        &send("POST", &url, &[], &good).await,
        400,
        "invalid_request",
    );
    let basic_and_body = send(
        "POST",
        &url,
        &[FORM, ("authorization", &basic(id, secret))],
        &good,
    )
    .await;
    assert_oauth_error(&basic_and_body, 400, "invalid_request");
    let basic_only = send(
        "POST",
        &url,
        &[FORM, ("authorization", &basic(id, secret))],
        "grant_type=client_credentials",
    )
    .await;
    assert_oauth_error(&basic_only, 401, "invalid_client");
    let wrong_grant = form(&[
        ("grant_type", "password"),
        ("client_id", id),
        ("client_secret", secret),
    ]);
    assert_oauth_error(
        &send("POST", &url, &[FORM], &wrong_grant).await,
        400,
        "unsupported_grant_type",
    );
    let no_grant = form(&[("client_id", id), ("client_secret", secret)]);
    assert_oauth_error(
        &send("POST", &url, &[FORM], &no_grant).await,
        400,
        "invalid_request",
    );
    let wrong_secret = form(&[
        ("grant_type", "client_credentials"),
        ("client_id", id),
        ("client_secret", "nope"),
    ]);
    assert_oauth_error(
        &send("POST", &url, &[FORM], &wrong_secret).await,
        401,
        "invalid_client",
    );
    let no_secret = form(&[("grant_type", "client_credentials"), ("client_id", id)]);
    assert_oauth_error(
        &send("POST", &url, &[FORM], &no_secret).await,
        401,
        "invalid_client",
    );
    let twice = format!("{good}&scope=a&scope=b");
    assert_oauth_error(
        &send("POST", &url, &[FORM], &twice).await,
        400,
        "invalid_request",
    );
    // The business clientId is not the OAuth client id (the seed warns about this).
    let business = form(&[
        ("grant_type", "client_credentials"),
        ("client_id", "MYBUSINESSID"),
        ("client_secret", secret),
    ]);
    assert_oauth_error(
        &send("POST", &url, &[FORM], &business).await,
        401,
        "invalid_client",
    );
    assert_eq!(sb.tokens_issued(Provider::Azupay, id), 0);
}

#[tokio::test]
async fn azupay_api_key_rotates_at_run_time() {
    let sb = sandbox().await;
    assert!(sb.set_azupay_api_key("MYBUSINESSID", "SECR_MYBUSINESSID_rotated"));
    assert!(!sb.set_azupay_api_key("NOBODY", "x"));
    let url = format!("{}/client/MYBUSINESSID/oauth2", sb.azupay().endpoint);
    let old = send(
        "POST",
        &url,
        &[("authorization", "SECR_MYBUSINESSID_myapikey"), JSON],
        "{}",
    )
    .await;
    assert_eq!(old.status, 401);
    assert_eq!(sb.azupay().api_key, "SECR_MYBUSINESSID_rotated");
    let new = send(
        "POST",
        &url,
        &[("authorization", "SECR_MYBUSINESSID_rotated"), JSON],
        "{}",
    )
    .await;
    assert_eq!(new.status, 200);
    assert!(sb.azupay_enabled("MYBUSINESSID"));
}

async fn autopay_token(sb: &Sandbox, body: &serde_json::Value) -> Reply {
    send("POST", &sb.autopay().token_url, &[JSON], &body.to_string()).await
}

fn autopay_seed_request() -> serde_json::Value {
    json!({
      "client_id":"kWmliLIrb79QfsF9r3vJE4xrKMcdcrrA",
      "client_secret":"7xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxg",
      "audience":"https://api.autopay.io",
      "grant_type":"client_credentials"
    })
}

#[tokio::test]
async fn autopay_seed_request_gets_the_seed_answer() {
    let sb = sandbox().await;
    let reply = autopay_token(&sb, &autopay_seed_request()).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let body = reply.json();
    assert_eq!(body["scope"], "customer_club");
    assert_eq!(body["expires_in"], 86400);
    assert_eq!(body["token_type"], "Bearer");
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(claims(token)["aud"], "https://api.autopay.io");
    assert_eq!(claims(token)["scope"], "customer_club");
    let resource = send(
        "GET",
        &sb.autopay().resource_url,
        &[("authorization", &bearer(token))],
        "",
    )
    .await;
    assert_eq!(resource.status, 200, "{resource:?}");
    assert_eq!(resource.json()["client_id"], AUTOPAY_CLIENT_ID);
    assert_eq!(sb.tokens_issued(Provider::Autopay, AUTOPAY_CLIENT_ID), 1);
}

#[tokio::test]
async fn autopay_errors() {
    let sb = sandbox().await;
    let mut bad_secret = autopay_seed_request();
    bad_secret["client_secret"] = json!("wrong");
    let reply = autopay_token(&sb, &bad_secret).await;
    assert_eq!(reply.status, 401);
    assert_eq!(
        reply.json(),
        json!({"error":"access_denied","error_description":"Unauthorized"})
    );
    let mut bad_id = autopay_seed_request();
    bad_id["client_id"] = json!("someone");
    assert_eq!(
        autopay_token(&sb, &bad_id).await.json()["error"],
        "access_denied"
    );

    // An unknown audience: Auth0's 403 (the seed is silent; see the crate docs).
    for wrong in [
        "https://api.example.com",
        "https://api.autopay.io/",
        "api.autopay.io",
    ] {
        let mut audience = autopay_seed_request();
        audience["audience"] = json!(wrong);
        let reply = autopay_token(&sb, &audience).await;
        assert_eq!(reply.status, 403, "audience {wrong:?}: {reply:?}");
        assert_eq!(reply.header("content-type"), Some("application/json"));
        assert_eq!(
            reply.json(),
            json!({
                "error": "access_denied",
                "error_description": format!("Service not found: {wrong}"),
            }),
            "audience {wrong:?}"
        );
    }

    let mut grant = autopay_seed_request();
    grant["grant_type"] = json!("password");
    assert_oauth_error(
        &autopay_token(&sb, &grant).await,
        400,
        "unsupported_grant_type",
    );

    for field in ["client_id", "client_secret", "audience", "grant_type"] {
        let mut missing = autopay_seed_request();
        missing.as_object_mut().unwrap().remove(field);
        let reply = autopay_token(&sb, &missing).await;
        assert_oauth_error(&reply, 400, "invalid_request");
        assert!(
            reply.json()["error_description"]
                .as_str()
                .unwrap()
                .contains(field)
        );
    }

    // A form body where JSON is required, and JSON without its content type.
    let as_form = form(&[
        ("client_id", AUTOPAY_CLIENT_ID),
        ("client_secret", AUTOPAY_CLIENT_SECRET),
        ("audience", AUTOPAY_AUDIENCE),
        ("grant_type", "client_credentials"),
    ]);
    assert_oauth_error(
        &send("POST", &sb.autopay().token_url, &[FORM], &as_form).await,
        400,
        "invalid_request",
    );
    let untyped = send(
        "POST",
        &sb.autopay().token_url,
        &[],
        &autopay_seed_request().to_string(),
    )
    .await;
    assert_oauth_error(&untyped, 400, "invalid_request");
    let broken = send("POST", &sb.autopay().token_url, &[JSON], "{\"client_id\":").await;
    assert_oauth_error(&broken, 400, "invalid_request");
    let with_basic = send(
        "POST",
        &sb.autopay().token_url,
        &[
            JSON,
            (
                "authorization",
                &basic(AUTOPAY_CLIENT_ID, AUTOPAY_CLIENT_SECRET),
            ),
        ],
        &autopay_seed_request().to_string(),
    )
    .await;
    assert_oauth_error(&with_basic, 400, "invalid_request");
    assert_eq!(sb.tokens_issued(Provider::Autopay, AUTOPAY_CLIENT_ID), 0);
}

fn payu_form(scope: &str) -> String {
    form(&[
        ("client_id", PAYU_CLIENT_ID),
        ("client_secret", PAYU_CLIENT_SECRET),
        ("grant_type", "client_credentials"),
        ("scope", scope),
    ])
}

#[tokio::test]
async fn payu_seed_request_gets_the_seed_answer() {
    let sb = sandbox().await;
    let reply = send(
        "POST",
        &sb.payu().token_url,
        &[FORM],
        &payu_form("read_payment_links"),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let body = reply.json();
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(token.len(), 64);
    assert!(token.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 7200);
    assert_eq!(body["scope"], "read_payment_links");
    let created_at = body["created_at"].as_u64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(created_at.abs_diff(now) <= 5);
    let resource = send(
        "GET",
        &sb.payu().resource_url,
        &[("authorization", &bearer(token))],
        "",
    )
    .await;
    assert_eq!(resource.status, 200);
    assert_eq!(resource.json()["scope"], "read_payment_links");

    let three = send(
        "POST",
        &sb.payu().token_url,
        &[FORM],
        &payu_form("create_payment_links update_payment_links read_payment_links"),
    )
    .await;
    assert_eq!(three.status, 200);
    assert_eq!(
        three.json()["scope"],
        "create_payment_links update_payment_links read_payment_links"
    );
}

#[tokio::test]
async fn payu_documented_errors() {
    let config = SandboxConfig::default().payu_client(
        Client::new("no-cc", "pw")
            .scopes(["read_payment_links"])
            .client_credentials_allowed(false),
    );
    let sb = Sandbox::start(config).await.unwrap();
    let url = sb.payu().token_url;
    let invalid_client = json!({
        "error": "invalid_client",
        "error_description": "Client authentication failed due to unknown client, no client authentication included, or unsupported authentication method."
    });
    let invalid_scope = json!({
        "error": "invalid_scope",
        "error_description": "The requested scope is invalid, unknown, or malformed."
    });
    let wrong = form(&[
        ("client_id", PAYU_CLIENT_ID),
        ("client_secret", "x"),
        ("grant_type", "client_credentials"),
        ("scope", "read_payment_links"),
    ]);
    let reply = send("POST", &url, &[FORM], &wrong).await;
    assert_eq!((reply.status, reply.json()), (401, invalid_client.clone()));
    let no_auth = form(&[
        ("grant_type", "client_credentials"),
        ("scope", "read_payment_links"),
    ]);
    assert_eq!(
        send("POST", &url, &[FORM], &no_auth).await.json(),
        invalid_client
    );
    let basic_auth = send(
        "POST",
        &url,
        &[
            FORM,
            ("authorization", &basic(PAYU_CLIENT_ID, PAYU_CLIENT_SECRET)),
        ],
        &no_auth,
    )
    .await;
    assert_eq!(
        (basic_auth.status, basic_auth.json()),
        (401, invalid_client.clone())
    );
    let both = send(
        "POST",
        &url,
        &[
            FORM,
            ("authorization", &basic(PAYU_CLIENT_ID, PAYU_CLIENT_SECRET)),
        ],
        &payu_form("read_payment_links"),
    )
    .await;
    assert_oauth_error(&both, 400, "invalid_request");

    for scope in [
        "",
        "unknown_scope",
        "create_payment_links update_payment_links read_payment_links send_sign_in_otp",
    ] {
        let reply = send("POST", &url, &[FORM], &payu_form(scope)).await;
        assert_eq!(
            (reply.status, reply.json()),
            (400, invalid_scope.clone()),
            "scope {scope:?}"
        );
    }
    let no_scope = form(&[
        ("client_id", PAYU_CLIENT_ID),
        ("client_secret", PAYU_CLIENT_SECRET),
        ("grant_type", "client_credentials"),
    ]);
    assert_eq!(
        send("POST", &url, &[FORM], &no_scope).await.json(),
        invalid_scope
    );

    let unauthorized = form(&[
        ("client_id", "no-cc"),
        ("client_secret", "pw"),
        ("grant_type", "client_credentials"),
        ("scope", "read_payment_links"),
    ]);
    let reply = send("POST", &url, &[FORM], &unauthorized).await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.json(),
        json!({
            "error": "unauthorized_client",
            "error_description": "The authenticated client is not authorized to use this authorization grant type."
        })
    );

    let grant = form(&[
        ("client_id", PAYU_CLIENT_ID),
        ("client_secret", PAYU_CLIENT_SECRET),
        ("grant_type", "password"),
        ("scope", "read_payment_links"),
    ]);
    assert_oauth_error(
        &send("POST", &url, &[FORM], &grant).await,
        400,
        "unsupported_grant_type",
    );
    let as_json = json!({"client_id": PAYU_CLIENT_ID, "client_secret": PAYU_CLIENT_SECRET, "grant_type": "client_credentials", "scope": "read_payment_links"});
    assert_oauth_error(
        &send("POST", &url, &[JSON], &as_json.to_string()).await,
        400,
        "invalid_request",
    );

    sb.fail_next(
        Provider::Payu,
        1,
        Fault::json(http::StatusCode::INTERNAL_SERVER_ERROR, PAYU_SERVER_ERROR),
    );
    let reply = send("POST", &url, &[FORM], &payu_form("read_payment_links")).await;
    assert_eq!(reply.status, 500);
    assert_eq!(
        reply.json(),
        json!({
            "error": "server_error",
            "error_description": "The authorization server encountered an unexpected condition that prevented it from fulfilling the request."
        })
    );
    assert_eq!(sb.tokens_issued(Provider::Payu, PAYU_CLIENT_ID), 0);
}

#[tokio::test]
async fn payu_rate_limit_answers_429_with_retry_after_in_the_body() {
    let config = SandboxConfig::default().payu_rate_limit(2, std::time::Duration::from_secs(60));
    let sb = Sandbox::start(config).await.unwrap();
    let url = sb.payu().token_url;
    for _ in 0..2 {
        assert_eq!(
            send("POST", &url, &[FORM], &payu_form("read_payment_links"))
                .await
                .status,
            200
        );
    }
    let limited = send("POST", &url, &[FORM], &payu_form("read_payment_links")).await;
    assert_eq!(limited.status, 429);
    let body = limited.json();
    assert_eq!(body["error"], "rate_limit_exceeded");
    assert_eq!(
        body["error_description"],
        "Too many requests. Please retry after some time."
    );
    let retry_after = body["retry_after"].as_u64().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    // A new window opens once the old one has passed on the sandbox clock.
    sb.advance(std::time::Duration::from_secs(61));
    assert_eq!(
        send("POST", &url, &[FORM], &payu_form("read_payment_links"))
            .await
            .status,
        200
    );
    sb.set_payu_rate_limit(None);
    for _ in 0..3 {
        assert_eq!(
            send("POST", &url, &[FORM], &payu_form("read_payment_links"))
                .await
                .status,
            200
        );
    }
}

const PYNG_SEED_BODY: &str = "grant_type=client_credentials&scope=billing:customers:invite%20billing:customers:read%20billing:batches:submit%20billing:batches:read";

#[tokio::test]
async fn pyng_seed_request_gets_the_seed_answer() {
    let sb = sandbox().await;
    let reply = send(
        "POST",
        &sb.pyng().token_url,
        &[
            ("authorization", "Basic czZCaGRSa3F0MzpnWDFmQmF0M2JW"),
            FORM,
        ],
        PYNG_SEED_BODY,
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        reply.header("content-type"),
        Some("application/json;charset=UTF-8")
    );
    let body = reply.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert_eq!(
        body["scope"],
        "billing:customers:invite billing:customers:read billing:batches:submit billing:batches:read"
    );
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(
        send(
            "GET",
            &sb.pyng().resource_url,
            &[("authorization", &bearer(token))],
            ""
        )
        .await
        .status,
        200
    );
    assert_eq!(
        send(
            "GET",
            &sb.afterpay().resource_url,
            &[("authorization", &bearer(token))],
            ""
        )
        .await
        .status,
        401
    );
}

#[tokio::test]
async fn pyng_errors() {
    let sb = sandbox().await;
    let url = sb.pyng().token_url;
    let seed_error =
        json!({"error": "invalid_client", "error_description": "Client authentication failed"});
    let wrong = send(
        "POST",
        &url,
        &[("authorization", &basic(PYNG_CLIENT_ID, "nope")), FORM],
        PYNG_SEED_BODY,
    )
    .await;
    assert_eq!((wrong.status, wrong.json()), (401, seed_error.clone()));
    assert_eq!(
        wrong.header("content-type"),
        Some("application/json;charset=UTF-8")
    );
    assert!(
        wrong
            .header("www-authenticate")
            .unwrap()
            .starts_with("Basic")
    );
    let missing = send("POST", &url, &[FORM], PYNG_SEED_BODY).await;
    assert_eq!((missing.status, missing.json()), (401, seed_error.clone()));
    let in_body =
        format!("{PYNG_SEED_BODY}&client_id={PYNG_CLIENT_ID}&client_secret={PYNG_CLIENT_SECRET}");
    assert_eq!(
        send("POST", &url, &[FORM], &in_body).await.json(),
        seed_error
    );
    let both = send(
        "POST",
        &url,
        &[
            ("authorization", &basic(PYNG_CLIENT_ID, PYNG_CLIENT_SECRET)),
            FORM,
        ],
        &in_body,
    )
    .await;
    assert_oauth_error(&both, 400, "invalid_request");

    let auth = basic(PYNG_CLIENT_ID, PYNG_CLIENT_SECRET);
    let no_scope = send(
        "POST",
        &url,
        &[("authorization", &auth), FORM],
        "grant_type=client_credentials",
    )
    .await;
    assert_oauth_error(&no_scope, 400, "invalid_request");
    let bad_scope = send(
        "POST",
        &url,
        &[("authorization", &auth), FORM],
        "grant_type=client_credentials&scope=billing:admin",
    )
    .await;
    assert_oauth_error(&bad_scope, 400, "invalid_scope");
    let grant = send(
        "POST",
        &url,
        &[("authorization", &auth), FORM],
        "grant_type=password&scope=billing:batches:read",
    )
    .await;
    assert_oauth_error(&grant, 400, "unsupported_grant_type");
    let as_json = send(
        "POST",
        &url,
        &[("authorization", &auth), JSON],
        r#"{"grant_type":"client_credentials","scope":"billing:batches:read"}"#,
    )
    .await;
    assert_oauth_error(&as_json, 400, "invalid_request");
    let one = send(
        "POST",
        &url,
        &[("authorization", &auth), FORM],
        "grant_type=client_credentials&scope=billing:batches:read",
    )
    .await;
    assert_eq!(one.json()["scope"], "billing:batches:read");
}

#[tokio::test]
async fn afterpay_seed_requests_get_the_seed_answer() {
    let sb = sandbox().await;
    let url = sb.afterpay().token_url;
    for authorization in [
        "Basic YWZ0ZXJwYXk6bWVyY2hhbnRBQkM=",
        "Basic Z29tbzpwYXNzd29yZDEyMw==",
    ] {
        let reply = send(
            "POST",
            &url,
            &[
                FORM,
                ("accept", "application/json"),
                ("authorization", authorization),
            ],
            "grant_type=client_credentials",
        )
        .await;
        assert_eq!(reply.status, 200, "{reply:?}");
        let body = reply.json();
        assert_eq!(body["expires_in"], 3600);
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body.as_object().unwrap().len(), 3);
        let token = body["access_token"].as_str().unwrap();
        let c = claims(token);
        assert_eq!(
            c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap(),
            3600
        );
        assert_eq!(
            send(
                "GET",
                &sb.afterpay().resource_url,
                &[("authorization", &bearer(token))],
                ""
            )
            .await
            .status,
            200
        );
    }
    assert_eq!(sb.tokens_issued(Provider::Afterpay, "afterpay"), 1);
    assert_eq!(sb.tokens_issued(Provider::Afterpay, "gomo"), 1);
}

#[tokio::test]
async fn afterpay_errors() {
    let sb = sandbox().await;
    let url = sb.afterpay().token_url;
    let wrong = send(
        "POST",
        &url,
        &[FORM, ("authorization", &basic("afterpay", "wrong"))],
        "grant_type=client_credentials",
    )
    .await;
    assert_oauth_error(&wrong, 401, "invalid_client");
    assert!(
        wrong
            .header("www-authenticate")
            .unwrap()
            .starts_with("Basic")
    );
    assert_oauth_error(
        &send("POST", &url, &[FORM], "grant_type=client_credentials").await,
        401,
        "invalid_client",
    );
    let in_body = "grant_type=client_credentials&client_id=afterpay&client_secret=merchantABC";
    assert_oauth_error(
        &send("POST", &url, &[FORM], in_body).await,
        401,
        "invalid_client",
    );
    let auth = basic("afterpay", "merchantABC");
    assert_oauth_error(
        &send("POST", &url, &[FORM, ("authorization", &auth)], in_body).await,
        400,
        "invalid_request",
    );
    assert_oauth_error(
        &send(
            "POST",
            &url,
            &[FORM, ("authorization", &auth)],
            "grant_type=password",
        )
        .await,
        400,
        "unsupported_grant_type",
    );
    assert_oauth_error(
        &send("POST", &url, &[FORM, ("authorization", &auth)], "").await,
        400,
        "invalid_request",
    );
    assert_oauth_error(
        &send(
            "POST",
            &url,
            &[JSON, ("authorization", &auth)],
            r#"{"grant_type":"client_credentials"}"#,
        )
        .await,
        400,
        "invalid_request",
    );
    assert_oauth_error(
        &send(
            "POST",
            &url,
            &[FORM, ("authorization", "Bearer abc")],
            "grant_type=client_credentials",
        )
        .await,
        401,
        "invalid_client",
    );
    assert_eq!(sb.tokens_issued(Provider::Afterpay, "afterpay"), 0);
}

/// The seed's restricted-scope request exactly as its curl sends it: each `--data-urlencode`
/// part percent-encoded and joined with `&`, under the seed's `Content-Type`.
#[tokio::test]
async fn azupay_seed_restricted_scope_request_word_for_word() {
    let sb = sandbox().await;
    assert_eq!(azupay_enable(&sb).await.status, 200);
    let body = "grant_type=client_credentials\
        &client_id=3n8q9p1k2l4m5o6p7q8r9s0t1u\
        &client_secret=abcdef1234567890abcdef1234567890abcdef1234567890abcdef12\
        &scope=RestAPI%2FGET%3Abalance%20RestAPI%2FGET%3Apayment";
    let reply = send(
        "POST",
        &sb.azupay().token_url,
        &[("Content-Type", "application/x-www-form-urlencoded")],
        body,
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let answer = reply.json();
    assert_eq!(
        answer.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["access_token", "expires_in", "token_type"],
        "{answer}"
    );
    assert_eq!(answer["token_type"], "Bearer");
    assert_eq!(answer["expires_in"], 3600);
    let token = answer["access_token"].as_str().unwrap();
    assert_eq!(
        claims(token)["scope"],
        "RestAPI/GET:balance RestAPI/GET:payment"
    );
    // The seed's balance call works with it.
    let balance = send(
        "GET",
        &sb.azupay().resource_url,
        &[
            ("authorization", &bearer(token)),
            ("accept", "application/json"),
        ],
        "",
    )
    .await;
    assert_eq!(balance.status, 200, "{balance:?}");
    assert_eq!(
        sb.tokens_issued(Provider::Azupay, AZUPAY_OAUTH2_CLIENT_ID),
        1
    );
}

/// `Bearer SECR_…` is not the API key (it is sent as-is, without a scheme): an unknown key.
#[tokio::test]
async fn azupay_api_key_with_a_bearer_scheme_is_an_unknown_key() {
    let sb = sandbox().await;
    let url = format!("{}/client/MYBUSINESSID/oauth2", sb.azupay().endpoint);
    let bearer_key = bearer(AZUPAY_API_KEY);
    let unauthorized = json!({"message": "Unauthorized"});

    let enable = send("POST", &url, &[("authorization", &bearer_key), JSON], "{}").await;
    assert_eq!((enable.status, enable.json()), (401, unauthorized.clone()));
    assert!(!sb.azupay_enabled(AZUPAY_CLIENT_ID));
    assert_eq!(sb.enable_calls(AZUPAY_CLIENT_ID), 1, "refused calls count");

    // Not for reading the details either, before or after a proper enable.
    let details = send("GET", &url, &[("authorization", &bearer_key)], "").await;
    assert_eq!(
        (details.status, details.json()),
        (401, unauthorized.clone())
    );
    assert_eq!(azupay_enable(&sb).await.status, 200);
    let details = send("GET", &url, &[("authorization", &bearer_key)], "").await;
    assert_eq!((details.status, details.json()), (401, unauthorized));
    let again = send("POST", &url, &[("authorization", &bearer_key), JSON], "{}").await;
    assert_eq!(again.status, 401, "not 409: the key is unknown");
}

/// A client configured `.enabled(true)` is as after a real enable: a second enable is 409 and
/// never shows the secret, the details are there, and its credentials get tokens.
#[tokio::test]
async fn azupay_client_configured_enabled_refuses_enable_and_has_details() {
    let config = SandboxConfig::default().azupay_client(
        AzupayClient::new("PREENABLED", "SECR_PREENABLED_key")
            .oauth2_credentials("preenabledoauthclient", "preenabled-secret")
            .enabled(true),
    );
    let sb = Sandbox::start(config).await.unwrap();
    assert!(sb.azupay_enabled("PREENABLED"));
    assert!(!sb.azupay_enabled(AZUPAY_CLIENT_ID));
    let url = format!("{}/client/PREENABLED/oauth2", sb.azupay().endpoint);
    let key = ("authorization", "SECR_PREENABLED_key");

    let enable = send("POST", &url, &[key, JSON], "{}").await;
    assert_eq!(enable.status, 409, "{enable:?}");
    assert!(
        enable.json()["message"]
            .as_str()
            .unwrap()
            .contains("already enabled")
    );
    assert!(!enable.body.contains("preenabled-secret"));
    assert_eq!(sb.enable_calls("PREENABLED"), 1);

    let details = send("GET", &url, &[key], "").await;
    assert_eq!(details.status, 200, "{details:?}");
    assert_eq!(
        details.json(),
        json!({
            "oauth2ClientId": "preenabledoauthclient",
            "oauth2TokenUrl": sb.azupay().token_url,
            "oauth2GrantType": "client_credentials",
            "oauth2TtlInSecs": 3600,
            "oauth2AllowedScopes": SEED_SCOPES,
        })
    );

    let token = send(
        "POST",
        &sb.azupay().token_url,
        &[FORM],
        &form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "preenabledoauthclient"),
            ("client_secret", "preenabled-secret"),
        ]),
    )
    .await;
    assert_eq!(token.status, 200, "{token:?}");
    assert_eq!(
        sb.tokens_issued(Provider::Azupay, "preenabledoauthclient"),
        1
    );
}

/// Afterpay ignores form parameters other than `grant_type` (RFC 6749 §3.2), whatever their
/// order; the token carries the client's scopes, not a requested one.
#[tokio::test]
async fn afterpay_ignores_extra_form_parameters() {
    let sb = sandbox().await;
    let auth = basic(AFTERPAY_CLIENT_ID, AFTERPAY_CLIENT_SECRET);
    for body in [
        "scope=x&grant_type=client_credentials",
        "grant_type=client_credentials&scope=ivr%2Fv1%2FactionStart&audience=https%3A%2F%2Fexample",
        "foo=bar&grant_type=client_credentials&empty=",
    ] {
        let reply = send(
            "POST",
            &sb.afterpay().token_url,
            &[FORM, ("authorization", &auth)],
            body,
        )
        .await;
        assert_eq!(reply.status, 200, "{body}: {reply:?}");
        let answer = reply.json();
        assert_eq!(answer.as_object().unwrap().len(), 3, "{answer}");
        let token = answer["access_token"].as_str().unwrap();
        assert_eq!(claims(token)["scope"], AFTERPAY_SCOPES.join(" "), "{body}");
        let resource = send(
            "GET",
            &sb.afterpay().resource_url,
            &[("authorization", &bearer(token))],
            "",
        )
        .await;
        assert_eq!(resource.status, 200, "{body}: {resource:?}");
    }
    assert_eq!(sb.tokens_issued(Provider::Afterpay, AFTERPAY_CLIENT_ID), 3);
}

/// A token of `provider`, requested the way its seed shows (Azupay: enabled first if needed).
async fn seed_token(sb: &Sandbox, provider: Provider) -> String {
    let reply = match provider {
        Provider::Azupay => {
            if !sb.azupay_enabled(AZUPAY_CLIENT_ID) {
                assert_eq!(azupay_enable(sb).await.status, 200);
            }
            azupay_token(sb, &[]).await
        }
        Provider::Autopay => autopay_token(sb, &autopay_seed_request()).await,
        Provider::Payu => {
            send(
                "POST",
                &sb.payu().token_url,
                &[FORM],
                &payu_form("read_payment_links"),
            )
            .await
        }
        Provider::Pyng => {
            send(
                "POST",
                &sb.pyng().token_url,
                &[
                    ("authorization", "Basic czZCaGRSa3F0MzpnWDFmQmF0M2JW"),
                    FORM,
                ],
                PYNG_SEED_BODY,
            )
            .await
        }
        Provider::Afterpay => {
            send(
                "POST",
                &sb.afterpay().token_url,
                &[
                    FORM,
                    ("authorization", "Basic YWZ0ZXJwYXk6bWVyY2hhbnRBQkM="),
                ],
                "grant_type=client_credentials",
            )
            .await
        }
    };
    assert_eq!(reply.status, 200, "{provider}: {reply:?}");
    reply.json()["access_token"].as_str().unwrap().to_owned()
}

/// The protected endpoint of `provider` (Azupay: the balance).
fn resource_url(sb: &Sandbox, provider: Provider) -> String {
    match provider {
        Provider::Azupay => sb.azupay().resource_url,
        Provider::Autopay => sb.autopay().resource_url,
        Provider::Payu => sb.payu().resource_url,
        Provider::Pyng => sb.pyng().resource_url,
        Provider::Afterpay => sb.afterpay().resource_url,
    }
}

/// What a protected endpoint must answer.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// 200 and the endpoint's answer.
    Ok,
    /// 401 `invalid_request` and a bare `Bearer realm` challenge: no usable bearer token sent.
    NoToken,
    /// 401 `invalid_token` and a challenge with `error="invalid_token"`; the description
    /// contains this.
    InvalidToken(&'static str),
}

#[track_caller]
fn check_protected(provider: Provider, case: &str, reply: &Reply, expect: Expect) {
    let at = format!("{provider}, {case}: {reply:?}");
    assert_eq!(
        reply.header("content-type"),
        Some("application/json"),
        "{at}"
    );
    let realm = format!("Bearer realm=\"{provider}\"");
    match expect {
        Expect::Ok => {
            assert_eq!(reply.status, 200, "{at}");
            assert_eq!(reply.header("www-authenticate"), None, "{at}");
            if provider == Provider::Azupay {
                assert_eq!(reply.json()["balance"]["currency"], "AUD", "{at}");
            } else {
                assert_eq!(reply.json()["provider"], provider.as_str(), "{at}");
            }
        }
        Expect::NoToken => {
            assert_eq!(reply.status, 401, "{at}");
            assert_eq!(
                reply.header("www-authenticate"),
                Some(realm.as_str()),
                "{at}"
            );
            assert_oauth_error(reply, 401, "invalid_request");
        }
        Expect::InvalidToken(why) => {
            assert_eq!(reply.status, 401, "{at}");
            let challenge = reply.header("www-authenticate").unwrap_or_default();
            assert!(
                challenge.starts_with(&format!("{realm}, error=\"invalid_token\"")),
                "{at}"
            );
            assert_oauth_error(reply, 401, "invalid_token");
            let description = reply.json()["error_description"]
                .as_str()
                .unwrap()
                .to_owned();
            assert!(description.contains(why), "{at}");
            assert!(
                challenge.contains(&format!("error_description=\"{description}\"")),
                "{at}"
            );
        }
    }
}

/// Every protected endpoint takes only its own provider's good bearer tokens.
#[tokio::test]
async fn protected_endpoints_refuse_everything_but_a_good_token_of_their_provider() {
    for (i, provider) in Provider::ALL.into_iter().enumerate() {
        let sb = sandbox().await;
        let url = resource_url(&sb, provider);
        let token = seed_token(&sb, provider).await;
        let other = Provider::ALL[(i + 1) % Provider::ALL.len()];
        let other_token = seed_token(&sb, other).await;
        // The other token is good where it belongs, so only the provider can be the reason.
        let at_home = send(
            "GET",
            &resource_url(&sb, other),
            &[("authorization", &bearer(&other_token))],
            "",
        )
        .await;
        check_protected(other, "its own token", &at_home, Expect::Ok);

        let own_credentials = match provider {
            Provider::Azupay => basic(AZUPAY_OAUTH2_CLIENT_ID, AZUPAY_OAUTH2_CLIENT_SECRET),
            Provider::Autopay => basic(AUTOPAY_CLIENT_ID, AUTOPAY_CLIENT_SECRET),
            Provider::Payu => basic(PAYU_CLIENT_ID, PAYU_CLIENT_SECRET),
            Provider::Pyng => basic(PYNG_CLIENT_ID, PYNG_CLIENT_SECRET),
            Provider::Afterpay => basic(AFTERPAY_CLIENT_ID, AFTERPAY_CLIENT_SECRET),
        };
        let cases: [(&str, Option<String>, Expect); 6] = [
            ("a valid token", Some(bearer(&token)), Expect::Ok),
            ("no Authorization", None, Expect::NoToken),
            ("a Basic header", Some(own_credentials), Expect::NoToken),
            (
                "the token without a scheme",
                Some(token.clone()),
                Expect::NoToken,
            ),
            (
                "a forged token",
                Some(bearer(&forge(&token))),
                Expect::InvalidToken(""),
            ),
            (
                "another provider's token",
                Some(bearer(&other_token)),
                Expect::InvalidToken(""),
            ),
        ];
        for (case, authorization, expect) in cases {
            let headers: Vec<(&str, &str)> = authorization
                .as_deref()
                .map(|a| vec![("authorization", a)])
                .unwrap_or_default();
            let reply = send("GET", &url, &headers, "").await;
            check_protected(provider, case, &reply, expect);
        }

        // Expired on the sandbox clock: refused, while a token issued afterwards works.
        sb.advance(default_lifetime(provider));
        let expired = send("GET", &url, &[("authorization", &bearer(&token))], "").await;
        check_protected(
            provider,
            "an expired token",
            &expired,
            Expect::InvalidToken("expired"),
        );
        let fresh = seed_token(&sb, provider).await;
        let reply = send("GET", &url, &[("authorization", &bearer(&fresh))], "").await;
        check_protected(
            provider,
            "a token issued after the advance",
            &reply,
            Expect::Ok,
        );

        // Revoked.
        sb.revoke_all_tokens();
        let revoked = send("GET", &url, &[("authorization", &bearer(&fresh))], "").await;
        check_protected(
            provider,
            "a revoked token",
            &revoked,
            Expect::InvalidToken("revoked"),
        );
    }
}

/// A correct token request of `provider` without its `Content-Type`: the URL, the other headers
/// and the body.
async fn token_request_parts(
    sb: &Sandbox,
    provider: Provider,
) -> (String, Vec<(&'static str, String)>, String) {
    match provider {
        Provider::Azupay => {
            assert_eq!(azupay_enable(sb).await.status, 200);
            let body = form(&[
                ("grant_type", "client_credentials"),
                ("client_id", AZUPAY_OAUTH2_CLIENT_ID),
                ("client_secret", AZUPAY_OAUTH2_CLIENT_SECRET),
            ]);
            (sb.azupay().token_url, Vec::new(), body)
        }
        Provider::Autopay => (
            sb.autopay().token_url,
            Vec::new(),
            autopay_seed_request().to_string(),
        ),
        Provider::Payu => (
            sb.payu().token_url,
            Vec::new(),
            payu_form("read_payment_links"),
        ),
        Provider::Pyng => (
            sb.pyng().token_url,
            vec![("authorization", basic(PYNG_CLIENT_ID, PYNG_CLIENT_SECRET))],
            PYNG_SEED_BODY.to_owned(),
        ),
        Provider::Afterpay => (
            sb.afterpay().token_url,
            vec![(
                "authorization",
                basic(AFTERPAY_CLIENT_ID, AFTERPAY_CLIENT_SECRET),
            )],
            "grant_type=client_credentials".to_owned(),
        ),
    }
}

/// A correct body is refused under a wrong or missing `Content-Type` (400 `invalid_request`,
/// RFC 6749 §5.2, in the provider's answer type) and accepted with media-type parameters.
#[tokio::test]
async fn token_endpoints_judge_the_content_type_by_its_media_type() {
    const FORM_TYPE: &str = "application/x-www-form-urlencoded";
    for provider in Provider::ALL {
        let sb = sandbox().await;
        let (url, headers, body) = token_request_parts(&sb, provider).await;
        let (wrong, accepted): (&[Option<&str>], &[&str]) = if provider == Provider::Autopay {
            (
                &[None, Some(FORM_TYPE), Some("text/plain")],
                &[
                    "application/json",
                    "application/json; charset=utf-8",
                    "application/json;charset=UTF-8",
                ],
            )
        } else {
            (
                &[None, Some("application/json"), Some("text/plain")],
                &[
                    FORM_TYPE,
                    "application/x-www-form-urlencoded; charset=UTF-8",
                    "application/x-www-form-urlencoded;charset=utf-8",
                ],
            )
        };
        let answer_type = if provider == Provider::Pyng {
            "application/json;charset=UTF-8"
        } else {
            "application/json"
        };
        let send_as = |content_type: Option<&'static str>| {
            let mut all: Vec<(&str, &str)> =
                headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            all.extend(content_type.map(|t| ("content-type", t)));
            let url = url.clone();
            let body = body.clone();
            async move { send("POST", &url, &all, &body).await }
        };
        for content_type in wrong {
            let reply = send_as(*content_type).await;
            let at = format!("{provider}, Content-Type {content_type:?}: {reply:?}");
            assert_oauth_error(&reply, 400, "invalid_request");
            assert_eq!(reply.header("content-type"), Some(answer_type), "{at}");
            assert!(
                reply.json()["error_description"]
                    .as_str()
                    .unwrap()
                    .contains("Content-Type"),
                "{at}"
            );
        }
        let client_id = match provider {
            Provider::Azupay => AZUPAY_OAUTH2_CLIENT_ID,
            Provider::Autopay => AUTOPAY_CLIENT_ID,
            Provider::Payu => PAYU_CLIENT_ID,
            Provider::Pyng => PYNG_CLIENT_ID,
            Provider::Afterpay => AFTERPAY_CLIENT_ID,
        };
        assert_eq!(sb.tokens_issued(provider, client_id), 0, "{provider}");
        for content_type in accepted {
            let reply = send_as(Some(content_type)).await;
            assert_eq!(reply.status, 200, "{provider}, {content_type}: {reply:?}");
            assert!(reply.json()["access_token"].is_string());
        }
        assert_eq!(
            sb.tokens_issued(provider, client_id),
            accepted.len() as u64,
            "{provider}"
        );
    }
}
