//! Message values: the well-known shapes (`Decimal`, `Timestamp`, `Struct` and the
//! `google.protobuf.Value`s inside it) and, for any other message, a nested JSON object.

use prost_reflect::{DynamicMessage, Kind, MapKey, MessageDescriptor, Value};
use serde_json::Value as Json;

use super::scalar::number_text;
use super::walk::read_object;
use super::{DECIMAL, STRUCT, TIMESTAMP};
use crate::error::{FieldError, Loc};

/// A message value: the well-known shapes first, then a plain nested object.
pub(super) fn read_message(
    descriptor: &MessageDescriptor,
    json: &Json,
    loc: &[Loc],
    errors: &mut Vec<FieldError>,
) -> Option<Value> {
    let mut message = DynamicMessage::new(descriptor.clone());
    match descriptor.full_name() {
        DECIMAL => match number_text(json) {
            Some(text) => {
                message.set_field_by_name("value", Value::String(text));
            }
            None => {
                errors.push(FieldError::new(
                    loc.to_vec(),
                    "Debe ser un numero",
                    "decimal_parsing",
                ));
                return None;
            }
        },
        TIMESTAMP => {
            let parsed = json
                .as_str()
                .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok());
            let Some(at) = parsed else {
                errors.push(FieldError::new(
                    loc.to_vec(),
                    "Debe ser una fecha ISO-8601",
                    "datetime_parsing",
                ));
                return None;
            };
            message.set_field_by_name("seconds", Value::I64(at.timestamp()));
            message.set_field_by_name(
                "nanos",
                Value::I32(i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0)),
            );
        }
        STRUCT => {
            let Json::Object(object) = json else {
                errors.push(FieldError::new(
                    loc.to_vec(),
                    "Debe ser un objeto JSON",
                    "dict_type",
                ));
                return None;
            };
            let value_type =
                descriptor
                    .get_field_by_name("fields")
                    .and_then(|f| match f.kind() {
                        Kind::Message(entry) => match entry.map_entry_value_field().kind() {
                            Kind::Message(value) => Some(value),
                            _ => None,
                        },
                        _ => None,
                    })?;
            let fields = object
                .iter()
                .map(|(k, v)| {
                    (
                        MapKey::String(k.clone()),
                        Value::Message(json_value(&value_type, v)),
                    )
                })
                .collect();
            message.set_field_by_name("fields", Value::Map(fields));
        }
        _ => read_object(&mut message, json, loc, &[], errors),
    }
    Some(Value::Message(message))
}

/// A `google.protobuf.Value` holding any JSON.
fn json_value(value_type: &MessageDescriptor, json: &Json) -> DynamicMessage {
    let mut value = DynamicMessage::new(value_type.clone());
    match json {
        Json::Null => value.set_field_by_name("null_value", Value::EnumNumber(0)),
        Json::Bool(b) => value.set_field_by_name("bool_value", Value::Bool(*b)),
        Json::Number(n) => {
            value.set_field_by_name("number_value", Value::F64(n.as_f64().unwrap_or(0.0)));
        }
        Json::String(s) => value.set_field_by_name("string_value", Value::String(s.clone())),
        Json::Array(items) => {
            if let Some(Kind::Message(list_type)) =
                value_type.get_field_by_name("list_value").map(|f| f.kind())
            {
                let mut list = DynamicMessage::new(list_type);
                let values = items
                    .iter()
                    .map(|item| Value::Message(json_value(value_type, item)))
                    .collect();
                list.set_field_by_name("values", Value::List(values));
                value.set_field_by_name("list_value", Value::Message(list));
            }
        }
        Json::Object(object) => {
            if let Some(Kind::Message(struct_type)) = value_type
                .get_field_by_name("struct_value")
                .map(|f| f.kind())
            {
                let mut inner = DynamicMessage::new(struct_type);
                let fields = object
                    .iter()
                    .map(|(k, v)| {
                        (
                            MapKey::String(k.clone()),
                            Value::Message(json_value(value_type, v)),
                        )
                    })
                    .collect();
                inner.set_field_by_name("fields", Value::Map(fields));
                value.set_field_by_name("struct_value", Value::Message(inner));
            }
        }
    }
    value
}
