//! Semantic destination search: descriptions and queries are embedded here (the agent owns the
//! [`Embedder`]); the vectors are stored in, and searched by, the flights service (the catalog
//! owns descriptions and their embeddings). Also: the `search_destinations` tool of the model,
//! the offline answer to "where can I…" questions, and the re-embedding of every description.

use std::time::{Duration, Instant};

use flightmesh_proto::ai as pb;
use flightmesh_proto::flights::flight_service_client::FlightServiceClient;
use flightmesh_proto::flights::{
    GetDestinationRequest, ListDestinationsRequest, PutDestinationEmbeddingRequest,
    SearchDestinationEmbeddingsRequest,
};
use flightmesh_runtime::channel::MeshChannel;
use flightmesh_runtime::metrics::Metric;
use flightmesh_runtime::status::{Fault, FieldViolations};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::Serialize;
use tonic::{Code, Status};

use crate::embeddings::{EmbedError, Embedder};
use crate::offline::{find_destination, normalize};

pub(crate) const DEFAULT_LIMIT: i32 = 5;
/// Deadline of one call to the flights service.
const FLIGHTS_TIMEOUT: Duration = Duration::from_secs(5);
/// Descriptions embedded per provider request while re-embedding.
pub const REEMBED_BATCH: usize = 32;
/// Below this similarity a destination does not answer a "where can I…" question (a short
/// question against a long description scores low even when it shares a stem).
const ANSWER_THRESHOLD: f64 = 0.08;
/// Nor does one scoring less than this share of the best match.
const ANSWER_RELATIVE: f64 = 0.5;

/// The search's metrics.
pub const METRICS: &[Metric] = &[
    Metric::counter(
        "ai_embedding_requests_total",
        "Texts embedded for the destination search, by purpose (store, query, reembed) and outcome",
    )
    .labelled(),
    Metric::histogram(
        "ai_destination_search_duration_seconds",
        "Time to answer a destination search (embedding and vector search)",
    ),
];

/// A destination found by its description.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Found {
    pub id: i64,
    pub name: String,
    pub description: String,
    /// Cosine similarity, rounded to 4 decimals.
    pub similarity: f64,
}

/// Why a search or an embedding failed.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error(transparent)]
    Embed(#[from] EmbedError),
    #[error("no destination {0}")]
    NotFound(i64),
    #[error("flights: {0}")]
    Flights(Status),
}

impl From<SearchError> for Status {
    fn from(err: SearchError) -> Self {
        match err {
            SearchError::NotFound(_) => Status::not_found("El destino no existe."),
            // The catalog's own field errors (a description it refuses) reach the client as they are.
            SearchError::Flights(status) if status.code() == Code::InvalidArgument => status,
            SearchError::Flights(status) => {
                let message = "Los datos necesarios no estan disponibles. Intente de nuevo.";
                Fault::peer_unavailable("flights", message, status).into()
            }
            SearchError::Embed(err) => {
                // The provider's answer is logged, never sent.
                tracing::warn!(error = %err, "embeddings provider failed");
                embed_status(&err)
            }
        }
    }
}

/// The contract's answer to a provider failure.
fn embed_status(err: &EmbedError) -> Status {
    match err {
        EmbedError::RateLimited(_) => Status::unavailable(
            "El servicio de embeddings esta saturado. Intente de nuevo en unos segundos.",
        ),
        EmbedError::Unavailable(_) => {
            Status::unavailable("El servicio de embeddings no esta disponible. Intente de nuevo.")
        }
        EmbedError::Timeout(_) => Status::deadline_exceeded(
            "El servicio de embeddings tardo demasiado en responder. Intente de nuevo.",
        ),
        EmbedError::Failed(_) => Status::internal("Error procesando solicitud de IA"),
    }
}

fn outcome(result: &Result<impl Sized, SearchError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(SearchError::Embed(EmbedError::RateLimited(_))) => "rate_limited",
        Err(SearchError::Embed(EmbedError::Unavailable(_))) => "unavailable",
        Err(SearchError::Embed(EmbedError::Timeout(_))) => "timeout",
        Err(SearchError::Embed(EmbedError::Failed(_))) => "failed",
        Err(SearchError::NotFound(_)) => "not_found",
        Err(SearchError::Flights(_)) => "flights_unavailable",
    }
}

/// `x` rounded half away from zero to 4 decimals, from its exact binary value (not from its
/// shortest decimal rendering): 0.12355, stored as 0.1235499999…, rounds to 0.1235.
#[must_use]
pub fn round4(x: f64) -> f64 {
    Decimal::from_f64_retain(x)
        .map(|d| d.round_dp_with_strategy(4, RoundingStrategy::MidpointAwayFromZero))
        .and_then(|d| d.to_f64())
        .unwrap_or(0.0)
}

