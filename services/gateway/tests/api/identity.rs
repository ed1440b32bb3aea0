//! Identity hardening (ADR 0011): what tokens the gateway refuses, how fast a deactivation or a
//! role change takes effect, key rotation, the bootstrap admin's takeover and the password rules.
//!
//! Most tests run gateways alone on a test database ([`Edge`]): the auth routes are served by the
//! gateway's own identity service, and a restart on the same database is a new `Edge`.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use flightmesh_gateway::config::DEVELOPMENT_SECRET;
use flightmesh_testkit::TestDatabase;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::auth::{refused, token};
use crate::support::{
    ADMIN_EMAIL, LoneGateway, get_as, production_mesh_with, send_as, start_lone_gateway,
};

/// A gateway on `db`, alone (no mesh behind it), with the production policy.
pub struct Edge {
    gateway: LoneGateway,
    http: reqwest::Client,
}

impl Edge {
    pub async fn start(db: &TestDatabase, vars: &[(&str, &str)]) -> Self {
        Self {
            gateway: start_lone_gateway(db, vars).await,
            http: reqwest::Client::new(),
        }
    }

    /// A gateway on `db` whose bootstrap admin is [`ADMIN_EMAIL`] with `password`.
    pub async fn with_admin(db: &TestDatabase, password: &str) -> Self {
        Self::start(
            db,
            &[("ADMIN_EMAIL", ADMIN_EMAIL), ("ADMIN_PASSWORD", password)],
        )
        .await
    }

    pub async fn stop(self) {
        self.gateway.stop.cancel();
        tokio::time::timeout(Duration::from_secs(20), self.gateway.task)
            .await
            .expect("the gateway stops in time")
            .unwrap()
            .expect("the gateway stops cleanly");
    }

    pub async fn register(&self, email: &str, password: &str) -> (u16, Value) {
        self.post(
            "/api/v1/auth/register",
            &json!({"email": email, "password": password, "full_name": "Ana Pérez"}),
        )
        .await
    }

    pub async fn login(&self, email: &str, password: &str) -> (u16, Value) {
        self.post(
            "/api/v1/auth/login",
            &json!({"email": email, "password": password}),
        )
        .await
    }

    pub async fn token(&self, email: &str, password: &str) -> String {
        let (status, body) = self.login(email, password).await;
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    }

    async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let request = self.http.post(format!("{}{path}", self.gateway.base));
        send_as(request.json(body), None).await
    }

    /// `GET /auth/me` → (status, body, `WWW-Authenticate`).
    pub async fn me(&self, token: &str) -> (u16, Value, Option<String>) {
        crate::auth::me_at(&self.http, &self.gateway.base, token).await
    }
}

/// A random signing key made at run time (a literal one in the repository would be an example
/// secret that production must refuse).
fn random_key() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A token with the given claims, signed HS256 with `secret` under `kid`.
fn forge(secret: &str, kid: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_secret(secret.as_bytes()).unwrap(),
    )
    .unwrap()
}

/// The claims a gateway with the default settings issues for `user_id`.
fn claims(user_id: i64) -> Value {
    json!({
        "sub": user_id.to_string(), "iat": now(), "exp": now() + 600, "role": "user",
        "iss": "flightmesh-gateway", "aud": "flightmesh", "ver": 0
    })
}

/// Unpadded base64url of `text`.
fn b64(text: &str) -> String {
    URL_SAFE_NO_PAD.encode(text)
}

/// The claims of `token`, read without checking anything.
fn payload(token: &str) -> Value {
    let part = token.split('.').nth(1).unwrap();
    let mut bits = 0u32;
    let mut count = 0;
    let mut bytes = Vec::new();
    for c in part.bytes() {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            _ => 63,
        };
        bits = (bits << 6) | u32::from(value);
        count += 6;
        if count >= 8 {
            count -= 8;
            bytes.push(u8::try_from((bits >> count) & 0xff).unwrap());
        }
    }
    serde_json::from_slice(&bytes).unwrap()
}

