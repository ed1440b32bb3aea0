//! `ChatStream`: a chat answer sent as it is written.
//!
//! The request is checked and its conversation resolved exactly as for `Chat`
//! ([`crate::grpc::chat_request`]); a mistake is the call's status, before any message. Then a
//! task writes the answer into the stream: with a model, the text of rig's streamed run as it
//! arrives ([`crate::llm::Llm::stream`]); offline, each sentence as soon as its lookups are done
//! ([`crate::offline::chat_into`]). The last message carries the whole answer, the tools consulted
//! and the session id. History is read and written by the same code as `Chat`
//! ([`crate::history::History::load`], [`crate::history::History::record`]), and only for an
//! answer that was delivered whole.
//!
//! A failure mid-answer ends the stream with the status `Chat` would have answered (the gateway
//! turns it into the contract's error event). When the client goes away (the gateway drops the
//! call when its HTTP client disconnects) the task stops at once: the model request is dropped,
//! which closes its connection, and nothing is saved (`ai_requests_total{outcome="cancelled"}`).

use std::time::Instant;

use flightmesh_proto::ai as pb;
use futures::StreamExt as _;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use tracing::Instrument as _;

use crate::data::{DataError, Sources};
use crate::grpc::{AiAgent, AnswerError, Endpoint, failure_status, outcome};
use crate::history::{Conversation, History};
use crate::llm::{Llm, LlmError, Piece};
use crate::offline::{self, Recorder};

/// The messages of one streamed answer.
pub type ChatEvents = ReceiverStream<Result<pb::ChatStreamEvent, Status>>;

/// Messages buffered ahead of a slow reader before the answer waits for it.
const BUFFERED_EVENTS: usize = 32;

/// Starts answering `question` in `conversation`; the answer arrives on the returned stream.
pub(crate) fn start(agent: &AiAgent, question: String, conversation: Conversation) -> ChatEvents {
    let (events, receiver) = mpsc::channel(BUFFERED_EVENTS);
    let run = Run {
        sources: agent.sources.clone(),
        llm: agent.llm.clone(),
        history: agent.history.clone(),
        provider: agent.provider,
        search: agent.search.clone(),
        question,
        conversation,
        events,
    };
    tokio::spawn(run.go().in_current_span());
    ReceiverStream::new(receiver)
}

/// Why an answer stopped before its end.
enum Stop {
    /// The reader went away.
    Cancelled,
    /// The answer failed.
    Failed(AnswerError),
}

impl From<LlmError> for Stop {
    fn from(err: LlmError) -> Self {
        Self::Failed(err.into())
    }
}

impl From<DataError> for Stop {
    fn from(err: DataError) -> Self {
        Self::Failed(err.into())
    }
}

/// One streamed answer.
struct Run {
    sources: Sources,
    llm: Option<std::sync::Arc<Llm>>,
    history: std::sync::Arc<History>,
    provider: &'static str,
    /// The destination search, for the offline answer to "where can I…" questions.
    search: std::sync::Arc<crate::search::DestinationSearch>,
    question: String,
    conversation: Conversation,
    events: mpsc::Sender<Result<pb::ChatStreamEvent, Status>>,
}

/// The answer as delivered.
struct Answer {
    response: String,
    tools: Vec<String>,
}

impl Run {
    async fn go(self) {
        let started = Instant::now();
        let events = self.events.clone();
        // A reader that goes away stops the answer wherever it is (a model request included).
        let result = tokio::select! {
            () = events.closed() => Err(Stop::Cancelled),
            result = self.answer() => result,
        };
        let label = match &result {
            Ok(()) => "ok",
            Err(Stop::Cancelled) => "cancelled",
            Err(Stop::Failed(err)) => outcome(err),
        };
        metrics::counter!("ai_requests_total", "endpoint" => Endpoint::ChatStream.label(), "provider" => self.provider, "outcome" => label)
            .increment(1);
        metrics::histogram!("ai_request_duration_seconds", "endpoint" => Endpoint::ChatStream.label())
            .record(started.elapsed().as_secs_f64());
        match result {
            Ok(()) => {}
            Err(Stop::Cancelled) => {
                tracing::info!("chat stream cancelled by its reader: answer dropped, not saved");
            }
            Err(Stop::Failed(err)) => {
                let _ = events
                    .send(Err(failure_status(Endpoint::ChatStream, &err)))
                    .await;
            }
        }
    }

