//! Redis: one multiplexed connection per process, connected lazily and re-established by itself,
//! with bounded connect and response times so that an outage answers fast (503), never hangs.

use std::time::Duration;

use flightmesh_runtime::config::Secret;
use redis::IntoConnectionInfo;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::OnceCell;

/// A Redis failure: the caller answers UNAVAILABLE (or retries the event).
#[derive(Debug, thiserror::Error)]
#[error("redis: {0}")]
pub struct RedisError(#[from] pub redis::RedisError);

/// The process's Redis connection.
pub struct Redis {
    client: redis::Client,
    config: ConnectionManagerConfig,
    manager: OnceCell<ConnectionManager>,
}

impl Redis {
    /// Nothing is connected until first use: the worker starts even if Redis is down.
    pub fn new(url: &Secret<String>, timeout: Duration) -> Result<Self, RedisError> {
        // TCP_NODELAY: every event is a small request waiting for a small answer.
        let info = url
            .expose()
            .as_str()
            .into_connection_info()?
            .set_tcp_settings(redis::io::tcp::TcpSettings::default().set_nodelay(true));
        Ok(Self {
            client: redis::Client::open(info)?,
            config: ConnectionManagerConfig::new()
                .set_connection_timeout(Some(timeout))
                .set_response_timeout(Some(timeout))
                .set_number_of_retries(1)
                .set_max_delay(Duration::from_secs(2)),
            manager: OnceCell::new(),
        })
    }

    /// A handle on the shared connection (cheap clone of a multiplexed connection).
    pub async fn conn(&self) -> Result<ConnectionManager, RedisError> {
        let manager = self
            .manager
            .get_or_try_init(|| {
                ConnectionManager::new_with_config(self.client.clone(), self.config.clone())
            })
            .await?;
        Ok(manager.clone())
    }

    /// One PING, for readiness.
    pub async fn ping(&self) -> Result<(), RedisError> {
        let mut conn = self.conn().await?;
        redis::cmd("PING").query_async::<String>(&mut conn).await?;
        Ok(())
    }
}
