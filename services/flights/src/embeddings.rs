//! Destination embeddings: stored in `flights.destination_embeddings` (one vector per destination,
//! with the model and dimensions that produced it) and searched in memory.
//!
//! The search holds one model's vectors in a [`VectorIndex`] (the model of the last search: the
//! AI agent's current embedder), loaded on first use and kept in step with the table:
//! - a write through this process is applied to the index when its transaction commits;
//! - writes through other replicas are read back by `updated_at` at most every
//!   `EMBEDDING_INDEX_REFRESH` (default 2s), re-reading an overlap of [`OVERLAP`] so that a
//!   transaction that committed after a later one is not missed. The read-back runs in a
//!   background task started by the first search after the interval; that search, and those
//!   during the read-back, use the index as it is. Staleness is therefore bounded by the refresh
//!   interval plus one read-back (a write this replica made is visible at once).
//!
//! A vector is only ever compared with vectors of the same model and dimension: a search for
//! model B reads no row of model A, and a destination re-embedded with B leaves A's index.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use diesel::prelude::*;
use diesel::sql_types::Timestamptz;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use flightmesh_db::{DbError, PgPool};
use flightmesh_events::outbox;

use crate::error::Error;
use crate::events::{OUTBOX, destination_described, record_catalog_changed};
use crate::schema::{destination_embeddings, destinations};
use crate::store::DestinationRow;
use crate::vectors::{Hit, VectorIndex};
use flightmesh_runtime::status::Fault;

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
    vector: Vec<f32>,
    updated_at: DateTime<Utc>,
}

/// What a refresh reads first: which rows changed, without their vectors.
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = destination_embeddings)]
struct ChangedRow {
    destination_id: i64,
    model: String,
    dimensions: i32,
    updated_at: DateTime<Utc>,
}

/// Rows applied to the index per hold of its write lock (searches wait for no longer).
const APPLY_CHUNK: usize = 1000;

enum IndexState {
    /// Holds the model's vectors, refreshed within the interval.
    Fresh,
    /// Holds them, last refreshed longer ago than the interval (from this database time on).
    Stale(DateTime<Utc>),
    /// Holds another model's vectors, or none.
    Missing,
}

