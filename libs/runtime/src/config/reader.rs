//! [`Reader`]: one function per config reads its variables, documents them and reports every
//! error at once.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::{ConfigError, Dur, Env, Var};

/// Reads a configuration: each call both reads a variable and records it, so that one function
/// per config (`read(&mut Reader) -> Self`) is its parsing, its docs ([`declared`]) and, with
/// [`read`], its validation with every error reported at once.
///
/// A value that cannot be used is recorded as an error and replaced by the variable's default, so
/// that reading goes on and finds the other errors; [`Reader::finish`] then refuses the whole.
#[derive(Debug)]
pub struct Reader<'e> {
    env: &'e Env,
    vars: Vec<Var>,
    errors: Vec<ConfigError>,
}

impl<'e> Reader<'e> {
    /// A reader of `env`.
    #[must_use]
    pub fn new(env: &'e Env) -> Self {
        Self {
            env,
            vars: Vec::new(),
            errors: Vec::new(),
        }
    }

    fn record(&mut self, var: Var) {
        if !self.vars.iter().any(|read| read.name == var.name) {
            self.vars.push(var);
        }
    }

    /// The raw text of `var` (see [`Env::raw`]).
    pub fn raw(&mut self, var: Var) -> Option<String> {
        self.record(var);
        self.env.raw(&var)
    }

    /// The value of `var`, a variable with a default.
    ///
    /// # Panics
    /// When `var` has no default or its default does not parse as `T`: a mistake in the
    /// declaration, which every config's test of its defaults meets first.
    pub fn get<T>(&mut self, var: Var) -> T
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        match self.opt(var) {
            Some(value) => value,
            None => {
                if var.default.is_none() {
                    self.errors.push(ConfigError::Missing {
                        name: var.name.to_owned(),
                    });
                }
                var.default
                    .and_then(|default| default.parse().ok())
                    .unwrap_or_else(|| {
                        panic!("{} is declared with no default of its type", var.name)
                    })
            }
        }
    }

    /// The value of `var`, or `None` when it is unset and has no default (or is invalid: the
    /// error is recorded).
    pub fn opt<T>(&mut self, var: Var) -> Option<T>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        let value = self.raw(var)?;
        value
            .parse()
            .map_err(|err| self.errors.push(ConfigError::invalid(&var, &value, err)))
            .ok()
    }

    /// A duration (see [`Dur`]).
    pub fn duration(&mut self, var: Var) -> Duration {
        self.get::<Dur>(var).0
    }

    /// A number or duration that must not be zero.
    pub fn positive<T>(&mut self, var: Var) -> T
    where
        T: FromStr + Default + PartialEq,
        T::Err: fmt::Display,
    {
        let value = self.get::<T>(var);
        self.ensure(&var, value != T::default(), "must be positive");
        value
    }

    /// A number within `range` (inclusive).
    pub fn within<T>(&mut self, var: Var, range: std::ops::RangeInclusive<T>) -> T
    where
        T: FromStr + PartialOrd + fmt::Display,
        T::Err: fmt::Display,
    {
        let value = self.get::<T>(var);
        self.ensure(
            &var,
            range.contains(&value),
            format_args!("must be {}..={}", range.start(), range.end()),
        );
        value
    }

    /// A positive duration.
    pub fn positive_duration(&mut self, var: Var) -> Duration {
        let value = self.duration(var);
        self.ensure(&var, !value.is_zero(), "must be positive");
        value
    }

    /// Records an error about `var` (naming its value) unless `ok`.
    pub fn ensure(&mut self, var: &Var, ok: bool, reason: impl fmt::Display) {
        if !ok {
            let value = self.env.raw(var).unwrap_or_default();
            self.errors.push(ConfigError::invalid(var, &value, reason));
        }
    }

    /// Records an error found by a check across variables.
    pub fn fail(&mut self, error: ConfigError) {
        self.errors.push(error);
    }

    /// `value` when nothing was wrong; otherwise the error, or all of them.
    pub fn finish<T>(mut self, value: T) -> Result<T, ConfigError> {
        match self.errors.len() {
            0 => Ok(value),
            1 => Err(self.errors.remove(0)),
            _ => Err(ConfigError::Several(self.errors)),
        }
    }
}

/// Reads a configuration from `env` with its `read` function, reporting every error at once.
pub fn read<T>(env: &Env, read: impl FnOnce(&mut Reader<'_>) -> T) -> Result<T, ConfigError> {
    let mut reader = Reader::new(env);
    let value = read(&mut reader);
    reader.finish(value)
}

/// The variables a config's `read` function reads, in order: its docs.
#[must_use]
pub fn declared<T>(read: impl FnOnce(&mut Reader<'_>) -> T) -> Vec<Var> {
    let env = Env::from_pairs::<&str, &str>([]);
    let mut reader = Reader::new(&env);
    // With nothing set, required variables are missing: only the list matters here.
    let _ = read(&mut reader);
    reader.vars
}
