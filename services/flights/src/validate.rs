//! Input rules of the catalog, with the contract's messages. Every violated field is reported,
//! not just the first, and nothing touches the database before a request passes.

use flightmesh_proto::flights as pb;
use flightmesh_proto::money::{DecimalError, decimal_field};
use flightmesh_proto::types::Decimal as PbDecimal;
use flightmesh_runtime::status::FieldViolations;
use rust_decimal::Decimal;

use crate::embeddings::NewEmbedding;
use crate::vectors::{MAX_DIMENSIONS, normalize};

/// Largest amount NUMERIC(12,2) holds.
const MAX_MONEY: Decimal = Decimal::from_parts(3_567_587_327, 232, 0, false, 2); // 9_999_999_999.99
const MAX_NAME_CHARS: usize = 200;
/// Longest destination description (what the semantic search embeds).
pub const MAX_DESCRIPTION_CHARS: usize = 2000;
const MAX_FLIGHT_NUMBER_CHARS: usize = 20;
const DEFAULT_CAPACITY: i32 = 180;
const MAX_CAPACITY: i32 = 100_000;

/// A destination that passed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDestination {
    pub name: String,
    pub tax_amount: Decimal,
    pub is_promotion: bool,
    pub allows_pets: bool,
    /// Trimmed; empty when none was given.
    pub description: String,
}

/// A flight that passed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFlight {
    pub flight_number: String,
    pub origin: String,
    pub base_price: Decimal,
    pub destination_id: i64,
    pub capacity: i32,
}

pub fn new_destination(
    req: &pb::CreateDestinationRequest,
) -> Result<NewDestination, FieldViolations> {
    let mut violations = FieldViolations::new();
    let name = text(&req.name, "name", MAX_NAME_CHARS, &mut violations);
    let tax_amount = money(req.tax_amount.as_ref(), "tax_amount", &mut violations).inspect(|tax| {
        violations.require(
            !tax.is_sign_negative() || tax.is_zero(),
            "tax_amount",
            "tax_amount no puede ser negativo",
        );
    });
    let description = req
        .description
        .as_deref()
        .unwrap_or_default()
        .trim()
        .to_owned();
    violations.require(
        description.chars().count() <= MAX_DESCRIPTION_CHARS,
        "description",
        format!("description no puede superar {MAX_DESCRIPTION_CHARS} caracteres"),
    );
    violations.finish()?;
    Ok(NewDestination {
        name,
        tax_amount: tax_amount.unwrap_or_default(),
        is_promotion: req.is_promotion,
        allows_pets: req.allows_pets.unwrap_or(true),
        description,
    })
}

pub fn new_flight(req: &pb::CreateFlightRequest) -> Result<NewFlight, FieldViolations> {
    let mut violations = FieldViolations::new();
    let flight_number = text(
        &req.flight_number,
        "flight_number",
        MAX_FLIGHT_NUMBER_CHARS,
        &mut violations,
    );
    let origin = text(&req.origin, "origin", MAX_NAME_CHARS, &mut violations);
    let base_price =
        money(req.base_price.as_ref(), "base_price", &mut violations).inspect(|price| {
            violations.require(
                *price > Decimal::ZERO,
                "base_price",
                "base_price debe ser mayor a 0",
            );
        });
    let capacity = req.capacity.unwrap_or(DEFAULT_CAPACITY);
    violations.require(capacity > 0, "capacity", "capacity debe ser mayor a 0");
    violations.require(
        capacity <= MAX_CAPACITY,
        "capacity",
        format!("capacity no puede superar {MAX_CAPACITY}"),
    );
    violations.finish()?;
    Ok(NewFlight {
        flight_number,
        origin,
        base_price: base_price.unwrap_or_default(),
        destination_id: req.destination_id,
        capacity,
    })
}

/// Longest embedding model name.
const MAX_MODEL_CHARS: usize = 200;
/// Most results a destination search returns, and its default.
pub const MAX_SEARCH_RESULTS: i32 = 50;
const DEFAULT_SEARCH_RESULTS: i32 = 5;

/// A destination search that passed validation (query vector normalised).
#[derive(Debug, Clone, PartialEq)]
pub struct VectorQuery {
    pub model: String,
    pub vector: Vec<f32>,
    pub limit: usize,
}

/// 1..=4096 finite components, not all zero; normalised to unit length.
fn unit_vector(vector: &[f32], violations: &mut FieldViolations) -> Vec<f32> {
    let mut vector = vector.to_vec();
    let ok = (1..=MAX_DIMENSIONS).contains(&vector.len()) && normalize(&mut vector);
    violations.require(
        ok,
        "vector",
        format!("vector debe tener entre 1 y {MAX_DIMENSIONS} componentes finitos, no todos cero"),
    );
    vector
}

pub fn new_embedding(
    req: &pb::PutDestinationEmbeddingRequest,
) -> Result<NewEmbedding, FieldViolations> {
    let mut violations = FieldViolations::new();
    let description = text(
        &req.description,
        "description",
        MAX_DESCRIPTION_CHARS,
        &mut violations,
    );
    let model = text(&req.model, "model", MAX_MODEL_CHARS, &mut violations);
    let vector = unit_vector(&req.vector, &mut violations);
    violations.finish()?;
    Ok(NewEmbedding {
        destination_id: req.destination_id,
        description,
        model,
        vector,
        replace_description: req.replace_description,
    })
}

