//! HTTP request → request message: the JSON body, query string and path variables are read
//! into a `DynamicMessage` with the proto field names, and every problem becomes a FastAPI-style
//! field error (`loc`, `msg`, `type`) rather than a 500.
//!
//! Mapping rules beyond proto3 JSON, chosen for the existing clients:
//! - `flightmesh.type.v1.Decimal` is a JSON number (or numeric string) in, exact text inside;
//! - integers also accept integral floats (`25.0`) and digit strings, as pydantic did;
//! - `null` or an absent key leaves the field unset; unknown keys are ignored;
//! - fields annotated `(google.api.field_behavior) = REQUIRED` must be present;
//! - text never contains U+0000, which no service can store (422).

use std::collections::HashMap;

use prost_reflect::{
    DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, ReflectMessage, Value,
};
use serde_json::Value as Json;

use crate::error::{FieldError, Loc};
use crate::routes::{BodyRule, Route, is_required};

/// Proto full name of the exact decimal type.
pub const DECIMAL: &str = "flightmesh.type.v1.Decimal";
/// Proto full name of timestamps (RFC 3339 strings in JSON).
pub const TIMESTAMP: &str = "google.protobuf.Timestamp";
/// Proto full name of JSON objects.
pub const STRUCT: &str = "google.protobuf.Struct";

/// The raw parts of an HTTP request that can fill the request message.
pub struct RequestParts<'a> {
    /// Path variables by name (already percent-decoded).
    pub path: &'a [(String, String)],
    /// The raw query string, if any.
    pub query: Option<&'a str>,
    /// The raw body.
    pub body: &'a [u8],
}

/// Builds the request message of `route`, or every field error found.
pub fn request_message(
    route: &Route,
    parts: &RequestParts<'_>,
) -> Result<DynamicMessage, Vec<FieldError>> {
    let input = route.method.input();
    let mut message = DynamicMessage::new(input.clone());
    let mut errors = Vec::new();

    match &route.body {
        BodyRule::None => {}
        BodyRule::Whole => {
            if let Some(body) = parse_body(parts.body, &mut errors) {
                let skip: Vec<u32> = route
                    .path_fields
                    .iter()
                    .map(FieldDescriptor::number)
                    .collect();
                read_object(&mut message, &body, &[Loc::key("body")], &skip, &mut errors);
            }
        }
        BodyRule::Field(field) => {
            if let Some(body) = parse_body(parts.body, &mut errors)
                && let Some(value) = read_value(field, &body, &[Loc::key("body")], &mut errors)
            {
                message.set_field(field, value);
            }
        }
    }

    for field in route.query_fields() {
        let values: Vec<String> = parts
            .query
            .map(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .filter(|(key, _)| key == field.name() || key == field.json_name())
                    .map(|(_, value)| value.into_owned())
                    .collect()
            })
            .unwrap_or_default();
        let loc = [Loc::key("query"), Loc::key(field.name())];
        if values.is_empty() {
            if is_required(&field) {
                errors.push(FieldError::missing(&loc));
            }
            continue;
        }
        let json = if field.is_list() {
            Json::Array(values.into_iter().map(Json::String).collect())
        } else {
            // A repeated parameter for a single field: the last one wins.
            Json::String(values.into_iter().last().unwrap_or_default())
        };
        if let Some(value) = read_value(&field, &json, &loc[..1], &mut errors) {
            message.set_field(&field, value);
        }
    }

    for field in &route.path_fields {
        let raw = parts
            .path
            .iter()
            .find(|(name, _)| name == field.name())
            .map(|(_, value)| value.clone())
            .unwrap_or_default();
        if let Some(value) = read_value(field, &Json::String(raw), &[Loc::key("path")], &mut errors)
        {
            message.set_field(field, value);
        }
    }

    if errors.is_empty() {
        Ok(message)
    } else {
        Err(errors)
    }
}

/// The body as JSON; an empty body reads as `{}` (required fields then report themselves).
fn parse_body(body: &[u8], errors: &mut Vec<FieldError>) -> Option<Json> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Some(Json::Object(serde_json::Map::new()));
    }
    match serde_json::from_slice(body) {
        Ok(json) => Some(json),
        Err(err) => {
            errors.push(FieldError::new(
                vec![Loc::key("body"), Loc::Index(err.column().saturating_sub(1))],
                format!("JSON mal formado: {err}"),
                "json_invalid",
            ));
            None
        }
    }
}

