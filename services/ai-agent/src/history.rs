//! Chat history per `session_id`, in Redis so that every replica sees the same conversation:
//! a list of `{"role", "content"}` JSON messages, trimmed to the last `max` and expiring after
//! `ttl` of silence.

use std::time::Duration;

use flightmesh_runtime::config::Secret;
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// `user` or `assistant`.
    pub role: String,
    pub content: String,
}

impl Message {
    #[must_use]
    pub fn user(content: &str) -> Self {
        Self {
            role: "user".into(),
            content: content.into(),
        }
    }

    #[must_use]
    pub fn assistant(content: &str) -> Self {
        Self {
            role: "assistant".into(),
            content: content.into(),
        }
    }
}

/// Conversations kept in Redis.
pub struct History {
    client: redis::Client,
    manager: OnceCell<ConnectionManager>,
    timeout: Duration,
    prefix: String,
    max: isize,
    ttl: Duration,
}

impl History {
    pub fn new(
        url: &Secret<String>,
        prefix: &str,
        max: usize,
        ttl: Duration,
        timeout: Duration,
    ) -> Result<Self, redis::RedisError> {
        Ok(Self {
            client: redis::Client::open(url.expose().as_str())?,
            manager: OnceCell::new(),
            timeout,
            prefix: prefix.to_owned(),
            max: isize::try_from(max).unwrap_or(isize::MAX),
            ttl,
        })
    }

    async fn conn(&self) -> Result<ConnectionManager, redis::RedisError> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_number_of_retries(1);
        Ok(self
            .manager
            .get_or_try_init(|| ConnectionManager::new_with_config(self.client.clone(), config))
            .await?
            .clone())
    }

    fn key(&self, session: &str) -> String {
        format!("{}ai:history:{session}", self.prefix)
    }

    /// The last messages of a session, oldest first.
    pub async fn recent(&self, session: &str) -> Result<Vec<Message>, redis::RedisError> {
        let mut conn = self.conn().await?;
        let stored: Vec<String> = conn.lrange(self.key(session), -self.max, -1).await?;
        Ok(stored
            .iter()
            .filter_map(|m| serde_json::from_str(m).ok())
            .collect())
    }

    /// Appends messages, keeps the last `max`, and renews the expiry.
    pub async fn append(
        &self,
        session: &str,
        messages: &[Message],
    ) -> Result<(), redis::RedisError> {
        let key = self.key(session);
        let encoded: Vec<String> = messages
            .iter()
            .filter_map(|m| serde_json::to_string(m).ok())
            .collect();
        let mut conn = self.conn().await?;
        redis::pipe()
            .atomic()
            .rpush(&key, encoded)
            .ignore()
            .ltrim(&key, -self.max, -1)
            .ignore()
            .expire(&key, i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX))
            .ignore()
            .query_async::<()>(&mut conn)
            .await
    }
}