pub fn vector_query(
    req: &pb::SearchDestinationEmbeddingsRequest,
) -> Result<VectorQuery, FieldViolations> {
    let mut violations = FieldViolations::new();
    let model = text(&req.model, "model", MAX_MODEL_CHARS, &mut violations);
    let vector = unit_vector(&req.vector, &mut violations);
    let limit = req.limit.unwrap_or(DEFAULT_SEARCH_RESULTS);
    violations.require(
        (1..=MAX_SEARCH_RESULTS).contains(&limit),
        "limit",
        format!("limit debe estar entre 1 y {MAX_SEARCH_RESULTS}"),
    );
    violations.finish()?;
    Ok(VectorQuery {
        model,
        vector,
        limit: usize::try_from(limit).unwrap_or(1),
    })
}

/// Trimmed, non-empty text of at most `max_chars` characters.
fn text(value: &str, field: &str, max_chars: usize, violations: &mut FieldViolations) -> String {
    let value = value.trim();
    if value.is_empty() {
        violations.add(field, format!("{field} no puede estar vacio"));
    } else if value.chars().count() > max_chars {
        violations.add(
            field,
            format!("{field} no puede superar {max_chars} caracteres"),
        );
    }
    value.to_owned()
}

/// An amount of money: a number with at most two decimals that fits NUMERIC(12,2).
fn money(
    value: Option<&PbDecimal>,
    field: &str,
    violations: &mut FieldViolations,
) -> Option<Decimal> {
    let amount = match decimal_field(value) {
        Ok(amount) => amount,
        Err(DecimalError::Missing) => {
            violations.add(field, format!("{field} es obligatorio"));
            return None;
        }
        Err(DecimalError::Malformed(_)) => {
            violations.add(field, format!("{field} debe ser un numero"));
            return None;
        }
    };
    if amount.normalize().scale() > 2 {
        violations.add(field, format!("{field} admite como maximo 2 decimales"));
        return None;
    }
    if amount.abs() > MAX_MONEY {
        violations.add(field, format!("{field} no puede superar {MAX_MONEY}"));
        return None;
    }
    Some(amount)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(text: &str) -> Option<PbDecimal> {
        Some(PbDecimal { value: text.into() })
    }

    fn fields(v: &FieldViolations) -> Vec<(&str, &str)> {
        v.violations()
            .iter()
            .map(|(f, m)| (f.as_str(), m.as_str()))
            .collect()
    }

    #[test]
    fn max_money_is_the_numeric_12_2_limit() {
        assert_eq!(MAX_MONEY.to_string(), "9999999999.99");
    }

    #[test]
    fn destination_defaults_and_trims() {
        let d = new_destination(&pb::CreateDestinationRequest {
            name: "  Cartagena ".into(),
            tax_amount: dec("50"),
            is_promotion: true,
            allows_pets: None,
            description: Some("  playas y murallas ".into()),
        })
        .unwrap();
        assert_eq!(d.name, "Cartagena");
        assert_eq!(d.description, "playas y murallas");
        assert!(d.allows_pets, "pets are allowed unless said otherwise");
    }

    #[test]
    fn destination_reports_every_violation() {
        let err = new_destination(&pb::CreateDestinationRequest {
            name: "   ".into(),
            tax_amount: dec("-1"),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(
            fields(&err),
            [
                ("name", "name no puede estar vacio"),
                ("tax_amount", "tax_amount no puede ser negativo")
            ]
        );
    }

    #[test]
    fn embeddings_need_text_a_model_and_a_direction() {
        let err = new_embedding(&pb::PutDestinationEmbeddingRequest {
            destination_id: 1,
            description: "  ".into(),
            model: String::new(),
            vector: vec![0.0, 0.0],
            replace_description: true,
        })
        .unwrap_err();
        let fields: Vec<&str> = fields(&err).iter().map(|(f, _)| *f).collect();
        assert_eq!(fields, ["description", "model", "vector"]);
        let ok = new_embedding(&pb::PutDestinationEmbeddingRequest {
            destination_id: 1,
            description: " buceo ".into(),
            model: "m".into(),
            vector: vec![3.0, 4.0],
            replace_description: true,
        })
        .unwrap();
        assert_eq!(ok.description, "buceo");
        assert!((ok.vector[0] - 0.6).abs() < 1e-6);
        let query = |limit| {
            vector_query(&pb::SearchDestinationEmbeddingsRequest {
                model: "m".into(),
                vector: vec![1.0],
                limit,
            })
        };
        assert_eq!(query(None).unwrap().limit, 5);
        assert!(query(Some(0)).is_err() && query(Some(51)).is_err());
        assert_eq!(query(Some(50)).unwrap().limit, 50);
    }

    #[test]
    fn money_rules() {
        for (text, message) in [
            ("0", "base_price debe ser mayor a 0"),
            ("-100", "base_price debe ser mayor a 0"),
            ("10.005", "base_price admite como maximo 2 decimales"),
            ("10000000000", "base_price no puede superar 9999999999.99"),
            ("abc", "base_price debe ser un numero"),
        ] {
            let err = new_flight(&pb::CreateFlightRequest {
                flight_number: "X1".into(),
                origin: "Bogota".into(),
                base_price: dec(text),
                destination_id: 1,
                capacity: None,
            })
            .unwrap_err();
            assert_eq!(fields(&err), [("base_price", message)], "{text}");
        }
        // Trailing zeros are not extra precision.
        let flight = new_flight(&pb::CreateFlightRequest {
            flight_number: "X1".into(),
            origin: "Bogota".into(),
            base_price: dec("19.9900"),
            destination_id: 1,
            capacity: None,
        })
        .unwrap();
        assert_eq!(flight.capacity, 180);
    }
}
