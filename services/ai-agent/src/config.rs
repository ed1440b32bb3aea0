//! The AI agent's configuration, read once from the environment.

use std::time::Duration;

use flightmesh_runtime::config::{ConfigError, Dur, Env, Secret, Var};
use flightmesh_runtime::host::HostConfig;

const HOST_VARS: [Var; 5] = HostConfig::vars("0.0.0.0:50054", "0.0.0.0:51054");
const GROQ_API_KEY: Var = Var::optional(
    "GROQ_API_KEY",
    "Groq API key: answers come from Groq's Llama 3.3 70B",
)
.secret();
const GROQ_BASE_URL_VAR: Var = Var::new(
    "GROQ_BASE_URL",
    GROQ_BASE_URL,
    "Groq's endpoint (a proxy, or a test double that enforces Groq's request rules)",
);
const AI_BASE_URL: Var = Var::optional(
    "AI_BASE_URL",
    "Any OpenAI-compatible chat-completions server (Ollama, llama.cpp, vLLM), e.g. `http://127.0.0.1:11434/v1`; wins over Groq",
);
const AI_API_KEY: Var =
    Var::optional("AI_API_KEY", "API key for `AI_BASE_URL`, if it needs one").secret();
const AI_MODEL: Var = Var::new(
    "AI_MODEL",
    "llama-3.3-70b-versatile",
    "Model name sent to the provider",
);
const AI_TIMEOUT: Var = Var::new(
    "AI_TIMEOUT",
    "45s",
    "Deadline of one answer, tool calls included (504 past it)",
);
const AI_MAX_TURNS: Var = Var::new(
    "AI_MAX_TURNS",
    "5",
    "Most model turns (tool round trips) per answer",
);
const REDIS_URL: Var = Var::new(
    "REDIS_URL",
    "redis://127.0.0.1:6379",
    "Redis URL (chat history)",
)
.secret();
const REDIS_KEY_PREFIX: Var =
    Var::new("REDIS_KEY_PREFIX", "", "Prepended to the chat history keys");
const HISTORY_MESSAGES: Var = Var::new(
    "HISTORY_MESSAGES",
    "20",
    "Messages of a conversation kept and sent along with a question (1..=1000)",
);
/// The most history messages a conversation may keep (each goes to the model with every question).
const MAX_HISTORY_MESSAGES: usize = 1000;
const HISTORY_TTL: Var = Var::new(
    "HISTORY_TTL",
    "24h",
    "Idle expiry: a session's history is deleted after this much silence (renewed by every answer; > 0)",
);
const HISTORY_MAX_MESSAGE_BYTES: Var = Var::new(
    "HISTORY_MAX_MESSAGE_BYTES",
    "8192",
    "Each history message is cut to this many bytes (on a character boundary) when kept (64..=1048576)",
);
/// Bounds of `HISTORY_MAX_MESSAGE_BYTES`.
const MESSAGE_BYTES_RANGE: std::ops::RangeInclusive<usize> = 64..=1_048_576;
const FLIGHTS_URL: Var = Var::new(
    "FLIGHTS_URL",
    "http://127.0.0.1:50051",
    "gRPC URL of the flights service (market data tools)",
);
const STATS_URL: Var = Var::new(
    "STATS_URL",
    "http://127.0.0.1:50053",
    "gRPC URL of the stats worker (demand tools)",
);

const EMBEDDINGS_BASE_URL: Var = Var::optional(
    "EMBEDDINGS_BASE_URL",
    "OpenAI-compatible embeddings server for the destination search, e.g. `http://127.0.0.1:11434/v1` (its `/embeddings`); unset: the offline lexical embedder. Changing it needs `ai-agent reembed`",
);
const EMBEDDINGS_MODEL: Var = Var::optional(
    "EMBEDDINGS_MODEL",
    "Embedding model name sent to `EMBEDDINGS_BASE_URL` (required with it) and stored with each vector",
);
const EMBEDDINGS_API_KEY: Var = Var::optional(
    "EMBEDDINGS_API_KEY",
    "API key for `EMBEDDINGS_BASE_URL`, if it needs one",
)
.secret();
const EMBEDDINGS_TIMEOUT: Var = Var::new(
    "EMBEDDINGS_TIMEOUT",
    "10s",
    "Deadline of one embeddings request (504 past it)",
);

/// Who turns descriptions and queries into vectors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmbeddingsProvider {
    /// The offline lexical embedder (crate::embeddings).
    Offline,
    /// Any OpenAI-compatible `/embeddings` endpoint.
    OpenAiCompatible {
        base_url: String,
        api_key: Option<Secret<String>>,
        model: String,
        timeout: Duration,
    },
}

