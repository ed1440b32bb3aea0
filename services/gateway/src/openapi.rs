//! The OpenAPI 3.0 document, generated from the same route table and descriptors the gateway
//! transcodes with — so it always lists exactly the routes that exist, with their parameters,
//! request bodies and response shapes as the JSON mapping (`json_in`/`json_out`) writes them.

use std::collections::BTreeMap;

use prost_reflect::FieldDescriptor;
use serde_json::{Value, json};

use crate::openapi_rules::constrain;
use crate::routes::{BodyRule, Route, is_required};

mod schema;
use schema::{
    input_field_schema, input_scalar_schema, input_schema, output_field_schema, output_ref,
};

/// The document for `routes`, as JSON.
#[must_use]
pub fn document(routes: &[Route]) -> Value {
    let mut schemas = BTreeMap::new();
    let mut paths: BTreeMap<String, serde_json::Map<String, Value>> = BTreeMap::new();
    for route in routes {
        let operation = operation(route, &mut schemas);
        paths
            .entry(route.template.clone())
            .or_default()
            .insert(route.http_method.as_str().to_ascii_lowercase(), operation);
    }
    add_gateway_paths(&mut paths);
    add_error_schemas(&mut schemas);

    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "flightmesh",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Flight reservations: catalog, bookings, statistics and an AI agent. \
                Generated from the gRPC contract (proto/) by the gateway that serves it."
        },
        "paths": paths,
        // A token is optional in the document: the access policy decides which routes need one
        // (production: bookings need a user, catalog writes and some feeds an admin). Declaring
        // it gives Swagger UI its Authorize button and generated clients their auth option.
        "security": [{}, {"bearerAuth": []}],
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "The `access_token` of POST /api/v1/auth/login. Required under the production access policy: every booking route (a user), catalog writes and the passenger feeds (an admin)."
                }
            }
        }
    })
}

/// The gateway's own routes: `/health` and `/readyz`.
fn add_gateway_paths(paths: &mut BTreeMap<String, serde_json::Map<String, Value>>) {
    paths.insert(
        "/health".into(),
        gateway_operation(
            "Liveness of the gateway",
            json!({
                "type": "object",
                "required": ["status", "message"],
                "properties": { "status": {"type": "string"}, "message": {"type": "string"} }
            }),
        ),
    );
    paths.insert(
        "/readyz".into(),
        gateway_operation(
            "200 when every service is reachable, else 503 naming those that are not",
            json!({
                "type": "object",
                "required": ["status", "services"],
                "properties": {
                    "status": {"type": "string"},
                    "services": {"type": "object", "additionalProperties": {"type": "string"}}
                }
            }),
        ),
    );
}

/// The error answers every operation may give (the contract's `detail` shapes).
fn add_error_schemas(schemas: &mut BTreeMap<String, Value>) {
    schemas.insert(
        "ErrorDetail".into(),
        json!({
            "type": "object",
            "required": ["detail"],
            "properties": { "detail": {"type": "string"} }
        }),
    );
    schemas.insert("ValidationError".into(), json!({
        "type": "object",
        "required": ["loc", "msg", "type"],
        "properties": {
            "loc": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
            "msg": {"type": "string"},
            "type": {"type": "string"}
        }
    }));
    schemas.insert(
        "HTTPValidationError".into(),
        json!({
            "type": "object",
            "required": ["detail"],
            "properties": {
                "detail": {"anyOf": [
                    {"type": "array", "items": {"$ref": "#/components/schemas/ValidationError"}},
                    {"type": "string"}
                ]}
            }
        }),
    );
}

fn gateway_operation(summary: &str, schema: Value) -> serde_json::Map<String, Value> {
    let mut path = serde_json::Map::new();
    path.insert("get".into(), json!({
        "tags": ["gateway"],
        "summary": summary,
        "operationId": format!("gateway_{}", summary.split_whitespace().next().unwrap_or("op").to_ascii_lowercase()),
        "responses": {
            "200": {"description": "OK", "content": {"application/json": {"schema": schema}}},
            "503": {"description": "Not ready", "content": {"application/json": {"schema": {"type": "object"}}}}
        }
    }));
    path
}

fn operation(route: &Route, schemas: &mut BTreeMap<String, Value>) -> Value {
    let method = &route.method;
    let service = method.parent_service();
    let parameters = parameters(route);

    let request_body = match &route.body {
        BodyRule::None => None,
        BodyRule::Whole => {
            let skip: Vec<u32> = route
                .path_fields
                .iter()
                .map(FieldDescriptor::number)
                .collect();
            Some(input_schema(&method.input(), &skip, 0))
        }
        BodyRule::Field(field) => Some(input_field_schema(field, 0)),
    };

    let output = method.output();
    let response_schema = match &route.response_body {
        Some(field) => output_field_schema(field, schemas),
        None => output_ref(&output, schemas),
    };

    let (description, ok) = ok_response(route, response_schema);
    // The proto comment says what the operation does; the gRPC method is where it comes from.
    let comment = method_comment(method);
    let description = match &comment {
        Some(text) => format!("{text}\n\n{description}"),
        None => description,
    };
    let mut op = json!({
        "tags": [service.name()],
        "operationId": method.name(),
        "summary": comment.as_deref().map_or_else(|| method.name().to_owned(), |c| first_sentence(c).to_owned()),
        "description": description,
        "parameters": parameters,
        "responses": {
            "200": ok,
            "422": {"description": "Validation error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}}},
            "default": {"description": "Error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorDetail"}}}}
        }
    });
    if let Some(body) = request_body {
        let required = matches!(route.body, BodyRule::Whole)
            && method.input().fields().any(|f| is_required(&f));
        op["requestBody"] = json!({
            "required": required,
            "content": {"application/json": {"schema": body}}
        });
    }
    op
}

