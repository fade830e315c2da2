//! The accept loop: one HTTP/1.1 connection task per client, each request recorded before it is
//! routed, and a response marked [`CloseConnection`] turned into a dropped connection.

use std::fmt;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::request::Parts;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

use crate::Provider;
use crate::control::{CloseConnection, RecordedRequest};
use crate::state::Shared;

/// The largest request body the sandbox reads.
const MAX_BODY: usize = 1 << 20;

/// The error that makes hyper close a connection without answering (a scripted fault).
#[derive(Debug)]
struct ConnectionClosedByFault;

impl fmt::Display for ConnectionClosedByFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection closed by a scripted sandbox fault")
    }
}

impl std::error::Error for ConnectionClosedByFault {}

pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => return,
        };
        let Ok((stream, _)) = accepted else {
            // Out of file descriptors and the like: try again shortly.
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            continue;
        };
        let router = router.clone();
        let shared = shared.clone();
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                handle(router.clone(), shared.clone(), request)
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = connection => {}
                _ = shutdown.changed() => {}
            }
        });
    }
}

async fn handle(
    router: Router,
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response, ConnectionClosedByFault> {
    let (parts, body) = request.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return Ok((
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body too large or broken",
            )
                .into_response());
        }
    };
    if !parts.uri.path().starts_with("/_sandbox") {
        record(&shared, &parts, &body);
    }
    let request = Request::from_parts(parts, Body::from(body));
    let response = match router.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    if response.extensions().get::<CloseConnection>().is_some() {
        return Err(ConnectionClosedByFault);
    }
    Ok(response)
}

fn record(shared: &Shared, parts: &Parts, body: &Bytes) {
    let path = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned());
    let provider = parts
        .uri
        .path()
        .trim_start_matches('/')
        .split('/')
        .next()
        .and_then(|segment| segment.parse::<Provider>().ok());
    let headers = parts
        .headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    let recorded = RecordedRequest {
        provider,
        method: parts.method.as_str().to_owned(),
        path,
        headers,
        body: String::from_utf8_lossy(body).into_owned(),
    };
    shared.lock().requests.push(recorded);
}
