//! flightmesh the AI agent: answers and price suggestions grounded in data fetched through tools.
//!
//! Not built yet: the process serves `grpc.health.v1`, reflection and the admin port, and
//! nothing else — the gateway answers its routes with 503.

use std::net::SocketAddr;

use flightmesh_runtime::config::{ConfigError, Env, Var};
use flightmesh_runtime::{CancellationToken, Host, HostConfig};

/// The service's name in logs and health.
pub const SERVICE_NAME: &str = "ai-agent";
const HOST_VARS: [Var; 3] = HostConfig::vars("0.0.0.0:50054", "0.0.0.0:51054");

/// Start-up and run-time failures, with their cause chain.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The service's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Ports and drain.
    pub host: HostConfig,
}

impl Config {
    /// Every variable the service reads.
    #[must_use]
    pub fn vars() -> Vec<Var> {
        HOST_VARS.to_vec()
    }

    /// Reads and validates the configuration.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            host: HostConfig::from_env(env, &HOST_VARS)?,
        })
    }
}

/// The service with its ports bound.
pub struct Service {
    host: Host,
}

impl Service {
    /// Binds the ports.
    pub async fn build(config: Config) -> Result<Self, BoxError> {
        Ok(Self {
            host: Host::bind(SERVICE_NAME, &config.host).await?,
        })
    }

    /// The bound gRPC address.
    #[must_use]
    pub fn grpc_addr(&self) -> SocketAddr {
        self.host.grpc_addr()
    }

    /// Serves until `shutdown` is cancelled.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), BoxError> {
        Ok(self.host.run(shutdown).await?)
    }
}

/// Builds and runs the service until `shutdown` is cancelled.
pub async fn serve(config: Config, shutdown: CancellationToken) -> Result<(), BoxError> {
    Service::build(config).await?.run(shutdown).await
}
