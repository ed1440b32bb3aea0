//! Destination embeddings: stored in `flights.destination_embeddings` (one vector per destination,
//! with the model and dimensions that produced it) and searched in memory.
//!
//! The search holds one model's vectors in a [`VectorIndex`] (the model of the last search: the
//! AI agent's current embedder), loaded on first use and kept in step with the table:
//! - a write through this process is applied to the index when its transaction commits;
//! - writes through other replicas are read back by `updated_at` at most every
//!   `EMBEDDING_INDEX_REFRESH` (default 2s), re-reading an overlap of [`OVERLAP`] so that a
//!   transaction that committed after a later one is not missed. Staleness is therefore bounded
//!   by the refresh interval (a write this replica made is visible at once).
//!
//! A vector is only ever compared with vectors of the same model and dimension: a search for
//! model B reads no row of model A, and a destination re-embedded with B leaves A's index.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use diesel::prelude::*;
use diesel::sql_types::Timestamptz;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use flightmesh_db::{DbError, PgPool};
use flightmesh_events::outbox;

use crate::error::Error;
use crate::events::{OUTBOX, destination_described};
use crate::schema::{destination_embeddings, destinations};
use crate::store::DestinationRow;
use crate::vectors::{Hit, VectorIndex};

/// How far back each refresh re-reads, for transactions that commit after their `updated_at`.
pub const OVERLAP: Duration = Duration::from_secs(10);

/// An embedding that passed validation (vector normalised).
#[derive(Debug, Clone, PartialEq)]
pub struct NewEmbedding {
    pub destination_id: i64,
    pub description: String,
    pub model: String,
    pub vector: Vec<f32>,
    /// `description` becomes the destination's; otherwise it must still be the stored one.
    pub replace_description: bool,
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = destination_embeddings)]
struct EmbeddingRow {
    destination_id: i64,
    model: String,
    dimensions: i32,
    vector: Vec<f32>,
}

struct Loaded {
    index: VectorIndex,
    /// The database clock before the last read: rows updated after it are not in the index yet.
    watermark: DateTime<Utc>,
    checked: Instant,
}

/// The embeddings table and its in-memory index.
#[derive(Clone)]
pub struct Embeddings {
    pool: PgPool,
    exchange: String,
    loaded: Arc<RwLock<Option<Loaded>>>,
    /// One load or refresh at a time; searches meanwhile use the index as it is.
    refreshing: Arc<tokio::sync::Mutex<()>>,
    refresh_every: Duration,
}

fn dimensions_of(vector: &[f32]) -> i32 {
    // Validation caps vectors at MAX_DIMENSIONS (4096).
    i32::try_from(vector.len()).unwrap_or(i32::MAX)
}

impl Embeddings {
    pub fn new(pool: PgPool, exchange: String, refresh_every: Duration) -> Self {
        Self {
            pool,
            exchange,
            loaded: Arc::new(RwLock::new(None)),
            refreshing: Arc::new(tokio::sync::Mutex::new(())),
            refresh_every,
        }
    }

    /// Stores the description (when replacing it; a change emits `destination.described`) and
    /// the vector, in one transaction.
    pub async fn put(&self, new: &NewEmbedding) -> Result<DestinationRow, Error> {
        let mut pooled = self.pool.get().await.map_err(DbError::from)?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        let exchange = self.exchange.clone();
        let row = conn
            .transaction(async |conn: &mut AsyncPgConnection| {
                let mut row = destinations::table
                    .find(new.destination_id)
                    .select(DestinationRow::as_select())
                    .for_update()
                    .first(conn)
                    .await
                    .optional()?
                    .ok_or(Error::DestinationNotFound)?;
                if row.description != new.description {
                    if !new.replace_description {
                        return Err(Error::DescriptionChanged);
                    }
                    diesel::update(destinations::table.find(row.id))
                        .set(destinations::description.eq(&new.description))
                        .execute(conn)
                        .await?;
                    row.description.clone_from(&new.description);
                    outbox::insert(conn, OUTBOX, &destination_described(&row, &exchange)).await?;
                }
                let values = (
                    destination_embeddings::destination_id.eq(row.id),
                    destination_embeddings::model.eq(&new.model),
                    destination_embeddings::dimensions.eq(dimensions_of(&new.vector)),
                    destination_embeddings::vector.eq(&new.vector),
                    destination_embeddings::updated_at
                        .eq(diesel::dsl::sql::<Timestamptz>("clock_timestamp()")),
                );
                diesel::insert_into(destination_embeddings::table)
                    .values(values.clone())
                    .on_conflict(destination_embeddings::destination_id)
                    .do_update()
                    .set(values)
                    .execute(conn)
                    .await?;
                Ok::<_, Error>(row)
            })
            .await?;
        let mut loaded = self.loaded.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(loaded) = loaded.as_mut() {
            if loaded.index.serves(&new.model, new.vector.len()) {
                loaded.index.upsert(row.id, &new.vector);
            } else {
                loaded.index.remove(row.id);
            }
        }
        Ok(row)
    }

