//! The /metrics, /healthz and /readyz endpoints.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use clientcreds_operator::server::{Health, serve};
use clientcreds_operator::telemetry::Metrics;
use http_body_util::Full;

async fn get(url: String) -> (u16, String) {
    let http = clientcreds::HttpClient::new();
    let request = http::Request::get(url)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = http.send(request).await.unwrap();
    (
        response.status().as_u16(),
        String::from_utf8(response.into_body().to_vec()).unwrap(),
    )
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let metrics = Arc::new(Metrics::default());
    let ready = Arc::new(AtomicBool::new(false));
    let health = Health {
        metrics: metrics.clone(),
        ready: ready.clone(),
    };
    let (addr, task) = serve("127.0.0.1:0".parse().unwrap(), health).await.unwrap();
    let base = format!("http://{addr}");

    assert_eq!(get(format!("{base}/healthz")).await.0, 200);
    assert_eq!(get(format!("{base}/readyz")).await.0, 503);
    ready.store(true, Ordering::Relaxed);
    assert_eq!(get(format!("{base}/readyz")).await.0, 200);

    metrics.refresh("payu", "success");
    metrics.refresh("payu", "failure");
    metrics.enable_call("success");
    metrics.expiry("app", "payu-token", 1_800_000_000);
    metrics.reconcile_duration(0.02);
    let (status, text) = get(format!("{base}/metrics")).await;
    assert_eq!(status, 200);
    for line in [
        r#"clientcreds_operator_token_refreshes_total{provider="payu",result="success"} 1"#,
        r#"clientcreds_operator_token_refreshes_total{provider="payu",result="failure"} 1"#,
        r#"clientcreds_operator_azupay_enable_calls_total{result="success"} 1"#,
        r#"clientcreds_operator_token_expiry_timestamp_seconds{namespace="app",secret="payu-token"} 1800000000"#,
        "clientcreds_operator_reconcile_duration_seconds_count 1",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    task.abort();
}
