//! The destination-search routes under the production policy: embedding writes the catalog
//! (admin only), searching reads it (open to anyone).

use flightmesh::testing::TestMesh;
use serde_json::json;

use crate::auth::{register_and_login, token};
use crate::support::{ADMIN_EMAIL, post_as, production_mesh, send_as};

async fn embed(mesh: &TestMesh, id: i64, bearer: Option<&str>) -> (u16, serde_json::Value) {
    let url = mesh.url(&format!(
        "/api/v1/ai/embed-destination?destination_id={id}&description=buceo%20en%20arrecifes%20de%20coral"
    ));
    send_as(mesh.http.post(url), bearer).await
}

#[tokio::test(flavor = "multi_thread")]
async fn embedding_is_for_admins_and_searching_is_open_under_the_production_policy() {
    let mesh = production_mesh("admin-secreto").await;
    let admin = token(&mesh, ADMIN_EMAIL, "admin-secreto").await;
    let user = register_and_login(&mesh, "ana@example.com", "secreto1").await;
    let (status, destination) = post_as(
        &mesh,
        "/api/v1/flights/destinations/",
        Some(&admin),
        &json!({"name": "Isla Coral", "tax_amount": 10, "is_promotion": false}),
    )
    .await;
    assert_eq!(status, 200, "{destination}");
    let id = destination["id"].as_i64().unwrap();

    let (status, _) = embed(&mesh, id, None).await;
    assert_eq!(status, 401);
    let (status, body) = embed(&mesh, id, Some(&user)).await;
    assert_eq!(
        (status, body),
        (403, json!({"detail": "Permisos insuficientes"}))
    );
    let (status, body) = embed(&mesh, id, Some(&admin)).await;
    assert_eq!(status, 200, "{body}");

    // Anonymous search: open.
    let (status, body) = mesh
        .get("/api/v1/ai/search-destinations?query=bucear%20en%20arrecifes")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["name"], json!("Isla Coral"));
    // The rest of /ai still needs a user.
    let hola = json!({"message": "hola"});
    assert_eq!(mesh.post("/api/v1/ai/chat", &hola).await.0, 401);
    mesh.stop().await;
}
