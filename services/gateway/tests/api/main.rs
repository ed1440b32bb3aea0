//! The REST contract end to end: the real gateway in front of the real mesh and PostgreSQL.

mod auth;
mod catalog;
mod contract;
mod destination_search;
mod edge;
mod edge_hardening;
mod identity;
mod limits;
mod openapi;
mod ownership;
mod policy;
mod resilience;
mod streaming;
mod support;
mod validation;

pub use flightmesh::testing::{TestMesh as TestStack, eventually, status_and_json};

flightmesh_testkit::command_line_test!("gateway", ["serve", "migrate", "config"]);