struct Loaded {
    index: VectorIndex,
    /// The `updated_at` of each indexed vector: a refresh re-reading its overlap fetches the
    /// vectors of changed rows only.
    versions: HashMap<i64, DateTime<Utc>>,
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

/// The rows one index holds: the vectors of `model` with `dimensions` components.
fn of_index(
    model: &str,
    dimensions: usize,
) -> diesel::dsl::And<
    diesel::dsl::Eq<destination_embeddings::model, &str>,
    diesel::dsl::Eq<destination_embeddings::dimensions, i32>,
> {
    destination_embeddings::model
        .eq(model)
        .and(destination_embeddings::dimensions.eq(i32::try_from(dimensions).unwrap_or(i32::MAX)))
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
                    record_catalog_changed(conn, "destination", row.id, &exchange).await?;
                }
                let values = (
                    destination_embeddings::destination_id.eq(row.id),
                    destination_embeddings::model.eq(&new.model),
                    destination_embeddings::dimensions.eq(dimensions_of(&new.vector)),
                    destination_embeddings::vector.eq(&new.vector),
                    destination_embeddings::updated_at
                        .eq(diesel::dsl::sql::<Timestamptz>("clock_timestamp()")),
                );
                let updated_at: DateTime<Utc> = diesel::insert_into(destination_embeddings::table)
                    .values(values.clone())
                    .on_conflict(destination_embeddings::destination_id)
                    .do_update()
                    .set(values)
                    .returning(destination_embeddings::updated_at)
                    .get_result(conn)
                    .await?;
                Ok::<_, Error>((row, updated_at))
            })
            .await?;
        let (row, updated_at) = row;
        let mut loaded = self.loaded.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(loaded) = loaded.as_mut() {
            if loaded.index.serves(&new.model, new.vector.len()) {
                loaded.index.upsert(row.id, &new.vector);
                loaded.versions.insert(row.id, updated_at);
            } else {
                loaded.index.remove(row.id);
                loaded.versions.remove(&row.id);
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
        .map_err(|err| Error::from(Fault::internal(err)))
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

    /// Where the index stands for `model` vectors of `dimensions` components.
    fn state(&self, model: &str, dimensions: usize) -> IndexState {
        let loaded = self.loaded.read().unwrap_or_else(PoisonError::into_inner);
        match loaded.as_ref() {
            Some(l) if l.index.serves(model, dimensions) => {
                if l.checked.elapsed() < self.refresh_every {
                    IndexState::Fresh
                } else {
                    IndexState::Stale(l.watermark)
                }
            }
            _ => IndexState::Missing,
        }
    }

    /// Loads `model`'s vectors if the index holds another model's (the caller waits); if it is
    /// older than the refresh interval, reads back what changed in a background task (the caller
    /// searches the index as it is: a refresh never adds to a search's latency).
    async fn ensure_fresh(&self, model: &str, dimensions: usize) -> Result<(), Error> {
        match self.state(model, dimensions) {
            IndexState::Fresh => return Ok(()),
            IndexState::Stale(watermark) => {
                // One refresh at a time; if one is running, this search does not start another.
                if let Ok(guard) = self.refreshing.clone().try_lock_owned() {
                    let this = self.clone();
                    let model = model.to_owned();
                    tokio::spawn(async move {
                        let _one_at_a_time = guard;
                        if let Err(err) = this.refresh(&model, dimensions, watermark).await {
                            // The index keeps serving; the next search tries again.
                            tracing::warn!(error = %err, model, "destination embedding index refresh failed");
                        }
                    });
                }
                return Ok(());
            }
            IndexState::Missing => {}
        }
        let _one_at_a_time = self.refreshing.lock().await;
        if matches!(self.state(model, dimensions), IndexState::Missing) {
            self.load(model, dimensions).await?;
        }
        Ok(())
    }

    /// The database's clock now.
    async fn clock(conn: &mut AsyncPgConnection) -> Result<DateTime<Utc>, Error> {
        Ok(
            diesel::select(diesel::dsl::sql::<Timestamptz>("clock_timestamp()"))
                .get_result(conn)
                .await?,
        )
    }

    /// Replaces the index with every `model` vector of `dimensions` components.
    async fn load(&self, model: &str, dimensions: usize) -> Result<(), Error> {
        let started = Instant::now();
        let mut conn = self.pool.get().await.map_err(DbError::from)?;
        let now = Self::clock(&mut conn).await?;
        let rows: Vec<EmbeddingRow> = destination_embeddings::table
            .filter(of_index(model, dimensions))
            .select(EmbeddingRow::as_select())
            .load(&mut conn)
            .await?;
        let mut index = VectorIndex::new(model, dimensions);
        let mut versions = HashMap::with_capacity(rows.len());
        for row in &rows {
            index.upsert(row.destination_id, &row.vector);
            versions.insert(row.destination_id, row.updated_at);
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
            versions,
            watermark: now,
            checked: Instant::now(),
        });
        Ok(())
    }

    /// Applies the rows changed since `watermark` (minus the overlap) to the index.
    async fn refresh(
        &self,
        model: &str,
        dimensions: usize,
        watermark: DateTime<Utc>,
    ) -> Result<(), Error> {
        let mut conn = self.pool.get().await.map_err(DbError::from)?;
        let now = Self::clock(&mut conn).await?;
        let overlap = TimeDelta::from_std(OVERLAP).unwrap_or(TimeDelta::zero());
        let changed: Vec<ChangedRow> = destination_embeddings::table
            .filter(destination_embeddings::updated_at.gt(watermark - overlap))
            .select(ChangedRow::as_select())
            .load(&mut conn)
            .await?;
        // Of the rows in the window, those the index does not hold at that version: new or
        // re-embedded ones of this model (fetched), and ones now of another model (removed).
        let (fetch, remove) = {
            let loaded = self.loaded.read().unwrap_or_else(PoisonError::into_inner);
            let Some(loaded) = loaded
                .as_ref()
                .filter(|l| l.index.serves(model, dimensions))
            else {
                return Ok(());
            };
            let mut fetch = Vec::new();
            let mut remove = Vec::new();
            for row in &changed {
                let same =
                    row.model == model && usize::try_from(row.dimensions).ok() == Some(dimensions);
                let held = loaded.versions.get(&row.destination_id);
                if same && held != Some(&row.updated_at) {
                    fetch.push(row.destination_id);
                } else if !same && held.is_some() {
                    remove.push(row.destination_id);
                }
            }
            (fetch, remove)
        };
        let mut rows: Vec<EmbeddingRow> = Vec::with_capacity(fetch.len());
        for ids in fetch.chunks(APPLY_CHUNK) {
            rows.extend(
                destination_embeddings::table
                    .filter(destination_embeddings::destination_id.eq_any(ids))
                    .filter(of_index(model, dimensions))
                    .select(EmbeddingRow::as_select())
                    .load(&mut conn)
                    .await?,
            );
        }
        for chunk in rows.chunks(APPLY_CHUNK) {
            let mut loaded = self.loaded.write().unwrap_or_else(PoisonError::into_inner);
            let Some(loaded) = loaded
                .as_mut()
                .filter(|l| l.index.serves(model, dimensions))
            else {
                return Ok(());
            };
            for row in chunk {
                loaded.index.upsert(row.destination_id, &row.vector);
                loaded.versions.insert(row.destination_id, row.updated_at);
            }
        }
        let mut loaded = self.loaded.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(loaded) = loaded
            .as_mut()
            .filter(|l| l.index.serves(model, dimensions))
        {
            for id in &remove {
                loaded.index.remove(*id);
                loaded.versions.remove(id);
            }
            loaded.watermark = now;
            loaded.checked = Instant::now();
        }
        Ok(())
    }
}