impl EmbeddingsProvider {
    /// The embeddings variables.
    #[must_use]
    pub fn vars() -> [Var; 4] {
        [
            EMBEDDINGS_BASE_URL,
            EMBEDDINGS_MODEL,
            EMBEDDINGS_API_KEY,
            EMBEDDINGS_TIMEOUT,
        ]
    }

    /// `EMBEDDINGS_BASE_URL` and `EMBEDDINGS_MODEL` together, or neither (offline).
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let base_url = env.get_opt::<String>(&EMBEDDINGS_BASE_URL)?;
        let model = env.get_opt::<String>(&EMBEDDINGS_MODEL)?;
        match (base_url, model) {
            (None, None) => Ok(Self::Offline),
            (Some(base_url), Some(model)) if !model.trim().is_empty() => {
                if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
                    return Err(ConfigError::invalid(
                        &EMBEDDINGS_BASE_URL,
                        &base_url,
                        "must start with http:// or https://",
                    ));
                }
                Ok(Self::OpenAiCompatible {
                    base_url,
                    api_key: env.get_opt(&EMBEDDINGS_API_KEY)?,
                    model: model.trim().to_owned(),
                    timeout: env.get::<Dur>(&EMBEDDINGS_TIMEOUT)?.0,
                })
            }
            (Some(base_url), _) => Err(ConfigError::invalid(
                &EMBEDDINGS_BASE_URL,
                &base_url,
                "needs EMBEDDINGS_MODEL",
            )),
            (None, Some(model)) => Err(ConfigError::invalid(
                &EMBEDDINGS_MODEL,
                &model,
                "needs EMBEDDINGS_BASE_URL",
            )),
        }
    }
}

/// Groq's OpenAI-compatible endpoint.
pub const GROQ_BASE_URL: &str = "https://api.groq.com/openai/v1";

/// Who writes the answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provider {
    /// Groq's hosted model.
    Groq {
        api_key: Secret<String>,
        model: String,
        /// `GROQ_BASE_URL`.
        base_url: String,
    },
    /// Any OpenAI-compatible chat-completions server.
    OpenAiCompatible {
        base_url: String,
        api_key: Option<Secret<String>>,
        model: String,
    },
    /// The deterministic offline answerer (no LLM).
    Offline,
}

impl Provider {
    /// A short name for logs and metrics.
    #[must_use]
    pub fn label(&self) -> &'static str {
        match self {
            Self::Groq { .. } => "groq",
            Self::OpenAiCompatible { .. } => "openai-compatible",
            Self::Offline => "offline",
        }
    }
}

/// Everything the AI agent needs to run.
#[derive(Debug, Clone)]
pub struct Config {
    pub host: HostConfig,
    pub provider: Provider,
    pub timeout: Duration,
    pub max_turns: usize,
    pub redis_url: Secret<String>,
    pub key_prefix: String,
    pub history_messages: usize,
    pub history_ttl: Duration,
    pub history_max_message_bytes: usize,
    pub flights_url: String,
    pub stats_url: String,
    /// The destination search's embedder.
    pub embeddings: EmbeddingsProvider,
}

impl Config {
    /// Every variable the service reads.
    #[must_use]
    pub fn vars() -> Vec<Var> {
        let mut vars = HOST_VARS.to_vec();
        vars.extend([
            GROQ_API_KEY,
            GROQ_BASE_URL_VAR,
            AI_BASE_URL,
            AI_API_KEY,
            AI_MODEL,
            AI_TIMEOUT,
            AI_MAX_TURNS,
            REDIS_URL,
            REDIS_KEY_PREFIX,
            HISTORY_MESSAGES,
            HISTORY_TTL,
            HISTORY_MAX_MESSAGE_BYTES,
            FLIGHTS_URL,
            STATS_URL,
        ]);
        vars.extend(EmbeddingsProvider::vars());
        vars
    }

