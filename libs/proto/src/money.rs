//! Exact money across the wire: the proto `flightmesh.type.v1.Decimal` carries canonical decimal
//! text; inside services it is a [`rust_decimal::Decimal`].

use std::str::FromStr;

use rust_decimal::Decimal;

use crate::types as pb;

/// Why a proto decimal could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    /// The field was not set at all.
    #[error("missing decimal")]
    Missing,
    /// The text is not a plain decimal number.
    #[error("not a decimal number: {0:?}")]
    Malformed(String),
}

impl From<Decimal> for pb::Decimal {
    fn from(value: Decimal) -> Self {
        Self {
            value: value.to_string(),
        }
    }
}

impl TryFrom<&pb::Decimal> for Decimal {
    type Error = DecimalError;

    fn try_from(value: &pb::Decimal) -> Result<Self, Self::Error> {
        parse_decimal(&value.value)
    }
}

/// Reads canonical decimal text (`-12.50`); exponents, spaces and grouping are refused so that a
/// value has exactly one spelling.
pub fn parse_decimal(text: &str) -> Result<Decimal, DecimalError> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let well_formed = !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
        && (!digits.contains('.') || !frac.is_empty());
    if !well_formed {
        return Err(DecimalError::Malformed(text.to_owned()));
    }
    Decimal::from_str(text).map_err(|_| DecimalError::Malformed(text.to_owned()))
}

/// Reads an optional proto decimal field, as prost generates message fields.
pub fn decimal_field(field: Option<&pb::Decimal>) -> Result<Decimal, DecimalError> {
    field
        .ok_or(DecimalError::Missing)
        .and_then(Decimal::try_from)
}

/// Money as a proto field: always two fractional digits ("950.00").
#[must_use]
pub fn money(mut amount: Decimal) -> Option<pb::Decimal> {
    amount.rescale(2);
    Some(amount.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_text_round_trips() {
        for text in ["0", "950.00", "19.99", "-0.01", "1234567890.12"] {
            let value = parse_decimal(text).unwrap();
            assert_eq!(pb::Decimal::from(value).value, text);
        }
    }

    #[test]
    fn refuses_everything_but_plain_decimals() {
        for text in [
            "", "-", "1e3", " 1", "1,000", "1.", ".5", "+1", "NaN", "1.2.3",
        ] {
            assert!(parse_decimal(text).is_err(), "{text:?} should be refused");
        }
    }

    #[test]
    fn money_always_has_cents() {
        assert_eq!(money(Decimal::from(950)).unwrap().value, "950.00");
        assert_eq!(money(Decimal::new(1999, 2)).unwrap().value, "19.99");
    }
}
