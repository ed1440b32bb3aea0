//! Unit tests of `offline`.

use super::*;

#[test]
fn recognises_destinations_whatever_the_case_and_accents() {
    let names = vec![
        "Cartagena".to_owned(),
        "San Andrés".to_owned(),
        "Bogotá".to_owned(),
    ];
    for (question, expected) in [
        (
            "¿Cuánto cuestan los impuestos para viajar a Cartagena?",
            Some("Cartagena"),
        ),
        ("vuelos a san andres", Some("San Andrés")),
        ("BOGOTA hoy", Some("Bogotá")),
        ("¿y a Atlantis?", None),
    ] {
        assert_eq!(find_destination(question, &names), expected, "{question}");
    }
}

#[test]
fn finds_the_name_asked_about() {
    for (question, expected) in [
        (
            "¿Cuánto cuestan los impuestos para viajar a Atlantis?",
            Some("Atlantis"),
        ),
        (
            "Quiero ir a Nueva Atlantis del Sur",
            Some("Nueva Atlantis del Sur"),
        ),
        ("Vuelos a Lima y luego", Some("Lima")),
        ("hola", None),
    ] {
        assert_eq!(candidate_name(question).as_deref(), expected, "{question}");
    }
}

#[test]
fn reads_intents() {
    assert_eq!(
        intents("¿Cuánto cuestan los impuestos?"),
        [Intent::Taxes, Intent::Price]
    );
    assert_eq!(intents("¿Puedo llevar a mi perro?"), [Intent::Pets]);
    assert_eq!(intents("¿Hay alguna promoción?"), [Intent::Promotion]);
    assert!(intents("hola").is_empty());
}
