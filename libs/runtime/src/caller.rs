//! Who is calling, and under which access policy: the pieces every service needs to apply the
//! same rules as the gateway.
//!
//! The gateway verifies the bearer token and forwards the caller as gRPC metadata
//! ([`USER_ID`], [`USER_ROLE`]); clients' own `x-user-*` headers are never forwarded. Inside the
//! mesh that metadata is trusted because only the gateway and the other services can reach a
//! service's gRPC port (the charts' NetworkPolicies; ADR 0010).

use tonic::metadata::MetadataMap;

use crate::config::Shared;

/// Metadata carrying the verified caller's user id.
pub const USER_ID: &str = "x-user-id";
/// Metadata carrying the verified caller's role, alongside [`USER_ID`].
pub const USER_ROLE: &str = "x-user-role";
/// The role that sees and changes everything.
pub const ADMIN_ROLE: &str = "admin";
/// The contract's 401 message for a request without a signed-in user.
pub const UNAUTHENTICATED: &str = "No autenticado";
/// The contract's 403 message for a signed-in user without the needed role.
pub const FORBIDDEN: &str = "Permisos insuficientes";
/// Longest user id accepted from metadata (ids are decimal `i64`s today).
const MAX_USER_ID_LEN: usize = 64;

/// `ACCESS_POLICY` (the gateway and bookings each say what the words mean for them).
pub const ACCESS_POLICY: Shared = Shared::new("ACCESS_POLICY", "production");
/// `ALLOW_COMPATIBLE_IN_PRODUCTION`: the deliberate choice `ACCESS_POLICY=compatible` needs with
/// `ENVIRONMENT=production`.
pub const ALLOW_COMPATIBLE_IN_PRODUCTION: Shared =
    Shared::new("ALLOW_COMPATIBLE_IN_PRODUCTION", "false");

crate::word_enum! {
    /// A named access policy (`ACCESS_POLICY`), the same words in every service.
    pub enum Policy {
        /// The seed-compatible policy: everything open, as the old clients expect.
        Compatible = "compatible",
        /// The production policy: users see their own data; admins see everything.
        Production = "production",
    }
}

impl Policy {
    /// The policy's name, as `ACCESS_POLICY` spells it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Compatible => "compatible",
            Self::Production => "production",
        }
    }
}

/// The signed-in caller of a request, as the gateway forwarded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The user id (the token's `sub`).
    pub user_id: String,
    /// Whether the caller has the admin role.
    pub admin: bool,
}

impl Caller {
    /// The caller in `metadata`; `None` when there is no usable user id (an anonymous request,
    /// or one from another service).
    #[must_use]
    pub fn from_metadata(metadata: &MetadataMap) -> Option<Self> {
        let user_id = metadata.get(USER_ID)?.to_str().ok()?.trim().to_owned();
        let usable = !user_id.is_empty()
            && user_id.len() <= MAX_USER_ID_LEN
            && user_id.bytes().all(|b| b.is_ascii_graphic());
        if !usable {
            return None;
        }
        let admin = metadata
            .get(USER_ROLE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|role| role.trim() == ADMIN_ROLE);
        Some(Self { user_id, admin })
    }
}

/// Which records a request may see or change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every record: the compatible policy, or an admin.
    All,
    /// Only the records made under this user id.
    Owner(String),
}

