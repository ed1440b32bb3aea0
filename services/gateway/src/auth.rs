//! Tokens and passwords.
//!
//! Access tokens are HS256 JWTs (ADR 0011). Header: `alg: HS256`, `kid` (the signing key's id).
//! Claims: the contract's `sub` (the user id, as a string), `iat`, `exp` and `role`, plus `iss`,
//! `aud` (checked) and `ver` (the user's token version: bumping it revokes every token issued
//! before). The gateway signs with the current key and verifies with the current and previous
//! keys, chosen by `kid`, so a key can be rotated without logging everyone out.
//!
//! Passwords are hashed with Argon2id (the `argon2` crate's defaults, OWASP's first choice:
//! m = 19 MiB, t = 2 passes, p = 1 lane), stored as PHC strings that carry their own parameters.
//! Every hash or verification holds a permit of [`Passwords`]; with none free the caller is told
//! to come back later instead of growing memory.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use flightmesh_runtime::config::Secret;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

/// Memory one Argon2 hash or verification takes with the parameters in use (19 MiB).
pub const ARGON2_MEMORY_BYTES: u64 = argon2::Params::DEFAULT_M_COST as u64 * 1024;

/// A user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Admin,
}

impl Role {
    /// `user` or `admin`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Admin => "admin",
        }
    }

    /// From the stored text (anything but `admin` is a plain user).
    #[must_use]
    pub fn parse(text: &str) -> Self {
        if text == "admin" {
            Self::Admin
        } else {
            Self::User
        }
    }
}

/// Who is calling, as a verified token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user_id: i64,
    pub role: Role,
}

/// A token that verified: who it speaks for, as it was issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub user_id: i64,
    /// The role when the token was issued (the user check replaces it with the current one).
    pub role: Role,
    /// The user's token version when the token was issued.
    pub version: i64,
}

/// The claims of an access token.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    iat: u64,
    exp: u64,
    role: String,
    iss: String,
    aud: String,
    ver: i64,
}

/// Why a token was refused.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Expired, tampered, malformed, signed with an unknown key, or for another issuer or audience.
    #[error("invalid token: {0}")]
    Invalid(String),
}

/// How tokens are signed and checked (from the configuration).
#[derive(Debug, Clone)]
pub struct TokenConfig {
    /// `kid` of the current signing key.
    pub key_id: String,
    /// The current signing key.
    pub secret: Secret<String>,
    /// Keys still accepted for verification, by `kid` (rotated-out keys).
    pub previous: Vec<(String, Secret<String>)>,
    /// `iss` of issued tokens, required of verified ones.
    pub issuer: String,
    /// `aud` of issued tokens, required of verified ones.
    pub audience: String,
    /// Lifetime of a token.
    pub ttl: Duration,
}

/// Issues and verifies access tokens.
pub struct Tokens {
    key_id: String,
    encoding: EncodingKey,
    decoding: HashMap<String, DecodingKey>,
    validation: Validation,
    issuer: String,
    audience: String,
    ttl: Duration,
}

impl Tokens {
    /// Tokens as `config` says.
    pub fn new(config: &TokenConfig) -> Result<Self, jsonwebtoken::errors::Error> {
        let mut decoding = HashMap::new();
        for (kid, secret) in &config.previous {
            decoding.insert(
                kid.clone(),
                DecodingKey::from_secret(secret.expose().as_bytes())?,
            );
        }
        decoding.insert(
            config.key_id.clone(),
            DecodingKey::from_secret(config.secret.expose().as_bytes())?,
        );
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        validation.set_issuer(&[&config.issuer]);
        validation.set_audience(&[&config.audience]);
        Ok(Self {
            key_id: config.key_id.clone(),
            encoding: EncodingKey::from_secret(config.secret.expose().as_bytes())?,
            decoding,
            validation,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            ttl: config.ttl,
        })
    }

    /// A token for `user_id` with `role` and token version `version`, issued now.
    pub fn issue(
        &self,
        user_id: i64,
        role: Role,
        version: i64,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let claims = Claims {
            sub: user_id.to_string(),
            iat: now,
            exp: now + self.ttl.as_secs(),
            role: role.as_str().to_owned(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            ver: version,
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.key_id.clone());
        jsonwebtoken::encode(&header, &claims, &self.encoding)
    }

    /// Who a token speaks for, if it is genuine (HS256, a known `kid`), not expired, and ours
    /// (`iss`, `aud`).
    pub fn verify(&self, token: &str) -> Result<Verified, TokenError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|err| TokenError::Invalid(err.to_string()))?;
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.decoding.get(kid))
            .ok_or_else(|| TokenError::Invalid("unknown or missing kid".into()))?;
        let data = jsonwebtoken::decode::<Claims>(token, key, &self.validation)
            .map_err(|err| TokenError::Invalid(err.to_string()))?;
        let user_id = data
            .claims
            .sub
            .parse()
            .map_err(|_| TokenError::Invalid("sub is not a user id".into()))?;
        Ok(Verified {
            user_id,
            role: Role::parse(&data.claims.role),
            version: data.claims.ver,
        })
    }
}

/// Why a password could not be hashed or checked.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Every permit is taken: answer 503 with `Retry-After`.
    #[error("password hashing is at capacity")]
    Busy,
    /// The hasher failed (a bug or a panic in the blocking task).
    #[error("password hashing failed: {0}")]
    Failed(String),
}

/// Argon2 work, at most `permits` at a time (each takes [`ARGON2_MEMORY_BYTES`]).
#[derive(Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
}

