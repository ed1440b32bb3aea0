//! Response bytes → JSON text straight from the protobuf wire format, with the same output as
//! [`super::encode`] on the decoded message but without building a `DynamicMessage` first (the
//! decode and the tree were a tenth of the gateway's CPU per REST booking; see
//! `docs/benchmarks.md`, "The answer written from the wire").
//!
//! Only what a well-behaved service sends is read here: each field once (a scalar sent twice
//! keeps its last value, as protobuf decoding does), at most one member per oneof, valid UTF-8.
//! Anything else — a singular message sent twice (protobuf merges the two), two members of a
//! oneof, groups, malformed bytes — answers `None`, and the caller decodes the message the general
//! way, which merges, or fails with the decoder's own error.

use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};

use super::{
    DECIMAL, LIST_VALUE, STRUCT, TIMESTAMP, VALUE, base64, push_decimal, push_display,
    write_fields, write_float, write_sorted_object, write_string, write_timestamp_parts,
    write_value,
};

/// How deep messages may nest, as protobuf's decoder allows.
const RECURSION_LIMIT: u32 = 100;

// Field numbers of the types written specially: fixed by their protos (the well-known types'
// by protobuf itself), so read without a descriptor lookup per value.
/// `flightmesh.type.v1.Decimal.value`.
const DECIMAL_VALUE: u32 = 1;
/// `google.protobuf.Timestamp.seconds` and `.nanos`.
const TIMESTAMP_SECONDS: u32 = 1;
const TIMESTAMP_NANOS: u32 = 2;
/// `google.protobuf.Value`'s members: `null_value` … `list_value`.
const VALUE_NULL: u32 = 1;
const VALUE_NUMBER: u32 = 2;
const VALUE_STRING: u32 = 3;
const VALUE_BOOL: u32 = 4;
const VALUE_STRUCT: u32 = 5;
const VALUE_LIST: u32 = 6;

/// One field's value as it is on the wire.
#[derive(Debug, Clone, Copy)]
enum Wire<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    Len(&'a [u8]),
}

/// The JSON of the `descriptor` message in `bytes` (or of its `field` only), or `None` when the
/// bytes need the general decoder (see the module docs).
#[must_use]
pub fn encode(
    bytes: &[u8],
    descriptor: &MessageDescriptor,
    field: Option<&FieldDescriptor>,
) -> Option<String> {
    let mut out = String::with_capacity(256);
    match field {
        Some(field) => {
            let fields = scan(bytes)?;
            check_oneofs(descriptor, &fields)?;
            write_field(&mut out, field, &fields, 0)?;
        }
        None => write_message(&mut out, descriptor, bytes, 0)?,
    }
    Some(out)
}

/// Every field of `bytes` in wire order, by number.
fn scan(mut bytes: &[u8]) -> Option<Vec<(u32, Wire<'_>)>> {
    let mut fields = Vec::with_capacity(16);
    while !bytes.is_empty() {
        // A key is 32 bits at most and names field 1 or above, or the bytes are malformed.
        let key = u32::try_from(varint(&mut bytes)?).ok()?;
        let number = Some(key >> 3).filter(|n| *n > 0)?;
        let value = match key & 7 {
            0 => Wire::Varint(varint(&mut bytes)?),
            1 => Wire::Fixed64(u64::from_le_bytes(take(&mut bytes, 8)?.try_into().ok()?)),
            2 => {
                let len = usize::try_from(varint(&mut bytes)?).ok()?;
                Wire::Len(take(&mut bytes, len)?)
            }
            5 => Wire::Fixed32(u32::from_le_bytes(take(&mut bytes, 4)?.try_into().ok()?)),
            // Groups (3, 4) and invalid wire types: the general decoder's business.
            _ => return None,
        };
        fields.push((number, value));
    }
    Some(fields)
}

fn take<'a>(bytes: &mut &'a [u8], len: usize) -> Option<&'a [u8]> {
    if bytes.len() < len {
        return None;
    }
    let (head, rest) = bytes.split_at(len);
    *bytes = rest;
    Some(head)
}

/// A base-128 varint of at most ten bytes whose value fits in 64 bits, as protobuf requires.
fn varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut value = 0_u64;
    for (i, byte) in bytes.iter().take(10).enumerate() {
        if i == 9 && *byte > 1 {
            return None;
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            *bytes = &bytes[i + 1..];
            return Some(value);
        }
    }
    None
}