/// Fills `message` from a JSON object, skipping the field numbers in `skip` (path-bound).
fn read_object(
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
fn read_value(
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

/// A single (non-repeated) value of `kind` from JSON.
fn read_single(
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

/// A message value: the well-known shapes first, then a plain nested object.
fn read_message(
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
fn number_text(json: &Json) -> Option<String> {
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

fn with(loc: &[Loc], last: Loc) -> Vec<Loc> {
    let mut loc = loc.to_vec();
    loc.push(last);
    loc
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

    /// Property tests of the whole JSON → proto mapping, over every annotated route.
    mod fuzz {
        use std::sync::LazyLock;

        use proptest::prelude::*;
        use prost_reflect::{DescriptorPool, DynamicMessage, Kind, ReflectMessage, Value};
        use serde_json::{Value as Json, json};

        use super::super::{DECIMAL, RequestParts, request_message};
        use crate::routes::{BodyRule, Route, routes};

        static ROUTES: LazyLock<Vec<Route>> = LazyLock::new(|| {
            routes(&DescriptorPool::decode(flightmesh_proto::FILE_DESCRIPTOR_SET).unwrap()).unwrap()
        });

        /// Any JSON, with the awkward parts likely: control characters and U+0000 in text,
        /// huge and fractional numbers, deep nesting.
        fn any_json() -> impl Strategy<Value = Json> {
            let leaf = prop_oneof![
                Just(Json::Null),
                any::<bool>().prop_map(Json::Bool),
                any::<i64>().prop_map(Json::from),
                any::<u64>().prop_map(Json::from),
                any::<f64>().prop_map(Json::from),
                "\\PC{0,12}".prop_map(Json::String),
                "[\\x00-\\x1f0-9a-z.e+-]{0,8}".prop_map(Json::String),
            ];
            leaf.prop_recursive(4, 32, 6, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4).prop_map(Json::Array),
                    prop::collection::btree_map("[a-z_]{1,16}", inner, 0..6)
                        .prop_map(|m| Json::Object(m.into_iter().collect())),
                ]
            })
        }

        /// A JSON object whose keys are mostly the route's real field names.
        fn body_for(route: &Route) -> impl Strategy<Value = Json> + use<> {
            let mut names: Vec<String> = route
                .method
                .input()
                .fields()
                .map(|f| f.name().to_owned())
                .collect();
            if names.is_empty() {
                names.push("unknown".to_owned());
            }
            let key = prop_oneof![
                4 => proptest::sample::select(names),
                1 => "[a-z_]{1,12}".prop_map(String::from),
            ];
            prop::collection::btree_map(key, any_json(), 0..8)
                .prop_map(|m| Json::Object(m.into_iter().collect()))
        }

        fn route_index() -> impl Strategy<Value = usize> {
            0..ROUTES.len()
        }

        /// Indexes of the routes whose body is the whole request message.
        fn body_route_index() -> impl Strategy<Value = usize> {
            let whole: Vec<usize> = (0..ROUTES.len())
                .filter(|&i| matches!(ROUTES[i].body, BodyRule::Whole))
                .collect();
            proptest::sample::select(whole)
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            /// Whatever arrives, the answer is a message or field errors that say where — never a
            /// panic — and no accepted text holds U+0000.
            #[test]
            fn any_request_is_a_message_or_located_errors(
                (index, body) in route_index().prop_flat_map(|i| (Just(i), body_for(&ROUTES[i]))),
                query in "[a-z_]{1,8}=[%0-9A-Za-z.-]{0,10}(&[a-z_]{1,8}=[%0-9A-Za-z.-]{0,10}){0,3}",
                path_value in "\\PC{0,10}",
                raw_body in prop::option::of(prop::collection::vec(any::<u8>(), 0..24)),
            ) {
                let route = &ROUTES[index];
                let path: Vec<(String, String)> =
                    route.path_fields.iter().map(|f| (f.name().to_owned(), path_value.clone())).collect();
                let text = body.to_string();
                let body_bytes = raw_body.unwrap_or_else(|| text.into_bytes());
                let parts = RequestParts { path: &path, query: Some(&query), body: &body_bytes };
                match request_message(route, &parts) {
                    Ok(message) => prop_assert!(no_nul(&message), "{message:?}"),
                    Err(errors) => {
                        prop_assert!(!errors.is_empty());
                        for error in errors {
                            let root = match error.loc.first() {
                                Some(crate::error::Loc::Key(key)) => key.clone(),
                                _ => String::new(),
                            };
                            prop_assert!(["body", "query", "path"].contains(&root.as_str()), "{error:?}");
                            prop_assert!(!error.msg.is_empty(), "{error:?}");
                        }
                    }
                }
            }

            /// Valid scalar values for every field of every `body: "*"` route come out in the
            /// message exactly as sent: text, integers at their bounds, booleans, and money as
            /// the digits the client wrote.
            #[test]
            fn valid_bodies_arrive_exactly(
                index in body_route_index(),
                text in "[^\\x00]{0,20}",
                int32 in any::<i32>(),
                int64 in any::<i64>(),
                flag in any::<bool>(),
                units in 0u64..10_000_000_000,
                cents in 0u32..100,
            ) {
                let route = &ROUTES[index];
                let money = format!("{units}.{cents:02}");
                let mut body = serde_json::Map::new();
                for field in route.method.input().fields() {
                    if field.is_list() || field.is_map() || route.path_fields.iter().any(|p| p.number() == field.number()) {
                        continue;
                    }
                    let value = match field.kind() {
                        Kind::String => json!(text),
                        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => json!(int32),
                        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => json!(int64),
                        Kind::Bool => json!(flag),
                        Kind::Message(m) if m.full_name() == DECIMAL => {
                            serde_json::from_str::<Json>(&money).unwrap()
                        }
                        _ => continue,
                    };
                    body.insert(field.name().to_owned(), value);
                }
                let bytes = Json::Object(body.clone()).to_string().into_bytes();
                let path: Vec<(String, String)> =
                    route.path_fields.iter().map(|f| (f.name().to_owned(), "1".to_owned())).collect();
                let message = request_message(route, &RequestParts { path: &path, query: None, body: &bytes })
                    .map_err(|e| TestCaseError::fail(format!("{}: {e:?}", route.template)))?;
                for (name, sent) in &body {
                    let field = message.descriptor().get_field_by_name(name).unwrap();
                    let got = message.get_field(&field);
                    match (field.kind(), got.as_ref()) {
                        (Kind::String, Value::String(s)) => prop_assert_eq!(s, &text),
                        (Kind::Int32 | Kind::Sint32 | Kind::Sfixed32, Value::I32(n)) => prop_assert_eq!(*n, int32),
                        (Kind::Int64 | Kind::Sint64 | Kind::Sfixed64, Value::I64(n)) => prop_assert_eq!(*n, int64),
                        (Kind::Bool, Value::Bool(b)) => prop_assert_eq!(*b, flag),
                        (Kind::Message(_), Value::Message(m)) => {
                            let digits = m.get_field_by_name("value").unwrap();
                            // The number the client wrote, digit for digit (trailing zeros of
                            // the fraction do not change it).
                            prop_assert_eq!(normalized(digits.as_str().unwrap()), normalized(&money), "{}", sent);
                        }
                        (kind, value) => prop_assert!(false, "{name}: {kind:?} read as {value:?}"),
                    }
                }
            }
        }

        fn normalized(number: &str) -> &str {
            if number.contains('.') {
                number.trim_end_matches('0').trim_end_matches('.')
            } else {
                number
            }
        }

        fn no_nul(message: &DynamicMessage) -> bool {
            message.fields().all(|(_, value)| match value {
                Value::String(s) => !s.contains('\0'),
                Value::Message(m) => no_nul(m),
                Value::List(items) => items.iter().all(|v| match v {
                    Value::String(s) => !s.contains('\0'),
                    Value::Message(m) => no_nul(m),
                    _ => true,
                }),
                _ => true,
            })
        }
    }
}
