//! Tokens and passwords.
//!
//! Access tokens are HS256 JWTs: `sub` (the user id, as a string), `iat`, `exp` and `role`.
//! Passwords are hashed with Argon2id (the `argon2` crate's defaults: 19 MiB, 2 passes), stored
//! as PHC strings that carry their own parameters.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

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

/// The claims of an access token.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    iat: u64,
    exp: u64,
    role: String,
}

/// Why a token was refused.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Expired, tampered, malformed or signed with another key.
    #[error("invalid token: {0}")]
    Invalid(String),
}

/// Issues and verifies access tokens.
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    ttl: Duration,
}

impl Tokens {
    /// Tokens signed with `secret`, valid for `ttl`.
    pub fn new(secret: &str, ttl: Duration) -> Result<Self, jsonwebtoken::errors::Error> {
        Ok(Self {
            encoding: EncodingKey::from_secret(secret.as_bytes())?,
            decoding: DecodingKey::from_secret(secret.as_bytes())?,
            ttl,
        })
    }

    /// A token for `user_id` with `role`, issued now.
    pub fn issue(&self, user_id: i64, role: Role) -> Result<String, jsonwebtoken::errors::Error> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let claims = Claims {
            sub: user_id.to_string(),
            iat: now,
            exp: now + self.ttl.as_secs(),
            role: role.as_str().to_owned(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
    }

    /// Who a token speaks for, if it is genuine and not expired.
    pub fn verify(&self, token: &str) -> Result<Identity, TokenError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|err| TokenError::Invalid(err.to_string()))?;
        let user_id = data
            .claims
            .sub
            .parse()
            .map_err(|_| TokenError::Invalid("sub is not a user id".into()))?;
        Ok(Identity {
            user_id,
            role: Role::parse(&data.claims.role),
        })
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
        let tokens = Tokens::new("s3cret", Duration::from_secs(60)).unwrap();
        let token = tokens.issue(42, Role::Admin).unwrap();
        assert_eq!(
            tokens.verify(&token).unwrap(),
            Identity {
                user_id: 42,
                role: Role::Admin
            }
        );

        let mut tampered = token.clone();
        tampered.replace_range(tampered.len() - 3.., "abc");
        assert!(tokens.verify(&tampered).is_err());
        let other = Tokens::new("another", Duration::from_secs(60)).unwrap();
        assert!(other.verify(&token).is_err());
        let expired = Tokens::new("s3cret", Duration::ZERO)
            .unwrap()
            .issue(1, Role::User)
            .unwrap();
        std::thread::sleep(Duration::from_millis(1100));
        assert!(tokens.verify(&expired).is_err());
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
