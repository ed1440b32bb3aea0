//! The read-mostly catalog, answered from memory.
//!
//! Destinations and flights change a few times a day and are read on every page view: without a
//! cache each read costs a database round trip (and the seats a call to bookings), and under a
//! burst of readers the pool, not the catalog, sets the pace. Answers are cached per request
//! (page or id) and dropped:
//!
//! - at once in this replica when it writes the catalog (read-your-writes);
//! - in every replica when a `catalog.changed` event arrives (each replica binds its own
//!   exclusive queue to the catalog exchange; see [`follow_catalog_events`]) — milliseconds
//!   after the write commits and the relay publishes it;
//! - at the latest after `CATALOG_CACHE_TTL` (default 10 s), should events be late or lost
//!   (broker down, a replica reconnecting: a reconnect also drops everything).
//!
//! Answers that show `seats_available` (flights) are not kept by default (`SEATS_CACHE_TTL` 0):
//! seats change with every booking, which the catalog's events do not announce, and a client
//! that booked expects to see the seat gone. Raising it trades that for fewer seat lookups (a
//! stale count only changes what is displayed: bookings take seats atomically).
//!
//! Concurrent misses of one key run one load (the others wait for it and share its answer),
//! whatever the TTL: a burst of identical reads costs one query per key, not one per request. The number of
//! cached answers is bounded (`MAX_ENTRIES`; pages and ids beyond it evict the expired ones, or
//! everything).

use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt as _;
use lapin::Channel;
use lapin::options::BasicConsumeOptions;
use lapin::types::FieldTable;
use tokio::sync::OnceCell;
// tokio's clock: the std one in a service, a paused one the tests move by hand.
use tokio::time::Instant;

use flightmesh_runtime::CancellationToken;
use flightmesh_runtime::backoff::Backoff;
use flightmesh_runtime::config::Secret;

use crate::events::CATALOG_CHANGED;

/// Most cached answers per replica (each a page or one flight/destination).
pub const MAX_ENTRIES: usize = 4096;

/// What a cached answer is the answer to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    /// A page of destinations (skip, limit).
    Destinations(i64, i64),
    /// One destination.
    Destination(i64),
    /// A page of flight rows, without seats (skip, limit).
    FlightRows(i64, i64),
    /// One flight's row, without seats.
    FlightRow(i64),
    /// A page of flights, with seats (skip, limit).
    Flights(i64, i64),
    /// One flight, with seats.
    Flight(i64),
}

impl Key {
    /// Whether the answer shows seats (and so lives at most the seats TTL).
    fn shows_seats(&self) -> bool {
        matches!(self, Self::Flights(..) | Self::Flight(_))
    }
}

type Value = Arc<dyn Any + Send + Sync>;

/// One cached answer, or the load of it in progress.
struct Slot {
    generation: u64,
    expires: Instant,
    value: OnceCell<Value>,
}

/// How long answers live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheConfig {
    /// Catalog answers without seats: the bound on staleness when events are late or lost.
    pub catalog_ttl: Duration,
    /// Answers that show seats.
    pub seats_ttl: Duration,
}

/// The cache; clones share it.
#[derive(Clone)]
pub struct CatalogCache {
    config: CacheConfig,
    generation: Arc<AtomicU64>,
    slots: Arc<Mutex<HashMap<Key, Arc<Slot>>>>,
}

