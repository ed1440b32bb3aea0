//! Server-streaming RPCs over HTTP, for every annotated one (no RPC-specific code).
//!
//! Up to the call, a streamed route is served like a unary one: token, policy, rate limit, body,
//! request message, metadata, deadline. A mistake found there (or a status the service answers
//! before its first message, such as a 422 for an empty question) is an ordinary JSON error
//! answer. Once the service has accepted the call the answer is `200`, in one of two framings
//! chosen by the request's `Accept`:
//!
//! - `text/event-stream` listed (and not `q=0`): Server-Sent Events. Each message is one
//!   `data: <json>` event (the JSON the unary mapping writes, [`crate::json_out`]); a failure is
//!   a last `event: error` whose data is the contract's error body (`{"detail": "..."}`, the
//!   message the unary route would have answered, [`ApiError::from_grpc`]); a comment line
//!   (`: heartbeat`) is written every `STREAM_HEARTBEAT` so that proxies keep an idle answer open.
//! - anything else: newline-delimited JSON (`application/x-ndjson`), as grpc-gateway writes it:
//!   one `{"result": <message>}` per line, and a failure as a last line
//!   `{"error": {"status": <http status>, "detail": ...}}`. NDJSON has no comments: no heartbeats.
//!
//! The deadline (`AI_REQUEST_TIMEOUT` on `/api/v1/ai/*`, `REQUEST_TIMEOUT` elsewhere) bounds the
//! whole stream, as it bounds a unary call: an answer still running past it ends with the 504
//! error. When the client goes away, hyper drops the body, which drops the gRPC call (the
//! service sees it cancelled and stops); `gateway_stream_cancelled_total` counts those.

use std::convert::Infallible;
use std::pin::Pin;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tokio::time::{Instant, Interval, MissedTickBehavior, Sleep};

use crate::AppState;
use crate::error::{self, ApiError};
use crate::routes::Route;
use crate::transcode::Prepared;

/// `Content-Type` of an SSE answer.
pub const EVENT_STREAM: &str = "text/event-stream";
/// `Content-Type` of an NDJSON answer.
pub const NDJSON: &str = "application/x-ndjson";

/// How a streamed answer is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Server-Sent Events.
    Sse,
    /// Newline-delimited JSON.
    Ndjson,
}

impl Framing {
    /// SSE when `Accept` lists `text/event-stream` with a non-zero quality, else NDJSON.
    #[must_use]
    pub fn of(headers: &HeaderMap) -> Self {
        let accepts_sse = headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .any(|range| {
                let mut parts = range.split(';');
                let media = parts.next().unwrap_or_default().trim();
                let refused = parts.any(|param| {
                    let (name, value) = param.split_once('=').unwrap_or((param, ""));
                    name.trim().eq_ignore_ascii_case("q")
                        && value.trim().parse::<f32>().is_ok_and(|q| q <= 0.0)
                });
                media.eq_ignore_ascii_case(EVENT_STREAM) && !refused
            });
        if accepts_sse { Self::Sse } else { Self::Ndjson }
    }

    fn content_type(self) -> &'static str {
        match self {
            Self::Sse => EVENT_STREAM,
            Self::Ndjson => NDJSON,
        }
    }

    /// One message.
    #[must_use]
    pub fn message(self, json: &str) -> Bytes {
        match self {
            Self::Sse => format!("data: {json}\n\n").into(),
            Self::Ndjson => format!("{{\"result\":{json}}}\n").into(),
        }
    }

    /// The failure that ends a stream.
    #[must_use]
    pub fn error(self, err: &ApiError) -> Bytes {
        match self {
            Self::Sse => format!("event: error\ndata: {}\n\n", err.body()).into(),
            Self::Ndjson => {
                let mut body = err.body();
                body["status"] = err.status().as_u16().into();
                format!("{}\n", serde_json::json!({ "error": body })).into()
            }
        }
    }
}

/// The SSE heartbeat: a comment line, ignored by every EventSource.
const HEARTBEAT: &[u8] = b": heartbeat\n\n";

