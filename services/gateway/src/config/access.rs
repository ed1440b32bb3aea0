//! Who may call what, the bootstrap admin, tokens, the user check and password hashing
//! (ADR 0010, ADR 0011): the gateway's access variables, declared where they are read.

use std::collections::HashSet;
use std::time::Duration;

use flightmesh_runtime::caller;
use flightmesh_runtime::config::{ConfigError, Environment, Reader, Secret, Var};

use crate::auth::{self, TokenConfig};
use crate::policy::Policy;
use crate::secrets;

/// The signing key used when nothing is configured, in development only.
pub const DEVELOPMENT_SECRET: &str = "flightmesh-development-secret-do-not-use-in-production";
/// The longest accepted `JWT_TTL`.
pub const MAX_JWT_TTL: Duration = Duration::from_secs(24 * 3600);
/// The longest accepted `USER_CHECK_INTERVAL`.
pub const MAX_USER_CHECK_INTERVAL: Duration = Duration::from_secs(300);
/// NIST 800-63B's minimum for memorized secrets, the least production accepts.
pub const PRODUCTION_MIN_PASSWORD_LENGTH: usize = 8;
/// The contract's minimum (the old clients).
pub const COMPATIBLE_MIN_PASSWORD_LENGTH: usize = 6;

const JWT_SECRET: Var = Var::optional("JWT_SECRET").doc(
    "HS256 signing key of access tokens; production refuses example, `CHANGE-ME`, short (< 32) and low-entropy keys",
)
.secret();
const ACCESS_POLICY: Var = caller::ACCESS_POLICY.doc(
    "`production` (bookings and AI need a user; catalog writes, dead letters and rebuild need admin) or `compatible` (all open, as the old clients expect)",
);
const ADMIN_PASSWORD: Var = Var::optional("ADMIN_PASSWORD").doc(
    "Password of the bootstrap admin, set on every start (the account is taken over if it exists)",
)
.secret();
const JWT_KEY_ID: Var = Var::new("JWT_KEY_ID", "k1")
    .doc("`kid` of the current signing key (`JWT_SECRET`); change it with the key when rotating");
const JWT_PREVIOUS_KEYS: Var = Var::optional("JWT_PREVIOUS_KEYS").doc(
    "Rotated-out keys still accepted for verification, `kid:secret,kid:secret` (same rules as `JWT_SECRET` in production)",
)
.secret();
const PASSWORD_MIN_LENGTH: Var = Var::optional("PASSWORD_MIN_LENGTH").doc(
    "Shortest password of a new account; unset: 8 (NIST 800-63B), or 6 with `ACCESS_POLICY=compatible` outside production; production refuses less than 8",
);
const PASSWORD_HASH_CONCURRENCY: Var = Var::optional("PASSWORD_HASH_CONCURRENCY").doc(
    "Most concurrent password hashes and checks; beyond it login and register answer 503 with `Retry-After`. Unset: `PASSWORD_HASH_MEMORY_MIB / 19`, at least 1",
);

/// Tokens, the user check and password hashing (ADR 0011).
#[derive(Debug, Clone)]
pub struct IdentityConfig {
    /// Signing and verification keys, issuer, audience, lifetime.
    pub tokens: TokenConfig,
    /// How long a user's state is cached.
    pub user_check_interval: Duration,
    /// Most users cached.
    pub user_check_cache_size: usize,
    /// Shortest password of a new account.
    pub password_min_length: usize,
    /// Most concurrent Argon2 hashes.
    pub password_hash_concurrency: usize,
    /// `ACCESS_POLICY=compatible` was allowed in production (logged at start).
    pub compatible_in_production: bool,
}

impl IdentityConfig {
    /// Deliberate weakenings, logged as warnings at every start.
    #[must_use]
    pub fn start_warnings(&self) -> Vec<&'static str> {
        let mut warnings = Vec::new();
        if self.compatible_in_production {
            warnings.push(
                "ACCESS_POLICY=compatible in production (ALLOW_COMPATIBLE_IN_PRODUCTION=true): bookings and AI are open to anonymous callers",
            );
        }
        warnings
    }
}

/// What [`read`] yields.
pub(super) struct Access {
    pub policy: Policy,
    pub admin: Option<(String, Secret<String>)>,
    pub identity: IdentityConfig,
}