impl CatalogCache {
    #[must_use]
    pub fn new(config: CacheConfig) -> Self {
        Self {
            config,
            generation: Arc::new(AtomicU64::new(0)),
            slots: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Every cached answer is stale from now on.
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// The cached answer to `key`, or `load`'s (cached unless it fails). A TTL of zero keeps
    /// nothing (every read after a load completed loads again) but still lets concurrent reads
    /// of one key share one load.
    pub async fn get_or_load<T, E, F>(&self, key: Key, load: F) -> Result<T, E>
    where
        T: Clone + Send + Sync + 'static,
        F: Future<Output = Result<T, E>>,
    {
        let ttl = if key.shows_seats() {
            self.config.seats_ttl
        } else {
            self.config.catalog_ttl
        };
        let slot = self.slot(key, ttl);
        let value = slot
            .value
            .get_or_try_init(|| async { load.await.map(|v| Arc::new(v) as Value) })
            .await?;
        Ok(value
            .downcast_ref::<T>()
            .expect("a key always caches the same type")
            .clone())
    }

    /// The live slot of `key`, or a new empty one in its place.
    fn slot(&self, key: Key, ttl: Duration) -> Arc<Slot> {
        let generation = self.generation.load(Ordering::SeqCst);
        let now = Instant::now();
        let mut slots = self.slots.lock().expect("the cache lock is never poisoned");
        // A slot whose load is under way is joined whatever its TTL: with a TTL of zero the
        // cache keeps nothing, but concurrent identical reads still share one query.
        if let Some(slot) = slots.get(&key)
            && slot.generation == generation
            && (slot.expires > now || !slot.value.initialized())
        {
            return slot.clone();
        }
        if slots.len() >= MAX_ENTRIES {
            slots.retain(|_, s| {
                s.generation == generation && (s.expires > now || !s.value.initialized())
            });
            if slots.len() >= MAX_ENTRIES {
                slots.clear();
            }
        }
        let slot = Arc::new(Slot {
            generation,
            expires: now + ttl,
            value: OnceCell::new(),
        });
        slots.insert(key, slot.clone());
        slot
    }

    /// How many answers are held (for tests and the bound).
    #[must_use]
    pub fn len(&self) -> usize {
        self.slots.lock().map(|s| s.len()).unwrap_or(0)
    }

    /// Whether nothing is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Drops `cache` whenever any replica changes the catalog: consumes `catalog.changed` from
/// `exchange` on an exclusive, auto-deleted queue of this replica's own, reconnecting with
/// backoff (dropping everything at each (re)connect: events may have been missed) until
/// `shutdown`. A supervised task: it returns only then.
pub async fn follow_catalog_events(
    cache: CatalogCache,
    amqp_url: Secret<String>,
    exchange: String,
    shutdown: CancellationToken,
) {
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
    loop {
        let listened = tokio::select! {
            () = shutdown.cancelled() => return,
            listened = listen(&cache, &amqp_url, &exchange, &mut backoff) => listened,
        };
        if let Err(err) = listened {
            tracing::warn!(
                error = %flightmesh_runtime::telemetry::error_chain(&err),
                "catalog events unavailable: the cached catalog expires by its TTL meanwhile; reconnecting"
            );
        }
        cache.invalidate();
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(backoff.next_delay()) => {}
        }
    }
}

/// One connection's worth of listening; returns when it breaks.
async fn listen(
    cache: &CatalogCache,
    amqp_url: &Secret<String>,
    exchange: &str,
    backoff: &mut Backoff,
) -> Result<(), lapin::Error> {
    let connection = flightmesh_events::amqp::connect(amqp_url, "flights catalog cache").await?;
    let channel = connection.create_channel().await?;
    let queue = declare(&channel, exchange).await?;
    // Anything may have changed while nobody listened.
    cache.invalidate();
    backoff.reset();
    let mut deliveries = channel
        .basic_consume(
            queue.as_str().into(),
            "flights-catalog-cache".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..BasicConsumeOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    while let Some(delivery) = deliveries.next().await {
        delivery?;
        cache.invalidate();
    }
    Err(lapin::Error::from(
        lapin::ErrorKind::InvalidConnectionState(lapin::ConnectionState::Closed),
    ))
}

/// The catalog exchange and this replica's queue bound to
/// `catalog.changed`; returns the queue's server-made name.
async fn declare(channel: &Channel, exchange: &str) -> Result<String, lapin::Error> {
    flightmesh_events::amqp::declare_event_exchange(channel, exchange).await?;
    let queue =
        flightmesh_events::amqp::declare_private_queue(channel, exchange, CATALOG_CHANGED).await?;
    Ok(queue.to_string())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    fn cache(catalog_ttl: u64, seats_ttl: u64) -> CatalogCache {
        CatalogCache::new(CacheConfig {
            catalog_ttl: Duration::from_millis(catalog_ttl),
            seats_ttl: Duration::from_millis(seats_ttl),
        })
    }

    async fn load(cache: &CatalogCache, key: Key, loads: &AtomicUsize) -> u64 {
        cache
            .get_or_load(key, async {
                Ok::<_, ()>(loads.fetch_add(1, Ordering::SeqCst) as u64)
            })
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn answers_are_served_until_invalidated() {
        let cache = cache(60_000, 60_000);
        let loads = AtomicUsize::new(0);
        assert_eq!(load(&cache, Key::Destination(1), &loads).await, 0);
        assert_eq!(load(&cache, Key::Destination(1), &loads).await, 0);
        assert_eq!(load(&cache, Key::Destination(2), &loads).await, 1);
        cache.invalidate();
        assert_eq!(load(&cache, Key::Destination(1), &loads).await, 2);
        assert_eq!(loads.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn answers_with_seats_expire_sooner_and_a_zero_ttl_turns_caching_off() {
        let cache = cache(60_000, 0);
        let loads = AtomicUsize::new(0);
        load(&cache, Key::Flight(1), &loads).await;
        load(&cache, Key::Flight(1), &loads).await;
        assert_eq!(loads.load(Ordering::SeqCst), 2, "seats are not cached");
        load(&cache, Key::Destinations(0, 100), &loads).await;
        load(&cache, Key::Destinations(0, 100), &loads).await;
        assert_eq!(loads.load(Ordering::SeqCst), 3);

        let short = self::cache(60_000, 20);
        load(&short, Key::Flights(0, 100), &loads).await;
        tokio::time::advance(Duration::from_millis(19)).await;
        load(&short, Key::Flights(0, 100), &loads).await;
        assert_eq!(loads.load(Ordering::SeqCst), 4, "kept within the seats TTL");
        tokio::time::advance(Duration::from_millis(2)).await;
        load(&short, Key::Flights(0, 100), &loads).await;
        assert_eq!(
            loads.load(Ordering::SeqCst),
            5,
            "expired after the seats TTL"
        );
    }

    #[tokio::test]
    async fn concurrent_misses_run_one_load_and_failures_are_not_cached() {
        let cache = cache(60_000, 60_000);
        let loads = Arc::new(AtomicUsize::new(0));
        let mut readers = Vec::new();
        for _ in 0..50 {
            let (cache, loads) = (cache.clone(), loads.clone());
            readers.push(tokio::spawn(async move {
                cache
                    .get_or_load(Key::Flights(0, 100), async {
                        loads.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        Ok::<_, ()>(7_u8)
                    })
                    .await
            }));
        }
        for reader in readers {
            assert_eq!(reader.await.unwrap(), Ok(7));
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1);

        let failed: Result<u8, &str> = cache
            .get_or_load(Key::Flight(9), async { Err("database down") })
            .await;
        assert_eq!(failed, Err("database down"));
        let retried: Result<u8, &str> = cache.get_or_load(Key::Flight(9), async { Ok(1) }).await;
        assert_eq!(retried, Ok(1));
    }

    #[tokio::test]
    async fn the_number_of_answers_is_bounded() {
        let cache = cache(60_000, 60_000);
        let loads = AtomicUsize::new(0);
        for id in 0..(MAX_ENTRIES as i64 + 10) {
            load(&cache, Key::Destination(id), &loads).await;
        }
        assert!(cache.len() <= MAX_ENTRIES, "{}", cache.len());
    }
}