/// Serves a server-streaming route's `prepared` call, answered with `framing` (see the module
/// docs).
pub(crate) async fn respond(
    state: &AppState,
    route: &Route,
    framing: Framing,
    prepared: Prepared,
) -> Response {
    let deadline = prepared.deadline;
    let open = prepared.exchange(route, async |client, request, path, codec| {
        client.server_streaming(request, path, codec).await
    });
    let messages = match open.await {
        Ok(response) => response.into_inner(),
        Err(err) => return err.into_response(),
    };
    let relay = Relay::new(
        messages,
        route.clone(),
        framing,
        state.stream_heartbeat,
        deadline,
    );
    let body = futures::stream::unfold(Some(relay), |relay| async move {
        let mut relay = relay?;
        match relay.next().await? {
            Frame::More(frame) => Some((Ok::<_, Infallible>(frame), Some(relay))),
            Frame::Last(frame) => Some((Ok(frame), None)),
        }
    });
    let mut response = Body::from_stream(body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(framing.content_type()),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // nginx and friends would otherwise buffer the answer until it ends.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// What the relay writes next.
enum Frame {
    /// A frame, and more to come.
    More(Bytes),
    /// The stream's last frame.
    Last(Bytes),
}

/// Copies one upstream stream into HTTP frames.
struct Relay {
    messages: tonic::Streaming<String>,
    route: Route,
    framing: Framing,
    heartbeat: Interval,
    deadline: Pin<Box<Sleep>>,
    ended: Ended,
}

impl Relay {
    fn new(
        messages: tonic::Streaming<String>,
        route: Route,
        framing: Framing,
        heartbeat: Duration,
        deadline: Instant,
    ) -> Self {
        let mut heartbeat = tokio::time::interval_at(Instant::now() + heartbeat, heartbeat);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Self {
            messages,
            route,
            framing,
            heartbeat,
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
            ended: Ended(false),
        }
    }

    /// The next frame; `None` once the upstream ended cleanly.
    async fn next(&mut self) -> Option<Frame> {
        let sse = self.framing == Framing::Sse;
        let failure = tokio::select! {
            () = &mut self.deadline => ApiError::detail(StatusCode::GATEWAY_TIMEOUT, error::TIMEOUT),
            _ = self.heartbeat.tick(), if sse => {
                return Some(Frame::More(Bytes::from_static(HEARTBEAT)));
            }
            next = self.messages.message() => match next {
                Ok(Some(json)) => {
                    return Some(Frame::More(self.framing.message(&json)));
                }
                Ok(None) => {
                    self.ended.0 = true;
                    return None;
                }
                Err(status) => ApiError::from_grpc(&status, &self.route),
            },
        };
        self.ended.0 = true;
        Some(Frame::Last(self.framing.error(&failure)))
    }
}

/// Whether the stream reached its end; dropped before it, the client went away.
struct Ended(bool);

impl Drop for Ended {
    fn drop(&mut self) {
        if !self.0 {
            metrics::counter!("gateway_stream_cancelled_total").increment(1);
            tracing::info!("streamed answer cancelled: the client went away");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepting(value: &str) -> Framing {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_str(value).unwrap());
        Framing::of(&headers)
    }

    #[test]
    fn accept_chooses_the_framing() {
        assert_eq!(accepting("text/event-stream"), Framing::Sse);
        assert_eq!(
            accepting("application/json, Text/Event-Stream;q=0.5"),
            Framing::Sse
        );
        assert_eq!(accepting("text/event-stream;q=0"), Framing::Ndjson);
        assert_eq!(accepting("application/x-ndjson"), Framing::Ndjson);
        assert_eq!(accepting("*/*"), Framing::Ndjson);
        assert_eq!(Framing::of(&HeaderMap::new()), Framing::Ndjson);
    }

    #[test]
    fn frames_messages_and_errors() {
        let json = r#"{"delta":"Hola"}"#;
        assert_eq!(
            Framing::Sse.message(json),
            Bytes::from("data: {\"delta\":\"Hola\"}\n\n")
        );
        assert_eq!(
            Framing::Ndjson.message(json),
            Bytes::from("{\"result\":{\"delta\":\"Hola\"}}\n")
        );
        let err = ApiError::detail(StatusCode::GATEWAY_TIMEOUT, error::TIMEOUT);
        assert_eq!(
            Framing::Sse.error(&err),
            Bytes::from(format!(
                "event: error\ndata: {{\"detail\":\"{}\"}}\n\n",
                error::TIMEOUT
            ))
        );
        let line: serde_json::Value = serde_json::from_slice(&Framing::Ndjson.error(&err)).unwrap();
        assert_eq!(
            line,
            serde_json::json!({"error": {"status": 504, "detail": error::TIMEOUT}})
        );
    }
}
