//! JSON schemas for messages and fields: inputs inline (as `json_in` reads them), outputs as
//! shared `$ref` components (as `json_out` writes them).

use std::collections::BTreeMap;

use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Value, json};

use super::leading_comment;
use crate::json_in::{DECIMAL, STRUCT, TIMESTAMP};
use crate::openapi_rules::constrain;
use crate::routes::{is_required, may_be_unset};

/// `schema` with the field's proto comment as its description (a `$ref` is wrapped: OpenAPI 3.0
/// ignores the siblings of a `$ref`).
fn described(schema: Value, field: &FieldDescriptor) -> Value {
    let Some(text) = leading_comment(&field.parent_file(), field.path()) else {
        return schema;
    };
    match schema {
        Value::Object(mut map) if !map.contains_key("$ref") => {
            map.insert("description".into(), json!(text));
            Value::Object(map)
        }
        other => json!({"allOf": [other], "description": text}),
    }
}

/// Schema of a scalar kind (and of the well-known messages that are scalars in JSON).
fn scalar_schema(kind: &Kind) -> Value {
    match kind {
        Kind::String => json!({"type": "string"}),
        Kind::Bool => json!({"type": "boolean"}),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            json!({"type": "integer", "format": "int32"})
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            json!({"type": "integer", "format": "int64"})
        }
        Kind::Uint32 | Kind::Fixed32 => json!({"type": "integer", "format": "int32", "minimum": 0}),
        Kind::Uint64 | Kind::Fixed64 => json!({"type": "integer", "format": "int64", "minimum": 0}),
        Kind::Double | Kind::Float => json!({"type": "number"}),
        Kind::Bytes => json!({"type": "string", "format": "byte"}),
        Kind::Enum(e) => {
            json!({"type": "string", "enum": e.values().map(|v| v.name().to_owned()).collect::<Vec<_>>()})
        }
        Kind::Message(m) => match m.full_name() {
            DECIMAL => json!({"type": "number"}),
            TIMESTAMP => json!({"type": "string", "format": "date-time"}),
            STRUCT => json!({"type": "object", "additionalProperties": true}),
            _ => json!({"type": "object"}),
        },
    }
}

/// Schema of a scalar a client sends: as [`scalar_schema`], and text never holds U+0000 (the
/// gateway answers 422: no service can store or look it up).
pub(super) fn input_scalar_schema(kind: &Kind) -> Value {
    let mut schema = scalar_schema(kind);
    if matches!(kind, Kind::String) {
        schema["pattern"] = json!(NO_NUL_PATTERN);
    }
    schema
}

/// Any text without U+0000 (ECMA-262 and Python `re` both read `\u0000`).
const NO_NUL_PATTERN: &str = "^[^\\u0000]*$";

fn is_well_known_scalar(message: &MessageDescriptor) -> bool {
    matches!(message.full_name(), DECIMAL | TIMESTAMP | STRUCT)
}

/// A request message, inlined: required fields are those annotated REQUIRED.
pub(super) fn input_schema(message: &MessageDescriptor, skip: &[u32], depth: usize) -> Value {
    if is_well_known_scalar(message) || depth > 8 {
        return scalar_schema(&Kind::Message(message.clone()));
    }
    let mut properties = serde_json::Map::new();
    let mut required = Vec::new();
    for field in message.fields().filter(|f| !skip.contains(&f.number())) {
        if is_required(&field) {
            required.push(field.name().to_owned());
        }
        let mut schema = input_field_schema(&field, depth + 1);
        constrain(&mut schema, &field);
        properties.insert(field.name().to_owned(), described(schema, &field));
    }
    let mut schema = json!({"type": "object", "properties": properties});
    if !required.is_empty() {
        schema["required"] = json!(required);
    }
    schema
}

pub(super) fn input_field_schema(field: &FieldDescriptor, depth: usize) -> Value {
    let single = match field.kind() {
        Kind::Message(m) if !field.is_map() => input_schema(&m, &[], depth),
        Kind::Message(entry) if field.is_map() => {
            return json!({"type": "object", "additionalProperties": input_single(&entry.map_entry_value_field().kind(), depth)});
        }
        other => input_scalar_schema(&other),
    };
    if field.is_list() {
        json!({"type": "array", "items": single})
    } else {
        single
    }
}

fn input_single(kind: &Kind, depth: usize) -> Value {
    match kind {
        Kind::Message(m) => input_schema(m, &[], depth + 1),
        other => input_scalar_schema(other),
    }
}

/// A `$ref` to the response schema of `message`, registering it (and what it uses).
pub(super) fn output_ref(
    message: &MessageDescriptor,
    schemas: &mut BTreeMap<String, Value>,
) -> Value {
    if is_well_known_scalar(message) {
        return scalar_schema(&Kind::Message(message.clone()));
    }
    let name = message.full_name().to_owned();
    if !schemas.contains_key(&name) {
        // Placeholder first: recursive messages terminate.
        schemas.insert(name.clone(), Value::Null);
        let mut properties = serde_json::Map::new();
        let mut required = Vec::new();
        for field in message.fields() {
            // The gateway writes every field; unset optional/message fields are null.
            required.push(field.name().to_owned());
            properties.insert(
                field.name().to_owned(),
                described(output_field_schema(&field, schemas), &field),
            );
        }
        let mut schema = json!({"type": "object", "required": required, "properties": properties});
        if let Some(text) = leading_comment(&message.parent_file(), message.path()) {
            schema["description"] = json!(text);
        }
        schemas.insert(name.clone(), schema);
    }
    json!({"$ref": format!("#/components/schemas/{name}")})
}

pub(super) fn output_field_schema(
    field: &FieldDescriptor,
    schemas: &mut BTreeMap<String, Value>,
) -> Value {
    let single = |kind: Kind, schemas: &mut BTreeMap<String, Value>| match kind {
        Kind::Message(m) => output_ref(&m, schemas),
        other => scalar_schema(&other),
    };
    if field.is_map() {
        let Kind::Message(entry) = field.kind() else {
            return json!({"type": "object"});
        };
        return json!({"type": "object", "additionalProperties": single(entry.map_entry_value_field().kind(), schemas)});
    }
    if field.is_list() {
        return json!({"type": "array", "items": single(field.kind(), schemas)});
    }
    let schema = single(field.kind(), schemas);
    if may_be_unset(field) {
        // OpenAPI 3.0 cannot put `nullable` next to a $ref; wrap it.
        if schema.get("$ref").is_some() {
            json!({"allOf": [schema], "nullable": true})
        } else {
            let mut schema = schema;
            schema["nullable"] = json!(true);
            schema
        }
    } else {
        schema
    }
}
