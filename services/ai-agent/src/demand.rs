//! The demand prediction of the contract, computed exactly (integer arithmetic; no floats):
//!
//! - `current` = the destination's bookings, `total` = all bookings;
//! - `market_share` = current / total × 100, two decimals (0 when total is 0);
//! - `average` = total / number of destinations with bookings;
//! - trend `alta` when current > average × 1.2, `baja` when current < average × 0.8, else
//!   `estable`;
//! - projection floor(current × 1.1), floor(current × 0.9) or current;
//! - recommendation "Demanda {trend}. " + the trend's advice.

use rust_decimal::Decimal;

/// Where demand is going.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trend {
    Alta,
    Baja,
    Estable,
}

impl Trend {
    /// `alta`, `baja` or `estable`.
    #[must_use]
    pub fn word(self) -> &'static str {
        match self {
            Self::Alta => "alta",
            Self::Baja => "baja",
            Self::Estable => "estable",
        }
    }

    fn advice(self) -> &'static str {
        match self {
            Self::Alta => "Considerar aumentar precios o capacidad.",
            Self::Baja => "Considerar promociones para estimular demanda.",
            Self::Estable => "Mantener estrategia actual.",
        }
    }
}

/// The prediction for one destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prediction {
    pub destination: String,
    pub current: i64,
    pub total: i64,
    pub destinations_with_bookings: i64,
    /// Percent, two decimals.
    pub market_share: Decimal,
    /// Bookings per destination with bookings, two decimals.
    pub average: Decimal,
    pub trend: Trend,
    pub projection: i64,
    pub recommendation: String,
}

/// Predicts from the destination's bookings and every destination's bookings.
#[must_use]
pub fn predict(destination: &str, bookings_by_destination: &[(String, i64)]) -> Prediction {
    let current = bookings_by_destination
        .iter()
        .filter(|(name, _)| name.to_lowercase() == destination.to_lowercase())
        .map(|(_, n)| (*n).max(0))
        .sum::<i64>();
    let total: i64 = bookings_by_destination
        .iter()
        .map(|(_, n)| (*n).max(0))
        .sum();
    let with_bookings = bookings_by_destination
        .iter()
        .filter(|(_, n)| *n > 0)
        .count();
    let with_bookings = i64::try_from(with_bookings).unwrap_or(i64::MAX);
    let market_share = if total == 0 {
        Decimal::ZERO
    } else {
        (Decimal::from(current) * Decimal::ONE_HUNDRED / Decimal::from(total)).round_dp(2)
    };
    let average = if with_bookings == 0 {
        Decimal::ZERO
    } else {
        (Decimal::from(total) / Decimal::from(with_bookings)).round_dp(2)
    };
    // current > total/n × 1.2  ⇔  10·current·n > 12·total (and likewise for 0.8): exact.
    let (c, t, n) = (
        i128::from(current),
        i128::from(total),
        i128::from(with_bookings),
    );
    let trend = if n > 0 && 10 * c * n > 12 * t {
        Trend::Alta
    } else if n > 0 && 10 * c * n < 8 * t {
        Trend::Baja
    } else {
        Trend::Estable
    };
    let projection = match trend {
        Trend::Alta => current * 11 / 10,
        Trend::Baja => current * 9 / 10,
        Trend::Estable => current,
    };
    Prediction {
        destination: destination.to_owned(),
        current,
        total,
        destinations_with_bookings: with_bookings,
        market_share,
        average,
        trend,
        projection,
        recommendation: format!("Demanda {}. {}", trend.word(), trend.advice()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(list: &[(&str, i64)]) -> Vec<(String, i64)> {
        list.iter().map(|(n, c)| ((*n).to_owned(), *c)).collect()
    }

    #[test]
    fn alta_baja_estable_by_the_contracts_thresholds() {
        let market = counts(&[("Cartagena", 8), ("Lima", 2), ("Quito", 5)]); // average 5
        let alta = predict("cartagena", &market);
        assert_eq!(
            (alta.trend, alta.current, alta.total, alta.projection),
            (Trend::Alta, 8, 15, 8)
        );
        assert_eq!(alta.market_share.to_string(), "53.33");
        assert_eq!(
            alta.recommendation,
            "Demanda alta. Considerar aumentar precios o capacidad."
        );
        let baja = predict("Lima", &market);
        assert_eq!((baja.trend, baja.projection), (Trend::Baja, 1));
        assert_eq!(
            baja.recommendation,
            "Demanda baja. Considerar promociones para estimular demanda."
        );
        let estable = predict("Quito", &market);
        assert_eq!((estable.trend, estable.projection), (Trend::Estable, 5));
        assert_eq!(estable.average.to_string(), "5");
    }

    #[test]
    fn exactly_on_a_threshold_is_estable_and_no_bookings_is_zero() {
        // average 10: 12 is not > 12.0, 8 is not < 8.0.
        let market = counts(&[("A", 12), ("B", 8), ("C", 10)]);
        assert_eq!(predict("A", &market).trend, Trend::Estable);
        assert_eq!(predict("B", &market).trend, Trend::Estable);
        let empty = predict("A", &[]);
        assert_eq!(
            (empty.trend, empty.market_share, empty.projection),
            (Trend::Estable, Decimal::ZERO, 0)
        );
    }

    #[test]
    fn projection_floors() {
        let market = counts(&[("A", 19), ("B", 1)]); // average 10: A alta, B baja
        assert_eq!(predict("A", &market).projection, 20); // floor(20.9)
        assert_eq!(predict("B", &market).projection, 0); // floor(0.9)
    }
}
