//! The `flightmesh.ai.v1.AiAgentService` handlers: validate, answer (model or offline answerer),
//! keep the chat history, and map failures to the contract's messages.

use std::sync::Arc;
use std::time::Instant;

use flightmesh_proto::Reply;
use flightmesh_proto::ai::{self as pb, ai_agent_service_server::AiAgentService};
use flightmesh_proto::validate::Validate;
use flightmesh_runtime::caller::Caller;
use flightmesh_runtime::metrics::Metric;
use flightmesh_runtime::status::FieldViolations;
use tonic::{Request, Response, Status};

use crate::data::{DataError, Sources};
use crate::history::{Conversation, History};
use crate::llm::{Llm, LlmError};
use crate::offline;
use crate::search::{self, DestinationSearch};

/// The endpoints, with their contract error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Chat,
    ChatStream,
    SuggestPrice,
    PredictDemand,
}

impl Endpoint {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Chat => "chat",
            Self::ChatStream => "chat_stream",
            Self::SuggestPrice => "suggest_price",
            Self::PredictDemand => "predict_demand",
        }
    }

    /// The contract's 500 message.
    fn failure(self) -> &'static str {
        match self {
            Self::Chat | Self::ChatStream => "Error procesando solicitud de IA",
            Self::SuggestPrice => "Error procesando sugerencia de precio",
            Self::PredictDemand => "Error procesando prediccion de demanda",
        }
    }
}

/// Why an answer could not be given.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AnswerError {
    #[error(transparent)]
    Llm(#[from] LlmError),
    #[error(transparent)]
    Data(#[from] DataError),
}

/// The agent's metrics.
pub const METRICS: &[Metric] = &[
    Metric::counter(
        "ai_requests_total",
        "Questions answered, by endpoint, provider and outcome",
    )
    .labelled(),
    Metric::histogram("ai_request_duration_seconds", "Time to answer, by endpoint").labelled(),
    Metric::counter(
        "ai_tokens_total",
        "Tokens the model reported, by kind (input, output)",
    )
    .labelled(),
    Metric::counter("ai_tool_calls_total", "Tool calls the model made, by tool").labelled(),
];

/// The AI agent's gRPC face.
pub struct AiAgent {
    pub(crate) sources: Sources,
    pub(crate) llm: Option<Arc<Llm>>,
    pub(crate) history: Arc<History>,
    pub(crate) provider: &'static str,
    pub(crate) search: Arc<DestinationSearch>,
}

impl AiAgent {
    pub fn new(
        sources: Sources,
        llm: Option<Arc<Llm>>,
        history: Arc<History>,
        provider: &'static str,
        search: Arc<DestinationSearch>,
    ) -> Self {
        Self {
            sources,
            llm,
            history,
            provider,
            search,
        }
    }

    /// The offline answerer's chat: "where can I…" questions from the destination search, the
    /// rest from the data tools.
    async fn offline_chat(&self, message: &str) -> Result<String, AnswerError> {
        let names = self.sources.destination_names().await?;
        match search::offline_where_answer(&self.search, message, &names).await {
            Ok(Some(answer)) => return Ok(answer),
            Ok(None) => {}
            Err(err) => {
                tracing::warn!(error = %err, "destination search unavailable to the offline answerer");
            }
        }
        Ok(offline::chat(&self.sources, message).await?)
    }

    /// A price suggestion or a demand prediction for `destination`: the model, asked to fetch the
    /// figures with its tools, or the offline answerer.
    async fn about_destination(
        &self,
        endpoint: Endpoint,
        destination: &str,
    ) -> Result<String, Status> {
        self.respond(endpoint, async {
            Ok(match (&self.llm, endpoint) {
                (Some(llm), Endpoint::SuggestPrice) => {
                    let prompt = format!(
                        "Sugiere un precio para los vuelos a {destination}. Consulta con las herramientas los datos de mercado \
                         y la predicción de demanda del destino, y justifica la sugerencia con esas cifras."
                    );
                    llm.answer(&prompt, &[]).await?
                }
                (Some(llm), _) => {
                    let prompt = format!(
                        "Predice la demanda de vuelos a {destination} con la herramienta de predicción de demanda y explica \
                         la tendencia, la participación de mercado y la proyección con sus cifras."
                    );
                    llm.answer(&prompt, &[]).await?
                }
                (None, Endpoint::SuggestPrice) => {
                    offline::suggest_price(&self.sources, destination).await?
                }
                (None, _) => offline::predict_demand(&self.sources, destination).await?,
            })
        })
        .await
    }

    /// Runs one answer, recording its metrics and turning failures into statuses.
    async fn respond<F>(&self, endpoint: Endpoint, answer: F) -> Result<String, Status>
    where
        F: Future<Output = Result<String, AnswerError>>,
    {
        let started = Instant::now();
        let result = answer.await;
        let outcome = result.as_ref().map_or_else(outcome, |_| "ok");
        metrics::counter!("ai_requests_total", "endpoint" => endpoint.label(), "provider" => self.provider, "outcome" => outcome)
            .increment(1);
        metrics::histogram!("ai_request_duration_seconds", "endpoint" => endpoint.label())
            .record(started.elapsed().as_secs_f64());
        result.map_err(|err| failure_status(endpoint, &err))
    }
}

/// The outcome label of a failed answer (`ai_requests_total`).
pub(crate) fn outcome(err: &AnswerError) -> &'static str {
    match err {
        AnswerError::Llm(LlmError::RateLimited(_)) => "rate_limited",
        AnswerError::Llm(LlmError::Timeout(_)) => "timeout",
        AnswerError::Llm(LlmError::Failed(_)) => "failed",
        AnswerError::Data(_) => "data_unavailable",
    }
}

