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

mod scalar;
mod walk;
mod well_known;

use prost_reflect::{DynamicMessage, FieldDescriptor};
use serde_json::Value as Json;

use crate::error::{FieldError, Loc};
use crate::routes::{BodyRule, Route, is_required};
use walk::{read_object, read_value};

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

fn with(loc: &[Loc], last: Loc) -> Vec<Loc> {
    let mut loc = loc.to_vec();
    loc.push(last);
    loc
}

#[cfg(test)]
mod tests {
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
