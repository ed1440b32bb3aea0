//! The proto lint: the REST contract (`docs/contract.md`) and the protos' `google.api.http`
//! bindings must agree. Fails on a contract route with no binding (or a binding with another
//! method, path variable, query parameter or body field), and on a binding the contract does
//! not list unless it is one of flightmesh's documented additions.

use std::collections::BTreeSet;

use flightmesh_gateway::routes::{BodyRule, Route, routes};
use prost_reflect::DescriptorPool;

/// Routes flightmesh adds beyond the handed-over contract, with why.
const ADDITIONS: &[(&str, &str, &str)] = &[(
    "POST",
    "/api/v1/stats/rebuild",
    "recomputes the statistics from the bookings after a Redis loss (admin only in production)",
)];

/// Routes the gateway serves itself (not transcoded).
const GATEWAY_NATIVE: &[&str] = &["/health", "/readyz", "/metrics", "/openapi.json", "/docs"];

/// One route as the contract's tables describe it.
#[derive(Debug, Clone)]
pub struct ContractRoute {
    pub method: String,
    /// Absolute, without trailing slash: `/api/v1/flights/{id}`.
    pub path: String,
    pub path_params: Vec<String>,
    /// Query parameter names (GET routes).
    pub query_params: Vec<String>,
    /// Body field names (POST routes).
    pub body_fields: Vec<String>,
}

/// Every route of `docs/contract.md`.
pub fn contract_routes() -> Vec<ContractRoute> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/contract.md"
    ))
    .expect("docs/contract.md");
    let mut found = Vec::new();
    for line in text.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let (route_cell, params_cell) = (cells[1], cells.get(2).copied().unwrap_or(""));
        for code in backticked(route_cell) {
            let Some((method, path)) = code.split_once(' ') else {
                continue;
            };
            if !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method) {
                continue;
            }
            let path = path.trim_end_matches('/');
            let path = if GATEWAY_NATIVE.contains(&path) {
                path.to_owned()
            } else {
                format!("/api/v1{path}")
            };
            let path_params = path
                .split('/')
                .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
                .map(str::to_owned)
                .collect();
            let names: Vec<String> = backticked(params_cell)
                .into_iter()
                // Field names, or `{a, b}` groups; headers, messages and symbols are not fields.
                .filter(|code| {
                    code.chars()
                        .all(|c| c.is_ascii_lowercase() || "_{}, ".contains(c))
                })
                .flat_map(|code| {
                    code.split(|c: char| !(c.is_ascii_lowercase() || c == '_'))
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect::<Vec<_>>()
                })
                .collect();
            // A POST whose parameters the contract marks **query** sends no body.
            let (query_params, body_fields) =
                if method == "GET" || params_cell.starts_with("**query**") {
                    (names, vec![])
                } else {
                    (vec![], names)
                };
            found.push(ContractRoute {
                method: method.to_owned(),
                path,
                path_params,
                query_params,
                body_fields,
            });
        }
    }
    found
}

fn backticked(cell: &str) -> Vec<&str> {
    cell.split('`').skip(1).step_by(2).collect()
}

fn bindings() -> Vec<Route> {
    routes(&DescriptorPool::decode(flightmesh_proto::FILE_DESCRIPTOR_SET).unwrap()).unwrap()
}

#[test]
fn contract_parser_reads_every_table() {
    let routes = contract_routes();
    assert!(routes.len() >= 28, "found only {} routes", routes.len());
    let create_booking = routes
        .iter()
        .find(|r| r.method == "POST" && r.path == "/api/v1/bookings")
        .unwrap();
    assert_eq!(
        create_booking.body_fields,
        ["passenger_name", "passenger_age", "has_pet", "flight_id"]
    );
    let list_flights = routes
        .iter()
        .find(|r| r.method == "GET" && r.path == "/api/v1/flights")
        .unwrap();
    assert_eq!(list_flights.query_params, ["skip", "limit"]);
    let login = routes
        .iter()
        .find(|r| r.path == "/api/v1/auth/login")
        .unwrap();
    assert_eq!(login.body_fields, ["email", "password"]);
    let embed = routes
        .iter()
        .find(|r| r.path == "/api/v1/ai/embed-destination")
        .unwrap();
    assert_eq!(embed.query_params, ["destination_id", "description"]);
    assert!(embed.body_fields.is_empty());
}

#[test]
fn every_contract_route_has_a_matching_http_binding() {
    let bindings = bindings();
    let mut problems = Vec::new();
    for route in contract_routes()
        .iter()
        .filter(|r| r.path.starts_with("/api/v1/"))
    {
        let Some(binding) = bindings
            .iter()
            .find(|b| b.http_method.as_str() == route.method && b.template == route.path)
        else {
            problems.push(format!(
                "{} {}: no RPC has this google.api.http binding",
                route.method, route.path
            ));
            continue;
        };
        let rpc = binding.method.full_name();
        let bound: Vec<&str> = binding
            .path_fields
            .iter()
            .map(prost_reflect::FieldDescriptor::name)
            .collect();
        if bound != route.path_params {
            problems.push(format!(
                "{rpc}: path variables {bound:?}, contract {:?}",
                route.path_params
            ));
        }
        let query: BTreeSet<String> = binding
            .query_fields()
            .iter()
            .map(|f| f.name().to_owned())
            .collect();
        for name in &route.query_params {
            if !query.contains(name) {
                problems.push(format!(
                    "{rpc}: contract query parameter {name} is not a query field"
                ));
            }
        }
        if !route.body_fields.is_empty() {
            if !matches!(binding.body, BodyRule::Whole) {
                problems.push(format!(
                    "{rpc}: the contract sends a JSON body; the binding needs body: \"*\""
                ));
            }
            let input = binding.method.input();
            for name in &route.body_fields {
                if input.get_field_by_name(name).is_none() {
                    problems.push(format!(
                        "{rpc}: contract body field {name} is not in {}",
                        input.full_name()
                    ));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "contract and protos disagree:\n{}",
        problems.join("\n")
    );
}

#[test]
fn every_http_binding_is_in_the_contract_or_a_documented_addition() {
    let contract: BTreeSet<(String, String)> = contract_routes()
        .into_iter()
        .map(|r| (r.method, r.path))
        .collect();
    let unexpected: Vec<String> = bindings()
        .iter()
        .map(|b| (b.http_method.as_str().to_owned(), b.template.clone()))
        .filter(|key| !contract.contains(key))
        .filter(|(m, p)| !ADDITIONS.iter().any(|(am, ap, _)| am == m && ap == p))
        .map(|(m, p)| format!("{m} {p}"))
        .collect();
    assert!(
        unexpected.is_empty(),
        "bindings the contract does not list: {unexpected:?}"
    );
}
