//! The access policy and identity forwarding under the production policy.

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use flightmesh::testing::TestMesh;
use serde_json::{Value, json};

use crate::auth::{me, register_and_login, token};
use crate::support::{ADMIN_EMAIL, production_mesh, send_as};

async fn production() -> TestMesh {
    production_mesh("admin-secreto").await
}

/// `(method, path, body, caller, status)`: what each caller gets under the production policy.
type Case<'a> = (&'a str, &'a str, Option<&'a Value>, Caller, u16);

#[derive(Debug, Clone, Copy)]
enum Caller {
    Anonymous,
    User,
    Admin,
}

#[tokio::test(flavor = "multi_thread")]
async fn production_policy_needs_users_for_bookings_and_admins_for_catalog_writes() {
    let mesh = production().await;
    let admin = token(&mesh, ADMIN_EMAIL, "admin-secreto").await;
    let user = register_and_login(&mesh, "ana@example.com", "secreto1").await;
    let call = |method: &str, path: &str, body: Option<&Value>, caller: Caller| {
        let request = match method {
            "GET" => mesh.http.get(mesh.url(path)),
            _ => mesh
                .http
                .post(mesh.url(path))
                .json(body.unwrap_or(&json!({}))),
        };
        let token = match caller {
            Caller::Anonymous => None,
            Caller::User => Some(user.as_str()),
            Caller::Admin => Some(admin.as_str()),
        };
        send_as(request, token)
    };

    let destination = json!({"name": "Cartagena", "tax_amount": 50, "is_promotion": true});
    let (status, created) = call(
        "POST",
        "/api/v1/flights/destinations/",
        Some(&destination),
        Caller::Admin,
    )
    .await;
    assert_eq!(status, 200, "{created}");
    let flight = json!({"flight_number": "CT-1", "origin": "Bogota", "base_price": 1000, "destination_id": created["id"]});
    let (status, flight_row) = call("POST", "/api/v1/flights/", Some(&flight), Caller::Admin).await;
    assert_eq!(status, 200, "{flight_row}");
    let booking =
        json!({"passenger_name": "Ana", "passenger_age": 30, "flight_id": flight_row["id"]});
    let another = json!({"name": "Lima", "tax_amount": 10});
    let chat = json!({"message": "hola"});

    let cases: &[Case<'_>] = &[
        // Catalog writes: admin only; catalog reads: open.
        (
            "POST",
            "/api/v1/flights/destinations/",
            Some(&another),
            Caller::Anonymous,
            401,
        ),
        (
            "POST",
            "/api/v1/flights/destinations/",
            Some(&another),
            Caller::User,
            403,
        ),
        ("POST", "/api/v1/flights/", Some(&flight), Caller::User, 403),
        ("GET", "/api/v1/flights/", None, Caller::Anonymous, 200),
        // Bookings and AI: a user.
        (
            "POST",
            "/api/v1/bookings/",
            Some(&booking),
            Caller::Anonymous,
            401,
        ),
        (
            "POST",
            "/api/v1/bookings/",
            Some(&booking),
            Caller::User,
            200,
        ),
        ("GET", "/api/v1/bookings/", None, Caller::Anonymous, 401),
        (
            "POST",
            "/api/v1/ai/chat",
            Some(&chat),
            Caller::Anonymous,
            401,
        ),
        // Dead letters: admin only.
        ("GET", "/api/v1/stats/dead-letters", None, Caller::User, 403),
        (
            "GET",
            "/api/v1/stats/dead-letters",
            None,
            Caller::Admin,
            200,
        ),
    ];
    for &(method, path, body, caller, expected) in cases {
        let (status, answer) = call(method, path, body, caller).await;
        assert_eq!(status, expected, "{caller:?} {method} {path}: {answer}");
        match status {
            401 => assert_eq!(
                answer,
                json!({"detail": "No autenticado"}),
                "{method} {path}"
            ),
            403 => assert_eq!(
                answer,
                json!({"detail": "Permisos insuficientes"}),
                "{method} {path}"
            ),
            _ => {}
        }
    }

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
    let admin = token(&mesh, ADMIN_EMAIL, "admin-secreto").await;
    let (_, admin_user, _) = me(&mesh, &admin).await;
    let admin_id = admin_user["id"].to_string();
    // Claiming to be the admin without a token: still anonymous.
    let claims_admin = |request: reqwest::RequestBuilder| {
        request
            .header("x-user-id", &admin_id)
            .header("x-user-role", "admin")
    };
    let me_path = mesh.url("/api/v1/auth/me");
    let response = claims_admin(mesh.http.get(&me_path)).send().await.unwrap();
    assert_eq!(response.status(), 401);
    let create = mesh
        .http
        .post(mesh.url("/api/v1/flights/destinations/"))
        .json(&json!({"name": "Lima", "tax_amount": 1}));
    let response = claims_admin(create).send().await.unwrap();
    assert_eq!(response.status(), 401);

    // With a user's token, a forged header does not turn the user into someone else.
    let eva = register_and_login(&mesh, "eva@example.com", "secreto1").await;
    let forged = mesh.http.get(&me_path).header("x-user-id", &admin_id);
    let (status, body) = send_as(forged, Some(&eva)).await;
    assert_eq!(
        (status, body["email"].clone()),
        (200, json!("eva@example.com"))
    );
    mesh.stop().await;
}
