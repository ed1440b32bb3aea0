//! The model: a rig-core agent on Groq or any OpenAI-compatible chat-completions server, with the
//! data tools of [`crate::data`]. One agent per process, shared by every request.
//!
//! rig's OpenAI client defaults to the Responses API, which compatible servers lack: the client is
//! pinned to the chat-completions route. rig sends the system preamble as an array of content
//! parts, which Groq refuses (400: `'messages.0.content' : value must be a string`): both
//! dialects get rig's text-flattening body rewrite ([`flatten_text_content`]), so every text-only
//! content array goes as one string — what Groq requires and every OpenAI-compatible server
//! (llama.cpp, Ollama, vLLM) accepts. [`Llm::stream`] is the same run, streamed
//! ([`crate::stream`]). A run may call tools up to `max_turns - 1` times before
//! its final answer. Tool failures come back to the model as tool results it can read; only
//! provider failures fail the request.

use std::sync::Arc;
use std::time::Duration;

use flightmesh_runtime::config::Secret;
use futures::{Stream, StreamExt as _};
use rig_agent::agent::MultiTurnStreamItem;
use rig_agent::completion::{Message as RigMessage, PromptError};
use rig_agent::streaming::{Item, StreamEvent};
use rig_agent::tool::{Tool, ToolContext, ToolExecutionError};
use rig_agent::{Agent, AgentBuilder};
use rig_core::providers::openai::wire::{Auth, BodyRewrite, GROQ};
use rig_core::providers::openai::{OpenAIConfig, Route};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::Provider;
use crate::data::{DataError, Sources, not_found_text};
use crate::history::Message;
use crate::search::{DestinationSearch, SearchDestinations};

/// What the model is told before every conversation.
pub const PREAMBLE: &str = "Eres el asistente de la aerolínea flightmesh. Respondes en español, de forma breve y precisa. \
Para cualquier dato (impuestos, precios, promociones, mascotas, vuelos, demanda) usa SIEMPRE las herramientas y cita sus cifras; \
nunca inventes cifras. Si una herramienta no encuentra un destino, dilo tal cual.";

/// Why the model could not answer.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// The provider refused for now (HTTP 429).
    #[error("the model provider is rate limiting us: {0}")]
    RateLimited(String),
    /// No answer within the deadline.
    #[error("the model did not answer within {0:?}")]
    Timeout(Duration),
    /// Anything else (HTTP 5xx, malformed answer, unreachable, too many tool turns).
    #[error("the model failed: {0}")]
    Failed(String),
}

/// The agent and how long it may take.
pub struct Llm {
    agent: Agent,
    timeout: Duration,
    max_turns: usize,
}

impl Llm {
    /// An agent for `provider` (not [`Provider::Offline`]) with the data tools.
    pub fn new(
        provider: &Provider,
        sources: &Sources,
        search: &Arc<DestinationSearch>,
        timeout: Duration,
        max_turns: usize,
    ) -> Option<Self> {
        let model = match provider {
            Provider::Offline => return None,
            Provider::Groq {
                api_key,
                model,
                base_url,
            } => flatten_text_content(
                OpenAIConfig::with_key(&GROQ, api_key.expose()).with_base_url(base_url),
            )
            .client()
            .chat(model),
            Provider::OpenAiCompatible {
                base_url,
                api_key,
                model,
            } => flatten_text_content(
                openai_compatible(base_url, api_key.as_ref()).with_route(Route::Chat),
            )
            .client()
            .chat(model),
        };
        let agent = AgentBuilder::new(model)
            .preamble(PREAMBLE)
            .temperature(0.0)
            .default_max_turns(max_turns)
            .tool(MarketData {
                sources: sources.clone(),
            })
            .tool(DemandStatistics {
                sources: sources.clone(),
            })
            .tool(DemandPrediction {
                sources: sources.clone(),
            })
            .tool(SearchFlights {
                sources: sources.clone(),
            })
            .tool(SearchDestinations {
                search: search.clone(),
            })
            .build();
        Some(Self {
            agent,
            timeout,
            max_turns,
        })
    }

    /// The deadline of one answer, tool calls included.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Answers `prompt` after `history` (oldest first).
    pub async fn answer(&self, prompt: &str, history: &[Message]) -> Result<String, LlmError> {
        let run = self
            .agent
            .prompt(prompt)
            .history(rig_history(history))
            .max_turns(self.max_turns);
        let response = tokio::time::timeout(self.timeout, run.into_future())
            .await
            .map_err(|_| LlmError::Timeout(self.timeout))?
            .map_err(classify)?;
        count_tokens(&response.usage);
        Ok(response.output().clone())
    }