/// Reads the access variables in the order of the docs, then checks them together.
///
/// Long because it is the list of the access variables, one declaration each, in the order of
/// the README table; the checks that involve several of them follow the list.
pub(super) fn read(r: &mut Reader<'_>, environment: Environment) -> Access {
    let production = environment == Environment::Production;
    let secret = r.opt::<Secret<String>>(JWT_SECRET);
    let ttl_var = Var::new("JWT_TTL", "60m").doc("Lifetime of an access token (at most 24h)");
    let ttl = r.duration(ttl_var);
    let policy: Policy = r.get(ACCESS_POLICY);
    let admin_email = r.opt::<String>(Var::optional("ADMIN_EMAIL").doc(
        "Creates this user as admin at start with `ADMIN_PASSWORD`, or takes the existing account over (its password is replaced, its earlier tokens revoked)",
    ));
    let admin_password = r.opt::<Secret<String>>(ADMIN_PASSWORD);
    let key_id: String = r.get(JWT_KEY_ID);
    let previous_text = r.raw(JWT_PREVIOUS_KEYS);
    let issuer: String = r.get(
        Var::new("JWT_ISSUER", "flightmesh-gateway")
            .doc("`iss` of issued tokens, required of presented ones"),
    );
    let audience: String = r.get(
        Var::new("JWT_AUDIENCE", "flightmesh")
            .doc("`aud` of issued tokens, required of presented ones"),
    );
    let user_check_interval_var = Var::new("USER_CHECK_INTERVAL", "30s").doc(
        "How long a user's state (active, role, token version) is cached per replica: the bound for a deactivation or role change to take effect (`0s`: every request; at most 5m)",
    );
    let user_check_interval = r.duration(user_check_interval_var);
    let user_check_cache_size: usize = r.positive(
        Var::new("USER_CHECK_CACHE_SIZE", "10000").doc("Most users kept in the user check cache"),
    );
    let allow_compatible: bool = r.get(caller::ALLOW_COMPATIBLE_IN_PRODUCTION.doc(
        "Lets `ACCESS_POLICY=compatible` start with `ENVIRONMENT=production` (refused otherwise; logged as a warning)",
    ));
    let min_length = r.opt::<usize>(PASSWORD_MIN_LENGTH);
    let memory_mib: u64 = r.get(Var::new("PASSWORD_HASH_MEMORY_MIB", "128").doc(
        "Memory budget for concurrent Argon2 work (19 MiB each); sizes `PASSWORD_HASH_CONCURRENCY` when that is unset",
    ));
    let concurrency = r.opt::<usize>(PASSWORD_HASH_CONCURRENCY);

    let secret = signing_key(r, production, secret);
    r.ensure(
        &JWT_KEY_ID,
        !key_id.is_empty() && key_id.len() <= 64 && !key_id.contains([':', ',', ' ']),
        "1 to 64 characters, no `:`, `,` or spaces",
    );
    let previous = previous_text
        .map(|text| previous_keys(r, production, &key_id, &text))
        .unwrap_or_default();
    r.ensure(
        &ttl_var,
        !ttl.is_zero() && ttl <= MAX_JWT_TTL,
        "must be between 1s and 24h",
    );
    let compatible_in_production = production && policy == Policy::Compatible;
    if compatible_in_production && !allow_compatible {
        r.fail(ConfigError::invalid(
            &ACCESS_POLICY,
            "compatible",
            "ENVIRONMENT=production refuses the compatible policy unless ALLOW_COMPATIBLE_IN_PRODUCTION=true",
        ));
    }
    r.ensure(
        &user_check_interval_var,
        user_check_interval <= MAX_USER_CHECK_INTERVAL,
        "at most 5m",
    );
    let password_min_length = match min_length {
        Some(length)
            if !(COMPATIBLE_MIN_PASSWORD_LENGTH..=1024).contains(&length)
                || (production && length < PRODUCTION_MIN_PASSWORD_LENGTH) =>
        {
            r.ensure(
                &PASSWORD_MIN_LENGTH,
                false,
                "must be between 6 and 1024, and at least 8 in production (NIST 800-63B)",
            );
            PRODUCTION_MIN_PASSWORD_LENGTH
        }
        Some(length) => length,
        None if policy == Policy::Compatible && !production => COMPATIBLE_MIN_PASSWORD_LENGTH,
        None => PRODUCTION_MIN_PASSWORD_LENGTH,
    };
    r.ensure(
        &PASSWORD_HASH_CONCURRENCY,
        concurrency != Some(0),
        "must be positive",
    );
    let password_hash_concurrency = concurrency.unwrap_or_else(|| {
        usize::try_from((memory_mib * 1024 * 1024 / auth::ARGON2_MEMORY_BYTES).max(1)).unwrap_or(1)
    });
    let admin = admin(
        r,
        production,
        password_min_length,
        admin_email,
        admin_password,
    );
    Access {
        policy,
        admin,
        identity: IdentityConfig {
            tokens: TokenConfig {
                key_id,
                secret,
                previous,
                issuer,
                audience,
                ttl,
            },
            user_check_interval,
            user_check_cache_size,
            password_min_length,
            password_hash_concurrency,
            compatible_in_production,
        },
    }
}