impl Passwords {
    /// At most `concurrency` (≥ 1) hashes at once.
    #[must_use]
    pub fn new(concurrency: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
        }
    }

    /// Runs `work` on the blocking pool holding a permit, or answers `Busy` at once. The permit
    /// lives as long as the work, even when the caller gave up waiting: the memory is in use.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let permit = self
            .permits
            .clone()
            .try_acquire_owned()
            .map_err(|_| HashError::Busy)?;
        tokio::task::spawn_blocking(move || {
            let out = work();
            drop(permit);
            out
        })
        .await
        .map_err(|err| HashError::Failed(err.to_string()))
    }

    /// The PHC string of `password`.
    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        self.run(move || hash_password(&password))
            .await?
            .map_err(|err| HashError::Failed(err.to_string()))
    }

    /// Whether `password` matches `stored`.
    pub async fn verify(&self, password: String, stored: String) -> Result<bool, HashError> {
        self.run(move || verify_password(&password, &stored)).await
    }
}

/// An Argon2id PHC string for `password`.
pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    Ok(Argon2::default()
        .hash_password(password.as_bytes())?
        .to_string())
}

/// Whether `password` matches the stored PHC string.
#[must_use]
pub fn verify_password(password: &str, stored: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), stored)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_refuse_tampering() {
        let tokens = Tokens::new(&config("k1", "s3cret")).unwrap();
        let token = tokens.issue(42, Role::Admin, 3).unwrap();
        assert_eq!(
            tokens.verify(&token).unwrap(),
            Verified {
                user_id: 42,
                role: Role::Admin,
                version: 3
            }
        );
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(
            (header.alg, header.kid.as_deref()),
            (Algorithm::HS256, Some("k1"))
        );

        let mut tampered = token.clone();
        tampered.replace_range(tampered.len() - 3.., "abc");
        assert!(tokens.verify(&tampered).is_err());
        let other = Tokens::new(&config("k1", "another")).unwrap();
        assert!(other.verify(&token).is_err());
        let expired = Tokens::new(&TokenConfig {
            ttl: Duration::ZERO,
            ..config("k1", "s3cret")
        })
        .unwrap()
        .issue(1, Role::User, 0)
        .unwrap();
        std::thread::sleep(Duration::from_millis(1100));
        assert!(tokens.verify(&expired).is_err());
    }

    fn config(kid: &str, secret: &str) -> TokenConfig {
        TokenConfig {
            key_id: kid.into(),
            secret: Secret::new(secret.into()),
            previous: Vec::new(),
            issuer: "flightmesh-gateway".into(),
            audience: "flightmesh".into(),
            ttl: Duration::from_secs(60),
        }
    }

    #[test]
    fn rotation_verifies_previous_keys_by_kid_and_refuses_other_issuers_and_audiences() {
        let old = Tokens::new(&config("k1", "old-key")).unwrap();
        let old_token = old.issue(7, Role::User, 0).unwrap();
        let rotated = Tokens::new(&TokenConfig {
            previous: vec![("k1".into(), Secret::new("old-key".into()))],
            ..config("k2", "new-key")
        })
        .unwrap();
        assert_eq!(rotated.verify(&old_token).unwrap().user_id, 7);
        let new_token = rotated.issue(8, Role::User, 0).unwrap();
        assert_eq!(rotated.verify(&new_token).unwrap().user_id, 8);
        assert!(
            old.verify(&new_token).is_err(),
            "k2 is unknown to the old gateway"
        );
        let forgotten = Tokens::new(&config("k2", "new-key")).unwrap();
        assert!(forgotten.verify(&old_token).is_err());

        for other in [
            TokenConfig {
                issuer: "someone-else".into(),
                ..config("k1", "old-key")
            },
            TokenConfig {
                audience: "another-api".into(),
                ..config("k1", "old-key")
            },
        ] {
            let token = Tokens::new(&other)
                .unwrap()
                .issue(7, Role::User, 0)
                .unwrap();
            assert!(old.verify(&token).is_err());
        }
    }

    #[test]
    fn alg_none_and_unsigned_tokens_are_refused() {
        use base64::Engine as _;
        let encode = |text: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text);
        let tokens = Tokens::new(&config("k1", "s3cret")).unwrap();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let claims = format!(
            r#"{{"sub":"1","iat":{now},"exp":{},"role":"admin","iss":"flightmesh-gateway","aud":"flightmesh","ver":0}}"#,
            now + 600
        );
        for header in [
            r#"{"alg":"none","typ":"JWT","kid":"k1"}"#,
            r#"{"alg":"HS512","typ":"JWT","kid":"k1"}"#,
        ] {
            let token = format!("{}.{}.", encode(header), encode(&claims));
            assert!(tokens.verify(&token).is_err(), "{header}");
        }
    }

    #[tokio::test]
    async fn a_full_hasher_answers_busy_at_once() {
        let passwords = Passwords::new(1);
        let slow = passwords.clone();
        let first = tokio::spawn(async move { slow.hash("secreto1".into()).await });
        // Wait until the first hash holds the only permit.
        while passwords.permits.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        assert!(matches!(
            passwords.verify("x".into(), "y".into()).await,
            Err(HashError::Busy)
        ));
        let hash = first.await.unwrap().unwrap();
        assert!(passwords.verify("secreto1".into(), hash).await.unwrap());
    }

    #[test]
    fn passwords_hash_and_verify() {
        let hash = hash_password("secreto1").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("secreto1", &hash));
        assert!(!verify_password("secreto2", &hash));
        assert!(!verify_password("secreto1", "not a hash"));
    }
}