    /// Reads and validates the configuration. The provider: `AI_BASE_URL` if set, else Groq if
    /// `GROQ_API_KEY` is set, else the offline answerer.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let model: String = env.get(&AI_MODEL)?;
        let provider = match (
            env.get_opt::<String>(&AI_BASE_URL)?,
            env.get_opt::<Secret<String>>(&GROQ_API_KEY)?,
        ) {
            (Some(base_url), _) => {
                if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
                    return Err(ConfigError::invalid(
                        &AI_BASE_URL,
                        &base_url,
                        "must start with http:// or https://",
                    ));
                }
                Provider::OpenAiCompatible {
                    base_url,
                    api_key: env.get_opt(&AI_API_KEY)?,
                    model,
                }
            }
            (None, Some(api_key)) => Provider::Groq {
                api_key,
                model,
                base_url: env.get(&GROQ_BASE_URL_VAR)?,
            },
            (None, None) => Provider::Offline,
        };
        let max_turns: usize = env.get(&AI_MAX_TURNS)?;
        if !(1..=20).contains(&max_turns) {
            return Err(ConfigError::invalid(
                &AI_MAX_TURNS,
                &max_turns.to_string(),
                "must be 1..=20",
            ));
        }
        let history_messages: usize = env.get(&HISTORY_MESSAGES)?;
        // 0 is not "no history": Redis reads LRANGE/LTRIM -0 as "from the first message", which
        // would keep every message forever.
        if !(1..=MAX_HISTORY_MESSAGES).contains(&history_messages) {
            return Err(ConfigError::invalid(
                &HISTORY_MESSAGES,
                &history_messages.to_string(),
                format!("must be 1..={MAX_HISTORY_MESSAGES}"),
            ));
        }
        let history_ttl = env.get::<Dur>(&HISTORY_TTL)?.0;
        if history_ttl.is_zero() {
            return Err(ConfigError::invalid(&HISTORY_TTL, "0s", "must be positive"));
        }
        let history_max_message_bytes: usize = env.get(&HISTORY_MAX_MESSAGE_BYTES)?;
        if !MESSAGE_BYTES_RANGE.contains(&history_max_message_bytes) {
            return Err(ConfigError::invalid(
                &HISTORY_MAX_MESSAGE_BYTES,
                &history_max_message_bytes.to_string(),
                format!(
                    "must be {}..={}",
                    MESSAGE_BYTES_RANGE.start(),
                    MESSAGE_BYTES_RANGE.end()
                ),
            ));
        }
        Ok(Self {
            host: HostConfig::from_env(env, &HOST_VARS)?,
            provider,
            timeout: env.get::<Dur>(&AI_TIMEOUT)?.0,
            max_turns,
            redis_url: env.get(&REDIS_URL)?,
            key_prefix: env.raw(&REDIS_KEY_PREFIX).unwrap_or_default(),
            history_messages,
            history_ttl,
            history_max_message_bytes,
            flights_url: env.get(&FLIGHTS_URL)?,
            stats_url: env.get(&STATS_URL)?,
            embeddings: EmbeddingsProvider::from_env(env)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_messages_is_bounded_and_never_zero() {
        let with = |value: &str| Config::from_env(&Env::from_pairs([("HISTORY_MESSAGES", value)]));
        let defaults = Env::from_pairs(std::iter::empty::<(&str, &str)>());
        assert_eq!(Config::from_env(&defaults).unwrap().history_messages, 20);
        for refused in ["0", "1001"] {
            let err = with(refused).expect_err(refused).to_string();
            assert!(err.contains("HISTORY_MESSAGES"), "{err}");
        }
        assert_eq!(with("1").unwrap().history_messages, 1);
    }

    #[test]
    fn embeddings_need_a_url_and_a_model_together() {
        let config = |pairs: &[(&str, &str)]| {
            EmbeddingsProvider::from_env(&Env::from_pairs(pairs.iter().copied()))
        };
        assert_eq!(config(&[]).unwrap(), EmbeddingsProvider::Offline);
        let remote = config(&[
            ("EMBEDDINGS_BASE_URL", "http://127.0.0.1:9/v1"),
            ("EMBEDDINGS_MODEL", "nomic-embed-text"),
        ])
        .unwrap();
        assert!(
            matches!(remote, EmbeddingsProvider::OpenAiCompatible { ref model, .. } if model == "nomic-embed-text")
        );
        assert!(config(&[("EMBEDDINGS_BASE_URL", "http://127.0.0.1:9/v1")]).is_err());
        assert!(config(&[("EMBEDDINGS_MODEL", "m")]).is_err());
        assert!(
            config(&[
                ("EMBEDDINGS_BASE_URL", "ftp://x"),
                ("EMBEDDINGS_MODEL", "m")
            ])
            .is_err()
        );
    }

    #[test]
    fn history_caps_are_validated() {
        let with = |name: &str, value: &str| Config::from_env(&Env::from_pairs([(name, value)]));
        let defaults =
            Config::from_env(&Env::from_pairs(std::iter::empty::<(&str, &str)>())).unwrap();
        assert_eq!(defaults.history_max_message_bytes, 8192);
        assert_eq!(defaults.history_ttl, Duration::from_secs(24 * 3600));
        for refused in ["0", "63", "1048577"] {
            let err = with("HISTORY_MAX_MESSAGE_BYTES", refused)
                .expect_err(refused)
                .to_string();
            assert!(err.contains("HISTORY_MAX_MESSAGE_BYTES"), "{err}");
        }
        let err = with("HISTORY_TTL", "0s").expect_err("0s").to_string();
        assert!(err.contains("HISTORY_TTL"), "{err}");
        assert_eq!(
            with("HISTORY_TTL", "500ms").unwrap().history_ttl,
            Duration::from_millis(500)
        );
    }
}
