//! The transactional outbox: events reach RabbitMQ whatever the broker does meanwhile, exactly
//! as stored, each once in the outbox, none lost — with several relays running.

use std::collections::HashSet;
use std::time::Duration;

use diesel_async::RunQueryDsl;
use flightmesh::testing::{TestMesh, eventually};
use flightmesh_proto::bookings::BookingEvent;
use flightmesh_testkit::TcpProxy;
use prost::Message;
use serde_json::json;

use crate::consumer::consume;
use crate::{book, db_config, events_stored, pool, seats_taken, sql};

/// Outbox rows the broker has not confirmed yet.
async fn unpublished(mesh: &TestMesh) -> i64 {
    mesh.db
        .count("SELECT count(*) FROM bookings.outbox WHERE published_at IS NULL")
        .await
}

/// Waits until every outbox row is marked published. A row is marked once the broker's confirm
/// reaches its relay, which can be after a consumer already has the message.
async fn all_published(mesh: &TestMesh, within: Duration) {
    eventually(within, || async { unpublished(mesh).await == 0 }).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_booking_made_while_the_broker_is_down_is_published_when_it_returns() {
    let proxy = TcpProxy::start("127.0.0.1:5672".parse().unwrap()).await;
    let amqp = format!("amqp://guest:guest@{}/%2f", proxy.addr());
    let mesh = TestMesh::start_with(move |env, _| env.set("BOOKINGS_AMQP_URL", amqp)).await;
    let inbox = consume(&mesh.names.exchange).await;
    let flight = mesh.cartagena_flight(100).await;

    proxy.cut();
    let (status, booking) = book(&mesh, "Ana", 8, true, flight).await;
    assert_eq!(
        status, 200,
        "the booking does not wait for the broker: {booking}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        inbox.len(),
        0,
        "nothing can be published while the broker is unreachable"
    );
    assert_eq!(unpublished(&mesh).await, 1);

    proxy.restore();
    eventually(Duration::from_secs(20), || async { inbox.len() == 1 }).await;

    let stored = mesh.db.stored_events("bookings.outbox").await.remove(0);
    let received = inbox.messages.lock().unwrap()[0].clone();
    assert_eq!(received.data, stored.payload, "published exactly as stored");
    assert_eq!(received.routing_key, "booking.created");
    let properties = &received.properties;
    assert_eq!(
        properties.message_id().as_ref().unwrap().as_str(),
        stored.event_id
    );
    assert_eq!(
        properties.kind().as_ref().unwrap().as_str(),
        stored.event_type
    );
    assert_eq!(
        properties.content_type().as_ref().unwrap().as_str(),
        "application/protobuf"
    );
    assert_eq!(*properties.delivery_mode(), Some(2));

    let event = BookingEvent::decode(received.data.as_slice()).unwrap();
    let snapshot = event.booking.unwrap();
    assert_eq!(event.event_id, stored.event_id);
    assert_eq!(snapshot.booking_id, booking["id"].as_i64().unwrap());
    assert_eq!((snapshot.passenger_age, snapshot.has_pet), (8, true));
    assert_eq!(snapshot.total_price.unwrap().value, "950.00");
    assert_eq!(
        (
            snapshot.destination_name.as_str(),
            snapshot.flight_number.as_str()
        ),
        ("Cartagena", "CT-1")
    );
    all_published(&mesh, Duration::from_secs(10)).await;
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_concurrent_bookings_with_two_relays_all_arrive() {
    const BOOKINGS: usize = 1000;
    const CLIENTS: usize = 32;
    let mesh = TestMesh::start().await;
    let inbox = consume(&mesh.names.exchange).await;

    // A second bookings replica on the same database: two relays share the outbox.
    let env = flightmesh::testing::test_env(&mesh.db, &mesh.names)
        .set("FLIGHTS_URL", format!("http://{}", mesh.addrs.flights))
        .set("OUTBOX_BATCH_SIZE", "50");
    let second = flightmesh_bookings::build(flightmesh_bookings::Config::from_env(&env).unwrap())
        .await
        .unwrap();
    let second = flightmesh::testing::Replica::start(second);

    let destination = mesh.destination("Cartagena", 50.0, true, true).await;
    let flights: Vec<i64> = futures::future::join_all((0..10).map(|i| {
        mesh.flight(
            Box::leak(format!("CT-{i}").into_boxed_str()),
            100.0,
            destination,
            500,
        )
    }))
    .await;
    let clients = (0..CLIENTS).map(|c| {
        let http = mesh.http.clone();
        let url = mesh.url("/api/v1/bookings/");
        let flights = flights.clone();
        tokio::spawn(async move {
            for i in (c..BOOKINGS).step_by(CLIENTS) {
                let body = json!({"passenger_name": format!("P{i}"), "passenger_age": 30, "flight_id": flights[i % flights.len()]});
                let response = http.post(&url).json(&body).send().await.unwrap();
                assert_eq!(response.status(), 200);
            }
        })
    });
    for client in clients {
        client.await.unwrap();
    }

    eventually(Duration::from_secs(60), || async {
        inbox.by_id().len() >= BOOKINGS
    })
    .await;
    let stored = mesh.db.stored_events("bookings.outbox").await;
    assert_eq!(stored.len(), BOOKINGS);
    let received: HashSet<String> = inbox.by_id().into_keys().collect();
    let missing: Vec<_> = stored
        .iter()
        .filter(|e| !received.contains(&e.event_id))
        .collect();
    assert!(missing.is_empty(), "{} events never arrived", missing.len());
    all_published(&mesh, Duration::from_secs(10)).await;

    second.stop().await;
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_booking_whose_transaction_fails_after_the_outbox_insert_leaves_nothing() {
    let mesh = TestMesh::start().await;
    let flight = mesh.cartagena_flight(100).await;
    assert_eq!(book(&mesh, "Before", 30, false, flight).await.0, 200);

    // A deferred trigger fails the COMMIT of any transaction that wrote this passenger's event:
    // the failure happens after every statement of the booking, outbox insert included.
    let mut conn = sql(&mesh).await;
    diesel::sql_query(
        "CREATE FUNCTION bookings.fail_commit() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN IF NEW.payload_json->>'passenger_name' = 'Doomed' THEN \
         RAISE EXCEPTION 'injected failure at commit'; END IF; RETURN NEW; END $$",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    diesel::sql_query(
        "CREATE CONSTRAINT TRIGGER fail_commit AFTER INSERT ON bookings.outbox \
         DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bookings.fail_commit()",
    )
    .execute(&mut conn)
    .await
    .unwrap();

    let (status, body) = book(&mesh, "Doomed", 30, false, flight).await;
    assert_eq!(
        (status, body),
        (500, json!({"detail": "Error interno del servidor."}))
    );
    assert_eq!(
        mesh.db
            .count("SELECT count(*) FROM bookings.bookings WHERE passenger_name = 'Doomed'")
            .await,
        0
    );
    assert_eq!(
        mesh.db.count("SELECT count(*) FROM bookings.outbox WHERE payload_json->>'passenger_name' = 'Doomed'").await,
        0
    );
    assert_eq!(seats_taken(&mesh).await, 1, "the seat is not taken");
    // The service is fine afterwards.
    assert_eq!(book(&mesh, "After", 30, false, flight).await.0, 200);
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn published_rows_older_than_the_retention_are_purged_by_two_relays_at_once() {
    let mesh = TestMesh::start().await;
    let flight = mesh.cartagena_flight(100).await;
    for name in ["Ana", "Beto", "Carla", "Dario", "Elena", "Fabio"] {
        let (status, booking) = book(&mesh, name, 1, true, flight).await;
        assert_eq!(status, 200, "{booking}");
    }
    let mut conn = sql(&mesh).await;
    all_published(&mesh, Duration::from_secs(20)).await;
    // Four rows were published two hours ago, one stays recent, and one is old but was never
    // confirmed (reserved far ahead so the running relay leaves it alone): only the four go.
    diesel::sql_query(
        "UPDATE bookings.outbox SET published_at = now() - interval '2 hours' \
         WHERE id IN (SELECT id FROM bookings.outbox ORDER BY id LIMIT 4)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    diesel::sql_query(
        "UPDATE bookings.outbox SET published_at = NULL, created_at = now() - interval '3 hours', \
         claimed_until = now() + interval '1 day' \
         WHERE id = (SELECT max(id) FROM bookings.outbox)",
    )
    .execute(&mut conn)
    .await
    .unwrap();

    let purge = |pool: flightmesh_db::PgPool| async move {
        let mut purged = 0;
        loop {
            let deleted = flightmesh_events::outbox::purge_published(
                &pool,
                "bookings.outbox",
                Duration::from_secs(3600),
                1,
            )
            .await
            .unwrap();
            if deleted == 0 {
                return purged;
            }
            purged += deleted;
        }
    };
    let (first, second) = tokio::join!(purge(pool(&mesh)), purge(pool(&mesh)));
    assert_eq!(first + second, 4, "each old published row deleted once");

    assert_eq!(events_stored(&mesh).await, 2);
    assert_eq!(
        unpublished(&mesh).await,
        1,
        "an unconfirmed row is kept however old"
    );
    assert_eq!(
        mesh.db.count("SELECT count(*) FROM bookings.outbox WHERE published_at > now() - interval '1 hour'").await,
        1,
        "a recently published row is kept"
    );
}

/// The outbox table moved from bookings' first migration to the one every publishing service
/// shares (flightmesh-events, version 20261128000002). A database migrated before the move has
/// the table but not that version: migrating it records the version, keeps the events, and the
/// service goes on writing them.
#[tokio::test(flavor = "multi_thread")]
async fn a_database_whose_outbox_predates_the_shared_migration_migrates_and_keeps_its_events() {
    let mesh = TestMesh::start().await;
    let flight = mesh.cartagena_flight(100).await;
    let (status, booking) = book(&mesh, "Ana", 30, false, flight).await;
    assert_eq!(status, 200, "{booking}");
    forget_migration(&mesh, "20261128000002").await;

    let db = db_config(&mesh);
    let applied = flightmesh_bookings::migrate(&db).await.unwrap();
    assert_eq!(applied, ["20261128000002"]);
    assert!(flightmesh_bookings::migrate(&db).await.unwrap().is_empty());

    assert_eq!(events_stored(&mesh).await, 1, "the stored event is kept");
    let (status, booking) = book(&mesh, "Beto", 30, false, flight).await;
    assert_eq!(status, 200, "{booking}");
    assert_eq!(events_stored(&mesh).await, 2);
}

/// The retention purge finds published rows through `outbox_published_idx`, which the shared
/// outbox migrations create (version 20261206000001) in every publishing service's outbox. It
/// replaced bookings' own migration of the index (20261205000001): a bookings database that
/// has the index from it records the new version and keeps its one index.
#[tokio::test(flavor = "multi_thread")]
async fn every_outbox_has_the_purge_index_once() {
    let mesh = TestMesh::start().await;
    let purge_indexes = "SELECT count(*) FROM pg_indexes WHERE tablename = 'outbox' \
                         AND indexname = 'outbox_published_idx'";
    assert_eq!(
        mesh.db
            .count(&format!(
                "{purge_indexes} AND schemaname IN ('flights', 'bookings')"
            ))
            .await,
        2,
        "flights' and bookings' outboxes each have the purge's index"
    );

    forget_migration(&mesh, "20261206000001").await;
    let db = db_config(&mesh);
    assert_eq!(
        flightmesh_bookings::migrate(&db).await.unwrap(),
        ["20261206000001"]
    );
    assert_eq!(
        mesh.db
            .count(&format!("{purge_indexes} AND schemaname = 'bookings'"))
            .await,
        1
    );
}

/// Makes the bookings schema look migrated before `version` existed: its record goes, what it
/// created stays.
async fn forget_migration(mesh: &TestMesh, version: &str) {
    diesel::sql_query("DELETE FROM bookings.__diesel_schema_migrations WHERE version = $1")
        .bind::<diesel::sql_types::Text, _>(version)
        .execute(&mut sql(mesh).await)
        .await
        .unwrap();
}
