//! Typed configuration from environment variables (12-factor), validated at start.
//!
//! Each variable is declared once, as a [`Var`] (name, default, one line of docs), and read in
//! one place, a config's `read(&mut Reader)`. The [`Reader`] yields the typed values, every
//! error at once, and the list of variables in the order they were read: that list is the
//! config's docs ([`declared`], [`markdown_table`]), so the README's configuration tables cannot
//! drift from the code. Every error names the variable.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

mod reader;

pub use reader::{Reader, declared, read};

/// `from_env` (every invalid variable reported at once) and `vars` (its docs) for a config type
/// whose `read(&mut Reader) -> Self` declares and reads its variables.
#[macro_export]
macro_rules! env_config {
    ($config:ty) => {
        impl $config {
            /// Reads and validates the configuration, reporting every invalid variable at once.
            pub fn from_env(
                env: &$crate::config::Env,
            ) -> Result<Self, $crate::config::ConfigError> {
                $crate::config::read(env, Self::read)
            }

            /// Every variable it reads, in the order of its docs.
            #[must_use]
            pub fn vars() -> Vec<$crate::config::Var> {
                $crate::config::declared(Self::read)
            }
        }
    };
}

/// A configuration value that is one of a few words: the enum, and `FromStr` that takes exactly
/// those words and otherwise names them (`expected a or b`).
///
/// ```
/// flightmesh_runtime::word_enum! {
///     /// `QUEUE_TYPE`.
///     pub enum QueueType {
///         /// One node's queue.
///         Classic = "classic",
///         /// Replicated.
///         Quorum = "quorum",
///     }
/// }
/// assert_eq!("quorum".parse(), Ok(QueueType::Quorum));
/// assert_eq!("x".parse::<QueueType>(), Err("expected classic or quorum"));
/// ```
#[macro_export]
macro_rules! word_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $($(#[$variant_meta:meta])* $variant:ident = $word:literal),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        $vis enum $name {
            $($(#[$variant_meta])* $variant),+
        }

        impl ::std::str::FromStr for $name {
            type Err = &'static str;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($word => Ok(Self::$variant),)+
                    _ => Err($crate::word_enum!(@expected $($word),+)),
                }
            }
        }
    };
    (@expected $first:literal, $second:literal) => {
        concat!("expected ", $first, " or ", $second)
    };
    (@expected $first:literal, $second:literal, $third:literal) => {
        concat!("expected ", $first, ", ", $second, " or ", $third)
    };
}

/// One environment variable a service reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Var {
    /// The variable's name, e.g. `DATABASE_URL`.
    pub name: &'static str,
    /// Used when the variable is unset; `None` makes the variable required.
    pub default: Option<&'static str>,
    /// One line for the docs.
    pub doc: &'static str,
    /// Never printed: errors and docs show `<redacted>` instead of the value.
    pub secret: bool,
}

impl Var {
    /// The variable `name`, `default` when unset. Its docs line follows: `.doc(…)`.
    #[must_use]
    pub const fn new(name: &'static str, default: &'static str) -> Self {
        Self {
            name,
            default: Some(default),
            doc: "",
            secret: false,
        }
    }

    /// A variable with no default: unset means absent (see [`Env::get_opt`]) or an error.
    #[must_use]
    pub const fn optional(name: &'static str) -> Self {
        Self {
            name,
            default: None,
            doc: "",
            secret: false,
        }
    }

    /// The variable's docs line (every variable has one: the README's tables are made of them).
    #[must_use]
    pub const fn doc(mut self, doc: &'static str) -> Self {
        self.doc = doc;
        self
    }

    /// Marks the variable's value as secret.
    #[must_use]
    pub const fn secret(mut self) -> Self {
        self.secret = true;
        self
    }
}

/// A variable several services read, each with its own docs line: its name and default are
/// declared once, so the readers cannot drift apart.
#[derive(Debug, Clone, Copy)]
pub struct Shared {
    name: &'static str,
    default: &'static str,
}

impl Shared {
    /// The variable `name`, `default` when unset.
    #[must_use]
    pub const fn new(name: &'static str, default: &'static str) -> Self {
        Self { name, default }
    }

    /// The variable as one service reads it; `doc` says what that service does with it.
    #[must_use]
    pub const fn doc(self, doc: &'static str) -> Var {
        Var::new(self.name, self.default).doc(doc)
    }
}

/// A configuration value that was missing or unreadable; the message names the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// More than one variable is wrong: all of them, in the order they were read.
    #[error("{} configuration errors: {}", .0.len(), list(.0))]
    Several(Vec<ConfigError>),
    /// A required variable is unset.
    #[error("environment variable {name} is required but not set")]
    Missing {
        /// The variable.
        name: String,
    },
    /// A variable is set to something that cannot be used.
    #[error("environment variable {name}={value} is invalid: {reason}")]
    Invalid {
        /// The variable.
        name: String,
        /// Its value, or `<redacted>` for secrets.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl ConfigError {
    /// An invalid value of `var`, redacted if the variable is secret.
    pub fn invalid(var: &Var, value: &str, reason: impl fmt::Display) -> Self {
        Self::Invalid {
            name: var.name.to_owned(),
            value: if var.secret {
                "<redacted>".to_owned()
            } else {
                value.to_owned()
            },
            reason: reason.to_string(),
        }
    }
}

