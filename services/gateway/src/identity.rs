//! The `flightmesh.identity.v1.IdentityService`: register, login, current user. It runs inside the
//! gateway (which owns the `identity` schema) on a loopback port, so the generic transcoder serves
//! its routes like any other service's.
//!
//! It also answers, for the gateway's admission check, whether a token's user is still what the
//! token says ([`Verifier`]): active, of the same token version, and with which role now. The
//! answer is cached per user for `USER_CHECK_INTERVAL` (ADR 0011), so a deactivation, a role
//! change or a revocation takes effect within that bound.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use flightmesh_db::{DbError, PgPool, Violation, constraint_violation};
use flightmesh_proto::identity::{self as pb, identity_service_server::IdentityService};
use flightmesh_proto::time::timestamp;
use flightmesh_runtime::status::{self as status_util, FieldViolations};
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status};

use crate::auth::{self, HashError, Passwords, Role, Tokens};

/// Metadata the gateway sets for an authenticated caller; never taken from clients.
pub const USER_ID: &str = "x-user-id";
/// The caller's role, alongside [`USER_ID`].
pub const USER_ROLE: &str = "x-user-role";
/// 401 message of the contract.
pub const INVALID_TOKEN: &str = "Token invalido o expirado";
/// 403 message of the contract for a deactivated account.
pub const INACTIVE: &str = "Usuario desactivado";
/// 503 message when every password hashing permit is taken.
pub const BUSY: &str = "El servicio esta ocupado. Intente de nuevo mas tarde.";
/// `Retry-After` (seconds) of a [`BUSY`] answer: one Argon2 verification takes tens of
/// milliseconds, so permits free up well within a second.
pub const BUSY_RETRY_AFTER_SECONDS: u32 = 1;
/// The gRPC metadata key the gateway turns into an HTTP `Retry-After` header.
pub const RETRY_AFTER: &str = "retry-after";

diesel::table! {
    identity.users (id) {
        id -> Int8,
        email -> Text,
        password_hash -> Text,
        full_name -> Text,
        role -> Text,
        is_active -> Bool,
        created_at -> Timestamptz,
        token_version -> Int8,
    }
}

