//! `serde_json::Value` ⇄ `google.protobuf.Struct`/`Value`, for fields that carry free-form JSON
//! (event payloads, notifications, dead letters).

use prost_types::value::Kind;
use prost_types::{ListValue, Struct, Value};

/// A JSON value as a protobuf `Value`. Numbers become doubles (as `Struct` requires).
#[must_use]
pub fn to_value(json: &serde_json::Value) -> Value {
    let kind = match json {
        serde_json::Value::Null => Kind::NullValue(0),
        serde_json::Value::Bool(b) => Kind::BoolValue(*b),
        serde_json::Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        serde_json::Value::String(s) => Kind::StringValue(s.clone()),
        serde_json::Value::Array(items) => Kind::ListValue(ListValue {
            values: items.iter().map(to_value).collect(),
        }),
        serde_json::Value::Object(_) => Kind::StructValue(to_struct(json)),
    };
    Value { kind: Some(kind) }
}

/// A JSON object as a protobuf `Struct`; anything else becomes `{"value": …}`.
#[must_use]
pub fn to_struct(json: &serde_json::Value) -> Struct {
    match json {
        serde_json::Value::Object(map) => Struct {
            fields: map.iter().map(|(k, v)| (k.clone(), to_value(v))).collect(),
        },
        other => Struct {
            fields: [("value".to_owned(), to_value(other))]
                .into_iter()
                .collect(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_nested_json() {
        let json = serde_json::json!({"a": 1, "b": [true, null, "x"], "c": {"d": 2.5}});
        let s = to_struct(&json);
        assert_eq!(s.fields["a"].kind, Some(Kind::NumberValue(1.0)));
        let Some(Kind::ListValue(list)) = &s.fields["b"].kind else {
            panic!()
        };
        assert_eq!(list.values.len(), 3);
        let Some(Kind::StructValue(c)) = &s.fields["c"].kind else {
            panic!()
        };
        assert_eq!(c.fields["d"].kind, Some(Kind::NumberValue(2.5)));
    }
}
