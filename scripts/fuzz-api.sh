#!/usr/bin/env bash
# Property-based fuzzing of the REST API: starts the whole mesh (`flightmesh up`, the old clients'
# compatible policy) on a fresh database, RabbitMQ vhost and Redis prefix, and runs schemathesis
# against the gateway's /openapi.json. Fails on any 5xx or any answer that breaks the documented
# schema. Cleans up after itself.
#
#   scripts/fuzz-api.sh [--max-time SECONDS]      (default 60)
set -euo pipefail
cd "$(dirname "$0")/.."

max_time=60
if [ "${1:-}" = "--max-time" ]; then max_time=$2; fi

venv=target/schemathesis-venv
if [ ! -x "$venv/bin/schemathesis" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "schemathesis==4.32.5"
fi
cargo build -q --locked -p flightmesh --bin flightmesh

run="fm_fuzz_$$"
port_base=$((20000 + $$ % 20000))
gateway="127.0.0.1:$port_base"
log="target/fuzz-api-$run.log"

# Where the broker's CLI is at hand (this machine), a vhost of its own; elsewhere (a CI service
# container) exchange and queue names of its own.
if command -v rabbitmqctl >/dev/null; then
  rabbitmqctl -q add_vhost "$run" >/dev/null
  rabbitmqctl -q set_permissions -p "$run" guest ".*" ".*" ".*" >/dev/null
  amqp_url="amqp://guest:guest@127.0.0.1:5672/$run"
else
  amqp_url="amqp://guest:guest@127.0.0.1:5672/%2f"
fi

cleanup() {
  [ -n "${stack_pid:-}" ] && kill "$stack_pid" 2>/dev/null && wait "$stack_pid" 2>/dev/null
  psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $run WITH (FORCE)" >/dev/null || true
  if command -v rabbitmqctl >/dev/null; then rabbitmqctl -q delete_vhost "$run" >/dev/null 2>&1 || true; fi
  if command -v redis-cli >/dev/null; then
    # Deleted inside Redis: fuzzed names put quotes and newlines in keys, which xargs would mangle.
    redis-cli -h 127.0.0.1 EVAL "local cursor = '0'
      repeat
        local page = redis.call('SCAN', cursor, 'MATCH', ARGV[1], 'COUNT', 1000)
        cursor = page[1]
        for _, key in ipairs(page[2]) do redis.call('DEL', key) end
      until cursor == '0'" 0 "$run:*" >/dev/null || true
  fi
}
trap cleanup EXIT

psql -q -h 127.0.0.1 -U postgres -d postgres -c "CREATE DATABASE $run" >/dev/null

env DATABASE_URL="postgres://postgres@127.0.0.1:5432/$run" \
    AMQP_URL="$amqp_url" \
    BOOKINGS_EXCHANGE="$run.bookings" CATALOG_EXCHANGE="$run.catalog" STATS_QUEUE="$run.stats" \
    REDIS_KEY_PREFIX="$run:" \
    GATEWAY_HTTP_ADDR="$gateway" \
    FLIGHTS_GRPC_ADDR="127.0.0.1:$((port_base + 1))" FLIGHTS_ADMIN_ADDR="127.0.0.1:$((port_base + 11))" \
    BOOKINGS_GRPC_ADDR="127.0.0.1:$((port_base + 2))" BOOKINGS_ADMIN_ADDR="127.0.0.1:$((port_base + 12))" \
    STATS_GRPC_ADDR="127.0.0.1:$((port_base + 3))" STATS_ADMIN_ADDR="127.0.0.1:$((port_base + 13))" \
    AI_GRPC_ADDR="127.0.0.1:$((port_base + 4))" AI_ADMIN_ADDR="127.0.0.1:$((port_base + 14))" \
    RATE_LIMIT_DEFAULT="1000000/60s" RATE_LIMIT_AI="1000000/60s" RATE_LIMIT_AUTH="1000000/60s" \
    LOG_FORMAT=json RUST_LOG=warn \
    target/debug/flightmesh up --demo >"$log" 2>&1 &
stack_pid=$!

# A deeper Python stack: CPython 3.11's AST parser (used by hypothesis to describe its filters)
# fails with "AST constructor recursion depth mismatch" on schemathesis' deepest strategies.
# (Run from target/: schemathesis keeps its cache in ./.schemathesis.)
(cd target && ../"$venv/bin/python" -c 'import sys; sys.setrecursionlimit(20000); from schemathesis.cli import schemathesis; sys.argv[0] = "schemathesis"; sys.exit(schemathesis())' \
  run "http://$gateway/openapi.json" \
  --wait-for-schema 60 \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --max-time "$max_time" \
  --workers 2 \
  --request-timeout 30 \
  --suppress-health-check all \
  --no-color)
