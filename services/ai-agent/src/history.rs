//! Chat history per conversation, in Redis so that every replica sees the same conversation:
//! a list of `{"role", "content"}` JSON messages, trimmed to the last `max` (`HISTORY_MESSAGES`),
//! each message's content cut to `max_message_bytes` (`HISTORY_MAX_MESSAGE_BYTES`, on a character
//! boundary, so a long answer cannot grow every later prompt without bound), and the whole list
//! expiring after `ttl` of silence (`HISTORY_TTL`: `PEXPIRE` renewed by every write). Unary and
//! streamed chats read and write it through the same [`History::load`] and [`History::record`].
//!
//! A conversation belongs to its caller ([`Conversation::of`]; ADR 0010). A signed-in caller's
//! sessions live under their user id (`user:{id}:{session}`, `default` when no session is given),
//! so a session id chosen by one user never reads another's. An anonymous caller (compatible
//! policy) gets a random session id issued by the server, returned in the answer; an anonymous
//! session id is honoured only if it has the issued shape, so guessable names such as the old
//! clients' `default` no longer share one history between everyone.

use std::time::Duration;

use flightmesh_runtime::caller::Caller;
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

/// Prefix of a server-issued anonymous session id.
const ANONYMOUS_PREFIX: &str = "anon-";
/// Hex digits after [`ANONYMOUS_PREFIX`]: two random v4 UUIDs, 244 random bits.
const ANONYMOUS_HEX_DIGITS: usize = 64;
/// The session of a signed-in caller who names none.
pub const DEFAULT_SESSION: &str = "default";

/// Whose conversation a chat request continues, and where it is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    /// The history's key below `{prefix}ai:history:`.
    key: String,
    /// What the client sends back to continue the conversation.
    pub session_id: String,
}

impl Conversation {
    /// The conversation `requested` (a client's `session_id`) names for `caller`.
    #[must_use]
    pub fn of(caller: Option<&Caller>, requested: Option<&str>) -> Self {
        match (caller, requested) {
            (Some(caller), requested) => {
                let session = requested.unwrap_or(DEFAULT_SESSION);
                Self {
                    key: format!("user:{}:{session}", caller.user_id),
                    session_id: session.to_owned(),
                }
            }
            (None, Some(session)) if is_issued(session) => Self {
                key: format!("anon:{session}"),
                session_id: session.to_owned(),
            },
            (None, _) => {
                let session = issue();
                Self {
                    key: format!("anon:{session}"),
                    session_id: session,
                }
            }
        }
    }

    /// The history's key below the prefix (for tests and logs).
    #[must_use]
    pub fn key(&self) -> &str {
        &self.key
    }
}

