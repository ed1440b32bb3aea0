//! The access policy: which routes need a signed-in user, or an admin. A configuration choice
//! (`ACCESS_POLICY`), not code spread over handlers:
//!
//! | route | `compatible` | `production` |
//! |---|---|---|
//! | `POST /flights/`, `POST /flights/destinations/` | open | admin |
//! | `GET /stats/dead-letters`, `POST /stats/rebuild` | open | admin |
//! | `GET /bookings/events` | open | admin |
//! | `GET /stats/candy`, `GET /stats/notifications` (they carry passenger names) | open | admin |
//! | `POST /ai/embed-destination` (it writes the catalog's descriptions) | open | admin |
//! | `GET /ai/search-destinations` (a catalog read) | open | open |
//! | `/bookings/*` (the rest), `/ai/*` (the rest) | open | user |
//! | `GET /auth/me` | user | user |
//! | everything else (catalog reads, `/stats/general`, `/stats/destinations`, taxes, register, login) | open | open |
//!
//! `compatible` is what the old clients need (they never sent a token); `production` is the
//! default of the Helm charts. This table is the gateway's first gate; the bookings service
//! applies the same policy again from the forwarded identity (a user sees only their own
//! bookings; ADR 0010), so a caller inside the mesh meets the same rules.

use http::Method;

/// The policy's words are shared with the services that enforce it too (bookings).
pub use flightmesh_runtime::caller::Policy;

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

/// Routes whose answers only an admin may see or trigger under the production policy.
const ADMIN_ROUTES: &[&str] = &[
    "/api/v1/bookings/events",
    "/api/v1/stats/dead-letters",
    "/api/v1/stats/rebuild",
    // Passenger names: the candy log's lines and the confirmations' `passenger`.
    "/api/v1/stats/candy",
    "/api/v1/stats/notifications",
    // Writes destination descriptions and embeddings into the catalog.
    "/api/v1/ai/embed-destination",
];

/// AI routes that read only the public catalog: open under every policy.
const PUBLIC_AI_ROUTES: &[&str] = &["/api/v1/ai/search-destinations"];

/// The gateway's route table of a [`Policy`].
pub trait RouteRequirement {
    /// What `method template` requires (`template` as in the route table, no trailing slash).
    fn requirement(self, method: &Method, template: &str) -> Requirement;
}

impl RouteRequirement for Policy {
    fn requirement(self, method: &Method, template: &str) -> Requirement {
        if template == "/api/v1/auth/me" {
            return Requirement::User;
        }
        if self == Self::Compatible {
            return Requirement::Open;
        }
        let admin_only = (method == Method::POST
            && matches!(template, "/api/v1/flights" | "/api/v1/flights/destinations"))
            || ADMIN_ROUTES.contains(&template);
        if admin_only {
            Requirement::Admin
        } else if PUBLIC_AI_ROUTES.contains(&template) {
            Requirement::Open
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

    use Requirement::{Admin, Open, User};

    #[test]
    fn each_policy_requires_what_its_table_says() {
        let get = Method::GET;
        let post = Method::POST;
        let cases: &[(&Method, &str, Requirement, Requirement)] = &[
            // method, template, compatible, production
            (&post, "/api/v1/flights", Open, Admin),
            (&post, "/api/v1/flights/destinations", Open, Admin),
            (&get, "/api/v1/flights", Open, Open),
            (&get, "/api/v1/flights/{id}", Open, Open),
            (&get, "/api/v1/flights/destinations", Open, Open),
            (&post, "/api/v1/bookings", Open, User),
            (&get, "/api/v1/bookings", Open, User),
            (&get, "/api/v1/bookings/{id}", Open, User),
            (&post, "/api/v1/bookings/{id}/cancel", Open, User),
            (&get, "/api/v1/bookings/events", Open, Admin),
            (&post, "/api/v1/ai/chat", Open, User),
            (&post, "/api/v1/ai/suggest-price", Open, User),
            (&post, "/api/v1/ai/embed-destination", Open, Admin),
            (&get, "/api/v1/ai/search-destinations", Open, Open),
            (&get, "/api/v1/stats/dead-letters", Open, Admin),
            (&post, "/api/v1/stats/rebuild", Open, Admin),
            (&get, "/api/v1/stats/candy", Open, Admin),
            (&get, "/api/v1/stats/notifications", Open, Admin),
            (&get, "/api/v1/stats/general", Open, Open),
            (&get, "/api/v1/stats/destinations", Open, Open),
            (
                &get,
                "/api/v1/stats/destinations/{destination_name}/taxes",
                Open,
                Open,
            ),
            (&post, "/api/v1/auth/register", Open, Open),
            (&post, "/api/v1/auth/login", Open, Open),
            (&get, "/api/v1/auth/me", User, User),
        ];
        for &(method, template, compatible, production) in cases {
            assert_eq!(
                Policy::Compatible.requirement(method, template),
                compatible,
                "compatible {method} {template}"
            );
            assert_eq!(
                Policy::Production.requirement(method, template),
                production,
                "production {method} {template}"
            );
        }
    }

    #[test]
    fn requirements_admit_roles() {
        assert!(Open.admits(None));
        assert!(!User.admits(None));
        assert!(User.admits(Some(Role::User)));
        assert!(!Admin.admits(Some(Role::User)));
        assert!(Admin.admits(Some(Role::Admin)));
    }
}
