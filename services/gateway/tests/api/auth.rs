//! Register, login, me: the contract's Auth routes, with real hashing and tokens.

use std::time::Duration;

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use flightmesh::testing::TestMesh;
use serde_json::{Value, json};

use crate::support::{field_of_each, get_with_headers, status_json_and_header};

/// What `/auth/me` answers a token it does not accept: 401 with a Bearer challenge.
pub fn refused(answer: &(u16, Value, Option<String>)) -> bool {
    *answer
        == (
            401,
            json!({"detail": "Token invalido o expirado"}),
            Some("Bearer".to_owned()),
        )
}

/// Registers `email` with `password` and logs in → the user's token.
pub async fn register_and_login(mesh: &TestMesh, email: &str, password: &str) -> String {
    let (status, body) = register(mesh, email, password).await;
    assert_eq!(status, 200, "{body}");
    token(mesh, email, password).await
}

pub async fn register(mesh: &TestMesh, email: &str, password: &str) -> (u16, Value) {
    mesh.post(
        "/api/v1/auth/register",
        &json!({"email": email, "password": password, "full_name": "Ana Pérez"}),
    )
    .await
}

pub async fn login(mesh: &TestMesh, email: &str, password: &str) -> (u16, Value) {
    mesh.post(
        "/api/v1/auth/login",
        &json!({"email": email, "password": password}),
    )
    .await
}

pub async fn token(mesh: &TestMesh, email: &str, password: &str) -> String {
    let (status, body) = login(mesh, email, password).await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

pub async fn me(mesh: &TestMesh, token: &str) -> (u16, Value, Option<String>) {
    me_at(&mesh.http, &mesh.base, token).await
}

/// `GET {base}/api/v1/auth/me` → (status, body, `WWW-Authenticate`).
pub async fn me_at(
    http: &reqwest::Client,
    base: &str,
    token: &str,
) -> (u16, Value, Option<String>) {
    let request = http
        .get(format!("{base}/api/v1/auth/me"))
        .bearer_auth(token);
    status_json_and_header(request.send().await.unwrap(), "www-authenticate").await
}

#[tokio::test(flavor = "multi_thread")]
async fn register_login_me() {
    let mesh = TestMesh::start().await;
    let (status, user) = register(&mesh, "Ana@Example.com", "secreto1").await;
    assert_eq!(status, 200, "{user}");
    assert_eq!(user["email"], json!("ana@example.com"), "stored lower-case");
    assert_eq!(
        (user["full_name"].clone(), user["is_active"].clone()),
        (json!("Ana Pérez"), json!(true))
    );
    assert!(user["id"].is_i64() && user["created_at"].is_string());

    let (status, body) = login(&mesh, "ANA@example.COM", "secreto1").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], json!("bearer"));
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(token.split('.').count(), 3, "a JWT");

    let (status, body, _) = me(&mesh, token).await;
    assert_eq!(status, 200);
    assert_eq!(
        (body["id"].clone(), body["email"].clone()),
        (user["id"].clone(), json!("ana@example.com"))
    );

    let wrong = (401, json!({"detail": "Credenciales incorrectas"}));
    assert_eq!(login(&mesh, "ana@example.com", "otra-cosa").await, wrong);
    assert_eq!(login(&mesh, "nadie@example.com", "secreto1").await, wrong);
    assert_eq!(
        register(&mesh, "ANA@EXAMPLE.COM", "otrosecreto").await,
        (409, json!({"detail": "El email ya esta registrado"}))
    );

    let (status, body) = register(&mesh, "no-es-un-email", "corta").await;
    assert_eq!(status, 422);
    assert_eq!(
        field_of_each(&body["detail"], "msg"),
        [
            json!("email debe ser valido"),
            json!("password debe tener al menos 6 caracteres")
        ]
    );
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn inactive_users_are_403_and_bad_tokens_401_with_a_bearer_challenge() {
    let mesh = TestMesh::start_with(|env, _| env.set("GATEWAY_JWT_TTL", "1s")).await;
    register(&mesh, "luis@example.com", "secreto1").await;
    let token = token(&mesh, "luis@example.com", "secreto1").await;

    // Tampered: the signature no longer matches.
    let mut tampered = token.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let answer = me(&mesh, &tampered).await;
    assert!(refused(&answer), "{answer:?}");

    // Expired.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let answer = me(&mesh, &token).await;
    assert!(refused(&answer), "{answer:?}");

    // No token at all.
    let response = get_with_headers(&mesh, "/api/v1/auth/me", &[]).await;
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");

    // Deactivated.
    let mut conn = AsyncPgConnection::establish(mesh.db.url()).await.unwrap();
    diesel::sql_query(
        "UPDATE identity.users SET is_active = false WHERE email = 'luis@example.com'",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        login(&mesh, "luis@example.com", "secreto1").await,
        (403, json!({"detail": "Usuario desactivado"}))
    );
    mesh.stop().await;
}