fn request<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(FLIGHTS_TIMEOUT);
    request
}

/// Progress of a re-embedding.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reembedded {
    /// Descriptions whose vector was stored.
    pub stored: usize,
    /// Descriptions changed meanwhile (already embedded with their new text).
    pub skipped: usize,
}

/// The embedder and the catalog's vector search.
pub struct DestinationSearch {
    flights: FlightServiceClient<MeshChannel>,
    embedder: Embedder,
}

impl DestinationSearch {
    pub fn new(flights: MeshChannel, embedder: Embedder) -> Self {
        Self {
            flights: FlightServiceClient::new(flights),
            embedder,
        }
    }

    /// The model vectors are stored and searched under.
    #[must_use]
    pub fn model(&self) -> &str {
        self.embedder.model()
    }

    async fn embed(&self, purpose: &'static str, text: &str) -> Result<Vec<f32>, SearchError> {
        let result = self
            .embedder
            .embed_one(text)
            .await
            .map_err(SearchError::from);
        metrics::counter!("ai_embedding_requests_total", "purpose" => purpose, "outcome" => outcome(&result))
            .increment(1);
        result
    }

    /// Stores `description` as destination `id`'s, with its embedding.
    pub async fn embed_destination(&self, id: i64, description: &str) -> Result<(), SearchError> {
        let vector = self.embed("store", description).await?;
        if vector.iter().all(|&x| x == 0.0) {
            // The protos' rules held, but the embedder found nothing to embed. That is only
            // worth saying about a destination that exists: an unknown one is 404 either way.
            self.flights
                .clone()
                .get_destination(request(GetDestinationRequest { id }))
                .await
                .map_err(|status| match status.code() {
                    Code::NotFound => SearchError::NotFound(id),
                    _ => SearchError::Flights(status),
                })?;
            let mut violations = FieldViolations::new();
            violations.add(
                "description",
                "description debe contener al menos una palabra con significado",
            );
            return Err(SearchError::Flights(violations.into_status()));
        }
        self.flights
            .clone()
            .put_destination_embedding(request(PutDestinationEmbeddingRequest {
                destination_id: id,
                description: description.to_owned(),
                model: self.model().to_owned(),
                vector,
                replace_description: true,
            }))
            .await
            .map_err(|status| match status.code() {
                Code::NotFound => SearchError::NotFound(id),
                _ => SearchError::Flights(status),
            })?;
        Ok(())
    }

    /// The `limit` destinations whose description is closest to `query`, most similar first.
    pub async fn search(&self, query: &str, limit: i32) -> Result<Vec<Found>, SearchError> {
        let started = Instant::now();
        let vector = self.embed("query", query).await?;
        // A vector with no direction (a blank text, or a model that found nothing): nothing to
        // compare.
        if vector.iter().all(|&x| x == 0.0) {
            return Ok(Vec::new());
        }
        let matches = self
            .flights
            .clone()
            .search_destination_embeddings(request(SearchDestinationEmbeddingsRequest {
                model: self.model().to_owned(),
                vector,
                limit: Some(limit),
            }))
            .await
            .map_err(SearchError::Flights)?
            .into_inner()
            .matches;
        metrics::histogram!("ai_destination_search_duration_seconds")
            .record(started.elapsed().as_secs_f64());
        Ok(matches
            .into_iter()
            .filter_map(|m| {
                m.destination.map(|d| Found {
                    id: d.id,
                    name: d.name,
                    description: d.description.unwrap_or_default(),
                    similarity: round4(m.similarity),
                })
            })
            .collect())
    }

