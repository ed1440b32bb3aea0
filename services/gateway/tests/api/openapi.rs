//! `/openapi.json` is a valid OpenAPI 3 document listing every contract route.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::TestStack;
use crate::contract::contract_routes;

#[tokio::test(flavor = "multi_thread")]
async fn openapi_lists_every_contract_route_with_its_parameters() {
    let stack = TestStack::start().await;
    let (status, doc) = stack.get("/openapi.json").await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    let paths = doc["paths"].as_object().unwrap();

    for route in contract_routes() {
        if !route.path.starts_with("/api/v1/")
            && !["/health", "/readyz"].contains(&route.path.as_str())
        {
            continue; // /metrics, /openapi.json and /docs are not JSON API operations
        }
        let item = paths.get(&route.path).unwrap_or_else(|| {
            panic!("{} {} missing from /openapi.json", route.method, route.path)
        });
        let operation = &item[route.method.to_ascii_lowercase()];
        assert!(
            operation.is_object(),
            "{} {} has no operation",
            route.method,
            route.path
        );
        assert!(operation["responses"]["200"].is_object());

        let declared: BTreeSet<String> = operation["parameters"]
            .as_array()
            .map(|params| {
                params
                    .iter()
                    .map(|p| {
                        format!(
                            "{}:{}",
                            p["in"].as_str().unwrap(),
                            p["name"].as_str().unwrap()
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        for name in &route.path_params {
            assert!(
                declared.contains(&format!("path:{name}")),
                "{}: path parameter {name}",
                route.path
            );
        }
        for name in &route.query_params {
            assert!(
                declared.contains(&format!("query:{name}")),
                "{}: query parameter {name}",
                route.path
            );
        }
        if route.method == "POST" && !route.body_fields.is_empty() {
            let schema = resolve(
                &doc,
                &operation["requestBody"]["content"]["application/json"]["schema"],
            );
            for field in &route.body_fields {
                assert!(
                    schema["properties"].get(field).is_some(),
                    "{}: body field {field}",
                    route.path
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn openapi_document_is_structurally_valid() {
    let stack = TestStack::start().await;
    let (_, doc) = stack.get("/openapi.json").await;
    // Every $ref resolves, every operation has an id (unique) and responses, every path
    // parameter appears in its path template.
    let mut ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        assert!(path.starts_with('/'));
        for (method, op) in item.as_object().unwrap() {
            assert!(["get", "post", "put", "delete", "patch"].contains(&method.as_str()));
            let id = op["operationId"].as_str().unwrap().to_owned();
            assert!(ids.insert(id.clone()), "duplicate operationId {id}");
            assert!(op["responses"].as_object().is_some_and(|r| !r.is_empty()));
            for param in op["parameters"].as_array().into_iter().flatten() {
                let name = param["name"].as_str().unwrap();
                match param["in"].as_str().unwrap() {
                    "path" => {
                        assert!(
                            path.contains(&format!("{{{name}}}")),
                            "{path} lacks {{{name}}}"
                        );
                        assert_eq!(param["required"], Value::Bool(true));
                    }
                    "query" => {}
                    other => panic!("unexpected parameter location {other}"),
                }
                assert!(param["schema"]["type"].is_string());
            }
        }
    }
    check_refs(&doc, &doc);
}

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(reference) => {
            let name = reference.rsplit('/').next().unwrap();
            &doc["components"]["schemas"][name]
        }
        None => schema,
    }
}

fn check_refs(doc: &Value, node: &Value) {
    match node {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get("$ref") {
                let name = reference
                    .strip_prefix("#/components/schemas/")
                    .expect("local refs only");
                assert!(
                    doc["components"]["schemas"][name].is_object(),
                    "dangling $ref {reference}"
                );
            }
            map.values().for_each(|v| check_refs(doc, v));
        }
        Value::Array(items) => items.iter().for_each(|v| check_refs(doc, v)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn openapi_carries_the_proto_comments_and_the_bearer_scheme() {
    let stack = TestStack::start().await;
    let (_, doc) = stack.get("/openapi.json").await;
    let create = &doc["paths"]["/api/v1/bookings"]["post"];
    // The RPC's comment: its first sentence is the summary, all of it the description.
    assert_eq!(create["summary"], "Prices the booking and takes a seat.");
    let description = create["description"].as_str().unwrap();
    assert!(
        description
            .starts_with("Prices the booking and takes a seat. NOT_FOUND for an unknown flight;"),
        "{description}"
    );
    // Field comments become property descriptions, in requests and in response schemas.
    let body = &create["requestBody"]["content"]["application/json"]["schema"];
    assert_eq!(
        body["properties"]["passenger_name"]["description"],
        "Non-empty after trimming; at most 200 characters."
    );
    assert_eq!(
        body["properties"]["passenger_age"]["description"],
        "0..150."
    );
    let booking = &doc["components"]["schemas"]["flightmesh.bookings.v1.Booking"];
    assert_eq!(
        booking["properties"]["total_price"]["description"],
        "What the passenger pays: price.total."
    );
    // The operations no longer describe themselves only by their gRPC method.
    let by_grpc_only = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .filter(|op| {
            op["description"]
                .as_str()
                .is_some_and(|d| d.starts_with("gRPC `"))
        })
        .count();
    assert_eq!(by_grpc_only, 0, "every RPC has a comment");
    // Bearer tokens: declared, optional at the document level (the access policy decides).
    assert_eq!(
        doc["components"]["securitySchemes"]["bearerAuth"]["scheme"],
        "bearer"
    );
    assert_eq!(doc["security"], serde_json::json!([{}, {"bearerAuth": []}]));
}

/// The rules written in the protos (`buf.validate`, and the decimal rules of money) are in the
/// document as the JSON Schema keywords that say the same thing.
#[tokio::test(flavor = "multi_thread")]
async fn openapi_carries_the_protos_validation_rules() {
    let stack = TestStack::start().await;
    let (_, doc) = stack.get("/openapi.json").await;
    let body = |path: &str| {
        doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
            ["properties"]
            .clone()
    };
    let query = |path: &str, name: &str| {
        doc["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{path} has no parameter {name}"))["schema"]
            .clone()
    };

    let booking = body("/api/v1/bookings");
    assert_eq!(booking["passenger_name"]["maxLength"], 200);
    assert_eq!(
        booking["passenger_name"]["pattern"],
        flightmesh_proto::rules::NOT_BLANK
    );
    // Text never holds U+0000 (422): said once more beside a proto's own pattern, and alone
    // where the proto has none.
    assert_eq!(
        booking["passenger_name"]["allOf"][0]["pattern"],
        r"^[^\u0000]*$"
    );
    assert_eq!(
        body("/api/v1/flights/destinations")["description"]["pattern"],
        r"^[^\u0000]*$"
    );
    let taxes = &doc["paths"]["/api/v1/stats/destinations/{destination_name}/taxes"]["get"];
    assert_eq!(taxes["parameters"][0]["schema"]["pattern"], r"^[^\u0000]*$");
    assert_eq!(booking["passenger_age"]["minimum"], 0);
    assert_eq!(booking["passenger_age"]["maximum"], 150);

    let destination = body("/api/v1/flights/destinations");
    assert_eq!(destination["tax_amount"]["minimum"], 0);
    assert!(destination["tax_amount"]["exclusiveMinimum"].is_null());
    assert_eq!(
        destination["tax_amount"]["maximum"].to_string(),
        "9999999999.99"
    );
    assert_eq!(destination["tax_amount"]["multipleOf"].to_string(), "0.01");
    assert_eq!(destination["description"]["maxLength"], 2000);

    let flight = body("/api/v1/flights");
    assert_eq!(flight["base_price"]["minimum"], 0);
    assert_eq!(flight["base_price"]["exclusiveMinimum"], true);
    assert_eq!(flight["capacity"]["exclusiveMinimum"], true);
    assert_eq!(flight["capacity"]["maximum"], 100_000);
    assert_eq!(flight["flight_number"]["maxLength"], 20);

    assert_eq!(query("/api/v1/flights", "skip")["minimum"], 0);
    assert_eq!(query("/api/v1/flights", "limit")["minimum"], 1);
    assert_eq!(query("/api/v1/flights", "limit")["maximum"], 1000);
    let search_limit = query("/api/v1/ai/search-destinations", "limit");
    assert_eq!(
        (&search_limit["minimum"], &search_limit["maximum"]),
        (&1.into(), &50.into())
    );
    assert_eq!(
        query("/api/v1/ai/search-destinations", "query")["maxLength"],
        1000
    );

    let register = body("/api/v1/auth/register");
    assert_eq!(register["password"]["minLength"], 6);
    let email = register["email"]["pattern"].as_str().unwrap();
    assert!(email.starts_with('^') && email.contains('@'), "{email}");
}