diesel::define_sql_function! {
    /// SQL `lower(text)`.
    fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
struct UserRow {
    id: i64,
    email: String,
    password_hash: String,
    full_name: String,
    role: String,
    is_active: bool,
    created_at: DateTime<Utc>,
    token_version: i64,
}

fn user_message(row: UserRow) -> pb::User {
    pb::User {
        id: row.id,
        email: row.email,
        full_name: row.full_name,
        is_active: row.is_active,
        created_at: Some(timestamp(row.created_at)),
        role: row.role,
    }
}

/// Users and tokens.
pub struct Identity {
    pool: PgPool,
    tokens: Arc<Tokens>,
    passwords: Passwords,
    min_password_length: usize,
}

/// The identity service's metrics (declared by the gateway at start).
pub const METRICS: &[flightmesh_runtime::metrics::Metric] =
    &[flightmesh_runtime::metrics::Metric::counter(
        "gateway_password_hash_busy_total",
        "Logins and registrations answered 503 because every password hashing permit was taken",
    )];

/// 503 with a `retry-after` the gateway turns into the HTTP header.
fn busy() -> Status {
    metrics::counter!("gateway_password_hash_busy_total").increment(1);
    let mut status = Status::unavailable(BUSY);
    status
        .metadata_mut()
        .insert(RETRY_AFTER, MetadataValue::from(BUSY_RETRY_AFTER_SECONDS));
    status
}

fn hash_status(err: &HashError) -> Status {
    match err {
        HashError::Busy => busy(),
        HashError::Failed(_) => status_util::internal(err),
    }
}

impl Identity {
    /// Users in `pool`; passwords of new accounts need `min_password_length` characters.
    pub fn new(
        pool: PgPool,
        tokens: Arc<Tokens>,
        passwords: Passwords,
        min_password_length: usize,
    ) -> Self {
        Self {
            pool,
            tokens,
            passwords,
            min_password_length,
        }
    }

    async fn by_email(&self, email: &str) -> Result<Option<UserRow>, Status> {
        let mut conn = self
            .pool
            .get()
            .await
            .map_err(|e| db_status(&DbError::from(e)))?;
        users::table
            .filter(lower(users::email).eq(email.to_lowercase()))
            .select(UserRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .map_err(|e| db_status(&DbError::from(e)))
    }

    /// The bootstrap admin: creates `email` as an admin with `password`, or takes the existing
    /// account over. Whoever registered that email first does not keep it: the password becomes
    /// `password`, the role admin, the account active, and when any of these changed the token
    /// version is bumped, so every token issued to the account before is refused. A start with
    /// the same password changes nothing (replicas restarting do not log the admin out).
    pub async fn ensure_admin(&self, email: &str, password: &str) -> Result<(), DbError> {
        let email = email.trim().to_lowercase();
        let unavailable =
            |err: &dyn std::fmt::Display| DbError::Unavailable(err.to_string().into());
        let mut conn = self.pool.get().await?;
        // Two replicas may start at once: insert-or-nothing, then read what is there.
        let existing = users::table
            .filter(lower(users::email).eq(&email))
            .select(UserRow::as_select())
            .first(&mut conn)
            .await
            .optional()?;
        let existing = match existing {
            Some(row) => row,
            None => {
                let password = password.to_owned();
                let hash = tokio::task::spawn_blocking(move || auth::hash_password(&password))
                    .await
                    .map_err(|e| unavailable(&e))?
                    .map_err(|e| unavailable(&e))?;
                let inserted = diesel::insert_into(users::table)
                    .values((
                        users::email.eq(&email),
                        users::password_hash.eq(&hash),
                        users::full_name.eq("Administrador"),
                        users::role.eq(Role::Admin.as_str()),
                    ))
                    .on_conflict_do_nothing()
                    .execute(&mut conn)
                    .await?;
                if inserted == 1 {
                    return Ok(());
                }
                users::table
                    .filter(lower(users::email).eq(&email))
                    .select(UserRow::as_select())
                    .first(&mut conn)
                    .await?
            }
        };
        let (given, stored) = (password.to_owned(), existing.password_hash.clone());
        let same_password =
            tokio::task::spawn_blocking(move || auth::verify_password(&given, &stored))
                .await
                .map_err(|e| unavailable(&e))?;
        if same_password && existing.role == Role::Admin.as_str() && existing.is_active {
            return Ok(());
        }
        let password = password.to_owned();
        let hash = tokio::task::spawn_blocking(move || auth::hash_password(&password))
            .await
            .map_err(|e| unavailable(&e))?
            .map_err(|e| unavailable(&e))?;
        diesel::update(users::table.find(existing.id))
            .set((
                users::password_hash.eq(&hash),
                users::role.eq(Role::Admin.as_str()),
                users::is_active.eq(true),
                users::token_version.eq(users::token_version + 1),
            ))
            .execute(&mut conn)
            .await?;
        if existing.role == Role::Admin.as_str() {
            tracing::info!(
                user_id = existing.id,
                "bootstrap admin password set from ADMIN_PASSWORD; earlier tokens revoked"
            );
        } else {
            tracing::warn!(
                user_id = existing.id,
                "bootstrap admin took over an existing non-admin account: password replaced, earlier tokens revoked"
            );
        }
        Ok(())
    }
}

/// What the admission check needs to know about a user now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct UserState {
    role: Role,
    active: bool,
    version: i64,
}

/// Why a genuine-looking token does not admit its bearer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Forged, expired, not ours, revoked (older token version) or its user is gone: 401.
    Invalid,
    /// The account is deactivated: 403 "Usuario desactivado".
    Inactive,
    /// The user could not be checked (PostgreSQL down): 503, never admitted unchecked.
    Unavailable,
}

impl Refusal {
    /// The answer on a route that needs a user.
    #[must_use]
    pub fn answer(self) -> crate::error::ApiError {
        use axum::http::StatusCode;
        match self {
            Self::Invalid => {
                crate::error::ApiError::detail(StatusCode::UNAUTHORIZED, INVALID_TOKEN)
            }
            Self::Inactive => crate::error::ApiError::detail(StatusCode::FORBIDDEN, INACTIVE),
            Self::Unavailable => crate::error::ApiError::detail(
                StatusCode::SERVICE_UNAVAILABLE,
                "El servicio identity no esta disponible. Intente de nuevo mas tarde.",
            ),
        }
    }
}

/// Tokens → identities, checking each user against the `users` table at most once per
/// `interval` (per replica), in a cache of at most `capacity` users.
pub struct Verifier {
    tokens: Arc<Tokens>,
    pool: PgPool,
    interval: Duration,
    capacity: usize,
    cache: Mutex<HashMap<i64, (Instant, Option<UserState>)>>,
}

