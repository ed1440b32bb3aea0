//! The gateway's configuration, read once from the environment. Each variable is declared
//! where it is read (`Config::read`, and [`access`] for who may call what): its name, default and
//! docs row are that one call.

mod access;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

use flightmesh_db::DbConfig;
use flightmesh_runtime::config::{ConfigError, ENVIRONMENT, Environment, Reader, Secret, Var};
use flightmesh_runtime::host::DRAIN_DELAY;
use flightmesh_runtime::peers;
use flightmesh_runtime::shed::ShedConfig;

pub use access::{
    COMPATIBLE_MIN_PASSWORD_LENGTH, DEVELOPMENT_SECRET, IdentityConfig, MAX_JWT_TTL,
    MAX_USER_CHECK_INTERVAL, PRODUCTION_MIN_PASSWORD_LENGTH,
};

use crate::client_addr::TrustedProxies;
use crate::policy::Policy;
use crate::ratelimit::{Class, Limit};

/// Removed: it trusted the left-most `X-Forwarded-For` hop, which the client writes.
const TRUST_FORWARDED_FOR: Var =
    Var::optional("TRUST_FORWARDED_FOR").doc("Removed; refused when true (use `TRUSTED_PROXIES`)");

flightmesh_runtime::word_enum! {
    /// `RATE_LIMIT_STORE`: where the rate limit windows live.
    pub enum RateLimitStore {
        /// Per replica.
        Memory = "memory",
        /// One budget shared by every replica.
        Redis = "redis",
    }
}

/// Everything the gateway needs to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Listen address.
    pub http_addr: SocketAddr,
    /// gRPC URL per mesh service (`flights`, `bookings`, `stats`, `ai`), keyed by the proto
    /// package's domain (`flightmesh.<domain>.v1`).
    pub upstreams: BTreeMap<String, String>,
    /// Deadline of ordinary upstream calls.
    pub request_timeout: Duration,
    /// Deadline of AI calls (of the whole stream, for a streamed route).
    pub ai_request_timeout: Duration,
    /// Interval of SSE heartbeat comments.
    pub stream_heartbeat: Duration,
    /// Body size limit in bytes.
    pub max_body_bytes: usize,
    /// Unary upstream calls in flight at most, and the wait for a slot.
    pub shed: ShedConfig,
    /// CORS origins.
    pub cors_allowed_origins: Vec<String>,
    /// NOT_READY time before the listener closes on shutdown.
    pub drain_delay: Duration,
    /// PostgreSQL (schema `identity`).
    pub db: DbConfig,
    /// Apply migrations before serving.
    pub migrate_on_start: bool,
    /// Who may call what.
    pub policy: Policy,
    /// The bootstrap admin.
    pub admin: Option<(String, Secret<String>)>,
    /// Tokens, the user check and password hashing.
    pub identity: IdentityConfig,
    /// Rate limits by route class.
    pub rate_limits: HashMap<Class, Limit>,
    /// Redis URL when the limits are shared; `None` keeps them in memory.
    pub rate_limit_redis: Option<Secret<String>>,
    /// Key prefix in Redis.
    pub redis_key_prefix: String,
    /// Proxies whose `X-Forwarded-For` hops are believed.
    pub trusted_proxies: TrustedProxies,
    /// Cap of the in-memory limiter's map.
    pub rate_limit_memory_clients: usize,
    /// Deadline of a request's headers (and of an idle keep-alive connection).
    pub header_read_timeout: Duration,
    /// Deadline of a request's body.
    pub body_read_timeout: Duration,
    /// Admin HTTP address (`/livez`, `/readyz`, `/metrics`).
    pub admin_addr: SocketAddr,
    /// `/metrics` on the public port too.
    pub public_metrics: bool,
    /// `/docs` and `/openapi.json` served.
    pub api_docs: bool,
}

/// An upstream's gRPC URL; the error names `var`.
fn upstream(r: &mut Reader<'_>, var: Var) -> String {
    let url: String = r.get(var);
    r.ensure(
        &var,
        flightmesh_runtime::channel::is_upstream_url(&url),
        "must start with http://, https:// or dns:///",
    );
    url
}

