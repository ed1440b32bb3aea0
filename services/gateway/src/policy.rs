//! The access policy: which routes need a signed-in user, or an admin. A configuration choice
//! (`ACCESS_POLICY`), not code spread over handlers:
//!
//! | route | `compatible` | `production` |
//! |---|---|---|
//! | `POST /flights/`, `POST /flights/destinations/` | open | admin |
//! | `GET /stats/dead-letters`, `POST /stats/rebuild` | open | admin |
//! | `/bookings/*`, `/ai/*` | open | user |
//! | `GET /auth/me` | user | user |
//! | everything else (catalog and stats reads, register, login) | open | open |
//!
//! `compatible` is what the old clients need (they never sent a token); `production` is the
//! default of the Helm charts.

use std::str::FromStr;

use http::Method;

use crate::auth::Role;

/// What a route requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    Open,
    User,
    Admin,
}

impl Requirement {
    /// Whether a caller with `role` (None: anonymous) may pass.
    #[must_use]
    pub fn admits(self, role: Option<Role>) -> bool {
        match self {
            Self::Open => true,
            Self::User => role.is_some(),
            Self::Admin => role == Some(Role::Admin),
        }
    }
}

/// A named policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// The seed-compatible policy.
    Compatible,
    /// The production policy.
    Production,
}

impl FromStr for Policy {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "compatible" => Ok(Self::Compatible),
            "production" => Ok(Self::Production),
            _ => Err("expected compatible or production"),
        }
    }
}

impl Policy {
    /// What `method template` requires (`template` as in the route table, no trailing slash).
    #[must_use]
    pub fn requirement(self, method: &Method, template: &str) -> Requirement {
        if template == "/api/v1/auth/me" {
            return Requirement::User;
        }
        if self == Self::Compatible {
            return Requirement::Open;
        }
        let admin_only = (method == Method::POST
            && matches!(template, "/api/v1/flights" | "/api/v1/flights/destinations"))
            || template == "/api/v1/stats/dead-letters"
            || template == "/api/v1/stats/rebuild";
        if admin_only {
            Requirement::Admin
        } else if template.starts_with("/api/v1/bookings") || template.starts_with("/api/v1/ai/") {
            Requirement::User
        } else {
            Requirement::Open
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn production_protects_writes_bookings_and_ai() {
        let p = Policy::Production;
        assert_eq!(
            p.requirement(&Method::POST, "/api/v1/flights"),
            Requirement::Admin
        );
        assert_eq!(
            p.requirement(&Method::GET, "/api/v1/flights"),
            Requirement::Open
        );
        assert_eq!(
            p.requirement(&Method::POST, "/api/v1/bookings"),
            Requirement::User
        );
        assert_eq!(
            p.requirement(&Method::GET, "/api/v1/bookings/{id}"),
            Requirement::User
        );
        assert_eq!(
            p.requirement(&Method::POST, "/api/v1/ai/chat"),
            Requirement::User
        );
        assert_eq!(
            p.requirement(&Method::GET, "/api/v1/stats/dead-letters"),
            Requirement::Admin
        );
        assert_eq!(
            p.requirement(&Method::GET, "/api/v1/stats/general"),
            Requirement::Open
        );
        assert_eq!(
            p.requirement(&Method::POST, "/api/v1/auth/login"),
            Requirement::Open
        );
        let c = Policy::Compatible;
        assert_eq!(
            c.requirement(&Method::POST, "/api/v1/flights"),
            Requirement::Open
        );
        assert_eq!(
            c.requirement(&Method::GET, "/api/v1/auth/me"),
            Requirement::User
        );
    }

    #[test]
    fn requirements_admit_roles() {
        assert!(Requirement::Open.admits(None));
        assert!(!Requirement::User.admits(None));
        assert!(Requirement::User.admits(Some(Role::User)));
        assert!(!Requirement::Admin.admits(Some(Role::User)));
        assert!(Requirement::Admin.admits(Some(Role::Admin)));
    }
}