async fn sql(db: &TestDatabase, statement: &str) {
    let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();
    diesel::sql_query(statement)
        .execute(&mut conn)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_alg_none_expired_and_foreign_tokens_are_401_with_a_bearer_challenge() {
    let db = TestDatabase::create().await;
    let edge = Edge::start(&db, &[]).await;
    assert_eq!(
        edge.register("ana@example.com", "secreto-largo").await.0,
        200
    );
    let genuine = edge.token("ana@example.com", "secreto-largo").await;
    let (status, me, _) = edge.me(&genuine).await;
    assert_eq!(status, 200, "{me}");
    let id = me["id"].as_i64().unwrap();
    let issued = payload(&genuine);
    assert_eq!(
        (
            issued["sub"].clone(),
            issued["role"].clone(),
            issued["iss"].clone(),
            issued["aud"].clone()
        ),
        (
            json!(id.to_string()),
            json!("user"),
            json!("flightmesh-gateway"),
            json!("flightmesh")
        )
    );
    assert!(issued["exp"].as_u64().unwrap() - issued["iat"].as_u64().unwrap() == 3600);

    // The control: the development key with the right claims is accepted, so each refusal
    // below is the one thing that differs.
    let (status, _, _) = edge.me(&forge(DEVELOPMENT_SECRET, "k1", &claims(id))).await;
    assert_eq!(status, 200);

    let with = |field: &str, value: Value| {
        let mut claims = claims(id);
        claims[field] = value;
        claims
    };
    let cases = [
        ("another key", forge(&random_key(), "k1", &claims(id))),
        ("unknown kid", forge(DEVELOPMENT_SECRET, "k9", &claims(id))),
        (
            "expired",
            forge(DEVELOPMENT_SECRET, "k1", &with("exp", json!(now() - 5))),
        ),
        (
            "wrong audience",
            forge(DEVELOPMENT_SECRET, "k1", &with("aud", json!("another-api"))),
        ),
        (
            "wrong issuer",
            forge(DEVELOPMENT_SECRET, "k1", &with("iss", json!("evil"))),
        ),
        (
            "no audience",
            forge(DEVELOPMENT_SECRET, "k1", &{
                let mut claims = claims(id);
                claims.as_object_mut().unwrap().remove("aud");
                claims
            }),
        ),
        (
            "older token version",
            forge(DEVELOPMENT_SECRET, "k1", &with("ver", json!(-1))),
        ),
        (
            "alg none",
            format!(
                "{}.{}.",
                b64(r#"{"alg":"none","typ":"JWT","kid":"k1"}"#),
                b64(&claims(id).to_string())
            ),
        ),
        (
            "alg none with the genuine signature",
            format!(
                "{}.{}.{}",
                b64(r#"{"alg":"none","typ":"JWT","kid":"k1"}"#),
                b64(&with("role", json!("admin")).to_string()),
                genuine.split('.').nth(2).unwrap()
            ),
        ),
        ("garbage", "not-a-token".to_owned()),
    ];
    for (case, token) in cases {
        let answer = edge.me(&token).await;
        assert!(refused(&answer), "{case}: {answer:?}");
    }
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deactivated_user_is_refused_within_the_user_check_interval() {
    let db = TestDatabase::create().await;
    let edge = Edge::start(&db, &[("USER_CHECK_INTERVAL", "1s")]).await;
    edge.register("luis@example.com", "secreto-largo").await;
    let token = edge.token("luis@example.com", "secreto-largo").await;
    assert_eq!(edge.me(&token).await.0, 200);

    sql(
        &db,
        "UPDATE identity.users SET is_active = false WHERE email = 'luis@example.com'",
    )
    .await;
    let deactivated = Instant::now();
    // The documented bound: USER_CHECK_INTERVAL after the change, the token no longer works.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, body, _) = edge.me(&token).await;
    assert_eq!(
        (status, body),
        (403, json!({"detail": "Usuario desactivado"}))
    );
    assert!(deactivated.elapsed() < Duration::from_secs(2));

    // A deleted user's token is simply invalid.
    sql(
        &db,
        "DELETE FROM identity.users WHERE email = 'luis@example.com'",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(refused(&edge.me(&token).await));
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_demoted_admin_loses_admin_within_the_user_check_interval() {
    let mesh = production_mesh_with(&[
        ("GATEWAY_USER_CHECK_INTERVAL", "1s"),
        ("GATEWAY_ADMIN_EMAIL", ADMIN_EMAIL),
        ("GATEWAY_ADMIN_PASSWORD", "admin-secreto"),
    ])
    .await;
    let admin = token(&mesh, ADMIN_EMAIL, "admin-secreto").await;
    let dead_letters = || get_as(&mesh, "/api/v1/stats/dead-letters", Some(&admin));
    assert_eq!(dead_letters().await.0, 200);

    let set_role = |role: &str| {
        format!("UPDATE identity.users SET role = '{role}' WHERE email = '{ADMIN_EMAIL}'")
    };
    sql(&mesh.db, &set_role("user")).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        dead_letters().await,
        (403, json!({"detail": "Permisos insuficientes"})),
        "the token still says admin, the user no longer is"
    );
    sql(&mesh.db, &set_role("admin")).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(dead_letters().await.0, 200);
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn key_rotation_keeps_old_tokens_valid_until_they_expire() {
    let db = TestDatabase::create().await;
    let (old_key, new_key) = (random_key(), random_key());
    let before = Edge::start(
        &db,
        &[
            ("JWT_SECRET", old_key.as_str()),
            ("JWT_KEY_ID", "2026-11"),
            ("JWT_TTL", "5s"),
        ],
    )
    .await;
    before.register("eva@example.com", "secreto-largo").await;
    let old_token = before.token("eva@example.com", "secreto-largo").await;
    before.stop().await;

    // Rotated: signs with the new key, still verifies the old one by its kid.
    let previous = format!("2026-11:{old_key}");
    let rotated = Edge::start(
        &db,
        &[
            ("JWT_SECRET", new_key.as_str()),
            ("JWT_KEY_ID", "2026-12"),
            ("JWT_PREVIOUS_KEYS", previous.as_str()),
            ("JWT_TTL", "5s"),
        ],
    )
    .await;
    assert_eq!(
        rotated.me(&old_token).await.0,
        200,
        "old tokens survive the rotation"
    );
    let new_token = rotated.token("eva@example.com", "secreto-largo").await;
    assert_eq!(rotated.me(&new_token).await.0, 200);
    let id = rotated.me(&new_token).await.1["id"].as_i64().unwrap();
    assert!(
        refused(&rotated.me(&forge(&new_key, "2027-01", &claims(id))).await),
        "a kid the gateway does not know"
    );
    assert!(
        refused(&rotated.me(&forge(&old_key, "2026-12", &claims(id))).await),
        "the old key under the new kid"
    );
    // Until they expire: `exp` is in whole seconds and a token is valid through that second.
    let expires = payload(&old_token)["exp"].as_u64().unwrap();
    let left = UNIX_EPOCH + Duration::from_secs(expires + 1);
    if let Ok(wait) = left.duration_since(SystemTime::now()) {
        tokio::time::sleep(wait + Duration::from_millis(100)).await;
    }
    assert!(refused(&rotated.me(&old_token).await));
    rotated.stop().await;

    // The old key dropped from the list: its tokens are refused.
    let after = Edge::start(
        &db,
        &[("JWT_SECRET", new_key.as_str()), ("JWT_KEY_ID", "2026-12")],
    )
    .await;
    let fresh_old = forge(&old_key, "2026-11", &claims(id));
    assert!(refused(&after.me(&fresh_old).await));
    let current = after.token("eva@example.com", "secreto-largo").await;
    assert_eq!(after.me(&current).await.0, 200);
    after.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_bootstrap_admin_takes_over_an_account_registered_before_it_starts() {
    let db = TestDatabase::create().await;
    let email = ADMIN_EMAIL;

    // A gateway without ADMIN_*: anyone registers the admin's email first.
    let first = Edge::start(&db, &[]).await;
    assert_eq!(first.register(email, "squatter-password").await.0, 200);
    let squatter = first.token(email, "squatter-password").await;
    assert_eq!(payload(&squatter)["role"], json!("user"));
    first.stop().await;

    // The gateway with ADMIN_EMAIL starts on the same database.
    let admin_edge = Edge::with_admin(&db, "first-admin-password").await;
    assert_eq!(
        admin_edge.login(email, "squatter-password").await,
        (401, json!({"detail": "Credenciales incorrectas"})),
        "the squatter's password no longer works"
    );
    assert!(
        refused(&admin_edge.me(&squatter).await),
        "the squatter's earlier token is revoked (it would otherwise become an admin's)"
    );
    let admin = admin_edge.token(email, "first-admin-password").await;
    assert_eq!(payload(&admin)["role"], json!("admin"));
    let (status, me, _) = admin_edge.me(&admin).await;
    assert_eq!((status, me["email"].clone()), (200, json!(email)));
    admin_edge.stop().await;

    // A restart with the same password changes nothing: the admin's token stays valid.
    let same = Edge::with_admin(&db, "first-admin-password").await;
    assert_eq!(same.me(&admin).await.0, 200);
    same.stop().await;

    // A changed ADMIN_PASSWORD takes effect at the next start, and revokes earlier tokens.
    let changed = Edge::with_admin(&db, "second-admin-password").await;
    assert_eq!(
        changed.login(email, "first-admin-password").await.0,
        401,
        "the old admin password fails"
    );
    assert!(refused(&changed.me(&admin).await));
    let admin = changed.token(email, "second-admin-password").await;
    assert_eq!(payload(&admin)["role"], json!("admin"));
    changed.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn new_passwords_need_the_configured_minimum_and_old_short_ones_still_log_in() {
    let db = TestDatabase::create().await;
    // The compatible policy outside production keeps the contract's 6.
    let compatible = Edge::start(&db, &[("ACCESS_POLICY", "compatible")]).await;
    assert_eq!(
        compatible.register("old@example.com", "seis66").await.0,
        200
    );
    compatible.stop().await;

    let production = Edge::start(&db, &[]).await;
    let (status, body) = production.register("new@example.com", "siete77").await;
    assert_eq!(status, 422);
    assert_eq!(
        body["detail"][0]["msg"],
        json!("password debe tener al menos 8 caracteres")
    );
    assert_eq!(
        production.register("new@example.com", "ocho8888").await.0,
        200
    );
    assert_eq!(
        production.login("old@example.com", "seis66").await.0,
        200,
        "the minimum applies to new passwords, not to logins"
    );
    production.stop().await;
}
