//! The bootstrap admin ([`Identity::ensure_admin`]): the configured admin account, created or
//! taken over when the gateway starts.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use flightmesh_db::DbError;

use super::Identity;
use super::schema::{UserRow, lower, users};
use crate::auth::{self, Role};

impl Identity {
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