impl Verifier {
    /// A verifier with a check interval (`Duration::ZERO`: every request) and a cache bound.
    #[must_use]
    pub fn new(tokens: Arc<Tokens>, pool: PgPool, interval: Duration, capacity: usize) -> Self {
        Self {
            tokens,
            pool,
            interval,
            capacity: capacity.max(1),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Who `token` speaks for, with the user's current role.
    pub async fn verify(&self, token: &str) -> Result<auth::Identity, Refusal> {
        let claimed = self.tokens.verify(token).map_err(|_| Refusal::Invalid)?;
        let state = match self.cached(claimed.user_id) {
            Some(state) => state,
            None => {
                let state = self.load(claimed.user_id).await?;
                self.remember(claimed.user_id, state);
                state
            }
        };
        match state {
            None => Err(Refusal::Invalid),
            Some(state) if state.version != claimed.version => Err(Refusal::Invalid),
            Some(state) if !state.active => Err(Refusal::Inactive),
            Some(state) => Ok(auth::Identity {
                user_id: claimed.user_id,
                role: state.role,
            }),
        }
    }

    fn cached(&self, user_id: i64) -> Option<Option<UserState>> {
        let cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache
            .get(&user_id)
            .filter(|(checked, _)| checked.elapsed() < self.interval)
            .map(|(_, state)| *state)
    }

    fn remember(&self, user_id: i64, state: Option<UserState>) {
        if self.interval.is_zero() {
            return;
        }
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.len() >= self.capacity && !cache.contains_key(&user_id) {
            let interval = self.interval;
            cache.retain(|_, (checked, _)| checked.elapsed() < interval);
            // Still full of fresh entries: drop any one (a miss only costs a query).
            if cache.len() >= self.capacity
                && let Some(victim) = cache.keys().next().copied()
            {
                cache.remove(&victim);
            }
        }
        cache.insert(user_id, (Instant::now(), state));
    }

    async fn load(&self, user_id: i64) -> Result<Option<UserState>, Refusal> {
        let mut conn = self.pool.get().await.map_err(|err| {
            tracing::warn!(error = %err, "user check: database unavailable");
            Refusal::Unavailable
        })?;
        let row: Option<(String, bool, i64)> = users::table
            .find(user_id)
            .select((users::role, users::is_active, users::token_version))
            .first(&mut conn)
            .await
            .optional()
            .map_err(|err| {
                tracing::warn!(error = %err, "user check failed");
                Refusal::Unavailable
            })?;
        Ok(row.map(|(role, active, version)| UserState {
            role: Role::parse(&role),
            active,
            version,
        }))
    }

    /// Users currently cached (for tests of the bound).
    #[must_use]
    pub fn cached_users(&self) -> usize {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }
}

fn db_status(err: &DbError) -> Status {
    match err {
        DbError::Unavailable(_) => status_util::unavailable(err),
        _ => status_util::internal(err),
    }
}

#[tonic::async_trait]
impl IdentityService for Identity {
    async fn register(
        &self,
        request: Request<pb::RegisterRequest>,
    ) -> Result<Response<pb::User>, Status> {
        let req = request.into_inner();
        // The protos' rules (email shape, lengths), then this deployment's password minimum
        // (PASSWORD_MIN_LENGTH may ask for more than the contract's 6).
        let mut violations = FieldViolations::of(&req);
        if !violations.violations().iter().any(|(f, _)| f == "password") {
            violations.require(
                req.password.chars().count() >= self.min_password_length,
                "password",
                format!(
                    "password debe tener al menos {} caracteres",
                    self.min_password_length
                ),
            );
        }
        let email = req.email.trim().to_lowercase();
        let full_name = req.full_name.trim().to_owned();
        violations.finish().map_err(FieldViolations::into_status)?;

        let hash = self
            .passwords
            .hash(req.password.clone())
            .await
            .map_err(|e| hash_status(&e))?;
        let mut conn = self
            .pool
            .get()
            .await
            .map_err(|e| db_status(&DbError::from(e)))?;
        let row = diesel::insert_into(users::table)
            .values((
                users::email.eq(&email),
                users::password_hash.eq(&hash),
                users::full_name.eq(&full_name),
            ))
            .returning(UserRow::as_returning())
            .get_result(&mut conn)
            .await
            .map_err(|err| match constraint_violation(&err) {
                Some(Violation::Unique("users_email_key")) => {
                    Status::already_exists("El email ya esta registrado")
                }
                _ => db_status(&DbError::from(err)),
            })?;
        tracing::info!(user_id = row.id, "user registered");
        Ok(Response::new(user_message(row)))
    }

    async fn login(
        &self,
        request: Request<pb::LoginRequest>,
    ) -> Result<Response<pb::LoginResponse>, Status> {
        let req = request.into_inner();
        let refused = || Status::unauthenticated("Credenciales incorrectas");
        let Some(user) = self.by_email(req.email.trim()).await? else {
            // Same work as a real check, so timing does not tell which emails exist.
            self.passwords
                .verify(
                    "x".into(),
                    "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$YXFzZA".into(),
                )
                .await
                .map_err(|e| hash_status(&e))?;
            return Err(refused());
        };
        let matches = self
            .passwords
            .verify(req.password, user.password_hash.clone())
            .await
            .map_err(|e| hash_status(&e))?;
        if !matches {
            return Err(refused());
        }
        if !user.is_active {
            return Err(Status::permission_denied(INACTIVE));
        }
        let token = self
            .tokens
            .issue(user.id, Role::parse(&user.role), user.token_version)
            .map_err(|e| status_util::internal(&e))?;
        Ok(Response::new(pb::LoginResponse {
            access_token: token,
            token_type: "bearer".into(),
        }))
    }

    async fn get_current_user(
        &self,
        request: Request<pb::GetCurrentUserRequest>,
    ) -> Result<Response<pb::User>, Status> {
        let user_id: i64 = request
            .metadata()
            .get(USER_ID)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| Status::unauthenticated(INVALID_TOKEN))?;
        let mut conn = self
            .pool
            .get()
            .await
            .map_err(|e| db_status(&DbError::from(e)))?;
        let user = users::table
            .find(user_id)
            .select(UserRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .map_err(|e| db_status(&DbError::from(e)))?
            .ok_or_else(|| Status::unauthenticated(INVALID_TOKEN))?;
        if !user.is_active {
            return Err(Status::permission_denied(INACTIVE));
        }
        Ok(Response::new(user_message(user)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verifier(interval: Duration, capacity: usize) -> Verifier {
        let tokens = Tokens::new(&auth::TokenConfig {
            key_id: "k1".into(),
            secret: flightmesh_runtime::config::Secret::new("test-key".into()),
            previous: Vec::new(),
            issuer: "i".into(),
            audience: "a".into(),
            ttl: Duration::from_secs(60),
        })
        .unwrap();
        // A pool that is never used: the tests below only touch the cache.
        let db = flightmesh_db::DbConfig::from_env(&flightmesh_runtime::Env::from_pairs([(
            "DATABASE_URL",
            "postgres://127.0.0.1:1/unused",
        )]))
        .unwrap();
        Verifier::new(
            Arc::new(tokens),
            flightmesh_db::pool(&db),
            interval,
            capacity,
        )
    }

    const ACTIVE: Option<UserState> = Some(UserState {
        role: Role::User,
        active: true,
        version: 0,
    });

    #[tokio::test]
    async fn the_user_cache_is_bounded_and_entries_expire() {
        let users = verifier(Duration::from_secs(60), 3);
        for user_id in 0..100 {
            users.remember(user_id, ACTIVE);
            assert!(users.cached_users() <= 3);
        }
        assert_eq!(users.cached(99), Some(ACTIVE), "the newest entry is kept");
        assert_eq!(users.cached(1000), None);

        let short = verifier(Duration::from_millis(50), 100);
        short.remember(1, ACTIVE);
        assert_eq!(short.cached(1), Some(ACTIVE));
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(short.cached(1), None, "checked again after the interval");

        let every_request = verifier(Duration::ZERO, 100);
        every_request.remember(1, ACTIVE);
        assert_eq!(every_request.cached_users(), 0);
    }

    #[test]
    fn emails_need_an_at_and_a_dot_after_it() {
        use flightmesh_proto::validate::Validate;
        let valid_email = |email: &str| {
            pb::RegisterRequest {
                email: email.into(),
                password: "long-enough".into(),
                full_name: "Ana".into(),
            }
            .validate()
            .is_empty()
        };
        for ok in ["ana@example.com", "a.b@c.co", "ANA@Example.COM"] {
            assert!(valid_email(ok), "{ok}");
        }
        for bad in [
            "ana",
            "ana@",
            "@example.com",
            "ana@example",
            "ana@.com",
            "ana@com.",
            "ana maria@example.com",
        ] {
            assert!(!valid_email(bad), "{bad}");
        }
    }
}
