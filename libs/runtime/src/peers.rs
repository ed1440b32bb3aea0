//! The services of the mesh as their callers and their own hosts see them: one place for each
//! service's ports, its URL variable and that variable's default.

use crate::config::{Shared, Var};

/// One service of the mesh.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    /// The service's short name (the gateway's upstream key).
    pub name: &'static str,
    /// The variable its callers read its gRPC URL from; by default the service on this machine.
    url: Shared,
    /// Default gRPC listen address of the service itself.
    pub grpc_listen: &'static str,
    /// Default admin (health, metrics) listen address of the service itself.
    pub admin_listen: &'static str,
}

impl Peer {
    /// The caller's variable for this service's URL; `doc` says what the caller uses it for.
    pub const fn url(&self, doc: &'static str) -> Var {
        self.url.doc(doc)
    }
}

/// A peer on `port`, its admin server on `admin_port`: what a service's defaults are made of.
macro_rules! peer {
    ($name:literal, $url_var:literal, $port:literal, $admin_port:literal) => {
        Peer {
            name: $name,
            url: Shared::new($url_var, concat!("http://127.0.0.1:", $port)),
            grpc_listen: concat!("0.0.0.0:", $port),
            admin_listen: concat!("0.0.0.0:", $admin_port),
        }
    };
}

/// Destinations, flights and seat capacity.
pub const FLIGHTS: Peer = peer!("flights", "FLIGHTS_URL", 50051, 51051);
/// Bookings, the seat ledger and the booking events' outbox.
pub const BOOKINGS: Peer = peer!("bookings", "BOOKINGS_URL", 50052, 51052);
/// The stats worker's API.
pub const STATS: Peer = peer!("stats", "STATS_URL", 50053, 51053);
/// The AI agent.
pub const AI: Peer = peer!("ai", "AI_URL", 50054, 51054);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_callers_default_url_is_the_port_the_service_listens_on() {
        for peer in [FLIGHTS, BOOKINGS, STATS, AI] {
            let var = peer.url("doc");
            let port = peer.grpc_listen.rsplit(':').next().unwrap();
            assert_eq!(
                var.default,
                Some(&*format!("http://127.0.0.1:{port}")),
                "{}",
                peer.name
            );
            assert!(
                var.name.starts_with(&peer.name.to_uppercase()),
                "{}",
                var.name
            );
            assert_ne!(peer.grpc_listen, peer.admin_listen);
        }
    }
}
