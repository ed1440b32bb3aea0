//! The admission check's view of users ([`Verifier`]): whether a token's user is still active,
//! of the same token version, and with which role, cached per user for a bounded interval.

use std::sync::Arc;
use std::time::Duration;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use flightmesh_db::PgPool;
use flightmesh_runtime::ttl_cache::TtlCache;

use super::schema::users;
use super::{INACTIVE, INVALID_TOKEN};
use crate::auth::{self, Role, Tokens};

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
    cache: TtlCache<i64, Option<UserState>>,
}

impl Verifier {
    /// A verifier with a check interval (`Duration::ZERO`: every request) and a cache bound.
    #[must_use]
    pub fn new(tokens: Arc<Tokens>, pool: PgPool, interval: Duration, capacity: usize) -> Self {
        Self {
            tokens,
            pool,
            cache: TtlCache::new(interval, capacity),
        }
    }

    /// Who `token` speaks for, with the user's current role.
    pub async fn verify(&self, token: &str) -> Result<auth::Identity, Refusal> {
        let claimed = self.tokens.verify(token).map_err(|_| Refusal::Invalid)?;
        let state = match self.cache.get(&claimed.user_id) {
            Some(state) => state,
            None => {
                let state = self.load(claimed.user_id).await?;
                self.cache.insert(claimed.user_id, state);
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
        self.cache.len()
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
            users.cache.insert(user_id, ACTIVE);
            assert!(users.cached_users() <= 3);
        }
        assert_eq!(
            users.cache.get(&99),
            Some(ACTIVE),
            "the newest entry is kept"
        );
        assert_eq!(users.cache.get(&1000), None);

        let short = verifier(Duration::from_millis(50), 100);
        short.cache.insert(1, ACTIVE);
        assert_eq!(short.cache.get(&1), Some(ACTIVE));
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(
            short.cache.get(&1),
            None,
            "checked again after the interval"
        );

        let every_request = verifier(Duration::ZERO, 100);
        every_request.cache.insert(1, ACTIVE);
        assert_eq!(every_request.cached_users(), 0);
    }
}