    async fn answer(&self) -> Result<(), Stop> {
        let history = self.history.load(&self.conversation).await;
        let answer = match &self.llm {
            Some(llm) => {
                let timeout = llm.timeout();
                tokio::time::timeout(timeout, self.model_answer(llm, &history))
                    .await
                    .map_err(|_| LlmError::Timeout(timeout))??
            }
            None => self.offline().await?,
        };
        self.history
            .record(&self.conversation, &self.question, &answer.response)
            .await;
        self.send(pb::ChatStreamEvent {
            delta: String::new(),
            session_id: self.conversation.session_id.clone(),
            done: true,
            response: answer.response,
            tools_used: answer.tools,
        })
        .await
    }

    async fn model_answer(
        &self,
        llm: &Llm,
        history: &[crate::history::Message],
    ) -> Result<Answer, Stop> {
        let mut pieces = std::pin::pin!(llm.stream(&self.question, history));
        let mut tools: Vec<String> = Vec::new();
        while let Some(piece) = pieces.next().await {
            match piece? {
                Piece::Text(text) => self.delta(text).await?,
                Piece::Tool(name) => {
                    if !tools.contains(&name) {
                        tools.push(name);
                    }
                }
                Piece::Done(response) => return Ok(Answer { response, tools }),
            }
        }
        Err(LlmError::Failed("the model's stream ended without a final answer".into()).into())
    }

    /// The offline answerer's sentences, each sent as soon as it is written. A "where can I…"
    /// question that names no destination is answered from the destination search, as in the
    /// unary chat.
    async fn offline(&self) -> Result<Answer, Stop> {
        let names = self.sources.destination_names().await?;
        match crate::search::offline_where_answer(&self.search, &self.question, &names).await {
            Ok(Some(answer)) => {
                self.delta(answer.clone()).await?;
                return Ok(Answer {
                    response: answer,
                    tools: vec![
                        <crate::search::SearchDestinations as rig_agent::tool::Tool>::NAME
                            .to_owned(),
                    ],
                });
            }
            Ok(None) => {}
            Err(err) => {
                tracing::warn!(error = %err, "destination search unavailable to the offline answerer");
            }
        }
        let (sentences, mut written) = mpsc::unbounded_channel();
        let mut recorder = Forwarding {
            sentences,
            tools: Vec::new(),
        };
        let produce = async move {
            let result = offline::chat_into(&self.sources, &self.question, &mut recorder).await;
            // Dropping the recorder ends `written`.
            (result, recorder.tools)
        };
        let forward = async {
            let mut all: Vec<String> = Vec::new();
            while let Some(sentence) = written.recv().await {
                let delta = if all.is_empty() {
                    sentence.clone()
                } else {
                    format!(" {sentence}")
                };
                self.delta(delta).await?;
                all.push(sentence);
            }
            Ok::<_, Stop>(all)
        };
        let ((result, tools), sentences) = tokio::join!(produce, forward);
        result?;
        Ok(Answer {
            response: sentences?.join(" "),
            tools: tools.into_iter().map(str::to_owned).collect(),
        })
    }

    async fn delta(&self, delta: String) -> Result<(), Stop> {
        self.send(pb::ChatStreamEvent {
            delta,
            session_id: self.conversation.session_id.clone(),
            ..pb::ChatStreamEvent::default()
        })
        .await
    }

    async fn send(&self, event: pb::ChatStreamEvent) -> Result<(), Stop> {
        self.events
            .send(Ok(event))
            .await
            .map_err(|_| Stop::Cancelled)
    }
}

/// Passes the offline answerer's sentences on as they are written.
struct Forwarding {
    sentences: mpsc::UnboundedSender<String>,
    tools: Vec<&'static str>,
}

impl Recorder for Forwarding {
    fn sentence(&mut self, text: String) {
        // The reader may be gone: the select in `Run::go` ends the answer then.
        let _ = self.sentences.send(text);
    }

    fn consulted(&mut self, tool: &'static str) {
        if !self.tools.contains(&tool) {
            self.tools.push(tool);
        }
    }
}
