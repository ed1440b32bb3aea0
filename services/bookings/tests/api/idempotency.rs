//! Idempotency-Key: one booking and one event per key, whatever the retries.

use flightmesh::testing::TestMesh;
use serde_json::{Value, json};

use crate::{bookings_stored, db_config, events_stored, pool, seats_taken, sql};

async fn book_with_key(mesh: &TestMesh, key: &str, body: &Value) -> (u16, Value) {
    let response = mesh
        .http
        .post(mesh.url("/api/v1/bookings/"))
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .unwrap();
    flightmesh::testing::status_and_json(response).await
}

#[tokio::test(flavor = "multi_thread")]
async fn same_key_same_body_is_one_booking_sequentially_and_concurrently() {
    let mesh = TestMesh::start().await;
    let flight = mesh.cartagena_flight(100).await;
    let body = json!({"passenger_name": "Ana", "passenger_age": 30, "flight_id": flight});

    let (status, first) = book_with_key(&mesh, "retry-1", &body).await;
    assert_eq!(status, 200);
    let (status, second) = book_with_key(&mesh, "retry-1", &body).await;
    assert_eq!((status, &second), (200, &first));

    // Concurrent duplicates: all get the same booking.
    let concurrent: Vec<_> = (0..12)
        .map(|_| {
            let http = mesh.http.clone();
            let url = mesh.url("/api/v1/bookings/");
            let body = json!({"passenger_name": "Luis", "passenger_age": 8, "flight_id": flight});
            tokio::spawn(async move {
                let response = http
                    .post(url)
                    .header("Idempotency-Key", "race-1")
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                flightmesh::testing::status_and_json(response).await
            })
        })
        .collect();
    let mut ids = Vec::new();
    for attempt in concurrent {
        let (status, booking) = attempt.await.unwrap();
        assert_eq!(status, 200, "{booking}");
        ids.push(booking["id"].as_i64().unwrap());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "every duplicate got the one booking: {ids:?}");

    assert_eq!(bookings_stored(&mesh).await, 2);
    assert_eq!(events_stored(&mesh).await, 2);
    assert_eq!(seats_taken(&mesh).await, 2);
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn same_key_with_another_body_is_422() {
    let mesh = TestMesh::start().await;
    let flight = mesh.cartagena_flight(100).await;
    let body = json!({"passenger_name": "Ana", "passenger_age": 30, "flight_id": flight});
    let (status, _) = book_with_key(&mesh, "k-1", &body).await;
    assert_eq!(status, 200);
    let (status, answer) = book_with_key(
        &mesh,
        "k-1",
        &json!({"passenger_name": "Ana", "passenger_age": 31, "flight_id": flight}),
    )
    .await;
    assert_eq!(
        (status, answer),
        (
            422,
            json!({"detail": "Idempotency-Key reutilizada con otra solicitud."})
        )
    );

    // Without a key, two identical requests are two bookings (the old behaviour).
    for _ in 0..2 {
        let (status, _) = mesh.post("/api/v1/bookings/", &body).await;
        assert_eq!(status, 200);
    }
    assert_eq!(bookings_stored(&mesh).await, 3);
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_older_than_the_retention_are_purged_and_fresh_ones_stay() {
    use diesel_async::RunQueryDsl;

    let mesh = TestMesh::start().await;
    let flight = mesh.cartagena_flight(100).await;
    for key in ["old-1", "old-2", "fresh-1"] {
        let body = json!({"passenger_name": "Ana", "passenger_age": 30, "flight_id": flight});
        let (status, booking) = book_with_key(&mesh, key, &body).await;
        assert_eq!(status, 200, "{booking}");
    }
    let mut conn = sql(&mesh).await;
    diesel::sql_query(
        "UPDATE bookings.idempotency_keys SET created_at = now() - interval '49 hours' \
         WHERE key LIKE 'old-%'",
    )
    .execute(&mut conn)
    .await
    .unwrap();

    let store = flightmesh_bookings::store::Store::new(
        pool(&mesh),
        flightmesh_db::SharedConnections::new(&db_config(&mesh), 1),
        mesh.names.exchange.clone(),
    );
    let purged = store
        .purge_idempotency_keys(std::time::Duration::from_secs(48 * 3600))
        .await
        .unwrap();
    assert_eq!(purged, 2);
    assert_eq!(
        mesh.db
            .count("SELECT count(*) FROM bookings.idempotency_keys WHERE key = 'fresh-1'")
            .await,
        1,
        "a key within its retention is kept"
    );
    assert_eq!(
        mesh.db
            .count("SELECT count(*) FROM bookings.idempotency_keys")
            .await,
        1
    );
    assert_eq!(
        bookings_stored(&mesh).await,
        3,
        "the bookings themselves stay"
    );
}
