//! Unit tests of `apply`.

use flightmesh_proto::types::Decimal as PbDecimal;

use super::*;

fn snapshot(age: i32, pet: bool) -> BookingSnapshot {
    BookingSnapshot {
        booking_id: 7,
        passenger_name: "Ana".into(),
        passenger_age: age,
        has_pet: pet,
        total_price: Some(PbDecimal {
            value: "950.00".into(),
        }),
        flight_number: "CT-1".into(),
        destination_name: "Cartagena".into(),
        ..Default::default()
    }
}

#[test]
fn an_infant_with_a_pet_touches_every_statistic() {
    let plan = snapshot_plan(&snapshot(8, true), true, true, None).unwrap();
    let keys: Vec<_> = plan.ops.iter().map(|(_, k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "stats:total_revenue",
            "stats:total_revenue_cents",
            "stats:destination:Cartagena",
            "stats:destination_names",
            "stats:total_pet_bookings",
            "stats:total_infant_count",
            "stats:total_candy_cost",
            "stats:candy_log_count",
            "logs:candy_distribution",
            "logs:notifications",
            "stats:notifications_sent",
        ]
    );
    assert_eq!(plan.ops[0].2, "950.00");
    assert_eq!(plan.ops[1].2, "95000");
    assert_eq!(
        plan.ops[7],
        (
            Op::CountEntry,
            "stats:candy_log_count".to_owned(),
            "logs:candy_distribution".to_owned()
        )
    );
    assert_eq!(plan.ops[8].2, "Reserva 7: Dulce entregado a Ana");
}

#[test]
fn a_cancellation_applies_the_opposite_amounts() {
    let plan = snapshot_plan(&snapshot(8, false), false, false, None).unwrap();
    let ops: Vec<_> = plan
        .ops
        .iter()
        .map(|(_, k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        ops,
        [
            ("stats:total_revenue", "-950.00"),
            ("stats:total_revenue_cents", "-95000"),
            ("stats:destination:Cartagena", "-1"),
            ("stats:destination_names", "Cartagena"),
            ("stats:total_infant_count", "-1"),
            ("stats:total_candy_cost", "-5.0"),
            ("stats:candy_log_count", "logs:candy_distribution"),
            (
                "logs:candy_distribution",
                "Reserva 7: Dulce cancelado para Ana"
            ),
        ]
    );
    assert_eq!(plan.event_type, BOOKING_CANCELLED);
}

#[test]
fn adults_get_no_candy_and_bad_events_are_poison() {
    let plan = snapshot_plan(&snapshot(12, false), true, false, None).unwrap();
    assert!(
        plan.ops
            .iter()
            .all(|(_, k, _)| !k.contains("candy") && !k.contains("infant"))
    );
    let mut bad = snapshot(30, false);
    bad.total_price = None;
    assert!(snapshot_plan(&bad, true, false, None).is_err());
    let event = BookingEvent {
        event_type: "booking.exploded".into(),
        ..Default::default()
    };
    assert!(booking_plan(&event, true).is_err());
}

fn priced(total: &str) -> BookingSnapshot {
    BookingSnapshot {
        total_price: Some(PbDecimal {
            value: total.into(),
        }),
        ..snapshot(30, false)
    }
}

#[test]
fn money_is_scaled_to_cents_with_checked_arithmetic() {
    assert_eq!(price_cents("950.00".parse().unwrap()), Ok(95_000));
    assert_eq!(price_cents("18.01".parse().unwrap()), Ok(1_801));
    assert_eq!(price_cents("18.004".parse().unwrap()), Ok(1_800));
    assert_eq!(price_cents(Decimal::ZERO), Ok(0));
    assert_eq!(MAX_TOTAL_PRICE.to_string(), "9999999999.99");
    assert_eq!(price_cents(MAX_TOTAL_PRICE), Ok(999_999_999_999));
    // 1e28 × 100 overflows rust_decimal (its `*` would panic): poison instead.
    for bad in [
        "10000000000000000000000000000",
        "79228162514264337593543950335",
        "10000000000.00",
        "-0.01",
    ] {
        let poison = snapshot_plan(&priced(bad), true, true, None).unwrap_err();
        assert!(poison.0.contains("total_price"), "{bad}: {poison}");
    }
    assert_eq!(
        Decimal::MAX.checked_mul(Decimal::ONE_HUNDRED),
        None,
        "the overflow the old code panicked on"
    );
}

#[test]
fn entity_ids_are_bounded_and_shard_their_bitmaps() {
    assert_eq!(
        FactBit::of(1),
        FactBit {
            block: 0,
            offset: 1
        }
    );
    assert_eq!(
        FactBit::of((1 << 20) - 1),
        FactBit {
            block: 0,
            offset: 1_048_575
        }
    );
    assert_eq!(
        FactBit::of(1 << 20),
        FactBit {
            block: 1,
            offset: 0
        }
    );
    assert_eq!(
        FactBit::of(MAX_ENTITY_ID),
        FactBit {
            block: (1 << 28) - 1,
            offset: 1_048_575
        }
    );
    // Whatever the id, a shard's bitmap stays within 2^20 bits (128 KiB).
    assert!((1..=MAX_ENTITY_ID).step_by(1 << 40).all(|id| {
        let bit = FactBit::of(id);
        (0..1 << 20).contains(&bit.offset) && (bit.block << 20) + bit.offset == id
    }));
    assert_eq!(entity_id("booking", MAX_ENTITY_ID), Ok(MAX_ENTITY_ID));
    for bad in [
        0,
        -5,
        MAX_ENTITY_ID + 1,
        9_000_000_000_000_000,
        i64::MAX,
        i64::MIN,
    ] {
        let mut booking = snapshot(30, false);
        booking.booking_id = bad;
        assert!(snapshot_plan(&booking, true, true, None).is_err(), "{bad}");
        let event = DestinationEvent {
            event_type: DESTINATION_CREATED.into(),
            destination_id: bad,
            ..Default::default()
        };
        assert!(destination_plan(&event).is_err(), "{bad}");
    }
    assert_eq!(
        keys::applied_shard_suffix(BOOKING_CREATED, FactBit::of(3_000_000).block),
        "stats:applied:booking.created:2"
    );
}
