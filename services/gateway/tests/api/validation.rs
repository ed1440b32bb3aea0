//! Every client mistake is a 422 in the contract's FastAPI shape, never a 500.

use serde_json::{Value, json};

use crate::TestStack;

const DESTINATIONS: &str = "/api/v1/flights/destinations/";

/// POST `body` to the destinations route → (status, JSON).
async fn post_destination(stack: &TestStack, body: Value) -> (u16, Value) {
    stack.post(DESTINATIONS, &body).await
}

/// The `(loc, msg)` list of a 422 with one error.
fn one_error(loc: Value, msg: &str) -> Vec<(Value, String)> {
    vec![(loc, msg.to_owned())]
}

/// The `(loc, msg)` pairs of a 422 body.
fn errors(body: &Value) -> Vec<(Value, String)> {
    body["detail"]
        .as_array()
        .unwrap_or_else(|| panic!("a list of errors: {body}"))
        .iter()
        .map(|e| {
            assert!(e["type"].is_string(), "{e}");
            (e["loc"].clone(), e["msg"].as_str().unwrap().to_owned())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn field_rules_answer_422_with_the_contract_messages() {
    let stack = TestStack::start().await;

    let (status, body) =
        post_destination(&stack, json!({"name": "Cartagena", "tax_amount": -1})).await;
    assert_eq!(status, 422);
    let negative = one_error(
        json!(["body", "tax_amount"]),
        "tax_amount no puede ser negativo",
    );
    assert_eq!(errors(&body), negative);
    assert_eq!(body["detail"][0]["type"], json!("value_error"));

    let (status, body) = post_destination(&stack, json!({"name": "", "tax_amount": 10})).await;
    assert_eq!(status, 422);
    let empty = one_error(json!(["body", "name"]), "name no puede estar vacio");
    assert_eq!(errors(&body), empty);

    let destination = stack.destination("Cartagena", 50.0, true, true).await;
    for price in [json!(0), json!(-100)] {
        let (status, body) = stack
            .post(
                "/api/v1/flights/",
                &json!({"flight_number": "CT-1", "origin": "Bogota", "base_price": price, "destination_id": destination}),
            )
            .await;
        assert_eq!(status, 422, "{price}");
        let not_positive = one_error(
            json!(["body", "base_price"]),
            "base_price debe ser mayor a 0",
        );
        assert_eq!(errors(&body), not_positive);
    }

    for query in ["skip=-1", "limit=0", "limit=1001"] {
        let (status, body) = stack.get(&format!("/api/v1/flights/?{query}")).await;
        assert_eq!(status, 422, "{query}: {body}");
        let field = query.split('=').next().unwrap();
        assert_eq!(errors(&body)[0].0, json!(["query", field]));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_json_missing_fields_and_wrong_types_are_422() {
    let stack = TestStack::start().await;

    let (status, body) = stack
        .post_raw(DESTINATIONS, r#"{"name": "Lima", "tax_amount": "#)
        .await;
    assert_eq!(status, 422);
    assert_eq!(body["detail"][0]["type"], json!("json_invalid"));
    assert_eq!(body["detail"][0]["loc"][0], json!("body"));

    let (status, body) = stack.post_raw(DESTINATIONS, "[1, 2]").await;
    assert_eq!(status, 422);
    assert_eq!(
        errors(&body),
        [(json!(["body"]), "Debe ser un objeto JSON".to_owned())]
    );

    let (status, body) = post_destination(&stack, json!({"is_promotion": true})).await;
    assert_eq!(status, 422);
    assert_eq!(
        errors(&body),
        [
            (json!(["body", "name"]), "Campo obligatorio".to_owned()),
            (
                json!(["body", "tax_amount"]),
                "Campo obligatorio".to_owned()
            )
        ]
    );
    assert_eq!(body["detail"][0]["type"], json!("missing"));

    let wrong_types = json!({"name": 7, "tax_amount": "mucho", "is_promotion": "quizas"});
    let (status, body) = post_destination(&stack, wrong_types).await;
    assert_eq!(status, 422);
    let locs: Vec<_> = errors(&body).into_iter().map(|(loc, _)| loc).collect();
    assert_eq!(
        locs,
        [
            json!(["body", "name"]),
            json!(["body", "tax_amount"]),
            json!(["body", "is_promotion"])
        ]
    );

    let (status, body) = stack
        .post(
            "/api/v1/flights/",
            &json!({"flight_number": "X", "origin": "Y", "base_price": 10, "destination_id": 1.5, "capacity": 1e12}),
        )
        .await;
    assert_eq!(status, 422);
    let locs: Vec<_> = errors(&body).into_iter().map(|(loc, _)| loc).collect();
    assert_eq!(
        locs,
        [
            json!(["body", "destination_id"]),
            json!(["body", "capacity"])
        ]
    );

    let (status, body) = stack.get("/api/v1/flights/abc").await;
    assert_eq!(status, 422);
    assert_eq!(errors(&body)[0].0, json!(["path", "id"]));

    let (status, body) = stack.get("/api/v1/flights/?limit=muchos").await;
    assert_eq!(status, 422);
    assert_eq!(errors(&body)[0].0, json!(["query", "limit"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn money_is_exact_through_the_json_mapping() {
    let stack = TestStack::start().await;
    // Amounts that binary floats cannot hold come back with the digits sent.
    let id = stack.destination("Cartagena", 0.1, false, true).await;
    let (_, destination) = stack
        .get(&format!("/api/v1/flights/destinations/{id}"))
        .await;
    assert_eq!(destination["tax_amount"].to_string(), "0.1");
    let flight = stack.flight("CT-1", 9_999_999_999.99, id, 180).await;
    let (_, flight) = stack.get(&format!("/api/v1/flights/{flight}")).await;
    assert_eq!(flight["base_price"].to_string(), "9999999999.99");

    // Numeric strings are accepted (pydantic did); more than two decimals is refused.
    let (status, body) =
        post_destination(&stack, json!({"name": "Lima", "tax_amount": "12.30"})).await;
    assert_eq!(
        (status, body["tax_amount"].to_string()),
        (200, "12.3".to_owned())
    );
    let (status, body) =
        post_destination(&stack, json!({"name": "Quito", "tax_amount": 1.005})).await;
    assert_eq!(status, 422);
    assert_eq!(
        body["detail"][0]["msg"],
        json!("tax_amount admite como maximo 2 decimales")
    );
}

/// Found by schemathesis: U+0000 reached PostgreSQL, which cannot hold it, and came back a 500.
#[tokio::test(flavor = "multi_thread")]
async fn the_null_character_is_a_422_wherever_text_comes_in() {
    let stack = TestStack::start().await;
    let nul = "El texto no puede contener el caracter nulo (U+0000)".to_owned();
    let (status, body) = crate::auth::login(&stack, "a\u{0}@b.co", "x").await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(errors(&body), one_error(json!(["body", "email"]), &nul));

    let (status, body) = stack
        .get("/api/v1/bookings/events?event_type=booking%00")
        .await;
    assert_eq!(
        (status, errors(&body)),
        (422, vec![(json!(["query", "event_type"]), nul.clone())])
    );

    let (status, body) = stack.get("/api/v1/stats/destinations/Lima%00/taxes").await;
    assert_eq!(
        (status, errors(&body)),
        (422, vec![(json!(["path", "destination_name"]), nul)])
    );
}
