//! Response message → JSON text, written directly (no intermediate tree):
//! proto field names, every field present (unset proto3 `optional` and message fields as
//! `null`), 64-bit integers as JSON numbers (the contract's ids are numbers),
//! `flightmesh.type.v1.Decimal` as a JSON number written from its digits, timestamps as
//! RFC 3339 strings and `google.protobuf.Struct`/`Value` as plain JSON.
//!
//! [`from_wire`] writes the same JSON straight from the response's bytes; [`encode`] writes it
//! from a decoded message, for the bytes the wire reader leaves to the general decoder.

mod wire;

use std::collections::HashMap;
use std::fmt::Write as _;

use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MapKey, ReflectMessage, Value};

use crate::json_in::{DECIMAL, STRUCT, TIMESTAMP};

const VALUE: &str = "google.protobuf.Value";
const LIST_VALUE: &str = "google.protobuf.ListValue";

/// The JSON of the `descriptor` message encoded in `bytes`, or of only its `field`, as
/// [`encode`] would write it once decoded; `None` when the bytes need the general decoder (a
/// singular message sent twice, two members of a oneof, malformed bytes: [`wire`]).
#[must_use]
pub fn from_wire(
    bytes: &[u8],
    descriptor: &prost_reflect::MessageDescriptor,
    field: Option<&FieldDescriptor>,
) -> Option<String> {
    wire::encode(bytes, descriptor, field)
}

/// The JSON for `message`, or for only its `field` (how list routes answer bare arrays).
#[must_use]
pub fn encode(message: &DynamicMessage, field: Option<&FieldDescriptor>) -> String {
    let mut out = String::with_capacity(256);
    match field {
        Some(field) => write_field_value(&mut out, message, field),
        None => write_message(&mut out, message),
    }
    out
}

fn write_message(out: &mut String, message: &DynamicMessage) {
    let descriptor = message.descriptor();
    match descriptor.full_name() {
        DECIMAL => return write_decimal(out, message),
        TIMESTAMP => return write_timestamp(out, message),
        STRUCT => return write_struct(out, message),
        VALUE => return write_json_value(out, message),
        LIST_VALUE => return write_list_value(out, message),
        _ => {}
    }
    // Writing a decoded message cannot fail.
    let _ = write_fields(out, &descriptor, |out, field| {
        write_field_value(out, message, field);
        Some(())
    });
}

/// A message's fields as a JSON object, in declaration order, each value written by `write`
/// (which stops the writing with `None`).
fn write_fields(
    out: &mut String,
    descriptor: &prost_reflect::MessageDescriptor,
    mut write: impl FnMut(&mut String, &FieldDescriptor) -> Option<()>,
) -> Option<()> {
    out.push('{');
    for (i, field) in descriptor.fields().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(out, field.name());
        out.push(':');
        write(out, &field)?;
    }
    out.push('}');
    Some(())
}

fn write_field_value(out: &mut String, message: &DynamicMessage, field: &FieldDescriptor) {
    if field.supports_presence() && !field.is_list() && !message.has_field(field) {
        out.push_str("null");
        return;
    }
    let value = message.get_field(field);
    if field.is_map() {
        let Value::Map(map) = value.as_ref() else {
            out.push_str("{}");
            return;
        };
        let value_kind = match field.kind() {
            Kind::Message(entry) => entry.map_entry_value_field().kind(),
            other => other,
        };
        write_object(out, map, |out, value| write_value(out, value, &value_kind));
        return;
    }
    write_value(out, value.as_ref(), &field.kind());
}

fn write_value(out: &mut String, value: &Value, kind: &Kind) {
    match value {
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::I32(n) => push_display(out, n),
        Value::I64(n) => push_display(out, n),
        Value::U32(n) => push_display(out, n),
        Value::U64(n) => push_display(out, n),
        Value::F32(f) => write_float(out, f64::from(*f)),
        Value::F64(f) => write_float(out, *f),
        Value::String(s) => write_string(out, s),
        Value::Bytes(bytes) => write_string(out, &base64(bytes)),
        Value::EnumNumber(number) => match kind {
            Kind::Enum(enumeration) => match enumeration.get_value(*number) {
                Some(v) => write_string(out, v.name()),
                None => push_display(out, number),
            },
            _ => push_display(out, number),
        },
        Value::Message(message) => write_message(out, message),
        Value::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item, kind);
            }
            out.push(']');
        }
        Value::Map(_) => out.push_str("{}"),
    }
}

