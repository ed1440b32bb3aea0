//! Unit tests of `validate`.

use std::borrow::Cow;

use prost_reflect::DescriptorPool;

use super::*;
use crate::rules::{RuleKind, read};

fn text_rules(min: Option<u64>, max: u64, pattern: Option<&'static str>) -> TextRules {
    TextRules {
        min_len: min,
        max_len: Some(max),
        pattern: pattern.map(Cow::Borrowed),
    }
}

fn one(check: impl FnOnce(&mut Violations)) -> Option<String> {
    let mut v = Violations::default();
    check(&mut v);
    assert!(v.0.len() <= 1, "one message per field: {v:?}");
    v.0.pop().map(|(_, m)| m)
}

#[test]
fn text_messages_are_the_contracts() {
    let not_blank = text_rules(None, 5, Some(NOT_BLANK));
    let regex = compile(NOT_BLANK);
    let check =
        |value: Option<&str>| one(|v| v.text("name", value, false, &not_blank, Some(&regex)));
    // Whitespace is Unicode's White_Space (what `trim` removes), in every engine alike.
    for blank in [" \t", "", "\u{85}", "\u{a0}\u{3000}", "\u{2028}\r\n"] {
        assert_eq!(blank.trim(), "");
        assert_eq!(
            check(Some(blank)).as_deref(),
            Some("name no puede estar vacio")
        );
    }
    assert_eq!(
        check(Some("ñandúes")).as_deref(),
        Some("name no puede superar 5 caracteres")
    );
    for (value, why) in [
        (Some("\u{1c}"), "U+001C is not White_Space"),
        (Some("ñandú"), "characters, not bytes"),
        (None, "an unset optional field has no rules"),
    ] {
        assert_eq!(check(value), None, "{why}");
    }

    let password = text_rules(Some(6), 1024, None);
    assert_eq!(
        one(|v| v.text("password", Some("12345"), true, &password, None)).as_deref(),
        Some("password debe tener al menos 6 caracteres")
    );
    let email = compile("^[^@]+@[^@]+$");
    let rules = text_rules(None, 254, Some("^[^@]+@[^@]+$"));
    assert_eq!(
        one(|v| v.text("email", Some("no-at"), true, &rules, Some(&email))).as_deref(),
        Some("email debe ser valido")
    );
    assert_eq!(
        one(|v| v.text("email", None, true, &rules, Some(&email))).as_deref(),
        Some("email es obligatorio")
    );
}

#[test]
fn integer_messages_are_the_contracts() {
    let age = IntegerRules {
        gte: Some(0),
        lte: Some(150),
        ..IntegerRules::default()
    };
    for bad in [-1, 151] {
        assert_eq!(
            one(|v| v.integer("passenger_age", Some(bad), false, &age)).as_deref(),
            Some("passenger_age debe estar entre 0 y 150")
        );
    }
    assert_eq!(
        one(|v| v.integer("passenger_age", Some(0), false, &age)),
        None
    );
    let capacity = IntegerRules {
        gt: Some(0),
        lte: Some(100_000),
        ..IntegerRules::default()
    };
    assert_eq!(
        one(|v| v.integer("capacity", Some(0), false, &capacity)).as_deref(),
        Some("capacity debe ser mayor a 0")
    );
    assert_eq!(
        one(|v| v.integer("capacity", Some(100_001), false, &capacity)).as_deref(),
        Some("capacity no puede superar 100000")
    );
    let skip = IntegerRules {
        gte: Some(0),
        ..IntegerRules::default()
    };
    assert_eq!(
        one(|v| v.integer("skip", Some(-1), false, &skip)).as_deref(),
        Some("skip no puede ser negativo")
    );
}