impl Config {
    /// Reads every variable of the gateway, in the order of its docs.
    ///
    /// Longer than most functions: it is the gateway's list of variables, one declaration
    /// each, and splitting it would split the list the README table is made from.
    pub fn read(r: &mut Reader<'_>) -> Self {
        let http_addr = r.get(Var::new("HTTP_ADDR", "0.0.0.0:8080").doc("REST listen address"));
        let upstreams = [
            (peers::FLIGHTS, "gRPC URL of the flights service"),
            (peers::BOOKINGS, "gRPC URL of the bookings service"),
            (peers::STATS, "gRPC URL of the stats-worker service"),
            (peers::AI, "gRPC URL of the ai-agent service"),
        ]
        .map(|(peer, doc)| (peer.name.to_owned(), upstream(r, peer.url(doc))))
        .into();
        let request_timeout = r.duration(
            Var::new("REQUEST_TIMEOUT", "10s")
                .doc("Deadline of an upstream call (504 when exceeded)"),
        );
        let ai_request_timeout = r.duration(
            Var::new("AI_REQUEST_TIMEOUT", "60s")
                .doc("Deadline of an upstream call on `/api/v1/ai/*` (LLM answers are slow)"),
        );
        let stream_heartbeat = r.positive_duration(Var::new("STREAM_HEARTBEAT", "15s").doc(
            "Interval of the comment lines that keep an idle Server-Sent Events answer open through proxies (> 0)",
        ));
        let max_body_bytes = r.positive(
            Var::new("MAX_BODY_BYTES", "65536").doc("Largest request body accepted (413 above)"),
        );
        let cors_allowed_origins = r
            .get::<String>(
                Var::new(
                    "CORS_ALLOWED_ORIGINS",
                    "http://localhost:3000,http://localhost:5173",
                )
                .doc("Comma-separated origins allowed by CORS (credentials allowed)"),
            )
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        let drain_delay = r.duration(DRAIN_DELAY);
        let shed = ShedConfig::read(r);
        let db = DbConfig::read(r);
        let migrate_on_start = r.get(
            Var::new("MIGRATE_ON_START", "true")
                .doc("Apply pending migrations of the `identity` schema at start"),
        );
        let environment: Environment = r.get(ENVIRONMENT.doc(
            "`production` or `development`; production refuses weak or example signing keys, the compatible policy (see `ALLOW_COMPATIBLE_IN_PRODUCTION`) and passwords under 8 characters",
        ));
        let access = access::read(r, environment);
        let rate_limits = HashMap::from([
            (
                Class::Default,
                r.get(
                    Var::new("RATE_LIMIT_DEFAULT", "600/60s")
                        .doc("Requests per client per window on `/api/v1/*`"),
                ),
            ),
            (
                Class::Ai,
                r.get(
                    Var::new("RATE_LIMIT_AI", "20/60s")
                        .doc("Requests per client per window on `/api/v1/ai/*`"),
                ),
            ),
            (
                Class::Auth,
                r.get(
                    Var::new("RATE_LIMIT_AUTH", "30/60s")
                        .doc("Requests per client per window on login and register"),
                ),
            ),
        ]);
        let store: RateLimitStore = r.get(
            Var::new("RATE_LIMIT_STORE", "memory")
                .doc("`memory` (per replica) or `redis` (one budget shared by every replica)"),
        );
        let redis_url: Secret<String> = r.get(
            Var::new("REDIS_URL", "redis://127.0.0.1:6379")
                .doc("Redis URL (shared rate limits)")
                .secret(),
        );
        let redis_key_prefix = r
            .raw(Var::new("REDIS_KEY_PREFIX", "").doc("Prepended to the rate limit keys"))
            .unwrap_or_default();
        // The edge: client addresses, limiter memory, slow clients, what the public port shows.
        let trusted_proxies = r.get(Var::new("TRUSTED_PROXIES", "").doc(
            "Comma-separated networks of the proxies in front of the gateway (`10.0.0.0/8,fd00::/8`); the client is the right-most `X-Forwarded-For` hop outside them, and only when the peer is one of them. Empty: the peer is the client",
        ));
        if let Some(value) = r.raw(TRUST_FORWARDED_FOR) {
            // Refused when true or unreadable: it must not silently stop working.
            if value.parse::<bool>() != Ok(false) {
                r.fail(removed_trust_forwarded_for(&value));
            }
        }
        Self {
            http_addr,
            upstreams,
            request_timeout,
            ai_request_timeout,
            stream_heartbeat,
            max_body_bytes,
            shed,
            cors_allowed_origins,
            drain_delay,
            db,
            migrate_on_start,
            policy: access.policy,
            admin: access.admin,
            identity: access.identity,
            rate_limits,
            rate_limit_redis: (store == RateLimitStore::Redis).then_some(redis_url),
            redis_key_prefix,
            trusted_proxies,
            rate_limit_memory_clients: r.positive(Var::new("RATE_LIMIT_MEMORY_CLIENTS", "100000").doc(
                "Most (class, client) windows the in-memory limiter keeps (also the auth fallback of the Redis store); the oldest are evicted beyond it",
            )),
            header_read_timeout: r.positive_duration(Var::new("HEADER_READ_TIMEOUT", "65s").doc(
                "Time a connection gets to send a request's headers, idle keep-alive time included (the connection is closed past it); above the 60 s upstream keep-alive of common proxies",
            )),
            body_read_timeout: r.positive_duration(Var::new("BODY_READ_TIMEOUT", "30s").doc(
                "Time a request gets to send its body (408 and the connection closed past it)",
            )),
            admin_addr: r.get(Var::new("ADMIN_ADDR", "0.0.0.0:8081").doc(
                "Admin HTTP listen address (`/livez`, `/readyz`, `/metrics`)",
            )),
            public_metrics: r
                .opt(Var::optional("PUBLIC_METRICS").doc(
                    "Also serve `/metrics` on the public port (default: true under `ENVIRONMENT=development`, false under `production`)",
                ))
                .unwrap_or(environment == Environment::Development),
            api_docs: r.get(Var::new("API_DOCS", "true").doc(
                "Serve `/docs` and `/openapi.json` (false: 404)",
            )),
        }
    }
}

