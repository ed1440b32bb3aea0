//! The access policy and identity forwarding under the production policy.

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use flightmesh::testing::{TestMesh, status_and_json};
use serde_json::{Value, json};

use crate::auth::{register, token};

async fn production() -> TestMesh {
    TestMesh::start_with(|env, _| {
        // Both enforcers: the gateway's route table and bookings' ownership rules.
        env.set("ACCESS_POLICY", "production")
            .set("GATEWAY_ADMIN_EMAIL", "admin@flightmesh.test")
            .set("GATEWAY_ADMIN_PASSWORD", "admin-secreto")
    })
    .await
}

async fn post(mesh: &TestMesh, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
    let mut request = mesh.http.post(mesh.url(path)).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    status_and_json(request.send().await.unwrap()).await
}

#[tokio::test(flavor = "multi_thread")]
async fn production_policy_needs_users_for_bookings_and_admins_for_catalog_writes() {
    let mesh = production().await;
    let admin = token(&mesh, "admin@flightmesh.test", "admin-secreto").await;
    register(&mesh, "ana@example.com", "secreto1").await;
    let user = token(&mesh, "ana@example.com", "secreto1").await;

    let destination = json!({"name": "Cartagena", "tax_amount": 50, "is_promotion": true});
    assert_eq!(
        post(&mesh, "/api/v1/flights/destinations/", None, &destination)
            .await
            .0,
        401
    );
    assert_eq!(
        post(
            &mesh,
            "/api/v1/flights/destinations/",
            Some(&user),
            &destination
        )
        .await,
        (403, json!({"detail": "Permisos insuficientes"}))
    );
    let (status, created) = post(
        &mesh,
        "/api/v1/flights/destinations/",
        Some(&admin),
        &destination,
    )
    .await;
    assert_eq!(status, 200);
    let flight = json!({"flight_number": "CT-1", "origin": "Bogota", "base_price": 1000, "destination_id": created["id"]});
    assert_eq!(
        post(&mesh, "/api/v1/flights/", Some(&user), &flight)
            .await
            .0,
        403
    );
    let (status, flight) = post(&mesh, "/api/v1/flights/", Some(&admin), &flight).await;
    assert_eq!(status, 200);
    // Catalog reads stay open.
    assert_eq!(mesh.get("/api/v1/flights/").await.0, 200);

    let booking = json!({"passenger_name": "Ana", "passenger_age": 30, "flight_id": flight["id"]});
    assert_eq!(
        post(&mesh, "/api/v1/bookings/", None, &booking).await,
        (401, json!({"detail": "No autenticado"}))
    );
    let (status, booked) = post(&mesh, "/api/v1/bookings/", Some(&user), &booking).await;
    assert_eq!(status, 200, "{booked}");
    assert_eq!(mesh.get("/api/v1/bookings/").await.0, 401);
    assert_eq!(
        mesh.post("/api/v1/ai/chat", &json!({"message": "hola"}))
            .await
            .0,
        401
    );
    let response = mesh
        .http
        .get(mesh.url("/api/v1/stats/dead-letters"))
        .bearer_auth(&user)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let response = mesh
        .http
        .get(mesh.url("/api/v1/stats/dead-letters"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // The booking records who made it.
    #[derive(QueryableByName)]
    struct Owner {
        #[diesel(sql_type = Nullable<Text>)]
        user_id: Option<String>,
        #[diesel(sql_type = BigInt)]
        expected: i64,
    }
    let mut conn = AsyncPgConnection::establish(mesh.db.url()).await.unwrap();
    let owner: Owner = diesel::sql_query(
        "SELECT b.user_id, u.id AS expected FROM bookings.bookings b, identity.users u WHERE u.email = 'ana@example.com'",
    )
    .get_result(&mut conn)
    .await
    .unwrap();
    assert_eq!(owner.user_id, Some(owner.expected.to_string()));
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn identity_headers_sent_by_clients_are_never_trusted() {
    let mesh = production().await;
    let admin = token(&mesh, "admin@flightmesh.test", "admin-secreto").await;
    let (_, admin_user) = {
        let response = mesh
            .http
            .get(mesh.url("/api/v1/auth/me"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        status_and_json(response).await
    };
    // Claiming to be the admin without a token: still anonymous.
    let response = mesh
        .http
        .get(mesh.url("/api/v1/auth/me"))
        .header("x-user-id", admin_user["id"].to_string())
        .header("x-user-role", "admin")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let response = mesh
        .http
        .post(mesh.url("/api/v1/flights/destinations/"))
        .header("x-user-id", admin_user["id"].to_string())
        .header("x-user-role", "admin")
        .json(&json!({"name": "Lima", "tax_amount": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    // With a user's token, a forged header does not turn the user into someone else.
    register(&mesh, "eva@example.com", "secreto1").await;
    let eva = token(&mesh, "eva@example.com", "secreto1").await;
    let response = mesh
        .http
        .get(mesh.url("/api/v1/auth/me"))
        .bearer_auth(&eva)
        .header("x-user-id", admin_user["id"].to_string())
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_json(response).await;
    assert_eq!(
        (status, body["email"].clone()),
        (200, json!("eva@example.com"))
    );
    mesh.stop().await;
}
