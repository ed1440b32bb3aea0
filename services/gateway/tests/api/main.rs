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

/// `gateway --help` lists its commands; an unknown flag is a usage error (exit 2).
#[test]
fn the_binary_answers_help_and_refuses_unknown_flags() {
    flightmesh_testkit::assert_command_line(
        env!("CARGO_BIN_EXE_gateway"),
        &["serve", "migrate", "config"],
    );
}
