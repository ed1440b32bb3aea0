//! The AI agent's configuration, read once from the environment. Each variable is declared
//! where it is read (`Config::read`, `EmbeddingsProvider::read`): its name, default and docs row
//! are that one call.

use std::time::Duration;

use flightmesh_runtime::config::{Reader, Secret, Var};
use flightmesh_runtime::host::HostConfig;
use flightmesh_runtime::peers;

/// The most history messages a conversation may keep (each goes to the model with every question).
const MAX_HISTORY_MESSAGES: usize = 1000;
/// Bounds of `HISTORY_MAX_MESSAGE_BYTES`.
const MESSAGE_BYTES_RANGE: std::ops::RangeInclusive<usize> = 64..=1_048_576;

/// An endpoint URL that must be plain HTTP(S); the error names `var`.
fn http_url(r: &mut Reader<'_>, var: Var) -> Option<String> {
    let url = r.opt::<String>(var)?;
    r.ensure(
        &var,
        url.starts_with("http://") || url.starts_with("https://"),
        "must start with http:// or https://",
    );
    Some(url)
}

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
    /// `EMBEDDINGS_BASE_URL` and `EMBEDDINGS_MODEL` together, or neither (offline).
    pub fn read(r: &mut Reader<'_>) -> Self {
        let base_url_var = Var::optional("EMBEDDINGS_BASE_URL").doc(
            "OpenAI-compatible embeddings server for the destination search, e.g. `http://127.0.0.1:11434/v1` (its `/embeddings`); unset: the offline lexical embedder. Changing it needs `ai-agent reembed`",
        );
        let model_var = Var::optional("EMBEDDINGS_MODEL").doc(
            "Embedding model name sent to `EMBEDDINGS_BASE_URL` (required with it) and stored with each vector",
        );
        let base_url = http_url(r, base_url_var);
        let model = r.opt::<String>(model_var);
        let api_key = r.opt(
            Var::optional("EMBEDDINGS_API_KEY")
                .doc("API key for `EMBEDDINGS_BASE_URL`, if it needs one")
                .secret(),
        );
        let timeout = r.duration(
            Var::new("EMBEDDINGS_TIMEOUT", "10s")
                .doc("Deadline of one embeddings request (504 past it)"),
        );
        match (base_url, model) {
            (Some(base_url), Some(model)) if !model.trim().is_empty() => Self::OpenAiCompatible {
                base_url,
                api_key,
                model: model.trim().to_owned(),
                timeout,
            },
            (Some(_), _) => {
                r.ensure(&base_url_var, false, "needs EMBEDDINGS_MODEL");
                Self::Offline
            }
            (None, Some(_)) => {
                r.ensure(&model_var, false, "needs EMBEDDINGS_BASE_URL");
                Self::Offline
            }
            (None, None) => Self::Offline,
        }
    }
}

flightmesh_runtime::env_config!(EmbeddingsProvider);

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
    /// Reads every variable of the service, in the order of its docs. The provider:
    /// `AI_BASE_URL` if set, else Groq if `GROQ_API_KEY` is set, else the offline answerer.
    ///
    /// Long because it is the service's list of variables, one declaration each, in the order of
    /// the README table made from it.
    pub fn read(r: &mut Reader<'_>) -> Self {
        let host = HostConfig::read(r, peers::AI.grpc_listen, peers::AI.admin_listen);
        let groq_api_key = r.opt::<Secret<String>>(
            Var::optional("GROQ_API_KEY")
                .doc("Groq API key: answers come from Groq's Llama 3.3 70B")
                .secret(),
        );
        let groq_base_url: String =
            r.get(Var::new("GROQ_BASE_URL", GROQ_BASE_URL).doc(
                "Groq's endpoint (a proxy, or a test double that enforces Groq's request rules)",
            ));
        let base_url = http_url(
            r,
            Var::optional("AI_BASE_URL").doc(
                "Any OpenAI-compatible chat-completions server (Ollama, llama.cpp, vLLM), e.g. `http://127.0.0.1:11434/v1`; wins over Groq",
            ),
        );
        let api_key = r.opt(
            Var::optional("AI_API_KEY")
                .doc("API key for `AI_BASE_URL`, if it needs one")
                .secret(),
        );
        let model: String = r.get(
            Var::new("AI_MODEL", "llama-3.3-70b-versatile").doc("Model name sent to the provider"),
        );
        let provider = match (base_url, groq_api_key) {
            (Some(base_url), _) => Provider::OpenAiCompatible {
                base_url,
                api_key,
                model,
            },
            (None, Some(api_key)) => Provider::Groq {
                api_key,
                model,
                base_url: groq_base_url,
            },
            (None, None) => Provider::Offline,
        };
        Self {
            host,
            provider,
            timeout: r.duration(Var::new("AI_TIMEOUT", "45s").doc(
                "Deadline of one answer, tool calls included (504 past it)",
            )),
            max_turns: r.within(
                Var::new("AI_MAX_TURNS", "5").doc(
                    "Most model turns (tool round trips) per answer",
                ),
                1..=20,
            ),
            redis_url: r.get(
                Var::new("REDIS_URL", "redis://127.0.0.1:6379").doc(
                    "Redis URL (chat history)",
                )
                .secret(),
            ),
            key_prefix: r
                .raw(Var::new("REDIS_KEY_PREFIX", "").doc(
                    "Prepended to the chat history keys",
                ))
                .unwrap_or_default(),
            // 0 is not "no history": Redis reads LRANGE/LTRIM -0 as "from the first message",
            // which would keep every message forever.
            history_messages: r.within(
                Var::new("HISTORY_MESSAGES", "20").doc(
                    "Messages of a conversation kept and sent along with a question (1..=1000)",
                ),
                1..=MAX_HISTORY_MESSAGES,
            ),
            history_ttl: r.positive_duration(Var::new("HISTORY_TTL", "24h").doc(
                "Idle expiry: a session's history is deleted after this much silence (renewed by every answer; > 0)",
            )),
            history_max_message_bytes: r.within(
                Var::new("HISTORY_MAX_MESSAGE_BYTES", "8192").doc(
                    "Each history message is cut to this many bytes (on a character boundary) when kept (64..=1048576)",
                ),
                MESSAGE_BYTES_RANGE,
            ),
            flights_url: r.get(peers::FLIGHTS.url(
                "gRPC URL of the flights service (market data tools)",
            )),
            stats_url: r.get(peers::STATS.url("gRPC URL of the stats worker (demand tools)")),
            embeddings: EmbeddingsProvider::read(r),
        }
    }
}

flightmesh_runtime::env_config!(Config);

#[cfg(test)]
mod tests {
    use super::*;
    use flightmesh_runtime::config::Env;

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
