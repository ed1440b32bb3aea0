//! The input rules written in the protos, read from their descriptors.
//!
//! Fields carry [protovalidate](https://github.com/bufbuild/protovalidate) annotations
//! (`(buf.validate.field)`: `string.min_len`/`max_len`/`pattern`, `int32`/`int64`
//! `gt`/`gte`/`lt`/`lte`, `repeated.min_items`/`max_items`, `required`) and, for money, the
//! project's `(flightmesh.type.v1.decimal)` rules, which protovalidate has no equivalent for.
//!
//! This module is the one reader of those annotations. `build.rs` includes it to generate each
//! request's `Validate` implementation (so the services enforce exactly what the protos say, with
//! no reflection per request), and the gateway uses it to write the same bounds into OpenAPI.
//! An annotation this reader does not understand is an error, never silently ignored.

use std::borrow::Cow;

use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, Value};

/// The protovalidate extension on `google.protobuf.FieldOptions`.
pub const FIELD_RULES: &str = "buf.validate.field";
/// The project's money rules on `google.protobuf.FieldOptions`.
pub const DECIMAL_RULES: &str = "flightmesh.type.v1.decimal";
/// The proto name of the money type the decimal rules apply to.
pub const DECIMAL_TYPE: &str = "flightmesh.type.v1.Decimal";
/// The pattern that says "not blank": at least one character that is not whitespace, the
/// whitespace being Unicode's `White_Space` (what Rust's `trim` removes), written out: `\s` means
/// something else in each engine that reads the protos' patterns (ASCII in RE2; U+0085 is not
/// whitespace in ECMA-262, U+001C..U+001F are in Python), so a document generator and the
/// services would disagree on it (schemathesis found `"\u{85}"` names: valid in the OpenAPI
/// document, refused by the services).
pub const NOT_BLANK: &str =
    "[^\t-\r \u{85}\u{a0}\u{1680}\u{2000}-\u{200a}\u{2028}\u{2029}\u{202f}\u{205f}\u{3000}]";

/// What one field must satisfy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldRules {
    /// The field must be set (a message field, or a field with presence).
    pub required: bool,
    pub kind: RuleKind,
}

/// The rules of one kind of value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum RuleKind {
    #[default]
    None,
    Text(TextRules),
    Integer(IntegerRules),
    Items(ItemRules),
    Decimal(DecimalRules),
}

/// `buf.validate.StringRules`: lengths count characters (Unicode scalar values), as
/// protovalidate's do; `pattern` is a regular expression searched anywhere in the value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextRules {
    pub min_len: Option<u64>,
    pub max_len: Option<u64>,
    pub pattern: Option<Cow<'static, str>>,
}

/// `buf.validate.Int32Rules` / `Int64Rules` bounds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IntegerRules {
    pub gt: Option<i64>,
    pub gte: Option<i64>,
    pub lt: Option<i64>,
    pub lte: Option<i64>,
}

/// `buf.validate.RepeatedRules` counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ItemRules {
    pub min_items: Option<u64>,
    pub max_items: Option<u64>,
}

/// `flightmesh.type.v1.DecimalRules`: bounds as decimal text, and the most decimal places.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecimalRules {
    pub gt: Option<Cow<'static, str>>,
    pub gte: Option<Cow<'static, str>>,
    pub lte: Option<Cow<'static, str>>,
    pub max_scale: Option<u32>,
}

/// The rules annotated on `field`, `None` when it has none.
///
/// # Errors
/// An annotation this reader does not support (a rule kind, a rule of a supported kind, or rules
/// on a field of the wrong type), described with the field's full name.
pub fn read(field: &FieldDescriptor) -> Result<Option<FieldRules>, String> {
    let pool = field.parent_pool();
    let options = field.options();
    let mut rules = FieldRules::default();
    let mut annotated = false;
    let at = field.full_name();

    if let Some(ext) = pool.get_extension_by_name(FIELD_RULES)
        && options.has_extension(&ext)
    {
        annotated = true;
        let value = options.get_extension(&ext);
        let field_rules = as_message(&value, at)?;
        for (rule, value) in field_rules.fields() {
            match rule.name() {
                "required" => rules.required = value.as_bool() == Some(true),
                "string" => rules.kind = RuleKind::Text(text_rules(as_message(value, at)?, at)?),
                "int32" | "int64" => {
                    rules.kind = RuleKind::Integer(integer_rules(as_message(value, at)?, at)?);
                }
                "repeated" => {
                    rules.kind = RuleKind::Items(item_rules(as_message(value, at)?, at)?);
                }
                other => {
                    return Err(format!(
                        "{at}: buf.validate rule `{other}` is not supported"
                    ));
                }
            }
        }
    }
    if let Some(ext) = pool.get_extension_by_name(DECIMAL_RULES)
        && options.has_extension(&ext)
    {
        annotated = true;
        if !matches!(field.kind(), Kind::Message(m) if m.full_name() == DECIMAL_TYPE) {
            return Err(format!(
                "{at}: decimal rules on a field that is not a {DECIMAL_TYPE}"
            ));
        }
        if rules.kind != RuleKind::None {
            return Err(format!(
                "{at}: decimal rules next to buf.validate type rules"
            ));
        }
        rules.kind = RuleKind::Decimal(decimal_rules(
            as_message(&options.get_extension(&ext), at)?,
            at,
        )?);
    }
    check_kind(field, &rules)?;
    Ok(annotated.then_some(rules))
}

