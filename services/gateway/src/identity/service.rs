//! The gRPC `IdentityService` itself (register, login, current user) and how its failures
//! become statuses (busy password hashing, database errors).

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use flightmesh_db::{DbError, Violation, constraint_violation};
use flightmesh_proto::Reply;
use flightmesh_proto::identity::{self as pb, identity_service_server::IdentityService};
use flightmesh_proto::time::timestamp;
use flightmesh_runtime::status::{self as status_util, FieldViolations};
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status};

use super::schema::{UserRow, lower, users};
use super::{
    BUSY, BUSY_RETRY_AFTER_SECONDS, INACTIVE, INVALID_TOKEN, Identity, RETRY_AFTER, USER_ID,
};
use crate::auth::{HashError, Role};

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
}

fn db_status(err: &DbError) -> Status {
    match err {
        DbError::Unavailable(_) => status_util::unavailable(err),
        _ => status_util::internal(err),
    }
}

#[tonic::async_trait]
impl IdentityService for Identity {
    async fn register(&self, request: Request<pb::RegisterRequest>) -> Reply<pb::User> {
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

    async fn login(&self, request: Request<pb::LoginRequest>) -> Reply<pb::LoginResponse> {
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
    ) -> Reply<pb::User> {
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