/// The error for the removed `TRUST_FORWARDED_FOR`: it must not silently stop working.
fn removed_trust_forwarded_for(value: &str) -> ConfigError {
    ConfigError::invalid(
        &TRUST_FORWARDED_FOR,
        value,
        "was removed (it believed the left-most X-Forwarded-For hop, which the client writes): \
         list the networks of your proxies in TRUSTED_PROXIES instead, e.g. TRUSTED_PROXIES=10.0.0.0/8",
    )
}

flightmesh_runtime::env_config!(Config);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets;
    use flightmesh_runtime::config::Env;

    /// A key that passes the production rules, made at run time so that no literal strong key
    /// sits in the repository (the repository scan below would have to refuse it).
    fn strong_key() -> String {
        (0..40u32)
            .map(|i| {
                let alphabet = b"Hq7ZpK2vN9xRm4TbW6cYf8LgS3dJ5aUe";
                char::from(alphabet[((i * 37 + i * i * 11 + 5) % 32) as usize])
            })
            .collect()
    }

    fn production_env() -> Env {
        Env::from_pairs([("ENVIRONMENT", "production")])
    }

    fn production(secret: Option<&str>) -> Result<Config, ConfigError> {
        let env = production_env();
        Config::from_env(&match secret {
            Some(secret) => env.set("JWT_SECRET", secret),
            None => env,
        })
    }

    #[test]
    fn production_refuses_a_missing_short_or_default_signing_key() {
        assert!(
            matches!(production(None), Err(ConfigError::Missing { name }) if name == "JWT_SECRET")
        );
        for weak in ["short", DEVELOPMENT_SECRET] {
            let err = production(Some(weak)).expect_err(weak).to_string();
            assert!(err.contains("JWT_SECRET"), "{err}");
            assert!(!err.contains(weak), "the secret must not be echoed: {err}");
        }
        let strong = strong_key();
        assert_eq!(secrets::weakness(&strong), None, "{strong}");
        let config = production(Some(&strong)).unwrap();
        assert_eq!(config.identity.tokens.secret.expose(), &strong);
        assert_eq!(config.identity.password_min_length, 8);
        assert!(!config.identity.compatible_in_production);
    }

    #[test]
    fn development_signs_with_the_development_key() {
        let config = Config::from_env(&Env::from_pairs([("ENVIRONMENT", "development")])).unwrap();
        assert_eq!(config.identity.tokens.secret.expose(), DEVELOPMENT_SECRET);
        assert_eq!(
            config.policy,
            Policy::Production,
            "the policy is separate from the environment"
        );
    }

    /// Refuses `secret` both as `JWT_SECRET` and as a previous key, naming the variable and never
    /// echoing the value.
    fn assert_refused_in_production(secret: &str, origin: &str) {
        for (var, value) in [
            ("JWT_SECRET", secret.to_owned()),
            ("JWT_PREVIOUS_KEYS", format!("old:{secret}")),
        ] {
            let mut env = production_env().set(var, value);
            if var != "JWT_SECRET" {
                env = env.set("JWT_SECRET", strong_key());
            }
            let err = Config::from_env(&env)
                .err()
                .unwrap_or_else(|| {
                    panic!("{origin}: {secret:?} starts a production gateway as {var}")
                })
                .to_string();
            assert!(err.contains(var), "{origin}: {err}");
            assert!(
                secret.len() < 4 || !err.contains(secret),
                "{origin}: the secret {secret:?} must not be echoed: {err}"
            );
        }
    }

    #[test]
    fn production_refuses_every_known_example_secret() {
        for secret in secrets::KNOWN_EXAMPLE_SECRETS {
            assert_refused_in_production(secret, "KNOWN_EXAMPLE_SECRETS");
        }
        for secret in [
            "change-me-0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d",
            "0123456789abcdef0123456789abcdef",
        ] {
            assert_refused_in_production(secret, "rule");
        }
    }

    /// Values assigned to JWT signing keys in `text`: `JWT_SECRET: v`, `JWT_SECRET=v`,
    /// `"JWT_SECRET": "v"`, `("JWT_SECRET", "v")`, `JWT_PREVIOUS_KEYS=kid:v,…`. References
    /// (`$X`, `${X}`, `{{ … }}`), empty values and, in code, anything but a string literal are
    /// not secrets.
    fn assigned_keys(text: &str, code: bool) -> Vec<String> {
        let mut found = Vec::new();
        for name in ["JWT_SECRET", "JWT_PREVIOUS_KEYS"] {
            for (at, _) in text.match_indices(name) {
                let rest = &text[at + name.len()..];
                let line = rest.lines().next().unwrap_or("");
                let after_name = line.trim_start_matches(['"', '\'', ']', '`']);
                let Some(after_sep) = after_name
                    .trim_start()
                    .strip_prefix([':', '=', ','])
                    .map(str::trim_start)
                else {
                    continue;
                };
                let value = if let Some(quoted) = after_sep.strip_prefix(['"', '\'']) {
                    let quote = after_sep.as_bytes()[0] as char;
                    quoted.split(quote).next().unwrap_or("").to_owned()
                } else if code {
                    continue;
                } else {
                    after_sep
                        .split([' ', '#', '\t'])
                        .next()
                        .unwrap_or("")
                        .to_owned()
                };
                // Another variable's name (a list of names, not an assignment).
                let a_name = value.chars().all(|c| c.is_ascii_uppercase() || c == '_');
                if value.is_empty()
                    || a_name
                    || value.starts_with('$')
                    || value.contains("{{")
                    || value.starts_with('{')
                    || value.starts_with('[')
                    || value.starts_with('|')
                    || value.starts_with('>')
                {
                    continue;
                }
                if name == "JWT_PREVIOUS_KEYS" {
                    found.extend(
                        value
                            .split(',')
                            .filter_map(|entry| entry.split_once(':').map(|(_, s)| s.to_owned())),
                    );
                } else {
                    found.push(value);
                }
            }
        }
        found
    }

    fn repository_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if path.is_dir() {
                if !matches!(name.as_ref(), "target" | ".git" | "node_modules") {
                    repository_files(&path, out);
                }
            } else if [
                ".yaml", ".yml", ".env", ".sh", ".md", ".rs", ".py", ".toml", ".json", ".tpl",
            ]
            .iter()
            .any(|ext| name.ends_with(ext))
                || name.starts_with(".env")
            {
                out.push(path);
            }
        }
    }

    #[test]
    fn every_signing_key_written_in_the_repository_is_refused_in_production() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut files = Vec::new();
        repository_files(&root, &mut files);
        assert!(files.len() > 50, "the repository was found at {root:?}");
        let mut sources = std::collections::BTreeSet::new();
        for file in files {
            let Ok(text) = std::fs::read_to_string(&file) else {
                continue;
            };
            let code = file
                .extension()
                .is_some_and(|ext| ext == "rs" || ext == "py");
            for secret in assigned_keys(&text, code) {
                assert_refused_in_production(&secret, &file.display().to_string());
                let relative = file.strip_prefix(&root).unwrap_or(&file);
                sources.insert(relative.to_string_lossy().into_owned());
            }
        }
        for expected in ["k8s/secret.example.yaml", "compose.yaml"] {
            assert!(
                sources.contains(expected),
                "no key found in {expected}: is the scan broken? {sources:?}"
            );
        }
        // The scanner itself.
        assert_eq!(
            assigned_keys(
                "  JWT_SECRET: abc # c\n- name: JWT_SECRET\nJWT_SECRET=${X}",
                false
            ),
            ["abc"]
        );
        assert_eq!(
            assigned_keys(
                r#"env.set("JWT_SECRET", value); ("JWT_SECRET", "lit")"#,
                true
            ),
            ["lit"]
        );
        assert_eq!(
            assigned_keys("JWT_PREVIOUS_KEYS=k1:aaa,k2:bbb", false),
            ["aaa", "bbb"]
        );
    }

    #[test]
    fn tokens_need_a_bounded_lifetime_and_distinct_key_ids() {
        let dev = Env::from_pairs([("ENVIRONMENT", "development")]);
        for ttl in ["25h", "0s"] {
            let err = Config::from_env(&dev.clone().set("JWT_TTL", ttl))
                .unwrap_err()
                .to_string();
            assert!(err.contains("JWT_TTL"), "{err}");
        }
        assert_eq!(
            Config::from_env(&dev.clone().set("JWT_TTL", "24h"))
                .unwrap()
                .identity
                .tokens
                .ttl,
            MAX_JWT_TTL
        );
        let err = Config::from_env(&dev.clone().set("JWT_PREVIOUS_KEYS", "k1:other"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("JWT_PREVIOUS_KEYS") && err.contains("k1"),
            "{err}"
        );
        let err = Config::from_env(&dev.clone().set("JWT_PREVIOUS_KEYS", "no-colon"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("JWT_PREVIOUS_KEYS") && !err.contains("no-colon"),
            "{err}"
        );
        let config = Config::from_env(
            &dev.set("JWT_KEY_ID", "k2")
                .set("JWT_PREVIOUS_KEYS", "k1:one, k0:two"),
        )
        .unwrap();
        let kids: Vec<&str> = config
            .identity
            .tokens
            .previous
            .iter()
            .map(|(kid, _)| kid.as_str())
            .collect();
        assert_eq!(kids, ["k1", "k0"]);
    }

    #[test]
    fn compatible_policy_in_production_needs_an_explicit_allowance() {
        let env = production_env()
            .set("JWT_SECRET", strong_key())
            .set("ACCESS_POLICY", "compatible");
        let err = Config::from_env(&env).unwrap_err().to_string();
        assert!(
            err.contains("ACCESS_POLICY") && err.contains("ALLOW_COMPATIBLE_IN_PRODUCTION"),
            "{err}"
        );
        let config = Config::from_env(&env.set("ALLOW_COMPATIBLE_IN_PRODUCTION", "true")).unwrap();
        assert!(config.identity.compatible_in_production);
        assert!(
            config.identity.start_warnings()[0].contains("ALLOW_COMPATIBLE_IN_PRODUCTION"),
            "the allowance is logged at start"
        );
        let development = Config::from_env(&Env::from_pairs([
            ("ENVIRONMENT", "development"),
            ("ACCESS_POLICY", "compatible"),
        ]))
        .unwrap();
        assert!(development.identity.start_warnings().is_empty());
        assert_eq!(config.policy, Policy::Compatible);
        assert_eq!(
            config.identity.password_min_length, 8,
            "production keeps NIST's minimum even under the compatible policy"
        );
    }

    fn development(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut env = Env::from_pairs([("ENVIRONMENT", "development")]);
        for (name, value) in pairs {
            env = env.set(*name, *value);
        }
        Config::from_env(&env)
    }

    #[test]
    fn the_removed_trust_forwarded_for_is_refused_with_a_pointer_to_trusted_proxies() {
        for value in ["true", "1", "yes"] {
            let err = development(&[("TRUST_FORWARDED_FOR", value)])
                .expect_err(value)
                .to_string();
            assert!(err.contains("TRUST_FORWARDED_FOR"), "{err}");
            assert!(err.contains("TRUSTED_PROXIES"), "{err}");
        }
        let config = development(&[("TRUST_FORWARDED_FOR", "false")]).unwrap();
        assert!(config.trusted_proxies.is_empty(), "false changes nothing");
    }

    #[test]
    fn trusted_proxies_are_networks() {
        let config = development(&[("TRUSTED_PROXIES", "10.0.0.0/8, fd00::/8")]).unwrap();
        assert!(config.trusted_proxies.contains("10.1.2.3".parse().unwrap()));
        assert!(config.trusted_proxies.contains("fd00::1".parse().unwrap()));
        assert!(!config.trusted_proxies.contains("8.8.8.8".parse().unwrap()));
        let err = development(&[("TRUSTED_PROXIES", "10.0.0.0/33")])
            .expect_err("a bad prefix")
            .to_string();
        assert!(err.contains("TRUSTED_PROXIES"), "{err}");
        assert!(development(&[]).unwrap().trusted_proxies.is_empty());
    }

    #[test]
    fn public_metrics_follow_the_environment_unless_set() {
        // A key generated here, so that no secret of the repo is involved.
        let secret = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let production = Config::from_env(
            &Env::from_pairs([("ENVIRONMENT", "production")]).set("JWT_SECRET", &secret),
        )
        .unwrap();
        assert!(!production.public_metrics);
        assert!(production.api_docs);
        assert!(development(&[]).unwrap().public_metrics);
        assert!(
            !development(&[("PUBLIC_METRICS", "false")])
                .unwrap()
                .public_metrics
        );
        assert!(!development(&[("API_DOCS", "false")]).unwrap().api_docs);
        assert_eq!(
            development(&[]).unwrap().admin_addr,
            "0.0.0.0:8081".parse().unwrap()
        );
    }

    #[test]
    fn password_rules_follow_the_policy_and_production_refuses_less_than_eight() {
        let dev = Env::from_pairs([("ENVIRONMENT", "development")]);
        let length = |env: Env| Config::from_env(&env).map(|c| c.identity.password_min_length);
        assert_eq!(length(dev.clone()), Ok(8));
        assert_eq!(
            length(dev.clone().set("ACCESS_POLICY", "compatible")),
            Ok(6)
        );
        assert_eq!(length(dev.clone().set("PASSWORD_MIN_LENGTH", "12")), Ok(12));
        assert!(length(dev.clone().set("PASSWORD_MIN_LENGTH", "4")).is_err());
        let err = length(
            production_env()
                .set("JWT_SECRET", strong_key())
                .set("PASSWORD_MIN_LENGTH", "6"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("PASSWORD_MIN_LENGTH"), "{err}");

        let admin = |password: &str| {
            Config::from_env(
                &production_env()
                    .set("JWT_SECRET", strong_key())
                    .set("ADMIN_EMAIL", "admin@example.com")
                    .set("ADMIN_PASSWORD", password),
            )
        };
        for weak in ["short", "CHANGE-ME-admin-password"] {
            let err = admin(weak).unwrap_err().to_string();
            assert!(
                err.contains("ADMIN_PASSWORD") && !err.contains(weak),
                "{err}"
            );
        }
        assert!(admin("a long enough admin password").is_ok());
    }

    #[test]
    fn hashing_concurrency_derives_from_the_memory_budget() {
        let dev = Env::from_pairs([("ENVIRONMENT", "development")]);
        let permits =
            |env: Env| Config::from_env(&env).map(|c| c.identity.password_hash_concurrency);
        assert_eq!(permits(dev.clone()), Ok(6), "128 MiB / 19 MiB");
        assert_eq!(
            permits(dev.clone().set("PASSWORD_HASH_MEMORY_MIB", "10")),
            Ok(1)
        );
        assert_eq!(
            permits(dev.clone().set("PASSWORD_HASH_CONCURRENCY", "3")),
            Ok(3)
        );
        assert!(permits(dev.set("PASSWORD_HASH_CONCURRENCY", "0")).is_err());
    }

    #[test]
    fn read_timeouts_and_the_limiter_cap_must_be_positive() {
        let config = development(&[]).unwrap();
        assert_eq!(config.header_read_timeout, Duration::from_secs(65));
        assert_eq!(config.body_read_timeout, Duration::from_secs(30));
        assert_eq!(config.rate_limit_memory_clients, 100_000);
        for (name, zero) in [
            ("HEADER_READ_TIMEOUT", "0s"),
            ("BODY_READ_TIMEOUT", "0s"),
            ("RATE_LIMIT_MEMORY_CLIENTS", "0"),
        ] {
            let err = development(&[(name, zero)]).expect_err(name).to_string();
            assert!(err.contains(name), "{err}");
        }
    }
}
