#!/usr/bin/env bash
# The test command (README): everything CI checks, in the order that fails fastest.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/services-up.sh
cargo fmt --all -- --check
# The gRPC contract: buf lint, and no breaking change against the previous commit.
scripts/buf.sh
cargo clippy --workspace --all-targets --locked -- -D warnings
# The fault tests (tools/faults) must run here, not skip: they need setpriv, unshare (util-linux)
# and redis-server.
export FLIGHTMESH_REQUIRE_FAULTS=1
cargo test --workspace --locked
scripts/infra-lint.sh
# schemathesis against the running gateway's /openapi.json: no 5xx, no answer off the schema.
scripts/fuzz-api.sh --max-time 45
# The Grafana dashboard's queries and the charts' recording rules on a real Prometheus (~15 s).
python3 scripts/prometheus_check.py
# Swagger UI (/docs) and ReDoc (/redoc) in headless Chromium, offline, with the Authorize flow (~10 s).
python3 scripts/docs_browser_check.py
# A TypeScript client generated from /openapi.json compiles against the web client's shapes (~5 s).
python3 scripts/ts_client_check.py
