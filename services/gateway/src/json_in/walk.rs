//! Walking the shape of a message: an object's fields, and a field's list, map or single value
//! (each item then read by [`read_single`]).

use std::collections::HashMap;

use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MapKey, ReflectMessage, Value};
use serde_json::Value as Json;

use super::scalar::read_single;
use super::with;
use crate::error::{FieldError, Loc};
use crate::routes::is_required;

/// Fills `message` from a JSON object, skipping the field numbers in `skip` (path-bound).
pub(super) fn read_object(
    message: &mut DynamicMessage,
    json: &Json,
    loc: &[Loc],
    skip: &[u32],
    errors: &mut Vec<FieldError>,
) {
    let Json::Object(object) = json else {
        errors.push(FieldError::new(
            loc.to_vec(),
            "Debe ser un objeto JSON",
            "model_attributes_type",
        ));
        return;
    };
    let descriptor = message.descriptor();
    for field in descriptor.fields() {
        if skip.contains(&field.number()) {
            continue;
        }
        let value = object
            .get(field.name())
            .or_else(|| object.get(field.json_name()))
            .filter(|v| !v.is_null());
        let Some(value) = value else {
            if is_required(&field) {
                errors.push(FieldError::missing(&with(loc, Loc::key(field.name()))));
            }
            continue;
        };
        if let Some(value) = read_value(&field, value, loc, errors) {
            message.set_field(&field, value);
        }
    }
}

/// One field's value (list, map or single) from JSON; `loc` is the parent's location.
pub(super) fn read_value(
    field: &FieldDescriptor,
    json: &Json,
    loc: &[Loc],
    errors: &mut Vec<FieldError>,
) -> Option<Value> {
    let loc = with(loc, Loc::key(field.name()));
    if field.is_map() {
        let Json::Object(object) = json else {
            errors.push(FieldError::new(loc, "Debe ser un objeto JSON", "dict_type"));
            return None;
        };
        let Kind::Message(entry) = field.kind() else {
            return None;
        };
        let key_field = entry.map_entry_key_field();
        let value_field = entry.map_entry_value_field();
        let mut map = HashMap::new();
        for (key, value) in object {
            let item_loc = with(&loc, Loc::key(key));
            let key = read_single(
                &key_field.kind(),
                &Json::String(key.clone()),
                &item_loc,
                errors,
            )
            .and_then(map_key);
            let value = read_single(&value_field.kind(), value, &item_loc, errors);
            if let (Some(key), Some(value)) = (key, value) {
                map.insert(key, value);
            }
        }
        return Some(Value::Map(map));
    }
    if field.is_list() {
        let Json::Array(items) = json else {
            errors.push(FieldError::new(loc, "Debe ser una lista", "list_type"));
            return None;
        };
        let kind = field.kind();
        let values = items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| read_single(&kind, item, &with(&loc, Loc::Index(i)), errors))
            .collect();
        return Some(Value::List(values));
    }
    read_single(&field.kind(), json, &loc, errors)
}

fn map_key(value: Value) -> Option<MapKey> {
    Some(match value {
        Value::String(s) => MapKey::String(s),
        Value::I32(n) => MapKey::I32(n),
        Value::I64(n) => MapKey::I64(n),
        Value::U32(n) => MapKey::U32(n),
        Value::U64(n) => MapKey::U64(n),
        Value::Bool(b) => MapKey::Bool(b),
        _ => return None,
    })
}
