//! Checks that the infrastructure the mesh needs answers, so that `flightmesh up` fails with one
//! clear line instead of a stack trace from deep inside a driver.

use std::time::Duration;

use flightmesh_runtime::config::{Env, Var};
use tokio::net::TcpStream;

/// `REDIS_URL` as the dev stack reads it.
pub const REDIS_URL: Var = Var::new("REDIS_URL", "redis://127.0.0.1:6379").doc("Redis URL");
/// `AMQP_URL` as the dev stack reads it.
pub const AMQP_URL: Var =
    Var::new("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f").doc("RabbitMQ URL");

/// A dependency the mesh needs, where it should be, and how it was configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    /// Product name.
    pub name: &'static str,
    /// `host:port`.
    pub address: String,
    /// The variable that sets it.
    pub variable: &'static str,
}

/// The dependencies named by `env` (defaults: the local standard ports).
#[must_use]
pub fn dependencies(env: &Env) -> Vec<Dependency> {
    [
        ("PostgreSQL", &flightmesh_db::DATABASE_URL, 5432),
        ("Redis", &REDIS_URL, 6379),
        ("RabbitMQ", &AMQP_URL, 5672),
    ]
    .into_iter()
    .map(|(name, var, port)| Dependency {
        name,
        address: host_port(&env.raw(var).unwrap_or_default(), port),
        variable: var.name,
    })
    .collect()
}

/// `scheme://user:pass@host:port/path` → `host:port` (with `default_port` when absent).
#[must_use]
pub fn host_port(url: &str, default_port: u16) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let has_port = host
        .rsplit_once(':')
        .is_some_and(|(_, port)| port.parse::<u16>().is_ok());
    if has_port {
        host.to_owned()
    } else {
        format!("{host}:{default_port}")
    }
}

/// The first dependency that does not accept a TCP connection within a second.
pub async fn first_unreachable(deps: &[Dependency]) -> Option<Dependency> {
    for dep in deps {
        let connected =
            tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(&dep.address)).await;
        if !matches!(connected, Ok(Ok(_))) {
            return Some(dep.clone());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_host_and_port_in_urls() {
        assert_eq!(
            host_port("postgres://postgres@127.0.0.1:5432/flightmesh", 5432),
            "127.0.0.1:5432"
        );
        assert_eq!(host_port("redis://127.0.0.1", 6379), "127.0.0.1:6379");
        assert_eq!(
            host_port("amqp://guest:guest@rabbit:5673/%2f", 5672),
            "rabbit:5673"
        );
        assert_eq!(
            host_port("postgres://u:p@db/x?sslmode=disable", 5432),
            "db:5432"
        );
    }
}
