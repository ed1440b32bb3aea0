//! `--flag value` arguments, enough for a developer tool without pulling in a parser crate.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use flightmesh_runtime::config::Dur;

/// Parsed `--name value` pairs (a flag without value reads as `true`).
#[derive(Debug, Default, Clone)]
pub struct Args {
    values: HashMap<String, String>,
}

impl Args {
    /// Parses `args` (without the program and subcommand).
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Self, String> {
        let mut values = HashMap::new();
        let mut args = args.into_iter().peekable();
        while let Some(arg) = args.next() {
            let name = arg
                .strip_prefix("--")
                .ok_or_else(|| format!("unexpected argument {arg:?}"))?;
            let value = match args.peek() {
                Some(next) if !next.starts_with("--") => args.next().unwrap_or_default(),
                _ => "true".to_owned(),
            };
            values.insert(name.to_owned(), value);
        }
        Ok(Self { values })
    }

    /// A value or its default.
    pub fn get<T: FromStr>(&self, name: &str, default: T) -> Result<T, String> {
        match self.values.get(name) {
            None => Ok(default),
            Some(value) => value
                .parse()
                .map_err(|_| format!("--{name}: cannot read {value:?}")),
        }
    }

    /// A text value or its default.
    #[must_use]
    pub fn text(&self, name: &str, default: &str) -> String {
        self.values
            .get(name)
            .cloned()
            .unwrap_or_else(|| default.to_owned())
    }

    /// A duration (`30s`, `500ms`) or its default.
    pub fn duration(&self, name: &str, default: Duration) -> Result<Duration, String> {
        match self.values.get(name) {
            None => Ok(default),
            Some(value) => value
                .parse::<Dur>()
                .map(|d| d.0)
                .map_err(|err| format!("--{name}: {err}")),
        }
    }

    /// Whether a flag was given.
    #[must_use]
    pub fn has(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_flags_and_switches() {
        let args =
            Args::parse(["--concurrency", "16", "--hot", "--duration", "2s"].map(String::from))
                .unwrap();
        assert_eq!(args.get("concurrency", 1).unwrap(), 16);
        assert!(args.has("hot"));
        assert_eq!(
            args.duration("duration", Duration::ZERO).unwrap(),
            Duration::from_secs(2)
        );
        assert!(Args::parse(["oops".to_owned()]).is_err());
    }
}
