//! Unit tests of `config`.

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
    assert!(matches!(production(None), Err(ConfigError::Missing { name }) if name == "JWT_SECRET"));
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
            .unwrap_or_else(|| panic!("{origin}: {secret:?} starts a production gateway as {var}"))
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
    let permits = |env: Env| Config::from_env(&env).map(|c| c.identity.password_hash_concurrency);
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
