//! The destination-search routes under the production policy: embedding writes the catalog
//! (admin only), searching reads it (open to anyone).

use flightmesh::testing::{TestMesh, status_and_json};
use serde_json::json;

use crate::auth::{register, token};

async fn embed(mesh: &TestMesh, id: i64, bearer: Option<&str>) -> (u16, serde_json::Value) {
    let url = mesh.url(&format!(
        "/api/v1/ai/embed-destination?destination_id={id}&description=buceo%20en%20arrecifes%20de%20coral"
    ));
    let mut request = mesh.http.post(url);
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    status_and_json(request.send().await.unwrap()).await
}

#[tokio::test(flavor = "multi_thread")]
async fn embedding_is_for_admins_and_searching_is_open_under_the_production_policy() {
    let mesh = TestMesh::start_with(|env, _| {
        env.set("ACCESS_POLICY", "production")
            .set("GATEWAY_ADMIN_EMAIL", "admin@flightmesh.test")
            .set("GATEWAY_ADMIN_PASSWORD", "admin-secreto")
    })
    .await;
    let admin = token(&mesh, "admin@flightmesh.test", "admin-secreto").await;
    register(&mesh, "ana@example.com", "secreto1").await;
    let user = token(&mesh, "ana@example.com", "secreto1").await;
    let response = mesh
        .http
        .post(mesh.url("/api/v1/flights/destinations/"))
        .bearer_auth(&admin)
        .json(&json!({"name": "Isla Coral", "tax_amount": 10, "is_promotion": false}))
        .send()
        .await
        .unwrap();
    let (status, destination) = status_and_json(response).await;
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
    let (status, _) = mesh
        .post("/api/v1/ai/chat", &json!({"message": "hola"}))
        .await;
    assert_eq!(status, 401);
    mesh.stop().await;
}