/// `JWT_SECRET`: required and strong in production, the development key elsewhere.
fn signing_key(
    r: &mut Reader<'_>,
    production: bool,
    secret: Option<Secret<String>>,
) -> Secret<String> {
    match secret {
        Some(secret) => {
            if production {
                check_key(r, &JWT_SECRET, None, secret.expose());
            }
            secret
        }
        None => {
            if production {
                r.fail(ConfigError::Missing {
                    name: JWT_SECRET.name.to_owned(),
                });
            }
            Secret::new(DEVELOPMENT_SECRET.to_owned())
        }
    }
}

/// The bootstrap admin: both variables or neither, and a real password in production.
fn admin(
    r: &mut Reader<'_>,
    production: bool,
    password_min_length: usize,
    email: Option<String>,
    password: Option<Secret<String>>,
) -> Option<(String, Secret<String>)> {
    match (email, password) {
        (Some(email), Some(password)) => {
            if production
                && (password.expose().chars().count() < password_min_length
                    || secrets::is_placeholder(password.expose()))
            {
                r.fail(ConfigError::invalid(
                    &ADMIN_PASSWORD,
                    "",
                    format!(
                        "production needs an admin password of at least {password_min_length} characters that is not an example"
                    ),
                ));
            }
            Some((email, password))
        }
        (Some(_), None) => {
            r.fail(ConfigError::Missing {
                name: ADMIN_PASSWORD.name.to_owned(),
            });
            None
        }
        _ => None,
    }
}

/// A signing key under the production rules ([`secrets::weakness`]); the error names `var` (and
/// the key's id for a previous key), never the value.
fn check_key(r: &mut Reader<'_>, var: &Var, kid: Option<&str>, secret: &str) {
    if let Some(why) = secrets::weakness(secret) {
        r.fail(ConfigError::invalid(
            var,
            "",
            match kid {
                Some(kid) => format!("the key of kid {kid} {why}"),
                None => why.to_owned(),
            },
        ));
    }
}

/// `JWT_PREVIOUS_KEYS`: `kid:secret,kid:secret`, each kid once (and not the current one).
fn previous_keys(
    r: &mut Reader<'_>,
    production: bool,
    key_id: &str,
    text: &str,
) -> Vec<(String, Secret<String>)> {
    let mut keys = Vec::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        match entry.split_once(':') {
            Some((kid, secret)) if !kid.trim().is_empty() && !secret.is_empty() => {
                keys.push((kid.trim().to_owned(), Secret::new(secret.to_owned())));
            }
            _ => {
                r.fail(ConfigError::invalid(
                    &JWT_PREVIOUS_KEYS,
                    "",
                    "expected kid:secret entries separated by commas",
                ));
                return Vec::new();
            }
        }
    }
    let mut kids = HashSet::from([key_id]);
    for (kid, secret) in &keys {
        if !kids.insert(kid) {
            r.fail(ConfigError::invalid(
                &JWT_PREVIOUS_KEYS,
                "",
                format!("kid {kid} appears twice (or is JWT_KEY_ID)"),
            ));
        } else if production {
            check_key(r, &JWT_PREVIOUS_KEYS, Some(kid), secret.expose());
        }
    }
    keys
}