/// A Decimal as a JSON number: its own digits, trailing fractional zeros trimmed to one
/// (950.00 → 950.0, 19.90 → 19.9, 120 → 120.0), which is how the old system's floats looked.
fn write_decimal(out: &mut String, message: &DynamicMessage) {
    match message.get_field_by_name("value").as_deref() {
        Some(Value::String(text)) => push_decimal(out, text),
        _ => push_decimal(out, ""),
    }
}

/// A Decimal's text as a JSON number (`null`, logged, if it is not a plain decimal number).
fn push_decimal(out: &mut String, text: &str) {
    match decimal_parts(text) {
        Some((sign, int, frac)) => {
            for part in [sign, int, ".", frac] {
                out.push_str(part);
            }
        }
        None => {
            if !text.is_empty() {
                tracing::error!(value = %text, "upstream sent a malformed decimal");
            }
            out.push_str("null");
        }
    }
}

/// `"950.00"` → `"950.0"`; `None` unless the text is a plain decimal number.
#[must_use]
pub fn json_number_from_decimal(text: &str) -> Option<String> {
    decimal_parts(text).map(|(sign, int, frac)| format!("{sign}{int}.{frac}"))
}

/// The sign, integer digits and fractional digits (trailing zeros trimmed to one) of a plain
/// decimal number.
fn decimal_parts(text: &str) -> Option<(&'static str, &str, &str)> {
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let well_formed = !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit());
    if !well_formed {
        return None;
    }
    let frac = frac.trim_end_matches('0');
    let sign = if text.starts_with('-') { "-" } else { "" };
    let frac = if frac.is_empty() { "0" } else { frac };
    Some((sign, int, frac))
}

fn write_timestamp(out: &mut String, message: &DynamicMessage) {
    let seconds = match message.get_field_by_name("seconds").as_deref() {
        Some(Value::I64(s)) => *s,
        _ => 0,
    };
    let nanos = match message.get_field_by_name("nanos").as_deref() {
        Some(Value::I32(n)) => *n,
        _ => 0,
    };
    write_timestamp_parts(out, seconds, nanos);
}

/// A timestamp as an RFC 3339 string in UTC with microseconds (`null` if out of range).
fn write_timestamp_parts(out: &mut String, seconds: i64, nanos: i32) {
    let nanos = u32::try_from(nanos).unwrap_or(0);
    match chrono::DateTime::from_timestamp(seconds, nanos) {
        Some(at) => write_string(
            out,
            &at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        ),
        None => out.push_str("null"),
    }
}

fn write_struct(out: &mut String, message: &DynamicMessage) {
    let Some(fields) = message.get_field_by_name("fields") else {
        out.push_str("{}");
        return;
    };
    let Value::Map(map) = fields.as_ref() else {
        out.push_str("{}");
        return;
    };
    write_object(out, map, |out, value| match value {
        Value::Message(value) => write_json_value(out, value),
        _ => out.push_str("null"),
    });
}

/// A protobuf map as a JSON object, keys sorted (stable output for clients and tests), each
/// value written by `write`.
fn write_object(
    out: &mut String,
    map: &HashMap<MapKey, Value>,
    mut write: impl FnMut(&mut String, &Value),
) {
    let entries = map.iter().map(|(key, value)| (map_key_text(key), value));
    // Writing a decoded message cannot fail.
    let _ = write_sorted_object(out, entries.collect(), |out, value| {
        write(out, value);
        Some(())
    });
}

/// Map entries as a JSON object, sorted by their keys' text, each value written by `write`
/// (which stops the writing with `None`).
fn write_sorted_object<T>(
    out: &mut String,
    mut entries: Vec<(String, T)>,
    mut write: impl FnMut(&mut String, T) -> Option<()>,
) -> Option<()> {
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    out.push('{');
    for (i, (key, value)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(out, &key);
        out.push(':');
        write(out, value)?;
    }
    out.push('}');
    Some(())
}

