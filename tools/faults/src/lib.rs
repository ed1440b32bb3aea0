//! The deployment shape on one machine, for fault tests.
//!
//! [`Deployment`] starts every service as its own process — 2 gateways, 2 flights, 2 bookings
//! (both relaying the outbox), 2 stats workers and 1 AI agent — from the debug binaries of the
//! workspace, wired the way the Helm charts wire them: each service calls the others through
//! `dns:///fm-<service>:<port>` targets that resolve to every replica (per-request balancing,
//! re-resolved every 5 s), each replica on its own loopback address (`127.0.0.N`, the same port).
//! The names come from a hosts file of the deployment's own, bind-mounted over `/etc/hosts` in a
//! private mount namespace of each process (`unshare -m`): rewriting it (in place, same inode)
//! is a headless Service's DNS changing. It has its own database (with the per-service roles),
//! exchanges and queue, and its own `redis-server`, so that a test may restart Redis with its
//! data lost; a scenario that restarts PostgreSQL or RabbitMQ gives it a server of its own
//! ([`PrivatePostgres`], [`PrivateRabbitMq`]).
//!
//! [`Bookers`] book the way the contract asks clients to: each booking has an `Idempotency-Key`,
//! and a 5xx or a transport error is retried with the same key on the other gateway (clients
//! know both, as a Service would balance them), at a steady open-loop rate.
//!
//! [`Deployment::check`] then asserts the invariants: every acknowledged booking present once,
//! events applied exactly once (the statistics in Redis equal the sums of the bookings in
//! PostgreSQL), no flight oversold, no 500, every process that was not killed alive and ready.

pub mod check;
pub mod clients;
mod command;
pub mod deploy;
pub mod postgres;
pub mod rabbitmq;
pub mod soak;

pub use check::Verdict;
pub use clients::{Bookers, ClientReport};
pub use deploy::{Deployment, Options, Service};
pub use postgres::PrivatePostgres;
pub use rabbitmq::PrivateRabbitMq;

/// `found`'s value, or `None` with the reason printed where the machine cannot run `what`; a
/// failure instead under `FLIGHTMESH_REQUIRE_FAULTS` (the test command sets it).
///
/// # Panics
/// Under `FLIGHTMESH_REQUIRE_FAULTS`, when `found` is an error.
pub fn or_skip<T>(what: &str, found: Result<T, String>) -> Option<T> {
    match found {
        Ok(value) => Some(value),
        Err(reason) => {
            assert!(
                std::env::var_os("FLIGHTMESH_REQUIRE_FAULTS").is_none(),
                "{what} cannot run here: {reason}"
            );
            eprintln!("SKIPPED: {what} cannot run here: {reason}");
            None
        }
    }
}
