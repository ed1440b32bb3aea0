//! A database outage while the service runs: requests fail with UNAVAILABLE (never a crash or a
//! hang), and the service recovers by itself when the database is back.

use std::time::Duration;

use flightmesh::testing::{TestMesh, eventually};
use tonic::Code;

use crate::health::http_get;
use crate::{client, list_destinations, mesh_behind_a_database_proxy};

#[tokio::test(flavor = "multi_thread")]
async fn database_outage_is_unavailable_then_recovers_without_restart() {
    // The database path itself (tests/api/cache.rs shows cached answers surviving).
    let (proxy, mesh) = mesh_behind_a_database_proxy(&[("FLIGHTS_CATALOG_CACHE_TTL", "0s")]).await;
    let mut client = client(&mesh).await;
    list_destinations(&mut client).await.unwrap();

    proxy.cut();
    for _ in 0..3 {
        let status = list_destinations(&mut client).await.unwrap_err();
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        assert_eq!(
            status.message(),
            "Servicio temporalmente no disponible. Intente de nuevo."
        );
    }
    let (code, body) = http_get(&format!("http://{}/readyz", mesh.addrs.admin[0])).await;
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("database"), "{body}");

    proxy.restore();
    eventually(Duration::from_secs(10), || {
        let mut client = client.clone();
        async move { list_destinations(&mut client).await.is_ok() }
    })
    .await;
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_backends_are_replaced_on_the_next_checkout() {
    let mesh = TestMesh::start().await;
    let mut client = client(&mesh).await;
    list_destinations(&mut client).await.unwrap();

    let killed = mesh.db.terminate_backends().await;
    assert!(killed >= 1, "the pool had a connection to kill");
    // The pool verifies connections on checkout: the very next request already succeeds.
    list_destinations(&mut client).await.unwrap();
    mesh.stop().await;
}