    /// Re-embeds every stored description with the current embedder, `batch` texts per request,
    /// calling `progress` after each batch with (done, total described, so far).
    pub async fn reembed(
        &self,
        batch: usize,
        mut progress: impl FnMut(usize, usize, Reembedded),
    ) -> Result<Reembedded, SearchError> {
        const PAGE: i32 = 1000;
        let mut described = Vec::new();
        let mut skip = 0;
        loop {
            let page = self
                .flights
                .clone()
                .list_destinations(request(ListDestinationsRequest {
                    skip: Some(skip),
                    limit: Some(PAGE),
                }))
                .await
                .map_err(SearchError::Flights)?
                .into_inner()
                .destinations;
            let last = page.len() < usize::try_from(PAGE).unwrap_or(usize::MAX);
            described.extend(page.into_iter().filter_map(|d| {
                d.description
                    .filter(|text| !text.trim().is_empty())
                    .map(|text| (d.id, text))
            }));
            if last {
                break;
            }
            skip += PAGE;
        }
        let total = described.len();
        let mut report = Reembedded::default();
        for chunk in described.chunks(batch.max(1)) {
            let texts: Vec<String> = chunk.iter().map(|(_, text)| text.clone()).collect();
            let result = self.embedder.embed(&texts).await.map_err(SearchError::from);
            metrics::counter!("ai_embedding_requests_total", "purpose" => "reembed", "outcome" => outcome(&result))
                .increment(1);
            for ((id, description), vector) in chunk.iter().zip(result?) {
                if vector.iter().all(|&x| x == 0.0) {
                    report.skipped += 1;
                    continue;
                }
                let stored = self
                    .flights
                    .clone()
                    .put_destination_embedding(request(PutDestinationEmbeddingRequest {
                        destination_id: *id,
                        description: description.clone(),
                        model: self.model().to_owned(),
                        vector,
                        replace_description: false,
                    }))
                    .await;
                match stored {
                    Ok(_) => report.stored += 1,
                    // Its description changed meanwhile, and was embedded with the change.
                    Err(status) if status.code() == Code::Aborted => report.skipped += 1,
                    Err(status) => return Err(SearchError::Flights(status)),
                }
            }
            progress(report.stored + report.skipped, total, report);
        }
        Ok(report)
    }
}

pub use crate::search_tool::{SearchDestinations, SearchDestinationsArgs};

/// Runs `EmbedDestination` (`req` already validated).
pub async fn embed_destination_rpc(
    search: &DestinationSearch,
    req: pb::EmbedDestinationRequest,
) -> Result<pb::EmbedDestinationResponse, Status> {
    let description = req.description.trim();
    let result = search
        .embed_destination(req.destination_id, description)
        .await;
    if let Err(err) = &result {
        tracing::warn!(destination_id = req.destination_id, error = %err, "embedding not stored");
    }
    result?;
    Ok(pb::EmbedDestinationResponse {
        status: "ok".to_owned(),
        message: format!("Embedding almacenado para destino {}", req.destination_id),
    })
}

/// Runs `SearchDestinations` (`req` already validated: the limit is within bounds).
pub async fn search_destinations_rpc(
    search: &DestinationSearch,
    req: pb::SearchDestinationsRequest,
) -> Result<pb::SearchDestinationsResponse, Status> {
    let query = req.query.trim();
    let limit = req.limit.unwrap_or(DEFAULT_LIMIT);
    let result = search.search(query, limit).await;
    if let Err(err) = &result {
        tracing::warn!(error = %err, "destination search failed");
    }
    Ok(pb::SearchDestinationsResponse {
        results: result?
            .into_iter()
            .map(|f| pb::DestinationSearchResult {
                id: f.id,
                name: f.name,
                description: f.description,
                similarity: f.similarity,
            })
            .collect(),
    })
}

/// Whether a question asks where to go ("¿dónde puedo bucear?", "where can I ski?").
#[must_use]
pub fn asks_where(question: &str) -> bool {
    let question = normalize(question);
    [
        " donde ",
        " adonde ",
        " where ",
        " que destino",
        " recomienda",
        " recommend",
    ]
    .iter()
    .any(|w| question.contains(w))
}

/// The offline answer to a "where can I…" question that names no known destination, from the
/// semantic search; `None` for any other question.
pub async fn offline_where_answer(
    search: &DestinationSearch,
    question: &str,
    destination_names: &[String],
) -> Result<Option<String>, SearchError> {
    if !asks_where(question) || find_destination(question, destination_names).is_some() {
        return Ok(None);
    }
    let found = search.search(question, 3).await?;
    let best = found.first().map_or(0.0, |f| f.similarity);
    let found: Vec<Found> = found
        .into_iter()
        .filter(|f| f.similarity >= ANSWER_THRESHOLD && f.similarity >= best * ANSWER_RELATIVE)
        .collect();
    Ok(Some(if found.is_empty() {
        "No encontré destinos cuya descripción coincida con lo que busca.".to_owned()
    } else {
        let list: Vec<String> = found
            .iter()
            .map(|f| format!("{} ({})", f.name, f.description))
            .collect();
        format!(
            "Por su descripción, estos destinos encajan con lo que busca: {}.",
            list.join("; ")
        )
    }))
}

#[cfg(test)]
mod tests;