    /// The `limit` destinations whose `model` vector is closest to `query` (normalised).
    pub async fn search(
        &self,
        model: &str,
        query: Vec<f32>,
        limit: usize,
    ) -> Result<Vec<Hit>, Error> {
        self.ensure_fresh(model, query.len()).await?;
        let loaded = self.loaded.clone();
        let model = model.to_owned();
        // A scan of 100k vectors is milliseconds of CPU: off the async workers.
        tokio::task::spawn_blocking(move || {
            let loaded = loaded.read().unwrap_or_else(PoisonError::into_inner);
            match loaded.as_ref() {
                Some(loaded) if loaded.index.serves(&model, query.len()) => {
                    loaded.index.search(&query, limit)
                }
                _ => Vec::new(),
            }
        })
        .await
        .map_err(|err| Error::Internal(Box::new(err)))
    }

    /// Vectors of `model` in the index, for metrics and tests.
    #[must_use]
    pub fn indexed(&self, model: &str, dimensions: usize) -> usize {
        let loaded = self.loaded.read().unwrap_or_else(PoisonError::into_inner);
        loaded
            .as_ref()
            .filter(|l| l.index.serves(model, dimensions))
            .map_or(0, |l| l.index.len())
    }

    /// Loads `model`'s vectors if the index holds another model's, or reads back what changed
    /// since the last look if that was longer than the refresh interval ago.
    async fn ensure_fresh(&self, model: &str, dimensions: usize) -> Result<(), Error> {
        let state = |loaded: &Option<Loaded>| match loaded {
            Some(l) if l.index.serves(model, dimensions) => {
                if l.checked.elapsed() < self.refresh_every {
                    None
                } else {
                    Some(Some(l.watermark))
                }
            }
            _ => Some(None),
        };
        let read = |this: &Self| state(&this.loaded.read().unwrap_or_else(PoisonError::into_inner));
        if read(self).is_none() {
            return Ok(());
        }
        let _one_at_a_time = self.refreshing.lock().await;
        let Some(since) = read(self) else {
            // Another search refreshed while this one waited.
            return Ok(());
        };
        let mut conn = self.pool.get().await.map_err(DbError::from)?;
        let now: DateTime<Utc> =
            diesel::select(diesel::dsl::sql::<Timestamptz>("clock_timestamp()"))
                .get_result(&mut conn)
                .await?;
        match since {
            None => {
                let started = Instant::now();
                let rows: Vec<EmbeddingRow> = destination_embeddings::table
                    .filter(destination_embeddings::model.eq(model))
                    .filter(
                        destination_embeddings::dimensions
                            .eq(i32::try_from(dimensions).unwrap_or(i32::MAX)),
                    )
                    .select(EmbeddingRow::as_select())
                    .load(&mut conn)
                    .await?;
                let mut index = VectorIndex::new(model, dimensions);
                for row in &rows {
                    index.upsert(row.destination_id, &row.vector);
                }
                tracing::info!(
                    model,
                    dimensions,
                    vectors = index.len(),
                    elapsed_ms = started.elapsed().as_millis(),
                    "destination embedding index loaded"
                );
                *self.loaded.write().unwrap_or_else(PoisonError::into_inner) = Some(Loaded {
                    index,
                    watermark: now,
                    checked: Instant::now(),
                });
            }
            Some(watermark) => {
                let overlap = TimeDelta::from_std(OVERLAP).unwrap_or(TimeDelta::zero());
                let rows: Vec<EmbeddingRow> = destination_embeddings::table
                    .filter(destination_embeddings::updated_at.gt(watermark - overlap))
                    .select(EmbeddingRow::as_select())
                    .load(&mut conn)
                    .await?;
                let mut loaded = self.loaded.write().unwrap_or_else(PoisonError::into_inner);
                if let Some(loaded) = loaded
                    .as_mut()
                    .filter(|l| l.index.serves(model, dimensions))
                {
                    for row in &rows {
                        let same = row.model == model
                            && usize::try_from(row.dimensions).ok() == Some(dimensions);
                        if same {
                            loaded.index.upsert(row.destination_id, &row.vector);
                        } else {
                            loaded.index.remove(row.destination_id);
                        }
                    }
                    loaded.watermark = now;
                    loaded.checked = Instant::now();
                }
            }
        }
        Ok(())
    }
}
