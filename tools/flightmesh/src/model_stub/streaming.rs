//! Streamed answers: a scripted reply written as OpenAI's server-sent chunks, and the count of
//! streams whose client went away before their end.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::wire::{DONE, USAGE_CHUNK, chunk};
use super::{Inner, Reply, Shared};

/// A streamed answer: `(delay before, frame)` pairs.
// Over 80 lines: one match over the scripted replies building the frames, kept whole so each
// reply's frames read together.
pub(super) fn stream(shared: Shared, reply: Reply, usage: bool) -> Response {
    let role = json!({"role": "assistant", "content": ""});
    let mut frames: Vec<(Duration, String)> = vec![(Duration::ZERO, chunk(role, None))];
    let text_frames = |frames: &mut Vec<(Duration, String)>, pieces: Vec<&str>, delay: Duration| {
        for piece in pieces {
            frames.push((delay, chunk(json!({"content": piece}), None)));
        }
    };
    let mut finish = Some("stop");
    match reply {
        Reply::Status(code) => {
            return (
                StatusCode::from_u16(code).unwrap(),
                Json(json!({"error": {"message": "scripted failure", "type": "server_error", "code": "scripted"}})),
            )
                .into_response();
        }
        Reply::Malformed => {
            frames.push((Duration::ZERO, "data: {not json at all\n\n".to_owned()));
            finish = None;
        }
        Reply::Text(text) => text_frames(
            &mut frames,
            text.split_inclusive(' ').collect(),
            Duration::ZERO,
        ),
        Reply::Slow(delay, text) => text_frames(&mut frames, vec![text], delay),
        Reply::Chunks { chunks, delay } => text_frames(&mut frames, chunks, delay),
        Reply::ToolCall {
            id,
            name,
            arguments,
        } => {
            let arguments = arguments.to_string();
            let (first, rest) = arguments.split_at(arguments.len() / 2);
            frames.push((
                Duration::ZERO,
                chunk(
                    json!({"tool_calls": [{"index": 0, "id": id, "type": "function", "function": {"name": name, "arguments": ""}}]}),
                    None,
                ),
            ));
            for part in [first, rest] {
                frames.push((
                    Duration::ZERO,
                    chunk(
                        json!({"tool_calls": [{"index": 0, "function": {"arguments": part}}]}),
                        None,
                    ),
                ));
            }
            finish = Some("tool_calls");
        }
        Reply::BrokenStream(text) => {
            text_frames(
                &mut frames,
                text.split_inclusive(' ').collect(),
                Duration::ZERO,
            );
            frames.push((
                Duration::ZERO,
                "data: {\"error\":{\"message\":\"scripted failure mid-stream\",\"type\":\"server_error\"}}\n\n".to_owned(),
            ));
            finish = None;
        }
    }
    if let Some(reason) = finish {
        frames.push((Duration::ZERO, chunk(json!({}), Some(reason))));
        if usage {
            frames.push((Duration::ZERO, USAGE_CHUNK.to_owned()));
        }
        frames.push((Duration::ZERO, DONE.to_owned()));
    }
    let state = Streamed {
        frames: frames.into(),
        inner: shared.inner,
        ended: false,
    };
    let body = futures::stream::unfold(state, |mut state| async move {
        let Some((delay, frame)) = state.frames.pop_front() else {
            state.ended = true;
            state.inner.lock().unwrap().completed_streams += 1;
            return None;
        };
        tokio::time::sleep(delay).await;
        Some((Ok::<_, std::convert::Infallible>(frame), state))
    });
    (
        [(header::CONTENT_TYPE, "text/event-stream")],
        Body::from_stream(body),
    )
        .into_response()
}

/// A streamed answer being written; dropped before its end, its client went away.
struct Streamed {
    frames: VecDeque<(Duration, String)>,
    inner: Arc<Mutex<Inner>>,
    ended: bool,
}

impl Drop for Streamed {
    fn drop(&mut self) {
        if !self.ended
            && let Ok(mut inner) = self.inner.lock()
        {
            inner.cancelled_streams += 1;
        }
    }
}
