//! The `flightmesh.identity.v1.IdentityService`: register, login, current user. It runs inside the
//! gateway (which owns the `identity` schema) on a loopback port, so the generic transcoder serves
//! its routes like any other service's.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use flightmesh_db::{DbError, PgPool, Violation, constraint_violation};
use flightmesh_proto::identity::{self as pb, identity_service_server::IdentityService};
use flightmesh_proto::time::timestamp;
use flightmesh_runtime::status::{self as status_util, FieldViolations};
use tonic::{Request, Response, Status};

use crate::auth::{self, Role, Tokens};

/// Metadata the gateway sets for an authenticated caller; never taken from clients.
pub const USER_ID: &str = "x-user-id";
/// The caller's role, alongside [`USER_ID`].
pub const USER_ROLE: &str = "x-user-role";
/// 401 message of the contract.
pub const INVALID_TOKEN: &str = "Token invalido o expirado";

diesel::table! {
    identity.users (id) {
        id -> Int8,
        email -> Text,
        password_hash -> Text,
        full_name -> Text,
        role -> Text,
        is_active -> Bool,
        created_at -> Timestamptz,
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
}

impl Identity {
    pub fn new(pool: PgPool, tokens: Arc<Tokens>) -> Self {
        Self { pool, tokens }
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

    /// Creates `email` as an admin, or makes the existing user an admin (the bootstrap admin).
    pub async fn ensure_admin(&self, email: &str, password: &str) -> Result<(), DbError> {
        let email = email.trim().to_lowercase();
        let hash = auth::hash_password(password)
            .map_err(|e| DbError::Unavailable(e.to_string().into()))?;
        let mut conn = self.pool.get().await?;
        diesel::insert_into(users::table)
            .values((
                users::email.eq(&email),
                users::password_hash.eq(&hash),
                users::full_name.eq("Administrador"),
                users::role.eq(Role::Admin.as_str()),
            ))
            .on_conflict_do_nothing()
            .execute(&mut conn)
            .await?;
        diesel::update(users::table.filter(lower(users::email).eq(&email)))
            .set((
                users::role.eq(Role::Admin.as_str()),
                users::is_active.eq(true),
            ))
            .execute(&mut conn)
            .await?;
        Ok(())
    }
}

fn db_status(err: &DbError) -> Status {
    match err {
        DbError::Unavailable(_) => status_util::unavailable(err),
        _ => status_util::internal(err),
    }
}

/// `x` with an `@` and a `.` somewhere after it.
fn valid_email(email: &str) -> bool {
    email.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
    })
}

#[tonic::async_trait]
impl IdentityService for Identity {
    async fn register(
        &self,
        request: Request<pb::RegisterRequest>,
    ) -> Result<Response<pb::User>, Status> {
        let req = request.into_inner();
        let email = req.email.trim().to_lowercase();
        let full_name = req.full_name.trim().to_owned();
        let mut violations = FieldViolations::new();
        violations.require(
            valid_email(&email) && email.len() <= 254,
            "email",
            "email debe ser valido",
        );
        violations.require(
            req.password.chars().count() >= 6,
            "password",
            "password debe tener al menos 6 caracteres",
        );
        violations.require(
            req.password.len() <= 1024,
            "password",
            "password no puede superar 1024 caracteres",
        );
        violations.require(
            !full_name.is_empty(),
            "full_name",
            "full_name no puede estar vacio",
        );
        violations.require(
            full_name.chars().count() <= 200,
            "full_name",
            "full_name no puede superar 200 caracteres",
        );
        violations.finish().map_err(FieldViolations::into_status)?;

        let password = req.password.clone();
        let hash = tokio::task::spawn_blocking(move || auth::hash_password(&password))
            .await
            .map_err(|e| status_util::internal(&e))?
            .map_err(|e| status_util::internal(&e))?;
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
            let _ = tokio::task::spawn_blocking(|| {
                auth::verify_password("x", "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$YXFzZA")
            })
            .await;
            return Err(refused());
        };
        let password = req.password;
        let stored = user.password_hash.clone();
        let matches =
            tokio::task::spawn_blocking(move || auth::verify_password(&password, &stored))
                .await
                .unwrap_or(false);
        if !matches {
            return Err(refused());
        }
        if !user.is_active {
            return Err(Status::permission_denied("Usuario desactivado"));
        }
        let token = self
            .tokens
            .issue(user.id, Role::parse(&user.role))
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
            return Err(Status::permission_denied("Usuario desactivado"));
        }
        Ok(Response::new(user_message(user)))
    }
}

#[cfg(test)]
mod tests {
    use super::valid_email;

    #[test]
    fn emails_need_an_at_and_a_dot_after_it() {
        for ok in ["ana@example.com", "a.b@c.co"] {
            assert!(valid_email(ok), "{ok}");
        }
        for bad in [
            "ana",
            "ana@",
            "@example.com",
            "ana@example",
            "ana@.com",
            "ana@com.",
        ] {
            assert!(!valid_email(bad), "{bad}");
        }
    }
}
