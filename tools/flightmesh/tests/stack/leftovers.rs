//! A test run killed before its cleanup leaves exchanges, queues and Redis keys on the shared
//! servers; the next run's first `Isolation` removes them, and only them.

use flightmesh::testing::{
    AMQP_URL, Isolation, LIVE_ISOLATIONS, REDIS_URL, cleanup, sweep_orphans,
};
use flightmesh_runtime::Secret;
use flightmesh_stats_worker::topology::declare_topology;
use flightmesh_testkit::{ended_pid, unique_name};
use lapin::options::ExchangeDeclareOptions;
use lapin::types::FieldTable;
use lapin::{Connection, ExchangeKind};
use redis::AsyncCommands;

/// Declares `names`' whole topology, as its stats worker would, and a key under its prefix, and
/// lists it as a live isolation.
async fn leave(
    broker: &Connection,
    redis: &mut redis::aio::MultiplexedConnection,
    names: &Isolation,
) {
    let channel = broker.create_channel().await.unwrap();
    declare_topology(&channel, &names.consumer()).await.unwrap();
    let _: () = redis
        .set(
            format!("{}stats:total_revenue", names.redis_prefix),
            "950.0",
        )
        .await
        .unwrap();
    let _: () = redis.sadd(LIVE_ISOLATIONS, &names.id).await.unwrap();
}

#[derive(Clone, Copy)]
enum Kind {
    Queue,
    Exchange,
}

/// Whether the queue or exchange `name` exists: a passive declare of a missing one closes its
/// channel, so each check has a channel of its own.
async fn exists(broker: &Connection, kind: Kind, name: &str) -> bool {
    let channel = broker.create_channel().await.unwrap();
    match kind {
        Kind::Queue => flightmesh_events::amqp::inspect_queue(&channel, name)
            .await
            .is_ok(),
        Kind::Exchange => {
            let passive = ExchangeDeclareOptions {
                passive: true,
                ..ExchangeDeclareOptions::default()
            };
            let (kind, args) = (ExchangeKind::Topic, FieldTable::default());
            channel
                .exchange_declare(name.into(), kind, passive, args)
                .await
                .is_ok()
        }
    }
}

/// The shared broker and Redis.
async fn connect() -> (Connection, redis::aio::MultiplexedConnection) {
    let broker =
        flightmesh_events::amqp::connect(&Secret::new(AMQP_URL.to_owned()), "leftovers test")
            .await
            .unwrap();
    let redis = redis::Client::open(REDIS_URL)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    (broker, redis)
}

/// That nothing of `names` is left: its queues, exchanges and keys, its entry in the list.
async fn assert_removed(
    broker: &Connection,
    redis: &mut redis::aio::MultiplexedConnection,
    names: &Isolation,
) {
    let consumer = names.consumer();
    for queue in consumer.queues() {
        assert!(
            !exists(broker, Kind::Queue, &queue).await,
            "{queue} removed"
        );
    }
    for exchange in [
        &consumer.bookings_exchange,
        &consumer.catalog_exchange,
        &consumer.dead_exchange(),
    ] {
        let gone = !exists(broker, Kind::Exchange, exchange).await;
        assert!(gone, "{exchange} removed");
    }
    let keys: Vec<String> = redis
        .keys(format!("{}*", names.redis_prefix))
        .await
        .unwrap();
    assert_eq!(keys, Vec::<String>::new());
    let listed: bool = redis.sismember(LIVE_ISOLATIONS, &names.id).await.unwrap();
    assert!(!listed, "{} is no longer listed", names.id);
}

#[tokio::test(flavor = "multi_thread")]
async fn what_a_killed_run_left_on_the_broker_and_redis_is_removed_and_a_live_run_keeps_its_own() {
    let left = Isolation::named(unique_name(&format!("t_{}", ended_pid())), 2);
    let live = Isolation::new();
    let consumer = left.consumer();
    let (broker, mut redis) = connect().await;
    leave(&broker, &mut redis, &left).await;
    leave(&broker, &mut redis, &live).await;
    let left_queues = consumer.queues();
    assert_eq!(left_queues.len(), 4, "queue, dead letters, 2 retry queues");
    for queue in &left_queues {
        assert!(
            exists(&broker, Kind::Queue, queue).await,
            "{queue} declared"
        );
    }

    sweep_orphans();

    assert_removed(&broker, &mut redis, &left).await;

    // The running process's isolation is untouched until its own cleanup.
    assert!(exists(&broker, Kind::Queue, &live.stats_queue).await);
    assert!(exists(&broker, Kind::Exchange, &live.exchange).await);
    let live_keys: Vec<String> = redis.keys(format!("{}*", live.redis_prefix)).await.unwrap();
    assert_eq!(live_keys.len(), 1);
    let listed: bool = redis.sismember(LIVE_ISOLATIONS, &live.id).await.unwrap();
    assert!(listed);

    cleanup(live.clone());
    assert!(!exists(&broker, Kind::Queue, &live.stats_queue).await);
    let listed: bool = redis.sismember(LIVE_ISOLATIONS, &live.id).await.unwrap();
    assert!(!listed, "cleanup takes the isolation off the list");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_mesh_leaves_nothing_on_the_broker_or_in_redis() {
    let mesh = flightmesh::testing::TestMesh::start().await;
    let names = mesh.names.clone();
    let flight = mesh.cartagena_flight(10).await;
    let booking =
        serde_json::json!({"passenger_name": "Ana", "passenger_age": 9, "flight_id": flight});
    assert_eq!(mesh.post("/api/v1/bookings/", &booking).await.0, 200);
    // The stats worker is busy with the mesh's events, its queues declared, when the mesh goes.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while mesh.redis_get("stats:total_revenue").await.is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the booking is never counted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    drop(mesh);

    let (broker, mut redis) = connect().await;
    assert_removed(&broker, &mut redis, &names).await;
}
