//! The `flightmesh.identity.v1.IdentityService`: register, login, current user. It runs inside the
//! gateway (which owns the `identity` schema) on a loopback port, so the generic transcoder serves
//! its routes like any other service's.
//!
//! It also answers, for the gateway's admission check, whether a token's user is still what the
//! token says ([`Verifier`]): active, of the same token version, and with which role now. The
//! answer is cached per user for `USER_CHECK_INTERVAL` (ADR 0011), so a deactivation, a role
//! change or a revocation takes effect within that bound.

mod admin;
mod schema;
mod service;
mod verifier;

use std::sync::Arc;

use flightmesh_db::PgPool;

use crate::auth::{Passwords, Tokens};

pub use verifier::{Refusal, Verifier};

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
}

#[cfg(test)]
mod tests {
    use flightmesh_proto::identity as pb;

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