/// `None` if two members of one oneof are on the wire (decoding keeps the last; rare enough to
/// leave to the general decoder).
fn check_oneofs(descriptor: &MessageDescriptor, fields: &[(u32, Wire<'_>)]) -> Option<()> {
    for oneof in descriptor.oneofs() {
        let mut present = oneof
            .fields()
            .filter(|member| fields.iter().any(|(n, _)| *n == member.number()));
        if present.next().is_some() && present.next().is_some() {
            return None;
        }
    }
    Some(())
}

fn write_message(
    out: &mut String,
    descriptor: &MessageDescriptor,
    bytes: &[u8],
    depth: u32,
) -> Option<()> {
    if depth > RECURSION_LIMIT {
        return None;
    }
    let fields = scan(bytes)?;
    check_oneofs(descriptor, &fields)?;
    match descriptor.full_name() {
        DECIMAL => return write_decimal(out, &fields),
        TIMESTAMP => return write_timestamp(out, &fields),
        STRUCT | LIST_VALUE => {
            // Their one field (`fields`, a map; `values`, a list) is the JSON.
            let field = descriptor.fields().next()?;
            return write_field(out, &field, &fields, depth);
        }
        VALUE => return write_json_value(out, descriptor, &fields, depth),
        _ => {}
    }
    write_fields(out, descriptor, |out, field| {
        write_field(out, field, &fields, depth)
    })
}

/// The last value of field `number` on the wire, `None` if it is absent; `Err` when it is a
/// message (`is_message`) sent more than once (which decoding would merge).
fn last<'a>(
    number: u32,
    is_message: bool,
    fields: &[(u32, Wire<'a>)],
) -> Result<Option<Wire<'a>>, ()> {
    let mut values = fields.iter().filter(|(n, _)| *n == number).map(|(_, v)| *v);
    let Some(mut value) = values.next() else {
        return Ok(None);
    };
    for next in values {
        if is_message {
            return Err(());
        }
        value = next;
    }
    Ok(Some(value))
}

fn write_field(
    out: &mut String,
    field: &FieldDescriptor,
    fields: &[(u32, Wire<'_>)],
    depth: u32,
) -> Option<()> {
    if field.is_map() {
        return write_map(out, field, fields, depth);
    }
    let kind = field.kind();
    if field.is_list() {
        out.push('[');
        let mut first = true;
        for (_, value) in fields.iter().filter(|(n, _)| *n == field.number()) {
            match (*value, packed_width(&kind)) {
                (Wire::Len(mut packed), Some(width)) => {
                    while !packed.is_empty() {
                        let item = match width {
                            Width::Varint => Wire::Varint(varint(&mut packed)?),
                            Width::Fixed32 => Wire::Fixed32(u32::from_le_bytes(
                                take(&mut packed, 4)?.try_into().ok()?,
                            )),
                            Width::Fixed64 => Wire::Fixed64(u64::from_le_bytes(
                                take(&mut packed, 8)?.try_into().ok()?,
                            )),
                        };
                        push_separator(out, &mut first);
                        write_scalar(out, &kind, item, depth)?;
                    }
                }
                (value, _) => {
                    push_separator(out, &mut first);
                    write_scalar(out, &kind, value, depth)?;
                }
            }
        }
        out.push(']');
        return Some(());
    }
    let is_message = matches!(kind, Kind::Message(_));
    match last(field.number(), is_message, fields).ok()? {
        Some(value) => write_scalar(out, &kind, value, depth),
        None if field.supports_presence() => {
            out.push_str("null");
            Some(())
        }
        None => {
            write_value(out, &field.default_value(), &kind);
            Some(())
        }
    }
}

fn push_separator(out: &mut String, first: &mut bool) {
    if !std::mem::take(first) {
        out.push(',');
    }
}

/// How the items of a packed repeated field are laid out; `None` for kinds that cannot be packed.
enum Width {
    Varint,
    Fixed32,
    Fixed64,
}

fn packed_width(kind: &Kind) -> Option<Width> {
    match kind {
        Kind::Int32
        | Kind::Int64
        | Kind::Uint32
        | Kind::Uint64
        | Kind::Sint32
        | Kind::Sint64
        | Kind::Bool
        | Kind::Enum(_) => Some(Width::Varint),
        Kind::Fixed32 | Kind::Sfixed32 | Kind::Float => Some(Width::Fixed32),
        Kind::Fixed64 | Kind::Sfixed64 | Kind::Double => Some(Width::Fixed64),
        Kind::String | Kind::Bytes | Kind::Message(_) => None,
    }
}

// Truncations and sign changes below are protobuf's own decoding rules for each kind.
#[allow(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss
)]
fn write_scalar(out: &mut String, kind: &Kind, value: Wire<'_>, depth: u32) -> Option<()> {
    match (kind, value) {
        (Kind::Double, Wire::Fixed64(bits)) => write_float(out, f64::from_bits(bits)),
        (Kind::Float, Wire::Fixed32(bits)) => write_float(out, f64::from(f32::from_bits(bits))),
        (Kind::Int32, Wire::Varint(v)) => push_display(out, v as i32),
        (Kind::Int64, Wire::Varint(v)) => push_display(out, v as i64),
        (Kind::Uint32, Wire::Varint(v)) => push_display(out, v as u32),
        (Kind::Uint64, Wire::Varint(v)) => push_display(out, v),
        (Kind::Sint32, Wire::Varint(v)) => {
            let v = v as u32;
            push_display(out, ((v >> 1) as i32) ^ -((v & 1) as i32));
        }
        (Kind::Sint64, Wire::Varint(v)) => {
            push_display(out, ((v >> 1) as i64) ^ -((v & 1) as i64));
        }
        (Kind::Fixed32, Wire::Fixed32(v)) => push_display(out, v),
        (Kind::Sfixed32, Wire::Fixed32(v)) => push_display(out, v as i32),
        (Kind::Fixed64, Wire::Fixed64(v)) => push_display(out, v),
        (Kind::Sfixed64, Wire::Fixed64(v)) => push_display(out, v as i64),
        (Kind::Bool, Wire::Varint(v)) => out.push_str(if v != 0 { "true" } else { "false" }),
        (Kind::String, Wire::Len(bytes)) => write_string(out, std::str::from_utf8(bytes).ok()?),
        (Kind::Bytes, Wire::Len(bytes)) => write_string(out, &base64(bytes)),
        (Kind::Enum(enumeration), Wire::Varint(v)) => {
            let number = v as i32;
            match enumeration.get_value(number) {
                Some(value) => write_string(out, value.name()),
                None => push_display(out, number),
            }
        }
        (Kind::Message(message), Wire::Len(bytes)) => {
            return write_message(out, message, bytes, depth + 1);
        }
        // A wire type the field's kind does not take: the decoder's error to report.
        _ => return None,
    }
    Some(())
}

/// A map as a JSON object, keys sorted by their text, the last entry of a key kept.
fn write_map(
    out: &mut String,
    field: &FieldDescriptor,
    fields: &[(u32, Wire<'_>)],
    depth: u32,
) -> Option<()> {
    let Kind::Message(entry) = field.kind() else {
        return None;
    };
    let (key_field, value_field) = (entry.map_entry_key_field(), entry.map_entry_value_field());
    let (key_kind, value_kind) = (key_field.kind(), value_field.kind());
    let value_is_message = matches!(value_kind, Kind::Message(_));
    let mut entries: Vec<(String, Option<Wire<'_>>)> = Vec::new();
    for (_, value) in fields.iter().filter(|(n, _)| *n == field.number()) {
        let Wire::Len(bytes) = value else {
            return None;
        };
        let parts = scan(bytes)?;
        let key = match last(key_field.number(), false, &parts).ok()? {
            Some(key) => map_key_text(&key_kind, key)?,
            // An absent key is its kind's default.
            None => match key_kind {
                Kind::String => String::new(),
                Kind::Bool => "false".to_owned(),
                _ => "0".to_owned(),
            },
        };
        let value = last(value_field.number(), value_is_message, &parts).ok()?;
        match entries.iter_mut().find(|(k, _)| *k == key) {
            Some(existing) => existing.1 = value,
            None => entries.push((key, value)),
        }
    }
    write_sorted_object(out, entries, |out, value| match value {
        Some(value) => write_scalar(out, &value_kind, value, depth),
        None => {
            write_value(out, &value_field.default_value(), &value_kind);
            Some(())
        }
    })
}

/// A map key's text as JSON writes it (`None` if the wire does not fit the key's kind): a
/// string's own text, any other key as its value would be written.
fn map_key_text(kind: &Kind, key: Wire<'_>) -> Option<String> {
    match (kind, key) {
        (Kind::String, Wire::Len(bytes)) => std::str::from_utf8(bytes).ok().map(str::to_owned),
        (
            Kind::String
            | Kind::Bytes
            | Kind::Message(_)
            | Kind::Enum(_)
            | Kind::Float
            | Kind::Double,
            _,
        ) => None,
        _ => {
            let mut text = String::new();
            write_scalar(&mut text, kind, key, 0)?;
            Some(text)
        }
    }
}

fn write_decimal(out: &mut String, fields: &[(u32, Wire<'_>)]) -> Option<()> {
    let text = match last(DECIMAL_VALUE, false, fields).ok()? {
        Some(Wire::Len(bytes)) => std::str::from_utf8(bytes).ok()?,
        Some(_) => return None,
        None => "",
    };
    push_decimal(out, text);
    Some(())
}

#[allow(clippy::cast_possible_truncation, clippy::cast_possible_wrap)]
fn write_timestamp(out: &mut String, fields: &[(u32, Wire<'_>)]) -> Option<()> {
    let varint = |number| match last(number, false, fields) {
        Ok(Some(Wire::Varint(v))) => Some(v),
        Ok(None) => Some(0),
        _ => None,
    };
    let seconds = varint(TIMESTAMP_SECONDS)? as i64;
    let nanos = varint(TIMESTAMP_NANOS)? as i32;
    write_timestamp_parts(out, seconds, nanos);
    Some(())
}

/// A `google.protobuf.Value`: its one set member as plain JSON (`check_oneofs` has made sure
/// there is at most one).
fn write_json_value(
    out: &mut String,
    descriptor: &MessageDescriptor,
    fields: &[(u32, Wire<'_>)],
    depth: u32,
) -> Option<()> {
    let Some(&(member, _)) = fields
        .iter()
        .find(|(n, _)| (VALUE_NULL..=VALUE_LIST).contains(n))
    else {
        out.push_str("null");
        return Some(());
    };
    let is_message = matches!(member, VALUE_STRUCT | VALUE_LIST);
    match (member, last(member, is_message, fields).ok()??) {
        (VALUE_NUMBER, Wire::Fixed64(bits)) => {
            super::write_json_number(out, f64::from_bits(bits));
        }
        (VALUE_STRING, Wire::Len(bytes)) => write_string(out, std::str::from_utf8(bytes).ok()?),
        (VALUE_BOOL, Wire::Varint(v)) => out.push_str(if v != 0 { "true" } else { "false" }),
        (VALUE_STRUCT | VALUE_LIST, Wire::Len(bytes)) => {
            let Kind::Message(message) = descriptor.get_field(member)?.kind() else {
                return None;
            };
            write_message(out, &message, bytes, depth + 1)?;
        }
        (VALUE_NULL, Wire::Varint(_)) => out.push_str("null"),
        _ => return None,
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use prost::Message as _;
    use prost_reflect::{DescriptorPool, DynamicMessage, MapKey, Value};

    use super::*;

    fn pool() -> DescriptorPool {
        DescriptorPool::decode(flightmesh_proto::FILE_DESCRIPTOR_SET).expect("descriptors")
    }

    /// What the gateway wrote before this reader: the general decoder, then `json_out::encode`.
    fn decoded(
        bytes: &[u8],
        descriptor: &MessageDescriptor,
        field: Option<&FieldDescriptor>,
    ) -> String {
        let message = DynamicMessage::decode(descriptor.clone(), bytes).expect("decodes");
        super::super::encode(&message, field)
    }

    /// A message of `descriptor` with every field set (`variant` 1), or every other one
    /// (`variant` 2: the rest absent, so presence shows as `null`), nested up to a few levels.
    fn sample(descriptor: &MessageDescriptor, variant: usize, depth: usize) -> DynamicMessage {
        let mut message = DynamicMessage::new(descriptor.clone());
        match descriptor.full_name() {
            DECIMAL => {
                let text = ["950.00", "-0.50", "12"][variant % 3];
                message.set_field_by_name("value", Value::String(text.to_owned()));
                return message;
            }
            VALUE => {
                // One member, a different one for each variant and depth.
                let member = descriptor
                    .fields()
                    .nth((variant + depth) % 6)
                    .expect("member");
                let value = match member.kind() {
                    Kind::Message(inner) if depth < 4 => {
                        Value::Message(sample(&inner, variant + 1, depth + 1))
                    }
                    Kind::Message(inner) => Value::Message(DynamicMessage::new(inner)),
                    Kind::Double => Value::F64(if variant.is_multiple_of(2) {
                        3.0
                    } else {
                        -0.25
                    }),
                    kind => value_of(&kind, variant, depth),
                };
                message.set_field(&member, value);
                return message;
            }
            _ => {}
        }
        for (i, field) in descriptor.fields().enumerate() {
            if variant == 2 && i % 2 == 1 {
                continue;
            }
            if depth >= 4 && matches!(field.kind(), Kind::Message(_)) {
                continue;
            }
            let value = if field.is_map() {
                let Kind::Message(entry) = field.kind() else {
                    unreachable!("a map's kind is its entry")
                };
                let (key, value) = (entry.map_entry_key_field(), entry.map_entry_value_field());
                let map: HashMap<MapKey, Value> = (0..2)
                    .map(|n| {
                        (
                            map_key(&key.kind(), n),
                            value_of(&value.kind(), variant + n, depth + 1),
                        )
                    })
                    .collect();
                Value::Map(map)
            } else if field.is_list() {
                Value::List(
                    (0..3)
                        .map(|n| value_of(&field.kind(), variant + n, depth + 1))
                        .collect(),
                )
            } else {
                value_of(&field.kind(), variant, depth + 1)
            };
            message.set_field(&field, value);
        }
        message
    }

    fn value_of(kind: &Kind, variant: usize, depth: usize) -> Value {
        let odd = variant % 2 == 1;
        match kind {
            Kind::Double => Value::F64(if odd { 950.5 } else { -1e300 }),
            Kind::Float => Value::F32(if odd { 1.5 } else { -0.1 }),
            Kind::Int32 => Value::I32(if odd { -7 } else { 2_000_000_000 }),
            Kind::Int64 => Value::I64(if odd { -9_000_000_000 } else { 42 }),
            Kind::Uint32 => Value::U32(if odd { 7 } else { u32::MAX }),
            Kind::Uint64 => Value::U64(if odd { u64::MAX } else { 3 }),
            Kind::Sint32 => Value::I32(if odd { -5 } else { i32::MIN }),
            Kind::Sint64 => Value::I64(if odd { -6 } else { i64::MAX }),
            Kind::Fixed32 => Value::U32(9),
            Kind::Fixed64 => Value::U64(10),
            Kind::Sfixed32 => Value::I32(-11),
            Kind::Sfixed64 => Value::I64(-12),
            Kind::Bool => Value::Bool(odd),
            Kind::String => Value::String(
                if odd {
                    "señor \"x\"\\\n\t\u{1}\u{7f} ✈"
                } else {
                    ""
                }
                .to_owned(),
            ),
            Kind::Bytes => Value::Bytes(bytes::Bytes::from_static(b"\x00\xffab")),
            Kind::Enum(enumeration) => Value::EnumNumber(if odd {
                enumeration.values().last().map_or(0, |v| v.number())
            } else {
                // Not a declared value: written as its number.
                99
            }),
            Kind::Message(message) => match message.full_name() {
                TIMESTAMP => {
                    let mut at = DynamicMessage::new(message.clone());
                    at.set_field_by_name("seconds", Value::I64(1_700_000_000));
                    at.set_field_by_name("nanos", Value::I32(if odd { 123_456_000 } else { 0 }));
                    Value::Message(at)
                }
                _ => Value::Message(sample(message, variant, depth)),
            },
        }
    }

    fn map_key(kind: &Kind, n: usize) -> MapKey {
        match kind {
            Kind::String => MapKey::String(["zeta", "alpha"][n].to_owned()),
            Kind::Bool => MapKey::Bool(n == 0),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => MapKey::I32([10, -9][n]),
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => MapKey::I64([10, -9][n]),
            Kind::Uint32 | Kind::Fixed32 => MapKey::U32([10, 9][n]),
            _ => MapKey::U64([10, 9][n]),
        }
    }

    #[test]
    fn every_message_reads_from_the_wire_as_the_decoded_message_writes() {
        let pool = pool();
        let mut checked = 0;
        for descriptor in pool.all_messages().filter(|m| !m.is_map_entry()) {
            for variant in 0..3 {
                let message = if variant == 0 {
                    DynamicMessage::new(descriptor.clone())
                } else {
                    sample(&descriptor, variant, 0)
                };
                let bytes = message.encode_to_vec();
                assert_eq!(
                    encode(&bytes, &descriptor, None).as_deref(),
                    Some(decoded(&bytes, &descriptor, None).as_str()),
                    "{} variant {variant}",
                    descriptor.full_name()
                );
                for field in descriptor.fields() {
                    assert_eq!(
                        encode(&bytes, &descriptor, Some(&field)).as_deref(),
                        Some(decoded(&bytes, &descriptor, Some(&field)).as_str()),
                        "{}.{} variant {variant}",
                        descriptor.full_name(),
                        field.name()
                    );
                }
                checked += 1;
            }
        }
        // Every response type of the routes is among them; a pool this small means a bad build.
        assert!(checked > 100, "only {checked} messages checked");
    }

    /// A field key: number and wire type.
    fn key(number: u32, wire_type: u32) -> u8 {
        u8::try_from((number << 3) | wire_type).expect("small field number")
    }

    #[test]
    fn repeated_scalars_read_packed_and_unpacked_and_a_repeated_scalar_keeps_its_last_value() {
        let pool = pool();
        let value = pool.get_message_by_name(VALUE).expect("Value");
        let list = pool.get_message_by_name(LIST_VALUE).expect("ListValue");
        // A Value whose number is sent twice: the last one counts.
        let twice = [key(2, 1), 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, key(2, 1)]
            .into_iter()
            .chain(2.5_f64.to_le_bytes())
            .collect::<Vec<u8>>();
        assert_eq!(encode(&twice, &value, None).as_deref(), Some("2.5"));
        assert_eq!(decoded(&twice, &value, None), "2.5");
        // An unknown field is skipped, as the decoder skips it.
        let mut unknown = vec![key(15, 0), 0x96, 0x01];
        unknown.extend_from_slice(&twice);
        assert_eq!(encode(&unknown, &value, None).as_deref(), Some("2.5"));
        // ListValue's values, one item per occurrence.
        let mut items = Vec::new();
        for item in [&twice[..], &[key(4, 0), 1][..]] {
            items.push(key(1, 2));
            items.push(u8::try_from(item.len()).expect("short"));
            items.extend_from_slice(item);
        }
        assert_eq!(encode(&items, &list, None).as_deref(), Some("[2.5,true]"));
        assert_eq!(decoded(&items, &list, None), "[2.5,true]");

        // A packed and an unpacked repeated int32 give the same list.
        let repeated = pool
            .all_messages()
            .flat_map(|m| m.fields().collect::<Vec<_>>())
            .find(|f| f.is_list() && matches!(f.kind(), Kind::Int32 | Kind::Int64))
            .map(|f| (f.parent_message().clone(), f.number()));
        if let Some((message, number)) = repeated {
            let packed = [key(number, 2), 3, 1, 2, 3];
            let unpacked = [key(number, 0), 1, key(number, 0), 2, key(number, 0), 3];
            for bytes in [&packed[..], &unpacked[..]] {
                assert_eq!(
                    encode(bytes, &message, None).as_deref(),
                    Some(decoded(bytes, &message, None).as_str())
                );
            }
        }
    }

    #[test]
    fn what_decoding_would_merge_or_reject_is_left_to_the_decoder() {
        let pool = pool();
        let value = pool.get_message_by_name(VALUE).expect("Value");
        // A struct_value sent twice (decoding merges the two).
        let twice = [key(5, 2), 0, key(5, 2), 0];
        assert_eq!(encode(&twice, &value, None), None);
        // Two members of the oneof (decoding keeps the last).
        let two_members = [key(4, 0), 1, key(1, 0), 0];
        assert_eq!(encode(&two_members, &value, None), None);
        // Not UTF-8.
        let latin1 = [key(3, 2), 1, 0xe9];
        assert_eq!(encode(&latin1, &value, None), None);
        assert!(DynamicMessage::decode(value.clone(), &latin1[..]).is_err());
        // A string sent as a varint.
        let wrong_type = [key(3, 0), 1];
        assert_eq!(encode(&wrong_type, &value, None), None);
        assert!(DynamicMessage::decode(value.clone(), &wrong_type[..]).is_err());
        // Cut short, a group, a key over 32 bits, field number 0, an eleven-byte varint.
        for bytes in [
            &[key(3, 2), 5, b'a'][..],
            &[key(1, 3)][..],
            &[0x80, 0x80, 0x80, 0x80, 0x10, 0][..],
            &[key(0, 0), 0][..],
            &[
                key(1, 0),
                0xff,
                0xff,
                0xff,
                0xff,
                0xff,
                0xff,
                0xff,
                0xff,
                0xff,
                0xff,
                0x01,
            ][..],
        ] {
            assert_eq!(encode(bytes, &value, None), None, "{bytes:?}");
            assert!(
                DynamicMessage::decode(value.clone(), bytes).is_err(),
                "{bytes:?}"
            );
        }
    }
}
