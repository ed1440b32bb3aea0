//! Unit tests of `search`.

use super::*;

#[test]
fn similarity_rounds_the_exact_value_half_away_from_zero() {
    assert_eq!(round4(0.123_456), 0.1235);
    assert_eq!(round4(-0.123_456), -0.1235);
    assert_eq!(round4(1.0), 1.0);
    // 0.00005 is just above its decimal in binary: it rounds up.
    assert_eq!(round4(0.000_05), 0.0001);
    // 0.12355 is just below its decimal in binary (0.1235499999…): it rounds down, where
    // rounding its shortest rendering "0.12355" would give 0.1236.
    assert_eq!(round4(0.123_55), 0.1235);
    assert_eq!(round4(0.123_45), 0.1235);
    assert_eq!(round4(f64::NAN), 0.0);
}

#[test]
fn short_questions_score_above_the_answer_threshold_against_long_descriptions() {
    use crate::embeddings::offline_embedding;
    let cosine = |a: &str, b: &str| -> f64 {
        offline_embedding(a)
            .iter()
            .zip(offline_embedding(b))
            .map(|(x, y)| f64::from(x * y))
            .sum()
    };
    let diving = "Playas de arena blanca, buceo y snorkel en arrecifes de coral, diving";
    let skiing = "Esquí en montañas nevadas, pistas de nieve y refugios alpinos";
    assert!(cosine("¿Dónde puedo ir a bucear?", diving) >= ANSWER_THRESHOLD);
    assert!(cosine("¿Dónde puedo ir a bucear?", skiing) < ANSWER_THRESHOLD);
    assert!(cosine("¿Dónde puedo ver auroras boreales?", diving) < ANSWER_THRESHOLD);
    assert!(cosine("¿Dónde puedo ver auroras boreales?", skiing) < ANSWER_THRESHOLD);
}

#[test]
fn where_questions_are_recognised() {
    assert!(asks_where("¿Dónde puedo ir a bucear?"));
    assert!(asks_where("Where can I go diving?"));
    assert!(asks_where("¿Qué destino me recomiendas para esquiar?"));
    assert!(!asks_where(
        "¿Cuánto cuestan los impuestos para viajar a Cartagena?"
    ));
}
