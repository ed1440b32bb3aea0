//! Input of the catalog: the rules written in the protos (`buf.validate` annotations, checked by
//! `FieldViolations::of`, with the contract's messages) plus what they cannot say (a vector's
//! direction), then the values as stored (text trimmed, defaults applied). Every violated field is
//! reported, not just the first, and nothing touches the database before a request passes.

use flightmesh_proto::flights as pb;
use flightmesh_proto::money::decimal_field;
use flightmesh_proto::types::Decimal as PbDecimal;
use flightmesh_proto::validate::Validate;
use flightmesh_runtime::status::FieldViolations;
use rust_decimal::Decimal;

use crate::embeddings::NewEmbedding;
use crate::vectors::normalize;

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
    FieldViolations::of(req).finish()?;
    Ok(NewDestination {
        name: req.name.trim().to_owned(),
        tax_amount: amount(req.tax_amount.as_ref()),
        is_promotion: req.is_promotion,
        allows_pets: req.allows_pets.unwrap_or(true),
        description: req
            .description
            .as_deref()
            .unwrap_or_default()
            .trim()
            .to_owned(),
    })
}

/// Seats of a flight created without a capacity.
const DEFAULT_CAPACITY: i32 = 180;

pub fn new_flight(req: &pb::CreateFlightRequest) -> Result<NewFlight, FieldViolations> {
    FieldViolations::of(req).finish()?;
    Ok(NewFlight {
        flight_number: req.flight_number.trim().to_owned(),
        origin: req.origin.trim().to_owned(),
        base_price: amount(req.base_price.as_ref()),
        destination_id: req.destination_id,
        capacity: req.capacity.unwrap_or(DEFAULT_CAPACITY),
    })
}

/// A destination search that passed validation (query vector normalised).
#[derive(Debug, Clone, PartialEq)]
pub struct VectorQuery {
    pub model: String,
    pub vector: Vec<f32>,
    pub limit: usize,
}

/// `req`'s rules checked and its `vector` normalised to unit length; also a violation when a
/// component is not finite or all are zero (no direction to compare). The vector's length is a
/// rule of the protos, checked first.
fn unit_vector(req: &impl Validate, vector: &[f32]) -> Result<Vec<f32>, FieldViolations> {
    let mut violations = FieldViolations::of(req);
    let mut vector = vector.to_vec();
    let length_ok = !violations.violations().iter().any(|(f, _)| f == "vector");
    violations.require(
        !length_ok || normalize(&mut vector),
        "vector",
        "vector debe tener componentes finitos, no todos cero",
    );
    violations.finish()?;
    Ok(vector)
}

pub fn new_embedding(
    req: &pb::PutDestinationEmbeddingRequest,
) -> Result<NewEmbedding, FieldViolations> {
    let vector = unit_vector(req, &req.vector)?;
    Ok(NewEmbedding {
        destination_id: req.destination_id,
        description: req.description.trim().to_owned(),
        model: req.model.trim().to_owned(),
        vector,
        replace_description: req.replace_description,
    })
}

/// Destinations a search returns when it asks for no number.
const DEFAULT_SEARCH_RESULTS: i32 = 5;

pub fn vector_query(
    req: &pb::SearchDestinationEmbeddingsRequest,
) -> Result<VectorQuery, FieldViolations> {
    let vector = unit_vector(req, &req.vector)?;
    Ok(VectorQuery {
        model: req.model.trim().to_owned(),
        vector,
        limit: usize::try_from(req.limit.unwrap_or(DEFAULT_SEARCH_RESULTS)).unwrap_or(1),
    })
}

/// A money field that passed its rules (so it is present and well-formed).
fn amount(value: Option<&PbDecimal>) -> Decimal {
    decimal_field(value).unwrap_or_default()
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
