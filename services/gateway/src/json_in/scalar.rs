//! Reading one non-repeated value of a field's kind from JSON: text, booleans, integers, floats
//! and enums, with the lenient integer and decimal-number rules.

use prost_reflect::{Kind, Value};
use serde_json::Value as Json;

use super::well_known::read_message;
use crate::error::{FieldError, Loc};

/// A single (non-repeated) value of `kind` from JSON.
pub(super) fn read_single(
    kind: &Kind,
    json: &Json,
    loc: &[Loc],
    errors: &mut Vec<FieldError>,
) -> Option<Value> {
    let mut fail = |msg: &str, kind: &'static str| {
        errors.push(FieldError::new(loc.to_vec(), msg, kind));
        None
    };
    match kind {
        Kind::String => match json {
            // No service can store or look up U+0000 (PostgreSQL text cannot hold it).
            Json::String(s) if s.contains('\0') => fail(
                "El texto no puede contener el caracter nulo (U+0000)",
                "string_null_character",
            ),
            Json::String(s) => Some(Value::String(s.clone())),
            _ => fail("Debe ser un texto", "string_type"),
        },
        Kind::Bool => match json {
            Json::Bool(b) => Some(Value::Bool(*b)),
            Json::String(s) => match s.to_ascii_lowercase().as_str() {
                "true" | "1" => Some(Value::Bool(true)),
                "false" | "0" => Some(Value::Bool(false)),
                _ => fail("Debe ser verdadero o falso", "bool_parsing"),
            },
            _ => fail("Debe ser verdadero o falso", "bool_parsing"),
        },
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => match integer(json) {
            Some(n) => match i32::try_from(n) {
                Ok(n) => Some(Value::I32(n)),
                Err(_) => fail("Numero entero fuera de rango", "int_parsing"),
            },
            None => fail("Debe ser un numero entero", "int_parsing"),
        },
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => match integer(json) {
            Some(n) => match i64::try_from(n) {
                Ok(n) => Some(Value::I64(n)),
                Err(_) => fail("Numero entero fuera de rango", "int_parsing"),
            },
            None => fail("Debe ser un numero entero", "int_parsing"),
        },
        Kind::Uint32 | Kind::Fixed32 => match integer(json).map(u32::try_from) {
            Some(Ok(n)) => Some(Value::U32(n)),
            _ => fail("Debe ser un numero entero no negativo", "int_parsing"),
        },
        Kind::Uint64 | Kind::Fixed64 => match integer(json).map(u64::try_from) {
            Some(Ok(n)) => Some(Value::U64(n)),
            _ => fail("Debe ser un numero entero no negativo", "int_parsing"),
        },
        Kind::Double | Kind::Float => match number_text(json).and_then(|t| t.parse::<f64>().ok()) {
            #[allow(clippy::cast_possible_truncation)]
            Some(f) if matches!(kind, Kind::Float) => Some(Value::F32(f as f32)),
            Some(f) => Some(Value::F64(f)),
            None => fail("Debe ser un numero", "float_parsing"),
        },
        Kind::Enum(enumeration) => {
            let found = match json {
                Json::String(name) => enumeration.get_value_by_name(name),
                Json::Number(n) => n
                    .as_i64()
                    .and_then(|n| i32::try_from(n).ok())
                    .and_then(|n| enumeration.get_value(n)),
                _ => None,
            };
            match found {
                Some(value) => Some(Value::EnumNumber(value.number())),
                None => fail("Valor no permitido", "enum"),
            }
        }
        Kind::Bytes => fail("Tipo no soportado en JSON", "bytes_type"),
        Kind::Message(message) => read_message(message, json, loc, errors),
    }
}

/// An integer from a JSON number (integral floats too) or a string of digits.
fn integer(json: &Json) -> Option<i128> {
    match json {
        Json::Number(n) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
            .or_else(|| {
                let f = n.as_f64()?;
                // Integral and well inside i64: exact, since |f| < 2^63 is representable.
                #[allow(clippy::cast_possible_truncation)]
                (f.fract() == 0.0 && f.abs() < 9.2e18).then_some(f as i128)
            }),
        Json::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The decimal text of a JSON number or numeric string, without exponent.
///
/// serde_json is built with `float_roundtrip`, so a JSON number parses to the f64 nearest to
/// it, and Rust prints an f64 as the shortest decimal that reads back as the same f64: for any
/// number of up to 15 significant digits — every NUMERIC(12,2) amount — that is exactly the
/// digits the client sent.
pub(super) fn number_text(json: &Json) -> Option<String> {
    match json {
        Json::Number(n) => Some(match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (None, Some(u), _) => u.to_string(),
            (None, None, Some(f)) if f.is_finite() => format!("{f}"),
            _ => return None,
        }),
        Json::String(s) => {
            let s = s.trim();
            flightmesh_proto::money::parse_decimal(s)
                .is_ok()
                .then(|| s.to_owned())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decimal_text_is_the_digits_sent() {
        for (json, text) in [
            (json!(50), "50"),
            (json!(19.99), "19.99"),
            (json!(0.1), "0.1"),
            (json!(1000.5), "1000.5"),
            (json!(9_999_999_999.99), "9999999999.99"),
            (json!(1e-7), "0.0000001"),
            (json!("12.30"), "12.30"),
        ] {
            assert_eq!(number_text(&json).as_deref(), Some(text), "{json}");
        }
        for bad in [
            json!("1e3"),
            json!("abc"),
            json!(""),
            json!(true),
            json!("1."),
            json!("-"),
        ] {
            assert_eq!(number_text(&bad), None, "{bad}");
        }
    }

    #[test]
    fn integers_accept_what_pydantic_accepted() {
        assert_eq!(integer(&json!(25)), Some(25));
        assert_eq!(integer(&json!(25.0)), Some(25));
        assert_eq!(integer(&json!("25")), Some(25));
        assert_eq!(integer(&json!(25.5)), None);
        assert_eq!(integer(&json!("x")), None);
    }
}
