//! Exactly once in effect: duplicates and redeliveries never count twice.

use flightmesh::testing::{Replica, TestMesh, test_env};
use flightmesh_stats_worker::apply;
use flightmesh_stats_worker::consumer::declare_topology;
use flightmesh_stats_worker::keys::Keys;
use flightmesh_testkit::StoredEvent;
use futures::StreamExt;
use lapin::options::{BasicConsumeOptions, BasicPublishOptions};
use lapin::types::FieldTable;
use prost::Message;
use serde_json::json;

use crate::{
    amqp, assert_redis, book, candy_count, cartagena_flight, mesh_with_cartagena_flight,
    wait_for_revenue,
};

async fn first_event(mesh: &TestMesh) -> StoredEvent {
    let mut events = mesh.db.stored_events("bookings.outbox").await;
    assert!(!events.is_empty(), "an event in the outbox");
    events.remove(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_event_published_twice_counts_once() {
    let (mesh, flight) = mesh_with_cartagena_flight(1000.0, true).await;
    book(&mesh, "Nino", 8, false, flight).await;
    wait_for_revenue(&mesh, 95_000).await;

    // The relay publishes an event again (say, it died before marking it sent).
    let event = first_event(&mesh).await;
    let channel = amqp().await;
    channel
        .confirm_select(lapin::options::ConfirmSelectOptions::default())
        .await
        .unwrap();
    let properties =
        flightmesh_events::amqp::event_properties(&event.event_id, &event.event_type, 0, None);
    for _ in 0..2 {
        channel
            .basic_publish(
                mesh.names.exchange.as_str().into(),
                event.event_type.as_str().into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..Default::default()
                },
                &event.payload,
                properties.clone(),
            )
            .await
            .unwrap()
            .await
            .unwrap();
    }
    // A later booking is applied after the duplicates (one queue, in order).
    book(&mesh, "Ana", 30, false, flight).await;
    wait_for_revenue(&mesh, 190_000).await;

    assert_eq!(
        mesh.get("/api/v1/stats/general").await.1,
        json!({"total_revenue": 1900.0, "total_pet_bookings": 0, "total_infant_count": 1, "total_candy_cost": 5.0})
    );
    assert_eq!(candy_count(&mesh).await, json!(1));
    assert_redis(&mesh, "stats:notifications_sent", "2").await;
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_that_dies_between_applying_and_acking_is_redelivered_and_counted_once() {
    // No consumer in the mesh: this test plays the worker that dies.
    let mesh = TestMesh::start_with(|env, _| env.set("STATS_CONSUMER", "false")).await;
    let names = mesh.names.clone();
    let worker_env = test_env(&mesh.db, &names);
    let config = flightmesh_stats_worker::Config::from_env(&worker_env).unwrap();
    let channel = amqp().await;
    declare_topology(&channel, &config.events).await.unwrap();

    // Not on promotion: no destination.created event ahead of the booking's in the queue.
    let flight = cartagena_flight(&mesh, 1000.0, false).await;
    book(&mesh, "Nino", 8, false, flight).await;

    // The doomed worker: receives the event, applies it to Redis, and dies before the ack.
    let mut deliveries = channel
        .basic_consume(
            names.stats_queue.as_str().into(),
            "doomed".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    // The catalog's destination.created may come first (another outbox, another relay): for a
    // destination not on promotion it changes no statistic, so the doomed worker just acks it.
    let delivery = loop {
        let delivery = deliveries.next().await.unwrap().unwrap();
        if delivery
            .properties
            .kind()
            .as_ref()
            .map(ToString::to_string)
            .as_deref()
            == Some("booking.created")
        {
            break delivery;
        }
        delivery
            .ack(lapin::options::BasicAckOptions::default())
            .await
            .unwrap();
    };
    let event = flightmesh_proto::bookings::BookingEvent::decode(delivery.data.as_slice()).unwrap();
    let mut redis = mesh.redis().await;
    let plan = apply::booking_plan(&event, true).unwrap();
    assert!(
        apply::apply(&mut redis, &Keys::new(&names.redis_prefix), &plan, 10_000)
            .await
            .unwrap()
    );
    channel.close(200, "killed".into()).await.unwrap();
    assert_redis(&mesh, "stats:total_revenue_cents", "105000").await;

    // A worker takes over: the event comes back redelivered and is not counted again.
    let worker = Replica::start(flightmesh_stats_worker::build(config).await.unwrap());
    book(&mesh, "Ana", 30, false, flight).await;
    wait_for_revenue(&mesh, 210_000).await;
    assert_redis(&mesh, "stats:total_infant_count", "1").await;
    assert_eq!(candy_count(&mesh).await, json!(1));
    assert_eq!(crate::queue_depth(&names.stats_queue).await, 0);
    worker.stop().await;
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn facts_in_the_unsharded_bitmaps_of_earlier_versions_are_not_applied_again() {
    let names = flightmesh::testing::Isolation::new();
    let keys = Keys::new(&names.redis_prefix);
    let mut redis = crate::process::redis_conn().await;
    // Booking 42 was counted by an earlier version, in the unsharded bitmap.
    let _: i64 = redis::cmd("SETBIT")
        .arg(keys.key("stats:applied:booking.created"))
        .arg(42)
        .arg(1)
        .query_async(&mut redis)
        .await
        .unwrap();
    let event = |id: i64| {
        flightmesh_proto::bookings::BookingEvent::decode(
            crate::process::booking_created(id, "100.00").as_slice(),
        )
        .unwrap()
    };
    let old = apply::booking_plan(&event(42), true).unwrap();
    assert!(!apply::apply(&mut redis, &keys, &old, 10).await.unwrap());
    let new = apply::booking_plan(&event(43), true).unwrap();
    assert!(apply::apply(&mut redis, &keys, &new, 10).await.unwrap());
    assert!(!apply::apply(&mut redis, &keys, &new, 10).await.unwrap());
    let (shard, legacy, revenue): (i64, i64, String) = redis::pipe()
        .cmd("GETBIT")
        .arg(keys.key("stats:applied:booking.created:0"))
        .arg(43)
        .cmd("GETBIT")
        .arg(keys.key("stats:applied:booking.created"))
        .arg(43)
        .cmd("GET")
        .arg(keys.key("stats:total_revenue_cents"))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!((shard, legacy, revenue.as_str()), (1, 0, "10000"));
    flightmesh::testing::cleanup(names);
}