/// A fresh anonymous session id: unguessable (the OS's CSPRNG through UUID v4).
fn issue() -> String {
    format!(
        "{ANONYMOUS_PREFIX}{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// Whether `session` has the shape of a server-issued anonymous session id.
#[must_use]
pub fn is_issued(session: &str) -> bool {
    session.strip_prefix(ANONYMOUS_PREFIX).is_some_and(|hex| {
        hex.len() == ANONYMOUS_HEX_DIGITS
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// Conversations kept in Redis.
pub struct History {
    client: redis::Client,
    manager: OnceCell<ConnectionManager>,
    timeout: Duration,
    prefix: String,
    max: isize,
    max_message_bytes: usize,
    ttl: Duration,
}

/// `text` cut to at most `max` bytes, at the last character boundary that fits.
#[must_use]
pub fn truncate_bytes(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

impl History {
    pub fn new(
        url: &Secret<String>,
        prefix: &str,
        max: usize,
        max_message_bytes: usize,
        ttl: Duration,
        timeout: Duration,
    ) -> Result<Self, redis::RedisError> {
        Ok(Self {
            client: redis::Client::open(url.expose().as_str())?,
            manager: OnceCell::new(),
            timeout,
            prefix: prefix.to_owned(),
            // 0 would make LRANGE/LTRIM keep everything (`-0` is the first element): at least 1.
            max: isize::try_from(max.max(1)).unwrap_or(isize::MAX),
            max_message_bytes,
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

    fn key(&self, conversation: &Conversation) -> String {
        format!("{}ai:history:{}", self.prefix, conversation.key)
    }

    /// The last messages of a conversation, oldest first.
    pub async fn recent(
        &self,
        conversation: &Conversation,
    ) -> Result<Vec<Message>, redis::RedisError> {
        let mut conn = self.conn().await?;
        let stored: Vec<String> = conn.lrange(self.key(conversation), -self.max, -1).await?;
        Ok(stored
            .iter()
            .filter_map(|m| serde_json::from_str(m).ok())
            .collect())
    }

    /// The history sent along with a question: without Redis, none (history is a nicety; the
    /// question is answered on its own).
    pub async fn load(&self, conversation: &Conversation) -> Vec<Message> {
        self.recent(conversation).await.unwrap_or_else(|err| {
            tracing::warn!(error = %err, "chat history unavailable");
            Vec::new()
        })
    }

    /// Keeps a question and its answer (a failure is logged, not the caller's problem).
    pub async fn record(&self, conversation: &Conversation, question: &str, answer: &str) {
        if let Err(err) = self
            .append(
                conversation,
                &[Message::user(question), Message::assistant(answer)],
            )
            .await
        {
            tracing::warn!(error = %err, "chat history not saved");
        }
    }

    /// Appends messages (each cut to the byte cap), keeps the last `max`, and renews the expiry.
    pub async fn append(
        &self,
        conversation: &Conversation,
        messages: &[Message],
    ) -> Result<(), redis::RedisError> {
        let key = self.key(conversation);
        let encoded: Vec<String> = messages
            .iter()
            .map(|m| Message {
                role: m.role.clone(),
                content: truncate_bytes(&m.content, self.max_message_bytes).to_owned(),
            })
            .filter_map(|m| serde_json::to_string(&m).ok())
            .collect();
        let mut conn = self.conn().await?;
        redis::pipe()
            .atomic()
            .rpush(&key, encoded)
            .ignore()
            .ltrim(&key, -self.max, -1)
            .ignore()
            // Milliseconds: a sub-second TTL must not round to 0 (which deletes the key at once).
            .pexpire(
                &key,
                i64::try_from(self.ttl.as_millis().max(1)).unwrap_or(i64::MAX),
            )
            .ignore()
            .query_async::<()>(&mut conn)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str) -> Caller {
        Caller {
            user_id: id.into(),
            admin: false,
        }
    }

    #[test]
    fn messages_are_cut_on_a_character_boundary() {
        assert_eq!(truncate_bytes("hola", 10), "hola");
        assert_eq!(truncate_bytes("hola", 4), "hola");
        assert_eq!(truncate_bytes("hola", 2), "ho");
        // "á" is two bytes: a cut inside it keeps the text before it.
        assert_eq!(truncate_bytes("aá", 2), "a");
        assert_eq!(truncate_bytes("ñññ", 5), "ññ");
        assert_eq!(truncate_bytes("✈✈", 4), "✈");
        assert_eq!(truncate_bytes("✈", 0), "");
    }

    #[test]
    fn a_signed_in_callers_sessions_live_under_their_user_id() {
        let ana = user("7");
        let luis = user("8");
        assert_eq!(Conversation::of(Some(&ana), None).key(), "user:7:default");
        assert_eq!(Conversation::of(Some(&ana), None).session_id, "default");
        assert_eq!(
            Conversation::of(Some(&ana), Some("viaje")).key(),
            "user:7:viaje"
        );
        assert_ne!(
            Conversation::of(Some(&ana), Some("viaje")),
            Conversation::of(Some(&luis), Some("viaje"))
        );
        // An anonymous conversation's id does not open it for a signed-in user either.
        let anonymous = Conversation::of(None, None);
        assert_eq!(
            Conversation::of(Some(&ana), Some(&anonymous.session_id)).key(),
            format!("user:7:{}", anonymous.session_id)
        );
    }

    #[test]
    fn anonymous_callers_get_unguessable_server_issued_sessions() {
        let first = Conversation::of(None, None);
        let second = Conversation::of(None, None);
        assert_ne!(first, second);
        for issued in [&first, &second] {
            assert!(is_issued(&issued.session_id), "{}", issued.session_id);
            assert_eq!(issued.key(), format!("anon:{}", issued.session_id));
        }
        // An issued id continues its conversation; anything else gets a fresh one.
        assert_eq!(Conversation::of(None, Some(&first.session_id)), first);
        for chosen in [
            "default",
            "ana",
            "anon-1234",
            &first.session_id.to_uppercase(),
        ] {
            let fresh = Conversation::of(None, Some(chosen));
            assert_ne!(fresh.session_id, chosen);
            assert!(is_issued(&fresh.session_id));
        }
    }
}