    /// The same run as [`answer`](Self::answer), streamed: the text as the model writes it, the
    /// tools it calls, then its final answer. Lazy: nothing is sent until it is polled, and
    /// dropping it aborts the provider request. The caller applies [`timeout`](Self::timeout).
    pub fn stream(
        &self,
        prompt: &str,
        history: &[Message],
    ) -> impl Stream<Item = Result<Piece, LlmError>> + Send + 'static {
        self.agent
            .prompt(prompt)
            .history(rig_history(history))
            .max_turns(self.max_turns)
            .stream()
            .filter_map(|item| {
                std::future::ready(match item {
                    Ok(MultiTurnStreamItem::StreamAssistantItem(Item::Event(
                        StreamEvent::Text { text, .. },
                    ))) if !text.is_empty() => Some(Ok(Piece::Text(text))),
                    Ok(MultiTurnStreamItem::ToolCall { tool_call }) => {
                        Some(Ok(Piece::Tool(tool_call.function.name.as_str().to_owned())))
                    }
                    Ok(MultiTurnStreamItem::FinalResponse(response)) => {
                        count_tokens(&response.usage);
                        Some(Ok(Piece::Done(response.output())))
                    }
                    Ok(_) => None,
                    Err(err) => Some(Err(classify(err))),
                })
            })
    }
}

/// One piece of a streamed answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Text the model wrote (of any turn).
    Text(String),
    /// The model called this tool.
    Tool(String),
    /// The run ended with this answer (the final turn's text).
    Done(String),
}

/// An OpenAI-compatible server at `base_url` (chat or embeddings), sent `api_key` as a bearer
/// token; without a key, no `Authorization` header at all (a local server needs none).
pub(crate) fn openai_compatible(base_url: &str, api_key: Option<&Secret<String>>) -> OpenAIConfig {
    let config =
        OpenAIConfig::new(api_key.map_or("", |k| k.expose().as_str())).with_base_url(base_url);
    if api_key.is_none() {
        config.with_auth(Auth::OptionalBearer)
    } else {
        config
    }
}

/// rig's text-flattening rewrite on `config`: text-only content arrays (the system preamble
/// among them) are sent as one string. rig names it after Perplexity, the first provider it was
/// written for; it is exactly Groq's rule for system and assistant messages.
fn flatten_text_content(mut config: OpenAIConfig) -> OpenAIConfig {
    config.dialect.quirks.rewrite = BodyRewrite::Perplexity;
    config
}

fn rig_history(history: &[Message]) -> Vec<RigMessage> {
    history
        .iter()
        .map(|m| {
            if m.role == "assistant" {
                RigMessage::assistant(&m.content)
            } else {
                RigMessage::user(&m.content)
            }
        })
        .collect()
}

fn count_tokens(usage: &rig_agent::completion::Usage) {
    for (kind, tokens) in [
        ("input", usage.input_tokens),
        ("output", usage.output_tokens),
    ] {
        if let Some(tokens) = tokens {
            metrics::counter!("ai_tokens_total", "kind" => kind).increment(tokens);
        }
    }
}

/// Rate limits apart; everything else is a failure of the provider or the run.
fn classify(err: PromptError) -> LlmError {
    let status = match &err {
        PromptError::Report(report) => report.http_status,
        PromptError::Provider(provider) => provider.provider_response_status().map(|s| s.as_u16()),
        _ => None,
    };
    if status == Some(429) {
        LlmError::RateLimited(err.to_string())
    } else {
        LlmError::Failed(err.to_string())
    }
}

/// A data failure as a tool result the model can read.
fn unavailable(err: &DataError) -> ToolExecutionError {
    tracing::warn!(error = %err, "a tool could not fetch its data");
    ToolExecutionError::other("Los datos no están disponibles en este momento; intenta más tarde.")
}

fn counted(tool: &'static str) {
    metrics::counter!("ai_tool_calls_total", "tool" => tool).increment(1);
}

/// `{"destination": "..."}`.
#[derive(Debug, Deserialize)]
pub struct DestinationArgs {
    destination: String,
}