#[test]
fn decimal_messages_are_the_contracts() {
    let tax = DecimalRules {
        gte: Some(Cow::Borrowed("0")),
        lte: Some(Cow::Borrowed("9999999999.99")),
        max_scale: Some(2),
        gt: None,
    };
    let dec = |text: &str| PbDecimal { value: text.into() };
    let check = |text: &str| one(|v| v.decimal("tax_amount", Some(&dec(text)), true, &tax));
    for (text, message) in [
        ("-0.01", "tax_amount no puede ser negativo"),
        ("1.005", "tax_amount admite como maximo 2 decimales"),
        ("10000000000", "tax_amount no puede superar 9999999999.99"),
        ("abc", "tax_amount debe ser un numero"),
    ] {
        assert_eq!(check(text).as_deref(), Some(message), "{text:?}");
    }
    assert_eq!(check("-0"), None);
    assert_eq!(check("1.50"), None, "trailing zeros are not decimals");
    assert_eq!(
        one(|v| v.decimal("tax_amount", None, true, &tax)).as_deref(),
        Some("tax_amount es obligatorio")
    );
    let price = DecimalRules {
        gt: Some(Cow::Borrowed("0")),
        ..tax.clone()
    };
    assert_eq!(
        one(|v| v.decimal("base_price", Some(&dec("0")), true, &price)).as_deref(),
        Some("base_price debe ser mayor a 0")
    );
}

#[test]
fn item_messages() {
    let rules = ItemRules {
        min_items: Some(1),
        max_items: Some(3),
    };
    assert_eq!(
        one(|v| v.items("vector", 0, &rules)).as_deref(),
        Some("vector no puede estar vacio")
    );
    assert_eq!(
        one(|v| v.items("vector", 4, &rules)).as_deref(),
        Some("vector admite como maximo 3 elementos")
    );
    assert_eq!(one(|v| v.items("vector", 3, &rules)), None);
}

/// Every annotation in the protos is one this crate enforces: its kind is supported, its
/// patterns compile and its decimal bounds parse.
#[test]
fn every_rule_in_the_protos_is_enforceable() {
    let pool = DescriptorPool::decode(crate::FILE_DESCRIPTOR_SET).unwrap();
    let mut annotated = 0;
    for message in pool.all_messages() {
        if !message.package_name().starts_with("flightmesh.") {
            continue;
        }
        for field in message.fields() {
            let Some(rules) = read(&field).unwrap() else {
                continue;
            };
            annotated += 1;
            match rules.kind {
                RuleKind::Text(text) => {
                    if let Some(pattern) = text.pattern {
                        let _ = compile(&pattern);
                    }
                }
                RuleKind::Decimal(decimal) => {
                    for bound in [decimal.gt, decimal.gte, decimal.lte].into_iter().flatten() {
                        Decimal::from_str(&bound).unwrap();
                    }
                }
                RuleKind::Integer(_) | RuleKind::Items(_) | RuleKind::None => {}
            }
        }
    }
    assert!(annotated >= 30, "only {annotated} annotated fields");
}

/// The generated implementations call these checks with the protos' rules.
#[test]
fn generated_rules_are_the_protos() {
    use crate::{bookings, flights, identity};
    let booking = bookings::CreateBookingRequest {
        passenger_name: "  ".into(),
        passenger_age: 151,
        has_pet: false,
        flight_id: 1,
    };
    assert_eq!(
        booking.validate().as_slice(),
        [
            (
                "passenger_name",
                "passenger_name no puede estar vacio".to_owned()
            ),
            (
                "passenger_age",
                "passenger_age debe estar entre 0 y 150".to_owned()
            ),
        ]
    );
    let flight = flights::CreateFlightRequest {
        flight_number: "CT-123".into(),
        origin: "Bogota".into(),
        base_price: None,
        destination_id: 1,
        capacity: Some(0),
    };
    assert_eq!(
        flight.validate().as_slice(),
        [
            ("base_price", "base_price es obligatorio".to_owned()),
            ("capacity", "capacity debe ser mayor a 0".to_owned()),
        ]
    );
    let register = identity::RegisterRequest {
        email: "ana@example".into(),
        password: "secret-enough".into(),
        full_name: "Ana".into(),
    };
    assert_eq!(
        register.validate().as_slice(),
        [("email", "email debe ser valido".to_owned())]
    );
    let list = flights::ListFlightsRequest {
        skip: Some(-1),
        limit: None,
    };
    assert_eq!(
        list.validate().as_slice(),
        [("skip", "skip no puede ser negativo".to_owned())]
    );
}
