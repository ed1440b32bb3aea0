//! Many bookings from concurrent clients, two workers consuming: Redis equals PostgreSQL.

use std::collections::BTreeMap;
use std::time::Duration;

use flightmesh::testing::{Replica, TestMesh, eventually, test_env};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn two_thousand_concurrent_bookings_with_two_workers_match_postgres_exactly() {
    const BOOKINGS: usize = 2000;
    const CLIENTS: usize = 32;
    let mesh = TestMesh::start_with(|env, _| env.set("STATS_PREFETCH", "20")).await;
    // A second worker on the same queue and keys.
    let env = test_env(&mesh.db, &mesh.names).set("PREFETCH", "20");
    let second =
        flightmesh_stats_worker::build(flightmesh_stats_worker::Config::from_env(&env).unwrap())
            .await
            .unwrap();
    let second = Replica::start(second);

    let mut flights = Vec::new();
    for (i, (name, promo, pets)) in [
        ("Cartagena", true, true),
        ("Londres", false, false),
        ("Lima", false, true),
    ]
    .into_iter()
    .enumerate()
    {
        let destination = mesh
            .destination(name, 10.0 + 7.5 * i as f64, promo, pets)
            .await;
        flights.push((
            mesh.flight(
                &format!("F-{i}"),
                99.99 + 100.0 * i as f64,
                destination,
                5000,
            )
            .await,
            pets,
        ));
    }
    let clients = (0..CLIENTS).map(|c| {
        let http = mesh.http.clone();
        let base = mesh.base.clone();
        let flights = flights.clone();
        tokio::spawn(async move {
            for i in (c..BOOKINGS).step_by(CLIENTS) {
                let (flight, pets_allowed) = flights[i % flights.len()];
                let body = json!({
                    "passenger_name": format!("P{i}"),
                    "passenger_age": (i * 7) % 90,
                    "has_pet": pets_allowed && i % 4 == 0,
                    "flight_id": flight,
                });
                let booking: serde_json::Value = http
                    .post(format!("{base}/api/v1/bookings/"))
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                // Every twentieth booking is cancelled again.
                if i % 20 == 0 {
                    let id = booking["id"].as_i64().unwrap();
                    let response = http
                        .post(format!("{base}/api/v1/bookings/{id}/cancel"))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(response.status(), 200);
                }
            }
        })
    });
    for client in clients {
        client.await.unwrap();
    }

    // The figures PostgreSQL implies, as `loadgen verify` computes them.
    let pg = flightmesh_loadgen::verify::from_postgres(mesh.db.url())
        .await
        .unwrap();

    eventually(Duration::from_secs(90), || async {
        mesh.redis_get("stats:total_revenue_cents")
            .await
            .and_then(|v| v.parse().ok())
            == Some(pg.revenue_cents)
    })
    .await;
    // Let any straggling event (there should be none) arrive before comparing everything.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let general = mesh.get("/api/v1/stats/general").await.1;
    let cents = |amount: &serde_json::Value| (amount.as_f64().unwrap() * 100.0).round() as i64;
    assert_eq!(cents(&general["total_revenue"]), pg.revenue_cents);
    assert_eq!(general["total_pet_bookings"], json!(pg.pets));
    assert_eq!(general["total_infant_count"], json!(pg.infants));
    assert_eq!(cents(&general["total_candy_cost"]), pg.infants * 500);
    let destinations = mesh.get("/api/v1/stats/destinations").await.1;
    let from_redis: BTreeMap<String, i64> = destinations["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["destination"].as_str().unwrap().to_owned(),
                d["total_bookings"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(from_redis, pg.destinations);
    // The most bookings; among equals, the first name.
    let most_popular = pg
        .destinations
        .iter()
        .max_by_key(|&(name, bookings)| (bookings, std::cmp::Reverse(name)))
        .map(|(name, _)| name);
    assert_eq!(destinations["most_popular"], json!(most_popular));
    // Candy: a line per infant booking, one more per cancelled one.
    let candy = mesh.get("/api/v1/stats/candy").await.1;
    assert_eq!(candy["total_count"], json!(pg.candy_lines));

    second.stop().await;
    mesh.stop().await;
}