/// The path and query parameters of a route, with their rules and proto comments.
fn parameters(route: &Route) -> Vec<Value> {
    let mut parameters = Vec::new();
    for field in &route.path_fields {
        let mut parameter = json!({
            "name": field.name(),
            "in": "path",
            "required": true,
            "schema": input_scalar_schema(&field.kind()),
        });
        if let Some(text) = leading_comment(&field.parent_file(), field.path()) {
            parameter["description"] = json!(text);
        }
        parameters.push(parameter);
    }
    for field in route.query_fields() {
        let mut schema = if field.is_list() {
            json!({"type": "array", "items": input_scalar_schema(&field.kind())})
        } else {
            input_scalar_schema(&field.kind())
        };
        constrain(&mut schema, &field);
        let mut parameter = json!({
            "name": field.name(),
            "in": "query",
            "required": is_required(&field),
            "schema": schema,
        });
        if let Some(text) = leading_comment(&field.parent_file(), field.path()) {
            parameter["description"] = json!(text);
        }
        parameters.push(parameter);
    }
    parameters
}

/// The operation's description of its transport and its 200 answer: JSON, or for a
/// server-streaming method Server-Sent Events and newline-delimited JSON.
fn ok_response(route: &Route, response_schema: Value) -> (String, Value) {
    let method = &route.method;
    if route.is_streaming() {
        (
            format!(
                "gRPC `{}` (server-streaming). Answered as Server-Sent Events when `Accept` lists \
                 `text/event-stream` (one `data: <message JSON>` event per message, a last \
                 `event: error` with `{{\"detail\": ...}}` on failure, `: heartbeat` comments), \
                 else as newline-delimited JSON (one `{{\"result\": <message>}}` per line, a last \
                 `{{\"error\": {{\"status\", \"detail\"}}}}` line on failure). Errors found before the \
                 stream starts are ordinary JSON answers.",
                method.full_name()
            ),
            json!({
                "description": "A stream of messages",
                "content": {
                    crate::streaming::EVENT_STREAM: {"schema": {"type": "string", "description": "data: <message JSON> events"}},
                    crate::streaming::NDJSON: {"schema": {
                        "type": "object",
                        "description": "One line per message; a last error line on failure",
                        "properties": {
                            "result": response_schema,
                            "error": {"type": "object", "required": ["status", "detail"], "properties": {
                                "status": {"type": "integer"},
                                "detail": {"anyOf": [
                                    {"type": "string"},
                                    {"type": "array", "items": {"$ref": "#/components/schemas/ValidationError"}}
                                ]}
                            }}
                        }
                    }}
                }
            }),
        )
    } else {
        (
            format!("gRPC `{}`.", method.full_name()),
            json!({"description": "OK", "content": {"application/json": {"schema": response_schema}}}),
        )
    }
}

/// The leading comment of the element at `path` (a method, message or field: see
/// `SourceCodeInfo.Location.path`) in `file`, if the descriptor set kept source info.
fn leading_comment(file: &prost_reflect::FileDescriptor, path: &[i32]) -> Option<String> {
    let info = file.file_descriptor_proto().source_code_info.as_ref()?;
    let text = info
        .location
        .iter()
        .find(|loc| loc.path == path)?
        .leading_comments
        .as_deref()?
        .lines()
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ")
        .trim()
        .to_owned();
    (!text.is_empty()).then_some(text)
}

/// The comment of an RPC.
fn method_comment(method: &prost_reflect::MethodDescriptor) -> Option<String> {
    leading_comment(&method.parent_file(), method.path())
}

/// The first sentence of `text` (an operation's summary).
fn first_sentence(text: &str) -> &str {
    text.find(". ").map_or(text, |end| &text[..=end])
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    /// The document is part of the public contract (generated clients, schemathesis): a change
    /// to it must be deliberate. The snapshot is the document as served; after a deliberate
    /// change, `UPDATE_SNAPSHOTS=1 cargo test -p flightmesh-gateway --lib openapi` rewrites it
    /// and the diff is reviewed with the change.
    #[test]
    fn the_document_matches_its_snapshot() {
        let pool = prost_reflect::DescriptorPool::decode(flightmesh_proto::FILE_DESCRIPTOR_SET)
            .expect("the descriptor set");
        let routes = crate::routes::routes(&pool).expect("the route table");
        let document = serde_json::to_string_pretty(&super::document(&routes)).unwrap() + "\n";
        let snapshot =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/openapi.json");
        if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
            std::fs::write(&snapshot, &document).unwrap();
        }
        let expected = std::fs::read_to_string(&snapshot).unwrap_or_default();
        assert!(
            document == expected,
            "the OpenAPI document changed; if deliberately, rerun with UPDATE_SNAPSHOTS=1 and review the diff of {}",
            snapshot.display()
        );
    }
}
