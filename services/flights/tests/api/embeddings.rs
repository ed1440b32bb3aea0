//! Destination descriptions and embeddings: the description is catalog data (create, get, list),
//! vectors are compared only within one model and dimension, and a replica's in-memory index
//! catches up with another replica's writes within `EMBEDDING_INDEX_REFRESH`.

use std::time::{Duration, Instant};

use flightmesh::testing::TestMesh;
use flightmesh_proto::flights::{
    Destination, PutDestinationEmbeddingRequest, SearchDestinationEmbeddingsRequest,
};
use tonic::Code;

use crate::{
    Client, client, create_destination_with, destination_request, get_destination,
    list_destinations, start_flights,
};

fn put(
    id: i64,
    description: &str,
    model: &str,
    vector: Vec<f32>,
) -> PutDestinationEmbeddingRequest {
    PutDestinationEmbeddingRequest {
        destination_id: id,
        description: description.into(),
        model: model.into(),
        vector,
        replace_description: true,
    }
}

fn query(model: &str, vector: Vec<f32>) -> SearchDestinationEmbeddingsRequest {
    SearchDestinationEmbeddingsRequest {
        model: model.into(),
        vector,
        limit: None,
    }
}

/// "Isla Coral", not promoted, pets allowed, without a description.
async fn create_coral(client: &mut Client) -> Destination {
    create_destination_with(client, destination_request("Isla Coral", "10", false, true)).await
}

async fn ids(client: &mut Client, q: SearchDestinationEmbeddingsRequest) -> Vec<i64> {
    client
        .search_destination_embeddings(q)
        .await
        .unwrap()
        .into_inner()
        .matches
        .iter()
        .map(|m| m.destination.as_ref().unwrap().id)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn descriptions_are_catalog_data_and_models_are_never_mixed() {
    let mesh = TestMesh::start().await;
    let mut flights = client(&mesh).await;
    let mut request = destination_request("Isla Coral", "10", false, true);
    request.description = Some("  Playas y buceo  ".into());
    let coral = create_destination_with(&mut flights, request).await;
    assert_eq!(coral.description.as_deref(), Some("Playas y buceo"));
    let plain =
        create_destination_with(&mut flights, destination_request("Lima", "5", false, true)).await;
    assert_eq!(plain.description, None);
    let got = get_destination(&mut flights, coral.id).await.unwrap();
    assert_eq!(got.description.as_deref(), Some("Playas y buceo"));
    let listed = list_destinations(&mut flights).await.unwrap();
    assert_eq!(listed[0].description.as_deref(), Some("Playas y buceo"));
    let mut long = destination_request("Largo", "5", false, true);
    long.description = Some("x".repeat(2001));
    let status = flights.create_destination(long).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);

    // Model A, 3 dims; model B, 3 dims; model A, 2 dims: three separate spaces.
    flights
        .put_destination_embedding(put(coral.id, "Playas y buceo", "A", vec![1.0, 0.0, 0.0]))
        .await
        .unwrap();
    flights
        .put_destination_embedding(put(plain.id, "Ceviche", "B", vec![1.0, 0.0, 0.0]))
        .await
        .unwrap();
    assert_eq!(
        ids(&mut flights, query("A", vec![2.0, 0.1, 0.0])).await,
        [coral.id]
    );
    assert_eq!(
        ids(&mut flights, query("B", vec![2.0, 0.1, 0.0])).await,
        [plain.id]
    );
    assert!(
        ids(&mut flights, query("A", vec![1.0, 0.0]))
            .await
            .is_empty()
    );
    assert!(
        ids(&mut flights, query("C", vec![1.0, 0.0, 0.0]))
            .await
            .is_empty()
    );
    // Re-embedding with B moves the destination out of A's space.
    flights
        .put_destination_embedding(put(coral.id, "Playas y buceo", "B", vec![0.0, 1.0, 0.0]))
        .await
        .unwrap();
    assert!(
        ids(&mut flights, query("A", vec![1.0, 0.0, 0.0]))
            .await
            .is_empty()
    );
    assert_eq!(
        ids(&mut flights, query("B", vec![0.0, 1.0, 0.0])).await,
        [coral.id, plain.id]
    );

    // A re-embedding of a description that changed meanwhile is refused; unknown ids are 404.
    let mut stale = put(coral.id, "old text", "B", vec![1.0, 1.0, 0.0]);
    stale.replace_description = false;
    let status = flights.put_destination_embedding(stale).await.unwrap_err();
    assert_eq!(status.code(), Code::Aborted);
    let status = flights
        .put_destination_embedding(put(999_999, "x", "B", vec![1.0]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    for bad in [vec![], vec![0.0, 0.0], vec![f32::NAN]] {
        let status = flights
            .search_destination_embeddings(query("B", bad.clone()))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{bad:?}");
    }
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn another_replicas_writes_reach_the_index_within_the_refresh_interval() {
    let mesh = TestMesh::start().await;
    let mut first = client(&mesh).await;
    let coral = create_coral(&mut first).await;

    // A second replica on the same database, refreshing every 300ms.
    let env = flightmesh::testing::test_env(&mesh.db, &mesh.names)
        .set("OUTBOX_RELAY", "false")
        .set("EMBEDDING_INDEX_REFRESH", "300ms");
    let replica = start_flights(&env).await;
    let mut second = Client::new(mesh.channel(replica.addr).await);

    // The replica loads model M (empty) first, then the first replica writes.
    assert!(
        ids(&mut second, query("M", vec![1.0, 0.0]))
            .await
            .is_empty()
    );
    first
        .put_destination_embedding(put(coral.id, "Playas", "M", vec![1.0, 0.0]))
        .await
        .unwrap();
    let written = Instant::now();
    loop {
        if ids(&mut second, query("M", vec![1.0, 0.0])).await == [coral.id] {
            break;
        }
        assert!(
            written.elapsed() < Duration::from_secs(5),
            "the replica never saw the write"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Within the interval (plus a request's time), not merely eventually.
    assert!(
        written.elapsed() < Duration::from_millis(1500),
        "{:?}",
        written.elapsed()
    );
    replica.stop().await;
    mesh.stop().await;
}

/// Rows of the catalog outbox the relay has not published yet.
async fn unpublished_catalog_events(mesh: &TestMesh) -> i64 {
    mesh.db
        .count("SELECT count(*) FROM flights.outbox WHERE published_at IS NULL")
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_description_event_nobody_listens_to_does_not_stay_in_the_outbox() {
    // The stats worker binds only `destination.created`: nobody consumes `destination.described`
    // yet. Published as mandatory, the broker would return it unroutable and the relay would
    // retry it forever, one WARN per round, until such rows filled every batch.
    let mesh = TestMesh::start().await;
    let mut flights = client(&mesh).await;
    let coral = create_coral(&mut flights).await;
    flights
        .put_destination_embedding(put(coral.id, "Playas y buceo", "model-a", vec![1.0, 0.0]))
        .await
        .unwrap();
    flightmesh::testing::eventually(Duration::from_secs(10), || async {
        unpublished_catalog_events(&mesh).await == 0
    })
    .await;
    mesh.stop().await;
}
