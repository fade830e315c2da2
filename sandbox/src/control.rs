//! Test controls: recorded requests and scripted faults.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode};
use serde::Serialize;

use crate::Provider;

/// One request the sandbox received, as it came over the wire.
///
/// `Debug` leaves out header values and the body, since they hold secrets; the accessors give
/// the test everything.
#[derive(Clone, Serialize)]
pub struct RecordedRequest {
    /// The provider whose path prefix the request went to (`None` for other paths).
    pub provider: Option<Provider>,
    /// The method, e.g. `POST`.
    pub method: String,
    /// Path and query, e.g. `/payu/oauth/token`.
    pub path: String,
    /// Every header, in order, names lower-case (values that are not UTF-8 are lossily
    /// converted).
    pub headers: Vec<(String, String)>,
    /// The body (lossily converted to UTF-8).
    pub body: String,
}

impl RecordedRequest {
    /// The first value of a header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as a form (empty for a body that is no form).
    pub fn form(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(self.body.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    /// The value of a form parameter of the body.
    pub fn form_param(&self, name: &str) -> Option<String> {
        self.form()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
}

impl fmt::Debug for RecordedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("RecordedRequest")
            .field("provider", &self.provider)
            .field("method", &self.method)
            .field("path", &self.path)
            .field("header_names", &names)
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// What a scripted fault does to a token request.
#[derive(Clone, Debug)]
enum FaultAction {
    /// Answer with this instead of the provider's answer.
    Respond {
        status: StatusCode,
        headers: Vec<(HeaderName, HeaderValue)>,
        body: Bytes,
        /// Send the body this many bytes at a time, waiting this long before each piece.
        trickle: Option<(usize, Duration)>,
    },
    /// Close the connection without an answer.
    Close,
    /// Answer normally (after the delay).
    Proceed,
}

/// A scripted fault for a provider's token requests, queued with
/// [`Sandbox::fail_next`](crate::Sandbox::fail_next).
///
/// ```
/// use std::time::Duration;
/// use clientcreds_sandbox::Fault;
/// use clientcreds_sandbox::http::{HeaderName, HeaderValue, StatusCode};
///
/// let unavailable = Fault::status(StatusCode::SERVICE_UNAVAILABLE)
///     .with_body("down for maintenance")
///     .with_header(HeaderName::from_static("retry-after"), HeaderValue::from_static("2"));
/// let slow = Fault::delay(Duration::from_secs(5));
/// let reset = Fault::close_connection().after(Duration::from_millis(100));
/// # let _ = (unavailable, slow, reset);
/// ```
#[derive(Clone, Debug)]
pub struct Fault {
    delay: Duration,
    action: FaultAction,
    after_processing: bool,
}

impl Fault {
    /// Answer with this status and an empty body.
    pub fn status(status: StatusCode) -> Self {
        Fault {
            delay: Duration::ZERO,
            action: FaultAction::Respond {
                status,
                headers: Vec::new(),
                body: Bytes::new(),
                trickle: None,
            },
            after_processing: false,
        }
    }

    /// Answer with a redirect (`status`, e.g. 302 or 307) to `location`: a client that follows it
    /// sends its token request, credentials and all, to wherever `location` points.
    pub fn redirect(status: StatusCode, location: HeaderValue) -> Self {
        Fault::status(status).with_header(http::header::LOCATION, location)
    }

    /// Answer with this status and JSON text as the body (`Content-Type: application/json`).
    pub fn json(status: StatusCode, body: impl Into<Bytes>) -> Self {
        Fault::status(status)
            .with_header(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )
            .with_body(body)
    }

    /// Close the connection without answering.
    pub fn close_connection() -> Self {
        Fault {
            delay: Duration::ZERO,
            action: FaultAction::Close,
            after_processing: false,
        }
    }

    /// Wait, then handle the request and answer as the provider would (with
    /// [`Fault::after_processing`]: handle it, wait, then answer).
    pub fn delay(delay: Duration) -> Self {
        Fault {
            delay,
            action: FaultAction::Proceed,
            after_processing: false,
        }
    }

    /// Wait this long before the fault's action (and before the provider handles the request,
    /// unless [`Fault::after_processing`]).
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Let the provider handle the request first — enable OAuth 2.0, issue and count the token —
    /// and only then apply the fault: its delay, then its action. The effect happens at once; the
    /// answer is late ([`Fault::delay`]: a call in flight that has already taken effect), lost
    /// ([`Fault::close_connection`]) or replaced ([`Fault::status`], [`Fault::json`]). (By default
    /// a fault comes first — a delayed request is processed only after its delay, and a request
    /// answered by a fault changes nothing.)
    ///
    /// ```
    /// use std::time::Duration;
    /// use clientcreds_sandbox::Fault;
    ///
    /// // Azupay enables at once and issues the secret; the answer comes 30 s later, if ever
    /// let in_flight = Fault::delay(Duration::from_secs(30)).after_processing();
    /// // Azupay enables and the connection closes without an answer: the secret is lost
    /// let lost = Fault::close_connection().after_processing();
    /// # let _ = (in_flight, lost);
    /// ```
    pub fn after_processing(mut self) -> Self {
        self.after_processing = true;
        self
    }

    /// Send the body `bytes` at a time (at least one), waiting `every` before each piece: a body
    /// that dribbles in slower than a client's timeout (no effect on a close or delay fault).
    ///
    /// ```
    /// use std::time::Duration;
    /// use clientcreds_sandbox::Fault;
    /// use clientcreds_sandbox::http::StatusCode;
    ///
    /// // 30 bytes, 5 at a time, one piece every 200 ms: the whole body takes 1.2 s.
    /// let trickle = Fault::json(StatusCode::OK, r#"{"access_token":"t","expires_in":60}"#)
    ///     .trickle(5, Duration::from_millis(200));
    /// # let _ = trickle;
    /// ```
    pub fn trickle(mut self, bytes: usize, every: Duration) -> Self {
        if let FaultAction::Respond { trickle, .. } = &mut self.action {
            *trickle = Some((bytes.max(1), every));
        }
        self
    }

    /// The body of the answer (no effect on a close or delay fault).
    pub fn with_body(mut self, body: impl Into<Bytes>) -> Self {
        if let FaultAction::Respond { body: b, .. } = &mut self.action {
            *b = body.into();
        }
        self
    }

    /// Add a header to the answer (no effect on a close or delay fault).
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        if let FaultAction::Respond { headers, .. } = &mut self.action {
            headers.push((name, value));
        }
        self
    }
}

/// Marks a response the connection layer turns into a closed connection.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CloseConnection;

/// Where a fault applies.
#[derive(Clone, Copy, Debug)]
pub(crate) enum FaultPoint {
    /// A provider's token endpoint.
    Token(Provider),
    /// Azupay's enable call (`POST …/client/{clientId}/oauth2`).
    AzupayEnable,
    /// Azupay's details call (`GET …/client/{clientId}/oauth2`).
    AzupayDetails,
}

impl FaultPoint {
    pub(crate) fn index(self) -> usize {
        match self {
            FaultPoint::Token(provider) => provider.index(),
            FaultPoint::AzupayEnable => ENABLE_QUEUE,
            FaultPoint::AzupayDetails => DETAILS_QUEUE,
        }
    }
}

/// The index of Azupay enable's fault queue (after the five token queues).
pub(crate) const ENABLE_QUEUE: usize = 5;

/// The index of Azupay details' fault queue (after enable's).
pub(crate) const DETAILS_QUEUE: usize = 6;

/// How many fault queues there are: five token endpoints, Azupay enable and details.
pub(crate) const FAULT_QUEUES: usize = 7;

/// Run `handler` under `fault`, if any (the queues live in [`crate::state`], which takes the
/// next fault out: `state::faulted`).
pub(crate) async fn under<F>(fault: Option<Fault>, handler: F) -> Response
where
    F: Future<Output = Response>,
{
    let Some(fault) = fault else {
        return handler.await;
    };
    // after_processing: the request takes effect now, the delay and the action come after it
    let (processed, handler) = if fault.after_processing {
        (Some(handler.await), None)
    } else {
        (None, Some(handler))
    };
    if !fault.delay.is_zero() {
        tokio::time::sleep(fault.delay).await;
    }
    match fault.action {
        FaultAction::Proceed => match (processed, handler) {
            (Some(answer), _) => answer,
            (None, Some(handler)) => handler.await,
            (None, None) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        },
        FaultAction::Close => {
            let mut response = StatusCode::INTERNAL_SERVER_ERROR.into_response();
            response.extensions_mut().insert(CloseConnection);
            response
        }
        FaultAction::Respond {
            status,
            headers,
            body,
            trickle,
        } => {
            let mut response = match trickle {
                None => (status, body).into_response(),
                Some((bytes, every)) => {
                    (status, Body::new(Trickle::new(body, bytes, every))).into_response()
                }
            };
            response.headers_mut().remove(http::header::CONTENT_TYPE);
            for (name, value) in headers {
                response.headers_mut().append(name, value);
            }
            response
        }
    }
}

/// A body sent a few bytes at a time with a pause before each piece.
struct Trickle {
    pieces: VecDeque<Bytes>,
    every: Duration,
    pause: Pin<Box<tokio::time::Sleep>>,
}

impl Trickle {
    fn new(mut body: Bytes, bytes: usize, every: Duration) -> Self {
        let mut pieces = VecDeque::new();
        while !body.is_empty() {
            pieces.push_back(body.split_to(bytes.min(body.len())));
        }
        Trickle {
            pieces,
            every,
            pause: Box::pin(tokio::time::sleep(every)),
        }
    }
}

impl hyper::body::Body for Trickle {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        if self.pieces.is_empty() {
            return Poll::Ready(None);
        }
        ready!(self.pause.as_mut().poll(cx));
        let deadline = tokio::time::Instant::now() + self.every;
        self.pause.as_mut().reset(deadline);
        Poll::Ready(
            self.pieces
                .pop_front()
                .map(|piece| Ok(hyper::body::Frame::data(piece))),
        )
    }

    fn is_end_stream(&self) -> bool {
        self.pieces.is_empty()
    }
}