impl Scope {
    /// The owner to filter on, `None` for every record.
    #[must_use]
    pub fn owner(&self) -> Option<&str> {
        match self {
            Self::All => None,
            Self::Owner(user_id) => Some(user_id),
        }
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// No signed-in caller (gRPC UNAUTHENTICATED, HTTP 401).
    Unauthenticated,
    /// A caller without the needed role (gRPC PERMISSION_DENIED, HTTP 403).
    Forbidden,
}

impl From<Denied> for tonic::Status {
    fn from(denied: Denied) -> Self {
        match denied {
            Denied::Unauthenticated => Self::unauthenticated(UNAUTHENTICATED),
            Denied::Forbidden => Self::permission_denied(FORBIDDEN),
        }
    }
}

impl Policy {
    /// The records `caller` may see: all under the compatible policy; under production, an
    /// admin's all, a user's own, and nothing at all for an anonymous caller.
    pub fn owned_scope(self, caller: Option<&Caller>) -> Result<Scope, Denied> {
        match (self, caller) {
            (Self::Compatible, _) => Ok(Scope::All),
            (Self::Production, None) => Err(Denied::Unauthenticated),
            (Self::Production, Some(caller)) if caller.admin => Ok(Scope::All),
            (Self::Production, Some(caller)) => Ok(Scope::Owner(caller.user_id.clone())),
        }
    }

    /// Whether `caller` may use an admin-only operation (always, under the compatible policy).
    pub fn admin_only(self, caller: Option<&Caller>) -> Result<(), Denied> {
        match (self, caller) {
            (Self::Compatible, _) => Ok(()),
            (Self::Production, None) => Err(Denied::Unauthenticated),
            (Self::Production, Some(caller)) if caller.admin => Ok(()),
            (Self::Production, Some(_)) => Err(Denied::Forbidden),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Metadata entries, name and value.
    type Pairs = &'static [(&'static str, &'static str)];

    fn metadata(pairs: Pairs) -> MetadataMap {
        let mut map = MetadataMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn the_caller_comes_from_the_forwarded_metadata() {
        let cases: [(Pairs, Option<Caller>); 6] = [
            (&[], None),
            (&[(USER_ROLE, "admin")], None),
            (&[(USER_ID, "  ")], None),
            (
                &[(USER_ID, "7")],
                Some(Caller {
                    user_id: "7".into(),
                    admin: false,
                }),
            ),
            (
                &[(USER_ID, "7"), (USER_ROLE, "user")],
                Some(Caller {
                    user_id: "7".into(),
                    admin: false,
                }),
            ),
            (
                &[(USER_ID, "1"), (USER_ROLE, "admin")],
                Some(Caller {
                    user_id: "1".into(),
                    admin: true,
                }),
            ),
        ];
        for (pairs, expected) in cases {
            assert_eq!(
                Caller::from_metadata(&metadata(pairs)),
                expected,
                "{pairs:?}"
            );
        }
        let long = "9".repeat(MAX_USER_ID_LEN + 1);
        let mut map = MetadataMap::new();
        map.insert(USER_ID, long.parse().unwrap());
        assert_eq!(Caller::from_metadata(&map), None);
    }

    #[test]
    fn policies_scope_and_gate_callers() {
        let user = Caller {
            user_id: "7".into(),
            admin: false,
        };
        let admin = Caller {
            user_id: "1".into(),
            admin: true,
        };
        let cases = [
            (Policy::Compatible, None, Ok(Scope::All), Ok(())),
            (Policy::Compatible, Some(&user), Ok(Scope::All), Ok(())),
            (
                Policy::Production,
                None,
                Err(Denied::Unauthenticated),
                Err(Denied::Unauthenticated),
            ),
            (
                Policy::Production,
                Some(&user),
                Ok(Scope::Owner("7".into())),
                Err(Denied::Forbidden),
            ),
            (Policy::Production, Some(&admin), Ok(Scope::All), Ok(())),
        ];
        for (policy, caller, scope, admin_only) in cases {
            assert_eq!(policy.owned_scope(caller), scope, "{policy:?} {caller:?}");
            assert_eq!(
                policy.admin_only(caller),
                admin_only,
                "{policy:?} {caller:?}"
            );
        }
    }

    #[test]
    fn policy_names_round_trip() {
        for policy in [Policy::Compatible, Policy::Production] {
            assert_eq!(policy.as_str().parse::<Policy>(), Ok(policy));
        }
        assert!("open".parse::<Policy>().is_err());
    }
}
