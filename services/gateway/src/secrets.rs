//! What production accepts as a signing key (`JWT_SECRET`, each key of `JWT_PREVIOUS_KEYS`).
//!
//! A key is refused when it
//! 1. contains `CHANGE-ME` in any case or spelling (`change_me`, `changeme`);
//! 2. is one of the example secrets that appear in this repository ([`KNOWN_EXAMPLE_SECRETS`]: a
//!    test scans the repository's files and fails when a new one is not refused);
//! 3. is shorter than [`MIN_LENGTH`] bytes or has fewer than [`MIN_DISTINCT`] distinct bytes;
//! 4. has an estimated entropy below [`MIN_ENTROPY_BITS`]: `length × min(H(bytes), H(steps))`,
//!    where `H` is the Shannon entropy of the observed distribution and the steps are the
//!    differences between neighbouring bytes (so runs like `abcdef…`, repeats like `aaaa…` and
//!    periodic strings like `0123…f0123…f` score low even when they use many characters).
//!    `openssl rand -hex 16` (32 hex digits, 128 real bits) scores 92 bits at worst over 20 000
//!    draws, `openssl rand -base64 32` about 145; the threshold leaves room for both.
//!
//! Errors never contain the value.

use std::collections::HashMap;

/// Every secret that appears as an example or development value in this repository. A secret on
/// this list is public: production refuses it whatever its strength.
pub const KNOWN_EXAMPLE_SECRETS: &[&str] = &[
    // services/gateway/src/config.rs: the development signing key.
    crate::config::DEVELOPMENT_SECRET,
    // compose.yaml: the development stack's key.
    "flightmesh-compose-development-secret-not-for-production",
    // k8s/secret.example.yaml.
    "CHANGE-ME-to-at-least-32-random-characters",
    // scripts/infra_test.py: chart inputs.
    "credentials-belong-in-secrets-values-not-config",
    "too-short",
];

/// Shortest accepted key, in bytes.
pub const MIN_LENGTH: usize = 32;
/// Fewest distinct bytes in an accepted key.
pub const MIN_DISTINCT: usize = 10;
/// Lowest accepted entropy estimate, in bits.
pub const MIN_ENTROPY_BITS: f64 = 80.0;

/// Whether `secret` contains `CHANGE-ME` in any case or spelling (`change_me`, `changeme`).
#[must_use]
pub fn is_placeholder(secret: &str) -> bool {
    let folded: String = secret
        .chars()
        .filter(|c| !matches!(c, '-' | '_' | ' ' | '.'))
        .flat_map(char::to_lowercase)
        .collect();
    folded.contains("changeme")
}

/// Why a key was refused (never the key itself).
#[must_use]
pub fn weakness(secret: &str) -> Option<&'static str> {
    if is_placeholder(secret) {
        return Some("contains CHANGE-ME: replace the example with a random secret");
    }
    // Contained, not only equal: `<example>-2` is as public as the example.
    let lower = secret.to_lowercase();
    if KNOWN_EXAMPLE_SECRETS
        .iter()
        .any(|known| lower.contains(&known.to_lowercase()))
    {
        return Some("is an example secret published in the repository");
    }
    if secret.len() < MIN_LENGTH {
        return Some("production needs a random secret of at least 32 characters");
    }
    let bytes = secret.as_bytes();
    let distinct = bytes.iter().collect::<std::collections::HashSet<_>>().len();
    if distinct < MIN_DISTINCT || entropy_bits(bytes) < MIN_ENTROPY_BITS {
        return Some(
            "has too little entropy (runs, repeats or too few distinct characters): generate one with `openssl rand -base64 48`",
        );
    }
    None
}

/// `length × min(H(bytes), H(steps between neighbours))`, in bits.
#[must_use]
pub fn entropy_bits(bytes: &[u8]) -> f64 {
    if bytes.len() < 2 {
        return 0.0;
    }
    let steps: Vec<u8> = bytes.windows(2).map(|w| w[1].wrapping_sub(w[0])).collect();
    #[allow(clippy::cast_precision_loss)] // lengths of a secret: far below 2^52
    let length = bytes.len() as f64;
    length * shannon(bytes).min(shannon(&steps))
}

/// Shannon entropy of the observed distribution, in bits per symbol.
fn shannon(symbols: &[u8]) -> f64 {
    let mut counts: HashMap<u8, usize> = HashMap::new();
    for symbol in symbols {
        *counts.entry(*symbol).or_default() += 1;
    }
    #[allow(clippy::cast_precision_loss)]
    let total = symbols.len() as f64;
    counts
        .values()
        .map(|&count| {
            #[allow(clippy::cast_precision_loss)]
            let p = count as f64 / total;
            -p * p.log2()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_examples_change_me_short_and_patterned_keys() {
        for weak in [
            "CHANGE-ME-to-at-least-32-random-characters",
            "please-change_me-now-0a9f8e7d6c5b4a3f2e1d0c9b",
            "x7Q9-ChangeMe-Lk2Vb8Nm4Zc6Xs1Dq3Wf5Gh7Jk9",
            crate::config::DEVELOPMENT_SECRET,
            "flightmesh-compose-development-secret-not-for-production",
            "Flightmesh-Compose-Development-Secret-Not-For-Production-2",
            "short",
            "0123456789abcdef0123456789abcdef",
            "abcdefghijklmnopqrstuvwxyz012345",
            "abcdXYZ!abcdXYZ!abcdXYZ!abcdXYZ!",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ] {
            assert!(weakness(weak).is_some(), "{weak} must be refused");
        }
    }

    #[test]
    fn accepts_random_keys() {
        for strong in [
            "p4Vx9QeL2mZr7TnB8yWc3KsJ6hGd1FaU", // 32 alphanumerics
            "3f9c1a7e5b2d8046c9e1f3a5b7d90c2e", // 32 hex digits
            "qU2b3Nq0F4l9c8Yk1T5m7Vx6Zr2Wp8Hs+J1d4G7e0A9=",
        ] {
            assert_eq!(weakness(strong), None, "{strong}");
        }
    }
}
