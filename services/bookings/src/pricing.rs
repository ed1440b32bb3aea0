//! The price of a booking, exactly as the contract states it:
//! `total = base × 0.90 (destination on promotion) or base, plus tax, rounded to cents half away
//! from zero`. Pets and age do not change the price.

use rust_decimal::{Decimal, RoundingStrategy};

/// 0.90: what a promotion leaves of the base price.
const PROMOTION_FACTOR: Decimal = Decimal::from_parts(90, 0, 0, false, 2);

/// A price and how it was reached. `total = base_price − discount + tax_amount`, all in cents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Price {
    pub base_price: Decimal,
    pub discount: Decimal,
    pub tax_amount: Decimal,
    pub total: Decimal,
}

impl Price {
    /// Prices a seat with base price `base`, the destination's `tax` and promotion flag.
    #[must_use]
    pub fn compute(base: Decimal, tax: Decimal, on_promotion: bool) -> Self {
        let fare = if on_promotion {
            base * PROMOTION_FACTOR
        } else {
            base
        };
        let total = (fare + tax).round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
        Self {
            base_price: base,
            // Whatever rounding did is part of the discount, so the breakdown adds up exactly.
            discount: base + tax - total,
            tax_amount: tax,
            total,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use proptest::prelude::*;

    use super::*;

    fn d(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap()
    }

    #[test]
    fn the_contracts_examples() {
        for (base, tax, promo, total) in [
            ("1000", "50", true, "950.00"),
            ("100", "30", true, "120.00"),
            ("200", "50", false, "250.00"),
            ("19.99", "0.01", true, "18.00"),
            ("2000", "100", false, "2100.00"),
        ] {
            let price = Price::compute(d(base), d(tax), promo);
            assert_eq!(price.total, d(total), "{base} {tax} {promo}");
            assert_eq!(
                price.base_price - price.discount + price.tax_amount,
                price.total
            );
        }
    }

    #[test]
    fn rounds_half_away_from_zero() {
        // 0.05 × 0.9 = 0.045 → 0.05 (banker's rounding would give 0.04).
        assert_eq!(Price::compute(d("0.05"), d("0"), true).total, d("0.05"));
        // 10.15 × 0.9 = 9.135 → 9.14.
        assert_eq!(Price::compute(d("10.15"), d("0"), true).total, d("9.14"));
    }

    /// The same formula in integer arithmetic on cents: `(base·90 + tax·100) / 100`, rounded
    /// half away from zero (all inputs are non-negative).
    fn reference_total_cents(base_cents: i64, tax_cents: i64, promo: bool) -> i64 {
        let base_factor = if promo { 90 } else { 100 };
        let hundredths_of_cents =
            i128::from(base_cents) * base_factor + i128::from(tax_cents) * 100;
        let cents = (hundredths_of_cents + 50) / 100;
        i64::try_from(cents).unwrap()
    }

    proptest! {
        #[test]
        fn matches_an_integer_reference(
            base_cents in 1i64..=999_999_999_999,
            tax_cents in 0i64..=99_999_999,
            promo in any::<bool>(),
        ) {
            let price = Price::compute(Decimal::new(base_cents, 2), Decimal::new(tax_cents, 2), promo);
            let expected = Decimal::new(reference_total_cents(base_cents, tax_cents, promo), 2);
            prop_assert_eq!(price.total, expected);
            prop_assert_eq!(price.total.scale(), 2);
            prop_assert_eq!(price.base_price - price.discount + price.tax_amount, price.total);
            prop_assert!(price.discount >= Decimal::ZERO);
        }
    }
}
