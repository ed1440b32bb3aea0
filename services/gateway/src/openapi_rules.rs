//! The protos' input rules (`buf.validate`, and the decimal rules of money: see
//! `flightmesh_proto::rules`) as the JSON Schema keywords of the OpenAPI document.

use flightmesh_proto::rules::{self, RuleKind};
use prost_reflect::FieldDescriptor;
use serde_json::{Value, json};

/// Adds the rules the protos write for `field` (`buf.validate`, and the decimal rules of money)
/// to its schema, as the JSON Schema keywords that say the same: what the services enforce is
/// what clients, generators and schemathesis read.
pub(crate) fn constrain(schema: &mut Value, field: &FieldDescriptor) {
    // The rules were read (and any unsupported one refused) when the crate was built.
    let Ok(Some(rules)) = rules::read(field) else {
        return;
    };
    let Some(map) = schema.as_object_mut() else {
        return;
    };
    match rules.kind {
        RuleKind::Text(text) => {
            if let Some(min) = text.min_len {
                map.insert("minLength".into(), json!(min));
            }
            if let Some(max) = text.max_len {
                map.insert("maxLength".into(), json!(max));
            }
            if let Some(pattern) = text.pattern {
                // One `pattern` per schema: the proto's takes the place, and the one the text
                // already had (no U+0000) moves into `allOf` (both must match).
                if let Some(before) = map.insert("pattern".into(), json!(pattern)) {
                    map.insert("allOf".into(), json!([{ "pattern": before }]));
                }
            }
        }
        RuleKind::Integer(bounds) => {
            number_bounds(map, bounds.gt.map(Value::from), bounds.gte.map(Value::from));
            if let Some(lt) = bounds.lt {
                map.insert("maximum".into(), json!(lt));
                map.insert("exclusiveMaximum".into(), json!(true));
            }
            if let Some(lte) = bounds.lte {
                map.insert("maximum".into(), json!(lte));
            }
        }
        RuleKind::Decimal(decimal) => {
            let number = |text: Option<std::borrow::Cow<'static, str>>| {
                text.and_then(|t| serde_json::from_str::<Value>(&t).ok())
            };
            number_bounds(map, number(decimal.gt), number(decimal.gte));
            if let Some(lte) = number(decimal.lte) {
                map.insert("maximum".into(), lte);
            }
            if let Some(scale) = decimal.max_scale {
                // 10^-scale, written as decimal text (0.01), not computed in floating point.
                let step = format!("0.{}1", "0".repeat(scale.saturating_sub(1) as usize));
                let step = if scale == 0 { "1".to_owned() } else { step };
                if let Ok(step) = serde_json::from_str::<Value>(&step) {
                    map.insert("multipleOf".into(), step);
                }
            }
        }
        RuleKind::Items(items) => {
            if let Some(min) = items.min_items {
                map.insert("minItems".into(), json!(min));
            }
            if let Some(max) = items.max_items {
                map.insert("maxItems".into(), json!(max));
            }
        }
        RuleKind::None => {}
    }
}

/// `minimum` (with OpenAPI 3.0's boolean `exclusiveMinimum` for a strict bound).
fn number_bounds(map: &mut serde_json::Map<String, Value>, gt: Option<Value>, gte: Option<Value>) {
    if let Some(gt) = gt {
        map.insert("minimum".into(), gt);
        map.insert("exclusiveMinimum".into(), json!(true));
    }
    if let Some(gte) = gte {
        map.insert("minimum".into(), gte);
    }
}
