//! Enforces the rules written in the protos ([`crate::rules`]), with the contract's Spanish
//! messages.
//!
//! `build.rs` generates a [`Validate`] implementation for every message whose fields carry rules;
//! each one calls the checks below field by field (no reflection per request). A service calls
//! `request.validate()` before anything else and answers the violations as `INVALID_ARGUMENT`
//! (the gateway's 422 list). One message per field: its first broken rule.

use std::str::FromStr;

use regex::Regex;
use rust_decimal::Decimal;

use crate::money::{DecimalError, decimal_field};
use crate::rules::{DecimalRules, IntegerRules, ItemRules, NOT_BLANK, TextRules};
use crate::types::Decimal as PbDecimal;

/// A message whose fields carry rules in the protos.
pub trait Validate {
    /// Every field that breaks its rules, with the message a client reads.
    fn validate(&self) -> Violations;
}

/// Broken rules: `(field, message)` in field order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Violations(Vec<(&'static str, String)>);

impl Violations {
    /// Whether every rule held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The broken rules, in field order.
    #[must_use]
    pub fn as_slice(&self) -> &[(&'static str, String)] {
        &self.0
    }

    fn add(&mut self, field: &'static str, message: String) {
        self.0.push((field, message));
    }

    /// A required field that is unset.
    pub fn missing(&mut self, field: &'static str) {
        self.add(field, format!("{field} es obligatorio"));
    }

    /// A text field: `None` when a field with presence is unset.
    pub fn text(
        &mut self,
        field: &'static str,
        value: Option<&str>,
        required: bool,
        rules: &TextRules,
        pattern: Option<&Regex>,
    ) {
        let Some(value) = value else {
            if required {
                self.missing(field);
            }
            return;
        };
        let chars = value.chars().count() as u64;
        let not_blank = rules.pattern.as_deref() == Some(NOT_BLANK);
        if (not_blank && value.trim().is_empty()) || rules.min_len.is_some_and(|min| chars < min) {
            match rules.min_len {
                Some(min) if min > 1 => {
                    self.add(
                        field,
                        format!("{field} debe tener al menos {min} caracteres"),
                    );
                }
                _ => self.add(field, format!("{field} no puede estar vacio")),
            }
        } else if let Some(max) = rules.max_len.filter(|&max| chars > max) {
            self.add(field, format!("{field} no puede superar {max} caracteres"));
        } else if !not_blank && pattern.is_some_and(|pattern| !pattern.is_match(value)) {
            self.add(field, format!("{field} debe ser valido"));
        }
    }

    /// An integer field: `None` when a field with presence is unset.
    pub fn integer(
        &mut self,
        field: &'static str,
        value: Option<i64>,
        required: bool,
        rules: &IntegerRules,
    ) {
        let Some(value) = value else {
            if required {
                self.missing(field);
            }
            return;
        };
        let bounds = Bounds {
            between: true,
            gt: rules.gt,
            gte: rules.gte,
            lt: rules.lt,
            lte: rules.lte,
        };
        if let Some(message) = bounds.broken(field, &value) {
            self.add(field, message);
        }
    }

    /// A repeated field of `len` items.
    pub fn items(&mut self, field: &'static str, len: usize, rules: &ItemRules) {
        let len = len as u64;
        match (rules.min_items, rules.max_items) {
            (Some(min), _) if len < min => self.add(
                field,
                if min == 1 {
                    format!("{field} no puede estar vacio")
                } else {
                    format!("{field} debe tener al menos {min} elementos")
                },
            ),
            (_, Some(max)) if len > max => {
                self.add(field, format!("{field} admite como maximo {max} elementos"));
            }
            _ => {}
        }
    }

    /// A money field.
    pub fn decimal(
        &mut self,
        field: &'static str,
        value: Option<&PbDecimal>,
        required: bool,
        rules: &DecimalRules,
    ) {
        let amount = match decimal_field(value) {
            Ok(amount) => amount,
            Err(DecimalError::Missing) => {
                if required {
                    self.missing(field);
                }
                return;
            }
            Err(DecimalError::Malformed(_)) => {
                self.add(field, format!("{field} debe ser un numero"));
                return;
            }
        };
        if let Some(scale) = rules
            .max_scale
            .filter(|&scale| amount.normalize().scale() > scale)
        {
            self.add(
                field,
                format!("{field} admite como maximo {scale} decimales"),
            );
            return;
        }
        // The bounds were written in the protos; one that does not parse is no bound (a test
        // parses every bound of every message).
        let bound = |text: &Option<std::borrow::Cow<'static, str>>| {
            text.as_deref().and_then(|t| Decimal::from_str(t).ok())
        };
        // Money names its broken bound alone ("no puede ser negativo", as the contract says).
        let bounds = Bounds {
            between: false,
            gt: bound(&rules.gt),
            gte: bound(&rules.gte),
            lt: None,
            lte: bound(&rules.lte),
        };
        if let Some(message) = bounds.broken(field, &amount) {
            self.add(field, message);
        }
    }
}

/// Numeric bounds and the message of the first one broken.
struct Bounds<T> {
    /// `gte` and `lte` together read "debe estar entre {gte} y {lte}" (the contract's ranges).
    between: bool,
    gt: Option<T>,
    gte: Option<T>,
    lt: Option<T>,
    lte: Option<T>,
}

impl<T: PartialOrd + std::fmt::Display + Default> Bounds<T> {
    fn broken(&self, field: &str, value: &T) -> Option<String> {
        let below = |bound: &Option<T>, strict: bool| {
            bound
                .as_ref()
                .is_some_and(|b| if strict { value <= b } else { value < b })
        };
        let above = |bound: &Option<T>, strict: bool| {
            bound
                .as_ref()
                .is_some_and(|b| if strict { value >= b } else { value > b })
        };
        if let (true, Some(low), Some(high)) = (self.between, &self.gte, &self.lte)
            && (below(&self.gte, false) || above(&self.lte, false))
        {
            return Some(format!("{field} debe estar entre {low} y {high}"));
        }
        if let Some(low) = self.gt.as_ref().filter(|_| below(&self.gt, true)) {
            return Some(format!("{field} debe ser mayor a {low}"));
        }
        if let Some(low) = self.gte.as_ref().filter(|_| below(&self.gte, false)) {
            return Some(if *low == T::default() {
                format!("{field} no puede ser negativo")
            } else {
                format!("{field} debe ser mayor o igual a {low}")
            });
        }
        if let Some(high) = self.lte.as_ref().filter(|_| above(&self.lte, false)) {
            return Some(format!("{field} no puede superar {high}"));
        }
        if let Some(high) = self.lt.as_ref().filter(|_| above(&self.lt, true)) {
            return Some(format!("{field} debe ser menor a {high}"));
        }
        None
    }
}

/// The compiled `pattern` of a text rule. Generated code keeps one per pattern in a `LazyLock`.
///
/// # Panics
/// When `pattern` is not a regular expression; a test compiles every pattern of every message,
/// so no request can reach this with a broken one.
#[must_use]
pub fn compile(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|err| panic!("proto pattern {pattern:?}: {err}"))
}

#[cfg(test)]
mod tests;
