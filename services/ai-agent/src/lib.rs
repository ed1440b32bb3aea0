//! The AI agent: answers questions about flights and suggests prices from real data.
//!
//! [`data`] fetches facts from the flights and stats services over gRPC (the agent holds no
//! database credentials); [`llm`] wraps them as rig tools for the model (Groq, or any
//! OpenAI-compatible server); [`offline`] answers from the same facts deterministically when no
//! model is configured; [`demand`] is the contract's prediction formula; [`history`] keeps each
//! session's last messages in Redis; [`grpc`] serves `flightmesh.ai.v1.AiAgentService`, whose
//! streamed chat is [`stream`]. [`search`] is the semantic destination search, with the text
//! embedder of [`embeddings`].

pub mod config;
pub mod data;
pub mod demand;
pub mod embeddings;
pub mod grpc;
pub mod history;
pub mod llm;
pub mod offline;
pub mod search;
mod search_tool;
pub mod stream;

use std::sync::Arc;
use std::time::Duration;

use flightmesh_proto::ai::ai_agent_service_server::AiAgentServiceServer;
use flightmesh_runtime::channel::mesh_channel;
use flightmesh_runtime::{CancellationToken, Host};

pub use config::{Config, EmbeddingsProvider, Provider};

/// The service's name in logs and health.
pub const SERVICE_NAME: &str = "ai-agent";

/// Start-up and run-time failures, with their cause chain (one type for every service).
pub use flightmesh_runtime::BoxError;

/// Builds the tools, the model client (one per process) and binds the ports.
pub async fn build(config: Config) -> Result<Host, BoxError> {
    flightmesh_runtime::metrics::declare(grpc::METRICS);
    flightmesh_runtime::metrics::declare(search::METRICS);
    let sources = data::Sources::new(
        mesh_channel(&config.flights_url)?,
        mesh_channel(&config.stats_url)?,
    );
    let search = Arc::new(destination_search(&config)?);
    let llm = llm::Llm::new(
        &config.provider,
        &sources,
        &search,
        config.timeout,
        config.max_turns,
    )
    .map(Arc::new);
    match &config.provider {
        Provider::Offline => tracing::info!(
            provider = "offline",
            "AI provider: the offline answerer (no LLM configured)"
        ),
        Provider::Groq { model, .. } => {
            tracing::info!(provider = "groq", %model, "AI provider: Groq");
        }
        Provider::OpenAiCompatible {
            base_url, model, ..
        } => {
            tracing::info!(provider = "openai-compatible", %base_url, %model, "AI provider: an OpenAI-compatible server");
        }
    }
    let history = Arc::new(history::History::new(
        &config.redis_url,
        &config.key_prefix,
        config.history_messages,
        config.history_max_message_bytes,
        config.history_ttl,
        Duration::from_secs(1),
    )?);
    let agent = grpc::AiAgent::new(sources, llm, history, config.provider.label(), search);
    let mut host = Host::bind(SERVICE_NAME, &config.host).await?;
    host.add_service(AiAgentServiceServer::new(agent));
    Ok(host)
}

/// Builds and runs the service until `shutdown` is cancelled.
pub async fn serve(config: Config, shutdown: CancellationToken) -> Result<(), BoxError> {
    Ok(build(config).await?.run(shutdown).await?)
}

/// The destination search of `config`: its embedder and the flights service's vector search.
fn destination_search(config: &Config) -> Result<search::DestinationSearch, BoxError> {
    let embedder = embeddings::Embedder::new(&config.embeddings);
    tracing::info!(
        model = embedder.model(),
        "destination search embedder: {}",
        match &config.embeddings {
            EmbeddingsProvider::Offline => "offline lexical",
            EmbeddingsProvider::OpenAiCompatible { .. } => "OpenAI-compatible endpoint",
        }
    );
    Ok(search::DestinationSearch::new(
        mesh_channel(&config.flights_url)?,
        embedder,
    ))
}

/// `ai-agent reembed`: re-embeds every stored description with the configured embedder, in
/// batches, logging progress. Searches compare only vectors of the configured model, so until
/// this finishes they find only the destinations already re-embedded.
pub async fn reembed(config: &Config) -> Result<search::Reembedded, BoxError> {
    let started = std::time::Instant::now();
    let mut model_name = String::new();
    let report = reembed_in_batches(
        config,
        search::REEMBED_BATCH,
        |model, done, total, so_far| {
            model_name = model.to_owned();
            tracing::info!(
                model,
                done,
                total,
                stored = so_far.stored,
                skipped = so_far.skipped,
                "reembed progress: {done}/{total}"
            );
        },
    )
    .await?;
    tracing::info!(
        model = %model_name,
        stored = report.stored,
        skipped = report.skipped,
        elapsed_ms = started.elapsed().as_millis(),
        "reembed finished"
    );
    Ok(report)
}

/// Re-embeds every stored description, `batch` at a time, calling `progress(model, done, total,
/// so far)` after each batch.
pub async fn reembed_in_batches(
    config: &Config,
    batch: usize,
    mut progress: impl FnMut(&str, usize, usize, search::Reembedded),
) -> Result<search::Reembedded, BoxError> {
    let search = destination_search(config)?;
    let model = search.model().to_owned();
    Ok(search
        .reembed(batch, |done, total, so_far| {
            progress(&model, done, total, so_far);
        })
        .await?)
}

flightmesh_runtime::service_binary! {
    name: SERVICE_NAME, config: Config,
    about: "The AI agent: answers about flights, price suggestions, demand predictions and destination search",
    commands: |config| {
        /// Re-embed every destination description with the configured embedder and exit
        Reembed => reembed(&config).await.map(drop),
    }
}