fn write_json_value(out: &mut String, message: &DynamicMessage) {
    let set = message
        .descriptor()
        .fields()
        .find(|field| message.has_field(field));
    let Some(field) = set else {
        out.push_str("null");
        return;
    };
    match (field.name(), message.get_field(&field).as_ref()) {
        ("number_value", Value::F64(f)) => write_json_number(out, *f),
        ("string_value", Value::String(s)) => write_string(out, s),
        ("bool_value", Value::Bool(b)) => out.push_str(if *b { "true" } else { "false" }),
        ("struct_value", Value::Message(m)) => write_struct(out, m),
        ("list_value", Value::Message(m)) => write_list_value(out, m),
        _ => out.push_str("null"),
    }
}

/// A `google.protobuf.Value`'s number. JSON has one number type; an integral value reads best as
/// an integer (`"retries": 0`), as JavaScript and protojson print it.
fn write_json_number(out: &mut String, f: f64) {
    if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 {
        #[allow(clippy::cast_possible_truncation)]
        push_display(out, f as i64);
    } else {
        write_float(out, f);
    }
}

fn write_list_value(out: &mut String, message: &DynamicMessage) {
    out.push('[');
    if let Some(values) = message.get_field_by_name("values")
        && let Value::List(items) = values.as_ref()
    {
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            match item {
                Value::Message(m) => write_json_value(out, m),
                _ => out.push_str("null"),
            }
        }
    }
    out.push(']');
}

fn write_float(out: &mut String, f: f64) {
    if f.is_finite() {
        // serde_json prints floats the way JSON readers expect (950.0, 0.1, 1e300).
        out.push_str(
            &serde_json::Number::from_f64(f).map_or_else(|| "null".into(), |n| n.to_string()),
        );
    } else {
        out.push_str("null");
    }
}

/// `s` as a JSON string, escaped as serde_json escapes it: `"`, `\\` and control characters, the
/// usual ones by their short escapes and the others as `\u00xx`.
fn write_string(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    let mut plain = 0;
    for (i, byte) in s.bytes().enumerate() {
        let escape = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[plain..i]);
        plain = i + 1;
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0xf)]));
        } else {
            out.push_str(escape);
        }
    }
    out.push_str(&s[plain..]);
    out.push('"');
}

fn push_display(out: &mut String, value: impl std::fmt::Display) {
    let _ = write!(out, "{value}");
}

fn map_key_text(key: &MapKey) -> String {
    match key {
        MapKey::Bool(b) => b.to_string(),
        MapKey::I32(n) => n.to_string(),
        MapKey::I64(n) => n.to_string(),
        MapKey::U32(n) => n.to_string(),
        MapKey::U64(n) => n.to_string(),
        MapKey::String(s) => s.clone(),
    }
}

/// Standard base64 with padding, as proto3 JSON writes `bytes`.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_become_numbers_with_their_own_digits() {
        for (text, json) in [
            ("950.00", "950.0"),
            ("18.00", "18.0"),
            ("19.99", "19.99"),
            ("120.50", "120.5"),
            ("0", "0.0"),
            ("-0.01", "-0.01"),
            ("9999999999.99", "9999999999.99"),
        ] {
            assert_eq!(
                json_number_from_decimal(text).as_deref(),
                Some(json),
                "{text}"
            );
        }
        assert_eq!(json_number_from_decimal("1e3"), None);
        assert_eq!(json_number_from_decimal(""), None);
    }

    proptest::proptest! {
        #[test]
        fn strings_are_escaped_as_serde_json_escapes_them(text in "(?s).{0,40}") {
            let mut out = String::new();
            write_string(&mut out, &text);
            proptest::prop_assert_eq!(out, serde_json::Value::from(text).to_string());
        }
    }

    #[test]
    fn every_control_character_is_escaped_as_serde_json_escapes_it() {
        for byte in 0_u8..0x80 {
            let text = format!("a{}b", char::from(byte));
            let mut out = String::new();
            write_string(&mut out, &text);
            assert_eq!(out, serde_json::Value::from(text).to_string(), "{byte:#x}");
        }
    }

    #[test]
    fn base64_matches_the_rfc_vectors() {
        for (input, output) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), output);
        }
    }
}
