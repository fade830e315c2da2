//! A tonic gRPC client that calls a protected gRPC method through the `Bearer` layer.
//!
//! The example runs everything itself, on loopback ports:
//! - the provider emulator (`clientcreds-sandbox`), whose Autopay token endpoint issues tokens;
//! - a tiny gRPC server with one method, `demo.Balance/Get`, that checks the caller's bearer
//!   token by presenting it to the sandbox's protected Autopay endpoint, and refuses the call
//!   (`UNAUTHENTICATED`) when the sandbox does;
//! - a tonic `Channel` wrapped in `BearerLayer`, calling the method.
//!
//! No protoc: the messages are hand-written prost structs, the client is `tonic::client::Grpc`
//! and the server `tonic::server::Grpc`, both with `tonic_prost::ProstCodec`.
//!
//! Run: `cargo run -p clientcreds --example tonic_client` (also run by `cargo test`).

use std::convert::Infallible;
use std::process::ExitCode;
use std::task::{Context, Poll};

use bytes::Bytes;
use clientcreds::bearer::{BearerLayer, InvalidateToken};
use clientcreds::source::ClientCredentialsSource;
use clientcreds::{ClientAuth, ClientCredentials, HttpClient};
use clientcreds_sandbox::{Provider, Sandbox, SandboxConfig};
use futures::future::BoxFuture;
use http::header::AUTHORIZATION;
use http::uri::PathAndQuery;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use secrecy::SecretString;
use tonic::server::NamedService;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Server};
use tonic::{Code, Status};
use tonic_prost::ProstCodec;
use tower::{Service, ServiceBuilder};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The request of `demo.Balance/Get`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BalanceRequest {
    /// Which account.
    #[prost(string, tag = "1")]
    pub account: String,
}

/// The answer of `demo.Balance/Get`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BalanceReply {
    /// The account asked for.
    #[prost(string, tag = "1")]
    pub account: String,
    /// What the protected upstream endpoint answered (JSON).
    #[prost(string, tag = "2")]
    pub upstream: String,
}

const GET: &str = "/demo.Balance/Get";

/// The gRPC server: checks the bearer token against the sandbox's protected endpoint.
#[derive(Clone)]
struct BalanceServer {
    resource_url: String,
    http: Client<HttpConnector, Empty<Bytes>>,
}

impl NamedService for BalanceServer {
    const NAME: &'static str = "demo.Balance";
}

impl BalanceServer {
    async fn get(
        self,
        request: tonic::Request<BalanceRequest>,
    ) -> Result<tonic::Response<BalanceReply>, Status> {
        let Some(authorization) = request.metadata().get("authorization") else {
            return Err(Status::unauthenticated("no bearer token"));
        };
        let upstream = http::Request::get(&self.resource_url)
            .header(AUTHORIZATION, authorization.as_bytes())
            .body(Empty::new())
            .map_err(|e| Status::internal(e.to_string()))?;
        let response = self
            .http
            .request(upstream)
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        if status != http::StatusCode::OK {
            return Err(Status::unauthenticated(format!(
                "the token was refused ({status})"
            )));
        }
        Ok(tonic::Response::new(BalanceReply {
            account: request.into_inner().account,
            upstream: String::from_utf8_lossy(&body.to_bytes()).into_owned(),
        }))
    }
}

impl Service<http::Request<tonic::body::Body>> for BalanceServer {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let server = self.clone();
        Box::pin(async move {
            if request.uri().path() != GET {
                return Ok(Status::unimplemented("no such method").into_http());
            }
            let mut grpc =
                tonic::server::Grpc::new(ProstCodec::<BalanceReply, BalanceRequest>::default());
            let handler = tower::service_fn(move |req| server.clone().get(req));
            Ok(grpc.unary(handler, request).await)
        })
    }
}

/// Calls `demo.Balance/Get` through any gRPC service.
async fn get_balance<T>(service: T, account: &str) -> Result<BalanceReply, Status>
where
    T: tonic::client::GrpcService<tonic::body::Body>,
    T::Error: Into<BoxError>,
    T::ResponseBody: http_body::Body<Data = Bytes> + Send + 'static,
    <T::ResponseBody as http_body::Body>::Error: Into<BoxError> + Send,
{
    let mut grpc = tonic::client::Grpc::new(service);
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(e.into().to_string()))?;
    let request = tonic::Request::new(BalanceRequest {
        account: account.to_owned(),
    });
    let codec = ProstCodec::<BalanceRequest, BalanceReply>::default();
    Ok(grpc
        .unary(request, PathAndQuery::from_static(GET), codec)
        .await?
        .into_inner())
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("tonic_client example failed: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), BoxError> {
    let sandbox = Sandbox::start(SandboxConfig::default()).await?;
    let autopay = sandbox.autopay();

    // The gRPC server.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = BalanceServer {
        resource_url: autopay.resource_url.clone(),
        http: Client::builder(TokioExecutor::new()).build_http(),
    };
    tokio::spawn(
        Server::builder()
            .add_service(server)
            .serve_with_incoming(TcpIncoming::from(listener)),
    );

    // The client: a tonic channel with the layer on top. gRPC bodies are streams, so a 401 can
    // only invalidate the token (the next call gets a new one); it cannot be replayed.
    let channel = Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let credentials = ClientCredentials::builder(
        &autopay.token_url,
        autopay.client_id.clone(),
        SecretString::from(autopay.client_secret.clone()),
    )
    .auth(ClientAuth::Json)
    .audience("https://api.autopay.io")
    .build()?;
    let source = ClientCredentialsSource::new(credentials, HttpClient::new());
    let authorized = ServiceBuilder::new()
        .layer(BearerLayer::new(source).on_unauthorized(InvalidateToken))
        .service(channel.clone());

    // Without the layer the server refuses the call …
    match get_balance(channel, "acc-1").await {
        Err(status) if status.code() == Code::Unauthenticated => {
            println!("without the layer: {}", status.message())
        }
        other => {
            return Err(format!("expected UNAUTHENTICATED without a token, got {other:?}").into());
        }
    }
    // … with it, the call goes through, twice, with one token request.
    for call in 1..=2 {
        let reply = get_balance(authorized.clone(), "acc-1").await?;
        println!(
            "call {call}: account {} upstream {}",
            reply.account, reply.upstream
        );
        if reply.account != "acc-1" || !reply.upstream.contains("autopay") {
            return Err(format!("unexpected reply {reply:?}").into());
        }
    }
    let issued = sandbox.tokens_issued(Provider::Autopay, &autopay.client_id);
    println!("tokens issued: {issued}");
    if issued != 1 {
        return Err(format!("expected one token request, got {issued}").into());
    }
    Ok(())
}