fn destination_schema() -> Value {
    json!({
        "type": "object",
        "properties": {"destination": {"type": "string", "description": "Nombre del destino, p. ej. Cartagena"}},
        "required": ["destination"]
    })
}

/// Declares a data tool: a struct holding the data sources, and its rig `Tool` implementation
/// (name, what the model reads about it, its JSON parameters, and how it answers: a JSON value
/// the model reads, an "error" field for a destination that does not exist, a tool error when
/// the data cannot be fetched). Every call is counted in `ai_tool_calls_total`.
macro_rules! data_tool {
    (
        $(#[doc = $doc:expr])*
        $tool:ident: $name:literal, $args:ty,
        description: $description:expr,
        parameters: $parameters:expr,
        call: |$sources:ident, $arg:ident| $body:expr $(,)?
    ) => {
        $(#[doc = $doc])*
        pub struct $tool {
            sources: Sources,
        }

        impl Tool for $tool {
            const NAME: &'static str = $name;
            type Args = $args;
            type Output = Value;
            type Error = ToolExecutionError;

            fn description(&self) -> String {
                $description.to_owned()
            }

            fn parameters(&self) -> Value {
                $parameters
            }

            async fn call(&self, _ctx: &mut ToolContext, $arg: $args) -> Result<Value, ToolExecutionError> {
                counted(Self::NAME);
                let $sources = &self.sources;
                $body
            }
        }
    };
}

/// A destination's answer, or the "not found" text the model reads.
fn found<T>(
    destination: &str,
    found: Result<Option<T>, DataError>,
    to_json: impl FnOnce(T) -> Value,
) -> Result<Value, ToolExecutionError> {
    match found {
        Ok(Some(value)) => Ok(to_json(value)),
        Ok(None) => Ok(json!({ "error": not_found_text(destination.trim()) })),
        Err(err) => Err(unavailable(&err)),
    }
}

data_tool! {
    /// Market data of a destination.
    MarketData: "market_data", DestinationArgs,
    description: "Datos de mercado de un destino: impuesto por reserva, si está en promoción (10% de descuento), si acepta mascotas, \
         precio base promedio de sus vuelos, número de vuelos y asientos libres.",
    parameters: destination_schema(),
    call: |sources, args| found(&args.destination, sources.market(&args.destination).await, |market| json!(market)),
}

/// `{}`: the tool takes no arguments.
#[derive(Debug, Deserialize)]
pub struct NoArgs {}

data_tool! {
    /// Demand across destinations.
    DemandStatistics: "demand_statistics", NoArgs,
    description: "Estadísticas de demanda: reservas por destino (de más a menos), ingresos totales, número de niños y el destino más popular.",
    parameters: json!({"type": "object", "properties": {}}),
    call: |sources, _args| sources.demand().await.map(|d| json!(d)).map_err(|e| unavailable(&e)),
}

data_tool! {
    /// The contract's demand prediction for a destination.
    DemandPrediction: "demand_prediction", DestinationArgs,
    description: "Predicción de demanda de un destino: reservas actuales, total, participación de mercado, promedio por destino, \
         tendencia (alta, baja, estable), proyección y recomendación.",
    parameters: destination_schema(),
    call: |sources, args| found(&args.destination, sources.prediction(&args.destination).await, |p| json!({
        "destination": p.destination,
        "current_bookings": p.current,
        "total_bookings": p.total,
        "market_share_percent": p.market_share.to_string(),
        "average_per_destination": p.average.to_string(),
        "trend": p.trend.word(),
        "projection": p.projection,
        "recommendation": p.recommendation,
    })),
}

/// `{"origin": "...", "destination": "..."}`, both optional.
#[derive(Debug, Deserialize)]
pub struct SearchArgs {
    #[serde(default)]
    origin: String,
    #[serde(default)]
    destination: String,
}

data_tool! {
    /// Flight search.
    SearchFlights: "search_flights", SearchArgs,
    description: "Busca vuelos por ciudad de origen y/o destino: número de vuelo, origen, destino, precio base y asientos libres.",
    parameters: json!({
        "type": "object",
        "properties": {
            "origin": {"type": "string", "description": "Ciudad de origen (opcional)"},
            "destination": {"type": "string", "description": "Destino (opcional)"}
        }
    }),
    call: |sources, args| sources
        .search(&args.origin, &args.destination)
        .await
        .map(|flights| json!({ "flights": flights }))
        .map_err(|e| unavailable(&e)),
}