fn check_kind(field: &FieldDescriptor, rules: &FieldRules) -> Result<(), String> {
    let fits = match (&rules.kind, field.kind()) {
        (RuleKind::None | RuleKind::Decimal(_), _) => true,
        (RuleKind::Items(_), _) => field.is_list(),
        (RuleKind::Text(_), Kind::String) => !field.is_list(),
        (RuleKind::Integer(_), Kind::Int32 | Kind::Int64) => !field.is_list(),
        _ => false,
    };
    if fits {
        Ok(())
    } else {
        Err(format!(
            "{}: rules {:?} do not fit a {:?} field",
            field.full_name(),
            rules.kind,
            field.kind()
        ))
    }
}

fn as_message<'a>(value: &'a Value, at: &str) -> Result<&'a DynamicMessage, String> {
    value
        .as_message()
        .ok_or_else(|| format!("{at}: expected a rules message, found {value:?}"))
}

fn unsupported(at: &str, kind: &str, rule: &str) -> String {
    format!("{at}: buf.validate {kind} rule `{rule}` is not supported")
}

/// Reads a rules message into an `R`: `set` stores each rule it knows and answers `false` for any
/// other, whose name is then the error.
fn each_rule<R: Default>(
    message: &DynamicMessage,
    mut set: impl FnMut(&mut R, &str, &Value) -> bool,
) -> Result<R, String> {
    let mut rules = R::default();
    for (rule, value) in message.fields() {
        if !set(&mut rules, rule.name(), value) {
            return Err(rule.name().to_owned());
        }
    }
    Ok(rules)
}

fn text_rules(message: &DynamicMessage, at: &str) -> Result<TextRules, String> {
    each_rule(message, |rules: &mut TextRules, rule, value| {
        match rule {
            "min_len" => rules.min_len = value.as_u64(),
            "max_len" => rules.max_len = value.as_u64(),
            "pattern" => rules.pattern = value.as_str().map(|p| Cow::Owned(p.to_owned())),
            _ => return false,
        }
        true
    })
    .map_err(|other| unsupported(at, "string", &other))
}

fn integer_rules(message: &DynamicMessage, at: &str) -> Result<IntegerRules, String> {
    each_rule(message, |rules: &mut IntegerRules, rule, value| {
        let bound = value.as_i64().or_else(|| value.as_i32().map(i64::from));
        match rule {
            "gt" => rules.gt = bound,
            "gte" => rules.gte = bound,
            "lt" => rules.lt = bound,
            "lte" => rules.lte = bound,
            _ => return false,
        }
        true
    })
    .map_err(|other| unsupported(at, "integer", &other))
}

fn item_rules(message: &DynamicMessage, at: &str) -> Result<ItemRules, String> {
    each_rule(message, |rules: &mut ItemRules, rule, value| {
        match rule {
            "min_items" => rules.min_items = value.as_u64(),
            "max_items" => rules.max_items = value.as_u64(),
            _ => return false,
        }
        true
    })
    .map_err(|other| unsupported(at, "repeated", &other))
}

fn decimal_rules(message: &DynamicMessage, at: &str) -> Result<DecimalRules, String> {
    each_rule(message, |rules: &mut DecimalRules, rule, value| {
        let text = || value.as_str().map(|t| Cow::Owned(t.to_owned()));
        match rule {
            "gt" => rules.gt = text(),
            "gte" => rules.gte = text(),
            "lte" => rules.lte = text(),
            "max_scale" => rules.max_scale = value.as_u32(),
            _ => return false,
        }
        true
    })
    .map_err(|other| format!("{at}: decimal rule `{other}` is not supported"))
}