/// A failed answer as the status the gateway maps to the contract's answer (logged here).
pub(crate) fn failure_status(endpoint: Endpoint, err: &AnswerError) -> Status {
    tracing::error!(endpoint = endpoint.label(), error = %err, "AI answer failed");
    match err {
        AnswerError::Llm(LlmError::RateLimited(_)) => Status::unavailable(
            "El servicio de IA esta saturado. Intente de nuevo en unos segundos.",
        ),
        AnswerError::Llm(LlmError::Timeout(_)) => Status::deadline_exceeded(
            "El servicio de IA tardo demasiado en responder. Intente de nuevo.",
        ),
        AnswerError::Llm(LlmError::Failed(_)) => Status::internal(endpoint.failure()),
        AnswerError::Data(_) => {
            Status::unavailable("Los datos necesarios no estan disponibles. Intente de nuevo.")
        }
    }
}

/// The request's message, once it keeps the rules of its proto (INVALID_ARGUMENT otherwise).
fn validated<T: Validate>(request: Request<T>) -> Result<T, Status> {
    let message = request.into_inner();
    FieldViolations::check(&message)?;
    Ok(message)
}

/// A chat request checked: the question and the caller's conversation (unary and streamed).
pub(crate) fn chat_request(
    request: Request<pb::ChatRequest>,
) -> Result<(String, Conversation), Status> {
    let caller = Caller::from_metadata(request.metadata());
    let req = validated(request)?;
    let session = req.session_id.as_deref().map(str::trim);
    // The caller's own conversation: never another user's, never a shared one.
    Ok((
        req.message.trim().to_owned(),
        Conversation::of(caller.as_ref(), session),
    ))
}

#[tonic::async_trait]
impl AiAgentService for AiAgent {
    // Associated types first, methods in the proto's order.
    type ChatStreamStream = crate::stream::ChatEvents;

    async fn chat(&self, request: Request<pb::ChatRequest>) -> Reply<pb::ChatResponse> {
        let (message, conversation) = chat_request(request)?;
        let history = self.history.load(&conversation).await;
        let response = self
            .respond(Endpoint::Chat, async {
                Ok(match &self.llm {
                    Some(llm) => llm.answer(&message, &history).await?,
                    None => self.offline_chat(&message).await?,
                })
            })
            .await?;
        self.history
            .record(&conversation, &message, &response)
            .await;
        Ok(Response::new(pb::ChatResponse {
            response,
            session_id: conversation.session_id,
        }))
    }

    async fn chat_stream(
        &self,
        request: Request<pb::ChatRequest>,
    ) -> Reply<Self::ChatStreamStream> {
        let (message, conversation) = chat_request(request)?;
        Ok(Response::new(crate::stream::start(
            self,
            message,
            conversation,
        )))
    }

    async fn suggest_price(
        &self,
        request: Request<pb::SuggestPriceRequest>,
    ) -> Reply<pb::SuggestPriceResponse> {
        let req = validated(request)?;
        let suggestion = self
            .about_destination(Endpoint::SuggestPrice, req.destination_name.trim())
            .await?;
        Ok(Response::new(pb::SuggestPriceResponse { suggestion }))
    }

    async fn predict_demand(
        &self,
        request: Request<pb::PredictDemandRequest>,
    ) -> Reply<pb::PredictDemandResponse> {
        let req = validated(request)?;
        let prediction = self
            .about_destination(Endpoint::PredictDemand, req.destination_name.trim())
            .await?;
        Ok(Response::new(pb::PredictDemandResponse { prediction }))
    }

    async fn embed_destination(
        &self,
        request: Request<pb::EmbedDestinationRequest>,
    ) -> Reply<pb::EmbedDestinationResponse> {
        search::embed_destination_rpc(&self.search, validated(request)?)
            .await
            .map(Response::new)
    }

    async fn search_destinations(
        &self,
        request: Request<pb::SearchDestinationsRequest>,
    ) -> Reply<pb::SearchDestinationsResponse> {
        search::search_destinations_rpc(&self.search, validated(request)?)
            .await
            .map(Response::new)
    }
}
