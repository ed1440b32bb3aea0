//! The admission check's view of users ([`Verifier`]): whether a token's user is still active,
//! of the same token version, and with which role, cached per user for a bounded interval.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use flightmesh_db::PgPool;

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
}