fn list(errors: &[ConfigError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Where values come from: the process environment or a fixed map (tests), with explicit
/// overrides, an optional per-service prefix and replaced defaults layered on top.
///
/// Lookup order for a variable `NAME`, each layer trying `{prefix}NAME` before `NAME`: overrides
/// set with [`Env::set`] → the source → defaults replaced with [`Env::with_default`] → the
/// variable's own default.
#[derive(Debug, Clone, Default)]
pub struct Env {
    /// `None` reads the process environment.
    source: Option<HashMap<String, String>>,
    /// Values that win over the source (the dev stack wires upstream URLs this way).
    overrides: HashMap<String, String>,
    /// Tried before the plain name, e.g. `FLIGHTS_` makes `FLIGHTS_GRPC_ADDR` win over `GRPC_ADDR`.
    prefix: Option<String>,
    /// Replaces a variable's built-in default (the dev stack binds to 127.0.0.1, for example).
    defaults: HashMap<String, String>,
}

impl Env {
    /// Reads the process environment.
    #[must_use]
    pub fn process() -> Self {
        Self::default()
    }

    /// Reads only the given pairs (nothing from the process environment).
    #[must_use]
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            source: Some(
                pairs
                    .into_iter()
                    .map(|(k, v)| (k.into(), v.into()))
                    .collect(),
            ),
            ..Self::default()
        }
    }

    /// Looks up `{prefix}{NAME}` before `NAME`.
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// Uses `value` when `name` is unset, instead of the variable's own default.
    #[must_use]
    pub fn with_default(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.defaults.insert(name.into(), value.into());
        self
    }

    /// Forces `name` to `value`, whatever the source says (a prefixed name targets only the
    /// service reading with that prefix).
    #[must_use]
    pub fn set(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.overrides.insert(name.into(), value.into());
        self
    }

    fn lookup(&self, name: &str) -> Option<String> {
        match &self.source {
            Some(map) => map.get(name).cloned(),
            None => std::env::var(name).ok(),
        }
        .filter(|value| !value.is_empty())
    }

    /// The raw value of `var`, following the lookup order above.
    #[must_use]
    pub fn raw(&self, var: &Var) -> Option<String> {
        let prefixed = self
            .prefix
            .as_ref()
            .map(|prefix| format!("{prefix}{}", var.name));
        let layer = |get: &dyn Fn(&str) -> Option<String>| {
            prefixed.as_deref().and_then(get).or_else(|| get(var.name))
        };
        layer(&|name| self.overrides.get(name).cloned())
            .or_else(|| layer(&|name| self.lookup(name)))
            .or_else(|| layer(&|name| self.defaults.get(name).cloned()))
            .or_else(|| var.default.map(str::to_owned))
    }

    /// The value of a required variable (one with a default is never missing).
    pub fn get<T>(&self, var: &Var) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        self.get_opt(var)?.ok_or_else(|| ConfigError::Missing {
            name: var.name.to_owned(),
        })
    }

    /// The value of a variable, or `None` when it is unset and has no default.
    pub fn get_opt<T>(&self, var: &Var) -> Result<Option<T>, ConfigError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        self.raw(var)
            .map(|value| {
                value
                    .parse()
                    .map_err(|err| ConfigError::invalid(var, &value, err))
            })
            .transpose()
    }
}

crate::word_enum! {
    /// `ENVIRONMENT`: production refuses what is only safe on a laptop (each service says what).
    pub enum Environment {
        /// Deployed: weak keys, example passwords and open policies are refused.
        Production = "production",
        /// A laptop or a test.
        Development = "development",
    }
}

/// `ENVIRONMENT` (each service that reads it says what production refuses).
pub const ENVIRONMENT: Shared = Shared::new("ENVIRONMENT", "production");

/// A value that must never be printed (passwords, API keys, URLs with credentials).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps a secret value.
    pub const fn new(value: T) -> Self {
        Self(value)
    }

    /// The value itself, for the one place that needs it.
    pub const fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl<T: FromStr> FromStr for Secret<T> {
    type Err = T::Err;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(Self)
    }
}

/// A duration written as `250ms`, `5s`, `2m` or `1h` (a bare number means seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl FromStr for Dur {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (number, unit) = s.split_at(split);
        let number: u64 = number
            .parse()
            .map_err(|_| format!("expected a duration like 500ms, 5s or 2m, got {s:?}"))?;
        let duration = match unit {
            "ms" => Duration::from_millis(number),
            "" | "s" => Duration::from_secs(number),
            "m" => Duration::from_secs(number * 60),
            "h" => Duration::from_secs(number * 3600),
            _ => {
                return Err(format!(
                    "unknown duration unit {unit:?} (use ms, s, m or h)"
                ));
            }
        };
        Ok(Self(duration))
    }
}

/// The variables as a Markdown table (Variable, Default, Description), for the README.
///
/// # Panics
/// If a variable has no docs line.
#[must_use]
pub fn markdown_table(vars: &[Var]) -> String {
    let mut out = String::from("| Variable | Default | Description |\n|---|---|---|\n");
    for var in vars {
        // A declaration without `.doc(…)` is a bug the README test shows at once.
        assert!(!var.doc.is_empty(), "{} has no docs line", var.name);
        let default = match var.default {
            Some("") | None => "—".to_owned(),
            Some(value) => format!("`{value}`"),
        };
        let doc = if var.secret {
            format!("{} (secret)", var.doc)
        } else {
            var.doc.to_owned()
        };
        out.push_str(&format!("| `{}` | {default} | {doc} |\n", var.name));
    }
    out
}

#[cfg(test)]
mod tests;
